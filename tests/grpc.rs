//! The gRPC API, every method, against a real server.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::reliability::Row;
use common::{Backend, TestServer, entry, query_all, unique};
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{
    Level, ListServicesRequest, ListTagsRequest, LogFilter, LogRecord, Order, PushLogRequest,
    PushLogsRequest, QueryLogsRequest, TailRequest, TailResponse, stream_status::State,
    tail_response::Event,
};
use tonic::transport::Channel;
use tonic_types::StatusExt;

backend_tests!(
    push_log_then_query,
    push_logs_counts_every_entry,
    push_logs_invalid_entry_mid_stream,
    validation_names_field_and_limit,
    query_paging_is_stable_at_page_edges,
    query_filters_time_range_and_page_numbers,
    list_services_and_tags,
    tail_delivers_live_records,
    tail_resume_has_no_gap_and_no_duplicate,
    tail_last_k_then_live,
    tail_filters_match_query,
    tail_heartbeat_on_quiet_stream,
    tail_refuses_a_bad_request_naming_the_field,
    slow_subscriber_gets_skipped_message_and_others_are_unaffected,
    streams_that_never_read_are_bounded_in_bytes,
    tail_ends_on_shutdown,
    restart_keeps_every_acknowledged_entry,
);

const TIMEOUT: Duration = Duration::from_secs(20);

async fn push_batch(
    client: &mut LogServiceClient<Channel>,
    entries: Vec<taillight::proto::LogEntry>,
) -> u64 {
    let req = PushLogsRequest { entries };
    client
        .push_logs(futures::stream::iter(vec![req]))
        .await
        .expect("push_logs")
        .into_inner()
        .accepted
}

fn service_filter(service: &str) -> LogFilter {
    LogFilter {
        services: vec![service.to_string()],
        ..Default::default()
    }
}

/// Reads tail events until `done` says so, failing after TIMEOUT.
async fn read_until(
    stream: &mut tonic::Streaming<TailResponse>,
    mut done: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    let result = tokio::time::timeout(TIMEOUT, async {
        while let Some(msg) = stream.message().await.expect("tail stream") {
            if let Some(ev) = msg.event {
                let stop = done(&ev);
                events.push(ev);
                if stop {
                    return;
                }
            }
        }
        panic!("tail stream ended early");
    })
    .await;
    assert!(
        result.is_ok(),
        "timed out after {} events; last: {:?}",
        events.len(),
        events.last().map(summary)
    );
    events
}

/// A short description of an event for failure messages.
fn summary(e: &Event) -> String {
    match e {
        Event::Records(r) => format!(
            "{} records, ids {:?}..{:?}",
            r.records.len(),
            r.records.first().map(|r| r.id),
            r.records.last().map(|r| r.id)
        ),
        other => format!("{other:?}"),
    }
}

fn records(events: &[Event]) -> Vec<LogRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Records(r) => Some(r.records.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn is_live(e: &Event) -> bool {
    matches!(e, Event::Status(s) if s.state == State::Live as i32)
}

/// Opens a tail and reads it until it reports live; returns the stream and
/// the backfilled events.
async fn live_tail(
    c: &mut LogServiceClient<Channel>,
    req: TailRequest,
) -> (tonic::Streaming<TailResponse>, Vec<Event>) {
    let mut stream = c.tail(req).await.expect("tail").into_inner();
    let events = read_until(&mut stream, is_live).await;
    (stream, events)
}

async fn push_log_then_query(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("unary");
    let mut e = entry(&svc, Level::Warn, "disk almost full", &["disk", "ops"]);
    e.attributes.insert("host".into(), "db-1".into());
    c.push_log(PushLogRequest { entry: Some(e) })
        .await
        .expect("push");

    server.settle().await;
    let got = query_all(&mut c, service_filter(&svc)).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(r.id > 0);
    assert_eq!(r.level, Level::Warn as i32);
    assert_eq!(r.message, "disk almost full");
    assert_eq!(r.tags, ["disk", "ops"]);
    assert_eq!(r.attributes.get("host").map(String::as_str), Some("db-1"));
    // No client time: the receive time is used for both.
    assert_eq!(r.time, r.received_time);
    assert!(r.time.is_some());

    // Level left unspecified defaults to INFO.
    c.push_log(PushLogRequest {
        entry: Some(entry(&svc, Level::Unspecified, "plain", &[])),
    })
    .await
    .expect("push");
    server.settle().await;
    let got = query_all(&mut c, service_filter(&svc)).await;
    assert_eq!(got[1].level, Level::Info as i32);
    assert!(got[1].id > got[0].id);
}

async fn push_logs_counts_every_entry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("stream");
    let msgs: Vec<PushLogsRequest> = (0..20)
        .map(|m| PushLogsRequest {
            entries: (0..50)
                .map(|i| entry(&svc, Level::Info, &format!("m{m}-{i}"), &[]))
                .collect(),
        })
        .collect();
    let accepted = c
        .push_logs(futures::stream::iter(msgs))
        .await
        .expect("push_logs")
        .into_inner()
        .accepted;
    assert_eq!(accepted, 1000);
    server.settle().await;
    let got = query_all(&mut c, service_filter(&svc)).await;
    assert_eq!(got.len(), 1000);
    // Stored in the order sent, ids strictly increasing.
    assert_eq!(got[0].message, "m0-0");
    assert_eq!(got[999].message, "m19-49");
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
}

