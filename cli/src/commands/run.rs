//! `medallion run`: build a pipeline's tables on a Ballista cluster.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use medallion_jobs::dag::Selection;
use medallion_jobs::pipeline::{PipelineRun, ResolvedRun, RunEvent, RunId, RunSummary, TableStatus};
use medallion_jobs::report::ReportOptions;
use medallion_jobs::spec::{RetrySettings, read_spec};

use super::report::write_report;
use crate::cluster::{ClusterTarget, connect};
use crate::error::{Error, Result};

/// Flags of `medallion run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Pipeline spec (TOML).
    #[arg(long, env = "MEDALLION_SPEC")]
    pub spec: String,
    /// Lakehouse root URL or path (overrides the spec).
    #[arg(long, env = "MEDALLION_LAKEHOUSE")]
    pub lakehouse: Option<String>,
    /// Landing root URL or path that relative sources resolve against (overrides the spec).
    #[arg(long, env = "MEDALLION_LANDING")]
    pub landing: Option<String>,
    /// dbt-style selector: `name`, `+name`, `name+`, `layer:silver`; repeatable.
    #[arg(long = "select", short = 's', env = "MEDALLION_SELECT", value_delimiter = ',')]
    pub select: Vec<String>,
    /// Only tables of this layer; repeatable.
    #[arg(long, env = "MEDALLION_LAYER", value_delimiter = ',')]
    pub layer: Vec<String>,
    /// Rebuild: re-ingest every landing file, overwrite appended tables.
    #[arg(long, env = "MEDALLION_FULL_REFRESH")]
    pub full_refresh: bool,
    /// Run parameter `name=value`, substituted for `${name}` in queries; repeatable.
    #[arg(long = "var", env = "MEDALLION_VARS", value_delimiter = ',')]
    pub vars: Vec<String>,
    /// Repeat or resume an earlier run (`run-<n>`); committed tables are not written again.
    #[arg(long, env = "MEDALLION_RUN_ID")]
    pub run_id: Option<String>,
    /// Scheduler to submit to, e.g. `df://localhost:50050`; embedded cluster if absent.
    #[arg(long, env = "MEDALLION_SCHEDULER")]
    pub scheduler: Option<String>,
    /// Task slots of the embedded executor.
    #[arg(long, env = "MEDALLION_PARALLELISM", default_value_t = 2)]
    pub parallelism: usize,
    /// Partitions for shuffles and scans.
    #[arg(long, env = "MEDALLION_PARTITIONS", default_value_t = 2)]
    pub partitions: usize,
    /// MiB the embedded executor's tasks may hold together for sorts, aggregates and joins
    /// before they spill (as `medallion executor --memory-limit-mib`); 70% of the host's memory
    /// if absent, no limit if 0.
    #[arg(long, env = "MEDALLION_MEMORY_LIMIT_MIB")]
    pub memory_limit_mib: Option<usize>,
    /// Tables built at once.
    #[arg(long, env = "MEDALLION_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// No per-table progress lines.
    #[arg(long, env = "MEDALLION_QUIET")]
    pub quiet: bool,
    /// After the run, write the lakehouse's HTML report (`medallion report`) to this file.
    #[arg(long, env = "MEDALLION_REPORT")]
    pub report: Option<std::path::PathBuf>,
    /// Attempts after the first for a table that fails for a transient reason (overrides the
    /// spec's `retries`).
    #[arg(long, env = "MEDALLION_RETRIES")]
    pub retries: Option<u32>,
    /// Seconds one attempt at a table may take, 0 for no limit (overrides `timeout_seconds`).
    #[arg(long, env = "MEDALLION_TIMEOUT_SECONDS")]
    pub timeout_seconds: Option<u64>,
    /// Seconds without a finished Ballista stage before an attempt is cancelled and retried
    /// (overrides `stall_seconds`).
    #[arg(long, env = "MEDALLION_STALL_SECONDS")]
    pub stall_seconds: Option<u64>,
    /// Keep running micro-batches of the selected tables (e.g. `--select clickstream_raw+`)
    /// until SIGTERM or Ctrl-C, which end it after the batch in flight.
    #[arg(long, env = "MEDALLION_CONTINUOUS", conflicts_with_all = ["run_id", "full_refresh"])]
    pub continuous: bool,
    /// With `--continuous`: seconds from the start of one micro-batch to the start of the next.
    #[arg(
        long,
        env = "MEDALLION_TRIGGER_SECONDS",
        default_value_t = 10.0,
        requires = "continuous"
    )]
    pub trigger_seconds: f64,
}

