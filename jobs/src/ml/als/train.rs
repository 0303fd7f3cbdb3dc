//! The driver of one ALS training. Every step is one Ballista job whose tasks each take one
//! block; everything between steps is Parquet under the run's work folder:
//!
//! 1. **stage**: give users and items dense indices (ordered by id), mark held-out ratings, and
//!    write the ratings twice — by user block and by item block.
//! 2. **alternate**: per iteration solve every item block against the user factors, then every
//!    user block against the new item factors (Spark's order). The last iteration writes
//!    straight into the factor tables' folders. The first user factors are the seeded initial
//!    ones or, with `warm_start`, the previous training's for the users it had.
//! 3. **score**: per user block, top-N recommendations (into the recommendations table's
//!    folder) and the evaluation sums (into the work folder), in one pass.
//!
//! Nothing is committed here: the caller commits the [`AlsModel`]'s files.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use tracing::info;
use url::Url;

use super::block_io::{Factors, read_files};
use super::block_table::AlsBlockTable;
use super::init::initial_factor;
use super::linalg::gram;
use super::rank::EvalSums;
use super::task::{AlsTask, EvalTask, FileSet, Fixed, IdType, Settings, Side, Step};
use crate::delta::{KeepWhen, OutputName, Staged, TableSnapshot, WriteSpec, WriteTarget, write_on_cluster};
use crate::error::{Error, Result};
use crate::spec::{AlsParams, ColdStart, Split};

/// Outputs of the training's writes; the blocked copies are also their work folders' names.
const BY_USER: &str = "by_user";
const BY_ITEM: &str = "by_item";
const FACTORS: &str = "factors";
const EVAL: &str = "eval_sums";

/// Columns of the validated input the caller stages: ids, rating, and the time of the rating
/// when the hold-out is by time.
pub const INPUT_COLUMNS: [&str; 4] = ["user_id", "item_id", "rating", "rated_at"];

/// Where a training's files go.
#[derive(Debug, Clone)]
pub struct AlsOutputs {
    /// Scratch folder of this run (deleted by the caller).
    pub work: Url,
    /// The user factors table.
    pub user_factors: Url,
    /// The item factors table.
    pub item_factors: Url,
    /// The recommendations table.
    pub recommendations: Url,
}

/// One metric of a trained model.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Metric name (`rmse`, `precision_at_k`, `users`, …).
    pub name: &'static str,
    /// Cut-off, for ranking metrics and coverage.
    pub k: Option<usize>,
    /// Value.
    pub value: f64,
}

/// A trained model's uncommitted files and its metrics.
#[derive(Debug)]
pub struct AlsModel {
    /// `idx`, `id`, `features` per user.
    pub user_factors: Staged,
    /// `idx`, `id`, `features` per item.
    pub item_factors: Staged,
    /// `user`, `item`, `score`, `rank`.
    pub recommendations: Staged,
    /// Metrics in a fixed order.
    pub metrics: Vec<Metric>,
}

/// The ratings written by block, with what the steps need to know about them.
struct Blocks {
    by_user: Staged,
    by_item: Staged,
    user_blocks: Vec<Vec<String>>,
    item_blocks: Vec<Vec<String>>,
    users: u64,
    items: u64,
    user_id: IdType,
    item_id: IdType,
}

/// Builder for one training on a cluster session.
#[must_use]
pub struct AlsTraining<'a> {
    ctx: &'a SessionContext,
    params: &'a AlsParams,
    table: &'a str,
    outputs: AlsOutputs,
    from_scratch: bool,
}

impl<'a> AlsTraining<'a> {
    /// Trains `params` for `table`, writing to `outputs`.
    pub fn new(ctx: &'a SessionContext, params: &'a AlsParams, table: &'a str, outputs: AlsOutputs) -> Self {
        Self {
            ctx,
            params,
            table,
            outputs,
            from_scratch: false,
        }
    }

