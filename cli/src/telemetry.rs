//! The one tracing subscriber setup, shared by every subcommand.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs to stderr with the given filter (falls back to `warn` if it does not parse); colours
/// only on a terminal, so a CronJob's or a CI job's log holds no escape codes.
pub(crate) fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
