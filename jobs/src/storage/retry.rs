//! One retry policy for every object-store request, ours and deltalake's, read from the
//! environment so operators can widen it for flaky networks.
//!
//! - `MEDALLION_STORAGE_MAX_RETRIES` (default 10)
//! - `MEDALLION_STORAGE_RETRY_TIMEOUT_SECS` (default 180)
//! - `MEDALLION_STORAGE_INIT_BACKOFF_MS` (default 500; doubles per retry up to 15 s)
//!
//! With the defaults a request survives an outage of about a minute and a half.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use object_store::{BackoffConfig, RetryConfig};

/// The retry settings of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Retries per request.
    pub max_retries: usize,
    /// Give up retrying after this long.
    pub timeout: Duration,
    /// First backoff.
    pub init_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl RetrySettings {
    fn from_env() -> Self {
        let var = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Self {
            max_retries: var("MEDALLION_STORAGE_MAX_RETRIES", 10) as usize,
            timeout: Duration::from_secs(var("MEDALLION_STORAGE_RETRY_TIMEOUT_SECS", 180)),
            init_backoff: Duration::from_millis(var("MEDALLION_STORAGE_INIT_BACKOFF_MS", 500)),
            max_backoff: Duration::from_secs(15),
        }
    }

    /// For object_store clients.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.init_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.timeout,
        }
    }

    /// For deltalake's stores, as storage options.
    pub fn delta_options(&self) -> HashMap<String, String> {
        HashMap::from([
            ("max_retries".to_string(), self.max_retries.to_string()),
            (
                "retry_timeout".to_string(),
                format!("{}s", self.timeout.as_secs()),
            ),
            (
                "backoff_config.init_backoff".to_string(),
                format!("{}ms", self.init_backoff.as_millis()),
            ),
            (
                "backoff_config.max_backoff".to_string(),
                format!("{}s", self.max_backoff.as_secs()),
            ),
            ("backoff_config.base".to_string(), "2".to_string()),
        ])
    }
}

/// The process's settings, read once.
pub fn retry_settings() -> RetrySettings {
    static SETTINGS: OnceLock<RetrySettings> = OnceLock::new();
    *SETTINGS.get_or_init(RetrySettings::from_env)
}
