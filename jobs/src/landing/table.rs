//! The logical side of a landing scan: a table provider that the plan codec can ship.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::exec::LandingScanExec;
use super::options::LandingOptions;

/// Landing files of one source, as a table.
#[derive(Debug, Clone)]
pub struct LandingTable {
    /// What to read and how.
    pub options: LandingOptions,
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
        let scan: Arc<dyn ExecutionPlan> = Arc::new(LandingScanExec::new(self.options.clone()));
        match projection {
            None => Ok(scan),
            Some(indices) => crate::delta::project(scan, indices),
        }
    }
}

