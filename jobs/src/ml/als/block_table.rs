//! The logical side of an ALS step: a table provider that the plan codec ships, whose scan is
//! an in-memory list of block files (one partition per block) under an [`AlsBlockExec`].

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::block_exec::AlsBlockExec;
use super::task::AlsTask;

static BLOCK_FILES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("block", DataType::Int32, false),
        Field::new("file", DataType::Utf8, false),
    ]))
});

/// One ALS step over the blocks' files.
#[derive(Debug, Clone)]
pub struct AlsBlockTable {
    /// The step.
    pub task: AlsTask,
    /// Per block, its rating files (relative to `task.ratings_root`).
    pub blocks: Vec<Vec<String>>,
}

impl AlsBlockTable {
    fn block_list(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = self
            .blocks
            .iter()
            .enumerate()
            .map(|(block, files)| {
                let ids = Int32Array::from(vec![block as i32; files.len()]);
                let files = StringArray::from(files.clone());
                RecordBatch::try_new(Arc::clone(&BLOCK_FILES), vec![Arc::new(ids), Arc::new(files)])
                    .map(|b| vec![b])
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let source = MemorySourceConfig::try_new(&partitions, Arc::clone(&BLOCK_FILES), None)?;
        Ok(DataSourceExec::from_data_source(source))
    }
}

#[async_trait]
impl TableProvider for AlsBlockTable {
    fn schema(&self) -> SchemaRef {
        self.task.schema()
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
        let exec: Arc<dyn ExecutionPlan> = Arc::new(AlsBlockExec::new(self.block_list()?, self.task.clone()));
        match projection {
            None => Ok(exec),
            Some(indices) => crate::delta::project(exec, indices),
        }
    }
}
