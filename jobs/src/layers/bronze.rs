//! Bronze ingestion: new landing files as rows with audit columns.

use std::sync::Arc;

use datafusion::arrow::datatypes::Field;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, lit};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use url::Url;

use super::ident;
use super::parquet::parquet_frame;
use crate::error::{Error, Result};
use crate::landing::{
    CORRUPT_REASON, CORRUPT_RECORD, LandingFormat, LandingOptions, LandingTable, RESCUED_DATA, SOURCE_FILE,
    columns_per_file, discover_files, parse_sql_type,
};
use crate::spec::{Format, OnUnreadable, Pipeline, SchemaEvolution, Source, TableSpec};

/// Audit columns every bronze table gets, after its data columns.
pub const AUDIT_COLUMNS: [&str; 4] = ["_ingested_at", "_batch_id", SOURCE_FILE, "_row_hash"];

/// What a bronze step needs to know about its run.
#[derive(Debug, Clone)]
pub struct BronzeInput<'a> {
    /// The resolved source URL (glob allowed).
    pub source_url: Url,
    /// Files already in the table (skipped), unless a full refresh.
    pub already_ingested: &'a [String],
    /// Data columns of the existing table (empty when there is none or on a full refresh).
    pub existing: &'a [Field],
    /// The run id, stored as `_batch_id`.
    pub run_id: &'a str,
    /// Run start, stored as `_ingested_at`.
    pub now_micros: i64,
    /// Scan tasks to spread files over.
    pub partitions: usize,
}

/// The rows of new landing files with audit columns plus the landing scan's
/// `_corrupt_record`/`_corrupt_reason`; `None` when there is no new file.
pub async fn bronze_frame(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    table: &TableSpec,
    source: &Source,
    input: BronzeInput<'_>,
) -> Result<Option<DataFrame>> {
    let (store, matched) = landing_files(ctx, table, &input.source_url).await?;
    let new: Vec<(Url, u64)> = matched
        .into_iter()
        .filter(|(url, _)| !input.already_ingested.iter().any(|done| done == url.as_str()))
        .collect();
    if new.is_empty() {
        return Ok(None);
    }
    let frame = match source.format {
        Format::Parquet => parquet_frame(ctx, table, &new, input.existing, source.schema_evolution).await?,
        Format::Csv | Format::Ndjson => {
            let existing: Vec<String> = input.existing.iter().map(|f| f.name().clone()).collect();
            let options = landing_options(pipeline, table, source, &store, &new, &existing).await?;
            if options.columns.is_empty() {
                // Only empty files are new: nothing to ingest, no columns to type.
                return Ok(None);
            }
            let file_groups = group_files(&new, input.partitions);
            ctx.read_table(Arc::new(LandingTable { options, file_groups }))
                .map_err(|e| query_err(table, e))?
        }
    };
    let audit = Audit {
        run_id: input.run_id,
        now_micros: input.now_micros,
    };
    audited(frame, table, audit, &[SOURCE_FILE]).map(Some)
}

/// The source's store and the files it matches (with their sizes); an error when none.
pub async fn landing_files(
    ctx: &SessionContext,
    table: &TableSpec,
    source_url: &Url,
) -> Result<(Arc<dyn object_store::ObjectStore>, Vec<(Url, u64)>)> {
    let store = ctx
        .runtime_env()
        .object_store(store_url(source_url)?)
        .map_err(|e| Error::Url {
            url: source_url.to_string(),
            message: e.to_string(),
        })?;
    let matched = discover_files(&store, source_url).await?;
    if matched.is_empty() {
        return Err(Error::NoSourceFiles {
            table: table.name.clone(),
            source_url: source_url.to_string(),
        });
    }
    Ok((store, matched))
}

async fn landing_options(
    pipeline: &Pipeline,
    table: &TableSpec,
    source: &Source,
    store: &Arc<dyn object_store::ObjectStore>,
    files: &[(Url, u64)],
    existing: &[String],
) -> Result<LandingOptions> {
    let format = match source.format {
        Format::Csv => LandingFormat::Csv,
        _ => LandingFormat::Ndjson,
    };
    let mut names = source.columns.clone();
    if names.is_empty() {
        let delimiter = (format == LandingFormat::Csv).then_some(source.delimiter);
        let skip = source.on_unreadable == OnUnreadable::Quarantine;
        let per_file = columns_per_file(store, files, delimiter, source.compression, skip).await?;
        names = evolved_columns(table, source.schema_evolution, existing, &per_file)?;
    }
    for hinted in source.schema.keys() {
        if !names.contains(hinted) && format == LandingFormat::Ndjson {
            names.push(hinted.clone());
        }
    }
    let invalid = |message: String| Error::InvalidSpec {
        path: pipeline.path.clone(),
        line: table.line,
        table: table.name.clone(),
        message,
    };
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let ty = source
            .schema
            .get(&name)
            .cloned()
            .unwrap_or_else(|| "string".into());
        parse_sql_type(&ty).map_err(|e| invalid(format!("schema hint for `{name}`: {e}")))?;
        columns.push((name, ty));
    }
    if let Some(missing) = source
        .schema
        .keys()
        .find(|k| !columns.iter().any(|(n, _)| n == *k))
    {
        return Err(invalid(format!(
            "schema hint names column `{missing}`, which the files do not have"
        )));
    }
    Ok(LandingOptions {
        format,
        header: source.header,
        delimiter: source.delimiter,
        columns,
        compression: source.compression,
        rescue: format == LandingFormat::Ndjson || source.schema_evolution == SchemaEvolution::Rescue,
        quarantine_unreadable: source.on_unreadable == OnUnreadable::Quarantine,
    })
}

