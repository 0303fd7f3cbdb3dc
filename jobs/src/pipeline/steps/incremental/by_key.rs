//! One incremental computation: the rows an SPJ query gains from appended files, or the keys
//! (SPJ with `keys`) or groups (grouped) its inputs' changes touch, recomputed and merged with
//! the table's other rows.
//!
//! The touched keys are collected on the driver — as many as the batch touches, not the
//! history — and shipped back with the plan ([`super::shipped`]), so the recompute and the
//! merge do not compute them again. When the first key is an integer, a string or a date, only the
//! table's files whose statistics may hold a touched key are read and replaced (a MERGE);
//! otherwise all of them. A group's recompute reads only the input files that may hold one
//! too ([`super::prune`]); when its one input only gained rows and its aggregates allow, the
//! group is not recomputed but its stored values combined with the new rows' ([`super::combine`]).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col};
use tracing::info;

use super::Query;
use super::combine::{self, OutputColumn, combinable};
use super::partners::Partners;
use super::prune::first_key_source;
use super::rewrite::{
    InputFiles, added_rows, affected_keys, group_exprs, key_values, keys_of, only_affected_groups,
    unaffected_rows, with_scans,
};
use super::shape::Shape;
use crate::delta::{DeltaScanTable, KeyValues, TableSnapshot};
use crate::error::Result;
use crate::pipeline::table_job::TableJob;
use crate::spec::Action;

/// The most groups a grouped table recomputes from every row of its changed files (a
/// superset of the groups that changed) rather than from a row diff, wherever they are.
const MAX_COARSE_GROUPS: usize = 10_000;

/// The most such groups recomputed when they are confined: held by at most half the files
/// of the input their first key comes from.
const MAX_CONFINED_GROUPS: usize = 200_000;

/// What an incremental frame does to the table.
pub(super) enum Output {
    /// Its rows are appended.
    Appended,
    /// Its rows replace these files of the table (paths), of `of`; the recompute read only
    /// some files of each input in `read`.
    Replacing {
        files: Vec<String>,
        of: usize,
        read: Vec<InputRead>,
        how: Merged,
    },
}

/// How the touched keys' rows were computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merged {
    /// From all their input rows.
    Recomputed,
    /// Their stored aggregates combined with the new rows'.
    Combined,
}

/// The keys an incremental run touches, and the table's files that may hold them.
struct TouchedFiles {
    /// How many.
    keys: usize,
    /// Their relation (`__affected`: `__k0`, `__k1`, …), as rows or as the plan finding them.
    affected: LogicalPlan,
    /// The first key's touched values, when its type orders them.
    first: Option<KeyValues>,
    /// The table's files that may hold one.
    files: DeltaScanTable,
    /// The table's files.
    of: usize,
}

impl TouchedFiles {
    fn paths(&self) -> Vec<String> {
        self.files.files.iter().map(|f| f.path.clone()).collect()
    }
}

