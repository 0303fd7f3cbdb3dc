//! A table's rows with everything its write needs: the rule outcomes as columns, the first
//! failed `drop` rule and its reason, and the quarantine audit columns.

use std::ops::Not;

use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, lit, when};
use datafusion::scalar::ScalarValue;

use super::rules::Rule;
use crate::layers::ident;
use crate::spec::Action;

/// Suffix of a table's quarantine table, in folder names and in SQL.
pub const QUARANTINE_SUFFIX: &str = "__quarantine";

/// The quarantine column naming the first rule a row failed.
pub const QUARANTINE_RULE: &str = "_rule";

/// Columns added to a table's columns in its `<table>__quarantine` table.
pub const QUARANTINE_COLUMNS: [&str; 4] = [QUARANTINE_RULE, "_reason", "_run_id", "_quarantined_at"];

const KEEP: &str = "__medallion_keep";

/// The projected frame and where its parts are.
#[derive(Debug, Clone)]
pub struct CheckedFrame {
    /// Table columns, extra quarantine columns, quarantine audit columns, keep flag, one
    /// "failed" flag per rule.
    pub frame: DataFrame,
    /// The table's columns.
    pub table_columns: Vec<String>,
    /// The quarantine table's columns; `None` without `drop` rules.
    pub quarantine_columns: Option<Vec<String>>,
    /// The boolean "passes every drop rule" column.
    pub keep_column: Option<String>,
    /// Each rule's boolean "failed" column, in rule order.
    pub failed_columns: Vec<String>,
}

impl CheckedFrame {
    /// Projects `frame` for a single-pass write: `table` columns go to the table, plus `extra`
    /// (e.g. the raw line of a malformed record) to the quarantine.
    pub fn build(
        frame: DataFrame,
        rules: &[Rule],
        table: &[String],
        extra: &[String],
        run_id: &str,
        now_micros: i64,
    ) -> Result<Self> {
        let mut select: Vec<Expr> = table.iter().chain(extra).map(|c| ident(c)).collect();
        let mut names: Vec<String> = table.iter().chain(extra).cloned().collect();
        // `fail` rows go to quarantine too, so an aborted table shows what stopped it.
        let drops: Vec<&Rule> = rules.iter().filter(|r| r.action != Action::Warn).collect();
        let (mut quarantine_columns, mut keep_column) = (None, None);
        if let Some(first) = drops.first() {
            let mut rule = when(first.pass.clone().not(), lit(first.name.clone()));
            let mut reason = when(first.pass.clone().not(), first.reason.clone());
            for r in &drops[1..] {
                rule = rule.when(r.pass.clone().not(), lit(r.name.clone()));
                reason = reason.when(r.pass.clone().not(), r.reason.clone());
            }
            let now = ScalarValue::TimestampMicrosecond(Some(now_micros), Some("UTC".into()));
            let audit = [rule.end()?, reason.end()?, lit(run_id.to_string()), lit(now)];
            for (expr, name) in audit.into_iter().zip(QUARANTINE_COLUMNS) {
                select.push(expr.alias(name));
                names.push(name.to_string());
            }
            quarantine_columns = Some(names.clone());
            let keep = drops[1..]
                .iter()
                .fold(first.pass.clone(), |acc, r| acc.and(r.pass.clone()));
            keep_column = Some(KEEP.to_string());
            select.push(keep.alias(KEEP));
        }
        let mut failed_columns = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let name = format!("__medallion_failed_{i}");
            select.push(r.pass.clone().not().alias(&name));
            failed_columns.push(name);
        }
        Ok(Self {
            frame: frame.select(select)?,
            table_columns: table.to_vec(),
            quarantine_columns,
            keep_column,
            failed_columns,
        })
    }
}
