//! A `cdc` input's changed keys read off its change log rather than diffed from its files.
//!
//! A `cdc` table changes only by applying the changes logged in `<table>__changes` (a rebuild
//! rewrites it in full, and its readers then compute in full too), and each apply records
//! the log version it reached. So every row it changed after a version holds a key logged
//! after the log version that version had applied: the values of a key column in the log's
//! files appended since are the values its changed rows hold there (a superset — a late change
//! that lost to a stored one is logged too). Order lines joined to their orders: one column of
//! the batch's log files, where a diff sorts the rewritten files' rows by every column.

use tracing::debug;

use super::rewrite::InputFiles;
use crate::delta::{DeltaScanTable, SinceVersion, TableSnapshot};
use crate::error::{Result, error_chain};
use crate::pipeline::steps::cdc::applied_log_id;
use crate::pipeline::table_job::TableJob;
use crate::spec::{CHANGES_SUFFIX, TableKind, TableSpec};

/// The change-log files a `cdc` input's applies read since a version.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    /// The log files appended between the log version applied then and the one applied now.
    pub(crate) files: DeltaScanTable,
}

impl Logged {
    /// The logged changes of `changed` since the version its reader last read, when `column`
    /// is one of its `cdc` keys (a log row and the rows it changed hold the same value there);
    /// `None` otherwise, or when the log does not tell: no version recorded, the log rewritten
    /// or its old versions gone.
    pub(crate) async fn since(
        job: &TableJob<'_>,
        changed: &InputFiles,
        column: &str,
    ) -> Result<Option<Logged>> {
        let Some(input) = job.pipeline.table(&changed.name) else {
            return Ok(None);
        };
        let TableKind::Cdc(cdc) = &input.kind else {
            return Ok(None);
        };
        if !cdc.keys.iter().any(|k| k == column) {
            return Ok(None);
        }
        let id = applied_log_id(&job.pipeline.name, &input.name);
        let Some(to) = changed.snapshot.txn_version(&id).await? else {
            return Ok(None);
        };
        let Some(from) = applied_then(job, input, &id, changed.since).await else {
            return Ok(None);
        };
        // The table's files changed (its reader asks) but its log did not advance: something
        // other than an apply changed it (a restore, another writer) — only a diff tells what.
        if from >= to {
            return Ok(None);
        }
        let log_url = job.lakehouse.companion_url(input, CHANGES_SUFFIX);
        let Some(log) = load_at(&log_url, to).await else {
            return Ok(None);
        };
        let SinceVersion::Appended(files) = log.since(from).await? else {
            return Ok(None);
        };
        debug!(input = %input.name, from, to, files = files.len(), "changed keys from the change log");
        Ok(Some(Logged {
            files: DeltaScanTable {
                files,
                ..log.scan_table()?
            },
        }))
    }
}

/// The log version the input had applied at its version `since`.
async fn applied_then(job: &TableJob<'_>, input: &TableSpec, id: &str, since: i64) -> Option<i64> {
    let then = load_at(&job.lakehouse.table_url(input), since).await?;
    then.txn_version(id).await.ok().flatten()
}

/// The table at `url` as of `version`; `None` when it cannot be loaded (the caller then diffs).
async fn load_at(url: &url::Url, version: i64) -> Option<TableSnapshot> {
    let version = u64::try_from(version).ok()?;
    match TableSnapshot::load_at(url, Some(version)).await {
        Ok(found) => found,
        Err(e) => {
            debug!(%url, version, error = %error_chain(&e), "no such version: changed keys diffed");
            None
        }
    }
}
