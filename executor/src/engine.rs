//! Ballista's execution engine, with tasks reporting no per-operator metrics.
//!
//! The scheduler folds each task's operator metrics into its stage's by position and rejects a
//! task whose list is not as long as the first task's; the rejected status update is never
//! retried and the job waits for that task forever. The lists differ whenever an operator has
//! metrics only once it has run (a join whose build side was empty never runs its probe side),
//! which incremental plans over few files hit. An empty list is skipped by the scheduler, so
//! no run can hang on it; the metrics were only shown in Ballista's debug output.

use std::fmt;
use std::sync::Arc;

use ballista_core::JobId;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport,
};
use ballista_executor::execution_engine::{DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::SessionConfig;

/// Ballista's engine; its stage executors report no operator metrics.
pub(crate) struct StableMetricsEngine(DefaultExecutionEngine);

impl StableMetricsEngine {
    pub(crate) fn new() -> Self {
        Self(DefaultExecutionEngine::new())
    }
}

impl ExecutionEngine for StableMetricsEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        let inner = self.0.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(WithoutMetrics(inner)))
    }
}

/// A stage executor that reports no operator metrics and otherwise is `self.0`.
#[derive(Debug)]
struct WithoutMetrics(Arc<dyn QueryStageExecutor>);

impl fmt::Display for WithoutMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for WithoutMetrics {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        self.0.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        vec![]
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.0.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> Result<Vec<WindowStateReport>> {
        self.0.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.0.collect_column_stats()
    }
}
