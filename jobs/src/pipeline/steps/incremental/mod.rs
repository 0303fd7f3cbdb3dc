//! Incremental SQL tables: a table computed from its inputs' changes since the versions it
//! last recorded, equal to a full recompute, or computed in full with the reason said.
//!
//! The decision comes from the query's DataFusion logical plan ([`shape`]):
//! - an SPJ query (filters, projections, inner joins) whose inputs only had rows appended
//!   gets exactly the rows its inputs' new files give, appended;
//! - an SPJ query whose inputs had rows removed or replaced (a CDC merge, an overwrite) needs
//!   the table's `keys`: the rows of every key the changes touch are replaced (found without
//!   a join when the first key is the column every input is joined by, [`linked`]);
//! - a grouped query recomputes the groups the changed rows belong to and keeps the others;
//!   over one input that only gained rows, with `count`, `sum`, `min` and `max` as its
//!   columns, it combines each touched group's stored values with the new rows' ([`combine`]).
//!
//! The inputs' versions are recorded in the table's commit, one `txn` per input whose id
//! includes the query's hash, so a skipped or failed run is covered by the next one and an
//! edited query is computed in full. What the plans read is built in [`rewrite`] (an input
//! whose rows are unique gives its changes row by row, not file by file; a `cdc` input's
//! changed keys come off its change log, [`logged`]); which input files a
//! group's recompute reads, in [`prune`]; which files of a joined input a changed input's rows
//! can meet, in [`partners`].

mod by_key;
mod combine;
mod linked;
mod logged;
mod partners;
mod prune;
mod rewrite;
mod shape;
mod shipped;

use std::collections::BTreeSet;

use datafusion::dataframe::DataFrame;
use sha2::{Digest, Sha256};

