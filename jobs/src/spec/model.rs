//! Types of a parsed, validated pipeline spec.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A whole pipeline: its name, where its lakehouse and landing files live, and its tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Pipeline name; part of every Delta `txn` app id.
    pub name: String,
    /// Root URL under which every table is written (`<root>/<layer>/<table>`).
    pub lakehouse: Option<String>,
    /// Base URL that relative source paths are resolved against.
    pub landing: Option<String>,
    /// Run parameters with their defaults: `${name}` in a query is replaced by the value.
    pub vars: BTreeMap<String, String>,
    /// Tables in the order they are declared in the file.
    pub tables: Vec<TableSpec>,
    /// The report's charts, in the order they are declared.
    pub charts: Vec<super::ChartSpec>,
    /// Watch and retry settings of tables that give none of their own.
    pub retry: super::RetryPolicy,
    /// Path of the file the spec came from (for error messages).
    pub path: String,
}

impl Pipeline {
    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<&TableSpec> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The watch and retry settings in effect for `table`.
    pub fn retry_policy(&self, table: &TableSpec) -> super::RetryPolicy {
        self.retry.overlaid(&table.retry)
    }
}

/// The medallion layer a table belongs to; it decides the folder and the audit columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Raw landing data with audit columns.
    Bronze,
    /// Cleaned, typed, deduplicated.
    Silver,
    /// Business aggregates.
    Gold,
    /// Model outputs.
    Ml,
}

impl Layer {
    /// Lower-case name as written in specs and folder names.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
            Layer::Ml => "ml",
        }
    }

    /// Parses a layer name.
    pub fn parse(s: &str) -> Option<Layer> {
        match s {
            "bronze" => Some(Layer::Bronze),
            "silver" => Some(Layer::Silver),
            "gold" => Some(Layer::Gold),
            "ml" => Some(Layer::Ml),
            _ => None,
        }
    }
}

/// One table of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// Unique name; also the SQL name other tables use.
    pub name: String,
    /// Layer the table belongs to.
    pub layer: Layer,
    /// What kind of table it is, and where its rows come from.
    pub kind: TableKind,
    /// Business key columns (documentation and later merge/dedup steps).
    pub keys: Vec<String>,
    /// Delta partition columns.
    pub partition_by: Vec<String>,
    /// Columns the table's files are clustered by (written sorted, in files of at most
    /// `rows_per_file` rows), so a merge of few keys reads and rewrites few files.
    pub cluster: Option<crate::delta::Clustering>,
    /// Data quality rules, checked in order.
    pub expectations: Vec<Expectation>,
    /// How the table is written.
    pub mode: WriteMode,
    /// SQL tables: compute from the input's new rows when the query allows it.
    pub incremental: bool,
    /// This table's own watch and retry settings, over the pipeline's.
    pub retry: super::RetrySettings,
    /// DataFusion and Ballista settings of this table's session (key, value), over the
    /// run's: e.g. a hash join for a table whose build side is known to fit in memory.
    pub settings: Vec<(String, String)>,
    /// 1-based line of the table's declaration in the spec file.
    pub line: usize,
}

impl TableSpec {
    /// What decides the table's rows and how they are stored — everything but where it is
    /// declared and how its jobs are watched and retried: moving a table in its file or
    /// changing its `retries` does not recompute a table kept while its inputs are unchanged.
    pub fn rows_definition(&self) -> String {
        let TableSpec {
            name,
            layer,
            kind,
            keys,
            partition_by,
            cluster,
            expectations,
            mode,
            incremental,
            settings,
            retry: _,
            line: _,
        } = self;
        format!(
            "{name} {layer:?} {kind:?} {keys:?} {partition_by:?} {cluster:?} {expectations:?} {mode:?} \
             {incremental} {settings:?}"
        )
    }
}

/// Suffix of a CDC table's log of the changes it has applied (`<table>__changes`).
pub const CHANGES_SUFFIX: &str = "__changes";

/// The kinds of table; each is one step of `pipeline::steps`.
#[derive(Debug, Clone, PartialEq)]
pub enum TableKind {
    /// Landing files ingested into the table, each file once.
    Landing(Source),
    /// A Kafka topic's records ingested into the table, each record once.
    Kafka(super::KafkaSource),
    /// A SQL query over other tables of the pipeline.
    Sql(String),
    /// An ALS model trained on a query's ratings (ml tables only); the table holds its
    /// recommendations.
    Als {
        /// The query that yields the ratings.
        sql: String,
        /// The model's settings.
        params: super::AlsParams,
    },
    /// Keyed changes read from another table and applied as SCD type 1 or 2.
    Cdc(CdcSpec),
    /// Data tests over other tables; the table holds one row per check with its violations.
    Checks(Vec<super::CheckSpec>),
}

