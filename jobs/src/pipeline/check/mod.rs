//! A run checked before anything runs: every selected table planned in run order over the
//! schemas of its inputs — as they are committed, or as their own plans would write them — down
//! to the physical plan. Nothing is written; nothing is read but Delta logs, landing files'
//! first lines and, for `medallion plan`, which files each bronze table has ingested.
//!
//! `medallion plan` prints the result ([`RunPlan`]); `medallion run` refuses to start when a
//! table does not plan, so a type error in a gold query fails before bronze commits anything.
//! A table whose schema cannot be known yet (a landing source with no files, an ML table never
//! trained) is not an error: it and the tables reading it are left unchecked, with the reason.

mod outputs;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};

pub(crate) use self::outputs::{Main, Outputs};
use super::paths::Lakehouse;
use super::run_id::RunId;
use super::table_job::TableJob;
use crate::dag::Dag;
use crate::delta::TableSnapshot;
use crate::error::{Error, Result, error_chain};
use crate::lineage::ColumnLineage;
use crate::spec::{Layer, Pipeline, Scd, TableKind, TableSpec};

/// Every selected table of a run, as planned.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// In run order.
    pub tables: Vec<TablePlan>,
}

impl RunPlan {
    /// The errors, one per table that does not plan (`file:line: table `x`: …`).
    pub fn errors(&self) -> Vec<&str> {
        let failed = self.tables.iter().filter_map(|t| match &t.checked {
            Checked::Failed(message) => Some(message.as_str()),
            _ => None,
        });
        failed.collect()
    }
}

/// One table, as a run would build it.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// Its name.
    pub table: String,
    /// Its layer.
    pub layer: Layer,
    /// What kind of table and how a run computes it (`sql incremental: by group of `day``).
    pub kind: String,
    /// The columns it would have; `None` when only a run can tell (a model never trained).
    pub schema: Option<SchemaRef>,
    /// Its expectations, `name (action)`.
    pub expectations: Vec<String>,
    /// Its committed version; `None`: never built.
    pub version: Option<i64>,
    /// The pipeline tables it reads, each with its committed version (`None`: this run builds
    /// it first).
    pub reads: Vec<(String, Option<i64>)>,
    /// What a run would read, when the kind can tell (`3 new file(s) of 12`).
    pub pending: Option<String>,
    /// Each column and the input columns it is computed from (SQL and `cdc` tables).
    pub lineage: Vec<ColumnLineage>,
    /// Whether it planned.
    pub checked: Checked,
}

/// Whether a table planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Its query and expectations plan over its inputs.
    Planned,
    /// They do not: the error, `file:line: table `x`: …`.
    Failed(String),
    /// It could not be checked, and why (an input's schema is not known yet).
    Unchecked(String),
}

/// What the check needs from the run.
pub(crate) struct CheckedRun<'a> {
    pub(crate) pipeline: &'a Pipeline,
    pub(crate) dag: &'a Dag,
    pub(crate) selected: &'a [String],
    pub(crate) lakehouse: &'a Lakehouse,
    pub(crate) landing: Option<&'a url::Url>,
    pub(crate) full_refresh: bool,
    /// Also say what a run would read (lists landing files and reads which were ingested).
    pub(crate) pending: bool,
}

