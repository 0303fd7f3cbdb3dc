//! An `ml` table with `[table.als]`: validate the query's ratings (bad rows to the quarantine
//! with the rule and the reason), train on the cluster, then commit the factors, the metrics,
//! the model row and — last, so a re-run can tell it is done — the recommendations.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::{btrim, nullif};
use datafusion::logical_expr::{Expr, cast, lit, try_cast};
use tracing::info;
use url::Url;

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput};
use super::sql::sql_frame;
use crate::delta::{CommitOutcome, OutputName, Staged, WriteTarget, write_here};
use crate::error::{Error, Result};
use crate::layers::ident;
use crate::ml::als::{AlsModel, AlsOutputs, AlsTraining, INPUT_COLUMNS, IdType};
use crate::pipeline::check::{Main, Outputs};
use crate::pipeline::outcome::{TableOutcome, TableStatus};
use crate::pipeline::table_job::{TableJob, discard};
use crate::quality::{Rule, rules_for};
use crate::spec::{ALS_COMPANIONS, Action, AlsParams, Split, WriteMode};

/// Scratch folders of running trainings, under the lakehouse root.
const WORK_PATH: &str = "_medallion/work";

/// The validated ratings' output: the training input, in the work folder.
const VALID: &str = "valid_ratings";

/// Column carrying the rating as text, for quarantine reasons.
const RATING_TEXT: &str = "__rating_text";

/// An ALS table.
pub(crate) struct AlsStep<'a> {
    /// The query that yields the ratings.
    pub(crate) sql: &'a str,
    /// The model's settings.
    pub(crate) params: &'a AlsParams,
    /// This run's scratch folder, removed whatever happens.
    pub(crate) work: Url,
}

impl<'a> AlsStep<'a> {
    pub(crate) fn new(job: &TableJob<'_>, sql: &'a str, params: &'a AlsParams) -> Self {
        let work = job
            .lakehouse
            .at(&format!("{WORK_PATH}/{}/{}/", job.table.name, job.run.id));
        Self { sql, params, work }
    }
}

impl TableStep for AlsStep<'_> {
    type Plan = CheckedWrite;
    type Written = AlsModel;

    /// The query's rows as `user_id, item_id, rating[, rated_at]`: good rows to the work
    /// folder, bad ones to the quarantine.
    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<CheckedWrite>> {
        let frame = sql_frame(job, self.sql).await?;
        let frame = self.ratings_frame(job, frame)?;
        let mut rules = self.ratings_rules(job, &frame)?;
        rules.extend(rules_for(job.pipeline, job.table, &frame)?);
        let columns: Vec<String> = INPUT_COLUMNS
            .iter()
            .filter(|c| frame.schema().has_column_with_unqualified_name(c))
            .map(|c| c.to_string())
            .collect();
        let main = MainOutput {
            name: OutputName::named(VALID),
            url: self.work.join("valid/").expect("work folder is a URL directory"),
            partition_by: vec![],
            clustering: None,
        };
        CheckedWrite::plan(job, frame, rules, &columns, &[], main).map(Some)
    }

    /// Validates the ratings (committing the quarantine), then trains on the good ones.
    async fn write(
        &self,
        job: &TableJob<'_>,
        plan: &CheckedWrite,
        outcome: &mut TableOutcome,
    ) -> Result<AlsModel> {
        let result = plan.write(job).await?;
        plan.account(job, &result, outcome).await?;
        plan.commit_quarantine(job, &result, outcome).await?;
        let input = plan.staged(job, &result, &OutputName::named(VALID))?;
        if input.rows == 0 {
            return Err(Error::NoTrainingData {
                table: job.table.name.clone(),
                quarantined: outcome.rows_quarantined,
            });
        }
        let outputs = AlsOutputs {
            work: self.work.clone(),
            user_factors: job.lakehouse.companion_url(job.table, ALS_COMPANIONS[0]),
            item_factors: job.lakehouse.companion_url(job.table, ALS_COMPANIONS[1]),
            recommendations: job.lakehouse.table_url(job.table),
        };
        let model = AlsTraining::new(job.ctx, self.params, &job.table.name, outputs)
            .from_scratch(job.full_refresh)
            .run(&input)
            .await?;
        outcome.metrics = model
            .metrics
            .iter()
            .map(|m| match m.k {
                Some(k) => (format!("{}@{k}", m.name.trim_end_matches("_at_k")), m.value),
                None => (m.name.to_string(), m.value),
            })
            .collect();
        Ok(model)
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        _: CheckedWrite,
        model: AlsModel,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        commit_model(job, self.params, &model, outcome).await
    }

    async fn finish(&self) {
        crate::storage::delete_folder(&self.work).await;
    }
}

