//! Redis streams: read in a consumer group, so several nodes share the
//! entries; an entry is acknowledged (XACK) only once durable, and carries
//! its stream id as its dedup key, so one handed over again after a crash
//! is stored once. Entries a dead reader left unacknowledged are claimed
//! (XAUTOCLAIM) by the living after `--ingest-redis-claim-idle`; a restarted
//! node first takes up its own.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use ::redis::{AsyncCommands, AsyncConnectionConfig, Client, RedisResult, Value};
use async_trait::async_trait;
use tokio::time::Instant;

use super::{default_service, parse};
use crate::model::entry::MAX_DEDUP_KEY;
use crate::net::backoff::Backoff;
use crate::net::redis::link::CONNECT_TIMEOUT;
use crate::sources::in_flight::InFlight;
use crate::sources::report::SourceReport;
use crate::sources::{Source, SourceContext, SourceError};

/// Most entries read at once.
const COUNT: usize = 1_000;
/// How long a read waits for new entries when nothing is in flight.
const BLOCK_IDLE: Duration = Duration::from_secs(1);
/// How long a read waits while submissions are in flight, so they are
/// acknowledged promptly once durable.
const BLOCK_BUSY: Duration = Duration::from_millis(20);
/// Submissions awaiting durability at once (see the channel source's).
const MAX_IN_FLIGHT: usize = 8;
/// A connection that lasted this long was healthy: the backoff starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

pub struct StreamSource {
    client: Client,
    /// Host and port, for messages.
    addr: String,
    streams: Vec<String>,
    group: String,
    /// This node's name in the group.
    consumer: String,
    /// Entries unacknowledged this long are claimed from their reader.
    claim_idle: Duration,
    /// The service of entries that name none (else the stream's name).
    service: Option<String>,
}

/// Stream ids of one stream whose entries went in one submission.
type Ids = (String, Vec<String>);

