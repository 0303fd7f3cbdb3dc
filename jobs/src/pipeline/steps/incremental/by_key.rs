//! One incremental computation: the rows an SPJ query gains from appended files, or the keys
//! (SPJ with `keys`) or groups (grouped) its inputs' changes touch, recomputed and merged with
//! the table's other rows.
//!
//! The touched keys are collected on the driver — as many as the batch touches, not the
//! history — and planned back as a `VALUES` relation, so the recompute and the merge do not
//! compute them again. When the first key is an integer, only the table's files whose
//! statistics may hold a touched key are read and replaced (a MERGE); otherwise all of them.

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col};
use tracing::info;

use super::Query;
use super::rewrite::{
    InputFiles, added_rows, affected_keys, group_exprs, key_values, only_affected_groups, unaffected_rows,
};
use super::shape::Shape;
use crate::delta::{DeltaScanTable, TableSnapshot};
use crate::error::Result;
use crate::pipeline::table_job::TableJob;
use crate::spec::Action;

/// The most touched keys planned as `VALUES` rows.
const MAX_VALUES: usize = 10_000;

/// What an incremental frame does to the table.
pub(super) enum Output {
    /// Its rows are appended.
    Appended,
    /// Its rows replace these files of the table (paths), of `of`.
    Replacing { files: Vec<String>, of: usize },
}

/// The frame and what it does to the table (`None`: nothing to write), or why the table must
/// be computed in full.
pub(super) type Planned = std::result::Result<Option<(DataFrame, Output)>, String>;

/// One incremental computation of a table.
pub(super) struct Incremental<'a> {
    pub(super) job: &'a TableJob<'a>,
    pub(super) plan: &'a LogicalPlan,
    pub(super) target: &'a TableSnapshot,
    pub(super) inputs: &'a [InputFiles],
}

impl Incremental<'_> {
    pub(super) async fn frame(&self, shape: &Shape, query: &Query<'_>) -> Result<Planned> {
        let err = |e| self.job.query_err("plan incremental rows", e);
        let appended_only = self.inputs.iter().all(|i| i.removed.is_empty());
        let keys = match shape {
            Shape::Spj { .. } if appended_only => {
                let rows = added_rows(self.plan, self.inputs).map_err(err)?;
                return Ok(Ok(rows.map(|plan| (self.data_frame(plan), Output::Appended))));
            }
            Shape::Spj { .. } => match self.declared_keys() {
                Ok(keys) => keys,
                Err(why) => return Ok(Err(why)),
            },
            Shape::Grouped { keys, .. } => keys.clone(),
        };
        if let Err(why) = self.keepable(query) {
            return Ok(Err(why));
        }
        let (key_exprs, over) = match shape {
            Shape::Spj { .. } => (keys.iter().map(|k| col(k.as_str())).collect(), self.plan.clone()),
            Shape::Grouped { .. } => group_exprs(self.plan).map_err(err)?,
        };
        let touched = affected_keys(&over, &key_exprs, self.inputs).map_err(err)?;
        let Some(touched) = touched else {
            return Ok(Ok(None));
        };
        let batches = self.data_frame(touched.clone()).collect().await.map_err(err)?;
        let count: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if count == 0 {
            return Ok(Ok(None));
        }
        // Past a size, the plan of the touched keys is run again rather than shipped as rows.
        let affected = match count <= MAX_VALUES {
            true => key_values(&batches).map_err(err)?,
            false => touched,
        };
        let scan = self.target.scan_table()?;
        let of = scan.files.len();
        let files = self.files_holding(scan, &keys[0], &batches)?;
        info!(table = %self.job.table.name, keys = count, files = files.files.len(), of, "recomputing the touched keys");
        let paths = files.files.iter().map(|f| f.path.clone()).collect();
        let plan = self.replaced(shape, &keys, &affected, files).map_err(err)?;
        let output = Output::Replacing { files: paths, of };
        Ok(Ok(Some((self.data_frame(plan), output))))
    }

    /// The table's `keys`, when they are all output columns.
    fn declared_keys(&self) -> std::result::Result<Vec<String>, String> {
        let table = &self.job.table;
        if table.keys.is_empty() {
            return Err("its inputs had rows removed or replaced and the table declares no `keys`".into());
        }
        let schema = self.plan.schema();
        match table
            .keys
            .iter()
            .find(|k| schema.field_with_unqualified_name(k).is_err())
        {
            Some(k) => Err(format!("key `{k}` is not an output column")),
            None => Ok(table.keys.clone()),
        }
    }

    /// Whether the table's other rows can be kept as they are stored.
    fn keepable(&self, query: &Query<'_>) -> std::result::Result<(), String> {
        if query.rules.iter().any(|r| r.action == Action::Drop) {
            return Err("its quarantined rows cannot be replaced by key (a `drop` expectation)".into());
        }
        let schema = self.plan.schema();
        match schema.fields().iter().find(|f| f.name().starts_with("__")) {
            Some(helper) => Err(format!("helper column `{}` is not stored to keep", helper.name())),
            None => Ok(()),
        }
    }

    /// Of the table's files (`scan`), those that may hold a touched key: by the statistics of
    /// the first key when it is an integer, else all of them.
    fn files_holding(
        &self,
        scan: DeltaScanTable,
        first_key: &str,
        touched: &[RecordBatch],
    ) -> Result<DeltaScanTable> {
        let integer = scan
            .schema
            .field_with_name(first_key)
            .is_ok_and(|f| f.data_type().is_integer());
        let Some(values) = integer.then(|| first_key_values(touched)).flatten() else {
            return Ok(scan);
        };
        let files = self.target.files_holding(first_key, &values)?;
        Ok(DeltaScanTable { files, ..scan })
    }

    /// The touched keys' rows recomputed, and the other rows of `files`.
    fn replaced(
        &self,
        shape: &Shape,
        keys: &[String],
        affected: &LogicalPlan,
        files: DeltaScanTable,
    ) -> DfResult<LogicalPlan> {
        let kept = unaffected_rows(files, keys, affected, self.plan)?;
        let recomputed = match shape {
            Shape::Spj { .. } => match added_rows(self.plan, self.inputs)? {
                Some(added) => added,
                None => return Ok(kept),
            },
            Shape::Grouped { .. } => only_affected_groups(self.plan.clone(), affected)?,
        };
        LogicalPlanBuilder::from(recomputed).union(kept)?.build()
    }

    fn data_frame(&self, plan: LogicalPlan) -> DataFrame {
        DataFrame::new(self.job.ctx.state(), plan)
    }
}

/// The first column's values as sorted `i64`s, if it is an integer column without NULLs.
fn first_key_values(batches: &[RecordBatch]) -> Option<Vec<i64>> {
    let mut values = vec![];
    for batch in batches {
        let column = cast(batch.column(0), &DataType::Int64).ok()?;
        let ints = column.as_any().downcast_ref::<Int64Array>()?;
        // A NULL key's rows may be in any file: the statistics' ranges do not tell.
        if ints.null_count() > 0 {
            return None;
        }
        values.extend(ints.iter().flatten());
    }
    values.sort_unstable();
    Some(values)
}
