//! Accumulates parsed lines as text and turns them into typed Arrow batches.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;

use super::options::LandingOptions;

/// Rows per output batch.
pub(crate) const BATCH_ROWS: usize = 8192;

/// Where parsed rows come from, as `_corrupt_reason` names it.
enum Origin {
    /// A landing file (its name; rows are lines).
    File(String),
    /// A Kafka partition (rows are offsets).
    Partition { topic: String, partition: i32 },
}

/// The parsed columns of a run of rows, before any origin column.
pub(crate) struct ParsedRows {
    /// Data columns (typed), then `_rescued_data` when kept.
    pub(crate) columns: Vec<ArrayRef>,
    /// `_corrupt_record`.
    pub(crate) records: ArrayRef,
    /// `_corrupt_reason`.
    pub(crate) reasons: ArrayRef,
}

/// Text values of one file's (or partition's) rows, plus the landing metadata columns.
pub(crate) struct RowsBuilder {
    schema: SchemaRef,
    file: String,
    origin: Origin,
    values: Vec<StringBuilder>,
    rescued: Option<StringBuilder>,
    corrupt_record: StringBuilder,
    corrupt_reason: StringBuilder,
    /// Line number of each buffered row, for cast-failure reasons.
    lines: Vec<u64>,
    rows: usize,
}

impl RowsBuilder {
    pub(crate) fn new(options: &LandingOptions, file: &str) -> Self {
        let file_name = file.rsplit('/').next().unwrap_or(file).to_string();
        Self::with_origin(options, file, Origin::File(file_name))
    }

    /// Rows of Kafka records; the "line" of a row is its offset.
    pub(crate) fn for_partition(options: &LandingOptions, topic: &str, partition: i32) -> Self {
        let origin = Origin::Partition {
            topic: topic.to_string(),
            partition,
        };
        Self::with_origin(options, "", origin)
    }

    fn with_origin(options: &LandingOptions, file: &str, origin: Origin) -> Self {
        Self {
            schema: options.schema(),
            file: file.to_string(),
            origin,
            values: options.columns.iter().map(|_| StringBuilder::new()).collect(),
            rescued: options.rescue.then(StringBuilder::new),
            corrupt_record: StringBuilder::new(),
            corrupt_reason: StringBuilder::new(),
            lines: Vec::new(),
            rows: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// A well-formed line: one value per data column (None = null).
    pub(crate) fn push_row<'a>(
        &mut self,
        line: u64,
        values: impl Iterator<Item = Option<&'a str>>,
        rescued: Option<&str>,
    ) {
        for (builder, v) in self.values.iter_mut().zip(values) {
            builder.append_option(v.filter(|s| !s.is_empty()));
        }
        if let Some(r) = self.rescued.as_mut() {
            r.append_option(rescued);
        }
        self.corrupt_record.append_null();
        self.corrupt_reason.append_null();
        self.lines.push(line);
        self.rows += 1;
    }

    /// A malformed line: all data columns null, the raw text and the reason kept.
    pub(crate) fn push_corrupt(&mut self, line: u64, raw: &str, reason: &str) {
        for builder in &mut self.values {
            builder.append_null();
        }
        if let Some(r) = self.rescued.as_mut() {
            r.append_null();
        }
        self.corrupt_record.append_value(raw);
        self.corrupt_reason
            .append_value(format!("{}: {reason}", self.locate(line)));
        self.lines.push(line);
        self.rows += 1;
    }

    /// `file line n`, or `topic \`t\` partition p offset n`.
    fn locate(&self, line: u64) -> String {
        match &self.origin {
            Origin::File(name) => format!("{name} line {line}"),
            Origin::Partition { topic, partition } => {
                format!("topic `{topic}` partition {partition} offset {line}")
            }
        }
    }

    /// A whole file that could not be read: all data columns null, no raw record, the reason.
    pub(crate) fn push_unreadable(&mut self, reason: &str) {
        for builder in &mut self.values {
            builder.append_null();
        }
        if let Some(r) = self.rescued.as_mut() {
            r.append_null();
        }
        self.corrupt_record.append_null();
        let name = match &self.origin {
            Origin::File(name) => name.as_str(),
            Origin::Partition { topic, .. } => topic.as_str(),
        };
        self.corrupt_reason
            .append_value(format!("{name}: unreadable file: {reason}"));
        self.lines.push(0);
        self.rows += 1;
    }

    /// Builds the landing batch: the parsed columns with `_source_file`.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let rows = self.rows;
        let parsed = self.finish_parts()?;
        let mut columns = parsed.columns;
        columns.push(Arc::new(StringArray::from(vec![self.file.as_str(); rows])));
        columns.push(parsed.records);
        columns.push(parsed.reasons);
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// The parsed columns, casting hinted ones; values that do not cast mark their row corrupt.
    pub(crate) fn finish_parts(&mut self) -> Result<ParsedRows> {
        let text: Vec<ArrayRef> = self
            .values
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let mut reasons: Vec<Option<String>> = self
            .corrupt_reason
            .finish()
            .iter()
            .map(|r| r.map(String::from))
            .collect();
        let mut records: Vec<Option<String>> = self
            .corrupt_record
            .finish()
            .iter()
            .map(|r| r.map(String::from))
            .collect();
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for (i, text) in text.iter().enumerate() {
            let field = self.schema.field(i);
            columns.push(self.cast_column(
                text,
                field.name(),
                field.data_type(),
                &mut reasons,
                &mut records,
            )?);
        }
        if let Some(r) = self.rescued.as_mut() {
            columns.push(Arc::new(r.finish()));
        }
        self.lines.clear();
        self.rows = 0;
        Ok(ParsedRows {
            columns,
            records: Arc::new(StringArray::from(records)),
            reasons: Arc::new(StringArray::from(reasons)),
        })
    }

    fn cast_column(
        &self,
        text: &ArrayRef,
        name: &str,
        ty: &DataType,
        reasons: &mut [Option<String>],
        records: &mut [Option<String>],
    ) -> Result<ArrayRef> {
        if ty == &DataType::Utf8 {
            return Ok(Arc::clone(text));
        }
        let options = CastOptions {
            safe: true,
            ..Default::default()
        };
        let typed = cast_with_options(text, ty, &options)?;
        let strings = text
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("built as strings");
        for row in 0..typed.len() {
            if strings.is_valid(row) && typed.is_null(row) && reasons[row].is_none() {
                let value = strings.value(row);
                reasons[row] = Some(format!(
                    "{} field `{name}`: '{value}' is not a valid {}",
                    self.locate(self.lines[row]),
                    type_label(ty)
                ));
                records[row] = Some(format!("{name}={value}"));
            }
        }
        Ok(typed)
    }
}

fn type_label(ty: &DataType) -> String {
    match ty {
        DataType::Int64 => "BIGINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        other => other.to_string(),
    }
}
