//! TOML → [`Pipeline`], rejecting anything malformed with the file and line.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::chart::RawChart;
use super::check::{CheckSpec, RawCheck};
use super::kafka::{RawKafka, RawValueShape};
use super::model::{
    Action, CHANGES_PLACEHOLDER, CdcSpec, Compression, Expectation, Format, Layer, OnUnreadable, Pipeline,
    Scd, SchemaEvolution, Source, TableKind, TableSpec, WriteMode,
};
use super::model_spec::RawAls;
use super::retry::{RetryPolicy, RetrySettings};
use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    pipeline: RawPipeline,
    #[serde(default, rename = "table")]
    tables: Vec<RawTable>,
    #[serde(default, rename = "chart")]
    charts: Vec<RawChart>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    extends: Option<String>,
    lakehouse: Option<String>,
    landing: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    retries: Option<u32>,
    timeout_seconds: Option<u64>,
    stall_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: Spanned<String>,
    layer: String,
    source: Option<RawSource>,
    sql: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    partition_by: Vec<String>,
    #[serde(default)]
    cluster_by: Vec<String>,
    rows_per_file: Option<u64>,
    #[serde(default, rename = "expect")]
    expectations: Vec<RawExpectation>,
    mode: Option<String>,
    als: Option<RawAls>,
    cdc: Option<RawCdc>,
    #[serde(default, rename = "check")]
    checks: Vec<RawCheck>,
    #[serde(default)]
    incremental: bool,
    retries: Option<u32>,
    timeout_seconds: Option<u64>,
    stall_seconds: Option<u64>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    path: Option<String>,
    kafka: Option<RawKafka>,
    format: String,
    #[serde(default = "default_true")]
    header: bool,
    delimiter: Option<String>,
    #[serde(default)]
    schema: BTreeMap<String, String>,
    #[serde(default)]
    columns: Vec<String>,
    compression: Option<String>,
    schema_evolution: Option<String>,
    on_unreadable: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCdc {
    from: String,
    keys: Vec<String>,
    sequence_by: String,
    #[serde(default = "scd_one")]
    scd: u8,
    delete_when: Option<String>,
    select: Option<Vec<String>>,
    sql: Option<String>,
    #[serde(default)]
    except_columns: Vec<String>,
    track_history_columns: Option<Vec<String>>,
    buckets: Option<u32>,
}

fn scd_one() -> u8 {
    1
}

