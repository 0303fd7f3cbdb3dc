//! A bronze table fed by a Kafka topic: each run reads every partition from the offset the
//! table's last commit recorded to the broker's end (or the per-run cap), on the executors, and
//! commits the rows with the new offsets — each record exactly once across crashes and retries.

use std::sync::Arc;

use rskafka::client::Client;
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};

use super::TableStep;
use super::checked_write::{CheckedWrite, MainOutput, QuarantineCommit, TableCommit};
use crate::delta::{TableSnapshot, WriteResult};
use crate::error::{Error, Result};
use crate::kafka::offsets::{Gap, OffsetRange, PartitionOffsets, Planned, plan_ranges, watermark_id};
use crate::kafka::{KAFKA_COLUMNS, KafkaScanOptions, KafkaTable, connect, group_ranges};
use crate::landing::{CORRUPT_RECORD, LandingFormat, LandingOptions};
use crate::layers::{Audit, audited};
use crate::pipeline::check::{Main, Outputs};
use crate::pipeline::outcome::{Refresh, RefreshKind, TableOutcome, TableStatus};
use crate::pipeline::table_job::{TableJob, Watermark};
use crate::quality::rules_for;
use crate::spec::{Compression, KafkaFormat, KafkaSource, WriteMode};

/// A Kafka source.
pub(crate) struct KafkaStep<'a> {
    /// The topic and how to read it.
    pub(crate) source: &'a KafkaSource,
    /// The table as it is, if it has been committed.
    pub(crate) snapshot: Option<&'a TableSnapshot>,
    /// Append (new records) or overwrite (from the starting position again).
    pub(crate) mode: WriteMode,
}

/// The planned write and the offsets it reads, for the summary and the event log.
pub(crate) struct KafkaPlan {
    write: CheckedWrite,
    read: Refresh,
}

impl TableStep for KafkaStep<'_> {
    type Plan = KafkaPlan;
    type Written = WriteResult;

    async fn plan(&self, job: &TableJob<'_>) -> Result<Option<KafkaPlan>> {
        let planned = self.planned_ranges(job).await?;
        let records: i64 = planned.ranges.iter().map(|r| r.len()).sum();
        tracing::info!(topic = %self.source.topic, records, replay = planned.replay, "kafka offsets planned");
        if records == 0 && self.snapshot.is_some() && self.mode == WriteMode::Append {
            return Ok(None);
        }
        let watermarks: Vec<Watermark> = planned
            .ranges
            .iter()
            .map(|r| (watermark_id(&self.source.topic, r.partition), r.end))
            .collect();
        let quarantine = QuarantineCommit {
            mode: self.mode,
            watermarks: watermarks.clone(),
            already_committed: planned.replay,
        };
        let write = self
            .checked_write(job, group_ranges(&planned.ranges, job.partitions))?
            .with_quarantine_commit(quarantine)
            .with_table_watermarks(watermarks);
        let read = self.offsets_read(&planned);
        Ok(Some(KafkaPlan { write, read }))
    }

    async fn write(&self, job: &TableJob<'_>, plan: &KafkaPlan, _: &mut TableOutcome) -> Result<WriteResult> {
        plan.write.write(job).await
    }

    async fn commit(
        &self,
        job: &TableJob<'_>,
        plan: KafkaPlan,
        result: WriteResult,
        outcome: &mut TableOutcome,
    ) -> Result<TableStatus> {
        let exists = self.snapshot.is_some();
        outcome.refresh = Some(plan.read);
        plan.write
            .commit_table(job, &result, TableCommit::Write(self.mode, exists), outcome)
            .await
    }
}

