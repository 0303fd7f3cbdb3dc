//! `[[chart]]`: a chart of the HTML report — a query over the lakehouse, drawn as a line or bar
//! chart of `y` columns against `x`, or as a table.

use serde::Deserialize;

use crate::error::{Error, Result};

/// How a chart is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// One line per `y` column over `x` (dates, times or numbers).
    Line,
    /// One bar per row and `y` column, labelled by `x`.
    Bar,
    /// The rows as a table.
    Table,
}

impl ChartKind {
    /// Lower-case name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Line => "line",
            ChartKind::Bar => "bar",
            ChartKind::Table => "table",
        }
    }
}

/// One chart of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// Its heading.
    pub title: String,
    /// The report section it is shown in.
    pub section: String,
    /// How it is drawn.
    pub kind: ChartKind,
    /// The query (tables by name, as `medallion query` has them).
    pub sql: String,
    /// The column along the horizontal axis (or the bars' labels); empty for a table.
    pub x: String,
    /// The columns drawn; empty for a table.
    pub y: Vec<String>,
    /// 1-based line of its title in the spec.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChart {
    pub(super) title: toml::Spanned<String>,
    section: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    sql: String,
    #[serde(default)]
    x: String,
    #[serde(default)]
    y: Vec<String>,
}

impl RawChart {
    /// The chart, checked; `line` is where its title is.
    pub(super) fn convert(self, line: usize, path: &str) -> Result<ChartSpec> {
        let title = self.title.into_inner();
        let err = |message: String| Error::ParseSpec {
            path: path.into(),
            message: format!("line {line}: chart `{title}`: {message}"),
        };
        let kind = match self.kind.as_str() {
            "line" => ChartKind::Line,
            "bar" => ChartKind::Bar,
            "table" => ChartKind::Table,
            other => {
                return Err(err(format!(
                    "unknown type `{other}` (expected line, bar or table)"
                )));
            }
        };
        if kind != ChartKind::Table && (self.x.is_empty() || self.y.is_empty()) {
            return Err(err(format!("a {} chart needs `x` and `y`", kind.as_str())));
        }
        Ok(ChartSpec {
            section: self.section.unwrap_or_else(|| "Dashboards".into()),
            title,
            kind,
            sql: self.sql,
            x: self.x,
            y: self.y,
            line,
        })
    }
}
