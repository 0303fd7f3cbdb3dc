//! Rows failing `drop` expectations, with the first failed rule and its reason.

use std::ops::Not;

use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, col, lit, when};
use datafusion::scalar::ScalarValue;

use super::rules::Rule;
use crate::spec::Action;

/// Columns added to a table's columns in its `<table>__quarantine` table.
pub const QUARANTINE_COLUMNS: [&str; 4] = ["_rule", "_reason", "_run_id", "_quarantined_at"];

/// The rows of `frame` that fail any drop rule, with the table's `columns` plus
/// [`QUARANTINE_COLUMNS`]; `None` when the table has no drop rules.
pub fn quarantine_frame(
    frame: &DataFrame,
    rules: &[Rule],
    columns: &[String],
    run_id: &str,
    now_micros: i64,
) -> datafusion::error::Result<Option<DataFrame>> {
    let drops: Vec<&Rule> = rules.iter().filter(|r| r.action == Action::Drop).collect();
    let Some(first) = drops.first() else {
        return Ok(None);
    };
    let any_failed = drops
        .iter()
        .skip(1)
        .fold(first.pass.clone().not(), |acc, r| acc.or(r.pass.clone().not()));
    let mut rule = when(first.pass.clone().not(), lit(first.name.clone()));
    let mut reason = when(first.pass.clone().not(), first.reason.clone());
    for r in drops.iter().skip(1) {
        rule = rule.when(r.pass.clone().not(), lit(r.name.clone()));
        reason = reason.when(r.pass.clone().not(), r.reason.clone());
    }
    let mut select: Vec<Expr> = columns.iter().map(|c| col(format!("\"{c}\""))).collect();
    select.push(rule.end()?.alias("_rule"));
    select.push(reason.end()?.alias("_reason"));
    select.push(lit(run_id.to_string()).alias("_run_id"));
    select.push(
        lit(ScalarValue::TimestampMicrosecond(
            Some(now_micros),
            Some("UTC".into()),
        ))
        .alias("_quarantined_at"),
    );
    Ok(Some(frame.clone().filter(any_failed)?.select(select)?))
}
