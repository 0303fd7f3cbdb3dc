//! Top-N selection and the ranking metrics of one user's list, as Spark's `RankingMetrics`
//! defines them (binary relevance):
//!
//! - Precision@K = hits in the top K / K
//! - Recall@K = hits in the top K / relevant
//! - NDCG@K = Σ_{hit at i} 1/log₂(i+2) ÷ Σ_{i < min(K, relevant)} 1/log₂(i+2)
//! - MAP@K = Σ_{hit at i} (hits so far / (i+1)) ÷ min(K, relevant)

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

/// A scored column; `Ord` puts the worse candidate first (lower score, then higher index), so a
/// max-heap of them keeps the worst of the current best on top.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f64,
    index: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// The `n` best (index, score) pairs seen so far; ties go to the lower index.
#[derive(Debug)]
pub(crate) struct TopN {
    n: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopN {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            n,
            heap: BinaryHeap::with_capacity(n + 1),
        }
    }

    pub(crate) fn push(&mut self, index: u32, score: f64) {
        let c = Candidate { score, index };
        if self.heap.len() < self.n {
            self.heap.push(c);
        } else if self.heap.peek().is_some_and(|worst| c < *worst) {
            self.heap.pop();
            self.heap.push(c);
        }
    }

    /// Best first; the collector is left empty for the next list.
    pub(crate) fn take(&mut self) -> Vec<(u32, f64)> {
        std::mem::take(&mut self.heap)
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.index, c.score))
            .collect()
    }
}

/// Precision, recall, NDCG and average precision at `k` of one list against the sorted
/// `relevant` indices (non-empty).
pub(crate) fn ranking_metrics(list: &[u32], relevant: &[u32], k: usize) -> [f64; 4] {
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let (mut hits, mut dcg, mut ap) = (0usize, 0.0, 0.0);
    for (i, item) in list.iter().take(k).enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += discount(i);
            ap += hits as f64 / (i + 1) as f64;
        }
    }
    let ideal: f64 = (0..k.min(relevant.len())).map(discount).sum();
    [
        hits as f64 / k as f64,
        hits as f64 / relevant.len() as f64,
        dcg / ideal,
        ap / k.min(relevant.len()) as f64,
    ]
}

/// What one scoring task measured; tasks' sums add up to the model's metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSums {
    /// Users with factors (each got recommendations).
    pub users_with_factors: u64,
    /// Users with factors and at least one relevant held-out rating.
    pub ranked_users: u64,
    /// Held-out users with relevant ratings but no factors.
    pub cold_users: u64,
    /// Σ Precision@K, Recall@K, NDCG@K, AP@K over ranked users.
    pub ranking: [f64; 4],
    /// Held-out ratings.
    pub test_ratings: u64,
    /// Held-out ratings whose user or item has no factors.
    pub cold_test_ratings: u64,
    /// Σ (prediction − rating)² and Σ |prediction − rating| over the others.
    pub squared_error: f64,
    /// See `squared_error`.
    pub absolute_error: f64,
    /// Items in any recommendation list, sorted and distinct.
    pub recommended_items: Vec<u32>,
}

impl EvalSums {
    /// Adds another task's sums.
    pub fn merge(&mut self, other: EvalSums) {
        self.users_with_factors += other.users_with_factors;
        self.ranked_users += other.ranked_users;
        self.cold_users += other.cold_users;
        for (a, b) in self.ranking.iter_mut().zip(other.ranking) {
            *a += b;
        }
        self.test_ratings += other.test_ratings;
        self.cold_test_ratings += other.cold_test_ratings;
        self.squared_error += other.squared_error;
        self.absolute_error += other.absolute_error;
        self.recommended_items.extend(other.recommended_items);
        self.recommended_items.sort_unstable();
        self.recommended_items.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_with_ties_to_the_lower_index() {
        let scored = [(5, 1.0), (2, 3.0), (9, 3.0), (1, -2.0), (4, 2.5)];
        let mut top = TopN::new(3);
        scored.into_iter().for_each(|(i, s)| top.push(i, s));
        assert_eq!(top.take(), vec![(2, 3.0), (9, 3.0), (4, 2.5)]);
        assert!(top.take().is_empty());
        let mut all = TopN::new(10);
        scored.into_iter().for_each(|(i, s)| all.push(i, s));
        assert_eq!(all.take().len(), 5);
    }

    #[test]
    fn ranking_metrics_follow_spark_definitions() {
        // Hits at positions 0 and 2 of a 4-long list, 3 relevant items, K = 4.
        let [p, r, ndcg, ap] = ranking_metrics(&[10, 11, 12, 13], &[10, 12, 99], 4);
        assert!((p - 0.5).abs() < 1e-12);
        assert!((r - 2.0 / 3.0).abs() < 1e-12);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((ndcg - dcg / idcg).abs() < 1e-12);
        assert!((ap - (1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }
}
