//! A pipeline with its DAG and the tables a run builds, checked once: `medallion run` and the
//! job service reject a bad spec or selection with it before they start anything, and the run
//! then uses the same DAG and selection.

use crate::dag::{Dag, Selection};
use crate::error::Result;
use crate::spec::Pipeline;

/// A pipeline, its DAG, and the selected tables in DAG order.
#[derive(Debug, Clone)]
pub struct ResolvedRun {
    pub(super) pipeline: Pipeline,
    pub(super) dag: Dag,
    pub(super) selected: Vec<String>,
}

impl ResolvedRun {
    /// Builds the DAG of `pipeline` and resolves `selection` against it.
    pub fn resolve(pipeline: Pipeline, selection: &Selection) -> Result<Self> {
        let dag = Dag::build(&pipeline)?;
        let selected = selection.resolve(&pipeline, &dag)?;
        Ok(Self {
            pipeline,
            dag,
            selected,
        })
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The tables the run builds, in DAG order.
    pub fn selected(&self) -> &[String] {
        &self.selected
    }
}
