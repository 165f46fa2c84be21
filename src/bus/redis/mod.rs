//! The distributed bus and catalogue, in Redis.
//!
//! Committed batches travel as prost-encoded `taillight.v1.Records` messages
//! on one pub/sub channel; every node holds a single subscription (see
//! `feed`) and fans it out itself. The service and tag sets live in plain
//! Redis sets beside a completeness marker.
//!
//! Ingestion must go on without Redis, so every call is bounded in time (see
//! `link`), and while Redis is away calls fail at once with
//! [`BusError::Unavailable`] rather than each waiting for a timeout.

mod feed;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ::redis::{Client, FromRedisValue, Pipeline};
use async_trait::async_trait;
use futures::stream::BoxStream;
use prost::Message;

use super::contract::{Bus, BusError, BusEvent, Catalog, RecordBatch};
use crate::net::redis::Link;
use crate::proto::{EncodedBatch, LogRecord, Records};

/// Largest message published (unless one record is larger), so a huge batch
/// neither fills a subscriber's output buffer in Redis at once (it drops the
/// subscriber at 32 MiB by default) nor holds up the connection for long.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The Redis bus's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (`redis://HOST[:PORT]`) for the live feed between nodes and
    /// the service/tag catalogue. Without it: in-process (one node).
    #[arg(long, env = "TAILLIGHT_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Redis pub/sub channel of committed records.
    #[arg(
        long,
        env = "TAILLIGHT_REDIS_CHANNEL",
        default_value = "taillight.logs"
    )]
    pub redis_channel: String,
    /// Prefix of taillight's Redis keys.
    #[arg(long, env = "TAILLIGHT_REDIS_PREFIX", default_value = "taillight:")]
    pub redis_prefix: String,
}

/// The Redis bus and catalogue of one node.
pub struct RedisBus {
    /// Shared by publishing and the catalogue; subscriptions open their own.
    link: Arc<Link>,
    /// The pub/sub channel carrying committed batches.
    channel: String,
    /// Put before every key, so several deployments can share one Redis.
    key_prefix: String,
    /// Set when a publish failed: subscribers that stayed connected missed
    /// those records without noticing. The next publish warns them first, and
    /// a background task does as soon as Redis answers, in case no publish
    /// comes.
    owe_gap: Arc<AtomicBool>,
}

/// Connects to Redis at `url` and checks that it answers, within a few
/// seconds. Later outages do not need a new `connect`: every call reconnects
/// by itself.
pub async fn connect(url: &str, channel: &str, key_prefix: &str) -> Result<RedisBus, BusError> {
    let client =
        Client::open(url).map_err(|e| BusError::Unavailable(format!("invalid Redis URL: {e}")))?;
    let link = Link::new(client).map_err(BusError::Unavailable)?;
    // A connection alone does not prove the server answers (or accepts our
    // credentials); one PING does.
    link.run::<(String,)>(::redis::pipe().cmd("PING"))
        .await
        .map_err(|why| {
            BusError::Unavailable(format!("cannot reach Redis at {}: {why}", link.addr))
        })?;
    Ok(RedisBus {
        link,
        channel: channel.to_string(),
        key_prefix: key_prefix.to_string(),
        owe_gap: Arc::new(AtomicBool::new(false)),
    })
}

impl RedisBus {
    /// Runs `pipe` for `what` (named in the error).
    async fn query<T: FromRedisValue>(&self, what: &str, pipe: &Pipeline) -> Result<T, BusError> {
        self.link.run(pipe).await.map_err(|why| {
            BusError::Unavailable(format!("Redis {what} failed ({}): {why}", self.link.addr))
        })
    }

    fn services_key(&self) -> String {
        format!("{}services", self.key_prefix)
    }

    fn tags_key(&self, service: &str) -> String {
        format!("{}tags:{service}", self.key_prefix)
    }

    fn complete_key(&self) -> String {
        format!("{}catalog:complete", self.key_prefix)
    }

