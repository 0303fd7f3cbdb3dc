//! # medallion-cli — the `medallion` command
//!
//! One binary for every role: `run` a pipeline on an embedded cluster (default) or a remote
//! scheduler, start a `scheduler` or an `executor`, `generate` example landing data, `bench`
//! the pipelines, and `query` a lakehouse or show its run `history`. Every flag can also be set from a `MEDALLION_*` variable so
//! Helm charts and CronJobs configure it without arguments.

mod cluster;
mod commands;
mod error;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::{Error, Result};

/// Warnings, but not the shuffle writer's spill notices (a spill is the sort shuffle working
/// as designed when a task's buffer is full, not something for a user to act on), nor the
/// scheduler's "Fail to combine stage metrics" (it failed to build the debug-level display of
/// a finished stage's metrics — our write and scan nodes count theirs differently — and
/// nothing else; the stage and its results are unaffected), nor its "metrics for stage … should
/// not be none" (executors report no operator metrics, see `medallion_executor`'s engine), nor
/// the shuffle reader's "Fail to send response event … channel closed" (its only log lines: a
/// consumer stopped reading early, e.g. a join whose other side was empty; fetch errors reach
/// the query as errors).
const DEFAULT_LOG: &str = "warn,ballista_core::execution_plans::sort_shuffle::writer=error,\
ballista_core::execution_plans::shuffle_reader=off,ballista_scheduler::display=off,\
ballista_scheduler::state::execution_stage=error";

/// Medallion: declarative bronze → silver → gold pipelines on Apache Ballista and Delta Lake.
#[derive(Debug, Parser)]
#[command(name = "medallion", version, about)]
pub struct Cli {
    /// Log filter, e.g. `info` or `medallion_jobs=debug`. The default leaves out Ballista's
    /// shuffle-spill notices, which are normal operation under memory pressure; `--log warn`
    /// shows them.
    #[arg(long, env = "MEDALLION_LOG", default_value = DEFAULT_LOG, global = true)]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline (embedded cluster unless --scheduler is given).
    Run(commands::run::RunArgs),
    /// Check the run `run`'s flags describe without running it: every selected table planned
    /// over its inputs' schemas, with its columns, expectations and what a run would read.
    Plan(commands::plan::PlanArgs),
    /// Start a scheduler.
    Scheduler(commands::scheduler::SchedulerArgs),
    /// Start an executor.
    Executor(commands::executor::ExecutorArgs),
    /// Write example landing data (orders CSV, customers NDJSON) with realistic dirt.
    Generate(commands::generate::GenerateArgs),
    /// Generate example data at a given size, run the example pipeline, print throughput.
    Bench(commands::bench::BenchArgs),
    /// Submit a run to a scheduler's job service (with --wait: follow it; exit 1 if it fails).
    Submit(commands::client::SubmitArgs),
    /// Show a run of the job service.
    Status(commands::client::StatusArgs),
    /// Follow a run until it ends; exit 1 unless it succeeded.
    Watch(commands::client::RunArgs),
    /// Cancel a queued or running run.
    Cancel(commands::client::RunArgs),
    /// List the job service's runs, newest first.
    Runs(commands::client::ListArgs),
    /// SQL over a pipeline's lakehouse: its tables by name (`orders@3`: version 3),
    /// quarantine tables and the event log.
    Query(commands::query::QueryArgs),
    /// The runs the lakehouse's event log recorded (`--run` for one run's tables).
    History(commands::query::HistoryArgs),
    /// The lakehouse's HTML report: the run, data quality, the DAG with lineage, the spec's
    /// charts — one self-contained file.
    Report(commands::report::ReportArgs),
}

/// Runs a parsed command line; the exit code says whether it succeeded.
pub fn main(cli: Cli) -> ExitCode {
    telemetry::init(&cli.log);
    let _ = rustls::crypto::ring::default_provider().install_default();
    medallion_jobs::storage::register_delta_handlers();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Plan(args) => commands::plan::plan(args).await,
            Command::Scheduler(args) => commands::scheduler::run(args).await,
            Command::Executor(args) => commands::executor::run(args).await,
            Command::Generate(args) => commands::generate::run(args).await,
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Submit(args) => commands::client::submit(args).await,
            Command::Status(args) => commands::client::status(args).await,
            Command::Watch(args) => commands::client::watch(args).await,
            Command::Cancel(args) => commands::client::cancel(args).await,
            Command::Runs(args) => commands::client::list(args).await,
            Command::Query(args) => commands::query::query(args).await,
            Command::History(args) => commands::query::history(args).await,
            Command::Report(args) => commands::report::report(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", medallion_jobs::error_chain(&e));
            ExitCode::from(2)
        }
    }
}
