//! Which files of an input the recompute of the touched groups must read.
//!
//! When the first group key of a grouped query is a column of one of its inputs, passed up to
//! the aggregate unchanged (through filters, joins, aliases and plain column projections), a
//! row of a touched group has one of the touched values in that column — so the input's files
//! whose statistics hold none of them hold no row to recompute and are not read. New groups
//! (a day, a session, an id that did not exist) are then recomputed from the new files alone.

use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan};

use super::rewrite::group_exprs;

/// An input table's column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputColumn {
    /// The table's name in the query.
    pub(crate) table: String,
    /// The column's name in the table.
    pub(crate) column: String,
}

/// The input column the first group key of grouped `plan` is, when it is one unchanged.
pub(crate) fn first_key_source(plan: &LogicalPlan) -> Option<InputColumn> {
    let (keys, input) = group_exprs(plan).ok()?;
    match keys.first()? {
        Expr::Column(column) => traced(&input, column),
        _ => None,
    }
}

/// The table column `column` of `plan`'s output comes from unchanged, if it does.
pub(crate) fn traced(plan: &LogicalPlan, column: &Column) -> Option<InputColumn> {
    match plan {
        LogicalPlan::TableScan(scan) => plan.schema().has_column(column).then(|| InputColumn {
            table: scan.table_name.table().to_string(),
            column: column.name.clone(),
        }),
        LogicalPlan::Filter(f) => traced(&f.input, column),
        LogicalPlan::Sort(s) if s.fetch.is_none() => traced(&s.input, column),
        LogicalPlan::Join(j) if j.left.schema().has_column(column) => traced(&j.left, column),
        LogicalPlan::Join(j) if j.right.schema().has_column(column) => traced(&j.right, column),
        // Both rename by position: the output's i-th column is the input's i-th (alias) or the
        // i-th expression (projection).
        LogicalPlan::SubqueryAlias(a) => {
            let i = a.schema.index_of_column(column).ok()?;
            let (qualifier, field) = a.input.schema().qualified_field(i);
            traced(&a.input, &Column::new(qualifier.cloned(), field.name()))
        }
        LogicalPlan::Projection(p) => {
            let i = p.schema.index_of_column(column).ok()?;
            match p.expr.get(i)?.clone().unalias() {
                Expr::Column(inner) => traced(&p.input, &inner),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn source(sql: &str) -> Option<InputColumn> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("v", DataType::Int64, true),
        ]));
        for name in ["a", "b"] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        let frame = ctx.sql(sql).await.unwrap();
        first_key_source(frame.logical_plan())
    }

    fn column(table: &str, column: &str) -> Option<InputColumn> {
        Some(InputColumn {
            table: table.into(),
            column: column.into(),
        })
    }

    #[tokio::test]
    async fn a_key_passed_up_unchanged_is_traced_to_its_table() {
        let plain = "SELECT id, sum(v) FROM a WHERE v > 0 GROUP BY id";
        assert_eq!(source(plain).await, column("a", "id"));
        let joined = "SELECT y.day, count(*) FROM a x JOIN b y ON x.id = y.id GROUP BY y.day";
        assert_eq!(source(joined).await, column("b", "day"));
        let renamed = "WITH s AS (SELECT day AS d, v FROM a) SELECT d, sum(v) FROM s GROUP BY d";
        assert_eq!(source(renamed).await, column("a", "day"));
    }

    #[tokio::test]
    async fn a_computed_key_is_not() {
        assert_eq!(
            source("SELECT id + 1 AS k, sum(v) FROM a GROUP BY id + 1").await,
            None
        );
        let computed = "WITH s AS (SELECT id * 2 AS k, v FROM a) SELECT k, sum(v) FROM s GROUP BY k";
        assert_eq!(source(computed).await, None);
    }
}
