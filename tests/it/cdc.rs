//! A `cdc` table on the embedded cluster: changes applied batch by batch (late, out of order,
//! deletes, no-op updates, a NULL key) equal a full refresh of the same landing data and the
//! hand-computed SCD1 and SCD2 tables; each run reads only the changes appended since the last.

use crate::support::*;

const SPEC: &str = r#"
[pipeline]
name = "cdc"

[[table]]
name = "customers_raw"
layer = "bronze"
source = { path = "changes/*.csv", format = "csv", schema = { id = "bigint", seq = "bigint" } }

[[table]]
name = "customers"
layer = "silver"
cdc = { from = "customers_raw", keys = ["id"], sequence_by = "seq", scd = 2, delete_when = "op = 'D'", except_columns = ["op", "seq"] }

[[table]]
name = "customers_latest"
layer = "silver"
cdc = { from = "customers_raw", keys = ["id"], sequence_by = "seq", scd = 1, delete_when = "op = 'D'", except_columns = ["op", "seq"] }

[[table]]
name = "current_cities"
layer = "gold"
sql = "SELECT city, COUNT(*) AS customers FROM customers WHERE is_current GROUP BY city"
"#;

const FIRST: &str =
    "id,name,city,op,seq\n1,Ann,Paris,U,1\n2,Bob,Rome,U,1\n3,Cy,Oslo,U,1\n,Nobody,Nowhere,U,1\n";
/// Ann moves twice (the earlier move arrives late), Bob is deleted, Cy's change changes
/// nothing, Dee is new.
const SECOND: &str =
    "id,name,city,op,seq\n1,Ann,Lyon,U,5\n2,Bob,Rome,D,4\n1,Ann,Nice,U,3\n3,Cy,Oslo,U,2\n4,Dee,Kiev,U,2\n";

fn land(ws: &Workspace, file: &str, text: &str) {
    let dir = ws.path("landing/changes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_applied_batch_by_batch_equal_a_full_refresh_and_the_expected_history() {
    let ws = Workspace::new(SPEC);
    land(&ws, "1.csv", FIRST);
    let first = ws.run("lake", &[]);
    assert!(first.status.success(), "first run failed:\n{}", text(&first));
    land(&ws, "2.csv", SECOND);
    let second = ws.run("lake", &[]);
    assert!(second.status.success(), "second run failed:\n{}", text(&second));
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));

    let (lake, full) = (ws.path("lake"), ws.path("full"));
    let history = "id, name, city, valid_from, valid_to, is_current";
    let scd2 = table_rows(&lake.join("silver/customers"), history).await;
    assert_eq!(scd2, table_rows(&full.join("silver/customers"), history).await);
    assert_eq!(
        scd2.trim(),
        "+----+------+-------+------------+----------+------------+\n\
         | id | name | city  | valid_from | valid_to | is_current |\n\
         +----+------+-------+------------+----------+------------+\n\
         | 1  | Ann  | Lyon  | 5          |          | true       |\n\
         | 1  | Ann  | Nice  | 3          | 5        | false      |\n\
         | 1  | Ann  | Paris | 1          | 3        | false      |\n\
         | 2  | Bob  | Rome  | 1          | 4        | false      |\n\
         | 3  | Cy   | Oslo  | 1          |          | true       |\n\
         | 4  | Dee  | Kiev  | 2          |          | true       |\n\
         +----+------+-------+------------+----------+------------+"
    );
    let latest = table_rows(&lake.join("silver/customers_latest"), "*").await;
    assert_eq!(
        latest,
        table_rows(&full.join("silver/customers_latest"), "*").await
    );
    assert_eq!(
        latest.trim(),
        "+----+------+------+\n\
         | id | name | city |\n\
         +----+------+------+\n\
         | 1  | Ann  | Lyon |\n\
         | 3  | Cy   | Oslo |\n\
         | 4  | Dee  | Kiev |\n\
         +----+------+------+"
    );
    let gold = table_rows(&lake.join("gold/current_cities"), "*").await;
    assert!(
        gold.contains("| Lyon | 1         |") && !gold.contains("Rome"),
        "{gold}"
    );

    // The second run read only the second file: 3 + 5 changes logged, not 3 + 8.
    let logged = table_rows(&lake.join("silver/customers__changes"), "COUNT(*) AS n").await;
    assert!(logged.contains("| 8 |"), "{logged}");
    // The NULL key was quarantined with its rule, once.
    let quarantine = table_rows(&lake.join("silver/customers__quarantine"), "name, _rule").await;
    assert!(quarantine.contains("| Nobody | id_present |"), "{quarantine}");
    assert_eq!(quarantine.matches("Nobody").count(), 1, "{quarantine}");

    // Nothing new: nothing applied, no commit.
    let before = version(&lake.join("silver/customers")).await;
    let third = ws.run("lake", &[]);
    assert!(third.status.success(), "third run failed:\n{}", text(&third));
    assert!(
        text(&third).contains("silver.customers (no_new_data"),
        "{}",
        text(&third)
    );
    assert_eq!(version(&lake.join("silver/customers")).await, before);
}

