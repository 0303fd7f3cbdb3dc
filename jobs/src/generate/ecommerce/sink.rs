//! Where generated text goes: one object per (source, batch, part), each with its own RNG.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{Error, Result};
use crate::generate::rng::Rng;
use crate::kafka::Publisher;

/// Lines written for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Source name (folder).
    pub source: &'static str,
    /// Files written.
    pub files: u64,
    /// Lines written, dirt included, headers excluded.
    pub lines: u64,
}

/// The sources `--to kafka://…` publishes to topics of their name instead of writing files.
pub const STREAMED_SOURCES: [&str; 2] = ["clickstream", "payments"];

pub(crate) struct Sink {
    store: Arc<dyn ObjectStore>,
    /// Where streamed sources go, when they go to a broker.
    publisher: Option<tokio::sync::Mutex<Publisher>>,
    root: Path,
    out: Url,
    seed: u64,
    pub(crate) batch: u64,
}

impl Sink {
    pub(crate) fn new(out: &Url, seed: u64, batch: u64, publisher: Option<Publisher>) -> Result<Self> {
        let (store, root) = crate::storage::store_for(out)?;
        Ok(Self {
            store,
            publisher: publisher.map(tokio::sync::Mutex::new),
            root,
            out: out.clone(),
            seed,
            batch,
        })
    }

    /// A generator for one (source, part) of this batch.
    pub(crate) fn rng(&self, source: &str, part: u64) -> Rng {
        let mut h = self.seed ^ self.batch.wrapping_mul(0x9E37_79B9) ^ part.wrapping_mul(0xC2B2_AE35);
        for b in source.bytes() {
            h = h.rotate_left(5) ^ u64::from(b);
        }
        Rng::new(h)
    }

    /// A generator for one record of a source, whatever batch or part writes it: the same
    /// values each time the record is written again (e.g. an order's status change).
    pub(crate) fn rng_of(&self, source: &str, id: u64) -> Rng {
        let mut h = self.seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        for b in source.bytes() {
            h = h.rotate_left(7) ^ u64::from(b);
        }
        Rng::new(h)
    }

    /// Stores `text` as `<source>/batch_<b>/part-<p>.<ext>`.
    pub(crate) async fn put(
        &self,
        source: &'static str,
        ext: &str,
        part: u64,
        text: Lines,
    ) -> Result<Written> {
        if let Some(publisher) = self
            .publisher
            .as_ref()
            .filter(|_| STREAMED_SOURCES.contains(&source))
        {
            let values = text
                .text
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| l.as_bytes().to_vec())
                .collect();
            let published = publisher
                .lock()
                .await
                .publish(source, values)
                .await
                .map_err(|message| Error::Kafka {
                    table: format!("(generator) {source}"),
                    topic: source.to_string(),
                    message,
                })?;
            return Ok(Written {
                source,
                files: 0,
                lines: published,
            });
        }
        let rel = format!("{source}/batch_{}/part-{part}.{ext}", self.batch);
        let path = rel.split('/').fold(self.root.clone(), |p, s| p.join(s));
        let url = format!("{}/{rel}", self.out.as_str().trim_end_matches('/'));
        self.store
            .put(&path, text.text.into_bytes().into())
            .await
            .map_err(|source| Error::ObjectStore {
                url,
                source: Box::new(source),
            })?;
        Ok(Written {
            source,
            files: 1,
            lines: text.lines,
        })
    }
}

/// Text being built, with its line count.
#[derive(Default)]
pub(crate) struct Lines {
    pub(crate) text: String,
    pub(crate) lines: u64,
}

impl Lines {
    pub(crate) fn header(header: &str) -> Self {
        Self {
            text: format!("{header}\n"),
            lines: 0,
        }
    }

    pub(crate) fn push(&mut self, line: std::fmt::Arguments<'_>) {
        let _ = self.text.write_fmt(line);
        self.text.push('\n');
        self.lines += 1;
    }
}

/// Start of the initial load; later batches are in January 2025.
pub(crate) fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid date")
}

/// A moment in batch `batch`: batch 0 spans 2024, batch b ≥ 1 is day b of 2025.
pub(crate) fn moment(rng: &mut Rng, batch: u64) -> NaiveDateTime {
    let (start_day, days) = if batch == 0 {
        (0, 366)
    } else {
        (365 + batch as i64, 1)
    };
    epoch() + Duration::days(start_day + rng.below(days) as i64) + Duration::seconds(rng.below(86_400) as i64)
}

/// Timestamps as exports write them: mostly `YYYY-MM-DD HH:MM:SS`, some ISO 8601 with `Z`,
/// and very rarely something unparseable.
pub(crate) fn ts_text(rng: &mut Rng, t: NaiveDateTime) -> String {
    match rng.below(1000) {
        0 => t.format("%d/%m/%Y %Hh%M").to_string(),
        1..=30 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => t.format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

/// Ids as exports write them: sometimes as floats ("1050.0"), very rarely as a fraction.
pub(crate) fn id_text(rng: &mut Rng, id: u64) -> String {
    match rng.below(1000) {
        0 => format!("{id}.5"),
        1..=20 => format!("{id}.0"),
        _ => id.to_string(),
    }
}

/// Enum values as humans type them: padded, upper-case or capitalised now and then.
pub(crate) fn enum_text(rng: &mut Rng, value: &str) -> String {
    match rng.below(20) {
        0 => format!("  {}", value.to_uppercase()),
        1 => format!("{}{} ", value[..1].to_uppercase(), &value[1..]),
        _ => value.to_string(),
    }
}
