//! A keyed SPJ table whose first key is the column its inputs are joined by: the keys a batch
//! touches, found without a join.
//!
//! When the first key `k` is one input's column passed up unchanged, and inner equi-joins
//! equate it (directly or through other columns) with a column of every other input, an
//! output row with `k = v` is made only of input rows holding `v` in those columns. So the
//! values the changed rows of each input hold there are a superset of the first keys the
//! changes touch, and the rows of those keys are the query over the input files whose
//! statistics may hold one of them. The table's rows of every such first key are replaced by
//! the recomputed ones; its other rows are unchanged, as no input row they are made of
//! changed. Order lines joined to their orders and keyed by `(order_id, line_no)`: a batch
//! collects the `order_id`s of the changed lines and orders (a scan of the changed rows each)
//! and recomputes the lines of those orders — where the general path joins the changed rows
//! of each input with the other inputs first, to learn which lines they touch.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use tracing::info;

use super::by_key::{Incremental, InputRead, Merged, Output, Planned};
use super::logged::Logged;
use super::partners::join_pairs;
use super::prune::{InputColumn, traced};
use super::rewrite::{
    affected_relation, changed_values_plan, key_values, only_affected_rows, unaffected_rows, with_scans,
};
use crate::delta::{DeltaScanTable, KeyValues};
use crate::error::Result;

/// Tables of a query by name, each read as the provider given.
type Scans<'a> = HashMap<&'a str, Arc<dyn TableProvider>>;

/// The touched first keys: their values, and their relation `__affected`.
struct Touched {
    values: KeyValues,
    affected: LogicalPlan,
}

/// What the changed rows hold in the linked columns.
enum Found {
    /// A NULL, or a type statistics do not order: files cannot be chosen by them.
    Unprunable,
    /// No changed row.
    Nothing,
    /// These first keys.
    Touched(Box<Touched>),
}

impl Incremental<'_> {
    /// The rows of every first key (`keys[0]`) its inputs' changed rows hold, recomputed, and
    /// the table's other rows of the files holding one; `None` when the first key is not
    /// linked to every input, or a value cannot prune files (a NULL, an unordered type).
    pub(super) async fn linked(&self, keys: &[String]) -> Result<Option<Planned>> {
        let Some((key, key_type)) = output_column(self.plan, &keys[0]) else {
            return Ok(None);
        };
        let names: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
        let Some(columns) = linked_columns(self.plan, &key, &names) else {
            return Ok(None);
        };
        let touched = match self.touched(&columns, &key_type).await? {
            Found::Touched(touched) => *touched,
            Found::Nothing => return Ok(Some(Ok(None))),
            Found::Unprunable => return Ok(None),
        };
        let err = |e| self.job.query_err("plan incremental rows", e);
        let scan = self.target.scan_table()?;
        let of = scan.files.len();
        let files = self.files_holding(scan, &keys[0], Some(&touched.values))?;
        let paths: Vec<String> = files.files.iter().map(|f| f.path.clone()).collect();
        let kept = unaffected_rows(files, &keys[..1], &touched.affected, self.plan).map_err(err)?;
        let (scans, read) = self.holding(&columns, &touched.values)?;
        let recomputed = with_scans(self.plan.clone(), &scans)
            .and_then(|plan| only_affected_rows(plan, &key, &touched.affected))
            .map_err(err)?;
        let plan = LogicalPlanBuilder::from(recomputed)
            .union(kept)
            .and_then(LogicalPlanBuilder::build)
            .map_err(err)?;
        info!(
            table = %self.job.table.name, first_keys = touched.values.len(), files = paths.len(), of, ?read,
            "recomputing the rows of the first keys the changed rows hold"
        );
        let output = Output::Replacing {
            files: paths,
            of,
            read,
            how: Merged::Recomputed,
        };
        Ok(Some(Ok(Some((self.data_frame(plan), output)))))
    }

    /// The values the changed inputs' rows hold in their linked `columns`, as `key_type`.
    async fn touched(&self, columns: &[String], key_type: &DataType) -> Result<Found> {
        let err = |e| self.job.query_err("plan incremental rows", e);
        if !KeyValues::supports(key_type) {
            return Ok(Found::Unprunable);
        }
        let (mut plans, mut batches, mut values) = (vec![], vec![], None::<KeyValues>);
        for (input, column) in self.inputs.iter().zip(columns).filter(|(i, _)| i.changed()) {
            let logged = Logged::since(self.job, input, column).await?;
            let plan = changed_values_plan(input, column, key_type, logged.as_ref()).map_err(err)?;
            let found: Vec<RecordBatch> = self.data_frame(plan.clone()).collect().await.map_err(err)?;
            let arrays: Vec<_> = found.iter().map(|b| Arc::clone(b.column(0))).collect();
            plans.push(plan);
            if arrays.is_empty() {
                continue;
            }
            let united = match (values, KeyValues::collect(&arrays)) {
                (None, found) => found,
                (Some(known), Some(found)) => known.union(found),
                (Some(_), None) => None,
            };
            let Some(united) = united else {
                return Ok(Found::Unprunable);
            };
            values = Some(united);
            batches.extend(found);
        }
        let Some(values) = values.filter(|v| !v.is_empty()) else {
            return Ok(Found::Nothing);
        };
        // Past a size, the values' plans run again inside the recompute rather than shipped.
        let affected = match key_values(&batches).map_err(err)? {
            Some(shipped) => shipped,
            None => affected_relation(plans).map_err(err)?.expect("a changed input"),
        };
        Ok(Found::Touched(Box::new(Touched { values, affected })))
    }

    /// Each input's files whose statistics of its linked column may hold one of `values`, and
    /// how many of its files that is.
    fn holding(&self, columns: &[String], values: &KeyValues) -> Result<(Scans<'_>, Vec<InputRead>)> {
        let (mut scans, mut read): (Scans<'_>, _) = (HashMap::new(), vec![]);
        for (input, column) in self.inputs.iter().zip(columns) {
            let files = input.snapshot.files_holding(column, values)?;
            read.push(InputRead {
                input: input.name.clone(),
                files: files.len(),
                of: input.current.files.len(),
            });
            let scan = DeltaScanTable {
                files,
                ..input.current.clone()
            };
            scans.insert(input.name.as_str(), Arc::new(scan));
        }
        Ok((scans, read))
    }
}

