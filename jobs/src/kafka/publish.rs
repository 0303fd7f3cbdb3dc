//! Publishing records to a topic: what `medallion generate --to kafka://…` and the tests use to
//! feed a broker. Records are spread over the partitions in chunks, round robin.

use std::collections::BTreeMap;

use chrono::Utc;
use rskafka::client::Client;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;

use super::connect::connect;
use crate::spec::KafkaConnection;

/// Records per produce request.
const CHUNK: usize = 500;

/// A producer for one or more topics of one cluster.
pub struct Publisher {
    client: Client,
    /// Partition clients per topic, created on first use.
    topics: BTreeMap<String, Vec<PartitionClient>>,
    /// Partitions a topic this publisher creates gets.
    partitions: i32,
}

impl Publisher {
    /// Connects; topics that do not exist are created with `partitions` partitions.
    pub async fn connect(connection: &KafkaConnection, partitions: i32) -> Result<Self, String> {
        Ok(Self {
            client: connect(connection).await?,
            topics: BTreeMap::new(),
            partitions,
        })
    }

    /// Publishes `values` (with no key) to `topic`; returns how many were published.
    pub async fn publish(&mut self, topic: &str, values: Vec<Vec<u8>>) -> Result<u64, String> {
        let keyed = values.into_iter().map(|v| (None, v)).collect();
        self.publish_keyed(topic, keyed).await
    }

    /// Publishes `(key, value)` records to `topic`, chunk by chunk over its partitions.
    pub async fn publish_keyed(
        &mut self,
        topic: &str,
        records: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    ) -> Result<u64, String> {
        let partitions = self.partition_clients(topic).await?;
        let mut published = 0;
        let mut records = records.into_iter().peekable();
        let mut next = 0;
        while records.peek().is_some() {
            let chunk: Vec<Record> = records
                .by_ref()
                .take(CHUNK)
                .map(|(key, value)| Record {
                    key,
                    value: Some(value),
                    headers: BTreeMap::new(),
                    timestamp: Utc::now(),
                })
                .collect();
            let n = chunk.len() as u64;
            partitions[next % partitions.len()]
                .produce(chunk, Compression::NoCompression)
                .await
                .map_err(|e| format!("cannot publish to `{topic}`: {e}"))?;
            published += n;
            next += 1;
        }
        Ok(published)
    }

    async fn partition_clients(&mut self, topic: &str) -> Result<&Vec<PartitionClient>, String> {
        if !self.topics.contains_key(topic) {
            let clients = self.open_topic(topic).await?;
            self.topics.insert(topic.to_string(), clients);
        }
        Ok(&self.topics[topic])
    }

    async fn open_topic(&self, topic: &str) -> Result<Vec<PartitionClient>, String> {
        let listed = self
            .client
            .list_topics()
            .await
            .map_err(|e| format!("cannot list topics: {e}"))?;
        let partitions: Vec<i32> = match listed.into_iter().find(|t| t.name == topic) {
            Some(t) => t.partitions.into_iter().collect(),
            None => {
                let controller = self.client.controller_client().map_err(|e| e.to_string())?;
                controller
                    .create_topic(topic, self.partitions, 1, 5_000)
                    .await
                    .map_err(|e| format!("cannot create topic `{topic}`: {e}"))?;
                (0..self.partitions).collect()
            }
        };
        let mut clients = Vec::with_capacity(partitions.len());
        for p in partitions {
            let client = self
                .client
                .partition_client(topic.to_string(), p, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| format!("topic `{topic}` partition {p}: {e}"))?;
            clients.push(client);
        }
        Ok(clients)
    }
}
