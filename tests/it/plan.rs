//! `medallion plan`: every table's SQL planned over the schemas its inputs have (committed, or
//! as the run would write them), errors named by file and line for all tables at once, nothing
//! written — and `medallion run` refusing to start what does not plan.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

/// Gold tables with a type error, an unknown column, an unknown function, and one reading a
/// table that does not plan.
const BAD_TABLES: &str = r#"
[[table]]
name = "bad_type"
layer = "gold"
sql = "SELECT date_part('day', CAST(updated_at AS DATE) - CAST(updated_at AS DATE)) AS days FROM orders"

[[table]]
name = "bad_column"
layer = "gold"
sql = "SELECT country, nope FROM revenue_by_country"

[[table]]
name = "bad_function"
layer = "gold"
sql = "SELECT no_such_function(amount) AS x FROM orders"

[[table]]
name = "reads_bad"
layer = "gold"
sql = "SELECT * FROM bad_column"
"#;

fn plan(ws: &Workspace, lake: &str) -> Output {
    Command::new(BIN)
        .args(["plan", "--spec", &ws.path("pipeline.toml").display().to_string()])
        .args(["--landing", &ws.path("landing").display().to_string()])
        .args(["--lakehouse", &ws.path(lake).display().to_string()])
        .output()
        .unwrap()
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The 1-based line of `table`'s `name = …` in `spec`, where errors point.
fn line_of(spec: &str, table: &str) -> usize {
    let name = format!("name = \"{table}\"");
    1 + spec.lines().position(|l| l.trim() == name).unwrap()
}

#[test]
fn plan_shows_every_table_of_a_lakehouse_not_built_yet_and_writes_nothing() {
    let ws = Workspace::new(SPEC);
    let out = plan(&ws, "lake");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    for table in ["orders_raw", "customers_raw", "orders", "revenue_by_country"] {
        assert!(printed.contains(&format!(" {table} ")), "{table}:\n{printed}");
    }
    // The gold table's columns, typed as its query over silver's planned columns gives them.
    assert!(
        printed.contains("columns: country Utf8, orders Int64, revenue Float64"),
        "{printed}"
    );
    assert!(printed.contains("2 new file(s) of 2"), "{printed}");
    assert!(
        printed.contains("expectations: positive_amount (drop)"),
        "{printed}"
    );
    assert!(
        printed.contains("reads: orders_raw (built by this run)"),
        "{printed}"
    );
    assert!(!ws.path("lake").exists(), "plan created the lakehouse");
}

#[test]
fn plan_names_each_failing_table_by_line_and_run_refuses_to_start() {
    let ws = Workspace::new(SPEC);
    let first = ws.run("lake", &[]);
    assert!(first.status.success(), "{}", text(&first));
    std::fs::write(
        ws.path("landing/orders/orders_3.csv"),
        "order_id,customer_id,amount,quantity,updated_at\n7,12,5.00,1,2024-01-04 10:00:00\n",
    )
    .unwrap();
    let before = contents(&ws.path("lake"));

    // The spec as built: plans, with the versions it reads and the new landing file.
    let good = plan(&ws, "lake");
    assert!(good.status.success(), "{}", text(&good));
    let printed = String::from_utf8_lossy(&good.stdout);
    assert!(printed.contains("1 new file(s) of 3"), "{printed}");
    assert!(printed.contains("reads: customers_raw@0, orders@0"), "{printed}");

    let spec = format!("{SPEC}{BAD_TABLES}");
    std::fs::write(ws.path("pipeline.toml"), &spec).unwrap();
    let bad = plan(&ws, "lake");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("3 table(s) do not plan"), "{stderr}");
    for (table, error) in [
        ("bad_type", "date_part"),
        ("bad_column", "No field named nope"),
        ("bad_function", "no_such_function"),
    ] {
        let at = format!("pipeline.toml:{}: table `{table}`: ", line_of(&spec, table));
        let line = stderr.lines().find(|l| l.contains(&at));
        assert!(line.is_some_and(|l| l.contains(error)), "{table}: {at}\n{stderr}");
    }
    let printed = String::from_utf8_lossy(&bad.stdout);
    assert!(
        printed.contains("not checked: the schema of `bad_column` is not known yet"),
        "{printed}"
    );
    assert!(
        !stderr.contains("reads_bad"),
        "only the failing tables are errors:\n{stderr}"
    );

    // A run checks the same before it starts anything: no table is built, not even bronze.
    let run = ws.run("lake", &[]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        text(&run).contains("3 table(s) do not plan; nothing was run"),
        "{}",
        text(&run)
    );
    assert!(
        contents(&ws.path("lake")) == before,
        "plan and the refused run left the lakehouse byte-identical"
    );
}

