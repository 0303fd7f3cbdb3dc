//! Writes each input partition as Parquet data files of one or more Delta tables, on the
//! executor that runs the partition, and returns a [`TaskWritten`] describing them for the
//! driver to commit.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_expr::{LexRequirement, OrderingRequirements, PhysicalSortRequirement};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use delta_kernel::table_properties::DataSkippingNumIndexedCols;
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use deltalake::kernel::Add;
use deltalake::logstore::ObjectStoreRef;
use futures::StreamExt;
use url::Url;

use super::normalize::{normalize_batch, normalize_schema};
use super::scan::rows_in_stats;
use super::tagged::{TaggedStore, tag_path};
use super::write_spec::{WriteSpec, WriteTarget};
use super::written::{CounterValue, DataFile, OutputFiles, TaskWritten, schema_to_ipc, task_result_schema};

/// Per-partition Delta data-file writer.
#[derive(Debug)]
pub struct DeltaWriteExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<WriteSpec>,
    properties: Arc<PlanProperties>,
    /// The order each partition's rows are written in ([`WriteSpec::clustering`]).
    ordering: Option<LexRequirement>,
}

impl DeltaWriteExec {
    /// Writes `input` as `spec` says.
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: WriteSpec) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(task_result_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        let ordering = spec
            .clustering
            .as_ref()
            .and_then(|c| clustered_order(&c.by, &input.schema()));
        Self {
            input,
            spec: Arc::new(spec),
            properties,
            ordering,
        }
    }

    /// What is written.
    pub fn spec(&self) -> &WriteSpec {
        &self.spec
    }
}

impl DisplayAs for DeltaWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<&str> = self.spec.targets.iter().map(|t| t.url.as_str()).collect();
        write!(f, "DeltaWriteExec: targets={urls:?}")
    }
}

impl ExecutionPlan for DeltaWriteExec {
    fn name(&self) -> &str {
        "DeltaWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// Clustered rows are sorted within each partition, which DataFusion's `EnforceSorting`
    /// provides (a sort per partition, no merge into one).
    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![self.ordering.clone().map(OrderingRequirements::new)]
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
            .ok_or_else(|| DataFusionError::Internal("DeltaWriteExec needs exactly one input".into()))?;
        Ok(Arc::new(Self::new(input, (*self.spec).clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let write = write_partition(input, Arc::clone(&self.spec));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            task_result_schema(),
            futures::stream::once(write),
        )))
    }
}

/// One target's writer and the input columns it takes.
struct TargetWriter<'a> {
    target: &'a WriteTarget,
    columns: Vec<usize>,
    keep: Option<(usize, bool)>,
    schema: SchemaRef,
    store: ObjectStoreRef,
    config: WriterConfig,
    writer: DeltaWriter,
    /// Rows per file before the next one is started, when clustered.
    rows_per_file: Option<usize>,
    rows_in_file: usize,
    /// Files already closed.
    closed: Vec<Add>,
}

