//! The one error type of the jobs crate.

use datafusion::error::DataFusionError;
use deltalake::DeltaTableError;

/// Result with the jobs crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, planning or running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec file could not be read.
    #[error("failed to read pipeline spec {path}")]
    ReadSpec {
        /// Path of the spec file.
        path: String,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spec is not valid TOML or does not have the expected shape.
    #[error("{path}: {message}")]
    ParseSpec {
        /// Path of the spec file.
        path: String,
        /// What is wrong and where (line, column).
        message: String,
    },
    /// The spec parsed but is inconsistent (unknown table, cycle, duplicate, bad option).
    #[error("{path}:{line}: table `{table}`: {message}")]
    InvalidSpec {
        /// Path of the spec file.
        path: String,
        /// 1-based line where the table is declared.
        line: usize,
        /// The table the problem is in.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// Tables of a run do not plan over their inputs' schemas: nothing was started.
    #[error("{} table(s) do not plan; nothing was run:\n{}", .errors.len(), .errors.join("\n"))]
    DoesNotPlan {
        /// One line per table, `file:line: table `x`: …`.
        errors: Vec<String>,
    },
    /// A selection (`--select`, `--layer`) matched nothing or named an unknown table.
    #[error("selection `{selector}`: {message}")]
    Select {
        /// The selector as given.
        selector: String,
        /// What is wrong.
        message: String,
    },
    /// A URL in the spec or on the command line could not be parsed or resolved.
    #[error("invalid URL `{url}`: {message}")]
    Url {
        /// The offending text.
        url: String,
        /// Why it was rejected.
        message: String,
    },
    /// A landing source matched no files.
    #[error("table `{table}`: source `{source_url}` matched no files")]
    NoSourceFiles {
        /// Table whose source is empty.
        table: String,
        /// The source URL or glob.
        source_url: String,
    },
    /// A landing file was read but its bytes cannot be (a broken compressed stream).
    #[error("cannot read landing file `{url}`: {message}")]
    LandingFile {
        /// The file.
        url: String,
        /// Why.
        message: String,
    },
    /// A landing file has a column its table does not, and the source says to fail.
    #[error(
        "table `{table}`: landing file `{url}` has column `{column}`, which the table does not have (schema_evolution = \"fail\"; \"add_columns\" would add it)"
    )]
    NewColumn {
        /// The bronze table.
        table: String,
        /// The file.
        url: String,
        /// The column.
        column: String,
    },
    /// A Kafka broker could not be reached, or refused a request.
    #[error("table `{table}`: Kafka topic `{topic}`: {message}")]
    Kafka {
        /// The bronze table.
        table: String,
        /// The topic.
        topic: String,
        /// What failed, with the client's error.
        message: String,
    },
    /// The offset a table reached is no longer held by the broker: records were lost to
    /// retention before they were read.
    #[error(
        "table `{table}`: Kafka topic `{topic}` partition {partition}: the table read up to offset {committed} but the broker's earliest is {earliest}; {lost} record(s) were deleted before they were read (fail_on_data_loss = false reads on from {earliest})"
    )]
    KafkaDataLoss {
        /// The bronze table.
        table: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The next offset the table would read.
        committed: i64,
        /// The broker's earliest offset.
        earliest: i64,
        /// Records lost.
        lost: i64,
    },
    /// The offset a table reached is past the partition's end: the topic was recreated.
    #[error(
        "table `{table}`: Kafka topic `{topic}` partition {partition}: the table read up to offset {committed} but the partition ends at {latest} (was the topic recreated? --full-refresh reads it again)"
    )]
    KafkaAhead {
        /// The bronze table.
        table: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The next offset the table would read.
        committed: i64,
        /// The partition's end.
        latest: i64,
    },
    /// Listing or reading landing files failed.
    #[error("failed to list or read {url}")]
    ObjectStore {
        /// The URL being read.
        url: String,
        /// Underlying object store error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// Planning or running a query on the cluster failed.
    #[error("table `{table}`: {step} failed")]
    Query {
        /// Table being built.
        table: String,
        /// The step (plan, count, write, quarantine...).
        step: &'static str,
        /// Underlying DataFusion/Ballista error.
        #[source]
        source: Box<DataFusionError>,
    },
    /// Opening, reading or committing a Delta table failed.
    #[error("Delta table {url}: {step} failed")]
    Delta {
        /// Table URL.
        url: String,
        /// The step (open, commit, create...).
        step: &'static str,
        /// Underlying deltalake error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// The event log's writer task ended before the run did (it panicked): an outcome could not
    /// be queued.
    #[error("event log {url}: its writer stopped; the outcome is not recorded")]
    EventLogWriterStopped {
        /// The event log's URL.
        url: String,
    },
    /// Appended rows do not have the table's schema.
    #[error(
        "Delta table {url}: new rows have schema [{found}] but the table has [{expected}]; use --full-refresh or mode = \"overwrite\" to replace it"
    )]
    SchemaMismatch {
        /// Table URL.
        url: String,
        /// The table's columns.
        expected: String,
        /// The new rows' columns.
        found: String,
    },
    /// The rows written and quarantined do not add up to the rows the query produced.
    #[error(
        "table `{table}`: {read} row(s) read but {written} written and {quarantined} quarantined; nothing committed"
    )]
    RowsUnaccounted {
        /// The table.
        table: String,
        /// Rows the query produced.
        read: u64,
        /// Rows in the table's new files.
        written: u64,
        /// Rows in the quarantine's new files.
        quarantined: u64,
    },
    /// A `fail` expectation had failing rows: the table was not written.
    #[error(
        "table `{table}`: expectation `{rule}` failed for {rows} row(s); table left at its previous version"
    )]
    ExpectationFailed {
        /// Table whose expectation failed.
        table: String,
        /// Expectation name.
        rule: String,
        /// Number of failing rows.
        rows: u64,
    },
    /// An ALS table's query left no valid rating to train on.
    #[error(
        "table `{table}`: no valid ratings to train on ({quarantined} row(s) quarantined; see `{table}__quarantine`)"
    )]
    NoTrainingData {
        /// The table.
        table: String,
        /// Rows quarantined.
        quarantined: u64,
    },
    /// An upstream table failed, so this one was not run.
    #[error("table `{table}` skipped: upstream `{upstream}` failed")]
    UpstreamFailed {
        /// The skipped table.
        table: String,
        /// The failed upstream table.
        upstream: String,
    },
    /// A table's upstream table finished but has never committed a version to read.
    #[error("table `{table}`: upstream table `{upstream}` has no data yet (it has never been committed)")]
    UpstreamEmpty {
        /// The table that could not run.
        table: String,
        /// The upstream table without a version.
        upstream: String,
    },
    /// An attempt at a table was given up by the run's watch.
    #[error("table `{table}`: attempt {attempt} {cause}")]
    AttemptAbandoned {
        /// The table.
        table: String,
        /// 1-based attempt.
        attempt: u32,
        /// Why it was given up.
        cause: Abandoned,
    },
    /// The run was cancelled before the table started.
    #[error("not run: the run was cancelled")]
    RunCancelled,
    /// Every attempt at a table failed.
    #[error("table `{table}` failed after {attempts} attempt(s); last: {last}")]
    AttemptsExhausted {
        /// The table.
        table: String,
        /// Attempts made.
        attempts: u32,
        /// What went wrong in the last one.
        last: String,
    },
    /// Starting or connecting to the Ballista cluster failed.
    #[error("failed to connect to cluster {target}")]
    Cluster {
        /// `embedded` or the scheduler URL.
        target: String,
        /// Underlying error.
        #[source]
        source: Box<DataFusionError>,
    },
}

