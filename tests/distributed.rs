//! What only the distributed topology (Kafka → MariaDB writer → Redis) has:
//! separate ingest and writer roles, crashes between the database commit and
//! the offset commit, several writers in one group, and outages of the
//! broker and of Redis. Real tansu, MariaDB and Redis; no mocks.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::process::{PrivateRedis, Proc, serve_args};
use common::reliability::{Row, wait_for_acked};
use common::{Backend, Tansu, TestServer, entry, free_port, unique};
use taillight::config::Role;
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{
    Level, LogFilter, LogRecord, PushLogRequest, PushLogsRequest, TailRequest,
    stream_status::State, tail_response::Event,
};
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(60);

fn filter(service: &str) -> LogFilter {
    LogFilter {
        services: vec![service.to_string()],
        ..Default::default()
    }
}

async fn open_tail(
    c: &mut LogServiceClient<Channel>,
    service: &str,
) -> tonic::Streaming<taillight::proto::TailResponse> {
    c.tail(TailRequest {
        filter: Some(filter(service)),
        ..Default::default()
    })
    .await
    .expect("tail")
    .into_inner()
}

async fn push_n(c: &mut LogServiceClient<Channel>, service: &str, from: usize, n: usize) {
    let entries = (from..from + n)
        .map(|i| entry(service, Level::Info, &format!("m{i}"), &[]))
        .collect();
    let accepted = c
        .push_logs(futures::stream::iter(vec![PushLogsRequest { entries }]))
        .await
        .expect("push_logs")
        .into_inner()
        .accepted;
    assert_eq!(accepted as usize, n);
}

async fn stored(c: &mut LogServiceClient<Channel>, f: &LogFilter) -> Vec<LogRecord> {
    common::query_all(c, f.clone()).await
}

/// Waits until `want` records match, then checks that no more arrive for a
/// moment (a duplicate would show up as an extra record).
async fn wait_stored(
    c: &mut LogServiceClient<Channel>,
    f: &LogFilter,
    want: usize,
) -> Vec<LogRecord> {
    within_deadline(Duration::from_millis(100), async || {
        let got = stored(c, f).await;
        assert!(
            got.len() <= want,
            "{} records stored, expected {want}",
            got.len()
        );
        if got.len() == want {
            Ok(())
        } else {
            Err(format!("only {} of {want} stored", got.len()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = stored(c, f).await;
    assert_eq!(again.len(), want, "records kept arriving");
    again
}

/// Tries `attempt` every `pause` until it succeeds; after [`DEADLINE`] the
/// test fails with what its last try said.
async fn within_deadline<T>(
    pause: Duration,
    mut attempt: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match attempt().await {
            Ok(done) => return done,
            Err(why) => assert!(Instant::now() < deadline, "{why}"),
        }
        tokio::time::sleep(pause).await;
    }
}

fn assert_exactly_once(records: &[LogRecord], messages: impl IntoIterator<Item = String>) {
    let want: BTreeSet<String> = messages.into_iter().collect();
    let got: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
    let unique: BTreeSet<String> = got.iter().map(|m| m.to_string()).collect();
    assert_eq!(unique.len(), got.len(), "a message was stored twice");
    assert_eq!(unique, want);
    assert!(records.windows(2).all(|w| w[0].id < w[1].id));
}

/// Ingest nodes produce, a writer node stores, and a tail on another ingest
/// node sees the records through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_writer_and_tail_nodes_work_together() {
    let writer = TestServer::start_with(Backend::Distributed, |c| c.role = Role::Writer).await;
    let ingest_a = writer.sibling(|c| c.role = Role::Ingest).await;
    let ingest_b = writer.sibling(|c| c.role = Role::Ingest).await;
    let svc = unique("cluster");

    let mut tail_client = ingest_b.client().await;
    let mut tail = open_tail(&mut tail_client, &svc).await;
    loop {
        let msg = tail.message().await.expect("tail").expect("open");
        if matches!(msg.event, Some(Event::Status(s)) if s.state == State::Live as i32) {
            break;
        }
    }
    let mut a = ingest_a.client().await;
    push_n(&mut a, &svc, 0, 100).await;

    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while seen.len() < 100 {
            if let Some(Event::Records(r)) =
                tail.message().await.expect("tail").expect("open").event
            {
                seen.extend(r.records);
            }
        }
    })
    .await
    .expect("the tail on another node saw every record");
    assert_exactly_once(&seen, (0..100).map(|i| format!("m{i}")));
    // The same records, from the database, through the other ingest node.
    let mut b = ingest_b.client().await;
    let rows = wait_stored(&mut b, &filter(&svc), 100).await;
    assert_eq!(rows, seen);
    // The writer serves health and metrics but not the API.
    let status = reqwest::get(format!("{}/v1/services", writer.http()))
        .await
        .expect("GET")
        .status();
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    assert!(writer.metric("taillight_entries_stored_total").await >= 100);
}

/// A writer that dies after its database commit but before its offset
/// commit: the batch is delivered again and must not be stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_crash_between_commits_stores_each_entry_once() {
    let ingest = TestServer::start_with(Backend::Distributed, |c| c.role = Role::Ingest).await;
    let mut args = serve_args(&ingest.cfg, "writer");
    args.extend(["--batch-max", "50", "--fault-abort-after-store", "3"].map(String::from));
    let mut crashing = Proc::spawn(&args);

    let svc = unique("crash");
    let mut c = ingest.client().await;
    for k in 0..6 {
        push_n(&mut c, &svc, k * 50, 50).await;
    }
    let status = crashing.wait_exit(DEADLINE);
    assert!(!status.success(), "the writer was meant to abort");

    // A fresh writer in the same group picks up from the committed offsets.
    let joined = Instant::now();
    let _writer = ingest.sibling(|c| c.role = Role::Writer).await;
    let rows = wait_stored(&mut c, &filter(&svc), 300).await;
    let sent: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    Row {
        fault: "writer aborted between its MariaDB commit and its Kafka offset commit".into(),
        mode: "distributed".into(),
        pushed: 300,
        acknowledged: 300,
        recovery: Some(joined.elapsed()),
        detail:
            "the batch is delivered again to a fresh writer and recognised by its source position"
                .into(),
        test: "distributed::writer_crash_between_commits_stores_each_entry_once".into(),
        ..Row::default()
    }
    .tallied(
        sent.iter().map(String::as_str),
        rows.iter().map(|r| r.message.as_str()),
    )
    .record();
    assert_exactly_once(&rows, sent);
}

