//! What one table's run would write, as schemas: the table, its quarantine and companions.

use datafusion::arrow::datatypes::SchemaRef;

use crate::delta::{OutputName, TableSnapshot};
use crate::error::Result;
use crate::lineage::ColumnLineage;
use crate::pipeline::paths::Lakehouse;
use crate::quality::QUARANTINE_SUFFIX;
use crate::spec::TableSpec;

/// The tables one table's run writes, as planned (or as committed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Outputs {
    /// The table's schema; `None` when only a run can tell (an ML table's outputs).
    pub(crate) table: Option<SchemaRef>,
    /// Other tables by suffix: `__quarantine`, `__changes`, a model's companions.
    pub(crate) companions: Vec<(String, SchemaRef)>,
    /// The table's committed version.
    pub(crate) version: Option<i64>,
    /// What a run would read, when the kind can tell.
    pub(crate) pending: Option<String>,
    /// How a run would compute it, when the kind decides (an incremental query's shape).
    pub(crate) computed: Option<String>,
    /// Each column's input columns, when the kind's plan tells.
    pub(crate) lineage: Vec<ColumnLineage>,
}

/// What a checked write's main output is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Main {
    /// The table.
    Table,
    /// A companion table with this suffix (a change log).
    Companion(&'static str),
    /// A scratch output no query reads (a model's training input).
    Scratch,
}

impl Outputs {
    /// From a checked write's outputs: its main output as `main` says, the quarantine as
    /// `__quarantine`.
    pub(crate) fn written(outputs: Vec<(OutputName, SchemaRef)>, main: Main) -> Self {
        let mut planned = Outputs::default();
        for (name, schema) in outputs {
            if name == OutputName::quarantine() {
                planned.companions.push((QUARANTINE_SUFFIX.into(), schema));
                continue;
            }
            match main {
                Main::Table => planned.table = Some(schema),
                Main::Companion(suffix) => planned.companions.push((suffix.into(), schema)),
                Main::Scratch => {}
            }
        }
        planned
    }

    /// A table's outputs as committed; `None` if the table never was.
    pub(crate) async fn committed(lakehouse: &Lakehouse, table: &TableSpec) -> Result<Option<Self>> {
        let snapshot = TableSnapshot::load(&lakehouse.table_url(table)).await?;
        Self::committed_from(lakehouse, table, snapshot.as_ref()).await
    }

    /// [`committed`](Self::committed), the table's snapshot already loaded.
    pub(crate) async fn committed_from(
        lakehouse: &Lakehouse,
        table: &TableSpec,
        snapshot: Option<&TableSnapshot>,
    ) -> Result<Option<Self>> {
        let Some(snapshot) = snapshot else {
            return Ok(None);
        };
        let mut outputs = Outputs {
            table: Some(snapshot.scan_table()?.schema),
            version: Some(snapshot.version()),
            ..Outputs::default()
        };
        let suffixes = std::iter::once(&QUARANTINE_SUFFIX).chain(table.kind.companion_suffixes());
        for suffix in suffixes {
            if let Some(s) = TableSnapshot::load(&lakehouse.companion_url(table, suffix)).await? {
                outputs
                    .companions
                    .push((suffix.to_string(), s.scan_table()?.schema));
            }
        }
        Ok(Some(outputs))
    }

    /// What the plan cannot tell taken from the committed tables: the table's schema when
    /// only a run can tell, companions the plan does not write (a quarantine from earlier
    /// runs, a model's factors), the version.
    pub(crate) fn with_committed(mut self, committed: Option<Outputs>) -> Self {
        let Some(committed) = committed else {
            return self;
        };
        self.version = committed.version;
        self.table = self.table.or(committed.table);
        for (suffix, schema) in committed.companions {
            if !self.companions.iter().any(|(s, _)| s == &suffix) {
                self.companions.push((suffix, schema));
            }
        }
        self
    }
}