/// Why the run's watch gave an attempt up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Abandoned {
    /// No Ballista stage finished for too long: an executor was lost and the job is stuck, or
    /// no executor is left to take its tasks.
    #[error(
        "made no progress for {seconds}s ({jobs} Ballista job(s), {stages_done} stage(s) of the running job(s) done{}); cancelled on the cluster",
        if *queued { ", the last job still queued: no executor took its tasks" } else { "" }
    )]
    Stalled {
        /// Seconds without progress.
        seconds: u64,
        /// Jobs the attempt submitted.
        jobs: usize,
        /// Stages finished in its running jobs.
        stages_done: usize,
        /// The last job never left the queue.
        queued: bool,
    },
    /// The attempt ran longer than the table's `timeout_seconds`.
    #[error("ran longer than its {seconds}s timeout; cancelled on the cluster")]
    TimedOut {
        /// The limit.
        seconds: u64,
    },
    /// The run was cancelled (Ctrl-C, `medallion cancel`).
    #[error("was cancelled with the run; its Ballista jobs were cancelled")]
    Cancelled,
}

/// Why an attempt at a table failed, as far as retrying it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The spec, the data or an expectation: another attempt fails the same way.
    Permanent,
    /// The cluster or the store misbehaved: worth another attempt.
    Transient,
    /// An executor was lost under the attempt's jobs. As in Spark, this is not held against
    /// the table's `retries`.
    ExecutorLost,
}

