//! How each check of a `checks` table is counted this run: over whole tables, over what
//! changed in its tables since the versions the table recorded, or not at all when they did
//! not change.
//!
//! Counting over the changes gives the whole-table count only when the check had no violation
//! at those versions (see [`super::query`]); the table's own rows say what each check counted
//! then. A check whose table was rewritten in full is counted over the whole tables: its
//! changes would be all of it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::catalog::TableProvider;
use datafusion::common::JoinType;
use datafusion::logical_expr::utils::conjunction;

use super::query::{Form, Lookup, Relations};
use crate::dag::companion_of;
use crate::delta::{DeltaFile, DeltaScanTable, KeyValues, TableSnapshot};
use crate::error::Result;
use crate::pipeline::outcome::{Refresh, RefreshKind};
use crate::pipeline::steps::incremental::{InputFiles, Versions};
use crate::pipeline::steps::unchanged::scanned_tables;
use crate::pipeline::table_job::{TableJob, Watermark};
use crate::spec::{CHANGES_SUFFIX, CheckSpec, CheckTest};

/// A relation a `Changes` form names: rows of some files of an input.
pub(super) type Relation = (String, Arc<dyn TableProvider>);

/// The checks' forms, the relations their changes are read from, and what the commit records.
pub(super) struct Scope {
    /// One per check, in order.
    pub(super) forms: Vec<Form>,
    /// Relations the `Changes` forms name: rows of some files of an input.
    pub(super) relations: Vec<Relation>,
    /// Each input's version read now.
    pub(super) watermarks: Vec<Watermark>,
    /// For the event log: how much was counted over changes, and the versions covered.
    pub(super) refresh: Refresh,
}

impl Scope {
    /// How `checks` are counted, given the table as it is (`target`).
    pub(super) async fn decide(
        job: &TableJob<'_>,
        checks: &[CheckSpec],
        target: Option<&TableSnapshot>,
    ) -> Result<Scope> {
        let tables = check_tables(job, checks).await;
        let snapshots = input_snapshots(job, &tables).await?;
        // The checks' definitions stand for a query's text: an edited check is counted in full.
        let definition = job.substituted(&format!("{checks:?}"));
        let mut versions = Versions::new(job, &definition, &snapshots);
        let target = match target {
            Some(target) if !job.full_refresh => target,
            _ => {
                let why = if job.full_refresh {
                    "--full-refresh"
                } else {
                    "first run"
                };
                return Ok(Self::full(checks, &versions, why.into()));
            }
        };
        let inputs = match versions.changes(job, target, &snapshots).await? {
            Ok(inputs) => inputs,
            Err(why) => return Ok(Self::full(checks, &versions, why)),
        };
        let previous = previous_counts(job, target).await?;
        Self::over_changes(job, (checks, &tables), &versions, &inputs, &previous).await
    }

    /// Whether no check's tables changed: every check is its last count.
    pub(super) fn unchanged(&self) -> bool {
        self.forms.iter().all(|f| matches!(f, Form::Unchanged(_)))
    }

    /// Each check counted over its tables' changes (`inputs`) where that gives its count over
    /// whole tables; `previous`: each check's last count.
    async fn over_changes(
        job: &TableJob<'_>,
        (checks, tables): (&[CheckSpec], &[Option<Vec<String>>]),
        versions: &Versions,
        inputs: &[InputFiles],
        previous: &HashMap<String, i64>,
    ) -> Result<Scope> {
        let mut scope = Scope {
            forms: vec![],
            relations: vec![],
            watermarks: versions.watermarks(),
            refresh: Refresh {
                kind: RefreshKind::ByKey,
                detail: String::new(),
                inputs: versions.read.clone(),
            },
        };
        let inputs: HashMap<&str, &InputFiles> = inputs.iter().map(|i| (i.name.as_str(), i)).collect();
        let candidates: Vec<Candidate> = checks
            .iter()
            .zip(tables)
            .map(|(check, read)| {
                let previous = previous.get(&check.name).copied();
                candidate(job, (check, read.as_deref()), &inputs, previous)
            })
            .collect();
        let resolved = futures::future::try_join_all(candidates.iter().map(|c| c.resolve(job))).await?;
        for (i, (candidate, resolved)) in candidates.into_iter().zip(resolved).enumerate() {
            let form = match (candidate, resolved) {
                (Candidate::Decided(form), _) => form,
                (Candidate::Changes(reads), Resolved::Pruned(pruned)) => {
                    scope.changes(job, i, &reads, pruned)
                }
                (Candidate::Added(reads), Resolved::Added) => Form::Added {
                    added: scope.relation(job, reads.table, "added", reads.table.added.clone()),
                },
                (Candidate::Changes(_) | Candidate::Added(_), _) => Form::Full,
            };
            scope.forms.push(form);
        }
        scope.refresh.detail = scope.summary();
        if scope.forms.iter().all(|f| *f == Form::Full) {
            scope.refresh.kind = RefreshKind::Full;
        }
        Ok(scope)
    }

