//! # medallion-executor
//!
//! Ballista's executor with Medallion's codecs, so it can run landing scans and per-partition
//! Delta writes, and with object stores for the URLs a pipeline uses. `medallion executor` is a
//! thin wrapper over [`start`].

mod engine;

use std::sync::Arc;

use ballista_core::RuntimeProducer;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use medallion_jobs::cluster::{logical_codec, physical_codec};
use medallion_jobs::udf::function_registry;

/// Errors of the executor process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The executor could not start or stopped with an error.
    #[error("executor {bind_host}:{port} (scheduler {scheduler}) stopped")]
    Run {
        /// Bind host.
        bind_host: String,
        /// Flight port.
        port: u16,
        /// Scheduler address.
        scheduler: String,
        /// Ballista's error.
        #[source]
        source: ballista_core::error::BallistaError,
    },
}

/// Result with the executor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to run an executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Scheduler host.
    pub scheduler_host: String,
    /// Scheduler port.
    pub scheduler_port: u16,
    /// Address to bind.
    pub bind_host: String,
    /// Host the scheduler and other executors use to reach this one.
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle data).
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// Tasks run at once.
    pub concurrent_tasks: usize,
    /// Directory for shuffle files.
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
    /// Bytes the executor's tasks may reserve together for sorts, aggregates and joins before
    /// they spill; 70% of the host's memory if absent, no limit if 0.
    pub memory_limit: Option<usize>,
}

/// Every task's runtime: the process-wide object stores, spilling to the work directory.
fn runtime_producer(work_dir: Option<String>) -> RuntimeProducer {
    Arc::new(move |_config| medallion_jobs::storage::runtime_env(work_dir.as_deref()))
}

/// Runs the executor until the process stops.
pub async fn start(options: ExecutorOptions) -> Result<()> {
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: options.external_host.clone(),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        vcores: options.concurrent_tasks.max(1),
        work_dir: options.work_dir.clone(),
        executor_heartbeat_interval_seconds: options.heartbeat_seconds.max(1),
        override_function_registry: Some(Arc::new(function_registry())),
        override_runtime_producer: Some(runtime_producer(options.work_dir.clone())),
        // Ballista gives each task a share of this (by its task slots) as a spilling pool;
        // unset, the share is of 70% of the host's memory; 0 is no pool limit.
        memory_pool_size: options.memory_limit.map(|bytes| bytes as u64),
        override_logical_codec: Some(logical_codec()),
        override_physical_codec: Some(physical_codec()),
        override_execution_engine: Some(Arc::new(engine::StableMetricsEngine::new())),
        ..Default::default()
    };
    tracing::info!(scheduler = %format!("{}:{}", options.scheduler_host, options.scheduler_port), port = options.port, "medallion executor starting");
    start_executor_process(Arc::new(config))
        .await
        .map_err(|source| Error::Run {
            bind_host: options.bind_host,
            port: options.port,
            scheduler: format!("{}:{}", options.scheduler_host, options.scheduler_port),
            source,
        })
}
