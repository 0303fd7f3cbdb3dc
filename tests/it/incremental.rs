//! Incremental SQL tables: after random batches (late, duplicate, updated, deleted rows, an
//! empty batch, a skipped run) each equals a `--full-refresh` — a row-wise query over an
//! appended input appends its new rows, an aggregate recomputes the groups that changed, a join
//! of merged inputs replaces the keys that changed; the run says how each was computed.

use crate::support::*;

const SPEC: &str = r#"
[pipeline]
name = "incremental"

[[table]]
name = "events_raw"
layer = "bronze"
source = { path = "events/*.csv", format = "csv" }

[[table]]
name = "events"
layer = "silver"
incremental = true
sql = """
SELECT CAST(id AS BIGINT) AS id, upper(trim(kind)) AS kind, TRY_CAST(amount AS DOUBLE) AS amount
FROM events_raw WHERE kind IS NOT NULL
"""
[[table.expect]]
name = "has_amount"
sql = "amount IS NOT NULL"
action = "drop"

[[table]]
name = "per_kind"
layer = "gold"
incremental = true
sql = "SELECT kind, count(*) AS events, sum(amount) AS amount FROM events GROUP BY kind"

# `avg` cannot be combined from a stored value: its groups are recomputed.
[[table]]
name = "per_id"
layer = "gold"
incremental = true
sql = "SELECT id, count(*) AS events, sum(amount) AS amount, avg(amount) AS mean FROM events GROUP BY id"

# A NULL group, sums of some NULLs, `min` and `max`: combined from the new rows.
[[table]]
name = "per_bucket"
layer = "gold"
incremental = true
sql = """
SELECT CASE WHEN id % 7 = 0 THEN NULL ELSE id % 5 END AS bucket, count(*) AS events,
       sum(CASE WHEN amount > 90 THEN amount END) AS big, min(amount) AS low, max(kind) AS last_kind,
       count(CASE WHEN amount > 90 THEN 1 END) AS big_events
FROM events GROUP BY CASE WHEN id % 7 = 0 THEN NULL ELSE id % 5 END
"""
"#;

fn batch(rng: &mut medallion_jobs::generate::Rng, first: u64, rows: u64) -> String {
    let mut csv = String::from("id,kind,amount\n");
    for id in first..first + rows {
        let kind = *rng.pick(&["view", " Buy", "cart", ""]);
        let amount = if rng.chance(0.1) {
            "n/a".to_string()
        } else {
            rng.below(100).to_string()
        };
        csv += &format!("{id},{kind},{amount}\n");
    }
    csv
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_wise_table_computes_only_new_rows_and_equals_a_full_refresh() {
    let ws = Workspace::new(SPEC);
    let dir = ws.path("landing/events");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = medallion_jobs::generate::Rng::new(11);
    for b in 0..4u64 {
        // Batch 2 is empty: a run with nothing new.
        let rows = if b == 2 { 0 } else { 40 };
        std::fs::write(dir.join(format!("{b}.csv")), batch(&mut rng, b * 100, rows)).unwrap();
        let run = ws.run("lake", &[]);
        assert!(run.status.success(), "batch {b} failed:\n{}", text(&run));
        let out = text(&run);
        match b {
            0 => assert_eq!(out.matches("full: first run").count(), 4, "{out}"),
            2 => assert!(!out.contains("incremental_"), "{out}"),
            _ => {
                assert!(
                    out.contains("incremental_append: the rows of its inputs' new files (events_raw")
                        && detail_line(&out, "per_id")
                            .contains("the keys its inputs' changes touch, recomputed"),
                    "batch {b}: {out}"
                );
                for combined in ["per_kind", "per_bucket"] {
                    let detail = detail_line(&out, combined);
                    assert!(
                        detail.contains("their stored aggregates combined with the new rows'"),
                        "batch {b}: {out}"
                    );
                }
                // The batch's ids are new groups: only the new files of `events` hold them.
                let (read, of) = files_read(&out, "per_id", "events").expect("per_id read some files");
                assert!(read >= 1 && read < of, "batch {b}: {out}");
            }
        }
    }
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));
    for table in ["silver/events", "gold/per_kind", "gold/per_id", "gold/per_bucket"] {
        let incremental = table_rows(&ws.path("lake").join(table), "*").await;
        assert!(incremental.lines().count() > 6, "{table}: {incremental}");
        assert_eq!(
            incremental,
            table_rows(&ws.path("full").join(table), "*").await,
            "{table} differs from a full refresh"
        );
    }
    // An edited query is recomputed in full (its rows would otherwise mix two definitions).
    let edited = SPEC.replace("upper(trim(kind))", "lower(trim(kind))");
    std::fs::write(ws.path("pipeline.toml"), edited).unwrap();
    let run = ws.run("lake", &[]);
    assert!(run.status.success(), "edited run failed:\n{}", text(&run));
    let kinds = table_rows(&ws.path("lake/silver/events"), "DISTINCT kind").await;
    assert!(kinds.contains("view") && !kinds.contains("VIEW"), "{kinds}");
    std::fs::write(ws.path("pipeline.toml"), SPEC).unwrap();
    assert!(ws.run("lake", &[]).status.success());

    // Each bad row was quarantined once, by the run that first read it.
    let quarantined = |lake: &str| ws.path(lake).join("silver/events__quarantine");
    let q = table_rows(&quarantined("lake"), "id, _rule").await;
    assert_eq!(q, table_rows(&quarantined("full"), "id, _rule").await);
}

