//! A table computed in full is kept as it is when nothing it reads changed since its last
//! commit, as a materialized view over unchanged tables is not refreshed.
//!
//! Its commit records the version of every table its query scans (a `txn` each, whose id holds
//! a hash of the table's definition with the run's variables substituted); a run that finds
//! each of them at the recorded version keeps the table. Computed every run instead: a query
//! calling a function that is not immutable (`random()`, `now()`: two runs over the same rows
//! may differ), one reading something that is not a table of the pipeline (it has no version
//! to compare), and one reading no table at all (nothing would record its definition).

use std::collections::BTreeSet;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};

use super::incremental::Versions;
use crate::delta::TableSnapshot;
use crate::error::Result;
use crate::pipeline::table_job::{TableJob, Watermark};

/// Whether a table computed in full is computed this run.
pub(crate) enum Reads {
    /// Nothing it reads changed since its last commit: it is kept.
    Unchanged,
    /// It is computed; its commit records these versions of what it read.
    Changed(Vec<Watermark>),
}

/// Whether the table `plan` computes in full (from `sql`, unsubstituted) is kept as `target`
/// holds it.
pub(crate) async fn reads(
    job: &TableJob<'_>,
    sql: &str,
    plan: &LogicalPlan,
    target: Option<&TableSnapshot>,
) -> Result<Reads> {
    let Some(names) = scanned_tables(plan).filter(|n| !n.is_empty()) else {
        return Ok(Reads::Changed(vec![]));
    };
    let mut snapshots = vec![];
    for name in names {
        let Some(url) = job.table_url_of(&name) else {
            return Ok(Reads::Changed(vec![]));
        };
        let Some(snapshot) = TableSnapshot::load(&url).await? else {
            return Ok(Reads::Changed(vec![]));
        };
        snapshots.push((name, snapshot));
    }
    let definition = format!("{}\n{}", job.substituted(sql), job.table.rows_definition());
    let versions = Versions::new(job, &definition, &snapshots);
    let kept = match target.filter(|_| !job.full_refresh) {
        Some(target) => versions.unchanged(target).await?,
        None => false,
    };
    Ok(match kept {
        true => Reads::Unchanged,
        false => Reads::Changed(versions.watermarks()),
    })
}

/// The tables `plan` scans (in subqueries too), or `None` when it calls a scalar function
/// that is not immutable.
pub(crate) fn scanned_tables(plan: &LogicalPlan) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut volatile = false;
    let visited = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            names.insert(scan.table_name.to_string());
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                volatile |= matches!(e, Expr::ScalarFunction(f) if f.func.signature().volatility != Volatility::Immutable);
                Ok(stop_if(volatile))
            })
        })?;
        Ok(stop_if(volatile))
    });
    (visited.is_ok() && !volatile).then_some(names)
}

fn stop_if(done: bool) -> TreeNodeRecursion {
    match done {
        true => TreeNodeRecursion::Stop,
        false => TreeNodeRecursion::Continue,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn scanned(sql: &str) -> Option<Vec<String>> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Float64, true),
        ]));
        for name in ["a", "b"] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        let frame = ctx.sql(sql).await.unwrap();
        scanned_tables(frame.logical_plan()).map(|n| n.into_iter().collect())
    }

    #[tokio::test]
    async fn the_tables_a_query_scans_are_found_in_joins_ctes_and_subqueries() {
        let names = |n: &[&str]| Some(n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let joined = "WITH x AS (SELECT id FROM a) SELECT x.id, b.v FROM x JOIN b ON x.id = b.id";
        assert_eq!(scanned(joined).await, names(&["a", "b"]));
        let subquery = "SELECT id FROM a WHERE id IN (SELECT id FROM b) AND v > abs(-1.0)";
        assert_eq!(scanned(subquery).await, names(&["a", "b"]));
        assert_eq!(scanned("SELECT 1 AS one").await, names(&[]));
    }

    #[tokio::test]
    async fn a_query_calling_a_function_whose_result_can_change_is_computed_every_run() {
        assert_eq!(scanned("SELECT id, random() AS r FROM a").await, None);
        assert_eq!(
            scanned("SELECT id FROM a WHERE v < (SELECT max(v) * random() FROM b)").await,
            None
        );
        assert_eq!(scanned("SELECT id, now() AS at FROM a").await, None);
        assert_eq!(
            scanned("SELECT id FROM a WHERE CAST(v AS DATE) < current_date()").await,
            None
        );
    }
}
