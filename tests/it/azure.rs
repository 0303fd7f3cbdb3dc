//! Landing files and the lakehouse in an Azure Blob / ADLS container, against the Azurite
//! emulator; read back with the `deltalake` package.

use std::process::{Child, Command, Output, Stdio};

use crate::support::*;

/// Azurite's well-known development account key (public, emulator only).
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite blob service on loopback with one container, stopped when dropped.
struct Azurite {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        // Azurite may ignore SIGTERM; kill() sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn azurite_bin() -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    format!("{home}/.cache/medallion-tools/node_modules/.bin/azurite-blob")
}

fn spawn_azurite(port: u16, data: &std::path::Path) -> Child {
    Command::new("node")
        .arg(azurite_bin())
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
        ])
        .arg(data)
        .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node and azurite (make setup installs azurite under ~/.cache/medallion-tools)")
}

/// SIGINT lets Azurite write its metadata to disk (it may ignore SIGTERM); SIGKILL after 10 s.
fn stop_gracefully(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn start_azurite(container: &str) -> Azurite {
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let child = spawn_azurite(port, data.path());
    let server = Azurite {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _data: data,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "azurite did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let script = "import sys\nfrom azure.storage.blob import BlobServiceClient\n\
                  conn = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=' + sys.argv[3] + \
                  ';BlobEndpoint=' + sys.argv[1] + '/devstoreaccount1;'\n\
                  BlobServiceClient.from_connection_string(conn).create_container(sys.argv[2])";
    let out = Command::new("python3")
        .args(["-c", script, &server.url, container, DEV_KEY])
        .output()
        .unwrap();
    assert!(out.status.success(), "create container: {}", text(&out));
    server
}

impl Azurite {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.url.clone()),
        ]
    }

    fn medallion(&self, args: &[&str]) -> Output {
        Command::new(BIN).args(args).envs(self.env()).output().unwrap()
    }

    fn python_rows(&self, url: &str) -> usize {
        let script = "import os, sys, deltalake\n\
                      opts = dict(AZURE_STORAGE_USE_EMULATOR='true', AZURE_STORAGE_ACCOUNT_NAME='devstoreaccount1')\n\
                      print(deltalake.DeltaTable(sys.argv[1], storage_options=opts).to_pyarrow_table().num_rows, flush=True)\n\
                      os._exit(0)";
        let out = Command::new("python3")
            .args(["-c", script, url])
            .envs(self.env())
            .output()
            .unwrap();
        assert!(out.status.success(), "python deltalake: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

#[test]
fn example_pipeline_runs_against_azurite() {
    let az = start_azurite("lake");
    let generated = az.medallion(&[
        "generate",
        "--dataset",
        "example",
        "--orders",
        "2000",
        "--out",
        "az://lake/landing",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/example/pipeline.toml");
    let args = [
        "run",
        "--spec",
        spec,
        "--landing",
        "az://lake/landing",
        "--lakehouse",
        "az://lake/lakehouse",
    ];
    let run = az.medallion(&args);
    assert!(run.status.success(), "run on Azurite failed:\n{}", text(&run));
    for table in [
        "bronze/orders_raw",
        "silver/orders",
        "silver/orders__quarantine",
        "gold/daily_revenue",
    ] {
        assert!(
            az.python_rows(&format!("az://lake/lakehouse/{table}")) > 0,
            "{table}"
        );
    }
    let again = az.medallion(&args);
    assert!(again.status.success(), "{}", text(&again));
    // Bronze ingests no landing file twice; the silver and gold tables read no changed table.
    assert_eq!(status_count(&again, "no_new_data"), 5, "{}", text(&again));
}

#[test]
fn wrong_credential_fails_clearly_and_writes_nothing() {
    let az = start_azurite("lake");
    let generated = az.medallion(&[
        "generate",
        "--dataset",
        "example",
        "--orders",
        "200",
        "--out",
        "az://lake/landing",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/example/pipeline.toml");
    let out = Command::new(BIN)
        .args([
            "run",
            "--spec",
            spec,
            "--landing",
            "az://lake/landing",
            "--lakehouse",
            "az://lake/lakehouse",
        ])
        .envs(az.env())
        .env("AZURE_STORAGE_ACCOUNT_KEY", "d3JvbmcgY3JlZGVudGlhbA==")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("Delta table az://lake/lakehouse/bronze/orders_raw"),
        "names the URL: {msg}"
    );
    assert!(msg.contains("AuthorizationFailure"), "{msg}");
    // Nothing was written under the lakehouse.
    let script = "import sys\nfrom azure.storage.blob import BlobServiceClient\n\
                  conn = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=' + sys.argv[2] + \
                  ';BlobEndpoint=' + sys.argv[1] + '/devstoreaccount1;'\n\
                  c = BlobServiceClient.from_connection_string(conn).get_container_client('lake')\n\
                  print(sum(1 for _ in c.list_blobs(name_starts_with='lakehouse/')))";
    let listed = Command::new("python3")
        .args(["-c", script, &az.url, DEV_KEY])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "0",
        "{}",
        text(&listed)
    );
}

#[test]
fn run_survives_the_store_going_away_for_a_few_seconds() {
    let mut az = start_azurite("lake");
    let generated = az.medallion(&[
        "generate",
        "--dataset",
        "example",
        "--orders",
        "200",
        "--out",
        "az://lake/landing",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));
    let port: u16 = az.url.rsplit(':').next().unwrap().parse().unwrap();
    stop_gracefully(&mut az.child);
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/example/pipeline.toml");
    let run = Command::new(BIN)
        .args([
            "run",
            "--spec",
            spec,
            "--landing",
            "az://lake/landing",
            "--lakehouse",
            "az://lake/lakehouse",
        ])
        .envs(az.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run starts while the store is down; it comes back (same data) three seconds later.
    std::thread::sleep(std::time::Duration::from_secs(3));
    az.child = spawn_azurite(port, az._data.path());
    let out = run.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "run did not survive the outage:\n{}",
        text(&out)
    );
    assert!(az.python_rows("az://lake/lakehouse/silver/orders") > 0);
}
