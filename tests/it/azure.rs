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

fn start_azurite(container: &str) -> Azurite {
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let child = Command::new("node")
        .arg(azurite_bin())
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
        ])
        .arg(data.path())
        .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node and azurite (make setup installs azurite under ~/.cache/medallion-tools)");
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
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches("no_new_data")
            .count(),
        2,
        "{}",
        text(&again)
    );
}