/// A run killed (SIGKILL) with a combined table's files written and its commit not made, then
/// run again (resumed, or as a new run), adds each batch's rows to the stored groups once:
/// its stored values and recorded versions are committed together or not at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_before_a_combined_commit_then_run_again_adds_each_batch_once() {
    for resume in [true, false] {
        let ws = Workspace::new(SPEC);
        let dir = ws.path("landing/events");
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = medallion_jobs::generate::Rng::new(if resume { 5 } else { 6 });
        std::fs::write(dir.join("0.csv"), batch(&mut rng, 0, 60)).unwrap();
        assert!(ws.run("lake", &[]).status.success());
        std::fs::write(dir.join("1.csv"), batch(&mut rng, 100, 60)).unwrap();
        let id = format!("run-{}", RunIdClock::now());
        let mut paused = ws.command("lake", &["--run-id", &id]);
        paused.env("MEDALLION_PAUSE_BEFORE_COMMIT", "per_bucket");
        assert!(
            killed_at(paused, "paused before the commit of `per_bucket`"),
            "the run never reached per_bucket's commit"
        );
        let flags = ["--run-id", id.as_str()];
        let again = ws.run("lake", if resume { &flags[..] } else { &[] });
        assert!(
            again.status.success(),
            "the run after the kill failed:\n{}",
            text(&again)
        );
        assert!(
            detail_line(&text(&again), "per_bucket").contains("combined with the new rows'"),
            "{}",
            text(&again)
        );
        std::fs::write(dir.join("2.csv"), batch(&mut rng, 200, 60)).unwrap();
        assert!(ws.run("lake", &[]).status.success());
        let full = ws.run("full", &["--full-refresh"]);
        assert!(full.status.success(), "{}", text(&full));
        for table in ["gold/per_kind", "gold/per_bucket"] {
            assert_eq!(
                table_rows(&ws.path("lake").join(table), "*").await,
                table_rows(&ws.path("full").join(table), "*").await,
                "{table} differs from a full refresh (resumed: {resume})"
            );
        }
    }
}

const KEYED_SPEC: &str = r#"
[pipeline]
name = "incremental_keys"

[[table]]
name = "orders_raw"
layer = "bronze"
source = { path = "orders/*.csv", format = "csv", schema = { order_id = "bigint", customer_id = "bigint", seq = "bigint" } }

[[table]]
name = "customers_raw"
layer = "bronze"
source = { path = "customers/*.csv", format = "csv", schema = { customer_id = "bigint", seq = "bigint" } }

[[table]]
name = "orders"
layer = "silver"
# Buckets: a batch rewrites only the files of the keys it touches, as a real merge does.
cdc = { from = "orders_raw", keys = ["order_id"], sequence_by = "seq", delete_when = "op = 'D'", except_columns = ["op", "seq"], buckets = 16 }

[[table]]
name = "customers"
layer = "silver"
cdc = { from = "customers_raw", keys = ["customer_id"], sequence_by = "seq", except_columns = ["seq"], buckets = 16 }

