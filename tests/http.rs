//! The HTTP/JSON gateway (`/v1/...`), the SSE tail and the operational
//! endpoints, over real sockets on the same port as gRPC.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Backend, TestServer, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    push_object_array_and_ndjson_then_query,
    level_aliases_and_attribute_values,
    batch_with_invalid_service_stores_the_valid_entries,
    message_over_the_limit_names_the_limit,
    malformed_unknown_and_mistyped_bodies,
    oversized_body_is_rejected_and_server_keeps_working,
    query_filters,
    paging_walks_every_record_once,
    services_and_tags,
    sse_tail_backfill_live_heartbeat_and_resume,
    metrics_health_and_readiness,
    a_writer_that_stops_shows_in_readiness_health_and_metrics,
    ids_at_and_beyond_2_pow_63_bound_instead_of_wrapping,
    histogram_counts_by_level_over_round_buckets,
    context_around_an_entry,
    saved_views_are_created_listed_replaced_and_deleted,
);

// ---------------------------------------------------------------- helpers

async fn post_logs(server: &TestServer, body: String, content_type: &str) -> (StatusCode, Value) {
    common::send_json(
        reqwest::Client::new()
            .post(format!("{}/v1/logs", server.http()))
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

/// Pushes a JSON body that must be accepted whole; returns the answer.
async fn push(server: &TestServer, body: &Value) -> Value {
    let (status, v) = post_logs(server, body.to_string(), "application/json").await;
    assert_eq!(status, StatusCode::OK, "push {body} answered {v}");
    v
}

async fn get(server: &TestServer, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    common::send_json(
        reqwest::Client::new()
            .get(format!("{}{path}", server.http()))
            .query(query),
    )
    .await
}

/// GET /v1/logs that must succeed; the whole answer.
async fn query_page(server: &TestServer, query: &[(&str, &str)]) -> Value {
    let (status, v) = get(server, "/v1/logs", query).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "GET /v1/logs {query:?} answered {v}"
    );
    v
}

async fn records(server: &TestServer, query: &[(&str, &str)]) -> Vec<Value> {
    query_page(server, query).await["records"]
        .as_array()
        .expect("records array")
        .clone()
}

fn messages(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["message"].as_str().expect("message").to_string())
        .collect()
}

fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["id"].as_u64().expect("numeric id"))
        .collect()
}

/// The single field violation of a 400 answer, after checking its shape.
fn violation(status: StatusCode, body: &Value) -> (String, String) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT", "{body}");
    let v = &body["error"]["fieldViolations"][0];
    (
        v["field"]
            .as_str()
            .unwrap_or_else(|| panic!("no field in {body}"))
            .to_string(),
        v["description"].as_str().unwrap_or_default().to_string(),
    )
}

fn parse_time(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

/// Stored messages of `service`, oldest first.
async fn stored(server: &TestServer, service: &str) -> Vec<String> {
    messages(&records(server, &[("service", service), ("order", "oldest")]).await)
}

// ---------------------------------------------------------------- ingestion

async fn push_object_array_and_ndjson_then_query(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("shapes");
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);

    let one = json!({
        "service": svc, "level": "WARN", "message": "single",
        "tags": ["t1", "t2"], "attributes": {"k": "v"},
        "time": "2024-03-24T13:01:00.25Z",
    });
    assert_eq!(push(&server, &one).await, json!({ "accepted": 1 }));

    let array = json!([
        { "service": svc, "message": "array-0" },
        { "service": svc, "level": "ERROR", "message": "array-1", "tags": ["t3"] },
    ]);
    assert_eq!(push(&server, &array).await, json!({ "accepted": 2 }));

    let ndjson = format!(
        "{}\n{}\n",
        json!({ "service": svc, "message": "nd-0" }),
        json!({ "service": svc, "level": "DEBUG", "message": "nd-1" }),
    );
    let (status, body) = post_logs(&server, ndjson, "application/x-ndjson").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "accepted": 2 }));
    server.settle().await;

    // Newest first by default.
    let newest = records(&server, &[("service", &svc)]).await;
    assert_eq!(
        messages(&newest),
        ["nd-1", "nd-0", "array-1", "array-0", "single"]
    );
    let newest_ids = ids(&newest);
    assert!(
        newest_ids.windows(2).all(|w| w[0] > w[1]),
        "ids not strictly decreasing: {newest_ids:?}"
    );

    let oldest = records(&server, &[("service", &svc), ("order", "oldest")]).await;
    assert_eq!(
        messages(&oldest),
        ["single", "array-0", "array-1", "nd-0", "nd-1"]
    );
    let mut reversed = newest_ids.clone();
    reversed.reverse();
    assert_eq!(ids(&oldest), reversed);

    // Every field of the first entry.
    let r = &oldest[0];
    let keys: HashSet<&str> = r
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "id",
        "service",
        "level",
        "message",
        "tags",
        "attributes",
        "time",
        "receivedTime",
    ]
    .into();
    assert_eq!(keys, expected, "record fields: {r}");
    assert!(r["id"].as_u64().expect("id") > 0);
    assert_eq!(r["service"], svc.as_str());
    assert_eq!(r["level"], "WARN");
    assert_eq!(r["message"], "single");
    assert_eq!(r["tags"], json!(["t1", "t2"]));
    assert_eq!(r["attributes"], json!({ "k": "v" }));
    assert_eq!(
        parse_time(r["time"].as_str().expect("time")),
        parse_time("2024-03-24T13:01:00.25Z")
    );
    let received = parse_time(r["receivedTime"].as_str().expect("receivedTime"));
    let after = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(
        received >= before && received <= after,
        "receivedTime {received} is not now"
    );

    // Defaults: level INFO, no tags or attributes, time = receipt time.
    let d = &oldest[1];
    assert_eq!(d["level"], "INFO");
    assert_eq!(d["tags"], json!([]));
    assert_eq!(d["attributes"], json!({}));
    assert_eq!(
        parse_time(d["time"].as_str().expect("time")),
        parse_time(d["receivedTime"].as_str().expect("receivedTime"))
    );
    assert_eq!(oldest[2]["level"], "ERROR");
    assert_eq!(oldest[2]["tags"], json!(["t3"]));
    assert_eq!(oldest[4]["level"], "DEBUG");
}

