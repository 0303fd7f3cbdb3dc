//! A Delta snapshot resolved to its active files, scanned as plain Parquet.
//!
//! deltalake's own scan node has no physical codec, so it cannot run on executors. The
//! snapshot is resolved on the driver into a file list; the scheduler turns that into a
//! Parquet `DataSourceExec`, which datafusion-proto ships to executors as-is.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::scalar::ScalarValue;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use url::Url;

/// One active data file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeltaFile {
    /// Path relative to the table root, decoded.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Partition column → value as Delta stores it (a string, or null).
    pub partition_values: Vec<(String, Option<String>)>,
}

/// A table provider over a fixed Delta snapshot: its URL, schema, partition columns and files.
#[derive(Debug, Clone)]
pub struct DeltaScanTable {
    /// Table root URL.
    pub url: String,
    /// Columns in table order, partition columns included.
    pub schema: SchemaRef,
    /// Partition column names.
    pub partition_columns: Vec<String>,
    /// Active files.
    pub files: Vec<DeltaFile>,
}

/// How many files one scan task reads at most; more files become more tasks.
const FILES_PER_TASK: usize = 4;

impl DeltaScanTable {
    fn physical_plan(&self) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(Arc::clone(&self.schema))));
        }
        let url = Url::parse(&self.url).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let store_url = ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
        let root = Path::from_url_path(url.path()).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let (file_fields, partition_fields) = self.split_fields();
        let file_schema = Arc::new(Schema::new(file_fields));
        let source = ParquetSource::new(
            datafusion::datasource::table_schema::TableSchema::builder(file_schema)
                .with_table_partition_cols(partition_fields.clone())
                .build(),
        );
        let groups = self
            .files
            .chunks(FILES_PER_TASK)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|f| self.partitioned_file(&root, f, &partition_fields))
                    .collect::<Result<Vec<_>>>()
                    .map(FileGroup::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
            .with_file_groups(groups)
            .build();
        let scan: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        self.reorder(scan)
    }

    fn split_fields(&self) -> (Vec<FieldRef>, Vec<FieldRef>) {
        self.schema
            .fields()
            .iter()
            .cloned()
            .partition(|f| !self.partition_columns.contains(f.name()))
    }

    fn partitioned_file(
        &self,
        root: &Path,
        file: &DeltaFile,
        partition_fields: &[FieldRef],
    ) -> Result<PartitionedFile> {
        let location = file.path.split('/').fold(root.clone(), |p, part| p.join(part));
        let values = partition_fields
            .iter()
            .map(|field| partition_value(file, field))
            .collect::<Result<Vec<_>>>()?;
        Ok(PartitionedFile::new(location.to_string(), file.size).with_partition_values(values))
    }

    /// The Parquet scan yields file columns then partition columns; put them in table order.
    fn reorder(&self, scan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        let scanned = scan.schema();
        if scanned.fields() == self.schema.fields() {
            return Ok(scan);
        }
        let exprs = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                let idx = scanned.index_of(f.name())?;
                Ok((Arc::new(Column::new(f.name(), idx)) as _, f.name().clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(exprs, scan)?))
    }
}

fn partition_value(file: &DeltaFile, field: &Field) -> Result<ScalarValue> {
    let raw = file
        .partition_values
        .iter()
        .find(|(name, _)| name == field.name())
        .and_then(|(_, v)| v.as_deref());
    match raw {
        Some(v) => ScalarValue::try_from_string(v.to_string(), field.data_type()),
        None => ScalarValue::try_from(field.data_type()),
    }
}

#[async_trait]
impl TableProvider for DeltaScanTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.physical_plan()?;
        match projection {
            None => Ok(plan),
            Some(indices) => project(plan, indices),
        }
    }
}

/// Keeps the columns of `plan` at `indices`, in that order.
pub fn project(plan: Arc<dyn ExecutionPlan>, indices: &[usize]) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = plan.schema();
    let exprs = indices
        .iter()
        .map(|&i| {
            let name = schema.field(i).name().clone();
            (Arc::new(Column::new(&name, i)) as _, name)
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}
