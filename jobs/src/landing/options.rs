//! What a landing scan reads and the schema it produces.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::spec::Compression;

/// Column with the URL of the file a row came from.
pub const SOURCE_FILE: &str = "_source_file";
/// Column with the raw text of a malformed line (null for good rows).
pub const CORRUPT_RECORD: &str = "_corrupt_record";
/// Column saying why a line is malformed, naming file, line and field (null for good rows).
pub const CORRUPT_REASON: &str = "_corrupt_reason";
/// JSON column with keys of a JSON line that are not in the schema.
pub const RESCUED_DATA: &str = "_rescued_data";

/// Formats the landing scan parses itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LandingFormat {
    /// Delimited text.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// How an executor parses landing files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LandingOptions {
    /// File format.
    pub format: LandingFormat,
    /// CSV: skip the first line of each file.
    pub header: bool,
    /// CSV: field delimiter.
    pub delimiter: u8,
    /// Data columns in order, with their SQL type (`string` unless hinted).
    pub columns: Vec<(String, String)>,
    /// How the files are compressed.
    pub compression: Compression,
    /// Whether values outside `columns` are kept in `_rescued_data` (JSON).
    pub rescue: bool,
    /// Whether a file that does not decompress or parse becomes one corrupt row without a raw
    /// record (see [`UNREADABLE_FILE`]) instead of failing the scan.
    pub quarantine_unreadable: bool,
}

/// The rule a landing file that could not be read fails: its one row has a `_corrupt_reason`
/// and no `_corrupt_record` (a malformed line always keeps its raw text).
pub const UNREADABLE_FILE: &str = "readable_file";

impl LandingOptions {
    /// Data columns followed by the landing metadata columns.
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, ty)| Field::new(name, parse_sql_type(ty).unwrap_or(DataType::Utf8), true))
            .collect();
        if self.rescue {
            fields.push(Field::new(RESCUED_DATA, DataType::Utf8, true));
        }
        fields.push(Field::new(SOURCE_FILE, DataType::Utf8, false));
        fields.push(Field::new(CORRUPT_RECORD, DataType::Utf8, true));
        fields.push(Field::new(CORRUPT_REASON, DataType::Utf8, true));
        Arc::new(Schema::new(fields))
    }
}

/// Maps a SQL type name from a spec's schema hints to an Arrow type.
pub fn parse_sql_type(name: &str) -> Result<DataType, String> {
    let lower = name.trim().to_ascii_lowercase();
    let t = match lower.as_str() {
        "string" | "varchar" | "text" => DataType::Utf8,
        "bigint" | "long" | "int64" => DataType::Int64,
        "int" | "integer" | "int32" => DataType::Int32,
        "smallint" | "short" => DataType::Int16,
        "double" | "float64" => DataType::Float64,
        "float" | "real" | "float32" => DataType::Float32,
        "boolean" | "bool" => DataType::Boolean,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        other => return parse_decimal(other).ok_or_else(|| format!("unknown type `{name}`")),
    };
    Ok(t)
}

fn parse_decimal(s: &str) -> Option<DataType> {
    let inner = s.strip_prefix("decimal(")?.strip_suffix(')')?;
    let (p, sc) = inner.split_once(',')?;
    let precision: u8 = p.trim().parse().ok().filter(|p| (1..=38).contains(p))?;
    let scale: i8 = sc
        .trim()
        .parse()
        .ok()
        .filter(|s: &i8| *s >= 0 && (*s as u8) <= precision)?;
    Some(DataType::Decimal128(precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_sql_types() {
        assert_eq!(parse_sql_type("BIGINT").unwrap(), DataType::Int64);
        assert_eq!(
            parse_sql_type("decimal(10, 2)").unwrap(),
            DataType::Decimal128(10, 2)
        );
        assert!(parse_sql_type("decimal(2,5)").is_err());
        assert_eq!(parse_sql_type("blob").unwrap_err(), "unknown type `blob`");
    }
}
