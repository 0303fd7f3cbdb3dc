//! `medallion run --continuous`: micro-batches of the selected tables, one run each, on one
//! cluster, until SIGTERM or Ctrl-C.
//!
//! Each micro-batch is an ordinary run with its own run id, so everything a run guarantees
//! holds per batch: a Kafka table reads from the offsets its last commit recorded, landing
//! tables take the files not ingested yet, and a batch killed halfway is simply read again by
//! the next. On a cluster the first signal lets the batch in flight finish and stops (a clean
//! shutdown for Kubernetes' SIGTERM) and a second cancels it; on the embedded cluster the
//! first cancels it ([`stop_on_signals`]).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use medallion_jobs::pipeline::RunSummary;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::run::{RunArgs, prepare};
use crate::cluster::{ClusterTarget, connect};
use crate::error::{Error, Result};

/// Runs micro-batches every `--trigger-seconds` until stopped; exit 0 when the last batch
/// succeeded (or a stop cancelled it on the embedded cluster), 1 when it failed, 130 when a
/// second signal cancelled it on a cluster.
pub(crate) async fn run(args: RunArgs) -> Result<ExitCode> {
    if !(args.trigger_seconds > 0.0 && args.trigger_seconds.is_finite()) {
        return Err(Error::BadFlag {
            flag: "trigger-seconds",
            message: format!("{} is not a positive number of seconds", args.trigger_seconds),
        });
    }
    // A bad spec or selection fails before the cluster starts.
    let (_, target) = prepare(&args, None)?;
    let embedded = matches!(target, ClusterTarget::Embedded { .. });
    let (stop, stopping) = watch::channel(false);
    let (cancel, cancelled) = watch::channel(false);
    tokio::spawn(stop_on_signals(stop, cancel, embedded));
    let cluster = connect(&target, args.partitions).await?;
    let quiet = args.quiet;
    let stopped = cancelled.clone();
    let batches = micro_batches(&args, &cluster.ctx, stopping, cancelled.clone(), |n, summary| {
        let written: u64 = summary.tables.iter().map(|t| t.rows_written).sum();
        let outcome = match (summary.succeeded(), *stopped.borrow()) {
            (true, _) => "succeeded",
            (false, true) => "cancelled",
            (false, false) => "FAILED",
        };
        println!(
            "micro-batch {n} {}: {outcome} in {:.2}s, {written} row(s) written",
            summary.run_id,
            summary.duration.as_secs_f64()
        );
        if outcome == "FAILED" && !quiet {
            println!("{}", summary.render());
        }
    })
    .await?;
    if *cancelled.borrow() && !embedded {
        return Ok(ExitCode::from(130));
    }
    eprintln!("stopped after {} micro-batch(es)", batches.count);
    // On the embedded cluster a stop cancels the batch in flight: that is no failure.
    Ok(if batches.last_ok || (embedded && *cancelled.borrow()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The first SIGTERM or Ctrl-C stops after the batch in flight, the second cancels it. On the
/// embedded cluster the first cancels it at once: Ballista's in-process executor stops on the
/// same signal, so the batch could not finish (its records are read again by the next start).
async fn stop_on_signals(stop: watch::Sender<bool>, cancel: watch::Sender<bool>, embedded: bool) {
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    for signals in 1.. {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = stop.send(true);
        if embedded || signals > 1 {
            eprintln!("stopping: cancelling the micro-batch in flight");
            let _ = cancel.send(true);
            return;
        }
        eprintln!("stopping after the micro-batch in flight (signal again to cancel it)");
    }
}

/// How a series of micro-batches ended.
pub(crate) struct Batches {
    /// Micro-batches run.
    pub(crate) count: u64,
    /// Whether the last one succeeded (true when none ran).
    pub(crate) last_ok: bool,
}

/// Runs the run `args` describes again and again on `ctx`, one every `--trigger-seconds`,
/// until `stop` turns true (the batch in flight finishes) or `cancel` does (it is cancelled);
/// `on_batch` sees each batch's number and summary.
pub(crate) async fn micro_batches(
    args: &RunArgs,
    ctx: &SessionContext,
    mut stop: watch::Receiver<bool>,
    cancel: watch::Receiver<bool>,
    mut on_batch: impl FnMut(u64, &RunSummary),
) -> Result<Batches> {
    let trigger = Duration::from_secs_f64(args.trigger_seconds);
    let mut batches = Batches {
        count: 0,
        last_ok: true,
    };
    while !*stop.borrow() {
        let started = Instant::now();
        let (run, _) = prepare(args, Some(cancel.clone()))?;
        // The spec does not change between batches: the first one checks it.
        let summary = run.with_check(batches.count == 0).execute(ctx).await?;
        batches.count += 1;
        batches.last_ok = summary.succeeded();
        on_batch(batches.count, &summary);
        if *cancel.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(trigger.saturating_sub(started.elapsed())) => {}
            _ = stop.changed() => {}
        }
    }
    Ok(batches)
}