    fn full(checks: &[CheckSpec], versions: &Versions, why: String) -> Scope {
        Scope {
            forms: vec![Form::Full; checks.len()],
            relations: vec![],
            watermarks: versions.watermarks(),
            refresh: Refresh {
                kind: RefreshKind::Full,
                detail: why,
                inputs: versions.read.clone(),
            },
        }
    }

    /// Check `i` counted over its changes: the relations registered.
    fn changes(&mut self, job: &TableJob<'_>, i: usize, reads: &Reads<'_>, pruned: Pruned) -> Form {
        let added = self.relation(job, reads.table, "added", reads.table.added.clone());
        let table = self.relation(job, reads.table, &format!("c{i}"), pruned.table);
        let lookup = match (reads.to, pruned.to) {
            (Some(to), Some(files)) => Some(Lookup {
                removed: self.relation(job, to, "removed", to.removed.clone()),
                to: self.relation(job, to, &format!("c{i}"), files),
            }),
            _ => None,
        };
        Form::Changes(Relations { added, table, lookup })
    }

    /// Registers (once) the rows of `files` of `input` under a name of this table's.
    fn relation(
        &mut self,
        job: &TableJob<'_>,
        input: &InputFiles,
        which: &str,
        files: Vec<DeltaFile>,
    ) -> String {
        let name = format!("__{}__{}__{which}", job.table.name, input.name);
        if !self.relations.iter().any(|(n, _)| *n == name) {
            let scan = DeltaScanTable {
                files,
                ..input.current.clone()
            };
            self.relations.push((name.clone(), Arc::new(scan)));
        }
        name
    }

    /// `3 of 17 checks over their tables' changes, 2 over unchanged tables`.
    fn summary(&self) -> String {
        let of = self.forms.len();
        let changes = self
            .forms
            .iter()
            .filter(|f| matches!(f, Form::Changes(_) | Form::Added { .. }))
            .count();
        let unchanged = self
            .forms
            .iter()
            .filter(|f| matches!(f, Form::Unchanged(_)))
            .count();
        format!("{changes} of {of} checks over their tables' changes, {unchanged} over unchanged tables")
    }
}

/// A check before the files its changes' values may be in are known.
enum Candidate<'a> {
    /// Counted in full or not at all.
    Decided(Form),
    /// Counted over its changes if few enough files may hold their values.
    Changes(Reads<'a>),
    /// A `relationship` counted over the rows added to its table if its `to` lost no value.
    Added(Reads<'a>),
}

/// What a candidate's changes showed.
enum Resolved {
    /// Not counted over its changes.
    Full,
    /// The files its changes' values may be in.
    Pruned(Pruned),
    /// Its `to` lost no value: counted over its table's added rows.
    Added,
}

/// What a check counted over its changes reads: its table's and `to`'s changes and files.
struct Reads<'a> {
    table: &'a InputFiles,
    to: Option<&'a InputFiles>,
    /// Its columns; `Changes` tables are clustered by the first.
    columns: Vec<String>,
    /// A `relationship`: NULL values are not looked up.
    skip_nulls: bool,
}

/// The files of the check's tables that may hold its changes' values.
struct Pruned {
    table: Vec<DeltaFile>,
    to: Option<Vec<DeltaFile>>,
}

