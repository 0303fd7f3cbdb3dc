//! What a query's logical plan allows: which shapes give, from their inputs' changes, exactly
//! the rows a full recompute gives.
//!
//! - `Spj`: filters, projections and inner joins of tables. Each output row comes from one row
//!   of each input, so rows added to the inputs add exactly the rows their combinations give,
//!   and rows removed remove exactly theirs.
//! - `Grouped`: an aggregate of such rows, grouped by keys that are output columns, under
//!   operators that look at one group's row at a time (projections, `HAVING`). A group changes
//!   only when a row of it is added or removed, so recomputing the groups the changed rows
//!   belong to, and keeping the others, gives the full result.
//!
//! Anything else (windows, outer and anti joins, `DISTINCT`, `LIMIT`, set operations, nested
//! aggregates, subqueries, a table read twice) is computed in full, with the reason.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan};

/// An incremental shape of a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// Filters, projections and inner joins of `inputs` (tables, in plan order).
    Spj { inputs: Vec<String> },
    /// An aggregate of an SPJ plan over `inputs`; group `i` is output column `keys[i]`.
    Grouped { inputs: Vec<String>, keys: Vec<String> },
}

impl Shape {
    /// The shape of `plan`, or why it has none.
    pub(crate) fn of(plan: &LogicalPlan) -> Result<Shape, String> {
        let mut path = vec![plan];
        let mut node = plan;
        loop {
            match node {
                LogicalPlan::Aggregate(aggregate) => {
                    let inputs = spj_inputs(&aggregate.input)
                        .map_err(|why| format!("the aggregate's input has {why}"))?;
                    let keys = group_columns(&path)?;
                    return Ok(Shape::Grouped { inputs, keys });
                }
                LogicalPlan::Projection(p) if !p.expr.iter().any(needs_other_rows) => node = &p.input,
                LogicalPlan::Filter(f) if !needs_other_rows(&f.predicate) => node = &f.input,
                LogicalPlan::SubqueryAlias(a) => node = &a.input,
                LogicalPlan::Sort(s) if s.fetch.is_none() => node = &s.input,
                _ => return spj_inputs(plan).map(|inputs| Shape::Spj { inputs }),
            }
            path.push(node);
        }
    }

    /// The tables read, in plan order.
    pub(crate) fn inputs(&self) -> &[String] {
        match self {
            Shape::Spj { inputs } | Shape::Grouped { inputs, .. } => inputs,
        }
    }
}

/// How a run computes the table: `row-wise over `a`, `b`` or `by group of `day``.
impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = |names: &[String]| {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            names.join(", ")
        };
        match self {
            Shape::Spj { inputs } => write!(f, "row-wise over {}", quoted(inputs)),
            Shape::Grouped { keys, .. } => write!(f, "by group of {}", quoted(keys)),
        }
    }
}

/// The tables an SPJ plan reads, or what it has that is not SPJ.
fn spj_inputs(plan: &LogicalPlan) -> Result<Vec<String>, String> {
    let mut inputs: Vec<String> = vec![];
    let mut found: Option<String> = None;
    let mut refuse = |why: String| {
        found = Some(why);
        Ok(TreeNodeRecursion::Stop)
    };
    plan.apply(|node| match node {
        LogicalPlan::Projection(p) if p.expr.iter().any(needs_other_rows) => {
            refuse("a window function or subquery in a select list".into())
        }
        LogicalPlan::Filter(f) if needs_other_rows(&f.predicate) => refuse("a subquery in a filter".into()),
        LogicalPlan::Join(j) if j.join_type != JoinType::Inner => {
            refuse(format!("a {} join", j.join_type.to_string().to_lowercase()))
        }
        LogicalPlan::Join(j) if j.filter.as_ref().is_some_and(needs_other_rows) => {
            refuse("a subquery in a join condition".into())
        }
        LogicalPlan::TableScan(scan) => {
            let name = scan.table_name.table().to_string();
            if inputs.contains(&name) {
                return refuse(format!("table `{name}` read twice"));
            }
            inputs.push(name);
            Ok(TreeNodeRecursion::Continue)
        }
        LogicalPlan::Sort(s) if s.fetch.is_some() => refuse("ORDER BY with LIMIT".into()),
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Join(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::EmptyRelation(_)
        | LogicalPlan::Values(_) => Ok(TreeNodeRecursion::Continue),
        LogicalPlan::Aggregate(_) => refuse("an aggregate over the whole input".into()),
        LogicalPlan::Window(_) => refuse("a window function over the whole input".into()),
        LogicalPlan::Distinct(_) => refuse("DISTINCT over the whole input".into()),
        LogicalPlan::Limit(_) => refuse("a LIMIT".into()),
        LogicalPlan::Union(_) => refuse("a UNION".into()),
        other => refuse(format!("a `{}` operator", other.display())),
    })
    .map_err(|e| e.to_string())?;
    if let Some(why) = found {
        return Err(why);
    }
    if inputs.is_empty() {
        return Err("no table".into());
    }
    Ok(inputs)
}

/// The output column of each group key of the aggregate at the end of `path` (the nodes from
/// the plan's root down to it), each passed up unchanged through the nodes above.
fn group_columns(path: &[&LogicalPlan]) -> Result<Vec<String>, String> {
    let Some((LogicalPlan::Aggregate(aggregate), above)) = path.split_last() else {
        return Err("no aggregate".into());
    };
    if aggregate.group_expr.is_empty() {
        return Err("an aggregate without GROUP BY".into());
    }
    if aggregate
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Err("GROUPING SETS".into());
    }
    (0..aggregate.group_expr.len())
        .map(|group| {
            let index = above
                .iter()
                .rev()
                .try_fold(group, |index, node| passed_up(node, index));
            let root = path[0];
            match index {
                Some(i) => Ok(root.schema().field(i).name().clone()),
                None => Err(format!(
                    "group key `{}` is not an output column",
                    aggregate.group_expr[group].schema_name()
                )),
            }
        })
        .collect()
}