/// Random changes over 60 keys: sequence values collide, one change in ten deletes.
fn random_batch(rng: &mut medallion_jobs::generate::Rng, rows: usize) -> String {
    let cities = ["Paris", "Rome", "Oslo", "Kiev", "Lyon", "Nice"];
    let mut csv = String::from("id,name,city,op,seq\n");
    for _ in 0..rows {
        let id = rng.below(60);
        let op = if rng.chance(0.1) { "D" } else { "U" };
        let city = rng.pick(&cities);
        csv += &format!("{id},n{},{city},{op},{}\n", rng.below(3), rng.below(40));
    }
    csv
}

#[tokio::test(flavor = "multi_thread")]
async fn random_batches_on_a_cluster_equal_a_full_refresh() {
    let ws = Workspace::new(SPEC);
    let cluster = start_cluster(ws.dir.path(), 2);
    let remote = ["--scheduler", cluster.scheduler_url.as_str()];
    let mut rng = medallion_jobs::generate::Rng::new(7);
    for batch in 0..3 {
        land(&ws, &format!("{batch}.csv"), &random_batch(&mut rng, 150));
        let run = ws.run("lake", &remote);
        assert!(run.status.success(), "batch {batch} failed:\n{}", text(&run));
    }
    let full = ws.run("full", &[&remote[..], &["--full-refresh"]].concat());
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));
    for table in [
        "silver/customers",
        "silver/customers_latest",
        "gold/current_cities",
    ] {
        let incremental = table_rows(&ws.path("lake").join(table), "*").await;
        // 6 cities at least (pretty-printed: 4 lines of borders and header).
        assert!(
            incremental.lines().count() >= 6 + 4,
            "{table} is nearly empty:\n{incremental}"
        );
        assert_eq!(
            incremental,
            table_rows(&ws.path("full").join(table), "*").await,
            "{table} differs"
        );
    }
    // One current version per key, whatever the partitioning.
    let current = table_rows(
        &ws.path("lake").join("silver/customers"),
        "SUM(CASE WHEN is_current THEN 1 ELSE 0 END) = COUNT(DISTINCT CASE WHEN is_current THEN id END) AS one_each",
    )
    .await;
    assert!(current.contains("true"), "{current}");
}

const SHARDED: &str = r#"
[pipeline]
name = "cdc_sharded"

[[table]]
name = "accounts_raw"
layer = "bronze"
source = { path = "changes/*.csv", format = "csv", schema = { id = "bigint", shard = "bigint", seq = "bigint" } }

[[table]]
name = "accounts"
layer = "silver"
partition_by = ["shard"]
cdc = { from = "accounts_raw", keys = ["id"], sequence_by = "seq", select = ["id", "shard", "upper(name) AS name"] }
"#;