impl AlsStep<'_> {
    /// What a run would write before training: the ratings' quarantine (the model's tables
    /// are known once trained).
    pub(crate) async fn dry_run(&self, job: &TableJob<'_>) -> Result<Outputs> {
        let Some(write) = self.plan(job).await? else {
            return Ok(Outputs::default());
        };
        Ok(Outputs::written(write.dry_run(job).await?, Main::Scratch))
    }

    /// Renames and types the configured columns; ids must be integers or text.
    fn ratings_frame(&self, job: &TableJob<'_>, frame: DataFrame) -> Result<DataFrame> {
        let p = self.params;
        let schema = frame.schema().clone();
        let type_of = |column: &str, role: &str| -> Result<DataType> {
            schema
                .field_with_unqualified_name(column)
                .map(|f| f.data_type().clone())
                .map_err(|_| {
                    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    job.invalid(format!(
                        "als.{role} = \"{column}\" is not a column of the query (it has {})",
                        names.join(", ")
                    ))
                })
        };
        let id = |column: &str, role: &str| -> Result<Expr> {
            let t = type_of(column, role)?;
            let id = IdType::of(&t).ok_or_else(|| {
                job.invalid(format!(
                    "als.{role} column `{column}` has type {t}; ids must be integers or text"
                ))
            })?;
            let typed = cast(ident(column), id.data_type());
            // A blank text id is as missing as a NULL one.
            Ok(match id {
                IdType::Int64 => typed,
                IdType::Utf8 => nullif(btrim(vec![typed]), lit("")),
            })
        };
        let mut select = vec![
            id(&p.user, "user")?.alias(INPUT_COLUMNS[0]),
            id(&p.item, "item")?.alias(INPUT_COLUMNS[1]),
        ];
        type_of(&p.rating, "rating")?;
        select.push(try_cast(ident(&p.rating), DataType::Float64).alias(INPUT_COLUMNS[2]));
        if let Some(Split::Time { column }) = p.eval.as_ref().map(|e| &e.split) {
            type_of(column, "eval.time_column")?;
            let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
            select.push(try_cast(ident(column), ts).alias(INPUT_COLUMNS[3]));
        }
        select.push(cast(ident(&p.rating), DataType::Utf8).alias(RATING_TEXT));
        frame.select(select).map_err(|e| job.query_err("plan ratings", e))
    }

    /// The built-in `drop` rules: ids present, rating a finite number (in range when bounded),
    /// a time when the hold-out is by time.
    fn ratings_rules(&self, job: &TableJob<'_>, frame: &DataFrame) -> Result<Vec<Rule>> {
        let p = self.params;
        let text = format!("coalesce('''' || {RATING_TEXT} || '''', 'NULL')");
        let mut rules = vec![
            (
                "user_id_present",
                "user_id IS NOT NULL".to_string(),
                format!("'field `{}` is null'", p.user),
            ),
            (
                "item_id_present",
                "item_id IS NOT NULL".to_string(),
                format!("'field `{}` is null'", p.item),
            ),
            (
                "finite_rating",
                "rating BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308".to_string(),
                format!("'field `{}`: ' || {text} || ' is not a finite number'", p.rating),
            ),
        ];
        if p.min_rating.is_some() || p.max_rating.is_some() {
            let lo = p.min_rating.unwrap_or(f64::MIN);
            let hi = p.max_rating.unwrap_or(f64::MAX);
            rules.push((
                "rating_in_range",
                format!("rating BETWEEN {lo:?} AND {hi:?}"),
                format!("'field `{}`: ' || {text} || ' is outside [{lo}, {hi}]'", p.rating),
            ));
        }
        if let Some(Split::Time { column }) = p.eval.as_ref().map(|e| &e.split) {
            rules.push((
                "rated_at_present",
                "rated_at IS NOT NULL".to_string(),
                format!("'field `{column}` is null or not a timestamp'"),
            ));
        }
        rules
            .into_iter()
            .map(|(name, pass, reason)| {
                let parse = |sql: &str| {
                    frame
                        .parse_sql_expr(sql)
                        .map_err(|e| job.query_err("plan ratings rules", e))
                };
                Ok(Rule {
                    name: name.to_string(),
                    pass: parse(&format!("coalesce(({pass}), false)"))?,
                    reason: parse(&reason)?,
                    action: Action::Drop,
                })
            })
            .collect()
    }
}

