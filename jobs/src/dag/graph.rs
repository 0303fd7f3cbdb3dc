//! Builds the dependency graph from the tables each query references.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;

use crate::error::{Error, Result};
use crate::quality::QUARANTINE_SUFFIX;
use crate::spec::{ALS_COMPANIONS, CHANGES_SUFFIX, CheckSpec, CheckTest, TableKind};
use crate::spec::{Pipeline, TableSpec};

/// Validated dependency graph of a pipeline's tables.
#[derive(Debug, Clone)]
pub struct Dag {
    /// table → tables it reads.
    upstream: BTreeMap<String, BTreeSet<String>>,
    /// table → tables that read it.
    downstream: BTreeMap<String, BTreeSet<String>>,
    /// All tables in an order where each comes after its upstream tables.
    order: Vec<String>,
}

impl Dag {
    /// Infers dependencies and rejects unknown tables and cycles.
    pub fn build(pipeline: &Pipeline) -> Result<Dag> {
        let mut upstream = BTreeMap::new();
        let mut downstream: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for table in &pipeline.tables {
            downstream.entry(table.name.clone()).or_default();
            let deps = references(pipeline, table)?;
            for dep in &deps {
                downstream
                    .entry(dep.clone())
                    .or_default()
                    .insert(table.name.clone());
            }
            upstream.insert(table.name.clone(), deps);
        }
        let order = topological_order(pipeline, &upstream)?;
        Ok(Dag {
            upstream,
            downstream,
            order,
        })
    }

    /// Tables `table` reads directly.
    pub fn upstream_of(&self, table: &str) -> &BTreeSet<String> {
        static EMPTY: BTreeSet<String> = BTreeSet::new();
        self.upstream.get(table).unwrap_or(&EMPTY)
    }

    /// Tables that read `table` directly.
    pub fn downstream_of(&self, table: &str) -> &BTreeSet<String> {
        static EMPTY: BTreeSet<String> = BTreeSet::new();
        self.downstream.get(table).unwrap_or(&EMPTY)
    }

    /// Every table, upstream before downstream.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// `table` and everything reachable from it following `next`.
    pub(crate) fn closure<'a>(
        &'a self,
        table: &'a str,
        next: impl Fn(&'a str) -> &'a BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![table];
        while let Some(t) = stack.pop() {
            if seen.insert(t.to_string()) {
                stack.extend(next(t).iter().map(String::as_str));
            }
        }
        seen
    }
}

/// The pipeline tables a table's query (or a CDC table's `from`) reads; CTE names are not
/// table references.
fn references(pipeline: &Pipeline, table: &TableSpec) -> Result<BTreeSet<String>> {
    let invalid = invalid_spec(pipeline, table);
    if let TableKind::Cdc(cdc) = &table.kind {
        if cdc.from == table.name || pipeline.table(&cdc.from).is_none() {
            return Err(invalid(format!(
                "cdc.from = `{}` is not another table of the pipeline",
                cdc.from
            )));
        }
        let mut deps = BTreeSet::from([cdc.from.clone()]);
        if let Some(sql) = cdc.shaping_sql(&cdc.from) {
            deps.extend(query_references(pipeline, table, &sql)?);
        }
        return Ok(deps);
    }
    if let TableKind::Checks(checks) = &table.kind {
        return check_references(pipeline, table, checks);
    }
    match table.kind.sql() {
        Some(sql) => query_references(pipeline, table, sql),
        None => Ok(BTreeSet::new()),
    }
}

