//! The logical plan node for a Delta write; the scheduler's planner turns it into
//! [`DeltaWriteExec`](super::DeltaWriteExec).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};

use super::write_exec::written_files_schema;

/// Write the input's rows as data files of the Delta table at `table_url`.
#[derive(Debug, Clone)]
pub struct DeltaWriteNode {
    /// Rows to write.
    pub input: LogicalPlan,
    /// Table root URL.
    pub table_url: String,
    /// Partition columns.
    pub partition_by: Vec<String>,
    schema: DFSchemaRef,
}

impl DeltaWriteNode {
    /// A write of `input` to `table_url`.
    pub fn try_new(input: LogicalPlan, table_url: String, partition_by: Vec<String>) -> Result<Self> {
        let schema = Arc::new(DFSchema::try_from(written_files_schema())?);
        Ok(Self {
            input,
            table_url,
            partition_by,
            schema,
        })
    }
}

impl PartialEq for DeltaWriteNode {
    fn eq(&self, other: &Self) -> bool {
        self.table_url == other.table_url
            && self.partition_by == other.partition_by
            && self.input == other.input
    }
}

impl Eq for DeltaWriteNode {}

impl Hash for DeltaWriteNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.table_url.hash(state);
        self.partition_by.hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for DeltaWriteNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (&self.table_url, &self.partition_by).cmp(&(&other.table_url, &other.partition_by)) {
            Ordering::Equal => self.input.partial_cmp(&other.input),
            ord => Some(ord),
        }
    }
}

impl UserDefinedLogicalNodeCore for DeltaWriteNode {
    fn name(&self) -> &str {
        "DeltaWrite"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "DeltaWrite: table={}, partition_by={:?}",
            self.table_url, self.partition_by
        )
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("DeltaWrite needs exactly one input".into()))?;
        Self::try_new(input, self.table_url.clone(), self.partition_by.clone())
    }
}
