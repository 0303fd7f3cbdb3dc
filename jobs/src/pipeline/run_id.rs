//! A run's identity, shared by the run driver and every table job.

use std::hash::{BuildHasher, RandomState};

use crate::error::{Error, Result};

/// A run's identity: `run-<sequence>`, the sequence being the start time in microseconds times
/// [`TIE_BREAKS`] plus a random tie-breaker. The sequence is the Delta `txn` version, so
/// re-running an id commits nothing twice — and two runs must never share one: a VM's clock can
/// give two processes started together the same microsecond (seen: two concurrent writers got
/// one id, so each took the other's commit for its own and discarded files it referenced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId {
    /// Printable id.
    pub id: String,
    /// Monotonic sequence (across microseconds; random within one).
    pub seq: i64,
    /// Start of the run, microseconds since the epoch (`_ingested_at`).
    pub started_micros: i64,
}

/// Tie-breakers per microsecond.
const TIE_BREAKS: i64 = 1000;

/// Sequences from here on carry a tie-breaker; below it they are bare microseconds (run ids
/// made before tie-breakers, still valid to resume).
const FIRST_TIE_BROKEN: i64 = 100_000_000_000_000_000;

impl RunId {
    /// A new run starting now.
    pub fn new() -> Self {
        let micros = chrono::Utc::now().timestamp_micros();
        // A fresh RandomState is keyed differently in every process and every call.
        let tie = RandomState::new().hash_one(std::process::id()) % TIE_BREAKS as u64;
        let seq = micros * TIE_BREAKS + tie as i64;
        Self {
            id: format!("run-{seq}"),
            seq,
            started_micros: micros,
        }
    }

    /// An earlier run, to resume or repeat it.
    pub fn parse(id: &str) -> Result<Self> {
        let seq = id
            .strip_prefix("run-")
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| *s > 0)
            .ok_or_else(|| Error::Select {
                selector: id.into(),
                message: "a run id looks like run-<number>".into(),
            })?;
        let started_micros = match seq >= FIRST_TIE_BROKEN {
            true => seq / TIE_BREAKS,
            false => seq,
        };
        Ok(Self {
            id: id.to_string(),
            seq,
            started_micros,
        })
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_one_microsecond_differ_and_parse_back() {
        let ids: std::collections::HashSet<String> = (0..50).map(|_| RunId::new().id).collect();
        assert!(ids.len() > 45, "{ids:?}");
        let run = RunId::new();
        assert_eq!(RunId::parse(&run.id).unwrap(), run);
        let old = RunId::parse("run-1700000000000001").unwrap();
        assert_eq!(
            (old.seq, old.started_micros),
            (1_700_000_000_000_001, 1_700_000_000_000_001)
        );
    }
}