    /// Starts from the seeded initial factors even with `warm_start` (a full refresh).
    pub fn from_scratch(mut self, from_scratch: bool) -> Self {
        self.from_scratch = from_scratch;
        self
    }

    /// Trains on the validated ratings in `input` ([`INPUT_COLUMNS`]).
    pub async fn run(self, input: &Staged) -> Result<AlsModel> {
        let started = Instant::now();
        let blocks = self.stage(input).await?;
        let stage_secs = started.elapsed().as_secs_f64();
        info!(
            table = self.table,
            users = blocks.users,
            items = blocks.items,
            secs = stage_secs,
            "ALS ratings staged"
        );
        let (mut users_fixed, warm_users) = match self.warm_users(&blocks).await? {
            Some((set, rows)) => (Fixed::Warm(set), rows),
            None => (Fixed::Initial, 0),
        };
        let iterations = match warm_users {
            0 => self.params.iterations,
            _ => self.params.warm_iterations,
        };
        let mut factors = None;
        let alternating = Instant::now();
        for iteration in 0..iterations {
            let last = iteration + 1 == iterations;
            let out = |side: Side, table: &Url| match last {
                true => table.clone(),
                false => self.work_folder(&format!("{}_factors_{iteration}", side.as_str())),
            };
            let items = self
                .solve(
                    Side::Item,
                    &blocks,
                    users_fixed,
                    out(Side::Item, &self.outputs.item_factors),
                )
                .await?;
            let users = self
                .solve(
                    Side::User,
                    &blocks,
                    Fixed::Files(file_set(&items)),
                    out(Side::User, &self.outputs.user_factors),
                )
                .await?;
            info!(
                table = self.table,
                iteration,
                secs = alternating.elapsed().as_secs_f64(),
                "ALS iteration done"
            );
            users_fixed = Fixed::Files(file_set(&users));
            factors = Some((users, items));
        }
        let iterate_secs = alternating.elapsed().as_secs_f64();
        let (user_factors, item_factors) = factors.expect("at least one iteration");
        let scoring = Instant::now();
        let (recommendations, sums) = self.score(&blocks, &user_factors, &item_factors).await?;
        let timings = [
            stage_secs,
            iterate_secs / iterations as f64,
            scoring.elapsed().as_secs_f64(),
        ];
        let mut metrics = self.metrics(&blocks, &user_factors, &item_factors, &sums, input.rows, timings);
        let m = |name, value: usize| Metric {
            name,
            k: None,
            value: value as f64,
        };
        metrics.extend([m("iterations", iterations), m("warm_users", warm_users as usize)]);
        Ok(AlsModel {
            user_factors,
            item_factors,
            recommendations,
            metrics,
        })
    }

