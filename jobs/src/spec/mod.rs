//! The pipeline spec: a TOML file of tables, parsed and validated before anything runs.

mod chart;
mod check;
mod kafka;
mod model;
mod model_spec;
mod parse;
mod retry;

pub use chart::{ChartKind, ChartSpec};
pub use check::{CheckLevel, CheckSpec, CheckTest};
pub use kafka::{
    KafkaConnection, KafkaFormat, KafkaSource, RAW_VALUE, Sasl, SaslMechanism, Security, StartingOffsets,
};
pub use model::{
    Action, CHANGES_PLACEHOLDER, CHANGES_SUFFIX, CdcSpec, Compression, Expectation, Format, Layer,
    OnUnreadable, Pipeline, Scd, SchemaEvolution, Source, TableKind, TableSpec, WriteMode,
};
pub use model_spec::{ALS_COMPANIONS, AlsParams, ColdStart, EvalSpec, Split};
pub use parse::{parse_spec, read_spec};
pub use retry::{DEFAULT_RETRIES, DEFAULT_STALL_SECONDS, RetryPolicy, RetrySettings};
