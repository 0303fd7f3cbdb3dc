//! What one ALS block task does, serialised into the plan that ships to executors, and the
//! shapes of the rows it returns.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// Which side of the ratings matrix a step solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Rows are users, the fixed factors are items'.
    User = 0,
    /// Rows are items, the fixed factors are users'.
    Item = 1,
}

impl Side {
    /// Lower-case name, for messages and folders.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::User => "user",
            Side::Item => "item",
        }
    }
}

/// How ids are stored: every integer width becomes BIGINT, text stays text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdType {
    /// BIGINT ids.
    Int64,
    /// Text ids.
    Utf8,
}

impl IdType {
    /// The Arrow type, or `None` for a type ALS does not take as an id.
    pub fn of(data_type: &DataType) -> Option<Self> {
        match data_type {
            t if t.is_integer() => Some(IdType::Int64),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Some(IdType::Utf8),
            DataType::Dictionary(_, value) => Self::of(value),
            _ => None,
        }
    }

    /// The Arrow type ids are written with.
    pub fn data_type(self) -> DataType {
        match self {
            IdType::Int64 => DataType::Int64,
            IdType::Utf8 => DataType::Utf8,
        }
    }
}

/// Parquet files under a root URL (paths relative to it, as Delta `Add` actions name them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSet {
    /// Root URL.
    pub root: String,
    /// Relative paths.
    pub paths: Vec<String>,
}

/// The training settings every solve needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Factors per row.
    pub rank: usize,
    /// λ.
    pub reg_param: f64,
    /// Hu–Koren–Volinsky implicit feedback.
    pub implicit: bool,
    /// Implicit confidence scale.
    pub alpha: f64,
    /// NNLS instead of Cholesky.
    pub nonnegative: bool,
    /// Seed of the initial factors.
    pub seed: u64,
}

/// The factors a step holds fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fixed {
    /// The seeded initial factors, computed where needed.
    Initial,
    /// Factors written by the previous step.
    Files(FileSet),
    /// Factors kept from the previous training for some rows (warm start); the other rows
    /// start from their seeded initial factors.
    Warm(FileSet),
}

/// Hold-out evaluation inside a scoring task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalTask {
    /// Ranking cut-off.
    pub k: usize,
    /// Held-out ratings at or above this are relevant; any positive one when `None`.
    pub relevant_min: Option<f64>,
}

/// The work of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// Solve every row of the block against the fixed factors.
    Solve {
        /// The side being solved.
        side: Side,
        /// `YᵀY` of the fixed factors (implicit feedback), computed once for the step.
        gram: Option<Vec<f64>>,
    },
    /// Recommend for (and evaluate) every user of the block.
    Score {
        /// The users' factors.
        users: FileSet,
        /// Recommendations per user.
        top_n: usize,
        /// Held-out evaluation, when the table has one.
        eval: Option<EvalTask>,
    },
}

/// One step of training, run as one task per block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlsTask {
    /// What to do.
    pub step: Step,
    /// Training settings.
    pub settings: Settings,
    /// Root URL the block files' paths are relative to.
    pub ratings_root: String,
    /// The fixed side's factors (items' when scoring).
    pub fixed: Fixed,
    /// Id type of the rows being solved or scored.
    pub src_id: IdType,
    /// Id type of the fixed side.
    pub dst_id: IdType,
}

impl AlsTask {
    /// The rows the task returns.
    pub fn schema(&self) -> SchemaRef {
        match &self.step {
            Step::Solve { .. } => factors_schema(self.src_id),
            Step::Score { .. } => score_schema(self.src_id, self.dst_id),
        }
    }
}

/// Factors as written: the dense index the engine addresses rows by, the id, the vector.
pub fn factors_schema(id: IdType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("idx", DataType::Int32, false),
        Field::new("id", id.data_type(), true),
        Field::new(
            "features",
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
            true,
        ),
    ]))
}

/// Columns of [`score_schema`] that tell its two kinds of rows apart.
pub(crate) const IS_RECOMMENDATION: &str = "is_recommendation";
pub(crate) const EVAL_SUMMARY: &str = "eval_summary";

/// Scoring output: recommendation rows, then one evaluation summary row per task (JSON), told
/// apart by `is_recommendation` so one write puts each in its own place.
pub fn score_schema(user: IdType, item: IdType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user", user.data_type(), true),
        Field::new("item", item.data_type(), true),
        Field::new("score", DataType::Float64, true),
        Field::new("rank", DataType::Int32, true),
        Field::new(IS_RECOMMENDATION, DataType::Boolean, false),
        Field::new(EVAL_SUMMARY, DataType::Utf8, true),
    ]))
}
