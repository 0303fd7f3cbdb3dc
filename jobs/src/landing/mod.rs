//! Landing files → rows: discovery on the driver, parsing on the executors (after
//! decompressing gzip, zstd, bzip2 or xz files: [`compression`]).
//!
//! Malformed lines are never dropped and never abort the scan: each row carries
//! `_corrupt_record` (the raw line) and `_corrupt_reason` (file, line, field and why), so the
//! bronze step can quarantine them — Spark's PERMISSIVE mode with Auto Loader's
//! `_rescued_data` for JSON keys outside the schema.

mod compression;
mod csv;
mod discover;
mod exec;
mod ndjson;
mod options;
mod rows;
mod table;

pub(crate) use csv::push_csv_line;
pub use discover::{columns_per_file, discover_files};
pub use exec::LandingScanExec;
pub(crate) use ndjson::push_json;
pub use options::{
    CORRUPT_REASON, CORRUPT_RECORD, LandingFormat, LandingOptions, RESCUED_DATA, SOURCE_FILE,
    UNREADABLE_FILE, parse_sql_type,
};
pub(crate) use rows::RowsBuilder;
pub use table::LandingTable;
