//! `medallion scheduler`: a Ballista scheduler with Medallion's codecs and planner.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use medallion_scheduler::{SchedulerOptions, start};

use crate::error::Result;

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
}

pub(crate) async fn run(args: SchedulerArgs) -> Result<ExitCode> {
    start(SchedulerOptions {
        bind: args.bind,
        external_host: args.external_host,
        executor_timeout_seconds: args.executor_timeout_seconds,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
