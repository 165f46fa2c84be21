//! Entries from Redis publishers: redis-py publishing to channels and adding
//! to streams, as the seed system's projects do, against a real Redis and a
//! real taillight in both modes. Bad messages are counted and never stop the
//! source; stream entries survive kill -9 of their reader, once each.

mod common;

use std::time::{Duration, Instant};

use common::process::{PrivateRedis, Proc, serve_args};
use common::{
    Backend, TestServer, metrics_text_at, only, redis_url, sample, unique, unique_name,
    wait_records,
};
use serde_json::{Value, json};
use taillight::config::ServeArgs;
use taillight::model::time;
use taillight::proto::{Level, LogRecord};

backend_tests!(
    channel_messages_of_every_form_are_stored_and_bad_ones_counted,
    stream_entries_are_stored_then_acknowledged,
    patterns_subscribe_and_name_the_service_after_the_channel,
    kill_9_during_a_stream_burst_loses_nothing_and_stores_nothing_twice,
);

const WITHIN: Duration = Duration::from_secs(60);

/// Runs `ops` with redis-py (tests/redis_publisher.py) against `url`.
fn redis_py(url: &str, ops: &Value) -> Value {
    let out = common::process::python("redis_publisher.py", &[url], &[], &ops.to_string());
    serde_json::from_str(&out).expect("publisher's answer")
}

fn redis_cmd<T: ::redis::FromRedisValue>(url: &str, cmd: &mut ::redis::Cmd) -> T {
    let client = ::redis::Client::open(url).expect("url");
    let mut c = client.get_connection().expect("redis");
    cmd.query(&mut c).expect("redis command")
}