# A join of two merged inputs, by key.
[[table]]
name = "order_facts"
layer = "gold"
incremental = true
keys = ["order_id"]
sql = """
SELECT o.order_id, o.customer_id, c.country, CAST(o.day AS DATE) AS day, o.status,
       CAST(o.amount AS DECIMAL(12, 2)) AS amount
FROM orders o JOIN customers c ON o.customer_id = c.customer_id
WHERE o.status <> 'cancelled'
"""

# A join keyed first by the column both inputs are joined by: the customers a batch touches
# are the changed rows' `customer_id`s, no join needed to find them.
[[table]]
name = "customer_orders"
layer = "gold"
incremental = true
keys = ["customer_id", "order_id"]
sql = """
SELECT c.customer_id, o.order_id, c.country, o.status, CAST(o.amount AS DECIMAL(12, 2)) AS amount
FROM orders o JOIN customers c ON o.customer_id = c.customer_id
"""

# An aggregate grouped by an expression.
[[table]]
name = "daily"
layer = "gold"
incremental = true
sql = """
SELECT CAST(day AS DATE) AS day, count(*) AS orders, sum(CAST(amount AS DECIMAL(12, 2))) AS revenue,
       count(DISTINCT customer_id) AS customers
FROM orders WHERE status <> 'cancelled' GROUP BY CAST(day AS DATE)
"""

# An aggregate of a join, grouped by a dimension's column (NULL countries form a group), with HAVING.
[[table]]
name = "by_country"
layer = "gold"
incremental = true
sql = """
SELECT c.country, o.status, count(*) AS orders, sum(CAST(o.amount AS DECIMAL(12, 2))) AS revenue,
       max(o.order_id) AS last_order
FROM orders o JOIN customers c ON o.customer_id = c.customer_id
GROUP BY c.country, o.status HAVING count(*) > 1
"""
"#;

/// Landing batches of order and customer changes: new orders (some for customers not yet
/// known), updates (some arriving late), deletes, exact duplicates, and customers moving —
/// mostly customers of orders the same batch changes, so both sides of a join change at once.
struct Batches {
    rng: medallion_jobs::generate::Rng,
    orders: u64,
    customers: u64,
    seq: u64,
    customer_of: std::collections::HashMap<u64, u64>,
    touched: Vec<u64>,
}

impl Batches {
    fn new(seed: u64) -> Self {
        Self {
            rng: medallion_jobs::generate::Rng::new(seed),
            orders: 0,
            customers: 0,
            seq: 0,
            customer_of: Default::default(),
            touched: vec![],
        }
    }

    fn orders(&mut self, new: u64, changed: u64) -> String {
        let mut csv = String::from("order_id,customer_id,day,status,amount,op,seq\n");
        let rng = &mut self.rng;
        let ids: Vec<u64> = (self.orders..self.orders + new)
            .chain((0..changed.min(self.orders)).map(|_| rng.below(self.orders.max(1))))
            .collect();
        self.orders += new;
        for id in ids {
            self.seq += 1;
            // A late change carries an older sequence number than one already applied.
            let seq = if rng.chance(0.1) {
                self.seq.saturating_sub(40)
            } else {
                self.seq
            };
            let customer = match self.customer_of.get(&id) {
                Some(&c) if rng.chance(0.7) => c,
                _ => 1 + rng.below(self.customers + 3),
            };
            self.touched.extend(self.customer_of.insert(id, customer));
            let day = format!("2024-05-{:02}", 1 + rng.below(9));
            let status = *rng.pick(&["completed", "completed", "pending", "cancelled"]);
            let op = if rng.chance(0.1) { "D" } else { "U" };
            let cents = rng.below(100_000);
            let line = format!(
                "{id},{customer},{day},{status},{}.{:02},{op},{seq}\n",
                cents / 100,
                cents % 100
            );
            if rng.chance(0.05) {
                csv += &line;
            }
            csv += &line;
        }
        csv
    }