/// The paths a Delta commit removed.
fn removed_in(table: &std::path::Path, version: i64) -> Vec<String> {
    let log = std::fs::read_to_string(table.join(format!("_delta_log/{version:020}.json"))).unwrap();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|a| a.get("remove")?.get("path")?.as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_rewrites_only_the_files_that_may_hold_its_keys() {
    let ws = Workspace::new(SHARDED);
    let rows: String = (0..50).map(|id| format!("{id},{},a{id},1\n", id / 10)).collect();
    land(&ws, "1.csv", &format!("id,shard,name,seq\n{rows}"));
    let first = ws.run("lake", &[]);
    assert!(first.status.success(), "first run failed:\n{}", text(&first));
    land(&ws, "2.csv", "id,shard,name,seq\n11,1,b11,2\n13,1,b13,2\n");
    let second = ws.run("lake", &[]);
    assert!(second.status.success(), "second run failed:\n{}", text(&second));

    let table = ws.path("lake/silver/accounts");
    let removed = removed_in(&table, version(&table).await);
    assert!(!removed.is_empty(), "the batch replaced nothing");
    assert!(
        removed.iter().all(|p| p.starts_with("shard=1/")),
        "only shard 1 holds ids 11 and 13: {removed:?}"
    );
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));
    let rows = table_rows(&table, "id, shard, name").await;
    assert_eq!(
        rows,
        table_rows(&ws.path("full/silver/accounts"), "id, shard, name").await
    );
    assert!(
        rows.contains("| 11 | 1     | B11  |") && rows.contains("| 12 | 1     | A12  |"),
        "{rows}"
    );
}

/// `kill -9` of `medallion run` at several moments of the second batch's apply, then either
/// the same run resumed (`--run-id`) or a new run, as the next CronJob would: the tables equal a
/// full refresh's, each change is logged once and each bad row quarantined once.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_during_an_apply_then_run_again_leaves_the_tables_of_a_full_refresh() {
    for (trial, delay_ms) in [200u64, 260, 320, 380, 440, 520, 900].into_iter().enumerate() {
        let ws = Workspace::new(SPEC);
        land(&ws, "1.csv", FIRST);
        assert!(
            ws.run("lake", &[]).status.success(),
            "trial {trial}: first run failed"
        );
        land(&ws, "2.csv", &format!("{SECOND},Ghost,Nowhere,U,6\n"));
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        let id = format!("run-{micros}");
        let mut killed = ws
            .command("lake", &["--run-id", &id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        killed.kill().unwrap();
        killed.wait().unwrap();
        // Where the kill landed: the versions the killed run left (bronze, log, table).
        let lake = ws.path("lake");
        let left = [
            version(&lake.join("bronze/customers_raw")).await,
            version(&lake.join("silver/customers__changes")).await,
            version(&lake.join("silver/customers")).await,
        ];
        eprintln!("cdc kill trial {trial}: killed after {delay_ms} ms, versions left {left:?}");
        let resume = trial % 2 == 0;
        let again = if resume {
            ws.run("lake", &["--run-id", &id])
        } else {
            ws.run("lake", &[])
        };
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
            "silver/customers",
            "silver/customers_latest",
            "gold/current_cities",
        ] {
            assert_eq!(
                table_rows(&ws.path("lake").join(table), "*").await,
                table_rows(&ws.path("full").join(table), "*").await,
                "trial {trial} (killed after {delay_ms} ms, resumed: {resume}): {table} differs"
            );
        }
        // Each change logged once and each bad row quarantined once, resumed or not.
        let logged = table_rows(&ws.path("lake/silver/customers__changes"), "COUNT(*) AS n").await;
        assert!(logged.contains("| 8 |"), "trial {trial}: {logged}");
        let quarantined = |lake: &str| ws.path(lake).join("silver/customers__quarantine");
        let quarantine = table_rows(&quarantined("lake"), "name, _rule").await;
        let rebuilt = table_rows(&quarantined("full"), "name, _rule").await;
        assert_eq!(quarantine, rebuilt, "trial {trial}");
        assert_eq!(
            quarantine.matches("_present").count(),
            2,
            "trial {trial}: {quarantine}"
        );
    }
}

const BUCKETED: &str = r#"
[pipeline]
name = "cdc_buckets"

