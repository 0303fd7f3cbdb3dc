//! `GET /metrics` in Prometheus' text format: the job service's runs by status and what their
//! tables did. A few lines of HTTP/1.1 over a TCP listener — one scrape is one short request, so
//! no web framework is pulled in for it.

use std::fmt::Write as _;
use std::net::SocketAddr;

use medallion_proto::v1::{Run, RunStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::api::JobApi;
use crate::{Error, Result};

/// Serves the metrics of `api` on `bind` until the process stops.
pub async fn serve(bind: SocketAddr, api: JobApi) -> Result<()> {
    let serve_err = |source| Error::ServeMetrics { addr: bind, source };
    let listener = TcpListener::bind(bind).await.map_err(serve_err)?;
    tracing::info!(addr = %bind, "metrics listening");
    loop {
        let (stream, _) = listener.accept().await.map_err(serve_err)?;
        let api = api.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &api).await {
                tracing::debug!(error = %e, "metrics request dropped");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, api: &JobApi) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    // The request line and headers only; a scrape has no body.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") {
        ("200 OK", render(&api.runs()))
    } else {
        ("404 Not Found", "only GET /metrics is served\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The exposition text for these runs.
pub fn render(runs: &[Run]) -> String {
    let statuses = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Interrupted,
    ];
    let mut out = String::new();
    out.push_str(
        "# HELP medallion_runs Runs the job service knows, by status.\n# TYPE medallion_runs gauge\n",
    );
    for status in statuses {
        let n = runs.iter().filter(|r| r.status == status as i32).count();
        let name = status
            .as_str_name()
            .trim_start_matches("RUN_STATUS_")
            .to_lowercase();
        let _ = writeln!(out, "medallion_runs{{status=\"{name}\"}} {n}");
    }
    let tables = runs.iter().flat_map(|r| r.tables.iter());
    let (mut read, mut written, mut quarantined) = (0u64, 0u64, 0u64);
    for t in tables {
        read += t.rows_read;
        written += t.rows_written;
        quarantined += t.rows_quarantined;
    }
    for (name, help, value) in [
        (
            "medallion_table_rows_read",
            "Rows read by the tables of the known runs.",
            read,
        ),
        (
            "medallion_table_rows_written",
            "Rows written by the tables of the known runs.",
            written,
        ),
        (
            "medallion_table_rows_quarantined",
            "Rows quarantined by the tables of the known runs.",
            quarantined,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use medallion_proto::v1::TableResult;

    use super::*;

    #[test]
    fn counts_runs_by_status_and_sums_table_rows() {
        let table = |w| TableResult {
            rows_read: 10,
            rows_written: w,
            rows_quarantined: 1,
            ..Default::default()
        };
        let runs = [
            Run {
                status: RunStatus::Succeeded as i32,
                tables: vec![table(9), table(8)],
                ..Default::default()
            },
            Run {
                status: RunStatus::Queued as i32,
                ..Default::default()
            },
        ];
        let text = render(&runs);
        assert!(
            text.contains("medallion_runs{status=\"succeeded\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("medallion_runs{status=\"queued\"} 1\n"), "{text}");
        assert!(text.contains("medallion_runs{status=\"failed\"} 0\n"), "{text}");
        assert!(text.contains("medallion_table_rows_written 17\n"), "{text}");
        assert!(text.contains("medallion_table_rows_quarantined 2\n"), "{text}");
    }
}