    fn customers(&mut self, new: u64, moved: u64) -> String {
        let mut csv = String::from("customer_id,country,seq\n");
        let rng = &mut self.rng;
        let mut ids: Vec<u64> = (self.customers + 1..=self.customers + new).collect();
        for _ in 0..moved.min(self.customers) {
            ids.push(match self.touched.pop() {
                Some(c) if c <= self.customers => c,
                _ => 1 + rng.below(self.customers),
            });
        }
        self.touched.clear();
        self.customers += new;
        for id in ids {
            self.seq += 1;
            let country = *rng.pick(&["FR", "DE", "IT", ""]);
            csv += &format!("{id},{country},{}\n", self.seq);
        }
        csv
    }
}

/// The `(k, n)` of "k of n file(s) of `<input>` read" in a run's output, after `table`'s line.
fn files_read(out: &str, table: &str, input: &str) -> Option<(usize, usize)> {
    let out = &out[out.find(&format!(" {table} "))?..];
    let end = out.find(&format!("file(s) of `{input}` read"))?;
    let words: Vec<&str> = out[..end].rsplit("; ").next()?.split(' ').collect();
    Some((words.first()?.parse().ok()?, words.get(2)?.parse().ok()?))
}

/// The line after `table`'s in a run's summary: how it was computed.
fn detail_line<'a>(out: &'a str, table: &str) -> &'a str {
    let mut lines = out.lines().skip_while(|l| !l.contains(&format!(" {table} ")));
    lines.nth(1).unwrap_or_default()
}

/// Whether `"<k> of <n> file(s) replaced)…"` has k < n.
fn replaced_fewer(counts: &str) -> bool {
    let mut words = counts.split(' ');
    let k: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(usize::MAX);
    let n: usize = words.nth(1).and_then(|w| w.parse().ok()).unwrap_or(0);
    k < n
}

/// A workspace for [`KEYED_SPEC`] with empty `orders` and `customers` landing folders.
fn keyed_workspace(spec: &str) -> Workspace {
    let ws = Workspace::new(spec);
    for dir in ["landing/orders", "landing/customers"] {
        std::fs::remove_dir_all(ws.path(dir)).ok();
        std::fs::create_dir_all(ws.path(dir)).unwrap();
    }
    ws
}

#[tokio::test(flavor = "multi_thread")]
async fn keyed_and_grouped_tables_over_merged_inputs_equal_a_full_refresh() {
    for seed in [5, 6, 7] {
        keyed_and_grouped_equal_a_full_refresh(seed, KEYED_SPEC).await;
    }
}

/// `orders` clustered by key in files of 16 rows instead of bucketed: a merge rewrites the
/// files whose key range holds a changed key, and the incremental tables take from those files
/// only the rows that changed (the others are in the files that replace them too).
const CLUSTERED_ORDERS: (&str, &str) = (
    r#"except_columns = ["op", "seq"], buckets = 16 }"#,
    "except_columns = [\"op\", \"seq\"] }\ncluster_by = [\"order_id\"]\nrows_per_file = 16",
);

#[tokio::test(flavor = "multi_thread")]
async fn tables_over_a_clustered_input_take_only_its_changed_rows_and_equal_a_full_refresh() {
    let spec = KEYED_SPEC.replace(CLUSTERED_ORDERS.0, CLUSTERED_ORDERS.1);
    assert_ne!(spec, KEYED_SPEC);
    for seed in [8, 9] {
        let ws = keyed_and_grouped_equal_a_full_refresh(seed, &spec).await;
        let files = live_files(&ws.path("lake/silver/orders"), "order_id");
        let most = files.iter().map(|f| f.rows).max().unwrap_or_default();
        assert!(files.len() >= 12 && most <= 16, "{files:?}");
        // Each task writes its rows in key order: a key falls in the range of a few files of
        // 15 or 16. Seen over seeds 8–13 (rebuilt with a window per bucket of keys): at most
        // 3–4, 1.9–2.4 on average; with a window per key, at most 2–4 over seeds 8–17. Written
        // in arrival order, the first merge replaces every file: the runs above fail.
        let holding = |id: i64| files.iter().filter(|f| f.min <= id && id <= f.max).count();
        let widest = (0..=210).map(holding).max().unwrap_or_default();
        let mean = (0..=210).map(holding).sum::<usize>() as f64 / 211.0;
        eprintln!(
            "seed {seed}: {} clustered files, a key in at most {widest}, {mean:.2} on average",
            files.len()
        );
        assert!(widest <= 4 && mean <= 2.5, "{widest}, {mean} of {files:?}");
    }
}

