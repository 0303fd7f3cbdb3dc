//! Writes each input partition as Parquet data files of one or more Delta tables, on the
//! executor that runs the partition, and returns the `Add` actions and row counts for the
//! driver to commit.

use std::fmt;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use delta_kernel::table_properties::DataSkippingNumIndexedCols;
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use futures::StreamExt;
use url::Url;

use super::normalize::{normalize_batch, normalize_schema};
use super::tagged::{TaggedStore, tag_path};
use super::write_spec::{COUNTS_ROW, TaskCounts, WriteSpec, WriteTarget, schema_to_hex};

static WRITTEN_FILES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("target", DataType::Int32, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
    ]))
});

/// Schema of what [`DeltaWriteExec`] returns: a row per data file written (`payload` is the
/// `Add` action as JSON) and a row per task with its counts (`target` = -1).
pub fn written_files_schema() -> SchemaRef {
    Arc::clone(&WRITTEN_FILES)
}

/// Per-partition Delta data-file writer.
#[derive(Debug)]
pub struct DeltaWriteExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<WriteSpec>,
    properties: Arc<PlanProperties>,
}

impl DeltaWriteExec {
    /// Writes `input` as `spec` says.
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: WriteSpec) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(written_files_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            spec: Arc::new(spec),
            properties,
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
            written_files_schema(),
            futures::stream::once(write),
        )))
    }
}

/// One target's writer and the columns it takes.
struct TargetWriter<'a> {
    target: &'a WriteTarget,
    schema: SchemaRef,
    writer: DeltaWriter,
}

impl<'a> TargetWriter<'a> {
    fn open(target: &'a WriteTarget, input: &SchemaRef, tag: &str) -> Result<Self> {
        // The process's shared client for the bucket, not a new one per task.
        let url = Url::parse(&target.url).map_err(external)?;
        let mut store = crate::storage::table_store(&url).map_err(external)?;
        if !tag.is_empty() {
            store = Arc::new(TaggedStore::new(store, tag));
        }
        let schema = normalize_schema(&Arc::new(input.project(&target.columns)?));
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
            schema,
            writer: DeltaWriter::new(store, config),
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let kept = match self.target.keep_when {
            None => batch.clone(),
            Some((column, value)) => filter_record_batch(batch, &mask(batch.column(column), value)?)?,
        };
        if kept.num_rows() == 0 {
            return Ok(());
        }
        let projected = normalize_batch(&kept.project(&self.target.columns)?, &self.schema)?;
        self.writer.write(&projected).await.map_err(external)
    }
}

async fn write_partition(mut input: SendableRecordBatchStream, spec: Arc<WriteSpec>) -> Result<RecordBatch> {
    let schema = input.schema();
    let mut writers = spec
        .targets
        .iter()
        .map(|t| TargetWriter::open(t, &schema, &spec.file_tag))
        .collect::<Result<Vec<_>>>()?;
    let schemas = writers
        .iter()
        .map(|w| schema_to_hex(&w.schema))
        .collect::<Result<Vec<_>>>()?;
    let mut counts = TaskCounts {
        read: 0,
        counted: vec![0; spec.count_columns.len()],
        schemas,
    };
    while let Some(batch) = input.next().await {
        let batch = batch?;
        counts.read += batch.num_rows() as u64;
        for (total, &column) in counts.counted.iter_mut().zip(&spec.count_columns) {
            *total += mask(batch.column(column), true)?.true_count() as u64;
        }
        for writer in &mut writers {
            writer.write(&batch).await?;
        }
    }
    let mut out = ResultRows::default();
    for (t, writer) in writers.into_iter().enumerate() {
        for mut add in writer.writer.close().await.map_err(external)? {
            if !spec.file_tag.is_empty() {
                add.path = tag_path(&add.path, &spec.file_tag);
            }
            let rows = num_records(add.stats.as_deref());
            out.push(
                t as i32,
                &add.path.clone(),
                serde_json::to_string(&add).map_err(external)?,
                rows,
            );
        }
    }
    let read = counts.read as i64;
    out.push(
        COUNTS_ROW,
        "",
        serde_json::to_string(&counts).map_err(external)?,
        read,
    );
    out.finish()
}

#[derive(Default)]
struct ResultRows {
    targets: Vec<i32>,
    paths: Vec<String>,
    payloads: Vec<String>,
    rows: Vec<i64>,
}

impl ResultRows {
    fn push(&mut self, target: i32, path: &str, payload: String, rows: i64) {
        self.targets.push(target);
        self.paths.push(path.to_string());
        self.payloads.push(payload);
        self.rows.push(rows);
    }

    fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            written_files_schema(),
            vec![
                Arc::new(Int32Array::from(self.targets)),
                Arc::new(StringArray::from(self.paths)),
                Arc::new(StringArray::from(self.payloads)),
                Arc::new(Int64Array::from(self.rows)),
            ],
        )?)
    }
}

/// Rows where the boolean column equals `value` (NULL never matches TRUE; counts as FALSE).
fn mask(column: &dyn Array, value: bool) -> Result<BooleanArray> {
    let bools = column
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| DataFusionError::Internal("DeltaWriteExec mask column is not boolean".into()))?;
    Ok(bools.iter().map(|b| Some(b.unwrap_or(false) == value)).collect())
}

/// Rows in a file, from the `numRecords` of the stats the writer computed.
fn num_records(stats: Option<&str>) -> i64 {
    stats
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get("numRecords").and_then(serde_json::Value::as_i64))
        .unwrap_or(0)
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
