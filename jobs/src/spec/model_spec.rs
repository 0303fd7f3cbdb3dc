//! `[table.als]`: the parameters of an ALS collaborative-filtering table, checked on load.
//!
//! Defaults follow Spark MLlib's ALS where it has one (rank 10, 10 iterations, regParam 0.1,
//! alpha 1.0, coldStartStrategy "nan"); `blocks` defaults to 4 rather than Spark's 10 because a
//! block is one task and the machines this runs on are small.

use serde::{Deserialize, Serialize};

/// The tables an ALS table writes beside its recommendations.
pub const ALS_COMPANIONS: [&str; 4] = ["__user_factors", "__item_factors", "__metrics", "__model"];

/// What an ALS table trains on and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    /// Input column with the user id (any integer type, or text).
    pub user: String,
    /// Input column with the item id (any integer type, or text).
    pub item: String,
    /// Input column with the rating (explicit) or interaction strength (implicit).
    pub rating: String,
    /// Number of latent factors.
    pub rank: usize,
    /// Alternations (each solves every item, then every user).
    pub iterations: usize,
    /// λ; each row's system is regularised by λ times its number of ratings (ALS-WR).
    pub reg_param: f64,
    /// Implicit feedback (Hu, Koren, Volinsky) instead of explicit ratings.
    pub implicit: bool,
    /// Confidence scale for implicit feedback: c = 1 + alpha·|r|.
    pub alpha: f64,
    /// Constrain factors to be non-negative (NNLS instead of Cholesky).
    pub nonnegative: bool,
    /// Seed of the initial factors and of the random split.
    pub seed: u64,
    /// Blocks of users (and of items): one task each per half-iteration.
    pub blocks: usize,
    /// Recommendations kept per user.
    pub top_n: usize,
    /// What a prediction for a user or item without factors is.
    pub cold_start: ColdStart,
    /// Ratings below this are quarantined.
    pub min_rating: Option<f64>,
    /// Ratings above this are quarantined.
    pub max_rating: Option<f64>,
    /// Hold-out evaluation, when configured.
    pub eval: Option<EvalSpec>,
    /// Start from the previous run's user factors (users without one from the seeded initial
    /// factors) instead of from the seeded initial factors only.
    pub warm_start: bool,
    /// Alternations run when starting warm (`iterations` when not set).
    pub warm_iterations: usize,
}

impl Default for AlsParams {
    fn default() -> Self {
        Self {
            user: "user".into(),
            item: "item".into(),
            rating: "rating".into(),
            rank: 10,
            iterations: 10,
            reg_param: 0.1,
            implicit: false,
            alpha: 1.0,
            nonnegative: false,
            seed: 42,
            blocks: 4,
            top_n: 10,
            cold_start: ColdStart::Nan,
            min_rating: None,
            max_rating: None,
            eval: None,
            warm_start: false,
            warm_iterations: 10,
        }
    }
}

/// Spark's `coldStartStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColdStart {
    /// Leave test ratings without factors out of RMSE and MAE.
    Drop,
    /// Predict NaN for them, so RMSE and MAE are NaN when there are any (Spark's default).
    Nan,
}

/// How ratings are held out and how rankings are scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    /// Which ratings are held out.
    pub split: Split,
    /// Share of ratings held out, in (0, 1).
    pub test_fraction: f64,
    /// Cut-off of the ranking metrics (Precision@K, Recall@K, NDCG@K, MAP@K).
    pub k: usize,
    /// Held-out ratings at or above this count as relevant (default: any positive rating).
    pub relevant_min: Option<f64>,
}

/// The hold-out rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Split {
    /// Each (user, item) pair is held out by a seeded hash, independent of partitioning.
    Random,
    /// The latest ratings by this timestamp column are held out.
    Time {
        /// Input column with the rating's time.
        column: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAls {
    user: Option<String>,
    item: Option<String>,
    rating: Option<String>,
    rank: Option<i64>,
    iterations: Option<i64>,
    reg_param: Option<f64>,
    implicit: Option<bool>,
    alpha: Option<f64>,
    nonnegative: Option<bool>,
    seed: Option<i64>,
    blocks: Option<i64>,
    top_n: Option<i64>,
    cold_start: Option<String>,
    min_rating: Option<f64>,
    max_rating: Option<f64>,
    eval: Option<RawEval>,
    warm_start: Option<bool>,
    warm_iterations: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEval {
    split: Option<String>,
    time_column: Option<String>,
    test_fraction: Option<f64>,
    k: Option<i64>,
    relevant_min: Option<f64>,
}

fn positive(name: &str, value: Option<i64>, default: usize, max: usize) -> Result<usize, String> {
    match value {
        None => Ok(default),
        Some(v) if v >= 1 && v as u64 <= max as u64 => Ok(v as usize),
        Some(v) => Err(format!("als.{name} = {v}: must be between 1 and {max}")),
    }
}

fn non_negative(name: &str, value: Option<f64>, default: f64) -> Result<f64, String> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(v) => Err(format!("als.{name} = {v}: must be a finite number ≥ 0")),
    }
}