/// One live data file of a Delta table: its rows and the range of one integer column.
#[derive(Debug)]
struct LiveFile {
    rows: u64,
    min: i64,
    max: i64,
}

/// The table's live files, replayed from its JSON log (the tests' tables have no checkpoint).
fn live_files(table: &std::path::Path, column: &str) -> Vec<LiveFile> {
    let mut logs: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    logs.sort();
    let mut live = std::collections::BTreeMap::new();
    for log in logs {
        for line in std::fs::read_to_string(log).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(path) = action["remove"]["path"].as_str() {
                live.remove(path);
            }
            let Some(path) = action["add"]["path"].as_str() else {
                continue;
            };
            let stats: serde_json::Value =
                serde_json::from_str(action["add"]["stats"].as_str().unwrap()).unwrap();
            let file = LiveFile {
                rows: stats["numRecords"].as_u64().unwrap(),
                min: stats["minValues"][column].as_i64().unwrap(),
                max: stats["maxValues"][column].as_i64().unwrap(),
            };
            live.insert(path.to_string(), file);
        }
    }
    live.into_values().collect()
}

async fn keyed_and_grouped_equal_a_full_refresh(seed: u64, spec: &str) -> Workspace {
    let ws = keyed_workspace(spec);
    let mut batches = Batches::new(seed);
    // (new orders, changed orders, new customers, moved customers, run after landing)
    let plan = [
        (200, 0, 12, 0, true),
        (6, 4, 1, 3, true),
        (0, 0, 0, 0, true),  // an empty batch
        (0, 5, 0, 4, true),  // only updates
        (3, 2, 0, 1, false), // a skipped run: covered by the next
        (5, 4, 1, 3, true),
    ];
    for (b, &(new, changed, customers, moved, run)) in plan.iter().enumerate() {
        let orders = batches.orders(new, changed);
        std::fs::write(ws.path(&format!("landing/orders/{b}.csv")), orders).unwrap();
        let customers = batches.customers(customers, moved);
        std::fs::write(ws.path(&format!("landing/customers/{b}.csv")), customers).unwrap();
        if !run {
            continue;
        }
        let out = ws.run("lake", &[]);
        assert!(
            out.status.success(),
            "seed {seed}, batch {b} failed:\n{}",
            text(&out)
        );
        let out = text(&out);
        let by_key = out.matches("incremental_by_key:").count();
        match b {
            0 => assert!(out.contains("full: first run"), "{out}"),
            2 => assert_eq!(by_key, 0, "an empty batch recomputes nothing:\n{out}"),
            _ => {
                assert_eq!(by_key, 4, "seed {seed}, batch {b}:\n{out}");
                let detail = detail_line(&out, "customer_orders");
                let read = ["orders", "customers"].map(|input| format!("file(s) of `{input}` read"));
                assert!(
                    read.iter().all(|r| detail.contains(r.as_str())),
                    "first keys from the changed rows alone, each input's files read by them:\n{out}"
                );
            }
        }
    }
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));
    assert!(text(&full).contains("full: --full-refresh"));
    for table in [
        "gold/order_facts",
        "gold/customer_orders",
        "gold/daily",
        "gold/by_country",
    ] {
        let incremental = table_rows(&ws.path("lake").join(table), "*").await;
        assert!(incremental.lines().count() > 8, "{table}: {incremental}");
        assert_eq!(
            incremental,
            table_rows(&ws.path("full").join(table), "*").await,
            "seed {seed}: {table} differs from a full refresh"
        );
    }
    ws
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_whose_rows_left_through_both_sides_of_a_join_at_once_is_recomputed() {
    let ws = keyed_workspace(KEYED_SPEC);
    let land = |dir: &str, file: &str, csv: &str| std::fs::write(ws.path(dir).join(file), csv).unwrap();
    let header = "order_id,customer_id,day,status,amount,op,seq\n";
    land(
        "landing/orders",
        "1.csv",
        &format!(
            "{header}1,1,2024-05-01,completed,10.00,U,1\n2,1,2024-05-01,completed,5.00,U,1\n3,2,2024-05-02,completed,7.00,U,1\n4,2,2024-05-02,completed,1.00,U,1\n"
        ),
    );
    land(
        "landing/customers",
        "1.csv",
        "customer_id,country,seq\n1,FR,1\n2,IT,1\n",
    );
    assert!(ws.run("lake", &[]).status.success());
    // Order 1 is deleted and order 2 moves to customer 2 while customer 1 moves to Germany:
    // the (FR, completed) group lost its rows through both inputs of the join at once.
    land(
        "landing/orders",
        "2.csv",
        &format!("{header}1,1,2024-05-01,completed,10.00,D,2\n2,2,2024-05-01,completed,5.00,U,2\n"),
    );
    land("landing/customers", "2.csv", "customer_id,country,seq\n1,DE,2\n");
    let run = ws.run("lake", &[]);
    assert!(run.status.success(), "{}", text(&run));
    let countries = table_rows(&ws.path("lake/gold/by_country"), "country, orders, revenue").await;
    assert_eq!(
        countries.trim(),
        "+---------+--------+---------+\n\
         | country | orders | revenue |\n\
         +---------+--------+---------+\n\
         | IT      | 3      | 13.00   |\n\
         +---------+--------+---------+",
        "{}",
        text(&run)
    );
    // New orders, then a change to one of them: the merge replaces only the files whose key
    // range holds it, not the older ones.
    land(
        "landing/orders",
        "3.csv",
        &format!("{header}5,2,2024-05-03,completed,2.00,U,3\n6,2,2024-05-03,completed,3.00,U,3\n"),
    );
    assert!(ws.run("lake", &[]).status.success());
    land(
        "landing/orders",
        "4.csv",
        &format!("{header}6,2,2024-05-03,cancelled,3.00,U,4\n"),
    );
    let run = ws.run("lake", &[]);
    assert!(run.status.success(), "{}", text(&run));
    let out = text(&run);
    let counts = detail_line(&out, "order_facts")
        .split("recomputed (")
        .nth(1)
        .unwrap_or_default();
    assert!(replaced_fewer(counts), "{out}");
    // The event log says how, and which input versions the run covered.
    let log = table_rows(
        &ws.path("lake/_medallion/event_log"),
        "table_name, refresh, input_versions",
    )
    .await;
    for row in [
        "| by_country    | full               | [{table_name: orders, from_version: , to_version: 0}, \
         {table_name: customers, from_version: , to_version: 0}]",
        "| by_country    | incremental_by_key | [{table_name: orders, from_version: 2, to_version: 3}, \
         {table_name: customers, from_version: 1, to_version: 1}]",
        "| order_facts   | incremental_append | [{table_name: orders, from_version: 1, to_version: 2}, \
         {table_name: customers, from_version: 1, to_version: 1}]",
    ] {
        // Column widths follow the longest table name.
        let squeezed = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(squeezed(&log).contains(&squeezed(row)), "{row}\nnot in\n{log}");
    }
    let facts = table_rows(&ws.path("lake/gold/order_facts"), "order_id, country, status").await;
    assert_eq!(
        facts,
        table_rows_of_full_refresh(&ws, "gold/order_facts", "order_id, country, status").await
    );
}

