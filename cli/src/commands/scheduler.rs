//! `medallion scheduler`: a Ballista scheduler with Medallion's codecs and planner.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use medallion_scheduler::api::Tokens;
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
        }),
        None => None,
    };
    start(SchedulerOptions {
        bind: args.bind,
        external_host: args.external_host,
        executor_timeout_seconds: args.executor_timeout_seconds,
        api,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
