//! The distributed queue: a Kafka topic (any Kafka-protocol broker).
//!
//! Ingest nodes produce each entry, keyed by service so one service's entries
//! stay ordered, and acknowledge a push once the broker acknowledged every
//! entry of it (idempotent producer, acks=all). Writer nodes consume in a
//! consumer group and commit offsets only after the store committed the
//! batch; the (partition, offset) and receipt time of each entry make a
//! redelivery recognisable, so the store keeps it once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _, PurgeConfig};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::stall::{PartitionState, StallWatch};
use super::{Batch, Consumer, Durable, Producer, QueueError, QueuedEntry, SourcePosition};
use crate::proto::LogRecord;
use crate::time;

/// Where and how to reach the broker; shared by producers and consumers.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// The topic entries travel through.
    pub topic: String,
    /// Partitions of the topic when we create it; more partitions let more
    /// writers share the work.
    pub partitions: i32,
    /// The writers' consumer group.
    pub group: String,
    /// How long the group waits for a silent writer before handing its
    /// partitions to another; short, so a killed writer is replaced quickly.
    pub session_timeout: Duration,
    /// Longest a produced entry may wait for the broker's acknowledgement.
    pub delivery_timeout: Duration,
    /// How long the producer fills a batch before sending it.
    pub linger: Duration,
}

fn kafka_err(e: KafkaError) -> QueueError {
    QueueError::Unavailable(format!("kafka: {e}"))
}

/// Creates the topic unless it exists.
pub async fn ensure_topic(s: &KafkaSettings) -> Result<(), QueueError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &s.brokers)
        .set("socket.timeout.ms", "5000")
        .create()
        .map_err(kafka_err)?;
    let topic = NewTopic::new(&s.topic, s.partitions.max(1), TopicReplication::Fixed(-1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = tokio::time::timeout(
        Duration::from_secs(15),
        admin.create_topics([&topic], &opts),
    )
    .await
    .map_err(|_| QueueError::Unavailable(format!("kafka at {} did not answer", s.brokers)))?
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

/// The envelope on the topic: the entry and its receive time (a LogRecord
/// without an id, so no second message type is needed).
fn encode(q: &QueuedEntry) -> Vec<u8> {
    LogRecord {
        id: 0,
        service: q.entry.service.clone(),
        level: q.entry.level,
        message: q.entry.message.clone(),
        tags: q.entry.tags.clone(),
        attributes: q.entry.attributes.clone(),
        time: q.entry.time,
        received_time: Some(time::from_micros(q.received_us)),
    }
    .encode_to_vec()
}

fn decode(payload: &[u8], source: SourcePosition) -> Option<QueuedEntry> {
    let r = LogRecord::decode(payload).ok()?;
    Some(QueuedEntry {
        received_us: r.received_time.as_ref().map_or(0, time::to_micros),
        entry: crate::proto::LogEntry {
            service: r.service,
            level: r.level,
            message: r.message,
            tags: r.tags,
            attributes: r.attributes,
            time: r.time,
        },
        source: Some(source),
    })
}

/// The producer settings: durable (idempotent, acks=all), compressed,
/// batched with `linger`, with bounded memory. Public so the benchmark's raw
/// broker measurement uses exactly these.
pub fn producer_config(brokers: &str, linger: Duration) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        // A request per linger whatever the rate: at 1 ms the broker (tansu,
        // on the same two cores) spent half a core on requests at 1k
        // entries/s as at 25k, and the cores it took were what MariaDB and
        // the writer waited for. With 5 ms, tail p99 at 25k entries/s went
        // from 0.44-0.68 s to 0.17-0.26 s (see BENCHMARKS.md).
        .set("linger.ms", linger.as_millis().max(1).to_string())
        .set("batch.num.messages", "10000")
        // Bounded in-flight memory: past these, sends report QueueFull
        // and pushes wait (backpressure) instead of growing the heap.
        // 4 MiB is over 10k entries in flight; the benchmark's raw produce
        // rate with these settings is over 200k messages/s.
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "4096");
    config
}

pub struct KafkaProducer {
    /// Replaced by a fresh producer when the broker goes away (see
    /// `watch_broker`).
    producer: Arc<RwLock<FutureProducer>>,
    topic: String,
    /// Set while the broker is unreachable, so pushes fail at once with a
    /// clear error instead of each waiting out the delivery timeout.
    down: Arc<AtomicBool>,
    /// Stops the broker watch when the producer is dropped.
    stop: CancellationToken,
}

