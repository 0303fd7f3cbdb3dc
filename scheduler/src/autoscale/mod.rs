//! Executor autoscaling on Kubernetes: the executor Deployment grows with the job service's
//! queued and running runs and shrinks back to a minimum when idle.
//!
//! [`policy`] decides sizes (pure, always compiled); with the `kube` feature, `reconcile`
//! reads the Deployment and applies `spec.replicas` by server-side apply under
//! [`reconcile::FIELD_MANAGER`], and [`run`] repeats it, pausing longer after failures.

pub mod policy;
#[cfg(feature = "kube")]
pub mod reconcile;
#[cfg(all(test, feature = "kube"))]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use policy::{Demand, Recommendations, ScalePolicy};

use crate::Result;

/// Which Deployment to scale and how.
#[derive(Debug, Clone)]
pub struct AutoscaleOptions {
    /// Name of the executor Deployment, in the scheduler's own namespace.
    pub deployment: String,
    /// Bounds and pace.
    pub policy: ScalePolicy,
    /// Time between reconciliations.
    pub interval: Duration,
}

/// Reconciles the executor Deployment with `demand` until the process stops.
#[cfg(feature = "kube")]
pub async fn run(options: AutoscaleOptions, demand: Arc<dyn Fn() -> Demand + Send + Sync>) -> Result<()> {
    let client = kube::Client::try_default()
        .await
        .map_err(|source| crate::Error::KubeClient { source })?;
    let ctx = reconcile::Context {
        deployments: kube::Api::default_namespaced(client),
        name: options.deployment,
        demand,
        recommendations: std::sync::Mutex::new(Recommendations::new(options.policy)),
        interval: options.interval,
    };
    tracing::info!(deployment = %ctx.name, "executor autoscaler started");
    let mut failures = 0u32;
    loop {
        let action = match reconcile::reconcile(&ctx).await {
            Ok(action) => {
                failures = 0;
                action
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                reconcile::error_policy(&e, &ctx, failures)
            }
        };
        tokio::time::sleep(action.requeue_after).await;
    }
}

/// Without the `kube` feature there is nothing to scale with: say so instead of ignoring it.
#[cfg(not(feature = "kube"))]
pub async fn run(options: AutoscaleOptions, _demand: Arc<dyn Fn() -> Demand + Send + Sync>) -> Result<()> {
    Err(crate::Error::AutoscaleUnavailable {
        deployment: options.deployment,
    })
}
