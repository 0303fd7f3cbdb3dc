//! Functions pipeline SQL can call beyond DataFusion's built-ins. They are registered in every
//! process that plans or runs a query — client, scheduler and executors — through
//! [`register_all`] and [`function_registry`].

mod json_get;

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::ScalarUDF;

pub use json_get::JsonGet;

/// All of Medallion's scalar functions.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::from(JsonGet::new()))]
}

/// Adds Medallion's functions to a session state.
pub fn register_all(state: &mut SessionState) -> datafusion::error::Result<()> {
    for udf in scalar_functions() {
        state.register_udf(udf)?;
    }
    Ok(())
}

/// DataFusion's and Ballista's default functions plus Medallion's, for executors.
pub fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for udf in scalar_functions() {
        registry.scalar_functions.insert(udf.name().to_string(), udf);
    }
    registry
}