/// Runs the pipeline and prints the summary; exit 1 when a table failed, 130 when Ctrl-C
/// cancelled the run.
pub(crate) async fn run(args: RunArgs) -> Result<ExitCode> {
    if args.continuous {
        return super::continuous::run(args).await;
    }
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "cancelling: the Ballista jobs in flight are being cancelled (Ctrl-C again to quit at once)"
            );
            let _ = cancel.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let (run, target) = prepare(&args, Some(cancelled.clone()))?;
    let cluster = connect(&target, args.partitions).await?;
    let summary = run.execute(&cluster.ctx).await?;
    println!("{}", summary.render());
    // Written while the cluster is up: an embedded executor outliving its scheduler for the
    // report's seconds would warn that its heartbeats fail.
    if let Some(out) = &args.report {
        let options = ReportOptions {
            run: Some(summary.run_id.clone()),
            last_runs: 10,
        };
        let drawn = write_report(&args.spec, args.lakehouse.as_deref(), out, &options).await?;
        if drawn != ExitCode::SUCCESS && summary.succeeded() {
            return Ok(drawn);
        }
    }
    Ok(if *cancelled.borrow() {
        ExitCode::from(130)
    } else if summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Builds the run from flags and executes it.
pub(crate) async fn execute(
    args: &RunArgs,
    cancel: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<RunSummary> {
    let (run, target) = prepare(args, cancel)?;
    let cluster = connect(&target, args.partitions).await?;
    Ok(run.execute(&cluster.ctx).await?)
}

/// The run the flags describe, and the cluster it runs on (not contacted yet: a bad spec or
/// selection is rejected first).
pub(crate) fn prepare(
    args: &RunArgs,
    cancel: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<(PipelineRun, ClusterTarget)> {
    let spec = read_spec(&args.spec)?;
    let mut selection = Selection::all();
    for s in &args.select {
        selection = selection.with_select(s);
    }
    for l in &args.layer {
        selection = selection.with_layer(l);
    }
    let resolved = ResolvedRun::resolve(spec, &selection)?;
    let target = match &args.scheduler {
        Some(url) => ClusterTarget::Remote(url.clone()),
        None => ClusterTarget::Embedded {
            parallelism: args.parallelism,
            memory_limit: args.memory_limit_mib.map(super::executor::mib_to_bytes),
        },
    };
    let run_id = args
        .run_id
        .as_deref()
        .map(RunId::parse)
        .transpose()?
        .unwrap_or_default();
    let vars = args
        .vars
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) => Ok((k.trim().to_string(), val.to_string())),
            None => Err(Error::BadFlag {
                flag: "var",
                message: format!("`{v}` is not name=value"),
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut run = PipelineRun::new(resolved)
        .with_vars(vars)
        .with_lakehouse(args.lakehouse.clone())
        .with_landing(args.landing.clone())
        .with_full_refresh(args.full_refresh)
        .with_run_id(run_id)
        .with_concurrency(args.concurrency)
        .with_partitions(args.partitions)
        .with_retry_overrides(RetrySettings {
            retries: args.retries,
            timeout_seconds: args.timeout_seconds,
            stall_seconds: args.stall_seconds,
        })
        .with_cluster_label(target.to_string());
    if let Some(cancel) = cancel {
        run = run.with_cancel(cancel);
    }
    if !args.quiet {
        eprintln!("{} on {target}", run.run_id().id);
        run = run.with_observer(print_progress);
    }
    Ok((run, target))
}

fn print_progress(event: &RunEvent) {
    let line = match event {
        RunEvent::TableStarted { table, layer } => format!("  started  {}.{table}", layer.as_str()),
        RunEvent::TableRetrying { attempt, backoff } => format!(
            "  retry    {}.{} (attempt {} failed after {:.2}s: {}; next in {}s)",
            attempt.layer.as_str(),
            attempt.table,
            attempt.attempts,
            attempt.duration.as_secs_f64(),
            attempt.error.as_deref().unwrap_or("unknown error"),
            backoff.as_secs()
        ),
        RunEvent::TableFinished(t) => {
            let mark = match t.status {
                TableStatus::Succeeded | TableStatus::AlreadyCommitted | TableStatus::NoNewData => "done",
                TableStatus::Failed | TableStatus::Retried => "FAILED",
                TableStatus::Skipped => "skipped",
            };
            let attempts = if t.attempts > 1 {
                format!(", {} attempts", t.attempts)
            } else {
                String::new()
            };
            format!(
                "  {mark:<8} {}.{} ({}, {} written, {} quarantined, {:.2}s{attempts})",
                t.layer.as_str(),
                t.table,
                t.status.as_str(),
                t.rows_written,
                t.rows_quarantined,
                t.duration.as_secs_f64()
            )
        }
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}
