//! Delta Lake I/O that ships to Ballista executors: snapshot scans, per-partition writes,
//! and the single commit on the driver.

mod commit;
mod key_values;
mod normalize;
mod scan;
mod snapshot;
mod staged;
mod tagged;
mod write_exec;
mod write_node;
mod write_spec;
mod written;

pub use commit::{CommitOutcome, DeltaCommit};
pub use key_values::KeyValues;
pub use normalize::{normalize_batch, normalize_schema, stored_type};
pub use scan::{DeltaFile, DeltaScanTable, project, rows_in_stats};
pub use snapshot::{FileChanges, SinceVersion, TableSnapshot};
pub use staged::{FileTag, Staged, project_named, write_here, write_on_cluster};
pub use tagged::{discard_tagged, tag_path};
pub use write_exec::DeltaWriteExec;
pub use write_node::DeltaWriteNode;
pub use write_spec::{Clustering, Counter, KeepWhen, OutputName, WriteSpec, WriteTarget};
pub use written::{OutputWritten, TaskWritten, WriteResult, task_result_schema};
