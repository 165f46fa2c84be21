//! `GET /v1/logs/export`: for every filter, the same records `GET /v1/logs`
//! answers, as NDJSON and as CSV, however many pages they take.

mod common;

use std::collections::HashSet;

use common::{Backend, TestServer, unique};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

backend_tests!(
    export_equals_the_query_for_every_filter,
    export_headers_empty_answers_and_bad_parameters,
    export_of_many_pages_is_whole_and_in_id_order,
    shutdown_during_an_export_breaks_the_body_off,
);

const CSV_HEADER: &str =
    "id,time,received_time,service,level,message,tags,attributes,trace_id,span_id";

// ---------------------------------------------------------------- helpers

async fn push(server: &TestServer, body: &Value) {
    let (status, v) = common::send_json(
        reqwest::Client::new()
            .post(format!("{}/v1/logs", server.http()))
            .json(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "push answered {v}");
}

/// An export's status, headers and whole body; the body must arrive whole.
async fn export(server: &TestServer, query: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/logs/export", server.http()))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("export {query:?}: {e}"));
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("export {query:?}: the body broke off: {e}"));
    (status, headers, body)
}

/// An export that must succeed, as the gateway's record JSON.
async fn exported(server: &TestServer, format: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let mut q = query.to_vec();
    q.push(("format", format));
    let (status, _, body) = export(server, &q).await;
    assert_eq!(status, StatusCode::OK, "export {q:?}: {body}");
    match format {
        "ndjson" => ndjson(&body),
        _ => csv_records(&body),
    }
}

/// Every record `GET /v1/logs` answers for `query`, walking its pages.
async fn queried(server: &TestServer, query: &[(&str, &str)]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let mut q = query.to_vec();
        q.push(("page_size", "1000"));
        if !token.is_empty() {
            q.push(("page_token", &token));
        }
        let page = common::get_json(
            reqwest::Url::parse_with_params(&format!("{}/v1/logs", server.http()), &q)
                .expect("url")
                .to_string(),
        )
        .await;
        out.extend(page["records"].as_array().expect("records").iter().cloned());
        token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if token.is_empty() {
            return out;
        }
    }
}

fn ndjson(body: &str) -> Vec<Value> {
    assert!(
        body.is_empty() || body.ends_with('\n'),
        "the last line is cut: {body:?}"
    );
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// RFC 4180, read independently of the server's writer: quoted cells with
/// doubled quotes, CRLF after every row.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => {
                assert!(cell.is_empty(), "a quote inside an unquoted cell: {text:?}");
                quoted = true;
            }
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF: {text:?}");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\n') => panic!("a bare LF ends a row: {text:?}"),
            (false, c) => cell.push(c),
        }
    }
    assert!(!quoted, "an unterminated quote: {text:?}");
    assert!(
        cell.is_empty() && row.is_empty(),
        "the last row is cut: {text:?}"
    );
    rows
}

/// CSV rows back in the gateway's record JSON, to compare with queries.
fn csv_records(body: &str) -> Vec<Value> {
    let rows = parse_csv(body);
    assert_eq!(rows.first().map(|h| h.join(",")), Some(CSV_HEADER.into()));
    rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 10, "{r:?}");
            let id: u64 = r[0]
                .parse()
                .unwrap_or_else(|e| panic!("id {:?}: {e}", r[0]));
            let json_cell = |s: &str| -> Value {
                serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
            };
            let mut v = json!({
                "id": id, "time": r[1], "receivedTime": r[2], "service": r[3],
                "level": r[4], "message": r[5], "tags": json_cell(&r[6]),
                "attributes": json_cell(&r[7]),
            });
            // The JSON leaves out ids a record does not have.
            for (i, key) in [(8, "traceId"), (9, "spanId")] {
                if !r[i].is_empty() {
                    v[key] = json!(r[i]);
                }
            }
            v
        })
        .collect()
}

fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["id"].as_u64().expect("numeric id"))
        .collect()
}

// ---------------------------------------------------------------- tests