/// Factors, metrics and model row, then the recommendations (the table itself).
async fn commit_model(
    job: &TableJob<'_>,
    params: &AlsParams,
    model: &AlsModel,
    outcome: &mut TableOutcome,
) -> Result<TableStatus> {
    let users = commit_staged(job, &model.user_factors, ALS_COMPANIONS[0], WriteMode::Overwrite).await?;
    let items = commit_staged(job, &model.item_factors, ALS_COMPANIONS[1], WriteMode::Overwrite).await?;
    let metrics_url = job.lakehouse.companion_url(job.table, ALS_COMPANIONS[2]);
    let metrics = driver_rows(job, &metrics_url, &metrics_batch(job, model)?).await?;
    commit_staged(job, &metrics, ALS_COMPANIONS[2], WriteMode::Append).await?;
    let model_url = job.lakehouse.companion_url(job.table, ALS_COMPANIONS[3]);
    let row = model_batch(job, params, model, users.version(), items.version())?;
    let row = driver_rows(job, &model_url, &row).await?;
    commit_staged(job, &row, ALS_COMPANIONS[3], WriteMode::Append).await?;
    let recs = commit_staged(job, &model.recommendations, "", WriteMode::Overwrite).await?;
    outcome.rows_written = model.recommendations.rows;
    info!(table = %job.table.name, users = model.user_factors.rows, items = model.item_factors.rows, "ALS model committed");
    Ok(outcome.committed(recs))
}

/// Commits staged files once for this run; files written again by a re-run are deleted.
async fn commit_staged(
    job: &TableJob<'_>,
    staged: &Staged,
    suffix: &str,
    mode: WriteMode,
) -> Result<CommitOutcome> {
    let target = WriteTarget {
        name: OutputName::table(),
        url: staged.url.to_string(),
        partition_by: staged.partition_by.clone(),
        columns: vec![],
        keep_when: None,
    };
    let commit = job
        .commit(
            &target,
            suffix,
            Arc::clone(&staged.schema),
            mode,
            staged.adds.clone(),
        )
        .await?;
    if matches!(commit, CommitOutcome::AlreadyCommitted { .. }) {
        discard(&target, &staged.adds).await;
    }
    Ok(commit)
}

async fn driver_rows(job: &TableJob<'_>, url: &Url, batch: &RecordBatch) -> Result<Staged> {
    write_here(url, batch)
        .await
        .map_err(|e| job.query_err("write model metadata", e))
}

fn metrics_batch(job: &TableJob<'_>, model: &AlsModel) -> Result<RecordBatch> {
    let n = model.metrics.len();
    let now = chrono::Utc::now().timestamp_micros();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "run_id",
            Arc::new(StringArray::from(vec![job.run.id.as_str(); n])),
        ),
        (
            "metric",
            Arc::new(StringArray::from_iter_values(
                model.metrics.iter().map(|m| m.name),
            )),
        ),
        (
            "k",
            Arc::new(Int32Array::from_iter(
                model.metrics.iter().map(|m| m.k.map(|k| k as i32)),
            )),
        ),
        (
            "value",
            Arc::new(Float64Array::from_iter_values(
                model.metrics.iter().map(|m| m.value),
            )),
        ),
        (
            "recorded_at",
            Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
        ),
    ];
    RecordBatch::try_from_iter(columns).map_err(|e| job.query_err("write metrics", e.into()))
}

fn model_batch(
    job: &TableJob<'_>,
    params: &AlsParams,
    model: &AlsModel,
    users_version: i64,
    items_version: i64,
) -> Result<RecordBatch> {
    let params = serde_json::to_string(params).expect("parameters serialise");
    let now = chrono::Utc::now().timestamp_micros();
    let int = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("run_id", Arc::new(StringArray::from(vec![job.run.id.as_str()]))),
        (
            "trained_at",
            Arc::new(TimestampMicrosecondArray::from(vec![now]).with_timezone("UTC")),
        ),
        ("algorithm", Arc::new(StringArray::from(vec!["als"]))),
        ("params", Arc::new(StringArray::from(vec![params]))),
        ("users", int(model.user_factors.rows as i64)),
        ("items", int(model.item_factors.rows as i64)),
        ("user_factors_version", int(users_version)),
        ("item_factors_version", int(items_version)),
    ];
    RecordBatch::try_from_iter(columns).map_err(|e| job.query_err("write model row", e.into()))
}
