//! Errors of the `medallion` command.

/// Result with the CLI's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading, planning or running a pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] medallion_jobs::Error),
    /// The scheduler process failed.
    #[error(transparent)]
    Scheduler(#[from] medallion_scheduler::Error),
    /// The executor process failed.
    #[error(transparent)]
    Executor(#[from] medallion_executor::Error),
    /// A flag has a value that cannot be used.
    #[error("--{flag}: {message}")]
    BadFlag {
        /// Flag name.
        flag: &'static str,
        /// Why.
        message: String,
    },
    /// The in-process scheduler or executor did not come up.
    #[error("embedded cluster: {what} did not start listening on 127.0.0.1:{port} within {seconds}s")]
    EmbeddedStart {
        /// `scheduler` or `executor`.
        what: &'static str,
        /// Port it should listen on.
        port: u16,
        /// How long we waited.
        seconds: u64,
    },
    /// The job service could not be reached.
    #[error("cannot reach the job service at {url}")]
    Connect {
        /// The URL given.
        url: String,
        /// tonic's error.
        #[source]
        source: medallion_proto::tonic::transport::Error,
    },
    /// The job service refused or failed a call.
    #[error("{:?}: {}", .status.code(), .status.message())]
    Api {
        /// The status it returned.
        status: medallion_proto::tonic::Status,
    },
    /// A `query` (or the `history` query) failed to plan, run or print.
    #[error("query failed: {source}")]
    Query {
        /// DataFusion's error (unknown table or column, a type error, …).
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// A benchmark could not measure what it measures (its probe never arrived, its broker
    /// refused a record).
    #[error("benchmark: {message}")]
    Bench {
        /// What went wrong.
        message: String,
    },
    /// Writing generated data or a report, or reading benchmark files, failed.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}
