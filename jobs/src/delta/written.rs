//! What the write tasks send back to the driver, and their sum.
//!
//! Each task of a [`DeltaWriteExec`](super::DeltaWriteExec) returns one row whose only column
//! holds a [`TaskWritten`] message: the rows it read, its counters, and per output the files it
//! wrote, with their row counts and the Arrow schema they were written with. The physical
//! types are the truth: DataFusion's logical plan can disagree (e.g. a CASE typed BIGINT that
//! yields DECIMAL), and the Delta schema must match the files. The driver sums the messages
//! into a [`WriteResult`], looked up by output and counter name.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, BinaryArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::error::{DataFusionError, Result};
use deltalake::kernel::Add;
use prost::Message;

use super::write_spec::{OutputName, WriteSpec};

const WRITTEN: &str = "written";

static TASK_RESULT: LazyLock<SchemaRef> =
    LazyLock::new(|| Arc::new(Schema::new(vec![Field::new(WRITTEN, DataType::Binary, false)])));

/// Schema of what a write task returns: one row, a [`TaskWritten`] message.
pub fn task_result_schema() -> SchemaRef {
    Arc::clone(&TASK_RESULT)
}

/// One write task's report.
#[derive(Clone, PartialEq, Message)]
pub struct TaskWritten {
    /// Input rows.
    #[prost(uint64, tag = "1")]
    pub rows_read: u64,
    /// TRUE values per counter.
    #[prost(message, repeated, tag = "2")]
    pub counters: Vec<CounterValue>,
    /// Files per output.
    #[prost(message, repeated, tag = "3")]
    pub outputs: Vec<OutputFiles>,
}

/// One counter's value.
#[derive(Clone, PartialEq, Message)]
pub struct CounterValue {
    /// The counter's name in the spec.
    #[prost(string, tag = "1")]
    pub name: String,
    /// TRUE values seen.
    #[prost(uint64, tag = "2")]
    pub count: u64,
}

/// What a task wrote for one output.
#[derive(Clone, PartialEq, Message)]
pub struct OutputFiles {
    /// The output's name in the spec.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The schema the files were written with, as an Arrow IPC stream.
    #[prost(bytes = "vec", tag = "2")]
    pub arrow_schema: Vec<u8>,
    /// The data files.
    #[prost(message, repeated, tag = "3")]
    pub files: Vec<DataFile>,
}

/// One data file, as its Delta `Add` action will describe it.
#[derive(Clone, PartialEq, Message)]
pub struct DataFile {
    /// Path relative to the table root.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Bytes.
    #[prost(int64, tag = "2")]
    pub size: i64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub modification_time: i64,
    /// Partition column values (NULL partitions have no value).
    #[prost(message, repeated, tag = "4")]
    pub partition_values: Vec<PartitionValue>,
    /// The file's statistics in the Delta protocol's `stats` format.
    #[prost(string, optional, tag = "5")]
    pub stats: Option<String>,
    /// Rows in the file.
    #[prost(uint64, tag = "6")]
    pub rows: u64,
}

/// One partition column's value for a file.
#[derive(Clone, PartialEq, Message)]
pub struct PartitionValue {
    /// Partition column.
    #[prost(string, tag = "1")]
    pub column: String,
    /// Its value; none for NULL.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

impl DataFile {
    /// A file written by a Delta writer, with its row count.
    pub fn from_add(add: Add, rows: u64) -> Self {
        Self {
            path: add.path,
            size: add.size,
            modification_time: add.modification_time,
            partition_values: add
                .partition_values
                .into_iter()
                .map(|(column, value)| PartitionValue { column, value })
                .collect(),
            stats: add.stats,
            rows,
        }
    }

    /// The `Add` action that commits the file.
    pub fn into_add(self) -> Add {
        Add {
            path: self.path,
            size: self.size,
            modification_time: self.modification_time,
            partition_values: self
                .partition_values
                .into_iter()
                .map(|p| (p.column, p.value))
                .collect::<HashMap<_, _>>(),
            data_change: true,
            stats: self.stats,
            ..Default::default()
        }
    }
}

impl TaskWritten {
    /// The one-row batch a task returns.
    pub fn into_batch(self) -> Result<RecordBatch> {
        let bytes = self.encode_to_vec();
        Ok(RecordBatch::try_new(
            task_result_schema(),
            vec![Arc::new(BinaryArray::from(vec![bytes.as_slice()]))],
        )?)
    }
}

/// One output's files over all tasks.
#[derive(Debug, Clone, Default)]
pub struct OutputWritten {
    /// `Add` actions of the files.
    pub adds: Vec<Add>,
    /// Rows in the files.
    pub rows: u64,
    /// Schema as the executors wrote it; none when no task reported (no task ran).
    pub schema: Option<SchemaRef>,
}

/// Everything the write tasks returned, summed.
#[derive(Debug, Clone, Default)]
pub struct WriteResult {
    /// Input rows over all tasks.
    pub rows_read: u64,
    counters: BTreeMap<String, u64>,
    outputs: BTreeMap<OutputName, OutputWritten>,
}

impl WriteResult {
    /// Sums the task rows a write returned; every output and counter of `spec` is present.
    pub fn from_batches(spec: &WriteSpec, batches: &[RecordBatch]) -> Result<Self> {
        let mut result = WriteResult {
            rows_read: 0,
            counters: spec.counters.iter().map(|c| (c.name.clone(), 0)).collect(),
            outputs: spec
                .targets
                .iter()
                .map(|t| (t.name.clone(), OutputWritten::default()))
                .collect(),
        };
        for batch in batches {
            let column = batch
                .column_by_name(WRITTEN)
                .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
                .ok_or_else(|| {
                    DataFusionError::Internal("a Delta write task returned no `written` column".into())
                })?;
            for i in 0..column.len() {
                let task = TaskWritten::decode(column.value(i)).map_err(external)?;
                result.add(task)?;
            }
        }
        Ok(result)
    }

