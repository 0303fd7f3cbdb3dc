//! Expectations as DataFusion expressions, and the one aggregate job that counts failures.

use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, col, lit};

use crate::error::{Error, Result};
use crate::landing::{CORRUPT_REASON, CORRUPT_RECORD, UNREADABLE_FILE};
use crate::spec::{Action, OnUnreadable, Pipeline, TableKind, TableSpec};

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

/// The table's rules against `frame`: for sources, `readable_file` (when unreadable files are
/// quarantined) and `well_formed` first (malformed lines are quarantined with the parser's
/// reason), then the spec's expectations in order.
pub fn rules_for(pipeline: &Pipeline, table: &TableSpec, frame: &DataFrame) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    if matches!(&table.kind, TableKind::Landing(s) if s.on_unreadable == OnUnreadable::Quarantine) {
        // A whole file that could not be read is the one corrupt row without a raw record.
        let readable = col(CORRUPT_REASON)
            .is_null()
            .or(col(CORRUPT_RECORD).is_not_null());
        rules.push(Rule {
            name: UNREADABLE_FILE.into(),
            pass: readable,
            reason: col(CORRUPT_REASON),
            action: Action::Drop,
        });
    }
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
