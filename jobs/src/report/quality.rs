//! The data-quality section: each rule's failures over the last runs (from the event log), the
//! rows quarantined per run, and per quarantine table its most frequent reasons and some rows.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;

use super::html::{figure, note, table};
use super::rows::Rows;
use super::svg::{Series, bar_chart};
use super::{failed, quoted};
use crate::error::Result;
use crate::landing::CORRUPT_RECORD;
use crate::quality::QUARANTINE_SUFFIX;
use crate::spec::Pipeline;

/// Rows shown per quarantine table.
const SAMPLE_ROWS: usize = 3;

/// Data columns shown of those rows.
const SAMPLE_DATA_COLUMNS: usize = 6;

/// The section's HTML; `runs`: the last runs (`runs_sql`'s rows), `None` without an event log.
pub(super) async fn section(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    runs: Option<&Rows>,
) -> Result<String> {
    let mut out = String::new();
    if let Some(runs) = runs {
        out += &rule_failures(ctx, runs).await?;
    }
    out += "<h3>Quarantine</h3>";
    let mut any = false;
    for t in &pipeline.tables {
        let name = format!("{}{QUARANTINE_SUFFIX}", t.name);
        if ctx.table_exist(name.as_str()).unwrap_or(false) {
            any = true;
            out += &quarantine(ctx, &name).await?;
        }
    }
    if !any {
        out += &note("No table has a quarantine.");
    }
    Ok(out)
}

/// Failures per rule and table over the last runs (newest first), and quarantined rows per run.
async fn rule_failures(ctx: &SessionContext, runs: &Rows) -> Result<String> {
    let err = failed("event_log");
    let run_ids = runs.texts("run_id").map_err(err)?;
    let quarantined = runs.numbers("rows_quarantined").map_err(err)?;
    let list = run_ids.iter().map(|r| quoted(r)).collect::<Vec<_>>().join(", ");
    if list.is_empty() {
        return Ok(note("No runs yet."));
    }
    let sql = format!(
        "SELECT run_id, table_name, rule_failures FROM event_log \
         WHERE run_id IN ({list}) AND status <> 'retried' AND rule_failures IS NOT NULL"
    );
    let rows = Rows::query(ctx, &sql).await.map_err(err)?;
    let mut counts: BTreeMap<(String, String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for row in rows.text().map_err(err)? {
        let Ok(serde_json::Value::Object(rules)) = serde_json::from_str(&row[2]) else {
            continue;
        };
        for (rule, result) in rules {
            let action = result["action"].as_str().unwrap_or("").to_string();
            let n = result["failed"].as_f64().unwrap_or(0.0);
            let per_run = counts.entry((row[1].clone(), rule, action)).or_default();
            *per_run.entry(row[0].clone()).or_default() += n;
        }
    }
    let mut headers = vec!["table".to_string(), "rule".into(), "action".into()];
    headers.extend(run_ids.iter().cloned());
    let clean = counts
        .values()
        .filter(|per_run| per_run.values().all(|n| *n == 0.0))
        .count();
    let listed: Vec<Vec<String>> = counts
        .iter()
        .filter(|(_, per_run)| per_run.values().any(|n| *n > 0.0))
        .map(|((t, rule, action), per_run)| {
            let mut row = vec![t.clone(), rule.clone(), action.clone()];
            row.extend(
                run_ids
                    .iter()
                    .map(|r| per_run.get(r).map_or(String::new(), |n| format!("{n}"))),
            );
            row
        })
        .collect();
    let chart = bar_chart(
        &run_ids,
        &[Series {
            name: "rows quarantined".into(),
            values: quarantined,
        }],
    );
    Ok(format!(
        "{}<h3>Rule failures per run (newest first)</h3>{}{}",
        figure("Rows quarantined per run (newest first)", &chart),
        table(&headers, &listed),
        note(&format!(
            "{clean} other rule(s) had no failing row in these runs."
        ))
    ))
}

/// A quarantine table's most frequent reasons and a few of its rows.
async fn quarantine(ctx: &SessionContext, name: &str) -> Result<String> {
    let err = failed("quarantine");
    let reasons = format!(
        "SELECT _rule, _reason, count(*) AS rows_quarantined, max(_run_id) AS last_run FROM \"{name}\" \
         GROUP BY _rule, _reason ORDER BY rows_quarantined DESC, _rule LIMIT 5"
    );
    let reasons = Rows::query(ctx, &reasons).await.map_err(err)?;
    if reasons.len() == 0 {
        return Ok(format!("<details><summary>{name}: empty</summary></details>"));
    }
    let shown = sample_columns(ctx, name).await?;
    let sample = format!("SELECT {shown} FROM \"{name}\" LIMIT {SAMPLE_ROWS}");
    let sample = Rows::query(ctx, &sample).await.map_err(err)?;
    let total: f64 = reasons
        .numbers("rows_quarantined")
        .map_err(err)?
        .into_iter()
        .flatten()
        .sum();
    Ok(format!(
        "<details><summary>{name}: {total} row(s) under its top reasons</summary>{}<p>Some of its rows:</p>{}</details>",
        table(&reasons.headers(), &reasons.text().map_err(err)?),
        table(&sample.headers(), &sample.text().map_err(err)?)
    ))
}

/// The columns a quarantine sample shows: the rule, the reason, the raw record when the row
/// did not parse, and the first data columns.
async fn sample_columns(ctx: &SessionContext, name: &str) -> Result<String> {
    let schema = ctx
        .table(name)
        .await
        .map_err(failed("quarantine"))?
        .schema()
        .clone();
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let data = names
        .iter()
        .filter(|n| !n.starts_with('_'))
        .take(SAMPLE_DATA_COLUMNS);
    let raw = names.iter().filter(|n| n.as_str() == CORRUPT_RECORD);
    let columns: Vec<String> = ["_rule", "_reason"]
        .iter()
        .map(|c| c.to_string())
        .chain(raw.chain(data).map(|c| c.to_string()))
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect();
    Ok(columns.join(", "))
}
