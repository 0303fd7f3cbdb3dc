//! `medallion submit | status | watch | cancel | runs`: the job service's client. `submit
//! --wait` and `watch` exit 0 only when the run succeeded, so a CronJob fails with its run.

use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use medallion_proto::tonic::transport::{Certificate, Channel, ClientTlsConfig};
use medallion_proto::tonic::{Request, Status};
use medallion_proto::v1::job_service_client::JobServiceClient;
use medallion_proto::v1::run_event::Event;
use medallion_proto::v1::submit_run_request::Pipeline;
use medallion_proto::v1::{
    CancelRunRequest, GetRunReportRequest, GetRunRequest, ListRunsRequest, Run, RunStatus, SubmitRunRequest,
    TableResult, WatchRunRequest,
};

use crate::error::{Error, Result};

/// Where the job service is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// Job service URL (the scheduler's --api-bind).
    #[arg(
        long = "api",
        visible_alias = "scheduler",
        env = "MEDALLION_API",
        default_value = "http://127.0.0.1:50051"
    )]
    url: String,
    /// Bearer token.
    #[arg(long, env = "MEDALLION_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the bearer token (a mounted Secret), read at start.
    #[arg(long, env = "MEDALLION_API_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<String>,
    /// PEM certificate to trust for an `https://` job service (e.g. a private CA's).
    #[arg(long, env = "MEDALLION_API_CA_CERT")]
    ca_cert: Option<String>,
}

/// Flags of `medallion submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Pipeline spec file, sent inline.
    #[arg(
        long,
        env = "MEDALLION_SPEC",
        conflicts_with = "pipeline",
        required_unless_present = "pipeline"
    )]
    spec: Option<String>,
    /// Name of a pipeline in the scheduler's --pipelines directory.
    #[arg(long, env = "MEDALLION_PIPELINE")]
    pipeline: Option<String>,
    /// dbt-style selectors.
    #[arg(long = "select", short = 's', value_delimiter = ',')]
    select: Vec<String>,
    /// Layers to run.
    #[arg(long, value_delimiter = ',')]
    layer: Vec<String>,
    /// Run parameters, name=value.
    #[arg(long = "var", value_delimiter = ',')]
    vars: Vec<String>,
    /// A resubmission with the same key returns the first run.
    #[arg(long, env = "MEDALLION_IDEMPOTENCY_KEY")]
    idempotency_key: Option<String>,
    /// Rebuild tables from scratch.
    #[arg(long)]
    full_refresh: bool,
    /// Lakehouse root override.
    #[arg(long)]
    lakehouse: Option<String>,
    /// Landing root override.
    #[arg(long)]
    landing: Option<String>,
    /// Follow the run to its end; the exit code is the run's outcome.
    #[arg(long)]
    wait: bool,
}

/// Flags of the commands about one run.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The run id (`run-…`).
    run_id: String,
}

/// Flags of `medallion status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Also print each table's column lineage.
    #[arg(long)]
    lineage: bool,
    /// Also fetch the run's HTML report (GetRunReport) into this file.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
}

/// Flags of `medallion runs`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only this pipeline's runs.
    #[arg(long)]
    pipeline: Option<String>,
    /// Only runs in this status (queued, running, succeeded, failed, cancelled, interrupted).
    #[arg(long)]
    status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

struct Client {
    inner: JobServiceClient<Channel>,
    token: Option<String>,
}

impl Client {
    async fn connect(api: &ApiArgs) -> Result<Self> {
        let connect_err = |source| Error::Connect {
            url: api.url.clone(),
            source,
        };
        let mut endpoint = Channel::from_shared(api.url.clone()).map_err(|e| Error::BadFlag {
            flag: "api",
            message: e.to_string(),
        })?;
        if let Some(path) = &api.ca_cert {
            let pem = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint.tls_config(tls).map_err(connect_err)?;
        }
        let token = match &api.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| Error::Io {
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => api.token.clone(),
        };
        let channel = endpoint.connect().await.map_err(connect_err)?;
        Ok(Self {
            inner: JobServiceClient::new(channel),
            token,
        })
    }

    fn request<T>(&self, message: T) -> Result<Request<T>> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().map_err(|_| Error::BadFlag {
                flag: "token",
                message: "not a valid header value".into(),
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

fn api_err(status: Status) -> Error {
    Error::Api { status }
}

pub(crate) async fn submit(args: SubmitArgs) -> Result<ExitCode> {
    let pipeline = match (&args.spec, &args.pipeline) {
        (Some(path), _) => Pipeline::SpecToml(std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?),
        (None, Some(name)) => Pipeline::PipelineName(name.clone()),
        (None, None) => unreachable!("clap requires --spec or --pipeline"),
    };
    let vars = args
        .vars
        .iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| Error::BadFlag {
                    flag: "var",
                    message: format!("`{v}` is not name=value"),
                })
        })
        .collect::<Result<_>>()?;
    let mut client = Client::connect(&args.api).await?;
    let request = client.request(SubmitRunRequest {
        pipeline: Some(pipeline),
        spec_name: args.spec.clone().unwrap_or_default(),
        select: args.select,
        layers: args.layer,
        vars,
        idempotency_key: args.idempotency_key.unwrap_or_default(),
        full_refresh: args.full_refresh,
        lakehouse: args.lakehouse.unwrap_or_default(),
        landing: args.landing.unwrap_or_default(),
    })?;
    let submitted = client
        .inner
        .submit_run(request)
        .await
        .map_err(api_err)?
        .into_inner();
    let note = if submitted.existing {
        " (existing run for this idempotency key)"
    } else {
        ""
    };
    println!("{}{note}", submitted.run_id);
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    follow(&mut client, &submitted.run_id).await
}

