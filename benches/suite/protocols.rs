//! The same entries as OTLP exports (gRPC `LogsService/Export`) and as Loki
//! pushes (snappy protobuf), each built before timing and sent with
//! `concurrency` requests in flight, so their rates sit beside PushLogs's.
//! One resource per service in an export; one stream per service and level
//! in a push, the tags and attributes as structured metadata (Loki has no
//! tags), as Promtail and the OpenTelemetry SDK would send them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use taillight::api::loki::proto::{EntryAdapter, LabelPair, PushRequest, StreamAdapter};
use taillight::model::{level, time};
use taillight::proto::LogEntry;

use crate::node::Node;

fn text(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(s.to_string())),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value,
        ..Default::default()
    }
}

fn nanos(e: &LogEntry) -> u64 {
    e.time
        .as_ref()
        .map_or(0, |t| time::to_micros(t) as u64 * 1000)
}

fn otlp_record(e: &LogEntry) -> LogRecord {
    let tags = e.tags.iter().map(|t| AnyValue {
        value: Some(Value::StringValue(t.clone())),
    });
    let mut attributes: Vec<KeyValue> = e.attributes.iter().map(|(k, v)| kv(k, text(v))).collect();
    attributes.push(kv(
        "tags",
        Some(AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: tags.collect(),
            })),
        }),
    ));
    LogRecord {
        time_unix_nano: nanos(e),
        // The lowest number of each OTLP range: TRACE 1, DEBUG 5, INFO 9, ...
        severity_number: (e.level - 1) * 4 + 1,
        body: text(&e.message),
        attributes,
        ..Default::default()
    }
}

/// `es` as exports of `batch` records each.
pub fn otlp_exports(es: &[LogEntry], batch: usize) -> Vec<(usize, ExportLogsServiceRequest)> {
    es.chunks(batch)
        .map(|chunk| {
            let mut by_service: BTreeMap<&str, Vec<LogRecord>> = BTreeMap::new();
            for e in chunk {
                by_service
                    .entry(&e.service)
                    .or_default()
                    .push(otlp_record(e));
            }
            let resource_logs = by_service
                .into_iter()
                .map(|(service, log_records)| ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", text(service))],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect();
            (chunk.len(), ExportLogsServiceRequest { resource_logs })
        })
        .collect()
}

/// `es` as snappy-compressed pushes of `batch` lines each.
pub fn loki_pushes(es: &[LogEntry], batch: usize) -> Vec<(usize, Vec<u8>)> {
    es.chunks(batch)
        .map(|chunk| {
            let mut streams: BTreeMap<(&str, i32), Vec<EntryAdapter>> = BTreeMap::new();
            for e in chunk {
                let mut metadata: Vec<LabelPair> = e
                    .attributes
                    .iter()
                    .map(|(k, v)| LabelPair {
                        name: k.clone(),
                        value: v.clone(),
                    })
                    .collect();
                metadata.push(LabelPair {
                    name: "tags".into(),
                    value: e.tags.join(","),
                });
                streams
                    .entry((&e.service, e.level))
                    .or_default()
                    .push(EntryAdapter {
                        timestamp: e.time,
                        line: e.message.clone(),
                        structured_metadata: metadata,
                    });
            }
            let streams = streams
                .into_iter()
                .map(|((service, lvl), entries)| StreamAdapter {
                    labels: format!(
                        r#"{{service_name="{service}", level="{}"}}"#,
                        level::name(lvl).to_ascii_lowercase()
                    ),
                    entries,
                })
                .collect();
            let body = PushRequest { streams }.encode_to_vec();
            let packed = snap::raw::Encoder::new()
                .compress_vec(&body)
                .expect("snappy");
            (chunk.len(), packed)
        })
        .collect()
}

/// Sends every export, `concurrency` in flight on as many connections.
pub async fn push_otlp(node: &Node, es: Vec<LogEntry>, concurrency: usize, batch: usize) {
    let queue = Arc::new(Mutex::new(otlp_exports(&es, batch).into_iter()));
    drop(es);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut client =
            LogsServiceClient::new(node.channel().await).max_encoding_message_size(64 << 20);
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue").next();
                let Some((_, req)) = next else { return };
                let resp = client.export(req).await.expect("Export").into_inner();
                assert_eq!(resp.partial_success, None, "records refused");
            }
        }));
    }
    for t in tasks {
        t.await.expect("OTLP pusher");
    }
}

/// Sends every push, `concurrency` in flight.
pub async fn push_loki(node: &Node, es: Vec<LogEntry>, concurrency: usize, batch: usize) {
    let bodies = loki_pushes(&es, batch);
    drop(es);
    let url = format!("{}/loki/api/v1/push", node.base);
    post_all(
        &url,
        "application/x-protobuf",
        bodies,
        concurrency,
        |_, status, text| {
            assert_eq!(status, 204, "Loki push: {text}");
        },
    )
    .await;
}

/// POSTs every body to `url`, `concurrency` in flight; `check` judges each
/// answer from the entries the body held, the status and the answer's text.
pub async fn post_all(
    url: &str,
    content_type: &'static str,
    bodies: Vec<(usize, Vec<u8>)>,
    concurrency: usize,
    check: fn(usize, reqwest::StatusCode, &str),
) {
    let queue = Arc::new(Mutex::new(bodies.into_iter()));
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (queue, http, url) = (queue.clone(), http.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue").next();
                let Some((n, body)) = next else { return };
                let r = http
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .expect("POST");
                let status = r.status();
                check(n, status, &r.text().await.unwrap_or_default());
            }
        }));
    }
    for t in tasks {
        t.await.expect("HTTP pusher");
    }
}
