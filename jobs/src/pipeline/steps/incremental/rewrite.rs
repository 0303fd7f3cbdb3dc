//! Plans built from a table's query for an incremental run: the query over chosen files of
//! its inputs, the keys its inputs' changes touch, and the groups or rows to keep.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    Aggregate, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Operator, binary_expr, cast, col,
};

use super::logged::Logged;
use super::partners::Partners;
use super::shipped::ShippedKeys;
use crate::delta::{DeltaFile, DeltaScanTable, TableSnapshot};

/// The affected keys' relation: one column per key, `__k0`, `__k1`, …
const AFFECTED: &str = "__affected";

/// One input of an incremental table: its files now, and the files added and removed since
/// the version the table last recorded (net: a file added and removed since is in neither).
///
/// A merge rewrites whole files, most of whose rows it keeps. When the input's rows are
/// unique (it declares `keys`), a row both in a removed file and in an added one is unchanged:
/// its changes are then the rows of the added files not in a removed one, and the other way
/// round — the rows the merge changed, not the files it touched.
#[derive(Debug, Clone)]
pub(crate) struct InputFiles {
    /// The input's name in the query.
    pub(crate) name: String,
    /// Its files now.
    pub(crate) current: DeltaScanTable,
    /// Files added since.
    pub(crate) added: Vec<DeltaFile>,
    /// Files removed since (their rows are the removed or replaced ones).
    pub(crate) removed: Vec<DeltaFile>,
    /// The input as it is, for its files' statistics.
    pub(crate) snapshot: TableSnapshot,
    /// Its rows are unique: its changes are diffed row by row.
    pub(crate) unique_rows: bool,
    /// The version of it the table last read (the changes are since then).
    pub(crate) since: i64,
}

impl InputFiles {
    /// Whether anything was added or removed.
    pub(crate) fn changed(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }

    /// Whether files were removed and none of the files it has now is older than the change.
    pub(crate) fn rewritten_in_full(&self) -> bool {
        let added = self.added_paths();
        !self.removed.is_empty() && self.current.files.iter().all(|f| added.contains(f.path.as_str()))
    }

    /// Whether its changes are found row by row (files were rewritten, its rows are unique).
    pub(super) fn diffed(&self) -> bool {
        self.unique_rows && !self.added.is_empty() && !self.removed.is_empty()
    }

    /// The same input with its changes taken file by file: every row of its added and
    /// removed files, a superset of the rows that changed.
    pub(super) fn undiffed(&self) -> InputFiles {
        InputFiles {
            unique_rows: false,
            ..self.clone()
        }
    }

    fn added_paths(&self) -> HashSet<&str> {
        self.added.iter().map(|f| f.path.as_str()).collect()
    }

    pub(super) fn scan(&self, files: Vec<DeltaFile>) -> Arc<dyn TableProvider> {
        Arc::new(DeltaScanTable {
            files,
            ..self.current.clone()
        })
    }

    fn files(&self, files: Vec<DeltaFile>) -> Result<LogicalPlan> {
        LogicalPlanBuilder::scan(self.name.as_str(), provider_as_source(self.scan(files)), None)?.build()
    }

    /// Rows of the added files not in a removed one (`removed: false`), or the other way round.
    fn net(&self, removed: bool) -> Result<LogicalPlan> {
        let (added, gone) = (self.files(self.added.clone())?, self.files(self.removed.clone())?);
        match removed {
            false => LogicalPlanBuilder::except(added, gone, true),
            true => LogicalPlanBuilder::except(gone, added, true),
        }
    }

    fn view(plan: LogicalPlan) -> Arc<dyn TableProvider> {
        Arc::new(ViewTable::new(plan, None))
    }

    /// The rows added.
    fn added(&self) -> Result<Arc<dyn TableProvider>> {
        if !self.diffed() {
            return Ok(self.scan(self.added.clone()));
        }
        Ok(Self::view(self.net(false)?))
    }

    /// The rows added and removed.
    pub(crate) fn changed_rows(&self) -> Result<Arc<dyn TableProvider>> {
        if !self.diffed() {
            return Ok(self.scan([self.added.clone(), self.removed.clone()].concat()));
        }
        let both = LogicalPlanBuilder::from(self.net(false)?).union(self.net(true)?)?;
        Ok(Self::view(both.build()?))
    }

    /// Its files now, or those of them in `within`.
    fn current_files(&self, within: Option<&HashSet<String>>) -> Vec<DeltaFile> {
        let kept = |f: &&DeltaFile| within.is_none_or(|w| w.contains(&f.path));
        self.current.files.iter().filter(kept).cloned().collect()
    }

    /// The rows it has now (of the files in `within`), and the rows removed.
    fn current_and_removed(&self, within: Option<&HashSet<String>>) -> Result<Arc<dyn TableProvider>> {
        if !self.diffed() {
            return Ok(self.scan([self.current_files(within), self.removed.clone()].concat()));
        }
        let current = self.files(self.current_files(within))?;
        let both = LogicalPlanBuilder::from(current).union(self.net(true)?)?;
        Ok(Self::view(both.build()?))
    }

