//! The kinds of table, each one [`TableStep`]: plan what to write, write it on the cluster,
//! commit it. A new kind of table is a new file here and one arm in
//! [`TableJob`](super::table_job::TableJob)'s dispatch.
//!
//! - [`landing`]: landing files into a bronze table, each file once.
//! - [`kafka`]: a Kafka topic into a bronze table, each record once.
//! - [`sql`]: a query over other tables (kept when none of them changed, [`unchanged`]).
//! - [`als`]: an ALS model trained on a query's ratings, with its recommendations.
//! - [`cdc`]: keyed changes from another table applied as SCD type 1 or 2.
//! - [`checks`]: data tests over other tables, one row per check (a quality gate).
//!
//! All of them write their rows and the rows their expectations drop in one pass
//! ([`checked_write`]).

pub(super) mod als;
pub(super) mod cdc;
pub(super) mod checked_write;
pub(super) mod checks;
pub(super) mod incremental;
pub(super) mod kafka;
pub(super) mod landing;
pub(super) mod sql;
pub(super) mod unchanged;

use super::outcome::{TableOutcome, TableStatus};
use super::table_job::TableJob;
use crate::error::Result;

/// One kind of table.
pub(super) trait TableStep {
    /// What [`plan`](Self::plan) decided to write.
    type Plan;
    /// What [`write`](Self::write) left for the commit: files written, none visible yet.
    type Written;

    /// Plans the write without running anything on the cluster; `None` when there is nothing
    /// new to write.
    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<Self::Plan>>;

    /// Writes the data files on the cluster.
    async fn write(
        &self,
        job: &TableJob<'_>,
        plan: &Self::Plan,
        outcome: &mut TableOutcome,
    ) -> Result<Self::Written>;

    /// Commits what was written, once for this run (a retried or resumed run commits nothing
    /// twice).
    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: Self::Plan,
        written: Self::Written,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus>;

    /// Removes what the step left behind (e.g. scratch files), after a commit or a failure.
    async fn finish(&self) {}
}

/// Plans, writes and commits one table with `step`.
pub(super) async fn run<S: TableStep>(
    step: &S,
    job: &TableJob<'_>,
    outcome: &mut TableOutcome,
) -> Result<TableStatus> {
    // Boxed: each kind's future nests deep, and the run's scheduler future holds them all.
    let status = Box::pin(plan_write_commit(step, job, outcome)).await;
    step.finish().await;
    status
}

async fn plan_write_commit<S: TableStep>(
    step: &S,
    job: &TableJob<'_>,
    outcome: &mut TableOutcome,
) -> Result<TableStatus> {
    let Some(plan) = step.plan(job).await? else {
        return Ok(TableStatus::NoNewData);
    };
    let written = step.write(job, &plan, outcome).await?;
    step.commit(job, plan, written, outcome).await
}
