//! One table of a run: plan its rows, check expectations, quarantine, write, commit.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use deltalake::kernel::Add;
use object_store::ObjectStoreExt;
use tracing::{info, instrument};
use url::Url;

use super::outcome::{TableOutcome, TableStatus};
use super::paths::{Lakehouse, resolve_url};
use super::run_id::RunId;
use crate::delta::{CommitOutcome, DeltaCommit, TableSnapshot, WriteResult, WriteSpec, WriteTarget};
use crate::error::{Error, Failure, Result, error_chain};
use crate::landing::{CORRUPT_REASON, CORRUPT_RECORD, RESCUED_DATA, SOURCE_FILE};
use crate::layers::{AUDIT_COLUMNS, BronzeInput, bronze_frame, ident, query_frame};
use crate::quality::{CheckedFrame, QUARANTINE_SUFFIX, Rule, rules_for};
use crate::spec::{Action, ModelSpec, Pipeline, TableSpec, Transform, WriteMode};

/// Query columns starting with this are helpers: expectations see them, tables do not get them.
const HELPER_PREFIX: &str = "__";

/// How one attempt at a table ended.
pub(crate) struct Attempted {
    /// The table's outcome as this attempt left it.
    pub(crate) outcome: TableOutcome,
    /// Why it failed, for the retry decision (`Permanent` when it did not fail).
    pub(crate) failure: Failure,
}

/// Everything one table's work needs from its run.
#[derive(Clone)]
pub(crate) struct TableJob<'a> {
    pub(crate) ctx: &'a SessionContext,
    pub(crate) pipeline: &'a Pipeline,
    pub(crate) table: &'a TableSpec,
    pub(crate) lakehouse: &'a Lakehouse,
    pub(crate) landing: Option<&'a Url>,
    pub(crate) run: &'a RunId,
    pub(crate) full_refresh: bool,
    pub(crate) partitions: usize,
}