impl Error {
    /// How this error counts for retries. An executor loss shows as a Ballista job failed with
    /// `Cancelled` (the scheduler fails the jobs running when an executor leaves; the run
    /// driver's own cancellations never reach here) or as a refused connection to an executor
    /// while fetching a finished job's results.
    pub fn failure(&self) -> Failure {
        if !self.is_transient() {
            return Failure::Permanent;
        }
        let text = error_chain(self);
        let lost = ["failed: Cancelled", "GrpcConnectionError", "Connection refused"];
        if lost.iter().any(|marker| text.contains(marker)) {
            Failure::ExecutorLost
        } else {
            Failure::Transient
        }
    }

    /// Whether another attempt could succeed: failures of the cluster, the store or a job, as
    /// opposed to the spec, the data or the expectations, which fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::ObjectStore { .. }
            | Error::Query { .. }
            | Error::Delta { .. }
            | Error::RowsUnaccounted { .. }
            | Error::Kafka { .. }
            | Error::Cluster { .. } => true,
            Error::AttemptAbandoned { cause, .. } => *cause != Abandoned::Cancelled,
            Error::ReadSpec { .. }
            | Error::ParseSpec { .. }
            | Error::InvalidSpec { .. }
            | Error::DoesNotPlan { .. }
            | Error::Select { .. }
            | Error::Url { .. }
            | Error::NoSourceFiles { .. }
            | Error::LandingFile { .. }
            | Error::NewColumn { .. }
            | Error::KafkaDataLoss { .. }
            | Error::KafkaAhead { .. }
            | Error::SchemaMismatch { .. }
            | Error::ExpectationFailed { .. }
            | Error::NoTrainingData { .. }
            | Error::UpstreamFailed { .. }
            | Error::EventLogWriterStopped { .. }
            | Error::UpstreamEmpty { .. }
            | Error::RunCancelled
            | Error::AttemptsExhausted { .. } => false,
        }
    }
}

/// The error and its causes on one line, each cause once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text += &format!(": {s_text}");
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(message: &str) -> Error {
        Error::Query {
            table: "t".into(),
            step: "write",
            source: Box::new(DataFusionError::Execution(message.into())),
        }
    }

    #[test]
    fn executor_losses_are_told_apart_from_other_failures() {
        assert_eq!(
            query("Job 038HM failed: Cancelled").failure(),
            Failure::ExecutorLost
        );
        assert_eq!(
            query("GrpcConnectionError(\"Error connecting to … executor\")").failure(),
            Failure::ExecutorLost
        );
        assert_eq!(query("Resources exhausted").failure(), Failure::Transient);
        let expectation = Error::ExpectationFailed {
            table: "t".into(),
            rule: "r".into(),
            rows: 1,
        };
        assert_eq!(expectation.failure(), Failure::Permanent);
    }
}
