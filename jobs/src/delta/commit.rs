//! The single driver-side commit of a distributed write, made idempotent by a `txn` action.

use std::collections::HashMap;

use datafusion::arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, MetadataExt, StructType, Transaction, new_metadata};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use url::Url;

use super::normalize::normalize_schema;
use super::snapshot::{TableSnapshot, delta_err};
use crate::error::{Error, Result};
use crate::spec::WriteMode;

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A new table version was written.
    Committed {
        /// The new version.
        version: i64,
    },
    /// This app id had already committed this run sequence: nothing was written.
    AlreadyCommitted {
        /// The table's current version.
        version: i64,
    },
}

impl CommitOutcome {
    /// The table version after the commit.
    pub fn version(self) -> i64 {
        match self {
            CommitOutcome::Committed { version } | CommitOutcome::AlreadyCommitted { version } => version,
        }
    }
}

/// Commits data files written by executors as one Delta version.
#[derive(Debug)]
pub struct DeltaCommit {
    url: Url,
    app_id: String,
    sequence: i64,
    mode: WriteMode,
    partition_by: Vec<String>,
    schema: SchemaRef,
    adds: Vec<Add>,
    removes: Vec<Action>,
    watermarks: Vec<Transaction>,
    adds_columns: bool,
}

impl DeltaCommit {
    /// A commit to `url` on behalf of `app_id` for run `sequence`, of rows with `schema`.
    pub fn new(url: Url, app_id: impl Into<String>, sequence: i64, schema: SchemaRef) -> Self {
        Self {
            url,
            app_id: app_id.into(),
            sequence,
            mode: WriteMode::Append,
            partition_by: vec![],
            schema: normalize_schema(&schema),
            adds: vec![],
            removes: vec![],
            watermarks: vec![],
            adds_columns: false,
        }
    }

    /// Lets an append add nullable columns to the table's schema (older rows read NULL);
    /// any other difference is still a mismatch.
    #[must_use]
    pub fn with_added_columns(mut self, allowed: bool) -> Self {
        self.adds_columns = allowed;
        self
    }

    /// Overwrite or append.
    #[must_use]
    pub fn with_mode(mut self, mode: WriteMode) -> Self {
        self.mode = mode;
        self
    }

    /// Partition columns, for a table created by this commit.
    #[must_use]
    pub fn with_partition_by(mut self, partition_by: Vec<String>) -> Self {
        self.partition_by = partition_by;
        self
    }

    /// The data files to add.
    #[must_use]
    pub fn with_adds(mut self, adds: Vec<Add>) -> Self {
        self.adds = adds;
        self
    }

    /// `Remove` actions committed with the adds (an append that rewrites some files).
    #[must_use]
    pub fn with_removes(mut self, removes: Vec<Action>) -> Self {
        self.removes = removes;
        self
    }

    /// Records, in the same commit, that the table now reflects another table up to `version`
    /// (a `txn` action with `app_id`, read back with
    /// [`TableSnapshot::txn_version`](super::TableSnapshot::txn_version)).
    #[must_use]
    pub fn with_watermark(mut self, app_id: impl Into<String>, version: i64) -> Self {
        self.watermarks.push(Transaction::new(app_id.into(), version));
        self
    }

    /// Commits unless `snapshot` shows this run already did; creates the table if needed.
    pub async fn execute(self, snapshot: Option<&TableSnapshot>) -> Result<CommitOutcome> {
        let Some(snapshot) = snapshot else {
            return self.create().await;
        };
        if snapshot
            .txn_version(&self.app_id)
            .await?
            .is_some_and(|v| v >= self.sequence)
        {
            return Ok(CommitOutcome::AlreadyCommitted {
                version: snapshot.version(),
            });
        }
        let mut actions: Vec<Action> = Vec::new();
        let table = snapshot.scan_table()?;
        let table_schema = table.schema;
        if table_schema.fields() != self.schema.fields() || table.partition_columns != self.partition_by {
            let added = self.adds_columns
                && table.partition_columns == self.partition_by
                && only_adds_columns(&table_schema, &self.schema);
            match self.mode {
                WriteMode::Overwrite => actions.push(self.new_metadata(snapshot)?),
                WriteMode::Append if added => actions.push(self.new_metadata(snapshot)?),
                WriteMode::Append => return Err(self.mismatch(&table_schema, &table.partition_columns)),
            }
        }
        if self.mode == WriteMode::Overwrite {
            actions.extend(snapshot.remove_all()?);
        } else {
            actions.extend(self.removes.iter().cloned());
        }
        actions.extend(self.adds.iter().cloned().map(Action::Add));
        let state = snapshot
            .table()
            .snapshot()
            .map_err(|e| delta_err(&self.url, "read state", e))?;
        let operation = DeltaOperation::Write {
            mode: save_mode(self.mode),
            partition_by: (!self.partition_by.is_empty()).then(|| self.partition_by.clone()),
            predicate: None,
        };
        let committed = CommitBuilder::from(self.properties())
            .with_actions(actions)
            .build(Some(state), snapshot.table().log_store(), operation)
            .await;
        match committed {
            Ok(finalized) => Ok(CommitOutcome::Committed {
                version: finalized.version() as i64,
            }),
            Err(e) => self.landed_anyway(delta_err(&self.url, "commit", e)).await,
        }
    }

