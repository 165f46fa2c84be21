//! One pub/sub subscription: a background task holding a Redis pub/sub
//! connection, probing it, reconnecting with backoff (reset after a healthy
//! spell), and handing what it hears to one consumer through a bounded
//! queue. The consumer is never waited for: when it falls behind, messages
//! are dropped and it is told how many as soon as there is room.

use std::time::Duration;

use ::redis::aio::{PubSubSink, PubSubStream};
use ::redis::{Client, Msg, Value};
use futures::future::{BoxFuture, Fuse, FusedFuture};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use super::link::CONNECT_TIMEOUT;
use crate::net::backoff::Backoff;

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

/// What to subscribe to.
#[derive(Debug, Clone, Default)]
pub struct Topics {
    /// Channels, by SUBSCRIBE.
    pub channels: Vec<String>,
    /// Glob patterns, by PSUBSCRIBE.
    pub patterns: Vec<String>,
}

impl Topics {
    /// `names` split into channels and patterns by whether they hold a glob
    /// character (`*`, `?`, `[`).
    pub fn of(names: &[String]) -> Self {
        let (patterns, channels) = names
            .iter()
            .cloned()
            .partition(|n: &String| n.contains(['*', '?', '[']));
        Topics { channels, patterns }
    }
}

/// What a subscription hears, in order.
#[derive(Debug)]
pub enum Heard {
    /// The subscription is in place: for the first time (`again` false), or
    /// again after [`Heard::Down`]. Whatever was published before was not
    /// heard.
    Up {
        again: bool,
    },
    Message(Msg),
    /// This many messages were dropped because the consumer fell behind.
    Dropped(u64),
    /// The connection was lost or cannot be made (why); reconnecting.
    Down(String),
}

/// Starts the task for one subscription to `topics` on `runtime`; it ends
/// when the returned receiver is dropped. At most `queue_len` messages wait
/// for the consumer.
pub fn subscribe(
    runtime: &tokio::runtime::Handle,
    client: Client,
    addr: String,
    topics: Topics,
    queue_len: usize,
) -> mpsc::Receiver<Heard> {
    let (tx, rx) = mpsc::channel(queue_len.max(1));
    runtime.spawn(run(client, addr, topics, Out { tx, dropped: 0 }));
    rx
}

async fn run(client: Client, addr: String, topics: Topics, mut out: Out) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    // Whether `Down` was announced and `Up` not yet.
    let mut down = false;
    loop {
        let opened = tokio::select! {
            _ = out.tx.closed() => return,
            opened = open(&client, &topics) => opened,
        };
        let why = match opened {
            Ok((sink, messages)) => {
                if !out.announce(Heard::Up { again: down }).await {
                    return;
                }
                if down {
                    tracing::info!(%addr, ?topics, "Redis subscription restored");
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
            if !out.announce(Heard::Down(why)).await {
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
async fn open(client: &Client, topics: &Topics) -> Result<(PubSubSink, PubSubStream), String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        if !topics.channels.is_empty() {
            pubsub.subscribe(&topics.channels).await?;
        }
        if !topics.patterns.is_empty() {
            pubsub.psubscribe(&topics.patterns).await?;
        }
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
                    if !out.message(msg) {
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
            // Tell of dropped messages as soon as there is room, not only
            // when the next message happens to come.
            room = room_tx.reserve(), if out.dropped > 0 => match room {
                Ok(permit) => {
                    permit.send(Heard::Dropped(out.dropped));
                    out.dropped = 0;
                }
                Err(_) => return None,
            },
        }
    }
}

/// The sending side of the subscription.
struct Out {
    /// Bounded, so a stalled consumer costs dropped messages, not memory.
    tx: mpsc::Sender<Heard>,
    /// Messages dropped for a full queue and the consumer not yet told.
    dropped: u64,
}

impl Out {
    /// Hands over one message without waiting; false once the consumer is
    /// gone.
    fn message(&mut self, msg: Msg) -> bool {
        if self.dropped > 0 {
            match self.tx.try_send(Heard::Dropped(self.dropped)) {
                Ok(()) => self.dropped = 0,
                Err(TrySendError::Full(_)) => {
                    self.dropped += 1;
                    return true;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(Heard::Message(msg)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Hands over a change of state, waiting for room: unlike messages
    /// these must not be lost. False once the consumer is gone.
    async fn announce(&mut self, event: Heard) -> bool {
        if self.dropped > 0 {
            let dropped = std::mem::take(&mut self.dropped);
            if self.tx.send(Heard::Dropped(dropped)).await.is_err() {
                return false;
            }
        }
        self.tx.send(event).await.is_ok()
    }
}
