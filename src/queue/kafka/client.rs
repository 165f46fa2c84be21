//! Reaching the broker: the flags, the topic, and how its errors read.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::model::time::parse_duration;
use crate::queue::contract::QueueError;

/// The Kafka-protocol broker between ingest and writers.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers (`HOST:PORT[,HOST:PORT]`). Without them: an
    /// in-process queue (one node).
    #[arg(long, env = "TAILLIGHT_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Topic of incoming entries; created at start if missing.
    #[arg(long, env = "TAILLIGHT_KAFKA_TOPIC", default_value = "taillight.logs")]
    pub kafka_topic: String,
    /// Partitions of the topic when taillight creates it: the most writers
    /// that can share the work.
    #[arg(long, env = "TAILLIGHT_KAFKA_PARTITIONS", default_value_t = 6)]
    pub kafka_partitions: i32,
    /// Consumer group of the writers.
    #[arg(
        long,
        env = "TAILLIGHT_KAFKA_GROUP",
        default_value = "taillight-writer"
    )]
    pub kafka_group: String,
    /// How long the group waits for a silent writer before reassigning its
    /// partitions; short, so a killed writer is replaced quickly.
    #[arg(long, env = "TAILLIGHT_KAFKA_SESSION_TIMEOUT", default_value = "6s", value_parser = parse_duration)]
    pub kafka_session_timeout: Duration,
    /// How long the producer waits for more entries before it sends a batch
    /// to the broker. Each push may wait that long, but the broker gets
    /// fewer, larger requests: with it on the same cores, 5 ms rather than
    /// 1 ms more than halved live-tail latency under load (docs/benchmarks/tail-latency.md).
    #[arg(long, env = "TAILLIGHT_KAFKA_LINGER", default_value = "5ms", value_parser = parse_duration)]
    pub kafka_linger: Duration,
    /// A librdkafka property for every connection to the broker, as
    /// `NAME=VALUE` (repeat, or separate with `;`, as values may hold
    /// commas): TLS and
    /// SASL (`security.protocol=SASL_SSL`, `ssl.ca.location=...`,
    /// `sasl.mechanism=SCRAM-SHA-512`, `sasl.username=...`), or tuning.
    /// Properties taillight's guarantees rest on cannot be changed.
    #[arg(long, env = "TAILLIGHT_KAFKA_OPTIONS", value_delimiter = ';', value_parser = kafka_option)]
    pub kafka_option: Vec<(String, String)>,
}

/// Properties that keep an acknowledged entry stored exactly once, or
/// that have a flag of their own.
const KEPT: [&str; 8] = [
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
    "isolation.level",
    "transactional.id",
];

fn kafka_option(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let name = name.trim();
    if KEPT.contains(&name) {
        return Err(format!(
            "{name} is set by taillight (its delivery guarantees, or a flag of its own)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

impl KafkaArgs {
    /// The bootstrap brokers; an error when Kafka is not configured.
    pub fn brokers(&self) -> Result<&str, QueueError> {
        self.kafka_brokers
            .as_deref()
            .ok_or_else(|| QueueError::Unavailable("no --kafka-brokers given".into()))
    }

    /// Adds the `--kafka-option` properties to `config`, after taillight's
    /// own, so that tuning can change those.
    pub fn apply_options<'a>(&self, config: &'a mut ClientConfig) -> &'a mut ClientConfig {
        for (name, value) in &self.kafka_option {
            config.set(name, value);
        }
        config
    }
}

pub(super) fn kafka_err(e: KafkaError) -> QueueError {
    QueueError::Unavailable(format!("kafka: {e}"))
}

/// Keeps the last error librdkafka reported for the connection: a failed
/// SASL login or TLS handshake only shows there, and the request that
/// waited for it just times out.
#[derive(Default)]
struct LastError(Mutex<Option<String>>);

impl ClientContext for LastError {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka");
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
    }
}

/// Creates the topic unless it exists. Start-up waits for it, so a broker
/// that refuses us says why here.
pub async fn ensure_topic(s: &KafkaArgs) -> Result<(), QueueError> {
    let admin: AdminClient<LastError> = s
        .apply_options(
            ClientConfig::new()
                .set("bootstrap.servers", s.brokers()?)
                .set("socket.timeout.ms", "5000"),
        )
        .create_with_context(LastError::default())
        .map_err(kafka_err)?;
    let why = |what: String| {
        let last = admin
            .inner()
            .context()
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let last = last
            .map(|r| format!(" (the broker connection said: {r})"))
            .unwrap_or_default();
        QueueError::Unavailable(format!("{what}{last}"))
    };
    let topic = NewTopic::new(
        &s.kafka_topic,
        s.kafka_partitions.max(1),
        TopicReplication::Fixed(-1),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = tokio::time::timeout(
        Duration::from_secs(15),
        admin.create_topics([&topic], &opts),
    )
    .await
    .map_err(|_| {
        why(format!(
            "kafka at {} did not answer",
            s.brokers().unwrap_or_default()
        ))
    })?
    .map_err(|e| why(format!("kafka: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(QueueError::Unavailable(format!(
                    "creating topic {name}: {code}"
                )));
            }
        }
    }
    Ok(())
}
