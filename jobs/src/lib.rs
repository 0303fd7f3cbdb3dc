//! # medallion-jobs — the pipeline library
//!
//! A pipeline is a TOML file of tables per medallion layer. This crate turns it into Ballista
//! jobs that read landing files and Delta tables and write Delta tables, in data-flow order:
//!
//! - [`spec`] parses and validates the file; [`dag`] infers dependencies from each table's SQL
//!   and selects tables like dbt (`name`, `+name`, `name+`, `layer:silver`).
//! - [`kafka`] reads a topic's new records on the executors, from the offsets the table's last
//!   commit recorded.
//! - [`landing`] discovers landing files on the driver and parses them on executors, keeping
//!   malformed lines with their reason; [`layers`] adds bronze audit columns or plans SQL.
//! - [`quality`] counts expectation failures in one job, quarantines `drop` failures and stops on
//!   `fail`.
//! - [`delta`] scans snapshots as plain Parquet, writes data files per partition on executors
//!   and commits once on the driver with a `txn` action, so re-runs write nothing twice.
//! - [`cdc`] turns keyed change streams into SCD1 rows or SCD2 histories (the SQL a change
//!   table's apply runs; not yet a table kind).
//! - [`lineage`] reads from a query's plan which input columns each output column comes from.
//! - [`report`] renders a lakehouse's runs, quality, DAG, lineage and the spec's charts as one
//!   HTML page.
//! - [`inspect`] shows a lakehouse from outside a run: tables by name for SQL, the run history.
//! - [`cluster`] holds the codecs and planner every process shares, and connects a run to an
//!   embedded or remote Ballista cluster; [`pipeline`] schedules the DAG and keeps the event log.
//!
//! ```no_run
//! # async fn demo() -> medallion_jobs::Result<()> {
//! use medallion_jobs::{cluster, dag::Selection, spec};
//! use medallion_jobs::pipeline::{PipelineRun, ResolvedRun};
//! let spec = spec::read_spec("pipelines/example/pipeline.toml")?;
//! let resolved = ResolvedRun::resolve(spec, &Selection::all())?;
//! let ctx = cluster::connect("df://localhost:50050", 2).await?;
//! let summary = PipelineRun::new(resolved).execute(&ctx).await?;
//! println!("{}", summary.render());
//! # Ok(()) }
//! ```

pub mod cdc;
pub mod cluster;
pub mod dag;
pub mod delta;
mod error;
pub mod generate;
pub mod inspect;
pub mod kafka;
pub mod landing;
pub mod layers;
pub mod lineage;
pub mod ml;
pub mod pipeline;
pub mod quality;
pub mod report;
pub mod spec;
pub mod storage;
pub mod udf;

pub use error::{Abandoned, Error, Failure, Result, error_chain};
