//! OpenTelemetry in: the real OpenTelemetry Python SDK shipping `logging`
//! records over OTLP/gRPC and OTLP/HTTP (plain and gzip) with nothing but
//! OTEL_* variables set; OTLP/JSON and the gRPC service from a Rust client,
//! with partial success; bad bodies refused with clear errors. Both modes.

mod common;

use std::time::Duration;

use common::process::python;
use common::{Backend, TestServer, attr, only, send_json, unique, wait_records};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use serde_json::{Value, json};
use taillight::proto::Level;

backend_tests!(
    python_sdk_over_grpc_and_http,
    otlp_json_maps_and_reports_partial_success,
    grpc_export_reports_partial_success_and_takes_gzip,
    bad_bodies_get_clear_errors,
);

const WITHIN: Duration = Duration::from_secs(60);

async fn python_sdk_over_grpc_and_http(backend: Backend) {
    let server = TestServer::start(backend).await;
    let endpoint = server.http();
    for (exporter, compression) in [
        ("grpc", ""),
        ("http", ""),
        ("grpc", "gzip"),
        ("http", "gzip"),
    ] {
        let service = unique(&format!("otel-{exporter}-{compression}"));
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", &service),
        ];
        if !compression.is_empty() {
            env.push(("OTEL_EXPORTER_OTLP_COMPRESSION", compression));
        }
        let out = python("otlp_client.py", &[exporter], &env, "");
        let ids: Value = serde_json::from_str(&out).expect("the client's ids");
        let rs = wait_records(&endpoint, &only(&service), 4, WITHIN).await;
        let what = format!("{exporter} {compression}");

        assert_eq!(rs[0].message, "order placed", "{what}");
        assert_eq!(rs[0].level, Level::Info as i32);
        assert_eq!(rs[0].tags, ["checkout", "eu"]);
        assert_eq!(attr(&rs[0], "order_id"), "42");
        assert_eq!(attr(&rs[0], "otel.scope.name"), "shop.orders");
        assert_eq!(attr(&rs[0], "telemetry.sdk.language"), "python");
        assert!(!rs[0].attributes.contains_key("service.name"));
        let age = taillight::model::time::now_micros()
            - taillight::model::time::to_micros(rs[0].time.as_ref().expect("time"));
        assert!(
            (0..WITHIN.as_micros() as i64).contains(&age),
            "{what}: time {age} µs ago"
        );

        assert_eq!(
            (rs[1].level, rs[1].message.as_str()),
            (Level::Warn as i32, "stock low: 3 left")
        );

        assert_eq!(
            (rs[2].level, rs[2].message.as_str()),
            (Level::Error as i32, "payment failed")
        );
        assert_eq!(attr(&rs[2], "exception.type"), "ZeroDivisionError");
        assert_eq!(
            rs[2].trace_id,
            ids["trace_id"].as_str().expect("trace id"),
            "{what}"
        );
        assert_eq!(rs[2].span_id, ids["span_id"].as_str().expect("span id"));
        assert_eq!((rs[0].trace_id.as_str(), rs[0].span_id.as_str()), ("", ""));

        assert_eq!(rs[3].level, Level::Debug as i32);
        let body: Value = serde_json::from_str(&rs[3].message).expect("a map body is JSON text");
        assert_eq!(body, json!({ "cart": { "items": 2 }, "ok": true }));
    }
}

