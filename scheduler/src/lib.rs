//! # medallion-scheduler
//!
//! Ballista's scheduler, embedded with Medallion's session state: the logical codec that
//! decodes landing and Delta scans and Delta writes, the planner that turns a Delta write into
//! per-partition writer tasks, and the physical codec that ships those tasks to executors.
//! `medallion scheduler` is a thin wrapper over [`start`].
//!
//! Beside Ballista's own gRPC port it can serve [`api`], Medallion's job service
//! (`medallion.v1.JobService`, gRPC health and reflection) on a second port, and with the
//! `kube` feature, [`autoscale`] the executor Deployment from that service's queue.
//!
//! Two changes to Ballista's recovery make an executor loss safe: `lost` fails the jobs it
//! touched (the run driver retries their tables from scratch), and `slots` gives back the
//! task slots such a failure would otherwise leave taken forever.

pub mod api;
pub mod autoscale;
mod lost;
pub mod metrics;
mod slots;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use medallion_jobs::cluster::{logical_codec, medallion_state, physical_codec};

/// Errors of the scheduler process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building the in-memory cluster state failed.
    #[error("failed to set up the scheduler's cluster state")]
    ClusterState {
        /// Ballista's error.
        #[source]
        source: ballista_core::error::BallistaError,
    },
    /// The runtime (object stores) could not be built.
    #[error("failed to build the scheduler's runtime")]
    Runtime {
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Serving gRPC failed (e.g. the port is taken).
    #[error("scheduler on {addr} stopped")]
    Serve {
        /// Bound address.
        addr: SocketAddr,
        /// Ballista's error.
        #[source]
        source: ballista_core::error::BallistaError,
    },
    /// Serving the job service failed (e.g. the port is taken).
    #[error("job service on {addr} stopped")]
    ServeApi {
        /// Bound address.
        addr: SocketAddr,
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// Serving the metrics failed (e.g. the port is taken).
    #[error("metrics on {addr} stopped")]
    ServeMetrics {
        /// Bound address.
        addr: SocketAddr,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// A submitted spec, selection or parameter is invalid: the message `medallion run` prints.
    #[error("{}", medallion_jobs::error_chain(source))]
    InvalidSpec {
        /// What the pipeline library rejected.
        #[source]
        source: medallion_jobs::Error,
    },
    /// A pipeline name that is not in the scheduler's pipeline directory.
    #[error("no pipeline `{name}` (looked for {path})")]
    PipelineNotFound {
        /// The name asked for.
        name: String,
        /// Where it was looked for.
        path: String,
    },
    /// A request is missing something it needs.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
    },
    /// No run with this id.
    #[error("no run `{run_id}`")]
    RunNotFound {
        /// The id asked for.
        run_id: String,
    },
    /// The run already ended, so it cannot be cancelled.
    #[error("run `{run_id}` already ended ({status})")]
    RunEnded {
        /// The run.
        run_id: String,
        /// How it ended.
        status: String,
    },
    /// A run's report could not be built (its lakehouse could not be read).
    #[error("report of run {run_id}")]
    Report {
        /// The run.
        run_id: String,
        /// What failed.
        #[source]
        source: medallion_jobs::Error,
    },
    /// Reading or writing the job service's run history failed.
    #[error("run history at {url}")]
    History {
        /// The history table.
        url: String,
        /// What failed.
        #[source]
        source: medallion_jobs::Error,
    },
    /// A row of the run history could not be read (ordered by the time it was recorded).
    #[error("run history at {url}: row {row} cannot be read: {reason}")]
    HistoryRow {
        /// The history table.
        url: String,
        /// 1-based row in recording order.
        row: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No Kubernetes client could be built (not in a pod, no kubeconfig).
    #[cfg(feature = "kube")]
    #[error("cannot reach the Kubernetes API server")]
    KubeClient {
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// Reading the executor Deployment failed (missing, or RBAC does not allow `get`).
    #[cfg(feature = "kube")]
    #[error("cannot read Deployment `{name}`")]
    ReadDeployment {
        /// The Deployment.
        name: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// Applying a new size failed (RBAC does not allow `patch`, or the server refused).
    #[cfg(feature = "kube")]
    #[error("cannot scale Deployment `{name}` to {replicas} replicas")]
    ScaleDeployment {
        /// The Deployment.
        name: String,
        /// The size it should have had.
        replicas: i32,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// Autoscaling was asked of a build without the `kube` feature.
    #[error(
        "cannot autoscale Deployment `{deployment}`: this medallion was built without the `kube` feature"
    )]
    AutoscaleUnavailable {
        /// The Deployment named on the command line.
        deployment: String,
    },
    /// A call without a valid bearer token.
    #[error("{reason}")]
    Unauthenticated {
        /// What was wrong with the credentials.
        reason: &'static str,
    },
}

/// Result with the scheduler's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to run the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to bind the gRPC service to.
    pub bind: SocketAddr,
    /// Host name executors and clients use to reach this scheduler.
    pub external_host: String,
    /// Seconds without a heartbeat before an executor is considered lost.
    pub executor_timeout_seconds: u64,
    /// Seconds to wait for an executor after the last one is lost before the running jobs fail.
    pub no_executors_grace_seconds: u64,
    /// The job service, when it is served.
    pub api: Option<ApiOptions>,
}

/// How to serve the job service.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Address of the job service (a port of its own).
    pub bind: SocketAddr,
    /// Accepted bearer tokens (none: the API is open).
    pub tokens: api::Tokens,
    /// Runs executed at once; the others queue.
    pub concurrent_runs: usize,
    /// Scan tasks per landing source.
    pub partitions: usize,
    /// Directory of named pipelines (`<dir>/<name>/pipeline.toml`).
    pub pipelines: Option<PathBuf>,
    /// Root URL of the run history (`<state>/_medallion/job_runs`); in memory only when absent.
    pub state: Option<url::Url>,
    /// PEM certificate chain and private key: serve over TLS.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Scale the executor Deployment from this service's queue (Kubernetes, `kube` feature).
    pub autoscale: Option<autoscale::AutoscaleOptions>,
    /// Address of the Prometheus metrics (`GET /metrics`); not served when absent.
    pub metrics: Option<SocketAddr>,
    /// Start the runs a restart cut off again, under their own run ids (needs `state`).
    pub resume_interrupted: bool,
}

/// Serves the Ballista scheduler until the process stops.
pub async fn start(options: SchedulerOptions) -> Result<()> {
    let runtime = medallion_jobs::storage::runtime_env(None).map_err(|source| Error::Runtime { source })?;
    let config = SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        external_host: options.external_host.clone(),
        executor_timeout_seconds: options.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: (options.executor_timeout_seconds / 4).max(1),
        no_executors_grace_period_seconds: options.no_executors_grace_seconds,
        // A job whose shuffle input is lost fails instead of re-running stages in place (see
        // `lost`): the run driver retries its table from scratch.
        stage_max_failures: 1,
        override_session_builder: Some(Arc::new(move |config| {
            Ok(medallion_state(config, Arc::clone(&runtime)))
        })),
        override_logical_codec: Some(logical_codec()),
        override_physical_codec: Some(physical_codec()),
        ..Default::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|source| Error::ClusterState { source })?;
    let cluster = BallistaCluster::new(
        Arc::new(slots::SlotLedger::new(cluster.cluster_state())),
        cluster.job_state(),
    );
    config
        .validate()
        .map_err(|source| Error::ClusterState { source })?;
    let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
        .await
        .map_err(|source| Error::ClusterState { source })?;
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|source| Error::Serve {
            addr: options.bind,
            source: source.into(),
        })?;
    tracing::info!(addr = %options.bind, "medallion scheduler listening");
    let scheduler_state = scheduler.clone();
    let ballista = async {
        let serve = start_grpc_service_with_listener(listener, scheduler.clone());
        tokio::select! {
            r = serve => r.map_err(|source| Error::Serve { addr: options.bind, source }),
            r = lost::fail_jobs_on_executor_loss(scheduler) => r,
        }
    };
    let Some(api) = options.api else {
        return ballista.await;
    };
    // Runs reach Ballista through this process's own port, like any client.
    let host = match options.bind.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    };
    let cluster_url = format!("df://{host}:{}", options.bind.port());
    tokio::select! {
        r = ballista => r,
        r = serve_api(api, cluster_url, executors_ready(scheduler_state, options.executor_timeout_seconds)) => r,
    }
}

