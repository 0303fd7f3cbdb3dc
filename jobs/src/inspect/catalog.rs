//! A pipeline's lakehouse as SQL tables: every table a run has committed, by its name, with
//! its quarantine (`<table>__quarantine`) and companions (`<table>__changes`, an ALS table's
//! factors, metrics and model), the event log as `event_log` and the lineage log as `lineage` —
//! each at its latest version
//! or at the version asked for.

use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use url::Url;

use crate::delta::TableSnapshot;
use crate::error::{Error, Result};
use crate::pipeline::{EVENT_LOG_PATH, LINEAGE_PATH, Lakehouse, resolve_url};
use crate::quality::QUARANTINE_SUFFIX;
use crate::spec::Pipeline;

/// The SQL name of the event log.
pub const EVENT_LOG_TABLE: &str = "event_log";

/// The name queries use for the lineage log.
pub const LINEAGE_TABLE: &str = "lineage";

/// One table made available to SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Its SQL name.
    pub name: String,
    /// Where it is.
    pub url: Url,
    /// The version registered.
    pub version: i64,
}

/// A session in this process (DataFusion, Medallion's functions) over `runtime`'s object stores
/// with `pipeline`'s lakehouse registered ([`register_lakehouse`]) — at `root` when given, else
/// where the spec says.
pub async fn lakehouse_session(
    pipeline: &Pipeline,
    root: Option<&str>,
    runtime: Arc<RuntimeEnv>,
    pins: &[(String, u64)],
) -> Result<SessionContext> {
    let lakehouse = lakehouse_of(pipeline, root)?;
    let state = crate::cluster::medallion_state(SessionConfig::new(), runtime);
    let ctx = SessionContext::new_with_state(state);
    register_lakehouse(&ctx, pipeline, &lakehouse, pins).await?;
    Ok(ctx)
}

/// `pipeline`'s lakehouse: at `root` when given, else where the spec says.
pub fn lakehouse_of(pipeline: &Pipeline, root: Option<&str>) -> Result<Lakehouse> {
    let root = root
        .or(pipeline.lakehouse.as_deref())
        .ok_or_else(|| Error::ParseSpec {
            path: pipeline.path.clone(),
            message: "no lakehouse root: set [pipeline] lakehouse or pass --lakehouse".into(),
        })?;
    Ok(Lakehouse::new(resolve_url(None, root)?))
}

/// Registers every committed table of `pipeline` under `lakehouse` in `ctx` at its latest
/// version, and each `(name, version)` of `pins` as the table `name@version` (time travel).
pub async fn register_lakehouse(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    lakehouse: &Lakehouse,
    pins: &[(String, u64)],
) -> Result<Vec<Registered>> {
    let urls = table_urls(pipeline, lakehouse);
    let mut registered = Vec::new();
    for (name, url) in &urls {
        if let Some(table) = register(ctx, name, url, None).await? {
            registered.push(table);
        }
    }
    for (name, version) in pins {
        let unknown = || Error::Select {
            selector: format!("{name}@{version}"),
            message: "no table of this lakehouse has that name and version".into(),
        };
        let (_, url) = urls.iter().find(|(n, _)| n == name).ok_or_else(unknown)?;
        let pinned = register(ctx, &format!("{name}@{version}"), url, Some(*version)).await;
        registered.push(pinned.ok().flatten().ok_or_else(unknown)?);
    }
    Ok(registered)
}

async fn register(
    ctx: &SessionContext,
    name: &str,
    url: &Url,
    version: Option<u64>,
) -> Result<Option<Registered>> {
    let Some(snapshot) = TableSnapshot::load_at(url, version).await? else {
        return Ok(None);
    };
    ctx.register_table(TableReference::bare(name), Arc::new(snapshot.scan_table()?))
        .map_err(|e| Error::Query {
            table: name.to_string(),
            step: "register for query",
            source: Box::new(e),
        })?;
    Ok(Some(Registered {
        name: name.to_string(),
        url: url.clone(),
        version: snapshot.version(),
    }))
}

/// `sql` with each `name@version` written as the quoted table name `"name@version"`, and the
/// pins it names.
pub fn pinned_versions(sql: &str) -> (String, Vec<(String, u64)>) {
    let mut out = String::with_capacity(sql.len());
    let mut pins = Vec::new();
    let mut rest = sql;
    while let Some(at) = rest.find('@') {
        let (before, after) = rest.split_at(at);
        let name_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &before[name_start..];
        let digits = after[1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len() - 1);
        let version = after[1..1 + digits].parse::<u64>();
        match version {
            Ok(version) if !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) => {
                out.push_str(&before[..name_start]);
                out.push_str(&format!("\"{name}@{version}\""));
                pins.push((name.to_string(), version));
                rest = &after[1 + digits..];
            }
            _ => {
                out.push_str(before);
                out.push('@');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    pins.sort();
    pins.dedup();
    (out, pins)
}

/// Every table a run of `pipeline` may write, by SQL name.
fn table_urls(pipeline: &Pipeline, lakehouse: &Lakehouse) -> Vec<(String, Url)> {
    let mut urls = Vec::new();
    for table in &pipeline.tables {
        urls.push((table.name.clone(), lakehouse.table_url(table)));
        let suffixes =
            std::iter::once(QUARANTINE_SUFFIX).chain(table.kind.companion_suffixes().iter().copied());
        for suffix in suffixes {
            urls.push((
                format!("{}{suffix}", table.name),
                lakehouse.companion_url(table, suffix),
            ));
        }
    }
    urls.push((EVENT_LOG_TABLE.to_string(), lakehouse.at(EVENT_LOG_PATH)));
    urls.push((LINEAGE_TABLE.to_string(), lakehouse.at(LINEAGE_PATH)));
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_at_version_becomes_a_quoted_name_and_a_pin() {
        let (sql, pins) =
            pinned_versions("SELECT a.x FROM orders@3 a JOIN orders@12 b USING (id) WHERE e = 'a@b'");
        assert_eq!(
            sql,
            "SELECT a.x FROM \"orders@3\" a JOIN \"orders@12\" b USING (id) WHERE e = 'a@b'"
        );
        assert_eq!(pins, vec![("orders".into(), 3), ("orders".into(), 12)]);
        let (sql, pins) = pinned_versions("SELECT count(*) FROM customers");
        assert_eq!(sql, "SELECT count(*) FROM customers");
        assert!(pins.is_empty());
    }
}
