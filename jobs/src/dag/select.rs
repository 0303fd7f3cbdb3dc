//! dbt-style selection: `name`, `+name`, `name+`, `+name+`, and `layer:silver`.

use std::collections::BTreeSet;

use super::Dag;
use crate::error::{Error, Result};
use crate::spec::{Layer, Pipeline};

/// Which tables a run builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    selectors: Vec<String>,
}

impl Selection {
    /// Every table.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds a `--select` expression (the union of all selectors is built).
    #[must_use]
    pub fn with_select(mut self, selector: impl Into<String>) -> Self {
        self.selectors.push(selector.into());
        self
    }

    /// Adds a `--layer` (same as the selector `layer:<name>`).
    #[must_use]
    pub fn with_layer(mut self, layer: &str) -> Self {
        self.selectors.push(format!("layer:{layer}"));
        self
    }

    /// The selected tables, in DAG order.
    pub fn resolve(&self, pipeline: &Pipeline, dag: &Dag) -> Result<Vec<String>> {
        if self.selectors.is_empty() {
            return Ok(dag.order().to_vec());
        }
        let mut chosen = BTreeSet::new();
        for selector in &self.selectors {
            chosen.extend(resolve_one(selector, pipeline, dag)?);
        }
        Ok(dag
            .order()
            .iter()
            .filter(|t| chosen.contains(*t))
            .cloned()
            .collect())
    }
}

fn resolve_one(selector: &str, pipeline: &Pipeline, dag: &Dag) -> Result<BTreeSet<String>> {
    let err = |message: String| Error::Select {
        selector: selector.to_string(),
        message,
    };
    if let Some(layer) = selector.strip_prefix("layer:") {
        let layer = Layer::parse(layer).ok_or_else(|| err(format!("unknown layer `{layer}`")))?;
        let tables: BTreeSet<String> = pipeline
            .tables
            .iter()
            .filter(|t| t.layer == layer)
            .map(|t| t.name.clone())
            .collect();
        if tables.is_empty() {
            return Err(err(format!("no table in layer `{}`", layer.as_str())));
        }
        return Ok(tables);
    }
    let (up, rest) = match selector.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, selector),
    };
    let (down, name) = match rest.strip_suffix('+') {
        Some(name) => (true, name),
        None => (false, rest),
    };
    if pipeline.table(name).is_none() {
        return Err(err(format!("no table named `{name}`")));
    }
    let mut tables = BTreeSet::from([name.to_string()]);
    if up {
        tables.extend(dag.closure(name, |t| dag.upstream_of(t)));
    }
    if down {
        tables.extend(dag.closure(name, |t| dag.downstream_of(t)));
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec;

    const SPEC: &str = r#"
[pipeline]
name = "p"
[[table]]
name = "raw_a"
layer = "bronze"
source = { path = "a.csv", format = "csv" }
[[table]]
name = "raw_b"
layer = "bronze"
source = { path = "b.csv", format = "csv" }
[[table]]
name = "a"
layer = "silver"
sql = "SELECT * FROM raw_a"
[[table]]
name = "b"
layer = "silver"
sql = "SELECT * FROM raw_b"
[[table]]
name = "g"
layer = "gold"
sql = "SELECT * FROM a JOIN b USING (id)"
"#;

    fn select(selectors: &[&str]) -> Result<Vec<String>> {
        let p = parse_spec(SPEC, "p.toml").unwrap();
        let dag = Dag::build(&p).unwrap();
        let mut sel = Selection::all();
        for s in selectors {
            sel = match s.strip_prefix("--layer ") {
                Some(l) => sel.with_layer(l),
                None => sel.with_select(*s),
            };
        }
        sel.resolve(&p, &dag)
    }

    #[test]
    fn selects_like_dbt() {
        assert_eq!(select(&[]).unwrap(), ["raw_a", "raw_b", "a", "b", "g"]);
        assert_eq!(select(&["a"]).unwrap(), ["a"]);
        assert_eq!(select(&["a+"]).unwrap(), ["a", "g"]);
        assert_eq!(select(&["+a"]).unwrap(), ["raw_a", "a"]);
        assert_eq!(select(&["+g"]).unwrap(), ["raw_a", "raw_b", "a", "b", "g"]);
        assert_eq!(select(&["raw_b+"]).unwrap(), ["raw_b", "b", "g"]);
        assert_eq!(select(&["--layer silver"]).unwrap(), ["a", "b"]);
        assert_eq!(select(&["--layer bronze", "g"]).unwrap(), ["raw_a", "raw_b", "g"]);
    }

    #[test]
    fn rejects_unknown_names_and_layers() {
        let e = select(&["nope+"]).unwrap_err();
        assert_eq!(e.to_string(), "selection `nope+`: no table named `nope`");
        let e = select(&["--layer ml"]).unwrap_err();
        assert_eq!(e.to_string(), "selection `layer:ml`: no table in layer `ml`");
        let e = select(&["--layer platinum"]).unwrap_err();
        assert!(e.to_string().contains("unknown layer"), "{e}");
    }
}