/// `task` when there is one; otherwise a future that never ends, so it never wins a `select!`.
fn optional<F>(task: Option<F>) -> impl std::future::Future<Output = Result<()>>
where
    F: std::future::Future<Output = Result<()>>,
{
    match task {
        Some(task) => futures::future::Either::Left(task),
        None => futures::future::Either::Right(futures::future::pending()),
    }
}

/// Resolves once an executor has registered (or after `timeout_seconds`), so that a run
/// started right after a scheduler restart does not spend its attempts on an empty cluster
/// while the executors re-register with their next heartbeat.
fn executors_ready(
    scheduler: SchedulerServer<LogicalPlanNode, PhysicalPlanNode>,
    timeout_seconds: u64,
) -> api::ExecutorsReady {
    api::ExecutorsReady(std::sync::Arc::new(move || {
        let scheduler = scheduler.clone();
        Box::pin(async move {
            let wait = async {
                loop {
                    let state = scheduler.state.executor_manager.get_executors_state().await;
                    if state.is_ok_and(|s| !s.is_empty()) {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(timeout_seconds), wait).await;
        })
    }))
}

/// Serves the job service, gRPC health and reflection until the process stops.
async fn serve_api(
    options: ApiOptions,
    cluster_url: String,
    executors_ready: api::ExecutorsReady,
) -> Result<()> {
    use medallion_proto::v1::job_service_server::JobServiceServer;
    let api = api::JobApi::new(
        cluster_url,
        options.concurrent_runs,
        options.partitions,
        options.pipelines,
        options.state.as_ref(),
        Some(executors_ready),
        options.resume_interrupted,
    )
    .await?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<JobServiceServer<api::JobApi>>().await;
    // Both reflection versions: grpcurl before 1.8.8 only speaks v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(medallion_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the compiled descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the compiled descriptor sets are valid");
    if options.tokens.is_empty() {
        tracing::warn!("the job service has no tokens configured: every call is accepted");
    }
    // Beside the service: the autoscaler and the metrics, each when configured.
    let autoscaler = optional(options.autoscale.map(|autoscale| {
        let source = api.clone();
        autoscale::run(autoscale, std::sync::Arc::new(move || source.demand()))
    }));
    let metrics = optional(options.metrics.map(|bind| metrics::serve(bind, api.clone())));
    let tokens = options.tokens.clone();
    let jobs = JobServiceServer::with_interceptor(api, move |r| tokens.check(r));
    tracing::info!(addr = %options.bind, tls = options.tls.is_some(), "medallion job service listening");
    let mut server = tonic::transport::Server::builder();
    if let Some((cert, key)) = &options.tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|source| Error::ServeApi {
                addr: options.bind,
                source,
            })?;
    }
    let serve = server
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(jobs)
        .serve(options.bind);
    tokio::select! {
        r = serve => r.map_err(|source| Error::ServeApi { addr: options.bind, source }),
        r = autoscaler => r,
        r = metrics => r,
    }
}
