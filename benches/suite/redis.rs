//! Entries/s taken from a Redis channel and from a Redis stream, end to
//! end (the first message published to the last entry stored), on a node
//! taking entries from both as a team moving from a Redis logger daemon runs
//! it. Pub/sub keeps nothing, so the channel run publishes no faster than
//! the node stores (a window of messages not yet stored), and counts what
//! was lost all the same; the stream run adds as fast as Redis takes it.

use std::time::{Duration, Instant};

use ::redis::aio::MultiplexedConnection;

use crate::common::{redis_url, unique_name};
use crate::ingest;
use crate::node::{Mode, Node};

/// Messages per pipelined round trip.
const CHUNK: usize = 500;
/// Most channel messages published and not yet stored: below what the
/// node holds before the source must drop (its 20k subscription queue, its
/// submissions in flight and what the queue takes before a submission
/// waits), so a slow node is waited for rather than fed more than pub/sub
/// can hold. 10k held the Kafka mode back (more than that is between
/// publish and commit at full speed); 35k lost messages in the embedded
/// mode; 25k lost none.
const WINDOW: u64 = 25_000;

/// What one run measured.
pub struct RedisRun {
    /// Entries stored per second from a channel.
    pub channel_e2e: f64,
    /// Channel messages lost (should be none).
    pub channel_lost: f64,
    /// Entries stored per second from a stream.
    pub stream_e2e: f64,
}

pub async fn run(mode: Mode, bin: &str, marker: &str, n: u64) -> RedisRun {
    let (channel, stream) = (unique_name("bench.ch"), unique_name("bench.st"));
    let env = [
        ("TAILLIGHT_INGEST_REDIS_URL", redis_url()),
        ("TAILLIGHT_INGEST_REDIS_CHANNELS", channel.clone()),
        ("TAILLIGHT_INGEST_REDIS_STREAMS", stream.clone()),
        ("TAILLIGHT_INGEST_REDIS_CONSUMER", "bench".to_string()),
        ("TAILLIGHT_INGEST_REDIS_GROUP", format!("{stream}.group")),
    ];
    let node = Node::start_with(mode, bin, &env).await;
    let mut conn = connect().await;
    wait_subscribed(&mut conn, &channel).await;

    let channel_marker = format!("{marker}-ch");
    let payloads = lines(&channel_marker, n);
    // Pub/sub may drop messages (the node counts them): the run ends when
    // every message is stored or counted lost, and the loss is a figure.
    let (channel_e2e, lost) =
        timed_lossy(&node, n, publish(&node, &mut conn, &channel, &payloads)).await;
    ingest::check_stored_lossy(&node, &channel_marker, n - lost).await;
    let channel_lost = lost as f64;

    let stream_marker = format!("{marker}-st");
    let payloads = lines(&stream_marker, n);
    let stream_e2e = timed(&node, n, add(&mut conn, &stream, &payloads)).await;
    ingest::check_stored(&node, &stream_marker, n).await;
    let _: Result<i64, _> = ::redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await;
    node.stop();
    RedisRun {
        channel_e2e,
        channel_lost,
        stream_e2e,
    }
}

/// The bench workload's entries as the gateway's JSON, one a message.
fn lines(marker: &str, n: u64) -> Vec<String> {
    ingest::ndjson(&ingest::entries(marker, n))
        .lines()
        .map(String::from)
        .collect()
}

/// Runs `send`, then waits until `n` more entries are stored; entries/s
/// from the start of sending.
async fn timed(node: &Node, n: u64, send: impl Future<Output = ()>) -> f64 {
    let before = node.metric("taillight_entries_stored_total").await;
    let t0 = Instant::now();
    send.await;
    let done = node.wait_stored(before + n, Duration::from_secs(600)).await;
    n as f64 / done.duration_since(t0).as_secs_f64()
}

/// Channel messages the node counted lost.
async fn channel_lost(node: &Node) -> u64 {
    let text = node.metrics_text().await;
    text.lines()
        .filter(|l| l.starts_with("taillight_source_lost_total{source=\"redis_channel\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b) as u64
}

/// [`timed`] for a channel: waits until `n` more entries are stored or
/// counted lost; entries/s stored, and how many were lost.
async fn timed_lossy(node: &Node, n: u64, send: impl Future<Output = ()>) -> (f64, u64) {
    let before = node.metric("taillight_entries_stored_total").await;
    let lost_before = channel_lost(node).await;
    let t0 = Instant::now();
    send.await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stored = node.metric("taillight_entries_stored_total").await - before;
        let lost = channel_lost(node).await - lost_before;
        if stored + lost >= n {
            return (stored as f64 / t0.elapsed().as_secs_f64(), lost);
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {n} channel messages stored and {lost} lost after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn connect() -> MultiplexedConnection {
    ::redis::Client::open(redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

async fn wait_subscribed(conn: &mut MultiplexedConnection, channel: &str) {
    for _ in 0..400 {
        let (_, n): (String, i64) = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(conn)
            .await
            .expect("PUBSUB");
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the node never subscribed to {channel}");
}

/// PUBLISHes `lines`, keeping at most [`WINDOW`] of them unstored.
async fn publish(node: &Node, conn: &mut MultiplexedConnection, channel: &str, lines: &[String]) {
    let base = node.metric("taillight_entries_stored_total").await;
    let mut sent = 0u64;
    for chunk in lines.chunks(CHUNK) {
        while sent >= WINDOW
            && node.metric("taillight_entries_stored_total").await - base + WINDOW <= sent
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut pipe = ::redis::pipe();
        for l in chunk {
            pipe.publish(channel, l).ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("PUBLISH");
        sent += chunk.len() as u64;
    }
}

/// XADDs `lines`, one `message` field each, as fast as Redis takes them.
async fn add(conn: &mut MultiplexedConnection, stream: &str, lines: &[String]) {
    for chunk in lines.chunks(CHUNK) {
        let mut pipe = ::redis::pipe();
        for l in chunk {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("line")
                .arg(l)
                .ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("XADD");
    }
}
