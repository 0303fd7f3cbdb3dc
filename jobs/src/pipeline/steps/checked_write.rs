//! A table's rows checked against its expectations and written in one pass: the rows that pass
//! every `drop` rule to the table (or another named output), the others to
//! `<table>__quarantine` with the rule and the reason, and one count per rule.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use url::Url;

use crate::delta::{
    Clustering, Counter, KeepWhen, OutputName, Staged, TableSnapshot, WriteResult, WriteSpec, WriteTarget,
    normalize_schema, project_named,
};
use crate::error::{Error, Result};
use crate::pipeline::outcome::{TableOutcome, TableStatus};
use crate::pipeline::table_job::{Rewrite, TableJob, Watermark, discard};
use crate::quality::{CheckedFrame, QUARANTINE_SUFFIX, Rule};
use crate::spec::{Action, WriteMode};

/// Where the rows that pass go.
pub(crate) struct MainOutput {
    /// The output's name in the write.
    pub(crate) name: OutputName,
    /// Its folder.
    pub(crate) url: Url,
    /// Its partition columns.
    pub(crate) partition_by: Vec<String>,
    /// How its files are clustered.
    pub(crate) clustering: Option<Clustering>,
}

impl MainOutput {
    /// The job's table itself, partitioned as its spec says.
    pub(crate) fn table(job: &TableJob<'_>) -> Self {
        Self {
            name: OutputName::table(),
            url: job.lakehouse.table_url(job.table),
            partition_by: job.table.partition_by.clone(),
            clustering: job.table.cluster.clone(),
        }
    }
}

/// How the quarantine's rows are committed.
pub(crate) struct QuarantineCommit {
    /// Appended (each run's rows), or replacing every earlier run's (a rebuild).
    pub(crate) mode: WriteMode,
    /// What the rows were read up to (another table's version, a topic's offsets), recorded
    /// in the commit.
    pub(crate) watermarks: Vec<Watermark>,
    /// The same rows were committed by an earlier attempt that stopped before its later
    /// commits: they are discarded, not committed twice.
    pub(crate) already_committed: bool,
}

impl Default for QuarantineCommit {
    fn default() -> Self {
        Self {
            mode: WriteMode::Append,
            watermarks: vec![],
            already_committed: false,
        }
    }
}

/// How a checked write's table output is committed.
pub(crate) enum TableCommit<'a> {
    /// Appended or replacing the table; `true` when the table has been committed before.
    Write(WriteMode, bool),
    /// Appended, removing the files it replaces; checked against the table as `read`.
    Replacing {
        removes: Vec<deltalake::kernel::Action>,
        read: &'a TableSnapshot,
    },
}

/// The planned write.
pub(crate) struct CheckedWrite {
    rules: Vec<Rule>,
    checked: CheckedFrame,
    spec: WriteSpec,
    quarantine: QuarantineCommit,
    /// Recorded in the table's commit: the versions of other tables it reflects.
    table_watermarks: Vec<Watermark>,
}

impl CheckedWrite {
    /// `frame` checked against `rules`; `columns` go to `main`, plus `extra` (e.g. a malformed
    /// record's raw line) to the quarantine.
    pub(crate) fn plan(
        job: &TableJob<'_>,
        frame: DataFrame,
        rules: Vec<Rule>,
        columns: &[String],
        extra: &[String],
        main: MainOutput,
    ) -> Result<Self> {
        let checked = CheckedFrame::build(frame, &rules, columns, extra, &job.run.id, job.run.started_micros)
            .map_err(|e| job.query_err("plan expectations", e))?;
        let keep = |value| {
            checked.keep_column.as_ref().map(|column| KeepWhen {
                column: column.clone(),
                value,
            })
        };
        let clustering = main.clustering;
        let unknown = clustering
            .iter()
            .flat_map(|c| &c.by)
            .find(|c| !checked.table_columns.contains(c));
        if let Some(column) = unknown {
            let why = format!("cluster_by column `{column}` is not a column of the table");
            return Err(job.query_err("plan", DataFusionError::Plan(why)));
        }
        let mut targets = vec![WriteTarget {
            name: main.name,
            url: main.url.to_string(),
            partition_by: main.partition_by,
            columns: checked.table_columns.clone(),
            keep_when: keep(true),
        }];
        if let Some(columns) = &checked.quarantine_columns {
            targets.push(WriteTarget {
                name: OutputName::quarantine(),
                url: job.lakehouse.quarantine_url(job.table).to_string(),
                partition_by: vec![],
                columns: columns.clone(),
                keep_when: keep(false),
            });
        }
        // Counters are named after their columns: rule names need not be unique across the
        // pipeline's, the table's and the built-in rules.
        let counters = checked
            .failed_columns
            .iter()
            .map(|column| Counter {
                name: column.clone(),
                column: column.clone(),
            })
            .collect();
        let spec = WriteSpec {
            targets,
            counters,
            file_tag: String::new(),
            clustering,
        };
        Ok(Self {
            rules,
            checked,
            spec,
            quarantine: QuarantineCommit::default(),
            table_watermarks: vec![],
        })
    }

