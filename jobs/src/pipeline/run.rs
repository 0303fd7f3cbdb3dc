//! A pipeline run: selection, upstream registration, concurrent table jobs in DAG order, the
//! heads of the longest chains first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::FuturesUnordered;
use tracing::{info, warn};
use url::Url;

use super::attempts::{CancelSignal, run_attempts};
use super::check::{CheckedRun, RunPlan};
use super::event_log::{EVENT_LOG_PATH, EventLog};
use super::lineage_log::{LINEAGE_PATH, record_lineage};
use super::outcome::{RunEvent, RunSummary, TableOutcome, TableStatus};
use super::paths::{Lakehouse, resolve_url};
use super::resolved::ResolvedRun;
use super::run_id::RunId;
use super::table_job::TableJob;
use crate::dag::Dag;
use crate::delta::TableSnapshot;
use crate::error::{Error, Result, error_chain};
use crate::lineage::ColumnLineage;
use crate::quality::QUARANTINE_SUFFIX;
use crate::spec::{Pipeline, RetrySettings};

type Observer = Arc<dyn Fn(&RunEvent) + Send + Sync>;

/// Builder for one run of a pipeline on a cluster session.
#[must_use]
pub struct PipelineRun {
    pipeline: Pipeline,
    dag: Dag,
    selected: Vec<String>,
    lakehouse: Option<String>,
    landing: Option<String>,
    full_refresh: bool,
    run_id: RunId,
    concurrency: usize,
    partitions: usize,
    cluster: String,
    observer: Option<Observer>,
    retry_overrides: RetrySettings,
    cancel: CancelSignal,
    /// Each table's column lineage, as the run's check planned it.
    lineage: BTreeMap<String, Vec<ColumnLineage>>,
    /// Check the tables plan (and record their lineage) before running.
    check_first: bool,
}

impl PipelineRun {
    /// A run of the resolved pipeline's selected tables.
    pub fn new(resolved: ResolvedRun) -> Self {
        let ResolvedRun {
            pipeline,
            dag,
            selected,
        } = resolved;
        Self {
            pipeline,
            dag,
            selected,
            lakehouse: None,
            landing: None,
            full_refresh: false,
            run_id: RunId::new(),
            concurrency: 4,
            partitions: 2,
            cluster: "embedded".into(),
            observer: None,
            retry_overrides: RetrySettings::default(),
            cancel: CancelSignal(tokio::sync::watch::channel(false).1),
            lineage: BTreeMap::new(),
            check_first: true,
        }
    }

    /// Overrides the spec's lakehouse root.
    pub fn with_lakehouse(mut self, url: Option<String>) -> Self {
        self.lakehouse = url.or(self.lakehouse);
        self
    }

    /// Overrides the spec's landing root.
    pub fn with_landing(mut self, url: Option<String>) -> Self {
        self.landing = url.or(self.landing);
        self
    }

    /// Rebuild tables from scratch: sources re-read every file, appends become overwrites.
    pub fn with_full_refresh(mut self, full_refresh: bool) -> Self {
        self.full_refresh = full_refresh;
        self
    }

    /// Repeat or resume a given run.
    pub fn with_run_id(mut self, run_id: RunId) -> Self {
        self.run_id = run_id;
        self
    }

    /// Tables built at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Scan tasks per landing source.
    pub fn with_partitions(mut self, n: usize) -> Self {
        self.partitions = n.max(1);
        self
    }