    fn add(&mut self, task: TaskWritten) -> Result<()> {
        self.rows_read += task.rows_read;
        for counter in task.counters {
            *self.counters.entry(counter.name).or_default() += counter.count;
        }
        for output in task.outputs {
            let name = OutputName::named(output.name);
            let written = self.outputs.get_mut(&name).ok_or_else(|| {
                DataFusionError::Internal(format!("a Delta write task reported an unknown output `{name}`"))
            })?;
            if written.schema.is_none() {
                written.schema = Some(schema_from_ipc(&output.arrow_schema)?);
            }
            for file in output.files {
                written.rows += file.rows;
                written.adds.push(file.into_add());
            }
        }
        Ok(())
    }

    /// What was written for `name` (empty when the spec has no such output).
    pub fn output(&self, name: &OutputName) -> OutputWritten {
        self.outputs.get(name).cloned().unwrap_or_default()
    }

    /// Rows written for `name`.
    pub fn rows(&self, name: &OutputName) -> u64 {
        self.outputs.get(name).map_or(0, |o| o.rows)
    }

    /// The value of counter `name`.
    pub fn counted(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Every output with its files.
    pub fn outputs(&self) -> impl Iterator<Item = (&OutputName, &OutputWritten)> {
        self.outputs.iter()
    }

    /// A result with these totals, for tests of what the driver does with one.
    #[cfg(test)]
    pub(crate) fn with_rows(rows_read: u64, rows: &[(OutputName, u64)]) -> Self {
        Self {
            rows_read,
            counters: BTreeMap::new(),
            outputs: rows
                .iter()
                .map(|(name, rows)| {
                    let written = OutputWritten {
                        rows: *rows,
                        ..Default::default()
                    };
                    (name.clone(), written)
                })
                .collect(),
        }
    }
}

/// A schema as Arrow IPC stream bytes.
pub(crate) fn schema_to_ipc(schema: &SchemaRef) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    StreamWriter::try_new(&mut bytes, schema)?.finish()?;
    Ok(bytes)
}

fn schema_from_ipc(bytes: &[u8]) -> Result<SchemaRef> {
    Ok(StreamReader::try_new(std::io::Cursor::new(bytes), None)?.schema())
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::write_spec::{Counter, WriteTarget};

    fn target(name: OutputName) -> WriteTarget {
        WriteTarget {
            name,
            url: "file:///t/".into(),
            partition_by: vec![],
            columns: vec!["a".into()],
            keep_when: None,
        }
    }

    fn task(rows: u64, path: &str, failed: u64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let add = Add {
            path: path.into(),
            size: 10,
            partition_values: HashMap::from([("day".to_string(), None)]),
            stats: Some(format!("{{\"numRecords\":{rows}}}")),
            data_change: true,
            ..Default::default()
        };
        TaskWritten {
            rows_read: rows + 1,
            counters: vec![CounterValue {
                name: "positive".into(),
                count: failed,
            }],
            outputs: vec![OutputFiles {
                name: "table".into(),
                arrow_schema: schema_to_ipc(&schema).unwrap(),
                files: vec![DataFile::from_add(add, rows)],
            }],
        }
        .into_batch()
        .unwrap()
    }

    #[test]
    fn tasks_sum_per_output_and_counter_by_name() {
        let spec = WriteSpec {
            targets: vec![target(OutputName::table()), target(OutputName::quarantine())],
            counters: vec![Counter {
                name: "positive".into(),
                column: "__failed".into(),
            }],
            file_tag: String::new(),
            clustering: None,
        };
        let result =
            WriteResult::from_batches(&spec, &[task(3, "a.parquet", 1), task(4, "b.parquet", 0)]).unwrap();
        assert_eq!(result.rows_read, 9);
        assert_eq!(result.counted("positive"), 1);
        let table = result.output(&OutputName::table());
        assert_eq!(table.rows, 7);
        let paths: Vec<&str> = table.adds.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["a.parquet", "b.parquet"]);
        assert_eq!(table.adds[0].partition_values.get("day"), Some(&None));
        assert_eq!(table.schema.unwrap().field(0).name(), "a");
        assert_eq!(result.rows(&OutputName::quarantine()), 0);
        assert!(result.output(&OutputName::quarantine()).schema.is_none());
    }

    #[test]
    fn an_output_the_spec_does_not_name_is_an_error() {
        let spec = WriteSpec {
            targets: vec![target(OutputName::quarantine())],
            ..Default::default()
        };
        let err = WriteResult::from_batches(&spec, &[task(1, "a.parquet", 0)]).unwrap_err();
        assert!(err.to_string().contains("unknown output `table`"), "{err}");
    }
}
