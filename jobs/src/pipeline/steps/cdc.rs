//! A CDC table: keyed changes read from another table since the version last read, checked
//! against the table's expectations, appended to `<table>__changes`, and applied to the keys
//! they touch as SCD type 1 rows or SCD type 2 histories ([`crate::cdc`]).
//!
//! Two watermarks make every step exactly once across crashes and new runs: the change log's
//! commits record the version of `from` it holds changes up to (so a run reads only the source
//! files appended after it), and the table's commits record the version of the change log it
//! has applied (so changes logged by a run that stopped before its table commit are applied by
//! the next run, not read again). If the source was rewritten (or on `--full-refresh`) the log,
//! its quarantine and the table are rebuilt from the whole source.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::lit;
use tracing::info;

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput, QuarantineCommit};
use crate::cdc::{
    BUCKET, ChangeColumns, DELETE, LatestWindow, SEQUENCE, bucket_sql, scd1_sql, scd2_sql, table_columns,
};
use crate::delta::{
    Clustering, CommitOutcome, DeltaFile, DeltaScanTable, KeyValues, OutputName, SinceVersion, TableSnapshot,
    WriteResult, WriteSpec, WriteTarget, normalize_schema,
};
use crate::error::Result;
use crate::layers::ident;
use crate::lineage::column_lineage;
use crate::pipeline::check::{Main, Outputs};
use crate::pipeline::outcome::{TableOutcome, TableStatus};
use crate::pipeline::table_job::{Rewrite, TableJob, discard};
use crate::quality::{QUARANTINE_SUFFIX, Rule, rules_for};
use crate::spec::{Action, CHANGES_SUFFIX, CdcSpec, Scd, WriteMode};

/// The checked change rows' output: the change log.
const CHANGES: &str = "changes";

/// A CDC table.
pub(crate) struct CdcStep<'a> {
    /// The table's `cdc` settings.
    pub(crate) spec: &'a CdcSpec,
    /// The table as it is, if it has been committed.
    pub(crate) target: Option<&'a TableSnapshot>,
    /// Rebuild from the whole source.
    pub(crate) full_refresh: bool,
}

/// The changes to read and how they apply.
pub(crate) struct CdcPlan {
    changes: CheckedWrite,
    columns: ChangeColumns,
    /// Source files were read (otherwise only changes logged earlier are applied).
    read_source: bool,
    /// The source version read up to.
    source_version: i64,
    /// The whole source was read: the change log is rebuilt.
    relog: bool,
    /// The change log version the table has applied; `None`: the table is rebuilt from the log.
    applied: Option<i64>,
}

/// What a run reads from the source and what it applies.
struct Reading {
    /// The source files to read: those appended since the log's watermark, or all.
    scan: DeltaScanTable,
    read_source: bool,
    relog: bool,
    applied: Option<i64>,
}

/// The table's new rows, written.
pub(crate) struct CdcWritten {
    table: WriteResult,
    spec: WriteSpec,
    schema: datafusion::arrow::datatypes::SchemaRef,
    /// The change log version applied.
    log_version: i64,
    /// New change files a resumed run found already in the log, deleted after the apply.
    duplicate_changes: Option<(WriteTarget, Vec<deltalake::kernel::Add>)>,
    /// The table's files the write replaces; `None`: all of them (a rebuild).
    rewritten: Option<Vec<String>>,
}

