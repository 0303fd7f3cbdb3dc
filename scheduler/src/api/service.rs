//! `medallion.v1.JobService`: one handler per RPC over the [`Registry`].

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use medallion_jobs::dag::Selection;
use medallion_jobs::inspect::catalog::lakehouse_session;
use medallion_jobs::pipeline::{PipelineRun, ResolvedRun, RunId};
use medallion_jobs::report::{ReportOptions, render};
use medallion_jobs::spec::{Pipeline, parse_spec, read_spec};
use medallion_proto::v1::job_service_server::JobService;
use medallion_proto::v1::run_event::Event;
use medallion_proto::v1::submit_run_request::Pipeline as Source;
use medallion_proto::v1::{
    CancelRunRequest, CancelRunResponse, GetRunReportRequest, GetRunReportResponse, GetRunRequest,
    GetRunResponse, ListRunsRequest, ListRunsResponse, RunEvent, RunStatus, SubmitRunRequest,
    SubmitRunResponse, WatchRunRequest,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::history::RunHistory;
use super::registry::{ExecutorsReady, Registry, RunEntry};
use crate::{Error, Result};

/// The job service of one scheduler.
#[derive(Debug, Clone)]
pub struct JobApi {
    registry: Arc<Registry>,
    pipelines: Option<PathBuf>,
    partitions: usize,
}

impl JobApi {
    /// Runs go to the Ballista scheduler at `cluster_url`, at most `concurrent_runs` at once;
    /// `pipelines` is where named pipelines live (`<dir>/<name>/pipeline.toml`); with `state`,
    /// runs are kept in `<state>/_medallion/job_runs` and the earlier ones are loaded — and,
    /// with `resume_interrupted`, the runs a restart cut off are started again under their ids;
    /// every run waits for `executors_ready` before its first job.
    pub async fn new(
        cluster_url: String,
        concurrent_runs: usize,
        partitions: usize,
        pipelines: Option<PathBuf>,
        state: Option<&url::Url>,
        executors_ready: Option<ExecutorsReady>,
        resume_interrupted: bool,
    ) -> Result<Self> {
        let registry =
            Registry::new(cluster_url, concurrent_runs, partitions).with_executors_ready(executors_ready);
        let (registry, cut_off) = match state {
            Some(state) => registry.with_history(RunHistory::new(state)).await?,
            None => (registry, vec![]),
        };
        let api = Self {
            registry: Arc::new(registry),
            pipelines,
            partitions,
        };
        if resume_interrupted {
            for entry in cut_off {
                api.resume(entry).await;
            }
        }
        Ok(api)
    }

    /// Starts an interrupted run again under its own id, from the request that started it.
    async fn resume(&self, entry: Arc<RunEntry>) {
        let run_id = entry.snapshot().run_id;
        let planned = RunId::parse(&run_id)
            .map_err(|source| Error::InvalidSpec { source })
            .and_then(|id| Ok((id, self.plan(entry.request().clone())?)));
        match planned {
            Ok((id, planned)) => {
                let run = planned.run.with_run_id(id);
                self.registry.resume(entry, run, planned.tables).await;
            }
            Err(e) => {
                tracing::warn!(%run_id, error = %e, "an interrupted run cannot be resumed; it stays interrupted")
            }
        }
    }

    /// Every run known, newest first.
    pub fn runs(&self) -> Vec<medallion_proto::v1::Run> {
        self.registry.all()
    }

    /// Runs queued and running now: what the executor autoscaler sizes the cluster for.
    pub fn demand(&self) -> crate::autoscale::Demand {
        self.registry.demand()
    }

    fn spec(&self, source: Option<Source>, spec_name: &str) -> Result<Pipeline> {
        let name = if spec_name.is_empty() {
            "submitted spec"
        } else {
            spec_name
        };
        match source {
            Some(Source::SpecToml(text)) => {
                parse_spec(&text, name).map_err(|source| Error::InvalidSpec { source })
            }
            Some(Source::PipelineName(name)) => {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                let dir = self.pipelines.as_ref().filter(|_| valid);
                let path = dir.map(|d| d.join(&name).join("pipeline.toml"));
                match path.filter(|p| p.is_file()) {
                    Some(p) => {
                        read_spec(&p.display().to_string()).map_err(|source| Error::InvalidSpec { source })
                    }
                    None => Err(Error::PipelineNotFound {
                        path: self
                            .pipelines
                            .as_ref()
                            .map_or("no --pipelines directory".into(), |d| {
                                format!("{}/{name}/pipeline.toml", d.display())
                            }),
                        name,
                    }),
                }
            }
            None => Err(Error::BadRequest {
                message: "give spec_toml or pipeline_name".into(),
            }),
        }
    }

    /// Everything `medallion run` checks before it starts, so a bad request fails here.
    fn plan(&self, req: SubmitRunRequest) -> Result<Planned> {
        let pipeline = self.spec(req.pipeline, &req.spec_name)?;
        let invalid = |source| Error::InvalidSpec { source };
        let mut selection = Selection::all();
        for s in &req.select {
            selection = selection.with_select(s);
        }
        for l in &req.layers {
            selection = selection.with_layer(l);
        }
        let resolved = ResolvedRun::resolve(pipeline, &selection).map_err(invalid)?;
        let (name, tables) = (resolved.pipeline().name.clone(), resolved.selected().to_vec());
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let run = PipelineRun::new(resolved)
            .with_vars(req.vars)
            .with_lakehouse(non_empty(req.lakehouse))
            .with_landing(non_empty(req.landing))
            .with_full_refresh(req.full_refresh)
            .with_partitions(self.partitions)
            .with_cluster_label("job service");
        Ok(Planned {
            run,
            pipeline: name,
            tables,
        })
    }
}

/// A validated run with its pipeline's name and the tables it will build.
struct Planned {
    run: PipelineRun,
    pipeline: String,
    tables: Vec<String>,
}

type EventStream = Pin<Box<dyn Stream<Item = std::result::Result<RunEvent, Status>> + Send + 'static>>;

fn ends_run(e: &RunEvent) -> bool {
    matches!(e.event, Some(Event::RunFinished(_)))
}

#[tonic::async_trait]
impl JobService for JobApi {
    #[instrument(skip_all)]
    async fn submit_run(
        &self,
        request: Request<SubmitRunRequest>,
    ) -> std::result::Result<Response<SubmitRunResponse>, Status> {
        let req = request.into_inner();
        if let Some(run_id) = self.registry.by_key(&req.idempotency_key) {
            let entry = self.registry.get(&run_id)?;
            if entry.status() == RunStatus::Interrupted as i32 {
                let id = RunId::parse(&run_id).map_err(|source| Error::InvalidSpec { source })?;
                let planned = self.plan(req)?;
                let run = planned.run.with_run_id(id);
                self.registry.resume(entry, run, planned.tables).await;
            }
            return Ok(Response::new(SubmitRunResponse {
                run_id,
                existing: true,
            }));
        }
        let planned = self.plan(req.clone())?;
        let run_id = self
            .registry
            .submit(planned.run, &planned.pipeline, planned.tables, req)
            .await;
        Ok(Response::new(SubmitRunResponse {
            run_id,
            existing: false,
        }))
    }

    async fn get_run(
        &self,
        request: Request<GetRunRequest>,
    ) -> std::result::Result<Response<GetRunResponse>, Status> {
        let entry = self.registry.get(&request.into_inner().run_id)?;
        Ok(Response::new(GetRunResponse {
            run: Some(entry.snapshot()),
        }))
    }

    #[instrument(skip_all)]
    async fn get_run_report(
        &self,
        request: Request<GetRunReportRequest>,
    ) -> std::result::Result<Response<GetRunReportResponse>, Status> {
        let run_id = request.into_inner().run_id;
        let entry = self.registry.get(&run_id)?;
        let submitted = entry.request().clone();
        let pipeline = self.spec(submitted.pipeline, &submitted.spec_name)?;
        let failed = |source| Error::Report {
            run_id: run_id.clone(),
            source,
        };
        let runtime = medallion_jobs::storage::runtime_env(None).map_err(|e| {
            failed(medallion_jobs::Error::Query {
                table: "lakehouse".into(),
                step: "open",
                source: Box::new(e),
            })
        })?;
        let root = (!submitted.lakehouse.is_empty()).then_some(submitted.lakehouse.as_str());
        let ctx = lakehouse_session(&pipeline, root, runtime, &[])
            .await
            .map_err(failed)?;
        let options = ReportOptions {
            run: Some(run_id.clone()),
            last_runs: 10,
        };
        let report = render(&ctx, &pipeline, &options).await.map_err(failed)?;
        Ok(Response::new(GetRunReportResponse {
            html: report.html,
            failed_charts: report.failed_charts,
        }))
    }

    type WatchRunStream = EventStream;

    async fn watch_run(
        &self,
        request: Request<WatchRunRequest>,
    ) -> std::result::Result<Response<EventStream>, Status> {
        let entry = self.registry.get(&request.into_inner().run_id)?;
        let (past, receiver) = entry.subscribe();
        let ended = past.iter().any(ends_run);
        let live = futures::stream::unfold((receiver, ended), |(mut rx, done)| async move {
            if done {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let last = ends_run(&e);
                        return Some((Ok(e), (rx, last)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let stream = futures::stream::iter(past.into_iter().map(Ok)).chain(live);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_run(
        &self,
        request: Request<CancelRunRequest>,
    ) -> std::result::Result<Response<CancelRunResponse>, Status> {
        let run = self.registry.cancel(&request.into_inner().run_id).await?;
        Ok(Response::new(CancelRunResponse { run: Some(run) }))
    }

    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> std::result::Result<Response<ListRunsResponse>, Status> {
        let req = request.into_inner();
        let offset: usize = match req.page_token.as_str() {
            "" => 0,
            t => t.parse().map_err(|_| Error::BadRequest {
                message: format!("page_token `{t}` is not one this service returned"),
            })?,
        };
        let size = match req.page_size {
            0 => 50,
            n => n.min(1000) as usize,
        };
        let matching: Vec<_> = self
            .registry
            .all()
            .into_iter()
            .filter(|r| req.pipeline.is_empty() || r.pipeline == req.pipeline)
            .filter(|r| req.status == 0 || r.status == req.status)
            .collect();
        let next = offset + size;
        Ok(Response::new(ListRunsResponse {
            runs: matching.iter().skip(offset).take(size).cloned().collect(),
            next_page_token: if next < matching.len() {
                next.to_string()
            } else {
                String::new()
            },
        }))
    }
}
