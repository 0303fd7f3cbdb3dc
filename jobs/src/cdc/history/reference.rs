//! The plain in-order reference the SQL is checked against, and the property test: random
//! change streams over a few keys, delivered in random batches and orders, applied batch by
//! batch (each batch recomputing only its keys from their changes so far) equal the reference
//! over the whole stream, for SCD1 and SCD2 — 3,000 seeded cases.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::{ChangeColumns, LatestWindow, scd1_sql, scd2_sql};
use crate::generate::Rng;

/// One change: key `id`, tracked value `v`, untracked value `u` (SCD2 with `v` tracked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    id: i64,
    seq: i64,
    delete: bool,
    v: Option<i64>,
    u: Option<i64>,
}

/// A row of the table: SCD1 leaves the validity fields empty.
type Row = (
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<bool>,
);

/// Per key, one change per sequence value: a delete wins, then the greatest values.
fn deduplicated(changes: &[Change]) -> BTreeMap<i64, Vec<Change>> {
    let mut winners: BTreeMap<(i64, i64), Change> = BTreeMap::new();
    for c in changes {
        let rank = |c: &Change| (c.delete, c.v, c.u);
        winners
            .entry((c.id, c.seq))
            .and_modify(|w| {
                if rank(c) > rank(w) {
                    *w = *c
                }
            })
            .or_insert(*c);
    }
    let mut by_key: BTreeMap<i64, Vec<Change>> = BTreeMap::new();
    for ((id, _), c) in winners {
        by_key.entry(id).or_default().push(c);
    }
    by_key
}

fn scd1_reference(changes: &[Change]) -> BTreeSet<Row> {
    deduplicated(changes)
        .into_values()
        .filter_map(|cs| cs.last().copied())
        .filter(|c| !c.delete)
        .map(|c| (c.id, c.v, c.u, None, None, None))
        .collect()
}

/// Applies each key's changes one by one in sequence order.
fn scd2_reference(changes: &[Change], track_u: bool) -> BTreeSet<Row> {
    let mut rows = BTreeSet::new();
    let tracked = |c: &Change| if track_u { (c.v, c.u) } else { (c.v, None) };
    for cs in deduplicated(changes).into_values() {
        // The open version: (from, values of its latest change).
        let mut open: Option<(i64, Change)> = None;
        for c in cs {
            match open {
                Some((from, last)) if c.delete => {
                    rows.insert((last.id, last.v, last.u, Some(from), Some(c.seq), Some(false)));
                    open = None;
                }
                None if c.delete => {}
                None => open = Some((c.seq, c)),
                Some((from, last)) if tracked(&last) != tracked(&c) => {
                    rows.insert((last.id, last.v, last.u, Some(from), Some(c.seq), Some(false)));
                    open = Some((c.seq, c));
                }
                Some((from, _)) => open = Some((from, c)),
            }
        }
        if let Some((from, last)) = open {
            rows.insert((last.id, last.v, last.u, Some(from), None, Some(true)));
        }
    }
    rows
}

fn columns(track_u: bool) -> ChangeColumns {
    ChangeColumns {
        keys: vec!["id".into()],
        values: vec!["v".into(), "u".into()],
        tracked: if track_u {
            vec!["v".into(), "u".into()]
        } else {
            vec!["v".into()]
        },
    }
}

/// A session with Medallion's functions (the SQL buckets keys with `split_hash`) and `batch`
/// as the table `changes`.
fn session_over(batch: RecordBatch) -> SessionContext {
    let ctx = SessionContext::new();
    for udf in crate::udf::scalar_functions() {
        ctx.register_udf(udf.as_ref().clone());
    }
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    ctx.register_table("changes", Arc::new(table)).unwrap();
    ctx
}

