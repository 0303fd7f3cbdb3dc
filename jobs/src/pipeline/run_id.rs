//! A run's identity, shared by the run driver and every table job.

use crate::error::{Error, Result};

/// A run's identity: `run-<sequence>`, the sequence being the start time in microseconds (two
/// runs started in the same millisecond by different processes must not share an id).
/// The sequence is the Delta `txn` version, so re-running an id commits nothing twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId {
    /// Printable id.
    pub id: String,
    /// Monotonic sequence.
    pub seq: i64,
    /// Start of the run, microseconds since the epoch (`_ingested_at`).
    pub started_micros: i64,
}

impl RunId {
    /// A new run starting now.
    pub fn new() -> Self {
        let now = chrono::Utc::now();
        let seq = now.timestamp_micros();
        Self {
            id: format!("run-{seq}"),
            seq,
            started_micros: seq,
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
        Ok(Self {
            id: id.to_string(),
            seq,
            started_micros: seq,
        })
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}
