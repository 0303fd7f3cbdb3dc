//! Grouped tables over appended rows, by combining: when an aggregate's input only gained
//! rows, each touched group's new value is its stored value combined with the value of the
//! new rows alone — `count` and `sum` add, `min` and `max` keep the smaller or larger — so
//! the run reads the new rows and the table's touched files, not the group's whole history
//! (Enzyme and materialized-view engines call this partial aggregation).
//!
//! It holds only when every output column is a group key or one of those aggregates passed
//! up unchanged: a `HAVING` would have dropped a group's stored value, an expression over an
//! aggregate (`sum(a) / count(*)`) cannot be split, and `DISTINCT` or `avg` need more than
//! the stored value. Float sums are combined in another order than a full recompute's, so
//! they may differ in the last bits, as two full recomputes on a cluster may.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::Column;
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::logical_expr::{
    Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Operator, binary_expr, cast, lit, when,
};
use datafusion::scalar::ScalarValue;

use super::rewrite::{InputFiles, with_scans};
use super::shape::{Shape, passed_up, unaliased};
use crate::delta::DeltaScanTable;

/// The aggregates whose stored value and new rows' value combine into the group's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Combine {
    Count,
    Sum,
    Min,
    Max,
}

/// What each output column of a combinable plan is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum OutputColumn {
    /// A group key.
    Key,
    /// An aggregate's value.
    Aggregate(Combine),
}

const PARTIAL: &str = "__partial";
const STORED: &str = "__stored";

/// Per output column of `plan`, of `shape`, what it is, when a run over one input that only
/// gained rows may combine its groups; or why not.
pub(super) fn combinable(
    shape: &Shape,
    plan: &LogicalPlan,
) -> std::result::Result<Vec<OutputColumn>, String> {
    match shape {
        Shape::Grouped { inputs, .. } if inputs.len() == 1 => output_columns(plan),
        Shape::Grouped { .. } => Err("its aggregate reads several tables".into()),
        Shape::Spj { .. } => Err("it has no aggregate".into()),
    }
}

/// Per output column of `plan` (a grouped plan), what it is, or why the groups cannot be
/// combined.
fn output_columns(plan: &LogicalPlan) -> std::result::Result<Vec<OutputColumn>, String> {
    // From the root down to the aggregate.
    let mut path = vec![plan];
    let aggregate = loop {
        let node = path[path.len() - 1];
        let child = match node {
            LogicalPlan::Aggregate(aggregate) => break aggregate,
            LogicalPlan::Projection(p) => &p.input,
            LogicalPlan::SubqueryAlias(a) => &a.input,
            LogicalPlan::Sort(s) if s.fetch.is_none() => &s.input,
            LogicalPlan::Filter(_) => return Err("a HAVING filter".into()),
            other => return Err(format!("a `{}` over the aggregate", other.display())),
        };
        path.push(child.as_ref());
    };
    let above = &path[..path.len() - 1];
    let mut columns: Vec<Option<OutputColumn>> = vec![None; plan.schema().fields().len()];
    let keys = (0..aggregate.group_expr.len()).map(|_| Ok(OutputColumn::Key));
    let aggregates = aggregate
        .aggr_expr
        .iter()
        .map(|e| combine_of(e).map(OutputColumn::Aggregate));
    for (index, column) in keys.chain(aggregates).enumerate() {
        let output = above.iter().rev().try_fold(index, |i, node| passed_up(node, i));
        if let Some(output) = output {
            columns[output] = Some(column?);
        }
    }
    columns
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            c.ok_or_else(|| {
                format!(
                    "output column `{}` is not a group key or an aggregate",
                    plan.schema().field(i).name()
                )
            })
        })
        .collect()
}

/// How an aggregate expression's values combine, or why they do not.
fn combine_of(expr: &Expr) -> std::result::Result<Combine, String> {
    let Expr::AggregateFunction(function) = unaliased(expr) else {
        return Err(format!("aggregate `{}` is not a function", expr.schema_name()));
    };
    let name = function.func.name().to_lowercase();
    if function.params.distinct {
        return Err(format!("`{name}(DISTINCT …)` needs more than its stored value"));
    }
    match name.as_str() {
        "count" => Ok(Combine::Count),
        "sum" => Ok(Combine::Sum),
        "min" => Ok(Combine::Min),
        "max" => Ok(Combine::Max),
        _ => Err(format!("`{name}` needs more than its stored value")),
    }
}

