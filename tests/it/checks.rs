//! A `checks` table (quality gate) counted over what changed since its last run gives, after
//! every random batch, the counts a `--full-refresh` counts over whole tables — including the
//! batch that brings a first duplicate or a first unknown reference, and the one after it (the
//! check is then counted in full until it passes again). Its tables are clustered by the
//! checks' first columns, so a batch's values are in few of their files.

use crate::support::*;

const SPEC: &str = r#"
[pipeline]
name = "checks"

[[table]]
name = "items_raw"
layer = "bronze"
source = { path = "items/*.csv", format = "csv", schema = { id = "bigint", ref = "bigint", seq = "bigint" } }

[[table]]
name = "refs_raw"
layer = "bronze"
source = { path = "refs/*.csv", format = "csv", schema = { ref = "bigint" } }

[[table]]
name = "items"
layer = "silver"
cluster_by = ["id"]
rows_per_file = 5
cdc = { from = "items_raw", keys = ["id"], sequence_by = "seq", except_columns = ["seq"] }

# Every row landed, by id and by ref; the refs: appended batch by batch, clustered.
[[table]]
name = "items_log"
layer = "silver"
incremental = true
cluster_by = ["id"]
rows_per_file = 5
sql = "SELECT id, ref, seq FROM items_raw"

[[table]]
name = "items_by_ref"
layer = "silver"
incremental = true
cluster_by = ["ref"]
rows_per_file = 5
sql = "SELECT ref, id FROM items_raw"

[[table]]
name = "refs"
layer = "silver"
incremental = true
cluster_by = ["ref"]
rows_per_file = 5
sql = "SELECT ref FROM refs_raw"

# Refs landed once (a ref landed again is dropped): computed in full, rewritten every run.
[[table]]
name = "refs_once"
layer = "silver"
sql = "SELECT ref FROM refs_raw GROUP BY ref HAVING count(*) = 1"

[[table]]
name = "gate"
layer = "gold"
keys = ["check_name"]
[[table.check]]
name = "resent rows"
level = "warn"
unique = { table = "items_log", columns = ["id", "seq"] }
[[table.check]]
name = "resent rows of even refs"
level = "warn"
unique = { table = "items_log", columns = ["id", "seq"], where = "ref % 2 = 0" }
[[table.check]]
name = "unknown refs"
level = "warn"
relationship = { table = "items_by_ref", columns = ["ref"], to = "refs" }
[[table.check]]
name = "items of refs landed twice"
level = "warn"
relationship = { table = "items", columns = ["ref"], to = "refs_once" }
[[table.check]]
name = "logged without a row"
relationship = { table = "items__changes", columns = ["id"], to = "items" }
[[table.check]]
name = "rows never logged"
relationship = { table = "items", columns = ["id"], to = "items__changes" }
[[table.check]]
name = "duplicate items"
unique = { table = "items", columns = ["id"] }
[[table.check]]
name = "items"
level = "warn"
sql = "SELECT count(*) FROM items"
[[table.expect]]
name = "fail_level_checks_pass"
sql = "violations = 0 OR level <> 'fail'"
action = "fail"
"#;

/// Batch `b`: 20 new items and updates of 6 recent ones (ids and refs grow with time, as a
/// shop's do), and the batch's refs. Batch 5 resends a row (a duplicate), batch 3 points at a
/// ref not yet known, batch 4 adds it, batch 6 lands ref 15 again (batch 1's items hold it).
fn batch(
    rng: &mut medallion_jobs::generate::Rng,
    b: u64,
    next_id: &mut u64,
    seq: &mut u64,
) -> (String, String) {
    let mut items = String::from("id,ref,seq\n");
    let recent: Vec<u64> = match *next_id {
        0 => vec![],
        n => (0..6).map(|_| n - 1 - rng.below(20.min(n))).collect(),
    };
    let ids: Vec<u64> = (*next_id..*next_id + 20).chain(recent).collect();
    *next_id += 20;
    let mut last = String::new();
    for id in ids {
        *seq += 1;
        let r = if b == 3 && id % 7 == 0 {
            999
        } else {
            10 * b + rng.below(10)
        };
        last = format!("{id},{r},{seq}\n");
        items += &last;
    }
    if b == 5 {
        items += &last;
    }
    let mut refs: String = (10 * b..10 * b + 10).map(|r| format!("{r}\n")).collect();
    if b == 4 {
        refs += "999\n";
    }
    if b == 6 {
        refs += "15\n";
    }
    (items, format!("ref\n{refs}"))
}

/// The landing folders of [`SPEC`] and the batches written into them.
struct Landing {
    rng: medallion_jobs::generate::Rng,
    next_id: u64,
    seq: u64,
}

impl Landing {
    fn new(ws: &Workspace, seed: u64) -> Self {
        for dir in ["landing/items", "landing/refs"] {
            std::fs::create_dir_all(ws.path(dir)).unwrap();
        }
        let rng = medallion_jobs::generate::Rng::new(seed);
        Self {
            rng,
            next_id: 0,
            seq: 0,
        }
    }

