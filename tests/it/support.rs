//! Helpers: landing files, the `medallion` binary, a loopback cluster, table contents.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use medallion_jobs::delta::TableSnapshot;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_medallion");

/// A landing folder with orders (CSV) and customers (NDJSON), dirt included.
pub(crate) fn write_landing(dir: &Path) {
    std::fs::create_dir_all(dir.join("orders")).unwrap();
    std::fs::create_dir_all(dir.join("customers")).unwrap();
    std::fs::write(
        dir.join("orders/orders_1.csv"),
        "order_id,customer_id,amount,quantity,updated_at\n\
         1,10,20.50,1,2024-01-01 10:00:00\n\
         2,11,15.00,2,2024-01-01 11:00:00\n\
         2,11,15.00,3,2024-01-02 09:00:00\n\
         3,10,-4.00,1,2024-01-01 12:00:00\n\
         4,12,9.99,1,2024-01-02 08:00:00,EXTRA\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("orders/orders_2.csv"),
        "order_id,customer_id,amount,quantity,updated_at\n\
         5,12,100.00,two,2024-01-03 10:00:00\n\
         6,11,7.25,4,2024-01-03 11:00:00\n\
         1,10,20.50,1,2024-01-01 10:00:00\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("customers/customers.ndjson"),
        "{\"customer_id\": 10, \"name\": \"Ada\", \"country\": \"DE\", \"address\": {\"city\": \"Berlin\"}}\n\
         {\"customer_id\": 11, \"name\": \"Bob\", \"country\": \"FR\", \"vip\": true}\n\
         this is not json\n\
         {\"customer_id\": 12, \"name\": \"Cy\", \"country\": \"DE\"}\n",
    )
    .unwrap();
}

/// The 3-layer test pipeline.
pub(crate) const SPEC: &str = r#"
[pipeline]
name = "shop"

[[table]]
name = "orders_raw"
layer = "bronze"
source = { path = "orders/*.csv", format = "csv", schema = { quantity = "int" } }

[[table]]
name = "customers_raw"
layer = "bronze"
source = { path = "customers/*.ndjson", format = "ndjson" }

[[table]]
name = "orders"
layer = "silver"
sql = """
SELECT order_id, customer_id, amount, quantity, updated_at FROM (
  SELECT CAST(order_id AS BIGINT) AS order_id, CAST(customer_id AS BIGINT) AS customer_id,
         CAST(amount AS DOUBLE) AS amount, quantity, updated_at,
         ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY updated_at DESC) AS rn
  FROM orders_raw) WHERE rn = 1
"""
[[table.expect]]
name = "positive_amount"
sql = "amount > 0"
action = "drop"

[[table]]
name = "revenue_by_country"
layer = "gold"
sql = """
SELECT c.country, count(*) AS orders, sum(o.amount) AS revenue
FROM orders o JOIN customers_raw c ON o.customer_id = CAST(c.customer_id AS BIGINT)
GROUP BY c.country
"""
"#;

