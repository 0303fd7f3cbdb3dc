//! What one distributed write produces: one or more named Delta outputs fed from the same rows,
//! and named counters over boolean columns — so a table, its quarantine and its expectation
//! counts come from a single evaluation of the query.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of one output of a write, unique within it; results are looked up by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutputName(String);

impl OutputName {
    /// The table itself.
    pub fn table() -> Self {
        Self("table".into())
    }

    /// The table's quarantine (`<table>__quarantine`).
    pub fn quarantine() -> Self {
        Self("quarantine".into())
    }

    /// Any other output, e.g. a companion table or a scratch folder.
    pub fn named(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as text, as it travels in a task's result.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutputName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Only the input rows whose boolean `column` equals `value` (NULL counts as FALSE).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeepWhen {
    /// Boolean input column.
    pub column: String,
    /// Value a kept row has.
    pub value: bool,
}

/// One Delta table written from the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WriteTarget {
    /// The output's name in the write's result.
    pub name: OutputName,
    /// Table root URL.
    pub url: String,
    /// Partition columns (names in the written schema).
    pub partition_by: Vec<String>,
    /// Input columns written, in order.
    pub columns: Vec<String>,
    /// Which rows; all of them when absent.
    pub keep_when: Option<KeepWhen>,
}

/// A count of the TRUE values of a boolean input column (e.g. "rule r failed").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Counter {
    /// The count's name in the write's result.
    pub name: String,
    /// Boolean input column.
    pub column: String,
}

/// Outputs plus counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WriteSpec {
    /// Tables written.
    pub targets: Vec<WriteTarget>,
    /// Columns whose TRUE values are counted.
    pub counters: Vec<Counter>,
    /// Prefix of every data file's name (the attempt that writes them); none when empty.
    #[serde(default)]
    pub file_tag: String,
    /// Rows written in an order, in files of a bounded size; as they come when absent.
    #[serde(default)]
    pub clustering: Option<Clustering>,
}

/// Each task's rows sorted by `by` and cut into files of at most `rows_per_file` rows: every
/// file holds a narrow range of `by`, so a merge of a few keys reads and replaces few files
/// (statistics tell which), as Delta's `OPTIMIZE … ZORDER BY` or liquid clustering give.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Clustering {
    /// Columns of the input, ascending, nulls first.
    pub by: Vec<String>,
    /// Rows per file, at most.
    pub rows_per_file: u64,
}

impl WriteSpec {
    /// The output named `name`.
    pub fn target(&self, name: &OutputName) -> Option<&WriteTarget> {
        self.targets.iter().find(|t| &t.name == name)
    }
}