impl RawAls {
    pub(crate) fn convert(self) -> Result<AlsParams, String> {
        let d = AlsParams::default();
        let cold_start = match self.cold_start.as_deref() {
            None => d.cold_start,
            Some("drop") => ColdStart::Drop,
            Some("nan") => ColdStart::Nan,
            Some(other) => return Err(format!("als.cold_start `{other}`: expected drop or nan")),
        };
        if let (Some(lo), Some(hi)) = (self.min_rating, self.max_rating)
            && lo > hi
        {
            return Err(format!("als.min_rating {lo} is above als.max_rating {hi}"));
        }
        let warm_start = self.warm_start.unwrap_or(d.warm_start);
        if self.warm_iterations.is_some() && !warm_start {
            return Err("als.warm_iterations is only used with warm_start = true".into());
        }
        let iterations = positive("iterations", self.iterations, d.iterations, 1000)?;
        let seed = self.seed.map_or(Ok(d.seed), |s| {
            u64::try_from(s).map_err(|_| format!("als.seed = {s}: must be ≥ 0"))
        })?;
        Ok(AlsParams {
            user: self.user.unwrap_or(d.user),
            item: self.item.unwrap_or(d.item),
            rating: self.rating.unwrap_or(d.rating),
            rank: positive("rank", self.rank, d.rank, 1000)?,
            iterations,
            reg_param: non_negative("reg_param", self.reg_param, d.reg_param)?,
            implicit: self.implicit.unwrap_or(d.implicit),
            alpha: non_negative("alpha", self.alpha, d.alpha)?,
            nonnegative: self.nonnegative.unwrap_or(d.nonnegative),
            seed,
            blocks: positive("blocks", self.blocks, d.blocks, 4096)?,
            top_n: positive("top_n", self.top_n, d.top_n, 10_000)?,
            cold_start,
            min_rating: self.min_rating,
            max_rating: self.max_rating,
            eval: self.eval.map(RawEval::convert).transpose()?,
            warm_start,
            warm_iterations: positive("warm_iterations", self.warm_iterations, iterations, 1000)?,
        })
    }
}

impl RawEval {
    fn convert(self) -> Result<EvalSpec, String> {
        let split = match (self.split.as_deref().unwrap_or("random"), self.time_column) {
            ("random", None) => Split::Random,
            ("time", Some(column)) => Split::Time { column },
            ("time", None) => return Err("als.eval split = \"time\" needs time_column".into()),
            ("random", Some(_)) => {
                return Err("als.eval time_column is only used with split = \"time\"".into());
            }
            (other, _) => return Err(format!("als.eval split `{other}`: expected random or time")),
        };
        let test_fraction = self.test_fraction.unwrap_or(0.2);
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(format!(
                "als.eval test_fraction = {test_fraction}: must be between 0 and 1 (exclusive)"
            ));
        }
        Ok(EvalSpec {
            split,
            test_fraction,
            k: positive("eval.k", self.k, 10, 10_000)?,
            relevant_min: self.relevant_min,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlsParams, String> {
        toml::from_str::<RawAls>(text)
            .map_err(|e| e.to_string())?
            .convert()
    }

    #[test]
    fn defaults_follow_spark() {
        let p = parse("").unwrap();
        assert_eq!((p.rank, p.iterations, p.reg_param, p.alpha), (10, 10, 0.1, 1.0));
        assert_eq!((p.implicit, p.cold_start, p.eval), (false, ColdStart::Nan, None));
        let warm = parse("iterations = 8\nwarm_start = true").unwrap();
        assert_eq!((warm.warm_start, warm.warm_iterations), (true, 8));
        let fewer = parse("warm_start = true\nwarm_iterations = 3").unwrap();
        assert_eq!(fewer.warm_iterations, 3);
    }

    #[test]
    fn reads_eval_and_rejects_bad_values() {
        let p = parse("eval = { split = \"time\", time_column = \"ts\", k = 5 }").unwrap();
        let eval = p.eval.unwrap();
        assert_eq!(
            (eval.split, eval.k, eval.test_fraction),
            (Split::Time { column: "ts".into() }, 5, 0.2)
        );
        for (text, msg) in [
            ("rank = 0", "als.rank = 0"),
            ("reg_param = -1.0", "als.reg_param = -1"),
            ("cold_start = \"skip\"", "als.cold_start `skip`"),
            ("min_rating = 5.0\nmax_rating = 1.0", "above als.max_rating"),
            ("eval = { test_fraction = 1.0 }", "test_fraction = 1"),
            ("eval = { split = \"time\" }", "needs time_column"),
            ("warm_iterations = 3", "only used with warm_start"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(msg), "{text}: {err}");
        }
    }
}
