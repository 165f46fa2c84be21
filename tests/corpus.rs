//! A corpus of named nasty inputs over HTTP and gRPC, in both modes: each
//! answer asserted (the status, and the field it names), nothing of a
//! refused request stored, and the server answering afterwards. What is
//! accepted is stored exactly as sent.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::reliability::Row;
use common::{Backend, TestServer, unique};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

backend_tests!(
    nasty_http_bodies_are_answered_and_store_nothing,
    nasty_queries_are_answered,
    nasty_grpc_messages_are_answered_and_store_nothing,
);

/// POSTs `body` to /v1/logs with `headers`; status and JSON answer.
async fn post(server: &TestServer, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.http()))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("an answer");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// POSTs a body larger than the server takes over a raw connection, still
/// writing while the answer is read (a client library may see only the
/// reset of a server that answered early); the answer's status.
async fn post_big(server: &TestServer, body: Vec<u8>) -> u16 {
    use tokio::io::AsyncReadExt;
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = tcp.into_split();
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(30), rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&got);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The fields an error answer names.
fn fields(answer: &Value) -> Vec<String> {
    answer["error"]["fieldViolations"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a refusal with `status` naming `field` (if given).
fn refused(case: &str, (status, answer): (u16, Value), want: u16, field: Option<&str>) {
    assert_eq!(status, want, "{case}: {answer}");
    if let Some(f) = field {
        assert!(
            fields(&answer).iter().any(|g| g == f),
            "{case}: expected a violation of {f}: {answer}"
        );
    }
}

async fn stored(server: &TestServer, svc: &str) -> Vec<Value> {
    server.settle().await;
    let r = reqwest::get(format!(
        "{}/v1/logs?service={svc}&order=oldest",
        server.http()
    ))
    .await
    .expect("query");
    let v: Value = r.json().await.expect("json");
    v["records"].as_array().cloned().unwrap_or_default()
}

async fn healthy(server: &TestServer) {
    let r = reqwest::get(format!("{}/healthz", server.http()))
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

async fn nasty_http_bodies_are_answered_and_store_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("nasty");
    let json_ct = [("content-type", "application/json")];
    let one = |extra: Value| {
        let mut e = json!({"service": svc, "message": "m"});
        if let (Value::Object(e), Value::Object(x)) = (&mut e, extra) {
            e.extend(x);
        }
        e.to_string().into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        (
            "invalid UTF-8 in a string",
            format!(r#"{{"service":"{svc}","message":"a"#)
                .into_bytes()
                .into_iter()
                .chain(*b"\xff\xfe\"}")
                .collect(),
            400,
            Some("body"),
        ),
        (
            "truncated JSON",
            b"{\"service\":".to_vec(),
            400,
            Some("body"),
        ),
        (
            "a control character in the service",
            one(json!({"service": "a\u{7}b"})),
            400,
            Some("entries[0].service"),
        ),
        (
            "a control character in a tag",
            one(json!({"tags": ["a\nb"]})),
            400,
            Some("entries[0].tags[0]"),
        ),
        (
            "an empty tag",
            one(json!({"tags": [""]})),
            400,
            Some("entries[0].tags[0]"),
        ),
        (
            "100,000 tags",
            one(json!({"tags": (0..100_000).map(|i| format!("t{i}")).collect::<Vec<_>>()})),
            400,
            Some("entries[0].tags"),
        ),
        (
            "a message over 64 KiB",
            one(json!({"message": "x".repeat(65_537)})),
            400,
            Some("entries[0].message"),
        ),
        (
            "JSON 10,000 levels deep",
            [b"[".repeat(10_000), b"]".repeat(10_000)].concat(),
            400,
            Some("body"),
        ),
        (
            "a number for the service",
            one(json!({"service": 5})),
            400,
            Some("entries[0].service"),
        ),
        (
            "a string for the tags",
            one(json!({"tags": "a,b"})),
            400,
            Some("entries[0].tags"),
        ),
        (
            "a list for the level",
            one(json!({"level": []})),
            400,
            Some("entries[0].level"),
        ),
        (
            "an unknown level",
            one(json!({"level": "loud"})),
            400,
            Some("entries[0].level"),
        ),
        (
            "year 0",
            one(json!({"time": "0000-01-01T00:00:00Z"})),
            400,
            Some("entries[0].time"),
        ),
        (
            "year 10000",
            one(json!({"time": "10000-01-01T00:00:00Z"})),
            400,
            Some("entries[0].time"),
        ),
        (
            "a trace id that is not hex",
            one(json!({"traceId": "z".repeat(32)})),
            400,
            Some("entries[0].trace_id"),
        ),
        (
            "a null attribute",
            one(json!({"attributes": {"k": null}})),
            400,
            Some("entries[0].attributes.k"),
        ),
        (
            "an integer beyond 64 bits",
            br#"{"service":"s","attributes":{"k":123456789012345678901234567890}}"#.to_vec(),
            400,
            Some("entries[0].attributes.k"),
        ),
        (
            "an object attribute",
            one(json!({"attributes": {"k": {"a": 1}}})),
            400,
            Some("entries[0].attributes.k"),
        ),
        (
            "an empty attribute key",
            one(json!({"attributes": {"": "v"}})),
            400,
            Some("entries[0].attributes"),
        ),
        ("an unknown field", one(json!({"bogus": 1})), 400, None),
        ("a bare string", b"\"just text\"".to_vec(), 400, None),
    ];
    // Besides the listed cases: 10 MB, 50 MB, brotli, a gzip bomb, a body
    // cut off, and the two accepted ones below.
    let inputs = cases.len() + 7;
    for (case, body, want, field) in cases {
        refused(case, post(&server, body, &json_ct).await, want, field);
    }
    // Bodies over the limit are answered 413 while they are still coming.
    let big = one(json!({"message": "x".repeat(10 << 20)}));
    assert_eq!(post_big(&server, big).await, 413, "a 10 MB message");
    let ndjson: Vec<u8> = one(json!({}))
        .into_iter()
        .chain(*b"\n")
        .cycle()
        .take(50 << 20)
        .collect();
    assert_eq!(post_big(&server, ndjson).await, 413, "a 50 MB NDJSON body");
    // Encodings: one not decoded is refused, a gzip bomb stops at the limit.
    let plain = one(json!({}));
    let (status, answer) = post(&server, plain.clone(), &[("content-encoding", "br")]).await;
    assert_eq!(status, 415, "brotli: {answer}");
    let bomb = gzip(&vec![b' '; 100 << 20]);
    let (status, answer) = post(&server, bomb, &[("content-encoding", "gzip")]).await;
    assert_eq!(status, 413, "gzip bomb: {answer}");
    // A body cut off by a client that goes away.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let partial = one(json!({"message": "cut off"}));
    tcp.write_all(
        format!(
            "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            partial.len() + 100
        )
        .as_bytes(),
    )
    .await
    .expect("head");
    tcp.write_all(&partial).await.expect("body");
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        stored(&server, &svc).await.is_empty(),
        "a refused body stored something"
    );

    // Accepted as sent: NUL and control characters in a message, the last
    // representable second, CRLF and blank lines in NDJSON.
    let odd = "a\u{0}b\u{7}c\r\nd\u{1b}[31m e\u{feff}";
    let body = format!(
        "{}\r\n\r\n{}\n",
        json!({"service": svc, "message": odd}),
        json!({"service": svc, "message": "last second", "time": "9999-12-31T23:59:59Z"})
    );
    let (status, answer) = post(
        &server,
        body.into_bytes(),
        &[("content-type", "application/x-ndjson")],
    )
    .await;
    assert_eq!((status, &answer["accepted"]), (200, &json!(2)), "{answer}");
    let rs = stored(&server, &svc).await;
    let found: Vec<&str> = rs.iter().filter_map(|r| r["message"].as_str()).collect();
    Row {
        fault: format!("{inputs} nasty HTTP bodies (corpus)"),
        mode: backend.mode(),
        pushed: inputs as u64,
        acknowledged: 2,
        detail: "each refused with its status naming the field, nothing of it stored; 2 odd but valid entries stored as sent; healthy afterwards".into(),
        test: "corpus::nasty_http_bodies_are_answered_and_store_nothing".into(),
        ..Row::default()
    }
    .tallied([odd, "last second"], found.iter().copied())
    .record();
    assert_eq!(rs.len(), 2, "{rs:?}");
    assert!(rs.iter().any(|r| r["message"] == odd), "{rs:?}");
    let last = rs
        .iter()
        .find(|r| r["message"] == "last second")
        .expect("stored");
    assert!(
        last["time"]
            .as_str()
            .is_some_and(|t| t.starts_with("9999-12-31T23:59:59")),
        "{last}"
    );
    healthy(&server).await;
}

async fn nasty_queries_are_answered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let get = |q: &'static str| {
        let url = format!("{}/v1/logs?{q}", server.http());
        async move {
            let r = reqwest::get(url).await.expect("an answer");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    for (q, field) in [
        ("page_size=-1", "page_size"),
        ("page_size=1000000000000", "page_size"),
        ("page_size=abc", "page_size"),
        ("page_token=AAAA", "page_token"),
        ("page_token=%00%ff", "page_token"),
        ("after_id=abc", "after_id"),
        ("after_id=-5", "after_id"),
        ("level=loud", "level[0]"),
        ("start=yesterday", "start"),
    ] {
        refused(q, get(q).await, 400, Some(field));
    }
    let (status, answer) = get("page_size=0").await;
    assert_eq!(status, 200, "page_size=0 is the default: {answer}");
    let r = reqwest::get(format!("{}/v1/tail?last=1000000000", server.http()))
        .await
        .expect("an answer");
    assert_eq!(r.status(), 400);
    healthy(&server).await;
}

/// Runs tests/grpc_raw.py: one raw request message to a unary method.
fn raw(server: &TestServer, method: &str, payload: &[u8]) -> (String, String) {
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let out = common::process::python(
        "grpc_raw.py",
        &[&server.addr.to_string(), method, &hex],
        &[],
        "",
    );
    let mut lines = out.lines();
    let code = lines.next().unwrap_or_default().to_string();
    (code, lines.collect::<Vec<_>>().join("\n"))
}

/// A PushLogRequest with an entry of service `s` and message `m` (bytes,
/// so they may be invalid UTF-8).
fn push_log(s: &[u8], m: &[u8]) -> Vec<u8> {
    let mut entry = vec![0x0a, s.len() as u8];
    entry.extend(s);
    entry.extend([0x1a, m.len() as u8]);
    entry.extend(m);
    let mut req = vec![0x0a, entry.len() as u8];
    req.extend(entry);
    req
}

async fn nasty_grpc_messages_are_answered_and_store_nothing(backend: Backend) {
    use taillight::proto::{LogEntry, PushLogRequest, QueryLogsRequest, TailRequest};
    use tonic::Code;
    let server = TestServer::start(backend).await;
    let svc = unique("nastygrpc");
    let mut c = server.client().await;
    let push = |entry: LogEntry| PushLogRequest { entry: Some(entry) };
    let base = || LogEntry {
        service: svc.clone(),
        message: "m".into(),
        ..Default::default()
    };
    let cases: Vec<(&str, PushLogRequest, Code, &str)> = vec![
        (
            "no entry",
            PushLogRequest { entry: None },
            Code::InvalidArgument,
            "entry",
        ),
        (
            "an empty service",
            push(LogEntry {
                service: String::new(),
                ..base()
            }),
            Code::InvalidArgument,
            "service",
        ),
        (
            "level 99",
            push(LogEntry {
                level: 99,
                ..base()
            }),
            Code::InvalidArgument,
            "level",
        ),
        (
            "a span id of 3 digits",
            push(LogEntry {
                span_id: "abc".into(),
                ..base()
            }),
            Code::InvalidArgument,
            "span_id",
        ),
        (
            "nanos over a second",
            push(LogEntry {
                time: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 2_000_000_000,
                }),
                ..base()
            }),
            Code::InvalidArgument,
            "time",
        ),
        (
            "a time before 1970",
            push(LogEntry {
                time: Some(prost_types::Timestamp {
                    seconds: -5,
                    nanos: 0,
                }),
                ..base()
            }),
            Code::InvalidArgument,
            "time",
        ),
        (
            "a 5 MB message",
            push(LogEntry {
                message: "x".repeat(5 << 20),
                ..base()
            }),
            Code::OutOfRange,
            "limit",
        ),
    ];
    // Besides the listed cases: a forged page token, a huge `last`, two raw
    // messages and an unknown method.
    let inputs = cases.len() + 5;
    for (case, req, code, says) in cases {
        let status = c.push_log(req).await.expect_err(case);
        assert_eq!(status.code(), code, "{case}: {status:?}");
        assert!(status.message().contains(says), "{case}: {status:?}");
    }
    let status = c
        .query_logs(QueryLogsRequest {
            page_token: "forged".into(),
            ..Default::default()
        })
        .await
        .expect_err("forged token");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("page_token"), "{status:?}");
    let status = c
        .tail(TailRequest {
            last: 1_000_000_000,
            ..Default::default()
        })
        .await
        .expect_err("last");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("last"), "{status:?}");

    // What no generated client sends: invalid UTF-8, a length past the end.
    let method = "/taillight.v1.LogService/PushLog";
    let (code, details) = raw(&server, method, &push_log(svc.as_bytes(), b"a\xffb"));
    assert_eq!(code, "INVALID_ARGUMENT", "invalid UTF-8: {details}");
    let (code, details) = raw(&server, method, &[0x0a, 0xff, 0xff, 0x03]);
    assert_eq!(code, "INVALID_ARGUMENT", "a length past the end: {details}");
    let (code, _) = raw(&server, "/taillight.v1.LogService/NoSuchMethod", b"");
    assert_eq!(code, "UNIMPLEMENTED");
    let found = stored(&server, &svc).await;
    Row {
        fault: format!("{inputs} nasty gRPC messages (corpus)"),
        mode: backend.mode(),
        pushed: inputs as u64,
        detail: format!(
            "each refused with its code naming the field; {} stored; healthy afterwards",
            found.len()
        ),
        test: "corpus::nasty_grpc_messages_are_answered_and_store_nothing".into(),
        ..Row::default()
    }
    .record();
    assert!(found.is_empty());
    healthy(&server).await;
}
