//! The file archive against real servers: contents equal to the store in
//! both modes, periods closed and compressed, kill -9 in the middle of a
//! push burst, hostile service names, retention held back, and in the
//! Kafka mode one archive for two nodes with a takeover. Real SQLite,
//! tansu, MariaDB and Redis; child processes where a crash is the point.

mod common;
#[path = "archive/support.rs"]
mod support;

use std::time::Duration;

use common::{Backend, TestServer, entry, query_all, unique};
use support::{
    Proc, archive_dir, archived_ids, assert_covers, assert_exact, eventually, read_archive,
    serve_args,
};
use taillight::config::{Role, ServeArgs};
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{Level, LogFilter, LogRecord, PushLogsRequest};
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(60);

/// An archive in the test's scratch directory, closing every `period`.
fn with_archive(c: &mut ServeArgs, period: Duration) {
    c.sinks.archive.archive_dir = Some(c.store.sqlite.data_dir.join("archive"));
    c.sinks.archive.archive_period = period;
}

async fn push(c: &mut LogServiceClient<Channel>, services: &[&str], from: usize, n: usize) {
    let entries = (from..from + n)
        .map(|i| {
            entry(
                services[i % services.len()],
                Level::Info,
                &format!("m{i}"),
                &["t"],
            )
        })
        .collect();
    let r = c
        .push_logs(futures::stream::iter([PushLogsRequest { entries }]))
        .await
        .expect("push");
    assert_eq!(r.into_inner().accepted as usize, n);
}

async fn all_stored(c: &mut LogServiceClient<Channel>) -> Vec<LogRecord> {
    query_all(c, LogFilter::default()).await
}

/// Waits until the archive under `cfg` holds exactly the stored records.
/// The archive is read before the store, so an entry stored in between
/// shows as not yet archived (and is waited for), never as unknown.
async fn wait_exact(cfg: &ServeArgs, c: &mut LogServiceClient<Channel>, want: usize) {
    let root = archive_dir(cfg);
    let (archive, store) = eventually(DEADLINE, async || {
        let archive = read_archive(&root);
        let store = all_stored(c).await;
        let archived = archived_ids(&archive).len();
        match store.len() == want && archived == want {
            true => Ok((archive, store)),
            false => Err(format!(
                "{} stored, {archived} archived, want {want}",
                store.len()
            )),
        }
    })
    .await;
    assert_exact(&archive, &store);
}

/// Every stored entry is in the archive once, in id order per file, as the
/// gateway shows it, and `/metrics` says the archive has caught up.
async fn archive_holds_every_stored_entry_once(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| with_archive(c, Duration::from_secs(86_400))).await;
    let (a, b) = (unique("arch-a"), unique("arch-b"));
    let mut c = server.client().await;
    for k in 0..5 {
        push(&mut c, &[&a, &b], k * 100, 100).await;
    }
    wait_exact(&server.cfg, &mut c, 500).await;
    eventually(DEADLINE, async || {
        match server.metric("taillight_archive_lag").await {
            0 => Ok(()),
            n => Err(format!("lag {n}")),
        }
    })
    .await;
    assert_eq!(server.metric("taillight_archive_holder").await, 1);
    assert!(server.metric("taillight_archive_written_total").await >= 500);
    // Nothing but open files: the day is not over.
    assert!(
        read_archive(&archive_dir(&server.cfg))
            .keys()
            .all(|k| k.ends_with(".ndjson"))
    );
    // A restart goes on from the checkpoint without writing anything twice.
    let server = server.restart().await;
    let mut c = server.client().await;
    push(&mut c, &[&a, &b], 500, 100).await;
    wait_exact(&server.cfg, &mut c, 600).await;
}

