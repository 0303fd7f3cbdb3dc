//! The run section: the run's tables with status, rows, version and how they were computed, a
//! timeline of when each ran (retried attempts included), and the runs before it.

use super::html::{figure, note, table};
use super::rows::Rows;
use super::svg::{Span, timeline};
use super::{failed, quoted};
use crate::error::Result;

/// The run's id (the one asked for, or the latest), or `None` when there is no event log.
pub(super) async fn chosen_run(
    ctx: &datafusion::prelude::SessionContext,
    asked: Option<&str>,
) -> Result<Option<String>> {
    if !ctx.table_exist("event_log").unwrap_or(false) {
        return Ok(None);
    }
    if let Some(run) = asked {
        return Ok(Some(run.to_string()));
    }
    let latest = "SELECT run_id FROM event_log ORDER BY started_at DESC LIMIT 1";
    let rows = Rows::query(ctx, latest).await.map_err(failed("event_log"))?;
    Ok(rows
        .texts("run_id")
        .map_err(failed("event_log"))?
        .into_iter()
        .next())
}

/// The section's HTML for `run`, and `runs` (the last runs, `runs_sql`'s rows).
pub(super) async fn section(
    ctx: &datafusion::prelude::SessionContext,
    run: Option<&str>,
    runs: Option<&Rows>,
) -> Result<String> {
    let (Some(run), Some(runs)) = (run, runs) else {
        return Ok(note("No runs yet: the lakehouse has no event log."));
    };
    let err = failed("event_log");
    let sql = format!(
        "SELECT layer, table_name, status, attempt, rows_read, rows_written, rows_quarantined, \
           round(duration_ms / 1000.0, 2) AS seconds, delta_version AS version, refresh, error, \
           (CAST(started_at AS BIGINT) - min(CAST(started_at AS BIGINT)) OVER ()) / 1e6 AS start_s, \
           (CAST(finished_at AS BIGINT) - min(CAST(started_at AS BIGINT)) OVER ()) / 1e6 AS end_s \
         FROM event_log WHERE run_id = {} ORDER BY started_at, table_name",
        quoted(run)
    );
    let rows = Rows::query(ctx, &sql).await.map_err(err)?;
    if rows.len() == 0 {
        return Ok(note(&format!("The event log has no run `{run}`.")));
    }
    let cells = rows.text().map_err(err)?;
    let (starts, ends) = (
        rows.numbers("start_s").map_err(err)?,
        rows.numbers("end_s").map_err(err)?,
    );
    let spans: Vec<Span> = cells
        .iter()
        .zip(starts.iter().zip(&ends))
        .map(|(row, (start, end))| Span {
            label: row[1].clone(),
            start: start.unwrap_or(0.0),
            end: end.unwrap_or(0.0),
            status: row[2].clone(),
        })
        .collect();
    let failed = cells
        .iter()
        .filter(|r| r[2] == "failed" || r[2] == "skipped")
        .count();
    let retries = cells.iter().filter(|r| r[2] == "retried").count();
    let seconds = spans.iter().fold(0.0f64, |e, s| e.max(s.end));
    let summary = format!(
        r#"<p>Run <b>{run}</b>: <span class="{class}">{status}</span> in {seconds:.2} s — {tables} table(s), {failed} failed or skipped, {retries} retried attempt(s).</p>"#,
        run = super::html::escape(run),
        class = if failed > 0 { "failed" } else { "ok" },
        status = if failed > 0 { "failed" } else { "succeeded" },
        tables = cells.len() - retries,
    );
    let headers = rows.headers();
    let shown = headers.len() - 2;
    let listed: Vec<Vec<String>> = cells.iter().map(|r| r[..shown].to_vec()).collect();
    Ok(format!(
        "{summary}{}<h3>Tables</h3>{}<h3>Last runs</h3>{}",
        figure("Timeline (seconds from the run's start)", &timeline(&spans)),
        table(&headers[..shown], &listed),
        table(&runs.headers(), &runs.text().map_err(err)?)
    ))
}