/// An OTLP/JSON export as the specification writes one: ids in hex, 64-bit
/// integers as strings, nested maps.
fn json_export(service: &str) -> Value {
    let s = |v: &str| json!({ "stringValue": v });
    json!({ "resourceLogs": [{
        "resource": { "attributes": [
            { "key": "service.name", "value": s(service) },
            { "key": "host", "value": { "kvlistValue": { "values": [
                { "key": "name", "value": s("web-1") },
                { "key": "cpus", "value": { "intValue": "8" } } ] } } },
        ] },
        "scopeLogs": [{
            "scope": { "name": "billing" },
            "logRecords": [
                { "timeUnixNano": "1700000000123456789", "severityNumber": 13,
                  "body": s("disk nearly full"),
                  "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                  "attributes": [
                      { "key": "tags", "value": { "arrayValue": { "values": [s("disk"), s("ops")] } } },
                      { "key": "used", "value": { "doubleValue": 0.97 } },
                      { "key": "host", "value": { "kvlistValue": { "values": [
                          { "key": "name", "value": s("web-2") } ] } } } ] },
                { "severityNumber": 99, "body": s("no such severity") },
                { "severityText": "warning", "observedTimeUnixNano": "1700000001000000000",
                  "body": { "kvlistValue": { "values": [{ "key": "k", "value": { "boolValue": true } }] } } },
                { "severityText": "loud", "body": s("no such level") },
            ] }] }] })
}

