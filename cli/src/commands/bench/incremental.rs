//! The incremental benchmark: the e-commerce pipeline on `--scale` history, then one later
//! batch (new orders and customers, status changes, customer moves, some late; sized by
//! `--batch-scale`), run as a nightly run would, then the same tables rebuilt from all of the landing data
//! (`--full-refresh`). It prints, per table, rows read and seconds of both runs and how each
//! incremental table was computed; per layer, the wall seconds of both; and the batch run's
//! cost as a share of the full run's, bronze → gold and ml apart. Both the batch and the full
//! refresh run bronze → gold first and the ml layer after, in a run of its own: no gold table
//! reads an ml one, and the model would otherwise take the cores from the gold tables timed.
//! Between the two, bronze → gold runs once more with no new landing file: what a run that
//! finds nothing new costs.

use std::path::Path;
use std::process::ExitCode;

use medallion_jobs::generate::EcommerceData;
use medallion_jobs::pipeline::{RunSummary, TableStatus, resolve_url};
use medallion_jobs::spec::Layer;

use super::{BenchArgs, BenchCluster, landing, layer_wall, peak_rss, run_args};
use crate::commands::run::RunArgs;
use crate::error::Result;

const SPEC: &str = "pipelines/ecommerce/pipeline.toml";

pub(super) async fn run(args: &BenchArgs, dir: &Path) -> Result<ExitCode> {
    let out = resolve_url(None, &landing(dir))?;
    let lines: u64 = EcommerceData::new(out.clone(), args.scale)
        .write()
        .await?
        .iter()
        .map(|w| w.lines)
        .sum();
    let cluster = BenchCluster::start(&run_args(args, dir, SPEC)).await?;
    let history = cluster.run(&run_args(args, dir, SPEC)).await?;
    println!(
        "history: scale {} ({lines} landing lines) in {:.2}s",
        args.scale,
        history.duration.as_secs_f64()
    );
    let batch_scale = args.batch_scale.unwrap_or(args.scale);
    let written = EcommerceData::new(out, args.scale)
        .with_batch(1)
        .with_batch_scale(batch_scale)
        .write()
        .await?;
    let lines: u64 = written.iter().map(|w| w.lines).sum();
    let batch = through_gold_then_ml(&cluster, args, dir, false).await?;
    let nothing_new = cluster.run(&through_gold(args, dir, false)).await?;
    let full = through_gold_then_ml(&cluster, args, dir, true).await?;
    println!("batch 1: {lines} landing lines (sized as at scale {batch_scale})");
    print_side_by_side(&batch, &full);
    print_shares(&batch, &full);
    print_nothing_new(&nothing_new, &full);
    print_models(&batch, &full);
    println!("peak RSS: {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    let all = [&history, &batch, &nothing_new, &full];
    Ok(match all.iter().all(|s| s.succeeded()) {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    })
}

/// The arguments of a run of the bronze, silver and gold layers.
fn through_gold(args: &BenchArgs, dir: &Path, full_refresh: bool) -> RunArgs {
    let mut run = run_args(args, dir, SPEC);
    run.full_refresh = full_refresh;
    run.layer = vec!["bronze".into(), "silver".into(), "gold".into()];
    run
}

/// A run of the bronze, silver and gold layers, then one of the ml layer, as one summary.
async fn through_gold_then_ml(
    cluster: &BenchCluster,
    args: &BenchArgs,
    dir: &Path,
    full_refresh: bool,
) -> Result<RunSummary> {
    let first = through_gold(args, dir, full_refresh);
    let mut second = first.clone();
    second.layer = vec!["ml".into()];
    let mut summary = cluster.run(&first).await?;
    let ml = cluster.run(&second).await?;
    summary.tables.extend(ml.tables);
    summary.duration += ml.duration;
    Ok(summary)
}

/// Per table: rows read and seconds of the batch run and of the full refresh.
fn print_side_by_side(batch: &RunSummary, full: &RunSummary) {
    println!(
        "{:<8} {:<24} {:>12} {:>9}   {:>12} {:>9}",
        "layer", "table", "batch read", "seconds", "full read", "seconds"
    );
    for t in &batch.tables {
        let f = full.tables.iter().find(|f| f.table == t.table);
        println!(
            "{:<8} {:<24} {:>12} {:>9.2}   {:>12} {:>9.2}",
            t.layer.as_str(),
            t.table,
            t.rows_read,
            t.duration.as_secs_f64(),
            f.map_or(0, |f| f.rows_read),
            f.map_or(f64::NAN, |f| f.duration.as_secs_f64()),
        );
        if let Some(refresh) = &t.refresh {
            println!("{:<8}   {}", "", refresh.render());
        }
    }
}

/// The ALS tables' metrics: the batch run's (a warm start, with the table's `warm_start`)
/// next to the full refresh's (always from the seeded initial factors).
fn print_models(batch: &RunSummary, full: &RunSummary) {
    const SHOWN: [&str; 8] = [
        "iterations",
        "warm_users",
        "seconds_per_iteration",
        "rmse",
        "precision@10",
        "recall@10",
        "ndcg@10",
        "map@10",
    ];
    for t in batch.tables.iter().filter(|t| !t.metrics.is_empty()) {
        let Some(f) = full.tables.iter().find(|f| f.table == t.table) else {
            continue;
        };
        println!(
            "model {}: batch run (warm start if set) | full refresh (cold start)",
            t.table
        );
        for name in SHOWN {
            let value = |o: &medallion_jobs::pipeline::TableOutcome| {
                o.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
            };
            if let (Some(b), Some(c)) = (value(t), value(f)) {
                println!("  {name:<22} {b:>10.4} | {c:>10.4}");
            }
        }
    }
}

/// Wall seconds per layer of both runs, and the batch run's share of the full run's.
fn print_shares(batch: &RunSummary, full: &RunSummary) {
    for layer in [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Ml] {
        let seconds = |s: &RunSummary| layer_wall(s, layer).map_or(0.0, |w| w.seconds);
        let (b, f) = (seconds(batch), seconds(full));
        println!(
            "layer {:<6} batch {b:>8.2}s   full {f:>8.2}s   {:>5.1}%",
            layer.as_str(),
            100.0 * b / f.max(1e-9)
        );
    }
    let (b, f) = (gold_seconds(batch), gold_seconds(full));
    println!(
        "bronze → gold: batch {b:.2}s, full {f:.2}s ({:.1}%); whole run: batch {:.2}s, full {:.2}s",
        100.0 * b / f.max(1e-9),
        batch.duration.as_secs_f64(),
        full.duration.as_secs_f64()
    );
}

/// bronze → gold seconds: from the run's start to the last gold table's end.
fn gold_seconds(s: &RunSummary) -> f64 {
    let start = s.tables.iter().map(|t| t.started_at_micros).min().unwrap_or(0);
    let end = s
        .tables
        .iter()
        .filter(|t| t.layer != Layer::Ml)
        .map(|t| t.started_at_micros + t.duration.as_micros() as i64)
        .max()
        .unwrap_or(start);
    (end - start) as f64 / 1e6
}

/// The run right after the batch's, with no new landing file: what it costs, and how many
/// tables it kept.
fn print_nothing_new(nothing_new: &RunSummary, full: &RunSummary) {
    let kept = nothing_new
        .tables
        .iter()
        .filter(|t| t.status == TableStatus::NoNewData)
        .count();
    let (n, f) = (gold_seconds(nothing_new), gold_seconds(full));
    println!(
        "no new data: bronze → gold {n:.2}s ({:.1}% of the full run), {kept} of {} tables no_new_data",
        100.0 * n / f.max(1e-9),
        nothing_new.tables.len()
    );
}
