//! Expectations as DataFusion expressions, and the one aggregate job that counts failures.

use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, col, lit};

use crate::error::{Error, Result};
use crate::landing::CORRUPT_REASON;
use crate::spec::{Action, Pipeline, TableKind, TableSpec};

/// A compiled expectation.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Rule name.
    pub name: String,
    /// TRUE for rows that pass; never NULL.
    pub pass: Expr,
    /// Why a failing row failed.
    pub reason: Expr,
    /// What happens to failing rows.
    pub action: Action,
}

/// The table's rules against `frame`: for sources, `well_formed` first (malformed lines are
/// quarantined with the parser's reason), then the spec's expectations in order.
pub fn rules_for(pipeline: &Pipeline, table: &TableSpec, frame: &DataFrame) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    if matches!(table.kind, TableKind::Landing(_) | TableKind::Kafka(_)) {
        rules.push(Rule {
            name: "well_formed".into(),
            pass: col(CORRUPT_REASON).is_null(),
            reason: col(CORRUPT_REASON),
            action: Action::Drop,
        });
    }
    for e in &table.expectations {
        let pass = frame
            .parse_sql_expr(&format!("coalesce(({}), false)", e.sql))
            .map_err(|err| Error::InvalidSpec {
                path: pipeline.path.clone(),
                line: table.line,
                table: table.name.clone(),
                message: format!("expectation `{}`: {err}", e.name),
            })?;
        rules.push(Rule {
            name: e.name.clone(),
            pass,
            reason: lit(format!("expectation `{}` failed: {}", e.name, e.sql)),
            action: e.action,
        });
    }
    Ok(rules)
}
