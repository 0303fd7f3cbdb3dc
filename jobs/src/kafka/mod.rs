//! Kafka topics → rows: offsets planned on the driver, records fetched and parsed on the
//! executors.
//!
//! - [`offsets`] decides each run's offset ranges from the table's last commit and the
//!   broker's ends; the next offsets are recorded in the same Delta commit as the rows.
//! - [`KafkaTable`] ships the ranges as a table (one scan task per group of ranges);
//!   [`KafkaScanExec`] fetches each range from its partition's leader.
//! - Record values are parsed as JSON, CSV or raw text by the landing parsers, so a malformed
//!   record becomes a corrupt row (quarantined by the bronze table with topic, partition and
//!   offset in its reason) and JSON keys outside the columns go to `_rescued_data`.
//! - [`connect`] speaks plain TCP, TLS and SASL (PLAIN for Azure Event Hubs, SCRAM) through
//!   `rskafka`, a pure-Rust client: nothing to build beyond the registry's crates.
//! - [`Publisher`] feeds a topic (the generator's `--to kafka://…`, the tests).

mod connect;
mod exec;
pub mod offsets;
mod publish;
mod records;
mod table;

pub use connect::connect;
pub use exec::KafkaScanExec;
pub use publish::Publisher;
pub use records::{
    KAFKA_COLUMNS, KAFKA_KEY, KAFKA_OFFSET, KAFKA_PARTITION, KAFKA_TIMESTAMP, KAFKA_TOPIC, KafkaScanOptions,
};
pub use table::{KafkaTable, group_ranges};
