//! The runs the job service knows: queued behind a limit on concurrent runs, executed on the
//! Ballista cluster this scheduler serves, their events kept so a late watcher sees them all.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use medallion_jobs::pipeline::{PipelineRun, RunEvent as TableEvent, TableOutcome};
use medallion_proto::v1::{
    ColumnLineage, Run, RunEvent, RunStatus, SourceColumn, SubmitRunRequest, TableResult, run_event::Event,
};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{info, warn};

use super::history::RunHistory;
use crate::{Error, Result};

/// One run's state, history and task.
#[derive(Debug)]
pub(crate) struct RunEntry {
    request: SubmitRunRequest,
    run: Mutex<Run>,
    history: Mutex<Vec<RunEvent>>,
    events: broadcast::Sender<RunEvent>,
    task: Mutex<Option<AbortHandle>>,
    cancel: watch::Sender<bool>,
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RunEntry {
    fn new(run: Run, request: SubmitRunRequest) -> Self {
        Self {
            request,
            run: Mutex::new(run),
            history: Mutex::new(Vec::new()),
            events: broadcast::channel(1024).0,
            task: Mutex::new(None),
            cancel: watch::channel(false).0,
        }
    }

    /// The request that started the run.
    pub(crate) fn request(&self) -> &SubmitRunRequest {
        &self.request
    }

    /// The run as it is now.
    pub(crate) fn snapshot(&self) -> Run {
        lock(&self.run).clone()
    }

    /// Past events and a receiver for the ones to come, with nothing lost in between.
    pub(crate) fn subscribe(&self) -> (Vec<RunEvent>, broadcast::Receiver<RunEvent>) {
        let history = lock(&self.history);
        (history.clone(), self.events.subscribe())
    }

    fn emit(&self, event: Event) {
        let event = RunEvent {
            run_id: lock(&self.run).run_id.clone(),
            event: Some(event),
        };
        let mut history = lock(&self.history);
        history.push(event.clone());
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    fn set_status(&self, status: RunStatus) {
        lock(&self.run).status = status as i32;
        self.emit(Event::StatusChanged(status as i32));
    }

    /// Ends the run once: a run already ended (say, cancelled) keeps its first ending. The
    /// caller records the ended run before it reports it.
    fn finish(&self, status: RunStatus, error: String, tables: Option<Vec<TableResult>>) -> Option<Run> {
        let mut run = lock(&self.run);
        if is_final(run.status) {
            return None;
        }
        run.status = status as i32;
        run.error = error;
        run.finished_at_micros = now_micros();
        if let Some(tables) = tables {
            run.tables = tables;
        }
        Some(run.clone())
    }

    /// The run's current state, for the request that started it.
    pub(crate) fn status(&self) -> i32 {
        lock(&self.run).status
    }

    /// Starts an interrupted run over: queued again, its old events forgotten.
    fn requeue(&self) {
        {
            let mut run = lock(&self.run);
            run.status = RunStatus::Queued as i32;
            run.error.clear();
            run.finished_at_micros = 0;
            run.tables.clear();
        }
        self.cancel.send_replace(false);
        lock(&self.history).clear();
        self.emit(Event::StatusChanged(RunStatus::Queued as i32));
    }
}

/// Whether a status is an ending.
pub(crate) fn is_final(status: i32) -> bool {
    matches!(
        RunStatus::try_from(status),
        Ok(RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled | RunStatus::Interrupted)
    )
}

fn table_result(t: &TableOutcome) -> TableResult {
    TableResult {
        table: t.table.clone(),
        layer: t.layer.as_str().into(),
        status: t.status.as_str().into(),
        rows_read: t.rows_read,
        rows_written: t.rows_written,
        rows_quarantined: t.rows_quarantined,
        version: t.version,
        seconds: t.duration.as_secs_f64(),
        error: t.error.clone().unwrap_or_default(),
        attempts: t.attempts,
        lineage: t.lineage.iter().map(column_lineage).collect(),
    }
}

fn column_lineage(c: &medallion_jobs::lineage::ColumnLineage) -> ColumnLineage {
    ColumnLineage {
        column: c.column.clone(),
        sources: c
            .sources
            .iter()
            .map(|s| SourceColumn {
                table: s.table.clone(),
                column: s.column.clone(),
            })
            .collect(),
    }
}

/// Every run of this scheduler process.
#[derive(Debug)]
pub(crate) struct Registry {
    runs: Mutex<BTreeMap<String, Arc<RunEntry>>>,
    keys: Mutex<HashMap<String, String>>,
    slots: Arc<Semaphore>,
    cluster_url: String,
    partitions: usize,
    history: Option<RunHistory>,
    executors_ready: Option<ExecutorsReady>,
}

/// Resolves when an executor is registered (or gives up waiting): a Ballista job submitted to
/// a scheduler without executors is not scheduled when they register later.
#[derive(Clone)]
pub struct ExecutorsReady(pub Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>);

impl std::fmt::Debug for ExecutorsReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecutorsReady")
    }
}

