//! A `checks` table: data tests over other tables, one row per check with its violations —
//! dbt's `unique` and `relationships` tests and a scalar query, as a table a run writes.
//!
//! ```toml
//! [[table.check]]
//! name = "duplicate order_id in silver.orders"
//! unique = { table = "orders", columns = ["order_id"] }
//! [[table.check]]
//! name = "orders logged without a row"
//! relationship = { table = "orders__changes", columns = ["order_id"], to = "orders" }
//! [[table.check]]
//! name = "customers inferred from orders"
//! level = "warn"
//! sql = "SELECT count(*) FROM dim_customer WHERE inferred"
//! ```

use serde::Deserialize;

use super::parse::is_identifier;

/// One check of a `checks` table.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// The check's row in the table (`check_name`).
    pub name: String,
    /// Whether violations fail the run (with the table's expectation) or are reported.
    pub level: CheckLevel,
    /// What is counted.
    pub test: CheckTest,
}

/// How serious a check's violations are; written to the `level` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckLevel {
    /// Violations must be 0.
    Fail,
    /// Violations are reported.
    Warn,
}

impl CheckLevel {
    /// The name written to the `level` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckLevel::Fail => "fail",
            CheckLevel::Warn => "warn",
        }
    }
}

/// What a check counts as its violations.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckTest {
    /// Values of `columns` held by more than one row of `table` (of its rows where `filter`
    /// holds, when given).
    Unique {
        /// The table (or companion table) checked.
        table: String,
        /// The columns whose values must be unique.
        columns: Vec<String>,
        /// A SQL condition: only the rows where it holds count.
        filter: Option<String>,
    },
    /// Distinct values of `columns` in `table` that no row of `to` holds.
    Relationship {
        /// The table whose values are looked up.
        table: String,
        /// The columns, named the same in both tables.
        columns: Vec<String>,
        /// The table that must hold each value.
        to: String,
    },
    /// The single value a query returns, computed from whole tables every run.
    Sql(String),
}

impl CheckTest {
    /// The tables the check reads by name (a query's are found by the DAG).
    pub fn tables(&self) -> Vec<&str> {
        match self {
            CheckTest::Unique { table, .. } => vec![table],
            CheckTest::Relationship { table, to, .. } => vec![table, to],
            CheckTest::Sql(_) => vec![],
        }
    }
}

/// `[[table.check]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    name: String,
    level: Option<String>,
    unique: Option<RawUnique>,
    relationship: Option<RawRelationship>,
    sql: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnique {
    table: String,
    columns: Vec<String>,
    #[serde(rename = "where")]
    filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelationship {
    table: String,
    columns: Vec<String>,
    to: String,
}

impl RawCheck {
    pub(super) fn convert(self) -> Result<CheckSpec, String> {
        let name = self.name;
        let err = |message: &str| format!("check `{name}`: {message}");
        if name.trim().is_empty() {
            return Err("a check needs a `name`".into());
        }
        let level = match self.level.as_deref() {
            None | Some("fail") => CheckLevel::Fail,
            Some("warn") => CheckLevel::Warn,
            Some(other) => return Err(err(&format!("unknown level `{other}` (expected fail or warn)"))),
        };
        let test = match (self.unique, self.relationship, self.sql) {
            (Some(u), None, None) => CheckTest::Unique {
                table: u.table,
                columns: u.columns,
                filter: u.filter,
            },
            (None, Some(r), None) => CheckTest::Relationship {
                table: r.table,
                columns: r.columns,
                to: r.to,
            },
            (None, None, Some(sql)) => CheckTest::Sql(sql),
            _ => return Err(err("give exactly one of `unique`, `relationship` or `sql`")),
        };
        let columns = match &test {
            CheckTest::Unique { columns, .. } | CheckTest::Relationship { columns, .. } => columns.as_slice(),
            CheckTest::Sql(_) => &[],
        };
        if matches!(test, CheckTest::Unique { .. } | CheckTest::Relationship { .. }) && columns.is_empty() {
            return Err(err("`columns` must name at least one column"));
        }
        if let Some(bad) = columns.iter().find(|c| !is_identifier(c)) {
            return Err(err(&format!("column `{bad}` is not a plain column name")));
        }
        Ok(CheckSpec { name, level, test })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<CheckSpec, String> {
        toml::from_str::<RawCheck>(text)
            .map_err(|e| e.to_string())?
            .convert()
    }

    #[test]
    fn reads_each_kind_of_check() {
        let c = check("name = \"u\"\nunique = { table = \"t\", columns = [\"a\", \"b\"], where = \"x\" }")
            .unwrap();
        assert_eq!(c.level, CheckLevel::Fail);
        assert_eq!(
            c.test,
            CheckTest::Unique {
                table: "t".into(),
                columns: vec!["a".into(), "b".into()],
                filter: Some("x".into())
            }
        );
        let c = check(
            "name = \"r\"\nlevel = \"warn\"\nrelationship = { table = \"t\", columns = [\"a\"], to = \"u\" }",
        )
        .unwrap();
        assert_eq!((c.level, c.test.tables()), (CheckLevel::Warn, vec!["t", "u"]));
        let c = check("name = \"s\"\nsql = \"SELECT 0\"").unwrap();
        assert_eq!(c.test, CheckTest::Sql("SELECT 0".into()));
    }

    #[test]
    fn rejects_checks_that_say_too_little_or_too_much() {
        let e = check("name = \"x\"\nsql = \"SELECT 0\"\nunique = { table = \"t\", columns = [\"a\"] }")
            .unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e = check("name = \"x\"\nunique = { table = \"t\", columns = [] }").unwrap_err();
        assert!(e.contains("at least one column"), "{e}");
        let e = check("name = \"x\"\nunique = { table = \"t\", columns = [\"a b\"] }").unwrap_err();
        assert!(e.contains("not a plain column name"), "{e}");
        let e = check("name = \"x\"\nlevel = \"info\"\nsql = \"SELECT 0\"").unwrap_err();
        assert!(e.contains("unknown level"), "{e}");
    }
}
