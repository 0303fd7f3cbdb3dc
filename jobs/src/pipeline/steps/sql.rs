//! A table computed by a SQL query over other tables of the pipeline (silver, gold, ml).

use datafusion::dataframe::DataFrame;
use tracing::info;

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput, QuarantineCommit, TableCommit};
use super::incremental::{Computed, Decided, Merged, Query, computed, planned};
use super::unchanged::{self, Reads};
use crate::delta::{TableSnapshot, WriteResult};
use crate::error::Result;
use crate::layers::query_frame;
use crate::lineage::column_lineage;
use crate::pipeline::check::{Main, Outputs};
use crate::pipeline::outcome::{Refresh, RefreshKind, TableOutcome, TableStatus};
use crate::pipeline::table_job::{TableJob, Watermark};
use crate::quality::{Rule, rules_for};
use crate::spec::WriteMode;

/// Query columns starting with this are helpers: expectations see them, tables do not get them.
pub(crate) const HELPER_PREFIX: &str = "__";

/// A SQL table.
pub(crate) struct SqlStep<'a> {
    /// The query, `${…}` variables not yet substituted.
    pub(crate) sql: &'a str,
    /// Overwrite or append.
    pub(crate) mode: WriteMode,
    /// The table as it is, if it has been committed (an append of no rows then commits nothing).
    pub(crate) target: Option<&'a TableSnapshot>,
    /// Compute from the input's new rows when the query allows it (in full on `--full-refresh`).
    pub(crate) incremental: bool,
}

/// The checked write, and how it is committed.
pub(crate) struct SqlPlan {
    write: CheckedWrite,
    mode: WriteMode,
    refresh: Option<Refresh>,
    /// The table's files the rows replace (paths), for an incremental table by key.
    replacing: Option<Vec<String>>,
}

impl TableStep for SqlStep<'_> {
    type Plan = SqlPlan;
    type Written = WriteResult;

    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<SqlPlan>> {
        let frame = sql_frame(job, self.sql).await?;
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let how = match self.incremental {
            false if self.mode == WriteMode::Overwrite => {
                match unchanged::reads(job, self.sql, frame.logical_plan(), self.target).await? {
                    Reads::Unchanged => {
                        info!(table = %job.table.name, "nothing it reads changed since its last commit: kept");
                        return Ok(None);
                    }
                    Reads::Changed(watermarks) => How {
                        watermarks,
                        ..How::plain(frame, self.mode)
                    },
                }
            }
            false => How::plain(frame, self.mode),
            true => match self.incremental_frame(job, frame, &rules).await? {
                Some(how) => how,
                None => return Ok(None),
            },
        };
        let How {
            frame,
            mode,
            watermarks,
            refresh,
            replacing,
        } = how;
        let columns = job.output_columns(&frame)?;
        let main = MainOutput::table(job);
        let mut write =
            CheckedWrite::plan(job, frame, rules, &columns, &[], main)?.with_table_watermarks(watermarks);
        if mode == WriteMode::Overwrite {
            // Recomputed in full: so is its quarantine, so a bad row is there once.
            write = write.with_quarantine_commit(QuarantineCommit {
                mode: WriteMode::Overwrite,
                ..QuarantineCommit::default()
            });
        }
        Ok(Some(SqlPlan {
            write,
            mode,
            refresh,
            replacing,
        }))
    }

    async fn write(&self, job: &TableJob<'_>, plan: &SqlPlan, _: &mut TableOutcome) -> Result<WriteResult> {
        plan.write.write(job).await
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: SqlPlan,
        result: WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        let how = match (plan.replacing, self.target) {
            (Some(paths), Some(read)) => TableCommit::Replacing {
                removes: read.remove_files(&paths)?,
                read,
            },
            _ => TableCommit::Write(plan.mode, self.target.is_some()),
        };
        outcome.refresh = plan.refresh;
        plan.write.commit_table(job, &result, how, outcome).await
    }
}

/// What a run writes of a SQL table and how it is committed.
struct How {
    frame: DataFrame,
    mode: WriteMode,
    watermarks: Vec<Watermark>,
    refresh: Option<Refresh>,
    /// The table's files the rows replace (paths), for an incremental table by key.
    replacing: Option<Vec<String>>,
}

impl How {
    fn plain(frame: DataFrame, mode: WriteMode) -> Self {
        How {
            frame,
            mode,
            watermarks: vec![],
            refresh: None,
            replacing: None,
        }
    }
}

impl SqlStep<'_> {
    /// What a run would write, over the tables in the session; for an incremental table, how
    /// its query's shape lets a run compute it.
    pub(crate) async fn dry_run(&self, job: &TableJob<'_>) -> Result<Outputs> {
        let frame = sql_frame(job, self.sql).await?;
        let computed = self.incremental.then(|| planned(frame.logical_plan()));
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let columns = job.output_columns(&frame)?;
        let mut lineage = column_lineage(frame.logical_plan());
        lineage.retain(|c| columns.contains(&c.column));
        let write = CheckedWrite::plan(job, frame, rules, &columns, &[], MainOutput::table(job))?;
        let outputs = Outputs::written(write.dry_run(job).await?, Main::Table);
        Ok(Outputs {
            computed,
            lineage,
            ..outputs
        })
    }

    /// How an incremental table is computed this run (`None`: its inputs did not change).
    async fn incremental_frame(
        &self,
        job: &TableJob<'_>,
        frame: DataFrame,
        rules: &[Rule],
    ) -> Result<Option<How>> {
        let query = Query {
            sql: self.sql,
            frame: &frame,
            rules,
            target: self.target,
        };
        let Decided { computed, inputs } = computed(job, query).await?;
        let refresh = |kind: RefreshKind, detail: String| {
            info!(table = %job.table.name, refresh = kind.as_str(), %detail, "incremental table");
            Some(Refresh { kind, detail, inputs })
        };
        let how = match computed {
            Computed::Full { reason, watermarks } => How {
                refresh: refresh(RefreshKind::Full, reason),
                watermarks,
                ..How::plain(frame, WriteMode::Overwrite)
            },
            Computed::Appended { frame, watermarks } => How {
                refresh: refresh(RefreshKind::Appended, "the rows of its inputs' new files".into()),
                watermarks,
                ..How::plain(frame, WriteMode::Append)
            },
            Computed::Replaced {
                frame,
                watermarks,
                files,
                of,
                read,
                how,
            } => {
                let n = files.len();
                let read: String = read
                    .iter()
                    .map(|r| format!("; {} of {} file(s) of `{}` read", r.files, r.of, r.input))
                    .collect();
                let detail = match how {
                    Merged::Recomputed => format!(
                        "the keys its inputs' changes touch, recomputed ({n} of {of} file(s) replaced{read})"
                    ),
                    Merged::Combined => format!(
                        "the groups its inputs' new rows touch, their stored aggregates combined with the new rows' ({n} of {of} file(s) replaced)"
                    ),
                };
                How {
                    refresh: refresh(RefreshKind::ByKey, detail),
                    watermarks,
                    replacing: Some(files),
                    ..How::plain(frame, WriteMode::Append)
                }
            }
            Computed::Unchanged => return Ok(None),
        };
        Ok(Some(how))
    }
}

/// The query with the run id and the pipeline's variables substituted, planned.
pub(crate) async fn sql_frame(job: &TableJob<'_>, sql: &str) -> Result<DataFrame> {
    query_frame(job.ctx, job.pipeline, job.table, &job.substituted(sql)).await
}
