//! # medallion-scheduler
//!
//! Ballista's scheduler, embedded with Medallion's session state: the logical codec that
//! decodes landing and Delta scans and Delta writes, the planner that turns a Delta write into
//! per-partition writer tasks, and the physical codec that ships those tasks to executors.
//! `medallion scheduler` is a thin wrapper over [`start`].

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
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
    tracing::info!(addr = %options.bind, "medallion scheduler listening");
    start_server(cluster, options.bind, Arc::new(config))
        .await
        .map_err(|source| Error::Serve {
            addr: options.bind,
            source,
        })
}