impl RawCdc {
    fn convert(self) -> std::result::Result<CdcSpec, String> {
        let scd = match self.scd {
            1 => Scd::One,
            2 => Scd::Two,
            other => return Err(format!("cdc.scd = {other}; expected 1 or 2")),
        };
        if self.keys.is_empty() {
            return Err("cdc.keys must name at least one column".into());
        }
        if self.select.is_some() && self.sql.is_some() {
            return Err("cdc.select and cdc.sql exclude each other: give one".into());
        }
        if self
            .sql
            .as_deref()
            .is_some_and(|sql| !sql.contains(CHANGES_PLACEHOLDER))
        {
            return Err(format!(
                "cdc.sql must read the new changes as {CHANGES_PLACEHOLDER}"
            ));
        }
        if self.buckets.is_some_and(|n| !(2..=1024).contains(&n)) {
            return Err("cdc.buckets must be between 2 and 1024".into());
        }
        if scd == Scd::One && self.track_history_columns.is_some() {
            return Err("cdc.track_history_columns needs scd = 2".into());
        }
        Ok(CdcSpec {
            from: self.from,
            keys: self.keys,
            sequence_by: self.sequence_by,
            scd,
            delete_when: self.delete_when,
            select: self.select,
            sql: self.sql,
            except_columns: self.except_columns,
            track_history_columns: self.track_history_columns,
            buckets: self.buckets,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    name: String,
    sql: String,
    action: String,
}

fn default_true() -> bool {
    true
}

/// How many specs an `extends` chain may hold (a cycle ends here too).
const MAX_EXTENDS: usize = 8;

/// Reads and parses a spec file (and the file it `extends`, relative to it).
pub fn read_spec(path: &str) -> Result<Pipeline> {
    read_spec_at(path, 0)
}

fn read_spec_at(path: &str, depth: usize) -> Result<Pipeline> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSpec {
        path: path.to_string(),
        source,
    })?;
    let base = |extends: &str| {
        if depth >= MAX_EXTENDS {
            return Err(Error::ParseSpec {
                path: path.to_string(),
                message: format!("`extends` nests more than {MAX_EXTENDS} specs deep (a cycle?)"),
            });
        }
        let dir = std::path::Path::new(path)
            .parent()
            .unwrap_or(std::path::Path::new("."));
        read_spec_at(&dir.join(extends).display().to_string(), depth + 1)
    };
    parse_spec_with(&text, path, Some(&base))
}

/// Parses spec text; `path` is only used in error messages. `extends` needs a spec read from
/// a file ([`read_spec`]).
pub fn parse_spec(text: &str, path: &str) -> Result<Pipeline> {
    parse_spec_with(text, path, None)
}

/// A spec's `extends`: the pipeline it names, read.
type ReadBase<'a> = dyn Fn(&str) -> Result<Pipeline> + 'a;

fn parse_spec_with(text: &str, path: &str, read_base: Option<&ReadBase<'_>>) -> Result<Pipeline> {
    let raw: RawSpec = toml::from_str(text).map_err(|e| Error::ParseSpec {
        path: path.to_string(),
        message: describe_toml_error(text, &e),
    })?;
    let base = match (&raw.pipeline.extends, read_base) {
        (None, _) => None,
        (Some(extends), Some(read)) => Some(read(extends)?),
        (Some(_), None) => {
            return Err(Error::ParseSpec {
                path: path.into(),
                message: "`extends` needs a spec read from a file".into(),
            });
        }
    };
    let mut seen = HashSet::new();
    let mut tables = Vec::with_capacity(raw.tables.len());
    for table in raw.tables {
        let line = line_of(text, table.name.span().start);
        let spec = convert_table(table, line, path)?;
        if !seen.insert(spec.name.clone()) {
            return Err(invalid(path, &spec, "declared more than once".into()));
        }
        tables.push(spec);
    }
    let charts = raw
        .charts
        .into_iter()
        .map(|chart| {
            let line = line_of(text, chart.title.span().start);
            chart.convert(line, path)
        })
        .collect::<Result<Vec<_>>>()?;
    if raw.pipeline.name.trim().is_empty() {
        return Err(Error::ParseSpec {
            path: path.into(),
            message: "[pipeline] name must not be empty".into(),
        });
    }
    let retry = RetryPolicy::default().overlaid(&RetrySettings {
        retries: raw.pipeline.retries,
        timeout_seconds: raw.pipeline.timeout_seconds,
        stall_seconds: raw.pipeline.stall_seconds,
    });
    let pipeline = Pipeline {
        name: raw.pipeline.name,
        retry,
        lakehouse: raw.pipeline.lakehouse,
        landing: raw.pipeline.landing,
        vars: raw.pipeline.vars,
        tables,
        charts,
        path: path.to_string(),
    };
    Ok(match base {
        Some(base) => extended(base, pipeline),
        None => pipeline,
    })
}

/// `base` with `child`'s settings over its own, and `child`'s tables replacing the base's of
/// the same name (in the base's order) or added after them.
fn extended(base: Pipeline, child: Pipeline) -> Pipeline {
    let mut tables = base.tables;
    for table in child.tables {
        match tables.iter_mut().find(|t| t.name == table.name) {
            Some(same) => *same = table,
            None => tables.push(table),
        }
    }
    let mut charts = base.charts;
    for chart in child.charts {
        match charts.iter_mut().find(|c| c.title == chart.title) {
            Some(same) => *same = chart,
            None => charts.push(chart),
        }
    }
    let mut vars = base.vars;
    vars.extend(child.vars);
    Pipeline {
        name: child.name,
        lakehouse: child.lakehouse.or(base.lakehouse),
        landing: child.landing.or(base.landing),
        vars,
        tables,
        charts,
        retry: child.retry,
        path: child.path,
    }
}

fn convert_table(raw: RawTable, line: usize, path: &str) -> Result<TableSpec> {
    let name = raw.name.into_inner();
    let err = |message: String| Error::InvalidSpec {
        path: path.into(),
        line,
        table: name.clone(),
        message,
    };
    if !is_identifier(&name) {
        return Err(err(
            "name must be letters, digits and `_`, not starting with a digit".into(),
        ));
    }
    let layer = Layer::parse(&raw.layer).ok_or_else(|| {
        err(format!(
            "unknown layer `{}` (expected bronze, silver, gold or ml)",
            raw.layer
        ))
    })?;
    let other_kind = raw.source.is_some() || raw.sql.is_some() || raw.als.is_some() || raw.cdc.is_some();
    let kind = match (raw.source, raw.sql, raw.als, raw.cdc) {
        _ if !raw.checks.is_empty() && other_kind => {
            return Err(err(
                "a `checks` table is its checks; give no `source`, `sql`, `als` or `cdc`".into(),
            ));
        }
        _ if !raw.checks.is_empty() => TableKind::Checks(checks(raw.checks).map_err(&err)?),
        (None, None, None, Some(cdc)) => TableKind::Cdc(cdc.convert().map_err(&err)?),
        (_, _, _, Some(_)) => {
            return Err(err(
                "a `cdc` table reads its `from` table; give no `source`, `sql` or `als`".into(),
            ));
        }
        (source, sql, als, None) => kind_of(source, sql, als, layer).map_err(&err)?,
    };
    let mode = match raw.mode.as_deref() {
        Some(_) if matches!(kind, TableKind::Checks(_)) => {
            return Err(err(
                "a `checks` table is rewritten each run; it takes no `mode`".into()
            ));
        }
        None => default_mode(&kind),
        Some("overwrite") => WriteMode::Overwrite,
        Some("append") => WriteMode::Append,
        Some(other) => {
            return Err(err(format!(
                "unknown mode `{other}` (expected overwrite or append)"
            )));
        }
    };
    let expectations = raw
        .expectations
        .into_iter()
        .map(|e| convert_expectation(e).map_err(&err))
        .collect::<Result<Vec<_>>>()?;
    if matches!(kind, TableKind::Als { .. }) && !raw.partition_by.is_empty() {
        return Err(err(
            "an `als` table is written by the model; it takes no partition_by".into(),
        ));
    }
    let cluster = clustering(raw.cluster_by, raw.rows_per_file, &kind).map_err(&err)?;
    if raw.incremental && !matches!(kind, TableKind::Sql(_)) {
        return Err(err("`incremental` applies to `sql` tables".into()));
    }
    let mut rules = HashSet::new();
    if let Some(dup) = expectations.iter().find(|e| !rules.insert(e.name.as_str())) {
        return Err(err(format!("expectation `{}` declared more than once", dup.name)));
    }
    let settings = settings(raw.settings).map_err(&err)?;
    Ok(TableSpec {
        name,
        layer,
        kind,
        keys: raw.keys,
        partition_by: raw.partition_by,
        cluster,
        expectations,
        mode,
        incremental: raw.incremental,
        retry: RetrySettings {
            retries: raw.retries,
            timeout_seconds: raw.timeout_seconds,
            stall_seconds: raw.stall_seconds,
        },
        settings,
        line,
    })
}

/// Settings a run owns: a table may not change them.
const RUN_SETTINGS: [(&str, &str); 2] = [
    (
        "ballista.job.name",
        "the run names each attempt's jobs to watch them",
    ),
    (
        "ballista.planner.adaptive.enabled",
        "the adaptive planner cannot re-run a stage lost with its executor (see the README)",
    ),
];

/// A table's session settings as text, each checked against a Ballista session's options.
fn settings(raw: BTreeMap<String, toml::Value>) -> std::result::Result<Vec<(String, String)>, String> {
    let settings = raw
        .into_iter()
        .map(|(key, value)| match value {
            toml::Value::String(s) => Ok((key, s)),
            toml::Value::Boolean(_) | toml::Value::Integer(_) | toml::Value::Float(_) => {
                Ok((key, value.to_string()))
            }
            other => Err(format!(
                "setting `{key}`: {} is not a string, number or boolean",
                other.type_str()
            )),
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    for setting in &settings {
        if let Some((key, why)) = RUN_SETTINGS.iter().find(|(key, _)| *key == setting.0) {
            return Err(format!("setting `{key}` is the run's: {why}"));
        }
        let config = crate::cluster::medallion_session_config();
        crate::cluster::with_settings(config, std::slice::from_ref(setting))
            .map_err(|e| format!("setting `{}`: {e}", setting.0))?;
    }
    Ok(settings)
}

/// A `checks` table's checks, each named once.
fn checks(raw: Vec<RawCheck>) -> std::result::Result<Vec<CheckSpec>, String> {
    let checks = raw
        .into_iter()
        .map(RawCheck::convert)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut names = HashSet::new();
    match checks.iter().find(|c| !names.insert(c.name.as_str())) {
        Some(dup) => Err(format!("check `{}` declared more than once", dup.name)),
        None => Ok(checks),
    }
}

/// Rows per file of a table with `cluster_by` and no `rows_per_file`: small enough that a
/// batch's keys touch few files, large enough that a scale-1 table has tens, not thousands.
const DEFAULT_ROWS_PER_FILE: u64 = 100_000;

/// `cluster_by` and `rows_per_file` checked: SQL and CDC tables, some columns, rows > 0.
fn clustering(
    by: Vec<String>,
    rows_per_file: Option<u64>,
    kind: &TableKind,
) -> std::result::Result<Option<crate::delta::Clustering>, String> {
    if by.is_empty() {
        return match rows_per_file {
            Some(_) => Err("`rows_per_file` needs `cluster_by`".into()),
            None => Ok(None),
        };
    }
    if !matches!(kind, TableKind::Sql(_) | TableKind::Cdc(_)) {
        return Err("`cluster_by` applies to `sql` and `cdc` tables".into());
    }
    match rows_per_file.unwrap_or(DEFAULT_ROWS_PER_FILE) {
        0 => Err("`rows_per_file` must be at least 1".into()),
        rows_per_file => Ok(Some(crate::delta::Clustering { by, rows_per_file })),
    }
}

/// A landing, SQL or ALS table from the keys that say which.
fn kind_of(
    source: Option<RawSource>,
    sql: Option<String>,
    als: Option<RawAls>,
    layer: Layer,
) -> std::result::Result<TableKind, String> {
    Ok(match (source, sql, als) {
        (Some(_), Some(_), _) => return Err("has both `source` and `sql`; give one".into()),
        (None, None, _) => return Err("needs a `source`, a `sql` query or a `cdc` block".into()),
        (Some(_), None, Some(_)) if layer == Layer::Ml => {
            return Err("`als` trains on a `sql` query, not a source".into());
        }
        (_, _, Some(_)) if layer != Layer::Ml => {
            return Err("`als` is only allowed on layer = \"ml\" tables".into());
        }
        (Some(source), None, _) => convert_source(source)?,
        (None, Some(sql), None) => TableKind::Sql(sql),
        (None, Some(sql), Some(als)) => TableKind::Als {
            sql,
            params: als.convert()?,
        },
    })
}

/// Sources accumulate batches; queries rebuild their table — as in dbt and DLT.
fn default_mode(kind: &TableKind) -> WriteMode {
    match kind {
        TableKind::Landing(_) | TableKind::Kafka(_) => WriteMode::Append,
        TableKind::Sql(_) | TableKind::Als { .. } | TableKind::Cdc(_) | TableKind::Checks(_) => {
            WriteMode::Overwrite
        }
    }
}

/// A landing-file source, or a Kafka one when the source has a `kafka` block.
fn convert_source(raw: RawSource) -> std::result::Result<TableKind, String> {
    let delimiter = match raw.delimiter.as_deref() {
        None => b',',
        Some("\\t") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => return Err(format!("delimiter `{d}` must be a single ASCII character")),
    };
    let (path, kafka) = match (raw.path, raw.kafka) {
        (Some(path), None) => (path, None),
        (None, Some(kafka)) => (String::new(), Some(kafka)),
        (Some(_), Some(_)) => return Err("a source has a `path` or a `kafka` block, not both".into()),
        (None, None) => return Err("a source needs a `path` (files) or a `kafka` block (a topic)".into()),
    };
    if let Some(kafka) = kafka {
        if raw.compression.is_some() || raw.schema_evolution.is_some() || !raw.header {
            return Err(
                "`compression`, `schema_evolution` and `header` apply to landing files, not Kafka".into(),
            );
        }
        let shape = RawValueShape {
            format: raw.format,
            schema: raw.schema,
            columns: raw.columns,
            delimiter,
        };
        return kafka.convert(shape).map(TableKind::Kafka);
    }
    let format = match raw.format.as_str() {
        "csv" => Format::Csv,
        "json" | "ndjson" => Format::Ndjson,
        "parquet" => Format::Parquet,
        other => {
            return Err(format!(
                "unknown source format `{other}` (expected csv, json, ndjson or parquet)"
            ));
        }
    };
    if !raw.header && format == Format::Csv && raw.columns.is_empty() {
        return Err("a CSV source with header = false needs `columns`".into());
    }
    let compression = match raw.compression.as_deref() {
        None => Compression::Auto,
        Some(name) => Compression::parse(name).ok_or_else(|| {
            format!("unknown compression `{name}` (expected auto, none, gzip, zstd, bzip2 or xz)")
        })?,
    };
    let schema_evolution = match raw.schema_evolution.as_deref() {
        None | Some("add_columns") => SchemaEvolution::AddColumns,
        Some("rescue") => SchemaEvolution::Rescue,
        Some("fail") => SchemaEvolution::Fail,
        Some(other) => {
            return Err(format!(
                "unknown schema_evolution `{other}` (expected add_columns, rescue or fail)"
            ));
        }
    };
    let on_unreadable = match raw.on_unreadable.as_deref() {
        None | Some("fail") => OnUnreadable::Fail,
        Some("quarantine") if format != Format::Parquet => OnUnreadable::Quarantine,
        Some("quarantine") => {
            return Err("`on_unreadable = \"quarantine\"` applies to CSV and NDJSON sources".into());
        }
        Some(other) => {
            return Err(format!(
                "unknown on_unreadable `{other}` (expected fail or quarantine)"
            ));
        }
    };
    if format == Format::Parquet && schema_evolution == SchemaEvolution::Rescue {
        return Err("`schema_evolution = \"rescue\"` applies to CSV and NDJSON sources (Parquet: add_columns or fail)".into());
    }
    if format == Format::Parquet && compression != Compression::Auto {
        return Err("`compression` applies to CSV and NDJSON sources (Parquet compresses inside)".into());
    }
    Ok(TableKind::Landing(Source {
        path,
        format,
        header: raw.header,
        delimiter,
        schema: raw.schema,
        columns: raw.columns,
        compression,
        schema_evolution,
        on_unreadable,
    }))
}

fn convert_expectation(raw: RawExpectation) -> std::result::Result<Expectation, String> {
    let action = match raw.action.as_str() {
        "warn" => Action::Warn,
        "drop" => Action::Drop,
        "fail" => Action::Fail,
        other => {
            return Err(format!(
                "expectation `{}`: unknown action `{other}` (expected warn, drop or fail)",
                raw.name
            ));
        }
    };
    if !is_identifier(&raw.name) {
        return Err(format!("expectation name `{}` must be an identifier", raw.name));
    }
    Ok(Expectation {
        name: raw.name,
        sql: raw.sql,
        action,
    })
}

fn invalid(path: &str, table: &TableSpec, message: String) -> Error {
    Error::InvalidSpec {
        path: path.into(),
        line: table.line,
        table: table.name.clone(),
        message,
    }
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!("line {}: {}", line_of(text, span.start), e.message()),
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
[pipeline]
name = "shop"

[[table]]
name = "orders_raw"
layer = "bronze"
source = { path = "orders/*.csv", format = "csv", schema = { order_id = "bigint" } }

[[table]]
name = "orders"
layer = "silver"
sql = "SELECT * FROM orders_raw"
keys = ["order_id"]
[[table.expect]]
name = "has_id"
sql = "order_id IS NOT NULL"
action = "drop"
"#;

    #[test]
    fn parses_tables_with_lines_and_defaults() {
        let p = parse_spec(SPEC, "p.toml").unwrap();
        assert_eq!(p.name, "shop");
        assert_eq!(p.tables.len(), 2);
        let raw = &p.tables[0];
        assert_eq!(
            (raw.line, raw.layer, raw.mode),
            (6, Layer::Bronze, WriteMode::Append)
        );
        let TableKind::Landing(src) = &raw.kind else {
            panic!("source expected")
        };
        assert_eq!((src.format, src.header, src.delimiter), (Format::Csv, true, b','));
        assert_eq!(src.schema["order_id"], "bigint");
        let orders = &p.tables[1];
        assert_eq!((orders.line, orders.mode), (11, WriteMode::Overwrite));
        assert_eq!(orders.expectations[0].action, Action::Drop);
    }

    fn error_of(spec: &str) -> String {
        parse_spec(spec, "p.toml").unwrap_err().to_string()
    }

    #[test]
    fn rejects_duplicate_table_with_its_line() {
        let spec = format!("{SPEC}\n[[table]]\nname = \"orders\"\nlayer = \"gold\"\nsql = \"SELECT 1\"\n");
        assert_eq!(
            error_of(&spec),
            "p.toml:21: table `orders`: declared more than once"
        );
    }

    #[test]
    fn a_checks_table_is_its_checks_alone() {
        let base = "[pipeline]\nname = \"x\"\n[[table]]\nname = \"t\"\nlayer = \"gold\"\n";
        let check = "[[table.check]]\nname = \"c\"\nsql = \"SELECT 0\"\n";
        let p = parse_spec(&format!("{base}{check}"), "p.toml").unwrap();
        assert!(matches!(&p.tables[0].kind, TableKind::Checks(c) if c.len() == 1));
        for (extra, message) in [
            ("sql = \"SELECT 1\"\n", "give no `source`, `sql`"),
            ("mode = \"append\"\n", "takes no `mode`"),
        ] {
            let e = error_of(&format!("{base}{extra}{check}"));
            assert!(
                e.starts_with("p.toml:4: table `t`:") && e.contains(message),
                "{e}"
            );
        }
        let twice = format!("{base}{check}{check}");
        assert!(error_of(&twice).contains("check `c` declared more than once"));
    }

    #[test]
    fn rejects_malformed_toml_with_line() {
        let msg = error_of("[pipeline]\nname = \"x\"\n[[table]]\nname = = 3\n");
        assert!(msg.starts_with("p.toml: line 4:"), "{msg}");
    }

    #[test]
    fn rejects_unknown_layer_format_action_and_mode() {
        let base = "[pipeline]\nname = \"x\"\n[[table]]\nname = \"t\"\n";
        let cases = [
            (
                "layer = \"platinum\"\nsql = \"SELECT 1\"",
                "unknown layer `platinum`",
            ),
            (
                "layer = \"bronze\"\nsource = { path = \"a\", format = \"xml\" }",
                "unknown source format `xml`",
            ),
            (
                "layer = \"gold\"\nsql = \"SELECT 1\"\nmode = \"merge\"",
                "unknown mode `merge`",
            ),
            (
                "layer = \"gold\"",
                "needs a `source`, a `sql` query or a `cdc` block",
            ),
            (
                "layer = \"gold\"\nsql = \"SELECT 1\"\n[[table.expect]]\nname = \"r\"\nsql = \"1=1\"\naction = \"explode\"",
                "unknown action `explode`",
            ),
            (
                "layer = \"bronze\"\nsource = { path = \"a\", format = \"csv\", header = false }",
                "needs `columns`",
            ),
            (
                "layer = \"silver\"\ncdc = { from = \"a\", keys = [\"id\"], sequence_by = \"s\", scd = 3 }",
                "cdc.scd = 3; expected 1 or 2",
            ),
            (
                "layer = \"silver\"\ncdc = { from = \"a\", keys = [], sequence_by = \"s\" }",
                "cdc.keys must name at least one column",
            ),
            (
                "layer = \"silver\"\ncdc = { from = \"a\", keys = [\"id\"], sequence_by = \"s\", track_history_columns = [\"x\"] }",
                "cdc.track_history_columns needs scd = 2",
            ),
            (
                "layer = \"silver\"\ncdc = { from = \"a\", keys = [\"id\"], sequence_by = \"s\", select = [\"id\"], sql = \"SELECT * FROM ${changes}\" }",
                "cdc.select and cdc.sql exclude each other",
            ),
            (
                "layer = \"silver\"\ncdc = { from = \"a\", keys = [\"id\"], sequence_by = \"s\", sql = \"SELECT * FROM a\" }",
                "cdc.sql must read the new changes as ${changes}",
            ),
            (
                "layer = \"silver\"\nsql = \"SELECT 1\"\ncdc = { from = \"a\", keys = [\"id\"], sequence_by = \"s\" }",
                "a `cdc` table reads its `from` table",
            ),
        ];
        for (body, expected) in cases {
            let msg = error_of(&format!("{base}{body}\n"));
            assert!(msg.starts_with("p.toml:4: table `t`:"), "{msg}");
            assert!(msg.contains(expected), "{msg} should contain {expected}");
        }
    }

    #[test]
    fn parses_clustering_and_rejects_it_where_it_cannot_apply() {
        let base = "[pipeline]\nname = \"x\"\n[[table]]\nname = \"t\"\n";
        let spec = format!("{base}layer = \"gold\"\nsql = \"SELECT 1 AS id\"\ncluster_by = [\"id\"]\n");
        let cluster = parse_spec(&spec, "p.toml").unwrap().tables[0].cluster.clone();
        assert_eq!(
            cluster,
            Some(crate::delta::Clustering {
                by: vec!["id".into()],
                rows_per_file: DEFAULT_ROWS_PER_FILE
            })
        );
        for (rest, why) in [
            (
                "layer = \"bronze\"\nsource = { path = \"a\", format = \"csv\" }\ncluster_by = [\"id\"]",
                "`cluster_by` applies to `sql` and `cdc` tables",
            ),
            (
                "layer = \"gold\"\nsql = \"SELECT 1\"\nrows_per_file = 10",
                "`rows_per_file` needs `cluster_by`",
            ),
            (
                "layer = \"gold\"\nsql = \"SELECT 1\"\ncluster_by = [\"id\"]\nrows_per_file = 0",
                "at least 1",
            ),
        ] {
            let msg = error_of(&format!("{base}{rest}\n"));
            assert!(msg.contains(why), "{rest}: {msg}");
        }
    }

    #[test]
    fn parses_settings_and_rejects_unknown_ones() {
        let base =
            "[pipeline]\nname = \"x\"\n[[table]]\nname = \"t\"\nlayer = \"gold\"\nsql = \"SELECT 1\"\n";
        let spec = format!(
            "{base}settings = {{ \"datafusion.optimizer.prefer_hash_join\" = true, \"datafusion.execution.target_partitions\" = 3 }}\n"
        );
        assert_eq!(
            parse_spec(&spec, "p.toml").unwrap().tables[0].settings,
            [
                (
                    "datafusion.execution.target_partitions".to_string(),
                    "3".to_string()
                ),
                ("datafusion.optimizer.prefer_hash_join".into(), "true".into()),
            ]
        );
        for (settings, why) in [
            (
                "{ \"datafusion.optimizer.nope\" = true }",
                "datafusion.optimizer.nope",
            ),
            (
                "{ \"datafusion.execution.target_partitions\" = \"many\" }",
                "target_partitions",
            ),
            (
                "{ \"ballista.shuffle.compression.codec\" = [1] }",
                "is not a string, number or boolean",
            ),
            ("{ \"ballista.planner.adaptive.enabled\" = true }", "is the run's"),
        ] {
            let msg = error_of(&format!("{base}settings = {settings}\n"));
            assert!(
                msg.starts_with("p.toml:4: table `t`:") && msg.contains(why),
                "{settings}: {msg}"
            );
        }
    }

    #[test]
    fn rejects_unknown_keys() {
        let msg = error_of("[pipeline]\nname = \"x\"\nfoo = 1\n");
        assert!(msg.contains("unknown field `foo`"), "{msg}");
    }

    #[test]
    fn parses_kafka_sources_and_rejects_incomplete_ones() {
        let table = |source: &str| {
            format!(
                "[pipeline]\nname = \"k\"\n[[table]]\nname = \"e\"\nlayer = \"bronze\"\nsource = {source}\n"
            )
        };
        let hubs = r#"{ kafka = { bootstrap = "ns.servicebus.windows.net:9093", topic = "clicks", security_protocol = "SASL_SSL", sasl_username = "$ConnectionString", sasl_password_env = "EH_CONN", max_records_per_run = 500 }, format = "json", columns = ["id"] }"#;
        let spec = parse_spec(&table(hubs), "k.toml").unwrap();
        let TableKind::Kafka(kafka) = &spec.tables[0].kind else {
            panic!("kafka source expected")
        };
        assert_eq!(kafka.connection.security, crate::spec::Security::SaslSsl);
        let sasl = kafka.connection.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, crate::spec::SaslMechanism::Plain);
        assert_eq!(sasl.password_env, "EH_CONN");
        assert_eq!(kafka.max_records_per_run, Some(500));
        assert_eq!(spec.tables[0].mode, WriteMode::Append);
        for (source, expected) in [
            (
                r#"{ kafka = { bootstrap = "b:9092", topic = "t" }, format = "json" }"#,
                "needs `columns` or `schema`",
            ),
            (
                r#"{ kafka = { bootstrap = "b:9092", topic = "t" }, format = "csv", schema = { id = "bigint" } }"#,
                "a Kafka CSV source needs `columns`",
            ),
            (
                r#"{ kafka = { bootstrap = "b:9092", topic = "t", sasl_username = "u" }, format = "raw" }"#,
                "SASL settings need security_protocol",
            ),
            (
                r#"{ kafka = { bootstrap = "b:9092", topic = "t", security_protocol = "sasl_ssl" }, format = "raw" }"#,
                "SASL needs `sasl_username` and `sasl_password_env`",
            ),
            (
                r#"{ path = "a/*", kafka = { bootstrap = "b:9092", topic = "t" }, format = "raw" }"#,
                "not both",
            ),
            (
                r#"{ kafka = { bootstrap = "b:9092", topic = "t" }, format = "raw", compression = "gzip" }"#,
                "apply to landing files, not Kafka",
            ),
        ] {
            let msg = error_of(&table(source));
            assert!(msg.contains(expected), "{source}: {msg}");
        }
    }
}
