//! The one tracing subscriber setup, shared by every subcommand.

use tracing_subscriber::EnvFilter;

/// Logs to stderr with the given filter (falls back to `warn` if it does not parse).
pub(crate) fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
