//! Watching the Ballista jobs one table attempt submits, so the run driver can tell a slow
//! attempt from a stuck one and cancel it on the cluster.
//!
//! Each attempt gets its own client session whose query planner wraps Ballista's: every
//! `DistributedQueryExec` it plans is remembered. Its job id (set once the scheduler accepts
//! the job) is then enough to ask the scheduler, over its own gRPC API, how many stages have
//! finished, and to cancel the job — the same calls work for the embedded cluster, a remote
//! scheduler and the job service.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::job_status::Status;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelJobParams, GetJobMetricsParams, GetJobStatusParams};
use datafusion::catalog::Session;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::LogicalPlanNode;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, warn};

type BallistaJob = DistributedQueryExec<LogicalPlanNode>;

/// The scheduler a client session submits to (`http://host:port`), kept in the session
/// config by [`connect`](super::connect) so that a watch can reach the same scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerAddress(pub String);

/// What the cluster has done so far for one attempt. Any change counts as progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Ballista jobs accepted by the scheduler.
    pub jobs: usize,
    /// Of those, jobs that ended (succeeded or failed).
    pub jobs_ended: usize,
    /// Stages finished, summed over the attempt's running jobs.
    pub stages_done: usize,
    /// Whether the latest job is still queued (no executor has taken its tasks).
    pub queued: bool,
}

/// One Ballista job of an attempt: its plan until the scheduler reports it ended, so an
/// attempt of many jobs (ALS runs two per iteration) asks only about the ones still going.
#[derive(Debug)]
enum Watched {
    Going(Arc<dyn ExecutionPlan>),
    Ended,
}

/// The Ballista jobs of one attempt.
#[derive(Debug, Clone)]
pub struct JobWatch {
    jobs: Arc<Mutex<Vec<Watched>>>,
    scheduler: Option<Channel>,
}

impl JobWatch {
    /// A client session like `ctx` (same catalog, functions and cluster) with `config`, whose
    /// jobs are watched, and the watch.
    pub fn session(ctx: &SessionContext, config: SessionConfig) -> (SessionContext, JobWatch) {
        let state = ctx.state();
        let scheduler = config
            .get_extension::<SchedulerAddress>()
            .and_then(|a| Endpoint::from_shared(a.0.clone()).ok())
            .map(|e| e.connect_lazy());
        let watch = JobWatch {
            jobs: Arc::default(),
            scheduler,
        };
        let planner = Arc::new(WatchingPlanner {
            inner: Arc::clone(state.query_planner()),
            watch: watch.clone(),
        });
        // The catalog is shared with `ctx`: creating a default one would replace it, and with
        // it every table registered so far.
        let config = config.with_create_default_catalog_and_schema(false);
        let state = SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .with_query_planner(planner)
            .build();
        (SessionContext::new_with_state(state), watch)
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Vec<Watched>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Each going job's index and id (`None` until the scheduler accepted it), and how many
    /// jobs have ended.
    fn going(&self) -> (Vec<(usize, Option<String>)>, usize) {
        let jobs = self.jobs();
        let going = jobs
            .iter()
            .enumerate()
            .filter_map(|(i, w)| match w {
                Watched::Going(plan) => plan
                    .downcast_ref::<BallistaJob>()
                    .map(|j| (i, j.job_id().map(|id| id.to_string()))),
                Watched::Ended => None,
            })
            .collect();
        let ended = jobs.iter().filter(|w| matches!(w, Watched::Ended)).count();
        (going, ended)
    }

    /// Asks the scheduler how far the attempt's jobs are. Unreachable schedulers and unknown
    /// jobs report nothing, which reads as no progress.
    pub async fn progress(&self) -> Progress {
        let (going, ended) = self.going();
        let mut progress = Progress {
            jobs: going.len() + ended,
            jobs_ended: ended,
            ..Progress::default()
        };
        let Some(channel) = &self.scheduler else {
            return progress;
        };
        let mut client = SchedulerGrpcClient::new(channel.clone());
        for (index, job_id) in going {
            // Submitted, but the scheduler has not answered with an id yet.
            let Some(job_id) = job_id else {
                progress.queued = true;
                continue;
            };
            let status = client
                .get_job_status(GetJobStatusParams {
                    job_id: job_id.clone(),
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().status)
                .and_then(|s| s.status);
            progress.queued = matches!(status, Some(Status::Queued(_)) | None);
            match status {
                Some(Status::Successful(_) | Status::Failed(_)) => {
                    progress.jobs_ended += 1;
                    self.jobs()[index] = Watched::Ended;
                }
                Some(Status::Running(_)) => {
                    let done = client
                        .get_job_metrics(GetJobMetricsParams { job_id })
                        .await
                        .map_or(0, |r| r.into_inner().stages.len());
                    progress.stages_done += done;
                }
                _ => {}
            }
        }
        progress
    }

    /// Cancels every job of the attempt on the cluster, so executors stop working on them.
    pub async fn cancel(&self) {
        let Some(channel) = &self.scheduler else {
            return;
        };
        let mut client = SchedulerGrpcClient::new(channel.clone());
        let (going, _) = self.going();
        for job_id in going.into_iter().filter_map(|(_, id)| id) {
            match client
                .cancel_job(CancelJobParams {
                    job_id: job_id.clone(),
                })
                .await
            {
                Ok(r) => debug!(%job_id, cancelled = r.into_inner().cancelled, "cancel sent"),
                Err(e) => warn!(%job_id, error = %e, "could not cancel a Ballista job"),
            }
        }
    }
}

/// Ballista's client planner, remembering every plan it hands out.
#[derive(Debug)]
struct WatchingPlanner {
    inner: Arc<dyn QueryPlanner + Send + Sync>,
    watch: JobWatch,
}

#[async_trait]
impl QueryPlanner for WatchingPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let plan = self
            .inner
            .create_physical_plan(logical_plan, session_state)
            .await?;
        if plan.downcast_ref::<BallistaJob>().is_some() {
            self.watch.jobs().push(Watched::Going(Arc::clone(&plan)));
        }
        Ok(plan)
    }
}
