//! Chaos: real scheduler and executor processes, `kill -9` at chosen moments of the e-commerce
//! pipeline. Every run must end with the same tables as an uninterrupted run — no hang, no
//! duplicate, no loss — or, when nothing can run any more, fail with a clear error in bounded
//! time. `make chaos` runs the randomized trials at the end of this file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use medallion_jobs::delta::TableSnapshot;

use crate::support::*;

/// Small enough for a test; big enough that stages take a moment to kill them in.
const SCALE: &str = "0.005";
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../pipelines/ecommerce/pipeline.toml"
);
/// Heartbeat and loss detection short enough for a test, long enough for a loaded machine.
const HEARTBEAT_SECONDS: &str = "2";
const EXECUTOR_TIMEOUT_SECONDS: &str = "8";
/// No finished stage in this long: the run driver gives the attempt up and retries it.
const STALL_SECONDS: &str = "30";
/// A run that outlives this is hung.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Generated landing data and the lakehouse an uninterrupted run built from it, shared by
/// every chaos test of this process.
struct Baseline {
    _dir: tempfile::TempDir,
    landing: PathBuf,
    lake: PathBuf,
}

fn baseline() -> &'static Baseline {
    static BASELINE: OnceLock<Baseline> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (landing, lake) = (dir.path().join("landing"), dir.path().join("lake"));
        let out = Command::new(BIN)
            .args(["generate", "--scale", SCALE, "--out"])
            .arg(&landing)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let out = Command::new(BIN)
            .args(["run", "--spec", SPEC, "--landing"])
            .arg(&landing)
            .arg("--lakehouse")
            .arg(&lake)
            .output()
            .unwrap();
        assert!(out.status.success(), "uninterrupted run failed:\n{}", text(&out));
        Baseline {
            _dir: dir,
            landing,
            lake,
        }
    })
}

fn chaos_cluster(work: &Path, scheduler_flags: &[&str]) -> Cluster {
    let mut scheduler: Vec<String> = vec![
        "--executor-timeout-seconds".into(),
        EXECUTOR_TIMEOUT_SECONDS.into(),
    ];
    scheduler.extend(scheduler_flags.iter().map(|s| s.to_string()));
    let executor = ["--heartbeat-seconds".to_string(), HEARTBEAT_SECONDS.into()];
    // Info logs: a failing trial keeps them, and they are what explains it.
    let env = [("MEDALLION_LOG", "info".to_string())];
    start_cluster_with_flags(work, 2, &env, &scheduler, &executor)
}

/// `medallion run` against the cluster, its progress lines collected as they come.
struct Run {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    started: Instant,
}

