//! The HTML report: the e-commerce pipeline run with `--report`, the page opened in headless
//! Chromium (no console or page error, nothing fetched, every section there, every chart drawn,
//! the tables' script working), and a chart whose query fails named by its line.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// What `tests/report/check_report.cjs` saw in the browser.
fn browse(report: &Path, screenshot: &Path) -> serde_json::Value {
    let home = std::env::var("HOME").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/report/check_report.cjs");
    let out = Command::new("node")
        .arg(script)
        .arg(report)
        .arg(screenshot)
        .env("NODE_PATH", format!("{home}/.cache/medallion-tools/node_modules"))
        .output()
        .expect("node (make setup installs playwright-core and Debian's chromium)");
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn the_ecommerce_report_opens_in_chromium_with_every_chart_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    for batch in [0, 1] {
        generate_ecommerce(&landing, "0.002", batch);
    }
    let report = dir.path().join("report.html");
    let run = Command::new(BIN)
        .args(["run", "--quiet", "--spec", ECOMMERCE_SPEC, "--landing"])
        .arg(&landing)
        .arg("--lakehouse")
        .arg(dir.path().join("lake"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains(&run_id(&run)), "the report shows the run just done");

    let seen = browse(&report, &dir.path().join("report.png"));
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    let sections: Vec<&str> = seen["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        [
            "Run",
            "Data quality",
            "DAG and lineage",
            "Sales",
            "Customers",
            "Funnel",
            "Payments",
            "Recommendations"
        ]
    );
    let charts = seen["charts"].as_array().unwrap();
    // The timeline, rows quarantined per run, the DAG, and the spec's 12 charts.
    assert_eq!(charts.len(), 15, "{seen}");
    for chart in charts {
        let drawn = chart["marks"].as_u64().unwrap() + chart["rows"].as_u64().unwrap();
        assert!(drawn > 0, "chart {} is empty", chart["title"]);
    }
    let sorted = seen["sorted"].as_array().unwrap();
    assert_ne!(
        sorted[0], sorted[1],
        "clicking a heading twice reverses the order"
    );
    assert!(dir.path().join("report.png").metadata().unwrap().len() > 10_000);
}

#[test]
fn a_chart_whose_query_fails_is_named_and_the_rest_is_written() {
    let spec = format!(
        "{SPEC}\n[[chart]]\ntitle = \"Revenue\"\ntype = \"bar\"\nsql = \"SELECT country, revenue FROM revenue_by_country\"\nx = \"country\"\ny = [\"revenue\"]\n\n[[chart]]\ntitle = \"Broken\"\ntype = \"line\"\nsql = \"SELECT nope FROM orders\"\nx = \"nope\"\ny = [\"nope\"]\n"
    );
    let ws = Workspace::new(&spec);
    assert!(ws.run("lake", &[]).status.success());
    let report = ws.path("report.html");
    let out = Command::new(BIN)
        .args([
            "report",
            "--spec",
            &ws.path("pipeline.toml").display().to_string(),
        ])
        .args(["--lakehouse", &ws.path("lake").display().to_string()])
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = 1 + spec.lines().position(|l| l == "title = \"Broken\"").unwrap();
    let named = format!("pipeline.toml:{line}: chart `Broken`: ");
    assert!(
        text(&out).contains(&named) && text(&out).contains("nope"),
        "{named}\n{}",
        text(&out)
    );
    let seen = browse(&report, &ws.path("report.png"));
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    let charts = seen["charts"].as_array().unwrap();
    let revenue = charts.iter().find(|c| c["title"] == "Revenue").unwrap();
    assert_eq!(revenue["marks"], 2, "one bar per country: {seen}");
}
