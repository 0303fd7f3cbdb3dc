//! One table of a run: what every kind of table needs from the run, the attempt's bookkeeping,
//! and the dispatch to the table's [`steps`](super::steps).

use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use deltalake::kernel::Add;
use object_store::ObjectStoreExt;
use tracing::{info, instrument};
use url::Url;

use super::check::Outputs;
use super::outcome::{TableOutcome, TableStatus};
use super::paths::Lakehouse;
use super::run_id::RunId;
use super::steps::{
    self, als::AlsStep, cdc::CdcStep, checks::ChecksStep, kafka::KafkaStep, landing::LandingStep,
    sql::HELPER_PREFIX, sql::SqlStep,
};
use crate::delta::{CommitOutcome, DeltaCommit, TableSnapshot, WriteResult, WriteSpec, WriteTarget};
use crate::error::{Error, Failure, Result, error_chain};
use crate::landing::{CORRUPT_REASON, CORRUPT_RECORD};
use crate::spec::{KafkaSource, Pipeline, SchemaEvolution, TableKind, TableSpec, WriteMode};

/// How one attempt at a table ended.
pub(crate) struct Attempted {
    /// The table's outcome as this attempt left it.
    pub(crate) outcome: TableOutcome,
    /// Why it failed, for the retry decision (`Permanent` when it did not fail).
    pub(crate) failure: Failure,
}

/// What a commit that rewrites part of a table carries beside its new files.
pub(crate) struct Rewrite<'a> {
    /// `Remove` actions of the files replaced (an append that rewrites some files).
    pub(crate) removes: Vec<deltalake::kernel::Action>,
    /// The versions of other tables the table now reflects.
    pub(crate) watermarks: Vec<Watermark>,
    /// The table as the rewrite read it (none: it did not exist): whatever was committed since
    /// is checked for conflicts, so a concurrent rewrite of the same files fails this commit.
    pub(crate) read: Option<&'a TableSnapshot>,
}

