//! Deterministic landing-data generators with realistic dirt.

mod changes;
mod ecommerce;
mod example;
mod ratings;
mod rng;

pub use changes::ChangesData;
pub use ecommerce::{EcommerceData, Written};
pub use example::{ExampleData, GeneratedFiles};
pub use ratings::RatingsData;
pub use rng::Rng;
