//! Loki push in: python-logging-loki's handler (JSON) and a protobuf +
//! snappy sender built from Loki's published proto, against a real
//! taillight in both modes; bad bodies refused with clear errors while the
//! valid lines of a push are stored.

mod common;

use std::time::Duration;

use common::process::python;
use common::{Backend, TestServer, attr, only, send_json, unique, wait_records};
use prost::Message;
use serde_json::{Value, json};
use taillight::api::loki::proto::{EntryAdapter, PushRequest, StreamAdapter};
use taillight::proto::Level;

backend_tests!(
    python_logging_loki_handler,
    protobuf_snappy_sender,
    json_push_stores_the_valid_lines,
    bad_bodies_get_clear_errors,
);

const WITHIN: Duration = Duration::from_secs(60);

fn push_url(server: &TestServer) -> String {
    format!("{}/loki/api/v1/push", server.http())
}

async fn python_logging_loki_handler(backend: Backend) {
    let server = TestServer::start(backend).await;
    let app = unique("loki-py");
    python("loki/handler.py", &[&push_url(&server), &app], &[], "");
    let rs = wait_records(&server.http(), &only(&app), 4, WITHIN).await;
    let got: Vec<(i32, &str)> = rs.iter().map(|r| (r.level, r.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (Level::Info as i32, "invoice sent"),
            (Level::Warn as i32, "retrying in 5s"),
            (Level::Error as i32, "card declined"),
            (Level::Fatal as i32, "ledger offline"),
        ]
    );
    assert_eq!(attr(&rs[0], "customer"), "c-7");
    assert_eq!(attr(&rs[0], "env"), "test");
    assert_eq!(attr(&rs[0], "logger"), "billing");
    assert!(!rs[0].attributes.contains_key("severity"));
}

/// Runs tests/loki/sender.py; its HTTP status and body.
fn send_protobuf(url: &str, streams: Value) -> (u16, String) {
    let out = python(
        "loki/sender.py",
        &[],
        &[],
        &json!({ "url": url, "streams": streams }).to_string(),
    );
    let v: Value = serde_json::from_str(&out).expect("the sender's answer");
    (
        v["status"].as_u64().unwrap_or(0) as u16,
        v["body"].as_str().unwrap_or("").to_string(),
    )
}

