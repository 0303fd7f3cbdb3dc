//! Executors replaced on their own address.
//!
//! An executor restarted on the same host and ports (a container restart keeps its pod's IP)
//! registers under a new id, while Ballista keeps the old registration until its heartbeats
//! time out. Until then tasks sent to the old id reach the new process, which knows nothing of
//! them, and shuffle files recorded under the old id are looked for in the new process's
//! empty work dir — jobs stall or fail. Two processes cannot listen on the same ports, so the
//! registration with the older heartbeat is dead: it is retired at once, through the path an
//! executor that announces its own stop takes, which rolls its work back.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use ballista_core::serde::protobuf::ExecutorStoppedParams;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tracing::{info, warn};

/// One registration as the scheduler holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registration {
    pub(crate) id: String,
    /// Host, data port and gRPC port.
    pub(crate) address: (String, u16, u16),
    /// Seconds since the epoch of the last heartbeat, if any.
    pub(crate) heartbeat: Option<u64>,
}

/// The registrations that share an address with a more recently heard-from one.
pub(crate) fn replaced(registrations: &[Registration]) -> Vec<(String, String)> {
    let mut by_address: BTreeMap<&(String, u16, u16), Vec<&Registration>> = BTreeMap::new();
    for r in registrations {
        by_address.entry(&r.address).or_default().push(r);
    }
    let mut stale = Vec::new();
    for group in by_address.values().filter(|g| g.len() > 1) {
        let Some(newest) = group.iter().max_by_key(|r| r.heartbeat) else {
            continue;
        };
        stale.extend(
            group
                .iter()
                .filter(|r| r.heartbeat < newest.heartbeat)
                .map(|r| (r.id.clone(), newest.id.clone())),
        );
    }
    stale
}

/// Checks the registrations every `interval` and retires replaced ones, until the process stops.
pub(crate) async fn retire_replaced(
    scheduler: SchedulerServer<LogicalPlanNode, PhysicalPlanNode>,
    interval: Duration,
) -> crate::Result<()> {
    let mut retired = HashSet::new();
    loop {
        tokio::time::sleep(interval).await;
        let Ok(state) = scheduler.state.executor_manager.get_executors_state().await else {
            continue;
        };
        let registrations: Vec<Registration> = state
            .into_iter()
            .map(|(m, heartbeat, _)| Registration {
                id: m.id,
                address: (m.host, m.port, m.grpc_port),
                heartbeat: heartbeat.map(|d| d.as_secs()),
            })
            .collect();
        for (old, new) in replaced(&registrations) {
            if !retired.insert(old.clone()) {
                continue;
            }
            info!(executor = %old, replaced_by = %new, "executor restarted on the same address; retiring its old registration");
            let stopped = ExecutorStoppedParams {
                executor_id: old.clone(),
                reason: format!("replaced by executor {new} on the same address"),
            };
            if let Err(e) = scheduler.executor_stopped(tonic::Request::new(stopped)).await {
                warn!(executor = %old, error = %e, "could not retire a replaced executor");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(id: &str, port: u16, heartbeat: u64) -> Registration {
        Registration {
            id: id.into(),
            address: ("10.0.0.7".into(), port, port + 1),
            heartbeat: Some(heartbeat),
        }
    }

    #[test]
    fn the_older_registration_on_an_address_is_replaced() {
        let registrations = [
            reg("old", 50051, 100),
            reg("other", 50061, 100),
            reg("new", 50051, 103),
        ];
        assert_eq!(
            replaced(&registrations),
            vec![("old".to_string(), "new".to_string())]
        );
    }

    #[test]
    fn executors_on_different_addresses_or_heard_at_once_are_left_alone() {
        assert!(replaced(&[reg("a", 50051, 100), reg("b", 50061, 90)]).is_empty());
        assert!(replaced(&[reg("a", 50051, 100), reg("b", 50051, 100)]).is_empty());
    }
}
