//! The rows a key's changes make, as SQL over a relation of changes.
//!
//! A change relation has the key columns, the value columns, [`SEQUENCE`] (orders a key's
//! changes; any orderable type) and [`DELETE`] (TRUE: the change deletes its key). The semantics:
//! - Two changes of a key with the same sequence value are one change: a delete wins, otherwise
//!   the one with the greatest values (compared column by column in declaration order, NULL
//!   lowest) — so ties resolve the same way whatever order they arrived in.
//! - SCD type 1: a key's row is its latest change's values, or no row if that change deletes it.
//! - SCD type 2: a key's changes in sequence order form versions. An upsert opens a new version
//!   when the key has none open (first change, or after a delete) or when a tracked column
//!   differs from the change before it; otherwise it updates the open version in place (its
//!   untracked columns). A version is valid from its first change's sequence to the sequence of
//!   the change that ends it (the next version's start, or a delete); the last version of a key
//!   not deleted is current. A delete with nothing open does nothing; an upsert after a delete
//!   reopens the key.

/// The change's sequence value.
pub const SEQUENCE: &str = "_sequence";
/// Whether the change deletes its key.
pub const DELETE: &str = "_delete";
/// SCD2: the sequence value a version starts at.
pub const VALID_FROM: &str = "valid_from";
/// SCD2: the sequence value a version ends at; NULL while it is current.
pub const VALID_TO: &str = "valid_to";
/// SCD2: whether the version is the key's current one.
pub const IS_CURRENT: &str = "is_current";

/// The columns of a change relation beside [`SEQUENCE`] and [`DELETE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeColumns {
    /// The key; never NULL.
    pub keys: Vec<String>,
    /// The other columns the table keeps, in order.
    pub values: Vec<String>,
    /// SCD2: the value columns whose changes open a new version (usually all of them).
    pub tracked: Vec<String>,
}

/// A double-quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn list(names: &[String]) -> String {
    names.iter().map(|n| quoted(n)).collect::<Vec<_>>().join(", ")
}

// The SCD2 windows are partitioned by the key alone: on the cluster, a window partitioned by
// (key, sequence) feeding one partitioned by key gave wrong rows once (README, "Not done yet").
impl ChangeColumns {
    /// `DESC NULLS LAST` over every value column, for the tie order.
    fn ties(&self) -> String {
        self.values
            .iter()
            .map(|v| format!(", {} DESC NULLS LAST", quoted(v)))
            .collect()
    }

    /// One change per key and sequence value, ties resolved as documented above: the first
    /// row of each sequence value in tie order.
    fn deduplicated(&self, changes: &str) -> String {
        format!(
            "SELECT * FROM (SELECT *, LAG({seq}) OVER (PARTITION BY {keys} ORDER BY {seq}, {delete} DESC{ties}) \
             IS DISTINCT FROM {seq} AS __kept FROM {changes}) AS ranked WHERE __kept",
            keys = list(&self.keys),
            seq = quoted(SEQUENCE),
            delete = quoted(DELETE),
            ties = self.ties(),
        )
    }
}

/// The columns of the table built from changes with `columns`, in order: keys, values, and for
/// SCD2 [`VALID_FROM`], [`VALID_TO`] and [`IS_CURRENT`].
pub fn table_columns(columns: &ChangeColumns, scd2: bool) -> Vec<String> {
    let validity = [VALID_FROM, VALID_TO, IS_CURRENT].map(String::from);
    let extra: &[String] = if scd2 { &validity } else { &[] };
    [&columns.keys[..], &columns.values[..], extra].concat()
}

/// How [`scd1_sql`] partitions its window over the changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatestWindow {
    /// One window partition per key: for a merge's few touched keys.
    PerKey,
    /// One window partition per bucket of keys, each key's latest change found as the first of
    /// its rows in (key, sequence descending) order. DataFusion's bounded window keeps state per
    /// window partition: over 5M changes this took 3.5–4.2 s against 12.4 s for
    /// [`Self::PerKey`] (README, "Benchmark"). For a rebuild.
    PerBucket,
}