async fn protobuf_snappy_sender(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = unique("loki-pb");
    let streams = json!([
        { "labels": format!(r#"{{service_name="{service}", job="cron", note="say \"hi\"", level="warn"}}"#),
          "entries": [
              { "ns": 1_700_000_000_123_456_789u64, "line": "first", "metadata": { "trace": "abc" } },
              { "ns": 1_700_000_000_200_000_000u64, "line": "second", "metadata": { "level": "error" } } ] },
        { "labels": format!(r#"{{app="{service}"}}"#),
          "entries": [{ "ns": 1_700_000_001_000_000_000u64, "line": "third — ünïcode" }] },
    ]);
    let (status, body) = send_protobuf(&push_url(&server), streams);
    assert_eq!(status, 204, "{body}");
    let rs = wait_records(&server.http(), &only(&service), 3, WITHIN).await;
    assert_eq!(
        (rs[0].level, rs[0].message.as_str()),
        (Level::Warn as i32, "first")
    );
    assert_eq!(
        taillight::model::time::to_micros(rs[0].time.as_ref().expect("time")),
        1_700_000_000_123_456
    );
    assert_eq!(attr(&rs[0], "job"), "cron");
    assert_eq!(attr(&rs[0], "note"), "say \"hi\"");
    assert_eq!(attr(&rs[0], "trace"), "abc");
    assert_eq!(rs[1].level, Level::Error as i32, "metadata's level wins");
    assert_eq!(
        (rs[2].level, rs[2].message.as_str()),
        (Level::Info as i32, "third — ünïcode")
    );
}

async fn json_push_stores_the_valid_lines(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = unique("loki-json");
    let push = json!({ "streams": [
        { "stream": { "service": service, "detected_level": "debug", "pod": "p-1" },
          "values": [
              ["1700000000000000000", "ok one"],
              ["1700000000000000001", "loud one", { "level": "loud" }],
              ["1700000000000000002", "ok two", { "user": "u-9" }] ] },
        { "stream": { "service": "has space" }, "values": [["1700000000000000003", "bad service"]] },
    ] });
    let (status, v) = send_json(reqwest::Client::new().post(push_url(&server)).json(&push)).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["accepted"], 2);
    let fields: Vec<&str> = v["error"]["fieldViolations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["streams[0].values[1].level", "streams[1].values[0].service"]
    );
    let rs = wait_records(&server.http(), &only(&service), 2, WITHIN).await;
    assert_eq!(
        (rs[0].level, rs[0].message.as_str()),
        (Level::Debug as i32, "ok one")
    );
    assert_eq!(attr(&rs[0], "pod"), "p-1");
    assert_eq!(attr(&rs[1], "user"), "u-9");
}

fn encoded(service: &str, line: &str) -> Vec<u8> {
    PushRequest {
        streams: vec![StreamAdapter {
            labels: format!(r#"{{service_name="{service}"}}"#),
            entries: vec![EntryAdapter {
                line: line.into(),
                ..Default::default()
            }],
        }],
    }
    .encode_to_vec()
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .expect("snappy")
}

async fn bad_bodies_get_clear_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = unique("loki-bad");
    let url = push_url(&server);
    let post = |ctype: &'static str, body: Vec<u8>| {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", ctype)
            .body(body)
    };
    let expect = |what: &str, status: reqwest::StatusCode, v: &Value, want: u16| {
        assert_eq!(status.as_u16(), want, "{what}: {v}");
    };

    let (s, v) = send_json(post("text/plain", b"hello".to_vec())).await;
    expect("wrong content type", s, &v, 415);
    let (s, v) = send_json(post("application/x-protobuf", b"\x05not snappy".to_vec())).await;
    expect("bad snappy", s, &v, 400);
    assert_eq!(v["error"]["fieldViolations"][0]["field"], "body");
    let whole = encoded(&service, "fine");
    let (s, v) = send_json(post(
        "application/x-protobuf",
        snappy(&whole[..whole.len() - 2]),
    ))
    .await;
    expect("truncated protobuf", s, &v, 400);
    let mut bad_utf8 = encoded(&service, "fine");
    let at = bad_utf8
        .windows(4)
        .position(|w| w == b"fine")
        .expect("the line");
    bad_utf8[at] = 0xc3;
    bad_utf8[at + 1] = 0x28;
    let (s, v) = send_json(post("application/x-protobuf", snappy(&bad_utf8))).await;
    expect("invalid UTF-8", s, &v, 400);
    // A snappy header claiming far more than the limit is refused unread.
    let (s, v) = send_json(post("application/x-protobuf", snappy(&vec![b'x'; 5 << 20]))).await;
    expect("oversize", s, &v, 413);
    let (s, v) = send_json(post(
        "application/json",
        br#"{"streams":[{"stream":{},"values":[["soon","x"]]}]}"#.to_vec(),
    ))
    .await;
    expect("a bad timestamp", s, &v, 400);
    assert!(
        v["error"]["fieldViolations"][0]["field"]
            .as_str()
            .unwrap_or("")
            .starts_with("streams[0].values[0]"),
        "{v}"
    );
    let mut bad_labels = PushRequest::decode(&*encoded(&service, "unlabelled")).expect("decodes");
    bad_labels.streams[0].labels = "{service_name=oops}".into();
    let (s, v) = send_json(post(
        "application/x-protobuf",
        snappy(&bad_labels.encode_to_vec()),
    ))
    .await;
    expect("bad labels", s, &v, 400);
    assert_eq!(
        v["error"]["fieldViolations"][0]["field"],
        "streams[0].entries[0].labels"
    );

    // Nothing above was stored; the endpoint still takes good input.
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(snappy(&encoded(&service, "fine")))
        .send()
        .await
        .expect("push");
    assert_eq!(resp.status(), 204);
    let rs = wait_records(&server.http(), &only(&service), 1, WITHIN).await;
    assert_eq!(rs[0].message, "fine");
}
