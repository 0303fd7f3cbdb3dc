//! Free task slots that cannot leak.
//!
//! Ballista keeps each executor's free vcores as a running count: binding a task takes its
//! vcores, the task's terminal status gives them back. The give-back is looked up in the job's
//! execution graph, so a status that finds no graph gives back nothing. That happens after an
//! executor loss: the loss resets the tasks of stages that read the lost shuffle output, also
//! those running on the *surviving* executors; [`lost`](crate::lost) then cancels the job, which
//! refunds only tasks still marked running (none), and the `Task cancelled` statuses arrive
//! after the job left the active cache. Those vcores stay taken for the executor's lifetime.
//! Once every executor is drained, jobs are accepted and never scheduled (1 chaos trial in 20
//! stalled that way until its table gave up).
//!
//! [`SlotLedger`] wraps the cluster state, mirrors the free count it keeps, and before each
//! bind gives back what no running task of an active job holds. Binds, aborts and task-status
//! refunds all run on the scheduler's one event loop, so the mirror and the graphs are read in
//! a consistent state; only ever giving back (never taking) keeps any disagreement harmless.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ballista_core::JobId;
use ballista_core::error::Result;
use ballista_core::serde::protobuf::ExecutorHeartbeat;
use ballista_core::serde::scheduler::{ExecutorData, ExecutorMetadata};
use ballista_scheduler::cluster::{BoundTask, ClusterState, ClusterStateEventStream, ExecutorSlot};
use ballista_scheduler::config::TaskDistributionPolicy;
use ballista_scheduler::state::task_manager::JobInfoCache;
use tokio::sync::Mutex;
use tracing::warn;

/// An executor's vcores as the inner cluster state counts them.
#[derive(Debug, Clone, Copy)]
struct Vcores {
    total: u32,
    free: u32,
}

/// A [`ClusterState`] that reclaims vcores no running task holds.
pub(crate) struct SlotLedger {
    inner: Arc<dyn ClusterState>,
    /// Mirror of the inner state's free vcores; locked across every change to them.
    vcores: Mutex<HashMap<String, Vcores>>,
}

impl SlotLedger {
    pub(crate) fn new(inner: Arc<dyn ClusterState>) -> Self {
        Self {
            inner,
            vcores: Mutex::new(HashMap::new()),
        }
    }
}

/// Vcores held by the running tasks of `jobs`, per executor.
async fn held(jobs: &HashMap<JobId, JobInfoCache>) -> HashMap<String, u32> {
    let mut held = HashMap::new();
    for job in jobs.values() {
        let graph = job.execution_graph.read().await;
        for task in graph.running_tasks() {
            let vcores = graph.task_vcores(task.stage_id, task.task_id).unwrap_or(1);
            *held.entry(task.executor_id).or_default() += vcores;
        }
    }
    held
}

/// Vcores counted as taken on an executor while no running task holds them.
fn leaked(vcores: &HashMap<String, Vcores>, held: &HashMap<String, u32>) -> Vec<ExecutorSlot> {
    vcores
        .iter()
        .filter_map(|(executor, v)| {
            let accounted = v.free + held.get(executor).copied().unwrap_or(0);
            (accounted < v.total).then(|| (executor.clone(), v.total - accounted))
        })
        .collect()
}

#[async_trait::async_trait]
impl ClusterState for SlotLedger {
    async fn init(&self) -> Result<()> {
        self.inner.init().await
    }

    async fn bind_schedulable_tasks(
        &self,
        distribution: TaskDistributionPolicy,
        active_jobs: Arc<HashMap<JobId, JobInfoCache>>,
        executors: Option<HashSet<String>>,
    ) -> Result<Vec<BoundTask>> {
        let mut vcores = self.vcores.lock().await;
        let leaked = leaked(&vcores, &held(&active_jobs).await);
        if !leaked.is_empty() {
            for (executor, count) in &leaked {
                warn!(%executor, vcores = count, "reclaiming vcores no running task holds");
                if let Some(v) = vcores.get_mut(executor) {
                    v.free += count;
                }
            }
            self.inner.unbind_tasks(leaked).await?;
        }
        let bound = self
            .inner
            .bind_schedulable_tasks(distribution, active_jobs, executors)
            .await?;
        for (executor, task) in &bound {
            if let Some(v) = vcores.get_mut(executor) {
                v.free = v.free.saturating_sub(task.vcores_consumed);
            }
        }
        Ok(bound)
    }

    async fn unbind_tasks(&self, executor_slots: Vec<ExecutorSlot>) -> Result<()> {
        let mut vcores = self.vcores.lock().await;
        self.inner.unbind_tasks(executor_slots.clone()).await?;
        for (executor, count) in executor_slots {
            if let Some(v) = vcores.get_mut(&executor) {
                v.free += count;
            }
        }
        Ok(())
    }

    async fn register_executor(&self, metadata: ExecutorMetadata, spec: ExecutorData) -> Result<()> {
        let mut vcores = self.vcores.lock().await;
        let (executor, total, free) = (spec.executor_id.clone(), spec.total_vcores, spec.available_vcores);
        self.inner.register_executor(metadata, spec).await?;
        vcores.insert(executor, Vcores { total, free });
        Ok(())
    }