async fn otlp_json_maps_and_reports_partial_success(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = unique("otlp-json");
    let (status, answer) = send_json(
        reqwest::Client::new()
            .post(format!("{}/v1/logs", server.http()))
            .header("content-type", "application/json")
            .body(json_export(&service).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let partial = &answer["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "2", "{answer}");
    let message = partial["errorMessage"].as_str().expect("message");
    assert!(
        message.contains("resourceLogs[0].scopeLogs[0].logRecords[1].severityNumber")
            && message.contains("resourceLogs[0].scopeLogs[0].logRecords[3].severityText"),
        "{message}"
    );

    let rs = wait_records(&server.http(), &only(&service), 2, WITHIN).await;
    let r = &rs[0];
    assert_eq!(
        (r.level, r.message.as_str()),
        (Level::Warn as i32, "disk nearly full")
    );
    assert_eq!(
        taillight::model::time::to_micros(r.time.as_ref().expect("time")),
        1_700_000_000_123_456
    );
    assert_eq!(r.tags, ["disk", "ops"]);
    assert_eq!(
        (r.trace_id.as_str(), r.span_id.as_str()),
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    );
    assert_eq!(
        attr(r, "host.name"),
        "web-2",
        "the record's own attribute wins"
    );
    assert_eq!(attr(r, "host.cpus"), "8");
    assert_eq!(attr(r, "used"), "0.97");
    assert_eq!(attr(r, "otel.scope.name"), "billing");
    let r = &rs[1];
    assert_eq!(r.level, Level::Warn as i32);
    assert_eq!(r.message, r#"{"k":true}"#);
    assert_eq!(
        taillight::model::time::to_micros(r.time.as_ref().expect("time")),
        1_700_000_001_000_000
    );

    // Everything valid: an empty answer; gzip on the way in.
    let clean = json!({ "resourceLogs": [{ "resource": { "attributes": [
        { "key": "service.name", "value": { "stringValue": service } } ] },
        "scopeLogs": [{ "logRecords": [{ "body": { "stringValue": "zipped" } }] }] }] });
    let (status, answer) = send_json(
        reqwest::Client::new()
            .post(format!("{}/v1/logs", server.http()))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gzip(clean.to_string().as_bytes())),
    )
    .await;
    assert_eq!((status.as_u16(), answer), (200, json!({})));
    wait_records(&server.http(), &only(&service), 3, WITHIN).await;

    // taillight's own JSON on the same path is untouched.
    let (status, answer) = send_json(
        reqwest::Client::new()
            .post(format!("{}/v1/logs", server.http()))
            .json(&json!({ "service": service, "message": "own shape" })),
    )
    .await;
    assert_eq!((status.as_u16(), answer), (200, json!({ "accepted": 1 })));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

async fn grpc_export_reports_partial_success_and_takes_gzip(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = unique("otlp-grpc");
    let req: ExportLogsServiceRequest =
        serde_json::from_value(json_export(&service)).expect("OTLP/JSON");
    let mut client = LogsServiceClient::connect(server.http())
        .await
        .expect("connect")
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let resp = client.export(req).await.expect("Export").into_inner();
    let partial = resp.partial_success.expect("partial success");
    assert_eq!(partial.rejected_log_records, 2);
    assert!(
        partial
            .error_message
            .contains("logRecords[1].severityNumber"),
        "{}",
        partial.error_message
    );
    wait_records(&server.http(), &only(&service), 2, WITHIN).await;

    // A message over the request limit is refused before it is decoded.
    let big = ExportLogsServiceRequest::decode(&*big_export(&service)).expect("decodes");
    let err = LogsServiceClient::connect(server.http())
        .await
        .expect("connect")
        .export(big)
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err}");
}

/// An export of about 5 MB, over the default 4 MiB request limit.
fn big_export(service: &str) -> Vec<u8> {
    let line = "x".repeat(60_000);
    let records: Vec<Value> = (0..90)
        .map(|_| json!({ "body": { "stringValue": line } }))
        .collect();
    let v = json!({ "resourceLogs": [{ "resource": { "attributes": [
        { "key": "service.name", "value": { "stringValue": service } } ] },
        "scopeLogs": [{ "logRecords": records }] }] });
    let req: ExportLogsServiceRequest = serde_json::from_value(v).expect("OTLP/JSON");
    req.encode_to_vec()
}

async fn bad_bodies_get_clear_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let service = unique("otlp-bad");
    let url = format!("{}/v1/logs", server.http());
    let post = |ctype: &'static str, body: Vec<u8>| {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", ctype)
            .body(body)
    };
    let good = serde_json::from_value::<ExportLogsServiceRequest>(json_export(&service))
        .expect("OTLP/JSON")
        .encode_to_vec();

    let (status, v) = send_json(post(
        "application/x-protobuf",
        good[..good.len() / 2].to_vec(),
    ))
    .await;
    assert_eq!(status, 400, "truncated protobuf: {v}");
    assert_eq!(v["error"]["fieldViolations"][0]["field"], "body");

    let mut bad_utf8 = good.clone();
    let at = bad_utf8
        .windows(16)
        .position(|w| w == b"disk nearly full")
        .expect("the body text");
    bad_utf8[at] = 0xff;
    let (status, v) = send_json(post("application/x-protobuf", bad_utf8)).await;
    assert_eq!(status, 400, "invalid UTF-8: {v}");

    let otlp_json = json_export(&service).to_string().into_bytes();
    let (status, v) = send_json(post("text/xml", otlp_json.clone())).await;
    assert_eq!(status, 415, "wrong content type: {v}");

    let (status, v) = send_json(post(
        "application/json",
        b"{\"resourceLogs\": [{\"scopeLogs\": 7}]}".to_vec(),
    ))
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"]["fieldViolations"][0]["field"],
        "resourceLogs[0].scopeLogs"
    );

    let status = post("application/x-protobuf", big_export(&service))
        .send()
        .await
        .expect("POST")
        .status();
    assert_eq!(status, 413, "oversize");

    let bomb = gzip(&vec![b' '; 8 << 20]);
    let (status, v) =
        send_json(post("application/x-protobuf", bomb).header("content-encoding", "gzip")).await;
    assert_eq!(status, 413, "a gzip bomb: {v}");

    let (status, v) = send_json(
        post("application/x-protobuf", b"not gzip".to_vec()).header("content-encoding", "gzip"),
    )
    .await;
    assert_eq!(status, 400, "bad gzip: {v}");

    // None of it stored anything, and the server still takes good input.
    let resp = post("application/x-protobuf", good)
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let answer = ExportLogsServiceResponse::decode(resp.bytes().await.expect("body"))
        .expect("a protobuf answer to a protobuf export");
    assert_eq!(
        answer.partial_success.map(|p| p.rejected_log_records),
        Some(2)
    );
    wait_records(&server.http(), &only(&service), 2, WITHIN).await;
}