/// The rows of `table` after a `--full-refresh` of `ws`'s landing data into a new lakehouse.
async fn table_rows_of_full_refresh(ws: &Workspace, table: &str, select: &str) -> String {
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "{}", text(&full));
    table_rows(&ws.path("full").join(table), select).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_during_incremental_merges_then_run_again_leaves_the_tables_of_a_full_refresh() {
    let moments = [
        "started  gold.order_facts",
        "done     gold.order_facts",
        "started  gold.by_country",
        "done     gold.daily",
    ];
    for (trial, moment) in moments.into_iter().enumerate() {
        let ws = keyed_workspace(KEYED_SPEC);
        let mut batches = Batches::new(11 + trial as u64);
        let land = |b: usize, batches: &mut Batches, sizes: (u64, u64, u64, u64)| {
            let orders = batches.orders(sizes.0, sizes.1);
            std::fs::write(ws.path(&format!("landing/orders/{b}.csv")), orders).unwrap();
            let customers = batches.customers(sizes.2, sizes.3);
            std::fs::write(ws.path(&format!("landing/customers/{b}.csv")), customers).unwrap();
        };
        land(0, &mut batches, (200, 0, 12, 0));
        assert!(
            ws.run("lake", &[]).status.success(),
            "trial {trial}: first run failed"
        );
        land(1, &mut batches, (6, 5, 1, 3));
        let id = format!("run-{}", RunIdClock::now() + trial as u128);
        let seen = killed_at(ws.command("lake", &["--run-id", &id]), moment);
        let mut left = vec![];
        for table in [
            "silver/orders",
            "gold/order_facts",
            "gold/daily",
            "gold/by_country",
        ] {
            left.push(version(&ws.path("lake").join(table)).await);
        }
        eprintln!("incremental kill trial {trial} at `{moment}` (seen: {seen}): versions left {left:?}");
        let resume = trial % 2 == 0;
        let flags = ["--run-id", id.as_str()];
        let again = ws.run("lake", if resume { &flags[..] } else { &[] });
        assert!(
            again.status.success(),
            "trial {trial}: the run after the kill failed:\n{}",
            text(&again)
        );
        let full = ws.run("full", &["--full-refresh"]);
        assert!(
            full.status.success(),
            "trial {trial}: full refresh failed:\n{}",
            text(&full)
        );
        for table in [
            "gold/order_facts",
            "gold/customer_orders",
            "gold/daily",
            "gold/by_country",
        ] {
            assert_eq!(
                table_rows(&ws.path("lake").join(table), "*").await,
                table_rows(&ws.path("full").join(table), "*").await,
                "trial {trial} (killed at `{moment}`, seen: {seen}, resumed: {resume}): {table} differs"
            );
        }
    }
}