impl Drop for KafkaProducer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl KafkaProducer {
    pub fn new(s: &KafkaSettings) -> Result<Self, QueueError> {
        let timeout_ms = s
            .delivery_timeout
            .as_millis()
            .clamp(1000, i32::MAX as u128)
            .to_string();
        let mut config = producer_config(&s.brokers, s.linger);
        config
            .set("message.timeout.ms", &timeout_ms)
            .set("socket.timeout.ms", "5000");
        let producer: FutureProducer = config.create().map_err(kafka_err)?;
        let p = KafkaProducer {
            producer: Arc::new(RwLock::new(producer)),
            topic: s.topic.clone(),
            down: Arc::new(AtomicBool::new(false)),
            stop: CancellationToken::new(),
        };
        tokio::spawn(watch_broker(
            p.producer.clone(),
            config,
            s.topic.clone(),
            p.down.clone(),
            p.stop.clone(),
        ));
        Ok(p)
    }

    fn current(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Keeps `down` current by asking the broker for the topic's metadata: every
/// few seconds while up, every half second while down so recovery is quick.
///
/// When the broker goes away the producer is replaced: what it still held
/// fails at once (those pushes were never acknowledged, so their clients see
/// UNAVAILABLE now instead of after the delivery timeout), and the new
/// producer starts a fresh idempotence session with the broker that comes
/// back, rather than resuming one the broker may have lost.
async fn watch_broker(
    producer: Arc<RwLock<FutureProducer>>,
    config: ClientConfig,
    topic: String,
    down: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    loop {
        let pause = if down.load(Relaxed) {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let p = producer.read().unwrap_or_else(|p| p.into_inner()).clone();
        let t = topic.clone();
        let reachable = tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(Some(&t), Duration::from_millis(1500))
                .map(|m| m.brokers().len())
        })
        .await;
        let ok = matches!(reachable, Ok(Ok(n)) if n > 0);
        if down.swap(!ok, Relaxed) == ok {
            if ok {
                tracing::info!("kafka broker reachable again");
            } else {
                tracing::warn!("kafka broker unreachable; pushes fail until it returns");
                match config.create::<FutureProducer>() {
                    Ok(fresh) => {
                        let old = std::mem::replace(
                            &mut *producer.write().unwrap_or_else(|p| p.into_inner()),
                            fresh,
                        );
                        old.purge(PurgeConfig::default().queue().inflight());
                    }
                    Err(e) => tracing::error!(error = %e, "could not create a new kafka producer"),
                }
            }
        }
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn submit(&self, entries: Vec<QueuedEntry>) -> Result<Durable, QueueError> {
        if self.down.load(Relaxed) {
            return Err(QueueError::Unavailable(
                "the kafka broker is unreachable".into(),
            ));
        }
        let producer = self.current();
        let mut deliveries = Vec::with_capacity(entries.len());
        for q in &entries {
            let payload = encode(q);
            let mut record = FutureRecord::to(&self.topic)
                .key(q.entry.service.as_str())
                .payload(&payload);
            loop {
                match producer.send_result(record) {
                    Ok(d) => {
                        deliveries.push(d);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // The producer's buffer is full: wait for deliveries
                        // to free it. The caller's push timeout bounds this.
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(kafka_err(e)),
                }
            }
        }
        Ok(async move {
            for d in deliveries {
                match d.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(kafka_err(e)),
                    Err(_) => return Err(QueueError::Closed),
                }
            }
            Ok(())
        }
        .boxed())
    }

    fn depth(&self) -> u64 {
        self.current().in_flight_count().max(0) as u64
    }
}

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
    pub fn new(s: &KafkaSettings, shutdown: CancellationToken) -> Result<Self, QueueError> {
        let session = s.session_timeout.as_millis().clamp(1000, 300_000);
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &s.brokers)
            .set("group.id", &s.group)
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
            .set("socket.timeout.ms", "5000")
            .create()
            .map_err(kafka_err)?;
        consumer.subscribe(&[&s.topic]).map_err(kafka_err)?;
        let watcher: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &s.brokers)
            .set("group.id", &s.group)
            .set("enable.auto.commit", "false")
            .set("socket.timeout.ms", "5000")
            .create()
            .map_err(kafka_err)?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            watcher: Arc::new(watcher),
            topic: s.topic.clone(),
            group: s.group.clone(),
            stall_after: (3 * s.session_timeout).max(Duration::from_secs(10)),
            shutdown,
        })
    }

    /// Publishes the writer's lag (entries between its position and the end
    /// of its partitions), how many partitions it has and how many of the
    /// topic's are stalled into `metrics` every few seconds until `stop`;
    /// rejoins the group when a partition no writer is taking needs a new
    /// owner (see [`StallWatch`]).
    pub fn monitor_lag(&self, metrics: Arc<crate::metrics::Metrics>, stop: CancellationToken) {
        let monitor = Arc::new(Monitor {
            consumer: self.consumer.clone(),
            watcher: self.watcher.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            watch: Mutex::new(StallWatch::new(self.stall_after)),
            metrics,
        });
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                // Blocking calls to the broker.
                let m = monitor.clone();
                let _ = tokio::task::spawn_blocking(move || m.look()).await;
            }
        });
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

