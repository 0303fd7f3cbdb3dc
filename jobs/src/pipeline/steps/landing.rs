//! A bronze table fed by landing files: each file ingested once, malformed records quarantined
//! with their raw line.

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, lit};

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput, QuarantineCommit, TableCommit};
use crate::delta::{TableSnapshot, WriteResult};
use crate::error::{Error, Result, error_chain};
use crate::landing::{CORRUPT_RECORD, RESCUED_DATA, SOURCE_FILE, UNREADABLE_FILE};
use crate::layers::{AUDIT_COLUMNS, BronzeInput, bronze_frame, ident, landing_files};
use crate::pipeline::check::{Main, Outputs};
use crate::pipeline::outcome::{TableOutcome, TableStatus};
use crate::pipeline::paths::resolve_url;
use crate::pipeline::table_job::TableJob;
use crate::quality::{QUARANTINE_RULE, rules_for};
use crate::spec::{OnUnreadable, Source, WriteMode};

/// A landing source.
pub(crate) struct LandingStep<'a> {
    /// Where the files are and how to read them.
    pub(crate) source: &'a Source,
    /// The table as it is, if it has been committed.
    pub(crate) snapshot: Option<&'a TableSnapshot>,
    /// Append (new files only) or overwrite (every file).
    pub(crate) mode: WriteMode,
}

impl TableStep for LandingStep<'_> {
    type Plan = CheckedWrite;
    type Written = WriteResult;

    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<CheckedWrite>> {
        let (mut ingested, existing) = match (self.snapshot, self.mode) {
            (Some(s), WriteMode::Append) => (ingested_files(job, s).await?, data_columns(s)?),
            _ => (vec![], vec![]),
        };
        if self.mode == WriteMode::Append && self.source.on_unreadable == OnUnreadable::Quarantine {
            ingested.extend(quarantined_files(job).await?);
        }
        let input = BronzeInput {
            source_url: resolve_url(job.landing, &self.source.path)?,
            already_ingested: &ingested,
            existing: &existing,
            run_id: &job.run.id,
            now_micros: job.run.started_micros,
            partitions: job.partitions,
        };
        let Some(frame) = bronze_frame(job.ctx, job.pipeline, job.table, self.source, input).await? else {
            return Ok(None);
        };
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let columns = job.output_columns(&frame)?;
        let main = MainOutput::table(job);
        let raw_line = [CORRUPT_RECORD.to_string()];
        // Every file read again (a full refresh): the quarantine is rebuilt with the table.
        let quarantine = QuarantineCommit {
            mode: self.mode,
            ..QuarantineCommit::default()
        };
        CheckedWrite::plan(job, frame, rules, &columns, &raw_line, main)
            .map(|write| Some(write.with_quarantine_commit(quarantine)))
    }

    async fn write(
        &self,
        job: &TableJob<'_>,
        plan: &CheckedWrite,
        _: &mut TableOutcome,
    ) -> Result<WriteResult> {
        plan.write(job).await
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: CheckedWrite,
        result: WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        // Only empty landing files append nothing: no empty commit.
        let exists = self.snapshot.is_some();
        plan.commit_table(job, &result, TableCommit::Write(self.mode, exists), outcome)
            .await
    }
}