use self::by_key::{Incremental, Output};
pub(crate) use self::by_key::{InputRead, Merged};
pub(crate) use self::rewrite::InputFiles;
pub(crate) use self::shape::Shape;
pub(crate) use self::shipped::ShippedKeys;
use crate::delta::TableSnapshot;
use crate::error::Result;
use crate::pipeline::outcome::InputVersions;
use crate::pipeline::steps::sql::HELPER_PREFIX;
use crate::pipeline::table_job::{TableJob, Watermark};
use crate::quality::Rule;
use crate::spec::TableKind;

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
    /// keys, replacing those `files` (paths) of the table's `of`; `read`: the inputs the
    /// recompute read only some files of.
    Replaced {
        frame: DataFrame,
        watermarks: Vec<Watermark>,
        files: Vec<String>,
        of: usize,
        read: Vec<InputRead>,
        how: Merged,
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

/// How a run would compute a query (`plan`'s kind): its shape, and for a grouped query whose
/// groups can be combined, that a batch of appended rows is combined, or why it is in full.
pub(crate) fn planned(plan: &datafusion::logical_expr::LogicalPlan) -> String {
    match Shape::of(plan) {
        Ok(shape) if combine::combinable(&shape, plan).is_ok() => {
            format!("{shape}, combined with the new rows when its input was only appended to")
        }
        Ok(shape) => shape.to_string(),
        Err(why) => format!("full, the query has {why}"),
    }
}

/// How `query` is computed this run.
pub(crate) async fn computed(job: &TableJob<'_>, query: Query<'_>) -> Result<Decided> {
    let plan = query.frame.logical_plan();
    let shape = match Shape::of(plan) {
        Ok(shape) => shape,
        Err(why) => return Ok(Computed::full(format!("the query has {why}")).into()),
    };
    let snapshots = match input_snapshots(job, shape.inputs()).await? {
        Ok(snapshots) => snapshots,
        Err(why) => return Ok(Computed::full(why).into()),
    };
    let mut versions = Versions::new(job, query.sql, &snapshots);
    let Some(target) = query.target.filter(|_| !job.full_refresh) else {
        let why = if job.full_refresh {
            "--full-refresh"
        } else {
            "first run"
        };
        return Ok(versions.full(why.into()));
    };
    if stored_columns(target)? != output_columns(plan) {
        return Ok(versions.full("its output columns changed since the last run".into()));
    }
    let inputs = match versions.changes(job, target, &snapshots).await? {
        Ok(inputs) => inputs,
        Err(why) => return Ok(versions.full(why)),
    };
    for input in &inputs {
        tracing::debug!(input = %input.name, added = input.added.len(), removed = input.removed.len(), "input changes");
    }
    if !inputs.iter().any(InputFiles::changed) {
        return Ok(Computed::Unchanged.into());
    }
    // Its changes would be all of it, twice: computing from them costs more than from it.
    if let Some(rewritten) = inputs.iter().find(|i| i.rewritten_in_full()) {
        let why = format!("`{}` was rewritten in full since the last run", rewritten.name);
        return Ok(versions.full(why));
    }
    let incremental = Incremental {
        job,
        plan,
        target,
        inputs: &inputs,
    };
    let watermarks = versions.watermarks();
    let computed = match incremental.frame(&shape, &query).await? {
        Ok(Some((frame, Output::Appended))) => Computed::Appended { frame, watermarks },
        Ok(Some((frame, Output::Replacing { files, of, read, how }))) => Computed::Replaced {
            frame,
            watermarks,
            files,
            of,
            read,
            how,
        },
        Ok(None) => Computed::Unchanged,
        Err(reason) => return Ok(versions.full(reason)),
    };
    Ok(Decided {
        computed,
        inputs: versions.read,
    })
}

/// The table's column names.
fn stored_columns(target: &TableSnapshot) -> Result<BTreeSet<String>> {
    let schema = target.scan_table()?.schema;
    Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
}

/// The names of the query's columns the table stores (not its helpers).
fn output_columns(plan: &datafusion::logical_expr::LogicalPlan) -> BTreeSet<String> {
    let schema = plan.schema();
    let names = schema.fields().iter().map(|f| f.name().clone());
    names.filter(|n| !n.starts_with(HELPER_PREFIX)).collect()
}

/// Each input's snapshot now, or why there is none to compute from.
async fn input_snapshots(
    job: &TableJob<'_>,
    inputs: &[String],
) -> Result<std::result::Result<Vec<(String, TableSnapshot)>, String>> {
    let mut snapshots = vec![];
    for input in inputs {
        let Some(spec) = job.pipeline.table(input) else {
            return Ok(Err(format!("`{input}` is not a table of the pipeline")));
        };
        let Some(snapshot) = TableSnapshot::load(&job.lakehouse.table_url(spec)).await? else {
            return Ok(Err(format!("`{input}` has never been committed")));
        };
        snapshots.push((input.clone(), snapshot));
    }
    Ok(Ok(snapshots))
}

/// Whether `input`'s rows are unique: a `cdc` table's are by construction; another table's
/// are when it declares `keys` (as dbt's `unique_key`, which the quality gate can check).
fn unique_rows(job: &TableJob<'_>, input: &str) -> bool {
    job.pipeline
        .table(input)
        .is_some_and(|t| matches!(t.kind, TableKind::Cdc(_)) || !t.keys.is_empty())
}

/// The inputs' versions: recorded by the table (per input, an id with the query's hash) and read now.
pub(crate) struct Versions {
    ids: Vec<String>,
    pub(crate) read: Vec<InputVersions>,
}

impl Versions {
    pub(crate) fn new(job: &TableJob<'_>, sql: &str, snapshots: &[(String, TableSnapshot)]) -> Self {
        let hash = hex::encode(&Sha256::digest(sql.as_bytes())[..6]);
        let (pipeline, table) = (&job.pipeline.name, &job.table.name);
        let ids = snapshots
            .iter()
            .map(|(input, _)| format!("medallion/{pipeline}/{table}/applied/{input}/{hash}"))
            .collect();
        let read = snapshots
            .iter()
            .map(|(name, snapshot)| InputVersions {
                table: name.clone(),
                from: None,
                to: snapshot.version(),
            })
            .collect();
        Self { ids, read }
    }

    /// What the table's commit records: each input's version read now.
    pub(crate) fn watermarks(&self) -> Vec<Watermark> {
        self.ids
            .iter()
            .cloned()
            .zip(self.read.iter().map(|r| r.to))
            .collect()
    }

    /// Whether `target` recorded each input at the version read now.
    pub(crate) async fn unchanged(&self, target: &TableSnapshot) -> Result<bool> {
        for (id, read) in self.ids.iter().zip(&self.read) {
            if target.txn_version(id).await? != Some(read.to) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Each input's files added and removed since the version `target` recorded, or why they
    /// cannot be known.
    pub(crate) async fn changes(
        &mut self,
        job: &TableJob<'_>,
        target: &TableSnapshot,
        snapshots: &[(String, TableSnapshot)],
    ) -> Result<std::result::Result<Vec<InputFiles>, String>> {
        let mut inputs = vec![];
        for (((name, snapshot), id), read) in snapshots.iter().zip(&self.ids).zip(&mut self.read) {
            let Some(recorded) = target.txn_version(id).await? else {
                return Ok(Err(format!("no version of `{name}` recorded for this query")));
            };
            read.from = Some(recorded);
            let Some(changes) = snapshot.changes_since(recorded).await? else {
                return Ok(Err(format!(
                    "the log of `{name}` no longer holds version {recorded}"
                )));
            };
            inputs.push(InputFiles {
                name: name.clone(),
                current: snapshot.scan_table()?,
                added: changes.added,
                removed: changes.removed,
                snapshot: snapshot.clone(),
                unique_rows: unique_rows(job, name),
                since: recorded,
            });
        }
        Ok(Ok(inputs))
    }

    /// Computed in full for `reason`, recording the versions read.
    fn full(&self, reason: String) -> Decided {
        Decided {
            computed: Computed::Full {
                reason,
                watermarks: self.watermarks(),
            },
            inputs: self.read.clone(),
        }
    }
}
