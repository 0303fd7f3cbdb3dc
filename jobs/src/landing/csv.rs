//! Delimited text → rows. A file's header says where each column is, so files whose columns
//! differ in order or number land in the same table (a column a file lacks is NULL, one the
//! table does not take is rescued as JSON when the source rescues); a line with the wrong
//! number of fields becomes a corrupt row.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use serde_json::{Map, Value};

use super::options::LandingOptions;
use super::rows::{BATCH_ROWS, RowsBuilder};

/// Parses one CSV file's bytes.
pub(crate) fn parse_csv(options: &LandingOptions, file: &str, bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter)
        .from_reader(bytes);
    let mut rows = RowsBuilder::new(options, file);
    let mut batches = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    let mut layout = (!options.header).then(|| Layout::positional(options));
    loop {
        let start = reader.position().byte() as usize;
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| DataFusionError::Execution(format!("{file}: cannot read CSV: {e}")))?;
        if !more {
            break;
        }
        let Some(layout) = &layout else {
            layout = Some(Layout::of_header(options, &record));
            continue;
        };
        let line = record.position().map_or(0, |p| p.line());
        let end = reader.position().byte() as usize;
        let raw = String::from_utf8_lossy(&bytes[start..end.min(bytes.len())]);
        push_record(
            &mut rows,
            options,
            layout,
            &record,
            line,
            raw.trim_end_matches(['\r', '\n']),
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

/// One delimited line without a header (a Kafka record's value), fields in column order.
pub(crate) fn push_csv_line(rows: &mut RowsBuilder, options: &LandingOptions, line: u64, bytes: &[u8]) {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter)
        .from_reader(bytes);
    let mut record = ::csv::ByteRecord::new();
    let raw = String::from_utf8_lossy(bytes);
    let raw = raw.trim_end_matches(['\r', '\n']);
    match reader.read_byte_record(&mut record) {
        Ok(true) => push_record(rows, options, &Layout::positional(options), &record, line, raw),
        Ok(false) => rows.push_corrupt(line, raw, "empty record"),
        Err(e) => rows.push_corrupt(line, raw, &format!("not valid CSV: {e}")),
    }
}

/// Where each of the table's columns is in a line of one file.
struct Layout {
    /// Per column of `options.columns`, its field, if the file has it.
    positions: Vec<Option<usize>>,
    /// Fields per line.
    fields: usize,
    /// The fields no column takes, with their header names.
    others: Vec<(usize, String)>,
}

impl Layout {
    /// Fields in the order of the columns (a file without a header).
    fn positional(options: &LandingOptions) -> Self {
        Self {
            positions: (0..options.columns.len()).map(Some).collect(),
            fields: options.columns.len(),
            others: vec![],
        }
    }

    /// Fields where the file's header names them.
    fn of_header(options: &LandingOptions, header: &::csv::ByteRecord) -> Self {
        let names: Vec<String> = header
            .iter()
            .map(|b| {
                String::from_utf8_lossy(b)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let is_column = |name: &str| options.columns.iter().any(|(c, _)| c == name);
        Self {
            positions: options
                .columns
                .iter()
                .map(|(c, _)| names.iter().position(|n| n == c))
                .collect(),
            fields: names.len(),
            others: names
                .iter()
                .enumerate()
                .filter(|(_, n)| !is_column(n))
                .map(|(i, n)| (i, n.clone()))
                .collect(),
        }
    }
}

fn push_record(
    rows: &mut RowsBuilder,
    options: &LandingOptions,
    layout: &Layout,
    record: &::csv::ByteRecord,
    line: u64,
    raw: &str,
) {
    if record.len() != layout.fields {
        let reason = format!("expected {} fields, found {}", layout.fields, record.len());
        rows.push_corrupt(line, raw, &reason);
        return;
    }
    let mut fields = Vec::with_capacity(record.len());
    for (i, bytes) in record.iter().enumerate() {
        match std::str::from_utf8(bytes) {
            Ok(s) => fields.push(s),
            Err(_) => {
                let name = layout.positions.iter().position(|p| *p == Some(i));
                let name = name.map_or("?", |c| options.columns[c].0.as_str());
                rows.push_corrupt(line, raw, &format!("field `{name}` is not valid UTF-8"));
                return;
            }
        }
    }
    let values = layout.positions.iter().map(|p| p.map(|i| fields[i]));
    let rescued = (options.rescue && !layout.others.is_empty()).then(|| {
        let others: Map<String, Value> = layout
            .others
            .iter()
            .filter(|(i, _)| !fields[*i].is_empty())
            .map(|(i, name)| (name.clone(), Value::String(fields[*i].to_string())))
            .collect();
        Value::Object(others).to_string()
    });
    rows.push_row(line, values, rescued.as_deref());
}
