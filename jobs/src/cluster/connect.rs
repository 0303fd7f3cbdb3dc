//! Connects a run to an embedded in-process cluster or to a remote scheduler.

use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;

use super::session::{medallion_session_config, medallion_state};
use crate::error::{Error, Result};

/// Where a run's Ballista jobs execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterTarget {
    /// An in-process scheduler and executor, started for this run.
    Embedded {
        /// Concurrent tasks of the embedded executor.
        parallelism: usize,
    },
    /// A running scheduler, e.g. `df://localhost:50050`.
    Remote(String),
}

impl std::fmt::Display for ClusterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterTarget::Embedded { parallelism } => write!(f, "embedded cluster ({parallelism} task slots)"),
            ClusterTarget::Remote(url) => write!(f, "scheduler {url}"),
        }
    }
}

/// A Ballista client session for `target`.
pub async fn connect(target: &ClusterTarget, target_partitions: usize) -> Result<SessionContext> {
    let runtime = Arc::new(RuntimeEnv::default());
    let config = medallion_session_config()
        .with_target_partitions(target_partitions.max(1))
        .with_information_schema(true);
    let result = match target {
        ClusterTarget::Embedded { parallelism } => {
            let config = config.with_ballista_standalone_parallelism(*parallelism);
            SessionContext::standalone_with_state(medallion_state(config, runtime)).await
        }
        ClusterTarget::Remote(url) => SessionContext::remote_with_state(url, medallion_state(config, runtime)).await,
    };
    result.map_err(|source| Error::Cluster { target: target.to_string(), source })
}