    /// After a failed commit: `Committed` if the log holds this commit all the same, else the
    /// error. A log entry written with a request whose reply was lost, then retried, fails
    /// the retry as a conflict with itself; the files it references must not be discarded.
    async fn landed_anyway(&self, error: Error) -> Result<CommitOutcome> {
        let Ok(Some(now)) = TableSnapshot::load(&self.url).await else {
            return Err(error);
        };
        match now.txn_version(&self.app_id).await {
            Ok(Some(v)) if v >= self.sequence => {
                tracing::warn!(url = %self.url, %error, version = now.version(), "the commit landed although it reported an error");
                Ok(CommitOutcome::Committed {
                    version: now.version(),
                })
            }
            _ => Err(error),
        }
    }

    async fn create(&self) -> Result<CommitOutcome> {
        let table = CreateBuilder::new()
            .with_storage_options(crate::storage::retry_settings().delta_options())
            .with_location(self.url.to_string())
            .with_columns(self.kernel_schema()?.fields().cloned())
            .with_partition_columns(self.partition_by.clone())
            .with_actions(self.adds.iter().cloned().map(Action::Add))
            .with_commit_properties(self.properties())
            .await;
        match table {
            Ok(table) => Ok(CommitOutcome::Committed {
                version: table.version().map_or(0, |v| v as i64),
            }),
            Err(e) => self.landed_anyway(delta_err(&self.url, "create", e)).await,
        }
    }

    fn properties(&self) -> CommitProperties {
        let mut info = HashMap::new();
        info.insert("medallion.app_id".to_string(), serde_json::json!(self.app_id));
        info.insert("medallion.sequence".to_string(), serde_json::json!(self.sequence));
        let mut txns = vec![Transaction::new(&self.app_id, self.sequence)];
        txns.extend(self.watermarks.iter().cloned());
        CommitProperties::default()
            .with_metadata(info)
            .with_application_transactions(txns)
    }

    fn kernel_schema(&self) -> Result<StructType> {
        self.schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| delta_err(&self.url, "convert schema", e.into()))
    }

    fn new_metadata(&self, snapshot: &TableSnapshot) -> Result<Action> {
        let state = snapshot
            .table()
            .snapshot()
            .map_err(|e| delta_err(&self.url, "read state", e))?;
        // The schema and the partition columns both change; the table keeps its id and settings.
        let old = state.metadata();
        let metadata = new_metadata(
            &self.kernel_schema()?,
            &self.partition_by,
            old.configuration().clone(),
        )
        .and_then(|m| m.with_table_id(old.id().to_string()))
        .map_err(|e| delta_err(&self.url, "replace schema", e.into()))?;
        Ok(Action::Metadata(metadata))
    }

    fn mismatch(&self, table_schema: &SchemaRef, table_partitions: &[String]) -> Error {
        let describe = |s: &SchemaRef, partitions: &[String]| {
            let columns = s
                .fields()
                .iter()
                .map(|f| format!("{} {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ");
            match partitions {
                [] => columns,
                _ => format!("{columns}; partitioned by {}", partitions.join(", ")),
            }
        };
        Error::SchemaMismatch {
            url: self.url.to_string(),
            expected: describe(table_schema, table_partitions),
            found: describe(&self.schema, &self.partition_by),
        }
    }
}

fn save_mode(mode: WriteMode) -> SaveMode {
    match mode {
        WriteMode::Overwrite => SaveMode::Overwrite,
        WriteMode::Append => SaveMode::Append,
    }
}

/// Whether `new` has every field of `table` (by name, same type) and only nullable others.
fn only_adds_columns(table: &SchemaRef, new: &SchemaRef) -> bool {
    let kept = table.fields().iter().all(|f| {
        new.field_with_name(f.name())
            .is_ok_and(|n| n.data_type() == f.data_type())
    });
    let added_nullable = new
        .fields()
        .iter()
        .filter(|f| table.field_with_name(f.name()).is_err())
        .all(|f| f.is_nullable());
    kept && added_nullable
}