/// `plan` with its aggregate reading only `input`'s added files: the new rows' value of each
/// group they touch.
pub(super) fn partial(plan: &LogicalPlan, input: &InputFiles) -> Result<LogicalPlan> {
    let added = input.scan(input.added.clone());
    with_scans(plan.clone(), &HashMap::from([(input.name.as_str(), added)]))
}

/// Each group of `partial` (columns as `like`'s) with its stored value in `stored` (the
/// table's files that may hold it) combined, keyed by the `Key` columns.
pub(super) fn combined(
    partial: LogicalPlan,
    stored: DeltaScanTable,
    columns: &[OutputColumn],
    like: &LogicalPlan,
) -> Result<LogicalPlan> {
    let schema = like.schema();
    let fields: Vec<_> = schema.fields().iter().zip(columns).collect();
    let on: Vec<Expr> = fields
        .iter()
        .filter(|(_, c)| **c == OutputColumn::Key)
        .map(|(f, _)| {
            let side = |q: &str| Expr::Column(Column::new(Some(q), f.name()));
            // NULL keys form a group, as GROUP BY has it.
            binary_expr(side(PARTIAL), Operator::IsNotDistinctFrom, side(STORED))
        })
        .collect();
    let values = fields
        .iter()
        .map(|(f, c)| {
            let new = Expr::Column(Column::new(Some(PARTIAL), f.name()));
            let old = cast(
                Expr::Column(Column::new(Some(STORED), f.name())),
                f.data_type().clone(),
            );
            let value = match c {
                OutputColumn::Key => new,
                OutputColumn::Aggregate(combine) => {
                    cast(combined_value(*combine, old, new)?, f.data_type().clone())
                }
            };
            Ok(value.alias(f.name()))
        })
        .collect::<Result<Vec<Expr>>>()?;
    let stored = LogicalPlanBuilder::scan(STORED, provider_as_source(Arc::new(stored)), None)?.build()?;
    LogicalPlanBuilder::from(partial)
        .alias(PARTIAL)?
        .join_on(stored, JoinType::Left, on)?
        .project(values)?
        .build()
}

/// The group's value from its stored value `old` (NULL for a new group or one whose values
/// were all NULL) and the new rows' `new`.
fn combined_value(combine: Combine, old: Expr, new: Expr) -> Result<Expr> {
    let both = match combine {
        // A count is never NULL; a new group has none stored.
        Combine::Count => {
            return Ok(binary_expr(
                when(old.clone().is_null(), lit(ScalarValue::Int64(Some(0)))).otherwise(old)?,
                Operator::Plus,
                new,
            ));
        }
        Combine::Sum => binary_expr(old.clone(), Operator::Plus, new.clone()),
        Combine::Min => when(new.clone().lt(old.clone()), new.clone()).otherwise(old.clone())?,
        Combine::Max => when(new.clone().gt(old.clone()), new.clone()).otherwise(old.clone())?,
    };
    // SUM, MIN and MAX skip NULLs: NULL only when both are.
    when(old.clone().is_null(), new.clone())
        .when(new.is_null(), old)
        .otherwise(both)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn columns(sql: &str) -> std::result::Result<Vec<OutputColumn>, String> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let table = MemTable::try_new(schema, vec![vec![]]).unwrap();
        ctx.register_table("a", Arc::new(table)).unwrap();
        output_columns(ctx.sql(sql).await.unwrap().logical_plan())
    }

    #[tokio::test]
    async fn counts_sums_minima_and_maxima_combine_in_any_column_order() {
        use Combine::*;
        use OutputColumn::{Aggregate as A, Key};
        assert_eq!(
            columns("SELECT count(*) AS n, id AS k, sum(v) AS s, min(v), max(v) AS hi FROM a GROUP BY id ORDER BY k")
                .await,
            Ok(vec![A(Count), Key, A(Sum), A(Min), A(Max)])
        );
    }

    #[tokio::test]
    async fn a_value_not_kept_whole_in_the_table_is_refused() {
        for (sql, why) in [
            (
                "SELECT id, count(*) AS n FROM a GROUP BY id HAVING count(*) > 1",
                "HAVING",
            ),
            ("SELECT id, avg(v) AS m FROM a GROUP BY id", "`avg`"),
            ("SELECT id, count(DISTINCT v) AS n FROM a GROUP BY id", "DISTINCT"),
            (
                "SELECT id, sum(v) / count(*) AS m FROM a GROUP BY id",
                "output column `m`",
            ),
        ] {
            let decided = columns(sql).await;
            assert!(
                decided.as_ref().is_err_and(|e| e.contains(why)),
                "{sql}: {decided:?}"
            );
        }
    }
}