/// How `check` is counted, before its changes' values are known; `tables`: what it reads
/// (`None`: unknown, a query calling a function that is not immutable); `previous`: its last
/// count.
fn candidate<'a>(
    job: &TableJob<'_>,
    (check, tables): (&CheckSpec, Option<&[String]>),
    inputs: &HashMap<&str, &'a InputFiles>,
    previous: Option<i64>,
) -> Candidate<'a> {
    let full = Candidate::Decided(Form::Full);
    let read: Option<Vec<&InputFiles>> =
        tables.and_then(|tables| tables.iter().map(|t| inputs.get(t.as_str()).copied()).collect());
    let (Some(read), Some(previous)) = (read, previous) else {
        return full;
    };
    if !read.iter().any(|i| i.changed()) {
        return Candidate::Decided(Form::Unchanged(previous));
    }
    let (columns, skip_nulls) = match &check.test {
        CheckTest::Unique { columns, .. } => (columns, false),
        CheckTest::Relationship { columns, .. } => (columns, true),
        CheckTest::Sql(_) => return full,
    };
    let column = &columns[0];
    // Only files clustered by the first column can be told apart by its statistics.
    let clustered = read
        .iter()
        .all(|i| clustered_by(job, &i.name) == Some(column.as_str()));
    if previous != 0 || read[0].rewritten_in_full() {
        return full;
    }
    let reads = Reads {
        table: read[0],
        to: read.get(1).copied(),
        columns: columns.clone(),
        skip_nulls,
    };
    match (clustered, read.iter().any(|i| i.rewritten_in_full()), &reads.to) {
        (true, false, _) => Candidate::Changes(reads),
        (_, _, Some(_)) if skip_nulls => Candidate::Added(reads),
        _ => full,
    }
}

impl Candidate<'_> {
    /// What decides how the check is counted, found from its changes.
    async fn resolve(&self, job: &TableJob<'_>) -> Result<Resolved> {
        Ok(match self {
            Candidate::Decided(_) => Resolved::Full,
            Candidate::Changes(reads) => reads.pruned(job).await?.map_or(Resolved::Full, Resolved::Pruned),
            Candidate::Added(reads) => match reads.to_lost_none(job).await? {
                true => Resolved::Added,
                false => Resolved::Full,
            },
        })
    }
}

impl Reads<'_> {
    /// For a check counted over its changes, the files its values may be in when that is at
    /// most half of each table's (`None`: count it in full).
    async fn pruned(&self, job: &TableJob<'_>) -> Result<Option<Pruned>> {
        let mut changed = vec![self.values_of(job, self.table, &self.table.added)];
        if let Some(to) = self.to {
            changed.push(self.values_of(job, to, &to.removed));
        }
        let columns: Vec<ArrayRef> = futures::future::try_join_all(changed).await?.concat();
        let Some(values) = KeyValues::collect(&columns) else {
            return Ok(None);
        };
        let within_half = |input: &InputFiles| -> Result<Option<Vec<DeltaFile>>> {
            let files = input.snapshot.files_holding(&self.columns[0], &values)?;
            Ok((files.len() * 2 <= input.current.files.len()).then_some(files))
        };
        let Some(table) = within_half(self.table)? else {
            return Ok(None);
        };
        let to = match self.to {
            Some(to) => match within_half(to)? {
                Some(files) => Some(files),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(Pruned { table, to }))
    }

    /// Whether every value of the relationship's columns that the rows removed from `to` held
    /// is still held by a row of `to`.
    async fn to_lost_none(&self, job: &TableJob<'_>) -> Result<bool> {
        let Some(to) = self.to.filter(|to| !to.removed.is_empty()) else {
            return Ok(true);
        };
        let err = |e| job.query_err("look up the values removed from a relationship's table", e);
        let columns: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        let rows = |files: Vec<DeltaFile>| -> datafusion::error::Result<_> {
            let scan = DeltaScanTable {
                files,
                ..to.current.clone()
            };
            let present = self
                .columns
                .iter()
                .map(|c| datafusion::prelude::ident(c).is_not_null());
            let frame = job.ctx.read_table(Arc::new(scan))?;
            let frame = match conjunction(present) {
                Some(present) => frame.filter(present)?,
                None => frame,
            };
            frame.select_columns(&columns)
        };
        let lost = rows(to.removed.clone())
            .and_then(|removed| removed.distinct())
            .and_then(|removed| {
                let now = rows(to.current.files.clone())?;
                removed.join(now, JoinType::LeftAnti, &columns, &columns, None)
            })
            .map_err(err)?;
        Ok(lost.count().await.map_err(err)? == 0)
    }

    /// The distinct values of the first column in `files` of `input`.
    async fn values_of(
        &self,
        job: &TableJob<'_>,
        input: &InputFiles,
        files: &[DeltaFile],
    ) -> Result<Vec<ArrayRef>> {
        let err = |e| job.query_err("collect the checks' changed values", e);
        let scan = DeltaScanTable {
            files: files.to_vec(),
            ..input.current.clone()
        };
        let mut frame = job.ctx.read_table(Arc::new(scan)).map_err(err)?;
        let column = datafusion::prelude::ident(&self.columns[0]);
        if self.skip_nulls {
            frame = frame.filter(column.clone().is_not_null()).map_err(err)?;
        }
        let batches = frame
            .select(vec![column])
            .and_then(|f| f.distinct())
            .map_err(err)?;
        let batches = batches.collect().await.map_err(err)?;
        Ok(batches.iter().map(|b| Arc::clone(b.column(0))).collect())
    }
}

