//! Scoring one block of users with the final factors: top-N recommendations that leave out
//! every item the user rated, and — with a hold-out — RMSE/MAE sums and ranking metrics of a
//! top-K list that leaves out only the training items (the held-out ones are the targets).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};

use super::block_io::{BlockRatings, Entry, Factors};
use super::rank::{EvalSums, TopN, ranking_metrics};
use super::task::EvalTask;

/// Recommendation rows (positions into the user and item id arrays) and the block's sums.
#[derive(Default)]
pub(crate) struct Scored {
    user_rows: Vec<u32>,
    item_rows: Vec<u32>,
    scores: Vec<f64>,
    ranks: Vec<i32>,
    pub(crate) sums: EvalSums,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// How a user relates to an item while the user is scored.
const UNRATED: u8 = 0;
const TRAINED_ON: u8 = 1;
const HELD_OUT: u8 = 2;

/// Scores every user of the block that has a factor: one pass over the catalogue per user
/// feeds both the recommendations and the evaluation list.
pub(crate) fn score_block(
    ratings: &BlockRatings,
    users: &Factors,
    items: &Factors,
    n: usize,
    eval: Option<&EvalTask>,
) -> Scored {
    let catalog: Vec<(u32, &[f64])> = items.iter().collect();
    let mut seen = vec![UNRATED; catalog.last().map_or(0, |(i, _)| *i as usize + 1)];
    let (mut recs, mut ranked) = (TopN::new(n), TopN::new(eval.map_or(0, |e| e.k)));
    let mut out = Scored::default();
    for group in ratings.entries.chunk_by(|a, b| a.src == b.src) {
        let user = users.get(group[0].src);
        let relevant = eval.map(|e| relevant(group, e)).unwrap_or_default();
        if eval.is_some() {
            out.add_errors(group, user, items);
            out.sums.cold_users += u64::from(user.is_none() && !relevant.is_empty());
        }
        let Some(user) = user else { continue };
        out.sums.users_with_factors += 1;
        mark(&mut seen, group, true);
        for &(item, factor) in &catalog {
            let score = dot(user, factor);
            let status = seen[item as usize];
            if status == UNRATED {
                recs.push(item, score);
            }
            if !relevant.is_empty() && status != TRAINED_ON {
                ranked.push(item, score);
            }
        }
        mark(&mut seen, group, false);
        for (rank, (item, score)) in recs.take().into_iter().enumerate() {
            out.user_rows.push(group[0].row);
            out.item_rows.push(items.id_row(item));
            out.scores.push(score);
            out.ranks.push(rank as i32 + 1);
            out.sums.recommended_items.push(item);
        }
        if let Some(eval) = eval.filter(|_| !relevant.is_empty()) {
            let list: Vec<u32> = ranked.take().into_iter().map(|(i, _)| i).collect();
            let metrics = ranking_metrics(&list, &relevant, eval.k);
            out.sums.ranked_users += 1;
            out.sums
                .ranking
                .iter_mut()
                .zip(metrics)
                .for_each(|(a, m)| *a += m);
        }
    }
    out.sums.recommended_items.sort_unstable();
    out.sums.recommended_items.dedup();
    out
}

/// Marks the user's items (training wins over held out), or clears them.
fn mark(seen: &mut [u8], group: &[Entry], on: bool) {
    for e in group {
        if let Some(slot) = seen.get_mut(e.dst as usize) {
            *slot = match (on, e.test) {
                (false, _) => UNRATED,
                (true, false) => TRAINED_ON,
                (true, true) if *slot == UNRATED => HELD_OUT,
                (true, true) => *slot,
            };
        }
    }
}

impl Scored {
    fn add_errors(&mut self, group: &[Entry], user: Option<&[f64]>, items: &Factors) {
        for e in group.iter().filter(|e| e.test) {
            self.sums.test_ratings += 1;
            match (user, items.get(e.dst)) {
                (Some(u), Some(i)) => {
                    let err = dot(u, i) - e.value;
                    self.sums.squared_error += err * err;
                    self.sums.absolute_error += err.abs();
                }
                _ => self.sums.cold_test_ratings += 1,
            }
        }
    }

    /// The recommendation rows and the summary row, in the score schema.
    pub(crate) fn into_batch(
        self,
        schema: SchemaRef,
        user_ids: &ArrayRef,
        item_ids: Option<&ArrayRef>,
    ) -> Result<RecordBatch> {
        let item_ids =
            item_ids.ok_or_else(|| DataFusionError::Internal("item factors without ids".into()))?;
        let summary =
            serde_json::to_string(&self.sums).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let rows = self.user_rows.len();
        let recs = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                take(user_ids.as_ref(), &UInt32Array::from(self.user_rows), None)?,
                take(item_ids.as_ref(), &UInt32Array::from(self.item_rows), None)?,
                Arc::new(Float64Array::from(self.scores)),
                Arc::new(Int32Array::from(self.ranks)),
                Arc::new(BooleanArray::from(vec![true; rows])),
                new_null_array(schema.field(5).data_type(), rows),
            ],
        )?;
        let summary = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                new_null_array(schema.field(0).data_type(), 1),
                new_null_array(schema.field(1).data_type(), 1),
                new_null_array(schema.field(2).data_type(), 1),
                new_null_array(schema.field(3).data_type(), 1),
                Arc::new(BooleanArray::from(vec![false])),
                Arc::new(StringArray::from(vec![summary])),
            ],
        )?;
        Ok(datafusion::arrow::compute::concat_batches(
            &schema,
            [&recs, &summary],
        )?)
    }
}

/// Held-out items the user liked: at or above `relevant_min`, or any positive rating.
fn relevant(group: &[Entry], eval: &EvalTask) -> Vec<u32> {
    let mut v: Vec<u32> = group
        .iter()
        .filter(|e| {
            e.test
                && match eval.relevant_min {
                    Some(min) => e.value >= min,
                    None => e.value > 0.0,
                }
        })
        .map(|e| e.dst)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}
