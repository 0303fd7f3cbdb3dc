//! The HTML report: one self-contained page about a lakehouse — inline CSS, SVG drawn here and
//! a few lines of script (sortable tables), nothing fetched — with
//!
//! - the run ([`run`]): its tables with status, rows, version and how each was computed, a
//!   timeline, and the runs before it;
//! - data quality ([`quality`]): each rule's failures over the last runs, the rows quarantined
//!   per run, and each quarantine's most frequent reasons with some of its rows;
//! - the DAG with each column's lineage as the run recorded it ([`dag`]);
//! - the charts the spec declares (`[[chart]]`), by section ([`charts`]).
//!
//! It reads the lakehouse the way `medallion query` does: a session with the tables registered
//! by name.

mod charts;
mod dag;
mod html;
mod quality;
mod rows;
mod run;
mod svg;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use self::html::{Section, note};
use crate::dag::Dag;
use crate::error::{Error, Result};
use crate::inspect::history::runs_sql;
use crate::spec::Pipeline;

/// What the report shows.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The run shown; the latest when `None`.
    pub run: Option<String>,
    /// How many runs the history and the quality section cover.
    pub last_runs: usize,
}

/// The page, and the charts that could not be drawn (`spec:line: chart `t`: …`).
#[derive(Debug, Clone)]
pub struct Report {
    /// The HTML page.
    pub html: String,
    /// One line per chart whose query failed (the page says why in its place).
    pub failed_charts: Vec<String>,
}

/// The report of `pipeline`'s lakehouse, whose tables `ctx` has by name.
pub async fn render(ctx: &SessionContext, pipeline: &Pipeline, options: &ReportOptions) -> Result<Report> {
    let dag = Dag::build(pipeline)?;
    let run = run::chosen_run(ctx, options.run.as_deref()).await?;
    // The last runs, shown by the run section and counted by the quality section.
    let runs = match run.is_some() {
        true => Some(
            rows::Rows::query(ctx, &runs_sql(options.last_runs))
                .await
                .map_err(failed("event_log"))?,
        ),
        false => None,
    };
    let mut sections = vec![
        Section {
            id: "run".into(),
            title: "Run".into(),
            body: run::section(ctx, run.as_deref(), runs.as_ref()).await?,
        },
        Section {
            id: "quality".into(),
            title: "Data quality".into(),
            body: quality::section(ctx, pipeline, runs.as_ref()).await?,
        },
        Section {
            id: "dag".into(),
            title: "DAG and lineage".into(),
            body: dag::section(ctx, pipeline, &dag, run.as_deref()).await?,
        },
    ];
    let mut failed_charts = vec![];
    let mut titles: Vec<&str> = pipeline.charts.iter().map(|c| c.section.as_str()).collect();
    titles.dedup();
    for title in titles {
        let mut body = String::from(r#"<div class="grid">"#);
        for chart in pipeline.charts.iter().filter(|c| c.section == title) {
            match charts::chart(ctx, &pipeline.path, chart).await {
                Ok(figure) => body += &figure,
                Err(e) => {
                    body += &html::figure(&chart.title, &note(&format!("not drawn: {e}")));
                    failed_charts.push(e);
                }
            }
        }
        body += "</div>";
        sections.push(Section {
            id: title.to_lowercase().replace(|c: char| !c.is_alphanumeric(), "-"),
            title: title.to_string(),
            body,
        });
    }
    let subtitle = match &run {
        Some(run) => format!("Pipeline {} — run {run}", pipeline.name),
        None => format!("Pipeline {} — no run yet", pipeline.name),
    };
    let html = html::page(
        &format!("Medallion report: {}", pipeline.name),
        &subtitle,
        &sections,
    );
    Ok(Report { html, failed_charts })
}

/// A SQL string literal of `text`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The error of a query that reads `part` of the lakehouse for the report.
fn failed(part: &'static str) -> impl Fn(DataFusionError) -> Error + Copy {
    move |source| Error::Query {
        table: part.to_string(),
        step: "report",
        source: Box::new(source),
    }
}
