//! Which files of the other inputs a changed input's rows can join.
//!
//! An incremental term joins one input's changed rows with the other inputs' rows. When the
//! query joins that input's column `a` to another input's column `b` by an inner equi-join
//! (each passed to the join unchanged), every row of the term has `b = a` for some changed
//! row — so the other input's files whose statistics hold none of the changed rows' `a`
//! values hold no row of the term and are not read. Order lines joined to the orders a batch
//! changed then read the few files of those orders' ids, not the whole table.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use datafusion::arrow::array::RecordBatch;
use datafusion::common::Column;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, JoinType, LogicalPlan, Operator};
use datafusion::prelude::SessionContext;

use super::prune::{InputColumn, traced};
use super::rewrite::{InputFiles, changed_values_plan};
use crate::delta::KeyValues;

/// For a term of changed input `i`, the files of input `j` it may read (paths), by `(i, j)`;
/// all of them when absent.
#[derive(Debug, Default)]
pub(crate) struct Partners(HashMap<(usize, usize), HashSet<String>>);

impl Partners {
    /// The files of input `j` a term of input `i`'s changes may read, if fewer than all.
    pub(crate) fn within(&self, i: usize, j: usize) -> Option<&HashSet<String>> {
        self.0.get(&(i, j))
    }

    /// The partners of each changed input of `plan`: its changed rows' values of each column
    /// it is equi-joined by, collected on the driver, and the other input's files whose
    /// statistics may hold them.
    pub(crate) async fn find(
        ctx: &SessionContext,
        plan: &LogicalPlan,
        inputs: &[InputFiles],
    ) -> datafusion::error::Result<Self> {
        let mut partners = Partners::default();
        let pairs = join_pairs(plan);
        // An input joined by one column to several others: its values are collected once.
        let mut values_of: HashMap<(usize, &str), Option<KeyValues>> = HashMap::new();
        for (i, input) in inputs.iter().enumerate().filter(|(_, input)| input.changed()) {
            for (j, other) in inputs.iter().enumerate().filter(|(j, _)| *j != i) {
                for (mine, theirs) in pairs_between(&pairs, &input.name, &other.name) {
                    let values = match values_of.entry((i, mine.column.as_str())) {
                        Entry::Occupied(known) => known.into_mut(),
                        Entry::Vacant(new) => new.insert(changed_values(ctx, input, &mine.column).await?),
                    };
                    let Some(values) = values.as_ref() else {
                        continue;
                    };
                    let files = other.snapshot.files_holding(&theirs.column, values);
                    let files: HashSet<String> = files
                        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?
                        .into_iter()
                        .map(|f| f.path)
                        .collect();
                    tracing::info!(
                        changed = %input.name, joined = %other.name, column = %theirs.column,
                        files = files.len(), of = other.current.files.len(),
                        "reading the joined input's files that may hold the changed rows' values"
                    );
                    let entry = partners.0.entry((i, j)).or_insert_with(|| files.clone());
                    entry.retain(|path| files.contains(path));
                }
            }
        }
        Ok(partners)
    }
}

/// The input columns each inner equi-join of `plan` pairs, each traced to its table.
pub(crate) fn join_pairs(plan: &LogicalPlan) -> Vec<(InputColumn, InputColumn)> {
    let mut pairs = vec![];
    let _ = plan.apply(|node| {
        if let LogicalPlan::Join(join) = node
            && join.join_type == JoinType::Inner
        {
            let conditions = join.filter.iter().flat_map(split_conjunction).filter_map(equated);
            let on = join.on.iter().map(|(l, r)| (l, r));
            for (left, right) in on.chain(conditions) {
                let (Expr::Column(left), Expr::Column(right)) = (left, right) else {
                    continue;
                };
                // Either side of `=` may name either input of the join.
                let traced_pair = |l: &Column, r: &Column| traced(&join.left, l).zip(traced(&join.right, r));
                pairs.extend(traced_pair(left, right).or_else(|| traced_pair(right, left)));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    pairs
}

/// `a = b` of two expressions.
fn equated(expr: &Expr) -> Option<(&Expr, &Expr)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => Some((left, right)),
        _ => None,
    }
}

/// The pairs joining a column of `mine` to one of `theirs`, `mine`'s first.
fn pairs_between<'a>(
    pairs: &'a [(InputColumn, InputColumn)],
    mine: &'a str,
    theirs: &'a str,
) -> impl Iterator<Item = (&'a InputColumn, &'a InputColumn)> {
    pairs
        .iter()
        .filter_map(move |(a, b)| match (a.table.as_str(), b.table.as_str()) {
            (x, y) if x == mine && y == theirs => Some((a, b)),
            (x, y) if x == theirs && y == mine => Some((b, a)),
            _ => None,
        })
}

/// The distinct values of `column` over `input`'s changed rows, when statistics can prune by
/// them (an integer, string or date column without NULLs).
async fn changed_values(
    ctx: &SessionContext,
    input: &InputFiles,
    column: &str,
) -> datafusion::error::Result<Option<KeyValues>> {
    let data_type = input.current.schema.field_with_name(column)?.data_type().clone();
    let plan = changed_values_plan(input, column, &data_type, None)?;
    let batches: Vec<RecordBatch> = DataFrame::new(ctx.state(), plan).collect().await?;
    let columns: Vec<_> = batches
        .iter()
        .map(|b| std::sync::Arc::clone(b.column(0)))
        .collect();
    Ok(KeyValues::collect(&columns))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    use super::*;

    async fn pairs(sql: &str) -> Vec<(String, String)> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        for name in ["a", "b", "c"] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        let frame = ctx.sql(sql).await.unwrap();
        let name = |c: &InputColumn| format!("{}.{}", c.table, c.column);
        join_pairs(frame.logical_plan())
            .iter()
            .map(|(l, r)| (name(l), name(r)))
            .collect()
    }

    fn pair(l: &str, r: &str) -> (String, String) {
        (l.into(), r.into())
    }

    #[tokio::test]
    async fn inner_equi_joins_pair_their_tables_columns() {
        let sql = "SELECT x.id FROM a x JOIN b y ON x.id = y.v JOIN c z ON z.id = y.id";
        assert_eq!(pairs(sql).await, vec![pair("b.id", "c.id"), pair("a.id", "b.v")]);
        let renamed = "WITH s AS (SELECT id AS k FROM a) SELECT s.k FROM s JOIN b ON s.k = b.id";
        assert_eq!(pairs(renamed).await, vec![pair("a.id", "b.id")]);
    }

    #[tokio::test]
    async fn outer_joins_and_computed_keys_pair_nothing() {
        assert!(
            pairs("SELECT a.id FROM a LEFT JOIN b ON a.id = b.id")
                .await
                .is_empty()
        );
        assert!(
            pairs("SELECT a.id FROM a JOIN b ON a.id + 1 = b.id")
                .await
                .is_empty()
        );
    }
}