/// With a 2 s period the files are closed: compressed, readable, and
/// together still exactly the store.
async fn closed_periods_are_compressed_and_readable(backend: Backend) {
    let server = TestServer::start_with(backend, |c| with_archive(c, Duration::from_secs(2))).await;
    let svc = unique("roll");
    let mut c = server.client().await;
    for k in 0..4 {
        push(&mut c, &[&svc], k * 50, 50).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let root = archive_dir(&server.cfg);
    eventually(DEADLINE, async || {
        let archive = read_archive(&root);
        let closed: usize = archive
            .iter()
            .filter(|(k, _)| k.ends_with(".zst"))
            .map(|(_, v)| v.len())
            .sum();
        match closed {
            200 => Ok(()),
            n => Err(format!("{n} of 200 entries in closed files")),
        }
    })
    .await;
    let archive = read_archive(&root);
    assert!(
        archive.keys().filter(|k| k.ends_with(".zst")).count() >= 2,
        "{:?}",
        archive.keys()
    );
    assert_exact(&archive, &all_stored(&mut c).await);
    assert!(server.metric("taillight_archive_files_closed_total").await >= 2);
    // No leftovers of the closes.
    let dir = root.join(taillight::sinks::archive::names::dir_name(&svc));
    for f in std::fs::read_dir(dir).expect("dir") {
        let name = f.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".ndjson.zst") || name.ends_with(".ndjson"),
            "{name}"
        );
        assert!(!name.contains(':'), "{name}");
    }
}

/// Service names that are paths elsewhere stay one directory each inside
/// the archive, and read back as the names they were.
async fn hostile_service_names_stay_inside_the_archive(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| with_archive(c, Duration::from_secs(86_400))).await;
    let tag = unique("h").replace('-', "_");
    let names = [
        "..".to_string(),
        "a/b".to_string(),
        ".x".to_string(),
        "a:b".to_string(),
        format!("../../{tag}"),
        format!("{tag}/../.."),
    ];
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut c = server.client().await;
    push(&mut c, &refs, 0, 60).await;
    wait_exact(&server.cfg, &mut c, 60).await;
    let root = archive_dir(&server.cfg);
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .expect("archive")
        .map(|d| d.expect("entry"))
        .filter(|d| d.file_type().expect("type").is_dir())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut want: Vec<String> = names
        .iter()
        .map(|n| taillight::sinks::archive::names::dir_name(n))
        .collect();
    want.sort();
    assert_eq!(dirs, want);
    for d in &dirs {
        assert!(
            !d.starts_with('.') && !d.contains('/') && !d.contains(':'),
            "{d}"
        );
        let back = taillight::sinks::archive::names::service_of(d).expect("decodes");
        assert!(names.contains(&back), "{d} decodes to {back:?}");
    }
    // Nothing was written beside the archive or above it.
    let parent = root.parent().expect("parent");
    for e in std::fs::read_dir(parent).expect("scratch") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(!name.contains(&tag), "{name} written outside the archive");
    }
}

