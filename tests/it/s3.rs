//! Landing files and the lakehouse in S3, against a real S3-compatible server (moto), on the
//! embedded cluster and on scheduler + 2 executors; read back with the `deltalake` package.

use std::process::{Child, Command, Output};

use crate::support::*;

/// A moto S3 server on loopback with one bucket, stopped when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_s3(bucket: &str) -> S3Server {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto_server on PATH (make setup installs moto[server])");
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    wait_for(port);
    let script = "import sys, boto3\n\
                  boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', \
                  aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])";
    let out = Command::new("python3")
        .args(["-c", script, &server.endpoint, bucket])
        .output()
        .unwrap();
    assert!(out.status.success(), "create bucket: {}", text(&out));
    server
}

fn wait_for(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "moto did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

impl S3Server {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    fn medallion(&self, args: &[&str]) -> Output {
        Command::new(BIN).args(args).envs(self.env()).output().unwrap()
    }

    /// Row count of a table read by the Python `deltalake` package from the server.
    fn python_rows(&self, url: &str) -> usize {
        let script = "import os, sys, deltalake\n\
                      opts = dict(AWS_ACCESS_KEY_ID='test', AWS_SECRET_ACCESS_KEY='test', AWS_REGION='us-east-1', \
                      AWS_ENDPOINT_URL=sys.argv[2], AWS_ALLOW_HTTP='true')\n\
                      print(deltalake.DeltaTable(sys.argv[1], storage_options=opts).to_pyarrow_table().num_rows, flush=True)\n\
                      os._exit(0)";
        let out = Command::new("python3")
            .args(["-c", script, url, &self.endpoint])
            .output()
            .unwrap();
        assert!(out.status.success(), "python deltalake: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/example/pipeline.toml");

fn run(s3: &S3Server, lake: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--spec",
        SPEC,
        "--landing",
        "s3://lake/landing",
        "--lakehouse",
        lake,
    ];
    args.extend_from_slice(extra);
    s3.medallion(&args)
}

#[test]
fn example_pipeline_runs_against_s3_embedded_and_on_a_cluster() {
    let s3 = start_s3("lake");
    let generated = s3.medallion(&[
        "generate",
        "--dataset",
        "example",
        "--orders",
        "3000",
        "--out",
        "s3://lake/landing",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));

    let embedded = run(&s3, "s3://lake/a", &[]);
    assert!(
        embedded.status.success(),
        "embedded run on S3 failed:\n{}",
        text(&embedded)
    );

    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster_with_env(dir.path(), 2, &s3.env());
    let remote = run(&s3, "s3://lake/b", &["--scheduler", &cluster.scheduler_url]);
    assert!(
        remote.status.success(),
        "cluster run on S3 failed:\n{}",
        text(&remote)
    );

    for table in [
        "bronze/orders_raw",
        "bronze/customers_raw",
        "silver/orders",
        "gold/daily_revenue",
    ] {
        let (a, b) = (
            s3.python_rows(&format!("s3://lake/a/{table}")),
            s3.python_rows(&format!("s3://lake/b/{table}")),
        );
        assert_eq!(a, b, "{table}");
        assert!(a > 0, "{table}");
    }

    // Landing files are ingested once.
    let again = run(&s3, "s3://lake/a", &[]);
    assert!(again.status.success(), "{}", text(&again));
    // Bronze ingests no landing file twice; the silver and gold tables read no changed table.
    assert_eq!(status_count(&again, "no_new_data"), 5, "{}", text(&again));
}

#[test]
fn concurrent_writers_to_one_s3_table_both_commit_in_order() {
    let s3 = start_s3("race");
    let generated = s3.medallion(&[
        "generate",
        "--dataset",
        "example",
        "--orders",
        "1000",
        "--out",
        "s3://race/landing",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));
    let args = [
        "run",
        "--spec",
        SPEC,
        "--landing",
        "s3://race/landing",
        "--lakehouse",
        "s3://race/lake",
    ];
    let first = s3.medallion(&args);
    assert!(first.status.success(), "{}", text(&first));
    // Two full refreshes of the same table at once: each must commit its own version, or fail
    // with a clear conflict; the log must stay readable either way.
    let spawn = || {
        Command::new(BIN)
            .args(args)
            .args(["--select", "orders_raw", "--full-refresh"])
            .envs(s3.env())
            .env("MEDALLION_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let committed = [&a, &b]
        .iter()
        .filter(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("succeeded"))
        .count();
    assert!(committed >= 1, "{}\n{}", text(&a), text(&b));
    for o in [&a, &b].iter().filter(|o| !o.status.success()) {
        assert!(
            text(o).to_lowercase().contains("conflict") || text(o).contains("version"),
            "{}",
            text(o)
        );
    }
    let log = Command::new("python3")
        .args(["-c", "import os, sys, deltalake\nopts=dict(AWS_ACCESS_KEY_ID='test', AWS_SECRET_ACCESS_KEY='test', AWS_REGION='us-east-1', AWS_ENDPOINT_URL=sys.argv[2], AWS_ALLOW_HTTP='true')\nt=deltalake.DeltaTable(sys.argv[1], storage_options=opts)\nprint(t.version(), t.to_pyarrow_table().num_rows, flush=True)\nos._exit(0)", "s3://race/lake/bronze/orders_raw", &s3.endpoint])
        .output()
        .unwrap();
    assert!(
        log.status.success(),
        "{}\n--- first writer:\n{}\n--- second writer:\n{}",
        text(&log),
        text(&a),
        text(&b)
    );
    let out = String::from_utf8_lossy(&log.stdout);
    let mut parts = out.split_whitespace();
    let (version, rows): (usize, usize) = (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    assert_eq!(
        version,
        committed,
        "one version per successful writer:\n--- first writer:\n{}\n--- second writer:\n{}",
        text(&a),
        text(&b)
    );
    assert_eq!(rows, s3.python_rows("s3://race/lake/bronze/orders_raw"));
    assert!(rows > 0);
}

#[test]
fn als_trains_on_s3_on_a_two_executor_cluster() {
    let s3 = start_s3("recs");
    let generated = s3.medallion(&[
        "generate",
        "--dataset",
        "ratings",
        "--ratings",
        "5000",
        "--out",
        "s3://recs/landing",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster_with_env(dir.path(), 2, &s3.env());
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/ratings/pipeline.toml");
    let out = s3.medallion(&[
        "run",
        "--spec",
        spec,
        "--landing",
        "s3://recs/landing",
        "--lakehouse",
        "s3://recs/lake",
        "--scheduler",
        &cluster.scheduler_url,
    ]);
    assert!(out.status.success(), "ALS on S3 failed:\n{}", text(&out));
    assert_eq!(
        s3.python_rows("s3://recs/lake/ml/recommendations__user_factors"),
        50
    );
    let recs = s3.python_rows("s3://recs/lake/ml/recommendations");
    assert!(
        (1..=500).contains(&recs),
        "{recs} recommendations for 50 users, top 10"
    );
    // The training's scratch files are gone.
    let script = "import sys, boto3\n\
                  s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', \
                  aws_secret_access_key='test', region_name='us-east-1')\n\
                  print(s3.list_objects_v2(Bucket='recs', Prefix='lake/_medallion/work/').get('KeyCount', 0))";
    let listed = Command::new("python3")
        .args(["-c", script, &s3.endpoint])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "0",
        "{}",
        text(&listed)
    );
}
