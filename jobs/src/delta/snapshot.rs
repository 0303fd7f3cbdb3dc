//! The committed state of one Delta table, loaded on the driver.

use deltalake::kernel::{Action, LogicalFileView};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use object_store::path::Path;
use url::Url;

use super::key_values::KeyValues;
use super::normalize::normalize_schema;
use super::scan::{DeltaFile, DeltaScanTable, rows_in_stats};
use crate::error::{Error, Result};

/// What was committed to a table after a version, for a reader that has read up to it.
#[derive(Debug, Clone, PartialEq)]
pub enum SinceVersion {
    /// Nothing.
    Unchanged,
    /// Only rows appended: the data files added (none removed with their data).
    Appended(Vec<DeltaFile>),
    /// Rows were removed or rewritten (an overwrite, a delete, a merge), or the log no longer
    /// holds every commit since: only reading the whole table is right.
    Rewritten,
}

/// The data files added and removed between two versions of a table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileChanges {
    /// Files added (their rows are new or replacements).
    pub added: Vec<DeltaFile>,
    /// Files removed (their rows are gone or replaced).
    pub removed: Vec<DeltaFile>,
}

/// A loaded Delta table at its latest version.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    table: DeltaTable,
    url: Url,
}

impl TableSnapshot {
    /// Loads the table at `url`; `None` when no Delta table exists there yet.
    pub async fn load(url: &Url) -> Result<Option<TableSnapshot>> {
        Self::load_at(url, None).await
    }

    /// Loads the table at `url` as of `version` (the latest when `None`).
    pub async fn load_at(url: &Url, version: Option<u64>) -> Result<Option<TableSnapshot>> {
        let mut builder =
            crate::storage::delta_builder(url).map_err(|source| delta_err(url, "open", source))?;
        if let Some(version) = version {
            builder = builder.with_version(version);
        }
        if !has_log(&builder)
            .await
            .map_err(|source| delta_err(url, "open", source))?
        {
            return Ok(None);
        }
        let table = builder
            .load()
            .await
            .map_err(|source| delta_err(url, "open", source))?;
        Ok(Some(TableSnapshot {
            table,
            url: url.clone(),
        }))
    }

    /// The table's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The loaded deltalake table (for commits).
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// The committed version.
    pub fn version(&self) -> i64 {
        self.table.version().map_or(-1, |v| v as i64)
    }

