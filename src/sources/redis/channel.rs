//! Pub/sub channels: the seed system's publishers, unchanged. Pub/sub keeps
//! nothing, so delivery is at most once: what is published while no node
//! listens, or while the queue cannot take it, is lost (and counted). When
//! several nodes share the store, one of them at a time (the holder of a
//! Redis lease) subscribes, so each message is stored once.

use std::time::Duration;

use ::redis::{Client, Msg};
use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use super::{default_service, parse};
use crate::net::Cluster;
use crate::net::redis::Link;
use crate::net::redis::lease::Lease;
use crate::net::redis::subscriber::{self, Heard, Topics};
use crate::sources::in_flight::InFlight;
use crate::sources::report::SourceReport;
use crate::sources::{Source, SourceContext, SourceError};

/// Messages waiting between the subscription and the intake; beyond them a
/// stalled intake costs messages (counted), not memory.
const QUEUE_LEN: usize = 20_000;
/// Most messages handed to the intake as one submission.
const BATCH: usize = 1_000;
/// Submissions awaiting durability at once. (64 measured no faster with
/// Kafka, where the channel stays at two thirds of PushLogs: not this.)
const MAX_IN_FLIGHT: usize = 8;
/// How long the subscribing node's lease lasts without renewal: how long
/// the channels go unheard when that node dies.
const LEASE_TTL: Duration = Duration::from_secs(6);

pub struct ChannelSource {
    /// Where the publishers publish.
    client: Client,
    /// Host and port, for messages.
    addr: String,
    topics: Topics,
    /// The service of messages that name none (else the channel's name).
    service: Option<String>,
    /// Set when nodes share the store: only its holder subscribes.
    lease: Option<Lease>,
}

/// Why listening ended.
enum End {
    Stop,
    LostLease,
}

impl ChannelSource {
    pub fn new(
        args: &super::RedisSourceArgs,
        client: Client,
        cluster: &Cluster,
    ) -> Result<Self, SourceError> {
        let lease = match cluster.shared {
            true => {
                let lease_client = match &cluster.redis_url {
                    Some(url) => super::open(url)?,
                    None => client.clone(),
                };
                let link = Link::new(lease_client).map_err(SourceError::Config)?;
                let key = format!("{}lease:redis-channels", cluster.redis_prefix);
                Some(Lease::new(link, key, LEASE_TTL))
            }
            false => None,
        };
        Ok(ChannelSource {
            addr: client.get_connection_info().addr().to_string(),
            client,
            topics: Topics::of(&args.ingest_redis_channels),
            service: args.ingest_redis_service.clone(),
            lease,
        })
    }
}

#[async_trait]
impl Source for ChannelSource {
    fn name(&self) -> &'static str {
        "redis_channel"
    }

    async fn run(mut self: Box<Self>, cx: SourceContext) {
        let report = SourceReport::new(self.name(), &cx.registry, cx.health.clone());
        let (mut held, lease_task) = match self.lease.take() {
            Some(lease) => {
                let (held, run) = lease.hold(cx.stop.clone());
                (Some(held), Some(tokio::spawn(run)))
            }
            None => (None, None),
        };
        loop {
            if let Some(h) = &mut held
                && !*h.borrow()
            {
                report.standing_by("another node holds the channels' lease");
                tokio::select! {
                    _ = cx.stop.cancelled() => break,
                    _ = h.wait_for(|held| *held) => {}
                }
            }
            let heard = subscriber::subscribe(
                &tokio::runtime::Handle::current(),
                self.client.clone(),
                self.addr.clone(),
                self.topics.clone(),
                QUEUE_LEN,
            );
            if let End::Stop = self.listen(&cx, &report, heard, held.as_mut()).await {
                break;
            }
        }
        if let Some(task) = lease_task {
            // The lease is given up as soon as the stop is seen.
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
    }
}