/// What the writer's monitor works with, shared with each of its looks.
struct Monitor {
    consumer: Arc<StreamConsumer>,
    watcher: Arc<BaseConsumer>,
    topic: String,
    group: String,
    /// Behind a lock only because each look runs on a blocking thread.
    watch: Mutex<StallWatch>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Monitor {
    /// One look at the topic, which serves every gauge and the stall watch.
    fn look(&self) {
        let (c, t) = (&self.consumer, &self.topic);
        let Ok(assignment) = c.assignment() else {
            return;
        };
        let metrics = &self.metrics;
        metrics
            .writer_partitions
            .store(assignment.count() as u64, Relaxed);
        let Some(state) = topic_state(&self.watcher, t, &self.group, &assignment) else {
            return;
        };
        if let Some(lag) = lag(c, t, &state.parts) {
            metrics.writer_lag.store(lag, Relaxed);
        }
        let verdict = self
            .watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(Instant::now(), &state.parts, state.starved);
        metrics
            .writer_stalled_partitions
            .store(verdict.stalled.len() as u64, Relaxed);
        if verdict.rejoin {
            tracing::warn!(
                partitions = ?verdict.stalled,
                "entries wait on a partition no writer holds, or the group gave this writer none; rejoining it so the partitions are assigned again"
            );
            // Leaving and joining again: a subscription to the same topic
            // alone is not a change the group sees.
            c.unsubscribe();
            if let Err(e) = c.subscribe(&[t]) {
                tracing::error!(error = %e, "could not rejoin the writers' group");
            }
        } else if verdict.changed && !verdict.stalled.is_empty() {
            tracing::warn!(partitions = ?verdict.stalled, "entries wait on partitions whose committed offsets do not move");
        } else if verdict.changed {
            tracing::info!("no partition is stalled any more");
        }
    }
}

/// One look at the topic and the group.
struct TopicState {
    parts: Vec<PartitionState>,
    /// The group is stable, has no more members than partitions, and gave
    /// this writer none.
    starved: bool,
}

/// Every partition of `topic`: its committed offset, its end, whether it is
/// in `assignment` and whether any member of `group` holds it. `None` when
/// the broker did not answer.
fn topic_state(
    c: &BaseConsumer,
    topic: &str,
    group: &str,
    assignment: &TopicPartitionList,
) -> Option<TopicState> {
    let timeout = Duration::from_millis(1500);
    let metadata = c.fetch_metadata(Some(topic), timeout).ok()?;
    let ids: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)?
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut all = TopicPartitionList::new();
    for &p in &ids {
        all.add_partition(topic, p);
    }
    let committed = c.committed_offsets(all, timeout).ok()?;
    let group = describe_group(c, topic, group, timeout);
    let held = group.as_ref().and_then(|g| g.held.as_ref());
    // A member left with nothing while there are partitions enough for
    // everyone: no assignor does that; the broker got the rebalance wrong.
    let starved = group.as_ref().is_some_and(|g| g.members <= ids.len()) && assignment.count() == 0;
    let parts: Option<Vec<PartitionState>> = ids
        .iter()
        .map(|&p| {
            let (low, high) = c
                .fetch_watermarks(topic, p, Duration::from_millis(500))
                .ok()?;
            Some(PartitionState {
                partition: p,
                committed: offset_of(&committed, topic, p).unwrap_or(low),
                end: high,
                mine: assignment.find_partition(topic, p).is_some(),
                owned: held.map(|h| h.contains(&p)),
            })
        })
        .collect();
    Some(TopicState {
        parts: parts?,
        starved,
    })
}

