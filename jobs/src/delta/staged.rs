//! Data files that are written but not committed: what a distributed write leaves for the
//! driver, used either as a commit's `Add` actions or as intermediate files a later job reads.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::prelude::SessionContext;
use delta_kernel::table_properties::DataSkippingNumIndexedCols;
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use deltalake::kernel::Add;
use url::Url;

use super::normalize::{normalize_batch, normalize_schema};
use super::scan::{DeltaFile, DeltaScanTable, rows_in_stats};
use super::write_node::DeltaWriteNode;
use super::write_spec::{OutputName, WriteSpec};
use super::written::WriteResult;

/// One target's uncommitted files.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Table root URL.
    pub url: Url,
    /// The files, as `Add` actions relative to the root.
    pub adds: Vec<Add>,
    /// Rows in the files.
    pub rows: u64,
    /// The schema the files were written with (partition columns included).
    pub schema: SchemaRef,
    /// Partition columns.
    pub partition_by: Vec<String>,
}

impl Staged {
    /// Output `name` of a distributed write; `logical` is the schema used when no task
    /// reported one (no task ran).
    pub fn from_result(
        spec: &WriteSpec,
        result: &WriteResult,
        name: &OutputName,
        logical: &SchemaRef,
    ) -> Result<Self> {
        let target = spec
            .target(name)
            .ok_or_else(|| DataFusionError::Internal(format!("the write has no output `{name}`")))?;
        let url = Url::parse(&target.url).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let written = result.output(name);
        let schema = match written.schema {
            Some(schema) => schema,
            None => normalize_schema(&Arc::new(project_named(logical, &target.columns)?)),
        };
        Ok(Self {
            url,
            adds: written.adds,
            rows: written.rows,
            schema,
            partition_by: target.partition_by.clone(),
        })
    }

    /// The files' paths relative to the root.
    pub fn paths(&self) -> Vec<String> {
        self.adds.iter().map(|a| a.path.clone()).collect()
    }

    /// A provider that scans exactly these files on the cluster.
    pub fn scan_table(&self) -> DeltaScanTable {
        DeltaScanTable {
            url: self.url.to_string(),
            schema: Arc::clone(&self.schema),
            partition_columns: self.partition_by.clone(),
            files: self
                .adds
                .iter()
                .map(|a| DeltaFile {
                    path: a.path.clone(),
                    size: a.size.max(0) as u64,
                    partition_values: a.partition_values.clone().into_iter().collect(),
                    rows: rows_in_stats(a.stats.as_deref()),
                })
                .collect(),
        }
    }
}

/// The attempt a session writes for, set on the session config: its data files are named
/// after it (see [`tag_path`](super::tag_path)).
#[derive(Debug, Clone)]
pub struct FileTag(pub String);

/// Runs `frame` through a Delta write on the session's cluster: the executors write the files
/// of every target in `spec` (tagged with the session's [`FileTag`]); nothing is committed.
pub async fn write_on_cluster(
    ctx: &SessionContext,
    frame: &DataFrame,
    spec: &WriteSpec,
) -> Result<WriteResult> {
    let mut spec = spec.clone();
    if let Some(tag) = ctx.state().config().get_extension::<FileTag>() {
        spec.file_tag = tag.0.clone();
    }
    let node = DeltaWriteNode::try_new(frame.logical_plan().clone(), spec.clone())?;
    let plan = LogicalPlan::Extension(Extension { node: Arc::new(node) });
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    WriteResult::from_batches(&spec, &batches)
}

/// Writes a few driver-side rows (metrics, model metadata) as data files of the table at `url`.
pub async fn write_here(url: &Url, batch: &RecordBatch) -> Result<Staged> {
    let store = crate::storage::table_store(url).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let schema = normalize_schema(&batch.schema());
    let config = WriterConfig::new(
        Arc::clone(&schema),
        vec![],
        None,
        None,
        None,
        DataSkippingNumIndexedCols::NumColumns(32),
        None,
    );
    let mut writer = DeltaWriter::new(store, config);
    let external = |e: deltalake::DeltaTableError| DataFusionError::External(Box::new(e));
    writer
        .write(&normalize_batch(batch, &schema)?)
        .await
        .map_err(external)?;
    let adds = writer.close().await.map_err(external)?;
    Ok(Staged {
        url: url.clone(),
        adds,
        rows: batch.num_rows() as u64,
        schema,
        partition_by: vec![],
    })
}

/// The columns of `schema` named `columns`, in that order.
pub fn project_named(schema: &SchemaRef, columns: &[String]) -> Result<datafusion::arrow::datatypes::Schema> {
    let indices = columns
        .iter()
        .map(|c| schema.index_of(c))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(schema.project(&indices)?)
}