impl TableStep for CdcStep<'_> {
    type Plan = CdcPlan;
    type Written = CdcWritten;

    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<CdcPlan>> {
        let from = job
            .pipeline
            .table(&self.spec.from)
            .expect("the DAG checked `cdc.from`");
        let Some(source) = TableSnapshot::load(&job.lakehouse.table_url(from)).await? else {
            return Ok(None);
        };
        let Some(Reading {
            scan,
            read_source,
            relog,
            applied,
        }) = self.reading(job, &source).await?
        else {
            return Ok(None);
        };
        let frame = job
            .ctx
            .read_table(Arc::new(scan))
            .map_err(|e| job.query_err("read changes", e))?;
        let (changes, columns, _) = self.checked_changes(job, frame).await?;
        let quarantine = self.quarantine_commit(job, relog, source.version()).await?;
        let changes = changes.with_quarantine_commit(quarantine);
        Ok(Some(CdcPlan {
            changes,
            columns,
            read_source,
            source_version: source.version(),
            relog,
            applied,
        }))
    }

    /// Writes and commits the new changes to the log, then writes the table's rows for the keys
    /// that the changes logged since the table's last apply touch (and, unless rebuilding, the
    /// other keys' rows of the files they may be in, as they are).
    async fn write(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        outcome: &mut TableOutcome,
    ) -> Result<CdcWritten> {
        let duplicate_changes = match plan.read_source {
            true => self.log_changes(job, plan, outcome).await?,
            false => None,
        };
        let log = TableSnapshot::load(&log_url(job))
            .await?
            .ok_or_else(|| job.invalid("the change log was not committed".into()))?;
        let pending = match plan.applied {
            Some(version) => match log.since(version).await? {
                SinceVersion::Unchanged => Some(vec![]),
                SinceVersion::Appended(files) => Some(files),
                SinceVersion::Rewritten => None,
            },
            None => None,
        };
        let (frame, rewritten) = self.applied(job, plan, &log, pending).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let spec = WriteSpec {
            targets: vec![WriteTarget {
                name: OutputName::table(),
                url: job.lakehouse.table_url(job.table).to_string(),
                partition_by: self.partition_by(job),
                columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
                keep_when: None,
            }],
            counters: vec![],
            file_tag: String::new(),
            clustering: job.table.cluster.clone(),
        };
        let table = job.write(&frame, &spec).await?;
        Ok(CdcWritten {
            table,
            spec,
            schema,
            log_version: log.version(),
            duplicate_changes,
            rewritten,
        })
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: CdcPlan,
        written: CdcWritten,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        let table = OutputName::table();
        let files = written.table.output(&table);
        let target = written
            .spec
            .target(&table)
            .expect("the write has the table's output");
        let schema = files.schema.unwrap_or(written.schema);
        let (mode, removes) = match (&written.rewritten, self.target) {
            (Some(paths), Some(table)) => (WriteMode::Append, table.remove_files(paths)?),
            _ => (WriteMode::Overwrite, vec![]),
        };
        info!(
            table = %job.table.name,
            files_replaced = removes.len(),
            rebuild = written.rewritten.is_none(),
            log_version = written.log_version,
            source_version = plan.source_version,
            "applying changes"
        );
        let rewrite = Rewrite {
            removes,
            watermarks: vec![(log_watermark_id(job), written.log_version)],
            read: self.target,
        };
        let commit = job
            .commit_rewrite(target, schema, mode, files.adds, rewrite)
            .await?;
        if let Some((target, adds)) = written.duplicate_changes {
            discard(&target, &adds).await;
        }
        outcome.rows_written = files.rows;
        Ok(outcome.committed(commit))
    }
}

