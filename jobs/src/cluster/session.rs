//! The one session state shape used by the client, the scheduler and the executors.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionConfig;

use super::codec::{logical_codec, physical_codec};
use super::planner::MedallionQueryPlanner;

/// A Ballista session config carrying Medallion's codecs, planned by the static planner.
///
/// Ballista 55's adaptive planner (on by default) keeps side state per stage that is not
/// rolled back when an executor is lost after a stage finished: the stage's re-run then fails
/// every status update (`Can't find active stage to update stage outputs`) and the job stays
/// running forever. The static planner rolls such stages back; the README has the numbers.
pub fn medallion_session_config() -> SessionConfig {
    with_codecs(SessionConfig::new_with_ballista().with_ballista_adaptive_query_planner(false))
}

/// `config` with a table's `settings` (DataFusion or Ballista keys, e.g.
/// `datafusion.optimizer.prefer_hash_join`): its jobs are planned and run with them, as a
/// Spark conf set for one table. An unknown key or a value of the wrong type is an error.
pub fn with_settings(
    mut config: SessionConfig,
    settings: &[(String, String)],
) -> datafusion::error::Result<SessionConfig> {
    for (key, value) in settings {
        config.options_mut().set(key, value)?;
    }
    Ok(config)
}

/// Adds Medallion's codecs to a config (e.g. one a client sent to the scheduler).
pub(crate) fn with_codecs(config: SessionConfig) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(logical_codec())
        .with_ballista_physical_extension_codec(physical_codec())
}

/// A session state with Medallion's codecs, planner and functions over `runtime`.
pub fn medallion_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionState {
    let mut state = SessionStateBuilder::new()
        .with_config(with_codecs(config))
        .with_runtime_env(runtime)
        .with_default_features()
        .with_query_planner(Arc::new(MedallionQueryPlanner))
        .build();
    crate::udf::register_all(&mut state).expect("registering a scalar function cannot fail");
    state
}
