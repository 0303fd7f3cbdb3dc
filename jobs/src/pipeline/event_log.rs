//! The run event log: one Delta row per table per run (and one per failed attempt that was
//! retried), inside the lakehouse.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, Int64Array, Int64Builder, ListBuilder, RecordBatch, StringArray, StringBuilder, StructBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use tokio::sync::Mutex;
use url::Url;

use super::outcome::{Refresh, TableOutcome};
use crate::delta::TableSnapshot;
use crate::error::{Error, Result};

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
    let err = |step, source| Error::Delta {
        url: url.to_string(),
        step,
        source: Box::new(source),
    };
    let snapshot = TableSnapshot::load(url).await?;
    if let (Some(snapshot), Some(id)) = (&snapshot, app_id)
        && snapshot.txn_version(id).await?.is_some()
    {
        return Ok(());
    }
    let table = match snapshot {
        Some(snapshot) => snapshot.table().clone(),
        None => {
            deltalake::ensure_table_uri(url.as_str()).map_err(|e| err("create", e))?;
            crate::storage::delta_builder(url)
                .and_then(|b| b.build())
                .map_err(|e| err("open", e))?
        }
    };
    let txns: Vec<Transaction> = app_id.map(|id| Transaction::new(id, 0)).into_iter().collect();
    table
        .write(vec![batch])
        .with_commit_properties(CommitProperties::default().with_application_transactions(txns))
        .with_save_mode(SaveMode::Append)
        // Logs written before a column was added (e.g. `attempt`) gain it, older rows NULL.
        .with_schema_mode(SchemaMode::Merge)
        .await
        .map_err(|e| err("append", e))?;
    Ok(())
}

/// Appends outcome rows to the event log, one commit at a time.
#[derive(Debug)]
pub struct EventLog {
    url: Url,
    run_id: String,
    pipeline: String,
    cluster: String,
    lock: Mutex<()>,
}

impl EventLog {
    /// The log at `url` for one run.
    pub fn new(url: Url, run_id: &str, pipeline: &str, cluster: &str) -> Self {
        Self {
            url,
            run_id: run_id.into(),
            pipeline: pipeline.into(),
            cluster: cluster.into(),
            lock: Mutex::new(()),
        }
    }

    /// Appends one table's outcome.
    pub async fn record(&self, outcome: &TableOutcome) -> Result<()> {
        let batch = self.batch(outcome).map_err(|e| Error::Delta {
            url: self.url.to_string(),
            step: "build event",
            source: Box::new(e.into()),
        })?;
        let _guard = self.lock.lock().await;
        append_rows(&self.url, batch).await
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
