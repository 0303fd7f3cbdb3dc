//! The physical Kafka scan: each partition of the plan fetches the offset ranges its input lists,
//! straight from the partition leaders, and parses them.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, Int64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use futures::{Stream, StreamExt, TryStreamExt};
use rskafka::client::Client;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use tokio::sync::OnceCell;

use super::connect::connect;
use super::offsets::OffsetRange;
use super::records::{KafkaScanOptions, records_batch};

/// Bytes asked for per fetch: big enough to amortise a round trip, small enough for memory.
const FETCH_BYTES: i32 = 4 * 1024 * 1024;
/// How long the broker may wait for records that are not there yet.
const FETCH_WAIT_MS: i32 = 500;
/// Fetches in a row that may return nothing before the range counts as unreadable.
const EMPTY_FETCHES: usize = 20;

/// Reads the offset ranges its input (a `partition, start, end` list) names.
#[derive(Debug)]
pub struct KafkaScanExec {
    input: Arc<dyn ExecutionPlan>,
    options: Arc<KafkaScanOptions>,
    properties: Arc<PlanProperties>,
}

impl KafkaScanExec {
    /// Reads the ranges `input` lists, partition by partition.
    pub fn new(input: Arc<dyn ExecutionPlan>, options: KafkaScanOptions) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(options.schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            input,
            options: Arc::new(options),
            properties,
        }
    }

    /// What this scan reads.
    pub fn options(&self) -> &KafkaScanOptions {
        &self.options
    }
}

impl DisplayAs for KafkaScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KafkaScanExec: topic={}, format={:?}",
            self.options.topic, self.options.format
        )
    }
}

impl ExecutionPlan for KafkaScanExec {
    fn name(&self) -> &str {
        "KafkaScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("KafkaScanExec needs its range list".into()))?;
        Ok(Arc::new(Self::new(input, (*self.options).clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let listed = self.input.execute(partition, context)?;
        let options = Arc::clone(&self.options);
        // One connection to the brokers for all of this task's ranges.
        let client: Arc<OnceCell<Client>> = Arc::new(OnceCell::new());
        let schema = self.options.schema();
        let ranges = listed
            .map(|batch| batch.and_then(|b| ranges_of(&b)))
            .map_ok(|ranges| futures::stream::iter(ranges.into_iter().map(Ok::<_, DataFusionError>)))
            .try_flatten();
        let read_schema = Arc::clone(&schema);
        let batches = ranges
            .map_ok(move |range| {
                let source = Source {
                    options: Arc::clone(&options),
                    client: Arc::clone(&client),
                };
                read_range(source, Arc::clone(&read_schema), range)
            })
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

fn ranges_of(batch: &RecordBatch) -> Result<Vec<OffsetRange>> {
    let column = |i: usize| batch.column(i).as_any();
    let (Some(partitions), Some(starts), Some(ends)) = (
        column(0).downcast_ref::<Int32Array>(),
        column(1).downcast_ref::<Int64Array>(),
        column(2).downcast_ref::<Int64Array>(),
    ) else {
        return Err(DataFusionError::Internal(
            "KafkaScanExec: not a range list".into(),
        ));
    };
    Ok((0..batch.num_rows())
        .map(|i| OffsetRange {
            partition: partitions.value(i),
            start: starts.value(i),
            end: ends.value(i),
        })
        .collect())
}

/// Where a range's read has got to.
struct Cursor {
    client: Option<PartitionClient>,
    next: i64,
    empty_fetches: usize,
}

/// What a range is read with: the scan's settings and the task's (lazily made) client.
#[derive(Clone)]
struct Source {
    options: Arc<KafkaScanOptions>,
    client: Arc<OnceCell<Client>>,
}

/// The range's records as batches, one per fetch.
fn read_range(
    source: Source,
    schema: SchemaRef,
    range: OffsetRange,
) -> impl Stream<Item = Result<RecordBatch>> + Send {
    let cursor = Cursor {
        client: None,
        next: range.start,
        empty_fetches: 0,
    };
    futures::stream::try_unfold(cursor, move |mut cursor| {
        let source = source.clone();
        let options = Arc::clone(&source.options);
        let schema = Arc::clone(&schema);
        async move {
            while cursor.next < range.end {
                let client = match cursor.client.take() {
                    Some(client) => client,
                    None => partition_client(&source, range.partition).await?,
                };
                let fetched = client
                    .fetch_records(cursor.next, 1..FETCH_BYTES, FETCH_WAIT_MS)
                    .await
                    .map_err(|e| read_err(&options, range, cursor.next, &e.to_string()))?;
                cursor.client = Some(client);
                let records: Vec<_> = fetched
                    .0
                    .into_iter()
                    .filter(|r| r.offset >= cursor.next && r.offset < range.end)
                    .collect();
                let Some(last) = records.last().map(|r| r.offset) else {
                    cursor.empty_fetches += 1;
                    if cursor.empty_fetches >= EMPTY_FETCHES {
                        return Err(read_err(
                            &options,
                            range,
                            cursor.next,
                            "the broker returned no records",
                        ));
                    }
                    continue;
                };
                cursor.empty_fetches = 0;
                cursor.next = last + 1;
                tracing::debug!(topic = %options.topic, partition = range.partition, records = records.len(), next = cursor.next, "fetched");
                let batch = records_batch(&options, &schema, range.partition, &records)?;
                return Ok(Some((batch, cursor)));
            }
            Ok(None)
        }
    })
}

async fn partition_client(source: &Source, partition: i32) -> Result<PartitionClient> {
    let options = &source.options;
    let fail =
        |message: String| DataFusionError::Execution(format!("Kafka topic `{}`: {message}", options.topic));
    let client = source
        .client
        .get_or_try_init(|| connect(&options.connection))
        .await
        .map_err(fail)?;
    client
        .partition_client(options.topic.clone(), partition, UnknownTopicHandling::Retry)
        .await
        .map_err(|e| fail(format!("partition {partition}: {e}")))
}

fn read_err(options: &KafkaScanOptions, range: OffsetRange, at: i64, message: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "Kafka topic `{}` partition {}: cannot read offsets {at}..{}: {message}",
        options.topic, range.partition, range.end
    ))
}