[[table]]
name = "customers_raw"
layer = "bronze"
source = { path = "changes/*.csv", format = "csv", schema = { id = "bigint", seq = "bigint" } }

[[table]]
name = "customers"
layer = "silver"
cdc = { from = "customers_raw", keys = ["id"], sequence_by = "seq", scd = 2, except_columns = ["seq"], buckets = 16 }
"#;

/// 200 customers in 16 key buckets; a batch moving 2 of them (1%) is one commit that replaces
/// only files of those two buckets.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_touching_one_percent_of_keys_rewrites_only_their_buckets() {
    let ws = Workspace::new(BUCKETED);
    let rows: String = (0..200).map(|id| format!("{id},c{id},Paris,1\n")).collect();
    land(&ws, "1.csv", &format!("id,name,city,seq\n{rows}"));
    let first = ws.run("lake", &[]);
    assert!(first.status.success(), "first run failed:\n{}", text(&first));
    let table = ws.path("lake/silver/customers");
    let before = version(&table).await;
    let files_before = count_files(&table).await;
    land(&ws, "2.csv", "id,name,city,seq\n7,c7,Lyon,2\n123,c123,Oslo,2\n");
    let second = ws.run("lake", &[]);
    assert!(second.status.success(), "second run failed:\n{}", text(&second));

    assert_eq!(version(&table).await, before + 1, "the batch is one commit");
    let buckets: Vec<String> = ["7", "123"]
        .map(|id| format!("_bucket={}/", medallion_jobs::cdc::bucket_of(&[id], 16)))
        .to_vec();
    let removed = removed_in(&table, before + 1);
    eprintln!(
        "buckets {buckets:?}: replaced {} of {files_before} files",
        removed.len()
    );
    assert!(!removed.is_empty(), "the batch replaced nothing");
    assert!(
        removed
            .iter()
            .all(|p| buckets.iter().any(|b| p.starts_with(b.as_str()))),
        "only buckets {buckets:?} hold ids 7 and 123: {removed:?}"
    );
    assert!(
        removed.len() * 4 <= files_before,
        "{} of {files_before} files replaced",
        removed.len()
    );
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));
    let history = "id, name, city, valid_from, valid_to, is_current, _bucket";
    let rows = table_rows(&table, history).await;
    assert_eq!(rows, table_rows(&ws.path("full/silver/customers"), history).await);
    assert!(rows.contains("| 7   | c7   | Lyon  | 2          |"), "{rows}");
}

/// Data files of a table's current version.
async fn count_files(table: &std::path::Path) -> usize {
    let url = url::Url::from_directory_path(table).unwrap();
    let snapshot = medallion_jobs::delta::TableSnapshot::load(&url)
        .await
        .unwrap()
        .unwrap();
    snapshot.scan_table().unwrap().files.len()
}

/// Buckets added to a table that has rows: the next batch rebuilds it in the new layout (a
/// rewrite of only the touched keys' files would leave the others unbucketed).
#[tokio::test(flavor = "multi_thread")]
async fn adding_buckets_rebuilds_the_table_in_the_new_layout() {
    let ws = Workspace::new(&BUCKETED.replace(", buckets = 16", ""));
    let rows: String = (0..50).map(|id| format!("{id},c{id},Paris,1\n")).collect();
    land(&ws, "1.csv", &format!("id,name,city,seq\n{rows}"));
    assert!(ws.run("lake", &[]).status.success());
    std::fs::write(ws.path("pipeline.toml"), BUCKETED).unwrap();
    land(&ws, "2.csv", "id,name,city,seq\n7,c7,Lyon,2\n");
    let second = ws.run("lake", &[]);
    assert!(second.status.success(), "second run failed:\n{}", text(&second));
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));
    let history = "id, name, city, valid_from, valid_to, is_current, _bucket";
    let rows = table_rows(&ws.path("lake/silver/customers"), history).await;
    assert_eq!(rows, table_rows(&ws.path("full/silver/customers"), history).await);
    assert_eq!(rows.matches("| true ").count(), 50, "{rows}");
}