/// What the broker says of `group`, when it is stable (during a rebalance
/// every partition is briefly without an owner, so nothing is concluded).
struct GroupView {
    members: usize,
    /// The partitions of the topic its members hold; `None` when the broker
    /// does not say (tansu 0.6.0 describes members without assignments).
    held: Option<BTreeSet<i32>>,
}

fn describe_group(
    c: &BaseConsumer,
    topic: &str,
    group: &str,
    timeout: Duration,
) -> Option<GroupView> {
    let list = c.fetch_group_list(Some(group), timeout).ok()?;
    let info = list.groups().iter().find(|g| g.name() == group)?;
    if info.state() != "Stable" {
        return None;
    }
    let held = info
        .members()
        .iter()
        .try_fold(BTreeSet::new(), |mut held, m| {
            held.extend(assigned_partitions(m.assignment()?, topic)?);
            Some(held)
        });
    Some(GroupView {
        members: info.members().len(),
        held,
    })
}

/// The partitions of `topic` in a member's assignment as the consumer
/// protocol encodes it: a version (i16), then topics (i32 count), each a
/// name (i16 length, bytes) and partitions (i32 count, i32 each); user data
/// follows and is not needed.
fn assigned_partitions(mut b: &[u8], topic: &str) -> Option<Vec<i32>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = b.split_at_checked(n)?;
        *b = rest;
        Some(head)
    }
    let i16_of = |b: &mut &[u8]| take(b, 2)?.try_into().ok().map(i16::from_be_bytes);
    let i32_of = |b: &mut &[u8]| take(b, 4)?.try_into().ok().map(i32::from_be_bytes);
    i16_of(&mut b)?;
    let mut out = Vec::new();
    for _ in 0..i32_of(&mut b)? {
        let len = usize::try_from(i16_of(&mut b)?).ok()?;
        let name = take(&mut b, len)?;
        for _ in 0..i32_of(&mut b)? {
            let p = i32_of(&mut b)?;
            if name == topic.as_bytes() {
                out.push(p);
            }
        }
    }
    Some(out)
}

/// A partition's offset in `list`, if it has a real one.
fn offset_of(list: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    list.find_partition(topic, partition)
        .and_then(|p| p.offset().to_raw())
        .filter(|o| *o >= 0)
}

/// Entries behind the end of the topic on this consumer's partitions: from
/// its position, or the committed offset before it has one.
fn lag(consumer: &StreamConsumer, topic: &str, parts: &[PartitionState]) -> Option<u64> {
    let position = consumer.position().ok()?;
    let lag = parts
        .iter()
        .filter(|p| p.mine)
        .map(|p| {
            let pos = offset_of(&position, topic, p.partition).unwrap_or(p.committed);
            (p.end - pos).max(0) as u64
        })
        .sum();
    Some(lag)
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

    async fn abort(&mut self, token: KafkaToken, error: String) {
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

#[cfg(test)]
mod tests {
    use super::assigned_partitions;

    #[test]
    fn a_members_assignment_is_read_as_the_consumer_protocol_encodes_it() {
        let mut b = vec![0, 1]; // version
        b.extend(2i32.to_be_bytes()); // two topics
        for (name, parts) in [("other", &[7i32][..]), ("logs", &[0, 3][..])] {
            b.extend((name.len() as i16).to_be_bytes());
            b.extend(name.as_bytes());
            b.extend((parts.len() as i32).to_be_bytes());
            for p in parts {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend(0i32.to_be_bytes()); // no user data
        assert_eq!(assigned_partitions(&b, "logs"), Some(vec![0, 3]));
        assert_eq!(assigned_partitions(&b, "none"), Some(vec![]));
        // Cut short anywhere: unknown, never a guess.
        assert_eq!(assigned_partitions(&b[..b.len() - 10], "logs"), None);
    }
}
