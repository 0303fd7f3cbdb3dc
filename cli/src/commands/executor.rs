//! `medallion executor`: a Ballista executor that runs Medallion's scans and writes.

use std::process::ExitCode;

use clap::Args;
use medallion_executor::{ExecutorOptions, start};

use crate::error::{Error, Result};

/// Flags of `medallion executor`.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// Scheduler as host:port.
    #[arg(long, env = "MEDALLION_SCHEDULER_ADDR", default_value = "localhost:50050")]
    pub scheduler: String,
    /// Address to bind.
    #[arg(long, env = "MEDALLION_BIND_HOST", default_value = "127.0.0.1")]
    pub bind_host: String,
    /// Host others use to reach this executor (e.g. the pod IP).
    #[arg(long, env = "MEDALLION_EXTERNAL_HOST")]
    pub external_host: Option<String>,
    /// Arrow Flight port for shuffle data.
    #[arg(long, env = "MEDALLION_PORT", default_value_t = 50051)]
    pub port: u16,
    /// gRPC port.
    #[arg(long, env = "MEDALLION_GRPC_PORT", default_value_t = 50052)]
    pub grpc_port: u16,
    /// Tasks run at once.
    #[arg(long, env = "MEDALLION_CONCURRENT_TASKS", default_value_t = 2)]
    pub concurrent_tasks: usize,
    /// Directory for shuffle files (a temporary one if absent).
    #[arg(long, env = "MEDALLION_WORK_DIR")]
    pub work_dir: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long, env = "MEDALLION_HEARTBEAT_SECONDS", default_value_t = 5)]
    pub heartbeat_seconds: u64,
    /// MiB the tasks may hold together for sorts, aggregates and joins before they spill to the
    /// work directory (as Spark's executor memory); 70% of the host's memory if absent, no
    /// limit if 0.
    #[arg(long, env = "MEDALLION_MEMORY_LIMIT_MIB")]
    pub memory_limit_mib: Option<usize>,
}

pub(crate) async fn run(args: ExecutorArgs) -> Result<ExitCode> {
    let (host, port) = args.scheduler.rsplit_once(':').ok_or_else(|| Error::BadFlag {
        flag: "scheduler",
        message: format!("`{}` is not host:port", args.scheduler),
    })?;
    let scheduler_port = port.parse().map_err(|_| Error::BadFlag {
        flag: "scheduler",
        message: format!("`{port}` is not a port"),
    })?;
    start(ExecutorOptions {
        scheduler_host: host.to_string(),
        scheduler_port,
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        concurrent_tasks: args.concurrent_tasks,
        work_dir: args.work_dir,
        heartbeat_seconds: args.heartbeat_seconds,
        memory_limit: args.memory_limit_mib.map(mib_to_bytes),
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `mib` MiB in bytes.
pub(crate) fn mib_to_bytes(mib: usize) -> usize {
    mib.saturating_mul(1024 * 1024)
}
