//! A CDC table: keyed changes read from another table since the version last applied, checked
//! against the table's expectations, appended to `<table>__changes`, and applied to the keys
//! they touch as SCD type 1 rows or SCD type 2 histories ([`crate::cdc`]).
//!
//! The table records the source version it has applied up to in its own commit (a `txn`
//! watermark). A run reads only the source files appended after it; if the source was rewritten
//! (or on `--full-refresh`) the change log and the table are rebuilt from the whole source.

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::lit;

use datafusion::arrow::array::Int64Array;
use tracing::info;

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput};
use crate::cdc::{ChangeColumns, DELETE, SEQUENCE, scd1_sql, scd2_sql, table_columns};
use crate::delta::{
    DeltaScanTable, OutputName, SinceVersion, Staged, TableSnapshot, WriteResult, WriteSpec, WriteTarget,
};
use crate::error::Result;
use crate::pipeline::outcome::{TableOutcome, TableStatus};
use crate::pipeline::table_job::{Rewrite, TableJob, discard};
use crate::quality::{Rule, rules_for};
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
    /// The source version read up to.
    source_version: i64,
    /// The whole source was read: the change log and the table are rebuilt.
    rebuild: bool,
}

/// The table's new rows, written, and the change rows they came from.
pub(crate) struct CdcWritten {
    table: WriteResult,
    spec: WriteSpec,
    schema: datafusion::arrow::datatypes::SchemaRef,
    /// New change files a resumed run found already in the log, deleted after the apply.
    duplicate_changes: Option<Staged>,
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
        let watermark = match (self.full_refresh, self.target) {
            (false, Some(target)) => target.txn_version(&watermark_id(job, &self.spec.from)).await?,
            _ => None,
        };
        let mut scan = source.scan_table()?;
        let rebuild = match watermark {
            None => true,
            Some(version) => match source.since(version).await? {
                SinceVersion::Unchanged => return Ok(None),
                SinceVersion::Appended(files) => {
                    scan = DeltaScanTable { files, ..scan };
                    false
                }
                SinceVersion::Rewritten => true,
            },
        };
        let frame = job
            .ctx
            .read_table(Arc::new(scan))
            .map_err(|e| job.query_err("read changes", e))?;
        let (frame, columns) = self.change_frame(job, frame).await?;
        let mut rules = key_rules(job, &frame, &columns)?;
        rules.extend(rules_for(job.pipeline, job.table, &frame)?);
        let written: Vec<String> = [
            &columns.keys[..],
            &columns.values[..],
            &[SEQUENCE.into(), DELETE.into()],
        ]
        .concat();
        let main = MainOutput {
            name: OutputName::named(CHANGES),
            url: job.lakehouse.companion_url(job.table, CHANGES_SUFFIX),
            partition_by: vec![],
        };
        let changes = CheckedWrite::plan(job, frame, rules, &written, &[], main)?;
        Ok(Some(CdcPlan {
            changes,
            columns,
            source_version: source.version(),
            rebuild,
        }))
    }

    /// Writes and commits the new changes to the log, then writes the table's rows for the keys
    /// they touch (and, unless rebuilding, the other keys' rows as they are).
    async fn write(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        outcome: &mut TableOutcome,
    ) -> Result<CdcWritten> {
        let result = plan.changes.write(job).await?;
        plan.changes.account(job, &result, outcome).await?;
        plan.changes.commit_quarantine(job, &result, outcome).await?;
        let new = plan.changes.staged(job, &result, &OutputName::named(CHANGES))?;
        let log_mode = if plan.rebuild {
            WriteMode::Overwrite
        } else {
            WriteMode::Append
        };
        let log_target = staged_target(&new);
        let logged = job
            .commit(
                &log_target,
                CHANGES_SUFFIX,
                Arc::clone(&new.schema),
                log_mode,
                new.adds.clone(),
            )
            .await?;
        let duplicate_changes =
            matches!(logged, crate::delta::CommitOutcome::AlreadyCommitted { .. }).then(|| new.clone());
        let (frame, rewritten) = self.applied(job, plan, &new).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let spec = WriteSpec {
            targets: vec![WriteTarget {
                name: OutputName::table(),
                url: job.lakehouse.table_url(job.table).to_string(),
                partition_by: job.table.partition_by.clone(),
                columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
                keep_when: None,
            }],
            counters: vec![],
            file_tag: String::new(),
        };
        let table = job.write(&frame, &spec).await?;
        Ok(CdcWritten {
            table,
            spec,
            schema,
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
        info!(table = %job.table.name, files_replaced = removes.len(), rebuild = plan.rebuild, "applying changes");
        let rewrite = Rewrite {
            removes,
            watermark: (watermark_id(job, &self.spec.from), plan.source_version),
            read: self.target,
        };
        let commit = job
            .commit_rewrite(target, schema, mode, files.adds, rewrite)
            .await?;
        if let Some(duplicates) = written.duplicate_changes {
            discard(&staged_target(&duplicates), &duplicates.adds).await;
        }
        outcome.rows_written = files.rows;
        Ok(outcome.committed(commit))
    }
}

impl CdcStep<'_> {
    /// The source rows as changes: keys, kept columns, [`SEQUENCE`] and [`DELETE`]. The
    /// `select` list (default: every column of `from` but `except_columns`), `sequence_by` and
    /// `delete_when` are all evaluated on the source row.
    async fn change_frame(&self, job: &TableJob<'_>, frame: DataFrame) -> Result<(DataFrame, ChangeColumns)> {
        let source = format!("__cdc_source_{}", job.table.name);
        job.ctx.deregister_table(&source).ok();
        job.ctx
            .register_table(&source, frame.clone().into_view())
            .map_err(|e| job.query_err("plan changes", e))?;
        let select = match &self.spec.select {
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
        };
        let delete = self.spec.delete_when.as_deref().unwrap_or("FALSE");
        let sql = format!(
            "SELECT {select}, ({sequence}) AS \"{SEQUENCE}\", COALESCE(({delete}), FALSE) AS \"{DELETE}\" FROM {source}",
            sequence = self.spec.sequence_by,
        );
        let planned = job.ctx.sql(&sql).await;
        job.ctx.deregister_table(&source).ok();
        let frame = planned.map_err(|e| {
            job.invalid(format!(
                "cdc.select, sequence_by or delete_when does not plan over `{}`: {e}",
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

    /// The table's rows after the new changes: every key's rows recomputed from its logged
    /// changes when rebuilding; otherwise the touched keys recomputed, plus the other rows of
    /// the files that may hold touched keys (returned: the files the write replaces).
    async fn applied(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        new: &Staged,
    ) -> Result<(DataFrame, Option<Vec<String>>)> {
        let err = |e| job.query_err("apply changes", e);
        let log = TableSnapshot::load(&job.lakehouse.companion_url(job.table, CHANGES_SUFFIX))
            .await?
            .ok_or_else(|| job.invalid("the change log was not committed".into()))?;
        let name = |part: &str| format!("__cdc_{part}_{}", job.table.name);
        let (log_name, new_name, changes_name, table_name) =
            (name("log"), name("new"), name("changes"), name("table"));
        let register = |name: &str, provider| {
            job.ctx.deregister_table(name).ok();
            job.ctx.register_table(name, provider).map_err(err)
        };
        register(&log_name, Arc::new(log.scan_table()?))?;
        register(&new_name, Arc::new(new.scan_table()))?;
        let on = |a: &str, b: &str| {
            plan.columns
                .keys
                .iter()
                .map(|k| format!("{a}.\"{k}\" = {b}.\"{k}\""))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let touched = if plan.rebuild {
            format!("SELECT * FROM {log_name}")
        } else {
            format!(
                "SELECT l.* FROM {log_name} l LEFT SEMI JOIN {new_name} n ON {}",
                on("l", "n")
            )
        };
        let changes = job.ctx.sql(&touched).await.map_err(err)?;
        register(&changes_name, changes.into_view())?;
        let rows = match self.spec.scd {
            Scd::One => scd1_sql(&changes_name, &plan.columns),
            Scd::Two => scd2_sql(&changes_name, &plan.columns),
        };
        let (sql, rewritten) = match (plan.rebuild, self.target) {
            (false, Some(target)) => {
                let scan = self.files_holding_touched(job, plan, target, &new_name).await?;
                let paths = scan.files.iter().map(|f| f.path.clone()).collect();
                register(&table_name, Arc::new(scan))?;
                let columns = table_columns(&plan.columns, self.spec.scd == Scd::Two)
                    .iter()
                    .map(|c| format!("t.\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "SELECT * FROM ({rows}) AS applied UNION ALL \
                     SELECT {columns} FROM {table_name} t LEFT ANTI JOIN {new_name} n ON {}",
                    on("t", "n")
                );
                (sql, Some(paths))
            }
            _ => (rows, None),
        };
        Ok((job.ctx.sql(&sql).await.map_err(err)?, rewritten))
    }

    /// A scan of the table's files that may hold a touched key: pruned by the statistics of an
    /// integer first key column; every file otherwise.
    async fn files_holding_touched(
        &self,
        job: &TableJob<'_>,
        plan: &CdcPlan,
        target: &TableSnapshot,
        new_name: &str,
    ) -> Result<DeltaScanTable> {
        let scan = target.scan_table()?;
        let key = &plan.columns.keys[0];
        let integer = scan
            .schema
            .field_with_name(key)
            .is_ok_and(|f| f.data_type().is_integer());
        if !integer {
            return Ok(scan);
        }
        let err = |e| job.query_err("find touched files", e);
        let batches = job
            .ctx
            .sql(&format!(
                "SELECT DISTINCT CAST(\"{key}\" AS BIGINT) FROM {new_name}"
            ))
            .await
            .map_err(err)?
            .collect()
            .await
            .map_err(err)?;
        let mut keys: Vec<i64> = Vec::new();
        for batch in &batches {
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| {
                    err(datafusion::error::DataFusionError::Internal(
                        "keys not BIGINT".into(),
                    ))
                })?;
            keys.extend(column.iter().flatten());
        }
        keys.sort_unstable();
        let files = target.files_holding(key, &keys)?;
        Ok(DeltaScanTable { files, ..scan })
    }
}

/// The `txn` app id of the source version the table has applied up to.
fn watermark_id(job: &TableJob<'_>, from: &str) -> String {
    format!(
        "medallion/{}/{}/applied/{from}",
        job.pipeline.name, job.table.name
    )
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

fn staged_target(staged: &Staged) -> WriteTarget {
    WriteTarget {
        name: OutputName::named(CHANGES),
        url: staged.url.to_string(),
        partition_by: staged.partition_by.clone(),
        columns: vec![],
        keep_when: None,
    }
}