/// The pipeline tables a `checks` table's checks read (a companion counts as its table).
fn check_references(
    pipeline: &Pipeline,
    table: &TableSpec,
    checks: &[CheckSpec],
) -> Result<BTreeSet<String>> {
    let invalid = invalid_spec(pipeline, table);
    let mut deps = BTreeSet::new();
    for check in checks {
        if let CheckTest::Sql(sql) = &check.test {
            deps.extend(query_references(pipeline, table, sql)?);
        }
        for name in check.test.tables() {
            let base = companion_of(pipeline, name).unwrap_or(name);
            if pipeline.table(base).is_none() || base == table.name {
                let message = format!(
                    "check `{}` reads `{name}`, not another table of the pipeline",
                    check.name
                );
                return Err(invalid(message));
            }
            deps.insert(base.to_string());
        }
    }
    Ok(deps)
}

/// An `InvalidSpec` error about `table`.
fn invalid_spec<'a>(pipeline: &'a Pipeline, table: &'a TableSpec) -> impl Fn(String) -> Error + 'a {
    move |message| Error::InvalidSpec {
        path: pipeline.path.clone(),
        line: table.line,
        table: table.name.clone(),
        message,
    }
}

/// The pipeline tables `sql` reads.
fn query_references(pipeline: &Pipeline, table: &TableSpec, sql: &str) -> Result<BTreeSet<String>> {
    let invalid = invalid_spec(pipeline, table);
    let mut statements = DFParser::parse_sql(sql).map_err(|e| invalid(format!("SQL does not parse: {e}")))?;
    let statement = match (statements.pop_front(), statements.is_empty()) {
        (Some(s @ Statement::Statement(_)), true) => s,
        _ => return Err(invalid("`sql` must be exactly one SELECT query".into())),
    };
    let (refs, _ctes) = resolve_table_references(&statement, true)
        .map_err(|e| invalid(format!("SQL does not parse: {e}")))?;
    let mut deps = BTreeSet::new();
    for r in refs {
        // `<table>__quarantine` reads the quarantine its table writes, so it depends on it.
        let name = companion_of(pipeline, r.table()).unwrap_or(r.table()).to_string();
        if name == table.name {
            return Err(invalid("reads itself".into()));
        }
        if pipeline.table(&name).is_none() {
            return Err(invalid(format!("references unknown table `{r}`")));
        }
        deps.insert(name);
    }
    Ok(deps)
}

/// The table whose companion `name` is (`orders__quarantine` → `orders`), if it is one.
pub(crate) fn companion_of<'a>(pipeline: &Pipeline, name: &'a str) -> Option<&'a str> {
    std::iter::once(QUARANTINE_SUFFIX)
        .chain(ALS_COMPANIONS)
        .chain([CHANGES_SUFFIX])
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|base| pipeline.table(base).is_some())
}

/// Kahn's algorithm in declaration order, so the order is stable for a given file.
fn topological_order(
    pipeline: &Pipeline,
    upstream: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<String>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(pipeline.tables.len());
    while order.len() < pipeline.tables.len() {
        let ready: Vec<&TableSpec> = pipeline
            .tables
            .iter()
            .filter(|t| !done.contains(t.name.as_str()))
            .filter(|t| upstream[&t.name].iter().all(|d| done.contains(d.as_str())))
            .collect();
        if ready.is_empty() {
            return Err(cycle_error(pipeline, upstream, &done));
        }
        for t in ready {
            done.insert(&t.name);
            order.push(t.name.clone());
        }
    }
    Ok(order)
}