/// Buckets of [`LatestWindow::PerBucket`].
const WINDOW_BUCKETS: u32 = 1024;

/// The latest row of every key in `changes` (a table name) that is not deleted: the key and
/// value columns.
pub fn scd1_sql(changes: &str, columns: &ChangeColumns, window: LatestWindow) -> String {
    let out = list(&table_columns(columns, false));
    let (keys, seq, delete) = (list(&columns.keys), quoted(SEQUENCE), quoted(DELETE));
    let ties = columns.ties();
    let (latest, kept) = match window {
        LatestWindow::PerKey => (
            format!("ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {seq} DESC, {delete} DESC{ties})"),
            "__latest = 1",
        ),
        LatestWindow::PerBucket => {
            let bucket = super::bucket_sql(&columns.keys, WINDOW_BUCKETS);
            let over = format!("PARTITION BY {bucket} ORDER BY {keys}, {seq} DESC, {delete} DESC{ties}");
            let first = columns
                .keys
                .iter()
                .map(|k| format!("(LAG({k}) OVER ({over}) IS DISTINCT FROM {k})", k = quoted(k)))
                .collect::<Vec<_>>()
                .join(" OR ");
            (first, "__latest")
        }
    };
    format!(
        "SELECT {out} FROM (SELECT *, {latest} AS __latest FROM {changes}) AS latest \
         WHERE {kept} AND NOT {delete}"
    )
}

/// Every version of every key in `changes` (a table name): the key and value columns,
/// [`VALID_FROM`], [`VALID_TO`] and [`IS_CURRENT`].
pub fn scd2_sql(changes: &str, columns: &ChangeColumns) -> String {
    let keys = list(&columns.keys);
    let seq = quoted(SEQUENCE);
    let delete = quoted(DELETE);
    let window = format!("PARTITION BY {keys} ORDER BY {seq}");
    let previous: String = columns
        .tracked
        .iter()
        .enumerate()
        .map(|(i, t)| format!(", LAG({}) OVER ({window}) AS __prev_{i}", quoted(t)))
        .collect();
    let unchanged = columns
        .tracked
        .iter()
        .enumerate()
        .map(|(i, t)| format!("({} IS NOT DISTINCT FROM __prev_{i})", quoted(t)))
        .chain(std::iter::once("TRUE".to_string()))
        .collect::<Vec<_>>()
        .join(" AND ");
    let out = list(&table_columns(columns, false));
    format!(
        "WITH events AS ({dedup}), \
         steps AS (SELECT *, LAG({delete}) OVER ({window}) AS __prev_delete, \
                          LAG({seq}) OVER ({window}) IS NULL AS __first{previous} FROM events), \
         starts AS (SELECT *, CASE WHEN {delete} THEN 0 \
                                   WHEN __first OR __prev_delete THEN 1 \
                                   WHEN {unchanged} THEN 0 ELSE 1 END AS __start FROM steps), \
         islands AS (SELECT *, SUM(__start) OVER ({window} ROWS UNBOUNDED PRECEDING) AS __version, \
                               MAX(CASE WHEN __start = 1 THEN {seq} END) OVER ({window} ROWS UNBOUNDED PRECEDING) AS __from, \
                               LEAD({seq}) OVER ({window}) AS __next FROM starts), \
         upserts AS (SELECT *, LEAD(__version) OVER ({window}) AS __next_version \
                     FROM islands WHERE NOT {delete} AND __version > 0) \
         SELECT {out}, __from AS {valid_from}, __next AS {valid_to}, __next IS NULL AS {is_current} \
         FROM upserts WHERE __next_version IS NULL OR __next_version <> __version",
        dedup = columns.deduplicated(changes),
        valid_from = quoted(VALID_FROM),
        valid_to = quoted(VALID_TO),
        is_current = quoted(IS_CURRENT),
    )
}

#[cfg(test)]
mod reference;