async fn push_logs_invalid_entry_mid_stream(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("midstream");
    let ok = |i: usize| entry(&svc, Level::Info, &format!("e{i}"), &[]);
    let msgs = vec![
        PushLogsRequest {
            entries: (0..5).map(ok).collect(),
        },
        PushLogsRequest {
            entries: vec![
                ok(5),
                ok(6),
                entry("", Level::Info, "no service", &[]),
                ok(8),
            ],
        },
        PushLogsRequest {
            entries: (9..12).map(ok).collect(),
        },
    ];
    let status = c
        .push_logs(futures::stream::iter(msgs))
        .await
        .expect_err("invalid entry must fail the call");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    assert_eq!(details.field_violations[0].field, "entries[7].service");
    assert_eq!(
        status
            .metadata()
            .get("accepted")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    // Exactly the entries before index 7 were stored.
    server.settle().await;
    let got = query_all(&mut c, service_filter(&svc)).await;
    let messages: Vec<_> = got.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["e0", "e1", "e2", "e3", "e4", "e5", "e6"]);
}

/// `status` is INVALID_ARGUMENT, and its first field violation names
/// `field` and says `needle`.
fn assert_violation(status: &tonic::Status, field: &str, needle: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let v = &status
        .get_details_bad_request()
        .expect("details")
        .field_violations[0];
    assert_eq!(v.field, field);
    assert!(
        v.description.contains(needle),
        "{field}: {:?}",
        v.description
    );
}

async fn validation_names_field_and_limit(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.intake.limits.max_message_bytes = 100;
        c.intake.limits.max_tags = 2;
    })
    .await;
    let mut c = server.client().await;
    let svc = unique("valid");
    let cases: Vec<(taillight::proto::LogEntry, &str, &str)> = vec![
        (
            entry("", Level::Info, "x", &[]),
            "entry.service",
            "required",
        ),
        (
            entry("has space", Level::Info, "x", &[]),
            "entry.service",
            "letters",
        ),
        (
            entry(&"s".repeat(200), Level::Info, "x", &[]),
            "entry.service",
            "128",
        ),
        (
            entry(&svc, Level::Info, &"m".repeat(101), &[]),
            "entry.message",
            "100",
        ),
        (
            entry(&svc, Level::Info, "x", &["a", "b", "c"]),
            "entry.tags",
            "2",
        ),
        (
            entry(&svc, Level::Info, "x", &["ok", ""]),
            "entry.tags[1]",
            "empty",
        ),
        (
            taillight::proto::LogEntry {
                level: 99,
                ..entry(&svc, Level::Info, "x", &[])
            },
            "entry.level",
            "99",
        ),
    ];
    for (e, field, needle) in cases {
        let status = c
            .push_log(PushLogRequest { entry: Some(e) })
            .await
            .expect_err("must be rejected");
        assert_violation(&status, field, needle);
    }
    let status = c
        .push_log(PushLogRequest { entry: None })
        .await
        .expect_err("missing entry");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // Nothing was harmed: the server still accepts good entries.
    c.push_log(PushLogRequest {
        entry: Some(entry(&svc, Level::Info, "fine", &[])),
    })
    .await
    .expect("push after errors");
    server.settle().await;
    assert_eq!(query_all(&mut c, service_filter(&svc)).await.len(), 1);
}

