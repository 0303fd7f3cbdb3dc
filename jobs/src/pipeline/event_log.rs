//! The run event log: one Delta row per table per run (and one per failed attempt that was
//! retried), inside the lakehouse.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, Int64Array, Int64Builder, ListBuilder, RecordBatch, StringArray, StringBuilder, StructBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;
use url::Url;

use super::outcome::{Refresh, TableOutcome};
use crate::delta::TableSnapshot;
use crate::error::{Error, Result, error_chain};

/// Where the event log lives under the lakehouse root.
pub const EVENT_LOG_PATH: &str = "_medallion/event_log";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, true),
        Field::new("pipeline", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("layer", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("rows_read", DataType::Int64, true),
        Field::new("rows_written", DataType::Int64, true),
        Field::new("rows_quarantined", DataType::Int64, true),
        Field::new("rule_failures", DataType::Utf8, true),
        Field::new("started_at", ts.clone(), true),
        Field::new("finished_at", ts, true),
        Field::new("duration_ms", DataType::Int64, true),
        Field::new("delta_version", DataType::Int64, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("cluster", DataType::Utf8, true),
        Field::new("attempt", DataType::Int64, true),
        Field::new("refresh", DataType::Utf8, true),
        Field::new("refresh_detail", DataType::Utf8, true),
        Field::new(
            "input_versions",
            DataType::List(Arc::new(input_versions_item())),
            true,
        ),
    ]))
});

/// One input's versions an incremental table covered.
fn input_versions_item() -> Field {
    let fields = vec![
        Field::new("table_name", DataType::Utf8, true),
        Field::new("from_version", DataType::Int64, true),
        Field::new("to_version", DataType::Int64, true),
    ];
    Field::new("item", DataType::Struct(fields.into()), true)
}

/// The input versions of one outcome, as the event log's one-row list column.
fn input_versions(refresh: Option<&Refresh>) -> ArrayRef {
    let DataType::Struct(fields) = input_versions_item().data_type().clone() else {
        unreachable!("the item is a struct")
    };
    let builder = StructBuilder::from_fields(fields, 0);
    let mut list = ListBuilder::new(builder).with_field(Arc::new(input_versions_item()));
    match refresh {
        None => list.append_null(),
        Some(refresh) => {
            let items = list.values();
            for input in &refresh.inputs {
                items
                    .field_builder::<StringBuilder>(0)
                    .expect("text")
                    .append_value(&input.table);
                items
                    .field_builder::<Int64Builder>(1)
                    .expect("int")
                    .append_option(input.from);
                items
                    .field_builder::<Int64Builder>(2)
                    .expect("int")
                    .append_value(input.to);
                items.append(true);
            }
            list.append(true);
        }
    }
    Arc::new(list.finish())
}

/// Appends `batch` to the Delta table at `url` in this process (creating the table the first
/// time): for small logs written by the driver or the scheduler, one commit per call.
pub async fn append_rows(url: &Url, batch: RecordBatch) -> Result<()> {
    append_rows_once(url, batch, None).await
}

/// [`append_rows`], recording `app_id` in the commit: when a commit already recorded it, the
/// rows are there and nothing is appended (a resumed run's once-per-run rows).
pub(crate) async fn append_rows_once(url: &Url, batch: RecordBatch, app_id: Option<&str>) -> Result<()> {
    let snapshot = TableSnapshot::load(url).await?;
    if let (Some(snapshot), Some(id)) = (&snapshot, app_id)
        && snapshot.txn_version(id).await?.is_some()
    {
        return Ok(());
    }
    let table = or_created(url, snapshot)?;
    let txns: Vec<Transaction> = app_id.map(|id| Transaction::new(id, 0)).into_iter().collect();
    append(url, table, vec![batch], txns).await?;
    Ok(())
}

/// The loaded table, or a new table at `url` when there is none yet.
fn or_created(url: &Url, snapshot: Option<TableSnapshot>) -> Result<DeltaTable> {
    match snapshot {
        Some(snapshot) => Ok(snapshot.table().clone()),
        None => create(url),
    }
}

fn create(url: &Url) -> Result<DeltaTable> {
    deltalake::ensure_table_uri(url.as_str()).map_err(|e| delta_err(url, "create", e))?;
    crate::storage::delta_builder(url)
        .and_then(|b| b.build())
        .map_err(|e| delta_err(url, "open", e))
}

/// Commits `batches` onto `table`, returning the table as of that commit. A table loaded before
/// other writers' commits is fine: appends never conflict, and the commit retries past them.
async fn append(
    url: &Url,
    table: DeltaTable,
    batches: Vec<RecordBatch>,
    txns: Vec<Transaction>,
) -> Result<DeltaTable> {
    table
        .write(batches)
        .with_commit_properties(CommitProperties::default().with_application_transactions(txns))
        .with_save_mode(SaveMode::Append)
        // Logs written before a column was added (e.g. `attempt`) gain it, older rows NULL.
        .with_schema_mode(SchemaMode::Merge)
        .await
        .map_err(|e| delta_err(url, "append", e))
}