impl KafkaStep<'_> {
    /// What the run reads: ``incremental_append: 200 record(s) of topic `events` (partition 0:
    /// 100→180, …)``
    /// (`full` on a full refresh), in the summary and the event log.
    fn offsets_read(&self, planned: &Planned) -> Refresh {
        let records: i64 = planned.ranges.iter().map(|r| r.len()).sum();
        let ranges: Vec<String> = planned
            .ranges
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| format!("{}: {}→{}", r.partition, r.start, r.end))
            .collect();
        let mut detail = format!("{records} record(s) of topic `{}`", self.source.topic);
        if !ranges.is_empty() {
            detail += &format!(" (partition {})", ranges.join(", "));
        }
        if planned.replay {
            detail += "; replaying an attempt whose quarantine was committed";
        }
        Refresh {
            kind: match self.mode {
                WriteMode::Append => RefreshKind::Appended,
                WriteMode::Overwrite => RefreshKind::Full,
            },
            detail,
            inputs: vec![],
        }
    }

    /// The records of `range_groups` (one group per scan task) checked and written.
    fn checked_write(&self, job: &TableJob<'_>, range_groups: Vec<Vec<OffsetRange>>) -> Result<CheckedWrite> {
        let table = KafkaTable {
            options: self.scan_options(job)?,
            range_groups,
        };
        let scan = job
            .ctx
            .read_table(Arc::new(table))
            .map_err(|e| job.query_err("plan kafka ingest", e))?;
        let audit = Audit {
            run_id: &job.run.id,
            now_micros: job.run.started_micros,
        };
        let frame = audited(scan, job.table, audit, &KAFKA_COLUMNS)?;
        let rules = rules_for(job.pipeline, job.table, &frame)?;
        let columns = job.output_columns(&frame)?;
        let raw_record = [CORRUPT_RECORD.to_string()];
        CheckedWrite::plan(job, frame, rules, &columns, &raw_record, MainOutput::table(job))
    }

    /// What a run would write, planned without asking the brokers anything.
    pub(crate) async fn dry_run(&self, job: &TableJob<'_>) -> Result<Outputs> {
        let write = self.checked_write(job, vec![])?;
        Ok(Outputs::written(write.dry_run(job).await?, Main::Table))
    }

    /// Each partition's range: the broker's offsets against the table's and its quarantine's.
    async fn planned_ranges(&self, job: &TableJob<'_>) -> Result<Planned> {
        let client = connect(&self.source.connection)
            .await
            .map_err(|message| self.kafka_err(job, message))?;
        let quarantine = match self.mode {
            WriteMode::Append => TableSnapshot::load(&job.lakehouse.quarantine_url(job.table)).await?,
            WriteMode::Overwrite => None,
        };
        let mut partitions = Vec::new();
        for partition in self.partitions(job, &client).await? {
            let (earliest, latest) = self.broker_offsets(job, &client, partition).await?;
            let id = watermark_id(&self.source.topic, partition);
            let committed = match (self.mode, self.snapshot) {
                (WriteMode::Append, Some(s)) => s.txn_version(&id).await?,
                _ => None,
            };
            let quarantined = match &quarantine {
                Some(q) => q.txn_version(&id).await?,
                None => None,
            };
            partitions.push(PartitionOffsets {
                partition,
                earliest,
                latest,
                committed,
                quarantined,
            });
        }
        let source = self.source;
        plan_ranges(
            &partitions,
            source.starting_offsets,
            source.max_records_per_run,
            source.fail_on_data_loss,
        )
        .map_err(|gap| self.gap_err(job, gap))
    }

    async fn partitions(&self, job: &TableJob<'_>, client: &Client) -> Result<Vec<i32>> {
        let topics = client
            .list_topics()
            .await
            .map_err(|e| self.kafka_err(job, format!("cannot list topics: {e}")))?;
        let topic = topics
            .into_iter()
            .find(|t| t.name == self.source.topic)
            .ok_or_else(|| self.kafka_err(job, "the topic does not exist".into()))?;
        Ok(topic.partitions.into_iter().collect())
    }

    async fn broker_offsets(
        &self,
        job: &TableJob<'_>,
        client: &Client,
        partition: i32,
    ) -> Result<(i64, i64)> {
        let fail = |e: rskafka::client::error::Error| {
            self.kafka_err(
                job,
                format!("partition {partition}: cannot read its offsets: {e}"),
            )
        };
        let leader = client
            .partition_client(self.source.topic.clone(), partition, UnknownTopicHandling::Retry)
            .await
            .map_err(fail)?;
        let earliest = leader.get_offset(OffsetAt::Earliest).await.map_err(fail)?;
        let listed = leader.get_offset(OffsetAt::Latest).await.map_err(fail)?;
        if listed <= earliest {
            return Ok((earliest, listed));
        }
        // The end is the high watermark a fetch of the last listed record reports. ListOffsets
        // says the same on Kafka and Event Hubs, but Tansu's in-memory broker lists the last
        // batch's first offset + 1 (and answers a fetch at the end with no topic at all).
        let (_, fetched) = leader
            .fetch_records(listed - 1, 1..1_048_576, 500)
            .await
            .map_err(fail)?;
        Ok((earliest, listed.max(fetched)))
    }

    fn scan_options(&self, job: &TableJob<'_>) -> Result<KafkaScanOptions> {
        let source = self.source;
        let mut columns = Vec::new();
        for name in source.column_names() {
            let ty = source
                .schema
                .get(&name)
                .cloned()
                .unwrap_or_else(|| "string".into());
            crate::landing::parse_sql_type(&ty)
                .map_err(|e| job.invalid(format!("schema hint for `{name}`: {e}")))?;
            columns.push((name, ty));
        }
        let format = match source.format {
            KafkaFormat::Csv => LandingFormat::Csv,
            KafkaFormat::Json | KafkaFormat::Raw => LandingFormat::Ndjson,
        };
        Ok(KafkaScanOptions {
            connection: source.connection.clone(),
            topic: source.topic.clone(),
            format: source.format,
            parse: LandingOptions {
                format,
                header: false,
                delimiter: source.delimiter,
                columns,
                compression: Compression::None,
                rescue: source.format == KafkaFormat::Json,
                quarantine_unreadable: false,
            },
        })
    }

    fn kafka_err(&self, job: &TableJob<'_>, message: String) -> Error {
        Error::Kafka {
            table: job.table.name.clone(),
            topic: self.source.topic.clone(),
            message,
        }
    }

    fn gap_err(&self, job: &TableJob<'_>, gap: Gap) -> Error {
        match gap {
            Gap::Lost {
                partition,
                committed,
                earliest,
            } => Error::KafkaDataLoss {
                table: job.table.name.clone(),
                topic: self.source.topic.clone(),
                partition,
                committed,
                earliest,
                lost: earliest - committed,
            },
            Gap::Ahead {
                partition,
                committed,
                latest,
            } => Error::KafkaAhead {
                table: job.table.name.clone(),
                topic: self.source.topic.clone(),
                partition,
                committed,
                latest,
            },
        }
    }
}
