//! The lineage log: per run, one Delta row per column of every table the run planned, with
//! each input column it is computed from ([`crate::lineage`]), written once when the run starts.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use url::Url;

use super::check::RunPlan;
use super::event_log::append_rows_once;
use crate::error::{Error, Result};

/// Where the lineage log lives under the lakehouse root.
pub const LINEAGE_PATH: &str = "_medallion/lineage";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        text("run_id"),
        text("pipeline"),
        text("table_name"),
        text("column_name"),
        text("source_table"),
        text("source_column"),
    ]))
});

/// Appends the lineage of `plan`'s tables for run `run_id` (once: a resumed run appends nothing).
pub(crate) async fn record_lineage(url: &Url, pipeline: &str, run_id: &str, plan: &RunPlan) -> Result<()> {
    let mut columns: Vec<StringBuilder> = (0..SCHEMA.fields().len()).map(|_| StringBuilder::new()).collect();
    for table in &plan.tables {
        for column in &table.lineage {
            let sources: Vec<Option<&crate::lineage::SourceColumn>> = match column.sources.is_empty() {
                true => vec![None],
                false => column.sources.iter().map(Some).collect(),
            };
            for source in sources {
                columns[0].append_value(run_id);
                columns[1].append_value(pipeline);
                columns[2].append_value(&table.table);
                columns[3].append_value(&column.column);
                columns[4].append_option(source.map(|s| s.table.as_str()));
                columns[5].append_option(source.map(|s| s.column.as_str()));
            }
        }
    }
    let arrays = columns.iter_mut().map(|c| Arc::new(c.finish()) as _).collect();
    let batch = RecordBatch::try_new(Arc::clone(&SCHEMA), arrays).map_err(|e| Error::Delta {
        url: url.to_string(),
        step: "build lineage rows",
        source: Box::new(e.into()),
    })?;
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let app_id = format!("medallion/{pipeline}/lineage/{run_id}");
    append_rows_once(url, batch, Some(&app_id)).await
}
