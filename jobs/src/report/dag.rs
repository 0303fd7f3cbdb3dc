//! The DAG section: tables by layer with an edge from each table to its readers, and each
//! table's column lineage as the run recorded it.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;

use super::html::{escape, figure, note};
use super::rows::Rows;
use super::{failed, quoted};
use crate::dag::Dag;
use crate::error::Result;
use crate::spec::{Layer, Pipeline};

pub(super) async fn section(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    dag: &Dag,
    run: Option<&str>,
) -> Result<String> {
    let layers: Vec<(String, Vec<String>)> = [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Ml]
        .iter()
        .map(|layer| {
            let tables = pipeline.tables.iter().filter(|t| t.layer == *layer);
            (
                layer.as_str().to_string(),
                tables.map(|t| t.name.clone()).collect::<Vec<_>>(),
            )
        })
        .filter(|(_, tables)| !tables.is_empty())
        .collect();
    let edges: Vec<(String, String)> = pipeline
        .tables
        .iter()
        .flat_map(|t| {
            dag.upstream_of(&t.name)
                .iter()
                .map(|u| (u.clone(), t.name.clone()))
        })
        .collect();
    let drawing = figure(
        "Tables by layer; an edge from each table to the tables reading it",
        &super::svg::dag(&layers, &edges),
    );
    Ok(format!(
        "{drawing}<h3>Column lineage</h3>{}",
        lineage(ctx, pipeline, dag, run).await?
    ))
}

/// Each table's columns and the input columns each is computed from, as `run` recorded them.
async fn lineage(ctx: &SessionContext, pipeline: &Pipeline, dag: &Dag, run: Option<&str>) -> Result<String> {
    let (Some(run), true) = (run, ctx.table_exist("lineage").unwrap_or(false)) else {
        return Ok(note("No lineage recorded yet (a run records it)."));
    };
    let err = failed("lineage");
    let sql = format!(
        "SELECT table_name, column_name, source_table, source_column FROM lineage WHERE run_id = {} \
         ORDER BY table_name, column_name, source_table, source_column",
        quoted(run)
    );
    let rows = Rows::query(ctx, &sql).await.map_err(err)?;
    let mut tables: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for row in rows.text().map_err(err)? {
        let sources = tables
            .entry(row[0].clone())
            .or_default()
            .entry(row[1].clone())
            .or_default();
        if !row[2].is_empty() {
            sources.push(format!("{}.{}", row[2], row[3]));
        }
    }
    let mut out = String::new();
    for t in &pipeline.tables {
        let reads: Vec<&str> = dag.upstream_of(&t.name).iter().map(String::as_str).collect();
        let Some(columns) = tables.get(&t.name) else {
            continue;
        };
        let lines: Vec<String> = columns
            .iter()
            .map(|(column, sources)| match sources.is_empty() {
                true => format!("{column} ← (no input column)"),
                false => format!("{column} ← {}", sources.join(", ")),
            })
            .collect();
        out += &format!(
            r#"<details><summary>{} <small>reads {}</small></summary><div class="lineage">{}</div></details>"#,
            escape(&t.name),
            escape(&reads.join(", ")),
            lines.iter().map(|l| escape(l)).collect::<Vec<_>>().join("<br>")
        );
    }
    Ok(match out.is_empty() {
        true => note(&format!("Run `{run}` recorded no lineage.")),
        false => out,
    })
}
