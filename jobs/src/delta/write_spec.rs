//! What one distributed write produces: one or more Delta targets fed from the same rows, and
//! counters over boolean columns — so a table, its quarantine and its expectation counts come
//! from a single evaluation of the query.

use datafusion::arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::error::{DataFusionError, Result};
use deltalake::kernel::Add;
use serde::{Deserialize, Serialize};

/// One Delta table written from the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WriteTarget {
    /// Table root URL.
    pub url: String,
    /// Partition columns (names in the written schema).
    pub partition_by: Vec<String>,
    /// Input columns written, in order.
    pub columns: Vec<usize>,
    /// Only rows whose boolean input column `.0` equals `.1`; all rows when absent.
    pub keep_when: Option<(usize, bool)>,
}

/// Targets plus the boolean input columns whose TRUE values are counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WriteSpec {
    /// Tables written.
    pub targets: Vec<WriteTarget>,
    /// Boolean columns counted (e.g. "rule i failed").
    pub count_columns: Vec<usize>,
    /// Prefix of every data file's name (the attempt that writes them); none when empty.
    #[serde(default)]
    pub file_tag: String,
}

/// Rows and counts one write task saw, returned beside its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Input rows.
    pub read: u64,
    /// TRUE values per count column.
    pub counted: Vec<u64>,
    /// Schema each target's files were written with, as hex Arrow IPC. The physical types are
    /// the truth: DataFusion's logical plan can disagree (e.g. a CASE typed BIGINT that yields
    /// DECIMAL), and the Delta schema must match the files.
    #[serde(default)]
    pub schemas: Vec<String>,
}

/// Everything the write tasks returned, summed.
#[derive(Debug, Clone, Default)]
pub struct WriteResult {
    /// `Add` actions per target.
    pub adds: Vec<Vec<Add>>,
    /// Rows written per target.
    pub rows: Vec<u64>,
    /// Input rows and counters over all tasks.
    pub counts: TaskCounts,
    /// Schema per target as written by the executors.
    pub schemas: Vec<Option<SchemaRef>>,
}

/// Row marker for the per-task counts in the result (`target` column).
pub(crate) const COUNTS_ROW: i32 = -1;

impl WriteResult {
    /// Parses the batches a [`DeltaWriteExec`](super::DeltaWriteExec) returned.
    pub fn from_batches(spec: &WriteSpec, batches: &[RecordBatch]) -> Result<Self> {
        let mut result = WriteResult {
            adds: vec![Vec::new(); spec.targets.len()],
            rows: vec![0; spec.targets.len()],
            counts: TaskCounts {
                read: 0,
                counted: vec![0; spec.count_columns.len()],
                schemas: vec![],
            },
            schemas: vec![None; spec.targets.len()],
        };
        for batch in batches {
            let (targets, payloads, rows) = columns(batch)?;
            for i in 0..batch.num_rows() {
                let payload = payloads.value(i);
                match targets.value(i) {
                    COUNTS_ROW => result.add_counts(serde_json::from_str(payload).map_err(external)?)?,
                    t => {
                        let t = usize::try_from(t).map_err(external)?;
                        result.adds[t].push(serde_json::from_str(payload).map_err(external)?);
                        result.rows[t] += rows.value(i).max(0) as u64;
                    }
                }
            }
        }
        Ok(result)
    }

    fn add_counts(&mut self, task: TaskCounts) -> Result<()> {
        self.counts.read += task.read;
        for (total, n) in self.counts.counted.iter_mut().zip(task.counted) {
            *total += n;
        }
        for (known, hex) in self.schemas.iter_mut().zip(&task.schemas) {
            if known.is_none() {
                *known = Some(schema_from_hex(hex)?);
            }
        }
        Ok(())
    }
}

fn columns(batch: &RecordBatch) -> Result<(&Int32Array, &StringArray, &Int64Array)> {
    let get = |i: usize| batch.column(i).as_any();
    match (
        get(0).downcast_ref::<Int32Array>(),
        get(2).downcast_ref::<StringArray>(),
        get(3).downcast_ref::<Int64Array>(),
    ) {
        (Some(t), Some(p), Some(r)) => Ok((t, p, r)),
        _ => Err(DataFusionError::Internal(
            "unexpected Delta write result schema".into(),
        )),
    }
}

/// A schema as hex-encoded Arrow IPC stream bytes.
pub(crate) fn schema_to_hex(schema: &SchemaRef) -> Result<String> {
    let mut bytes = Vec::new();
    StreamWriter::try_new(&mut bytes, schema)?.finish()?;
    Ok(hex::encode(bytes))
}

fn schema_from_hex(text: &str) -> Result<SchemaRef> {
    let bytes = hex::decode(text).map_err(external)?;
    Ok(StreamReader::try_new(std::io::Cursor::new(bytes), None)?.schema())
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
