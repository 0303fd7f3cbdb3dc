//! A table computed by a SQL query over other tables of the pipeline (silver, gold, ml).

use datafusion::dataframe::DataFrame;

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput};
use crate::delta::{OutputName, WriteResult};
use crate::error::Result;
use crate::layers::query_frame;
use crate::pipeline::outcome::{TableOutcome, TableStatus};
use crate::pipeline::table_job::TableJob;
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
    /// The table has been committed before (an append of no rows then commits nothing).
    pub(crate) exists: bool,
}

impl TableStep for SqlStep<'_> {
    type Plan = CheckedWrite;
    type Written = WriteResult;

    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<CheckedWrite>> {
        let frame = sql_frame(job, self.sql).await?;
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let columns = job.output_columns(&frame)?;
        let main = MainOutput {
            name: OutputName::table(),
            url: job.lakehouse.table_url(job.table),
            partition_by: job.table.partition_by.clone(),
        };
        CheckedWrite::plan(job, frame, rules, &columns, &[], main).map(Some)
    }

    async fn write(
        &self,
        job: &TableJob<'_>,
        plan: &CheckedWrite,
        _: &mut TableOutcome,
    ) -> Result<WriteResult> {
        plan.write(job).await
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: CheckedWrite,
        result: WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        plan.commit_table(job, &result, (self.mode, self.exists), outcome)
            .await
    }
}

/// The query with the run id and the pipeline's variables substituted, planned.
pub(crate) async fn sql_frame(job: &TableJob<'_>, sql: &str) -> Result<DataFrame> {
    query_frame(job.ctx, job.pipeline, job.table, &job.substituted(sql)).await
}