const KEPT_SPEC: &str = r#"
[pipeline]
name = "kept"

[[table]]
name = "events_raw"
layer = "bronze"
source = { path = "events/*.csv", format = "csv" }

[[table]]
name = "events"
layer = "silver"
incremental = true
sql = "SELECT CAST(id AS BIGINT) AS id, kind, TRY_CAST(amount AS DOUBLE) AS amount FROM events_raw"

# Computed in full, not declared incremental.
[[table]]
name = "per_kind"
layer = "gold"
sql = "SELECT kind, count(*) AS events, sum(amount) AS amount FROM events WHERE amount >= CAST('${floor}' AS DOUBLE) GROUP BY kind"

# random(): two runs over the same rows may differ, so it is computed every run.
[[table]]
name = "sampled"
layer = "gold"
sql = "SELECT id FROM events WHERE random() < 2.0"
"#;

/// A table computed in full is kept (not rewritten) by a run in which nothing it reads
/// changed, also after it moved in the spec file or got other retries; a new batch, another
/// value of a variable it uses, or `--full-refresh` compute it again, and a query calling
/// `random()` is computed every run.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_computed_in_full_is_kept_while_nothing_it_reads_changes() {
    let ws = Workspace::new(KEPT_SPEC);
    let dir = ws.path("landing/events");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = medallion_jobs::generate::Rng::new(5);
    std::fs::write(dir.join("0.csv"), batch(&mut rng, 0, 40)).unwrap();
    let (per_kind, sampled) = (ws.path("lake/gold/per_kind"), ws.path("lake/gold/sampled"));
    let run = |floor: &str, extra: &[&str]| {
        let var = format!("floor={floor}");
        let out = ws.run("lake", &[&["--var", var.as_str()], extra].concat());
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    run("0", &[]);
    assert_eq!((version(&per_kind).await, version(&sampled).await), (0, 0));

    let again = run("0", &[]);
    assert!(again.contains("gold.per_kind (no_new_data"), "{again}");
    assert_eq!((version(&per_kind).await, version(&sampled).await), (0, 1));

    let before = table_rows(&per_kind, "*").await;
    std::fs::write(dir.join("1.csv"), batch(&mut rng, 100, 40)).unwrap();
    let batch_run = run("0", &[]);
    assert!(batch_run.contains("gold.per_kind (succeeded"), "{batch_run}");
    assert_ne!(
        table_rows(&per_kind, "*").await,
        before,
        "the new batch is counted"
    );

    let other_floor = run("50", &[]);
    assert!(other_floor.contains("gold.per_kind (succeeded"), "{other_floor}");
    assert!(run("50", &[]).contains("gold.per_kind (no_new_data"));
    // Declared further down the file, with its own retries: the same rows, still kept.
    let moved = KEPT_SPEC.replace(
        "# Computed in full, not declared incremental.\n[[table]]\nname = \"per_kind\"\n",
        "# Computed in full,\n# not declared incremental.\n[[table]]\nname = \"per_kind\"\nretries = 3\n",
    );
    assert_ne!(moved, KEPT_SPEC);
    std::fs::write(ws.path("pipeline.toml"), moved).unwrap();
    assert!(run("50", &[]).contains("gold.per_kind (no_new_data"));
    assert!(run("50", &["--full-refresh"]).contains("gold.per_kind (succeeded"));
    assert_eq!(version(&per_kind).await, 3);

    let full = ws.run("full", &["--full-refresh", "--var", "floor=50"]);
    assert!(full.status.success(), "{}", text(&full));
    assert_eq!(
        table_rows(&per_kind, "*").await,
        table_rows(&ws.path("full/gold/per_kind"), "*").await
    );
}