/// The index in `node`'s output of its input's column `index`, if it passes it unchanged.
pub(super) fn passed_up(node: &LogicalPlan, index: usize) -> Option<usize> {
    let LogicalPlan::Projection(p) = node else {
        return Some(index);
    };
    let input = p.input.schema();
    p.expr.iter().position(|e| match unaliased(e) {
        Expr::Column(c) => input.index_of_column(c).ok() == Some(index),
        _ => false,
    })
}

/// `expr` under all its aliases: `count(*)` is planned as `count(Int64(1)) AS count(*)`, so
/// `count(*) AS n` has two.
pub(super) fn unaliased(mut expr: &Expr) -> &Expr {
    while let Expr::Alias(alias) = expr {
        expr = &alias.expr;
    }
    expr
}

/// Whether an expression looks beyond its own row: a window function or a subquery.
fn needs_other_rows(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::WindowFunction(_) | Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
        ))
    })
    .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn shape(sql: &str) -> Result<Shape, String> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        for name in ["a", "b"] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        Shape::of(ctx.sql(sql).await.unwrap().logical_plan())
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn filters_projections_and_inner_joins_are_spj() {
        assert_eq!(
            shape("SELECT id, v * 2 AS w FROM (SELECT * FROM a WHERE v > 3) t WHERE id IS NOT NULL").await,
            Ok(Shape::Spj {
                inputs: names(&["a"])
            })
        );
        assert_eq!(
            shape("SELECT a.id, b.v FROM a JOIN b ON a.id = b.id WHERE a.v > 0").await,
            Ok(Shape::Spj {
                inputs: names(&["a", "b"])
            })
        );
    }

    #[tokio::test]
    async fn an_aggregate_grouped_by_output_columns_is_grouped() {
        assert_eq!(
            shape("SELECT id AS k, count(*) AS n FROM a GROUP BY id HAVING count(*) > 1 ORDER BY k").await,
            Ok(Shape::Grouped {
                inputs: names(&["a"]),
                keys: names(&["k"])
            })
        );
        assert_eq!(
            shape("SELECT b.v + 1 AS g, sum(a.v) AS s FROM a JOIN b ON a.id = b.id GROUP BY b.v + 1").await,
            Ok(Shape::Grouped {
                inputs: names(&["a", "b"]),
                keys: names(&["g"])
            })
        );
    }

    #[tokio::test]
    async fn everything_else_says_why_not() {
        for (sql, why) in [
            ("SELECT count(*) AS n FROM a", "without GROUP BY"),
            (
                "SELECT sum(v) AS s FROM a GROUP BY id",
                "group key `a.id` is not an output column",
            ),
            (
                "SELECT id, row_number() OVER (ORDER BY v) FROM a",
                "window function",
            ),
            ("SELECT a.id FROM a LEFT JOIN b ON a.id = b.id", "a left join"),
            ("SELECT DISTINCT id FROM a", "DISTINCT"),
            ("SELECT id FROM a ORDER BY id LIMIT 1", "LIMIT"),
            ("SELECT id FROM a UNION ALL SELECT id FROM b", "UNION"),
            ("SELECT id FROM a WHERE id IN (SELECT id FROM b)", "subquery"),
            ("SELECT x.id FROM a x JOIN a y ON x.id = y.v", "read twice"),
            (
                "SELECT k, count(*) AS n FROM (SELECT id AS k FROM a GROUP BY id) t GROUP BY k",
                "aggregate",
            ),
            (
                "SELECT id, sum(v) OVER () AS s FROM (SELECT id, v FROM a GROUP BY id, v) t",
                "window",
            ),
        ] {
            let decided = shape(sql).await;
            assert!(
                decided.as_ref().is_err_and(|e| e.contains(why)),
                "{sql}: {decided:?}"
            );
        }
    }
}
