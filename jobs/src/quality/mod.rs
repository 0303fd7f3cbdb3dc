//! Data quality: expectations evaluated on the cluster, failing rows counted, kept, quarantined
//! or fatal.

mod quarantine;
mod rules;

pub use quarantine::{QUARANTINE_COLUMNS, quarantine_frame};
pub use rules::{Rule, RuleCounts, count_rules, rules_for};
