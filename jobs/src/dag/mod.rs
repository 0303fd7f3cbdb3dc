//! The table DAG: dependencies inferred from SQL, validated, ordered, and selected like dbt.

mod graph;
mod priority;
mod select;

pub use graph::Dag;
pub(crate) use graph::companion_of;
pub use select::Selection;
