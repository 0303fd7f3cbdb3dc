//! Jobs running when an executor is lost are failed, not recovered in place.
//!
//! Ballista re-runs a lost executor's tasks and rolls back the stages that read its shuffle
//! output. The chaos tests (`tests/it/chaos.rs`) caught that recovery returning wrong answers:
//! after a `kill -9` during silver, `silver.clickstream` read its bronze input half again (every
//! row of some partitions twice), and once a `COUNT(DISTINCT …)` of the quality gate came back
//! half again too high. Medallion's run driver retries a failed table from scratch under the
//! same exactly-once commit, so failing the job is the recovery that cannot be wrong; it costs
//! the job's work so far. Two paths lead to an in-place re-run, and both are closed: the
//! scheduler noticing the loss (handled here) and a task failing to fetch a lost shuffle
//! partition first (`stage_max_failures = 1` in [`start`](crate::start)).

use ballista_scheduler::cluster::ClusterStateEvent;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use futures::StreamExt;
use tracing::{info, warn};

use crate::{Error, Result};

/// Fails every running job each time an executor leaves the cluster, until the process stops.
pub(crate) async fn fail_jobs_on_executor_loss(
    scheduler: SchedulerServer<LogicalPlanNode, PhysicalPlanNode>,
) -> Result<()> {
    let mut events = scheduler
        .cluster_state_events()
        .await
        .map_err(|source| Error::ClusterState { source })?;
    while let Some(event) = events.next().await {
        let ClusterStateEvent::RemovedExecutor { executor_id } = event else {
            continue;
        };
        let running: Vec<_> = scheduler
            .state
            .task_manager
            .get_running_job_cache()
            .keys()
            .cloned()
            .collect();
        for job_id in running {
            info!(%job_id, executor = %executor_id, "executor lost: failing the job so its table is retried from scratch");
            if let Err(e) = scheduler.cancel_job(job_id.clone()).await {
                warn!(%job_id, error = %e, "could not fail a job after an executor loss");
            }
        }
    }
    Ok(())
}