/// The table's columns (`existing`), then — per `evolution` — the columns of the new files it
/// does not have, in first-seen order; a new table takes every file's columns.
fn evolved_columns(
    table: &TableSpec,
    evolution: SchemaEvolution,
    existing: &[String],
    per_file: &[(Url, Vec<String>)],
) -> Result<Vec<String>> {
    let mut names = existing.to_vec();
    let adds = existing.is_empty() || evolution == SchemaEvolution::AddColumns;
    for (url, columns) in per_file {
        for column in columns.iter().filter(|c| !existing.contains(c)) {
            match evolution {
                _ if adds => {
                    if !names.contains(column) {
                        names.push(column.clone());
                    }
                }
                SchemaEvolution::Fail => {
                    return Err(Error::NewColumn {
                        table: table.name.clone(),
                        url: url.to_string(),
                        column: column.clone(),
                    });
                }
                // Its values go to `_rescued_data`.
                SchemaEvolution::Rescue | SchemaEvolution::AddColumns => {}
            }
        }
    }
    Ok(names)
}

/// Spreads files over at most `partitions` scan tasks, largest first, so tasks get similar bytes.
fn group_files(files: &[(Url, u64)], partitions: usize) -> Vec<Vec<String>> {
    let groups = partitions.clamp(1, files.len().max(1));
    let mut by_size: Vec<&(Url, u64)> = files.iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut file_groups = vec![(0u64, Vec::new()); groups];
    for (url, size) in by_size {
        let lightest = file_groups
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one group");
        lightest.0 += size;
        lightest.1.push(url.to_string());
    }
    file_groups.into_iter().map(|(_, files)| files).collect()
}

/// The run a bronze row was ingested by.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    /// Stored as `_batch_id`.
    pub run_id: &'a str,
    /// Stored as `_ingested_at`.
    pub now_micros: i64,
}

/// A scan's rows with the bronze audit columns: the data columns, `_ingested_at`, `_batch_id`,
/// the scan's `origin` columns (where each row came from), `_row_hash` over the data columns,
/// then the corrupt-row columns the quarantine reads.
pub fn audited(frame: DataFrame, table: &TableSpec, audit: Audit<'_>, origin: &[&str]) -> Result<DataFrame> {
    let data: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !origin.contains(&n.as_str()) && n != CORRUPT_RECORD && n != CORRUPT_REASON)
        .collect();
    let hashed = data
        .iter()
        .filter(|n| n.as_str() != RESCUED_DATA)
        .map(|n| {
            format!(
                "coalesce(CAST(\"{}\" AS VARCHAR), '\u{2400}')",
                n.replace('"', "\"\"")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let row_hash = frame
        .parse_sql_expr(&format!("encode(sha256(concat_ws('\u{1f}', {hashed})), 'hex')"))
        .map_err(|e| query_err(table, e))?;
    let mut exprs: Vec<Expr> = data.iter().map(|n| ident(n)).collect();
    exprs.push(
        lit(ScalarValue::TimestampMicrosecond(
            Some(audit.now_micros),
            Some("UTC".into()),
        ))
        .alias("_ingested_at"),
    );
    exprs.push(lit(audit.run_id.to_string()).alias("_batch_id"));
    exprs.extend(origin.iter().map(|c| ident(c)));
    exprs.push(row_hash.alias("_row_hash"));
    exprs.push(ident(CORRUPT_RECORD));
    exprs.push(ident(CORRUPT_REASON));
    frame.select(exprs).map_err(|e| query_err(table, e))
}

fn store_url(url: &Url) -> Result<datafusion::execution::object_store::ObjectStoreUrl> {
    datafusion::execution::object_store::ObjectStoreUrl::parse(&url[..url::Position::BeforePath]).map_err(
        |e| Error::Url {
            url: url.to_string(),
            message: e.to_string(),
        },
    )
}

pub(super) fn query_err(table: &TableSpec, source: datafusion::error::DataFusionError) -> Error {
    Error::Query {
        table: table.name.clone(),
        step: "plan bronze ingest",
        source: Box::new(source),
    }
}
