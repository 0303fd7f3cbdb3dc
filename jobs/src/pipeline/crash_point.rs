//! A test hook for crash tests: `MEDALLION_PAUSE_BEFORE_COMMIT=<table>` makes the process stop
//! right before it commits that table (its data files written, nothing visible yet), say so on
//! stderr and wait there — so a test can `kill -9` it at exactly the moment where a lost commit
//! must not lose or duplicate anything. Unset, it costs one environment lookup per commit.

use std::time::Duration;

/// The variable naming the table (`<table>` or `<table>__quarantine`) to pause before.
pub(crate) const PAUSE_BEFORE_COMMIT: &str = "MEDALLION_PAUSE_BEFORE_COMMIT";

/// Waits forever if the hook names this commit (`table` plus its output `suffix`).
pub(crate) async fn before_commit(table: &str, suffix: &str) {
    let Ok(paused) = std::env::var(PAUSE_BEFORE_COMMIT) else {
        return;
    };
    if paused != format!("{table}{suffix}") {
        return;
    }
    eprintln!("paused before the commit of `{paused}` ({PAUSE_BEFORE_COMMIT})");
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