    /// `members` of `key`, sorted; `None` unless the catalogue is complete.
    async fn complete_set(&self, what: &str, key: String) -> Result<Option<Vec<String>>, BusError> {
        // One transaction, so a concurrent `fill` is seen entirely or not at all.
        let (complete, members): (bool, Vec<String>) = self
            .query(
                what,
                ::redis::pipe()
                    .atomic()
                    .exists(self.complete_key())
                    .smembers(key),
            )
            .await?;
        if !complete {
            return Ok(None);
        }
        let mut members = members;
        members.sort_unstable();
        Ok(Some(members))
    }
}

/// Publishes the gap notice once Redis answers again, unless a publish has
/// carried it first.
async fn repay_gap(link: Arc<Link>, channel: String, owe_gap: Arc<AtomicBool>) {
    while owe_gap.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        if !owe_gap.swap(false, Ordering::Relaxed) {
            return;
        }
        let mut pipe = ::redis::pipe();
        pipe.publish(&channel, &[] as &[u8]).ignore();
        if link.run::<()>(&pipe).await.is_err() {
            owe_gap.store(true, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, records: RecordBatch) -> Result<(), BusError> {
        let owe_gap = self.owe_gap.swap(false, Ordering::Relaxed);
        let mut pipe = ::redis::pipe();
        if owe_gap {
            // An empty `Records` message: subscribers turn it into a `Gap`.
            pipe.publish(&self.channel, &[] as &[u8]).ignore();
        }
        for message in encode_messages(&records) {
            pipe.publish(&self.channel, message).ignore();
        }
        let result = self.query::<()>("publish", &pipe).await;
        if result.is_err() && !self.owe_gap.swap(true, Ordering::Relaxed) {
            tokio::spawn(repay_gap(
                self.link.clone(),
                self.channel.clone(),
                self.owe_gap.clone(),
            ));
        }
        result
    }

    fn subscribe(&self) -> BoxStream<'static, BusEvent> {
        feed::start(
            // `subscribe` is not async and may be called outside the runtime.
            &self.link.runtime,
            self.link.client.clone(),
            self.link.addr.clone(),
            self.channel.clone(),
        )
    }
}

#[async_trait]
impl Catalog for RedisBus {
    async fn remember(&self, records: &[LogRecord]) -> Result<(), BusError> {
        let mut sets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for r in records {
            sets.entry(r.service.as_str())
                .or_default()
                .extend(r.tags.iter().map(String::as_str));
        }
        if sets.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        pipe.sadd(self.services_key(), sets.keys().collect::<Vec<_>>())
            .ignore();
        for (service, tags) in &sets {
            if !tags.is_empty() {
                pipe.sadd(self.tags_key(service), tags.iter().collect::<Vec<_>>())
                    .ignore();
            }
        }
        self.query("remember", &pipe).await
    }

    async fn fill(&self, sets: Vec<(String, Vec<String>)>) -> Result<(), BusError> {
        // Additive, in one transaction: a reader sees the marker only with
        // every set complete, and a `remember` racing with the caller's read
        // of the store is never undone. (Retention keeps the store's service
        // and tag sets, so nothing ever has to be removed here.)
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        if !sets.is_empty() {
            let services: Vec<&str> = sets.iter().map(|(s, _)| s.as_str()).collect();
            pipe.sadd(self.services_key(), services).ignore();
        }
        for (service, tags) in &sets {
            if !tags.is_empty() {
                pipe.sadd(self.tags_key(service), tags).ignore();
            }
        }
        pipe.set(self.complete_key(), 1).ignore();
        self.query("fill", &pipe).await
    }

    async fn services(&self) -> Result<Option<Vec<String>>, BusError> {
        self.complete_set("services", self.services_key()).await
    }

    async fn tags(&self, service: &str) -> Result<Option<Vec<String>>, BusError> {
        self.complete_set("tags", self.tags_key(service)).await
    }
}

/// Encodes `records` as `Records` messages of at most [`MAX_MESSAGE_BYTES`]
/// each (a single larger record travels alone), in order: the split the tail
/// streams use too.
fn encode_messages(records: &RecordBatch) -> Vec<Vec<u8>> {
    Arc::new(EncodedBatch::new(records.clone()))
        .split(MAX_MESSAGE_BYTES)
        .into_iter()
        .map(|part| Records::shared(part).encode_to_vec())
        .collect()
}
