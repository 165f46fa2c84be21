//! Per-client limits: entries and bytes per second for each API key (or
//! each client address without one), tail streams per key and in all. Over
//! a limit: 429 with `Retry-After`, or RESOURCE_EXHAUSTED with retry info;
//! other clients are untouched; waiting the delay passes.

mod common;

use std::time::Duration;

use common::{Backend, TestServer, create_key, unique};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{LogEntry, PushLogRequest, TailRequest};
use tonic::Code;
use tonic_types::StatusExt;

async fn push(
    server: &TestServer,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.http()))
        .json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.expect("push");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status(), retry, r.json().await.unwrap_or(Value::Null))
}

fn batch(svc: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"service": svc, "message": format!("m{i}")}))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_entry_rate_is_told_when_to_retry() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("keys.toml");
    let slow = create_key(
        &file,
        &[
            "--scope",
            "push",
            "--name",
            "slow",
            "--entries-per-second",
            "10",
        ],
    );
    let other = create_key(&file, &["--scope", "push", "--name", "other"]);
    let admin = create_key(&file, &["--scope", "admin", "--name", "ops"]);
    let mut server = TestServer::start_with(Backend::Embedded, |c| {
        c.access.keys_file = Some(file.clone());
    })
    .await;
    server.admin_key = Some(admin);
    let svc = unique("rate");

    let (status, _, _) = push(&server, Some(&slow), batch(&svc, 10)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, retry, body) = push(&server, Some(&slow), batch(&svc, 5)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "RESOURCE_EXHAUSTED");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"slow\"") && message.contains("10 entries per second"),
        "{message}"
    );

    // The same over gRPC, with the delay as retry info.
    let channel = tonic::transport::Channel::from_shared(server.http())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {slow}").parse().expect("header");
    let mut c = LogServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", bearer.clone());
        Ok(r)
    });
    let status = c
        .push_log(PushLogRequest {
            entry: Some(LogEntry {
                service: svc.clone(),
                message: "one more".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("over the rate");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().expect("retry info");
    assert!(
        retry
            .retry_delay
            .is_some_and(|d| d <= Duration::from_secs(1))
    );

    // Another key is not held back.
    let (status, _, _) = push(&server, Some(&other), batch(&svc, 50)).await;
    assert_eq!(status, StatusCode::OK);
    // Waiting as told passes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, _, body) = push(&server, Some(&slow), batch(&svc, 5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = server.metrics_text().await;
    assert!(
        common::sample_of(&text, "taillight_key_limited_total{key=\"slow\"}")
            .is_some_and(|n| n >= 2),
        "{text}"
    );
    assert_eq!(server.metric("taillight_entries_accepted_total").await, 65);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_key_are_limited_by_address_in_bytes() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.access.key_bytes_per_second = Some(2_000.0);
    })
    .await;
    let svc = unique("bytes");
    let big = json!({"service": svc, "message": "x".repeat(1_500)});
    let (status, _, _) = push(&server, None, big.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, retry, body) = push(&server, None, big).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some());
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("client address 127.0.0.1") && message.contains("2000 bytes per second"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_streams_are_capped_per_client_and_in_all() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.access.max_tail_streams_per_key = 2;
        c.access.max_tail_streams = 3;
    })
    .await;
    let sse = || async {
        reqwest::get(format!("{}/v1/tail", server.http()))
            .await
            .expect("tail")
    };
    let first = sse().await;
    assert_eq!(first.status(), StatusCode::OK);
    let mut first = first.bytes_stream();
    // The stream is open once its first event (the status) arrives.
    let _ = first.next().await;
    let mut c = server.client().await;
    let second = c
        .tail(TailRequest::default())
        .await
        .expect("a second stream");
    let third = sse().await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = third.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-tail-streams-per-key")),
        "{body}"
    );
    let status = c
        .tail(TailRequest::default())
        .await
        .expect_err("over the cap");
    assert_eq!(status.code(), Code::ResourceExhausted);
    // Closing one makes room.
    drop(second);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = c.tail(TailRequest::default()).await.expect("room again");
    drop(again);
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_tail_cap_holds_across_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("keys.toml");
    let a = create_key(&file, &["--scope", "read", "--name", "a"]);
    let b = create_key(
        &file,
        &["--scope", "read", "--name", "b", "--tail-streams", "5"],
    );
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.access.keys_file = Some(file.clone());
        c.access.max_tail_streams_per_key = 2;
        c.access.max_tail_streams = 3;
    })
    .await;
    let open = |key: String| {
        let url = format!("{}/v1/tail", server.http());
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("tail")
        }
    };
    let mut held = Vec::new();
    for key in [&a, &a, &b] {
        let r = open(key.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        held.push(r);
    }
    let r = open(a.clone()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = open(b.clone()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-tail-streams)")),
        "{body}"
    );
}
