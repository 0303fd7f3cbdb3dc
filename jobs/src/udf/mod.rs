//! Functions pipeline SQL can call beyond DataFusion's built-ins. They are registered in every
//! process that plans or runs a query — client, scheduler and executors — through
//! [`register_all`] and [`function_registry`].

mod json_get;
mod split_hash;
mod surrogate_key;
mod text_fn;

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::ScalarUDF;

pub use json_get::JsonGet;
pub use split_hash::{SplitHash, split_fraction};
pub use surrogate_key::{SurrogateKey, surrogate_key};
pub use text_fn::{TextFn, TextUdf};

/// All of Medallion's scalar functions.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let text = [TextFn::NormalizeId, TextFn::MaskPhone, TextFn::EmailHash];
    let mut all = vec![
        Arc::new(ScalarUDF::from(JsonGet::new())),
        Arc::new(ScalarUDF::from(SplitHash::new())),
        Arc::new(ScalarUDF::from(SurrogateKey::new())),
    ];
    all.extend(
        text.into_iter()
            .map(|k| Arc::new(ScalarUDF::from(TextUdf::new(k)))),
    );
    all
}

/// Adds Medallion's functions to a session state.
pub fn register_all(state: &mut SessionState) -> datafusion::error::Result<()> {
    for udf in scalar_functions() {
        state.register_udf(udf)?;
    }
    Ok(())
}

/// Every function a Medallion session knows (DataFusion's, nested ones such as
/// `generate_series` included, and Medallion's), for executors decoding task plans.
pub fn function_registry() -> BallistaFunctionRegistry {
    let state = crate::cluster::medallion_state(
        crate::cluster::medallion_session_config(),
        Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
    );
    BallistaFunctionRegistry::from(&state)
}
