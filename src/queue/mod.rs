//! The queue between the ways in and the writer.
//!
//! The intake hands validated entries to a [`Producer`]; the writer pulls
//! batches from a [`Consumer`], stores them, and only then commits the batch.
//! What "durable" means for an acknowledged push differs by backend and is
//! the producer's to decide: the in-process queue acknowledges after the
//! store commit, Kafka after the broker acknowledged.

mod contract;
mod erased;
pub mod kafka;
pub mod memory;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::metrics::Registry;
pub use contract::{Batch, Consumer, Durable, Producer, QueueError};
pub use erased::{AnyConsumer, AnyToken};
use kafka::{KafkaArgs, KafkaConsumer, KafkaProducer};

/// The queue's flags: Kafka's, and the in-process queue's used without it.
#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// Entries accepted but not yet stored, beyond which pushes wait
    /// (embedded mode). Four full write batches keep the writer busy; more
    /// only holds memory (100k took the server to 120 MB under load).
    #[arg(long, env = "TAILLIGHT_QUEUE_CAPACITY", default_value_t = 20_000)]
    pub queue_capacity: usize,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Which ends of the queue this process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub produce: bool,
    pub consume: bool,
}

/// The ends of the queue this process uses.
pub struct Queue {
    /// Where the intake hands entries; `None` on a writer-only node.
    pub producer: Option<Arc<dyn Producer>>,
    /// What the writer reads; `None` on an ingest-only node.
    pub consumer: Option<AnyConsumer>,
}

impl QueueArgs {
    /// Whether entries travel through Kafka (and so may be split over nodes).
    pub fn is_kafka(&self) -> bool {
        self.kafka.kafka_brokers.is_some()
    }

    /// Opens the queue's `ends`: Kafka when brokers are given, otherwise the
    /// in-process queue (which needs both ends in this process). Producers
    /// fail a push the broker has not acknowledged within `push_timeout`;
    /// the consumer ends once `stop` is cancelled (the in-process one after
    /// draining what it holds).
    pub async fn open(
        &self,
        ends: Ends,
        push_timeout: std::time::Duration,
        registry: &Registry,
        stop: CancellationToken,
    ) -> Result<Queue, QueueError> {
        if !self.is_kafka() {
            let (producer, consumer) = memory::channel(self.queue_capacity.max(1), stop);
            return Ok(Queue {
                producer: Some(Arc::new(producer)),
                consumer: Some(erased::erase(consumer)),
            });
        }
        kafka::ensure_topic(&self.kafka).await?;
        let producer: Option<Arc<dyn Producer>> = match ends.produce {
            true => Some(Arc::new(KafkaProducer::new(&self.kafka, push_timeout)?)),
            false => None,
        };
        let consumer = match ends.consume {
            true => {
                let c = KafkaConsumer::new(&self.kafka, stop.clone())?;
                c.watch_topic(registry, stop);
                Some(erased::erase(c))
            }
            false => None,
        };
        Ok(Queue { producer, consumer })
    }
}