impl StreamSource {
    pub fn new(args: &super::RedisSourceArgs, client: Client) -> Result<Self, SourceError> {
        let consumer = match &args.ingest_redis_consumer {
            Some(c) => c.clone(),
            None => crate::net::host_name(),
        };
        Ok(StreamSource {
            addr: client.get_connection_info().addr().to_string(),
            client,
            streams: args.ingest_redis_streams.clone(),
            group: args.ingest_redis_group.clone(),
            consumer,
            claim_idle: args.ingest_redis_claim_idle.max(Duration::from_millis(100)),
            service: args.ingest_redis_service.clone(),
        })
    }

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(BLOCK_IDLE + Duration::from_secs(5)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Creates the group on every stream that lacks it, from the stream's
    /// start: entries published before taillight first read are taken too.
    async fn ensure_groups(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        for stream in &self.streams {
            let created: RedisResult<()> =
                conn.xgroup_create_mkstream(stream, &self.group, "0").await;
            match created {
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                other => other?,
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Source for StreamSource {
    fn name(&self) -> &'static str {
        "redis_stream"
    }

    async fn run(self: Box<Self>, cx: SourceContext) {
        let report = SourceReport::new(self.name(), &cx.registry, cx.health.clone());
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while !cx.stop.is_cancelled() {
            let started = Instant::now();
            let mut reader = Reader {
                source: &self,
                cx: &cx,
                report: &report,
                in_flight: InFlight::new(MAX_IN_FLIGHT),
                claim_from: HashMap::new(),
            };
            let Err(why) = reader.run().await else {
                break;
            };
            report.disconnected(&format!("Redis at {}: {why}", self.addr));
            if started.elapsed() >= HEALTHY_AFTER {
                backoff.reset();
            }
            tokio::select! {
                _ = cx.stop.cancelled() => break,
                _ = tokio::time::sleep(backoff.step()) => {}
            }
        }
    }
}

/// One connection's worth of reading.
struct Reader<'a> {
    source: &'a StreamSource,
    cx: &'a SourceContext,
    report: &'a SourceReport,
    /// Submissions not yet durable, with the ids to acknowledge after.
    in_flight: InFlight<Ids>,
    /// Per stream, where the next claim of stale entries starts.
    claim_from: HashMap<String, String>,
}

impl Reader<'_> {
    /// Reads until stopped (`Ok`) or the connection fails.
    async fn run(&mut self) -> RedisResult<()> {
        let mut conn = self.source.connect().await?;
        self.source.ensure_groups(&mut conn).await?;
        self.report.connected();
        self.own_pending(&mut conn).await?;
        let mut claim_at = Instant::now() + self.source.claim_idle / 2;
        while !self.cx.stop.is_cancelled() {
            self.ack_settled(&mut conn, false).await?;
            if self.in_flight.is_full() {
                self.ack_settled(&mut conn, true).await?;
                continue;
            }
            if Instant::now() >= claim_at {
                self.claim_stale(&mut conn).await?;
                claim_at = Instant::now() + self.source.claim_idle / 2;
                continue;
            }
            let block = match self.in_flight.is_empty() {
                true => BLOCK_IDLE,
                false => BLOCK_BUSY,
            };
            self.read_new(&mut conn, block).await?;
        }
        // Stopped: what became durable is acknowledged; the rest stays
        // pending and is taken up again at the next start.
        while !self.in_flight.is_empty() {
            self.ack_settled(&mut conn, true).await?;
        }
        Ok(())
    }

    /// The entries this consumer read before and never acknowledged (it was
    /// killed, say): read again from id 0, page by page.
    async fn own_pending(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        for stream in self.source.streams.clone() {
            let mut from = "0".to_string();
            loop {
                let opts = StreamReadOptions::default()
                    .group(&self.source.group, &self.source.consumer)
                    .count(COUNT);
                let reply: Option<StreamReadReply> =
                    conn.xread_options(&[&stream], &[&from], &opts).await?;
                let entries: Vec<StreamId> = reply
                    .into_iter()
                    .flat_map(|r| r.keys)
                    .flat_map(|k| k.ids)
                    .collect();
                let Some(last) = entries.last().map(|e| e.id.clone()) else {
                    break;
                };
                from = last;
                self.take(conn, &stream, entries).await?;
                self.ack_settled(conn, self.in_flight.is_full()).await?;
            }
        }
        Ok(())
    }

    /// New entries of every stream, waiting up to `block` for some.
    async fn read_new(
        &mut self,
        conn: &mut MultiplexedConnection,
        block: Duration,
    ) -> RedisResult<()> {
        let opts = StreamReadOptions::default()
            .group(&self.source.group, &self.source.consumer)
            .count(COUNT)
            .block(block.as_millis() as usize);
        let ids = vec![">"; self.source.streams.len()];
        let reply: Option<StreamReadReply> = conn
            .xread_options(&self.source.streams, &ids, &opts)
            .await?;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            self.take(conn, &key.key, key.ids).await?;
        }
        Ok(())
    }

    /// Claims entries another reader (dead, or this one after a failure)
    /// has left unacknowledged for the claim period, and takes them.
    async fn claim_stale(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let idle = self.source.claim_idle.as_millis() as u64;
        for stream in self.source.streams.clone() {
            let from = self
                .claim_from
                .get(&stream)
                .cloned()
                .unwrap_or_else(|| "0-0".into());
            let reply: StreamAutoClaimReply = conn
                .xautoclaim_options(
                    &stream,
                    &self.source.group,
                    &self.source.consumer,
                    idle,
                    &from,
                    StreamAutoClaimOptions::default().count(COUNT),
                )
                .await?;
            if !reply.claimed.is_empty() {
                tracing::info!(
                    stream,
                    entries = reply.claimed.len(),
                    "claimed entries another reader left"
                );
            }
            self.claim_from.insert(stream.clone(), reply.next_stream_id);
            self.take(conn, &stream, reply.claimed).await?;
        }
        Ok(())
    }

    /// Hands `entries` of `stream` to the intake; those that can never be
    /// stored are acknowledged at once, and counted.
    async fn take(
        &mut self,
        conn: &mut MultiplexedConnection,
        stream: &str,
        entries: Vec<StreamId>,
    ) -> RedisResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.report.received(entries.len() as u64);
        let service = default_service(&self.source.service, stream);
        let limit = self.cx.intake.limits().max_request_bytes;
        let mut parsed = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        let mut refused = Vec::new();
        for e in &entries {
            match parse::fields(&fields(e), service, limit) {
                Ok(entry) => {
                    parsed.push(entry);
                    ids.push(e.id.clone());
                }
                Err(r) => {
                    self.report.rejected(r.reason(), &r, stream);
                    refused.push(e.id.clone());
                }
            }
        }
        let mut prepared = self.cx.intake.prepare(parsed, false);
        for (i, v) in prepared.invalid.iter().rev() {
            let why = parse::Reject::Invalid(v.clone());
            self.report.rejected(why.reason(), &why, stream);
            refused.push(ids.remove(*i));
        }
        for (q, id) in prepared.entries.iter_mut().zip(&ids) {
            q.dedup_key = Some(dedup_key(stream, id));
        }
        if !refused.is_empty() {
            let _: i64 = conn.xack(stream, &self.source.group, &refused).await?;
        }
        if ids.is_empty() {
            return Ok(());
        }
        match self.cx.intake.submit(prepared.entries).await {
            Ok(durable) => self.in_flight.push((stream.to_string(), ids), durable),
            // Left unacknowledged: claimed and tried again after the claim
            // period, or at the next start.
            Err(e) => {
                tracing::warn!(stream, error = %e, "the intake refused stream entries; they stay pending")
            }
        }
        Ok(())
    }

