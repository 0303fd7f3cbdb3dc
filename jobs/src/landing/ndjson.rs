//! Newline-delimited JSON → rows; a line that is not a JSON object becomes a corrupt row and
//! keys outside the schema are kept in `_rescued_data`.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use serde_json::{Map, Value};

use super::options::LandingOptions;
use super::rows::{BATCH_ROWS, RowsBuilder};

/// Parses one NDJSON file's bytes.
pub(crate) fn parse_ndjson(options: &LandingOptions, file: &str, bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let mut rows = RowsBuilder::new(options, file);
    let mut batches = Vec::new();
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = index as u64 + 1;
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        push_json(&mut rows, options, line_no, text);
        if rows.len() >= BATCH_ROWS {
            batches.push(rows.finish()?);
        }
    }
    if rows.len() > 0 {
        batches.push(rows.finish()?);
    }
    Ok(batches)
}

/// One JSON object (a line, or a Kafka record's value) as a row; anything else as a corrupt row.
pub(crate) fn push_json(rows: &mut RowsBuilder, options: &LandingOptions, line: u64, text: &str) {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => push_object(rows, options, line, object),
        Ok(other) => rows.push_corrupt(
            line,
            text,
            &format!("expected a JSON object, found {}", kind(&other)),
        ),
        Err(e) => rows.push_corrupt(line, text, &format!("not valid JSON: {e}")),
    }
}

fn push_object(rows: &mut RowsBuilder, options: &LandingOptions, line: u64, mut object: Map<String, Value>) {
    let values: Vec<Option<String>> = options
        .columns
        .iter()
        .map(|(name, _)| object.remove(name).and_then(text_of))
        .collect();
    let rescued = (options.rescue && !object.is_empty()).then(|| Value::Object(object).to_string());
    rows.push_row(line, values.iter().map(Option::as_deref), rescued.as_deref());
}

/// Strings as they are, nested values as JSON text, null as null.
fn text_of(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