    /// The quarantine committed as `quarantine` says instead of appended.
    pub(crate) fn with_quarantine_commit(self, quarantine: QuarantineCommit) -> Self {
        Self { quarantine, ..self }
    }

    /// The table's commit records `watermarks`.
    pub(crate) fn with_table_watermarks(self, watermarks: Vec<Watermark>) -> Self {
        Self {
            table_watermarks: watermarks,
            ..self
        }
    }

    /// Each output's schema, the physical plan built to check it (nothing runs): what a
    /// run would write, for [`crate::pipeline::check`].
    pub(crate) async fn dry_run(self, job: &TableJob<'_>) -> Result<Vec<(OutputName, SchemaRef)>> {
        // The physical plan's: the logical one's types are not coerced yet.
        let physical = self
            .checked
            .frame
            .create_physical_plan()
            .await
            .map_err(|e| job.query_err("plan", e))?;
        let schema = physical.schema();
        self.spec
            .targets
            .iter()
            .map(|target| {
                let projected = schema
                    .project(&indices(&schema, &target.columns))
                    .map_err(|e| job.query_err("plan", e.into()))?;
                Ok((target.name.clone(), normalize_schema(&Arc::new(projected))))
            })
            .collect()
    }

    /// Writes every output on the cluster; nothing is committed.
    pub(crate) async fn write(&self, job: &TableJob<'_>) -> Result<WriteResult> {
        job.write(&self.checked.frame, &self.spec).await
    }

