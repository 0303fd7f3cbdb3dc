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

use super::outcome::{TableOutcome, TableStatus};
use super::table_job::{TableJob, discard};
use crate::delta::{CommitOutcome, Staged, WriteSpec, WriteTarget, write_here};
use crate::error::{Error, Result};
use crate::layers::ident;
use crate::ml::als::{AlsModel, AlsOutputs, AlsTraining, INPUT_COLUMNS, IdType};
use crate::quality::{CheckedFrame, Rule, rules_for};
use crate::spec::{ALS_COMPANIONS, Action, AlsParams, Split, WriteMode};

/// Scratch folders of running trainings, under the lakehouse root.
pub(crate) const WORK_PATH: &str = "_medallion/work";

/// Column carrying the rating as text, for quarantine reasons.
const RATING_TEXT: &str = "__rating_text";

impl TableJob<'_> {
    /// Trains and commits; the run's scratch folder is removed whatever happens.
    pub(super) async fn run_als(
        &self,
        params: &AlsParams,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        let work = self
            .lakehouse
            .at(&format!("{WORK_PATH}/{}/{}/", self.table.name, self.run.id));
        let result = self.train_and_commit(params, &work, outcome).await;
        crate::storage::delete_folder(&work).await;
        result
    }

    async fn train_and_commit(
        &self,
        params: &AlsParams,
        work: &Url,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        let input = self.validated_ratings(params, work, outcome).await?;
        if input.rows == 0 {
            return Err(Error::NoTrainingData {
                table: self.table.name.clone(),
                quarantined: outcome.rows_quarantined,
            });
        }
        let outputs = AlsOutputs {
            work: work.clone(),
            user_factors: self.lakehouse.companion_url(self.table, ALS_COMPANIONS[0]),
            item_factors: self.lakehouse.companion_url(self.table, ALS_COMPANIONS[1]),
            recommendations: self.lakehouse.table_url(self.table),
        };
        let model = AlsTraining::new(self.ctx, params, &self.table.name, outputs)
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
        self.commit_model(params, &model, outcome).await
    }

    /// The query's rows as `user_id, item_id, rating[, rated_at]`: good rows written to the
    /// work folder, bad ones quarantined (committed), in one pass.
    async fn validated_ratings(
        &self,
        params: &AlsParams,
        work: &Url,
        outcome: &mut TableOutcome,
    ) -> Result<Staged> {
        let frame = self
            .frame(None, WriteMode::Overwrite)
            .await?
            .expect("a query always has a frame");
        let frame = self.ratings_frame(frame, params)?;
        let mut rules = self.ratings_rules(&frame, params)?;
        rules.extend(rules_for(self.pipeline, self.table, &frame)?);
        let columns: Vec<String> = INPUT_COLUMNS
            .iter()
            .filter(|c| frame.schema().has_column_with_unqualified_name(c))
            .map(|c| c.to_string())
            .collect();
        let checked = CheckedFrame::build(
            frame,
            &rules,
            &columns,
            &[],
            &self.run.id,
            self.run.started_micros,
        )
        .map_err(|e| self.query_err("plan expectations", e))?;
        let keep = checked.keep_column.expect("ALS input rules always drop");
        let spec = WriteSpec {
            targets: vec![
                WriteTarget {
                    url: work
                        .join("valid/")
                        .expect("work folder is a URL directory")
                        .to_string(),
                    partition_by: vec![],
                    columns: checked.table_columns.clone(),
                    keep_when: Some((keep, true)),
                },
                WriteTarget {
                    url: self.lakehouse.quarantine_url(self.table).to_string(),
                    partition_by: vec![],
                    columns: checked.quarantine_columns.clone().expect("drop rules quarantine"),
                    keep_when: Some((keep, false)),
                },
            ],
            count_columns: checked.failed_columns.clone(),
            file_tag: String::new(),
        };
        let result = self.write(&checked.frame, &spec).await?;
        self.account(outcome, &rules, &spec, &result).await?;
        self.commit_quarantine(outcome, &checked, &spec, &result).await?;
        let logical = Arc::new(checked.frame.schema().as_arrow().clone());
        Staged::from_result(&spec, &result, 0, &logical).map_err(|e| self.query_err("write", e))
    }

    /// Renames and types the configured columns; ids must be integers or text.
    fn ratings_frame(&self, frame: DataFrame, p: &AlsParams) -> Result<DataFrame> {
        let schema = frame.schema().clone();
        let type_of = |column: &str, role: &str| -> Result<DataType> {
            schema
                .field_with_unqualified_name(column)
                .map(|f| f.data_type().clone())
                .map_err(|_| {
                    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    self.invalid(format!(
                        "als.{role} = \"{column}\" is not a column of the query (it has {})",
                        names.join(", ")
                    ))
                })
        };
        let id = |column: &str, role: &str| -> Result<Expr> {
            let t = type_of(column, role)?;
            let id = IdType::of(&t).ok_or_else(|| {
                self.invalid(format!(
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
        frame
            .select(select)
            .map_err(|e| self.query_err("plan ratings", e))
    }

    /// The built-in `drop` rules: ids present, rating a finite number (in range when bounded),
    /// a time when the hold-out is by time.
    fn ratings_rules(&self, frame: &DataFrame, p: &AlsParams) -> Result<Vec<Rule>> {
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
                        .map_err(|e| self.query_err("plan ratings rules", e))
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

    /// Factors, metrics and model row, then the recommendations (the table itself).
    async fn commit_model(
        &self,
        params: &AlsParams,
        model: &AlsModel,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        let users = self
            .commit_staged(&model.user_factors, ALS_COMPANIONS[0], WriteMode::Overwrite)
            .await?;
        let items = self
            .commit_staged(&model.item_factors, ALS_COMPANIONS[1], WriteMode::Overwrite)
            .await?;
        let metrics_url = self.lakehouse.companion_url(self.table, ALS_COMPANIONS[2]);
        let metrics = self
            .driver_rows(&metrics_url, &self.metrics_batch(model)?)
            .await?;
        self.commit_staged(&metrics, ALS_COMPANIONS[2], WriteMode::Append)
            .await?;
        let model_url = self.lakehouse.companion_url(self.table, ALS_COMPANIONS[3]);
        let row = self.model_batch(params, model, users.version(), items.version())?;
        let row = self.driver_rows(&model_url, &row).await?;
        self.commit_staged(&row, ALS_COMPANIONS[3], WriteMode::Append)
            .await?;
        let recs = self
            .commit_staged(&model.recommendations, "", WriteMode::Overwrite)
            .await?;
        outcome.rows_written = model.recommendations.rows;
        outcome.version = Some(recs.version());
        info!(table = %self.table.name, users = model.user_factors.rows, items = model.item_factors.rows, "ALS model committed");
        Ok(match recs {
            CommitOutcome::Committed { .. } => TableStatus::Succeeded,
            CommitOutcome::AlreadyCommitted { .. } => TableStatus::AlreadyCommitted,
        })
    }

    /// Commits staged files once for this run; files written again by a re-run are deleted.
    async fn commit_staged(&self, staged: &Staged, suffix: &str, mode: WriteMode) -> Result<CommitOutcome> {
        let target = WriteTarget {
            url: staged.url.to_string(),
            partition_by: staged.partition_by.clone(),
            columns: vec![],
            keep_when: None,
        };
        let commit = self
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

    async fn driver_rows(&self, url: &Url, batch: &RecordBatch) -> Result<Staged> {
        write_here(url, batch)
            .await
            .map_err(|e| self.query_err("write model metadata", e))
    }

    fn metrics_batch(&self, model: &AlsModel) -> Result<RecordBatch> {
        let n = model.metrics.len();
        let now = chrono::Utc::now().timestamp_micros();
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "run_id",
                Arc::new(StringArray::from(vec![self.run.id.as_str(); n])),
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
        RecordBatch::try_from_iter(columns).map_err(|e| self.query_err("write metrics", e.into()))
    }

    fn model_batch(
        &self,
        params: &AlsParams,
        model: &AlsModel,
        users_version: i64,
        items_version: i64,
    ) -> Result<RecordBatch> {
        let params = serde_json::to_string(params).expect("parameters serialise");
        let now = chrono::Utc::now().timestamp_micros();
        let int = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("run_id", Arc::new(StringArray::from(vec![self.run.id.as_str()]))),
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
        RecordBatch::try_from_iter(columns).map_err(|e| self.query_err("write model row", e.into()))
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidSpec {
            path: self.pipeline.path.clone(),
            line: self.table.line,
            table: self.table.name.clone(),
            message,
        }
    }
}
