//! One half-step for one block: for every row, the normal equations over the fixed factors of
//! the columns it rated, solved for the row's factor.
//!
//! Explicit (ALS-WR, as Spark): `(Σ y·yᵀ + λ·n·I) x = Σ r·y` over the row's n ratings.
//! Implicit (Hu, Koren, Volinsky; Spark's extension to negative values): confidence
//! `c = 1 + α·|r|`, preference `p = [r > 0]`, `(YᵀY + Σ (c−1)·y·yᵀ + λ·n⁺·I) x = Σ c·p·y`, with
//! `YᵀY` over all fixed factors computed once per half-step and n⁺ the positive ratings.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, ListArray, RecordBatch, UInt32Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::error::Result;

use super::block_io::{Entry, Factors};
use super::linalg::NormalEquation;
use super::task::Settings;

/// Rows solved in one block, in index order.
#[derive(Debug, Default)]
pub(crate) struct Solved {
    pub(crate) rows: Vec<u32>,
    pub(crate) id_rows: Vec<u32>,
    pub(crate) factors: Vec<f64>,
}

/// A row whose system has no solution (λ = 0 with too few ratings, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsolvable {
    /// Where the row's id is in the block's ids.
    pub(crate) id_row: u32,
}

/// Solves every row of `entries` (sorted by row) that has a training rating on a column with
/// a fixed factor. Held-out ratings are ignored.
pub(crate) fn solve_block(
    entries: &[Entry],
    fixed: &Factors,
    settings: &Settings,
    gram: Option<&[f64]>,
) -> std::result::Result<Solved, Unsolvable> {
    let mut out = Solved::default();
    let mut ne = NormalEquation::new(settings.rank);
    for group in entries.chunk_by(|a, b| a.src == b.src) {
        ne.reset();
        let (mut used, mut positives) = (0usize, 0usize);
        for e in group.iter().filter(|e| !e.test) {
            let Some(y) = fixed.get(e.dst) else { continue };
            used += 1;
            if settings.implicit {
                let c1 = settings.alpha * e.value.abs();
                let b = if e.value > 0.0 { 1.0 + c1 } else { 0.0 };
                positives += usize::from(e.value > 0.0);
                ne.add(y, b, c1);
            } else {
                positives += 1;
                ne.add(y, e.value, 1.0);
            }
        }
        if used == 0 {
            continue;
        }
        let reg = settings.reg_param * positives as f64;
        let implicit_gram = if settings.implicit { gram } else { None };
        let x = ne
            .solve(reg, implicit_gram, settings.nonnegative)
            .ok_or(Unsolvable { id_row: group[0].row })?;
        out.rows.push(group[0].src);
        out.id_rows.push(group[0].row);
        out.factors.extend_from_slice(&x);
    }
    Ok(out)
}