impl Run {
    fn start(cluster: &Cluster, lake: &Path, extra: &[&str]) -> Self {
        let mut flags = extra.to_vec();
        if !flags.contains(&"--stall-seconds") {
            flags.extend(["--stall-seconds", STALL_SECONDS]);
        }
        let mut child = Command::new(BIN)
            .args(["run", "--spec", SPEC, "--scheduler", &cluster.scheduler_url])
            .arg("--landing")
            .arg(&baseline().landing)
            .arg("--lakehouse")
            .arg(lake)
            .args(&flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self {
            child,
            lines,
            started: Instant::now(),
        }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until `ready` holds (checked every 50 ms); false if the run ended first.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> bool {
        loop {
            if ready(&self.output()) {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                eprintln!("chaos: the run ended before {what}");
                return false;
            }
            assert!(
                self.started.elapsed() < RUN_LIMIT,
                "hung before {what}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit code, failing the test if the run hangs.
    fn finish(mut self) -> (i32, String) {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(200));
                return (status.code().unwrap_or(-1), self.output());
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                panic!("the run hung for {RUN_LIMIT:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A moment of the pipeline to kill an executor at.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// A bronze ingestion is running.
    Bronze,
    /// A silver table (window and shuffle stages) is running.
    Silver,
    /// A CDC table logged its changes and is applying them (between its two commits).
    CdcApply,
    /// A gold join is running.
    Gold,
    /// ALS alternates: a half-step between the first and the last iteration.
    AlsHalfStep,
    /// The last ALS iteration wrote its factors; scoring runs.
    Scoring,
}

impl KillPoint {
    fn reached(self, output: &str, lake: &Path) -> bool {
        let als = lake.join("_medallion/work/product_recommendations");
        match self {
            KillPoint::Bronze => output.contains("started  bronze.clickstream_raw"),
            KillPoint::Silver => output.contains("started  silver.clickstream"),
            KillPoint::CdcApply => has_entry(&lake.join("silver/customers__changes/_delta_log"), ".json"),
            KillPoint::Gold => output.contains("started  gold.fact_sales"),
            KillPoint::AlsHalfStep => has_entry(&als, "item_factors_3"),
            KillPoint::Scoring => {
                has_entry(&lake.join("ml/product_recommendations__user_factors"), ".parquet")
            }
        }
    }
}

/// Whether any path under `dir` has `part` in its name.
fn has_entry(dir: &Path, part: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name().to_string_lossy().contains(part) || (e.path().is_dir() && has_entry(&e.path(), part))
    })
}

/// Every row of a table as text, sorted, without the `_`-prefixed audit columns (they name the
/// run) and with floating-point values rounded (sums in another task order differ in the last
/// bits).
async fn rows(table: &Path) -> Vec<String> {
    let url = url::Url::from_directory_path(table).unwrap();
    let Some(snapshot) = TableSnapshot::load(&url).await.unwrap() else {
        return vec![];
    };
    let scan = snapshot.scan_table().unwrap();
    let columns: Vec<String> = scan
        .schema
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with('_'))
        .map(|f| match f.data_type() {
            DataType::Float32 | DataType::Float64 => format!("round(\"{0}\", 6) AS \"{0}\"", f.name()),
            _ => format!("\"{}\"", f.name()),
        })
        .collect();
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(scan)).unwrap();
    let batches = ctx
        .sql(&format!("SELECT {} FROM t", columns.join(", ")))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut rows = Vec::new();
    let options = FormatOptions::default().with_null("NULL");
    for batch in &batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters.iter().map(|f| f.value(row).to_string()).collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

/// The silver, gold and ml tables (with quarantines and model factors) of a lakehouse; the
/// model's metrics and metadata hold timings and are left out.
fn compared_tables(lake: &Path) -> Vec<String> {
    let mut tables = Vec::new();
    for layer in ["silver", "gold", "ml"] {
        for entry in std::fs::read_dir(lake.join(layer)).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with("__metrics") && !name.ends_with("__model") {
                tables.push(format!("{layer}/{name}"));
            }
        }
    }
    tables.sort();
    tables
}

/// Differences between `lake` and the uninterrupted run's lakehouse, one line per table.
async fn mismatches(lake: &Path) -> Vec<String> {
    let expected = compared_tables(&baseline().lake);
    assert!(
        expected.len() > 25,
        "the uninterrupted run built its tables: {expected:?}"
    );
    let mut found = Vec::new();
    if compared_tables(lake) != expected {
        found.push(format!(
            "tables differ: {:?} vs {expected:?}",
            compared_tables(lake)
        ));
    }
    for table in &expected {
        let (got, want) = (
            rows(&lake.join(table)).await,
            rows(&baseline().lake.join(table)).await,
        );
        if got != want {
            let missing = want.iter().filter(|r| !got.contains(r)).count();
            let extra = got.iter().filter(|r| !want.contains(r)).count();
            found.push(format!(
                "{table}: {} rows vs {} uninterrupted ({missing} missing, {extra} unexpected)",
                got.len(),
                want.len()
            ));
        }
    }
    found
}

/// Runs the pipeline on a fresh two-executor cluster, killing executors at `kills` (each
/// restarted on its ports with an empty work dir a moment later). Returns the exit code, the
/// output and the mismatches with the uninterrupted run.
async fn trial(kills: &[(KillPoint, usize, Duration)]) -> (i32, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut cluster = chaos_cluster(dir.path(), &[]);
    // Each kill can fail one attempt of every table running then (ALS's many short jobs are
    // hit by most): as many retries as kills, so no table runs out of attempts by chance.
    let retries = kills.len().max(2).to_string();
    let mut run = Run::start(&cluster, &lake, &["--retries", &retries]);
    for (generation, (point, executor, delay)) in kills.iter().enumerate() {
        if !run.wait_for(&format!("{point:?}"), |out| point.reached(out, &lake)) {
            break;
        }
        std::thread::sleep(*delay);
        eprintln!("chaos: kill -9 executor {executor} at {point:?} (+{delay:?})");
        cluster.kill_executor(*executor);
        std::thread::sleep(Duration::from_secs(1));
        cluster.restart_executor(*executor, generation + 1);
    }
    let (code, mut output) = run.finish();
    let found = if code == 0 {
        let mut found = mismatches(&lake).await;
        // Every retry the progress output showed is a `retried` row of the event log.
        let shown = output
            .lines()
            .filter(|l| l.trim_start().starts_with("retry "))
            .count();
        let logged = rows(&lake.join("_medallion/event_log"))
            .await
            .iter()
            .filter(|r| r.split('|').nth(4) == Some("retried"))
            .count();
        if shown != logged {
            found.push(format!(
                "{shown} retry lines but {logged} `retried` event-log rows"
            ));
        }
        found
    } else {
        vec![]
    };
    if code != 0 || !found.is_empty() {
        drop(cluster);
        output += &format!("\n(logs and tables kept in {})", dir.keep().display());
    }
    (code, output, found)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_executor_killed_during_silver_leaves_the_tables_of_an_uninterrupted_run() {
    baseline();
    let (code, output, found) = trial(&[(KillPoint::Silver, 1, Duration::from_millis(300))]).await;
    eprintln!("{output}");
    assert_eq!(code, 0, "the run failed:\n{output}");
    assert!(
        found.is_empty(),
        "tables differ from the uninterrupted run: {found:#?}\n{output}"
    );
}

/// The kill lands after `silver.customers` (SCD2) committed its change log, while it rewrites
/// the table: the retried attempt applies the logged changes without logging them again.
#[tokio::test(flavor = "multi_thread")]
async fn an_executor_killed_during_a_cdc_apply_leaves_the_tables_of_an_uninterrupted_run() {
    baseline();
    let (code, output, found) = trial(&[(KillPoint::CdcApply, 0, Duration::ZERO)]).await;
    eprintln!("{output}");
    assert_eq!(code, 0, "the run failed:\n{output}");
    assert!(
        found.is_empty(),
        "tables differ from the uninterrupted run: {found:#?}\n{output}"
    );
}

/// Five kills in one run, each executor restarted on its ports.
#[tokio::test(flavor = "multi_thread")]
async fn executors_killed_in_every_layer_leave_the_tables_of_an_uninterrupted_run() {
    baseline();
    let kills = [
        (KillPoint::Bronze, 0, Duration::ZERO),
        (KillPoint::Silver, 1, Duration::from_millis(300)),
        (KillPoint::Gold, 0, Duration::from_millis(300)),
        (KillPoint::AlsHalfStep, 1, Duration::ZERO),
        (KillPoint::Scoring, 0, Duration::ZERO),
    ];
    let (code, output, found) = trial(&kills).await;
    eprintln!("{output}");
    assert_eq!(code, 0, "the run failed:\n{output}");
    assert!(output.contains("  retry "), "no table was retried:\n{output}");
    assert!(
        found.is_empty(),
        "tables differ from the uninterrupted run: {found:#?}\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_every_executor_killed_fails_clearly_within_the_grace_period() {
    baseline();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut cluster = chaos_cluster(dir.path(), &["--no-executors-grace-seconds", "4"]);
    let mut run = Run::start(&cluster, &lake, &["--retries", "1", "--stall-seconds", "15"]);
    if !run.wait_for("silver", |out| KillPoint::Silver.reached(out, &lake)) {
        panic!("the run ended before silver:\n{}", run.finish().1);
    }
    cluster.kill_executor(0);
    cluster.kill_executor(1);
    let killed = Instant::now();
    let (code, output) = run.finish();
    let waited = killed.elapsed();
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("no executor"),
        "the error says that no executor is left:\n{output}"
    );
    assert!(
        output.contains("FAILED") && output.contains("skipped"),
        "{output}"
    );
    // Bounded, not fast: loss detection (8 s), then up to two waves of four tables (the
    // run's concurrency), each wave a lost attempt, two attempts that stall (15 s each) and
    // the 5 s and 10 s backoffs — about 100 s; a hang would run into the 300 s run limit.
    assert!(waited < Duration::from_secs(150), "took {waited:?}:\n{output}");
}

/// `make chaos`: `MEDALLION_CHAOS_TRIALS` randomized trials (default 20) — a random moment,
/// a random executor, sometimes a second kill — then `N passed, M failed`, the added wall
/// time per recovered kill and every mismatch.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "long: run by `make chaos`"]
async fn randomized_chaos_trials() {
    baseline();
    let trials: usize = std::env::var("MEDALLION_CHAOS_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let clean = {
        let started = Instant::now();
        let (code, output, found) = trial(&[]).await;
        assert!(
            code == 0 && found.is_empty(),
            "uninterrupted trial: {found:?}\n{output}"
        );
        started.elapsed()
    };
    let points = [
        KillPoint::Bronze,
        KillPoint::Silver,
        KillPoint::CdcApply,
        KillPoint::Gold,
        KillPoint::AlsHalfStep,
        KillPoint::Scoring,
    ];
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut next = |n: u64| {
        // xorshift: enough randomness to pick kill moments.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let (mut passed, mut failed, mut added) = (0, 0, Vec::new());
    for t in 0..trials {
        let count = 1 + usize::from(next(3) == 0);
        let mut kills: Vec<(KillPoint, usize, Duration)> = (0..count)
            .map(|_| {
                (
                    points[next(points.len() as u64) as usize],
                    next(2) as usize,
                    Duration::from_millis(next(1500)),
                )
            })
            .collect();
        kills.sort_by_key(|(p, _, _)| *p as usize);
        kills.dedup_by_key(|(p, _, _)| *p as usize);
        let started = Instant::now();
        let (code, output, found) = trial(&kills).await;
        let took = started.elapsed();
        let ok = code == 0 && found.is_empty();
        println!(
            "trial {t}: {kills:?} -> {} in {:.1}s{}",
            if ok { "passed" } else { "FAILED" },
            took.as_secs_f64(),
            if found.is_empty() {
                String::new()
            } else {
                format!(" mismatches {found:?}")
            }
        );
        if ok {
            passed += 1;
            added.push(took.saturating_sub(clean).as_secs_f64() / kills.len() as f64);
        } else {
            failed += 1;
            println!("{output}");
        }
    }
    added.sort_by(f64::total_cmp);
    let median = added.get(added.len() / 2).copied().unwrap_or(0.0);
    let max = added.last().copied().unwrap_or(0.0);
    println!(
        "{passed} passed, {failed} failed; uninterrupted {:.1}s; added per recovered kill: median {median:.1}s, max {max:.1}s",
        clean.as_secs_f64()
    );
    assert_eq!(failed, 0);
}
