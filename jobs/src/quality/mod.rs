//! Data quality: expectations compiled to expressions and evaluated in the same pass that writes
//! the table — failing rows are counted, kept (`warn`), quarantined (`drop`) or fatal (`fail`).

mod checked;
mod rules;

pub use checked::{CheckedFrame, QUARANTINE_COLUMNS, QUARANTINE_RULE, QUARANTINE_SUFFIX};
pub use rules::{Rule, rules_for};
