//! One subscription: a background task holding a Redis pub/sub connection,
//! reconnecting with backoff, and turning what it hears into [`BusEvent`]s.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{PubSubSink, PubSubStream};
use ::redis::{Client, Value};
use futures::future::{BoxFuture, Fuse, FusedFuture};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::link::{Backoff, CONNECT_TIMEOUT};
use crate::bus::BusEvent;
use crate::proto::Records;

/// First pause before reconnecting.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause between attempts while Redis stays away.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A connection that lasted this long was healthy: the next outage starts
/// its backoff from the beginning again instead of where a flapping one was.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// How often the connection is probed. SIGKILL or a reboot closes the socket
/// and is noticed at once; a vanished host or a dropped route is not, and
/// only an unanswered PING tells.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long a PING may go unanswered before the connection is given up.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Events waiting for the consumer. The node's fan-out never blocks, so this
/// only fills if it stalls; records are then dropped for a `Gap`.
const QUEUE_LEN: usize = 128;

/// Starts the task for one subscription to `channel`; it ends when the
/// returned stream is dropped.
///
/// The first event tells how the subscription started: `Gap` once it is in
/// place (whatever was published before was not seen), or `Down` when Redis
/// cannot be reached, followed by `Up` when it can.
pub(super) fn start(
    runtime: &tokio::runtime::Handle,
    client: Client,
    addr: String,
    channel: String,
) -> BoxStream<'static, BusEvent> {
    let (tx, rx) = mpsc::channel(QUEUE_LEN);
    let out = Out { tx, owe_gap: false };
    runtime.spawn(run(client, addr, channel, out));
    ReceiverStream::new(rx).boxed()
}

async fn run(client: Client, addr: String, channel: String, mut out: Out) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    // Whether `Down` was announced and `Up` not yet.
    let mut down = false;
    loop {
        let opened = tokio::select! {
            _ = out.tx.closed() => return,
            opened = open(&client, &channel) => opened,
        };
        let why = match opened {
            Ok((sink, messages)) => {
                let back = if down { BusEvent::Up } else { BusEvent::Gap };
                if !out.announce(back).await {
                    return;
                }
                if down {
                    tracing::info!(%addr, %channel, "Redis subscription restored");
                }
                down = false;
                let since = Instant::now();
                let Some(why) = listen(sink, messages, &mut out).await else {
                    return;
                };
                if since.elapsed() >= HEALTHY_AFTER {
                    backoff.reset();
                }
                why
            }
            Err(why) => why,
        };
        if !down {
            let why = format!("Redis subscription at {addr} down: {why}");
            tracing::warn!("{why}; reconnecting");
            down = true;
            if !out.announce(BusEvent::Down(why)).await {
                return;
            }
        } else {
            tracing::debug!(%addr, %why, "Redis still unreachable");
        }
        tokio::select! {
            _ = out.tx.closed() => return,
            _ = tokio::time::sleep(backoff.step()) => {}
        }
    }
}

/// Connects and subscribes, within [`CONNECT_TIMEOUT`].
async fn open(client: &Client, channel: &str) -> Result<(PubSubSink, PubSubStream), String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, ::redis::RedisError>(pubsub.split())
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(parts)) => Ok(parts),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no subscription within {CONNECT_TIMEOUT:?}")),
    }
}

/// Forwards messages until the connection fails (returning why) or the
/// consumer is gone (`None`).
async fn listen(sink: PubSubSink, mut messages: PubSubStream, out: &mut Out) -> Option<String> {
    let mut probe = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping: Fuse<BoxFuture<'static, Result<(), String>>> = Fuse::terminated();
    // A second handle, so waiting for room does not borrow `out`.
    let room_tx = out.tx.clone();
    loop {
        tokio::select! {
            _ = out.tx.closed() => return None,
            msg = messages.next() => match msg {
                Some(msg) => {
                    if !out.message(msg.get_payload_bytes()) {
                        return None;
                    }
                }
                // The library ends the stream when the socket closes.
                None => return Some("connection closed".to_string()),
            },
            _ = probe.tick(), if ping.is_terminated() => {
                let mut sink = sink.clone();
                ping = async move {
                    match tokio::time::timeout(PING_TIMEOUT, sink.ping::<Value>()).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(format!("PING failed: {e}")),
                        Err(_) => Err(format!("no answer to PING within {PING_TIMEOUT:?}")),
                    }
                }
                .boxed()
                .fuse();
            }
            answered = &mut ping => {
                if let Err(why) = answered {
                    return Some(why);
                }
            }
            // Tell of dropped records as soon as there is room, not only
            // when the next message happens to come.
            room = room_tx.reserve(), if out.owe_gap => match room {
                Ok(permit) => {
                    permit.send(BusEvent::Gap);
                    out.owe_gap = false;
                }
                Err(_) => return None,
            },
        }
    }
}

/// The sending side of the subscription stream.
struct Out {
    /// Bounded, so a stalled consumer costs dropped records, not memory.
    tx: mpsc::Sender<BusEvent>,
    /// Records were dropped for a full queue and the consumer not yet told.
    owe_gap: bool,
}

impl Out {
    /// Hands over one published message without waiting; false once the
    /// consumer is gone.
    fn message(&mut self, payload: &[u8]) -> bool {
        let event = match Records::decode(payload) {
            // Publishers send an empty message after they failed to publish.
            Ok(m) if m.records.is_empty() => BusEvent::Gap,
            Ok(m) => BusEvent::Records(Arc::new(m.records)),
            Err(e) => {
                // It may have held records: let the tails repair from the store.
                tracing::warn!(error = %e, bytes = payload.len(), "undecodable bus message");
                BusEvent::Gap
            }
        };
        if self.owe_gap {
            match self.tx.try_send(BusEvent::Gap) {
                Ok(()) => self.owe_gap = false,
                Err(TrySendError::Full(_)) => return true,
                Err(TrySendError::Closed(_)) => return false,
            }
            if matches!(event, BusEvent::Gap) {
                return true;
            }
        }
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.owe_gap = true;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Hands over a change of state, waiting for room: unlike records these
    /// must not be lost. False once the consumer is gone.
    async fn announce(&mut self, event: BusEvent) -> bool {
        if matches!(event, BusEvent::Up | BusEvent::Gap) {
            // Either implies the gap owed.
            self.owe_gap = false;
        }
        self.tx.send(event).await.is_ok()
    }
}