pub(crate) async fn watch(args: RunArgs) -> Result<ExitCode> {
    let mut client = Client::connect(&args.api).await?;
    follow(&mut client, &args.run_id).await
}

/// Prints the run's events as they come; the exit code is its outcome.
async fn follow(client: &mut Client, run_id: &str) -> Result<ExitCode> {
    let request = client.request(WatchRunRequest {
        run_id: run_id.into(),
    })?;
    let mut events = client
        .inner
        .watch_run(request)
        .await
        .map_err(api_err)?
        .into_inner();
    while let Some(event) = events.next().await {
        match event.map_err(api_err)?.event {
            Some(Event::StatusChanged(s)) => eprintln!("  {run_id} {}", status_name(s)),
            Some(Event::TableQueued(table)) => eprintln!("  queued   {table}"),
            Some(Event::TableStarted(table)) => eprintln!("  started  {table}"),
            Some(Event::TableFinished(t)) => eprintln!("  {}", table_line(&t)),
            Some(Event::TableRetrying(t)) => eprintln!("  retrying {}", table_line(&t)),
            Some(Event::RunFinished(run)) => {
                print!("{}", render(&run));
                return Ok(outcome(&run));
            }
            None => {}
        }
    }
    Err(api_err(Status::unavailable(
        "the event stream ended before the run did",
    )))
}

pub(crate) async fn status(args: StatusArgs) -> Result<ExitCode> {
    let mut client = Client::connect(&args.run.api).await?;
    let run_id = args.run.run_id;
    let request = client.request(GetRunRequest {
        run_id: run_id.clone(),
    })?;
    let run = client
        .inner
        .get_run(request)
        .await
        .map_err(api_err)?
        .into_inner()
        .run;
    let run = run.unwrap_or_default();
    print!("{}", render(&run));
    if args.lineage {
        print!("{}", render_lineage(&run));
    }
    let Some(out) = args.report else {
        return Ok(ExitCode::SUCCESS);
    };
    let request = client.request(GetRunReportRequest { run_id })?;
    let report = client
        .inner
        .get_run_report(request)
        .await
        .map_err(api_err)?
        .into_inner();
    std::fs::write(&out, &report.html).map_err(|source| Error::Io {
        path: out.display().to_string(),
        source,
    })?;
    eprintln!("report written to {}", out.display());
    for failed in &report.failed_charts {
        eprintln!("chart not drawn: {failed}");
    }
    Ok(match report.failed_charts.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    })
}

/// `  gold.fact_sales: net_amount <- order_items.discount, …`, a line per column.
fn render_lineage(run: &Run) -> String {
    let mut out = String::new();
    for t in run.tables.iter().filter(|t| t.status != "retried") {
        for column in &t.lineage {
            let sources: Vec<String> = column
                .sources
                .iter()
                .map(|s| format!("{}.{}", s.table, s.column))
                .collect();
            out += &format!(
                "  {}.{}: {} <- {}\n",
                t.layer,
                t.table,
                column.column,
                sources.join(", ")
            );
        }
    }
    out
}

pub(crate) async fn cancel(args: RunArgs) -> Result<ExitCode> {
    let mut client = Client::connect(&args.api).await?;
    let request = client.request(CancelRunRequest { run_id: args.run_id })?;
    let reply = client.inner.cancel_run(request).await.map_err(api_err)?;
    show(reply.into_inner().run)
}

fn show(run: Option<Run>) -> Result<ExitCode> {
    print!("{}", render(&run.unwrap_or_default()));
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn list(args: ListArgs) -> Result<ExitCode> {
    let status = match args.status.as_deref() {
        None => 0,
        Some(name) => RunStatus::from_str_name(&format!("RUN_STATUS_{}", name.to_uppercase()))
            .map(|s| s as i32)
            .ok_or_else(|| Error::BadFlag {
                flag: "status",
                message: format!("unknown status `{name}`"),
            })?,
    };
    let mut client = Client::connect(&args.api).await?;
    let request = client.request(ListRunsRequest {
        pipeline: args.pipeline.unwrap_or_default(),
        status,
        page_size: args.limit,
        page_token: String::new(),
    })?;
    let runs = client
        .inner
        .list_runs(request)
        .await
        .map_err(api_err)?
        .into_inner()
        .runs;
    println!(
        "{:<24} {:<16} {:<12} {:>7}",
        "run", "pipeline", "status", "tables"
    );
    for run in runs {
        println!(
            "{:<24} {:<16} {:<12} {:>7}",
            run.run_id,
            run.pipeline,
            status_name(run.status),
            run.tables.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn status_name(status: i32) -> String {
    RunStatus::try_from(status)
        .map(|s| s.as_str_name().trim_start_matches("RUN_STATUS_").to_lowercase())
        .unwrap_or_else(|_| status.to_string())
}

fn outcome(run: &Run) -> ExitCode {
    if run.status == RunStatus::Succeeded as i32 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn table_line(t: &TableResult) -> String {
    let mut line = format!(
        "{:<28} {:<18} {:>10} {:>10} {:>11} {:>8.2}s",
        format!("{}.{}", t.layer, t.table),
        t.status,
        t.rows_read,
        t.rows_written,
        t.rows_quarantined,
        t.seconds
    );
    if !t.error.is_empty() {
        line += &format!("\n      error: {}", t.error);
    }
    line
}

fn render(run: &Run) -> String {
    let mut out = format!(
        "run {} of {}: {}\n",
        run.run_id,
        run.pipeline,
        status_name(run.status)
    );
    for t in &run.tables {
        out += &format!("  {}\n", table_line(t));
    }
    if !run.error.is_empty() {
        out += &format!("  error: {}\n", run.error);
    }
    out
}
