//! A Delta snapshot resolved to its active files, scanned as plain Parquet.
//!
//! deltalake's own scan node has no physical codec, so it cannot run on executors. The
//! snapshot is resolved on the driver into a file list; the scheduler turns that into a
//! Parquet `DataSourceExec`, which datafusion-proto ships to executors as-is.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;
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
    /// Rows in the file, when its Delta statistics record them (`numRecords`).
    #[serde(default)]
    pub rows: Option<u64>,
}

/// The `numRecords` of a file's Delta statistics (the JSON of an `Add` action's `stats`).
pub fn rows_in_stats(stats: Option<&str>) -> Option<u64> {
    stats
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get("numRecords").and_then(serde_json::Value::as_u64))
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
    /// The Parquet scan of the files; `batch_size`: the session's rows per batch.
    fn physical_plan(&self, batch_size: usize) -> Result<Arc<dyn ExecutionPlan>> {
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
                let files = chunk
                    .iter()
                    .map(|f| self.partitioned_file(&root, f, &partition_fields))
                    .collect::<Result<Vec<_>>>()?;
                let stats = self.statistics(chunk, None);
                Ok(FileGroup::new(files).with_statistics(Arc::new(stats)))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
            .with_file_groups(groups)
            .with_statistics(self.statistics(&self.files, Some(batch_size)))
            .build();
        let scan: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        self.reorder(scan)
    }

    /// What the Delta log tells of `files` without reading them: their row count when every
    /// file records it, so the planner puts a join's small side first and answers a bare
    /// `count(*)` without a scan, and their size.
    ///
    /// The count is given as exact only above `exact_above` rows (the session's batch size;
    /// never for one task's files): with an exact count of at most one batch DataFusion skips
    /// the round-robin split and lets a one-partition input keep its order through a hash
    /// repartition, which a Ballista shuffle does not keep (a window then fails with "Expects
    /// PARTITION BY expression to be ordered").
    fn statistics(&self, files: &[DeltaFile], exact_above: Option<usize>) -> Statistics {
        let rows = files.iter().map(|f| f.rows).sum::<Option<u64>>();
        let rows = match (rows, exact_above) {
            (None, _) => Precision::Absent,
            (Some(n), Some(batch)) if n as usize > batch => Precision::Exact(n as usize),
            (Some(n), _) => Precision::Inexact(n as usize),
        };
        let bytes = files.iter().map(|f| f.size as usize).sum();
        Statistics {
            num_rows: rows,
            total_byte_size: Precision::Inexact(bytes),
            column_statistics: Statistics::unknown_column(&self.schema),
        }
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
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.physical_plan(state.config_options().execution.batch_size.into())?;
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

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::physical_plan::{StatisticsArgs, StatisticsContext};

    use super::*;

    fn table(rows: &[Option<u64>]) -> DeltaScanTable {
        DeltaScanTable {
            url: "file:///lake/t/".into(),
            schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
            partition_columns: vec![],
            files: rows
                .iter()
                .enumerate()
                .map(|(i, &rows)| DeltaFile {
                    path: format!("part-{i}.parquet"),
                    size: 100,
                    partition_values: vec![],
                    rows,
                })
                .collect(),
        }
    }

    fn rows(table: &DeltaScanTable, partition: Option<usize>) -> Precision<usize> {
        let plan = table.physical_plan(20).unwrap();
        let args = StatisticsArgs::new().with_partition(partition);
        StatisticsContext::new()
            .compute(plan.as_ref(), &args)
            .unwrap()
            .num_rows
    }

    #[test]
    fn the_scan_counts_rows_only_when_every_file_records_them() {
        let counted = table(&[Some(3), Some(4), Some(5), Some(6), Some(7)]);
        assert_eq!(
            rows(&counted, None),
            Precision::Exact(25),
            "above one batch of 20"
        );
        assert_eq!(
            rows(&counted, Some(1)),
            Precision::Inexact(7),
            "the second task reads the fifth file"
        );
        assert_eq!(
            rows(&table(&[Some(3), Some(4)]), None),
            Precision::Inexact(7),
            "one batch"
        );
        assert_eq!(rows(&table(&[Some(3), None]), None), Precision::Absent);
    }

    #[tokio::test]
    async fn a_bare_count_of_more_than_a_batch_is_answered_from_the_log() {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Int64Type;
        use datafusion::prelude::{SessionConfig, SessionContext};

        let config = SessionConfig::new().with_batch_size(20);
        let ctx = SessionContext::new_with_config(config);
        // The files do not exist: reading them would fail.
        let counted = table(&[Some(3), Some(4), Some(5), Some(6), Some(7)]);
        ctx.register_table("t", Arc::new(counted)).unwrap();
        let batches = ctx
            .sql("SELECT count(*) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 25);
        ctx.register_table("small", Arc::new(table(&[Some(3), Some(4)])))
            .unwrap();
        let scanned = ctx
            .sql("SELECT count(*) FROM small")
            .await
            .unwrap()
            .collect()
            .await;
        assert!(scanned.is_err(), "one batch or less is counted by a scan");
    }
}
