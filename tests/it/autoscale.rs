//! The executor autoscaler inside a real `medallion scheduler`: runs submitted to its job service
//! grow the executor Deployment, and once they end it shrinks back to the minimum — observed as
//! the requests a stand-in API server (fake_apiserver.py) receives.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const TOKEN: &str = "autoscale-test-token";
const FAKE_APISERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/it/fake_apiserver.py");

struct FakeApiServer(Child);

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A kubeconfig pointing at the stand-in server, with a bearer token and a default namespace.
fn kubeconfig(port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
         clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
         users:\n- name: scheduler\n  user:\n    token: kube-token\n\
         contexts:\n- name: test\n  context:\n    cluster: fake\n    user: scheduler\n    namespace: medallion\n"
    )
}

fn requests(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn patched_sizes(log: &std::path::Path) -> Vec<i64> {
    requests(log)
        .iter()
        .filter(|r| r["method"] == "PATCH")
        .map(|r| r["body"]["spec"]["replicas"].as_i64().unwrap())
        .collect()
}

/// Waits until the sizes applied so far satisfy `done`.
fn wait_for_sizes(log: &std::path::Path, what: &str, done: impl Fn(&[i64]) -> bool) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sizes = patched_sizes(log);
        if done(&sizes) {
            return sizes;
        }
        assert!(Instant::now() < deadline, "{what}: applied sizes {sizes:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_runs_grow_the_executors_and_an_idle_queue_shrinks_them() {
    let ws = Workspace::new(SPEC);
    let log = ws.path("apiserver.jsonl");
    let kube_port = free_port();
    let _apiserver = FakeApiServer(
        Command::new("python3")
            .args([FAKE_APISERVER, "--port", &kube_port.to_string(), "--log"])
            .arg(&log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(kube_port, "fake API server");
    std::fs::write(ws.path("kubeconfig"), kubeconfig(kube_port)).unwrap();

    let api_port = free_port();
    let flags: Vec<String> = [
        "--api-bind",
        &format!("127.0.0.1:{api_port}"),
        "--api-tokens",
        TOKEN,
        "--autoscale-deployment",
        "medallion-executor",
        "--min-executors",
        "1",
        "--max-executors",
        "3",
        "--executors-per-run",
        "2",
        "--scale-down-delay-seconds",
        "3",
        "--autoscale-interval-seconds",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let kubeconfig = ws.path("kubeconfig").display().to_string();
    let _cluster = start_cluster_with_args(ws.dir.path(), 1, &[("KUBECONFIG", kubeconfig)], &flags);
    wait_for_port(api_port, "job service");

    // Idle: read, never resized.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        requests(&log).iter().any(|r| r["method"] == "GET"),
        "{:?}",
        requests(&log)
    );
    assert_eq!(patched_sizes(&log), Vec::<i64>::new());

    // Two long runs: 2 runs × 2 executors = 4, held at the maximum of 3.
    write_long_pipeline(&ws, 1000);
    let api = format!("http://127.0.0.1:{api_port}");
    let mut run_ids = Vec::new();
    for lake in ["lake-a", "lake-b"] {
        let submitted = Command::new(BIN)
            .args(["submit", "--api", &api, "--token", TOKEN, "--spec"])
            .arg(ws.path("long.toml"))
            .arg("--landing")
            .arg(ws.path("landing"))
            .arg("--lakehouse")
            .arg(ws.path(lake))
            .output()
            .unwrap();
        assert!(submitted.status.success(), "{}", text(&submitted));
        run_ids.push(run_id(&submitted));
    }
    let grown = wait_for_sizes(&log, "growing to the maximum", |s| s.last() == Some(&3));
    assert!(grown.iter().all(|n| (2..=3).contains(n)), "{grown:?}");

    // The exact request: server-side apply of spec.replicas under the scheduler's field manager.
    let patch = requests(&log)
        .into_iter()
        .find(|r| r["method"] == "PATCH")
        .unwrap();
    assert_eq!(
        patch["path"],
        "/apis/apps/v1/namespaces/medallion/deployments/medallion-executor"
    );
    assert_eq!(patch["query"]["fieldManager"], "medallion-scheduler");
    assert_eq!(patch["query"]["force"], "true");
    assert_eq!(patch["content_type"], "application/apply-patch+yaml");
    assert_eq!(patch["authorization"], "Bearer kube-token");
    assert_eq!(patch["body"]["metadata"]["name"], "medallion-executor");

    // Both runs end: after the delay, back to the minimum, and no flapping before it.
    let ended = Instant::now();
    for id in &run_ids {
        let cancelled = Command::new(BIN)
            .args(["cancel", "--api", &api, "--token", TOKEN, id])
            .output()
            .unwrap();
        assert!(cancelled.status.success(), "{}", text(&cancelled));
    }
    let shrunk = wait_for_sizes(&log, "shrinking to the minimum", |s| s.last() == Some(&1));
    assert!(
        ended.elapsed() >= Duration::from_secs(2),
        "shrank {:?} after the runs ended",
        ended.elapsed()
    );
    assert_eq!(shrunk[grown.len()..], [1], "{shrunk:?}");
}
