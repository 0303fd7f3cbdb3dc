//! `medallion query` and `medallion history`: SQL over a pipeline's lakehouse — its tables by
//! name, `name@version` for an earlier version, quarantine and companion tables and the event
//! log — and the runs the event log recorded, printed as a table, CSV or JSON lines.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use medallion_jobs::inspect::catalog::{
    lakehouse_of, lakehouse_session as lakehouse_session_of, pinned_versions, register_lakehouse,
};
use medallion_jobs::inspect::history::{run_sql, runs_sql};
use medallion_jobs::spec::{Pipeline, read_spec};

use crate::cluster::{ClusterTarget, Connected, connect};
use crate::error::{Error, Result};

/// Where the lakehouse is.
#[derive(Debug, Args)]
pub struct LakehouseArgs {
    /// Pipeline spec (TOML): its tables are the names a query can use.
    #[arg(long, env = "MEDALLION_SPEC")]
    pub spec: String,
    /// Lakehouse root URL or path (overrides the spec).
    #[arg(long, env = "MEDALLION_LAKEHOUSE")]
    pub lakehouse: Option<String>,
    /// How rows are printed.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Run the query on this Ballista scheduler (`df://host:50050`) instead of in this process.
    #[arg(long, env = "MEDALLION_SCHEDULER")]
    pub scheduler: Option<String>,
}

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row.
    Json,
}

/// Flags of `medallion query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Where the lakehouse is and how to print.
    #[command(flatten)]
    pub lakehouse: LakehouseArgs,
    /// One SQL statement; `orders@3` reads version 3 of `orders`.
    pub sql: String,
}

/// Flags of `medallion history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Where the lakehouse is and how to print.
    #[command(flatten)]
    pub lakehouse: LakehouseArgs,
    /// One run in detail: its tables with rows, rule failures and errors.
    #[arg(long)]
    pub run: Option<String>,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
}

pub(crate) async fn query(args: QueryArgs) -> Result<ExitCode> {
    let (sql, pins) = pinned_versions(&args.sql);
    let ctx = lakehouse_session(&args.lakehouse, &pins).await?;
    print(&ctx, &sql, args.lakehouse.format).await
}

pub(crate) async fn history(args: HistoryArgs) -> Result<ExitCode> {
    let ctx = lakehouse_session(&args.lakehouse, &[]).await?;
    if !ctx.table_exist("event_log").unwrap_or(false) {
        println!("no runs yet (no event log in this lakehouse)");
        return Ok(ExitCode::SUCCESS);
    }
    let sql = match &args.run {
        Some(run) => run_sql(run),
        None => runs_sql(args.last),
    };
    print(&ctx, &sql, args.lakehouse.format).await
}

/// A session with Medallion's functions and the lakehouse's tables: in this process, or a
/// client of the scheduler `--scheduler` names (kept connected while it lives).
async fn lakehouse_session(args: &LakehouseArgs, pins: &[(String, u64)]) -> Result<Session> {
    let Some(url) = &args.scheduler else {
        let (ctx, _) = open_lakehouse(&args.spec, args.lakehouse.as_deref(), pins).await?;
        return Ok(Session::Local(ctx));
    };
    let pipeline = read_spec(&args.spec)?;
    let lakehouse = lakehouse_of(&pipeline, args.lakehouse.as_deref())?;
    let connected = connect(&ClusterTarget::Remote(url.clone()), 2).await?;
    register_lakehouse(&connected.ctx, &pipeline, &lakehouse, pins).await?;
    Ok(Session::Cluster(connected))
}

/// Where a query runs.
enum Session {
    /// DataFusion in this process.
    Local(SessionContext),
    /// A Ballista cluster.
    Cluster(Connected),
}

impl std::ops::Deref for Session {
    type Target = SessionContext;

    fn deref(&self) -> &SessionContext {
        match self {
            Session::Local(ctx) => ctx,
            Session::Cluster(connected) => &connected.ctx,
        }
    }
}

/// The spec at `spec`, and a local session with Medallion's functions and its lakehouse's
/// tables (at `lakehouse` when given, else where the spec says).
pub(crate) async fn open_lakehouse(
    spec: &str,
    lakehouse: Option<&str>,
    pins: &[(String, u64)],
) -> Result<(SessionContext, Pipeline)> {
    let pipeline = read_spec(spec)?;
    let runtime = medallion_jobs::storage::runtime_env(None).map_err(|source| Error::Query { source })?;
    let ctx = lakehouse_session_of(&pipeline, lakehouse, runtime, pins).await?;
    Ok((ctx, pipeline))
}

async fn print(ctx: &SessionContext, sql: &str, format: OutputFormat) -> Result<ExitCode> {
    let failed = |source| Error::Query { source };
    let batches = ctx
        .sql(sql)
        .await
        .map_err(failed)?
        .collect()
        .await
        .map_err(failed)?;
    let text = render(&batches, format).map_err(|e| failed(e.into()))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn render(
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, datafusion::arrow::error::ArrowError> {
    Ok(match format {
        OutputFormat::Table => format!("{}\n", pretty_format_batches(batches)?),
        OutputFormat::Csv => {
            let mut out = Vec::new();
            let mut writer = datafusion::arrow::csv::Writer::new(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            drop(writer);
            String::from_utf8_lossy(&out).into_owned()
        }
        OutputFormat::Json => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            String::from_utf8_lossy(&writer.into_inner()).into_owned()
        }
    })
}