    /// The rows it had before the rows added: its files but the added ones (of those in
    /// `within`), and the rows of the added files that were there before.
    fn current_but_added(&self, within: Option<&HashSet<String>>) -> Result<Arc<dyn TableProvider>> {
        let added = self.added_paths();
        let older: Vec<DeltaFile> = self
            .current_files(within)
            .into_iter()
            .filter(|f| !added.contains(f.path.as_str()))
            .collect();
        if !self.diffed() {
            return Ok(self.scan(older));
        }
        let older = self.files(older)?;
        let kept = LogicalPlanBuilder::intersect(
            self.files(self.added.clone())?,
            self.files(self.removed.clone())?,
            true,
        )?;
        Ok(Self::view(LogicalPlanBuilder::from(older).union(kept)?.build()?))
    }
}

/// `plan` with each scan of a table in `scans` reading that provider instead.
pub(crate) fn with_scans(
    plan: LogicalPlan,
    scans: &HashMap<&str, Arc<dyn TableProvider>>,
) -> Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::TableScan(scan) if scans.contains_key(scan.table_name.table()) => {
            let provider = Arc::clone(&scans[scan.table_name.table()]);
            // Inlines a view's plan (aliased as the table), as planning a query does.
            let replaced = LogicalPlanBuilder::scan_with_filters_fetch(
                scan.table_name,
                provider_as_source(provider),
                scan.projection,
                scan.filters,
                scan.fetch,
            )?;
            Ok(Transformed::yes(replaced.build()?))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// The rows an SPJ `plan` gains from its inputs' added files: for each input with added
/// files, the plan over those files joined with the inputs before it as they were (their
/// current files but the added ones) and the inputs after it as they are. Each new row is in
/// exactly one term. Each term reads of the other inputs only the files `partners` leaves.
pub(crate) fn added_rows(
    plan: &LogicalPlan,
    inputs: &[InputFiles],
    partners: &Partners,
) -> Result<Option<LogicalPlan>> {
    let mut terms = vec![];
    for (i, input) in inputs
        .iter()
        .enumerate()
        .filter(|(_, input)| !input.added.is_empty())
    {
        let scans = inputs
            .iter()
            .enumerate()
            .map(|(j, other)| {
                let within = partners.within(i, j);
                let provider = match j.cmp(&i) {
                    std::cmp::Ordering::Less => other.current_but_added(within)?,
                    std::cmp::Ordering::Equal => input.added()?,
                    std::cmp::Ordering::Greater => other.scan(other.current_files(within)),
                };
                Ok((other.name.as_str(), provider))
            })
            .collect::<Result<_>>()?;
        terms.push(with_scans(plan.clone(), &scans)?);
    }
    union_all(terms)
}

/// The distinct values of `keys` (expressions over `plan`'s output) of every row `plan` gained
/// or lost through its inputs' changes, as columns `__k0`, `__k1`, … of relation `__affected`.
/// For each changed input: the plan over its added and removed files joined with the other
/// inputs' current and removed files — a superset of the rows gained or lost — of the files
/// `partners` leaves.
pub(crate) fn affected_keys(
    plan: &LogicalPlan,
    keys: &[Expr],
    inputs: &[InputFiles],
    partners: &Partners,
) -> Result<Option<LogicalPlan>> {
    let mut terms = vec![];
    for (i, input) in inputs.iter().enumerate().filter(|(_, input)| input.changed()) {
        let scans = inputs
            .iter()
            .enumerate()
            .map(|(j, other)| {
                let provider = if i == j {
                    input.changed_rows()?
                } else {
                    other.current_and_removed(partners.within(i, j))?
                };
                Ok((other.name.as_str(), provider))
            })
            .collect::<Result<_>>()?;
        let projected = keys
            .iter()
            .enumerate()
            .map(|(n, k)| k.clone().alias(key_column(n)));
        terms.push(
            LogicalPlanBuilder::from(with_scans(plan.clone(), &scans)?)
                .project(projected)?
                .build()?,
        );
    }
    affected_relation(terms)
}

/// The distinct values of `plan`'s output columns `keys`, as relation `__affected`.
pub(crate) fn keys_of(plan: &LogicalPlan, keys: &[String]) -> Result<LogicalPlan> {
    let projected = keys
        .iter()
        .enumerate()
        .map(|(n, k)| col(Column::from_name(k)).alias(key_column(n)));
    LogicalPlanBuilder::from(plan.clone())
        .project(projected)?
        .distinct()?
        .alias(AFFECTED)?
        .build()
}

/// The touched keys collected in `batches` (columns `__k0`, `__k1`, …) as relation
/// `__affected`, shipped with the plan ([`ShippedKeys`]); `None` when they are too many.
pub(crate) fn key_values(batches: &[RecordBatch]) -> Result<Option<LogicalPlan>> {
    let Some(keys) = ShippedKeys::within_limit(batches, key_column)? else {
        return Ok(None);
    };
    LogicalPlanBuilder::scan(AFFECTED, provider_as_source(Arc::new(keys)), None)?
        .build()
        .map(Some)
}

/// The distinct values of `input`'s `column` over its changed rows — or over the change-log
/// rows in `logged`, whose key `column` is — as `key_type`, in column `__k0` (the touched first
/// keys of [`super::linked`], the join values of [`super::partners`]).
pub(crate) fn changed_values_plan(
    input: &InputFiles,
    column: &str,
    key_type: &DataType,
    logged: Option<&Logged>,
) -> Result<LogicalPlan> {
    let value = cast(Expr::Column(Column::from_name(column)), key_type.clone()).alias(key_column(0));
    let changed = match logged {
        Some(logged) => Arc::new(logged.files.clone()) as Arc<dyn TableProvider>,
        None => input.changed_rows()?,
    };
    LogicalPlanBuilder::scan(input.name.as_str(), provider_as_source(changed), None)?
        .project(vec![value])?
        .distinct()?
        .build()
}

/// The distinct rows of `plans` (columns `__k0`, `__k1`, …) as relation `__affected`, or
/// `None` for no plan.
pub(crate) fn affected_relation(plans: Vec<LogicalPlan>) -> Result<Option<LogicalPlan>> {
    let Some(union) = union_all(plans)? else {
        return Ok(None);
    };
    LogicalPlanBuilder::from(union)
        .distinct()?
        .alias(AFFECTED)?
        .build()
        .map(Some)
}

/// `plan`'s rows whose output column `key` is in `affected` (its `__k0`).
pub(crate) fn only_affected_rows(
    plan: LogicalPlan,
    key: &Column,
    affected: &LogicalPlan,
) -> Result<LogicalPlan> {
    LogicalPlanBuilder::from(plan)
        .join_on(
            affected.clone(),
            JoinType::LeftSemi,
            keys_match(&[Expr::Column(key.clone())]),
        )?
        .build()
}

/// `plan` (grouped) with its aggregate reading only the rows of the groups in `affected`.
pub(crate) fn only_affected_groups(plan: LogicalPlan, affected: &LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::Aggregate(aggregate) => {
            let on = keys_match(&aggregate.group_expr);
            let input = LogicalPlanBuilder::from(Arc::unwrap_or_clone(aggregate.input))
                .join_on(affected.clone(), JoinType::LeftSemi, on)?
                .build()?;
            let restricted = Aggregate::try_new(Arc::new(input), aggregate.group_expr, aggregate.aggr_expr)?;
            Ok(Transformed::yes(LogicalPlan::Aggregate(restricted)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// The target's rows whose `keys` (output columns) are not in `affected`, as `like`'s columns.
pub(crate) fn unaffected_rows(
    target: DeltaScanTable,
    keys: &[String],
    affected: &LogicalPlan,
    like: &LogicalPlan,
) -> Result<LogicalPlan> {
    const TARGET: &str = "__target";
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(Column::new(Some(TARGET), k))).collect();
    let schema = like.schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let column = col(Column::new(Some(TARGET), f.name()));
            Ok(cast(column, f.data_type().clone()).alias(f.name()))
        })
        .collect::<Result<Vec<Expr>>>()?;
    LogicalPlanBuilder::scan(TARGET, provider_as_source(Arc::new(target)), None)?
        .join_on(affected.clone(), JoinType::LeftAnti, keys_match(&key_exprs))?
        .project(columns)?
        .build()
}

/// The group expressions of the aggregate at the end of `plan`'s chain of one-input nodes.
pub(crate) fn group_exprs(plan: &LogicalPlan) -> Result<(Vec<Expr>, LogicalPlan)> {
    let mut node = plan;
    loop {
        if let LogicalPlan::Aggregate(aggregate) = node {
            return Ok((aggregate.group_expr.clone(), aggregate.input.as_ref().clone()));
        }
        match node.inputs().as_slice() {
            [one] => node = one,
            _ => return Err(DataFusionError::Internal("no aggregate in a grouped plan".into())),
        }
    }
}

/// `left.union(right)` of every plan, or `None` for none.
fn union_all(plans: Vec<LogicalPlan>) -> Result<Option<LogicalPlan>> {
    let mut plans = plans.into_iter();
    let Some(first) = plans.next() else {
        return Ok(None);
    };
    plans
        .try_fold(LogicalPlanBuilder::from(first), |builder, plan| {
            builder.union(plan)
        })?
        .build()
        .map(Some)
}

/// `key_i IS NOT DISTINCT FROM __affected.__k<i>`: NULL keys match NULL keys, as GROUP BY has it.
fn keys_match(keys: &[Expr]) -> Vec<Expr> {
    keys.iter()
        .enumerate()
        .map(|(n, k)| {
            let affected = col(Column::new(Some(AFFECTED), key_column(n)));
            binary_expr(k.clone(), Operator::IsNotDistinctFrom, affected)
        })
        .collect()
}

fn key_column(n: usize) -> String {
    format!("__k{n}")
}