impl TableJob<'_> {
    /// Runs the table once; failures become a `Failed` outcome, never a panic.
    #[instrument(skip_all, fields(run_id = %self.run.id, table = %self.table.name))]
    pub(crate) async fn run(self) -> Attempted {
        let started = Instant::now();
        let mut outcome = TableOutcome::new(&self.table.name, self.table.layer);
        let mut failure = Failure::Permanent;
        match self.try_run(&mut outcome).await {
            Ok(status) => outcome.status = status,
            Err(e) => {
                failure = e.failure();
                outcome.error = Some(error_chain(&e));
                outcome.status = TableStatus::Failed;
            }
        }
        outcome.duration = started.elapsed();
        info!(
            status = outcome.status.as_str(),
            rows = outcome.rows_written,
            "table finished"
        );
        Attempted { outcome, failure }
    }

    /// Every table this job writes: the table, its quarantine and a model's companions.
    pub(crate) fn output_urls(&self) -> Vec<Url> {
        let companions = self.table.model.iter().flat_map(|m| m.companion_suffixes());
        std::iter::once(self.lakehouse.table_url(self.table))
            .chain(std::iter::once(self.lakehouse.quarantine_url(self.table)))
            .chain(companions.map(|suffix| self.lakehouse.companion_url(self.table, suffix)))
            .collect()
    }

    /// One app id per run and output: a `txn` then says exactly whether this run committed
    /// it. (Per table, the highest sequence would hide an older run's commit that never
    /// happened behind a newer run's — two overlapping runs and one would skip its write.)
    pub(super) fn app_id(&self, suffix: &str) -> String {
        format!(
            "medallion/{}/{}{suffix}/{}",
            self.pipeline.name, self.table.name, self.run.id
        )
    }

    async fn try_run(&self, outcome: &mut TableOutcome) -> Result<TableStatus> {
        let url = self.lakehouse.table_url(self.table);
        let snapshot = TableSnapshot::load(&url).await?;
        if let Some(s) = &snapshot {
            outcome.version = Some(s.version());
            if s.txn_version(&self.app_id(""))
                .await?
                .is_some_and(|v| v >= self.run.seq)
            {
                return Ok(TableStatus::AlreadyCommitted);
            }
        }
        if let Some(ModelSpec::Als(params)) = &self.table.model {
            return self.run_als(params, outcome).await;
        }
        let mode = if self.full_refresh {
            WriteMode::Overwrite
        } else {
            self.table.mode
        };
        let Some(frame) = self.frame(snapshot.as_ref(), mode).await? else {
            return Ok(TableStatus::NoNewData);
        };
        let rules = rules_for(self.pipeline, self.table, &frame)?;
        let checked = self.checked_frame(frame, &rules)?;
        let spec = self.write_spec(&url, &checked);
        let result = self.write(&checked.frame, &spec).await?;
        if result.counts.read == 0 && mode == WriteMode::Append && snapshot.is_some() {
            // Nothing to add (e.g. only empty landing files): no empty commit.
            return Ok(TableStatus::NoNewData);
        }
        self.account(outcome, &rules, &spec, &result).await?;
        self.commit_written(outcome, &checked, &spec, &result, mode).await
    }

    /// Checks that every row read was written or quarantined (deleting the files if not) and
    /// records the counts in the outcome.
    pub(super) async fn account(
        &self,
        outcome: &mut TableOutcome,
        rules: &[Rule],
        spec: &WriteSpec,
        result: &WriteResult,
    ) -> Result<()> {
        if let Err(e) = check_accounting(&self.table.name, result) {
            for (target, adds) in spec.targets.iter().zip(&result.adds) {
                discard(target, adds).await;
            }
            return Err(e);
        }
        outcome.rows_read = result.counts.read;
        outcome.rule_failures = rules
            .iter()
            .zip(&result.counts.counted)
            .map(|(r, n)| (r.name.clone(), r.action, *n))
            .collect();
        Ok(())
    }

    /// The query's rows with the rule columns; sources also keep the raw line for quarantine.
    fn checked_frame(&self, frame: DataFrame, rules: &[Rule]) -> Result<CheckedFrame> {
        let columns = self.output_columns(&frame)?;
        let extra: Vec<String> = match self.table.transform {
            Transform::Source(_) => vec![CORRUPT_RECORD.to_string()],
            Transform::Sql(_) => vec![],
        };
        CheckedFrame::build(
            frame,
            rules,
            &columns,
            &extra,
            &self.run.id,
            self.run.started_micros,
        )
        .map_err(|e| self.query_err("plan expectations", e))
    }

    /// Commits the quarantine, then — unless a `fail` rule failed — the table.
    async fn commit_written(
        &self,
        outcome: &mut TableOutcome,
        checked: &CheckedFrame,
        spec: &WriteSpec,
        result: &WriteResult,
        mode: WriteMode,
    ) -> Result<TableStatus> {
        self.commit_quarantine(outcome, checked, spec, result).await?;
        let schema = self.written_schema(checked, spec, result, 0)?;
        let commit = self
            .commit(&spec.targets[0], "", schema, mode, result.adds[0].clone())
            .await?;
        outcome.rows_written = result.rows[0];
        outcome.version = Some(commit.version());
        Ok(match commit {
            CommitOutcome::Committed { .. } => TableStatus::Succeeded,
            CommitOutcome::AlreadyCommitted { .. } => TableStatus::AlreadyCommitted,
        })
    }

    /// Commits target 1 (the quarantine) when it has rows; then fails — deleting target 0's
    /// files — if a `fail` rule had failing rows.
    pub(super) async fn commit_quarantine(
        &self,
        outcome: &mut TableOutcome,
        checked: &CheckedFrame,
        spec: &WriteSpec,
        result: &WriteResult,
    ) -> Result<()> {
        if let (Some(target), Some(adds)) = (spec.targets.get(1), result.adds.get(1))
            && result.rows[1] > 0
        {
            let schema = self.written_schema(checked, spec, result, 1)?;
            self.commit(target, QUARANTINE_SUFFIX, schema, WriteMode::Append, adds.clone())
                .await?;
            outcome.rows_quarantined = result.rows[1];
        }
        if let Some((rule, _, rows)) = outcome
            .rule_failures
            .iter()
            .find(|(_, a, n)| *a == Action::Fail && *n > 0)
        {
            discard(&spec.targets[0], &result.adds[0]).await;
            return Err(Error::ExpectationFailed {
                table: self.table.name.clone(),
                rule: rule.clone(),
                rows: *rows,
            });
        }
        Ok(())
    }

    /// The schema the executors wrote target `t` with; the logical one only if no task reported
    /// (no rows).
    fn written_schema(
        &self,
        checked: &CheckedFrame,
        spec: &WriteSpec,
        result: &WriteResult,
        t: usize,
    ) -> Result<SchemaRef> {
        match result.schemas.get(t).cloned().flatten() {
            Some(written) => Ok(written),
            None => checked
                .frame
                .schema()
                .as_arrow()
                .project(&spec.targets[t].columns)
                .map(Arc::new)
                .map_err(|e| self.query_err("plan write", e.into())),
        }
    }

    /// The table, and its quarantine when the table has `drop` rules, from one pass.
    fn write_spec(&self, url: &Url, checked: &CheckedFrame) -> WriteSpec {
        let mut targets = vec![WriteTarget {
            url: url.to_string(),
            partition_by: self.table.partition_by.clone(),
            columns: checked.table_columns.clone(),
            keep_when: checked.keep_column.map(|c| (c, true)),
        }];
        if let (Some(columns), Some(keep)) = (&checked.quarantine_columns, checked.keep_column) {
            targets.push(WriteTarget {
                url: self.lakehouse.quarantine_url(self.table).to_string(),
                partition_by: vec![],
                columns: columns.clone(),
                keep_when: Some((keep, false)),
            });
        }
        WriteSpec {
            targets,
            count_columns: checked.failed_columns.clone(),
            file_tag: String::new(),
        }
    }

    pub(super) async fn frame(
        &self,
        snapshot: Option<&TableSnapshot>,
        mode: WriteMode,
    ) -> Result<Option<DataFrame>> {
        match &self.table.transform {
            Transform::Sql(sql) => {
                let sql = self
                    .pipeline
                    .vars
                    .iter()
                    .fold(sql.replace("${run_id}", &self.run.id), |sql, (k, v)| {
                        sql.replace(&format!("${{{k}}}"), v)
                    });
                query_frame(self.ctx, self.pipeline, self.table, &sql)
                    .await
                    .map(Some)
            }
            Transform::Source(source) => {
                let (ingested, existing) = match (snapshot, mode) {
                    (Some(s), WriteMode::Append) => (self.ingested_files(s).await?, data_columns(s)?),
                    _ => (vec![], vec![]),
                };
                let input = BronzeInput {
                    source_url: resolve_url(self.landing, &source.path)?,
                    already_ingested: &ingested,
                    existing_columns: &existing,
                    run_id: &self.run.id,
                    now_micros: self.run.started_micros,
                    partitions: self.partitions,
                };
                bronze_frame(self.ctx, self.pipeline, self.table, source, input).await
            }
        }
    }

    /// Landing files already in a bronze table, so an append ingests each file once.
    async fn ingested_files(&self, snapshot: &TableSnapshot) -> Result<Vec<String>> {
        let scan = snapshot.scan_table()?;
        if scan.schema.index_of(SOURCE_FILE).is_err() {
            return Ok(vec![]);
        }
        let err = |e| self.query_err("list ingested files", e);
        let batches = self
            .ctx
            .read_table(Arc::new(scan))
            .and_then(|f| f.select(vec![ident(SOURCE_FILE)]))
            .and_then(DataFrame::distinct)
            .map_err(err)?
            .collect()
            .await
            .map_err(err)?;
        let mut files = Vec::new();
        for batch in &batches {
            let column = datafusion::arrow::compute::cast(
                batch.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .map_err(|e| err(e.into()))?;
            let strings = column
                .as_any()
                .downcast_ref::<datafusion::arrow::array::StringArray>()
                .expect("cast to Utf8");
            files.extend(strings.iter().flatten().map(String::from));
        }
        Ok(files)
    }

    /// The table's columns: everything but the landing scan's internal ones.
    fn output_columns(&self, frame: &DataFrame) -> Result<Vec<String>> {
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != CORRUPT_RECORD && n != CORRUPT_REASON && !n.starts_with(HELPER_PREFIX))
            .collect();
        if let Some(missing) = self.table.partition_by.iter().find(|p| !columns.contains(p)) {
            return Err(Error::InvalidSpec {
                path: self.pipeline.path.clone(),
                line: self.table.line,
                table: self.table.name.clone(),
                message: format!("partition_by column `{missing}` is not an output column"),
            });
        }
        Ok(columns)
    }

    /// Runs the write on the cluster: data files are written by the executors, not committed.
    pub(super) async fn write(&self, frame: &DataFrame, spec: &WriteSpec) -> Result<WriteResult> {
        crate::delta::write_on_cluster(self.ctx, frame, spec)
            .await
            .map_err(|e| self.query_err("write", e))
    }

    /// Commits one target's files once, idempotently for this run.
    pub(super) async fn commit(
        &self,
        target: &WriteTarget,
        suffix: &str,
        schema: SchemaRef,
        mode: WriteMode,
        adds: Vec<Add>,
    ) -> Result<CommitOutcome> {
        let url = Url::parse(&target.url).map_err(|e| Error::Url {
            url: target.url.clone(),
            message: e.to_string(),
        })?;
        let snapshot = TableSnapshot::load(&url).await?;
        if snapshot.is_none() {
            deltalake::ensure_table_uri(url.as_str()).map_err(|source| Error::Delta {
                url: url.to_string(),
                step: "create",
                source: Box::new(source),
            })?;
        }
        let files = adds.len();
        let commit = DeltaCommit::new(url.clone(), self.app_id(suffix), self.run.seq, schema)
            .with_mode(mode)
            .with_partition_by(target.partition_by.clone())
            .with_adds(adds)
            .execute(snapshot.as_ref())
            .await?;
        info!(%url, version = commit.version(), files, "committed");
        Ok(commit)
    }

    pub(super) fn query_err(&self, step: &'static str, source: datafusion::error::DataFusionError) -> Error {
        Error::Query {
            table: self.table.name.clone(),
            step,
            source: Box::new(source),
        }
    }
}

