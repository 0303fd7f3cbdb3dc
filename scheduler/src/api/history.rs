//! The job service's run history: a Delta table (`<state>/_medallion/job_runs`) with a row per
//! state change, holding the run and the request that started it, so runs outlive the process.
//! On start, runs whose last row is not an ending were cut off by a restart: they come back
//! `interrupted`, and resubmitting their idempotency key runs them again under the same run id.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::prelude::{SessionConfig, SessionContext};
use medallion_jobs::delta::TableSnapshot;
use medallion_proto::prost::Message;
use medallion_proto::v1::{Run, RunStatus, SubmitRunRequest};
use url::Url;

use crate::{Error, Result};

/// Where the history lives under the state root.
const PATH: &str = "_medallion/job_runs/";

/// The history table of one scheduler.
#[derive(Debug, Clone)]
pub(crate) struct RunHistory {
    url: Url,
}

impl RunHistory {
    pub(crate) fn new(state: &Url) -> Self {
        let mut root = state.clone();
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Self {
            url: root.join(PATH).expect("a relative path joins"),
        }
    }

    fn err(&self, source: medallion_jobs::Error) -> Error {
        Error::History {
            url: self.url.to_string(),
            source,
        }
    }

    /// Appends the run's current state.
    pub(crate) async fn record(&self, run: &Run, request: &SubmitRunRequest) -> Result<()> {
        let status = RunStatus::try_from(run.status).map_or("unknown", |s| s.as_str_name());
        let text = |v: String| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let batch = RecordBatch::try_from_iter([
            ("run_id", text(run.run_id.clone())),
            (
                "recorded_at",
                Arc::new(Int64Array::from(vec![chrono::Utc::now().timestamp_micros()])) as ArrayRef,
            ),
            ("status", text(status.to_string())),
            ("run", text(hex::encode(run.encode_to_vec()))),
            ("request", text(hex::encode(request.encode_to_vec()))),
        ])
        .expect("columns of one row");
        medallion_jobs::pipeline::append_rows(&self.url, batch)
            .await
            .map_err(|e| self.err(e))
    }

    /// The last state of every run, oldest first.
    pub(crate) async fn load(&self) -> Result<Vec<(Run, SubmitRunRequest)>> {
        let Some(snapshot) = TableSnapshot::load(&self.url).await.map_err(|e| self.err(e))? else {
            return Ok(vec![]);
        };
        let runtime = medallion_jobs::storage::runtime_env(None).map_err(|e| self.err(query_err(e)))?;
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
        let table = snapshot.scan_table().map_err(|e| self.err(e))?;
        ctx.register_table("h", Arc::new(table))
            .map_err(|e| self.err(query_err(e)))?;
        let batches = ctx
            .sql("SELECT run, request FROM h ORDER BY recorded_at")
            .await
            .map_err(|e| self.err(query_err(e)))?
            .collect()
            .await
            .map_err(|e| self.err(query_err(e)))?;
        let mut latest: Vec<(Run, SubmitRunRequest)> = Vec::new();
        let mut row = 0;
        for batch in &batches {
            let (runs, requests) = (
                batch.column(0).as_string::<i32>(),
                batch.column(1).as_string::<i32>(),
            );
            for i in 0..batch.num_rows() {
                row += 1;
                let (run, request) = self.decode(row, runs.value(i), requests.value(i))?;
                match latest.iter_mut().find(|(r, _)| r.run_id == run.run_id) {
                    Some(slot) => *slot = (run, request),
                    None => latest.push((run, request)),
                }
            }
        }
        Ok(latest)
    }

    /// One history row; a row this version cannot read stops the load rather than losing a run.
    fn decode(&self, row: usize, run: &str, request: &str) -> Result<(Run, SubmitRunRequest)> {
        let bad = |reason: String| Error::HistoryRow {
            url: self.url.to_string(),
            row,
            reason,
        };
        let run = hex::decode(run).map_err(|e| bad(format!("`run` is not hex: {e}")))?;
        let request = hex::decode(request).map_err(|e| bad(format!("`request` is not hex: {e}")))?;
        let run = Run::decode(&run[..]).map_err(|e| bad(format!("`run` is not a medallion.v1.Run: {e}")))?;
        let request = SubmitRunRequest::decode(&request[..])
            .map_err(|e| bad(format!("`request` is not a medallion.v1.SubmitRunRequest: {e}")))?;
        Ok((run, request))
    }
}

fn query_err(source: datafusion::error::DataFusionError) -> medallion_jobs::Error {
    medallion_jobs::Error::Query {
        table: "job_runs".into(),
        step: "read",
        source: Box::new(source),
    }
}
