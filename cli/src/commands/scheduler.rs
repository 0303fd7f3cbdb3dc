//! `medallion scheduler`: a Ballista scheduler with Medallion's codecs and planner.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use medallion_scheduler::api::Tokens;
use medallion_scheduler::autoscale::{AutoscaleOptions, ScalePolicy};
use medallion_scheduler::{ApiOptions, SchedulerOptions, start};

use crate::error::{Error, Result};

/// Flags of `medallion scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, env = "MEDALLION_BIND", default_value = "127.0.0.1:50050")]
    pub bind: SocketAddr,
    /// Host name executors use to reach this scheduler.
    #[arg(long, env = "MEDALLION_EXTERNAL_HOST", default_value = "localhost")]
    pub external_host: String,
    /// Seconds without a heartbeat before an executor counts as lost.
    #[arg(long, env = "MEDALLION_EXECUTOR_TIMEOUT_SECONDS", default_value_t = 30)]
    pub executor_timeout_seconds: u64,
    /// Seconds to wait for an executor after the last one is lost before running jobs fail
    /// (default: --executor-timeout-seconds).
    #[arg(long, env = "MEDALLION_NO_EXECUTORS_GRACE_SECONDS")]
    pub no_executors_grace_seconds: Option<u64>,
    /// On start, run again the job-service runs that a stop cut off, under their own run ids
    /// (needs --state).
    #[arg(long, env = "MEDALLION_RESUME_INTERRUPTED", requires = "state")]
    pub resume_interrupted: bool,
    /// Address of the job service (submit, watch, cancel, list runs); not served when absent.
    #[arg(long, env = "MEDALLION_API_BIND")]
    pub api_bind: Option<SocketAddr>,
    /// Accepted bearer tokens, comma-separated (prefer --api-tokens-file).
    #[arg(long, env = "MEDALLION_API_TOKENS", hide_env_values = true)]
    pub api_tokens: Option<String>,
    /// File with one accepted bearer token per line.
    #[arg(long, env = "MEDALLION_API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
    /// Runs executed at once by the job service; the others queue.
    #[arg(long, env = "MEDALLION_CONCURRENT_RUNS", default_value_t = 2)]
    pub concurrent_runs: usize,
    /// Directory of named pipelines: `<dir>/<name>/pipeline.toml`.
    #[arg(long, env = "MEDALLION_PIPELINES")]
    pub pipelines: Option<PathBuf>,
    /// Where the job service keeps its run history (URL or path; `<state>/_medallion/job_runs`),
    /// so runs are listed after a restart and interrupted ones can be resumed. In memory when absent.
    #[arg(long, env = "MEDALLION_STATE")]
    pub state: Option<String>,
    /// PEM certificate (chain) for serving the job service over TLS; needs --api-tls-key.
    #[arg(long, env = "MEDALLION_API_TLS_CERT", requires = "api_tls_key")]
    pub api_tls_cert: Option<PathBuf>,
    /// PEM private key of --api-tls-cert.
    #[arg(long, env = "MEDALLION_API_TLS_KEY", requires = "api_tls_cert")]
    pub api_tls_key: Option<PathBuf>,
    /// Scan tasks per landing source in job-service runs.
    #[arg(long, env = "MEDALLION_PARTITIONS", default_value_t = 2)]
    pub partitions: usize,
    /// Address of the Prometheus metrics (`GET /metrics`: runs by status, table rows).
    #[arg(long, env = "MEDALLION_METRICS_BIND", requires = "api_bind")]
    pub metrics_bind: Option<SocketAddr>,
    /// Scale this executor Deployment (same namespace) from the job service's queue; needs a
    /// build with the `kube` feature and RBAC to get and patch it.
    #[arg(long, env = "MEDALLION_AUTOSCALE_DEPLOYMENT", requires = "api_bind")]
    pub autoscale_deployment: Option<String>,
    /// Executors kept when no run is queued or running.
    #[arg(long, env = "MEDALLION_MIN_EXECUTORS", default_value_t = 1)]
    pub min_executors: i32,
    /// Executors never exceeded.
    #[arg(long, env = "MEDALLION_MAX_EXECUTORS", default_value_t = 4)]
    pub max_executors: i32,
    /// Executors wanted per queued or running run.
    #[arg(long, env = "MEDALLION_EXECUTORS_PER_RUN", default_value_t = 2)]
    pub executors_per_run: i32,
    /// Seconds a smaller size must be wanted before executors are removed.
    #[arg(long, env = "MEDALLION_SCALE_DOWN_DELAY_SECONDS", default_value_t = 300)]
    pub scale_down_delay_seconds: u64,
    /// Seconds between two looks at the queue and the Deployment.
    #[arg(long, env = "MEDALLION_AUTOSCALE_INTERVAL_SECONDS", default_value_t = 15)]
    pub autoscale_interval_seconds: u64,
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

fn tokens(args: &SchedulerArgs) -> Result<Tokens> {
    let mut text = args.api_tokens.clone().unwrap_or_default();
    if let Some(path) = &args.api_tokens_file {
        let file = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        text = format!("{text}\n{file}");
    }
    Ok(Tokens::parse(&text))
}

fn autoscale(args: &SchedulerArgs) -> Result<Option<AutoscaleOptions>> {
    let Some(deployment) = args.autoscale_deployment.clone() else {
        return Ok(None);
    };
    let bad = |flag, message: &str| Error::BadFlag {
        flag,
        message: message.into(),
    };
    if args.min_executors < 0 {
        return Err(bad("min-executors", "must be 0 or more"));
    }
    if args.max_executors < args.min_executors.max(1) {
        return Err(bad(
            "max-executors",
            "must be at least 1 and at least --min-executors",
        ));
    }
    if args.executors_per_run < 1 {
        return Err(bad("executors-per-run", "must be at least 1"));
    }
    if args.autoscale_interval_seconds == 0 {
        return Err(bad("autoscale-interval-seconds", "must be at least 1"));
    }
    Ok(Some(AutoscaleOptions {
        deployment,
        policy: ScalePolicy {
            min_replicas: args.min_executors,
            max_replicas: args.max_executors,
            executors_per_run: args.executors_per_run,
            scale_down_delay: Duration::from_secs(args.scale_down_delay_seconds),
        },
        interval: Duration::from_secs(args.autoscale_interval_seconds),
    }))
}

pub(crate) async fn run(args: SchedulerArgs) -> Result<ExitCode> {
    let api = match args.api_bind {
        Some(bind) => Some(ApiOptions {
            bind,
            tokens: tokens(&args)?,
            concurrent_runs: args.concurrent_runs,
            partitions: args.partitions,
            pipelines: args.pipelines.clone(),
            state: args
                .state
                .as_deref()
                .map(|s| medallion_jobs::pipeline::resolve_url(None, s))
                .transpose()?,
            tls: match (&args.api_tls_cert, &args.api_tls_key) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                _ => None,
            },
            autoscale: autoscale(&args)?,
            metrics: args.metrics_bind,
            resume_interrupted: args.resume_interrupted,
        }),
        None => None,
    };
    start(SchedulerOptions {
        bind: args.bind,
        external_host: args.external_host,
        executor_timeout_seconds: args.executor_timeout_seconds,
        no_executors_grace_seconds: args
            .no_executors_grace_seconds
            .unwrap_or(args.executor_timeout_seconds),
        api,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
