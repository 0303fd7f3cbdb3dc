//! # medallion-proto
//!
//! The `medallion.v1` gRPC API, generated at build time from `proto/medallion/v1/*.proto`
//! (nothing generated is checked in). Re-exports the tonic and prost versions it was built with.

pub use prost;
pub use tonic;

/// `medallion.v1`: the job service, its messages, client and server.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("medallion.v1");
}

/// The encoded file descriptor set, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/medallion_v1_descriptor.bin"));
