//! `medallion plan`: the run `run`'s flags describe, checked without running anything — every
//! selected table planned over its inputs' schemas and printed in run order with its kind, its
//! columns, its expectations, the versions it reads and what a run would ingest. Exit 2 when a
//! table does not plan, each error as `file:line: table `x`: …`. `--lineage` adds each column's
//! input columns.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use medallion_jobs::pipeline::{Checked, RunPlan, TablePlan};

use super::run::{RunArgs, prepare};
use crate::error::{Error, Result};

/// Flags of `medallion plan`: `run`'s, and what else to print.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The run to check.
    #[command(flatten)]
    pub run: RunArgs,
    /// Also print each column's lineage: the input columns it is computed from.
    #[arg(long)]
    pub lineage: bool,
}

pub(crate) async fn plan(args: PlanArgs) -> Result<ExitCode> {
    let quiet = RunArgs {
        quiet: true,
        ..args.run
    };
    let (run, _) = prepare(&quiet, None)?;
    let runtime = medallion_jobs::storage::runtime_env(None).map_err(|source| Error::Query { source })?;
    let plan = run.check(runtime, true).await?;
    print!("{}", render(&plan, args.lineage));
    let errors = plan.errors();
    if errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} table(s) do not plan:", errors.len());
    for error in errors {
        eprintln!("{error}");
    }
    Ok(ExitCode::from(2))
}

/// Every table: one heading line, then its columns, expectations, reads and check result.
fn render(plan: &RunPlan, lineage: bool) -> String {
    let mut out = String::new();
    for table in &plan.tables {
        let _ = writeln!(out, "{}", heading(table));
        match &table.schema {
            Some(schema) => {
                let columns: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect();
                let _ = writeln!(out, "    columns: {}", columns.join(", "));
            }
            None if table.checked == Checked::Planned => {
                let _ = writeln!(out, "    columns: known once it is built");
            }
            None => {}
        }
        if lineage && !table.lineage.is_empty() {
            let _ = writeln!(out, "    lineage:");
            for column in &table.lineage {
                let sources: Vec<String> = column.sources.iter().map(ToString::to_string).collect();
                let sources = match sources.is_empty() {
                    true => "(no input column)".to_string(),
                    false => sources.join(", "),
                };
                let _ = writeln!(out, "      {} <- {sources}", column.column);
            }
        }
        if !table.expectations.is_empty() {
            let _ = writeln!(out, "    expectations: {}", table.expectations.join(", "));
        }
        if !table.reads.is_empty() {
            let reads: Vec<String> = table
                .reads
                .iter()
                .map(|(name, version)| match version {
                    Some(v) => format!("{name}@{v}"),
                    None => format!("{name} (built by this run)"),
                })
                .collect();
            let _ = writeln!(out, "    reads: {}", reads.join(", "));
        }
        match &table.checked {
            Checked::Planned => {}
            Checked::Failed(error) => {
                let _ = writeln!(out, "    ERROR {error}");
            }
            Checked::Unchecked(why) => {
                let _ = writeln!(out, "    not checked: {why}");
            }
        }
    }
    out
}

/// `gold    fact_sales    sql overwrite    version 4    planned`.
fn heading(table: &TablePlan) -> String {
    let version = match table.version {
        Some(v) => format!("version {v}"),
        None => "not built".into(),
    };
    let status = match &table.checked {
        Checked::Planned => "planned",
        Checked::Failed(_) => "FAILS",
        Checked::Unchecked(_) => "unchecked",
    };
    let mut line = format!(
        "{:<7} {:<28} {:<10} {:<12} {}",
        table.layer.as_str(),
        table.table,
        status,
        version,
        table.kind
    );
    if let Some(pending) = &table.pending {
        let _ = write!(line, "; {pending}");
    }
    line
}