fn delta_err(url: &Url, step: &'static str, source: deltalake::DeltaTableError) -> Error {
    Error::Delta {
        url: url.to_string(),
        step,
        source: Box::new(source),
    }
}

/// Appends outcome rows to the event log from a task of its own: a table's outcome is queued,
/// not waited for (an append costs ~40 ms, and every table's dependents waited for it behind
/// the others'), and the outcomes queued meanwhile go in one commit.
#[derive(Debug)]
pub struct EventLog {
    url: Url,
    run_id: String,
    pipeline: String,
    cluster: String,
    queue: mpsc::UnboundedSender<RecordBatch>,
    writer: JoinHandle<()>,
}

impl EventLog {
    /// The log at `url` for one run; its writer runs until [`close`](Self::close).
    pub fn new(url: Url, run_id: &str, pipeline: &str, cluster: &str) -> Self {
        let (queue, rows) = mpsc::unbounded_channel();
        Self {
            writer: tokio::spawn(write_queued(url.clone(), rows)),
            url,
            run_id: run_id.into(),
            pipeline: pipeline.into(),
            cluster: cluster.into(),
            queue,
        }
    }

    /// Queues one table's outcome.
    pub fn record(&self, outcome: &TableOutcome) -> Result<()> {
        let batch = self
            .batch(outcome)
            .map_err(|e| delta_err(&self.url, "build event", e.into()))?;
        self.queue.send(batch).map_err(|_| Error::EventLogWriterStopped {
            url: self.url.to_string(),
        })
    }

    /// Waits until every queued outcome is appended (or failed to be, with a warning).
    pub async fn close(self) {
        drop(self.queue);
        if let Err(e) = self.writer.await {
            warn!(error = %e, url = %self.url, "the event log writer stopped");
        }
    }

    fn batch(
        &self,
        o: &TableOutcome,
    ) -> std::result::Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let rules = serde_json::Value::Object(
            o.rule_failures
                .iter()
                .map(|(rule, action, n)| {
                    (
                        rule.clone(),
                        serde_json::json!({ "action": action.as_str(), "failed": n }),
                    )
                })
                .collect(),
        )
        .to_string();
        let finished = o.started_at_micros + o.duration.as_micros() as i64;
        let ts = |v: i64| Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone("UTC")) as ArrayRef;
        let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let int = |v: Option<i64>| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
        RecordBatch::try_new(
            Arc::clone(&SCHEMA),
            vec![
                text(&self.run_id),
                text(&self.pipeline),
                text(&o.table),
                text(o.layer.as_str()),
                text(o.status.as_str()),
                int(Some(o.rows_read as i64)),
                int(Some(o.rows_written as i64)),
                int(Some(o.rows_quarantined as i64)),
                text(&rules),
                ts(o.started_at_micros),
                ts(finished),
                int(Some(o.duration.as_millis() as i64)),
                int(o.version),
                Arc::new(StringArray::from(vec![o.error.clone()])),
                text(&self.cluster),
                int(Some(i64::from(o.attempts))),
                Arc::new(StringArray::from(vec![
                    o.refresh.as_ref().map(|r| r.kind.as_str()),
                ])),
                Arc::new(StringArray::from(vec![
                    o.refresh.as_ref().map(|r| r.detail.clone()),
                ])),
                input_versions(o.refresh.as_ref()),
            ],
        )
    }
}

/// Appends what is queued, one commit per wake-up, until the queue closes. A failed append is
/// warned about and its rows dropped: the event log records runs, it does not steer them.
async fn write_queued(url: Url, mut rows: mpsc::UnboundedReceiver<RecordBatch>) {
    let mut table: Option<DeltaTable> = None;
    let mut batches = Vec::new();
    while rows.recv_many(&mut batches, usize::MAX).await > 0 {
        let queued = std::mem::take(&mut batches);
        match append_queued(&url, table.take(), queued).await {
            Ok(committed) => table = Some(committed),
            Err(e) => warn!(error = %error_chain(&e), "could not append to the event log"),
        }
    }
}

/// Appends `batches` onto the log as the last append left it, or as it is now.
async fn append_queued(
    url: &Url,
    table: Option<DeltaTable>,
    batches: Vec<RecordBatch>,
) -> Result<DeltaTable> {
    let table = match table {
        Some(table) => table,
        None => or_created(url, TableSnapshot::load(url).await?)?,
    };
    append(url, table, batches, vec![]).await
}
