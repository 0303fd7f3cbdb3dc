//! `medallion bench --kafka kafka://host:port`: records per second from a broker into bronze
//! and through silver (the e-commerce clickstream and payments, `pipelines/ecommerce/kafka.toml`),
//! then the latency of a continuous run — from publishing a record to seeing it in a silver
//! table — over a series of probe records.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use medallion_jobs::delta::TableSnapshot;
use medallion_jobs::generate::EcommerceData;
use medallion_jobs::kafka::Publisher;
use medallion_jobs::pipeline::resolve_url;
use medallion_jobs::spec::KafkaConnection;
use tokio::sync::watch;

use super::{BenchArgs, BenchCluster, landing, peak_rss, print_tables, run_args};
use crate::commands::continuous::micro_batches;
use crate::commands::generate::kafka_target;
use crate::commands::run::RunArgs;
use crate::error::{Error, Result};

/// Probe records published for the latency figures.
const PROBES: u64 = 20;
/// The continuous run's trigger in the latency part.
const TRIGGER_SECONDS: f64 = 1.0;

pub(super) async fn run(args: &BenchArgs, to: &str, dir: &Path) -> Result<ExitCode> {
    let connection = kafka_target(to)?;
    let bootstrap = connection.bootstrap.join(",");
    let published_at = Instant::now();
    let written = EcommerceData::new(resolve_url(None, &landing(dir))?, args.scale)
        .with_kafka(connection.clone())
        .write()
        .await?;
    let streamed: u64 = written.iter().filter(|w| w.files == 0).map(|w| w.lines).sum();
    println!(
        "published {streamed} clickstream and payments records to {to} in {:.2}s (with the other sources' files)",
        published_at.elapsed().as_secs_f64()
    );
    let mut through = run_args(args, dir, "pipelines/ecommerce/kafka.toml");
    through.vars = vec![format!("kafka_bootstrap={bootstrap}")];
    // One cluster for every run of the benchmark, as a continuous run has.
    let cluster = BenchCluster::start(&through).await?;
    let mut ok = true;
    for (what, select) in [
        ("broker → bronze", ["clickstream_raw", "payments_raw"]),
        ("bronze → silver", ["clickstream", "payments"]),
    ] {
        through.select = select.iter().map(|s| s.to_string()).collect();
        let summary = cluster.run(&through).await?;
        ok &= summary.succeeded();
        print_tables(&summary);
        let rows: u64 = summary.tables.iter().map(|t| t.rows_read).sum();
        let secs = summary.duration.as_secs_f64();
        println!(
            "{what}: {rows} records in {secs:.2}s, {:.0} records/s",
            rows as f64 / secs.max(1e-9)
        );
    }
    let latencies = latency(args, &connection, dir, cluster.ctx()).await?;
    print_latency(&latencies);
    println!("peak RSS: {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Publishes probe records one at a time while a continuous run follows the topic, and times
/// each until the silver table has it.
async fn latency(
    args: &BenchArgs,
    connection: &KafkaConnection,
    dir: &Path,
    ctx: &SessionContext,
) -> Result<Vec<Duration>> {
    let spec = dir.join("latency.toml");
    let text = format!(
        r#"[pipeline]
name = "latency"

[[table]]
name = "probes_raw"
layer = "bronze"
source = {{ kafka = {{ bootstrap = "{}", topic = "medallion_bench_probes", starting_offsets = "latest" }}, format = "json", schema = {{ id = "bigint" }} }}

[[table]]
name = "probes"
layer = "silver"
sql = "SELECT id FROM probes_raw"
"#,
        connection.bootstrap.join(",")
    );
    std::fs::write(&spec, text).map_err(|source| Error::Io {
        path: spec.display().to_string(),
        source,
    })?;
    let mut probe_args: RunArgs = run_args(args, dir, &spec.display().to_string());
    probe_args.lakehouse = Some(dir.join("latency-lake").display().to_string());
    probe_args.trigger_seconds = TRIGGER_SECONDS;
    let mut publisher = Publisher::connect(connection, 1).await.map_err(bench_err)?;
    // The topic exists before the first micro-batch, which records where it starts.
    publisher
        .publish("medallion_bench_probes", vec![b"{\"id\": 0}".to_vec()])
        .await
        .map_err(bench_err)?;
    let (stop, stopping) = watch::channel(false);
    let (_cancel, cancelled) = watch::channel(false);
    let table = dir.join("latency-lake/silver/probes");
    let loop_args = probe_args.clone();
    let ctx = ctx.clone();
    let batches =
        tokio::spawn(async move { micro_batches(&loop_args, &ctx, stopping, cancelled, |_, _| {}).await });
    // The first micro-batch records where the topic ends; probes are published after it.
    let started = Instant::now();
    while !table.join("_delta_log").exists() {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(bench_err(
                "the continuous run never wrote its first micro-batch".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies = Vec::new();
    for id in 1..=PROBES {
        let sent = Instant::now();
        let value = format!("{{\"id\": {id}}}").into_bytes();
        publisher
            .publish("medallion_bench_probes", vec![value])
            .await
            .map_err(bench_err)?;
        while !visible(&table, id).await {
            if sent.elapsed() > Duration::from_secs(120) {
                return Err(bench_err(format!("probe {id} never reached silver within 120 s")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.push(sent.elapsed());
        // Probes land at different moments of the trigger interval.
        tokio::time::sleep(Duration::from_millis(300 + 97 * (id % 7))).await;
    }
    let _ = stop.send(true);
    let _ = batches.await;
    Ok(latencies)
}

async fn visible(table: &Path, id: u64) -> bool {
    let Ok(url) = url::Url::from_directory_path(table) else {
        return false;
    };
    let Ok(Some(snapshot)) = TableSnapshot::load(&url).await else {
        return false;
    };
    let Ok(scan) = snapshot.scan_table() else {
        return false;
    };
    let ctx = SessionContext::new();
    if ctx.register_table("t", std::sync::Arc::new(scan)).is_err() {
        return false;
    }
    let Ok(frame) = ctx.sql(&format!("SELECT id FROM t WHERE id = {id}")).await else {
        return false;
    };
    frame.count().await.is_ok_and(|n| n > 0)
}

fn print_latency(latencies: &[Duration]) {
    let mut secs: Vec<f64> = latencies.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    let at = |q: f64| secs[((secs.len() - 1) as f64 * q).round() as usize];
    println!(
        "continuous run (trigger {TRIGGER_SECONDS}s), publish → visible in silver, {} probes: min {:.2}s, median {:.2}s, p90 {:.2}s, max {:.2}s",
        secs.len(),
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn bench_err(message: String) -> Error {
    Error::Bench { message }
}
