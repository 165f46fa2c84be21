//! The Redis bus and catalogue against a real Redis: the shared server at
//! `TAILLIGHT_TEST_REDIS` (default redis://127.0.0.1:6379) with a channel and
//! key prefix of their own per test, and private `redis-server` processes for
//! the outage tests, which kill and freeze them.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::PrivateRedis;
use futures::StreamExt;
use futures::stream::BoxStream;
use prost::Message;
use taillight::bus::redis::{RedisBus, connect};
use taillight::bus::{Bus, BusEvent, Catalog};
use taillight::proto::{LogRecord, Records};

/// Longest wait for an event that should come promptly.
const PROMPT: Duration = Duration::from_secs(5);

fn shared_url() -> String {
    std::env::var("TAILLIGHT_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A name no other test (or test run) uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("taillight-test:{name}:{}:{nanos}:", std::process::id())
}

/// Deletes every key under a test's prefix when the test ends, failed or not.
struct Keys {
    url: String,
    prefix: String,
}

impl Drop for Keys {
    fn drop(&mut self) {
        use ::redis::Commands;
        let Ok(client) = ::redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let keys: Vec<String> = match conn.scan_match(format!("{}*", self.prefix)) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _: Result<(), _> = conn.del(keys);
        }
    }
}

/// A bus on the shared Redis with its own channel and prefix.
async fn shared_bus(name: &str) -> (RedisBus, Keys) {
    let prefix = unique(name);
    let bus = connect(&shared_url(), &format!("{prefix}bus"), &prefix)
        .await
        .expect("connect to the shared Redis (set TAILLIGHT_TEST_REDIS)");
    let keys = Keys {
        url: shared_url(),
        prefix,
    };
    (bus, keys)
}

fn record(id: u64, service: &str, tags: &[&str]) -> LogRecord {
    LogRecord {
        id,
        service: service.into(),
        level: 3,
        message: format!("message {id} from {service}"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        attributes: [("request".to_string(), format!("r-{id}"))].into(),
        time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000 + id as i64,
            nanos: 1_000,
        }),
        received_time: Some(prost_types::Timestamp {
            seconds: 1_700_000_001 + id as i64,
            nanos: 0,
        }),
        ..Default::default()
    }
}

fn batch(ids: std::ops::RangeInclusive<u64>) -> Arc<Vec<LogRecord>> {
    Arc::new(ids.map(|id| record(id, "api", &["t"])).collect())
}

type Events = BoxStream<'static, BusEvent>;

async fn next_event(events: &mut Events, within: Duration) -> BusEvent {
    tokio::time::timeout(within, events.next())
        .await
        .unwrap_or_else(|_| panic!("no bus event within {within:?}"))
        .expect("the bus stream ended")
}

/// Waits for the subscription to be in place, announced by a `Gap`.
async fn subscribed(bus: &RedisBus) -> Events {
    let mut events = bus.subscribe();
    match next_event(&mut events, PROMPT).await {
        BusEvent::Gap => events,
        other => panic!("expected the subscription to start with Gap, got {other:?}"),
    }
}

/// Collects records until `count` have arrived, returning them and how many
/// `Records` events carried them. Gaps are failures unless `gaps_ok`.
async fn receive(events: &mut Events, count: usize, gaps_ok: bool) -> (Vec<LogRecord>, usize) {
    let mut records = Vec::new();
    let mut messages = 0;
    while records.len() < count {
        match next_event(events, PROMPT).await {
            BusEvent::Records(batch) => {
                messages += 1;
                records.extend(batch.iter().cloned());
            }
            BusEvent::Gap if gaps_ok => {}
            other => panic!("expected records, got {other:?}"),
        }
    }
    (records, messages)
}

fn ids(records: &[LogRecord]) -> Vec<u64> {
    records.iter().map(|r| r.id).collect()
}

