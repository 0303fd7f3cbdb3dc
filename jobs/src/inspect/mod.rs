//! Looking at a lakehouse from outside a run: its tables by name for SQL ([`catalog`]), and the
//! runs the event log recorded ([`history`]).

pub mod catalog;
pub mod history;