    async fn save_executor_metadata(&self, metadata: ExecutorMetadata) -> Result<()> {
        self.inner.save_executor_metadata(metadata).await
    }

    async fn get_executor_metadata(&self, executor_id: &str) -> Result<ExecutorMetadata> {
        self.inner.get_executor_metadata(executor_id).await
    }

    async fn registered_executor_metadata(&self) -> Vec<ExecutorMetadata> {
        self.inner.registered_executor_metadata().await
    }

    async fn save_executor_heartbeat(&self, heartbeat: ExecutorHeartbeat) -> Result<()> {
        self.inner.save_executor_heartbeat(heartbeat).await
    }

    async fn remove_executor(&self, executor_id: &str) -> Result<()> {
        self.vcores.lock().await.remove(executor_id);
        self.inner.remove_executor(executor_id).await
    }

    fn executor_heartbeats(&self) -> HashMap<String, ExecutorHeartbeat> {
        self.inner.executor_heartbeats()
    }

    fn get_executor_heartbeat(&self, executor_id: &str) -> Option<ExecutorHeartbeat> {
        self.inner.get_executor_heartbeat(executor_id)
    }

    async fn cluster_state_events(&self) -> Result<ClusterStateEventStream> {
        self.inner.cluster_state_events().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballista_core::extension::SessionConfigExt;
    use ballista_core::serde::scheduler::{ExecutorOperatingSystemSpecification, ExecutorSpecification};
    use ballista_scheduler::cluster::memory::InMemoryClusterState;
    use ballista_scheduler::planner::DefaultDistributedPlanner;
    use ballista_scheduler::state::execution_graph::{ExecutionGraph, StaticExecutionGraph};
    use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    async fn register(state: &dyn ClusterState, id: &str, vcores: u32) {
        let metadata = ExecutorMetadata {
            id: id.into(),
            host: "localhost".into(),
            port: 1,
            grpc_port: 2,
            specification: ExecutorSpecification::default().with_vcores(vcores),
            os_info: ExecutorOperatingSystemSpecification::default(),
        };
        let data = ExecutorData {
            executor_id: id.into(),
            total_vcores: vcores,
            available_vcores: vcores,
        };
        state.register_executor(metadata, data).await.unwrap();
    }

    /// One running job: an aggregation whose first stage reads two partitions.
    async fn one_job() -> Arc<HashMap<JobId, JobInfoCache>> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("gmv", DataType::UInt64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(UInt64Array::from(vec![1])),
            ],
        )
        .unwrap();
        let partitions = vec![vec![batch.clone()], vec![batch]];
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, partitions).unwrap()))
            .unwrap();
        let plan = ctx
            .sql("SELECT id, SUM(gmv) FROM t GROUP BY id")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let job: JobId = "job".into();
        let mut graph = StaticExecutionGraph::new(
            "scheduler",
            &job,
            "",
            "session",
            plan,
            0,
            Arc::new(SessionConfig::new_with_ballista()),
            &mut DefaultDistributedPlanner::new(),
            None,
        )
        .unwrap();
        graph.revive();
        Arc::new(HashMap::from([(job, JobInfoCache::new(Box::new(graph)))]))
    }

    /// What an executor loss does to the tasks of the other executors: they stop running in
    /// the graph and no status ever gives their vcores back.
    async fn reset_without_refund(jobs: &HashMap<JobId, JobInfoCache>, executor: &str) {
        for job in jobs.values() {
            job.execution_graph
                .write()
                .await
                .reset_stages_on_lost_executor(executor)
                .unwrap();
        }
    }

    async fn bind(state: &dyn ClusterState, jobs: &Arc<HashMap<JobId, JobInfoCache>>) -> usize {
        state
            .bind_schedulable_tasks(TaskDistributionPolicy::Bias, Arc::clone(jobs), None)
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn ballista_alone_never_gets_back_the_vcores_of_reset_tasks() {
        let state = InMemoryClusterState::default();
        register(&state, "a", 2).await;
        let jobs = one_job().await;
        assert!(bind(&state, &jobs).await > 0);
        reset_without_refund(&jobs, "a").await;
        assert_eq!(
            bind(&state, &jobs).await,
            0,
            "the reset tasks wait for vcores that never come back"
        );
    }

    #[tokio::test]
    async fn the_ledger_reclaims_them_before_the_next_bind() {
        let ledger = SlotLedger::new(Arc::new(InMemoryClusterState::default()));
        register(&ledger, "a", 2).await;
        let jobs = one_job().await;
        assert!(bind(&ledger, &jobs).await > 0);
        reset_without_refund(&jobs, "a").await;
        assert!(bind(&ledger, &jobs).await > 0);
    }

    #[tokio::test]
    async fn vcores_held_by_running_tasks_are_not_given_back() {
        let ledger = SlotLedger::new(Arc::new(InMemoryClusterState::default()));
        register(&ledger, "a", 1).await;
        let jobs = one_job().await;
        assert_eq!(bind(&ledger, &jobs).await, 1);
        assert_eq!(bind(&ledger, &jobs).await, 0, "the one vcore is still held");
        assert!(leaked(&ledger.vcores.lock().await.clone(), &held(&jobs).await).is_empty());
    }
}