/// The first column the table (or the table whose change log it is) is clustered by.
fn clustered_by<'p>(job: &TableJob<'p>, name: &str) -> Option<&'p str> {
    let table = match job.pipeline.table(name) {
        Some(table) => table,
        None => {
            let base = companion_of(job.pipeline, name)?;
            if &name[base.len()..] != CHANGES_SUFFIX {
                return None;
            }
            job.pipeline.table(base)?
        }
    };
    table.cluster.as_ref()?.by.first().map(String::as_str)
}

/// Per check, the tables it reads: those a `unique` or `relationship` check names, those an
/// `sql` check's query scans — `None` when the query calls a function that is not immutable,
/// reads no table or does not plan (it is counted in full, and fails there if it is wrong).
async fn check_tables(job: &TableJob<'_>, checks: &[CheckSpec]) -> Vec<Option<Vec<String>>> {
    let mut tables = vec![];
    for check in checks {
        let read = match &check.test {
            CheckTest::Sql(sql) => match job.ctx.sql(&job.substituted(sql)).await {
                Ok(frame) => scanned_tables(frame.logical_plan())
                    .filter(|t| !t.is_empty())
                    .map(|t| t.into_iter().collect()),
                Err(_) => None,
            },
            test => Some(test.tables().iter().map(|t| t.to_string()).collect()),
        };
        tables.push(read);
    }
    tables
}

/// The snapshots of the tables the checks read (`tables`, from [`check_tables`]); a table
/// never committed is left out (its checks are counted in full).
async fn input_snapshots(
    job: &TableJob<'_>,
    tables: &[Option<Vec<String>>],
) -> Result<Vec<(String, TableSnapshot)>> {
    let names: BTreeSet<&str> = tables.iter().flatten().flatten().map(String::as_str).collect();
    let mut snapshots = vec![];
    for name in names {
        let Some(url) = job.table_url_of(name) else {
            continue;
        };
        if let Some(snapshot) = TableSnapshot::load(&url).await? {
            snapshots.push((name.to_string(), snapshot));
        }
    }
    Ok(snapshots)
}

/// What each check counted at the table's current version, by check name.
async fn previous_counts(job: &TableJob<'_>, target: &TableSnapshot) -> Result<HashMap<String, i64>> {
    let err = |e| job.query_err("read the last counts", e);
    let frame = job.ctx.read_table(Arc::new(target.scan_table()?)).map_err(err)?;
    let frame = frame.select_columns(&["check_name", "violations"]).map_err(err)?;
    let batches = frame.collect().await.map_err(err)?;
    let mut counts = HashMap::new();
    for batch in &batches {
        counts.extend(named_counts(batch).map_err(err)?);
    }
    Ok(counts)
}

fn named_counts(batch: &RecordBatch) -> datafusion::error::Result<Vec<(String, i64)>> {
    let names = cast(batch.column(0), &DataType::Utf8)?;
    let counts = cast(batch.column(1), &DataType::Int64)?;
    let (names, counts) = (names.as_string::<i32>(), counts.as_primitive::<Int64Type>());
    Ok((0..batch.num_rows())
        .filter(|&i| names.is_valid(i) && counts.is_valid(i))
        .map(|i| (names.value(i).to_string(), counts.value(i)))
        .collect())
}