    /// Sets run parameters (`${name}` in queries), overriding the spec's `[pipeline] vars`.
    pub fn with_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.pipeline.vars.extend(vars);
        self
    }

    /// Label of the cluster, stored in the event log.
    pub fn with_cluster_label(mut self, label: impl Into<String>) -> Self {
        self.cluster = label.into();
        self
    }

    /// Watch and retry settings that override the spec's, for every table (flags, env).
    pub fn with_retry_overrides(mut self, overrides: RetrySettings) -> Self {
        self.retry_overrides = overrides;
        self
    }

    /// Cancels the run when `cancel` turns true: the Ballista jobs in flight are cancelled on
    /// the cluster, their tables fail, and tables not started yet are skipped.
    pub fn with_cancel(mut self, cancel: tokio::sync::watch::Receiver<bool>) -> Self {
        self.cancel = CancelSignal(cancel);
        self
    }

    /// Whether the run first checks that every table plans and records their lineage (on by
    /// default). A continuous run's later micro-batches skip it: the spec has not changed.
    pub fn with_check(mut self, check: bool) -> Self {
        self.check_first = check;
        self
    }

    /// Called for every progress event.
    pub fn with_observer(mut self, observer: impl Fn(&RunEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The run id this run uses.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Plans every selected table over its inputs' schemas (as committed, or as the run would
    /// write them) without writing anything, in a local session over `runtime`'s object
    /// stores; `pending`: also lists what each source would read.
    pub async fn check(&self, runtime: Arc<RuntimeEnv>, pending: bool) -> Result<RunPlan> {
        let lakehouse = Lakehouse::new(self.root_url()?);
        let landing = self.landing_url()?;
        let checked = CheckedRun {
            pipeline: &self.pipeline,
            dag: &self.dag,
            selected: &self.selected,
            lakehouse: &lakehouse,
            landing: landing.as_ref(),
            full_refresh: self.full_refresh,
            pending,
        };
        checked.plan(runtime).await
    }

    /// Checks every selected table plans ([`check`](Self::check)), then builds them on `ctx`'s
    /// cluster.
    pub async fn execute(mut self, ctx: &SessionContext) -> Result<RunSummary> {
        let started = Instant::now();
        let (dag, selected) = (&self.dag, &self.selected);
        let lakehouse = Lakehouse::new(self.root_url()?);
        let landing = self.landing_url()?;
        self.register_unselected_upstream(ctx, dag, selected, &lakehouse)
            .await?;
        if self.check_first {
            self.check_and_record(ctx, &lakehouse).await?;
        }
        let (dag, selected) = (&self.dag, &self.selected);
        let log = EventLog::new(
            lakehouse.at(EVENT_LOG_PATH),
            &self.run_id.id,
            &self.pipeline.name,
            &self.cluster,
        );
        info!(run_id = %self.run_id.id, tables = selected.len(), "run started");
        let tables = self
            .schedule(ctx, dag, selected, &lakehouse, landing.as_ref(), &log)
            .await;
        log.close().await;
        Ok(RunSummary {
            run_id: self.run_id.id.clone(),
            pipeline: self.pipeline.name.clone(),
            tables,
            duration: started.elapsed(),
        })
    }

    /// Fails when a table does not plan; records the lineage of those that do.
    async fn check_and_record(&mut self, ctx: &SessionContext, lakehouse: &Lakehouse) -> Result<()> {
        let checked = self.check(ctx.runtime_env(), false).await?;
        let errors: Vec<String> = checked.errors().into_iter().map(String::from).collect();
        if !errors.is_empty() {
            return Err(Error::DoesNotPlan { errors });
        }
        let lineage = lakehouse.at(LINEAGE_PATH);
        if let Err(e) = record_lineage(&lineage, &self.pipeline.name, &self.run_id.id, &checked).await {
            warn!(error = %error_chain(&e), "could not append to the lineage log");
        }
        self.lineage = checked.tables.into_iter().map(|t| (t.table, t.lineage)).collect();
        Ok(())
    }

    fn landing_url(&self) -> Result<Option<Url>> {
        let landing = self.landing.as_deref().or(self.pipeline.landing.as_deref());
        landing.map(|l| resolve_url(None, l)).transpose()
    }

    fn root_url(&self) -> Result<Url> {
        let root = self
            .lakehouse
            .as_deref()
            .or(self.pipeline.lakehouse.as_deref())
            .ok_or_else(|| Error::ParseSpec {
                path: self.pipeline.path.clone(),
                message: "no lakehouse root: set [pipeline] lakehouse or pass --lakehouse".into(),
            })?;
        resolve_url(None, root)
    }

    /// Tables outside the selection that selected tables read must already exist.
    async fn register_unselected_upstream(
        &self,
        ctx: &SessionContext,
        dag: &Dag,
        selected: &[String],
        lakehouse: &Lakehouse,
    ) -> Result<()> {
        let chosen: BTreeSet<&String> = selected.iter().collect();
        let needed: BTreeSet<&String> = selected
            .iter()
            .flat_map(|t| dag.upstream_of(t))
            .filter(|u| !chosen.contains(u))
            .collect();
        for name in needed {
            let table = self.pipeline.table(name).expect("DAG names are pipeline tables");
            let url = lakehouse.table_url(table);
            if TableSnapshot::load(&url).await?.is_none() {
                return Err(Error::Select {
                    selector: name.clone(),
                    message: format!(
                        "upstream table `{name}` has not been built yet ({url}); include it with `+`"
                    ),
                });
            }
            self.register_built(ctx, lakehouse, name).await?;
        }
        Ok(())
    }

    async fn schedule(
        &self,
        ctx: &SessionContext,
        dag: &Dag,
        selected: &[String],
        lakehouse: &Lakehouse,
        landing: Option<&Url>,
        log: &EventLog,
    ) -> Vec<TableOutcome> {
        let chosen: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
        let by_priority = dag.critical_first(selected);
        let mut pending: Vec<&str> = by_priority.iter().map(String::as_str).collect();
        let mut finished: BTreeMap<String, TableStatus> = BTreeMap::new();
        let mut outcomes = Vec::new();
        // The driver awaits nothing but `running`: a table future paused while the driver
        // awaits something else could hold what that something waits for (the event log).
        let mut running: FuturesUnordered<BoxFuture<'_, TableOutcome>> = FuturesUnordered::new();
        loop {
            let mut still_pending = Vec::new();
            for name in pending {
                let deps: Vec<&String> = dag
                    .upstream_of(name)
                    .iter()
                    .filter(|d| chosen.contains(d.as_str()))
                    .collect();
                if let Some(failed) = deps
                    .iter()
                    .find(|d| finished.get(d.as_str()).is_some_and(|s| !s.is_ok()))
                {
                    let upstream = Error::UpstreamFailed {
                        table: name.into(),
                        upstream: failed.to_string(),
                    };
                    let outcome = self.skipped(name, upstream.to_string());
                    running.push(self.settle(ctx, lakehouse, log, outcome).boxed());
                } else if self.cancel.is_cancelled() {
                    let outcome = self.skipped(name, Error::RunCancelled.to_string());
                    running.push(self.settle(ctx, lakehouse, log, outcome).boxed());
                } else if running.len() < self.concurrency
                    && deps.iter().all(|d| finished.contains_key(d.as_str()))
                {
                    if let Some(outcome) = self.upstream_empty(ctx, name, &deps) {
                        running.push(self.settle(ctx, lakehouse, log, outcome).boxed());
                        continue;
                    }
                    let table = self.pipeline.table(name).expect("selected tables exist");
                    self.notify(&RunEvent::TableStarted {
                        table: name.to_string(),
                        layer: table.layer,
                    });
                    let attempts = self.attempts(ctx, table, lakehouse, landing, log);
                    running.push(
                        async move {
                            let outcome = attempts.await;
                            self.settle(ctx, lakehouse, log, outcome).await
                        }
                        .boxed(),
                    );
                } else {
                    still_pending.push(name);
                }
            }
            pending = still_pending;
            match running.next().await {
                Some(outcome) => self.finish(&mut finished, &mut outcomes, outcome),
                None if pending.is_empty() => break,
                None => continue,
            }
        }
        outcomes
    }

    /// A table's last steps, inside its own future: a built table joins the run's catalog,
    /// and the outcome goes to the event log.
    async fn settle(
        &self,
        ctx: &SessionContext,
        lakehouse: &Lakehouse,
        log: &EventLog,
        mut outcome: TableOutcome,
    ) -> TableOutcome {
        if outcome.status.is_ok()
            && let Err(e) = self.register_built(ctx, lakehouse, &outcome.table).await
        {
            outcome.status = TableStatus::Failed;
            outcome.error = Some(error_chain(&e));
        }
        if let Err(e) = log.record(&outcome) {
            warn!(error = %error_chain(&e), table = %outcome.table, "could not append to the event log");
        }
        outcome
    }

    fn finish(
        &self,
        finished: &mut BTreeMap<String, TableStatus>,
        outcomes: &mut Vec<TableOutcome>,
        mut outcome: TableOutcome,
    ) {
        outcome.lineage = self.lineage.get(&outcome.table).cloned().unwrap_or_default();
        self.notify(&RunEvent::TableFinished(outcome.clone()));
        finished.insert(outcome.table.clone(), outcome.status);
        outcomes.push(outcome);
    }

    async fn register_built(&self, ctx: &SessionContext, lakehouse: &Lakehouse, name: &str) -> Result<()> {
        let table = self.pipeline.table(name).expect("finished tables exist");
        if let Some(snapshot) = TableSnapshot::load(&lakehouse.table_url(table)).await? {
            register(ctx, name, &snapshot)?;
        }
        let companions = table.kind.companion_suffixes();
        for suffix in std::iter::once(&QUARANTINE_SUFFIX).chain(companions) {
            if let Some(snapshot) = TableSnapshot::load(&lakehouse.companion_url(table, suffix)).await? {
                register(ctx, &format!("{name}{suffix}"), &snapshot)?;
            }
        }
        Ok(())
    }

    /// A failed outcome for `name` when one of its finished upstream tables never committed a
    /// version (its files held no rows): it has nothing to read.
    fn upstream_empty(&self, ctx: &SessionContext, name: &str, deps: &[&String]) -> Option<TableOutcome> {
        let unbuilt = deps
            .iter()
            .find(|d| !ctx.table_exist(d.as_str()).unwrap_or(false))?;
        let empty = Error::UpstreamEmpty {
            table: name.into(),
            upstream: unbuilt.to_string(),
        };
        let mut outcome = self.skipped(name, empty.to_string());
        outcome.status = TableStatus::Failed;
        Some(outcome)
    }

    fn skipped(&self, name: &str, reason: String) -> TableOutcome {
        let table = self.pipeline.table(name).expect("selected tables exist");
        let mut outcome = TableOutcome::new(name, table.layer);
        outcome.status = TableStatus::Skipped;
        outcome.error = Some(reason);
        outcome
    }

    /// The table's watched attempts; failed ones go to the event log and the observer.
    async fn attempts(
        &self,
        ctx: &SessionContext,
        table: &crate::spec::TableSpec,
        lakehouse: &Lakehouse,
        landing: Option<&Url>,
        log: &EventLog,
    ) -> TableOutcome {
        let policy = self.pipeline.retry_policy(table).overlaid(&self.retry_overrides);
        let job = TableJob {
            ctx,
            pipeline: &self.pipeline,
            table,
            lakehouse,
            landing,
            run: &self.run_id,
            full_refresh: self.full_refresh,
            partitions: self.partitions,
        };
        run_attempts(job, policy, &self.cancel, log, |e| self.notify(e)).await
    }

    fn notify(&self, event: &RunEvent) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }
}

fn register(ctx: &SessionContext, name: &str, snapshot: &TableSnapshot) -> Result<()> {
    let provider = Arc::new(snapshot.scan_table()?);
    ctx.deregister_table(name).ok();
    ctx.register_table(name, provider)
        .map(|_| ())
        .map_err(|source| Error::Query {
            table: name.into(),
            step: "register",
            source: Box::new(source),
        })
}
