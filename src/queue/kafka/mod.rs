//! The distributed queue: a Kafka topic (any Kafka-protocol broker).
//!
//! Ingest nodes produce each entry ([`producer`]), keyed by service so one
//! service's entries stay ordered, and acknowledge a push once the broker
//! acknowledged every entry of it (idempotent producer, acks=all). Writer
//! nodes consume in a consumer group ([`consumer`]) and commit offsets only
//! after the store committed the batch; the (partition, offset) and receipt
//! time of each entry make a redelivery recognisable, so the store keeps it
//! once. Every writer watches the whole topic ([`monitor`]).

mod client;
mod consumer;
mod envelope;
mod monitor;
mod producer;
mod stall;

pub use client::{KafkaArgs, ensure_topic};
pub use consumer::{KafkaConsumer, KafkaToken};
pub use producer::{KafkaProducer, producer_config};