/// A `txn` action recording the version of another table a commit reflects: `(app id, version)`.
pub(super) type Watermark = (String, i64);

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
        let companions = self.table.kind.companion_suffixes();
        std::iter::once(self.lakehouse.table_url(self.table))
            .chain(std::iter::once(self.lakehouse.quarantine_url(self.table)))
            .chain(
                companions
                    .iter()
                    .map(|suffix| self.lakehouse.companion_url(self.table, suffix)),
            )
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

    /// Loads the table, stops if this run already committed it, then runs its kind's step.
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
        match &self.table.kind {
            TableKind::Als { sql, params } => {
                steps::run(&AlsStep::new(self, sql, params), self, outcome).await
            }
            TableKind::Landing(source) => {
                let step = LandingStep {
                    source,
                    snapshot: snapshot.as_ref(),
                    mode,
                };
                steps::run(&step, self, outcome).await
            }
            TableKind::Kafka(source) => {
                let source = self.with_vars(source);
                let step = KafkaStep {
                    source: &source,
                    snapshot: snapshot.as_ref(),
                    mode,
                };
                steps::run(&step, self, outcome).await
            }
            TableKind::Cdc(spec) => {
                let step = CdcStep {
                    spec,
                    target: snapshot.as_ref(),
                    full_refresh: self.full_refresh,
                };
                steps::run(&step, self, outcome).await
            }
            TableKind::Checks(checks) => {
                let step = ChecksStep {
                    checks,
                    target: snapshot.as_ref(),
                };
                steps::run(&step, self, outcome).await
            }
            TableKind::Sql(sql) => {
                let step = SqlStep {
                    sql,
                    mode,
                    target: snapshot.as_ref(),
                    incremental: self.table.incremental,
                };
                steps::run(&step, self, outcome).await
            }
        }
    }

    /// What a run of the table would write, planned over the tables registered in the session
    /// without writing anything ([`super::check`]); `pending`: also what it would read.
    pub(crate) async fn dry_run(&self, snapshot: Option<&TableSnapshot>, pending: bool) -> Result<Outputs> {
        let mode = if self.full_refresh {
            WriteMode::Overwrite
        } else {
            self.table.mode
        };
        match &self.table.kind {
            TableKind::Als { sql, params } => AlsStep::new(self, sql, params).dry_run(self).await,
            TableKind::Landing(source) => {
                let step = LandingStep {
                    source,
                    snapshot,
                    mode,
                };
                step.dry_run(self, pending).await
            }
            TableKind::Kafka(source) => {
                let source = self.with_vars(source);
                let step = KafkaStep {
                    source: &source,
                    snapshot,
                    mode,
                };
                step.dry_run(self).await
            }
            TableKind::Cdc(spec) => {
                let step = CdcStep {
                    spec,
                    target: snapshot,
                    full_refresh: self.full_refresh,
                };
                step.dry_run(self).await
            }
            TableKind::Checks(checks) => {
                ChecksStep {
                    checks,
                    target: snapshot,
                }
                .dry_run(self)
                .await
            }
            TableKind::Sql(sql) => {
                let step = SqlStep {
                    sql,
                    mode,
                    target: snapshot,
                    incremental: self.table.incremental,
                };
                step.dry_run(self).await
            }
        }
    }

    /// The table's columns: everything but the landing scan's internal ones and helpers.
    pub(super) fn output_columns(&self, frame: &DataFrame) -> Result<Vec<String>> {
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
        self.commit_to(target, suffix, schema, mode, adds, vec![]).await
    }

    /// [`commit`](Self::commit), also recording the versions of other tables it reflects.
    pub(super) async fn commit_watermarked(
        &self,
        target: &WriteTarget,
        suffix: &str,
        schema: SchemaRef,
        (mode, adds): (WriteMode, Vec<Add>),
        watermarks: Vec<Watermark>,
    ) -> Result<CommitOutcome> {
        self.commit_to(target, suffix, schema, mode, adds, watermarks)
            .await
    }

    /// [`commit`](Self::commit) of the table itself, also removing the files `rewrite` lists
    /// and recording the version of another table it reflects; checked against the table as
    /// the rewrite read it.
    pub(super) async fn commit_rewrite(
        &self,
        target: &WriteTarget,
        schema: SchemaRef,
        mode: WriteMode,
        adds: Vec<Add>,
        rewrite: Rewrite<'_>,
    ) -> Result<CommitOutcome> {
        let url = target_url(target)?;
        if rewrite.read.is_none() {
            create_folder(&url)?;
        }
        let files = adds.len();
        let commit = DeltaCommit::new(url.clone(), self.app_id(""), self.run.seq, schema)
            .with_mode(mode)
            .with_added_columns(self.adds_columns())
            .with_partition_by(target.partition_by.clone())
            .with_adds(adds)
            .with_removes(rewrite.removes);
        let commit = rewrite
            .watermarks
            .into_iter()
            .fold(commit, |c, (app_id, version)| c.with_watermark(app_id, version));
        super::crash_point::before_commit(&self.table.name, "").await;
        let commit = commit.execute(rewrite.read).await?;
        info!(%url, version = commit.version(), files, "committed");
        Ok(commit)
    }

    async fn commit_to(
        &self,
        target: &WriteTarget,
        suffix: &str,
        schema: SchemaRef,
        mode: WriteMode,
        adds: Vec<Add>,
        watermarks: Vec<Watermark>,
    ) -> Result<CommitOutcome> {
        let url = target_url(target)?;
        let snapshot = TableSnapshot::load(&url).await?;
        if snapshot.is_none() {
            create_folder(&url)?;
        }
        let files = adds.len();
        let mut commit = DeltaCommit::new(url.clone(), self.app_id(suffix), self.run.seq, schema)
            .with_mode(mode)
            .with_added_columns(self.adds_columns())
            .with_partition_by(target.partition_by.clone())
            .with_adds(adds);
        for (app_id, version) in watermarks {
            commit = commit.with_watermark(app_id, version);
        }
        super::crash_point::before_commit(&self.table.name, suffix).await;
        let commit = commit.execute(snapshot.as_ref()).await?;
        info!(%url, version = commit.version(), files, "committed");
        Ok(commit)
    }

    /// Whether an append may add columns to the table and its quarantine: for a landing
    /// source that adds the columns of new files (`schema_evolution = "add_columns"`), and a
    /// Kafka source whose spec gained columns.
    fn adds_columns(&self) -> bool {
        match &self.table.kind {
            TableKind::Landing(s) => s.schema_evolution == SchemaEvolution::AddColumns,
            TableKind::Kafka(_) => true,
            TableKind::Sql(_) | TableKind::Als { .. } | TableKind::Cdc(_) | TableKind::Checks(_) => false,
        }
    }

    pub(crate) fn query_err(&self, step: &'static str, source: datafusion::error::DataFusionError) -> Error {
        Error::Query {
            table: self.table.name.clone(),
            step,
            source: Box::new(source),
        }
    }

    /// Where the pipeline's table or companion table (`orders__changes`) `name` lives.
    pub(crate) fn table_url_of(&self, name: &str) -> Option<Url> {
        if let Some(table) = self.pipeline.table(name) {
            return Some(self.lakehouse.table_url(table));
        }
        let base = crate::dag::companion_of(self.pipeline, name)?;
        let table = self.pipeline.table(base)?;
        Some(self.lakehouse.companion_url(table, &name[base.len()..]))
    }

    /// `sql` with `${run_id}` and the pipeline's variables substituted.
    pub(super) fn substituted(&self, sql: &str) -> String {
        self.pipeline
            .vars
            .iter()
            .fold(sql.replace("${run_id}", &self.run.id), |sql, (k, v)| {
                sql.replace(&format!("${{{k}}}"), v)
            })
    }

    /// A Kafka source with the run's variables in its brokers and topic
    /// (`bootstrap = "${kafka_bootstrap}"`, set with `--var kafka_bootstrap=…`).
    fn with_vars(&self, source: &KafkaSource) -> KafkaSource {
        let mut source = source.clone();
        source.connection.bootstrap = source
            .connection
            .bootstrap
            .iter()
            .flat_map(|b| {
                self.substituted(b)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|b| !b.is_empty())
            .collect();
        source.topic = self.substituted(&source.topic);
        source
    }

    /// A spec error on this table's line.
    pub(super) fn invalid(&self, message: String) -> Error {
        Error::InvalidSpec {
            path: self.pipeline.path.clone(),
            line: self.table.line,
            table: self.table.name.clone(),
            message,
        }
    }
}

fn target_url(target: &WriteTarget) -> Result<Url> {
    Url::parse(&target.url).map_err(|e| Error::Url {
        url: target.url.clone(),
        message: e.to_string(),
    })
}

/// Makes the folder of a table that is about to be created.
fn create_folder(url: &Url) -> Result<()> {
    deltalake::ensure_table_uri(url.as_str())
        .map(|_| ())
        .map_err(|source| Error::Delta {
            url: url.to_string(),
            step: "create",
            source: Box::new(source),
        })
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