/// Names one cycle among the tables that could not be ordered.
fn cycle_error(
    pipeline: &Pipeline,
    upstream: &BTreeMap<String, BTreeSet<String>>,
    done: &BTreeSet<&str>,
) -> Error {
    let first = pipeline
        .tables
        .iter()
        .find(|t| !done.contains(t.name.as_str()))
        .expect("a cycle leaves at least one table unordered");
    let mut path = vec![first.name.clone()];
    loop {
        let last = path.last().expect("path starts non-empty");
        let next = upstream[last]
            .iter()
            .find(|d| !done.contains(d.as_str()))
            .expect("an unordered table has an unordered upstream");
        if let Some(pos) = path.iter().position(|p| p == next) {
            let mut cycle: Vec<String> = path[pos..].to_vec();
            cycle.push(next.clone());
            let start = pipeline.table(&cycle[0]).expect("cycle tables exist");
            return Error::InvalidSpec {
                path: pipeline.path.clone(),
                line: start.line,
                table: start.name.clone(),
                message: format!("dependency cycle: {}", cycle.join(" <- ")),
            };
        }
        path.push(next.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec;

    fn spec(tables: &[(&str, &str)]) -> String {
        let mut s = String::from("[pipeline]\nname = \"p\"\n");
        for (name, sql) in tables {
            if sql.is_empty() {
                s += &format!(
                    "\n[[table]]\nname = \"{name}\"\nlayer = \"bronze\"\nsource = {{ path = \"x.csv\", format = \"csv\" }}\n"
                );
            } else {
                s += &format!("\n[[table]]\nname = \"{name}\"\nlayer = \"silver\"\nsql = \"{sql}\"\n");
            }
        }
        s
    }

    fn dag(tables: &[(&str, &str)]) -> Result<Dag> {
        Dag::build(&parse_spec(&spec(tables), "p.toml")?)
    }

    #[test]
    fn infers_dependencies_and_orders_them() {
        let d = dag(&[
            ("gold", "SELECT * FROM s1 JOIN s2 USING (id)"),
            ("s1", "WITH x AS (SELECT * FROM raw) SELECT * FROM x"),
            ("s2", "SELECT * FROM raw WHERE id IN (SELECT id FROM s1)"),
            ("raw", ""),
        ])
        .unwrap();
        assert_eq!(d.order(), ["raw", "s1", "s2", "gold"]);
        assert_eq!(d.upstream_of("gold").iter().collect::<Vec<_>>(), ["s1", "s2"]);
        assert_eq!(
            d.upstream_of("s1").iter().collect::<Vec<_>>(),
            ["raw"],
            "CTE x is not a table"
        );
        assert_eq!(d.downstream_of("raw").iter().collect::<Vec<_>>(), ["s1", "s2"]);
    }

    #[test]
    fn rejects_unknown_table_with_location() {
        let e = dag(&[("raw", ""), ("s", "SELECT * FROM raw JOIN nope USING (id)")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:10: table `s`: references unknown table `nope`"
        );
    }

    #[test]
    fn rejects_cycles_naming_them() {
        let e = dag(&[
            ("a", "SELECT * FROM c"),
            ("b", "SELECT * FROM a"),
            ("c", "SELECT * FROM b"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:5: table `a`: dependency cycle: a <- c <- b <- a"
        );
    }

    #[test]
    fn a_cdc_table_depends_on_its_source_and_the_tables_its_sql_joins() {
        let mut text = spec(&[("raw", ""), ("orders", "SELECT 1 AS id")]);
        text += "\n[[table]]\nname = \"items\"\nlayer = \"silver\"\n[table.cdc]\nfrom = \"raw\"\n\
                 keys = [\"id\"]\nsequence_by = \"id\"\n\
                 sql = \"SELECT c.* FROM ${changes} c JOIN orders o ON c.id = o.id\"\n";
        let d = Dag::build(&parse_spec(&text, "p.toml").unwrap()).unwrap();
        assert_eq!(
            d.upstream_of("items").iter().collect::<Vec<_>>(),
            ["orders", "raw"]
        );
    }

    #[test]
    fn rejects_self_reference_and_bad_sql() {
        let e = dag(&[("a", "SELECT * FROM a")]).unwrap_err();
        assert!(e.to_string().ends_with("reads itself"), "{e}");
        let e = dag(&[("a", "SELEC nothing")]).unwrap_err();
        assert!(e.to_string().contains("SQL does not parse"), "{e}");
        let e = dag(&[("a", "SELECT 1; SELECT 2")]).unwrap_err();
        assert!(e.to_string().contains("exactly one SELECT"), "{e}");
    }
}
