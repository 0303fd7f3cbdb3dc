//! End-to-end tests: real `medallion` processes, real Delta tables, an independent reader.

mod als;
// Needs the scheduler built with the autoscaler (`make test` builds with `--features medallion-cli/kube`).
#[cfg(feature = "kube")]
mod autoscale;
mod azure;
mod bad_input;
mod cdc;
mod chaos;
mod checks;
mod ecommerce;
mod incremental;
mod ingest;
mod inspect;
mod jobs_api;
mod kafka;
mod pipeline_e2e;
mod plan;
mod report;
mod s3;
mod support;
