//! Column lineage read off a DataFusion logical plan: for each output column, the columns of
//! the tables the plan scans that its values are computed from.
//!
//! An output column is traced down the plan through the expressions that produce it: a
//! projection's expression, an aggregate's arguments, a window function's arguments and the
//! columns it partitions and orders by, a join's side, a union's branches, a scalar subquery's
//! result, a view's or a registered frame's own plan. Columns that only filter, join or group
//! rows are not sources — as in OpenLineage's "direct" lineage: `fact_sales.net_amount` comes
//! from `order_items.quantity`, `unit_price` and `discount`, not from the `order_id` it is
//! joined on.

use std::collections::BTreeSet;
use std::fmt;

use datafusion::common::Column;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan, TableScan};

/// A column of a scanned table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceColumn {
    /// The table's name as the plan scans it.
    pub table: String,
    /// The column.
    pub column: String,
}

impl fmt::Display for SourceColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// One output column and the columns it is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnLineage {
    /// The output column.
    pub column: String,
    /// What it is computed from; empty for constants, row numbers and counts of rows.
    pub sources: BTreeSet<SourceColumn>,
}

/// The lineage of every output column of `plan`, in output order.
pub fn column_lineage(plan: &LogicalPlan) -> Vec<ColumnLineage> {
    plan.schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| ColumnLineage {
            column: field.name().clone(),
            sources: sources(plan, i),
        })
        .collect()
}

/// The scanned columns output column `index` of `plan` is computed from.
fn sources(plan: &LogicalPlan, index: usize) -> BTreeSet<SourceColumn> {
    match plan {
        LogicalPlan::TableScan(scan) => scan_sources(scan, index),
        LogicalPlan::Projection(p) => p
            .expr
            .get(index)
            .map_or_else(BTreeSet::new, |e| expr_sources(e, &p.input)),
        LogicalPlan::Aggregate(a) => {
            let exprs = a.group_expr.iter().chain(&a.aggr_expr);
            exprs
                .clone()
                .nth(index)
                .map_or_else(BTreeSet::new, |e| expr_sources(e, &a.input))
        }
        LogicalPlan::Window(w) => {
            let passed = w.input.schema().fields().len();
            match index.checked_sub(passed) {
                None => sources(&w.input, index),
                Some(i) => w
                    .window_expr
                    .get(i)
                    .map_or_else(BTreeSet::new, |e| expr_sources(e, &w.input)),
            }
        }
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            match j.join_type {
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => sources(&j.right, index),
                JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => match index < left {
                    true => sources(&j.left, index),
                    false => BTreeSet::new(),
                },
                _ if index < left => sources(&j.left, index),
                _ => sources(&j.right, index - left),
            }
        }
        LogicalPlan::Union(u) => u.inputs.iter().flat_map(|i| sources(i, index)).collect(),
        LogicalPlan::Distinct(Distinct::On(on)) => on
            .select_expr
            .get(index)
            .map_or_else(BTreeSet::new, |e| expr_sources(e, &on.input)),
        LogicalPlan::Unnest(u) => u
            .dependency_indices
            .get(index)
            .map_or_else(BTreeSet::new, |&i| sources(&u.input, i)),
        LogicalPlan::RecursiveQuery(r) => {
            let mut all = sources(&r.static_term, index);
            all.extend(sources(&r.recursive_term, index));
            all
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Subquery(_)
        | LogicalPlan::Distinct(Distinct::All(_)) => match plan.inputs().first() {
            Some(input) => sources(input, index),
            None => BTreeSet::new(),
        },
        _ => BTreeSet::new(),
    }
}

/// The scanned column behind a scan's output column `index`: the table's own, or, for a view
/// or a registered frame, where its plan takes it from.
fn scan_sources(scan: &TableScan, index: usize) -> BTreeSet<SourceColumn> {
    let column = match &scan.projection {
        Some(projection) => projection.get(index).copied(),
        None => Some(index),
    };
    let Some(column) = column else {
        return BTreeSet::new();
    };
    if let Some(inner) = scan.source.get_logical_plan() {
        return sources(&inner, column);
    }
    let schema = scan.source.schema();
    let field = schema.fields().get(column);
    field
        .map(|f| SourceColumn {
            table: scan.table_name.table().to_string(),
            column: f.name().clone(),
        })
        .into_iter()
        .collect()
}

/// The scanned columns `expr` (over `input`'s columns) is computed from: its column references,
/// and the result of each scalar subquery in it.
fn expr_sources(expr: &Expr, input: &LogicalPlan) -> BTreeSet<SourceColumn> {
    let mut all: BTreeSet<SourceColumn> = expr
        .column_refs()
        .into_iter()
        .filter_map(|c| column_index(input, c))
        .flat_map(|i| sources(input, i))
        .collect();
    let _ = expr.apply(|e| {
        if let Expr::ScalarSubquery(subquery) = e {
            all.extend(sources(&subquery.subquery, 0));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    all
}

fn column_index(plan: &LogicalPlan, column: &Column) -> Option<usize> {
    plan.schema().index_of_column(column).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn lineage(sql: &str) -> Vec<(String, Vec<String>)> {
        let ctx = SessionContext::new();
        for (name, columns) in [
            ("items", ["order_id", "qty", "price"]),
            ("orders", ["order_id", "day", "status"]),
        ] {
            let fields: Vec<Field> = columns
                .iter()
                .map(|c| Field::new(*c, DataType::Int64, true))
                .collect();
            let table = MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        let view = ctx
            .sql("SELECT order_id, qty * 2 AS double_qty FROM items")
            .await
            .unwrap();
        ctx.register_table("doubled", view.into_view()).unwrap();
        let plan = ctx.sql(sql).await.unwrap().into_unoptimized_plan();
        column_lineage(&plan)
            .into_iter()
            .map(|c| (c.column, c.sources.iter().map(ToString::to_string).collect()))
            .collect()
    }

    fn named(column: &str, sources: &[&str]) -> (String, Vec<String>) {
        (column.into(), sources.iter().map(|s| s.to_string()).collect())
    }

    #[tokio::test]
    async fn expressions_joins_and_aggregates_name_their_inputs_not_keys_or_filters() {
        let got = lineage(
            "SELECT o.day, sum(i.qty * i.price) AS revenue, count(*) AS n FROM items i \
             JOIN orders o ON i.order_id = o.order_id WHERE o.status = 1 GROUP BY o.day",
        )
        .await;
        assert_eq!(
            got,
            vec![
                named("day", &["orders.day"]),
                named("revenue", &["items.price", "items.qty"]),
                named("n", &[]),
            ]
        );
    }

    #[tokio::test]
    async fn ctes_windows_unions_subqueries_and_registered_frames_are_followed() {
        let got = lineage(
            "WITH t AS (SELECT order_id AS id, qty FROM items UNION ALL SELECT order_id, day FROM orders) \
             SELECT id, ROW_NUMBER() OVER (PARTITION BY id ORDER BY qty) AS rn, \
                    (SELECT max(price) FROM items) AS top, d.double_qty \
             FROM t JOIN doubled d ON t.id = d.order_id",
        )
        .await;
        assert_eq!(
            got,
            vec![
                named("id", &["items.order_id", "orders.order_id"]),
                named(
                    "rn",
                    &["items.order_id", "items.qty", "orders.day", "orders.order_id"]
                ),
                named("top", &["items.price"]),
                named("double_qty", &["items.qty"]),
            ]
        );
    }
}
