//! The `medallion.v1.JobService` gRPC API in front of Ballista: submit, watch, cancel and list
//! pipeline runs. Requests pass [`auth`] (bearer tokens); [`service`] plans and validates a run
//! exactly as `medallion run` would and hands it to the [`registry`], which queues it behind a
//! limit of concurrent runs and executes it on this scheduler's own cluster; [`status`] maps
//! every error to its gRPC code in one place.

mod auth;
mod history;
mod registry;
mod service;
mod status;

pub use auth::Tokens;
pub use registry::ExecutorsReady;
pub use service::JobApi;