/// While the database refuses batches, the writer rewinds the failed batch
/// and the one it had read ahead; once it accepts them again every entry is
/// stored once, and in the order pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_batches_rewind_and_keep_order() {
    use diesel_async::{AsyncConnection, AsyncMysqlConnection, SimpleAsyncConnection};
    let server =
        TestServer::start_with(Backend::Distributed, |c| c.writer.batch_max = Some(20)).await;
    let url = server
        .cfg
        .store
        .mysql
        .database_url
        .clone()
        .expect("a database");
    let mut sql = AsyncMysqlConnection::establish(&url)
        .await
        .expect("connect");
    // Every batch fails after its rows are written, and rolls back.
    sql.batch_execute("RENAME TABLE services TO services_away")
        .await
        .expect("rename");

    let svc = unique("refused");
    let mut c = server.client().await;
    for k in 0..10 {
        push_n(&mut c, &svc, k * 20, 20).await;
    }
    // Several rounds of failure and rewind (the writer retries every 200 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(stored(&mut c, &filter(&svc)).await.is_empty());
    sql.batch_execute("RENAME TABLE services_away TO services")
        .await
        .expect("rename back");

    let rows = wait_stored(&mut c, &filter(&svc), 200).await;
    assert_exactly_once(&rows, (0..200).map(|i| format!("m{i}")));
    let order: Vec<_> = rows.iter().map(|r| r.message.clone()).collect();
    let pushed: Vec<_> = (0..200).map(|i| format!("m{i}")).collect();
    assert_eq!(order, pushed, "stored out of push order");
}

/// A node moved to a new topic keeps its database. The new topic's offsets
/// start at 0 again, at positions where the old topic's entries are stored:
/// its entries are new all the same, and each is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_topic_on_the_same_database_loses_nothing() {
    let old = TestServer::start(Backend::Distributed).await;
    let svc = unique("retopic");
    let mut c = old.client().await;
    push_n(&mut c, &svc, 0, 100).await;
    wait_stored(&mut c, &filter(&svc), 100).await;

    let (mut cfg, scratch) = old.stop().await;
    let renamed = unique("retopic");
    cfg.queue.kafka.kafka_topic = format!("{renamed}.logs");
    cfg.queue.kafka.kafka_group = format!("{renamed}.writers");
    let new = TestServer::launch(Backend::Distributed, cfg, scratch).await;
    let mut c = new.client().await;
    push_n(&mut c, &svc, 100, 100).await;
    let rows = wait_stored(&mut c, &filter(&svc), 200).await;
    assert_exactly_once(&rows, (0..200).map(|i| format!("m{i}")));
}

