//! The physical ALS step: each partition reads the files of one block (listed by its input,
//! an in-memory file list that Ballista hands each task its own slice of), the fixed factors,
//! and solves or scores the block on a blocking thread.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use datafusion::scalar::ScalarValue;
use futures::TryStreamExt;
use tracing::debug;

use super::block_io::{Factors, block_ratings, exec_err, read_files};
use super::score::score_block;
use super::solve::{factor_batch, solve_block};
use super::task::{AlsTask, FileSet, Fixed, Side, Step};

/// One ALS step over blocks; partition `i` is block `i`.
#[derive(Debug)]
pub struct AlsBlockExec {
    input: Arc<dyn ExecutionPlan>,
    task: Arc<AlsTask>,
    properties: Arc<PlanProperties>,
}

impl AlsBlockExec {
    /// Runs `task` over the blocks whose files `input` lists (`block`, `file` rows).
    pub fn new(input: Arc<dyn ExecutionPlan>, task: AlsTask) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(task.schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            task: Arc::new(task),
            properties,
        }
    }

    /// The step this node runs.
    pub fn task(&self) -> &AlsTask {
        &self.task
    }
}

impl DisplayAs for AlsBlockExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.task.step {
            Step::Solve { side, .. } => write!(f, "AlsBlockExec: solve {}s", side.as_str()),
            Step::Score { top_n, .. } => write!(f, "AlsBlockExec: score users, top {top_n}"),
        }
    }
}

impl ExecutionPlan for AlsBlockExec {
    fn name(&self) -> &str {
        "AlsBlockExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// A block must stay whole in one partition: no repartitioning of the file list.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("AlsBlockExec needs its file list".into()))?;
        Ok(Arc::new(Self::new(input, (*self.task).clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let listed = self.input.execute(partition, context)?;
        let task = Arc::clone(&self.task);
        let run = async move {
            let listing: Vec<RecordBatch> = listed.try_collect().await?;
            let paths: Vec<String> = listing
                .iter()
                .flat_map(|b| {
                    b.column(1)
                        .as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .collect();
            run_block(task, paths).await
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.task.schema(),
            futures::stream::once(run),
        )))
    }
}

/// Reads what the block needs, then computes off the async runtime.
async fn run_block(task: Arc<AlsTask>, paths: Vec<String>) -> Result<RecordBatch> {
    if paths.is_empty() {
        return Ok(RecordBatch::new_empty(task.schema()));
    }
    let block = FileSet {
        root: task.ratings_root.clone(),
        paths,
    };
    let ratings = read_files(&block).await?;
    let fixed = match &task.fixed {
        Fixed::Files(set) | Fixed::Warm(set) => Some(read_files(set).await?),
        Fixed::Initial => None,
    };
    let users = match &task.step {
        Step::Score { users, .. } => read_files(users).await?,
        Step::Solve { .. } => vec![],
    };
    tokio::task::spawn_blocking(move || compute(&task, &ratings, fixed.as_deref(), &users))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
}

fn compute(
    task: &AlsTask,
    ratings: &[RecordBatch],
    fixed: Option<&[RecordBatch]>,
    users: &[RecordBatch],
) -> Result<RecordBatch> {
    let s = &task.settings;
    let block = block_ratings(ratings, task.src_id)?;
    let other = match task.step {
        Step::Solve { side: Side::User, .. } | Step::Score { .. } => Side::Item,
        Step::Solve { side: Side::Item, .. } => Side::User,
    };
    let needed = block.entries.iter().map(|e| e.dst);
    let fixed =
        match (fixed, &task.fixed) {
            (Some(batches), Fixed::Warm(_)) => Factors::from_batches(batches, s.rank, task.dst_id)?
                .or_initial(s.seed, other, needed, s.nonnegative),
            (Some(batches), _) => Factors::from_batches(batches, s.rank, task.dst_id)?,
            (None, _) => Factors::initial(s.seed, other, needed, s.rank, s.nonnegative),
        };
    debug!(ratings = block.entries.len(), "ALS block loaded");
    match &task.step {
        Step::Solve { side, gram } => {
            let solved = solve_block(&block.entries, &fixed, s, gram.as_deref()).map_err(|u| {
                let id = ScalarValue::try_from_array(&block.ids, u.id_row as usize)
                    .map_or_else(|_| "?".to_string(), |v| v.to_string());
                exec_err(format!(
                    "ALS: the least-squares system of {} `{id}` has no unique solution (reg_param = {}); raise reg_param",
                    side.as_str(),
                    s.reg_param
                ))
            })?;
            factor_batch(task.schema(), &solved, &block.ids, s.rank)
        }
        Step::Score { top_n, eval, .. } => {
            let users = Factors::from_batches(users, s.rank, task.src_id)?;
            score_block(&block, &users, &fixed, *top_n, eval.as_ref()).into_batch(
                task.schema(),
                &block.ids,
                fixed.ids.as_ref(),
            )
        }
    }
}
