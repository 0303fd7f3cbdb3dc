//! One reconciliation of the executor Deployment's size, and what to do after a failure — the
//! `reconcile` / `error_policy` pair of a kube-rs controller, driven by a loop of our own because
//! the object to converge is the job queue, not a watched resource.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use tracing::{info, warn};

use super::policy::{Demand, Recommendations};
use crate::{Error, Result};

/// The field manager every size change is applied under, so `kubectl get --show-managed-fields`
/// tells who set `spec.replicas`.
pub const FIELD_MANAGER: &str = "medallion-scheduler";

/// What reconciling needs: the Deployment, where the demand comes from, the decisions so far.
pub struct Context {
    /// Deployments of the executors' namespace.
    pub deployments: Api<Deployment>,
    /// Name of the executor Deployment.
    pub name: String,
    /// The job service's queue, read at each reconciliation.
    pub demand: Arc<dyn Fn() -> Demand + Send + Sync>,
    /// Recent recommendations (the scale-down window).
    pub recommendations: Mutex<Recommendations>,
    /// Time between reconciliations.
    pub interval: Duration,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// When to reconcile next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Delay before the next reconciliation.
    pub requeue_after: Duration,
}

/// Reads the Deployment's size, decides, and applies the new size when it differs.
pub async fn reconcile(ctx: &Context) -> Result<Action> {
    let deployment = ctx
        .deployments
        .get(&ctx.name)
        .await
        .map_err(|source| Error::ReadDeployment {
            name: ctx.name.clone(),
            source,
        })?;
    let current = deployment.spec.and_then(|s| s.replicas).unwrap_or(1);
    let demand = (ctx.demand)();
    let desired = ctx
        .recommendations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .decide(demand, current, Instant::now());
    if desired != current {
        apply_replicas(&ctx.deployments, &ctx.name, desired).await?;
        info!(
            deployment = %ctx.name,
            from = current,
            to = desired,
            queued_runs = demand.queued_runs,
            running_runs = demand.running_runs,
            "scaled executors"
        );
    }
    Ok(Action {
        requeue_after: ctx.interval,
    })
}

/// Sets `spec.replicas` with server-side apply: only that field is sent and owned, so the
/// chart keeps the rest of the Deployment. Forced, because Helm's first install owns it.
pub async fn apply_replicas(deployments: &Api<Deployment>, name: &str, replicas: i32) -> Result<()> {
    let patch = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": { "replicas": replicas },
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    deployments
        .patch(name, &params, &Patch::Apply(&patch))
        .await
        .map_err(|source| Error::ScaleDeployment {
            name: name.into(),
            replicas,
            source,
        })?;
    Ok(())
}

/// After a failure: log it and try again after a pause that grows with repeated failures
/// (doubling from the interval, at most five minutes), so a missing RBAC rule or Deployment
/// does not flood the API server.
pub fn error_policy(error: &Error, ctx: &Context, failures: u32) -> Action {
    warn!(deployment = %ctx.name, failures, error = %medallion_jobs::error_chain(error), "autoscaler reconcile failed");
    let backoff = ctx.interval.saturating_mul(1 << failures.min(8));
    Action {
        requeue_after: backoff.min(Duration::from_secs(300)),
    }
}
