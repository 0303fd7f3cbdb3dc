//! Key buckets: a CDC table with `cdc.buckets = N` is partitioned by [`BUCKET`], a stable hash
//! of its key into `0..N`, so a batch that touches few keys rewrites only their buckets' files.
//!
//! The hash is `split_hash` of the key columns' texts (joined by the unit separator): the same
//! in every process and every run, so a key's rows always sit in one bucket.

/// The partition column holding a row's key bucket.
pub const BUCKET: &str = "_bucket";

/// SQL giving the bucket (INT, `0..buckets`) of the row's `keys`.
pub fn bucket_sql(keys: &[String], buckets: u32) -> String {
    let texts = keys
        .iter()
        .map(|k| format!("CAST(\"{}\" AS VARCHAR)", k.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    format!("CAST(floor(split_hash('{BUCKET}', concat_ws(chr(31), {texts}), '') * {buckets}) AS INT)")
}

/// The bucket `bucket_sql` gives a key whose columns' texts are `texts`.
pub fn bucket_of(texts: &[&str], buckets: u32) -> u32 {
    let fraction = crate::udf::split_fraction(BUCKET, &texts.join("\u{1f}"), "");
    (fraction * f64::from(buckets)) as u32
}
