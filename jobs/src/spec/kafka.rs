//! `source = { kafka = { … }, format = … }`: a bronze table fed by a Kafka topic (or Azure
//! Event Hubs' Kafka endpoint), checked on load.
//!
//! The settings follow Spark's Kafka source where it has one (`startingOffsets`,
//! `maxOffsetsPerTrigger`, `failOnDataLoss`, `kafka.security.protocol`, `kafka.sasl.mechanism`).
//! Secrets never live in the spec: `sasl_password_env` names the environment variable that holds
//! the password, on the driver and on every executor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A topic read into a bronze table, each record once.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSource {
    /// How to reach the brokers.
    pub connection: KafkaConnection,
    /// The topic; every partition is read.
    pub topic: String,
    /// Where a partition starts when the table has no offset for it yet.
    pub starting_offsets: StartingOffsets,
    /// At most this many records per run, shared by the partitions (all when unset).
    pub max_records_per_run: Option<u64>,
    /// Whether an offset the broker no longer holds (retention) fails the table.
    pub fail_on_data_loss: bool,
    /// How a record's value becomes columns.
    pub format: KafkaFormat,
    /// Column name → SQL type for typed columns (as for landing files).
    pub schema: BTreeMap<String, String>,
    /// Column names in order (CSV values, or JSON keys beyond the typed ones).
    pub columns: Vec<String>,
    /// CSV: field delimiter.
    pub delimiter: u8,
}

impl KafkaSource {
    /// The data columns in order: `columns`, then typed columns not among them; `value` for raw.
    pub fn column_names(&self) -> Vec<String> {
        if self.format == KafkaFormat::Raw {
            return vec![RAW_VALUE.to_string()];
        }
        let mut names = self.columns.clone();
        for name in self.schema.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

/// The one data column of a `raw` Kafka source: the record value as text.
pub const RAW_VALUE: &str = "value";

/// Brokers and how to talk to them; shipped to the executors with each scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KafkaConnection {
    /// `host:port` of one or more brokers.
    pub bootstrap: Vec<String>,
    /// Transport and authentication.
    pub security: Security,
    /// SASL settings, when `security` uses SASL.
    pub sasl: Option<Sasl>,
    /// PEM file with the CA certificates to trust (the system's roots when unset).
    pub ca_file: Option<String>,
}

/// Kafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Security {
    /// Plain TCP.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS (Azure Event Hubs, Confluent Cloud, MSK with SASL/SCRAM).
    SaslSsl,
}

impl Security {
    /// Whether the connection is encrypted.
    pub fn tls(self) -> bool {
        matches!(self, Security::Ssl | Security::SaslSsl)
    }

    /// Whether the client authenticates with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, Security::SaslPlaintext | Security::SaslSsl)
    }
}

/// SASL credentials: the user name as written, the password from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// User name (`$ConnectionString` for Event Hubs).
    pub username: String,
    /// Environment variable holding the password (the connection string for Event Hubs).
    pub password_env: String,
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// PLAIN (Event Hubs).
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

/// Spark's `startingOffsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The oldest record the broker still holds.
    Earliest,
    /// Only records published after the first run.
    Latest,
}

/// How a record value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KafkaFormat {
    /// A JSON object per record; keys outside the columns go to `_rescued_data`.
    Json,
    /// One delimited line per record, fields in `columns` order.
    Csv,
    /// The value as text in a `value` column.
    Raw,
}