/// `column <- sources` lines `plan --lineage` printed for `table`.
fn lineage_of(printed: &str, table: &str) -> Vec<String> {
    let heading = printed
        .lines()
        .position(|l| l.split_whitespace().nth(1) == Some(table))
        .unwrap_or_else(|| panic!("{table} not planned:\n{printed}"));
    printed
        .lines()
        .skip(heading + 1)
        .take_while(|l| l.starts_with("    "))
        .filter(|l| l.starts_with("      "))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn lineage_of_ecommerce_columns_is_read_off_their_plans() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    generate_ecommerce(&landing, "0.002", 0);
    let out = Command::new(BIN)
        .args(["plan", "--lineage", "--spec", ECOMMERCE_SPEC, "--landing"])
        .arg(&landing)
        .arg("--lakehouse")
        .arg(dir.path().join("lake"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let fact_sales = lineage_of(&printed, "fact_sales");
    for line in [
        "net_amount <- order_items.discount, order_items.quantity, order_items.unit_price",
        "order_date <- orders.order_ts",
        "customer_key <- orders.customer_id",
    ] {
        assert!(fact_sales.contains(&line.to_string()), "{line}:\n{fact_sales:#?}");
    }
    let daily = lineage_of(&printed, "agg_daily_sales");
    assert!(
        daily.contains(&"revenue <- fact_sales.net_amount".to_string()),
        "{daily:#?}"
    );
    assert!(
        daily.contains(&"order_date <- fact_sales.order_date".to_string()),
        "{daily:#?}"
    );
    // Through a `cdc` table's change query and SCD2 query, down to its bronze columns.
    let customers = lineage_of(&printed, "customers");
    assert!(
        customers.contains(&"email_hash <- customers_raw.email".to_string()),
        "{customers:#?}"
    );
    // Through a window's ordering (a surrogate key) and a FULL OUTER JOIN's two sides.
    let dim_customer = lineage_of(&printed, "dim_customer");
    assert!(
        dim_customer.contains(&"customer_key <- customers.customer_id, orders.customer_id".to_string()),
        "{dim_customer:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_records_its_lineage_once() {
    let ws = Workspace::new(SPEC);
    let first = ws.run("lake", &["--run-id", "run-7"]);
    assert!(first.status.success(), "{}", text(&first));
    let again = ws.run("lake", &["--run-id", "run-7"]);
    assert!(again.status.success(), "{}", text(&again));
    let query = Command::new(BIN)
        .args([
            "query",
            "--format",
            "csv",
            "--spec",
            &ws.path("pipeline.toml").display().to_string(),
        ])
        .args(["--lakehouse", &ws.path("lake").display().to_string()])
        .arg(
            "SELECT table_name, column_name, source_table, source_column, count(*) AS n FROM lineage \
             WHERE run_id = 'run-7' AND table_name = 'revenue_by_country' \
             GROUP BY 1, 2, 3, 4 ORDER BY 2, 3, 4",
        )
        .output()
        .unwrap();
    assert!(query.status.success(), "{}", text(&query));
    assert_eq!(
        String::from_utf8_lossy(&query.stdout),
        "table_name,column_name,source_table,source_column,n\n\
         revenue_by_country,country,customers_raw,country,1\n\
         revenue_by_country,orders,,,1\n\
         revenue_by_country,revenue,orders,amount,1\n",
        "the resumed run recorded nothing twice"
    );
}