/// Retention deletes what is in closed files and keeps what the open period
/// holds, however old.
async fn retention_keeps_what_the_archive_has_not_closed(backend: Backend) {
    // Closes every 2 s: the first entries end up in a closed file.
    let server = TestServer::start_with(backend, |c| with_archive(c, Duration::from_secs(2))).await;
    let svc = unique("ret");
    let old =
        taillight::model::time::from_micros(taillight::model::time::now_micros() - 86_400_000_000);
    let mut c = server.client().await;
    let push_old = async |c: &mut LogServiceClient<Channel>, from: usize| {
        let entries = (from..from + 20)
            .map(|i| {
                let mut e = entry(&svc, Level::Info, &format!("m{i}"), &[]);
                e.time = Some(old);
                e
            })
            .collect();
        c.push_logs(futures::stream::iter([PushLogsRequest { entries }]))
            .await
            .expect("push");
    };
    push_old(&mut c, 0).await;
    let root = archive_dir(&server.cfg);
    // Closed means compressed and the position moved (which the counter
    // follows), not only compressed.
    eventually(DEADLINE, async || {
        let closed = read_archive(&root)
            .iter()
            .filter(|(k, _)| k.ends_with(".zst"))
            .map(|(_, v)| v.len())
            .sum::<usize>();
        let moved = server.metric("taillight_archive_files_closed_total").await;
        if closed == 20 && moved >= 1 {
            Ok(())
        } else {
            Err(format!("{closed} of 20 closed"))
        }
    })
    .await;
    // The same position with a one-day period: what comes now stays open.
    let (mut cfg, scratch) = server.stop().await;
    cfg.sinks.archive.archive_period = Duration::from_secs(86_400);
    let server = TestServer::launch(backend, cfg.clone(), scratch).await;
    let mut c = server.client().await;
    push_old(&mut c, 20).await;
    server.settle().await;
    eventually(DEADLINE, async || {
        match archived_ids(&read_archive(&root)).len() {
            40 => Ok(()),
            n => Err(format!("{n} of 40 archived")),
        }
    })
    .await;
    let (mut cfg, scratch) = server.stop().await;
    cfg.retention.retention = Some(Duration::from_secs(3600));
    let server = TestServer::launch(backend, cfg, scratch).await;
    let mut c = server.client().await;
    let filter = LogFilter {
        services: vec![svc.clone()],
        ..Default::default()
    };
    let kept = eventually(DEADLINE, async || {
        let rows = query_all(&mut c, filter.clone()).await;
        match rows.len() {
            20 => Ok(rows),
            n => Err(format!(
                "{n} rows left; retention should leave the 20 unclosed"
            )),
        }
    })
    .await;
    let messages: Vec<String> = kept.iter().map(|r| r.message.clone()).collect();
    let want: Vec<String> = (20..40).map(|i| format!("m{i}")).collect();
    assert_eq!(messages, want);
}

