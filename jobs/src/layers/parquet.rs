//! Parquet landing files whose schemas differ: the table takes the union of their columns, in
//! first-seen order after the table's own; a column whose type differs between files (or from
//! the table) is widened when that loses nothing — a narrower integer to a wider one, an
//! integer of up to 32 bits or a float to a double, a decimal to one that holds both — and is
//! otherwise an error naming the file and the column. A column a file lacks reads NULL.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, lit};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion::scalar::ScalarValue;
use percent_encoding::percent_decode_str;
use url::Url;

use super::bronze::query_err;
use super::ident;
use crate::delta::{DeltaFile, DeltaScanTable, stored_type};
use crate::error::{Error, Result};
use crate::landing::{CORRUPT_REASON, CORRUPT_RECORD, SOURCE_FILE};
use crate::spec::{SchemaEvolution, TableSpec};

/// The new files' rows in the merged schema, each with its file, as one distributed scan.
pub(super) async fn parquet_frame(
    ctx: &SessionContext,
    table: &TableSpec,
    files: &[(Url, u64)],
    existing: &[Field],
    evolution: SchemaEvolution,
) -> Result<DataFrame> {
    // Each file's footer, for its schema; the rows are read by one scan below.
    let mut read = Vec::with_capacity(files.len());
    for (url, _) in files {
        let frame = ctx
            .read_parquet(url.as_str(), ParquetReadOptions::default())
            .await
            .map_err(|e| query_err(table, e))?;
        read.push((url, frame));
    }
    let mut columns = Columns {
        fields: existing.to_vec(),
        table: existing.len(),
    };
    for (url, frame) in &read {
        for field in frame.schema().fields() {
            columns.merge(url, field, table, evolution)?;
        }
    }
    let columns = columns.fields;
    let scan = files_scan(files, &columns)?;
    let frame = ctx.read_table(Arc::new(scan)).map_err(|e| query_err(table, e))?;
    let mut exprs: Vec<Expr> = columns.iter().map(|c| ident(c.name())).collect();
    exprs.push(ident(SOURCE_FILE));
    exprs.push(lit(ScalarValue::Utf8(None)).alias(CORRUPT_RECORD));
    exprs.push(lit(ScalarValue::Utf8(None)).alias(CORRUPT_REASON));
    frame.select(exprs).map_err(|e| query_err(table, e))
}

/// One Parquet scan of every file, read as `columns` (DataFusion fills a column a file lacks
/// with NULL and casts the widened ones), spread over scan tasks on the executors, each row
/// with its file's URL as the partition value `_source_file`.
fn files_scan(files: &[(Url, u64)], columns: &[Field]) -> Result<DeltaScanTable> {
    let (first, _) = files.first().expect("at least one new file");
    let root = format!("{}/", &first[..url::Position::BeforePath]);
    let files = files
        .iter()
        .map(|(url, size)| {
            let path = percent_decode_str(url.path())
                .decode_utf8()
                .map_err(|e| Error::Url {
                    url: url.to_string(),
                    message: e.to_string(),
                })?;
            Ok(DeltaFile {
                path: path.trim_start_matches('/').to_string(),
                size: *size,
                partition_values: vec![(SOURCE_FILE.to_string(), Some(url.to_string()))],
                rows: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut fields = columns.to_vec();
    fields.push(Field::new(SOURCE_FILE, DataType::Utf8, false));
    Ok(DeltaScanTable {
        url: root,
        schema: Arc::new(Schema::new(fields)),
        partition_columns: vec![SOURCE_FILE.to_string()],
        files,
    })
}

/// The merged columns: the table's first (their types fixed: Delta keeps a column's type),
/// then the new files' others.
struct Columns {
    fields: Vec<Field>,
    /// How many of `fields` are the table's.
    table: usize,
}

impl Columns {
    /// Adds `field` of `url`, or widens the column of that name to hold it too.
    fn merge(
        &mut self,
        url: &Url,
        field: &Field,
        table: &TableSpec,
        evolution: SchemaEvolution,
    ) -> Result<()> {
        let ty = stored_type(field.data_type());
        let Some(at) = self.fields.iter().position(|c| c.name() == field.name()) else {
            if self.table > 0 && evolution == SchemaEvolution::Fail {
                return Err(Error::NewColumn {
                    table: table.name.clone(),
                    url: url.to_string(),
                    column: field.name().clone(),
                });
            }
            self.fields.push(Field::new(field.name(), ty, true));
            return Ok(());
        };
        let had = stored_type(self.fields[at].data_type());
        match widened(&had, &ty) {
            Some(wider) if at >= self.table || wider == had => {
                self.fields[at] = Field::new(field.name(), wider, true);
                Ok(())
            }
            _ => Err(Error::LandingFile {
                url: url.to_string(),
                message: format!(
                    "column `{}` is {ty} here but {had} in {}; only widening that loses nothing (int → bigint, float → double, a wider decimal) is applied, and a table's column keeps its type (--full-refresh rebuilds it)",
                    field.name(),
                    if at < self.table {
                        "the table"
                    } else {
                        "an earlier file"
                    }
                ),
            }),
        }
    }
}

/// The narrowest type holding every value of `a` and of `b`, if there is one.
pub(super) fn widened(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let int_bits = |t: &DataType| match t {
        Int8 => Some(8),
        Int16 => Some(16),
        Int32 => Some(32),
        Int64 => Some(64),
        _ => None,
    };
    let float_bits = |t: &DataType| match t {
        Float32 => Some(32),
        Float64 => Some(64),
        _ => None,
    };
    match (a, b) {
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            let scale = (*s1).max(*s2);
            let digits = (*p1 as i16 - *s1 as i16).max(*p2 as i16 - *s2 as i16) + scale as i16;
            (digits <= 38).then_some(Decimal128(digits as u8, scale))
        }
        _ => match (int_bits(a), int_bits(b), float_bits(a), float_bits(b)) {
            (Some(x), Some(y), _, _) => Some(if x >= y { a.clone() } else { b.clone() }),
            (_, _, Some(_), Some(_)) => Some(Float64),
            // A double holds every integer of up to 32 bits exactly.
            (Some(x), None, None, Some(_)) | (None, Some(x), Some(_), None) if x <= 32 => Some(Float64),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_only_what_loses_nothing() {
        use DataType::*;
        assert_eq!(widened(&Int32, &Int64), Some(Int64));
        assert_eq!(widened(&Int64, &Int8), Some(Int64));
        assert_eq!(widened(&Float32, &Float64), Some(Float64));
        assert_eq!(widened(&Int32, &Float64), Some(Float64));
        assert_eq!(widened(&Float32, &Int16), Some(Float64));
        assert_eq!(
            widened(&Int64, &Float64),
            None,
            "a double cannot hold every bigint"
        );
        assert_eq!(widened(&Utf8, &Int64), None);
        assert_eq!(
            widened(&Decimal128(10, 2), &Decimal128(12, 4)),
            Some(Decimal128(12, 4))
        );
        assert_eq!(
            widened(&Decimal128(10, 2), &Decimal128(8, 4)),
            Some(Decimal128(12, 4))
        );
        assert_eq!(widened(&Decimal128(38, 0), &Decimal128(38, 10)), None);
    }
}
