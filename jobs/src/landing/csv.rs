//! Delimited text → rows; a line with the wrong number of fields becomes a corrupt row.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};

use super::options::LandingOptions;
use super::rows::{BATCH_ROWS, RowsBuilder};

/// Parses one CSV file's bytes.
pub(crate) fn parse_csv(options: &LandingOptions, file: &str, bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter)
        .from_reader(bytes);
    let expected = options.columns.len();
    let mut rows = RowsBuilder::new(options, file, false);
    let mut batches = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    let mut first = true;
    loop {
        let start = reader.position().byte() as usize;
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| DataFusionError::Execution(format!("{file}: cannot read CSV: {e}")))?;
        if !more {
            break;
        }
        if std::mem::take(&mut first) && options.header {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        let end = reader.position().byte() as usize;
        push_record(
            &mut rows,
            options,
            &record,
            line,
            &bytes[start..end.min(bytes.len())],
            expected,
        );
        if rows.len() >= BATCH_ROWS {
            batches.push(rows.finish()?);
        }
    }
    if rows.len() > 0 {
        batches.push(rows.finish()?);
    }
    Ok(batches)
}

fn push_record(
    rows: &mut RowsBuilder,
    options: &LandingOptions,
    record: &::csv::ByteRecord,
    line: u64,
    raw: &[u8],
    expected: usize,
) {
    let raw_text = String::from_utf8_lossy(raw);
    let raw_text = raw_text.trim_end_matches(['\r', '\n']);
    if record.len() != expected {
        let reason = format!("expected {expected} fields, found {}", record.len());
        rows.push_corrupt(line, raw_text, &reason);
        return;
    }
    let mut fields = Vec::with_capacity(expected);
    for (i, bytes) in record.iter().enumerate() {
        match std::str::from_utf8(bytes) {
            Ok(s) => fields.push(Some(s)),
            Err(_) => {
                let reason = format!("field `{}` is not valid UTF-8", options.columns[i].0);
                rows.push_corrupt(line, raw_text, &reason);
                return;
            }
        }
    }
    rows.push_row(line, fields.into_iter(), None);
}