impl Registry {
    pub(crate) fn new(cluster_url: String, concurrent_runs: usize, partitions: usize) -> Self {
        Self {
            runs: Mutex::new(BTreeMap::new()),
            keys: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(concurrent_runs.max(1))),
            cluster_url,
            partitions: partitions.max(1),
            history: None,
            executors_ready: None,
        }
    }

    /// Runs start once `ready` resolves.
    pub(crate) fn with_executors_ready(mut self, ready: Option<ExecutorsReady>) -> Self {
        self.executors_ready = ready;
        self
    }

    /// Keeps runs in `history` and loads the earlier ones; runs a restart cut off are marked
    /// interrupted and returned, to be resumed or left as they are.
    pub(crate) async fn with_history(mut self, history: RunHistory) -> Result<(Self, Vec<Arc<RunEntry>>)> {
        let mut cut_off = Vec::new();
        for (mut run, request) in history.load().await? {
            let interrupted = !is_final(run.status);
            if interrupted {
                run.status = RunStatus::Interrupted as i32;
                run.error = "interrupted: the scheduler stopped during the run".into();
                run.finished_at_micros = now_micros();
                history.record(&run, &request).await?;
            }
            let entry = Arc::new(RunEntry::new(run.clone(), request));
            entry.emit(Event::RunFinished(run.clone()));
            if !run.idempotency_key.is_empty() {
                lock(&self.keys).insert(run.idempotency_key.clone(), run.run_id.clone());
            }
            lock(&self.runs).insert(run.run_id.clone(), Arc::clone(&entry));
            if interrupted {
                cut_off.push(entry);
            }
        }
        self.history = Some(history);
        Ok((self, cut_off))
    }

    /// Ends `entry` with `status`, records it, then reports it to watchers.
    async fn end(
        &self,
        entry: &RunEntry,
        status: RunStatus,
        error: String,
        tables: Option<Vec<TableResult>>,
    ) {
        if let Some(run) = entry.finish(status, error, tables) {
            self.record(&run, &entry.request).await;
            info!(run_id = %run.run_id, status = status.as_str_name(), "run ended");
            entry.emit(Event::RunFinished(run));
        }
    }

    /// A table event of a running run; finished tables are recorded before they are reported.
    async fn on_table(&self, entry: &RunEntry, event: TableEvent) {
        match event {
            TableEvent::TableStarted { table, .. } => entry.emit(Event::TableStarted(table)),
            TableEvent::TableRetrying { attempt, .. } => {
                entry.emit(Event::TableRetrying(table_result(&attempt)))
            }
            TableEvent::TableFinished(outcome) => {
                let result = table_result(&outcome);
                let run = {
                    let mut run = lock(&entry.run);
                    run.tables.push(result.clone());
                    run.clone()
                };
                self.record(&run, &entry.request).await;
                entry.emit(Event::TableFinished(result));
            }
        }
    }

    async fn record(&self, run: &Run, request: &SubmitRunRequest) {
        if let Some(history) = &self.history
            && let Err(e) = history.record(run, request).await
        {
            warn!(run_id = %run.run_id, error = %medallion_jobs::error_chain(&e), "could not record the run");
        }
    }

    /// The run an idempotency key was first submitted with.
    pub(crate) fn by_key(&self, key: &str) -> Option<String> {
        (!key.is_empty())
            .then(|| lock(&self.keys).get(key).cloned())
            .flatten()
    }

    pub(crate) fn get(&self, run_id: &str) -> Result<Arc<RunEntry>> {
        lock(&self.runs)
            .get(run_id)
            .cloned()
            .ok_or_else(|| Error::RunNotFound {
                run_id: run_id.into(),
            })
    }

    /// How many runs wait for a slot and how many execute.
    pub(crate) fn demand(&self) -> crate::autoscale::Demand {
        let mut demand = crate::autoscale::Demand::default();
        for entry in lock(&self.runs).values() {
            match RunStatus::try_from(entry.status()) {
                Ok(RunStatus::Queued) => demand.queued_runs += 1,
                Ok(RunStatus::Running) => demand.running_runs += 1,
                _ => {}
            }
        }
        demand
    }

    /// Runs, newest first.
    pub(crate) fn all(&self) -> Vec<Run> {
        let mut runs: Vec<Run> = lock(&self.runs).values().map(|e| e.snapshot()).collect();
        runs.sort_by(|a, b| {
            b.submitted_at_micros
                .cmp(&a.submitted_at_micros)
                .then(b.run_id.cmp(&a.run_id))
        });
        runs
    }

    /// Queues `run`; it starts when a slot is free and goes on whether or not anyone watches.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        run: PipelineRun,
        pipeline: &str,
        tables: Vec<String>,
        request: SubmitRunRequest,
    ) -> String {
        let run_id = run.run_id().id.clone();
        let key = request.idempotency_key.clone();
        let snapshot = Run {
            run_id: run_id.clone(),
            pipeline: pipeline.into(),
            status: RunStatus::Queued as i32,
            submitted_at_micros: now_micros(),
            idempotency_key: key.clone(),
            ..Default::default()
        };
        self.record(&snapshot, &request).await;
        let entry = Arc::new(RunEntry::new(snapshot, request));
        lock(&self.runs).insert(run_id.clone(), Arc::clone(&entry));
        if !key.is_empty() {
            lock(&self.keys).insert(key, run_id.clone());
        }
        entry.emit(Event::StatusChanged(RunStatus::Queued as i32));
        self.spawn(run, entry, tables);
        info!(%run_id, pipeline, "run queued");
        run_id
    }

    /// Runs an interrupted run again under its own id: tables it committed report
    /// `already_committed`, the others are built — nothing is written twice.
    pub(crate) async fn resume(
        self: &Arc<Self>,
        entry: Arc<RunEntry>,
        run: PipelineRun,
        tables: Vec<String>,
    ) {
        entry.requeue();
        self.record(&entry.snapshot(), &entry.request).await;
        info!(run_id = %run.run_id().id, "interrupted run resumed");
        self.spawn(run, entry, tables);
    }

    fn spawn(self: &Arc<Self>, run: PipelineRun, entry: Arc<RunEntry>, tables: Vec<String>) {
        let task = tokio::spawn(Arc::clone(self).execute(run, Arc::clone(&entry), tables));
        *lock(&entry.task) = Some(task.abort_handle());
    }

    async fn execute(self: Arc<Self>, run: PipelineRun, entry: Arc<RunEntry>, tables: Vec<String>) {
        let Ok(_slot) = Arc::clone(&self.slots).acquire_owned().await else {
            return;
        };
        entry.set_status(RunStatus::Running);
        for table in tables {
            entry.emit(Event::TableQueued(table));
        }
        self.record(&entry.snapshot(), &entry.request).await;
        let (events, mut received) = mpsc::unbounded_channel();
        let run = run
            .with_observer(move |e| {
                let _ = events.send(e.clone());
            })
            .with_cancel(entry.cancel.subscribe());
        let execute = async {
            if let Some(ready) = &self.executors_ready {
                (ready.0)().await;
            }
            let ctx = medallion_jobs::cluster::connect(&self.cluster_url, self.partitions).await?;
            run.execute(&ctx).await
        };
        // The observer's sender goes with the run, which ends the forwarding.
        let forward = async {
            while let Some(event) = received.recv().await {
                self.on_table(&entry, event).await;
            }
        };
        let (result, ()) = tokio::join!(execute, forward);
        match result {
            Ok(summary) => {
                let status = if summary.succeeded() {
                    RunStatus::Succeeded
                } else {
                    RunStatus::Failed
                };
                let tables = summary.tables.iter().map(table_result).collect();
                self.end(&entry, status, String::new(), Some(tables)).await;
            }
            Err(e) => {
                let message = medallion_jobs::error_chain(&e);
                warn!(error = %message, "run failed");
                self.end(&entry, RunStatus::Failed, message, None).await;
            }
        }
    }

    /// Stops a queued or running run: its Ballista jobs in flight are cancelled on the cluster
    /// and its remaining tables are skipped. Tables it committed stay.
    pub(crate) async fn cancel(&self, run_id: &str) -> Result<Run> {
        let entry = self.get(run_id)?;
        let run = entry.snapshot();
        if is_final(run.status) {
            return Err(Error::RunEnded {
                run_id: run_id.into(),
                status: RunStatus::try_from(run.status)
                    .map_or("unknown", |s| s.as_str_name())
                    .into(),
            });
        }
        entry.cancel.send_replace(true);
        if run.status == RunStatus::Queued as i32
            && let Some(task) = lock(&entry.task).take()
        {
            task.abort();
        }
        self.end(&entry, RunStatus::Cancelled, "cancelled".into(), None)
            .await;
        Ok(entry.snapshot())
    }
}
