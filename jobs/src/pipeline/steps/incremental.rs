//! Whether a SQL table can be computed from its input's new rows alone, decided from the
//! DataFusion logical plan: a query that only filters and projects the rows of one table
//! (`row-wise`) gives, over rows appended to its input, exactly the rows a full recompute would
//! add. Anything else — aggregates, windows, joins, sorts, limits, `DISTINCT`, set operations —
//! is recomputed in full, and the reason is said.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScanBuilder};

/// The one table a row-wise plan reads, or why the plan is not row-wise.
pub(crate) fn row_wise_input(plan: &LogicalPlan) -> std::result::Result<String, String> {
    let mut inputs: Vec<String> = vec![];
    let mut reason: Option<String> = None;
    plan.apply(|node| {
        let why = match node {
            LogicalPlan::Projection(p) if p.expr.iter().any(has_window_or_subquery) => {
                Some("a window function or subquery in the select list")
            }
            LogicalPlan::Filter(f) if has_window_or_subquery(&f.predicate) => Some("a subquery in a filter"),
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => None,
            LogicalPlan::TableScan(scan) => {
                inputs.push(scan.table_name.table().to_string());
                None
            }
            LogicalPlan::Aggregate(_) => Some("an aggregate over the whole input"),
            LogicalPlan::Window(_) => Some("a window function over the whole input"),
            LogicalPlan::Join(_) => Some("a join"),
            LogicalPlan::Distinct(_) => Some("DISTINCT over the whole input"),
            LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => Some("ORDER BY or LIMIT over the whole input"),
            LogicalPlan::Union(_) => Some("a UNION"),
            _ => Some("an operator that needs the whole input"),
        };
        if let Some(why) = why {
            reason = Some(why.to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| e.to_string())?;
    if let Some(reason) = reason {
        return Err(reason);
    }
    match inputs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("reads no table".into()),
        _ => Err("reads more than one table".into()),
    }
}

fn has_window_or_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::WindowFunction(_) | Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
        ))
    })
    .unwrap_or(true)
}

/// `plan` with its scan of `table` reading `provider` instead (the input's new files).
pub(crate) fn with_scan(
    plan: LogicalPlan,
    table: &str,
    provider: Arc<dyn TableProvider>,
) -> Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::TableScan(scan) if scan.table_name.table() == table => {
            let replaced = TableScanBuilder::new(scan.table_name, provider_as_source(Arc::clone(&provider)))
                .with_projection(scan.projection)
                .with_filters(scan.filters)
                .with_fetch(scan.fetch)
                .build()?;
            Ok(Transformed::yes(LogicalPlan::TableScan(replaced)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    async fn decide(sql: &str) -> std::result::Result<String, String> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![3, 4])),
            ],
        )
        .unwrap();
        for name in ["a", "b"] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![batch.clone()]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        let frame = ctx.sql(sql).await.unwrap();
        row_wise_input(frame.logical_plan())
    }

    #[tokio::test]
    async fn filters_and_projections_of_one_table_are_row_wise_and_nothing_else_is() {
        assert_eq!(
            decide("SELECT id, v * 2 AS w FROM (SELECT * FROM a WHERE v > 3) t WHERE id IS NOT NULL").await,
            Ok("a".into())
        );
        for (sql, why) in [
            (
                "SELECT id, count(*) FROM a GROUP BY id",
                "an aggregate over the whole input",
            ),
            (
                "SELECT id, row_number() OVER (ORDER BY v) FROM a",
                "a window function",
            ),
            ("SELECT a.id FROM a JOIN b ON a.id = b.id", "a join"),
            ("SELECT DISTINCT id FROM a", "DISTINCT over the whole input"),
            (
                "SELECT id FROM a ORDER BY id LIMIT 1",
                "ORDER BY or LIMIT over the whole input",
            ),
            ("SELECT id FROM a UNION ALL SELECT id FROM b", "a UNION"),
            ("SELECT id FROM a WHERE id IN (SELECT id FROM b)", "subquery"),
        ] {
            let decided = decide(sql).await;
            assert!(
                decided.as_ref().is_err_and(|e| e.contains(why)),
                "{sql}: {decided:?}"
            );
        }
    }
}