/// kill -9 of a whole node while a PushLogs stream is open: every entry it
/// acknowledged ends up in MariaDB, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_push_keeps_every_acknowledged_entry() {
    let (cfg, scratch) = common::test_config(Backend::Distributed);
    let node = Proc::spawn(&serve_args(&cfg, "all"));
    let svc = unique("kill9");
    let mut c = LogServiceClient::connect(node.url())
        .await
        .expect("connect");
    let mut acked = Vec::new();
    for k in 0..10 {
        push_n(&mut c, &svc, k * 100, 100).await;
        acked.extend((k * 100..k * 100 + 100).map(|i| format!("m{i}")));
    }
    // A stream left open with unacknowledged entries in it.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut c2 = c.clone();
    let open = tokio::spawn(async move {
        c2.push_logs(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    for k in 10..13 {
        let entries = (k * 100..k * 100 + 100)
            .map(|i| entry(&svc, Level::Info, &format!("m{i}"), &[]))
            .collect();
        tx.send(PushLogsRequest { entries }).await.expect("send");
    }
    drop(node); // SIGKILL
    assert!(
        open.await.expect("join").is_err(),
        "the open stream was never acknowledged"
    );

    let killed = Instant::now();
    let server = TestServer::launch(Backend::Distributed, cfg, scratch).await;
    // At least the acknowledged ones; the unacknowledged stream may or may
    // not have reached the broker, but nothing is stored twice.
    let stored = wait_for_acked(&server.http(), &svc, &acked, DEADLINE).await;
    Row {
        fault: "kill -9 of a node with a PushLogs stream open, then a restart".into(),
        mode: "distributed".into(),
        pushed: 1_300,
        acknowledged: acked.len() as u64,
        recovery: Some(killed.elapsed()),
        detail: "300 entries in the open stream were never acknowledged; they may be stored, once"
            .into(),
        test: "distributed::kill_9_during_push_keeps_every_acknowledged_entry".into(),
        ..Row::default()
    }
    .tallied(
        acked.iter().map(String::as_str),
        stored.iter().map(String::as_str),
    )
    .record_and_check();
}

/// Waits until the group has given each of `writers` some of the topic's
/// partitions and all of them are taken.
async fn wait_shared(ingest: &TestServer, writers: &[&Proc]) {
    let want = ingest.cfg.queue.kafka.kafka_partitions as u64;
    within_deadline(Duration::from_millis(200), async || {
        let mut counts = Vec::new();
        for w in writers {
            counts.push(common::metric_at(&w.url(), "taillight_writer_partitions").await);
        }
        if counts.iter().all(|&n| n > 0) && counts.iter().sum::<u64>() == want {
            Ok(())
        } else {
            Err(format!(
                "the group never shared the {want} partitions: {counts:?}"
            ))
        }
    })
    .await;
}

/// A writer that joins while entries flow takes some partitions over from
/// the other mid-stream: every entry is still stored exactly once, in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_joining_mid_stream_loses_nothing() {
    let ingest = TestServer::start_with(Backend::Distributed, |c| c.role = Role::Ingest).await;
    let w1 = Proc::spawn(&serve_args(&ingest.cfg, "writer"));
    wait_shared(&ingest, &[&w1]).await;
    let prefix = unique("join");
    let mut c = ingest.client().await;
    let services: Vec<String> = (0..12).map(|i| format!("{prefix}-{i}")).collect();
    let mut w2 = None;
    for (k, svc) in services.iter().enumerate() {
        push_n(&mut c, svc, k * 100, 100).await;
        if k == 3 {
            w2 = Some(Proc::spawn(&serve_args(&ingest.cfg, "writer")));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let f = LogFilter {
        services,
        ..Default::default()
    };
    let rows = wait_stored(&mut c, &f, 1200).await;
    assert_exactly_once(&rows, (0..1200).map(|i| format!("m{i}")));
    let w2 = w2.expect("second writer");
    wait_shared(&ingest, &[&w1, &w2]).await;
}

/// Two writer processes in one consumer group split the partitions and
/// together store every entry exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_share_the_work() {
    let ingest = TestServer::start_with(Backend::Distributed, |c| c.role = Role::Ingest).await;
    // One after the other, as a rolling start would: with tansu 0.6.0, two
    // members joining at the same instant sometimes left a partition with
    // no owner for over a minute (4 of about 50 runs of this file on a
    // busy machine), which `taillight_writer_partitions` shows.
    let w1 = Proc::spawn(&serve_args(&ingest.cfg, "writer"));
    wait_shared(&ingest, &[&w1]).await;
    let w2 = Proc::spawn(&serve_args(&ingest.cfg, "writer"));
    wait_shared(&ingest, &[&w1, &w2]).await;
    let prefix = unique("share");
    let mut c = ingest.client().await;
    let services: Vec<String> = (0..12).map(|i| format!("{prefix}-{i}")).collect();
    for (k, svc) in services.iter().enumerate() {
        push_n(&mut c, svc, k * 100, 100).await;
    }
    let f = LogFilter {
        services: services.clone(),
        ..Default::default()
    };
    let rows = wait_stored(&mut c, &f, 1200).await;
    assert_exactly_once(&rows, (0..1200).map(|i| format!("m{i}")));
    let (s1, s2) = (
        common::metric_at(&w1.url(), "taillight_entries_stored_total").await,
        common::metric_at(&w2.url(), "taillight_entries_stored_total").await,
    );
    assert_eq!(s1 + s2, 1200);
    assert!(s1 > 0 && s2 > 0, "both writers stored some: {s1} and {s2}");
}

/// A member of the writers' group that holds partitions and never commits
/// (a writer hung on its store, still in the group): the healthy writer
/// reports its partitions stalled (it does not rejoin: they have an owner),
/// and when the member leaves, takes them over and stores every entry once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_a_stuck_member_holds_are_reported_then_taken_over() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

    let ingest = TestServer::start_with(Backend::Distributed, |c| c.role = Role::Ingest).await;
    let w1 = Proc::spawn(&serve_args(&ingest.cfg, "writer"));
    wait_shared(&ingest, &[&w1]).await;
    let k = &ingest.cfg.queue.kafka;
    let stuck: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            k.kafka_brokers.as_deref().expect("brokers"),
        )
        .set("group.id", &k.kafka_group)
        .set("enable.auto.commit", "false")
        // Longer than the writers': a busy machine must not make the group
        // drop this member before it has stalled.
        .set("session.timeout.ms", "15000")
        .create()
        .expect("raw consumer");
    stuck.subscribe(&[&k.kafka_topic]).expect("subscribe");
    // Polled to stay in the group, never committing what it reads.
    let (stop, owned) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let member = std::thread::spawn({
        let (stop, owned) = (stop.clone(), owned.clone());
        move || {
            while !stop.load(Relaxed) {
                let _ = stuck.poll(Duration::from_millis(50));
                owned.store(stuck.assignment().map_or(0, |a| a.count()), Relaxed);
            }
        }
    });
    // Until the writer has given up what the raw member took, it may still
    // read those partitions (the member learns of its assignment first), and
    // entries pushed then are stored, not stalled.
    let partitions = ingest.cfg.queue.kafka.kafka_partitions as u64;
    within_deadline(Duration::from_millis(100), async || {
        let raw = owned.load(Relaxed) as u64;
        let writer = common::metric_at(&w1.url(), "taillight_writer_partitions").await;
        if raw > 0 && raw + writer == partitions {
            Ok(())
        } else {
            Err(format!(
                "the raw member and the writer never split the {partitions} partitions: {raw} and {writer}"
            ))
        }
    })
    .await;
    let prefix = unique("stuck");
    let mut c = ingest.client().await;
    let services: Vec<String> = (0..12).map(|i| format!("{prefix}-{i}")).collect();
    for (k, svc) in services.iter().enumerate() {
        push_n(&mut c, svc, k * 10, 10).await;
    }
    within_deadline(
        Duration::from_millis(500),
        async || match common::metric_at(&w1.url(), "taillight_writer_stalled_partitions").await {
            0 => Err(format!(
                "the writer never reported a stalled partition (the raw member holds {}, the writer {})",
                owned.load(Relaxed),
                common::metric_at(&w1.url(), "taillight_writer_partitions").await
            )),
            _ => Ok(()),
        },
    )
    .await;
    stop.store(true, Relaxed);
    member.join().expect("raw member");
    let f = LogFilter {
        services,
        ..Default::default()
    };
    let rows = wait_stored(&mut c, &f, 120).await;
    assert_exactly_once(&rows, (0..120).map(|i| format!("m{i}")));
    within_deadline(
        Duration::from_millis(500),
        async || match common::metric_at(&w1.url(), "taillight_writer_stalled_partitions").await {
            0 => Ok(()),
            n => Err(format!("{n} partitions still reported stalled")),
        },
    )
    .await;
}

