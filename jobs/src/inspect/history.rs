//! The runs the event log recorded: one line per run (newest first), or one run's tables with
//! their rule failures — as SQL over the `event_log` table [`catalog`](super::catalog)
//! registers, so what is shown is what any reader of the log sees.

/// One line per run, newest first: status `failed` when any table failed or was skipped.
pub fn runs_sql(limit: usize) -> String {
    format!(
        "SELECT run_id, min(pipeline) AS pipeline, \
           CASE WHEN bool_or(status IN ('failed', 'skipped')) THEN 'failed' ELSE 'succeeded' END AS status, \
           min(started_at) AS started_at, \
           round((CAST(max(finished_at) AS BIGINT) - CAST(min(started_at) AS BIGINT)) / 1e6, 2) AS seconds, \
           count(DISTINCT table_name) AS tables, \
           sum(CASE WHEN status <> 'retried' THEN rows_written ELSE 0 END) AS rows_written, \
           sum(CASE WHEN status <> 'retried' THEN rows_quarantined ELSE 0 END) AS rows_quarantined, \
           sum(CASE WHEN status = 'retried' THEN 1 ELSE 0 END) AS retries \
         FROM event_log GROUP BY run_id ORDER BY started_at DESC LIMIT {limit}"
    )
}

/// One run's tables in the order they finished, with their rule failures and errors.
pub fn run_sql(run_id: &str) -> String {
    format!(
        "SELECT layer, table_name, status, attempt, rows_read, rows_written, rows_quarantined, \
           round(duration_ms / 1000.0, 2) AS seconds, delta_version AS version, refresh, \
           rule_failures, error \
         FROM event_log WHERE run_id = '{}' ORDER BY finished_at, table_name",
        run_id.replace('\'', "''")
    )
}
