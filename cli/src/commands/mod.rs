//! One file per subcommand.

pub(crate) mod bench;
pub(crate) mod client;
pub(crate) mod continuous;
pub(crate) mod executor;
pub(crate) mod generate;
pub(crate) mod plan;
pub(crate) mod query;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod scheduler;
