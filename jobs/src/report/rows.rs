//! Query results as the report draws them: text cells, numbers, and positions along an axis.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

/// The rows of one query.
pub(super) struct Rows {
    pub(super) batches: Vec<RecordBatch>,
}

impl Rows {
    /// Runs `sql` in `ctx`.
    pub(super) async fn query(ctx: &SessionContext, sql: &str) -> Result<Self> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(Self { batches })
    }

    /// The column names.
    pub(super) fn headers(&self) -> Vec<String> {
        let Some(first) = self.batches.first() else {
            return vec![];
        };
        first.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Every cell as text (NULL as empty).
    pub(super) fn text(&self) -> Result<Vec<Vec<String>>> {
        let options = FormatOptions::default().with_null("");
        let mut rows = vec![];
        for batch in &self.batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
            }
        }
        Ok(rows)
    }

    /// The column `name` as text.
    pub(super) fn texts(&self, name: &str) -> Result<Vec<String>> {
        let options = FormatOptions::default().with_null("");
        let mut out = vec![];
        for column in self.columns(name)? {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            out.extend((0..column.len()).map(|row| formatter.value(row).to_string()));
        }
        Ok(out)
    }

    /// The column `name` as numbers (NULL, and text that is not a number, as `None`).
    pub(super) fn numbers(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let mut out = vec![];
        for column in self.columns(name)? {
            let numbers = cast(&column, &DataType::Float64)?;
            let numbers = numbers
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Float64Array>()
                .expect("cast to Float64");
            out.extend(numbers.iter().map(|v| v.filter(|v| v.is_finite())));
        }
        Ok(out)
    }

    /// Positions along a horizontal axis: days for dates and timestamps, the value for numbers,
    /// the row's place otherwise.
    pub(super) fn positions(&self, name: &str) -> Result<Vec<f64>> {
        let mut out = vec![];
        for column in self.columns(name)? {
            let as_number = match column.data_type() {
                DataType::Date32 => Some((DataType::Int32, 1.0)),
                DataType::Date64 => Some((DataType::Int64, 86_400_000.0)),
                DataType::Timestamp(unit, _) => {
                    let per_day = match unit {
                        TimeUnit::Second => 86_400.0,
                        TimeUnit::Millisecond => 86_400_000.0,
                        TimeUnit::Microsecond => 86_400_000_000.0,
                        TimeUnit::Nanosecond => 86_400_000_000_000.0,
                    };
                    Some((DataType::Int64, per_day))
                }
                t if t.is_numeric() => Some((DataType::Float64, 1.0)),
                _ => None,
            };
            match as_number {
                Some((ty, per_day)) => {
                    let raw = cast(&cast(&column, &ty)?, &DataType::Float64)?;
                    let raw = raw
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::Float64Array>()
                        .expect("cast to Float64");
                    out.extend(raw.iter().map(|v| v.unwrap_or(0.0) / per_day));
                }
                None => {
                    let start = out.len();
                    out.extend((start..start + column.len()).map(|i| i as f64));
                }
            }
        }
        Ok(out)
    }

    /// How many rows.
    pub(super) fn len(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn index(&self, name: &str) -> Result<usize> {
        let headers = self.headers();
        headers.iter().position(|h| h == name).ok_or_else(|| {
            DataFusionError::Plan(format!(
                "no column `{name}` (the query gives {})",
                headers.join(", ")
            ))
        })
    }

    fn columns(&self, name: &str) -> Result<Vec<ArrayRef>> {
        if self.batches.is_empty() {
            return Ok(vec![]);
        }
        let index = self.index(name)?;
        Ok(self.batches.iter().map(|b| Arc::clone(b.column(index))).collect())
    }
}
