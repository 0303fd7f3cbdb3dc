//! Layer steps: how a table's rows are produced before quality checks and the write.
//! Bronze reads landing files (or a Kafka scan) and adds audit columns; silver, gold and ml tables are SQL
//! over the tables they reference.

mod bronze;
mod parquet;
mod query;

pub use bronze::{AUDIT_COLUMNS, Audit, BronzeInput, audited, bronze_frame, landing_files};
pub use query::query_frame;

/// A quoted column reference, so names keep their case.
pub(crate) fn ident(name: &str) -> datafusion::logical_expr::Expr {
    datafusion::logical_expr::col(format!("\"{}\"", name.replace('"', "\"\"")))
}
