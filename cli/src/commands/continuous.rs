//! `medallion run --continuous`: micro-batches of the selected tables, one run each, on one
//! cluster, until SIGTERM or Ctrl-C.
//!
//! Each micro-batch is an ordinary run with its own run id, so everything a run guarantees
//! holds per batch: a Kafka table reads from the offsets its last commit recorded, landing
//! tables take the files not ingested yet, and a batch killed halfway is simply read again by
//! the next. The first signal lets the batch in flight finish and stops (a clean shutdown for
//! Kubernetes' SIGTERM); a second cancels the batch in flight.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::run::{RunArgs, prepare};
use crate::cluster::connect;
use crate::error::{Error, Result};

/// Runs micro-batches every `--trigger-seconds` until stopped; exit 0 when the last batch
/// succeeded, 1 when it failed, 130 when a second signal cancelled it.
pub(crate) async fn run(args: RunArgs) -> Result<ExitCode> {
    if !(args.trigger_seconds > 0.0 && args.trigger_seconds.is_finite()) {
        return Err(Error::BadFlag {
            flag: "trigger-seconds",
            message: format!("{} is not a positive number of seconds", args.trigger_seconds),
        });
    }
    let trigger = Duration::from_secs_f64(args.trigger_seconds);
    let (stop, mut stopping) = watch::channel(false);
    let (cancel, cancelled) = watch::channel(false);
    tokio::spawn(async move {
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        for (i, sender) in [stop, cancel].into_iter().enumerate() {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            eprintln!(
                "{}",
                match i {
                    0 => "stopping after the micro-batch in flight (signal again to cancel it)",
                    _ => "cancelling the micro-batch in flight",
                }
            );
            let _ = sender.send(true);
        }
    });
    // A bad spec or selection fails before the cluster starts.
    let (_, target) = prepare(&args, None)?;
    let cluster = connect(&target, args.partitions).await?;
    let mut batches = 0u64;
    let mut last_ok = true;
    while !*stopping.borrow() {
        let started = Instant::now();
        let (run, _) = prepare(&args, Some(cancelled.clone()))?;
        let summary = run.execute(&cluster.ctx).await?;
        batches += 1;
        last_ok = summary.succeeded();
        let written: u64 = summary.tables.iter().map(|t| t.rows_written).sum();
        println!(
            "micro-batch {batches} {}: {} in {:.2}s, {written} row(s) written",
            summary.run_id,
            if last_ok { "succeeded" } else { "FAILED" },
            summary.duration.as_secs_f64()
        );
        if !last_ok && !args.quiet {
            println!("{}", summary.render());
        }
        if *cancelled.borrow() {
            return Ok(ExitCode::from(130));
        }
        tokio::select! {
            _ = tokio::time::sleep(trigger.saturating_sub(started.elapsed())) => {}
            _ = stopping.changed() => {}
        }
    }
    eprintln!("stopped after {batches} micro-batch(es)");
    Ok(if last_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