    /// Writes batch `b`'s files.
    fn land(&mut self, ws: &Workspace, b: u64) {
        let (items, refs) = batch(&mut self.rng, b, &mut self.next_id, &mut self.seq);
        std::fs::write(ws.path(&format!("landing/items/{b}.csv")), items).unwrap();
        std::fs::write(ws.path(&format!("landing/refs/{b}.csv")), refs).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_counted_over_the_changes_equal_checks_over_whole_tables() {
    let ws = Workspace::new(SPEC);
    let mut landing = Landing::new(&ws, 3);
    let mut counted_over_changes = 0;
    for b in 0..8u64 {
        landing.land(&ws, b);
        let run = ws.run("lake", &[]);
        let out = text(&run);
        assert!(run.status.success(), "batch {b}:\n{out}");
        // From the fourth batch on, a batch's values are in few enough of the tables' files.
        let counted = checks_over_changes(&out);
        assert!(
            b < 3 || counted > 0,
            "batch {b} counted nothing over changes:\n{out}"
        );
        eprintln!("batch {b}: {counted} checks counted over changes");
        counted_over_changes += counted;
        let full = ws.run(&format!("full{b}"), &["--full-refresh"]);
        assert!(full.status.success(), "full refresh {b}:\n{}", text(&full));
        let gate = table_rows(&ws.path("lake/gold/gate"), "*").await;
        assert_eq!(
            gate,
            table_rows(&ws.path(&format!("full{b}/gold/gate")), "*").await,
            "batch {b}: the gate differs from one over whole tables"
        );
        let resent = if b < 5 { 0 } else { 1 };
        assert_eq!(count_of(&gate, "resent rows"), resent, "batch {b}: {gate}");
        match b {
            3 => assert!(count_of(&gate, "unknown refs") > 0, "{gate}"),
            _ => assert_eq!(count_of(&gate, "unknown refs"), 0, "batch {b}: {gate}"),
        }
        // Over the items added while `refs_once` loses no ref; in full once it loses 15.
        let landed_twice = count_of(&gate, "items of refs landed twice");
        match b {
            3 | 6 | 7 => assert!(landed_twice > 0, "batch {b}: {gate}"),
            _ => assert_eq!(landed_twice, 0, "batch {b}: {gate}"),
        }
    }
    assert!(counted_over_changes >= 15, "{counted_over_changes}");

    // A batch of refs alone: the checks reading only `items` tables — the `sql` one too, its
    // query scans `items` — keep their counts; the gate still equals one over whole tables.
    std::fs::write(ws.path("landing/refs/only.csv"), "ref\n100000\n").unwrap();
    let run = ws.run("lake", &[]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("checks over their tables' changes, 6 over unchanged tables"),
        "{out}"
    );
    let full = ws.run("full_refs", &["--full-refresh"]);
    assert!(full.status.success(), "{}", text(&full));
    let gate = table_rows(&ws.path("lake/gold/gate"), "*").await;
    assert_eq!(gate, table_rows(&ws.path("full_refs/gold/gate"), "*").await);

    // Nothing new: no table a check reads changed, and the gate is kept as it is.
    let before = version(&ws.path("lake/gold/gate")).await;
    let again = ws.run("lake", &[]);
    assert!(
        text(&again).contains("gold.gate (no_new_data"),
        "{}",
        text(&again)
    );
    assert_eq!(version(&ws.path("lake/gold/gate")).await, before);
}

/// The run that brings batch 3 (the first unknown ref, found over changes) is killed (`kill -9`
/// of the process: client, scheduler and executor) as the gate starts or before it; the run
/// after it — resumed under the same run id or a new one — leaves the gate a full refresh
/// computes.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_as_the_gate_counts_then_run_again_leaves_the_gate_of_a_full_refresh() {
    for (trial, moment) in ["started  gold.gate", "started  silver.items_log"]
        .into_iter()
        .enumerate()
    {
        let ws = Workspace::new(SPEC);
        let mut landing = Landing::new(&ws, 7 + trial as u64);
        for b in 0..3 {
            landing.land(&ws, b);
            assert!(
                ws.run("lake", &[]).status.success(),
                "trial {trial}: batch {b} failed"
            );
        }
        landing.land(&ws, 3);
        let id = format!("run-{}", RunIdClock::now() + trial as u128);
        let seen = killed_at(ws.command("lake", &["--run-id", &id]), moment);
        let gate_version = version(&ws.path("lake/gold/gate")).await;
        eprintln!("checks kill trial {trial} at `{moment}` (seen: {seen}): gate at version {gate_version}");
        let flags = ["--run-id", id.as_str()];
        let again = ws.run("lake", if trial % 2 == 0 { &flags[..] } else { &[] });
        let out = text(&again);
        assert!(
            again.status.success(),
            "trial {trial}: the run after the kill failed:\n{out}"
        );
        assert!(
            checks_over_changes(&out) > 0,
            "trial {trial}: nothing counted over changes:\n{out}"
        );
        let full = ws.run("full", &["--full-refresh"]);
        assert!(
            full.status.success(),
            "trial {trial}: full refresh failed:\n{}",
            text(&full)
        );
        let gate = table_rows(&ws.path("lake/gold/gate"), "*").await;
        assert_eq!(
            gate,
            table_rows(&ws.path("full/gold/gate"), "*").await,
            "trial {trial}"
        );
        assert!(count_of(&gate, "unknown refs") > 0, "trial {trial}: {gate}");
    }
}

/// The violations of check `name` in the gate's pretty-printed rows.
fn count_of(gate: &str, name: &str) -> i64 {
    let line = gate
        .lines()
        .find(|l| l.split('|').nth(1).is_some_and(|c| c.trim() == name))
        .unwrap_or_else(|| panic!("no check `{name}` in {gate}"));
    line.split('|').nth(3).unwrap().trim().parse().unwrap()
}

/// The `k` of the gate's "k of n checks over their tables' changes" in a run's summary.
fn checks_over_changes(out: &str) -> usize {
    let Some(end) = out.find(" checks over their tables' changes") else {
        return 0;
    };
    let words: Vec<&str> = out[..end].rsplit(": ").next().unwrap_or("").split(' ').collect();
    words.first().and_then(|w| w.parse().ok()).unwrap_or(0)
}
