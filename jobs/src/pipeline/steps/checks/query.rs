//! The SQL of a `checks` table: one row per check, each counted over whole tables or over
//! what changed in them since the last run.
//!
//! A check counted over the changes gives the whole-table count when the check had no
//! violation at the recorded versions (the scope decides that, [`super::scope`]):
//! - `unique`: a value of the columns can be held by several rows now only if a row holding it
//!   was added since — the others' rows are a subset of what they were, at most one each. So
//!   the values of the added rows (where the filter holds) are counted in the table's files
//!   that may hold them.
//! - `relationship`: a value of `table` can miss from `to` now only if a row of `table`
//!   holding it was added since, or a row of `to` holding it was removed since — otherwise it
//!   was in `table` before, and so in `to`, and is still. So those values are looked up in
//!   the files of `table` and `to` that may hold them. When `to` lost none of its values
//!   since (each value of its removed rows is still held by a row of it), only the added rows
//!   of `table` can hold a missing value: they are looked up in the whole of `to`, and `table`
//!   need not be clustered by the columns.
//!
//! Both are counted by grouping the rows of all relations involved, tagged by where they come
//! from, rather than by joins: a sort-merge join (the cluster's) would sort the whole of
//! the larger side. A `relationship` ignores rows of `table` with a NULL in its columns (as
//! dbt's `relationships` test does).

use crate::spec::{CheckSpec, CheckTest};

/// How one check is counted this run.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Form {
    /// Over the whole tables.
    Full,
    /// Its tables did not change: its last count.
    Unchanged(i64),
    /// Over what changed, with these relations.
    Changes(Relations),
    /// A `relationship` over the rows of `table`'s files added since (relation `added`), its
    /// `to` having lost no value.
    Added { added: String },
}

/// The relations a check counted over its changes reads (names registered for the query).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Relations {
    /// Rows of `table`'s files added since.
    pub(super) added: String,
    /// `table`'s files that may hold a value of those rows.
    pub(super) table: String,
    /// Where a `relationship` looks its values up.
    pub(super) lookup: Option<Lookup>,
}

/// The `to` side of a `relationship` counted over its changes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Lookup {
    /// Rows of `to`'s files removed since.
    pub(super) removed: String,
    /// `to`'s files that may hold a value of those rows or of the added ones.
    pub(super) to: String,
}

/// The query: `check_name`, `level`, `violations` (BIGINT), one row per check in order.
pub(super) fn checks_sql(checks: &[(&CheckSpec, Form)]) -> String {
    checks
        .iter()
        .map(|(check, form)| {
            format!(
                "SELECT {} AS check_name, '{}' AS level, CAST(({}) AS BIGINT) AS violations",
                string(&check.name),
                check.level.as_str(),
                count(&check.test, form)
            )
        })
        .collect::<Vec<_>>()
        .join("\nUNION ALL\n")
}

/// The scalar query counting `test`'s violations in `form`.
fn count(test: &CheckTest, form: &Form) -> String {
    match (test, form) {
        (_, Form::Unchanged(n)) => n.to_string(),
        (CheckTest::Sql(sql), _) => format!("SELECT * FROM ({sql}) v"),
        (CheckTest::Unique { columns, filter, .. }, Form::Changes(r)) => {
            let (cols, filter) = (list(columns), holds(filter));
            let rows = [
                format!(
                    "SELECT DISTINCT {cols}, 1 AS __probe, 0 AS __row FROM {} WHERE {filter}",
                    ident(&r.added)
                ),
                format!("SELECT {cols}, 0, 1 FROM {} WHERE {filter}", ident(&r.table)),
            ];
            grouped(&rows, columns, "max(__probe) = 1 AND sum(__row) > 1")
        }
        (
            CheckTest::Unique {
                table,
                columns,
                filter,
            },
            _,
        ) => format!(
            "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1) d",
            ident(table),
            holds(filter),
            list(columns)
        ),
        (
            CheckTest::Relationship { columns, .. },
            Form::Changes(Relations {
                added,
                table,
                lookup: Some(lookup),
            }),
        ) => {
            let (cols, present) = (list(columns), not_null(columns));
            let rows = [
                format!(
                    "SELECT {cols}, 1 AS __probe, 0 AS __in_table, 0 AS __in_to FROM {} WHERE {present}",
                    ident(added)
                ),
                format!(
                    "SELECT {cols}, 1, 0, 0 FROM {} WHERE {present}",
                    ident(&lookup.removed)
                ),
                format!("SELECT {cols}, 0, 1, 0 FROM {} WHERE {present}", ident(table)),
                format!(
                    "SELECT {cols}, 0, 0, 1 FROM {} WHERE {present}",
                    ident(&lookup.to)
                ),
            ];
            grouped(
                &rows,
                columns,
                "max(__probe) = 1 AND max(__in_table) = 1 AND max(__in_to) = 0",
            )
        }
        (CheckTest::Relationship { table, columns, to }, form) => {
            // Over the rows added to `table` when `to` lost no value, else over all of them.
            let from = match form {
                Form::Added { added } => added,
                _ => table,
            };
            let (cols, present) = (list(columns), not_null(columns));
            let rows = [
                format!(
                    "SELECT {cols}, 1 AS __in_table, 0 AS __in_to FROM {} WHERE {present}",
                    ident(from)
                ),
                format!("SELECT {cols}, 0, 1 FROM {} WHERE {present}", ident(to)),
            ];
            grouped(&rows, columns, "max(__in_table) = 1 AND max(__in_to) = 0")
        }
    }
}