/// A grouped table over a merged input whose rewritten files hold more groups than a run
/// recomputes wherever they are, spread over most of the input's files: the changed rows are
/// diffed instead, and only their groups are recomputed.
const MANY_GROUPS_SPEC: &str = r#"
[pipeline]
name = "many_groups"

[[table]]
name = "items_raw"
layer = "bronze"
source = { path = "items/*.csv", format = "csv", schema = { id = "bigint", v = "bigint", seq = "bigint" } }

[[table]]
name = "items"
layer = "silver"
cluster_by = ["id"]
rows_per_file = 12000
cdc = { from = "items_raw", keys = ["id"], sequence_by = "seq", delete_when = "op = 'D'", except_columns = ["op", "seq"] }

[[table]]
name = "per_item"
layer = "gold"
incremental = true
sql = "SELECT id, count(*) AS n, sum(v) AS v FROM items GROUP BY id"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_grouped_table_over_files_of_too_many_groups_diffs_the_changed_rows() {
    let ws = Workspace::new(MANY_GROUPS_SPEC);
    let dir = ws.path("landing/items");
    std::fs::create_dir_all(&dir).unwrap();
    let header = "id,v,op,seq\n";
    let history: String = (0..36_000).map(|id| format!("{id},{},U,1\n", id % 97)).collect();
    std::fs::write(dir.join("0.csv"), format!("{header}{history}")).unwrap();
    let run = |lake: &str, extra: &[&str]| {
        let out = ws.run(lake, &[&["--log", "warn,medallion_jobs=debug"], extra].concat());
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    run("lake", &[]);
    // Two low ids change and one in the next file is deleted: the two files holding them hold
    // ~24,000 groups, in two of the input's three files.
    std::fs::write(
        dir.join("1.csv"),
        format!("{header}10,500,U,2\n20,600,U,2\n12030,0,D,2\n"),
    )
    .unwrap();
    let out = run("lake", &[]);
    assert!(
        out.contains("too many groups in the changed files: diffing their rows"),
        "{out}"
    );
    // The first count is of every group of the changed files; the second is the diff's.
    let counted = touched_counts(&out);
    assert_eq!(counted.len(), 2, "{out}");
    assert!(counted[0] > 20_000, "{counted:?}");
    assert_eq!(counted[1], 3, "only the changed rows' groups: {counted:?}");
    assert!(
        detail_line(&out, "per_item").contains("incremental_by_key"),
        "{out}"
    );
    run("full", &["--full-refresh"]);
    let rows = table_rows(&ws.path("lake/gold/per_item"), "*").await;
    assert_eq!(rows.lines().count(), 35_999 + 4, "{}", &rows[..400]);
    assert_eq!(rows, table_rows(&ws.path("full/gold/per_item"), "*").await);
}

/// The counts of `per_item`'s touched keys a run logged, in order.
fn touched_counts(out: &str) -> Vec<usize> {
    out.lines()
        .filter(|l| l.contains("table=per_item") && l.contains("the touched keys and the files"))
        .filter_map(|l| l.split(" keys=").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}
