//! The pipeline spec: a TOML file of tables, parsed and validated before anything runs.

mod model;
mod parse;

pub use model::{Action, Expectation, Format, Layer, Pipeline, Source, TableSpec, Transform, WriteMode};
pub use parse::{parse_spec, read_spec};
