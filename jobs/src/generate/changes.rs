//! Keyed changes for `pipelines/changes` (the CDC benchmark): `accounts/batch_<b>/part-<p>.csv`
//! with `id, name, city, balance, updated_at, op`.
//!
//! Batch 0 inserts every key once. A later batch updates a fraction of the keys, drawn at
//! random (the worst case for a rewrite that skips files without touched keys), with a later
//! `updated_at`; one update in a hundred is a delete (`op = D`) instead.

use std::fmt::Write as _;

use url::Url;

use super::rng::Rng;
use crate::error::Result;

const CITIES: [&str; 8] = [
    "Lisbon", "Porto", "Madrid", "Paris", "Lyon", "Berlin", "Vienna", "Oslo",
];

/// Builder for generated account changes.
#[derive(Debug, Clone)]
#[must_use]
pub struct ChangesData {
    out: Url,
    keys: u64,
    batch: u64,
    update_fraction: f64,
    files: u64,
    seed: u64,
}

impl ChangesData {
    /// Changes to `keys` accounts under `out`: batch 0, 8 files.
    pub fn new(out: Url, keys: u64) -> Self {
        Self {
            out,
            keys: keys.max(1),
            batch: 0,
            update_fraction: 0.01,
            files: 8,
            seed: 42,
        }
    }

    /// Batch 0 inserts every key; batch `b` ≥ 1 updates a fraction of them.
    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch;
        self
    }

    /// The fraction of keys a later batch changes.
    pub fn with_update_fraction(mut self, fraction: f64) -> Self {
        self.update_fraction = fraction.clamp(0.0, 1.0);
        self
    }

    /// Seed of the generator.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Writes the batch's files; returns the number of lines written.
    pub async fn write(self) -> Result<u64> {
        let (store, root) = crate::storage::store_for(&self.out)?;
        let mut lines = 0;
        for part in 0..self.files {
            let (text, n) = self.file(part);
            let rel = format!("accounts/batch_{}/part-{part}.csv", self.batch);
            super::put_text(&*store, (&self.out, &root), &rel, text).await?;
            lines += n;
        }
        Ok(lines)
    }

    /// One file of the batch: a slice of the keys (batch 0) or of the updates.
    fn file(&self, part: u64) -> (String, u64) {
        let mut rng = Rng::new(self.seed ^ self.batch.wrapping_mul(1_000_003) ^ part.wrapping_mul(7919));
        let mut text = String::from("id,name,city,balance,updated_at,op\n");
        let changes = match self.batch {
            0 => self.keys,
            _ => ((self.keys as f64 * self.update_fraction).round() as u64).max(1),
        };
        let mut lines = 0;
        for i in (part..changes).step_by(self.files as usize) {
            let id = match self.batch {
                0 => i,
                _ => rng.below(self.keys),
            };
            let op = if self.batch > 0 && rng.chance(0.01) {
                "D"
            } else {
                "U"
            };
            let _ = writeln!(
                text,
                "{id},name-{},{},{}.{:02},2024-{:02}-{:02} {:02}:{:02}:00,{op}",
                rng.below(1000),
                rng.pick(&CITIES),
                rng.below(100_000),
                rng.below(100),
                1 + self.batch.min(11),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
            );
            lines += 1;
        }
        (text, lines)
    }
}
