//! A `checks` table (a quality gate): data tests over other tables, one row per check
//! (`check_name`, `level`, `violations`), rewritten each run. Its expectations decide
//! whether violations fail the run.
//!
//! A check is counted over what changed in its tables since the versions the table recorded
//! when that gives the whole-table count ([`scope`] decides, [`query`] writes the SQL and says
//! why it is equal), so a batch run costs what the batch touched; a check none of whose
//! tables changed keeps its count (an `sql` check's tables are those its query scans), and
//! when that holds for every check the table is kept. All checks are one query: one job on
//! the cluster.

mod query;
mod scope;

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use tracing::info;

use self::query::{Form, checks_sql};
use self::scope::{Relation, Scope};
use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput, QuarantineCommit, TableCommit};
use super::sql::sql_frame;
use crate::delta::{TableSnapshot, WriteResult};
use crate::error::Result;
use crate::pipeline::check::{Main, Outputs};
use crate::pipeline::outcome::{Refresh, TableOutcome, TableStatus};
use crate::pipeline::table_job::TableJob;
use crate::quality::rules_for;
use crate::spec::{CheckSpec, WriteMode};

/// A checks table.
pub(crate) struct ChecksStep<'a> {
    /// Its checks, in row order.
    pub(crate) checks: &'a [CheckSpec],
    /// The table as it is, if it has been committed.
    pub(crate) target: Option<&'a TableSnapshot>,
}

/// The checked write, and what the event log says of how it was counted.
pub(crate) struct ChecksPlan {
    write: CheckedWrite,
    refresh: Refresh,
}

impl TableStep for ChecksStep<'_> {
    type Plan = ChecksPlan;
    type Written = WriteResult;

    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<ChecksPlan>> {
        let scope = Scope::decide(job, self.checks, self.target).await?;
        if scope.unchanged() {
            info!(table = %job.table.name, "no table a check reads changed since its last commit: kept");
            return Ok(None);
        }
        let frame = self.frame(job, &scope.forms, &scope.relations).await?;
        let refresh = scope.refresh;
        info!(table = %job.table.name, refresh = refresh.kind.as_str(), detail = %refresh.detail, "checks");
        let write = self
            .checked_write(job, frame)?
            .with_table_watermarks(scope.watermarks);
        Ok(Some(ChecksPlan { write, refresh }))
    }

    async fn write(
        &self,
        job: &TableJob<'_>,
        plan: &ChecksPlan,
        _: &mut TableOutcome,
    ) -> Result<WriteResult> {
        plan.write.write(job).await
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: ChecksPlan,
        result: WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        outcome.refresh = Some(plan.refresh);
        let how = TableCommit::Write(WriteMode::Overwrite, self.target.is_some());
        plan.write.commit_table(job, &result, how, outcome).await
    }
}

impl ChecksStep<'_> {
    /// What a run would write: every check counted over whole tables.
    pub(crate) async fn dry_run(&self, job: &TableJob<'_>) -> Result<Outputs> {
        let full = vec![Form::Full; self.checks.len()];
        let frame = self.frame(job, &full, &[]).await?;
        let write = self.checked_write(job, frame)?;
        Ok(Outputs::written(write.dry_run(job).await?, Main::Table))
    }

    /// The query counting each check in its form, planned with the `relations` it reads.
    async fn frame(&self, job: &TableJob<'_>, forms: &[Form], relations: &[Relation]) -> Result<DataFrame> {
        let err = |e| job.query_err("register the checks' changes", e);
        for (name, provider) in relations {
            job.ctx.deregister_table(name).map_err(err)?;
            job.ctx.register_table(name, Arc::clone(provider)).map_err(err)?;
        }
        let checks: Vec<_> = self.checks.iter().zip(forms.iter().cloned()).collect();
        let frame = sql_frame(job, &checks_sql(&checks)).await;
        // The plan holds its scans; the names are this run's only.
        for (name, _) in relations {
            job.ctx.deregister_table(name).map_err(err)?;
        }
        frame
    }

    /// The rows checked against the table's expectations; its quarantine rewritten with it.
    fn checked_write(&self, job: &TableJob<'_>, frame: DataFrame) -> Result<CheckedWrite> {
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let columns = job.output_columns(&frame)?;
        let write = CheckedWrite::plan(job, frame, rules, &columns, &[], MainOutput::table(job))?;
        Ok(write.with_quarantine_commit(QuarantineCommit {
            mode: WriteMode::Overwrite,
            ..QuarantineCommit::default()
        }))
    }
}
