//! Running a pipeline: the DAG scheduled table by table on the cluster, each table checked,
//! written and committed once, and every outcome recorded in the event log.

mod attempts;
pub mod check;
mod crash_point;
mod event_log;
mod lineage_log;
mod outcome;
mod paths;
mod resolved;
mod run;
mod run_id;
mod steps;
mod table_job;

pub use check::{Checked, RunPlan, TablePlan};
pub use event_log::{EVENT_LOG_PATH, EventLog, append_rows};
pub use lineage_log::LINEAGE_PATH;
pub use outcome::{InputVersions, Refresh, RefreshKind, RunEvent, RunSummary, TableOutcome, TableStatus};
pub use paths::{Lakehouse, resolve_url};
pub use resolved::ResolvedRun;
pub use run::PipelineRun;
pub use run_id::RunId;
pub(crate) use steps::incremental::ShippedKeys;