async fn export_equals_the_query_for_every_filter(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("export");
    let other = unique("export-other");
    push(&server, &json!([
        { "service": svc, "level": "INFO", "message": "alpha, one", "tags": ["a"], "attributes": {"k": "v"}, "time": "2024-01-01T00:00:00Z" },
        { "service": svc, "level": "WARN", "message": "she said \"Beta\",\nthen left\r\nfor good", "tags": ["b", "quo\"te"], "attributes": {"path": "C:\\tmp", "csv": "x,\"y\"\n"}, "time": "2024-01-01T00:00:01Z" },
        { "service": svc, "level": "ERROR", "message": "gamma ünïcødé ✓ 日本語 🚀", "tags": ["a", "c"], "time": "2024-01-01T00:00:02Z" },
        { "service": svc, "level": "DEBUG", "message": "  delta  ", "time": "2024-01-01T00:00:03Z" },
        { "service": svc, "level": "FATAL", "message": "alpha beta", "tags": ["c"], "attributes": {"n": 3, "ok": true}, "time": "2024-01-01T00:00:04Z" },
    ]))
    .await;
    server.settle().await;
    // Later, so it is the newest in both backends (see http.rs query_filters).
    push(&server, &json!([
        { "service": other, "level": "FATAL", "message": "alpha elsewhere", "tags": ["a", "b"], "time": "2024-01-01T00:00:02Z" },
    ]))
    .await;
    server.settle().await;

    let mine = queried(&server, &[("service", &svc), ("order", "oldest")]).await;
    assert_eq!(mine.len(), 5);
    let (second, fourth) = (ids(&mine)[1].to_string(), ids(&mine)[3].to_string());
    let both = format!("{svc},{other}");
    let filters: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("service", &svc)],
        vec![("service", &both)],
        vec![("service", &svc), ("service", &other)],
        vec![("service", &svc), ("level", "warn,ERROR")],
        vec![("service", &svc), ("level", "WARN"), ("level", "fatal")],
        vec![("service", &svc), ("min_level", "error")],
        vec![("tag", "a")],
        vec![("service", &svc), ("tag", "a,c")],
        vec![("service", &svc), ("tag", "quo\"te")],
        vec![("service", &svc), ("text", "BETA")],
        vec![("q", "alpha")],
        vec![("service", &svc), ("text", "日本")],
        vec![
            ("start", "2024-01-01T00:00:01Z"),
            ("end", "2024-01-01T00:00:03Z"),
        ],
        vec![("service", &svc), ("start", "2024-01-01T01:00:03+01:00")],
        vec![("after_id", &second), ("before_id", &fourth)],
        vec![("service", &both), ("tag", "b"), ("min_level", "warn")],
    ];
    for f in &filters {
        for order in ["oldest", "newest"] {
            let mut with_order = f.clone();
            with_order.push(("order", order));
            let want = queried(&server, &with_order).await;
            assert!(!want.is_empty(), "{with_order:?} chooses nothing");
            for format in ["ndjson", "csv"] {
                let got = exported(&server, format, &with_order).await;
                assert_eq!(got, want, "{format} export of {with_order:?}");
            }
        }
        // Without `order`, an export is oldest first.
        let want = queried(&server, &[f.as_slice(), &[("order", "oldest")]].concat()).await;
        assert_eq!(exported(&server, "ndjson", f).await, want, "{f:?}");
    }
    // The awkward message survives the trip through both formats.
    let awkward = exported(&server, "csv", &[("service", &svc), ("level", "warn")]).await;
    assert_eq!(
        awkward[0]["message"],
        "she said \"Beta\",\nthen left\r\nfor good"
    );
    assert_eq!(awkward[0]["attributes"]["csv"], "x,\"y\"\n");
}