/// Every row the query produced is in the table's or the quarantine's new files, exactly once.
fn check_accounting(table: &str, result: &WriteResult) -> Result<()> {
    let written = result.rows.first().copied().unwrap_or(0);
    let quarantined = result.rows.get(1).copied().unwrap_or(0);
    if written + quarantined == result.counts.read {
        return Ok(());
    }
    Err(Error::RowsUnaccounted {
        table: table.to_string(),
        read: result.counts.read,
        written,
        quarantined,
    })
}

/// The landing columns of an existing bronze table: everything but audit and rescue columns.
fn data_columns(snapshot: &TableSnapshot) -> Result<Vec<String>> {
    let schema = snapshot.scan_table()?.schema;
    Ok(schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !AUDIT_COLUMNS.contains(&n.as_str()) && n != RESCUED_DATA)
        .collect())
}

/// Deletes files written for a table that will not be committed (best effort: uncommitted
/// files are invisible to readers either way, and `VACUUM` removes leftovers).
pub(super) async fn discard(target: &WriteTarget, adds: &[Add]) {
    let store = Url::parse(&target.url)
        .ok()
        .and_then(|u| crate::storage::table_store(&u).ok());
    let Some(store) = store else { return };
    for add in adds {
        if let Err(e) = store
            .delete(&object_store::path::Path::from(add.path.as_str()))
            .await
        {
            tracing::warn!(path = %add.path, error = %e, "could not delete an uncommitted data file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::TaskCounts;

    fn result(read: u64, rows: Vec<u64>) -> WriteResult {
        WriteResult {
            adds: vec![vec![]; rows.len()],
            schemas: vec![None; rows.len()],
            rows,
            counts: TaskCounts {
                read,
                counted: vec![],
                schemas: vec![],
            },
        }
    }

    #[test]
    fn every_row_read_is_written_or_quarantined() {
        assert!(check_accounting("t", &result(10, vec![7, 3])).is_ok());
        assert!(check_accounting("t", &result(10, vec![10])).is_ok());
        let err = check_accounting("t", &result(10, vec![7, 2])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table `t`: 10 row(s) read but 7 written and 2 quarantined; nothing committed"
        );
    }
}