    /// Checks that each row read went to exactly one output (deleting the files if not) and
    /// records the rule counts.
    pub(crate) async fn account(
        &self,
        job: &TableJob<'_>,
        result: &WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<()> {
        if let Err(e) = check_accounting(&job.table.name, result) {
            self.discard_all(result, None).await;
            return Err(e);
        }
        outcome.rows_read = result.rows_read;
        outcome.rule_failures = self
            .rules
            .iter()
            .zip(&self.spec.counters)
            .map(|(r, c)| (r.name.clone(), r.action, result.counted(&c.name)))
            .collect();
        Ok(())
    }

    /// Commits the quarantine when it has rows (or replaces it); then fails — deleting the
    /// other outputs' files — if a `fail` rule had failing rows.
    pub(crate) async fn commit_quarantine(
        &self,
        job: &TableJob<'_>,
        result: &WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<()> {
        let quarantine = OutputName::quarantine();
        if let Some(target) = self.spec.target(&quarantine) {
            let written = result.output(&quarantine);
            outcome.rows_quarantined = written.rows;
            let how = &self.quarantine;
            if how.already_committed {
                discard(target, &written.adds).await;
            } else if written.rows > 0 || how.mode == WriteMode::Overwrite {
                let schema = self.written_schema(job, target, written.schema)?;
                let files = (how.mode, written.adds);
                job.commit_watermarked(target, QUARANTINE_SUFFIX, schema, files, how.watermarks.clone())
                    .await?;
            }
        }
        if let Some((rule, _, rows)) = outcome
            .rule_failures
            .iter()
            .find(|(_, a, n)| *a == Action::Fail && *n > 0)
        {
            self.discard_all(result, Some(&quarantine)).await;
            return Err(Error::ExpectationFailed {
                table: job.table.name.clone(),
                rule: rule.clone(),
                rows: *rows,
            });
        }
        Ok(())
    }

    /// Accounts for the rows, commits the quarantine, then — unless a `fail` rule failed — the
    /// table. An append of no rows to a table that exists commits nothing.
    pub(crate) async fn commit_table(
        &self,
        job: &TableJob<'_>,
        result: &WriteResult,
        how: TableCommit<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        if result.rows_read == 0 && matches!(how, TableCommit::Write(WriteMode::Append, true)) {
            return Ok(TableStatus::NoNewData);
        }
        self.account(job, result, outcome).await?;
        self.commit_quarantine(job, result, outcome).await?;
        let table = OutputName::table();
        let target = self.target(job, &table)?;
        let written = result.output(&table);
        let schema = self.written_schema(job, target, written.schema)?;
        let watermarks = self.table_watermarks.clone();
        let commit = match how {
            TableCommit::Write(mode, _) => {
                let files = (mode, written.adds);
                job.commit_watermarked(target, "", schema, files, watermarks)
                    .await?
            }
            TableCommit::Replacing { removes, read } => {
                let rewrite = Rewrite {
                    removes,
                    watermarks,
                    read: Some(read),
                };
                job.commit_rewrite(target, schema, WriteMode::Append, written.adds, rewrite)
                    .await?
            }
        };
        outcome.rows_written = written.rows;
        Ok(outcome.committed(commit))
    }

    /// Output `name`'s files, uncommitted, to be read by a later job.
    pub(crate) fn staged(
        &self,
        job: &TableJob<'_>,
        result: &WriteResult,
        name: &OutputName,
    ) -> Result<Staged> {
        let logical = Arc::new(self.checked.frame.schema().as_arrow().clone());
        Staged::from_result(&self.spec, result, name, &logical).map_err(|e| job.query_err("write", e))
    }

    fn target(&self, job: &TableJob<'_>, name: &OutputName) -> Result<&WriteTarget> {
        self.spec.target(name).ok_or_else(|| {
            job.query_err(
                "plan write",
                DataFusionError::Internal(format!("the write has no output `{name}`")),
            )
        })
    }

    /// The schema the executors wrote `target` with; the logical one only if no task reported
    /// (no task ran).
    fn written_schema(
        &self,
        job: &TableJob<'_>,
        target: &WriteTarget,
        written: Option<SchemaRef>,
    ) -> Result<SchemaRef> {
        match written {
            Some(written) => Ok(written),
            None => project_named(
                &Arc::new(self.checked.frame.schema().as_arrow().clone()),
                &target.columns,
            )
            .map(Arc::new)
            .map_err(|e| job.query_err("plan write", e)),
        }
    }

    async fn discard_all(&self, result: &WriteResult, except: Option<&OutputName>) {
        for target in self.spec.targets.iter().filter(|t| Some(&t.name) != except) {
            discard(target, &result.output(&target.name).adds).await;
        }
    }
}

/// Every row the query produced is in the quarantine's or another output's new files, exactly
/// once.
fn check_accounting(table: &str, result: &WriteResult) -> Result<()> {
    let quarantine = OutputName::quarantine();
    let quarantined = result.rows(&quarantine);
    let written: u64 = result
        .outputs()
        .filter(|(name, _)| **name != quarantine)
        .map(|(_, o)| o.rows)
        .sum();
    if written + quarantined == result.rows_read {
        return Ok(());
    }
    Err(Error::RowsUnaccounted {
        table: table.to_string(),
        read: result.rows_read,
        written,
        quarantined,
    })
}

/// The positions of `columns` in `schema` (each is there: the checked frame projects them).
fn indices(schema: &SchemaRef, columns: &[String]) -> Vec<usize> {
    columns.iter().filter_map(|c| schema.index_of(c).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(read: u64, written: u64, quarantined: Option<u64>) -> WriteResult {
        let mut rows = vec![(OutputName::table(), written)];
        rows.extend(quarantined.map(|q| (OutputName::quarantine(), q)));
        WriteResult::with_rows(read, &rows)
    }

    #[test]
    fn every_row_read_is_written_or_quarantined() {
        assert!(check_accounting("t", &result(10, 7, Some(3))).is_ok());
        assert!(check_accounting("t", &result(10, 10, None)).is_ok());
        let err = check_accounting("t", &result(10, 7, Some(2))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table `t`: 10 row(s) read but 7 written and 2 quarantined; nothing committed"
        );
    }
}
