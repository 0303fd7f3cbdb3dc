//! Change data capture: a table kept from a stream of keyed changes (upserts and deletes, each
//! with a sequence value), as the latest row per key (SCD type 1) or as the full history of
//! versions (SCD type 2).
//!
//! [`history`] builds the SQL that turns every change of a set of keys into the table's rows for
//! those keys. It is a function of each key's changes alone, whatever order they arrived in, so
//! applying a batch means recomputing only the keys the batch touches from their changes so far
//! — the same answer as recomputing everything (its property test checks both against a plain
//! in-order application).

pub mod bucket;
pub mod history;

pub use bucket::{BUCKET, bucket_of, bucket_sql};
pub use history::{
    ChangeColumns, DELETE, IS_CURRENT, LatestWindow, SEQUENCE, VALID_FROM, VALID_TO, scd1_sql, scd2_sql,
    table_columns,
};
