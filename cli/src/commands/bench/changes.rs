//! The CDC benchmark: `pipelines/changes` loads `--keys` accounts, then applies a batch that
//! changes `--update-fraction` of them (its incremental gold tables say how they followed),
//! then rebuilds the silver tables from the whole source (`--full-refresh`). It prints each step's seconds per table and, for the batch, the data
//! files each table's one commit removed and added out of the files it has.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use medallion_jobs::delta::TableSnapshot;
use medallion_jobs::generate::ChangesData;
use medallion_jobs::pipeline::{RunSummary, resolve_url};

use super::{BenchArgs, BenchCluster, landing, peak_rss, print_tables, run_args};
use crate::error::{Error, Result};

const SPEC: &str = "pipelines/changes/pipeline.toml";
/// The tables compared, as `(layer, name)`: the CDC tables and the incremental gold tables.
const TABLES: [(&str, &str); 4] = [
    ("silver", "accounts"),
    ("silver", "accounts_history"),
    ("gold", "balance_by_city"),
    ("gold", "versions_per_account"),
];

pub(super) async fn run(args: &BenchArgs, dir: &Path) -> Result<ExitCode> {
    let out = resolve_url(None, &landing(dir))?;
    let lines = ChangesData::new(out.clone(), args.keys).write().await?;
    println!("initial load: {lines} changes to {} keys", args.keys);
    let cluster = BenchCluster::start(&run_args(args, dir, SPEC)).await?;
    let load = step(&cluster, args, dir, false).await?;
    let lines = ChangesData::new(out, args.keys)
        .with_batch(1)
        .with_update_fraction(args.update_fraction)
        .write()
        .await?;
    println!(
        "batch: {lines} changes ({:.1}% of the keys)",
        args.update_fraction * 100.0
    );
    let batch = step(&cluster, args, dir, false).await?;
    for (layer, table) in TABLES {
        files_rewritten(dir, layer, table).await?;
    }
    println!("full rebuild of the silver tables from the whole source (--full-refresh):");
    let full = step(&cluster, args, dir, true).await?;
    for (_, table) in &TABLES[..2] {
        let (apply, rebuild) = (seconds(&batch, table), seconds(&full, table));
        println!(
            "{table}: batch applied in {apply:.2}s, full rebuild {rebuild:.2}s ({:.1}x); initial load {:.2}s",
            rebuild / apply.max(1e-9),
            seconds(&load, table)
        );
    }
    println!("peak RSS: {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    let all = [&load, &batch, &full];
    Ok(match all.iter().all(|s| s.succeeded()) {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    })
}

/// One run of the pipeline (silver only and from scratch with `full_refresh`), timed per table.
async fn step(
    cluster: &BenchCluster,
    args: &BenchArgs,
    dir: &Path,
    full_refresh: bool,
) -> Result<RunSummary> {
    let mut run = run_args(args, dir, SPEC);
    if full_refresh {
        run.full_refresh = true;
        run.layer = vec!["silver".into()];
    }
    let started = Instant::now();
    let summary = cluster.run(&run).await?;
    print_tables(&summary);
    println!("  run: {:.2}s", started.elapsed().as_secs_f64());
    Ok(summary)
}

fn seconds(summary: &RunSummary, table: &str) -> f64 {
    summary
        .tables
        .iter()
        .find(|t| t.table == table)
        .map_or(f64::NAN, |t| t.duration.as_secs_f64())
}

/// Prints the data files the table's last commit removed and added, and how many it has.
async fn files_rewritten(dir: &Path, layer: &str, table: &str) -> Result<()> {
    let path = dir.join("lakehouse").join(layer).join(table);
    let url = url::Url::from_directory_path(&path).map_err(|()| Error::BadFlag {
        flag: "dir",
        message: format!("{} is not an absolute path", path.display()),
    })?;
    let Some(snapshot) = TableSnapshot::load(&url).await? else {
        println!("{table}: not written");
        return Ok(());
    };
    let (added, removed) = snapshot.last_commit_files().await?;
    let files = snapshot.scan_table()?.files.len();
    println!(
        "{table}: the batch's commit (version {}) removed {removed} and added {added} data files; the table has {files}",
        snapshot.version()
    );
    Ok(())
}
