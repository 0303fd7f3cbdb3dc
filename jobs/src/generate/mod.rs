//! Deterministic landing-data generators with realistic dirt.

mod example;
mod rng;

pub use example::{ExampleData, GeneratedFiles};
pub use rng::Rng;