    /// The last run sequence committed by `app_id`, if any.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>> {
        let state = self
            .table
            .snapshot()
            .map_err(|s| delta_err(&self.url, "read state", s))?;
        state
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(|source| delta_err(&self.url, "read txn", source))
    }

    /// A provider that scans exactly this snapshot's files on the cluster.
    pub fn scan_table(&self) -> Result<DeltaScanTable> {
        let state = self
            .table
            .snapshot()
            .map_err(|s| delta_err(&self.url, "read state", s))?;
        let schema = normalize_schema(&state.snapshot().arrow_schema());
        let files = state.log_data().iter().map(|f| active_file(&f)).collect();
        Ok(DeltaScanTable {
            url: self.url.to_string(),
            schema,
            partition_columns: state.metadata().partition_columns().to_vec(),
            files,
        })
    }

    /// What was committed after `version` (`-1`: before the table existed) up to the loaded
    /// one, for a reader that needs only appended rows.
    pub async fn since(&self, version: i64) -> Result<SinceVersion> {
        Ok(match self.changes_since(version).await? {
            None => SinceVersion::Rewritten,
            Some(c) if !c.removed.is_empty() => SinceVersion::Rewritten,
            Some(c) if c.added.is_empty() => SinceVersion::Unchanged,
            Some(c) => SinceVersion::Appended(c.added),
        })
    }

    /// The data files added and removed after `version` up to the loaded one, from the commits
    /// in the log (`None` if it no longer holds them all). Net: a file added and removed since
    /// is in neither list. Files rewritten without changing data (compaction, `dataChange =
    /// false`) are in neither either.
    pub async fn changes_since(&self, version: i64) -> Result<Option<FileChanges>> {
        let mut changes = FileChanges::default();
        for v in (version + 1).max(0)..=self.version() {
            let Some(actions) = self.commit_actions(v).await? else {
                return Ok(None);
            };
            for action in actions {
                match action {
                    Action::Add(add) if add.data_change => changes.added.push(DeltaFile {
                        path: add.path,
                        size: add.size.max(0) as u64,
                        partition_values: add.partition_values.into_iter().collect(),
                        rows: rows_in_stats(add.stats.as_deref()),
                    }),
                    Action::Remove(remove) if remove.data_change => {
                        match changes.added.iter().position(|f| f.path == remove.path) {
                            Some(i) => drop(changes.added.remove(i)),
                            None => changes.removed.push(DeltaFile {
                                path: remove.path,
                                size: remove.size.unwrap_or_default().max(0) as u64,
                                partition_values: remove
                                    .partition_values
                                    .unwrap_or_default()
                                    .into_iter()
                                    .collect(),
                                rows: None,
                            }),
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Some(changes))
    }

    /// The actions of commit `version`; `None` if its log entry is gone (cleaned up).
    async fn commit_actions(&self, version: i64) -> Result<Option<Vec<Action>>> {
        let read = |s| delta_err(&self.url, "read log", s);
        let Some(bytes) = self
            .table
            .log_store()
            .read_commit_entry(version as u64)
            .await
            .map_err(read)?
        else {
            return Ok(None);
        };
        deltalake::logstore::get_actions(version as u64, &bytes)
            .map(Some)
            .map_err(read)
    }

    /// The data files the loaded version's commit added and removed: `(added, removed)`.
    pub async fn last_commit_files(&self) -> Result<(usize, usize)> {
        let version = self.version();
        let actions = self.commit_actions(version).await?.ok_or_else(|| {
            let missing = DeltaTableError::Generic(format!("commit {version} is missing"));
            delta_err(&self.url, "read log", missing)
        })?;
        Ok(actions.iter().fold((0, 0), |(a, r), action| match action {
            Action::Add(_) => (a + 1, r),
            Action::Remove(_) => (a, r + 1),
            _ => (a, r),
        }))
    }

    /// The active files that may hold a row whose `column` is one of `keys`: those whose
    /// statistics' range of the column holds one, or that have no such statistics. The others
    /// certainly hold none.
    pub fn files_holding(&self, column: &str, keys: &KeyValues) -> Result<Vec<DeltaFile>> {
        let state = self
            .table
            .snapshot()
            .map_err(|s| delta_err(&self.url, "read state", s))?;
        Ok(state
            .log_data()
            .iter()
            .filter(|f| keys.may_be_in(f.stats().as_deref(), column))
            .map(|f| active_file(&f))
            .collect())
    }

    /// `Remove` actions for these active files (by path), for a rewrite of some of them.
    pub fn remove_files(&self, paths: &[String]) -> Result<Vec<Action>> {
        let state = self
            .table
            .snapshot()
            .map_err(|s| delta_err(&self.url, "read state", s))?;
        Ok(state
            .log_data()
            .iter()
            .filter(|f| paths.iter().any(|p| p.as_str() == f.path()))
            .map(|f| Action::Remove(f.remove_action(true)))
            .collect())
    }

    /// `Remove` actions for every active file, for an overwrite.
    pub fn remove_all(&self) -> Result<Vec<Action>> {
        let state = self
            .table
            .snapshot()
            .map_err(|s| delta_err(&self.url, "read state", s))?;
        Ok(state
            .log_data()
            .iter()
            .map(|f| Action::Remove(f.remove_action(true)))
            .collect())
    }
}

/// `(min, max)` of an integer column in a file's Delta statistics.
/// Whether a `_delta_log` with at least one entry exists: a missing or empty folder is "no
/// table yet", anything else that fails to load is an error worth reporting.
async fn has_log(builder: &DeltaTableBuilder) -> Result<bool, DeltaTableError> {
    let store = builder.build_storage()?.object_store(None);
    let mut entries = store.list(Some(&Path::from("_delta_log")));
    match entries.next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(object_store::Error::NotFound { .. })) => Ok(false),
        Some(Err(e)) => Err(e.into()),
    }
}

pub(crate) fn delta_err(url: &Url, step: &'static str, source: DeltaTableError) -> Error {
    Error::Delta {
        url: url.to_string(),
        step,
        source: Box::new(source),
    }
}

/// An active file of a snapshot as a scan reads it.
fn active_file(file: &LogicalFileView) -> DeltaFile {
    DeltaFile {
        path: file.path().to_string(),
        size: file.size().max(0) as u64,
        partition_values: file.partition_values_map().into_iter().collect(),
        rows: file.num_records().map(|n| n as u64),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};

    use super::*;
    use crate::delta::{CommitOutcome, DeltaCommit, write_here};
    use crate::spec::WriteMode;

    async fn commit(url: &Url, seq: i64, mode: WriteMode, rows: &[i64]) -> Vec<String> {
        let batch =
            RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(rows.to_vec())) as _)]).unwrap();
        let staged = write_here(url, &batch).await.unwrap();
        let snapshot = TableSnapshot::load(url).await.unwrap();
        if snapshot.is_none() {
            deltalake::ensure_table_uri(url.as_str()).unwrap();
        }
        let outcome = DeltaCommit::new(url.clone(), "test", seq, Arc::clone(&staged.schema))
            .with_mode(mode)
            .with_adds(staged.adds.clone())
            .execute(snapshot.as_ref())
            .await
            .unwrap();
        assert!(matches!(outcome, CommitOutcome::Committed { .. }));
        staged.paths()
    }

    async fn since(url: &Url, version: i64) -> SinceVersion {
        TableSnapshot::load(url)
            .await
            .unwrap()
            .unwrap()
            .since(version)
            .await
            .unwrap()
    }

    fn paths(since: SinceVersion) -> Vec<String> {
        match since {
            SinceVersion::Appended(files) => files.into_iter().map(|f| f.path).collect(),
            other => panic!("expected appended files, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn appends_since_a_version_are_their_files_and_an_overwrite_is_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path()).unwrap();
        let first = commit(&url, 1, WriteMode::Append, &[1, 2]).await;
        let second = commit(&url, 2, WriteMode::Append, &[3]).await;
        let third = commit(&url, 3, WriteMode::Append, &[4]).await;
        assert_eq!(
            paths(since(&url, -1).await),
            [first, second.clone(), third.clone()].concat()
        );
        assert_eq!(paths(since(&url, 0).await), [second, third].concat());
        assert_eq!(since(&url, 2).await, SinceVersion::Unchanged);
        commit(&url, 4, WriteMode::Overwrite, &[5]).await;
        assert_eq!(since(&url, 2).await, SinceVersion::Rewritten);
        assert_eq!(
            since(&url, 3).await,
            SinceVersion::Unchanged,
            "the overwrite is version 3"
        );
    }

    #[tokio::test]
    async fn a_rewrite_of_files_another_commit_removed_since_it_read_them_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path()).unwrap();
        let a = commit(&url, 1, WriteMode::Append, &[1]).await;
        commit(&url, 2, WriteMode::Append, &[2]).await;
        let read = TableSnapshot::load(&url).await.unwrap().unwrap();
        let rewrite = |app: &'static str, rows: i64| {
            let url = url.clone();
            let removes = read.remove_files(&a).unwrap();
            async move {
                let batch =
                    RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![rows])) as _)]).unwrap();
                let staged = write_here(&url, &batch).await.unwrap();
                DeltaCommit::new(url, app, 1, Arc::clone(&staged.schema))
                    .with_adds(staged.adds.clone())
                    .with_removes(removes)
            }
        };
        // Another writer rewrites file `a` first, from the same read.
        let first = rewrite("writer-a", 10).await.execute(Some(&read)).await;
        assert!(first.is_ok(), "{first:?}");
        let second = rewrite("writer-b", 20).await.execute(Some(&read)).await;
        assert!(
            second.is_err(),
            "the second rewrite of `a` must conflict, got {second:?}"
        );
        assert_eq!(TableSnapshot::load(&url).await.unwrap().unwrap().version(), 2);
    }
}
