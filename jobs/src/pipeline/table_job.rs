//! One table of a run: plan its rows, check expectations, quarantine, write, commit.

use std::time::Instant;

use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::prelude::SessionContext;
use deltalake::kernel::Add;
use std::sync::Arc;
use tracing::{info, instrument};
use url::Url;

use super::outcome::{TableOutcome, TableStatus};
use super::paths::{Lakehouse, resolve_url};
use super::run::RunId;
use crate::delta::{CommitOutcome, DeltaCommit, DeltaWriteNode, TableSnapshot};
use crate::error::{Error, Result, error_chain};
use crate::landing::{CORRUPT_REASON, CORRUPT_RECORD, SOURCE_FILE};
use crate::layers::{BronzeInput, bronze_frame, ident, query_frame};
use crate::quality::{Rule, count_rules, quarantine_frame, rules_for};
use crate::spec::{Action, Pipeline, TableSpec, Transform, WriteMode};

/// Everything one table's work needs from its run.
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
    /// Runs the table; failures become a `Failed` outcome, never a panic.
    #[instrument(skip_all, fields(run_id = %self.run.id, table = %self.table.name))]
    pub(crate) async fn run(self) -> TableOutcome {
        let started = Instant::now();
        let mut outcome = TableOutcome {
            table: self.table.name.clone(),
            layer: self.table.layer,
            status: TableStatus::Failed,
            rows_read: 0,
            rows_written: 0,
            rows_quarantined: 0,
            rule_failures: vec![],
            version: None,
            started_at_micros: chrono::Utc::now().timestamp_micros(),
            duration: Default::default(),
            error: None,
        };
        match self.try_run(&mut outcome).await {
            Ok(status) => outcome.status = status,
            Err(e) => {
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
        outcome
    }

    fn app_id(&self, suffix: &str) -> String {
        format!("medallion/{}/{}{suffix}", self.pipeline.name, self.table.name)
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
        let mode = if self.full_refresh {
            WriteMode::Overwrite
        } else {
            self.table.mode
        };
        let Some(frame) = self.frame(snapshot.as_ref(), mode).await? else {
            return Ok(TableStatus::NoNewData);
        };
        let rules = rules_for(self.pipeline, self.table, &frame)?;
        let counts = count_rules(&self.table.name, &frame, &rules).await?;
        outcome.rows_read = counts.read;
        outcome.rule_failures = counts.failures.clone();
        if let Some((rule, _, rows)) = counts
            .failures
            .iter()
            .find(|(_, a, n)| *a == Action::Fail && *n > 0)
        {
            return Err(Error::ExpectationFailed {
                table: self.table.name.clone(),
                rule: rule.clone(),
                rows: *rows,
            });
        }
        let columns = self.output_columns(&frame)?;
        let dropped: u64 = counts
            .failures
            .iter()
            .filter(|(_, a, _)| *a == Action::Drop)
            .map(|(_, _, n)| n)
            .sum();
        if dropped > 0 {
            outcome.rows_quarantined = self.quarantine(&frame, &rules, &columns).await?;
        }
        let clean = keep_passing(frame, &rules, &columns).map_err(|e| self.query_err("plan write", e))?;
        let (commit, rows) = self
            .write(
                clean,
                &url,
                self.table.partition_by.clone(),
                mode,
                &self.app_id(""),
                snapshot.as_ref(),
            )
            .await?;
        outcome.rows_written = rows;
        outcome.version = Some(commit.version());
        Ok(match commit {
            CommitOutcome::Committed { .. } => TableStatus::Succeeded,
            CommitOutcome::AlreadyCommitted { .. } => TableStatus::AlreadyCommitted,
        })
    }

    async fn frame(&self, snapshot: Option<&TableSnapshot>, mode: WriteMode) -> Result<Option<DataFrame>> {
        match &self.table.transform {
            Transform::Sql(sql) => query_frame(self.ctx, self.pipeline, self.table, sql)
                .await
                .map(Some),
            Transform::Source(source) => {
                let ingested = match (snapshot, mode) {
                    (Some(s), WriteMode::Append) => self.ingested_files(s).await?,
                    _ => vec![],
                };
                let input = BronzeInput {
                    source_url: resolve_url(self.landing, &source.path)?,
                    already_ingested: &ingested,
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
            .filter(|n| n != CORRUPT_RECORD && n != CORRUPT_REASON)
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

    async fn quarantine(&self, frame: &DataFrame, rules: &[Rule], columns: &[String]) -> Result<u64> {
        let mut columns = columns.to_vec();
        if matches!(self.table.transform, Transform::Source(_)) {
            columns.push(CORRUPT_RECORD.to_string());
        }
        let bad = quarantine_frame(frame, rules, &columns, &self.run.id, self.run.started_micros)
            .map_err(|e| self.query_err("plan quarantine", e))?;
        let Some(bad) = bad else { return Ok(0) };
        let url = self.lakehouse.quarantine_url(self.table);
        let snapshot = TableSnapshot::load(&url).await?;
        let (_, rows) = self
            .write(
                bad,
                &url,
                vec![],
                WriteMode::Append,
                &self.app_id("__quarantine"),
                snapshot.as_ref(),
            )
            .await?;
        Ok(rows)
    }

    /// Writes `frame` on the cluster and commits the files once, idempotently.
    async fn write(
        &self,
        frame: DataFrame,
        url: &Url,
        partition_by: Vec<String>,
        mode: WriteMode,
        app_id: &str,
        snapshot: Option<&TableSnapshot>,
    ) -> Result<(CommitOutcome, u64)> {
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let err = |e| self.query_err("write", e);
        let node = DeltaWriteNode::try_new(
            frame.logical_plan().clone(),
            url.to_string(),
            partition_by.clone(),
        )
        .map_err(err)?;
        let plan = LogicalPlan::Extension(Extension { node: Arc::new(node) });
        let batches = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(err)?
            .collect()
            .await
            .map_err(err)?;
        let (adds, rows) = parse_written(&batches).map_err(err)?;
        if snapshot.is_none() {
            deltalake::ensure_table_uri(url.as_str()).map_err(|source| Error::Delta {
                url: url.to_string(),
                step: "create",
                source: Box::new(source),
            })?;
        }
        let commit = DeltaCommit::new(url.clone(), app_id, self.run.seq, schema)
            .with_mode(mode)
            .with_partition_by(partition_by)
            .with_adds(adds)
            .execute(snapshot)
            .await?;
        info!(%url, version = commit.version(), rows, "committed");
        Ok((commit, rows))
    }

    fn query_err(&self, step: &'static str, source: datafusion::error::DataFusionError) -> Error {
        Error::Query {
            table: self.table.name.clone(),
            step,
            source: Box::new(source),
        }
    }
}

/// Rows passing every drop rule, with the table's columns.
fn keep_passing(
    frame: DataFrame,
    rules: &[Rule],
    columns: &[String],
) -> datafusion::error::Result<DataFrame> {
    let pass = rules
        .iter()
        .filter(|r| r.action == Action::Drop)
        .map(|r| r.pass.clone())
        .reduce(|a, b| a.and(b));
    let frame = match pass {
        Some(p) => frame.filter(p)?,
        None => frame,
    };
    frame.select(columns.iter().map(|c| ident(c)).collect::<Vec<_>>())
}

/// The `Add` actions and row count returned by the write tasks.
fn parse_written(
    batches: &[datafusion::arrow::array::RecordBatch],
) -> datafusion::error::Result<(Vec<Add>, u64)> {
    use datafusion::arrow::array::{Int64Array, StringArray};
    let mut adds = Vec::new();
    let mut rows = 0u64;
    for batch in batches {
        let json = batch.column(1).as_any().downcast_ref::<StringArray>();
        let counts = batch.column(2).as_any().downcast_ref::<Int64Array>();
        let (Some(json), Some(counts)) = (json, counts) else {
            return Err(datafusion::error::DataFusionError::Internal(
                "unexpected write result schema".into(),
            ));
        };
        for i in 0..batch.num_rows() {
            let add: Add = serde_json::from_str(json.value(i))
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            adds.push(add);
            rows += counts.value(i).max(0) as u64;
        }
    }
    Ok((adds, rows))
}
