//! The logical plan node for a Delta write; the scheduler's planner turns it into
//! [`DeltaWriteExec`](super::DeltaWriteExec).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};

use super::write_spec::WriteSpec;
use super::written::task_result_schema;

/// Write the input's rows as data files of the Delta tables in `spec`.
#[derive(Debug, Clone)]
pub struct DeltaWriteNode {
    /// Rows to write.
    pub input: LogicalPlan,
    /// Targets and counters.
    pub spec: WriteSpec,
    schema: DFSchemaRef,
}

impl DeltaWriteNode {
    /// A write of `input` as `spec` says.
    pub fn try_new(input: LogicalPlan, spec: WriteSpec) -> Result<Self> {
        let schema = Arc::new(DFSchema::try_from(task_result_schema())?);
        Ok(Self { input, spec, schema })
    }
}

impl PartialEq for DeltaWriteNode {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec && self.input == other.input
    }
}

impl Eq for DeltaWriteNode {}

impl Hash for DeltaWriteNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.spec.hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for DeltaWriteNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.spec.cmp(&other.spec) {
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
        let urls: Vec<&str> = self.spec.targets.iter().map(|t| t.url.as_str()).collect();
        write!(f, "DeltaWrite: targets={urls:?}")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("DeltaWrite needs exactly one input".into()))?;
        Self::try_new(input, self.spec.clone())
    }
}