/// With the broker gone a push fails fast with a clear error; when it is
/// back, pushes succeed again without restarting taillight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_fails_fast_and_recovers() {
    let port = free_port();
    let db = tempfile::tempdir().expect("tmp");
    let broker = Tansu::start_sqlite(port, db.path());
    let server = TestServer::start_with(Backend::Distributed, |c| {
        c.queue.kafka.kafka_brokers = Some(broker.brokers());
        c.intake.push_timeout = Duration::from_secs(5);
    })
    .await;
    let svc = unique("outage");
    let mut c = server.client().await;
    push_n(&mut c, &svc, 0, 10).await;
    broker.kill();

    let started = Instant::now();
    let err = c
        .push_log(PushLogRequest {
            entry: Some(entry(&svc, Level::Info, "during outage", &[])),
        })
        .await
        .expect_err("no broker, no acknowledgement");
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    // Once the outage is known, pushes are refused at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let err = c
        .push_log(PushLogRequest {
            entry: Some(entry(&svc, Level::Info, "still out", &[])),
        })
        .await
        .expect_err("still no broker");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("kafka"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));

    let _broker = Tansu::start_sqlite(port, db.path());
    within_deadline(Duration::from_millis(250), async || {
        c.push_log(PushLogRequest {
            entry: Some(entry(&svc, Level::Info, "after outage", &[])),
        })
        .await
        .map_err(|e| format!("pushes never recovered: {e:?}"))
    })
    .await;
    let rows = wait_stored(&mut c, &filter(&svc), 11).await;
    assert_eq!(
        rows.last().map(|r| r.message.as_str()),
        Some("after outage")
    );
}

