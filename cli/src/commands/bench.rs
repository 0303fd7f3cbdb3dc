//! `medallion bench`: the example pipeline at a chosen size, with throughput and peak memory.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use medallion_jobs::generate::ExampleData;
use medallion_jobs::pipeline::resolve_url;

use super::run::{RunArgs, execute};
use crate::error::{Error, Result};

/// Flags of `medallion bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Orders to generate.
    #[arg(long, env = "MEDALLION_BENCH_ORDERS", default_value_t = 1_000_000)]
    pub orders: u64,
    /// Files per source.
    #[arg(long, env = "MEDALLION_BENCH_FILES", default_value_t = 8)]
    pub files: u64,
    /// Working directory (landing and lakehouse are created inside; reused data is regenerated).
    #[arg(long, env = "MEDALLION_BENCH_DIR", default_value = "target/bench")]
    pub dir: String,
    /// Pipeline spec to run.
    #[arg(
        long,
        env = "MEDALLION_BENCH_SPEC",
        default_value = "pipelines/example/pipeline.toml"
    )]
    pub spec: String,
    /// Task slots of the embedded executor.
    #[arg(long, env = "MEDALLION_PARALLELISM", default_value_t = 2)]
    pub parallelism: usize,
    /// Scheduler to run on instead of the embedded cluster.
    #[arg(long, env = "MEDALLION_SCHEDULER")]
    pub scheduler: Option<String>,
}

pub(crate) async fn run(args: BenchArgs) -> Result<ExitCode> {
    let dir = std::path::absolute(&args.dir).map_err(|source| Error::Io {
        path: args.dir.clone(),
        source,
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    let landing = dir.join("landing").display().to_string();
    let lakehouse = dir.join("lakehouse").display().to_string();
    let generated_at = Instant::now();
    let written = ExampleData::new(resolve_url(None, &landing)?, args.orders)
        .with_files(args.files)
        .write()
        .await?;
    let generate_secs = generated_at.elapsed().as_secs_f64();
    let run_args = RunArgs {
        spec: args.spec.clone(),
        lakehouse: Some(lakehouse),
        landing: Some(landing),
        select: vec![],
        layer: vec![],
        full_refresh: false,
        run_id: None,
        scheduler: args.scheduler.clone(),
        parallelism: args.parallelism,
        partitions: args.parallelism,
        concurrency: 4,
        quiet: true,
    };
    let summary = execute(&run_args).await?;
    println!(
        "generated {} order lines + {} customer lines in {generate_secs:.2}s",
        written.order_lines, written.customer_lines
    );
    println!(
        "{:<8} {:<16} {:>10} {:>10} {:>9} {:>12}",
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
            "{:<8} {:<16} {:>10} {:>10} {:>9.2} {:>12.0}",
            t.layer.as_str(),
            t.table,
            t.rows_read,
            t.rows_written,
            secs,
            rate
        );
    }
    let total = summary.duration.as_secs_f64();
    let rows: u64 = summary.tables.iter().map(|t| t.rows_read).sum();
    println!(
        "pipeline total: {total:.2}s, {:.0} rows/s over all tables",
        rows as f64 / total.max(1e-9)
    );
    println!("peak RSS: {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    Ok(if summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// High-water mark of this process's resident memory (Linux).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MiB", kb / 1024.0))
}