async fn run_sql(sql: &str, changes: &[Change]) -> BTreeSet<Row> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new("u", DataType::Int64, true),
        Field::new("_sequence", DataType::Int64, false),
        Field::new("_delete", DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.id))),
            Arc::new(Int64Array::from_iter(changes.iter().map(|c| c.v))),
            Arc::new(Int64Array::from_iter(changes.iter().map(|c| c.u))),
            Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.seq))),
            Arc::new(BooleanArray::from_iter(changes.iter().map(|c| Some(c.delete)))),
        ],
    )
    .unwrap();
    let ctx = session_over(batch);
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = BTreeSet::new();
    for b in &batches {
        let int = |i: usize| b.column(i).as_any().downcast_ref::<Int64Array>().unwrap().clone();
        let (id, v, u) = (int(0), int(1), int(2));
        let scd2 = b.num_columns() == 6;
        for r in 0..b.num_rows() {
            let opt = |a: &Int64Array| (!a.is_null(r)).then(|| a.value(r));
            let (from, to, current) = if scd2 {
                let current = b.column(5).as_any().downcast_ref::<BooleanArray>().unwrap();
                (opt(&int(3)), opt(&int(4)), Some(current.value(r)))
            } else {
                (None, None, None)
            };
            rows.insert((id.value(r), opt(&v), opt(&u), from, to, current));
        }
    }
    rows
}

/// A random stream over 4 keys and 12 sequence values (so ties happen), deletes one change in 5.
fn stream(rng: &mut Rng) -> Vec<Change> {
    let n = 1 + rng.below(16) as usize;
    let value = |rng: &mut Rng| match rng.below(4) {
        0 => None,
        x => Some(x as i64),
    };
    (0..n)
        .map(|_| Change {
            id: rng.below(4) as i64,
            seq: rng.below(12) as i64,
            delete: rng.chance(0.2),
            v: value(rng),
            u: value(rng),
        })
        .collect()
}

