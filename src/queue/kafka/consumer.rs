//! Reading batches from the writers' consumer group, committing offsets
//! after the store commit, rewinding after a failed batch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::client::{KafkaArgs, kafka_err};
use super::envelope::decode;
use super::monitor::{self, Gauges, Monitor};
use super::stall::StallWatch;
use crate::metrics::Registry;
use crate::model::{QueuedEntry, SourcePosition};
use crate::queue::contract::{Batch, Consumer, QueueError};

pub struct KafkaConsumer {
    /// Shared with the lag monitor.
    consumer: Arc<StreamConsumer>,
    /// A client of the same group that never joins it: the monitor asks the
    /// broker about the whole topic through it. Asked through the member,
    /// those questions (metadata, the group's offsets) kept tansu from
    /// sharing the partitions with a second writer.
    watcher: Arc<BaseConsumer>,
    topic: String,
    /// The writers' group, described by the monitor to see who holds what.
    group: String,
    /// How long a partition's committed offset may stand still with entries
    /// behind it before the monitor calls it stalled: a few sessions, so a
    /// writer that died has been replaced by then.
    stall_after: Duration,
    /// Ends `next_batch` so the writer can finish.
    shutdown: CancellationToken,
}

/// Where a batch ends and begins on each partition: the offsets to commit,
/// or to rewind to if the batch could not be stored.
pub struct KafkaToken {
    /// partition -> (first offset, last offset) in this batch.
    ranges: BTreeMap<i32, (i64, i64)>,
}

impl KafkaConsumer {
    /// A member of `s`'s writer group, whose reads end at `shutdown`.
    pub fn new(s: &KafkaArgs, shutdown: CancellationToken) -> Result<Self, QueueError> {
        let session = s.kafka_session_timeout.as_millis().clamp(1000, 300_000);
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", s.brokers()?)
            .set("group.id", &s.kafka_group)
            // Offsets move only when we say so: after the store commit.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Some brokers (tansu among them) hold a fetch for its whole
            // max wait even when data arrives meanwhile; 500 ms by default,
            // that was the floor of live-tail latency. 5 ms rather than 10
            // took about 10 ms off tail p50 at low rates in short runs (33 ->
            // 23 ms). 2 ms was tried with a 1 ms producer linger; the pair
            // cost the broker more CPU than the wait it saved (see the
            // producer's linger). An idle writer asks 200 times a second.
            .set("fetch.wait.max.ms", "5")
            // The prefetch buffer (64 MiB and 100k messages by default)
            // needs to hold only a few batches ahead of the writer: 4 MiB is
            // over 10k entries, two writer batches. Smaller fetches than 8
            // MiB halved the writer's rate against tansu.
            .set("queued.max.messages.kbytes", "4096")
            .set("queued.min.messages", "5000")
            // Once the buffer is full, librdkafka waits this long before it
            // fetches again (1 s by default). The writer drains the buffer
            // faster than that, and then stood idle for about half a second
            // in every 1.4 s of a backlog.
            .set("fetch.queue.backoff.ms", "20")
            .set("fetch.max.bytes", "8388608")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 4).max(250).to_string())
            .set("socket.timeout.ms", "5000");
        let consumer: StreamConsumer = s.apply_options(&mut config).create().map_err(kafka_err)?;
        consumer.subscribe(&[&s.kafka_topic]).map_err(kafka_err)?;
        let watcher: BaseConsumer = s
            .apply_options(
                ClientConfig::new()
                    .set("bootstrap.servers", s.brokers()?)
                    .set("group.id", &s.kafka_group)
                    .set("enable.auto.commit", "false")
                    .set("socket.timeout.ms", "5000"),
            )
            .create()
            .map_err(kafka_err)?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            watcher: Arc::new(watcher),
            topic: s.kafka_topic.clone(),
            group: s.kafka_group.clone(),
            stall_after: (3 * s.kafka_session_timeout).max(Duration::from_secs(10)),
            shutdown,
        })
    }

    /// Starts the writer's watch of the whole topic (see [`monitor`]),
    /// reporting into `registry`, until `stop`; it rejoins the group when a
    /// partition no writer is taking needs a new owner.
    pub fn watch_topic(&self, registry: &Registry, stop: CancellationToken) {
        monitor::spawn(
            Monitor {
                consumer: self.consumer.clone(),
                watcher: self.watcher.clone(),
                topic: self.topic.clone(),
                group: self.group.clone(),
                watch: Mutex::new(StallWatch::new(self.stall_after)),
                gauges: Gauges::new(registry),
            },
            stop,
        );
    }

    fn take(
        &self,
        msg: &rdkafka::message::BorrowedMessage<'_>,
        entries: &mut Vec<QueuedEntry>,
        token: &mut KafkaToken,
    ) {
        let pos = SourcePosition {
            partition: msg.partition(),
            offset: msg.offset(),
        };
        let range = token
            .ranges
            .entry(pos.partition)
            .or_insert((pos.offset, pos.offset));
        range.0 = range.0.min(pos.offset);
        range.1 = range.1.max(pos.offset);
        match msg.payload().and_then(|p| decode(p, pos)) {
            Some(q) => entries.push(q),
            // Committed with the batch: a message no writer can read would
            // otherwise stop the partition for good.
            None => tracing::error!(
                partition = pos.partition,
                offset = pos.offset,
                "undecodable message skipped"
            ),
        }
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    type Token = KafkaToken;

    async fn next_batch(&mut self, max: usize) -> Result<Option<Batch<KafkaToken>>, QueueError> {
        let mut entries = Vec::new();
        let mut token = KafkaToken {
            ranges: BTreeMap::new(),
        };
        let first = tokio::select! {
            _ = self.shutdown.cancelled() => return Ok(None),
            m = self.consumer.recv() => m.map_err(kafka_err)?,
        };
        self.take(&first, &mut entries, &mut token);
        drop(first);
        let mut batch = Batch { entries, token };
        // Group commit: take what has already arrived, without waiting.
        self.top_up(&mut batch, max);
        Ok(Some(batch))
    }

    fn top_up(&mut self, batch: &mut Batch<KafkaToken>, max: usize) {
        while batch.entries.len() < max {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => self.take(&m, &mut batch.entries, &mut batch.token),
                // The entries taken so far stay in the batch: dropping them
                // would let a later commit step over them.
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "queue read failed");
                    break;
                }
                None => break,
            }
        }
    }

    async fn commit(&mut self, token: KafkaToken) -> Result<(), QueueError> {
        let mut tpl = TopicPartitionList::new();
        for (partition, (_, last)) in &token.ranges {
            tpl.add_partition_offset(&self.topic, *partition, Offset::Offset(last + 1))
                .map_err(kafka_err)?;
        }
        // Async: a lost commit only means a redelivery, which the store
        // recognises by source position.
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(kafka_err)
    }

    async fn abort(&mut self, token: KafkaToken, error: QueueError) {
        tracing::warn!(%error, "batch not stored; it will be read again");
        for (partition, (first, _)) in token.ranges {
            if let Err(e) = self.consumer.seek(
                &self.topic,
                partition,
                Offset::Offset(first),
                Duration::from_secs(5),
            ) {
                tracing::error!(partition, error = %e, "could not rewind; the group will redeliver after a rebalance");
            }
        }
    }
}
