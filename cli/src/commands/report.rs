//! `medallion report`: the lakehouse's HTML report — the run, data quality, the DAG with
//! lineage and the spec's charts — written to one self-contained file. `medallion run --report`
//! writes it after the run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use medallion_jobs::report::{ReportOptions, render};

use super::query::open_lakehouse;
use crate::error::{Error, Result};

/// Flags of `medallion report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Pipeline spec (TOML): its tables, DAG and charts.
    #[arg(long, env = "MEDALLION_SPEC")]
    pub spec: String,
    /// Lakehouse root URL or path (overrides the spec).
    #[arg(long, env = "MEDALLION_LAKEHOUSE")]
    pub lakehouse: Option<String>,
    /// Where to write the page.
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
    /// The run shown (default: the latest).
    #[arg(long)]
    pub run: Option<String>,
    /// How many runs the history and the data-quality section cover.
    #[arg(long, default_value_t = 10)]
    pub last: usize,
}

pub(crate) async fn report(args: ReportArgs) -> Result<ExitCode> {
    let options = ReportOptions {
        run: args.run,
        last_runs: args.last,
    };
    write_report(&args.spec, args.lakehouse.as_deref(), &args.out, &options).await
}

/// Writes the report to `out`; exit 1 when a chart could not be drawn (each is named).
pub(crate) async fn write_report(
    spec: &str,
    lakehouse: Option<&str>,
    out: &Path,
    options: &ReportOptions,
) -> Result<ExitCode> {
    let (ctx, pipeline) = open_lakehouse(spec, lakehouse, &[]).await?;
    let report = render(&ctx, &pipeline, options).await?;
    std::fs::write(out, &report.html).map_err(|source| Error::Io {
        path: out.display().to_string(),
        source,
    })?;
    eprintln!(
        "report written to {} ({} chart(s))",
        out.display(),
        pipeline.charts.len()
    );
    for failed in &report.failed_charts {
        eprintln!("chart not drawn: {failed}");
    }
    Ok(match report.failed_charts.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    })
}