async fn level_aliases_and_attribute_values(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("levels");
    let body = json!([
        { "service": svc, "level": "warning", "message": "0" },
        { "service": svc, "level": "CRITICAL", "message": "1" },
        { "service": svc, "level": "err", "message": "2" },
        { "service": svc, "level": 5, "message": "3" },
        { "service": svc, "level": "Info", "message": "4" },
        { "service": svc, "level": "LEVEL_TRACE", "message": "5" },
        {
            "service": svc, "message": "6",
            "attributes": { "n": 42, "f": 1.5, "b": true, "s": "text" },
        },
    ]);
    assert_eq!(push(&server, &body).await, json!({ "accepted": 7 }));
    server.settle().await;
    let rs = records(&server, &[("service", &svc), ("order", "oldest")]).await;
    let levels: Vec<&str> = rs
        .iter()
        .map(|r| r["level"].as_str().expect("level"))
        .collect();
    assert_eq!(
        levels,
        ["WARN", "FATAL", "ERROR", "ERROR", "INFO", "TRACE", "INFO"]
    );
    assert_eq!(
        rs[6]["attributes"],
        json!({ "n": "42", "f": "1.5", "b": "true", "s": "text" })
    );

    // An unknown level is rejected, naming the field.
    let (status, body) = post_logs(
        &server,
        json!({ "service": svc, "level": "loud" }).to_string(),
        "application/json",
    )
    .await;
    let (field, _) = violation(status, &body);
    assert_eq!(field, "entries[0].level");
}

// ---------------------------------------------------------------- validation

