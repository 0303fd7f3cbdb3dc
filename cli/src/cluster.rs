//! Where a run's Ballista jobs execute: an embedded cluster started in this process, or a
//! remote scheduler.
//!
//! The embedded cluster is the very scheduler and executor that `medallion scheduler` and
//! `medallion executor` run, bound to free loopback ports, so that the default path and the
//! distributed path share every line of code below the CLI.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use medallion_executor::ExecutorOptions;
use medallion_scheduler::SchedulerOptions;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Seconds to wait for the in-process services to listen.
const START_TIMEOUT_SECS: u64 = 20;
/// Starts of the embedded cluster before a run gives up.
const START_ATTEMPTS: u32 = 3;

/// Where to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClusterTarget {
    /// In-process scheduler and executor with this many task slots.
    Embedded {
        /// Concurrent tasks of the executor.
        parallelism: usize,
        /// Bytes its tasks may reserve together before they spill; 70% of the host's if absent.
        memory_limit: Option<usize>,
    },
    /// A running scheduler, e.g. `df://localhost:50050`.
    Remote(String),
}

impl std::fmt::Display for ClusterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterTarget::Embedded { parallelism, .. } => {
                write!(f, "embedded cluster ({parallelism} task slots)")
            }
            ClusterTarget::Remote(url) => write!(f, "scheduler {url}"),
        }
    }
}

/// A connected session, plus the in-process services it needs (stopped on drop).
pub(crate) struct Connected {
    pub(crate) ctx: SessionContext,
    services: Vec<JoinHandle<()>>,
    /// The embedded executor's scratch directory, removed when the cluster stops.
    work_dir: Option<tempfile::TempDir>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        for service in &self.services {
            service.abort();
        }
    }
}

/// Starts the embedded cluster if needed and connects a client session.
pub(crate) async fn connect(target: &ClusterTarget, partitions: usize) -> Result<Connected> {
    match target {
        ClusterTarget::Remote(url) => Ok(Connected {
            ctx: medallion_jobs::cluster::connect(url, partitions).await?,
            services: vec![],
            work_dir: None,
        }),
        ClusterTarget::Embedded {
            parallelism,
            memory_limit,
        } => start_embedded(*parallelism, *memory_limit, partitions).await,
    }
}

/// Starts the embedded cluster, on other ports when a service did not come up: another
/// process can take a free port between the probe that found it and the service's bind.
async fn start_embedded(
    parallelism: usize,
    memory_limit: Option<usize>,
    partitions: usize,
) -> Result<Connected> {
    let mut attempt = 1;
    loop {
        match start_embedded_once(parallelism, memory_limit, partitions).await {
            Err(Error::EmbeddedStart { what, port, .. }) if attempt < START_ATTEMPTS => {
                tracing::warn!(
                    what,
                    port,
                    attempt,
                    "embedded cluster did not start; starting it on other ports"
                );
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn start_embedded_once(
    parallelism: usize,
    memory_limit: Option<usize>,
    partitions: usize,
) -> Result<Connected> {
    let work_dir = tempfile::tempdir().map_err(|source| Error::Io {
        path: "temporary work dir".into(),
        source,
    })?;
    let scheduler_port = free_port()?;
    let scheduler = tokio::spawn(async move {
        let options = SchedulerOptions {
            bind: ([127, 0, 0, 1], scheduler_port).into(),
            external_host: "127.0.0.1".into(),
            executor_timeout_seconds: 30,
            no_executors_grace_seconds: 30,
            api: None,
        };
        if let Err(e) = medallion_scheduler::start(options).await {
            tracing::error!(error = %medallion_jobs::error_chain(&e), "embedded scheduler stopped");
        }
    });
    // Aborts the services if anything below fails.
    let mut connected = Connected {
        ctx: SessionContext::new(),
        services: vec![scheduler],
        work_dir: Some(work_dir),
    };
    wait_for_port("scheduler", scheduler_port).await?;
    let (flight_port, grpc_port) = (free_port()?, free_port()?);
    let options = ExecutorOptions {
        scheduler_host: "127.0.0.1".into(),
        scheduler_port,
        bind_host: "127.0.0.1".into(),
        external_host: Some("127.0.0.1".into()),
        port: flight_port,
        grpc_port,
        concurrent_tasks: parallelism,
        work_dir: connected
            .work_dir
            .as_ref()
            .map(|d| d.path().display().to_string()),
        heartbeat_seconds: 5,
        memory_limit,
    };
    connected.services.push(tokio::spawn(async move {
        if let Err(e) = medallion_executor::start(options).await {
            tracing::error!(error = %medallion_jobs::error_chain(&e), "embedded executor stopped");
        }
    }));
    wait_for_port("executor", flight_port).await?;
    let url = format!("df://127.0.0.1:{scheduler_port}");
    connected.ctx = medallion_jobs::cluster::connect(&url, partitions).await?;
    Ok(connected)
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            path: "127.0.0.1:0".into(),
            source,
        })
}

async fn wait_for_port(what: &'static str, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(START_TIMEOUT_SECS);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            return Err(Error::EmbeddedStart {
                what,
                port,
                seconds: START_TIMEOUT_SECS,
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}