async fn export_headers_empty_answers_and_bad_parameters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("export-headers");
    push(&server, &json!({ "service": svc, "message": "one" })).await;
    server.settle().await;

    for (format, content_type, file) in [
        (None, "application/x-ndjson", "taillight-export.ndjson"),
        (
            Some("ndjson"),
            "application/x-ndjson",
            "taillight-export.ndjson",
        ),
        (
            Some("CSV"),
            "text/csv; charset=utf-8",
            "taillight-export.csv",
        ),
    ] {
        let mut q = vec![("service", svc.as_str())];
        q.extend(format.map(|f| ("format", f)));
        let (status, headers, body) = export(&server, &q).await;
        assert_eq!(status, StatusCode::OK, "{q:?}: {body}");
        assert_eq!(headers["content-type"], content_type, "{q:?}");
        assert_eq!(
            headers["content-disposition"],
            format!("attachment; filename=\"{file}\"").as_str(),
            "{q:?}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let lines: Vec<&str> = body.lines().collect();
        match content_type {
            "application/x-ndjson" => assert_eq!(lines.len(), 1, "{body}"),
            _ => assert_eq!(
                (lines.len(), lines.first()),
                (2, Some(&CSV_HEADER)),
                "{body}"
            ),
        }
    }

    // Nothing chosen: an empty NDJSON body, a CSV with only its header.
    let nothing = [("service", "no-such-service")];
    let (status, _, body) = export(&server, &nothing).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    let (status, _, body) = export(&server, &[nothing[0], ("format", "csv")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, format!("{CSV_HEADER}\r\n"));

    // Bad parameters are a 400 naming the parameter, as on GET /v1/logs.
    for (k, v, field) in [
        ("format", "xml", "format"),
        ("level", "loud", "level[0]"),
        ("min_level", "loud", "min_level"),
        ("start", "yesterday", "start"),
        ("end", "later", "end"),
        ("order", "sideways", "order"),
        ("after_id", "x", "after_id"),
    ] {
        let (status, answer) = common::send_json(
            reqwest::Client::new()
                .get(format!("{}/v1/logs/export", server.http()))
                .query(&[("service", svc.as_str()), (k, v)]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{k}={v}: {answer}");
        assert_eq!(answer["error"]["code"], "INVALID_ARGUMENT", "{answer}");
        assert_eq!(
            answer["error"]["fieldViolations"][0]["field"], field,
            "{k}={v}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(v),
            "{k}={v}: {answer}"
        );
    }
}

async fn export_of_many_pages_is_whole_and_in_id_order(backend: Backend) {
    const N: usize = 5000;
    let server = TestServer::start(backend).await;
    let svc = unique("export-big");
    for chunk in 0..N / 1000 {
        let batch: Vec<Value> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| json!({ "service": svc, "message": format!("entry {i:05}, \"quoted\""), "tags": ["bulk"] }))
            .collect();
        push(&server, &Value::Array(batch)).await;
    }
    server.settle().await;
    let want = queried(&server, &[("service", &svc), ("order", "oldest")]).await;
    assert_eq!(want.len(), N);

    for format in ["ndjson", "csv"] {
        let got = exported(&server, format, &[("service", &svc)]).await;
        let got_ids = ids(&got);
        assert_eq!(got.len(), N, "{format}: records");
        assert_eq!(
            got_ids.iter().collect::<HashSet<_>>().len(),
            N,
            "{format}: duplicates"
        );
        assert!(
            got_ids.windows(2).all(|w| w[0] < w[1]),
            "{format}: not in id order"
        );
        assert_eq!(got, want, "{format}: the records differ from GET /v1/logs");
    }
    let newest = exported(&server, "ndjson", &[("service", &svc), ("order", "newest")]).await;
    let mut reversed = ids(&want);
    reversed.reverse();
    assert_eq!(ids(&newest), reversed);
    // Entries of one service keep their push order in both backends.
    let messages: Vec<&str> = want.iter().filter_map(|r| r["message"].as_str()).collect();
    let pushed: Vec<String> = (0..N)
        .map(|i| format!("entry {i:05}, \"quoted\""))
        .collect();
    assert_eq!(messages, pushed);
}

/// Fills `svc` with `n` entries of about 1 kB, so an export of them takes
/// many pages and far more than the sockets buffer.
async fn fill_large(server: &TestServer, svc: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|i| json!({ "service": svc, "message": format!("{i:06} {}", "x".repeat(1000)) }))
            .collect();
        push(server, &Value::Array(batch)).await;
    }
    server.settle().await;
}

/// Reads an export's first bytes, then does `meanwhile`, then reads on: the
/// bytes before, and how the body ended.
async fn read_across(
    server: &TestServer,
    svc: &str,
    meanwhile: impl AsyncFnOnce(),
) -> (usize, Result<(), reqwest::Error>) {
    let resp = reqwest::get(format!(
        "{}/v1/logs/export?service={svc}&format=csv",
        server.http()
    ))
    .await
    .expect("the answer starts");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    let first = futures::StreamExt::next(&mut body)
        .await
        .expect("a first chunk")
        .expect("bytes");
    meanwhile().await;
    let mut received = first.len();
    let end = loop {
        match futures::StreamExt::next(&mut body).await {
            Some(Ok(chunk)) => received += chunk.len(),
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    (received, end)
}

/// The server shuts down in the middle of a long export: the client sees the
/// body break off, never a shorter file that looks whole.
async fn shutdown_during_an_export_breaks_the_body_off(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.shutdown_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let svc = unique("exportstop");
    fill_large(&server, &svc, 20_000).await;
    let stop = server.stop_token();
    let (received, end) = read_across(&server, &svc, async || stop.cancel()).await;
    assert!(
        received < 20_000 * 1000,
        "the whole export arrived ({received} bytes)"
    );
    assert!(
        end.is_err(),
        "the body ended cleanly after {received} bytes"
    );
}

/// MariaDB goes away in the middle of a long export (its database dropped):
/// the body breaks off. A store that is gone before the export starts is a
/// clear error, not a 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failing_during_an_export_breaks_the_body_off() {
    let server = TestServer::start(Backend::Distributed).await;
    let svc = unique("exportfail");
    fill_large(&server, &svc, 20_000).await;
    let db = server
        .cfg
        .store
        .mysql
        .database_url
        .as_deref()
        .and_then(|u| u.rsplit('/').next())
        .expect("database")
        .to_string();
    let drop_db = async || {
        let status = std::process::Command::new("mariadb")
            .args([
                "-h127.0.0.1",
                "-uroot",
                "-e",
                &format!("DROP DATABASE `{db}`"),
            ])
            .status()
            .expect("mariadb client");
        assert!(status.success(), "DROP DATABASE");
    };
    let (received, end) = read_across(&server, &svc, drop_db).await;
    assert!(
        end.is_err(),
        "the body ended cleanly after {received} bytes"
    );
    let (status, _, body) = export(&server, &[("service", svc.as_str())]).await;
    assert!(status.is_server_error(), "{status}: {body}");
}