/// Output column `name` of `plan`, qualified as the plan has it, and its type.
fn output_column(plan: &LogicalPlan, name: &str) -> Option<(Column, DataType)> {
    let (qualifier, field) = plan.schema().qualified_field_with_unqualified_name(name).ok()?;
    Some((Column::new(qualifier.cloned(), name), field.data_type().clone()))
}

/// For each input (in order), its column that equals output column `key` in every output
/// row: the input column `key` is passed up from, and the columns inner equi-joins equate
/// with it, directly or through others. `None` unless every input has one. An SPJ plan reads
/// each table once ([`super::shape`]), so a table's name names one scan.
fn linked_columns(plan: &LogicalPlan, key: &Column, inputs: &[&str]) -> Option<Vec<String>> {
    let mut equal: Vec<InputColumn> = vec![traced(plan, key)?];
    let pairs = join_pairs(plan);
    let mut grown = true;
    while grown {
        grown = false;
        for (a, b) in &pairs {
            let new = match (equal.contains(a), equal.contains(b)) {
                (true, false) => b,
                (false, true) => a,
                _ => continue,
            };
            equal.push(new.clone());
            grown = true;
        }
    }
    let column_of = |input: &&str| equal.iter().find(|c| c.table == *input).map(|c| c.column.clone());
    inputs.iter().map(column_of).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// The linked column of each of `inputs` for output column `key` of `sql` over tables
    /// `a`, `b`, `c` (columns `id`, `ref`, `v`).
    async fn linked(sql: &str, key: &str, inputs: &[&str]) -> Option<Vec<String>> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("ref", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        for name in ["a", "b", "c"] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        let frame = ctx.sql(sql).await.unwrap();
        let plan = frame.logical_plan();
        let (key, _) = output_column(plan, key)?;
        linked_columns(plan, &key, inputs)
    }

    fn columns(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|n| n.to_string()).collect())
    }

    #[tokio::test]
    async fn a_key_equated_with_every_input_is_linked_to_each() {
        let two = "SELECT x.id, x.v, y.v AS w FROM a x JOIN b y ON x.id = y.ref";
        assert_eq!(linked(two, "id", &["a", "b"]).await, columns(&["id", "ref"]));
        let chain = "SELECT y.ref AS k, z.v FROM a x JOIN b y ON x.id = y.ref JOIN c z ON z.ref = x.id";
        assert_eq!(
            linked(chain, "k", &["a", "b", "c"]).await,
            columns(&["id", "ref", "ref"])
        );
        let single = "SELECT id, v FROM a WHERE v > 0";
        assert_eq!(linked(single, "id", &["a"]).await, columns(&["id"]));
    }

    #[tokio::test]
    async fn a_key_some_input_is_not_joined_by_is_not() {
        let other_column = "SELECT x.id, y.v FROM a x JOIN b y ON x.ref = y.id";
        assert_eq!(linked(other_column, "id", &["a", "b"]).await, None);
        let computed = "SELECT x.id + 1 AS k, y.v FROM a x JOIN b y ON x.id = y.id";
        assert_eq!(linked(computed, "k", &["a", "b"]).await, None);
        let cross = "SELECT x.id, y.v FROM a x CROSS JOIN b y";
        assert_eq!(linked(cross, "id", &["a", "b"]).await, None);
    }
}