/// The input a group's recompute read only some files of.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputRead {
    /// Its name.
    pub(crate) input: String,
    /// The files read.
    pub(crate) files: usize,
    /// Its files.
    pub(crate) of: usize,
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
        let partners = || Partners::find(self.job.ctx, self.plan, self.inputs);
        let keys = match shape {
            Shape::Spj { .. } if appended_only => {
                let partners = partners().await.map_err(err)?;
                let rows = added_rows(self.plan, self.inputs, &partners).map_err(err)?;
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
        if let Shape::Spj { .. } = shape
            && let Some(planned) = self.linked(&keys).await?
        {
            return Ok(planned);
        }
        if let ([input], true) = (self.inputs, appended_only) {
            match combinable(shape, self.plan) {
                Ok(columns) => return self.combined(&keys, input, &columns).await,
                Err(why) => {
                    tracing::debug!(table = %self.job.table.name, %why, "groups recomputed, not combined")
                }
            }
        }
        let partners = partners().await.map_err(err)?;
        let (key_exprs, over) = match shape {
            Shape::Spj { .. } => (keys.iter().map(|k| col(k.as_str())).collect(), self.plan.clone()),
            Shape::Grouped { .. } => group_exprs(self.plan).map_err(err)?,
        };
        let touched = match shape {
            Shape::Spj { .. } => {
                let touched = affected_keys(&over, &key_exprs, self.inputs, &partners).map_err(err)?;
                self.touched_files(touched, &keys[0]).await?
            }
            Shape::Grouped { .. } => {
                self.touched_groups(&over, &key_exprs, &partners, &keys[0])
                    .await?
            }
        };
        let Some(touched) = touched else {
            return Ok(Ok(None));
        };
        let paths = touched.paths();
        let (plan, read) = self.replaced(shape, &keys, &touched, &partners)?;
        let output = Output::Replacing {
            files: paths,
            of: touched.of,
            read,
            how: Merged::Recomputed,
        };
        Ok(Ok(Some((self.data_frame(plan), output))))
    }

    /// The touched groups of a grouped query over one input that only gained rows: each
    /// one's stored aggregates combined with the new rows' ([`super::combine`]).
    async fn combined(
        &self,
        keys: &[String],
        input: &InputFiles,
        columns: &[OutputColumn],
    ) -> Result<Planned> {
        let err = |e| self.job.query_err("plan incremental rows", e);
        // Aggregated twice — for the touched keys, then to combine — each time from the
        // batch's files alone.
        let partial = combine::partial(self.plan, input).map_err(err)?;
        let touched = keys_of(&partial, keys).map_err(err)?;
        let Some(touched) = self.touched_files(Some(touched), &keys[0]).await? else {
            return Ok(Ok(None));
        };
        let paths = touched.paths();
        let kept = unaffected_rows(touched.files.clone(), keys, &touched.affected, self.plan).map_err(err)?;
        let plan = combine::combined(partial, touched.files, columns, self.plan)
            .and_then(|merged| LogicalPlanBuilder::from(merged).union(kept)?.build())
            .map_err(err)?;
        let output = Output::Replacing {
            files: paths,
            of: touched.of,
            read: vec![],
            how: Merged::Combined,
        };
        Ok(Ok(Some((self.data_frame(plan), output))))
    }

    /// The groups of `over` (the grouped query's input, grouped by `key_exprs`) its inputs'
    /// changes touch, and the table's files that may hold one. When an input's changes are
    /// diffed row by row, the groups of every row of its added and removed files are collected
    /// first — a superset, recomputing a group that did not change gives its stored row — and
    /// kept when there are at most [`MAX_COARSE_GROUPS`] of them, or at most
    /// [`MAX_CONFINED_GROUPS`] held by few of the input's files: then recomputing the groups an
    /// unchanged row of those files also holds costs less than the diff (a file of orders
    /// holds a day or two, a file of order lines clustered by order the lines of its orders).
    async fn touched_groups(
        &self,
        over: &LogicalPlan,
        key_exprs: &[datafusion::logical_expr::Expr],
        partners: &Partners,
        first_key: &str,
    ) -> Result<Option<TouchedFiles>> {
        let err = |e| self.job.query_err("plan incremental rows", e);
        if self.inputs.iter().any(InputFiles::diffed) {
            let whole: Vec<InputFiles> = self.inputs.iter().map(InputFiles::undiffed).collect();
            // The rows that changed are among these and meet their partners (found from them).
            // One more than the most kept is enough to know there are too many.
            let coarse = affected_keys(over, key_exprs, &whole, partners)
                .and_then(|plan| plan.map(|p| at_most(p, MAX_CONFINED_GROUPS + 1)).transpose())
                .map_err(err)?;
            match self.touched_files(coarse, first_key).await? {
                Some(touched) if touched.keys > MAX_COARSE_GROUPS && !self.confined(&touched)? => {
                    tracing::debug!(table = %self.job.table.name, keys = touched.keys, "too many groups in the changed files: diffing their rows");
                }
                found => return Ok(found),
            }
        }
        let touched = affected_keys(over, key_exprs, self.inputs, partners).map_err(err)?;
        self.touched_files(touched, first_key).await
    }

    /// Whether at most [`MAX_CONFINED_GROUPS`] groups are `touched`, held by at most half the
    /// files of the input their first key comes from.
    fn confined(&self, touched: &TouchedFiles) -> Result<bool> {
        if touched.keys > MAX_CONFINED_GROUPS {
            return Ok(false);
        }
        let (Some(source), Some(values)) = (first_key_source(self.plan), touched.first.as_ref()) else {
            return Ok(false);
        };
        let Some(input) = self.inputs.iter().find(|i| i.name == source.table) else {
            return Ok(false);
        };
        let files = input.snapshot.files_holding(&source.column, values)?;
        let of = input.current.files.len();
        tracing::debug!(table = %self.job.table.name, keys = touched.keys, files = files.len(), of, "the changed files' groups are held by");
        Ok(files.len() * 2 <= of)
    }

    /// The keys of `touched` (`None`: no input changed) collected, and the table's files that
    /// may hold one by the statistics of `first_key`; `None` when there are none.
    async fn touched_files(
        &self,
        touched: Option<LogicalPlan>,
        first_key: &str,
    ) -> Result<Option<TouchedFiles>> {
        let err = |e| self.job.query_err("plan incremental rows", e);
        let Some(touched) = touched else {
            return Ok(None);
        };
        let batches = self.data_frame(touched.clone()).collect().await.map_err(err)?;
        let count: usize = batches.iter().map(RecordBatch::num_rows).sum();
        tracing::debug!(table = %self.job.table.name, keys = count, "touched keys");
        if count == 0 {
            return Ok(None);
        }
        // Past a size, the plan of the touched keys is run again rather than shipped as rows.
        let affected = key_values(&batches).map_err(err)?.unwrap_or(touched);
        let columns: Vec<_> = batches.iter().map(|b| Arc::clone(b.column(0))).collect();
        let first = KeyValues::collect(&columns);
        let scan = self.target.scan_table()?;
        let of = scan.files.len();
        let files = self.files_holding(scan, first_key, first.as_ref())?;
        info!(table = %self.job.table.name, keys = count, files = files.files.len(), of, "the touched keys and the files that may hold them");
        Ok(Some(TouchedFiles {
            keys: count,
            affected,
            first,
            files,
            of,
        }))
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
    /// the first key when they order its type (`first`: its touched values), else all of them.
    pub(super) fn files_holding(
        &self,
        scan: DeltaScanTable,
        first_key: &str,
        first: Option<&KeyValues>,
    ) -> Result<DeltaScanTable> {
        let ordered = scan
            .schema
            .field_with_name(first_key)
            .is_ok_and(|f| KeyValues::supports(f.data_type()));
        let Some(values) = first.filter(|_| ordered) else {
            return Ok(scan);
        };
        let files = self.target.files_holding(first_key, values)?;
        Ok(DeltaScanTable { files, ..scan })
    }

    /// The touched keys' rows recomputed, and the other rows of the touched files.
    fn replaced(
        &self,
        shape: &Shape,
        keys: &[String],
        touched: &TouchedFiles,
        partners: &Partners,
    ) -> Result<(LogicalPlan, Vec<InputRead>)> {
        let err = |e| self.job.query_err("plan incremental rows", e);
        let affected = &touched.affected;
        let kept = unaffected_rows(touched.files.clone(), keys, affected, self.plan).map_err(err)?;
        let (recomputed, read) = match shape {
            Shape::Spj { .. } => match added_rows(self.plan, self.inputs, partners).map_err(err)? {
                Some(added) => (added, vec![]),
                None => return Ok((kept, vec![])),
            },
            Shape::Grouped { .. } => {
                let (plan, read) = self.reading_touched(touched.first.as_ref())?;
                (
                    only_affected_groups(plan, affected).map_err(err)?,
                    read.into_iter().collect(),
                )
            }
        };
        let plan = LogicalPlanBuilder::from(recomputed)
            .union(kept)
            .and_then(LogicalPlanBuilder::build)
            .map_err(err)?;
        Ok((plan, read))
    }

    /// The query, reading of the input its first group key comes from only the files whose
    /// statistics may hold one of `first`, the touched values of the first group key (see
    /// [`first_key_source`]).
    fn reading_touched(&self, first: Option<&KeyValues>) -> Result<(LogicalPlan, Option<InputRead>)> {
        let whole = || Ok((self.plan.clone(), None));
        let Some(source) = first_key_source(self.plan) else {
            return whole();
        };
        let Some(input) = self.inputs.iter().find(|i| i.name == source.table) else {
            return whole();
        };
        let Some(values) = first else {
            return whole();
        };
        let files = input.snapshot.files_holding(&source.column, values)?;
        let read = InputRead {
            input: input.name.clone(),
            files: files.len(),
            of: input.current.files.len(),
        };
        info!(table = %self.job.table.name, ?read, "reading the touched groups' input files");
        let scan: Arc<dyn TableProvider> = Arc::new(DeltaScanTable {
            files,
            ..input.current.clone()
        });
        let plan = with_scans(self.plan.clone(), &HashMap::from([(input.name.as_str(), scan)]))
            .map_err(|e| self.job.query_err("plan incremental rows", e))?;
        Ok((plan, Some(read)))
    }

    pub(super) fn data_frame(&self, plan: LogicalPlan) -> DataFrame {
        DataFrame::new(self.job.ctx.state(), plan)
    }
}

/// The first `n` rows of `plan`.
fn at_most(plan: LogicalPlan, n: usize) -> datafusion::error::Result<LogicalPlan> {
    LogicalPlanBuilder::from(plan).limit(0, Some(n))?.build()
}