/// kill -9 of a node in the middle of a push burst, with periods closing
/// every 2 s: after a restart the archive holds every stored entry once,
/// with no torn line.
async fn kill_9_during_a_push_burst_leaves_the_archive_exact(backend: Backend) {
    let (mut cfg, _scratch) = common::test_config(backend);
    with_archive(&mut cfg, Duration::from_secs(2));
    let args = serve_args(&cfg);
    let svcs = [unique("k9a"), unique("k9b"), unique("k9c")];
    let refs: Vec<&str> = svcs.iter().map(String::as_str).collect();
    for round in 0..2 {
        let node = Proc::spawn(&args);
        let c = LogServiceClient::connect(node.url())
            .await
            .expect("connect");
        let burst = {
            let refs: Vec<String> = svcs.to_vec();
            let mut c = c.clone();
            tokio::spawn(async move {
                let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
                for k in 0.. {
                    let entries = (0..200)
                        .map(|i| entry(refs[i % 3], Level::Info, &format!("r{round}-{k}-{i}"), &[]))
                        .collect();
                    if c.push_logs(futures::stream::iter([PushLogsRequest { entries }]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        // Killed once a period has closed and the burst is well under
        // way, however slow the machine.
        let since = std::time::Instant::now();
        let before = all_stored(&mut c.clone()).await.len();
        let wait = Duration::from_millis(2500 + 700 * round);
        eventually(DEADLINE, async || {
            let stored = all_stored(&mut c.clone()).await.len();
            match since.elapsed() >= wait && stored >= before + 600 {
                true => Ok(()),
                false => Err(format!("only {stored} stored in round {round}")),
            }
        })
        .await;
        drop(node); // SIGKILL, mid-burst
        let _ = burst.await;
    }
    let node = Proc::spawn(&args);
    let mut c = LogServiceClient::connect(node.url())
        .await
        .expect("connect");
    push(&mut c, &refs, 0, 30).await;
    let root = archive_dir(&cfg);
    let (archive, store) = eventually(DEADLINE, async || {
        let archive = read_archive(&root);
        let store = all_stored(&mut c).await;
        let accepted = common::metric_at(&node.url(), "taillight_entries_accepted_total").await;
        let lag = common::try_metric_at(&node.url(), "taillight_archive_lag")
            .await
            .unwrap_or(u64::MAX);
        let archived = archived_ids(&archive).len();
        match (store.len() == archived, lag, accepted) {
            (true, 0, 30..) => Ok((archive, store)),
            _ => Err(format!(
                "{} stored, {archived} archived, lag {lag}",
                store.len()
            )),
        }
    })
    .await;
    assert!(store.len() > 1000, "the bursts stored only {}", store.len());
    assert_exact(&archive, &store);
    // A graceful stop flushes the open files: torn-free, and still every
    // entry once (a late one from the queue may have joined since).
    node.stop();
    assert_covers(&read_archive(&root), &store);
}

backend_tests!(
    archive_holds_every_stored_entry_once,
    closed_periods_are_compressed_and_readable,
    hostile_service_names_stay_inside_the_archive,
    retention_keeps_what_the_archive_has_not_closed,
    kill_9_during_a_push_burst_leaves_the_archive_exact,
);

/// Two nodes of one cluster write one archive: one holds the lease; when it
/// is killed, the other takes over from the position in the store and the
/// closed files hold every entry once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_write_one_archive_and_the_survivor_takes_over() {
    let (mut cfg, _scratch) = common::test_config(Backend::Distributed);
    // Both nodes on one directory, as on shared storage.
    with_archive(&mut cfg, Duration::from_secs(2));
    // The archive nodes take entries in and follow the store; a writer
    // without an archive stores them, so killing an archive node leaves
    // the consumer group alone.
    let mut writer_cfg = cfg.clone();
    writer_cfg.role = Role::Writer;
    writer_cfg.sinks.archive.archive_dir = None;
    let _writer = Proc::spawn(&serve_args(&writer_cfg));
    cfg.role = Role::Ingest;
    let args = serve_args(&cfg);
    let mut nodes = vec![Proc::spawn(&args), Proc::spawn(&args)];
    let holder = eventually(DEADLINE, async || {
        let mut held = Vec::new();
        for n in &nodes {
            held.push(common::try_metric_at(&n.url(), "taillight_archive_holder").await);
        }
        match held[..] {
            [Some(1), Some(0)] => Ok(0),
            [Some(0), Some(1)] => Ok(1),
            _ => Err(format!("holders: {held:?}")),
        }
    })
    .await;
    let svcs = [unique("two-a"), unique("two-b")];
    let refs: Vec<&str> = svcs.iter().map(String::as_str).collect();
    let survivor_url = nodes[1 - holder].url();
    let mut c = LogServiceClient::connect(survivor_url.clone())
        .await
        .expect("connect");
    for k in 0..6 {
        push(&mut c, &refs, k * 100, 100).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    drop(nodes.remove(holder)); // SIGKILL of the holder
    for k in 6..12 {
        push(&mut c, &refs, k * 100, 100).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    eventually(DEADLINE, async || {
        match common::try_metric_at(&survivor_url, "taillight_archive_holder").await {
            Some(1) => Ok(()),
            _ => Err("the survivor never took the archive over".to_string()),
        }
    })
    .await;
    let root = archive_dir(&cfg);
    let (archive, store) = eventually(DEADLINE, async || {
        let archive = read_archive(&root);
        let store = all_stored(&mut c).await;
        let closed = archive
            .iter()
            .filter(|(k, _)| k.ends_with(".zst"))
            .map(|(_, v)| v.len())
            .sum::<usize>();
        match (store.len(), closed) {
            (1200, 1200) => Ok((archive, store)),
            (s, n) => Err(format!("{s} stored, {n} in closed files")),
        }
    })
    .await;
    assert_exact(&archive, &store);
}

/// In the Kafka mode the archive needs Redis for its lease: refused at
/// start with the flags named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mode_without_redis_is_refused() {
    let (mut cfg, _scratch) = common::test_config(Backend::Distributed);
    with_archive(&mut cfg, Duration::from_secs(60));
    cfg.bus.redis_url = None;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let err = taillight::server::run(listener, cfg, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("--archive-dir") && msg.contains("--redis-url"),
        "{msg}"
    );
}

/// Several writers publish their batches independently, so a later batch
/// can reach a node before an earlier one: the fan-out puts them back in
/// order, so a follower of every record (the archive) and a filtered one (a
/// tail) both get every record of theirs once, in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_published_early_does_not_hide_the_ones_before_it() {
    use futures::StreamExt;
    use std::sync::Arc;
    use taillight::bus::BusEvent;
    use taillight::model::{Filter, QueuedEntry};
    use taillight::pipeline::follow::{Followed, OnSkip};
    use taillight::pipeline::hub::{Hub, HubArgs};

    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = ServeArgs::with_data_dir(dir.path());
    cfg.store.sqlite.sqlite_synchronous = taillight::storage::sqlite::Synchronous::Normal;
    let store = cfg.store.open().await.expect("store");
    let (events, feed) = futures::channel::mpsc::unbounded::<BusEvent>();
    let stop = tokio_util::sync::CancellationToken::new();
    let registry = taillight::metrics::Registry::default();
    let (hub, fan_out) = Hub::start(
        feed.boxed(),
        store.clone(),
        &HubArgs {
            tail_buffer: 16,
            ..cfg.hub.clone()
        },
        &registry,
        stop.clone(),
    )
    .await;
    tokio::spawn(fan_out);
    let mut followed = Box::pin(hub.follow(0, Filter::default(), OnSkip::Repair, stop.clone()));
    let odd = Filter {
        text: "odd".into(),
        ..Filter::default()
    };
    let mut filtered = Box::pin(hub.follow(0, odd, OnSkip::Report, stop.clone()));
    // Live (an empty store to catch up from).
    for f in [&mut followed, &mut filtered] {
        match f.next().await.expect("open").expect("follow") {
            Followed::Status(_) => {}
            other => panic!("before going live: {other:?}"),
        }
    }
    let batch = |from: usize| {
        (from..from + 10)
            .map(|i| QueuedEntry {
                entry: entry(
                    "early",
                    Level::Info,
                    &format!("m{i} {}", if i % 2 == 1 { "odd" } else { "even" }),
                    &[],
                ),
                received_us: taillight::model::time::now_micros(),
                source: None,
                dedup_key: None,
            })
            .collect::<Vec<_>>()
    };
    let a = store.insert(batch(0)).await.expect("a");
    let b = store.insert(batch(10)).await.expect("b");
    // The second batch is heard first.
    events
        .unbounded_send(BusEvent::Records(Arc::new(b)))
        .expect("send");
    events
        .unbounded_send(BusEvent::Records(Arc::new(a)))
        .expect("send");
    let mut ids = Vec::new();
    while ids.len() < 20 {
        let item = tokio::time::timeout(Duration::from_secs(10), followed.next())
            .await
            .unwrap_or_else(|_| panic!("only {ids:?} arrived"));
        if let Followed::Records(rs) = item.expect("open").expect("follow") {
            ids.extend(rs.iter().map(|r| r.id));
        }
    }
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
    let mut odd_ids = Vec::new();
    while odd_ids.len() < 10 {
        let item = tokio::time::timeout(Duration::from_secs(10), filtered.next())
            .await
            .unwrap_or_else(|_| panic!("only {odd_ids:?} arrived"));
        if let Followed::Records(rs) = item.expect("open").expect("follow") {
            odd_ids.extend(rs.iter().map(|r| r.id));
        }
    }
    assert_eq!(
        odd_ids,
        (1..=20).step_by(2).map(|i| i + 1).collect::<Vec<u64>>()
    );
    stop.cancel();
}
