//! Touched keys shipped with the plan that uses them.
//!
//! An incremental run collects the keys its inputs' changes touch on the driver, then uses
//! them twice in one job: to recompute their rows and to keep the table's other rows. Shipped
//! as rows, no stage computes them again. A `VALUES` list does that for a few thousand keys;
//! past that its literal expressions cost more to plan than the keys cost to find. This table
//! holds the batches themselves: it travels to the scheduler in the logical plan as an Arrow
//! IPC stream (the cluster codec) and to the executors in the physical plan as DataFusion's
//! memory scan, whose wire format is IPC too.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// The most bytes of keys shipped; past them the keys' plan runs again where it is used
/// (a task's plan carries them, and gRPC messages are bounded).
pub(crate) const MAX_SHIPPED_BYTES: usize = 4 << 20;

/// Key rows, columns `__k0`, `__k1`, … (as the touched keys' relation names them).
#[derive(Debug, Clone)]
pub(crate) struct ShippedKeys {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl ShippedKeys {
    /// `batches` (of one schema) with their columns renamed by position, or `None` when they
    /// hold more than [`MAX_SHIPPED_BYTES`].
    pub(crate) fn within_limit(
        batches: &[RecordBatch],
        names: impl Fn(usize) -> String,
    ) -> Result<Option<Self>> {
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let Some(first) = batches.first().filter(|_| bytes <= MAX_SHIPPED_BYTES) else {
            return Ok(None);
        };
        let fields: Vec<Field> = first
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(n, f)| Field::new(names(n), f.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batches = batches
            .iter()
            .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
            .collect::<std::result::Result<_, _>>()?;
        Ok(Some(Self { schema, batches }))
    }

    /// The rows as an Arrow IPC stream.
    pub(crate) fn to_ipc(&self) -> Result<Vec<u8>> {
        let mut writer = StreamWriter::try_new(Vec::new(), &self.schema)?;
        for batch in &self.batches {
            writer.write(batch)?;
        }
        Ok(writer.into_inner()?)
    }

    /// The rows of an Arrow IPC stream written by [`ShippedKeys::to_ipc`].
    pub(crate) fn from_ipc(bytes: &[u8]) -> Result<Self> {
        let reader = StreamReader::try_new(bytes, None)?;
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<_, _>>()?;
        Ok(Self { schema, batches })
    }
}

#[async_trait::async_trait]
impl TableProvider for ShippedKeys {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = [self.batches.clone()];
        Ok(MemorySourceConfig::try_new_exec(
            &partitions,
            Arc::clone(&self.schema),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::DataType;

    use super::*;

    #[test]
    fn keys_round_trip_through_ipc_renamed() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("sku", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![3, 1])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
            ],
        )
        .unwrap();
        let keys = ShippedKeys::within_limit(&[batch.clone(), batch], |n| format!("__k{n}"))
            .unwrap()
            .unwrap();
        let back = ShippedKeys::from_ipc(&keys.to_ipc().unwrap()).unwrap();
        let names: Vec<_> = back.schema.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["__k0", "__k1"]);
        assert_eq!(back.batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 4);
        assert_eq!(back.batches[1].column(1).null_count(), 1);
    }

    #[test]
    fn keys_past_the_limit_are_not_shipped() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let rows = MAX_SHIPPED_BYTES / 8 + 1;
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values(0..rows as i64))],
        )
        .unwrap();
        assert!(
            ShippedKeys::within_limit(&[batch], |n| format!("__k{n}"))
                .unwrap()
                .is_none()
        );
        assert!(
            ShippedKeys::within_limit(&[], |n| format!("__k{n}"))
                .unwrap()
                .is_none()
        );
    }
}
