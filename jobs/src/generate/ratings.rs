//! Ratings for `pipelines/ratings`: `ratings/ratings_<i>.csv` with `user_id, item_id, rating,
//! rated_at`, drawn from a hidden low-rank taste model so that ALS has structure to find.
//!
//! Users and items have 5 latent tastes; a rating is the rounded dot product plus noise,
//! clipped to 1..5. Item popularity is skewed (a few items get most ratings, as in shops).
//! With dirt on, about 0.1% of lines are bad the way exports are: an empty user id, a rating
//! that is not a number, a rating out of range.

use std::fmt::Write as _;

use url::Url;

use super::rng::Rng;
use crate::error::Result;

const TASTES: usize = 5;

/// Builder for generated ratings.
#[derive(Debug, Clone)]
#[must_use]
pub struct RatingsData {
    out: Url,
    ratings: u64,
    users: u64,
    items: u64,
    files: u64,
    seed: u64,
    dirt: bool,
}

impl RatingsData {
    /// About `ratings` ratings (repeated pairs are skipped) by `ratings / 100` users on
    /// `ratings / 200` items (at least 50 of each), under `out`.
    pub fn new(out: Url, ratings: u64) -> Self {
        Self {
            out,
            ratings,
            users: (ratings / 100).max(50),
            items: (ratings / 200).max(50),
            files: 4,
            seed: 42,
            dirt: true,
        }
    }

    /// Seed of the generator.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Files written.
    pub fn with_files(mut self, files: u64) -> Self {
        self.files = files.max(1);
        self
    }

    /// Whether bad lines are mixed in.
    pub fn with_dirt(mut self, dirt: bool) -> Self {
        self.dirt = dirt;
        self
    }

    /// Writes the files; returns the number of lines written.
    pub async fn write(self) -> Result<u64> {
        let (store, root) = crate::storage::store_for(&self.out)?;
        let tastes = |seed: u64, n: u64| -> Vec<[f64; TASTES]> {
            let mut rng = Rng::new(seed);
            (0..n)
                .map(|_| std::array::from_fn(|_| (rng.below(1000) as f64 / 1000.0) * 1.2))
                .collect()
        };
        let users = tastes(self.seed ^ 1, self.users);
        let items = tastes(self.seed ^ 2, self.items);
        let mut lines = 0;
        for part in 0..self.files {
            let (text, n) = self.file(part, &users, &items);
            let rel = format!("ratings/ratings_{part}.csv");
            super::put_text(&*store, (&self.out, &root), &rel, text).await?;
            lines += n;
        }
        Ok(lines)
    }

    /// One file: each user's ratings go to one file, so no pair repeats across files.
    fn file(&self, part: u64, users: &[[f64; TASTES]], items: &[[f64; TASTES]]) -> (String, u64) {
        let mut rng = Rng::new(self.seed.wrapping_mul(31).wrapping_add(part));
        let mut text = String::from("user_id,item_id,rating,rated_at\n");
        let mut lines = 0;
        let per_user = self.ratings / self.users;
        let mut seen = std::collections::HashSet::new();
        for user in (part..self.users).step_by(self.files as usize) {
            seen.clear();
            for _ in 0..per_user {
                // Skewed popularity: the square of a uniform favours low item numbers.
                let u = rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
                let item = ((u * u) * self.items as f64) as u64;
                if !seen.insert(item) {
                    continue;
                }
                let taste: f64 = users[user as usize]
                    .iter()
                    .zip(&items[item as usize])
                    .map(|(a, b)| a * b)
                    .sum();
                let noise = (rng.below(1000) as f64 / 1000.0 - 0.5) * 1.0;
                let rating = (1.0 + taste + noise).round().clamp(1.0, 5.0) as u8;
                let day = 1 + rng.below(28);
                let rated_at = format!(
                    "2024-{:02}-{day:02} {:02}:00:00",
                    1 + rng.below(12),
                    rng.below(24)
                );
                let _ = writeln!(text, "{user},{item},{rating},{rated_at}");
                lines += 1;
                if self.dirt && rng.chance(0.001) {
                    let bad = match rng.below(3) {
                        0 => format!(",{item},{rating},{rated_at}"),
                        1 => format!("{user},{item},five,{rated_at}"),
                        _ => format!("{user},{item},9,{rated_at}"),
                    };
                    let _ = writeln!(text, "{bad}");
                    lines += 1;
                }
            }
        }
        (text, lines)
    }
}
