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

    /// Publishes `(key, value)` records to `topic`: a keyed record to the partition its key
    /// hashes to (so a key's records stay in order), the others in chunks, round robin.
    pub async fn publish_keyed(
        &mut self,
        topic: &str,
        records: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    ) -> Result<u64, String> {
        let partitions = self.partition_clients(topic).await?;
        let mut per_partition: Vec<Vec<Record>> = partitions.iter().map(|_| Vec::new()).collect();
        for (i, (key, value)) in records.into_iter().enumerate() {
            let p = match &key {
                Some(key) => fnv1a(key) as usize % partitions.len(),
                None => (i / CHUNK) % partitions.len(),
            };
            per_partition[p].push(Record {
                key,
                value: Some(value),
                headers: BTreeMap::new(),
                timestamp: Utc::now(),
            });
        }
        let mut published = 0;
        for (client, mut records) in partitions.iter().zip(per_partition) {
            while !records.is_empty() {
                let rest = records.split_off(records.len().min(CHUNK));
                let chunk = std::mem::replace(&mut records, rest);
                published += chunk.len() as u64;
                client
                    .produce(chunk, Compression::NoCompression)
                    .await
                    .map_err(|e| format!("cannot publish to `{topic}`: {e}"))?;
            }
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

/// 64-bit FNV-1a: a stable key → partition hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
