//! The committed state of one Delta table, loaded on the driver.

use deltalake::kernel::Action;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use object_store::path::Path;
use url::Url;

use super::normalize::normalize_schema;
use super::scan::{DeltaFile, DeltaScanTable};
use crate::error::{Error, Result};

/// A loaded Delta table at its latest version.
#[derive(Debug)]
pub struct TableSnapshot {
    table: DeltaTable,
    url: Url,
}

impl TableSnapshot {
    /// Loads the table at `url`; `None` when no Delta table exists there yet.
    pub async fn load(url: &Url) -> Result<Option<TableSnapshot>> {
        let builder = crate::storage::delta_builder(url).map_err(|source| delta_err(url, "open", source))?;
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
        let files = state
            .log_data()
            .iter()
            .map(|f| DeltaFile {
                path: f.path().to_string(),
                size: f.size().max(0) as u64,
                partition_values: f.partition_values_map().into_iter().collect(),
            })
            .collect();
        Ok(DeltaScanTable {
            url: self.url.to_string(),
            schema,
            partition_columns: state.metadata().partition_columns().to_vec(),
            files,
        })
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
