//! What happened to each table of a run, and the run as a whole.

use std::time::Duration;

use crate::delta::CommitOutcome;
use crate::spec::{Action, Layer};

/// Final state of one table in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStatus {
    /// Written and committed.
    Succeeded,
    /// This run had already committed the table (a re-run): nothing written.
    AlreadyCommitted,
    /// A source with no landing file that is not yet ingested.
    NoNewData,
    /// Failed; the table stays at its previous version.
    Failed,
    /// Not run because an upstream table failed.
    Skipped,
    /// One attempt that failed and was tried again (event log rows and progress only).
    Retried,
}

impl TableStatus {
    /// Name used in the event log and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Succeeded => "succeeded",
            TableStatus::AlreadyCommitted => "already_committed",
            TableStatus::NoNewData => "no_new_data",
            TableStatus::Failed => "failed",
            TableStatus::Skipped => "skipped",
            TableStatus::Retried => "retried",
        }
    }

    /// Whether downstream tables may run.
    pub fn is_ok(self) -> bool {
        !matches!(
            self,
            TableStatus::Failed | TableStatus::Skipped | TableStatus::Retried
        )
    }
}

/// One table's result.
#[derive(Debug, Clone)]
pub struct TableOutcome {
    /// Table name.
    pub table: String,
    /// Its layer.
    pub layer: Layer,
    /// What happened.
    pub status: TableStatus,
    /// Rows the table's query produced.
    pub rows_read: u64,
    /// Rows written to the table.
    pub rows_written: u64,
    /// Rows written to its quarantine table.
    pub rows_quarantined: u64,
    /// Failing rows per expectation.
    pub rule_failures: Vec<(String, Action, u64)>,
    /// Delta version after the run.
    pub version: Option<i64>,
    /// Start time, microseconds since the epoch.
    pub started_at_micros: i64,
    /// Wall time.
    pub duration: Duration,
    /// Error message for failed or skipped tables.
    pub error: Option<String>,
    /// Model metrics (ml tables): name (with `@k` for ranking metrics) and value.
    pub metrics: Vec<(String, f64)>,
    /// Attempts made (1 unless the table was retried).
    pub attempts: u32,
    /// How an incremental table was computed (`None` for other tables).
    pub refresh: Option<Refresh>,
    /// Each column and the input columns it is computed from, as the run planned it.
    pub lineage: Vec<crate::lineage::ColumnLineage>,
}

/// How an incremental table was computed in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Refresh {
    /// In full, or from its inputs' changes.
    pub kind: RefreshKind,
    /// Why in full, or which rows were recomputed.
    pub detail: String,
    /// The input versions it covered.
    pub inputs: Vec<InputVersions>,
}

/// Whether an incremental table was computed in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshKind {
    /// From every row of its inputs.
    Full,
    /// From its inputs' new rows, appended.
    Appended,
    /// The keys or groups its inputs' changes touch, recomputed.
    ByKey,
}

impl RefreshKind {
    /// Name used in the event log and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshKind::Full => "full",
            RefreshKind::Appended => "incremental_append",
            RefreshKind::ByKey => "incremental_by_key",
        }
    }
}

/// The versions of one input an incremental run covered: after `from` (`None`: from the
/// start) up to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputVersions {
    /// The input table.
    pub table: String,
    /// The version the table had recorded, if any.
    pub from: Option<i64>,
    /// The version read.
    pub to: i64,
}

impl TableOutcome {
    /// Records the table's commit: its version, and whether this attempt or an earlier one of
    /// the run made it.
    pub(crate) fn committed(&mut self, commit: CommitOutcome) -> TableStatus {
        self.version = Some(commit.version());
        match commit {
            CommitOutcome::Committed { .. } => TableStatus::Succeeded,
            CommitOutcome::AlreadyCommitted { .. } => TableStatus::AlreadyCommitted,
        }
    }

    /// A table that has not run yet: failed until told otherwise, started now.
    pub fn new(table: &str, layer: Layer) -> Self {
        Self {
            table: table.to_string(),
            layer,
            status: TableStatus::Failed,
            rows_read: 0,
            rows_written: 0,
            rows_quarantined: 0,
            rule_failures: vec![],
            version: None,
            started_at_micros: chrono::Utc::now().timestamp_micros(),
            duration: Duration::ZERO,
            error: None,
            metrics: vec![],
            attempts: 1,
            refresh: None,
            lineage: vec![],
        }
    }
}

/// Progress events while a run executes.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A table's work started.
    TableStarted {
        /// Table name.
        table: String,
        /// Its layer.
        layer: Layer,
    },
    /// A table finished (in any status).
    TableFinished(TableOutcome),
    /// An attempt at a table failed and the table will be tried again.
    TableRetrying {
        /// The failed attempt, with its cause in `error` and its wall time.
        attempt: TableOutcome,
        /// Seconds until the next attempt starts.
        backoff: Duration,
    },
}

/// The result of a whole run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id (`run-<sequence>`).
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Tables in the order they finished.
    pub tables: Vec<TableOutcome>,
    /// Wall time of the run.
    pub duration: Duration,
}

impl RunSummary {
    /// True when no table failed or was skipped.
    pub fn succeeded(&self) -> bool {
        self.tables.iter().all(|t| t.status.is_ok())
    }

    /// A fixed-width table for terminals.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<8} {:<28} {:<18} {:>10} {:>10} {:>11} {:>8} {:>9}\n",
            "layer", "table", "status", "read", "written", "quarantined", "version", "seconds"
        );
        for t in &self.tables {
            out += &format!(
                "{:<8} {:<28} {:<18} {:>10} {:>10} {:>11} {:>8} {:>9.2}\n",
                t.layer.as_str(),
                t.table,
                t.status.as_str(),
                t.rows_read,
                t.rows_written,
                t.rows_quarantined,
                t.version.map_or("-".to_string(), |v| v.to_string()),
                t.duration.as_secs_f64()
            );
            for (rule, action, n) in t.rule_failures.iter().filter(|(_, _, n)| *n > 0) {
                out += &format!(
                    "{:<8}   expectation {rule} ({}): {n} failing row(s)\n",
                    "",
                    action.as_str()
                );
            }
            if !t.metrics.is_empty() {
                let shown: Vec<String> = t
                    .metrics
                    .iter()
                    .filter(|(name, _)| !name.starts_with("seconds"))
                    .map(|(name, v)| format!("{name}={}", short(*v)))
                    .collect();
                out += &format!("{:<8}   metrics: {}\n", "", shown.join(" "));
            }
            if let Some(refresh) = &t.refresh {
                out += &format!("{:<8}   {}\n", "", refresh.render());
            }
            if let Some(e) = &t.error {
                out += &format!("{:<8}   error: {e}\n", "");
            }
        }
        let verdict = if self.succeeded() { "succeeded" } else { "FAILED" };
        out += &format!(
            "run {} of {} {verdict} in {:.2}s\n",
            self.run_id,
            self.pipeline,
            self.duration.as_secs_f64()
        );
        out
    }
}

impl Refresh {
    /// `full: <why>` or `incremental_append: <what> (orders 3→5, …)`.
    pub fn render(&self) -> String {
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|i| match i.from {
                Some(from) => format!("{} {from}→{}", i.table, i.to),
                None => format!("{} →{}", i.table, i.to),
            })
            .collect();
        let mut line = format!("{}: {}", self.kind.as_str(), self.detail);
        if !inputs.is_empty() {
            line += &format!(" ({})", inputs.join(", "));
        }
        line
    }
}

/// A metric with four significant decimals, counts as integers.
fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}