/// The stream shuffled (late and out-of-order arrivals) and cut into 1–4 batches.
fn batches(rng: &mut Rng, mut changes: Vec<Change>) -> Vec<Vec<Change>> {
    for i in (1..changes.len()).rev() {
        changes.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let cuts = rng.below(4) as usize;
    let mut out = vec![vec![]; cuts + 1];
    for c in changes {
        out[rng.below(cuts as u64 + 1) as usize].push(c);
    }
    out
}

/// Applies batches one at a time: each recomputes its keys from their changes so far.
async fn applied(batches: &[Vec<Change>], sql: &str) -> BTreeSet<Row> {
    let mut seen: Vec<Change> = vec![];
    let mut table: BTreeSet<Row> = BTreeSet::new();
    for batch in batches {
        seen.extend(batch);
        let keys: BTreeSet<i64> = batch.iter().map(|c| c.id).collect();
        let input: Vec<Change> = seen.iter().filter(|c| keys.contains(&c.id)).copied().collect();
        table.retain(|r| !keys.contains(&r.0));
        table.extend(run_sql(sql, &input).await);
    }
    table
}

/// Keys of one case are below this; case `c`'s keys are shifted by `c * CASE_KEYS`.
const CASE_KEYS: i64 = 100;

/// Cases on disjoint keys apply independently, so thousands of them run as one: the `j`th
/// batch of the merged run is every case's `j`th batch.
#[tokio::test]
async fn batch_by_batch_equals_the_in_order_reference_over_the_whole_stream() {
    const CASES: i64 = 3000;
    let mut rng = Rng::new(20261202);
    let (mut changes, mut delivered) = (vec![], vec![vec![]; 4]);
    for case in 0..CASES {
        let shift = |c: Change| Change {
            id: c.id + case * CASE_KEYS,
            ..c
        };
        let stream: Vec<Change> = stream(&mut rng).into_iter().map(shift).collect();
        for (j, batch) in batches(&mut rng, stream.clone()).into_iter().enumerate() {
            delivered[j].extend(batch);
        }
        changes.extend(stream);
    }
    for window in [LatestWindow::PerKey, LatestWindow::PerBucket] {
        let scd1 = applied(&delivered, &scd1_sql("changes", &columns(true), window)).await;
        assert_same(
            &format!("SCD1 ({window:?})"),
            &scd1,
            &scd1_reference(&changes),
            &changes,
        );
    }
    for track_u in [true, false] {
        let scd2 = applied(&delivered, &scd2_sql("changes", &columns(track_u))).await;
        let what = format!("SCD2 (u tracked: {track_u})");
        assert_same(&what, &scd2, &scd2_reference(&changes, track_u), &changes);
    }
}

/// Equal, or a failure naming the first case that differs and its changes.
fn assert_same(what: &str, got: &BTreeSet<Row>, want: &BTreeSet<Row>, changes: &[Change]) {
    let Some(row) = got.symmetric_difference(want).next() else {
        return;
    };
    let case = row.0 / CASE_KEYS;
    let keys = case * CASE_KEYS..(case + 1) * CASE_KEYS;
    let of_case =
        |rows: &BTreeSet<Row>| -> Vec<Row> { rows.iter().filter(|r| keys.contains(&r.0)).copied().collect() };
    let stream: Vec<&Change> = changes.iter().filter(|c| keys.contains(&c.id)).collect();
    panic!(
        "{what}, case {case}: got {:?}, want {:?} for {stream:?}",
        of_case(got),
        of_case(want)
    );
}

#[tokio::test]
async fn a_late_update_is_inserted_into_the_history_in_its_place() {
    let change = |seq, v| Change {
        id: 1,
        seq,
        delete: false,
        v: Some(v),
        u: None,
    };
    let late = applied(
        &[vec![change(1, 10), change(5, 50)], vec![change(3, 30)]],
        &scd2_sql("changes", &columns(true)),
    )
    .await;
    let expected: BTreeSet<Row> = [
        (1, Some(10), None, Some(1), Some(3), Some(false)),
        (1, Some(30), None, Some(3), Some(5), Some(false)),
        (1, Some(50), None, Some(5), None, Some(true)),
    ]
    .into();
    assert_eq!(late, expected);
}

/// Keys of two columns: each pair keeps its own latest change, also when two pairs with the
/// same first column fall in the same bucket of the window.
#[tokio::test]
async fn scd1_keeps_the_latest_change_of_each_key_of_two_columns() {
    let bucket = |line: i64| crate::cdc::bucket_of(&["1", &line.to_string()], super::WINDOW_BUCKETS);
    let other = (2..).find(|&l| bucket(l) == bucket(1)).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("line_no", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new("_sequence", DataType::Int64, false),
        Field::new("_delete", DataType::Boolean, false),
    ]));
    // (order_id, line_no, v, sequence, delete)
    let changes = [
        (1, 1, 10, 1, false),
        (1, other, 20, 2, false),
        (1, 1, 11, 3, false),
        (1, other, 21, 1, false),
        (2, 1, 30, 1, false),
        (2, 1, 31, 2, true),
        (2, 2, 40, 5, false),
    ];
    let column = |f: fn(&(i64, i64, i64, i64, bool)) -> i64| -> Arc<dyn Array> {
        Arc::new(Int64Array::from_iter_values(changes.iter().map(f)))
    };
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            column(|c| c.0),
            column(|c| c.1),
            column(|c| c.2),
            column(|c| c.3),
            Arc::new(BooleanArray::from_iter(changes.iter().map(|c| Some(c.4)))),
        ],
    )
    .unwrap();
    let ctx = session_over(batch);
    let columns = ChangeColumns {
        keys: vec!["order_id".into(), "line_no".into()],
        values: vec!["v".into()],
        tracked: vec!["v".into()],
    };
    let sql = format!(
        "{} ORDER BY 1, 2",
        scd1_sql("changes", &columns, LatestWindow::PerBucket)
    );
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let rows: Vec<(i64, i64, i64)> = batches
        .iter()
        .flat_map(|b| {
            let int = |i: usize| b.column(i).as_any().downcast_ref::<Int64Array>().unwrap().clone();
            let (k1, k2, v) = (int(0), int(1), int(2));
            (0..b.num_rows()).map(move |r| (k1.value(r), k2.value(r), v.value(r)))
        })
        .collect();
    assert_eq!(rows, vec![(1, 1, 11), (1, other, 20), (2, 2, 40)]);
}