/// Waits until `n` clients subscribe to `channel` (patterns: PSUBSCRIBE).
fn wait_subscribers(url: &str, channel: &str, pattern: bool, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count: i64 = if pattern {
            redis_cmd(url, ::redis::cmd("PUBSUB").arg("NUMPAT"))
        } else {
            let r: (String, i64) =
                redis_cmd(url, ::redis::cmd("PUBSUB").arg("NUMSUB").arg(channel));
            r.1
        };
        if (pattern && count >= n) || (!pattern && count == n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{channel}: {count} subscribers, want {n}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The flags of a child node reading `stream` in `group` as `consumer`.
fn stream_node_args(
    cfg: &ServeArgs,
    role: &str,
    stream: &str,
    group: &str,
    consumer: &str,
) -> Vec<String> {
    let mut args = serve_args(cfg, role);
    args.extend(
        [
            "--ingest-redis-url",
            &redis_url(),
            "--ingest-redis-streams",
            stream,
            "--ingest-redis-group",
            group,
            "--ingest-redis-consumer",
            consumer,
            "--ingest-redis-claim-idle",
            "2s",
        ]
        .map(String::from),
    );
    args
}

/// Waits until `n` consumers of `group` have read `stream` (a consumer
/// joins at its first XREADGROUP, even one that finds nothing).
fn wait_consumers(stream: &str, group: &str, n: usize) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let consumers: Result<Vec<::redis::Value>, _> = ::redis::Client::open(redis_url().as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                ::redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(stream)
                    .arg(group)
                    .query(&mut c)
            });
        if consumers.is_ok_and(|c| c.len() >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} consumers never read {stream}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the stream source of the node at `base` has counted at least
/// `n` in `metric` (`received` or `accepted`).
async fn wait_stream_count(base: &str, metric: &str, n: f64) {
    let name = format!("taillight_source_{metric}_total{{source=\"redis_stream\"}}");
    let deadline = Instant::now() + WITHIN;
    while sample(&metrics_text_at(base).await, &name) < n {
        assert!(Instant::now() < deadline, "{name} never reached {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every message of `records` appears once, and there are `n` of them.
fn assert_each_once(records: &[LogRecord], n: usize) {
    let mut seen = std::collections::BTreeSet::new();
    for m in messages(records) {
        assert!(seen.insert(m), "{m} stored twice");
    }
    assert_eq!(seen.len(), n);
}

fn messages(rs: &[LogRecord]) -> Vec<&str> {
    rs.iter().map(|r| r.message.as_str()).collect()
}

async fn channel_server(backend: Backend, channels: &[String]) -> TestServer {
    let channels = channels.to_vec();
    TestServer::start_with(backend, |c| {
        c.sources.redis.ingest_redis_url = Some(redis_url());
        c.sources.redis.ingest_redis_channels = channels;
    })
    .await
}

async fn channel_messages_of_every_form_are_stored_and_bad_ones_counted(backend: Backend) {
    let channel = unique_name("logger");
    let server = channel_server(backend, std::slice::from_ref(&channel)).await;
    wait_subscribers(&redis_url(), &channel, false, 1);
    let svc = unique("redis");
    let publish =
        |payload: String| json!({"op": "publish", "channel": channel, "payload": payload});
    let ops = json!([
        publish(json!({"service": svc, "level": "warn", "message": "taillight entry", "tags": ["a"], "attributes": {"k": "v"}}).to_string()),
        publish(json!({"service_name": svc, "level": "ERROR", "message": "seed entry", "tag": "pay", "timestamp": "2024-03-24T13:01:00"}).to_string()),
        publish(json!({"msg": "logger entry", "levelname": "WARNING", "app": svc, "ts": 1_700_000_000.5, "req": {"id": 7}}).to_string()),
        {"op": "seed", "channel": channel, "level": "error", "message": "from the seed's publisher"},
        publish("ERROR a plain line".into()),
        // What must be refused, each for its own reason, without harm.
        {"op": "publish", "channel": channel, "payload_hex": "fffe00"},
        publish(json!({"msg": "m", "tags": [1]}).to_string()),
        publish("x".repeat(10 << 20)),
        publish(json!({"service": svc, "message": "m".repeat(70_000)}).to_string()),
        publish(json!({"service": "bad name", "message": "m"}).to_string()),
        publish(json!({"service": svc, "message": "after the bad ones"}).to_string()),
    ]);
    redis_py(&redis_url(), &ops);
    let base = server.http();
    let mine = wait_records(&base, &only(&svc), 4, WITHIN).await;
    assert_eq!(
        messages(&mine),
        [
            "taillight entry",
            "seed entry",
            "logger entry",
            "after the bad ones"
        ]
    );
    let (json_e, seed, logger) = (&mine[0], &mine[1], &mine[2]);
    assert_eq!(
        (json_e.level, json_e.tags.clone()),
        (Level::Warn as i32, vec!["a".to_string()])
    );
    assert_eq!(json_e.attributes["k"], "v");
    assert_eq!(
        (seed.level, seed.tags.clone()),
        (Level::Error as i32, vec!["pay".to_string()])
    );
    assert_eq!(
        seed.time.map(|t| time::to_micros(&t)),
        Some(1_711_285_260_000_000)
    );
    assert_eq!(logger.level, Level::Warn as i32);
    assert_eq!(logger.attributes["req.id"], "7");
    assert_eq!(
        logger.time.map(|t| time::to_micros(&t)),
        Some(1_700_000_000_500_000)
    );
    // No service in the message: the channel's name.
    let by_channel = wait_records(&base, &only(&channel), 2, WITHIN).await;
    assert_eq!(by_channel[0].message, "from the seed's publisher");
    assert_eq!(by_channel[0].level, Level::Error as i32);
    assert_eq!(
        (by_channel[1].message.as_str(), by_channel[1].level),
        ("ERROR a plain line", Level::Error as i32)
    );

    let text = metrics_text_at(&base).await;
    let rejected = |reason: &str| {
        sample(
            &text,
            &format!(
                "taillight_source_rejected_total{{source=\"redis_channel\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(rejected("not_utf8"), 1.0, "{text}");
    assert_eq!(rejected("bad_shape"), 1.0, "{text}");
    assert_eq!(rejected("too_large"), 1.0, "{text}");
    assert_eq!(rejected("invalid"), 2.0, "{text}");
    assert_eq!(
        sample(&text, "taillight_source_up{source=\"redis_channel\"}"),
        1.0
    );
    assert!(
        sample(
            &text,
            "taillight_source_accepted_total{source=\"redis_channel\"}"
        ) >= 6.0
    );
    drop(server);
}

async fn stream_server(backend: Backend, stream: &str, consumer: &str) -> TestServer {
    let (stream, consumer) = (stream.to_string(), consumer.to_string());
    TestServer::start_with(backend, |c| {
        let r = &mut c.sources.redis;
        r.ingest_redis_url = Some(redis_url());
        r.ingest_redis_streams = vec![stream];
        r.ingest_redis_group = format!("{consumer}-group");
        r.ingest_redis_consumer = Some(consumer);
    })
    .await
}

/// Entries left unacknowledged in `stream`'s group.
fn pending(stream: &str, group: &str) -> i64 {
    let summary: Vec<::redis::Value> = redis_cmd(
        &redis_url(),
        ::redis::cmd("XPENDING").arg(stream).arg(group),
    );
    match summary.first() {
        Some(::redis::Value::Int(n)) => *n,
        other => panic!("XPENDING answered {other:?}"),
    }
}

/// Entries of `stream` delivered to `group`'s readers so far: those up to
/// the group's last delivered id (nothing is deleted from the stream).
/// Counted rather than read from XINFO's `entries-read`, which is only an
/// estimate in some cases.
fn delivered(stream: &str, group: &str) -> i64 {
    let info: ::redis::streams::StreamInfoGroupsReply = redis_cmd(
        &redis_url(),
        ::redis::cmd("XINFO").arg("GROUPS").arg(stream),
    );
    let Some(last) = (info.groups.iter())
        .find(|g| g.name == group)
        .map(|g| g.last_delivered_id.clone())
    else {
        return 0;
    };
    let upto: ::redis::streams::StreamRangeReply = redis_cmd(
        &redis_url(),
        ::redis::cmd("XRANGE").arg(stream).arg("-").arg(&last),
    );
    upto.ids.len() as i64
}

async fn stream_entries_are_stored_then_acknowledged(backend: Backend) {
    let stream = unique_name("logs");
    let consumer = unique_name("reader");
    let server = stream_server(backend, &stream, &consumer).await;
    let svc = unique("stream");
    let line = json!({"msg": "one field holding a message", "service": svc}).to_string();
    let ops = json!([
        {"op": "xadd", "stream": stream, "fields": {"service": svc, "level": "error", "message": "fields of an entry", "tags": "[\"a\"]", "host": "h1"}},
        {"op": "xadd", "stream": stream, "fields": {"line": line}},
        {"op": "xadd", "stream": stream, "fields": {"data": "[warn] a plain line"}},
        {"op": "xadd", "stream": stream, "fields": {"service": svc, "message": "m".repeat(70_000)}},
        {"op": "xadd", "stream": stream, "fields_hex": {"message": "fffe"}},
    ]);
    redis_py(&redis_url(), &ops);
    let base = server.http();
    let mine = wait_records(&base, &only(&svc), 2, WITHIN).await;
    assert_eq!(
        messages(&mine),
        ["fields of an entry", "one field holding a message"]
    );
    assert_eq!(
        (mine[0].level, mine[0].attributes["host"].as_str()),
        (Level::Error as i32, "h1")
    );
    assert_eq!(mine[0].tags, ["a"]);
    let plain = wait_records(&base, &only(&stream), 1, WITHIN).await;
    assert_eq!(
        (plain[0].message.as_str(), plain[0].level),
        ("[warn] a plain line", Level::Warn as i32)
    );
    // Stored ones and the two that can never be stored are acknowledged.
    let group = format!("{consumer}-group");
    wait_no_pending(&stream, &group).await;
    let text = metrics_text_at(&base).await;
    let rejected = |reason: &str| {
        sample(
            &text,
            &format!(
                "taillight_source_rejected_total{{source=\"redis_stream\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(
        (rejected("invalid"), rejected("not_utf8")),
        (1.0, 1.0),
        "{text}"
    );
    drop(server);
    let _: i64 = redis_cmd(&redis_url(), ::redis::cmd("DEL").arg(&stream));
}

async fn patterns_subscribe_and_name_the_service_after_the_channel(backend: Backend) {
    let base_name = unique_name("app");
    let server = channel_server(backend, &[format!("{base_name}.*")]).await;
    wait_subscribers(&redis_url(), &format!("{base_name}.*"), true, 1);
    let (a, b) = (format!("{base_name}.billing"), format!("{base_name}.auth"));
    redis_py(
        &redis_url(),
        &json!([
            {"op": "publish", "channel": a, "payload": "[error] card declined"},
            {"op": "publish", "channel": b, "payload": "user signed in"},
        ]),
    );
    let base = server.http();
    let billing = wait_records(&base, &only(&a), 1, WITHIN).await;
    assert_eq!(
        (billing[0].message.as_str(), billing[0].level),
        ("[error] card declined", Level::Error as i32)
    );
    let auth = wait_records(&base, &only(&b), 1, WITHIN).await;
    assert_eq!(
        (auth[0].message.as_str(), auth[0].level),
        ("user signed in", Level::Info as i32)
    );
}

/// A reader killed in the middle of a burst: after a restart every entry of
/// the stream is stored, and none twice (some were stored but not yet
/// acknowledged when it died).
async fn kill_9_during_a_stream_burst_loses_nothing_and_stores_nothing_twice(backend: Backend) {
    const N: usize = 20_000;
    let (cfg, _scratch) = common::test_config(backend);
    let stream = unique_name("burst");
    let svc = unique("burst");
    let group = format!("{stream}-group");
    let args = stream_node_args(&cfg, "all", &stream, &group, "the-reader");
    // The burst is in the stream before the reader starts, so the reader is
    // always mid-way through reading when it is killed.
    let ops = json!([{"op": "burst", "kind": "xadd", "to": stream, "prefix": "e", "count": N, "service": svc}]);
    redis_py(&redis_url(), &ops);
    let mut node = Proc::spawn(&args);
    // Kill it once it has read a part of the burst: with batches in flight.
    wait_stream_count(&node.url(), "received", 2_000.0).await;
    node.child.kill().expect("kill -9");
    let _ = node.child.wait();
    // It died holding entries it had read and not acknowledged: some stored,
    // some not; the restart must take up all of them, storing each once.
    let unacknowledged = pending(&stream, &group);
    assert!(unacknowledged > 0, "the kill found nothing in flight");
    let node = Proc::spawn(&args);
    let stored = wait_records(&node.url(), &only(&svc), N, WITHIN).await;
    eprintln!("{unacknowledged} entries were in flight at the kill");
    assert_each_once(&stored, N);
    drop(node);
    let _: i64 = redis_cmd(&redis_url(), ::redis::cmd("DEL").arg(&stream));
}

/// A node reading a stream in a group is killed in a burst; another node of
/// the group claims what it had read and not acknowledged, and reads the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_living_claim_what_a_dead_reader_left_pending() {
    const N: usize = 10_000;
    let (cfg, _scratch) = common::test_config(Backend::Distributed);
    let stream = unique_name("shared");
    let svc = unique("claim");
    let node_args =
        |consumer: &str| stream_node_args(&cfg, "ingest", &stream, "taillight", consumer);
    // A writer stores what both ingest nodes produce.
    let _writer = Proc::spawn(&serve_args(&cfg, "writer"));
    let mut a = Proc::spawn(&node_args("a"));
    wait_consumers(&stream, "taillight", 1);
    let ops = json!([{"op": "burst", "kind": "xadd", "to": stream, "prefix": "e", "count": N, "service": svc}]);
    let url = redis_url();
    let publisher = std::thread::spawn(move || redis_py(&url, &ops));
    // The second reader joins after the first died: joined before, on a
    // loaded machine it once read the whole burst first, and the first had
    // nothing to leave behind.
    wait_stream_count(&a.url(), "received", 500.0).await;
    a.child.kill().expect("kill -9");
    let _ = a.child.wait();
    // What a read: acknowledged, or pending for b to claim. What a made
    // durable and died before acknowledging, b's claim finds stored and
    // does not count again, so only what a never read is surely b's.
    let read_by_a = delivered(&stream, "taillight");
    assert!(
        read_by_a >= 500,
        "a read {read_by_a}, its metric said 500 or more"
    );
    let b = Proc::spawn(&node_args("b"));
    publisher.join().expect("publisher");
    let stored = wait_records(&b.url(), &only(&svc), N, WITHIN).await;
    assert_each_once(&stored, N);
    let text = metrics_text_at(&b.url()).await;
    assert!(
        sample(
            &text,
            "taillight_source_accepted_total{source=\"redis_stream\"}"
        ) >= (N as i64 - read_by_a) as f64,
        "b should have read at least what a never read ({read_by_a} of {N} read by a): {text}"
    );
    // a is dead: only b's claims can clear what a left pending. Stored
    // before acknowledged: the last XACKs may follow the last rows.
    wait_no_pending(&stream, "taillight").await;
    let _: i64 = redis_cmd(&redis_url(), ::redis::cmd("DEL").arg(&stream));
}

/// Waits until nothing of `group` is pending on `stream`.
async fn wait_no_pending(stream: &str, group: &str) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let n = pending(stream, group);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{n} entries still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Several nodes share the store: only the holder of the channels' lease
/// subscribes, so each message is stored once; when it stops, another
/// takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_store_each_channel_message_once_and_hand_over() {
    let channel = unique_name("shared");
    let a = channel_server(Backend::Distributed, std::slice::from_ref(&channel)).await;
    let b = a.sibling(|_| {}).await;
    wait_subscribers(&redis_url(), &channel, false, 1);
    // Both would have subscribed by now without the lease.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_subscribers(&redis_url(), &channel, false, 1);
    let svc = unique("twonodes");
    let burst = |prefix: &str, n: usize| {
        let ops: Vec<Value> = (0..n)
            .map(|i| json!({"op": "publish", "channel": channel, "payload": json!({"service": svc, "message": format!("{prefix}{i}")}).to_string()}))
            .collect();
        Value::Array(ops)
    };
    redis_py(&redis_url(), &burst("first", 300));
    wait_records(&a.http(), &only(&svc), 300, WITHIN).await;

    // The holder stops; the other node takes the lease and subscribes.
    let (holder_a, _) = (
        sample(
            &metrics_text_at(&a.http()).await,
            "taillight_source_up{source=\"redis_channel\"}",
        ) == 1.0,
        (),
    );
    let (stay, _gone) = if holder_a {
        (b, a.stop().await)
    } else {
        (a, b.stop().await)
    };
    wait_subscribers(&redis_url(), &channel, false, 1);
    let deadline = Instant::now() + WITHIN;
    while sample(
        &metrics_text_at(&stay.http()).await,
        "taillight_source_up{source=\"redis_channel\"}",
    ) != 1.0
    {
        assert!(Instant::now() < deadline, "the other node never took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis_py(&redis_url(), &burst("second", 200));
    let all = wait_records(&stay.http(), &only(&svc), 500, WITHIN).await;
    assert_each_once(&all, 500);
}

/// Redis goes away and comes back: the source reports it in /metrics and
/// /readyz (degraded, still ready), reconnects by itself, and takes messages
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_reported_and_recovered_from() {
    let mut redis = PrivateRedis::start();
    let channel = unique_name("outage");
    let url = redis.url();
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.sources.redis.ingest_redis_url = Some(url.clone());
        c.sources.redis.ingest_redis_channels = vec![channel.clone()];
    })
    .await;
    let base = server.http();
    let up = async || {
        sample(
            &metrics_text_at(&base).await,
            "taillight_source_up{source=\"redis_channel\"}",
        )
    };
    let wait_up = async |want: f64| {
        let deadline = Instant::now() + WITHIN;
        while up().await != want {
            assert!(Instant::now() < deadline, "source_up never became {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_up(1.0).await;
    redis.kill();
    wait_up(0.0).await;
    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "a source's outage leaves the server ready"
    );
    let detail = ready.text().await.expect("body");
    assert!(detail.contains("redis_channel: degraded"), "{detail}");

    redis.restart();
    wait_up(1.0).await;
    wait_subscribers(&url, &channel, false, 1);
    redis_py(
        &url,
        &json!([{"op": "publish", "channel": channel, "payload": "back again"}]),
    );
    let rs = wait_records(&base, &only(&channel), 1, WITHIN).await;
    assert_eq!(rs[0].message, "back again");
    let text = metrics_text_at(&base).await;
    assert!(
        sample(
            &text,
            "taillight_source_disconnects_total{source=\"redis_channel\"}"
        ) >= 1.0
    );
}
