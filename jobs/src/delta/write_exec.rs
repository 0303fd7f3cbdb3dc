//! Writes each input partition as Parquet data files of a Delta table, on the executor that
//! runs the partition, and returns the `Add` actions for the driver to commit.

use std::fmt;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
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
use deltalake::DeltaTableBuilder;
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use futures::StreamExt;
use url::Url;

use super::normalize::{normalize_batch, normalize_schema};

static WRITTEN_FILES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("add", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
    ]))
});

/// Schema of what [`DeltaWriteExec`] returns: one row per data file written.
pub fn written_files_schema() -> SchemaRef {
    Arc::clone(&WRITTEN_FILES)
}

/// Per-partition Delta data-file writer.
#[derive(Debug)]
pub struct DeltaWriteExec {
    input: Arc<dyn ExecutionPlan>,
    table_url: String,
    partition_by: Vec<String>,
    properties: Arc<PlanProperties>,
}

impl DeltaWriteExec {
    /// Writes `input` under `table_url`, split by `partition_by`.
    pub fn new(input: Arc<dyn ExecutionPlan>, table_url: String, partition_by: Vec<String>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(written_files_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            table_url,
            partition_by,
            properties,
        }
    }

    /// The table written to.
    pub fn table_url(&self) -> &str {
        &self.table_url
    }

    /// Partition columns.
    pub fn partition_by(&self) -> &[String] {
        &self.partition_by
    }

    /// The plan whose rows are written.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

impl DisplayAs for DeltaWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeltaWriteExec: table={}, partition_by={:?}",
            self.table_url, self.partition_by
        )
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
        Ok(Arc::new(Self::new(
            input,
            self.table_url.clone(),
            self.partition_by.clone(),
        )))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let write = write_partition(input, self.table_url.clone(), self.partition_by.clone());
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            written_files_schema(),
            futures::stream::once(write),
        )))
    }
}

async fn write_partition(
    mut input: SendableRecordBatchStream,
    table_url: String,
    partition_by: Vec<String>,
) -> Result<RecordBatch> {
    let url = Url::parse(&table_url).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let store = DeltaTableBuilder::from_url(url)
        .and_then(|b| b.build_storage())
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .object_store(None);
    let schema = normalize_schema(&input.schema());
    let config = WriterConfig::new(
        Arc::clone(&schema),
        partition_by,
        None,
        None,
        None,
        DataSkippingNumIndexedCols::NumColumns(32),
        None,
    );
    let mut writer = DeltaWriter::new(store, config);
    while let Some(batch) = input.next().await {
        let batch = normalize_batch(&batch?, &schema)?;
        writer
            .write(&batch)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
    }
    let adds = writer
        .close()
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let paths: Vec<String> = adds.iter().map(|a| a.path.clone()).collect();
    let rows: Vec<i64> = adds.iter().map(|a| num_records(a.stats.as_deref())).collect();
    let json = adds
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(RecordBatch::try_new(
        written_files_schema(),
        vec![
            Arc::new(StringArray::from(paths)),
            Arc::new(StringArray::from(json)),
            Arc::new(Int64Array::from(rows)),
        ],
    )?)
}

/// Rows in a file, from the `numRecords` of the stats the writer computed.
fn num_records(stats: Option<&str>) -> i64 {
    stats
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get("numRecords").and_then(serde_json::Value::as_i64))
        .unwrap_or(0)
}