async fn raw_connection(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn published_batches_arrive_in_order_and_intact() {
    let (bus, keys) = shared_bus("order").await;
    let mut events = subscribed(&bus).await;

    let sent: Vec<Arc<Vec<LogRecord>>> = vec![batch(1..=3), batch(4..=4), batch(5..=9)];
    for b in &sent {
        bus.publish(b.clone()).await.expect("publish");
    }
    let (got, _) = receive(&mut events, 9, false).await;
    let want: Vec<LogRecord> = sent.iter().flat_map(|b| b.iter().cloned()).collect();
    assert_eq!(got, want);

    // Dropping the stream ends its task and with it the subscription.
    drop(events);
    let mut raw = raw_connection(&keys.url).await;
    let channel = format!("{}bus", keys.prefix);
    let start = Instant::now();
    loop {
        let (_, n): (String, u64) = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut raw)
            .await
            .expect("PUBSUB NUMSUB");
        if n == 0 {
            break;
        }
        assert!(start.elapsed() < PROMPT, "subscription outlived its stream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_subscriber_gets_everything() {
    let (bus, keys) = shared_bus("fanout").await;
    // A second node: its own connection, same channel.
    let other = connect(&keys.url, &format!("{}bus", keys.prefix), &keys.prefix)
        .await
        .expect("connect");
    let mut a = subscribed(&bus).await;
    let mut b = subscribed(&other).await;

    bus.publish(batch(1..=5)).await.expect("publish");
    other.publish(batch(6..=10)).await.expect("publish");
    for events in [&mut a, &mut b] {
        let (got, _) = receive(events, 10, false).await;
        assert_eq!(ids(&got), (1..=10).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_large_batch_arrives_completely_in_bounded_messages() {
    let (bus, _keys) = shared_bus("large").await;
    let mut events = subscribed(&bus).await;

    let big = Arc::new(
        (1..=20_000)
            .map(|id| {
                let mut r = record(id, "bulk", &["a", "b"]);
                r.message = format!("{id:>8} {}", "x".repeat(200));
                r
            })
            .collect::<Vec<_>>(),
    );
    let start = Instant::now();
    bus.publish(big.clone()).await.expect("publish");
    let published = start.elapsed();

    let mut got = Vec::new();
    let mut messages = 0;
    while got.len() < big.len() {
        match next_event(&mut events, PROMPT).await {
            BusEvent::Records(batch) => {
                let size = Records::from(batch.to_vec()).encoded_len();
                assert!(size <= 1 << 20, "a message of {size} bytes");
                messages += 1;
                got.extend(batch.iter().cloned());
            }
            other => panic!("expected records, got {other:?}"),
        }
    }
    assert!(messages > 1, "{messages} message(s) for ~5 MB");
    assert_eq!(got, *big);
    eprintln!("20k records: published in {published:?}, {messages} messages");
}

#[tokio::test]
async fn an_undecodable_message_becomes_a_gap() {
    let (bus, keys) = shared_bus("garbage").await;
    let mut events = subscribed(&bus).await;

    let mut raw = raw_connection(&keys.url).await;
    let _: i64 = ::redis::cmd("PUBLISH")
        .arg(format!("{}bus", keys.prefix))
        .arg(&b"\xff\xff\xff not protobuf"[..])
        .query_async(&mut raw)
        .await
        .expect("PUBLISH");
    assert!(matches!(
        next_event(&mut events, PROMPT).await,
        BusEvent::Gap
    ));

    // The subscription carries on.
    bus.publish(batch(1..=2)).await.expect("publish");
    let (got, _) = receive(&mut events, 2, false).await;
    assert_eq!(ids(&got), vec![1, 2]);
}

#[tokio::test]
async fn a_stalled_subscriber_is_told_what_it_missed() {
    let (bus, _keys) = shared_bus("stalled").await;
    let mut events = subscribed(&bus).await;

    // Nobody reads meanwhile: the subscription's queue overflows.
    for id in 1..=400 {
        bus.publish(batch(id..=id)).await.expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut got = Vec::new();
    let mut gaps = 0;
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(500), events.next()).await
    {
        match event {
            BusEvent::Records(batch) => got.extend(ids(&batch)),
            BusEvent::Gap => gaps += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    eprintln!("stalled: {} of 400 records kept, {gaps} gap(s)", got.len());
    assert!(gaps >= 1, "records were dropped without a Gap");
    assert!(
        got.len() < 400,
        "nothing was dropped: the test proves nothing"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");

    bus.publish(batch(1000..=1000)).await.expect("publish");
    assert_eq!(ids(&receive(&mut events, 1, false).await.0), vec![1000]);
}

#[tokio::test]
async fn the_catalogue_answers_only_once_filled() {
    let (bus, keys) = shared_bus("catalog").await;

    // Nothing known yet: callers must ask the store.
    assert_eq!(bus.services().await.expect("services"), None);
    assert_eq!(bus.tags("api").await.expect("tags"), None);

    // Remembering alone does not make the catalogue complete.
    bus.remember(&[record(1, "web", &["z", "a"])])
        .await
        .expect("remember");
    assert_eq!(bus.services().await.expect("services"), None);

    bus.fill(vec![
        ("worker".into(), vec!["nightly".into(), "batch".into()]),
        ("api".into(), vec!["http".into(), "auth".into()]),
        ("quiet".into(), vec![]),
    ])
    .await
    .expect("fill");
    // The fill adds to what was there: a `remember` that raced with the
    // caller's read of the store (`web`) is kept.
    assert_eq!(
        bus.services().await.expect("services"),
        Some(vec![
            "api".into(),
            "quiet".into(),
            "web".into(),
            "worker".into()
        ])
    );
    assert_eq!(
        bus.tags("api").await.expect("tags"),
        Some(vec!["auth".into(), "http".into()])
    );
    assert_eq!(
        bus.tags("web").await.expect("tags"),
        Some(vec!["a".into(), "z".into()])
    );
    assert_eq!(bus.tags("quiet").await.expect("tags"), Some(vec![]));

    // New records add to the complete catalogue.
    bus.remember(&[
        record(2, "api", &["grpc", "http"]),
        record(3, "billing", &["invoice"]),
        record(4, "billing", &[]),
    ])
    .await
    .expect("remember");
    assert_eq!(
        bus.services().await.expect("services"),
        Some(vec![
            "api".into(),
            "billing".into(),
            "quiet".into(),
            "web".into(),
            "worker".into()
        ])
    );
    assert_eq!(
        bus.tags("api").await.expect("tags"),
        Some(vec!["auth".into(), "grpc".into(), "http".into()])
    );
    assert_eq!(
        bus.tags("billing").await.expect("tags"),
        Some(vec!["invoice".into()])
    );

    // A second fill only adds: nothing already known is lost.
    bus.fill(vec![("api".into(), vec!["http".into()])])
        .await
        .expect("fill");
    assert_eq!(
        bus.tags("billing").await.expect("tags"),
        Some(vec!["invoice".into()])
    );

    // Without the marker (a flush, a restart) it is incomplete again.
    let mut raw = raw_connection(&keys.url).await;
    let _: i64 = ::redis::cmd("DEL")
        .arg(format!("{}catalog:complete", keys.prefix))
        .query_async(&mut raw)
        .await
        .expect("DEL");
    assert_eq!(bus.services().await.expect("services"), None);
    assert_eq!(bus.tags("api").await.expect("tags"), None);
}

#[tokio::test]
async fn connecting_to_nothing_fails_quickly_and_clearly() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let err = connect_fails_quickly(port, "a port nobody listens on").await;
    assert!(
        err.contains("cannot reach Redis") && err.contains(&port.to_string()),
        "{err}"
    );

    // Something that accepts connections but never answers, as a wedged
    // server or a wrong port does.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let err = connect_fails_quickly(port, "a server that never answers").await;
    assert!(err.contains("cannot reach Redis"), "{err}");

    let err = match connect("http://nowhere", "c", "p:").await {
        Ok(_) => panic!("accepted an http URL"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("invalid Redis URL"), "{err}");
}

/// Connects to `127.0.0.1:port`, asserting that it fails within 4 s;
/// returns why.
async fn connect_fails_quickly(port: u16, what: &str) -> String {
    let start = Instant::now();
    let err = match connect(&format!("redis://127.0.0.1:{port}"), "c", "p:").await {
        Ok(_) => panic!("connected to {what}"),
        Err(e) => e.to_string(),
    };
    eprintln!("connect failed in {:?}: {err}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    err
}

/// Publishes, asserting that it fails within `limit`; returns how long it
/// took and why it failed.
async fn publish_fails_within(bus: &RedisBus, limit: Duration) -> (Duration, String) {
    let start = Instant::now();
    let result = bus.publish(batch(100..=101)).await;
    let took = start.elapsed();
    let Err(e) = result else {
        panic!("published into a dead Redis");
    };
    assert!(took < limit, "publish took {took:?}");
    (took, e.to_string())
}

/// Publishes until Redis accepts (it may take a backoff pause to notice).
async fn publish_when_back(bus: &RedisBus, records: Arc<Vec<LogRecord>>) {
    let start = Instant::now();
    while let Err(e) = bus.publish(records.clone()).await {
        assert!(start.elapsed() < PROMPT, "publish still failing: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_killed_redis_is_noticed_and_recovered_from() {
    let mut redis = PrivateRedis::start();
    let bus = connect(&redis.url(), "bus", "p:").await.expect("connect");
    let mut events = subscribed(&bus).await;
    bus.publish(batch(1..=3)).await.expect("publish");
    assert_eq!(ids(&receive(&mut events, 3, false).await.0), vec![1, 2, 3]);

    redis.kill();
    let killed = Instant::now();
    match next_event(&mut events, PROMPT).await {
        BusEvent::Down(why) => eprintln!("Down {:?} after SIGKILL: {why}", killed.elapsed()),
        other => panic!("expected Down, got {other:?}"),
    }
    // The writer must not be held up: the first call finds the connection
    // dropped, later ones cannot connect.
    for _ in 0..3 {
        let (took, why) = publish_fails_within(&bus, Duration::from_secs(3)).await;
        eprintln!("publish failed in {took:?}: {why}");
    }
    assert!(bus.services().await.is_err());

    redis.restart();
    let restarted = Instant::now();
    match next_event(&mut events, Duration::from_secs(10)).await {
        BusEvent::Up => eprintln!("Up {:?} after restart", restarted.elapsed()),
        other => panic!("expected Up, got {other:?}"),
    }
    publish_when_back(&bus, batch(4..=6)).await;
    // The failed publishes are owed as a Gap before the new records.
    assert!(matches!(
        next_event(&mut events, PROMPT).await,
        BusEvent::Gap
    ));
    assert_eq!(ids(&receive(&mut events, 3, false).await.0), vec![4, 5, 6]);
}

#[tokio::test]
async fn a_subscription_starting_without_redis_comes_up_later() {
    let mut redis = PrivateRedis::start();
    let bus = connect(&redis.url(), "bus", "p:").await.expect("connect");
    redis.kill();

    let mut events = bus.subscribe();
    assert!(matches!(
        next_event(&mut events, PROMPT).await,
        BusEvent::Down(_)
    ));
    redis.restart();
    assert!(matches!(
        next_event(&mut events, Duration::from_secs(10)).await,
        BusEvent::Up
    ));
    publish_when_back(&bus, batch(1..=2)).await;
    assert_eq!(ids(&receive(&mut events, 2, true).await.0), vec![1, 2]);
}

#[tokio::test]
async fn a_frozen_redis_is_noticed_within_bounded_time() {
    let redis = PrivateRedis::start();
    let bus = connect(&redis.url(), "bus", "p:").await.expect("connect");
    let mut events = subscribed(&bus).await;
    bus.publish(batch(1..=1)).await.expect("publish");
    receive(&mut events, 1, false).await;

    // Sockets stay open and the kernel keeps accepting bytes: only timeouts
    // and unanswered PINGs can tell.
    redis.signal("-STOP");
    let frozen = Instant::now();
    match next_event(&mut events, Duration::from_secs(6)).await {
        BusEvent::Down(why) => eprintln!("Down {:?} after SIGSTOP: {why}", frozen.elapsed()),
        other => panic!("expected Down, got {other:?}"),
    }
    assert!(
        frozen.elapsed() < Duration::from_secs(5),
        "{:?}",
        frozen.elapsed()
    );
    // The first publish waits for its answer in vain; from then on the bus
    // knows Redis is away and fails at once.
    let (took, why) = publish_fails_within(&bus, Duration::from_secs(3)).await;
    eprintln!("first publish to a frozen Redis failed in {took:?}: {why}");
    for _ in 0..3 {
        let (took, why) = publish_fails_within(&bus, Duration::from_millis(200)).await;
        eprintln!("next publish failed in {took:?}: {why}");
    }

    redis.signal("-CONT");
    match next_event(&mut events, Duration::from_secs(10)).await {
        BusEvent::Up => {}
        other => panic!("expected Up, got {other:?}"),
    }
    publish_when_back(&bus, batch(2..=3)).await;
    // Publishes that timed out may still have reached the frozen server's
    // socket buffer, and be delivered once it runs again.
    let mut got = Vec::new();
    while !got.contains(&3) {
        let (records, _) = receive(&mut events, 1, true).await;
        got.extend(ids(&records).into_iter().filter(|&id| id < 100));
    }
    assert_eq!(got, vec![2, 3]);
}
