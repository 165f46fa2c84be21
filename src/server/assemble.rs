//! Chooses the backends the configuration asks for and starts the writer:
//! SQLite or MariaDB, the in-process queue or Kafka, the in-process bus or
//! Redis. Everything above this file sees only the traits.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ServerError;
use crate::bus::memory::MemoryBus;
use crate::bus::{Bus, Catalog};
use crate::config::{Role, ServeArgs};
use crate::metrics::Metrics;
use crate::pipeline::retention;
use crate::pipeline::writer::Writer;
use crate::queue::kafka::{self, KafkaConsumer, KafkaProducer, KafkaSettings};
use crate::queue::memory::{self, MemoryProducer};
use crate::queue::{Consumer, Producer};
use crate::storage::Store;
use crate::storage::mysql::MysqlStore;
use crate::storage::sqlite::SqliteStore;

/// Batches the in-process bus keeps for a lagging receiver.
const BUS_CAPACITY: usize = 1024;
/// How often retention looks for expired entries.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// The backends of one process and the tasks that keep them moving.
pub struct Node {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub catalog: Option<Arc<dyn Catalog>>,
    /// Where the API hands entries; writers have none.
    pub producer: Option<Arc<dyn Producer>>,
    /// The in-process queue, closed at shutdown so its writer drains it.
    memory_queue: Option<MemoryProducer>,
    /// The writer, when this process writes.
    writer: Option<JoinHandle<()>>,
    /// Stops the Kafka consumer, lag monitor and retention.
    background: CancellationToken,
}

/// Combinations that cannot keep taillight's promises.
fn check(cfg: &ServeArgs) -> Result<(), ServerError> {
    let bad = |m: &str| Err(ServerError::Config(m.into()));
    if cfg.role != Role::All && cfg.kafka.kafka_brokers.is_none() {
        return bad(
            "--role ingest and --role writer need --kafka-brokers: with the in-process queue one process must do both",
        );
    }
    if cfg.kafka.kafka_brokers.is_some() && cfg.database_url.is_none() {
        return bad(
            "--kafka-brokers needs --database-url: only the MariaDB store recognises a redelivered entry and keeps it once",
        );
    }
    if cfg.database_url.is_some()
        && (cfg.limits.max_service_len > 255 || cfg.limits.max_tag_len > 255)
    {
        return bad(
            "with --database-url, --max-service-len and --max-tag-len can be at most 255 (MariaDB's indexed column width)",
        );
    }
    Ok(())
}

impl Node {
    pub async fn start(cfg: &ServeArgs, metrics: Arc<Metrics>) -> Result<Node, ServerError> {
        check(cfg)?;
        let store: Arc<dyn Store> = match &cfg.database_url {
            Some(url) => {
                Arc::new(MysqlStore::open(url, cfg.database_pool, cfg.database_bulk).await?)
            }
            None => {
                let dir = cfg.data_dir.clone();
                let sync = cfg.sqlite_synchronous;
                Arc::new(
                    tokio::task::spawn_blocking(move || SqliteStore::open(&dir, sync))
                        .await
                        .map_err(|e| ServerError::Config(format!("opening the store: {e}")))??,
                )
            }
        };
        let (bus, catalog): (Arc<dyn Bus>, Option<Arc<dyn Catalog>>) = match &cfg.redis_url {
            Some(url) => {
                let redis = Arc::new(
                    crate::bus::redis::connect(url, &cfg.redis_channel, &cfg.redis_prefix).await?,
                );
                (redis.clone(), Some(redis))
            }
            None => (Arc::new(MemoryBus::new(BUS_CAPACITY)), None),
        };
        let background = CancellationToken::new();
        let mut node = Node {
            store,
            bus,
            catalog,
            producer: None,
            memory_queue: None,
            writer: None,
            background,
        };
        let writes = cfg.role != Role::Ingest;
        match &cfg.kafka.kafka_brokers {
            Some(brokers) => {
                let settings = KafkaSettings {
                    brokers: brokers.clone(),
                    topic: cfg.kafka.kafka_topic.clone(),
                    partitions: cfg.kafka.kafka_partitions,
                    group: cfg.kafka.kafka_group.clone(),
                    session_timeout: cfg.kafka.kafka_session_timeout,
                    linger: cfg.kafka.kafka_linger,
                    delivery_timeout: cfg.push_timeout,
                };
                kafka::ensure_topic(&settings).await?;
                if cfg.role != Role::Writer {
                    node.producer = Some(Arc::new(KafkaProducer::new(&settings)?));
                }
                if writes {
                    let consumer = KafkaConsumer::new(&settings, node.background.clone())?;
                    consumer.monitor_lag(metrics.clone(), node.background.clone());
                    node.spawn_writer(consumer, cfg, metrics);
                }
            }
            None => {
                let (producer, consumer) = memory::channel(cfg.queue_capacity.max(1));
                node.producer = Some(Arc::new(producer.clone()));
                node.memory_queue = Some(producer);
                node.spawn_writer(consumer, cfg, metrics);
            }
        }
        if writes && let Some(age) = cfg.retention {
            tokio::spawn(retention::run(
                node.store.clone(),
                age,
                RETENTION_EVERY,
                node.background.clone(),
            ));
        }
        Ok(node)
    }

    fn spawn_writer<C: Consumer>(&mut self, consumer: C, cfg: &ServeArgs, metrics: Arc<Metrics>) {
        self.writer = Some(tokio::spawn(
            Writer {
                consumer,
                store: self.store.clone(),
                bus: self.bus.clone(),
                catalog: self.catalog.clone(),
                metrics,
                max_batch: cfg.batch_max(),
                abort_after_store: cfg.fault_abort_after_store,
            }
            .run(),
        ));
    }

    /// Lets the writer store what was accepted, then stops it.
    pub async fn drain(&mut self) {
        if let Some(q) = &self.memory_queue {
            q.close();
        }
        // Kafka keeps what is not yet stored; the writer only finishes its batch.
        self.background.cancel();
        if let Some(w) = self.writer.take()
            && let Err(e) = w.await
        {
            tracing::error!(error = %e, "writer task failed");
        }
    }
}
