//! The seed system's endpoints, `POST /log/set` and
//! `GET /log/get/{service_name}`: their existing clients must keep working
//! unchanged.

mod common;

use std::collections::HashSet;

use common::{Backend, TestServer, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    set_then_get_round_trip,
    get_filters_by_tags,
    pages_of_fifty_newest_first,
    invalid_entries_name_the_seed_fields,
    missing_timestamp_defaults_to_receive_time,
);

async fn set(server: &TestServer, body: &Value) -> (StatusCode, Value) {
    common::send_json(
        reqwest::Client::new()
            .post(format!("{}/log/set", server.http()))
            .json(body),
    )
    .await
}

async fn set_ok(server: &TestServer, body: &Value) {
    let (status, v) = set(server, body).await;
    assert_eq!(status, StatusCode::OK, "{body} answered {v}");
    assert_eq!(v, json!({ "message": "Log saved successfully" }));
}

async fn get_logs(
    server: &TestServer,
    service: &str,
    query: &[(&str, &str)],
) -> (StatusCode, Value) {
    common::send_json(
        reqwest::Client::new()
            .get(format!("{}/log/get/{service}", server.http()))
            .query(query),
    )
    .await
}

/// `(logs, total)` of a successful GET.
async fn page(server: &TestServer, service: &str, query: &[(&str, &str)]) -> (Vec<Value>, u64) {
    let (status, v) = get_logs(server, service, query).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    (
        v["logs"]
            .as_array()
            .unwrap_or_else(|| panic!("no logs in {v}"))
            .clone(),
        v["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("no total in {v}")),
    )
}

fn messages(logs: &[Value]) -> Vec<&str> {
    logs.iter()
        .map(|l| l["message"].as_str().expect("message"))
        .collect()
}

fn parse_time(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

async fn set_then_get_round_trip(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("seed");
    set_ok(
        &server,
        &json!({
            "service_name": svc, "level": "ERROR", "message": "disk full",
            "tag": "db", "timestamp": "2024-03-24T13:01:00",
        }),
    )
    .await;
    set_ok(
        &server,
        &json!({
            "service_name": svc, "level": "warning", "message": "slow query",
            "tag": "db", "timestamp": "2024-03-24T13:02:00",
        }),
    )
    .await;
    server.settle().await;

    let (logs, total) = page(&server, &svc, &[("page", "1")]).await;
    assert_eq!(total, 2);
    assert_eq!(messages(&logs), ["slow query", "disk full"], "newest first");
    let l = &logs[1];
    assert_eq!(l["service_name"], svc.as_str());
    assert_eq!(l["level"], "ERROR");
    assert_eq!(l["message"], "disk full");
    assert_eq!(l["tag"], "db");
    // No zone in the request means UTC.
    assert_eq!(
        parse_time(l["timestamp"].as_str().expect("timestamp")),
        parse_time("2024-03-24T13:01:00Z")
    );
    assert_eq!(logs[0]["level"], "WARN");

    // Without `page` the first page is meant.
    let (again, total) = page(&server, &svc, &[]).await;
    assert_eq!(total, 2);
    assert_eq!(again, logs);

    // The same entries through the v1 gateway.
    let v = common::get_json(format!(
        "{}/v1/logs?service={svc}&order=oldest",
        server.http()
    ))
    .await;
    assert_eq!(v["records"][0]["message"], "disk full");
    assert_eq!(v["records"][0]["tags"], json!(["db"]));

    // An unknown service has nothing.
    let (logs, total) = page(&server, &unique("nobody"), &[("page", "1")]).await;
    assert!(logs.is_empty());
    assert_eq!(total, 0);
}

async fn get_filters_by_tags(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("seed-tags");
    for (tag, msg) in [("a", "m-a"), ("b", "m-b"), ("c", "m-c")] {
        set_ok(
            &server,
            &json!({ "service_name": svc, "level": "INFO", "message": msg, "tag": tag }),
        )
        .await;
    }
    set_ok(
        &server,
        &json!({ "service_name": svc, "message": "untagged" }),
    )
    .await;
    server.settle().await;

    let (logs, total) = page(&server, &svc, &[("page", "1"), ("tags", "a,b")]).await;
    assert_eq!(total, 2);
    assert_eq!(messages(&logs), ["m-b", "m-a"]);
    assert_eq!(logs[0]["tag"], "b");

    let (logs, total) = page(&server, &svc, &[("tags", "c")]).await;
    assert_eq!(total, 1);
    assert_eq!(messages(&logs), ["m-c"]);

    let (logs, total) = page(&server, &svc, &[]).await;
    assert_eq!(total, 4);
    assert_eq!(logs[0]["message"], "untagged");
    assert_eq!(logs[0]["tag"], "", "an untagged entry has an empty tag");
    assert_eq!(logs[0]["level"], "INFO", "level defaults to INFO");
}

async fn pages_of_fifty_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("seed-pages");
    for i in 0..60 {
        set_ok(
            &server,
            &json!({
                "service_name": svc, "level": "INFO",
                "message": format!("m{i:02}"), "tag": "p",
                "timestamp": "2024-03-24T13:01:00",
            }),
        )
        .await;
    }
    server.settle().await;
    let (first, total) = page(&server, &svc, &[("page", "1")]).await;
    assert_eq!(total, 60);
    assert_eq!(first.len(), 50);
    assert_eq!(first[0]["message"], "m59", "newest first");
    assert_eq!(first[49]["message"], "m10");
    let (second, total) = page(&server, &svc, &[("page", "2")]).await;
    assert_eq!(total, 60);
    assert_eq!(second.len(), 10);
    assert_eq!(second[0]["message"], "m09");
    assert_eq!(second[9]["message"], "m00");

    let all: HashSet<&str> = messages(&first)
        .into_iter()
        .chain(messages(&second))
        .collect();
    assert_eq!(all.len(), 60, "pages overlap");

    let (third, total) = page(&server, &svc, &[("page", "3")]).await;
    assert!(third.is_empty());
    assert_eq!(total, 60);
}

async fn invalid_entries_name_the_seed_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("seed-bad");
    let cases = [
        (
            json!({ "service_name": "bad name", "message": "x" }),
            "service_name",
        ),
        (json!({ "message": "no service" }), "service_name"),
        (
            json!({ "service_name": svc, "message": "x", "timestamp": "not a time" }),
            "timestamp",
        ),
        (
            json!({ "service_name": svc, "message": "x", "level": "loud" }),
            "level",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = set(&server, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} answered {v}");
        assert_eq!(v["error"]["code"], "INVALID_ARGUMENT", "{v}");
        assert_eq!(
            v["error"]["fieldViolations"][0]["field"], field,
            "{body} answered {v}"
        );
    }
    // Not JSON at all.
    let resp = reqwest::Client::new()
        .post(format!("{}/log/set", server.http()))
        .header("content-type", "application/json")
        .body("{\"service_name\": ")
        .send()
        .await
        .expect("POST /log/set");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    server.settle().await;
    let (logs, total) = page(&server, &svc, &[]).await;
    assert!(logs.is_empty(), "rejected entries were stored: {logs:?}");
    assert_eq!(total, 0);

    // A bad service name in the path is rejected too, or simply matches nothing.
    let (status, v) = get_logs(&server, "bad%20name", &[]).await;
    if status == StatusCode::OK {
        assert_eq!(v["total"], 0, "{v}");
    } else {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    }
}

async fn missing_timestamp_defaults_to_receive_time(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("seed-now");
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    set_ok(
        &server,
        &json!({ "service_name": svc, "level": "DEBUG", "message": "now", "tag": "t" }),
    )
    .await;
    let after = chrono::Utc::now() + chrono::Duration::seconds(5);
    server.settle().await;
    let (logs, _) = page(&server, &svc, &[("page", "1")]).await;
    let ts = parse_time(logs[0]["timestamp"].as_str().expect("timestamp"));
    assert!(
        ts >= before && ts <= after,
        "timestamp {ts} is not the receive time"
    );
    assert_eq!(logs[0]["level"], "DEBUG");
}