impl<'a> TargetWriter<'a> {
    fn open(target: &'a WriteTarget, input: &SchemaRef, spec: &WriteSpec) -> Result<Self> {
        let tag = spec.file_tag.as_str();
        // The process's shared client for the bucket, not a new one per task.
        let url = Url::parse(&target.url).map_err(external)?;
        let mut store = crate::storage::table_store(&url).map_err(external)?;
        if !tag.is_empty() {
            store = Arc::new(TaggedStore::new(store, tag));
        }
        let columns = target
            .columns
            .iter()
            .map(|c| input.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let keep = match &target.keep_when {
            None => None,
            Some(k) => Some((input.index_of(&k.column)?, k.value)),
        };
        let schema = normalize_schema(&Arc::new(input.project(&columns)?));
        let config = WriterConfig::new(
            Arc::clone(&schema),
            target.partition_by.clone(),
            None,
            None,
            None,
            DataSkippingNumIndexedCols::NumColumns(32),
            None,
        );
        Ok(Self {
            target,
            columns,
            keep,
            schema,
            writer: DeltaWriter::new(Arc::clone(&store), config.clone()),
            store,
            config,
            rows_per_file: spec.clustering.as_ref().map(|c| c.rows_per_file.max(1) as usize),
            rows_in_file: 0,
            closed: vec![],
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let kept = match self.keep {
            None => batch.clone(),
            Some((column, value)) => filter_record_batch(batch, &mask(batch.column(column), value)?)?,
        };
        if kept.num_rows() == 0 {
            return Ok(());
        }
        let projected = normalize_batch(&kept.project(&self.columns)?, &self.schema)?;
        let Some(per_file) = self.rows_per_file else {
            return self.writer.write(&projected).await.map_err(external);
        };
        let mut offset = 0;
        while offset < projected.num_rows() {
            let take = (per_file - self.rows_in_file).min(projected.num_rows() - offset);
            let slice = projected.slice(offset, take);
            self.writer.write(&slice).await.map_err(external)?;
            (offset, self.rows_in_file) = (offset + take, self.rows_in_file + take);
            if self.rows_in_file == per_file {
                self.next_file().await?;
            }
        }
        Ok(())
    }

    /// Closes the file being written; later rows go to a new one.
    async fn next_file(&mut self) -> Result<()> {
        let next = DeltaWriter::new(Arc::clone(&self.store), self.config.clone());
        let full = std::mem::replace(&mut self.writer, next);
        self.closed.extend(full.close().await.map_err(external)?);
        self.rows_in_file = 0;
        Ok(())
    }

    /// Closes the files and describes them.
    async fn finish(mut self, tag: &str) -> Result<OutputFiles> {
        let mut files = Vec::new();
        self.closed.extend(self.writer.close().await.map_err(external)?);
        for mut add in self.closed {
            if !tag.is_empty() {
                add.path = tag_path(&add.path, tag);
            }
            let rows = rows_in_stats(add.stats.as_deref()).unwrap_or(0);
            files.push(DataFile::from_add(add, rows));
        }
        Ok(OutputFiles {
            name: self.target.name.to_string(),
            arrow_schema: schema_to_ipc(&self.schema)?,
            files,
        })
    }
}

async fn write_partition(mut input: SendableRecordBatchStream, spec: Arc<WriteSpec>) -> Result<RecordBatch> {
    let schema = input.schema();
    let mut writers = spec
        .targets
        .iter()
        .map(|t| TargetWriter::open(t, &schema, &spec))
        .collect::<Result<Vec<_>>>()?;
    let counted = spec
        .counters
        .iter()
        .map(|c| schema.index_of(&c.column))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut task = TaskWritten {
        rows_read: 0,
        counters: spec
            .counters
            .iter()
            .map(|c| CounterValue {
                name: c.name.clone(),
                count: 0,
            })
            .collect(),
        outputs: Vec::with_capacity(writers.len()),
    };
    while let Some(batch) = input.next().await {
        let batch = batch?;
        task.rows_read += batch.num_rows() as u64;
        for (counter, &column) in task.counters.iter_mut().zip(&counted) {
            counter.count += mask(batch.column(column), true)?.true_count() as u64;
        }
        for writer in &mut writers {
            writer.write(&batch).await?;
        }
    }
    for writer in writers {
        task.outputs.push(writer.finish(&spec.file_tag).await?);
    }
    task.into_batch()
}

/// Ascending, nulls first, by the named columns of `schema` (`None` if one is missing: the
/// rows are then written as they come).
fn clustered_order(columns: &[String], schema: &SchemaRef) -> Option<LexRequirement> {
    let requirements = columns.iter().map(|name| {
        let column = Column::new_with_schema(name, schema).ok()?;
        Some(PhysicalSortRequirement::new(
            Arc::new(column),
            Some(SortOptions::default()),
        ))
    });
    LexRequirement::new(requirements.collect::<Option<Vec<_>>>()?)
}

/// Rows where the boolean column equals `value` (NULL never matches TRUE; counts as FALSE).
fn mask(column: &dyn Array, value: bool) -> Result<BooleanArray> {
    let bools = column
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| DataFusionError::Internal("DeltaWriteExec mask column is not boolean".into()))?;
    Ok(bools.iter().map(|b| Some(b.unwrap_or(false) == value)).collect())
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
