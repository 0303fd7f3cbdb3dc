//! How many executors the queued work wants: pure arithmetic, so every decision is unit-tested
//! without an API server.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The job service's work at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Runs waiting for a slot.
    pub queued_runs: usize,
    /// Runs executing.
    pub running_runs: usize,
}

impl Demand {
    /// No run queued or running.
    pub fn is_idle(&self) -> bool {
        self.queued_runs == 0 && self.running_runs == 0
    }
}

/// Bounds and pace of the executor Deployment's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePolicy {
    /// Replicas kept when idle.
    pub min_replicas: i32,
    /// Replicas never exceeded.
    pub max_replicas: i32,
    /// Executors wanted per queued or running run.
    pub executors_per_run: i32,
    /// How long a lower size must be wanted before the Deployment shrinks: a run that ends just
    /// before the next one is queued must not cost a pod restart.
    pub scale_down_delay: Duration,
}

impl ScalePolicy {
    /// The size `demand` asks for, within the bounds.
    pub fn wanted(&self, demand: Demand) -> i32 {
        let runs = i32::try_from(demand.queued_runs + demand.running_runs).unwrap_or(i32::MAX);
        runs.saturating_mul(self.executors_per_run)
            .clamp(self.min_replicas, self.max_replicas)
    }
}

/// Recent sizes the demand asked for. Growing is immediate; shrinking follows the largest size
/// asked for within the scale-down delay (the stabilisation window of Kubernetes' HPA).
#[derive(Debug)]
pub struct Recommendations {
    policy: ScalePolicy,
    window: VecDeque<(Instant, i32)>,
}

impl Recommendations {
    /// No recommendation yet.
    pub fn new(policy: ScalePolicy) -> Self {
        Self {
            policy,
            window: VecDeque::new(),
        }
    }

    /// The replica count to set now, given the demand and the Deployment's current size.
    pub fn decide(&mut self, demand: Demand, current: i32, now: Instant) -> i32 {
        let wanted = self.policy.wanted(demand);
        let bounded = current.clamp(self.policy.min_replicas, self.policy.max_replicas);
        if self.window.is_empty() {
            // A scheduler that just started has not seen the work that sized the Deployment:
            // count its size as wanted now, so it is kept for one delay.
            self.window.push_back((now, bounded));
        }
        let delay = self.policy.scale_down_delay;
        self.window
            .retain(|(at, _)| now.saturating_duration_since(*at) < delay);
        self.window.push_back((now, wanted));
        let stable = self.window.iter().map(|(_, n)| *n).max().unwrap_or(wanted);
        if wanted >= bounded {
            wanted
        } else {
            stable.min(bounded)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScalePolicy {
        ScalePolicy {
            min_replicas: 1,
            max_replicas: 6,
            executors_per_run: 2,
            scale_down_delay: Duration::from_secs(60),
        }
    }

    fn demand(queued_runs: usize, running_runs: usize) -> Demand {
        Demand {
            queued_runs,
            running_runs,
        }
    }

    #[test]
    fn wanted_is_runs_times_executors_within_bounds() {
        let p = policy();
        assert_eq!(p.wanted(demand(0, 0)), 1);
        assert_eq!(p.wanted(demand(1, 0)), 2);
        assert_eq!(p.wanted(demand(1, 1)), 4);
        assert_eq!(p.wanted(demand(40, 2)), 6);
        assert_eq!(p.wanted(demand(usize::MAX / 2, usize::MAX / 2)), 6);
    }

    #[test]
    fn grows_at_once() {
        let mut r = Recommendations::new(policy());
        let t = Instant::now();
        assert_eq!(r.decide(demand(0, 0), 1, t), 1);
        assert_eq!(r.decide(demand(2, 0), 1, t + Duration::from_secs(1)), 4);
        assert_eq!(r.decide(demand(2, 1), 4, t + Duration::from_secs(2)), 6);
    }

    #[test]
    fn shrinks_to_the_minimum_only_after_the_delay() {
        let mut r = Recommendations::new(policy());
        let t = Instant::now();
        assert_eq!(r.decide(demand(1, 1), 1, t), 4);
        // Idle, but a 4 was wanted less than a minute ago.
        assert_eq!(r.decide(demand(0, 0), 4, t + Duration::from_secs(10)), 4);
        assert_eq!(r.decide(demand(0, 0), 4, t + Duration::from_secs(59)), 4);
        assert_eq!(r.decide(demand(0, 0), 4, t + Duration::from_secs(61)), 1);
    }

    #[test]
    fn shrinks_in_steps_to_what_was_wanted_within_the_delay() {
        let mut r = Recommendations::new(policy());
        let t = Instant::now();
        assert_eq!(r.decide(demand(2, 1), 1, t), 6);
        assert_eq!(r.decide(demand(0, 1), 6, t + Duration::from_secs(30)), 6);
        assert_eq!(r.decide(demand(0, 1), 6, t + Duration::from_secs(70)), 2);
        assert_eq!(r.decide(demand(0, 0), 2, t + Duration::from_secs(140)), 1);
    }

    #[test]
    fn a_deployment_resized_by_hand_is_brought_back_within_bounds() {
        let mut r = Recommendations::new(policy());
        let t = Instant::now();
        assert_eq!(r.decide(demand(0, 0), 0, t), 1);
        let mut r = Recommendations::new(policy());
        assert_eq!(r.decide(demand(0, 0), 20, t), 6);
        assert_eq!(r.decide(demand(0, 0), 6, t + Duration::from_secs(61)), 1);
    }
}
