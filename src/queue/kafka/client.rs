//! Reaching the broker: the flags, the topic, and how its errors read.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
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
    /// 1 ms more than halved live-tail latency under load (BENCHMARKS.md).
    #[arg(long, env = "TAILLIGHT_KAFKA_LINGER", default_value = "5ms", value_parser = parse_duration)]
    pub kafka_linger: Duration,
}

impl KafkaArgs {
    /// The bootstrap brokers; an error when Kafka is not configured.
    pub fn brokers(&self) -> Result<&str, QueueError> {
        self.kafka_brokers
            .as_deref()
            .ok_or_else(|| QueueError::Unavailable("no --kafka-brokers given".into()))
    }
}

pub(super) fn kafka_err(e: KafkaError) -> QueueError {
    QueueError::Unavailable(format!("kafka: {e}"))
}

/// Creates the topic unless it exists.
pub async fn ensure_topic(s: &KafkaArgs) -> Result<(), QueueError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", s.brokers()?)
        .set("socket.timeout.ms", "5000")
        .create()
        .map_err(kafka_err)?;
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
        QueueError::Unavailable(format!(
            "kafka at {} did not answer",
            s.brokers().unwrap_or_default()
        ))
    })?
    .map_err(kafka_err)?;
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