    /// Acknowledges the submissions that became durable (waiting for the
    /// oldest when `wait`); failed ones stay pending, to be claimed again.
    async fn ack_settled(
        &mut self,
        conn: &mut MultiplexedConnection,
        wait: bool,
    ) -> RedisResult<()> {
        let mut next = match wait {
            true => self.in_flight.next().await,
            false => self.in_flight.ready(),
        };
        while let Some(((stream, ids), r)) = next {
            match r {
                Ok(()) => {
                    let _: i64 = conn.xack(&stream, &self.source.group, &ids).await?;
                    self.report.accepted(ids.len() as u64);
                }
                Err(e) => {
                    tracing::warn!(stream, entries = ids.len(), error = %e, "stream entries not stored; they stay pending")
                }
            }
            next = self.in_flight.ready();
        }
        Ok(())
    }
}

/// An entry's fields as name and bytes.
fn fields(e: &StreamId) -> Vec<(String, Vec<u8>)> {
    e.map
        .iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::BulkString(b) => b.clone(),
                Value::SimpleString(s) => s.clone().into_bytes(),
                Value::Int(n) => n.to_string().into_bytes(),
                other => format!("{other:?}").into_bytes(),
            };
            (k.clone(), bytes)
        })
        .collect()
}

/// The key that names a stream entry across redeliveries; a stream name too
/// long for the stores' key column is replaced by its hash.
fn dedup_key(stream: &str, id: &str) -> String {
    let key = format!("redis-stream:{stream}:{id}");
    if key.len() <= MAX_DEDUP_KEY {
        return key;
    }
    format!("redis-stream:{:016x}:{id}", fnv1a(stream.as_bytes()))
}

/// FNV-1a, 64 bits: stable across builds, unlike the standard hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fit_the_stores_column() {
        assert_eq!(dedup_key("logs", "1-0"), "redis-stream:logs:1-0");
        let long = "s".repeat(300);
        let k = dedup_key(&long, "1700000000000-5");
        assert!(k.len() <= MAX_DEDUP_KEY, "{k}");
        assert_eq!(k, dedup_key(&long, "1700000000000-5"));
        assert_ne!(k, dedup_key(&"t".repeat(300), "1700000000000-5"));
    }
}
