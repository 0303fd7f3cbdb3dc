//! Fetched records → rows: the value parsed as the source's format (a record that does not
//! parse becomes a corrupt row naming topic, partition and offset), then the record's topic,
//! partition, offset, timestamp and key.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use rskafka::record::RecordAndOffset;
use serde::{Deserialize, Serialize};

use crate::landing::{CORRUPT_REASON, CORRUPT_RECORD, LandingOptions, RowsBuilder, push_csv_line, push_json};
use crate::spec::{KafkaConnection, KafkaFormat};

/// Column with the record's topic.
pub const KAFKA_TOPIC: &str = "_kafka_topic";
/// Column with the record's partition.
pub const KAFKA_PARTITION: &str = "_kafka_partition";
/// Column with the record's offset.
pub const KAFKA_OFFSET: &str = "_kafka_offset";
/// Column with the record's timestamp.
pub const KAFKA_TIMESTAMP: &str = "_kafka_timestamp";
/// Column with the record's key, as text.
pub const KAFKA_KEY: &str = "_kafka_key";
/// The record columns every Kafka bronze row carries, in order.
pub const KAFKA_COLUMNS: [&str; 5] = [
    KAFKA_TOPIC,
    KAFKA_PARTITION,
    KAFKA_OFFSET,
    KAFKA_TIMESTAMP,
    KAFKA_KEY,
];

static RECORD_FIELDS: LazyLock<Vec<Field>> = LazyLock::new(|| {
    vec![
        Field::new(KAFKA_TOPIC, DataType::Utf8, false),
        Field::new(KAFKA_PARTITION, DataType::Int32, false),
        Field::new(KAFKA_OFFSET, DataType::Int64, false),
        Field::new(
            KAFKA_TIMESTAMP,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(KAFKA_KEY, DataType::Utf8, true),
    ]
});

/// What an executor needs to read and parse a topic's records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KafkaScanOptions {
    /// The brokers.
    pub connection: KafkaConnection,
    /// The topic.
    pub topic: String,
    /// How values are read.
    pub format: KafkaFormat,
    /// The columns and their types (and CSV's delimiter), as for landing files.
    pub parse: LandingOptions,
}

impl KafkaScanOptions {
    /// Data columns (and `_rescued_data`), the record columns, then the corrupt-row columns.
    pub fn schema(&self) -> SchemaRef {
        let parsed = self.parse.schema();
        let data = parsed.fields().len() - 3;
        let mut fields: Vec<Field> = parsed.fields()[..data]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(RECORD_FIELDS.iter().cloned());
        fields.push(Field::new(CORRUPT_RECORD, DataType::Utf8, true));
        fields.push(Field::new(CORRUPT_REASON, DataType::Utf8, true));
        Arc::new(Schema::new(fields))
    }
}

/// One batch of a partition's records.
pub(crate) fn records_batch(
    options: &KafkaScanOptions,
    schema: &SchemaRef,
    partition: i32,
    records: &[RecordAndOffset],
) -> Result<RecordBatch> {
    let parse = &options.parse;
    let mut rows = RowsBuilder::for_partition(parse, &options.topic, partition);
    for r in records {
        let offset = r.offset as u64;
        match (&r.record.value, options.format) {
            (value, KafkaFormat::Raw) => {
                let text = value.as_deref().map(String::from_utf8_lossy);
                rows.push_row(offset, std::iter::once(text.as_deref()), None);
            }
            (None, _) => rows.push_corrupt(offset, "", "the record has no value (a tombstone)"),
            (Some(value), KafkaFormat::Json) => {
                push_json(&mut rows, parse, offset, String::from_utf8_lossy(value).trim());
            }
            (Some(value), KafkaFormat::Csv) => push_csv_line(&mut rows, parse, offset, value),
        }
    }
    let parsed = rows.finish_parts()?;
    let n = records.len();
    let mut columns = parsed.columns;
    columns.push(Arc::new(StringArray::from(vec![options.topic.as_str(); n])) as ArrayRef);
    columns.push(Arc::new(Int32Array::from(vec![partition; n])));
    columns.push(Arc::new(Int64Array::from_iter_values(
        records.iter().map(|r| r.offset),
    )));
    let micros = records
        .iter()
        .map(|r| Some(r.record.timestamp.timestamp_micros()));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from_iter(micros).with_timezone("UTC"),
    ));
    let keys = records.iter().map(|r| {
        r.record
            .key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    });
    columns.push(Arc::new(StringArray::from_iter(keys)));
    columns.push(parsed.records);
    columns.push(parsed.reasons);
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