impl CdcStep<'_> {
    /// What a run would write, over `from` as registered in the session: the change log, its
    /// quarantine, and the table's rows as the changes' SCD query gives them on a rebuild.
    pub(crate) async fn dry_run(&self, job: &TableJob<'_>) -> Result<Outputs> {
        let err = |e| job.query_err("plan changes", e);
        let source = job.ctx.table(self.spec.from.as_str()).await.map_err(err)?;
        let (changes, columns, frame) = self.checked_changes(job, source).await?;
        let written = change_log_columns(&columns);
        let mut outputs = Outputs::written(changes.dry_run(job).await?, Main::Companion(CHANGES_SUFFIX));
        let logged = format!("__cdc_dry_{}", job.table.name);
        let listed: Vec<_> = written.iter().map(|c| ident(c)).collect();
        let log = frame.select(listed).map_err(err)?;
        job.ctx.deregister_table(&logged).ok();
        job.ctx.register_table(&logged, log.into_view()).map_err(err)?;
        let (rows, _) = self.versions_sql(&logged, &columns, latest_window(true));
        let table = job.ctx.sql(&rows).await;
        job.ctx.deregister_table(&logged).ok();
        let table = table.map_err(err)?;
        outputs.lineage = column_lineage(table.logical_plan());
        let table = table.create_physical_plan().await.map_err(err)?;
        outputs.table = Some(normalize_schema(&table.schema()));
        Ok(outputs)
    }

    /// `frame`'s source rows as changes checked against the table's rules: the change log's
    /// write, the change columns, and the changes before the check.
    async fn checked_changes(
        &self,
        job: &TableJob<'_>,
        frame: DataFrame,
    ) -> Result<(CheckedWrite, ChangeColumns, DataFrame)> {
        let (frame, columns) = self.change_frame(job, frame).await?;
        let mut rules = key_rules(job, &frame, &columns)?;
        rules.extend(rules_for(job.pipeline, job.table, &frame)?);
        let main = MainOutput {
            name: OutputName::named(CHANGES),
            url: log_url(job),
            partition_by: vec![],
            // By key when the table is clustered: a batch's log files then hold narrow key
            // ranges, and applying a later batch reads only those its keys fall in.
            clustering: job.table.cluster.as_ref().map(|c| Clustering {
                by: columns.keys.clone(),
                rows_per_file: c.rows_per_file,
            }),
        };
        let written = change_log_columns(&columns);
        let write = CheckedWrite::plan(job, frame.clone(), rules, &written, &[], main)?;
        Ok((write, columns, frame))
    }

    /// From the watermarks: the source files appended since the log's (or every file, to
    /// rebuild the log) and the log version the table has applied; `None` when there is
    /// nothing to read and nothing logged left to apply.
    async fn reading(&self, job: &TableJob<'_>, source: &TableSnapshot) -> Result<Option<Reading>> {
        let log = match self.full_refresh {
            true => None,
            false => TableSnapshot::load(&log_url(job)).await?,
        };
        let logged = match &log {
            Some(log) => {
                log.txn_version(&source_watermark_id(job, &self.spec.from))
                    .await?
            }
            None => None,
        };
        let all = source.scan_table()?;
        let (files, relog) = match logged {
            None => (all.files.clone(), true),
            Some(version) => match source.since(version).await? {
                SinceVersion::Unchanged => (vec![], false),
                SinceVersion::Appended(files) => (files, false),
                SinceVersion::Rewritten => (all.files.clone(), true),
            },
        };
        let read_source = relog || !files.is_empty();
        let applied = match (relog, self.target) {
            (false, Some(target)) => target.txn_version(&log_watermark_id(job)).await?,
            _ => None,
        };
        let log_version = log.as_ref().map(TableSnapshot::version);
        if !read_source && applied.is_some() && applied == log_version {
            return Ok(None);
        }
        Ok(Some(Reading {
            scan: DeltaScanTable { files, ..all },
            read_source,
            relog,
            applied,
        }))
    }

    /// The source rows as changes: keys, kept columns, [`SEQUENCE`] and [`DELETE`]. The change
    /// columns are the `select` list over the source row, or `sql`'s output with the source
    /// rows as `${changes}` (default: every column of `from` but `except_columns`);
    /// `sequence_by` and `delete_when` are evaluated on the same row.
    async fn change_frame(&self, job: &TableJob<'_>, frame: DataFrame) -> Result<(DataFrame, ChangeColumns)> {
        let source = format!("__cdc_source_{}", job.table.name);
        job.ctx.deregister_table(&source).ok();
        job.ctx
            .register_table(&source, frame.clone().into_view())
            .map_err(|e| job.query_err("plan changes", e))?;
        let delete = self.spec.delete_when.as_deref().unwrap_or("FALSE");
        let extra = format!(
            "({sequence}) AS \"{SEQUENCE}\", COALESCE(({delete}), FALSE) AS \"{DELETE}\"",
            sequence = self.spec.sequence_by,
        );
        let sql = match self.spec.shaping_sql(&source) {
            Some(shaping) => format!("SELECT *, {extra} FROM ({}) AS shaped", job.substituted(&shaping)),
            None => format!("SELECT {}, {extra} FROM {source}", self.select_list(&frame)),
        };
        let planned = job.ctx.sql(&sql).await;
        job.ctx.deregister_table(&source).ok();
        let frame = planned.map_err(|e| {
            job.invalid(format!(
                "cdc.select or cdc.sql, sequence_by or delete_when does not plan over `{}`: {e}",
                self.spec.from
            ))
        })?;
        let names: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != SEQUENCE && n != DELETE)
            .collect();
        if let Some(missing) = self.spec.keys.iter().find(|k| !names.contains(k)) {
            return Err(job.invalid(format!(
                "cdc.keys: `{missing}` is not a change column (they are {})",
                names.join(", ")
            )));
        }
        let values: Vec<String> = names
            .iter()
            .filter(|n| {
                !n.starts_with('_') && !self.spec.keys.contains(n) && !self.spec.except_columns.contains(n)
            })
            .cloned()
            .collect();
        let tracked = self
            .spec
            .track_history_columns
            .clone()
            .unwrap_or_else(|| values.clone());
        if let Some(unknown) = tracked.iter().find(|t| !values.contains(t)) {
            return Err(job.invalid(format!(
                "cdc.track_history_columns: `{unknown}` is not a kept column"
            )));
        }
        let columns = ChangeColumns {
            keys: self.spec.keys.clone(),
            values,
            tracked,
        };
        Ok((frame, columns))
    }

    /// `select`: the expressions given, or every column of `from` but `except_columns` and
    /// the audit columns.
    fn select_list(&self, frame: &DataFrame) -> String {
        match &self.spec.select {
            Some(list) => list.join(", "),
            None => frame
                .schema()
                .fields()
                .iter()
                .map(|f| f.name())
                .filter(|n| !n.starts_with('_') && !self.spec.except_columns.contains(n))
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Writes the new change rows: commits their quarantine, then appends them to the log (or
    /// replaces it) with the source version read. Returns the log files an earlier attempt of
    /// this run already committed the same changes in, to delete after the apply.
    async fn log_changes(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        outcome: &mut TableOutcome,
    ) -> Result<Option<(WriteTarget, Vec<deltalake::kernel::Add>)>> {
        let result = plan.changes.write(job).await?;
        plan.changes.account(job, &result, outcome).await?;
        plan.changes.commit_quarantine(job, &result, outcome).await?;
        let new = plan.changes.staged(job, &result, &OutputName::named(CHANGES))?;
        let mode = match plan.relog {
            true => WriteMode::Overwrite,
            false => WriteMode::Append,
        };
        let target = WriteTarget {
            name: OutputName::named(CHANGES),
            url: new.url.to_string(),
            partition_by: new.partition_by.clone(),
            columns: vec![],
            keep_when: None,
        };
        let watermark = (source_watermark_id(job, &self.spec.from), plan.source_version);
        let logged = job
            .commit_watermarked(
                &target,
                CHANGES_SUFFIX,
                Arc::clone(&new.schema),
                (mode, new.adds.clone()),
                vec![watermark],
            )
            .await?;
        Ok(matches!(logged, CommitOutcome::AlreadyCommitted { .. }).then_some((target, new.adds)))
    }

    /// How the new changes' quarantine is committed: replaced when the log is rebuilt; with
    /// the source version read, so that rows an attempt quarantined before it stopped (before
    /// its log commit) are not quarantined again when the same source range is read again.
    async fn quarantine_commit(
        &self,
        job: &TableJob<'_>,
        relog: bool,
        source_version: i64,
    ) -> Result<QuarantineCommit> {
        let id = format!(
            "medallion/{}/{}{QUARANTINE_SUFFIX}/applied/{}",
            job.pipeline.name, job.table.name, self.spec.from
        );
        let already_committed = match relog {
            true => false,
            false => match TableSnapshot::load(&job.lakehouse.quarantine_url(job.table)).await? {
                Some(q) => q.txn_version(&id).await? == Some(source_version),
                None => false,
            },
        };
        Ok(QuarantineCommit {
            mode: match relog {
                true => WriteMode::Overwrite,
                false => WriteMode::Append,
            },
            watermarks: vec![(id, source_version)],
            already_committed,
        })
    }

    /// The table's rows after the changes logged since its last apply (`pending`; `None`:
    /// every key's rows recomputed from the whole log): the touched keys recomputed from all
    /// their logged changes, plus the other rows of the files that may hold touched keys
    /// (returned: the files the write replaces).
    async fn applied(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        log: &TableSnapshot,
        pending: Option<Vec<DeltaFile>>,
    ) -> Result<(DataFrame, Option<Vec<String>>)> {
        let err = |e| job.query_err("apply changes", e);
        let name = |part: &str| format!("__cdc_{part}_{}", job.table.name);
        let (log_name, new_name, changes_name, table_name) =
            (name("log"), name("new"), name("changes"), name("table"));
        let register = |name: &str, provider| {
            job.ctx.deregister_table(name).ok();
            job.ctx.register_table(name, provider).map_err(err)
        };
        let log_scan = log.scan_table()?;
        let on = |a: &str, b: &str| {
            plan.columns
                .keys
                .iter()
                .map(|k| format!("{a}.\"{k}\" = {b}.\"{k}\""))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        // A table laid out otherwise (buckets or partitions changed) is rebuilt.
        let target = match self.target {
            Some(t) if t.scan_table()?.partition_columns == self.partition_by(job) => Some(t),
            _ => None,
        };
        let (touched, target, keys) = match (pending, target) {
            (Some(files), Some(target)) => {
                register(
                    &new_name,
                    Arc::new(DeltaScanTable {
                        files,
                        ..log_scan.clone()
                    }),
                )?;
                let (files, keys) = self
                    .log_files_holding(job, plan, log, &log_scan, &new_name)
                    .await?;
                register(&log_name, Arc::new(DeltaScanTable { files, ..log_scan }))?;
                let touched = format!(
                    "SELECT l.* FROM {log_name} l LEFT SEMI JOIN {new_name} n ON {}",
                    on("l", "n")
                );
                (touched, Some(target), keys)
            }
            _ => {
                register(&log_name, Arc::new(log_scan))?;
                (format!("SELECT * FROM {log_name}"), None, None)
            }
        };
        let changes = job.ctx.sql(&touched).await.map_err(err)?;
        register(&changes_name, changes.into_view())?;
        let window = latest_window(target.is_none());
        let (rows, columns) = self.versions_sql(&changes_name, &plan.columns, window);
        let Some(target) = target else {
            return Ok((job.ctx.sql(&rows).await.map_err(err)?, None));
        };
        let scan = self
            .files_holding_touched(job, plan, target, keys.as_ref(), &new_name)
            .await?;
        let paths = scan.files.iter().map(|f| f.path.clone()).collect();
        register(&table_name, Arc::new(scan))?;
        let columns = columns
            .iter()
            .map(|c| format!("t.\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT * FROM ({rows}) AS applied UNION ALL \
             SELECT {columns} FROM {table_name} t LEFT ANTI JOIN {new_name} n ON {}",
            on("t", "n")
        );
        Ok((job.ctx.sql(&sql).await.map_err(err)?, Some(paths)))
    }

    /// The table's rows for the keys whose changes are in `changes` (a table name), with
    /// [`BUCKET`] when bucketed, and the table's columns.
    fn versions_sql(
        &self,
        changes: &str,
        columns: &ChangeColumns,
        window: LatestWindow,
    ) -> (String, Vec<String>) {
        let mut rows = match self.spec.scd {
            Scd::One => scd1_sql(changes, columns, window),
            Scd::Two => scd2_sql(changes, columns),
        };
        let mut names = table_columns(columns, self.spec.scd == Scd::Two);
        if let Some(n) = self.spec.buckets {
            let bucket = bucket_sql(&columns.keys, n);
            rows = format!("SELECT *, {bucket} AS \"{BUCKET}\" FROM ({rows}) AS versions");
            names.push(BUCKET.into());
        }
        (rows, names)
    }

    /// The change-log files that may hold a touched key (all of them unless the first key is
    /// an integer, a string or a date), and the touched values of that key.
    async fn log_files_holding(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        log: &TableSnapshot,
        log_scan: &DeltaScanTable,
        new_name: &str,
    ) -> Result<(Vec<DeltaFile>, Option<KeyValues>)> {
        let keys = self.touched_key_values(job, plan, log_scan, new_name).await?;
        let files = match &keys {
            Some(keys) => log.files_holding(&plan.columns.keys[0], keys)?,
            None => log_scan.files.clone(),
        };
        info!(
            table = %job.table.name,
            log_files = files.len(),
            of = log_scan.files.len(),
            "reading the logged changes of the touched keys"
        );
        Ok((files, keys))
    }

    /// The touched values of the first key column, when statistics order its type (they then
    /// tell which files may hold them).
    async fn touched_key_values(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        log: &DeltaScanTable,
        new_name: &str,
    ) -> Result<Option<KeyValues>> {
        let key = &plan.columns.keys[0];
        if !log
            .schema
            .field_with_name(key)
            .is_ok_and(|f| KeyValues::supports(f.data_type()))
        {
            return Ok(None);
        }
        let sql = format!("SELECT DISTINCT \"{key}\" FROM {new_name}");
        let batches = collect(job, &sql).await?;
        let columns: Vec<_> = batches.iter().map(|b| Arc::clone(b.column(0))).collect();
        Ok(KeyValues::collect(&columns))
    }

    /// A scan of the table's files that may hold a touched key: pruned by the statistics of an
    /// integer, string or date first key column (`keys`, its touched values) and by the touched
    /// keys' buckets; every file otherwise.
    async fn files_holding_touched(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        target: &TableSnapshot,
        keys: Option<&KeyValues>,
        new_name: &str,
    ) -> Result<DeltaScanTable> {
        let scan = target.scan_table()?;
        let mut files = match keys {
            Some(keys) => target.files_holding(&plan.columns.keys[0], keys)?,
            None => scan.files.clone(),
        };
        if let Some(n) = self.spec.buckets {
            let bucket = bucket_sql(&plan.columns.keys, n);
            let sql = format!("SELECT DISTINCT CAST({bucket} AS BIGINT) FROM {new_name}");
            let touched = integers(job, &sql).await?;
            files.retain(|f| {
                let bucket = f.partition_values.iter().find(|(c, _)| c == BUCKET);
                let bucket = bucket.and_then(|(_, v)| v.as_deref()?.parse::<i64>().ok());
                bucket.is_none_or(|b| touched.binary_search(&b).is_ok())
            });
        }
        Ok(DeltaScanTable { files, ..scan })
    }

    /// The table's partition columns: the spec's, then [`BUCKET`] with `cdc.buckets`.
    fn partition_by(&self, job: &TableJob<'_>) -> Vec<String> {
        let mut columns = job.table.partition_by.clone();
        columns.extend(self.spec.buckets.map(|_| BUCKET.to_string()));
        columns
    }
}

/// The sorted values of a query's one integer column.
async fn integers(job: &TableJob<'_>, sql: &str) -> Result<Vec<i64>> {
    let batches = collect(job, sql).await?;
    let mut values: Vec<i64> = Vec::new();
    for batch in &batches {
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| {
                let not = datafusion::error::DataFusionError::Internal("not BIGINT".into());
                job.query_err("find touched files", not)
            })?;
        values.extend(column.iter().flatten());
    }
    values.sort_unstable();
    Ok(values)
}

/// A query's rows, collected on the driver.
async fn collect(job: &TableJob<'_>, sql: &str) -> Result<Vec<RecordBatch>> {
    let err = |e| job.query_err("find touched files", e);
    job.ctx.sql(sql).await.map_err(err)?.collect().await.map_err(err)
}

/// The window an apply finds each key's latest change with: per bucket of keys for a rebuild
/// of all of them, per key for a merge's few.
///
/// A clustered table rebuilt per bucket sends its keys to other writing tasks than its later
/// merges do, so its files' key ranges overlap a little more after merges (the clustered
/// incremental test: a key in 1.9–2.4 files on average over six seeds, at most 4); at scale 1
/// the rebuild of `order_items` took half the time and a batch's merges replaced as many files.
fn latest_window(rebuild: bool) -> LatestWindow {
    match rebuild {
        true => LatestWindow::PerBucket,
        false => LatestWindow::PerKey,
    }
}

/// The change log's folder.
fn log_url(job: &TableJob<'_>) -> url::Url {
    job.lakehouse.companion_url(job.table, CHANGES_SUFFIX)
}

/// The `txn` app id, in the change log's commits, of the version of `from` it holds changes up to.
fn source_watermark_id(job: &TableJob<'_>, from: &str) -> String {
    format!(
        "medallion/{}/{}{CHANGES_SUFFIX}/applied/{from}",
        job.pipeline.name, job.table.name
    )
}

/// The `txn` app id, in the table's commits, of the change log version it has applied.
fn log_watermark_id(job: &TableJob<'_>) -> String {
    applied_log_id(&job.pipeline.name, &job.table.name)
}

/// The `txn` app id, in the commits of `cdc` table `table`, of the change log version it has
/// applied.
pub(crate) fn applied_log_id(pipeline: &str, table: &str) -> String {
    format!("medallion/{pipeline}/{table}/applied/{table}{CHANGES_SUFFIX}")
}

/// Built-in `drop` rules: every key present, the sequence value present.
fn key_rules(job: &TableJob<'_>, frame: &DataFrame, columns: &ChangeColumns) -> Result<Vec<Rule>> {
    let present = |name: &str, column: &str, reason: String| -> Result<Rule> {
        let pass = frame
            .parse_sql_expr(&format!("\"{column}\" IS NOT NULL"))
            .map_err(|e| job.query_err("plan cdc rules", e))?;
        Ok(Rule {
            name: name.to_string(),
            pass,
            reason: lit(reason),
            action: Action::Drop,
        })
    };
    let mut rules = columns
        .keys
        .iter()
        .map(|k| present(&format!("{k}_present"), k, format!("key `{k}` is null")))
        .collect::<Result<Vec<_>>>()?;
    rules.push(present(
        "sequence_present",
        SEQUENCE,
        "cdc.sequence_by is null".into(),
    )?);
    Ok(rules)
}

/// The change log's columns: keys, kept values, [`SEQUENCE`] and [`DELETE`].
fn change_log_columns(columns: &ChangeColumns) -> Vec<String> {
    let flags = [SEQUENCE.to_string(), DELETE.to_string()];
    [&columns.keys[..], &columns.values[..], &flags].concat()
}