async fn query_paging_is_stable_at_page_edges(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("paging");
    // Many entries share one timestamp: paging must still neither repeat
    // nor skip.
    let same_time = prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    };
    let entries = (0..53)
        .map(|i| taillight::proto::LogEntry {
            time: Some(same_time),
            ..entry(&svc, Level::Info, &format!("p{i}"), &[])
        })
        .collect();
    assert_eq!(push_batch(&mut c, entries).await, 53);
    server.settle().await;
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let mut ids = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let resp = c
                .query_logs(QueryLogsRequest {
                    filter: Some(service_filter(&svc)),
                    order: order as i32,
                    page_size: 10,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .expect("query")
                .into_inner();
            pages += 1;
            // Entries pushed while paging must not disturb the walk.
            if pages == 2 {
                c.push_log(PushLogRequest {
                    entry: Some(entry(&unique("other"), Level::Info, "noise", &[])),
                })
                .await
                .expect("push");
            }
            ids.extend(resp.records.iter().map(|r| r.id));
            if resp.next_page_token.is_empty() {
                break;
            }
            token = resp.next_page_token;
        }
        assert_eq!(pages, 6, "{order:?}");
        assert_eq!(ids.len(), 53);
        let set: BTreeSet<_> = ids.iter().collect();
        assert_eq!(set.len(), 53, "no repeats");
        let mut sorted = ids.clone();
        sorted.sort();
        if order == Order::NewestFirst {
            sorted.reverse();
        }
        assert_eq!(ids, sorted, "{order:?} order");
    }
    // A token from one order is refused in the other.
    let resp = c
        .query_logs(QueryLogsRequest {
            filter: Some(service_filter(&svc)),
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("query")
        .into_inner();
    let status = c
        .query_logs(QueryLogsRequest {
            filter: Some(service_filter(&svc)),
            order: Order::OldestFirst as i32,
            page_token: resp.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("wrong order token");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("page_token"));
}

async fn query_filters_time_range_and_page_numbers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("filters");
    let at = |s: i64| prost_types::Timestamp {
        seconds: s,
        nanos: 0,
    };
    let mk = |lvl: Level, msg: &str, tags: &[&str], t: i64| taillight::proto::LogEntry {
        time: Some(at(t)),
        ..entry(&svc, lvl, msg, tags)
    };
    let entries = vec![
        mk(Level::Debug, "cache warm", &["cache"], 1000),
        mk(Level::Info, "user login", &["auth"], 2000),
        mk(Level::Warn, "slow Query 50%", &["db"], 3000),
        mk(Level::Error, "DB timeout", &["db", "auth"], 4000),
        mk(Level::Fatal, "out of memory", &[], 5000),
    ];
    push_batch(&mut c, entries).await;
    server.settle().await;
    let run = |filter: LogFilter, start: Option<i64>, end: Option<i64>| {
        let mut c = c.clone();
        let svc = svc.clone();
        async move {
            let resp = c
                .query_logs(QueryLogsRequest {
                    filter: Some(LogFilter {
                        services: vec![svc],
                        ..filter
                    }),
                    start_time: start.map(at),
                    end_time: end.map(at),
                    order: Order::OldestFirst as i32,
                    ..Default::default()
                })
                .await
                .expect("query")
                .into_inner();
            resp.records
                .into_iter()
                .map(|r| r.message)
                .collect::<Vec<_>>()
        }
    };
    let f = LogFilter::default;
    assert_eq!(
        run(
            LogFilter {
                min_level: Level::Warn as i32,
                ..f()
            },
            None,
            None
        )
        .await,
        ["slow Query 50%", "DB timeout", "out of memory"]
    );
    assert_eq!(
        run(
            LogFilter {
                levels: vec![Level::Debug as i32, Level::Fatal as i32],
                ..f()
            },
            None,
            None
        )
        .await,
        ["cache warm", "out of memory"]
    );
    assert_eq!(
        run(
            LogFilter {
                tags: vec!["auth".into()],
                ..f()
            },
            None,
            None
        )
        .await,
        ["user login", "DB timeout"]
    );
    // Case-insensitive substring; LIKE wildcards are literal.
    assert_eq!(
        run(
            LogFilter {
                text: "query".into(),
                ..f()
            },
            None,
            None
        )
        .await,
        ["slow Query 50%"]
    );
    assert_eq!(
        run(
            LogFilter {
                text: "50%".into(),
                ..f()
            },
            None,
            None
        )
        .await,
        ["slow Query 50%"]
    );
    assert!(
        run(
            LogFilter {
                text: "5_%".into(),
                ..f()
            },
            None,
            None
        )
        .await
        .is_empty()
    );
    // Start inclusive, end exclusive.
    assert_eq!(
        run(f(), Some(2000), Some(4000)).await,
        ["user login", "slow Query 50%"]
    );

    // The seed's page-number mode with a total.
    let resp = c
        .query_logs(QueryLogsRequest {
            filter: Some(service_filter(&svc)),
            page: 2,
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("query")
        .into_inner();
    assert_eq!(resp.total_count, Some(5));
    let msgs: Vec<_> = resp.records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(msgs, ["slow Query 50%", "user login"]);

    let status = c
        .query_logs(QueryLogsRequest {
            page_size: 5000,
            ..Default::default()
        })
        .await
        .expect_err("page_size over the limit");
    assert!(status.message().contains("page_size"));
}

async fn list_services_and_tags(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let (a, b) = (unique("svc-b"), unique("svc-a"));
    push_batch(
        &mut c,
        vec![
            entry(&a, Level::Info, "x", &["zeta", "alpha"]),
            entry(&a, Level::Info, "y", &["alpha", "mid"]),
            entry(&b, Level::Info, "z", &["other"]),
        ],
    )
    .await;
    server.settle().await;
    let services = c
        .list_services(ListServicesRequest {})
        .await
        .expect("services")
        .into_inner()
        .services;
    assert!(services.contains(&a) && services.contains(&b));
    let mut sorted = services.clone();
    sorted.sort();
    assert_eq!(services, sorted);
    let tags = c
        .list_tags(ListTagsRequest { service: a.clone() })
        .await
        .expect("tags")
        .into_inner()
        .tags;
    assert_eq!(tags, ["alpha", "mid", "zeta"]);
    let status = c
        .list_tags(ListTagsRequest {
            service: "bad name".into(),
        })
        .await
        .expect_err("bad service");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

async fn tail_delivers_live_records(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("live");
    let (mut stream, _) = live_tail(
        &mut c,
        TailRequest {
            filter: Some(service_filter(&svc)),
            ..Default::default()
        },
    )
    .await;
    let mut pusher = server.client().await;
    for i in 0..5 {
        pusher
            .push_log(PushLogRequest {
                entry: Some(entry(&svc, Level::Info, &format!("live {i}"), &[])),
            })
            .await
            .expect("push");
    }
    let mut seen = 0;
    let events = read_until(&mut stream, |e| {
        if let Event::Records(r) = e {
            seen += r.records.len();
        }
        seen >= 5
    })
    .await;
    let msgs: Vec<_> = records(&events).into_iter().map(|r| r.message).collect();
    assert_eq!(msgs, ["live 0", "live 1", "live 2", "live 3", "live 4"]);
}

async fn tail_resume_has_no_gap_and_no_duplicate(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("resume");
    let batch = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| entry(&svc, Level::Info, &format!("r{i}"), &[]))
            .collect()
    };
    push_batch(&mut c, batch(0, 100)).await;
    server.settle().await;
    let first = query_all(&mut c, service_filter(&svc)).await;
    let resume_after = first[49].id;
    // Keep pushing while the tail backfills and switches to live.
    let mut pusher = server.client().await;
    let svc2 = svc.clone();
    let writer = tokio::spawn(async move {
        for k in 0..20 {
            let entries = (0..10)
                .map(|i| entry(&svc2, Level::Info, &format!("r{}", 100 + k * 10 + i), &[]))
                .collect();
            push_batch(&mut pusher, entries).await;
        }
    });
    let mut stream = c
        .tail(TailRequest {
            filter: Some(service_filter(&svc)),
            after_id: Some(resume_after),
            ..Default::default()
        })
        .await
        .expect("tail")
        .into_inner();
    let mut got = Vec::new();
    read_until(&mut stream, |e| {
        if let Event::Records(r) = e {
            got.extend(r.records.iter().map(|r| r.message.clone()));
        }
        got.len() >= 250
    })
    .await;
    writer.await.expect("writer");
    let expected: Vec<String> = (50..300).map(|i| format!("r{i}")).collect();
    assert_eq!(got, expected);
}

async fn tail_last_k_then_live(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("lastk");
    push_batch(
        &mut c,
        (0..10)
            .map(|i| entry(&svc, Level::Info, &format!("k{i}"), &[]))
            .collect(),
    )
    .await;
    server.settle().await;
    let (mut stream, events) = live_tail(
        &mut c,
        TailRequest {
            filter: Some(service_filter(&svc)),
            last: 3,
            ..Default::default()
        },
    )
    .await;
    let msgs: Vec<_> = records(&events).into_iter().map(|r| r.message).collect();
    assert_eq!(msgs, ["k7", "k8", "k9"]);
    server
        .client()
        .await
        .push_log(PushLogRequest {
            entry: Some(entry(&svc, Level::Info, "k10", &[])),
        })
        .await
        .expect("push");
    let events = read_until(&mut stream, |e| matches!(e, Event::Records(_))).await;
    assert_eq!(records(&events)[0].message, "k10");
}

async fn tail_filters_match_query(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("tailfilter");
    let filter = LogFilter {
        services: vec![svc.clone()],
        min_level: Level::Warn as i32,
        tags: vec!["db".into()],
        text: "TIMEOUT".into(),
        ..Default::default()
    };
    let (mut stream, _) = live_tail(
        &mut c,
        TailRequest {
            filter: Some(filter.clone()),
            ..Default::default()
        },
    )
    .await;
    let entries = vec![
        entry(&svc, Level::Error, "db timeout", &["db"]),
        entry(&svc, Level::Info, "db timeout", &["db"]),
        entry(&svc, Level::Error, "db timeout", &["cache"]),
        entry(&svc, Level::Error, "all fine", &["db"]),
        entry(&unique("elsewhere"), Level::Error, "db timeout", &["db"]),
        entry(&svc, Level::Fatal, "Timeout again", &["x", "db"]),
    ];
    push_batch(&mut c, entries).await;
    let mut seen = 0;
    let events = read_until(&mut stream, |e| {
        if let Event::Records(r) = e {
            seen += r.records.len();
        }
        seen >= 2
    })
    .await;
    let live: Vec<_> = records(&events).into_iter().map(|r| r.id).collect();
    server.settle().await;
    let history: Vec<_> = query_all(&mut c, filter)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(live.len(), 2);
    assert_eq!(live, history, "live and history agree on the same filter");
}

async fn tail_heartbeat_on_quiet_stream(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let mut stream = c
        .tail(TailRequest {
            filter: Some(service_filter(&unique("quiet"))),
            heartbeat_interval: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("tail")
        .into_inner();
    let started = std::time::Instant::now();
    let events = read_until(&mut stream, |e| matches!(e, Event::Heartbeat(_))).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(events.last(), Some(Event::Heartbeat(h)) if h.time.is_some()));
}

/// Tail is framed by hand (src/api/grpc_tail.rs): its errors must still
/// arrive as a gRPC status with field violations, before any message.
async fn tail_refuses_a_bad_request_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let bad = [
        (
            TailRequest {
                last: 1_000_000,
                ..Default::default()
            },
            "last",
            "10000",
        ),
        (
            TailRequest {
                filter: Some(LogFilter {
                    levels: vec![42],
                    ..Default::default()
                }),
                ..Default::default()
            },
            "filter.levels[0]",
            "42",
        ),
    ];
    for (req, field, needle) in bad {
        let status = c.tail(req).await.expect_err("must be refused");
        assert_violation(&status, field, needle);
    }
    // Nothing was harmed: a good tail on the same connection goes live.
    let mut stream = c
        .tail(TailRequest::default())
        .await
        .expect("tail")
        .into_inner();
    let events = read_until(&mut stream, |e| matches!(e, Event::Status(_))).await;
    assert!(
        matches!(events.last(), Some(Event::Status(s)) if s.state == State::Live as i32),
        "{events:?}"
    );
}

async fn slow_subscriber_gets_skipped_message_and_others_are_unaffected(backend: Backend) {
    // Short queues per stream and small write batches make a stalled reader
    // overflow quickly; a reader that keeps up never comes near the limit.
    let server = TestServer::start_with(backend, |c| {
        c.hub.tail_buffer = 16;
        c.writer.batch_max = Some(50);
    })
    .await;
    let svc = unique("slow");
    let filter = service_filter(&svc);
    let mut slow_client = server.client().await;
    let (mut slow, _) = live_tail(
        &mut slow_client,
        TailRequest {
            filter: Some(filter.clone()),
            ..Default::default()
        },
    )
    .await;
    let mut fast_client = server.client().await;
    let (mut fast, _) = live_tail(
        &mut fast_client,
        TailRequest {
            filter: Some(filter.clone()),
            ..Default::default()
        },
    )
    .await;

    // Big messages fill the HTTP/2 windows of the stalled stream fast.
    let total = 4000usize;
    let body = "x".repeat(2000);
    let mut c = server.client().await;
    let svc2 = svc.clone();
    let pusher = tokio::spawn(async move {
        for k in 0..(total / 100) {
            let entries = (0..100)
                .map(|i| entry(&svc2, Level::Info, &format!("{}-{body}", k * 100 + i), &[]))
                .collect();
            push_batch(&mut c, entries).await;
        }
    });
    // The fast reader keeps up and sees everything while the slow one stalls.
    let mut fast_ids = Vec::new();
    read_until(&mut fast, |e| {
        if let Event::Records(r) = e {
            fast_ids.extend(r.records.iter().map(|r| r.id));
        }
        fast_ids.len() >= total
    })
    .await;
    pusher.await.expect("pusher");
    assert_eq!(fast_ids.len(), total);
    assert!(fast_ids.windows(2).all(|w| w[0] < w[1]));

    // Now the slow reader drains: records plus explicit skips account for
    // every id exactly once.
    let mut seen = BTreeSet::new();
    let mut skipped = 0u64;
    let mut covered = 0u64;
    read_until(&mut slow, |e| {
        match e {
            Event::Records(r) => {
                for rec in &r.records {
                    assert!(seen.insert(rec.id), "duplicate id {}", rec.id);
                }
                covered += r.records.len() as u64;
            }
            Event::Skipped(s) => {
                assert_eq!(
                    s.last_id - s.first_id + 1,
                    s.count,
                    "ids of one service are contiguous"
                );
                for id in s.first_id..=s.last_id {
                    assert!(seen.insert(id), "skipped id {id} was also delivered");
                }
                skipped += s.count;
                covered += s.count;
            }
            _ => {}
        }
        covered >= total as u64
    })
    .await;
    assert!(
        skipped > 0,
        "the stalled subscriber must have been told it skipped"
    );
    assert_eq!(seen.len(), total);
    assert_eq!(seen.iter().copied().collect::<Vec<_>>(), fast_ids);
}

/// A gRPC Tail that never reads and an SSE stream that never reads, while
/// large entries arrive: what the live feed holds for them stays within its
/// byte bounds (it reached gigabytes when queues were counted in batches),
/// and the SSE stream is told what it missed when it reads again.
async fn streams_that_never_read_are_bounded_in_bytes(backend: Backend) {
    const TOTAL: usize = 8 << 20;
    let server = TestServer::start_with(backend, |c| {
        c.hub.tail_buffer_bytes = 1 << 20;
        c.hub.tail_buffer_total_bytes = TOTAL;
        c.writer.batch_max = Some(50);
    })
    .await;
    let svc = unique("stalled");
    let mut grpc = server.client().await;
    let (_stalled_grpc, _) = live_tail(
        &mut grpc,
        TailRequest {
            filter: Some(service_filter(&svc)),
            ..Default::default()
        },
    )
    .await;
    let mut sse = reqwest::get(format!("{}/v1/tail?service={svc}", server.http()))
        .await
        .expect("sse");
    let mut c = server.client().await;
    let body = "x".repeat(20_000);
    let mut most = 0;
    // 40 MB of entries, 2 MB a push.
    for k in 0..20 {
        let entries = (0..100)
            .map(|i| entry(&svc, Level::Info, &format!("{}-{body}", k * 100 + i), &[]))
            .collect();
        push_batch(&mut c, entries).await;
        most = most.max(server.metric("taillight_tail_buffered_bytes").await);
    }
    server.settle().await;
    let most = most.max(server.metric("taillight_tail_buffered_bytes").await);
    let stored = common::exported_messages(&server.http(), &svc).await;
    let sent: Vec<String> = (0..2_000).map(|n| format!("{n}-{body}")).collect();
    Row {
        fault: "a gRPC and an SSE tail that never read, under 40 MB of 20 KB entries".into(),
        mode: backend.mode(),
        pushed: 2_000,
        acknowledged: 2_000,
        detail: format!(
            "the live feed held at most {:.1} MB for them (streams behind skip once it holds {} MB; a stream whose queue is empty still takes the next batch); the SSE stream told which ids it missed when it read again",
            most as f64 / 1e6,
            TOTAL >> 20
        ),
        test: "grpc::streams_that_never_read_are_bounded_in_bytes".into(),
        ..Row::default()
    }
    .tallied(sent.iter().map(String::as_str), stored.iter().map(String::as_str))
    .record();
    // Past the total, each stream whose queue is empty still takes one
    // batch (50 entries of 20 KB here) and the SSE stream its rendering.
    assert!(
        most as usize <= TOTAL + (4 << 20),
        "the live feed held {most} bytes for streams that never read"
    );
    assert!(server.metric("taillight_tail_skipped_total").await > 0);
    // Reading again, the SSE stream is told which ids it missed.
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !text.contains("event: skipped") {
        assert!(std::time::Instant::now() < deadline, "no skip notice");
        let chunk = tokio::time::timeout(Duration::from_secs(10), sse.chunk())
            .await
            .expect("the stream goes on")
            .expect("chunk")
            .expect("not ended");
        text.push_str(&String::from_utf8_lossy(&chunk));
        // Only the tail of what was read matters.
        if text.len() > 1 << 16 {
            text.drain(..text.len() - (1 << 15));
        }
    }
}

async fn tail_ends_on_shutdown(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let (mut stream, _) = live_tail(&mut c, TailRequest::default()).await;
    let stopped = tokio::time::timeout(TIMEOUT, server.stop()).await;
    assert!(stopped.is_ok(), "shutdown must not hang on an open tail");
    let end = tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("stream ends");
    assert!(matches!(end, Ok(None) | Err(_)));
}

async fn restart_keeps_every_acknowledged_entry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut c = server.client().await;
    let svc = unique("restart");
    let n = push_batch(
        &mut c,
        (0..500)
            .map(|i| entry(&svc, Level::Info, &format!("a{i}"), &["t"]))
            .collect(),
    )
    .await;
    assert_eq!(n, 500);
    server.settle().await;
    let before = query_all(&mut c, service_filter(&svc)).await;
    drop(c);
    let server = server.restart().await;
    let mut c = server.client().await;
    let after = query_all(&mut c, service_filter(&svc)).await;
    assert_eq!(before, after);
    let tags = c
        .list_tags(ListTagsRequest {
            service: svc.clone(),
        })
        .await
        .expect("tags")
        .into_inner()
        .tags;
    assert_eq!(tags, ["t"]);
    // New ids continue after the old ones.
    c.push_log(PushLogRequest {
        entry: Some(entry(&svc, Level::Info, "after restart", &[])),
    })
    .await
    .expect("push");
    server.settle().await;
    let all = query_all(&mut c, service_filter(&svc)).await;
    assert!(all[500].id > before[499].id);
}

/// A PushLogs stream whose second frame is not protobuf (sent raw by
/// grpcio): the first batch is stored, and the answer is INVALID_ARGUMENT
/// with the `accepted` count, so a client that retries stores nothing twice.
/// Two messages on a unary call: refused whole, nothing stored (tonic read
/// the first and dropped the second without a word).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_message_on_a_unary_call_is_refused() {
    let server = TestServer::start(Backend::Embedded).await;
    let svc = unique("twice");
    let out = common::process::python("unary_twice.py", &[&server.addr.to_string(), &svc], &[], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "INVALID_ARGUMENT", "{out}");
    assert!(lines[1].contains("one message; this one sent 2"), "{out}");
    let mut c = server.client().await;
    assert!(query_all(&mut c, common::only(&svc)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_logs_undecodable_frame_is_invalid_with_the_count() {
    let server = TestServer::start(Backend::Embedded).await;
    let svc = unique("rawframe");
    let out = common::process::python(
        "push_logs_raw.py",
        &[&server.addr.to_string(), &svc],
        &[],
        "",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["INVALID_ARGUMENT", "2"], "{out}");
    assert!(lines[2].contains("entries[2]"), "{out}");
    let mut c = server.client().await;
    let stored = query_all(&mut c, common::only(&svc)).await;
    assert_eq!(stored.len(), 2);
}