/// `medallion generate` of the e-commerce data at `scale`, batch `batch`, into `landing`.
pub(crate) fn generate_ecommerce(landing: &Path, scale: &str, batch: u64) {
    let out = Command::new(BIN)
        .args([
            "generate",
            "--scale",
            scale,
            "--batch",
            &batch.to_string(),
            "--out",
        ])
        .arg(landing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// The e-commerce pipeline's spec.
pub(crate) const ECOMMERCE_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../pipelines/ecommerce/pipeline.toml"
);

/// A scratch directory with landing data and the spec.
pub(crate) struct Workspace {
    pub(crate) dir: tempfile::TempDir,
}

impl Workspace {
    pub(crate) fn new(spec: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_landing(&dir.path().join("landing"));
        std::fs::write(dir.path().join("pipeline.toml"), spec).unwrap();
        Self { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `medallion run` with the landing folder and `lake` as lakehouse, plus `extra` flags.
    pub(crate) fn run(&self, lake: &str, extra: &[&str]) -> Output {
        self.command(lake, extra).output().unwrap()
    }

    /// The command [`run`](Self::run) runs, to start it in the background.
    pub(crate) fn command(&self, lake: &str, extra: &[&str]) -> Command {
        let mut args = vec![
            "run".to_string(),
            "--spec".into(),
            self.path("pipeline.toml").display().to_string(),
            "--landing".into(),
            self.path("landing").display().to_string(),
            "--lakehouse".into(),
            self.path(lake).display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut command = Command::new(BIN);
        command.args(&args);
        command
    }
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// How many tables a `medallion run` summary reports with `status`.
pub(crate) fn status_count(output: &Output, status: &str) -> usize {
    String::from_utf8_lossy(&output.stdout).matches(status).count()
}

/// The run id a `medallion run` printed.
pub(crate) fn run_id(output: &Output) -> String {
    let all = text(output);
    let start = all.find("run-").expect("run id printed");
    all[start..].split_whitespace().next().unwrap().to_string()
}

/// Rows of a Delta table as a sorted, pretty-printed string (columns in `select`).
pub(crate) async fn table_rows(table: &Path, select: &str) -> String {
    let url = url::Url::from_directory_path(table).unwrap();
    let snapshot = TableSnapshot::load(&url)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no Delta table at {}", table.display()));
    let ctx = SessionContext::new();
    ctx.register_table("t", std::sync::Arc::new(snapshot.scan_table().unwrap()))
        .unwrap();
    let frame = ctx.sql(&format!("SELECT {select} FROM t")).await.unwrap();
    // Every column, so rows tied on the first ones come out in one order too.
    let order: Vec<_> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| datafusion::prelude::ident(f.name()).sort(true, false))
        .collect();
    let batches = frame.sort(order).unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

/// Delta version of a table.
/// Parquet files in a table's folder (live or not: a table written once has only live ones).
pub(crate) fn parquet_files(table: &Path) -> usize {
    std::fs::read_dir(table)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "parquet")
        })
        .count()
}

pub(crate) async fn version(table: &Path) -> i64 {
    let url = url::Url::from_directory_path(table).unwrap();
    TableSnapshot::load(&url)
        .await
        .unwrap()
        .map_or(-1, |s| s.version())
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts executor `i` on its ports with a given work dir.
type SpawnExecutor = Box<dyn Fn(usize, &Path) -> Child + Send>;

/// Child processes killed when dropped.
pub(crate) struct Cluster {
    children: Vec<Child>,
    pub(crate) scheduler_url: String,
    /// How the scheduler (children[0]) was started, to start it again.
    restart: Box<dyn Fn() -> Child + Send>,
    /// How executor `i` (children[i + 1]) is started on its ports with a given work dir.
    spawn_executor: SpawnExecutor,
    executor_ports: Vec<u16>,
    work: PathBuf,
}

impl Cluster {
    /// Kills the scheduler with SIGKILL and starts it again with the same flags; the executors
    /// re-register with their next heartbeat.
    pub(crate) fn restart_scheduler(&mut self) {
        let _ = self.children[0].kill();
        let _ = self.children[0].wait();
        self.children[0] = (self.restart)();
        let port: u16 = self.scheduler_url.rsplit(':').next().unwrap().parse().unwrap();
        wait_for_port(port, "restarted scheduler");
    }

    /// SIGKILL to executor `i`: its running tasks and shuffle files are gone.
    pub(crate) fn kill_executor(&mut self, i: usize) {
        let _ = self.children[i + 1].kill();
        let _ = self.children[i + 1].wait();
    }

    /// Starts executor `i` again on the same ports with an empty work dir (a pod's `emptyDir`).
    pub(crate) fn restart_executor(&mut self, i: usize, generation: usize) {
        let dir = self.work.join(format!("executor{i}-{generation}"));
        std::fs::create_dir_all(&dir).unwrap();
        self.children[i + 1] = (self.spawn_executor)(i, &dir);
        wait_for_port(self.executor_ports[i], "restarted executor");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `medallion scheduler` and `executors` × `medallion executor` on loopback.
pub(crate) fn start_cluster(work: &Path, executors: usize) -> Cluster {
    start_cluster_with_env(work, executors, &[])
}

/// [`start_cluster`] with extra environment variables (e.g. object store credentials).
pub(crate) fn start_cluster_with_env(work: &Path, executors: usize, env: &[(&str, String)]) -> Cluster {
    start_cluster_with_args(work, executors, env, &[])
}

/// [`start_cluster_with_env`] with extra `medallion scheduler` flags (e.g. the job service).
pub(crate) fn start_cluster_with_args(
    work: &Path,
    executors: usize,
    env: &[(&str, String)],
    scheduler_args: &[String],
) -> Cluster {
    start_cluster_with_flags(work, executors, env, scheduler_args, &[])
}

/// [`start_cluster_with_args`] with extra `medallion executor` flags too.
pub(crate) fn start_cluster_with_flags(
    work: &Path,
    executors: usize,
    env: &[(&str, String)],
    scheduler_args: &[String],
    executor_args: &[String],
) -> Cluster {
    let port = free_port();
    let (dir, vars) = (
        work.to_path_buf(),
        env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>(),
    );
    let flags = scheduler_args.to_vec();
    let spawn_scheduler = move || {
        let log = |name: &str| {
            Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(name))
                    .unwrap(),
            )
        };
        Command::new(BIN)
            .envs(vars.iter().cloned())
            .args([
                "scheduler",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--external-host",
                "127.0.0.1",
            ])
            .args(&flags)
            .stdout(log("scheduler.log"))
            .stderr(log("scheduler.err.log"))
            .spawn()
            .unwrap()
    };
    let (work_dir, vars) = (
        work.to_path_buf(),
        env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>(),
    );
    let ports: Vec<(u16, u16)> = (0..executors).map(|_| (free_port(), free_port())).collect();
    let executor_flags = executor_args.to_vec();
    let executor_ports = ports.clone();
    let spawn_executor = move |i: usize, dir: &Path| {
        let (flight, grpc) = executor_ports[i];
        let log = |name: &str| {
            Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(work_dir.join(name))
                    .unwrap(),
            )
        };
        Command::new(BIN)
            .envs(vars.iter().cloned())
            .args([
                "executor",
                "--scheduler",
                &format!("127.0.0.1:{port}"),
                "--bind-host",
                "127.0.0.1",
            ])
            .args([
                "--external-host",
                "127.0.0.1",
                "--port",
                &flight.to_string(),
                "--grpc-port",
                &grpc.to_string(),
            ])
            .args([
                "--concurrent-tasks",
                "2",
                "--work-dir",
                &dir.display().to_string(),
            ])
            .args(&executor_flags)
            .stdout(log(&format!("executor{i}.log")))
            .stderr(log(&format!("executor{i}.err.log")))
            .spawn()
            .unwrap()
    };
    let mut cluster = Cluster {
        children: vec![spawn_scheduler()],
        scheduler_url: format!("df://127.0.0.1:{port}"),
        restart: Box::new(spawn_scheduler),
        spawn_executor: Box::new(spawn_executor),
        executor_ports: ports.iter().map(|p| p.0).collect(),
        work: work.to_path_buf(),
    };
    wait_for_port(port, "scheduler");
    for (i, (port, _)) in ports.iter().enumerate().take(executors) {
        let dir = work.join(format!("executor{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = (cluster.spawn_executor)(i, &dir);
        cluster.children.push(child);
        wait_for_port(*port, "executor");
    }
    // Executors register with the scheduler on their first heartbeat.
    std::thread::sleep(Duration::from_secs(2));
    cluster
}

/// A bronze table and an ALS table that trains for a while (`iterations`).
pub(crate) fn write_long_pipeline(ws: &Workspace, iterations: usize) {
    let dir = ws.path("landing/ratings");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("user_id,item_id,rating\n");
    for u in 0..200 {
        for i in 0..50 {
            if (u + i) % 3 == 0 {
                csv += &format!("{u},{i},{}\n", 1 + (u * i) % 5);
            }
        }
    }
    std::fs::write(dir.join("r.csv"), csv).unwrap();
    std::fs::write(
        ws.path("long.toml"),
        "[pipeline]\nname = \"long\"\n[[table]]\nname = \"ratings_raw\"\nlayer = \"bronze\"\n\
         source = { path = \"ratings/*.csv\", format = \"csv\" }\n[[table]]\nname = \"recs\"\nlayer = \"ml\"\n\
         sql = \"SELECT user_id, item_id, rating FROM ratings_raw\"\n[table.als]\nuser = \"user_id\"\n\
         item = \"item_id\"\niterations = ITERATIONS\n"
            .replace("ITERATIONS", &iterations.to_string()),
    )
    .unwrap();
}

/// Row count of a Delta table read by the `deltalake` Python package (an independent reader).
pub(crate) fn python_row_count(table: &Path) -> usize {
    // os._exit: deltalake's runtime threads can abort the interpreter at normal exit.
    let script = "import os, sys, deltalake\n\
                  print(deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows, flush=True)\n\
                  os._exit(0)";
    let out = Command::new("python3")
        .args(["-c", script, &table.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python deltalake failed (is `pip install deltalake` done?): {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Microseconds since the epoch, for run ids of the new form.
pub(crate) struct RunIdClock;

impl RunIdClock {
    pub(crate) fn now() -> u128 {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        micros * 1000
    }
}

/// Starts `command`, reads its progress lines (stderr) until one contains `moment` or it
/// ends, then kills it (SIGKILL); whether the moment was seen.
pub(crate) fn killed_at(mut command: Command, moment: &str) -> bool {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let progress = BufReader::new(child.stderr.take().unwrap());
    let seen = progress
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(moment));
    child.kill().unwrap();
    child.wait().unwrap();
    seen
}