impl KafkaFormat {
    /// Lower-case name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaFormat::Json => "json",
            KafkaFormat::Csv => "csv",
            KafkaFormat::Raw => "raw",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKafka {
    bootstrap: String,
    topic: String,
    starting_offsets: Option<String>,
    max_records_per_run: Option<i64>,
    fail_on_data_loss: Option<bool>,
    security_protocol: Option<String>,
    sasl_mechanism: Option<String>,
    sasl_username: Option<String>,
    sasl_password_env: Option<String>,
    ssl_ca_file: Option<String>,
}

/// The rest of a `source` table that a Kafka source uses.
pub(crate) struct RawValueShape {
    pub(crate) format: String,
    pub(crate) schema: BTreeMap<String, String>,
    pub(crate) columns: Vec<String>,
    pub(crate) delimiter: u8,
}

impl RawKafka {
    pub(crate) fn convert(self, shape: RawValueShape) -> Result<KafkaSource, String> {
        let format = match shape.format.as_str() {
            "json" | "ndjson" => KafkaFormat::Json,
            "csv" => KafkaFormat::Csv,
            "raw" => KafkaFormat::Raw,
            other => {
                return Err(format!(
                    "unknown Kafka value format `{other}` (expected json, csv or raw)"
                ));
            }
        };
        match format {
            KafkaFormat::Json if shape.columns.is_empty() && shape.schema.is_empty() => {
                return Err(
                    "a Kafka JSON source needs `columns` or `schema` (other keys go to `_rescued_data`)"
                        .into(),
                );
            }
            KafkaFormat::Csv if shape.columns.is_empty() => {
                return Err("a Kafka CSV source needs `columns` (its records have no header)".into());
            }
            KafkaFormat::Raw if !shape.columns.is_empty() || !shape.schema.is_empty() => {
                return Err(
                    "a raw Kafka source has one `value` column; give no `columns` or `schema`".into(),
                );
            }
            _ => {}
        }
        let bootstrap: Vec<String> = self
            .bootstrap
            .split(',')
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .collect();
        if bootstrap.is_empty() {
            return Err("`kafka.bootstrap` names no broker".into());
        }
        let starting_offsets = match self.starting_offsets.as_deref() {
            None | Some("earliest") => StartingOffsets::Earliest,
            Some("latest") => StartingOffsets::Latest,
            Some(other) => {
                return Err(format!(
                    "unknown starting_offsets `{other}` (expected earliest or latest)"
                ));
            }
        };
        let max_records_per_run = match self.max_records_per_run {
            None => None,
            Some(n) if n > 0 => Some(n as u64),
            Some(n) => return Err(format!("max_records_per_run must be positive, not {n}")),
        };
        let security = match self
            .security_protocol
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("plaintext") => Security::Plaintext,
            Some("ssl") => Security::Ssl,
            Some("sasl_plaintext") => Security::SaslPlaintext,
            Some("sasl_ssl") => Security::SaslSsl,
            Some(other) => {
                return Err(format!(
                    "unknown security_protocol `{other}` (expected plaintext, ssl, sasl_plaintext or sasl_ssl)"
                ));
            }
        };
        let sasl = self.sasl(security)?;
        if self.ssl_ca_file.is_some() && !security.tls() {
            return Err("`ssl_ca_file` needs security_protocol ssl or sasl_ssl".into());
        }
        Ok(KafkaSource {
            connection: KafkaConnection {
                bootstrap,
                security,
                sasl,
                ca_file: self.ssl_ca_file,
            },
            topic: self.topic,
            starting_offsets,
            max_records_per_run,
            fail_on_data_loss: self.fail_on_data_loss.unwrap_or(true),
            format,
            schema: shape.schema,
            columns: shape.columns,
            delimiter: shape.delimiter,
        })
    }

    fn sasl(&self, security: Security) -> Result<Option<Sasl>, String> {
        let given =
            self.sasl_mechanism.is_some() || self.sasl_username.is_some() || self.sasl_password_env.is_some();
        if !security.sasl() {
            return match given {
                true => Err("SASL settings need security_protocol sasl_plaintext or sasl_ssl".into()),
                false => Ok(None),
            };
        }
        let mechanism = match self
            .sasl_mechanism
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("PLAIN") => SaslMechanism::Plain,
            Some("SCRAM-SHA-256") => SaslMechanism::ScramSha256,
            Some("SCRAM-SHA-512") => SaslMechanism::ScramSha512,
            Some(other) => {
                return Err(format!(
                    "unknown sasl_mechanism `{other}` (expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                ));
            }
        };
        let (Some(username), Some(password_env)) = (&self.sasl_username, &self.sasl_password_env) else {
            return Err(
                "SASL needs `sasl_username` and `sasl_password_env` (the variable holding the password)"
                    .into(),
            );
        };
        Ok(Some(Sasl {
            mechanism,
            username: username.clone(),
            password_env: password_env.clone(),
        }))
    }
}
