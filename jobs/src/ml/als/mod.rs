//! Alternating least squares on the cluster.
//!
//! Data path: [`train`] stages the ratings into blocks and runs each half-iteration as one
//! Ballista job of [`AlsBlockExec`] tasks (one per block, listed by [`AlsBlockTable`]); a task
//! reads its block ([`block_io`]), solves each row's normal equations ([`solve`], [`linalg`])
//! from seeded starting factors ([`init`]), and the scoring step ranks items per user
//! ([`score`], [`rank`]).

mod block_exec;
mod block_io;
mod block_table;
mod init;
mod linalg;
mod rank;
mod score;
mod solve;
mod task;
mod train;

pub use block_exec::AlsBlockExec;
pub use block_table::AlsBlockTable;
pub use rank::EvalSums;
pub use task::{
    AlsTask, EvalTask, FileSet, Fixed, IdType, Settings, Side, Step, factors_schema, score_schema,
};
pub use train::{AlsModel, AlsOutputs, AlsTraining, INPUT_COLUMNS, Metric};
