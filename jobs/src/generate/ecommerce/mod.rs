//! Landing data for the e-commerce pipeline (`pipelines/ecommerce`): eight sources at a scale
//! factor, with the dirt real exports carry — exact duplicates, late and out-of-order updates,
//! null keys, ids rendered as floats, padded mixed-case enums, legacy event names, bad
//! timestamps and malformed lines.
//!
//! Layout: `<out>/<source>/batch_<b>/part-<p>.<ext>`. Batch 0 is the initial load (2024);
//! later batches add new records and update existing ones (January 2025), some of them older
//! than what an earlier batch delivered. Every part has its own seeded generator, so the bytes
//! depend only on (seed, scale, batch), not on how many threads write them.

mod catalog;
mod customers;
mod events;
mod orders;
mod sink;

use url::Url;

pub use sink::{STREAMED_SOURCES, Written};

use crate::error::{Error, Result};
use crate::kafka::Publisher;
use crate::spec::KafkaConnection;
use sink::Sink;

/// Row counts at scale factor 1 (the seeds' scale).
const SF1_CUSTOMERS: f64 = 100_000.0;
const SF1_PRODUCTS: f64 = 10_000.0;
const SF1_ORDERS: f64 = 2_000_000.0;
const SF1_RATINGS: f64 = 1_000_000.0;
const SF1_SESSIONS: f64 = 1_000_000.0;

/// Parts per source and batch.
const PARTS: u64 = 4;

/// Sizes derived from a scale factor: of the history (batch 0, and the ids later batches
/// refer to) and of what each later batch adds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) customers: u64,
    pub(crate) products: u64,
    pub(crate) orders: u64,
    pub(crate) ratings: u64,
    pub(crate) sessions: u64,
    pub(crate) per_batch: PerBatch,
}

/// What a later batch adds: new orders (and as many status changes), new customers (and as
/// many moves), products re-sent with a new price, sessions and ratings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PerBatch {
    pub(crate) orders: u64,
    pub(crate) customers: u64,
    pub(crate) products: u64,
    pub(crate) sessions: u64,
    pub(crate) ratings: u64,
}

impl Scale {
    fn new(sf: f64, batch_sf: f64) -> Self {
        let n = |base: f64, sf: f64, min: u64| ((base * sf).round() as u64).max(min);
        let history = |base, min| n(base, sf, min);
        let batch = |base, min| n(base, batch_sf, min);
        Self {
            customers: history(SF1_CUSTOMERS, 20),
            products: history(SF1_PRODUCTS, 10),
            orders: history(SF1_ORDERS, 50),
            ratings: history(SF1_RATINGS, 50),
            sessions: history(SF1_SESSIONS, 50),
            per_batch: PerBatch {
                orders: batch(SF1_ORDERS / 100.0, 1),
                customers: batch(SF1_CUSTOMERS / 50.0, 1),
                products: batch(SF1_PRODUCTS / 50.0, 0) + 1,
                sessions: batch(SF1_SESSIONS / 100.0, 1),
                ratings: batch(SF1_RATINGS / 100.0, 1),
            },
        }
    }
}

/// Builder for e-commerce landing data.
#[derive(Debug, Clone)]
#[must_use]
pub struct EcommerceData {
    out: Url,
    scale_factor: f64,
    batch_scale_factor: Option<f64>,
    seed: u64,
    batch: u64,
    kafka: Option<KafkaConnection>,
}

impl EcommerceData {
    /// Data at scale factor `sf` (1.0 = 100K customers, 2M orders, 5M clickstream events).
    pub fn new(out: Url, sf: f64) -> Self {
        Self {
            out,
            scale_factor: sf,
            batch_scale_factor: None,
            seed: 42,
            batch: 0,
            kafka: None,
        }
    }

    /// Seed of every generator.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Which batch to write: 0 is the initial load, later ones add and update records.
    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch;
        self
    }

    /// Sizes later batches as a history at scale factor `sf` would have them (by default as
    /// the history's own): the same batch on histories of different sizes.
    pub fn with_batch_scale(mut self, sf: f64) -> Self {
        self.batch_scale_factor = Some(sf);
        self
    }

    /// Publishes clickstream and payments ([`STREAMED_SOURCES`]) to topics of their name on
    /// this cluster (created with 3 partitions if missing) instead of writing their files.
    pub fn with_kafka(mut self, connection: KafkaConnection) -> Self {
        self.kafka = Some(connection);
        self
    }

    /// Writes the batch's files for all eight sources (or publishes the streamed ones).
    pub async fn write(self) -> Result<Vec<Written>> {
        let batch_sf = self.batch_scale_factor.unwrap_or(self.scale_factor);
        let scale = Scale::new(self.scale_factor, batch_sf);
        let publisher = match &self.kafka {
            None => None,
            Some(connection) => {
                Some(
                    Publisher::connect(connection, 3)
                        .await
                        .map_err(|message| Error::Kafka {
                            table: "(generator)".into(),
                            topic: STREAMED_SOURCES.join(", "),
                            message,
                        })?,
                )
            }
        };
        let sink = Sink::new(&self.out, self.seed, self.batch, publisher)?;
        let mut written = Vec::new();
        for part in 0..PARTS {
            written.extend(orders::write_part(&sink, scale, part, PARTS).await?);
            written.extend(customers::write_part(&sink, scale, part, PARTS).await?);
            written.extend(catalog::write_part(&sink, scale, part, PARTS).await?);
            written.extend(events::write_part(&sink, scale, part, PARTS).await?);
        }
        Ok(merge(written))
    }
}

/// Sums the per-part counts into one line per source.
fn merge(parts: Vec<Written>) -> Vec<Written> {
    let mut out: Vec<Written> = Vec::new();
    for w in parts {
        match out.iter_mut().find(|o| o.source == w.source) {
            Some(o) => {
                o.files += w.files;
                o.lines += w.lines;
            }
            None => out.push(w),
        }
    }
    out
}

/// The `part`-th of `parts` slices of `0..n`.
pub(crate) fn slice(n: u64, part: u64, parts: u64) -> std::ops::Range<u64> {
    let per = n.div_ceil(parts);
    (part * per).min(n)..((part + 1) * per).min(n)
}