/// A change-data-capture table: `from`'s rows are changes to the rows with the same `keys`.
#[derive(Debug, Clone, PartialEq)]
pub struct CdcSpec {
    /// The pipeline table the changes are read from (appended to, usually bronze).
    pub from: String,
    /// Columns identifying a row.
    pub keys: Vec<String>,
    /// SQL expression ordering a key's changes.
    pub sequence_by: String,
    /// Latest row per key, or every version.
    pub scd: Scd,
    /// SQL condition: the change deletes its key.
    pub delete_when: Option<String>,
    /// SQL expressions over `from`'s columns giving the change columns (typing, cleaning,
    /// masking on the way in); every column of `from` when absent.
    pub select: Option<Vec<String>>,
    /// A query shaping the change rows instead of `select`: it reads the rows of `from` this run
    /// applies as [`CHANGES_PLACEHOLDER`] and may join other tables of the pipeline.
    pub sql: Option<String>,
    /// Columns not kept (besides columns starting with `_`, never kept).
    pub except_columns: Vec<String>,
    /// SCD2: the columns whose changes open a new version; all kept columns when absent.
    pub track_history_columns: Option<Vec<String>>,
    /// Partition the table into this many key buckets (hidden column `_bucket`), so a batch
    /// rewrites only the buckets of the keys it touches.
    pub buckets: Option<u32>,
}

/// In `cdc.sql`, the rows of `from` a run reads.
pub const CHANGES_PLACEHOLDER: &str = "${changes}";

impl CdcSpec {
    /// `cdc.sql` with the new changes read from `relation`.
    pub fn shaping_sql(&self, relation: &str) -> Option<String> {
        self.sql
            .as_ref()
            .map(|sql| sql.replace(CHANGES_PLACEHOLDER, relation))
    }
}

/// Slowly changing dimension type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scd {
    /// The latest row per key.
    One,
    /// Every version, with its validity.
    Two,
}

impl TableKind {
    /// The query the table's rows come from; none for landing sources.
    pub fn sql(&self) -> Option<&str> {
        match self {
            TableKind::Landing(_) | TableKind::Kafka(_) | TableKind::Cdc(_) | TableKind::Checks(_) => None,
            TableKind::Sql(sql) | TableKind::Als { sql, .. } => Some(sql),
        }
    }

    /// Suffixes of the tables written beside the table and its quarantine (`<table><suffix>`).
    pub fn companion_suffixes(&self) -> &'static [&'static str] {
        match self {
            TableKind::Als { .. } => &super::ALS_COMPANIONS,
            TableKind::Cdc(_) => &[CHANGES_SUFFIX],
            TableKind::Landing(_) | TableKind::Kafka(_) | TableKind::Sql(_) | TableKind::Checks(_) => &[],
        }
    }
}

/// A landing source: files matched by a URL or glob.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// URL or glob, absolute or relative to the pipeline's landing root.
    pub path: String,
    /// File format.
    pub format: Format,
    /// CSV: whether the first line is a header.
    pub header: bool,
    /// CSV: field delimiter.
    pub delimiter: u8,
    /// Column name → SQL type for columns that should be typed on landing; others stay text.
    pub schema: BTreeMap<String, String>,
    /// Column names in order, for CSV files without a header.
    pub columns: Vec<String>,
    /// CSV and NDJSON: how the files are compressed.
    pub compression: Compression,
    /// CSV and NDJSON: what a column of new files that the table does not have does.
    pub schema_evolution: SchemaEvolution,
    /// CSV and NDJSON: what a file that cannot be read (or decompressed) does.
    pub on_unreadable: OnUnreadable,
}

/// What a landing file that cannot be read does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OnUnreadable {
    /// The table fails naming the file; nothing of the batch is committed, the file is read
    /// again next run.
    Fail,
    /// The file becomes one quarantine row (rule `readable_file`, the reason naming it) and
    /// counts as ingested; the rest of the batch lands.
    Quarantine,
}

/// What a landing column the bronze table does not have yet does (Auto Loader's
/// `schemaEvolutionMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SchemaEvolution {
    /// It is added to the table's schema in the same commit as the rows; older rows read NULL.
    AddColumns,
    /// Its values are kept as JSON in `_rescued_data`; the schema stays.
    Rescue,
    /// The table fails, naming the file and the column.
    Fail,
}

/// How landing files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compression {
    /// By each file's name (`.gz`, `.zst`, `.bz2`, `.xz`), else by its first bytes.
    Auto,
    /// Not compressed, whatever the name says.
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
}

impl Compression {
    /// The setting `name` names in a spec.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "auto" => Compression::Auto,
            "none" => Compression::None,
            "gzip" | "gz" => Compression::Gzip,
            "zstd" | "zst" => Compression::Zstd,
            "bzip2" | "bz2" => Compression::Bzip2,
            "xz" => Compression::Xz,
            _ => return None,
        })
    }
}

/// Landing file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma (or other delimiter) separated values.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// Lower-case name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
        }
    }
}

/// A data quality rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Rule name, reported in counts and quarantine rows.
    pub name: String,
    /// SQL boolean over the table's columns; a row passes only when it is TRUE.
    pub sql: String,
    /// What happens to failing rows.
    pub action: Action,
}

/// What an expectation does with failing rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Count them, keep them.
    Warn,
    /// Move them to `<table>__quarantine`.
    Drop,
    /// Abort the table; it stays at its previous version.
    Fail,
}

impl Action {
    /// Lower-case name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Warn => "warn",
            Action::Drop => "drop",
            Action::Fail => "fail",
        }
    }
}

/// How a table's new rows relate to its existing ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Replace the table's contents.
    Overwrite,
    /// Add rows.
    Append,
}

impl WriteMode {
    /// Lower-case name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Overwrite => "overwrite",
            WriteMode::Append => "append",
        }
    }
}