async fn batch_with_invalid_service_stores_the_valid_entries(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("partial");
    let body = json!([
        { "service": svc, "message": "valid-0" },
        { "service": "bad name", "message": "invalid" },
        { "service": svc, "message": "valid-2" },
    ]);
    let (status, answer) = post_logs(&server, body.to_string(), "application/json").await;
    let (field, description) = violation(status, &answer);
    assert_eq!(field, "entries[1].service");
    assert!(!description.is_empty(), "{answer}");
    assert_eq!(
        answer["error"]["fieldViolations"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    assert_eq!(answer["error"]["accepted"], 2, "{answer}");
    server.settle().await;
    assert_eq!(stored(&server, &svc).await, ["valid-0", "valid-2"]);
}

async fn message_over_the_limit_names_the_limit(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.intake.limits.max_message_bytes = 10).await;
    let svc = unique("limit");
    let body = json!([
        { "service": svc, "message": "short" },
        { "service": svc, "message": "this one is far too long" },
    ]);
    let (status, answer) = post_logs(&server, body.to_string(), "application/json").await;
    let (field, description) = violation(status, &answer);
    assert_eq!(field, "entries[1].message");
    assert!(
        description.contains("10"),
        "description should name the limit: {description:?}"
    );
    assert_eq!(answer["error"]["accepted"], 1, "{answer}");
    server.settle().await;
    assert_eq!(stored(&server, &svc).await, ["short"]);
}

async fn malformed_unknown_and_mistyped_bodies(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("bodies");

    let (status, answer) = post_logs(
        &server,
        format!(r#"{{"service": "{svc}", "message": "#),
        "application/json",
    )
    .await;
    let (field, _) = violation(status, &answer);
    assert_eq!(field, "body");

    let (status, answer) = post_logs(
        &server,
        json!({ "service": svc, "message": "m", "bogus": 1 }).to_string(),
        "application/json",
    )
    .await;
    let (field, description) = violation(status, &answer);
    assert!(
        field.contains("bogus") || description.contains("bogus"),
        "unknown field not named: {answer}"
    );
    assert!(field.starts_with("entries[0]"), "{answer}");

    let (status, answer) = post_logs(
        &server,
        json!({ "service": svc, "message": "m", "tags": 5 }).to_string(),
        "application/json",
    )
    .await;
    let (field, _) = violation(status, &answer);
    assert!(field.contains("tags"), "field {field:?} should name tags");

    // A null attribute and an integer beyond 64 bits are refused, naming
    // the attribute, rather than stored changed ("" and a rounded float).
    for (value, says) in [("null", "null"), ("1180591620717411303424", "64 bits")] {
        let (status, answer) = post_logs(
            &server,
            format!(r#"{{"service": "{svc}", "message": "m", "attributes": {{"x": {value}}}}}"#),
            "application/json",
        )
        .await;
        let (field, description) = violation(status, &answer);
        assert_eq!(field, "entries[0].attributes.x", "{answer}");
        assert!(description.contains(says), "{answer}");
    }
    // An entry that is not an object is described in the API's terms.
    let (status, answer) = post_logs(&server, "[\"just text\"]".into(), "application/json").await;
    let (_, description) = violation(status, &answer);
    assert!(description.contains("an entry (a JSON object)"), "{answer}");
    assert!(!answer.to_string().contains("EntryIn"), "{answer}");

    // None of the rejected bodies stored anything.
    server.settle().await;
    assert!(stored(&server, &svc).await.is_empty());
}

async fn oversized_body_is_rejected_and_server_keeps_working(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.intake.limits.max_request_bytes = 4096).await;
    let svc = unique("big");
    let big: Vec<Value> = (0..40)
        .map(|i| json!({ "service": svc, "message": format!("{i:0>200}") }))
        .collect();
    let body = Value::Array(big).to_string();
    assert!(body.len() > 4096 * 2);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.http()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server should answer an oversized body");
    assert!(
        matches!(
            resp.status(),
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST
        ),
        "oversized body answered {}",
        resp.status()
    );
    server.settle().await;
    assert!(stored(&server, &svc).await.is_empty());

    let ok = json!({ "service": svc, "message": "small" });
    assert_eq!(push(&server, &ok).await, json!({ "accepted": 1 }));
    server.settle().await;
    assert_eq!(stored(&server, &svc).await, ["small"]);
}

// ---------------------------------------------------------------- queries

/// `GET /v1/histogram`: round buckets over the range asked, or over what is
/// stored, counting each level; filters as `GET /v1/logs` takes them; bad
/// parameters named.
async fn histogram_counts_by_level_over_round_buckets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("histogram");
    let at = |minute: u32, second: u32| format!("2024-03-01T10:{minute:02}:{second:02}Z");
    let mut body = Vec::new();
    for (minute, level, n) in [
        (0, "INFO", 3),
        (0, "ERROR", 1),
        (7, "WARN", 2),
        (59, "INFO", 1),
    ] {
        for i in 0..n {
            body.push(
                json!({ "service": svc, "level": level, "message": format!("m{minute}-{i}"),
                "time": at(minute, 10 + i) }),
            );
        }
    }
    push(&server, &Value::Array(body)).await;
    server.settle().await;

    let hist = async |query: &[(&str, &str)]| {
        let (status, v) = get(&server, "/v1/histogram", query).await;
        assert_eq!(status, StatusCode::OK, "{query:?}: {v}");
        v["buckets"].as_array().expect("buckets").clone()
    };
    // An hour in 6 buckets: 10 minutes each, on round times.
    let (start, end) = (at(0, 0), "2024-03-01T11:00:00Z".to_string());
    let q = [
        ("service", svc.as_str()),
        ("start", &start),
        ("end", &end),
        ("buckets", "6"),
    ];
    let b = hist(&q).await;
    assert_eq!(b.len(), 6, "{b:?}");
    assert_eq!(b[0]["start"], "2024-03-01T10:00:00.000000Z");
    assert_eq!(b[0]["end"], "2024-03-01T10:10:00.000000Z");
    assert_eq!(b[0]["counts"], json!({ "INFO": 3, "ERROR": 1, "WARN": 2 }));
    assert_eq!(b[1]["counts"], json!({}));
    assert_eq!(b[5]["counts"], json!({ "INFO": 1 }));
    // The level filter, and a range that splits minutes.
    let q = [
        ("service", svc.as_str()),
        ("min_level", "WARN"),
        ("start", &at(0, 11)),
        ("end", &end),
    ];
    let total: u64 = hist(&q)
        .await
        .iter()
        .flat_map(|b| {
            b["counts"]
                .as_object()
                .expect("counts")
                .values()
                .map(|n| n.as_u64().expect("n"))
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(
        total, 2,
        "the two WARNs; the ERROR at 10:00:10 is before the range"
    );
    // Without a range: from the first stored minute to the last.
    let b = hist(&[("service", svc.as_str())]).await;
    assert_eq!(
        b.first().map(|b| b["start"].clone()),
        Some(json!("2024-03-01T10:00:00.000000Z"))
    );
    assert!(
        b.len() <= 100
            && b.last()
                .is_some_and(|b| b["end"].as_str() >= Some("2024-03-01T11:00:00.000000Z"))
    );
    // A service nobody stored: no buckets.
    assert!(hist(&[("service", "nobody-stored-this")]).await.is_empty());

    // The widest range a client can ask for is answered, not overflowed.
    let b = hist(&[
        ("service", svc.as_str()),
        ("start", "-9000000000000000"),
        ("end", "9000000000000000"),
    ])
    .await;
    assert!(!b.is_empty() && b.len() <= 100, "{} buckets", b.len());
    let (status, v) = get(&server, "/v1/histogram", &[("buckets", "5000")]).await;
    assert_eq!(violation(status, &v).0, "buckets");
    let (status, v) = get(
        &server,
        "/v1/histogram",
        &[("start", &end), ("end", &start)],
    )
    .await;
    assert_eq!(violation(status, &v).0, "end_time");
}

/// `GET /v1/logs/{id}/context` and `GetContext`: the neighbours by id in
/// the entry's service or across services, whether more lie beyond, and
/// bad parameters named.
async fn context_around_an_entry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (svc, other) = (unique("context"), unique("context-other"));
    // One batch, interleaved: s0, o0, s1, o1, ...
    let body: Vec<Value> = (0..10)
        .flat_map(|i| {
            [
                json!({ "service": svc, "message": format!("s{i}") }),
                json!({ "service": other, "level": "DEBUG", "message": format!("o{i}") }),
            ]
        })
        .collect();
    push(&server, &Value::Array(body)).await;
    server.settle().await;
    let by_message = ids_by_message(&server, &svc).await;
    let id = by_message["s5"];
    let context = async |query: &[(&str, &str)]| {
        let (status, v) = get(&server, &format!("/v1/logs/{id}/context"), query).await;
        assert_eq!(status, StatusCode::OK, "{query:?}: {v}");
        v
    };
    let v = context(&[("before", "2"), ("after", "3")]).await;
    let side = |v: &Value, key: &str| messages(v[key].as_array().expect("side"));
    assert_eq!(side(&v, "before"), ["s3", "s4"]);
    assert_eq!(v["entry"]["message"], "s5");
    assert_eq!(v["entry"]["id"], json!(id));
    assert_eq!(side(&v, "after"), ["s6", "s7", "s8"]);
    assert_eq!(
        (v["moreBefore"].clone(), v["moreAfter"].clone()),
        (json!(true), json!(true))
    );
    // The defaults (20 a side) reach both ends of the service.
    let v = context(&[]).await;
    assert_eq!(side(&v, "before"), ["s0", "s1", "s2", "s3", "s4"]);
    assert_eq!(side(&v, "after"), ["s6", "s7", "s8", "s9"]);
    assert_eq!(
        (v["moreBefore"].clone(), v["moreAfter"].clone()),
        (json!(false), json!(false))
    );
    // Across services, and none on one side. Ids follow commit order,
    // which in the Kafka mode need not be the batch's across services
    // (each service is a partition's), so the neighbours are read back.
    let mut both: Vec<(u64, String)> = ids_by_message(&server, &svc)
        .await
        .into_iter()
        .chain(ids_by_message(&server, &other).await)
        .map(|(m, i)| (i, m))
        .collect();
    both.sort();
    let at = both.iter().position(|(i, _)| *i == id).expect("s5 stored");
    let names = |r: &[(u64, String)]| r.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>();
    let v = context(&[("before", "0"), ("after", "2"), ("all_services", "true")]).await;
    assert_eq!(side(&v, "before"), Vec::<String>::new());
    assert_eq!(v["moreBefore"], json!(false));
    assert_eq!(side(&v, "after"), names(&both[at + 1..at + 3]));
    let v = context(&[("before", "1"), ("after", "0"), ("all_services", "true")]).await;
    assert_eq!(side(&v, "before"), names(&both[at - 1..at]));

    // The same through gRPC.
    let got = server
        .client()
        .await
        .get_context(taillight::proto::GetContextRequest {
            id,
            before: Some(1),
            after: Some(1),
            all_services: false,
        })
        .await
        .expect("GetContext")
        .into_inner();
    let names: Vec<&str> = (got.before.iter().chain(&got.entry).chain(&got.after))
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(names, ["s4", "s5", "s6"]);

    // An id nobody stored, and bad parameters.
    let (status, v) = get(&server, "/v1/logs/999999999999/context", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v.to_string().contains("no entry with id 999999999999"),
        "{v}"
    );
    for (path, query, field) in [
        (
            format!("/v1/logs/{id}/context"),
            ("before", "5000"),
            "before",
        ),
        (format!("/v1/logs/{id}/context"), ("after", "x"), "after"),
        (
            format!("/v1/logs/{id}/context"),
            ("all_services", "maybe"),
            "all_services",
        ),
        ("/v1/logs/abc/context".to_string(), ("before", "1"), "id"),
        ("/v1/logs/0/context".to_string(), ("before", "1"), "id"),
    ] {
        let (status, v) = get(&server, &path, &[query]).await;
        assert_eq!(violation(status, &v).0, field, "{path} {query:?}");
    }
}

/// `/v1/views` and the view RPCs: a view is saved under a name, listed by
/// name, replaced by saving the name again, and deleted; bad names and
/// bodies are refused naming the field.
async fn saved_views_are_created_listed_replaced_and_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = reqwest::Client::new();
    let url = |name: &str| {
        let mut u = reqwest::Url::parse(&format!("{}/v1/views/", server.http())).expect("url");
        u.path_segments_mut()
            .expect("segments")
            .pop_if_empty()
            .push(name);
        u
    };
    let put =
        async |name: &str, body: Value| common::send_json(http.put(url(name)).json(&body)).await;
    let list = async || {
        let (status, v) = get(&server, "/v1/views", &[]).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["views"].as_array().expect("views").clone()
    };
    assert!(list().await.is_empty());
    let (status, v) = put(
        "morning errors",
        json!({ "state": "service=api&levels=ERROR&range=24h&history=1" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "morning errors");
    assert!(v["updatedTime"].as_str().is_some(), "{v}");
    let (status, _) = put("a/b ü", json!({ "state": "service=web&q=timeout" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = put(
        "morning errors",
        json!({ "state": "service=api&levels=WARN,ERROR" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let views = list().await;
    let names: Vec<&str> = views
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["a/b ü", "morning errors"]);
    assert_eq!(views[1]["state"], "service=api&levels=WARN,ERROR");

    // The same through gRPC.
    let mut c = server.client().await;
    let listed = c
        .list_views(taillight::proto::ListViewsRequest {})
        .await
        .expect("ListViews")
        .into_inner()
        .views;
    assert_eq!(listed.len(), 2);
    c.delete_view(taillight::proto::DeleteViewRequest {
        name: "a/b ü".into(),
    })
    .await
    .expect("DeleteView");
    let gone = c
        .delete_view(taillight::proto::DeleteViewRequest {
            name: "a/b ü".into(),
        })
        .await
        .expect_err("deleted twice");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let resp = http
        .delete(url("morning errors"))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = http
        .delete(url("morning errors"))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(list().await.is_empty());

    for (name, body, field) in [
        (" padded", json!({ "state": "service=a" }), "view.name"),
        ("x", json!({ "state": "s".repeat(5000) }), "view.state"),
        ("x", json!({ "stat": "service=a" }), "state"),
        ("x", json!("service=a"), "state"),
    ] {
        let (status, v) = put(name, body).await;
        assert_eq!(violation(status, &v).0, field, "{name:?}");
    }
}

async fn query_filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("filters");
    let other = unique("filters-other");
    let body = json!([
        { "service": svc, "level": "INFO",  "message": "alpha one",   "tags": ["a"],      "time": "2024-01-01T00:00:00Z" },
        { "service": svc, "level": "WARN",  "message": "Beta Two",    "tags": ["b"],      "time": "2024-01-01T00:00:01Z" },
        { "service": svc, "level": "ERROR", "message": "gamma THREE", "tags": ["a", "c"], "time": "2024-01-01T00:00:02Z" },
        { "service": svc, "level": "DEBUG", "message": "delta",                           "time": "2024-01-01T00:00:03Z" },
        { "service": svc, "level": "FATAL", "message": "alpha beta",  "tags": ["c"],      "time": "2024-01-01T00:00:04Z" },
    ]);
    assert_eq!(push(&server, &body).await, json!({ "accepted": 5 }));
    server.settle().await;
    // The other service's entry comes in a later push, once the first is
    // stored: ids grow in commit order, and only one service's entries keep
    // their push order within a batch (the Kafka queue is keyed by service),
    // so this makes it the newest in both backends.
    let body = json!([
        { "service": other, "level": "FATAL", "message": "alpha beta elsewhere", "tags": ["a", "b", "c"], "time": "2024-01-01T00:00:02Z" },
    ]);
    assert_eq!(push(&server, &body).await, json!({ "accepted": 1 }));
    server.settle().await;

    let check = |q: Vec<(&'static str, String)>, want: &'static [&'static str]| {
        let server = &server;
        let svc = svc.clone();
        async move {
            let mut params: Vec<(&str, &str)> =
                vec![("service", svc.as_str()), ("order", "oldest")];
            params.extend(q.iter().map(|(k, v)| (*k, v.as_str())));
            let got = messages(&records(server, &params).await);
            assert_eq!(got, want, "query {params:?}");
        }
    };
    let s = |v: &str| v.to_string();

    check(
        vec![],
        &[
            "alpha one",
            "Beta Two",
            "gamma THREE",
            "delta",
            "alpha beta",
        ],
    )
    .await;
    // Levels: repeated keys and comma-separated values, names case-insensitive.
    check(
        vec![("level", s("WARN")), ("level", s("ERROR"))],
        &["Beta Two", "gamma THREE"],
    )
    .await;
    check(
        vec![("level", s("warn,error"))],
        &["Beta Two", "gamma THREE"],
    )
    .await;
    check(
        vec![("min_level", s("error"))],
        &["gamma THREE", "alpha beta"],
    )
    .await;
    check(
        vec![("min_level", s("WARN")), ("level", s("WARN,FATAL"))],
        &["Beta Two", "alpha beta"],
    )
    .await;
    // Tags: any of them.
    check(vec![("tag", s("a"))], &["alpha one", "gamma THREE"]).await;
    check(
        vec![("tag", s("a")), ("tag", s("c"))],
        &["alpha one", "gamma THREE", "alpha beta"],
    )
    .await;
    check(
        vec![("tag", s("a,c"))],
        &["alpha one", "gamma THREE", "alpha beta"],
    )
    .await;
    // Text: case-insensitive substring, as `text` or `q`.
    check(vec![("text", s("beta"))], &["Beta Two", "alpha beta"]).await;
    check(vec![("q", s("BETA"))], &["Beta Two", "alpha beta"]).await;
    check(vec![("text", s("three"))], &["gamma THREE"]).await;
    // Time range: start inclusive, end exclusive.
    check(
        vec![
            ("start", s("2024-01-01T00:00:01Z")),
            ("end", s("2024-01-01T00:00:03Z")),
        ],
        &["Beta Two", "gamma THREE"],
    )
    .await;
    check(
        vec![("start", s("2024-01-01T01:00:03+01:00"))],
        &["delta", "alpha beta"],
    )
    .await;
    // Criteria combine.
    check(
        vec![
            ("tag", s("c")),
            ("text", s("alpha")),
            ("min_level", s("warn")),
        ],
        &["alpha beta"],
    )
    .await;

    // Several services at once.
    let both = records(
        &server,
        &[("service", &format!("{svc},{other}")), ("tag", "b")],
    )
    .await;
    assert_eq!(messages(&both), ["alpha beta elsewhere", "Beta Two"]);

    // Bad parameters are named.
    for (k, v, field) in [
        ("start", "yesterday", "start"),
        ("min_level", "loud", "min_level"),
        ("order", "sideways", "order"),
        ("page_size", "many", "page_size"),
    ] {
        let (status, answer) = get(&server, "/v1/logs", &[("service", &svc), (k, v)]).await;
        let (got, _) = violation(status, &answer);
        assert_eq!(got, field, "{k}={v}: {answer}");
    }
    // The second `level` value is the bad one: the violation names that
    // parameter (as `level[1]`, or plainly `level`), not a nested path.
    let (status, answer) = get(
        &server,
        "/v1/logs",
        &[("service", &svc), ("level", "warn"), ("level", "loud")],
    )
    .await;
    let (got, description) = violation(status, &answer);
    assert!(
        got == "level[1]" || got == "level",
        "bad level parameter named {got:?}: {answer}"
    );
    assert!(description.contains("loud"), "{description}");
}

async fn paging_walks_every_record_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("paging");
    let batch: Vec<Value> = (0..25)
        .map(|i| json!({ "service": svc, "message": format!("m{i:02}"), "time": "2024-05-05T05:05:05Z" }))
        .collect();
    assert_eq!(
        push(&server, &Value::Array(batch)).await,
        json!({ "accepted": 25 })
    );
    server.settle().await;

    async fn walk(server: &TestServer, svc: &str, order: &str) -> (Vec<u64>, Vec<usize>) {
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        let mut token = String::new();
        for _ in 0..10 {
            let mut q = vec![("service", svc), ("page_size", "7"), ("order", order)];
            if !token.is_empty() {
                q.push(("page_token", token.as_str()));
            }
            let page = query_page(server, &q).await;
            let rs = page["records"].as_array().expect("records").clone();
            sizes.push(rs.len());
            all.extend(ids(&rs));
            token = page["nextPageToken"]
                .as_str()
                .expect("nextPageToken")
                .to_string();
            if token.is_empty() {
                return (all, sizes);
            }
        }
        panic!("paging {order} never ended: {sizes:?}");
    }

    let (newest, sizes) = walk(&server, &svc, "newest").await;
    assert_eq!(sizes, [7, 7, 7, 4]);
    assert_eq!(newest.len(), 25);
    assert_eq!(
        newest.iter().collect::<HashSet<_>>().len(),
        25,
        "repeats: {newest:?}"
    );
    assert!(newest.windows(2).all(|w| w[0] > w[1]), "{newest:?}");

    let (oldest, sizes) = walk(&server, &svc, "oldest").await;
    assert_eq!(sizes, [7, 7, 7, 4]);
    let mut reversed = newest.clone();
    reversed.reverse();
    assert_eq!(oldest, reversed);

    // The same ids as one big page.
    let whole = ids(&records(&server, &[("service", &svc), ("page_size", "100")]).await);
    assert_eq!(whole, newest);

    // Page numbers, with the total.
    let page = query_page(
        &server,
        &[
            ("service", &svc),
            ("page_size", "7"),
            ("page", "2"),
            ("include_total", "true"),
        ],
    )
    .await;
    assert_eq!(page["totalCount"], 25, "{page}");
    let rs = page["records"].as_array().expect("records").clone();
    assert_eq!(ids(&rs), newest[7..14]);
    let last = query_page(
        &server,
        &[("service", &svc), ("page_size", "7"), ("page", "4")],
    )
    .await;
    assert_eq!(
        ids(last["records"].as_array().expect("records")),
        newest[21..]
    );
    assert_eq!(last["totalCount"], 25, "page implies the total: {last}");

    // include_total with cursor paging counts every match, not the page.
    let first = query_page(
        &server,
        &[
            ("service", &svc),
            ("page_size", "7"),
            ("include_total", "true"),
        ],
    )
    .await;
    assert_eq!(first["totalCount"], 25, "{first}");
    let without = query_page(&server, &[("service", &svc), ("page_size", "7")]).await;
    assert!(without.get("totalCount").is_none(), "{without}");

    // Bad tokens and sizes.
    let (status, answer) = get(
        &server,
        "/v1/logs",
        &[("service", &svc), ("page_token", "not-a-token!")],
    )
    .await;
    assert_eq!(violation(status, &answer).0, "page_token");
    let token = first["nextPageToken"].as_str().expect("token").to_string();
    let (status, answer) = get(
        &server,
        "/v1/logs",
        &[
            ("service", &svc),
            ("page_token", &token),
            ("order", "oldest"),
        ],
    )
    .await;
    assert_eq!(
        violation(status, &answer).0,
        "page_token",
        "token of the other order"
    );
    let (status, answer) = get(
        &server,
        "/v1/logs",
        &[("service", &svc), ("page_size", "5000")],
    )
    .await;
    let (field, description) = violation(status, &answer);
    assert_eq!(field, "page_size");
    assert!(description.contains("1000"), "{description}");
}

async fn services_and_tags(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc_b = unique("svc-b");
    let svc_a = unique("svc-a");
    let body = json!([
        { "service": svc_b, "message": "1", "tags": ["zeta", "alpha"] },
        { "service": svc_b, "message": "2", "tags": ["mid", "alpha"] },
        { "service": svc_a, "message": "3" },
    ]);
    push(&server, &body).await;
    server.settle().await;

    let (status, v) = get(&server, "/v1/services", &[]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let services: Vec<String> = serde_json::from_value(v["services"].clone()).expect("services");
    assert!(
        services.contains(&svc_a) && services.contains(&svc_b),
        "{services:?}"
    );
    let mut sorted = services.clone();
    sorted.sort();
    assert_eq!(services, sorted, "services are sorted");
    assert_eq!(services.iter().filter(|s| **s == svc_b).count(), 1);

    let (status, v) = get(&server, &format!("/v1/services/{svc_b}/tags"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({ "tags": ["alpha", "mid", "zeta"] }));
    let (status, v) = get(&server, &format!("/v1/services/{svc_a}/tags"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({ "tags": [] }));

    let (status, v) = get(&server, "/v1/services/bad%20name/tags", &[]).await;
    assert_eq!(violation(status, &v).0, "service");
}

// ---------------------------------------------------------------- live tail (SSE)

#[derive(Debug)]
struct Frame {
    event: String,
    id: Option<String>,
    data: String,
}

impl Frame {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("SSE data is not JSON: {:?}: {e}", self.data))
    }
}

struct SseReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl SseReader {
    async fn open(server: &TestServer, query: &[(&str, &str)], last_event_id: Option<u64>) -> Self {
        let mut req = reqwest::Client::new()
            .get(format!("{}/v1/tail", server.http()))
            .query(query)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.expect("GET /v1/tail");
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct:?}");
        SseReader {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next event (comments skipped), waiting at most `within`.
    async fn next(&mut self, within: Duration) -> Frame {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..pos + 2).collect();
                let text = String::from_utf8(raw).expect("UTF-8 SSE");
                let mut frame = Frame {
                    event: String::new(),
                    id: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in text.lines() {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match name {
                        "event" => frame.event = value.to_string(),
                        "id" => frame.id = Some(value.to_string()),
                        "data" => {
                            if any && !frame.data.is_empty() {
                                frame.data.push('\n');
                            }
                            frame.data.push_str(value);
                        }
                        _ => continue,
                    }
                    any = true;
                }
                if !any {
                    continue;
                }
                if frame.event.is_empty() {
                    frame.event = "message".into();
                }
                return frame;
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("no SSE event within {within:?}"))
                .expect("reading the SSE stream")
                .expect("the SSE stream ended");
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next event other than a heartbeat (those may come at any time).
    async fn next_event(&mut self) -> Frame {
        loop {
            let f = self.next(Duration::from_secs(5)).await;
            if f.event != "heartbeat" {
                return f;
            }
        }
    }

    async fn expect_log(&mut self, id: u64, message: &str) -> Value {
        let f = self.next_event().await;
        assert_eq!(f.event, "log", "expected log {message:?}, got {f:?}");
        assert_eq!(f.id.as_deref(), Some(id.to_string().as_str()), "{f:?}");
        let v = f.json();
        assert_eq!(v["id"], id, "{f:?}");
        assert_eq!(v["message"], message, "{f:?}");
        v
    }

    async fn expect_live(&mut self) {
        let f = self.next_event().await;
        assert_eq!(f.event, "status", "expected status, got {f:?}");
        assert_eq!(f.json()["state"], "LIVE", "{f:?}");
    }
}

/// Stored ids of `service` by message.
async fn ids_by_message(server: &TestServer, service: &str) -> HashMap<String, u64> {
    records(server, &[("service", service), ("page_size", "1000")])
        .await
        .iter()
        .map(|r| {
            (
                r["message"].as_str().expect("message").to_string(),
                r["id"].as_u64().expect("id"),
            )
        })
        .collect()
}

async fn sse_tail_backfill_live_heartbeat_and_resume(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("sse");
    let other = unique("sse-other");
    let body = json!([
        { "service": svc, "level": "WARN", "message": "a0", "tags": ["x"] },
        { "service": svc, "message": "a1" },
        { "service": svc, "message": "a2" },
    ]);
    push(&server, &body).await;
    server.settle().await;
    let id = ids_by_message(&server, &svc).await;

    let mut tail = SseReader::open(
        &server,
        &[("service", &svc), ("last", "2"), ("heartbeat", "1")],
        None,
    )
    .await;
    // Backfill in id order, then the switch to live.
    let first = tail.expect_log(id["a1"], "a1").await;
    assert_eq!(first["service"], svc.as_str());
    assert_eq!(first["level"], "INFO");
    tail.expect_log(id["a2"], "a2").await;
    tail.expect_live().await;

    // Live: only matching entries arrive.
    push(
        &server,
        &json!({ "service": other, "message": "not for this tail" }),
    )
    .await;
    push(
        &server,
        &json!({ "service": svc, "level": "ERROR", "message": "a3" }),
    )
    .await;
    server.settle().await;
    let id = ids_by_message(&server, &svc).await;
    let live = tail.expect_log(id["a3"], "a3").await;
    assert_eq!(live["level"], "ERROR");

    // A quiet stream gets heartbeats (every second here).
    let beat = tail.next(Duration::from_secs(4)).await;
    assert_eq!(beat.event, "heartbeat", "{beat:?}");
    let hb = beat.json();
    assert_eq!(hb["lastId"], id["a3"], "{hb}");
    assert!(hb["time"].as_str().is_some_and(|t| !t.is_empty()), "{hb}");
    drop(tail);

    // Reconnecting with Last-Event-ID resumes right after it: no duplicate.
    let mut resumed = SseReader::open(
        &server,
        &[("service", &svc), ("heartbeat", "1")],
        Some(id["a1"]),
    )
    .await;
    resumed.expect_log(id["a2"], "a2").await;
    resumed.expect_log(id["a3"], "a3").await;
    resumed.expect_live().await;
    push(&server, &json!({ "service": svc, "message": "a4" })).await;
    server.settle().await;
    let id = ids_by_message(&server, &svc).await;
    resumed.expect_log(id["a4"], "a4").await;
    // Nothing else but heartbeats follows.
    let f = resumed.next(Duration::from_secs(4)).await;
    assert_eq!(f.event, "heartbeat", "{f:?}");
}

// ---------------------------------------------------------------- operations

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

async fn metrics_text(server: &TestServer) -> String {
    let resp = reqwest::get(format!("{}/metrics", server.http()))
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        ct.starts_with("application/openmetrics-text"),
        "content-type {ct:?}"
    );
    resp.text().await.expect("metrics body")
}

/// A part whose task ends (here the writer panics, as a bug would make it)
/// must not leave a server that looks alive: `/readyz`, gRPC health and
/// `taillight_ready` all say so, naming the part.
async fn a_writer_that_stops_shows_in_readiness_health_and_metrics(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.writer.fault_panic_after_store = Some(1)).await;
    let svc = unique("stops");
    // Stored, but the writer panics before acknowledging it (the client
    // hears 503 in the embedded mode, 200 from Kafka in the distributed).
    let body = json!([{ "service": svc, "message": "the last one stored" }]);
    post_logs(&server, body.to_string(), "application/json").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let r = reqwest::get(format!("{}/readyz", server.http()))
            .await
            .expect("readyz");
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break r.text().await.expect("body");
        }
        assert!(Instant::now() < deadline, "/readyz still {}", r.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains("writer: down"), "{text}");
    assert_eq!(metric(&metrics_text(&server).await, "taillight_ready"), 0.0);
    // gRPC health follows readiness on the change, from a task of its own.
    let channel = tonic::transport::Channel::from_shared(server.http())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        if status == not_serving {
            break;
        }
        assert!(Instant::now() < deadline, "gRPC health still says {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics_health_and_readiness(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/healthz", "/readyz"] {
        let resp = reqwest::get(format!("{}{path}", server.http()))
            .await
            .expect(path);
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }

    let svc = unique("metrics");
    let before = metrics_text(&server).await;
    let accepted0 = metric(&before, "taillight_entries_accepted_total");
    let invalid0 = metric(&before, "taillight_errors_total{kind=\"invalid_entry\"}");
    assert_eq!(metric(&before, "taillight_tail_subscribers"), 0.0);

    let batch: Vec<Value> = (0..3)
        .map(|i| json!({ "service": svc, "message": format!("m{i}") }))
        .collect();
    push(&server, &Value::Array(batch)).await;
    server.settle().await;
    let after = metrics_text(&server).await;
    assert!(
        metric(&after, "taillight_entries_accepted_total") >= accepted0 + 3.0,
        "{after}"
    );
    assert!(
        metric(&after, "taillight_entries_stored_total") >= 3.0,
        "{after}"
    );
    assert!(
        metric(&after, "taillight_batch_size_count") >= 1.0,
        "{after}"
    );
    assert!(metric(&after, "taillight_batch_size_sum") >= 3.0, "{after}");
    // Each entry's delay from receipt is counted when the writer read it and
    // when it was stored; the buckets are cumulative and end at the count.
    for point in ["read", "stored"] {
        let count = metric(
            &after,
            &format!("taillight_entry_delay_seconds_count{{point=\"{point}\"}}"),
        );
        assert!(count >= 3.0, "{point}: {after}");
        let inf = metric(
            &after,
            &format!("taillight_entry_delay_seconds_bucket{{le=\"+Inf\",point=\"{point}\"}}"),
        );
        assert_eq!(inf, count, "{point}: {after}");
        let fast = metric(
            &after,
            &format!("taillight_entry_delay_seconds_bucket{{le=\"0.001\",point=\"{point}\"}}"),
        );
        assert!(fast <= count, "{point}: {after}");
    }

    // A rejected entry counts as an invalid_entry error.
    let (status, _) = post_logs(
        &server,
        json!({ "service": "bad name" }).to_string(),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let after_bad = metrics_text(&server).await;
    assert!(
        metric(&after_bad, "taillight_errors_total{kind=\"invalid_entry\"}") >= invalid0 + 1.0,
        "{after_bad}"
    );

    // An open tail is a subscriber, until the client goes away.
    let mut tail = SseReader::open(&server, &[("service", &svc), ("heartbeat", "1")], None).await;
    tail.expect_live().await;
    assert_eq!(
        metric(&metrics_text(&server).await, "taillight_tail_subscribers"),
        1.0
    );
    drop(tail);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = metric(&metrics_text(&server).await, "taillight_tail_subscribers");
        if n == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tail subscriber still counted: {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ids a client sends are u64s, stored ids positive i64s: a bound at or
/// above 2^63 must not wrap negative. After the largest id there is
/// nothing; before it, everything; a tail resuming after it replays
/// nothing (and then shows what is stored later, were any id that high).
async fn ids_at_and_beyond_2_pow_63_bound_instead_of_wrapping(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("bigid");
    push(
        &server,
        &json!([{ "service": svc, "message": "b0" }, { "service": svc, "message": "b1" }]),
    )
    .await;
    server.settle().await;
    for big in [
        "18446744073709551615",
        "9223372036854775808",
        "9223372036854775807",
    ] {
        let after = records(&server, &[("service", &svc), ("after_id", big)]).await;
        assert!(after.is_empty(), "after_id={big}: {after:?}");
        let before = records(&server, &[("service", &svc), ("before_id", big)]).await;
        assert_eq!(messages(&before), ["b1", "b0"], "before_id={big}");
    }
    let mut tail = SseReader::open(
        &server,
        &[("service", &svc), ("heartbeat", "1")],
        Some(u64::MAX),
    )
    .await;
    tail.expect_live().await;
    let f = tail.next(Duration::from_millis(1500)).await;
    assert_eq!(
        f.event, "heartbeat",
        "nothing replayed after the largest id: {f:?}"
    );
}

/// A path nothing serves: 404 with the gateway's JSON error (it was a bare
/// 400), and UNIMPLEMENTED to a gRPC client asking for an unknown method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_not_found() {
    let server = TestServer::start(Backend::Embedded).await;
    for path in ["/nope", "/v1/nope", "/v1/logs/x"] {
        let (status, v) = get(&server, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {v}");
        assert_eq!(v["error"]["code"], "NOT_FOUND", "{path}");
    }
    let grpc = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client")
        .post(format!("{}/taillight.v1.LogService/Nope", server.http()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("grpc");
    assert_eq!(grpc.headers()["grpc-status"], "12");
}

/// 50,000 bad lines and one good in an NDJSON body: the answer lists the
/// first 100 refusals and how many more there were, so its size does not
/// grow with the body; the good line is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_do_not_grow_with_the_body() {
    let server = TestServer::start(Backend::Embedded).await;
    let svc = unique("manybad");
    let mut body = format!("{}\n", json!({"service": svc, "message": "good"}));
    for _ in 0..50_000 {
        body.push_str("{\"service\":\"bad name\",\"message\":\"x\"}\n");
    }
    let res = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.http()))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.expect("body");
    assert!(text.len() < 64 * 1024, "the answer is {} bytes", text.len());
    let v: Value = serde_json::from_str(&text).expect("json");
    let listed = v["error"]["fieldViolations"]
        .as_array()
        .expect("violations");
    assert_eq!(listed.len(), 101, "100 listed and one saying how many more");
    assert_eq!(listed[0]["field"], "entries[1].service");
    assert!(
        listed[100]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("49900 more entries were refused")),
        "{}",
        listed[100]
    );
    assert_eq!(v["error"]["accepted"], 1);
    assert_eq!(stored(&server, &svc).await, ["good"]);
}