/// The values of `columns` over the union of `rows` whose group satisfies `having`, counted.
fn grouped(rows: &[String], columns: &[String], having: &str) -> String {
    format!(
        "SELECT count(*) FROM (SELECT 1 FROM ({}) u GROUP BY {} HAVING {having}) d",
        rows.join(" UNION ALL "),
        list(columns)
    )
}

fn not_null(columns: &[String]) -> String {
    let each: Vec<String> = columns
        .iter()
        .map(|c| format!("{} IS NOT NULL", ident(c)))
        .collect();
    each.join(" AND ")
}

fn holds(filter: &Option<String>) -> String {
    filter.as_ref().map_or("true".into(), |f| format!("({f})"))
}

fn list(columns: &[String]) -> String {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    cols.join(", ")
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    use super::*;
    use crate::spec::CheckLevel;

    fn table(ctx: &SessionContext, name: &str, ids: &[Option<i64>]) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("tag", DataType::Utf8, false),
        ]));
        let tags: Vec<&str> = ids.iter().map(|_| "x").collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(tags)),
            ],
        )
        .unwrap();
        ctx.register_batch(name, batch).unwrap();
    }

    async fn violations(ctx: &SessionContext, test: CheckTest, form: Form) -> i64 {
        let check = CheckSpec {
            name: "it's".into(),
            level: CheckLevel::Fail,
            test,
        };
        let batches = ctx
            .sql(&checks_sql(&[(&check, form)]))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let column = batches[0]
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        column.value(0)
    }

    fn changes() -> Form {
        Form::Changes(Relations {
            added: "added".into(),
            table: "t".into(),
            lookup: Some(Lookup {
                removed: "removed".into(),
                to: "parent".into(),
            }),
        })
    }

    #[tokio::test]
    async fn unique_over_the_added_rows_counts_what_the_whole_table_counts() {
        let ctx = SessionContext::new();
        // t: 1 and NULL twice (1 and NULL held before by one old row each, then added again), 2 once.
        table(&ctx, "t", &[Some(1), None, Some(2), Some(1), None, Some(3)]);
        table(&ctx, "added", &[Some(1), None, Some(3)]);
        let unique = |filter: Option<&str>| CheckTest::Unique {
            table: "t".into(),
            columns: vec!["id".into()],
            filter: filter.map(Into::into),
        };
        assert_eq!(violations(&ctx, unique(None), Form::Full).await, 2);
        assert_eq!(violations(&ctx, unique(None), changes()).await, 2);
        assert_eq!(violations(&ctx, unique(Some("id <> 1")), changes()).await, 0);
        assert_eq!(violations(&ctx, unique(None), Form::Unchanged(7)).await, 7);
    }

    #[tokio::test]
    async fn relationship_over_the_changes_counts_what_the_whole_tables_count() {
        let ctx = SessionContext::new();
        // Values of `child` missing from `parent`: 4 (added to child), 2 (its parent row removed);
        // NULL is not a value.
        table(&ctx, "t", &[Some(1), Some(2), Some(2), Some(4), None]);
        table(&ctx, "parent", &[Some(1), Some(3)]);
        table(&ctx, "added", &[Some(4)]);
        table(&ctx, "removed", &[Some(2), Some(5)]);
        let relationship = CheckTest::Relationship {
            table: "t".into(),
            columns: vec!["id".into()],
            to: "parent".into(),
        };
        assert_eq!(violations(&ctx, relationship.clone(), Form::Full).await, 2);
        assert_eq!(violations(&ctx, relationship, changes()).await, 2);
        let sql = CheckTest::Sql("SELECT count(*) FROM t WHERE id = 2".into());
        assert_eq!(violations(&ctx, sql, Form::Full).await, 2);
    }

    #[tokio::test]
    async fn relationship_over_the_added_rows_counts_what_the_whole_tables_count() {
        let ctx = SessionContext::new();
        // `parent` lost no value; of `t`'s rows, the added ones hold 4 (missing, twice) and 1.
        table(&ctx, "t", &[Some(1), Some(3), Some(4), Some(4), Some(1), None]);
        table(&ctx, "parent", &[Some(1), Some(3), Some(7)]);
        table(&ctx, "added", &[Some(4), Some(4), Some(1), None]);
        let relationship = CheckTest::Relationship {
            table: "t".into(),
            columns: vec!["id".into()],
            to: "parent".into(),
        };
        let added = Form::Added {
            added: "added".into(),
        };
        assert_eq!(violations(&ctx, relationship.clone(), Form::Full).await, 1);
        assert_eq!(violations(&ctx, relationship, added).await, 1);
    }
}
