//! Arrow types the Delta protocol can store.
//!
//! DataFusion produces view strings, nanosecond and zone-less timestamps; Delta stores plain
//! strings and microsecond UTC timestamps. Both the writer and the scan use this one mapping
//! so that a table reads back with the schema it was written with.

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

/// The type a column of type `t` is stored with.
pub fn stored_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Dictionary(_, value) => stored_type(value),
        DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Time32(_) | DataType::Time64(_) => DataType::Utf8,
        other => other.clone(),
    }
}

/// The schema a batch with `schema` is stored with.
pub fn normalize_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), stored_type(f.data_type()), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Casts a batch to [`normalize_schema`] of its schema.
pub fn normalize_batch(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(target), columns)
}