impl CheckedRun<'_> {
    /// Plans every selected table in run order, in a local session over `runtime`'s object
    /// stores holding only empty tables.
    pub(crate) async fn plan(&self, runtime: Arc<RuntimeEnv>) -> Result<RunPlan> {
        let state = crate::cluster::medallion_state(SessionConfig::new(), runtime);
        let ctx = SessionContext::new_with_state(state);
        let mut known: BTreeMap<String, Option<i64>> = BTreeMap::new();
        self.register_unselected(&ctx, &mut known).await?;
        let run = RunId::new();
        let mut tables = Vec::new();
        for name in self.selected {
            let table = self.pipeline.table(name).expect("selected tables exist");
            let planned = self.plan_table(&ctx, &run, table, &known).await;
            if let Some(schemas) = &planned.outputs {
                register_outputs(&ctx, name, schemas)?;
                known.insert(name.clone(), planned.plan.version);
            }
            tables.push(planned.plan);
        }
        Ok(RunPlan { tables })
    }

    /// Tables the selection reads but does not build, as committed (a run fails without them).
    async fn register_unselected(
        &self,
        ctx: &SessionContext,
        known: &mut BTreeMap<String, Option<i64>>,
    ) -> Result<()> {
        let needed = self.selected.iter().flat_map(|t| self.dag.upstream_of(t));
        for name in needed.filter(|u| !self.selected.contains(u)) {
            let table = self.pipeline.table(name).expect("DAG names are pipeline tables");
            // Unreadable now: its readers are left unchecked, and the run says why.
            if let Ok(Some(outputs)) = Outputs::committed(self.lakehouse, table).await {
                register_outputs(ctx, name, &outputs)?;
                known.insert(name.clone(), outputs.version);
            }
        }
        Ok(())
    }

    /// One table's plan; the errors it meets are its check's result, never the check's.
    async fn plan_table(
        &self,
        ctx: &SessionContext,
        run: &RunId,
        table: &TableSpec,
        known: &BTreeMap<String, Option<i64>>,
    ) -> PlannedTable {
        let upstream = self.dag.upstream_of(&table.name);
        let mut plan = TablePlan {
            table: table.name.clone(),
            layer: table.layer,
            kind: kind_of(table),
            schema: None,
            expectations: table
                .expectations
                .iter()
                .map(|e| format!("{} ({})", e.name, e.action.as_str()))
                .collect(),
            version: None,
            reads: upstream
                .iter()
                .map(|u| (u.clone(), known.get(u).copied().flatten()))
                .collect(),
            pending: None,
            lineage: vec![],
            checked: Checked::Planned,
        };
        if let Some(missing) = upstream.iter().find(|u| !known.contains_key(*u)) {
            plan.checked = Checked::Unchecked(format!("the schema of `{missing}` is not known yet"));
            return PlannedTable { plan, outputs: None };
        }
        let job = TableJob {
            ctx,
            pipeline: self.pipeline,
            table,
            lakehouse: self.lakehouse,
            landing: self.landing,
            run,
            full_refresh: self.full_refresh,
            partitions: 1,
        };
        let outputs = match self.outputs(&job).await {
            Ok(outputs) => outputs,
            Err(e) => {
                plan.checked = classify(self.pipeline, table, e);
                return PlannedTable { plan, outputs: None };
            }
        };
        plan.version = outputs.version;
        plan.schema = outputs.table.clone();
        plan.pending = outputs.pending.clone();
        plan.lineage = outputs.lineage.clone();
        if let Some(shape) = &outputs.computed {
            plan.kind = format!("{}: {shape}", plan.kind);
        }
        // Without a schema (a model never trained) its readers are left unchecked.
        let outputs = outputs.table.is_some().then_some(outputs);
        PlannedTable { plan, outputs }
    }

    /// What a run of `job`'s table would write, completed by what is committed.
    async fn outputs(&self, job: &TableJob<'_>) -> Result<Outputs> {
        let snapshot = TableSnapshot::load(&self.lakehouse.table_url(job.table)).await?;
        let planned = job.dry_run(snapshot.as_ref(), self.pending).await?;
        let committed = Outputs::committed_from(self.lakehouse, job.table, snapshot.as_ref()).await?;
        Ok(planned.with_committed(committed))
    }
}

/// A table's plan, and what it would write when known.
struct PlannedTable {
    plan: TablePlan,
    outputs: Option<Outputs>,
}

/// A spec or planning error fails the check; anything else (no landing file yet, a store or
/// broker that cannot be reached) leaves the table unchecked.
fn classify(pipeline: &Pipeline, table: &TableSpec, e: Error) -> Checked {
    match e {
        Error::InvalidSpec { .. } => Checked::Failed(e.to_string()),
        Error::Query { source, .. } => Checked::Failed(format!(
            "{}:{}: table `{}`: {}",
            pipeline.path,
            table.line,
            table.name,
            error_chain(source.as_ref())
        )),
        other => Checked::Unchecked(error_chain(&other)),
    }
}

/// Registers a table's outputs as empty tables of their schemas: `name`, `name__quarantine`, …
fn register_outputs(ctx: &SessionContext, name: &str, outputs: &Outputs) -> Result<()> {
    let tables = outputs
        .table
        .iter()
        .map(|schema| (name.to_string(), schema))
        .chain(
            outputs
                .companions
                .iter()
                .map(|(suffix, schema)| (format!("{name}{suffix}"), schema)),
        );
    for (table, schema) in tables {
        let failed = |e| Error::Query {
            table: table.clone(),
            step: "register",
            source: Box::new(e),
        };
        let empty = MemTable::try_new(Arc::clone(schema), vec![vec![]]).map_err(failed)?;
        ctx.deregister_table(&table).ok();
        ctx.register_table(&table, Arc::new(empty)).map_err(failed)?;
    }
    Ok(())
}

/// The table's kind and how it is written: `landing csv, append`, `cdc scd2`, `sql incremental`.
fn kind_of(table: &TableSpec) -> String {
    let mode = table.mode.as_str();
    match &table.kind {
        TableKind::Landing(source) => format!("landing {}, {mode}", source.format.as_str()),
        TableKind::Kafka(source) => format!("kafka {}, {mode}", source.format.as_str()),
        TableKind::Cdc(cdc) => format!("cdc scd{}", if cdc.scd == Scd::Two { 2 } else { 1 }),
        TableKind::Als { .. } => "als".into(),
        TableKind::Sql(_) if table.incremental => "sql incremental".into(),
        TableKind::Sql(_) => format!("sql {mode}"),
        TableKind::Checks(checks) => format!("checks ({})", checks.len()),
    }
}
