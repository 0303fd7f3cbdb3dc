//! The physical landing scan: each partition parses the files its input partition lists.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use url::Url;

use super::compression::decompressed;
use super::csv::parse_csv;
use super::ndjson::parse_ndjson;
use super::options::{LandingFormat, LandingOptions};
use super::rows::RowsBuilder;

/// Parses landing files whose URLs come from its input (a one-column `file` list).
#[derive(Debug)]
pub struct LandingScanExec {
    input: Arc<dyn ExecutionPlan>,
    options: Arc<LandingOptions>,
    properties: Arc<PlanProperties>,
}

impl LandingScanExec {
    /// Parses the files `input` lists, partition by partition.
    pub fn new(input: Arc<dyn ExecutionPlan>, options: LandingOptions) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(options.schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            input,
            options: Arc::new(options),
            properties,
        }
    }

    /// What this scan reads.
    pub fn options(&self) -> &LandingOptions {
        &self.options
    }
}

impl DisplayAs for LandingScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LandingScanExec: format={:?}, columns={}",
            self.options.format,
            self.options.columns.len()
        )
    }
}

impl ExecutionPlan for LandingScanExec {
    fn name(&self) -> &str {
        "LandingScanExec"
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
            .ok_or_else(|| DataFusionError::Internal("LandingScanExec needs its file list".into()))?;
        Ok(Arc::new(Self::new(input, (*self.options).clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let listed = self.input.execute(partition, Arc::clone(&context))?;
        let options = Arc::clone(&self.options);
        let files = listed
            .map_ok(|batch| {
                let urls = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .map(|a| a.iter().flatten().map(String::from).collect::<Vec<_>>());
                futures::stream::iter(urls.unwrap_or_default().into_iter().map(Ok))
            })
            .try_flatten();
        let batches = files
            .and_then(move |file| read_file(Arc::clone(&options), Arc::clone(&context), file))
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.options.schema(),
            batches,
        )))
    }
}

async fn read_file(
    options: Arc<LandingOptions>,
    context: Arc<TaskContext>,
    file: String,
) -> Result<Vec<RecordBatch>> {
    let url = Url::parse(&file).map_err(|e| DataFusionError::Execution(format!("{file}: {e}")))?;
    let store_url = ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
    let store = context.runtime_env().object_store(store_url)?;
    let path =
        Path::from_url_path(url.path()).map_err(|e| DataFusionError::Execution(format!("{file}: {e}")))?;
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| DataFusionError::Execution(format!("cannot read {file}: {e}")))?
        .bytes()
        .await
        .map_err(|e| DataFusionError::Execution(format!("cannot read {file}: {e}")))?;
    // Fetching failed above (maybe for a moment: retried, never quarantined); from here on the
    // bytes are what they are.
    let parsed = decompressed(options.compression, &file, bytes)
        .map_err(|e| DataFusionError::Execution(format!("cannot read landing file {file}: {e}")))
        .and_then(|bytes| {
            tracing::debug!(file, bytes = bytes.len(), "parsing landing file");
            match options.format {
                LandingFormat::Csv => parse_csv(&options, &file, &bytes),
                LandingFormat::Ndjson => parse_ndjson(&options, &file, &bytes),
            }
        });
    match parsed {
        Err(e) if options.quarantine_unreadable => {
            tracing::warn!(file, error = %e, "quarantining an unreadable landing file");
            let mut rows = RowsBuilder::new(&options, &file);
            rows.push_unreadable(&e.to_string());
            Ok(vec![rows.finish()?])
        }
        parsed => parsed,
    }
}