    fn err(&self, step: &'static str) -> impl Fn(DataFusionError) -> Error + '_ {
        move |source| Error::Query {
            table: self.table.to_string(),
            step,
            source: Box::new(source),
        }
    }

    /// The folder `name` of the run's work folder.
    fn work_folder(&self, name: &str) -> Url {
        self.outputs
            .work
            .join(&format!("{name}/"))
            .expect("work folder is a URL directory")
    }

    fn settings(&self) -> Settings {
        let p = self.params;
        Settings {
            rank: p.rank,
            reg_param: p.reg_param,
            implicit: p.implicit,
            alpha: p.alpha,
            nonnegative: p.nonnegative,
            seed: p.seed,
        }
    }

    /// Dense indices, the hold-out flag and the two blocked copies of the ratings.
    async fn stage(&self, input: &Staged) -> Result<Blocks> {
        let name = format!("__als_input_{}", self.table);
        let err = self.err("stage ratings");
        self.ctx
            .register_table(&name, Arc::new(input.scan_table()))
            .map_err(&err)?;
        let staged = self.stage_registered(&name, input).await;
        self.ctx.deregister_table(&name).map_err(&err)?;
        let (spec, result, logical) = staged?;
        let by_user =
            Staged::from_result(&spec, &result, &OutputName::named(BY_USER), &logical).map_err(&err)?;
        let by_item =
            Staged::from_result(&spec, &result, &OutputName::named(BY_ITEM), &logical).map_err(&err)?;
        let id_type = |column: &str| -> Result<IdType> {
            let field = input.schema.field_with_name(column).map_err(|e| err(e.into()))?;
            IdType::of(field.data_type()).ok_or_else(|| {
                err(DataFusionError::Plan(format!(
                    "{column} has type {}",
                    field.data_type()
                )))
            })
        };
        Ok(Blocks {
            user_blocks: group_by_block(&by_user, "ub", self.params.blocks),
            item_blocks: group_by_block(&by_item, "ib", self.params.blocks),
            users: index_count(&by_user, "u"),
            items: index_count(&by_item, "i_"),
            user_id: id_type(INPUT_COLUMNS[0])?,
            item_id: id_type(INPUT_COLUMNS[1])?,
            by_user,
            by_item,
        })
    }

    async fn stage_registered(
        &self,
        name: &str,
        input: &Staged,
    ) -> Result<(WriteSpec, crate::delta::WriteResult, SchemaRef)> {
        let err = self.err("stage ratings");
        let test = self.held_out(name, input).await?;
        let nb = self.params.blocks;
        let sql = format!(
            "WITH users AS (SELECT user_id, CAST(ROW_NUMBER() OVER (ORDER BY user_id) - 1 AS INT) AS u \
                            FROM (SELECT DISTINCT user_id FROM {name})), \
                  items AS (SELECT item_id, CAST(ROW_NUMBER() OVER (ORDER BY item_id) - 1 AS INT) AS i \
                            FROM (SELECT DISTINCT item_id FROM {name})) \
             SELECT users.u AS u, items.i AS i, CAST(r.rating AS DOUBLE) AS rating, r.user_id AS user_id, \
                    ({test}) AS test, users.u % {nb} AS ub, \
                    items.i AS i_, users.u AS u_, r.item_id AS item_id, items.i % {nb} AS ib \
             FROM {name} r JOIN users ON r.user_id = users.user_id JOIN items ON r.item_id = items.item_id"
        );
        let frame = self.ctx.sql(&sql).await.map_err(&err)?;
        let target = |name: &str, columns: [&str; 6]| WriteTarget {
            name: OutputName::named(name),
            url: self.work_folder(name).to_string(),
            partition_by: vec![columns[5].to_string()],
            columns: columns.map(String::from).to_vec(),
            keep_when: None,
        };
        let spec = WriteSpec {
            targets: vec![
                target(BY_USER, ["u", "i", "rating", "user_id", "test", "ub"]),
                target(BY_ITEM, ["i_", "u_", "rating", "item_id", "test", "ib"]),
            ],
            counters: vec![],
            file_tag: String::new(),
            clustering: None,
        };
        let logical = Arc::new(frame.schema().as_arrow().clone());
        let result = write_on_cluster(self.ctx, &frame, &spec).await.map_err(&err)?;
        Ok((spec, result, logical))
    }

    /// The SQL condition that holds a rating out.
    async fn held_out(&self, name: &str, input: &Staged) -> Result<String> {
        let Some(eval) = &self.params.eval else {
            return Ok("false".into());
        };
        match &eval.split {
            Split::Random => Ok(format!(
                "split_hash({}, r.user_id, r.item_id) < {}",
                self.params.seed, eval.test_fraction
            )),
            Split::Time { .. } => {
                // The time at the (1 − fraction) quantile: ratings from then on are held out.
                let offset = (input.rows as f64 * (1.0 - eval.test_fraction)).floor() as u64;
                let sql = format!(
                    "SELECT CAST(rated_at AS BIGINT) AS t FROM {name} ORDER BY t LIMIT 1 OFFSET {offset}"
                );
                let err = self.err("find the hold-out time");
                let batches = self
                    .ctx
                    .sql(&sql)
                    .await
                    .map_err(&err)?
                    .collect()
                    .await
                    .map_err(&err)?;
                let cutoff = batches
                    .iter()
                    .find(|b| b.num_rows() > 0)
                    .map(|b| ScalarValue::try_from_array(b.column(0), 0))
                    .transpose()
                    .map_err(&err)?;
                Ok(match cutoff {
                    Some(t) => format!("CAST(r.rated_at AS BIGINT) >= {t}"),
                    None => "false".into(),
                })
            }
        }
    }

    /// The previous training's factors of this run's users under this run's indices, and how
    /// many there are: the start of a warm training. `None` when not warm starting, or when
    /// there is no previous training of the same rank and id type to start from.
    async fn warm_users(&self, blocks: &Blocks) -> Result<Option<(FileSet, u64)>> {
        if !self.params.warm_start || self.from_scratch {
            return Ok(None);
        }
        let Some(previous) = TableSnapshot::load(&self.outputs.user_factors).await? else {
            return Ok(None);
        };
        let previous = previous.scan_table()?;
        let ids = blocks.user_id.data_type();
        if !previous
            .schema
            .field_with_name("id")
            .is_ok_and(|f| f.data_type() == &ids)
        {
            info!(
                table = self.table,
                "ALS starts cold: the previous user ids are of another type"
            );
            return Ok(None);
        }
        let err = self.err("read the previous user factors");
        let names = [
            format!("__als_previous_users_{}", self.table),
            format!("__als_users_{}", self.table),
        ];
        self.ctx
            .register_table(&names[0], Arc::new(previous))
            .map_err(&err)?;
        self.ctx
            .register_table(&names[1], Arc::new(blocks.by_user.scan_table()))
            .map_err(&err)?;
        let sql = format!(
            "SELECT b.u AS idx, b.user_id AS id, p.features \
             FROM (SELECT DISTINCT u, user_id FROM {}) b JOIN {} p ON b.user_id = p.id \
             WHERE array_length(p.features) = {}",
            names[1], names[0], self.params.rank
        );
        let warm = self.write_factors(&sql, "warm_users").await;
        for name in &names {
            self.ctx.deregister_table(name).map_err(&err)?;
        }
        let warm = warm?;
        info!(
            table = self.table,
            users = warm.rows,
            of = blocks.users,
            "ALS starts warm"
        );
        Ok((warm.rows > 0).then(|| (file_set(&warm), warm.rows)))
    }

    /// A query's `idx, id, features` rows written as factors in the work folder's `folder`.
    async fn write_factors(&self, sql: &str, folder: &str) -> Result<Staged> {
        let err = self.err("write the starting factors");
        let frame = self.ctx.sql(sql).await.map_err(&err)?;
        let spec = WriteSpec {
            targets: vec![factors_target(&self.work_folder(folder))],
            counters: vec![],
            file_tag: String::new(),
            clustering: None,
        };
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let result = write_on_cluster(self.ctx, &frame, &spec).await.map_err(&err)?;
        Staged::from_result(&spec, &result, &OutputName::named(FACTORS), &schema).map_err(&err)
    }

    /// One half-iteration: every block of `side` solved against `fixed`, written under `out`.
    async fn solve(&self, side: Side, blocks: &Blocks, fixed: Fixed, out: Url) -> Result<Staged> {
        let (ratings, files, src_id, dst_id, others) = match side {
            Side::User => (
                &blocks.by_user,
                &blocks.user_blocks,
                blocks.user_id,
                blocks.item_id,
                blocks.items,
            ),
            Side::Item => (
                &blocks.by_item,
                &blocks.item_blocks,
                blocks.item_id,
                blocks.user_id,
                blocks.users,
            ),
        };
        let other = match side {
            Side::User => Side::Item,
            Side::Item => Side::User,
        };
        let gram = match self.params.implicit {
            true => Some(self.gram(&fixed, other, others, dst_id).await?),
            false => None,
        };
        let task = AlsTask {
            step: Step::Solve { side, gram },
            settings: self.settings(),
            ratings_root: ratings.url.to_string(),
            fixed,
            src_id,
            dst_id,
        };
        let target = factors_target(&out);
        let step = match side {
            Side::User => "solve user factors",
            Side::Item => "solve item factors",
        };
        let (spec, result, schema) = self.run_step(task, files, vec![target], step).await?;
        Staged::from_result(&spec, &result, &OutputName::named(FACTORS), &schema).map_err(self.err(step))
    }

    /// `YᵀY` of the fixed factors, once per half-step, on the driver.
    async fn gram(&self, fixed: &Fixed, side: Side, count: u64, id_type: IdType) -> Result<Vec<f64>> {
        let (k, p) = (self.params.rank, self.params);
        match fixed {
            Fixed::Initial => Ok(gram(
                (0..count as u32).map(|i| initial_factor(p.seed, side, i, k, p.nonnegative)),
                k,
            )),
            Fixed::Files(set) | Fixed::Warm(set) => {
                let err = self.err("compute YᵀY");
                let batches = read_files(set).await.map_err(&err)?;
                let mut factors = Factors::from_batches(&batches, k, id_type).map_err(&err)?;
                if let Fixed::Warm(_) = fixed {
                    factors = factors.or_initial(p.seed, side, 0..count as u32, p.nonnegative);
                }
                Ok(gram(factors.iter().map(|(_, v)| v), k))
            }
        }
    }

    async fn run_step(
        &self,
        task: AlsTask,
        blocks: &[Vec<String>],
        targets: Vec<WriteTarget>,
        step: &'static str,
    ) -> Result<(WriteSpec, crate::delta::WriteResult, SchemaRef)> {
        let err = self.err(step);
        let schema = task.schema();
        let table = AlsBlockTable {
            task,
            blocks: blocks.to_vec(),
        };
        let frame = self.ctx.read_table(Arc::new(table)).map_err(&err)?;
        let spec = WriteSpec {
            targets,
            counters: vec![],
            file_tag: String::new(),
            clustering: None,
        };
        let result = write_on_cluster(self.ctx, &frame, &spec).await.map_err(&err)?;
        Ok((spec, result, schema))
    }

    /// Recommendations into their table's folder, evaluation sums through the work folder.
    async fn score(&self, blocks: &Blocks, users: &Staged, items: &Staged) -> Result<(Staged, EvalSums)> {
        let task = AlsTask {
            step: Step::Score {
                users: file_set(users),
                top_n: self.params.top_n,
                eval: self.params.eval.as_ref().map(|e| EvalTask {
                    k: e.k,
                    relevant_min: e.relevant_min,
                }),
            },
            settings: self.settings(),
            ratings_root: blocks.by_user.url.to_string(),
            fixed: Fixed::Files(file_set(items)),
            src_id: blocks.user_id,
            dst_id: blocks.item_id,
        };
        let recommendation = |value| {
            Some(KeepWhen {
                column: super::task::IS_RECOMMENDATION.to_string(),
                value,
            })
        };
        let targets = vec![
            WriteTarget {
                name: OutputName::table(),
                url: self.outputs.recommendations.to_string(),
                partition_by: vec![],
                columns: ["user", "item", "score", "rank"].map(String::from).to_vec(),
                keep_when: recommendation(true),
            },
            WriteTarget {
                name: OutputName::named(EVAL),
                url: self.work_folder("eval").to_string(),
                partition_by: vec![],
                columns: vec![super::task::EVAL_SUMMARY.to_string()],
                keep_when: recommendation(false),
            },
        ];
        let step = "score users";
        let err = self.err(step);
        let (spec, result, schema) = self.run_step(task, &blocks.user_blocks, targets, step).await?;
        let recommendations =
            Staged::from_result(&spec, &result, &OutputName::table(), &schema).map_err(&err)?;
        let eval = Staged::from_result(&spec, &result, &OutputName::named(EVAL), &schema).map_err(&err)?;
        let mut sums = EvalSums::default();
        for batch in read_files(&file_set(&eval)).await.map_err(&err)? {
            let column = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)
                .map_err(|e| err(e.into()))?;
            for text in column.as_string::<i32>().iter().flatten() {
                let task: EvalSums =
                    serde_json::from_str(text).map_err(|e| err(DataFusionError::External(Box::new(e))))?;
                sums.merge(task);
            }
        }
        Ok((recommendations, sums))
    }

