//! The logical side of a landing scan: a table provider that the plan codec can ship.
//!
//! The file list becomes an in-memory source with one partition per file group, and the parse
//! runs above it. Ballista restricts each task's plan to its partitions by rewriting known
//! leaves (file and memory sources); a custom leaf would be left whole and every task would
//! parse every file.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::exec::LandingScanExec;
use super::options::LandingOptions;

static FILES: LazyLock<SchemaRef> =
    LazyLock::new(|| Arc::new(Schema::new(vec![Field::new("file", DataType::Utf8, false)])));

/// Landing files of one source, as a table.
#[derive(Debug, Clone)]
pub struct LandingTable {
    /// How to parse.
    pub options: LandingOptions,
    /// File URLs, one group per scan task.
    pub file_groups: Vec<Vec<String>>,
}

impl LandingTable {
    fn file_list(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = self
            .file_groups
            .iter()
            .map(|group| {
                let urls = StringArray::from(group.clone());
                RecordBatch::try_new(Arc::clone(&FILES), vec![Arc::new(urls)]).map(|b| vec![b])
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let source = MemorySourceConfig::try_new(&partitions, Arc::clone(&FILES), None)?;
        Ok(DataSourceExec::from_data_source(source))
    }
}

#[async_trait]
impl TableProvider for LandingTable {
    fn schema(&self) -> SchemaRef {
        self.options.schema()
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
        let scan: Arc<dyn ExecutionPlan> =
            Arc::new(LandingScanExec::new(self.file_list()?, self.options.clone()));
        match projection {
            None => Ok(scan),
            Some(indices) => crate::delta::project(scan, indices),
        }
    }
}
