//! How a table's work is watched and retried: attempts, a wall-clock limit per attempt, and
//! the time without cluster progress after which an attempt is given up.

use std::time::Duration;

use serde::Deserialize;

/// Attempts after the first, when a table names none.
pub const DEFAULT_RETRIES: u32 = 2;
/// No stage finished on the cluster for this long: the attempt is stuck.
pub const DEFAULT_STALL_SECONDS: u64 = 300;

/// The watch and retry settings in effect for one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one (0: never retried).
    pub retries: u32,
    /// Wall-clock limit of one attempt; none when absent.
    pub timeout: Option<Duration>,
    /// An attempt during which no Ballista stage finished for this long is cancelled.
    pub stall: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: DEFAULT_RETRIES,
            timeout: None,
            stall: Duration::from_secs(DEFAULT_STALL_SECONDS),
        }
    }
}

impl RetryPolicy {
    /// This policy with every setting `overrides` gives replaced.
    #[must_use]
    pub fn overlaid(self, overrides: &RetrySettings) -> Self {
        Self {
            retries: overrides.retries.unwrap_or(self.retries),
            timeout: match overrides.timeout_seconds {
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
                None => self.timeout,
            },
            stall: overrides
                .stall_seconds
                .map_or(self.stall, |s| Duration::from_secs(s.max(1))),
        }
    }
}

/// The settings as written in `[pipeline]`, in a `[[table]]` or given as flags: each optional,
/// overriding the level below it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts after the first.
    pub retries: Option<u32>,
    /// Seconds one attempt may take (0: no limit).
    pub timeout_seconds: Option<u64>,
    /// Seconds without a finished stage before an attempt is cancelled.
    pub stall_seconds: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_settings_override_pipeline_defaults_one_by_one() {
        let pipeline = RetryPolicy::default().overlaid(&RetrySettings {
            retries: Some(5),
            timeout_seconds: Some(600),
            stall_seconds: None,
        });
        let table = pipeline.overlaid(&RetrySettings {
            retries: None,
            timeout_seconds: Some(0),
            stall_seconds: Some(20),
        });
        assert_eq!(
            table,
            RetryPolicy {
                retries: 5,
                timeout: None,
                stall: Duration::from_secs(20),
            }
        );
        assert_eq!(pipeline.timeout, Some(Duration::from_secs(600)));
        assert_eq!(pipeline.stall, Duration::from_secs(DEFAULT_STALL_SECONDS));
    }
}