impl LandingStep<'_> {
    /// What a run would write: the rows of every file the source matches, typed from their
    /// first lines as a run types them; `pending`: also how many files a run would read.
    pub(crate) async fn dry_run(&self, job: &TableJob<'_>, pending: bool) -> Result<Outputs> {
        let source_url = resolve_url(job.landing, &self.source.path)?;
        let pending = match pending {
            true => Some(self.pending_files(job, &source_url).await),
            false => None,
        };
        let existing = match (self.snapshot, self.mode) {
            (Some(s), WriteMode::Append) => data_columns(s)?,
            _ => vec![],
        };
        let input = BronzeInput {
            source_url,
            already_ingested: &[],
            existing: &existing,
            run_id: &job.run.id,
            now_micros: job.run.started_micros,
            partitions: job.partitions,
        };
        let frame = match bronze_frame(job.ctx, job.pipeline, job.table, self.source, input).await {
            Ok(Some(frame)) => frame,
            // Nothing to type (only empty files, or files gone since the table was built):
            // the table is as committed, if it was.
            Ok(None) => {
                return Ok(Outputs {
                    pending,
                    ..Outputs::default()
                });
            }
            Err(Error::NoSourceFiles { .. }) if self.snapshot.is_some() => {
                return Ok(Outputs {
                    pending,
                    ..Outputs::default()
                });
            }
            Err(e) => return Err(e),
        };
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let columns = job.output_columns(&frame)?;
        let raw_line = [CORRUPT_RECORD.to_string()];
        let write = CheckedWrite::plan(job, frame, rules, &columns, &raw_line, MainOutput::table(job))?;
        let outputs = Outputs::written(write.dry_run(job).await?, Main::Table);
        Ok(Outputs { pending, ..outputs })
    }

    /// `3 new file(s) of 12`: the files a run would ingest.
    async fn pending_files(&self, job: &TableJob<'_>, source_url: &url::Url) -> String {
        let counted = async {
            let (_, matched) = landing_files(job.ctx, job.table, source_url).await?;
            let mut ingested = match (self.snapshot, self.mode) {
                (Some(s), WriteMode::Append) => ingested_files(job, s).await?,
                _ => vec![],
            };
            if self.mode == WriteMode::Append && self.source.on_unreadable == OnUnreadable::Quarantine {
                ingested.extend(quarantined_files(job).await?);
            }
            let new = matched
                .iter()
                .filter(|(url, _)| !ingested.iter().any(|done| done == url.as_str()))
                .count();
            Ok::<_, Error>(format!("{new} new file(s) of {}", matched.len()))
        };
        counted.await.unwrap_or_else(|e| error_chain(&e))
    }
}

/// Landing files already in a bronze table, so an append ingests each file once.
async fn ingested_files(job: &TableJob<'_>, snapshot: &TableSnapshot) -> Result<Vec<String>> {
    source_files(job, snapshot, None).await
}

/// Files quarantined whole as unreadable: ingested too (rename one to read it again).
async fn quarantined_files(job: &TableJob<'_>) -> Result<Vec<String>> {
    match TableSnapshot::load(&job.lakehouse.quarantine_url(job.table)).await? {
        Some(quarantine) => {
            let rule = ident(QUARANTINE_RULE).eq(lit(UNREADABLE_FILE));
            source_files(job, &quarantine, Some(rule)).await
        }
        None => Ok(vec![]),
    }
}

/// The distinct `_source_file` values of `snapshot`'s rows (those matching `filter`).
async fn source_files(
    job: &TableJob<'_>,
    snapshot: &TableSnapshot,
    filter: Option<Expr>,
) -> Result<Vec<String>> {
    let scan = snapshot.scan_table()?;
    if scan.schema.index_of(SOURCE_FILE).is_err() {
        return Ok(vec![]);
    }
    let err = |e| job.query_err("list ingested files", e);
    let mut frame = job.ctx.read_table(Arc::new(scan)).map_err(err)?;
    if let Some(filter) = filter {
        frame = frame.filter(filter).map_err(err)?;
    }
    let batches = frame
        .select(vec![ident(SOURCE_FILE)])
        .and_then(DataFrame::distinct)
        .map_err(err)?
        .collect()
        .await
        .map_err(err)?;
    let mut files = Vec::new();
    for batch in &batches {
        let column = cast(batch.column(0), &DataType::Utf8).map_err(|e| err(e.into()))?;
        let strings = column
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        files.extend(strings.iter().flatten().map(String::from));
    }
    Ok(files)
}

/// The landing columns of an existing bronze table: everything but audit and rescue columns.
fn data_columns(snapshot: &TableSnapshot) -> Result<Vec<Field>> {
    let schema = snapshot.scan_table()?.schema;
    Ok(schema
        .fields()
        .iter()
        .filter(|f| !AUDIT_COLUMNS.contains(&f.name().as_str()) && f.name() != RESCUED_DATA)
        .map(|f| f.as_ref().clone())
        .collect())
}