    fn metrics(
        &self,
        blocks: &Blocks,
        users: &Staged,
        items: &Staged,
        sums: &EvalSums,
        ratings: u64,
        [stage, per_iteration, score]: [f64; 3],
    ) -> Vec<Metric> {
        let m = |name, k, value| Metric { name, k, value };
        let mut out = vec![
            m("ratings", None, ratings as f64),
            m("train_ratings", None, (ratings - sums.test_ratings) as f64),
            m("users", None, users.rows as f64),
            m("items", None, items.rows as f64),
            m("users_indexed", None, blocks.users as f64),
            m("items_indexed", None, blocks.items as f64),
        ];
        let top_n = Some(self.params.top_n);
        let coverage = sums.recommended_items.len() as f64 / (items.rows.max(1)) as f64;
        out.push(m("catalog_coverage", top_n, coverage));
        if let Some(eval) = &self.params.eval {
            let k = Some(eval.k);
            let ranked = sums.ranked_users.max(1) as f64;
            out.push(m("test_ratings", None, sums.test_ratings as f64));
            out.push(m("cold_test_ratings", None, sums.cold_test_ratings as f64));
            if !self.params.implicit {
                let warm = (sums.test_ratings - sums.cold_test_ratings).max(1) as f64;
                let nan = self.params.cold_start == ColdStart::Nan && sums.cold_test_ratings > 0;
                let or_nan = |v: f64| if nan { f64::NAN } else { v };
                out.push(m("rmse", None, or_nan((sums.squared_error / warm).sqrt())));
                out.push(m("mae", None, or_nan(sums.absolute_error / warm)));
            }
            out.push(m("ranked_users", None, sums.ranked_users as f64));
            out.push(m("cold_users", None, sums.cold_users as f64));
            let names = ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"];
            for (name, total) in names.into_iter().zip(sums.ranking) {
                out.push(m(name, k, total / ranked));
            }
        }
        out.push(m("seconds_stage", None, stage));
        out.push(m("seconds_per_iteration", None, per_iteration));
        out.push(m("seconds_score", None, score));
        out
    }
}

/// Where a step writes factors: `idx, id, features` under `url`.
fn factors_target(url: &Url) -> WriteTarget {
    WriteTarget {
        name: OutputName::named(FACTORS),
        url: url.to_string(),
        partition_by: vec![],
        columns: ["idx", "id", "features"].map(String::from).to_vec(),
        keep_when: None,
    }
}

fn file_set(staged: &Staged) -> FileSet {
    FileSet {
        root: staged.url.to_string(),
        paths: staged.paths(),
    }
}

/// Files per block, from the partition value each file was written under.
fn group_by_block(staged: &Staged, column: &str, blocks: usize) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); blocks];
    for add in &staged.adds {
        let block = add
            .partition_values
            .get(column)
            .cloned()
            .flatten()
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(files) = block.and_then(|b| out.get_mut(b)) {
            files.push(add.path.clone());
        }
    }
    out
}

/// Rows indexed on a side: one more than the largest index in the files' statistics.
fn index_count(staged: &Staged, column: &str) -> u64 {
    staged
        .adds
        .iter()
        .filter_map(|a| a.stats.as_deref())
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .filter_map(|v| v.get("maxValues")?.get(column)?.as_u64())
        .map(|max| max + 1)
        .max()
        .unwrap_or(0)
}