/// Redis down: pushes and storage go on, tails say they are degraded, and
/// when Redis returns they backfill what they missed, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_keeps_ingesting_and_tails_recover() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let server = TestServer::start_with(Backend::Distributed, |c| {
        c.bus.redis_url = Some(url);
    })
    .await;
    let svc = unique("redisout");
    let mut c = server.client().await;
    let mut tail = open_tail(&mut c, &svc).await;
    let mut messages = Vec::new();
    let mut states = Vec::new();
    let mut read_until = async |stage: &str,
                                tail: &mut tonic::Streaming<_>,
                                stop: &dyn Fn(&[String], &[i32]) -> bool| {
        tokio::time::timeout(DEADLINE, async {
            while !stop(&messages, &states) {
                let msg: taillight::proto::TailResponse =
                    tail.message().await.expect("tail").expect("open");
                match msg.event {
                    Some(Event::Records(r)) => {
                        messages.extend(r.records.into_iter().map(|r| r.message))
                    }
                    Some(Event::Status(s)) => states.push(s.state),
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("tail stuck at {stage}: {messages:?} {states:?}"));
    };
    read_until("live", &mut tail, &|_, s| s.contains(&(State::Live as i32))).await;
    push_n(&mut c, &svc, 0, 10).await;
    read_until("first ten", &mut tail, &|m, _| m.len() >= 10).await;

    redis.kill();
    read_until("degraded", &mut tail, &|_, s| {
        s.last() == Some(&(State::Degraded as i32))
    })
    .await;
    // Ingestion and storage carry on without Redis.
    push_n(&mut c, &svc, 10, 10).await;
    wait_stored(&mut c, &filter(&svc), 20).await;

    redis.restart();
    read_until("recovered", &mut tail, &|m, s| {
        s.last() == Some(&(State::Live as i32)) && m.len() >= 20
    })
    .await;
    push_n(&mut c, &svc, 20, 5).await;
    read_until("after", &mut tail, &|m, _| m.len() >= 25).await;
    let want: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    Row {
        fault: "Redis killed, then back, with a gRPC tail open".into(),
        mode: "distributed".into(),
        pushed: 25,
        acknowledged: 25,
        detail: "found = records the tail delivered: DEGRADED, backfilled, LIVE, in order".into(),
        test: "distributed::redis_outage_keeps_ingesting_and_tails_recover".into(),
        ..Row::default()
    }
    .tallied(
        want.iter().map(String::as_str),
        messages.iter().map(String::as_str),
    )
    .record();
    assert_eq!(
        messages, want,
        "every record once, in order, across the outage"
    );
}
