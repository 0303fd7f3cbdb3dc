//! Expectations as DataFusion expressions, and the one aggregate job that counts failures.

use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, col, lit, when};

use crate::error::{Error, Result};
use crate::landing::CORRUPT_REASON;
use crate::spec::{Action, Pipeline, TableSpec, Transform};

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

/// Rows read and failures per rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleCounts {
    /// Rows the table's query produced.
    pub read: u64,
    /// (rule, action, failing rows) in rule order.
    pub failures: Vec<(String, Action, u64)>,
}

/// The table's rules against `frame`: for sources, `well_formed` first (malformed lines are
/// quarantined with the parser's reason), then the spec's expectations in order.
pub fn rules_for(pipeline: &Pipeline, table: &TableSpec, frame: &DataFrame) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    if matches!(table.transform, Transform::Source(_)) {
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

/// Counts rows and per-rule failures with one aggregate job.
pub async fn count_rules(table: &str, frame: &DataFrame, rules: &[Rule]) -> Result<RuleCounts> {
    let query_err = |source| Error::Query {
        table: table.to_string(),
        step: "count expectations",
        source: Box::new(source),
    };
    let mut aggregates = vec![count(lit(1)).alias("_read")];
    for (i, rule) in rules.iter().enumerate() {
        let failed = when(rule.pass.clone(), lit(0i64))
            .otherwise(lit(1i64))
            .map_err(query_err)?;
        aggregates.push(sum(failed).alias(format!("_rule_{i}")));
    }
    let batches = frame
        .clone()
        .aggregate(vec![], aggregates)
        .map_err(query_err)?
        .collect()
        .await
        .map_err(query_err)?;
    let value = |idx: usize| -> u64 {
        batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .and_then(|b| ScalarValue::try_from_array(b.column(idx), 0).ok())
            .and_then(|v| match v {
                ScalarValue::Int64(Some(n)) => Some(n.max(0) as u64),
                _ => None,
            })
            .unwrap_or(0)
    };
    Ok(RuleCounts {
        read: value(0),
        failures: rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), r.action, value(i + 1)))
            .collect(),
    })
}