impl ChannelSource {
    /// Hands what the subscription hears to the intake until stopped or the
    /// lease is lost; settles what it submitted before returning.
    async fn listen(
        &self,
        cx: &SourceContext,
        report: &SourceReport,
        mut heard: mpsc::Receiver<Heard>,
        mut held: Option<&mut watch::Receiver<bool>>,
    ) -> End {
        let mut in_flight = InFlight::new(MAX_IN_FLIGHT);
        let end = loop {
            let lost = async {
                match held.as_mut() {
                    Some(h) => {
                        let _ = h.wait_for(|held| !*held).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cx.stop.cancelled() => break End::Stop,
                _ = lost => break End::LostLease,
                Some((n, r)) = in_flight.next(), if !in_flight.is_empty() => settled(report, n, r),
                h = heard.recv(), if !in_flight.is_full() => {
                    let Some(h) = h else { break End::LostLease };
                    let (batch, after) = gather(h, &mut heard);
                    self.submit(cx, report, batch, &mut in_flight).await;
                    if let Some(event) = after {
                        state(report, event);
                    }
                }
            }
        };
        while let Some((n, r)) = in_flight.next().await {
            settled(report, n, r);
        }
        end
    }

    /// Parses `batch` and hands the entries to the intake in one submission.
    async fn submit(
        &self,
        cx: &SourceContext,
        report: &SourceReport,
        batch: Vec<Msg>,
        in_flight: &mut InFlight<u64>,
    ) {
        if batch.is_empty() {
            return;
        }
        report.received(batch.len() as u64);
        let limit = cx.intake.limits().max_request_bytes;
        let mut entries = Vec::with_capacity(batch.len());
        let mut origins = Vec::with_capacity(batch.len());
        for msg in &batch {
            let channel = msg.get_channel_name();
            let service = default_service(&self.service, channel);
            match parse::message(msg.get_payload_bytes(), service, limit) {
                Ok(e) => {
                    entries.push(e);
                    origins.push(channel);
                }
                Err(r) => report.rejected(r.reason(), &r, channel),
            }
        }
        let prepared = cx.intake.prepare(entries, false);
        for (i, v) in &prepared.invalid {
            let why = parse::Reject::Invalid(v.clone());
            report.rejected(why.reason(), &why, origins[*i]);
        }
        let n = prepared.entries.len() as u64;
        if n == 0 {
            return;
        }
        match cx.intake.submit(prepared.entries).await {
            Ok(durable) => in_flight.push(n, durable),
            Err(e) => {
                tracing::warn!(error = %e, "the intake refused entries from Redis channels");
                report.lost("intake_refused", n);
            }
        }
    }
}

/// A submission became durable, or failed: pub/sub cannot deliver it again.
fn settled(report: &SourceReport, n: u64, r: Result<(), crate::queue::QueueError>) {
    match r {
        Ok(()) => report.accepted(n),
        Err(e) => {
            tracing::warn!(error = %e, entries = n, "entries from Redis channels were not stored");
            report.lost("not_stored", n);
        }
    }
}

/// `first` and the messages queued behind it, up to a batch; the first
/// event that is not a message, if one ended the batch.
fn gather(first: Heard, heard: &mut mpsc::Receiver<Heard>) -> (Vec<Msg>, Option<Heard>) {
    let mut batch = Vec::new();
    let mut next = Some(first);
    while let Some(h) = next.take() {
        match h {
            Heard::Message(m) => batch.push(m),
            other => return (batch, Some(other)),
        }
        if batch.len() >= BATCH {
            break;
        }
        next = heard.try_recv().ok();
    }
    (batch, None)
}

/// A change of the subscription's state, for `/metrics` and `/readyz`.
fn state(report: &SourceReport, event: Heard) {
    match event {
        Heard::Up { .. } => report.connected(),
        Heard::Down(why) => report.disconnected(&why),
        Heard::Dropped(n) => report.lost("backlog", n),
        Heard::Message(_) => {}
    }
}
