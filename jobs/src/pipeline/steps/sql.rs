//! A table computed by a SQL query over other tables of the pipeline (silver, gold, ml).

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use sha2::{Digest, Sha256};
use tracing::info;

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput, QuarantineCommit};
use super::incremental::{row_wise_input, with_scan};
use crate::delta::{DeltaScanTable, OutputName, SinceVersion, TableSnapshot, WriteResult};
use crate::error::Result;
use crate::layers::query_frame;
use crate::pipeline::outcome::{TableOutcome, TableStatus};
use crate::pipeline::table_job::{TableJob, Watermark};
use crate::quality::rules_for;
use crate::spec::WriteMode;

/// Query columns starting with this are helpers: expectations see them, tables do not get them.
pub(crate) const HELPER_PREFIX: &str = "__";

/// A SQL table.
pub(crate) struct SqlStep<'a> {
    /// The query, `${…}` variables not yet substituted.
    pub(crate) sql: &'a str,
    /// Overwrite or append.
    pub(crate) mode: WriteMode,
    /// The table as it is, if it has been committed (an append of no rows then commits nothing).
    pub(crate) target: Option<&'a TableSnapshot>,
    /// Compute from the input's new rows when the query allows it (in full on `--full-refresh`).
    pub(crate) incremental: bool,
}

/// The checked write, and how it is committed.
pub(crate) struct SqlPlan {
    write: CheckedWrite,
    mode: WriteMode,
}

/// How an incremental table is computed this run.
enum Computed {
    /// From every row of its inputs, recording the input's version when the query is row-wise.
    Full(Option<Watermark>),
    /// From the rows appended to its input since the version it recorded, appended.
    Appended(DataFrame, Watermark),
    /// Nothing was appended to its input.
    Unchanged,
}

impl TableStep for SqlStep<'_> {
    type Plan = SqlPlan;
    type Written = WriteResult;

    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<SqlPlan>> {
        let frame = sql_frame(job, self.sql).await?;
        let (frame, mode, watermark) = match self.incremental {
            false => (frame, self.mode, None),
            true => match self.computed(job, &frame).await? {
                Computed::Full(watermark) => (frame, WriteMode::Overwrite, watermark),
                Computed::Appended(new, watermark) => (new, WriteMode::Append, Some(watermark)),
                Computed::Unchanged => return Ok(None),
            },
        };
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let columns = job.output_columns(&frame)?;
        let main = MainOutput {
            name: OutputName::table(),
            url: job.lakehouse.table_url(job.table),
            partition_by: job.table.partition_by.clone(),
        };
        let mut write =
            CheckedWrite::plan(job, frame, rules, &columns, &[], main)?.with_table_watermark(watermark);
        if self.incremental && mode == WriteMode::Overwrite {
            // Recomputed in full: its quarantine is too, so a bad row is there once.
            write = write.with_quarantine_commit(QuarantineCommit {
                mode: WriteMode::Overwrite,
                ..QuarantineCommit::default()
            });
        }
        Ok(Some(SqlPlan { write, mode }))
    }

    async fn write(&self, job: &TableJob<'_>, plan: &SqlPlan, _: &mut TableOutcome) -> Result<WriteResult> {
        plan.write.write(job).await
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: SqlPlan,
        result: WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        let exists = self.target.is_some();
        plan.write
            .commit_table(job, &result, (plan.mode, exists), outcome)
            .await
    }
}

impl SqlStep<'_> {
    /// Whether the query is row-wise over one input (from its logical plan) and, if so, what
    /// was appended to that input since the table's last commit recorded its version.
    async fn computed(&self, job: &TableJob<'_>, frame: &DataFrame) -> Result<Computed> {
        let input = match row_wise_input(frame.logical_plan()) {
            Ok(input) => input,
            Err(reason) => {
                info!(table = %job.table.name, %reason, "computed in full");
                return Ok(Computed::Full(None));
            }
        };
        let Some(spec) = job.pipeline.table(&input) else {
            return Ok(Computed::Full(None));
        };
        let Some(source) = TableSnapshot::load(&job.lakehouse.table_url(spec)).await? else {
            return Ok(Computed::Full(None));
        };
        // The query's hash is part of the id: rows computed by an edited query are recomputed.
        let query = hex::encode(&Sha256::digest(self.sql.as_bytes())[..6]);
        let id = format!(
            "medallion/{}/{}/applied/{input}/{query}",
            job.pipeline.name, job.table.name
        );
        let watermark = (id.clone(), source.version());
        let recorded = match self.target {
            Some(target) => target.txn_version(&id).await?,
            None => None,
        };
        let (false, Some(version)) = (job.full_refresh, recorded) else {
            return Ok(Computed::Full(Some(watermark)));
        };
        let files = match source.since(version).await? {
            SinceVersion::Unchanged => return Ok(Computed::Unchanged),
            SinceVersion::Appended(files) => files,
            SinceVersion::Rewritten => return Ok(Computed::Full(Some(watermark))),
        };
        info!(table = %job.table.name, %input, files = files.len(), "computed from the appended rows");
        let provider = Arc::new(DeltaScanTable {
            files,
            ..source.scan_table()?
        });
        let plan = with_scan(frame.logical_plan().clone(), &input, provider)
            .map_err(|e| job.query_err("plan incremental rows", e))?;
        let new = DataFrame::new(job.ctx.state(), plan);
        Ok(Computed::Appended(new, watermark))
    }
}

/// The query with the run id and the pipeline's variables substituted, planned.
pub(crate) async fn sql_frame(job: &TableJob<'_>, sql: &str) -> Result<DataFrame> {
    query_frame(job.ctx, job.pipeline, job.table, &job.substituted(sql)).await
}
