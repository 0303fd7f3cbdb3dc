//! Every table runs as watched attempts. An attempt that fails for a transient reason, makes
//! no progress on the cluster for the table's `stall_seconds`, or outlives its
//! `timeout_seconds`, has its Ballista jobs cancelled and is tried again after a backoff, up to
//! `retries` times. Commits carry the run's Delta `txn`, so a retry never writes twice.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_core::extension::SessionConfigExt;
use tokio::sync::watch;
use tracing::{info, warn};

use super::event_log::EventLog;
use super::outcome::{RunEvent, TableOutcome, TableStatus};
use super::table_job::{Attempted, TableJob};
use crate::cluster::{JobWatch, Progress};
use crate::delta::{FileTag, discard_tagged};
use crate::error::{Abandoned, Error, Failure, error_chain};
use crate::spec::RetryPolicy;

/// How often the watch asks the scheduler about an attempt's jobs.
const POLL: Duration = Duration::from_secs(1);
/// Attempts an executor loss may cost a table on top of its `retries`: a cluster that keeps
/// losing executors still ends the run.
const MAX_LOSSES: u32 = 8;
/// First pause between attempts; doubled per attempt up to [`MAX_BACKOFF`]. Long enough for
/// the scheduler to have noticed a lost executor in most setups, so the next attempt's tasks
/// go to executors that are alive.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Whether the run was cancelled; a closed channel means it never will be.
#[derive(Debug, Clone)]
pub(crate) struct CancelSignal(pub(crate) watch::Receiver<bool>);

impl CancelSignal {
    pub(crate) fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the run is cancelled; never if it cannot be.
    async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs `job` until it succeeds, fails for good, or runs out of attempts; each attempt runs on
/// a session of its own whose Ballista jobs are watched and whose files carry the attempt's
/// tag. Every failed attempt goes to the event log and to `notify` before the next one; the
/// files it wrote and did not commit are deleted.
pub(crate) async fn run_attempts(
    job: TableJob<'_>,
    policy: RetryPolicy,
    cancel: &CancelSignal,
    log: &EventLog,
    notify: impl Fn(&RunEvent),
) -> TableOutcome {
    let (name, layer, outputs) = (job.table.name.clone(), job.table.layer, job.output_urls());
    let (mut attempt, mut losses) = (1, 0);
    loop {
        // Files are named after the attempt (safe in a file name); Ballista jobs after the table.
        let tag = format!("{}-a{attempt}", job.run.id);
        let job_name = format!("{}/{name}#{attempt}", job.run.id);
        let config = job
            .ctx
            .copied_config()
            .with_ballista_job_name(&job_name)
            .with_extension(Arc::new(FileTag(tag.clone())));
        // Checked when the spec was read: a failure here is the table's, not the run's.
        let config = match crate::cluster::with_settings(config, &job.table.settings) {
            Ok(config) => config,
            Err(e) => return unsettable(&job, e),
        };
        let (session, jobs) = JobWatch::session(job.ctx, config);
        let table = TableJob {
            ctx: &session,
            ..job.clone()
        };
        let started = Instant::now();
        let (mut outcome, failure) = match watched(table.run(), &jobs, policy, cancel).await {
            Ok(Attempted { outcome, failure }) => (outcome, failure),
            Err(cause) => {
                jobs.cancel().await;
                let mut outcome = TableOutcome::new(&name, layer);
                outcome.duration = started.elapsed();
                let failure = match cause {
                    Abandoned::Cancelled => Failure::Permanent,
                    Abandoned::Stalled { .. } | Abandoned::TimedOut { .. } => Failure::Transient,
                };
                let error = Error::AttemptAbandoned {
                    table: name.clone(),
                    attempt,
                    cause,
                };
                outcome.error = Some(error_chain(&error));
                (outcome, failure)
            }
        };
        outcome.attempts = attempt;
        if outcome.status == TableStatus::Failed {
            for url in &outputs {
                discard_tagged(url, &tag).await;
            }
        }
        let failed = outcome.status == TableStatus::Failed;
        if !failed || failure == Failure::Permanent || cancel.is_cancelled() {
            return outcome;
        }
        if failure == Failure::ExecutorLost {
            losses += 1;
        }
        let counted = attempt - losses.min(MAX_LOSSES);
        if counted > policy.retries || losses > MAX_LOSSES {
            let last = outcome.error.take().unwrap_or_default();
            outcome.error = Some(
                Error::AttemptsExhausted {
                    table: name,
                    attempts: attempt,
                    last,
                }
                .to_string(),
            );
            return outcome;
        }
        let backoff = (FIRST_BACKOFF * 2u32.pow(attempt.min(8) - 1)).min(MAX_BACKOFF);
        warn!(table = %name, attempt, error = outcome.error.as_deref().unwrap_or(""), "attempt failed; retrying");
        outcome.status = TableStatus::Retried;
        if let Err(e) = log.record(&outcome) {
            warn!(error = %error_chain(&e), table = %name, "could not append to the event log");
        }
        notify(&RunEvent::TableRetrying {
            attempt: outcome,
            backoff,
        });
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = cancel.cancelled() => {}
        }
        attempt += 1;
    }
}

/// The outcome of a table whose settings do not apply to a session (failed, not retried).
fn unsettable(job: &TableJob<'_>, source: datafusion::error::DataFusionError) -> TableOutcome {
    let mut outcome = TableOutcome::new(&job.table.name, job.table.layer);
    outcome.error = Some(error_chain(&job.query_err("apply the table's settings", source)));
    outcome
}

/// Drives `attempt` while watching its jobs; gives up when they stall, time out or the run
/// is cancelled. The watch runs beside the attempt, never in its way: asking the scheduler
/// must not pause the work it asks about.
async fn watched<T>(
    attempt: impl Future<Output = T>,
    jobs: &JobWatch,
    policy: RetryPolicy,
    cancel: &CancelSignal,
) -> Result<T, Abandoned> {
    tokio::select! {
        done = attempt => Ok(done),
        () = cancel.cancelled() => Err(Abandoned::Cancelled),
        abandoned = watch_until_abandoned(jobs, policy) => Err(abandoned),
    }
}

/// Polls the attempt's jobs until it has to be given up: no progress for `policy.stall`
/// while the cluster has work of it, or older than `policy.timeout`.
async fn watch_until_abandoned(jobs: &JobWatch, policy: RetryPolicy) -> Abandoned {
    let started = Instant::now();
    let mut last = (Progress::default(), Instant::now());
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        // A scheduler that does not answer is no progress, not a reason to stop watching.
        let asked = tokio::time::timeout(POLL * 5, jobs.progress()).await;
        let unanswered = asked.is_err();
        let now = asked.unwrap_or(last.0);
        if now != last.0 {
            last = (now, Instant::now());
        }
        if let Some(limit) = policy.timeout.filter(|t| started.elapsed() > *t) {
            return Abandoned::TimedOut {
                seconds: limit.as_secs(),
            };
        }
        // Only the cluster's silence counts: planning and commits on the driver happen
        // between jobs, when every job has ended.
        let waiting_on_cluster = now.jobs > now.jobs_ended || unanswered;
        if waiting_on_cluster && last.1.elapsed() > policy.stall {
            info!(?now, "attempt stalled");
            return Abandoned::Stalled {
                seconds: last.1.elapsed().as_secs(),
                jobs: now.jobs,
                stages_done: now.stages_done,
                queued: now.queued,
            };
        }
    }
}
