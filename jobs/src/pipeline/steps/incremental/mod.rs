//! Incremental SQL tables: a table computed from its inputs' changes since the versions it
//! last recorded, equal to a full recompute, or computed in full with the reason said.
//!
//! The decision comes from the query's DataFusion logical plan ([`shape`]):
//! - an SPJ query (filters, projections, inner joins) whose inputs only had rows appended
//!   gets exactly the rows its inputs' new files give, appended;
//! - an SPJ query whose inputs had rows removed or replaced (a CDC merge, an overwrite) needs
//!   the table's `keys`: the rows of every key the changes touch are replaced;
//! - a grouped query recomputes the groups the changed rows belong to and keeps the others.
//!
//! The inputs' versions are recorded in the table's commit, one `txn` per input whose id
//! includes the query's hash, so a skipped or failed run is covered by the next one and an
//! edited query is computed in full. What the plans read is built in [`rewrite`].

mod by_key;
mod rewrite;
mod shape;

use datafusion::dataframe::DataFrame;
use sha2::{Digest, Sha256};

use self::by_key::{Incremental, Output};
use self::rewrite::InputFiles;
pub(crate) use self::shape::Shape;
use crate::delta::TableSnapshot;
use crate::error::Result;
use crate::pipeline::outcome::InputVersions;
use crate::pipeline::table_job::{TableJob, Watermark};
use crate::quality::Rule;

/// How an incremental table is computed this run.
pub(crate) enum Computed {
    /// From every row of its inputs, recording their versions when its shape allows an
    /// incremental run next time.
    Full {
        reason: String,
        watermarks: Vec<Watermark>,
    },
    /// The rows its inputs' new files give, appended.
    Appended {
        frame: DataFrame,
        watermarks: Vec<Watermark>,
    },
    /// The recomputed keys' rows, and the other rows of the table's files that held those
    /// keys, replacing those `files` (paths) of the table's `of`.
    Replaced {
        frame: DataFrame,
        watermarks: Vec<Watermark>,
        files: Vec<String>,
        of: usize,
    },
    /// Nothing changed in its inputs.
    Unchanged,
}

impl From<Computed> for Decided {
    fn from(computed: Computed) -> Self {
        Decided {
            computed,
            inputs: vec![],
        }
    }
}

impl Computed {
    fn full(reason: impl Into<String>) -> Self {
        Computed::Full {
            reason: reason.into(),
            watermarks: vec![],
        }
    }
}

/// How a table is computed, and the input versions that covers.
pub(crate) struct Decided {
    pub(crate) computed: Computed,
    pub(crate) inputs: Vec<InputVersions>,
}

/// What an incremental table's query needs to decide.
pub(crate) struct Query<'a> {
    /// The query's text (its hash is part of each recorded version's id).
    pub(crate) sql: &'a str,
    /// The query, planned over its inputs as they are.
    pub(crate) frame: &'a DataFrame,
    /// Its expectations.
    pub(crate) rules: &'a [Rule],
    /// The table as it is.
    pub(crate) target: Option<&'a TableSnapshot>,
}

/// How `query` is computed this run.
pub(crate) async fn computed(job: &TableJob<'_>, query: Query<'_>) -> Result<Decided> {
    let plan = query.frame.logical_plan();
    let shape = match Shape::of(plan) {
        Ok(shape) => shape,
        Err(why) => return Ok(Decided::from(Computed::full(format!("the query has {why}")))),
    };
    let mut snapshots = vec![];
    for input in shape.inputs() {
        let Some(spec) = job.pipeline.table(input) else {
            return Ok(Computed::full(format!("`{input}` is not a table of the pipeline")).into());
        };
        let Some(snapshot) = TableSnapshot::load(&job.lakehouse.table_url(spec)).await? else {
            return Ok(Computed::full(format!("`{input}` has never been committed")).into());
        };
        snapshots.push((input.clone(), snapshot));
    }
    let hash = hex::encode(&Sha256::digest(query.sql.as_bytes())[..6]);
    let id = |input: &str| {
        format!(
            "medallion/{}/{}/applied/{input}/{hash}",
            job.pipeline.name, job.table.name
        )
    };
    let watermarks: Vec<Watermark> = snapshots.iter().map(|(n, s)| (id(n), s.version())).collect();
    let mut inputs_read: Vec<InputVersions> = snapshots
        .iter()
        .map(|(name, s)| InputVersions {
            table: name.clone(),
            from: None,
            to: s.version(),
        })
        .collect();
    let full = |reason: String, inputs: &[InputVersions]| {
        let computed = Computed::Full {
            reason,
            watermarks: watermarks.clone(),
        };
        Ok(Decided {
            computed,
            inputs: inputs.to_vec(),
        })
    };
    let Some(target) = query.target.filter(|_| !job.full_refresh) else {
        let why = if job.full_refresh {
            "--full-refresh"
        } else {
            "first run"
        };
        return full(why.into(), &inputs_read);
    };
    let mut inputs = vec![];
    for ((name, snapshot), read) in snapshots.iter().zip(&mut inputs_read) {
        let Some(recorded) = target.txn_version(&id(name)).await? else {
            return full(format!("no version of `{name}` recorded for this query"), &[]);
        };
        read.from = Some(recorded);
        let Some(changes) = snapshot.changes_since(recorded).await? else {
            return full(
                format!("the log of `{name}` no longer holds version {recorded}"),
                &[],
            );
        };
        inputs.push(InputFiles {
            name: name.clone(),
            current: snapshot.scan_table()?,
            added: changes.added,
            removed: changes.removed,
        });
    }
    if !inputs.iter().any(InputFiles::changed) {
        return Ok(Computed::Unchanged.into());
    }
    let incremental = Incremental {
        job,
        plan,
        target,
        inputs: &inputs,
    };
    let computed = match incremental.frame(&shape, &query).await? {
        Ok(Some((frame, Output::Appended))) => Computed::Appended { frame, watermarks },
        Ok(Some((frame, Output::Replacing { files, of }))) => Computed::Replaced {
            frame,
            watermarks,
            files,
            of,
        },
        Ok(None) => Computed::Unchanged,
        Err(reason) => return full(reason, &inputs_read),
    };
    Ok(Decided {
        computed,
        inputs: inputs_read,
    })
}