/// The solved rows as a factors batch (`idx`, `id`, `features`).
pub(crate) fn factor_batch(
    schema: SchemaRef,
    solved: &Solved,
    ids: &ArrayRef,
    k: usize,
) -> Result<RecordBatch> {
    let idx = Int32Array::from_iter_values(solved.rows.iter().map(|&r| r as i32));
    let ids = take(ids.as_ref(), &UInt32Array::from(solved.id_rows.clone()), None)?;
    let values = Float64Array::from(solved.factors.clone());
    let features = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Float64, true)),
        OffsetBuffer::from_lengths(std::iter::repeat_n(k, solved.rows.len())),
        Arc::new(values),
        None,
    );
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(idx), ids, Arc::new(features)],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::als::linalg::tests::dense_solve;
    use crate::ml::als::task::Side;

    fn settings(implicit: bool, reg_param: f64) -> Settings {
        Settings {
            rank: 3,
            reg_param,
            implicit,
            alpha: 2.0,
            nonnegative: false,
            seed: 1,
        }
    }

    fn entry(src: u32, dst: u32, value: f64) -> Entry {
        Entry {
            src,
            dst,
            value,
            test: false,
            row: src,
        }
    }

    /// The normal equations written out densely: A = Σ c·y·yᵀ (+ G) + reg·I, b = Σ w·y.
    fn direct(rows: &[(&[f64], f64, f64)], reg: f64, gram: Option<&[f64]>) -> Vec<f64> {
        let k = 3;
        let mut a = gram.map_or(vec![0.0; k * k], <[f64]>::to_vec);
        let mut b = vec![0.0; k];
        for (y, c, w) in rows {
            for i in 0..k {
                for j in 0..k {
                    a[i * k + j] += c * y[i] * y[j];
                }
                b[i] += w * y[i];
            }
        }
        (0..k).for_each(|i| a[i * k + i] += reg);
        dense_solve(&a, &b, k)
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn explicit_rows_match_the_direct_solution() {
        let fixed = Factors::initial(9, Side::Item, 0..4, 3, false);
        let y = |i| fixed.get(i).unwrap();
        let entries = [
            entry(0, 0, 4.0),
            entry(0, 2, 1.0),
            entry(0, 3, 5.0),
            entry(1, 1, 3.0),
        ];
        let solved = solve_block(&entries, &fixed, &settings(false, 0.1), None).unwrap();
        assert_eq!(solved.rows, vec![0, 1]);
        let user0 = direct(
            &[(y(0), 1.0, 4.0), (y(2), 1.0, 1.0), (y(3), 1.0, 5.0)],
            0.1 * 3.0,
            None,
        );
        close(&solved.factors[0..3], &user0);
        let user1 = direct(&[(y(1), 1.0, 3.0)], 0.1, None);
        close(&solved.factors[3..6], &user1);
    }

    #[test]
    fn implicit_rows_match_the_direct_solution() {
        let fixed = Factors::initial(9, Side::Item, 0..4, 3, false);
        let g = crate::ml::als::linalg::gram(fixed.iter().map(|(_, v)| v), 3);
        let y = |i| fixed.get(i).unwrap();
        let entries = [entry(0, 1, 2.0), entry(0, 3, -1.0)];
        let solved = solve_block(&entries, &fixed, &settings(true, 0.5), Some(&g)).unwrap();
        // c−1 = α|r|; the preference weight is c for positive values, 0 for the negative one;
        // only the positive rating counts towards λ·n.
        let expected = direct(&[(y(1), 4.0, 5.0), (y(3), 2.0, 0.0)], 0.5, Some(&g));
        close(&solved.factors, &expected);
    }

    #[test]
    fn held_out_and_unknown_columns_are_ignored_and_singular_rows_reported() {
        let fixed = Factors::initial(9, Side::Item, 0..2, 3, false);
        let mut held_out = entry(0, 0, 4.0);
        held_out.test = true;
        let entries = [held_out, entry(1, 7, 3.0)];
        let solved = solve_block(&entries, &fixed, &settings(false, 0.1), None).unwrap();
        assert!(solved.rows.is_empty(), "no training rating with a known column");
        let err = solve_block(&[entry(4, 0, 1.0)], &fixed, &settings(false, 0.0), None).unwrap_err();
        assert_eq!(err, Unsolvable { id_row: 4 });
    }

    /// Factors from solved rows, as the next half-step reads them.
    fn as_factors(solved: &Solved, k: usize) -> Factors {
        let mut f = Factors::initial(0, Side::User, std::iter::empty(), k, false);
        for (n, &row) in solved.rows.iter().enumerate() {
            f.insert(row, &solved.factors[n * k..(n + 1) * k]);
        }
        f
    }

    #[test]
    fn alternating_solves_recover_a_full_low_rank_matrix() {
        // R = U·Vᵀ with rank 2, every cell observed: rank-3 ALS with a tiny λ fits it exactly.
        let (users, items) = (6u32, 5u32);
        let value =
            |u: u32, i: u32| (1.0 + u as f64 * 0.5) * (i as f64 % 3.0) + (u % 2) as f64 * (1.0 + i as f64);
        let by_user: Vec<Entry> = (0..users)
            .flat_map(|u| (0..items).map(move |i| (u, i)))
            .map(|(u, i)| Entry {
                src: u,
                dst: i,
                value: value(u, i),
                test: false,
                row: u,
            })
            .collect();
        let mut by_item: Vec<Entry> = by_user
            .iter()
            .map(|e| Entry {
                src: e.dst,
                dst: e.src,
                row: e.dst,
                ..*e
            })
            .collect();
        by_item.sort_by_key(|e| (e.src, e.dst));
        let s = Settings {
            reg_param: 1e-9,
            ..settings(false, 0.0)
        };
        let mut user_f = Factors::initial(3, Side::User, 0..users, 3, false);
        let mut item_f = Factors::initial(3, Side::Item, 0..items, 3, false);
        for _ in 0..200 {
            item_f = as_factors(&solve_block(&by_item, &user_f, &s, None).unwrap(), 3);
            user_f = as_factors(&solve_block(&by_user, &item_f, &s, None).unwrap(), 3);
        }
        for e in &by_user {
            let p: f64 = user_f
                .get(e.src)
                .unwrap()
                .iter()
                .zip(item_f.get(e.dst).unwrap())
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (p - e.value).abs() < 1e-3,
                "({}, {}): {p} vs {}",
                e.src,
                e.dst,
                e.value
            );
        }
    }
}
