//! Connects a run to a Ballista scheduler.
//!
//! The embedded cluster is the same scheduler and executor as the separate processes, started
//! in-process by the CLI, rather than Ballista's standalone mode (which polls for tasks and was
//! 4× slower to run the example pipeline here: 2.5 s against 0.5 s).

use ballista::prelude::SessionContextExt;
use datafusion::prelude::SessionContext;

use std::sync::Arc;

use super::session::{medallion_session_config, medallion_state};
use super::watch::SchedulerAddress;
use crate::error::{Error, Result};

/// A Ballista client session on the scheduler at `url` (e.g. `df://localhost:50050`).
pub async fn connect(url: &str, target_partitions: usize) -> Result<SessionContext> {
    let runtime = crate::storage::runtime_env(None).map_err(|source| Error::Cluster {
        target: url.to_string(),
        source: Box::new(source),
    })?;
    // Watches of table attempts ask the same scheduler about their jobs.
    let address = SchedulerAddress(url.replacen("df://", "http://", 1));
    let config = medallion_session_config()
        .with_target_partitions(target_partitions.max(1))
        .with_information_schema(true)
        .with_extension(Arc::new(address));
    let ctx = SessionContext::remote_with_state(url, medallion_state(config, runtime))
        .await
        .map_err(|source| Error::Cluster {
            target: url.to_string(),
            source: Box::new(source),
        })?;
    // Ballista's client upgrade replaces the session's scalar functions with its own list.
    for udf in crate::udf::scalar_functions() {
        ctx.register_udf(udf.as_ref().clone());
    }
    Ok(ctx)
}
