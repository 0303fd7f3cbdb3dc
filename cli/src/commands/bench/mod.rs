//! `medallion bench`: generate landing data at a chosen size, run the pipeline on it, and print
//! seconds per layer and per table, rows/s and peak memory. `--dataset changes` benchmarks a
//! CDC apply against a full rebuild ([`changes`]); `--incremental` a later e-commerce batch
//! against a full refresh ([`incremental`]); `--kafka` records/s from a broker and a continuous
//! run's latency ([`kafka`]).

mod changes;
mod incremental;
mod kafka;

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use medallion_jobs::generate::{EcommerceData, ExampleData, RatingsData};
use medallion_jobs::pipeline::{RunSummary, resolve_url};
use medallion_jobs::spec::Layer;

use super::generate::Dataset;
use super::run::{RunArgs, execute, prepare};
use crate::cluster::{Connected, connect};
use crate::error::{Error, Result};

/// Flags of `medallion bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which data set and pipeline.
    #[arg(
        long,
        env = "MEDALLION_BENCH_DATASET",
        value_enum,
        default_value = "ecommerce"
    )]
    pub dataset: Dataset,
    /// Scale factor (e-commerce).
    #[arg(long, env = "MEDALLION_BENCH_SCALE", default_value_t = 0.1)]
    pub scale: f64,
    /// Orders to generate (example data set).
    #[arg(long, env = "MEDALLION_BENCH_ORDERS", default_value_t = 1_000_000)]
    pub orders: u64,
    /// Keys (changes data set: CDC).
    #[arg(long, env = "MEDALLION_BENCH_KEYS", default_value_t = 2_000_000)]
    pub keys: u64,
    /// Fraction of the keys the second batch changes (changes data set).
    #[arg(long, env = "MEDALLION_BENCH_UPDATE_FRACTION", default_value_t = 0.01)]
    pub update_fraction: f64,
    /// Ratings to generate (ratings data set, ALS).
    #[arg(long, env = "MEDALLION_BENCH_RATINGS", default_value_t = 1_000_000)]
    pub ratings: u64,
    /// Working directory (landing and lakehouse are created inside, and removed first).
    #[arg(long, env = "MEDALLION_BENCH_DIR", default_value = "target/bench")]
    pub dir: String,
    /// Task slots of the embedded executor.
    #[arg(long, env = "MEDALLION_PARALLELISM", default_value_t = 2)]
    pub parallelism: usize,
    /// Scheduler to run on instead of the embedded cluster.
    #[arg(long, env = "MEDALLION_SCHEDULER")]
    pub scheduler: Option<String>,
    /// MiB the embedded executor's tasks may hold together before they spill (as `run`'s).
    #[arg(long, env = "MEDALLION_MEMORY_LIMIT_MIB")]
    pub memory_limit_mib: Option<usize>,
    /// E-commerce: after the history, time a later batch's run next to a full refresh.
    #[arg(long)]
    pub incremental: bool,
    /// With `--incremental`: size the batch as a history at this scale factor would have it
    /// (default `--scale`), to time the same batch on histories of different sizes.
    #[arg(long, requires = "incremental")]
    pub batch_scale: Option<f64>,
    /// E-commerce: publish clickstream and payments to this broker (`kafka://host:port`, best
    /// a fresh one) and time them into bronze and silver, then a continuous run's latency.
    #[arg(long, conflicts_with = "incremental")]
    pub kafka: Option<String>,
}

