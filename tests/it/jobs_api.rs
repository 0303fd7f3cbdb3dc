//! The job service on a real `medallion scheduler` with two `medallion executor` processes:
//! submit and follow a run, list and show it, cancel a long run, refuse bad specs and tokens.

use std::process::{Command, Output};

use crate::support::*;

const TOKEN: &str = "s3cret";

struct Api {
    cluster: Cluster,
    url: String,
}

fn start_api(work: &std::path::Path) -> Api {
    start_api_with(work, &[])
}

fn start_api_with(work: &std::path::Path, extra: &[String]) -> Api {
    let port = free_port();
    let mut args = vec![
        "--api-bind".to_string(),
        format!("127.0.0.1:{port}"),
        "--api-tokens".into(),
        format!("other,{TOKEN}"),
        "--concurrent-runs".into(),
        "2".into(),
    ];
    args.extend_from_slice(extra);
    let cluster = start_cluster_with_args(work, 2, &[], &args);
    wait_for_port(port, "job service");
    Api {
        cluster,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A plain HTTP GET, as a Prometheus scrape does it.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

impl Api {
    fn call(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(&args[..1]).args(["--api", &self.url]).args(&args[1..]);
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        cmd.output().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_watch_list_cancel_and_refuse() {
    let ws = Workspace::new(SPEC);
    let metrics_port = free_port();
    let api = start_api_with(
        ws.dir.path(),
        &["--metrics-bind".into(), format!("127.0.0.1:{metrics_port}")],
    );
    let spec = ws.path("pipeline.toml").display().to_string();
    let landing = ws.path("landing").display().to_string();
    let lake = ws.path("lake").display().to_string();
    let submit = |extra: &[&str]| {
        let mut args = vec![
            "submit",
            "--spec",
            &spec,
            "--landing",
            &landing,
            "--lakehouse",
            &lake,
        ];
        args.extend_from_slice(extra);
        api.call(Some(TOKEN), &args)
    };

    // Submit and follow to the end: the exit code is the run's outcome.
    let done = submit(&["--wait", "--idempotency-key", "nightly-1"]);
    assert!(done.status.success(), "{}", text(&done));
    let run_id = run_id(&done);
    assert!(
        text(&done).contains(&format!("run {run_id} of shop: succeeded")),
        "{}",
        text(&done)
    );
    assert!(version(&ws.path("lake/gold/revenue_by_country")).await >= 0);
    // The same idempotency key returns the same run and runs nothing.
    let again = submit(&["--idempotency-key", "nightly-1"]);
    assert!(
        text(&again).contains(&format!("{run_id} (existing run")),
        "{}",
        text(&again)
    );

    let status = api.call(Some(TOKEN), &["status", &run_id]);
    assert!(text(&status).contains("silver.orders"), "{}", text(&status));
    // GetRun carries each table's column lineage; GetRunReport the run's HTML report.
    let report = ws.path("report.html").display().to_string();
    let detail = api.call(
        Some(TOKEN),
        &["status", &run_id, "--lineage", "--report", &report],
    );
    assert!(detail.status.success(), "{}", text(&detail));
    assert!(
        text(&detail).contains("gold.revenue_by_country: revenue <- orders.amount"),
        "{}",
        text(&detail)
    );
    let page = std::fs::read_to_string(ws.path("report.html")).unwrap();
    assert!(page.contains(&format!("Run <b>{run_id}</b>")), "{page}");
    assert!(page.contains("revenue ← orders.amount"), "the report's lineage");
    let runs = api.call(Some(TOKEN), &["runs", "--status", "succeeded"]);
    assert!(text(&runs).contains(&run_id), "{}", text(&runs));
    // Prometheus metrics: the run counted as succeeded, its rows summed.
    let scraped = http_get(metrics_port, "/metrics");
    assert!(scraped.starts_with("HTTP/1.1 200 OK"), "{scraped}");
    assert!(
        scraped.contains("medallion_runs{status=\"succeeded\"} 1\n"),
        "{scraped}"
    );
    assert!(!scraped.contains("medallion_table_rows_written 0\n"), "{scraped}");
    assert!(http_get(metrics_port, "/").starts_with("HTTP/1.1 404"));

    // A bad spec: INVALID_ARGUMENT with the message `medallion run` prints for the file.
    std::fs::write(ws.path("bad.toml"), "[pipeline]\nname = \"x\"\nfoo = 1\n").unwrap();
    let bad_path = ws.path("bad.toml").display().to_string();
    let bad = api.call(Some(TOKEN), &["submit", "--spec", &bad_path]);
    let local = Command::new(BIN)
        .args(["run", "--spec", &bad_path])
        .output()
        .unwrap();
    let message = text(&local).trim().trim_start_matches("error: ").to_string();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains(&format!("InvalidArgument: {message}")),
        "{}\nvs {message}",
        text(&bad)
    );

    // No token, a wrong token: UNAUTHENTICATED, nothing listed.
    for token in [None, Some("wrong")] {
        let refused = api.call(token, &["runs"]);
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        assert!(text(&refused).contains("Unauthenticated"), "{}", text(&refused));
    }
    // The token from a file, as the chart's CronJobs mount it from a Secret (trailing newline).
    std::fs::write(ws.path("token"), format!("{TOKEN}\n")).unwrap();
    let token_file = ws.path("token").display().to_string();
    let listed = api.call(None, &["runs", "--token-file", &token_file]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed));
    let missing = api.call(Some(TOKEN), &["status", "run-42"]);
    assert!(
        text(&missing).contains("NotFound: no run `run-42`"),
        "{}",
        text(&missing)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_leaves_its_table_unwritten() {
    let ws = Workspace::new(SPEC);
    let api = start_api(ws.dir.path());
    write_long_pipeline(&ws, 1000);
    let (spec, landing, lake) = (
        ws.path("long.toml").display().to_string(),
        ws.path("landing").display().to_string(),
        ws.path("lake").display().to_string(),
    );
    let submitted = api.call(
        Some(TOKEN),
        &[
            "submit",
            "--spec",
            &spec,
            "--landing",
            &landing,
            "--lakehouse",
            &lake,
        ],
    );
    assert!(submitted.status.success(), "{}", text(&submitted));
    let run_id = run_id(&submitted);
    // Wait until the ALS table is training, then cancel.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ws.path(&format!("lake/_medallion/work/recs/{run_id}")).exists() {
        assert!(std::time::Instant::now() < deadline, "ALS never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let cancelled = api.call(Some(TOKEN), &["cancel", &run_id]);
    assert!(
        text(&cancelled).contains(&format!("run {run_id} of long: cancelled")),
        "{}",
        text(&cancelled)
    );
    let watch = api.call(Some(TOKEN), &["watch", &run_id]);
    assert_eq!(
        watch.status.code(),
        Some(1),
        "a cancelled run is not a success: {}",
        text(&watch)
    );
    assert!(
        version(&ws.path("lake/bronze/ratings_raw")).await >= 0,
        "the bronze table committed before"
    );
    assert_eq!(
        version(&ws.path("lake/ml/recs")).await,
        -1,
        "the cancelled table stays unwritten"
    );
    let twice = api.call(Some(TOKEN), &["cancel", &run_id]);
    assert!(text(&twice).contains("FailedPrecondition"), "{}", text(&twice));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_cut_off_by_a_restart_is_interrupted_and_resumes_without_duplicates() {
    let ws = Workspace::new(SPEC);
    let state = ws.path("state").display().to_string();
    let mut api = start_api_with(ws.dir.path(), &["--state".into(), state]);
    write_long_pipeline(&ws, 40);
    let (spec, landing, lake) = (
        ws.path("long.toml").display().to_string(),
        ws.path("landing").display().to_string(),
        ws.path("lake").display().to_string(),
    );
    let submit = |api: &Api| {
        let args = [
            "submit",
            "--spec",
            &spec,
            "--landing",
            &landing,
            "--lakehouse",
            &lake,
            "--idempotency-key",
            "k1",
        ];
        api.call(Some(TOKEN), &args)
    };
    let first = submit(&api);
    assert!(first.status.success(), "{}", text(&first));
    let run_id = run_id(&first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ws.path(&format!("lake/_medallion/work/recs/{run_id}")).exists() {
        assert!(std::time::Instant::now() < deadline, "ALS never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    api.cluster.restart_scheduler();
    wait_for_port(
        api.url.rsplit(':').next().unwrap().parse().unwrap(),
        "job service",
    );

    // The history survived the restart; the cut-off run shows as interrupted.
    let runs = api.call(Some(TOKEN), &["runs"]);
    assert!(
        text(&runs).contains(&run_id) && text(&runs).contains("interrupted"),
        "{}",
        text(&runs)
    );
    assert_eq!(version(&ws.path("lake/bronze/ratings_raw")).await, 0);
    assert_eq!(version(&ws.path("lake/ml/recs")).await, -1);

    // Executors re-register with their next heartbeat (5 s); then the same key resumes the run.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let again = submit(&api);
    assert!(
        text(&again).contains(&format!("{run_id} (existing run")),
        "{}",
        text(&again)
    );
    let watched = api.call(Some(TOKEN), &["watch", &run_id]);
    assert!(watched.status.success(), "{}", text(&watched));
    assert!(
        text(&watched).contains("bronze.ratings_raw"),
        "{}",
        text(&watched)
    );
    assert!(
        text(&watched).contains("already_committed"),
        "bronze is not ingested twice: {}",
        text(&watched)
    );
    assert_eq!(
        version(&ws.path("lake/bronze/ratings_raw")).await,
        0,
        "no second bronze commit"
    );
    assert_eq!(version(&ws.path("lake/ml/recs")).await, 0);
    let rows = python_row_count(&ws.path("lake/bronze/ratings_raw"));
    let csv_rows = std::fs::read_to_string(ws.path("landing/ratings/r.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(rows, csv_rows, "no duplicate rows");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_service_speaks_tls() {
    let ws = Workspace::new(SPEC);
    // A private CA and a server certificate it signed (webpki refuses a self-signed CA as a
    // server certificate).
    let (cert, key, ca) = (ws.path("cert.pem"), ws.path("key.pem"), ws.path("ca.pem"));
    std::fs::write(
        ws.path("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let path = |p: &str| ws.path(p).display().to_string();
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=medallion-test-ca",
        ]
        .into_iter()
        .map(String::from)
        .chain(["-keyout".into(), path("ca.key"), "-out".into(), path("ca.pem")])
        .collect::<Vec<_>>(),
        vec!["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"]
            .into_iter()
            .map(String::from)
            .chain([
                "-keyout".into(),
                path("key.pem"),
                "-out".into(),
                path("server.csr"),
            ])
            .collect(),
        vec!["x509", "-req", "-days", "1", "-CAcreateserial"]
            .into_iter()
            .map(String::from)
            .chain([
                "-in".into(),
                path("server.csr"),
                "-CA".into(),
                path("ca.pem"),
                "-CAkey".into(),
                path("ca.key"),
            ])
            .chain([
                "-extfile".into(),
                path("ext.cnf"),
                "-out".into(),
                path("cert.pem"),
            ])
            .collect(),
    ] {
        let made = Command::new("openssl").args(&args).output().unwrap();
        assert!(made.status.success(), "openssl {args:?}: {}", text(&made));
    }
    let flags = [
        "--api-tls-cert".to_string(),
        cert.display().to_string(),
        "--api-tls-key".into(),
        key.display().to_string(),
    ];
    let mut api = start_api_with(ws.dir.path(), &flags);
    api.url = api.url.replace("http://", "https://");
    let ca = ca.display().to_string();
    let trusted = api.call(Some(TOKEN), &["runs", "--ca-cert", &ca]);
    assert!(trusted.status.success(), "{}", text(&trusted));
    // Without trusting the certificate, the client refuses the connection.
    let untrusted = api.call(Some(TOKEN), &["runs"]);
    assert_eq!(untrusted.status.code(), Some(2), "{}", text(&untrusted));
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_finished_runs_keep_their_results_and_cut_off_runs_resume_by_themselves() {
    let ws = Workspace::new(SPEC);
    let state = ws.path("state").display().to_string();
    let mut api = start_api_with(
        ws.dir.path(),
        &["--state".into(), state, "--resume-interrupted".into()],
    );
    write_long_pipeline(&ws, 40);
    let (landing, lake) = (
        ws.path("landing").display().to_string(),
        ws.path("lake").display().to_string(),
    );
    let submit = |api: &Api, spec: &str| {
        let spec = ws.path(spec).display().to_string();
        let args = [
            "submit",
            "--spec",
            &spec,
            "--landing",
            &landing,
            "--lakehouse",
            &lake,
        ];
        let out = api.call(Some(TOKEN), &args);
        assert!(out.status.success(), "{}", text(&out));
        run_id(&out)
    };
    let finished = submit(&api, "pipeline.toml");
    let watched = api.call(Some(TOKEN), &["watch", &finished]);
    assert!(watched.status.success(), "{}", text(&watched));

    let cut_off = submit(&api, "long.toml");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ws.path(&format!("lake/_medallion/work/recs/{cut_off}")).exists() {
        assert!(std::time::Instant::now() < deadline, "ALS never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    api.cluster.restart_scheduler();
    wait_for_port(
        api.url.rsplit(':').next().unwrap().parse().unwrap(),
        "job service",
    );

    // The run that had succeeded is still succeeded, with every table's result.
    let status = api.call(Some(TOKEN), &["status", &finished]);
    let shown = text(&status);
    assert!(status.status.success(), "{shown}");
    assert!(
        shown.contains("succeeded") && !shown.contains("interrupted"),
        "{shown}"
    );
    for table in ["orders_raw", "customers_raw", "orders", "revenue_by_country"] {
        assert!(shown.contains(table), "{table} is listed: {shown}");
    }

    // The cut-off run resumed under its own id, without anyone resubmitting it.
    let resumed = api.call(Some(TOKEN), &["watch", &cut_off]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("already_committed"), "{}", text(&resumed));
    assert_eq!(
        version(&ws.path("lake/bronze/ratings_raw")).await,
        0,
        "no second bronze commit"
    );
    assert_eq!(version(&ws.path("lake/ml/recs")).await, 0);
}