pub(crate) async fn run(args: BenchArgs) -> Result<ExitCode> {
    let dir = std::path::absolute(&args.dir).map_err(|source| Error::Io {
        path: args.dir.clone(),
        source,
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    if args.dataset == Dataset::Changes {
        return changes::run(&args, &dir).await;
    }
    if args.incremental {
        return incremental::run(&args, &dir).await;
    }
    if let Some(to) = &args.kafka {
        return kafka::run(&args, to, &dir).await;
    }
    let generated_at = Instant::now();
    let (spec, lines) = generate(&args, &landing(&dir)).await?;
    let generate_secs = generated_at.elapsed().as_secs_f64();
    let summary = execute(&run_args(&args, &dir, spec), None).await?;
    println!("generated {lines} landing lines in {generate_secs:.2}s");
    print_tables(&summary);
    print_layers(&summary);
    print_metrics(&summary);
    let total = summary.duration.as_secs_f64();
    let rows: u64 = summary
        .tables
        .iter()
        .filter(|t| t.layer == Layer::Bronze)
        .map(|t| t.rows_read)
        .sum();
    println!(
        "pipeline total: {total:.2}s; {rows} landing rows, {:.0} landing rows/s end to end",
        rows as f64 / total.max(1e-9)
    );
    println!("peak RSS: {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    Ok(if summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One cluster for every run of a benchmark: an embedded cluster per run would leave each
/// earlier one's executor warning about its stopped scheduler for half a minute.
pub(super) struct BenchCluster {
    connected: Connected,
}

impl BenchCluster {
    /// Starts (or connects to) the cluster `args` name.
    pub(super) async fn start(args: &RunArgs) -> Result<Self> {
        let (_, target) = prepare(args, None)?;
        Ok(Self {
            connected: connect(&target, args.partitions).await?,
        })
    }

    /// One run of `args` on it.
    pub(super) async fn run(&self, args: &RunArgs) -> Result<RunSummary> {
        let (run, _) = prepare(args, None)?;
        Ok(run.execute(&self.connected.ctx).await?)
    }

    /// Its session, for runs driven by hand.
    pub(super) fn ctx(&self) -> &datafusion::prelude::SessionContext {
        &self.connected.ctx
    }
}

fn landing(dir: &std::path::Path) -> String {
    dir.join("landing").display().to_string()
}

/// A run of `spec` over the bench folder's landing data and lakehouse.
fn run_args(args: &BenchArgs, dir: &std::path::Path, spec: &str) -> RunArgs {
    RunArgs {
        spec: spec.into(),
        lakehouse: Some(dir.join("lakehouse").display().to_string()),
        landing: Some(landing(dir)),
        select: vec![],
        layer: vec![],
        full_refresh: false,
        run_id: None,
        vars: vec![],
        scheduler: args.scheduler.clone(),
        parallelism: args.parallelism,
        partitions: args.parallelism,
        memory_limit_mib: args.memory_limit_mib,
        concurrency: 4,
        quiet: true,
        report: None,
        retries: None,
        timeout_seconds: None,
        stall_seconds: None,
        continuous: false,
        trigger_seconds: 10.0,
    }
}

async fn generate(args: &BenchArgs, landing: &str) -> Result<(&'static str, u64)> {
    let out = resolve_url(None, landing)?;
    Ok(match args.dataset {
        Dataset::Ecommerce => {
            let written = EcommerceData::new(out, args.scale).write().await?;
            (
                "pipelines/ecommerce/pipeline.toml",
                written.iter().map(|w| w.lines).sum(),
            )
        }
        Dataset::Example => {
            let written = ExampleData::new(out, args.orders).with_files(8).write().await?;
            (
                "pipelines/example/pipeline.toml",
                written.order_lines + written.customer_lines,
            )
        }
        Dataset::Ratings => {
            let lines = RatingsData::new(out, args.ratings).with_files(8).write().await?;
            ("pipelines/ratings/pipeline.toml", lines)
        }
        Dataset::Changes => unreachable!("the changes benchmark generates its own batches"),
    })
}

fn print_tables(summary: &RunSummary) {
    println!(
        "{:<8} {:<20} {:>10} {:>10} {:>9} {:>12}",
        "layer", "table", "read", "written", "seconds", "rows/s"
    );
    for t in &summary.tables {
        let secs = t.duration.as_secs_f64();
        let rate = if secs > 0.0 {
            t.rows_read as f64 / secs
        } else {
            0.0
        };
        println!(
            "{:<8} {:<20} {:>10} {:>10} {:>9.2} {:>12.0}",
            t.layer.as_str(),
            t.table,
            t.rows_read,
            t.rows_written,
            secs,
            rate
        );
        if let Some(refresh) = &t.refresh {
            println!("{:<8}   {}", "", refresh.render());
        }
    }
}

/// Wall time per layer.
fn print_layers(summary: &RunSummary) {
    for layer in [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Ml] {
        let Some(wall) = layer_wall(summary, layer) else {
            continue;
        };
        println!(
            "layer {:<6} {:>3} tables {:>9.2}s wall {:>12} rows read {:>10.0} rows/s",
            layer.as_str(),
            wall.tables,
            wall.seconds,
            wall.rows,
            wall.rows as f64 / wall.seconds.max(1e-9)
        );
    }
}

/// One layer of a run: its tables, rows read and wall seconds.
struct LayerWall {
    tables: usize,
    rows: u64,
    seconds: f64,
}

/// From the layer's first table's start to its last table's end (tables of a layer overlap,
/// and with the next layer's first tables); `None` when the run had none of its tables.
fn layer_wall(summary: &RunSummary, layer: Layer) -> Option<LayerWall> {
    let tables: Vec<_> = summary.tables.iter().filter(|t| t.layer == layer).collect();
    let start = tables.iter().map(|t| t.started_at_micros).min()?;
    let end = tables
        .iter()
        .map(|t| t.started_at_micros + t.duration.as_micros() as i64)
        .max()?;
    Some(LayerWall {
        tables: tables.len(),
        rows: tables.iter().map(|t| t.rows_read).sum(),
        seconds: (end - start) as f64 / 1e6,
    })
}

/// Model metrics (ALS tables), timings included.
fn print_metrics(summary: &RunSummary) {
    for t in summary.tables.iter().filter(|t| !t.metrics.is_empty()) {
        let shown: Vec<String> = t.metrics.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
        println!("model {}: {}", t.table, shown.join(" "));
    }
}

/// High-water mark of this process's resident memory (Linux).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MiB", kb / 1024.0))
}
