//! API keys, scopes and services, anonymous access, failing closed at
//! start-up, and pages on other origins: every endpoint and RPC asked with
//! no key, a wrong key, a revoked and an expired key, a key of the wrong
//! scope and one limited to other services, through real clients (reqwest
//! for HTTP, tonic for gRPC, grpcurl, curl).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Backend, TestServer, create_key, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{
    DeleteViewRequest, GetContextRequest, ListServicesRequest, ListTagsRequest, ListViewsRequest,
    LogFilter, PushLogRequest, PushLogsRequest, PutViewRequest, QueryLogsRequest, TailRequest,
    View,
};
use tonic::Code;
use tonic::transport::Channel;

backend_tests!(a_key_limited_to_services_pushes_and_reads_only_those);

/// A server requiring keys, with a key of each kind in its keys file.
struct Keyed {
    server: TestServer,
    file: PathBuf,
    _dir: tempfile::TempDir,
    /// push + read on every service.
    all: String,
    push: String,
    read: String,
    admin: String,
    /// push + read, only services matching `api*`.
    api: String,
}

async fn keyed(backend: Backend, tweak: impl FnOnce(&mut taillight::config::ServeArgs)) -> Keyed {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("keys.toml");
    let all = create_key(&file, &["--scope", "push,read", "--name", "all"]);
    let push = create_key(&file, &["--scope", "push", "--name", "pusher"]);
    let read = create_key(&file, &["--scope", "read", "--name", "reader"]);
    let admin = create_key(&file, &["--scope", "admin", "--name", "ops"]);
    let api = create_key(
        &file,
        &[
            "--scope",
            "push,read",
            "--service",
            "api*",
            "--name",
            "api-team",
        ],
    );
    let f = file.clone();
    let mut server = TestServer::start_with(backend, move |c| {
        c.access.keys_file = Some(f);
        tweak(c);
    })
    .await;
    server.admin_key = Some(admin.clone());
    Keyed {
        server,
        file,
        _dir: dir,
        all,
        push,
        read,
        admin,
        api,
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A gRPC client sending `key` (if any) on every call.
async fn grpc(
    server: &TestServer,
    key: Option<&str>,
) -> LogServiceClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone,
    >,
> {
    let channel = Channel::from_shared(server.http())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let value: Option<tonic::metadata::MetadataValue<_>> =
        key.map(|k| bearer(k).parse().expect("metadata"));
    LogServiceClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        if let Some(v) = &value {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    })
}

fn entry(service: &str, message: &str) -> taillight::proto::LogEntry {
    common::entry(service, taillight::proto::Level::Info, message, &[])
}

/// An HTTP endpoint: method, path, body, content type, the scope it needs.
type Endpoint = (
    &'static str,
    String,
    Option<Vec<u8>>,
    &'static str,
    &'static str,
);

/// Every HTTP endpoint.
fn http_endpoints(svc: &str) -> Vec<Endpoint> {
    let otlp = json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": svc}}]},
        "scopeLogs": [{"logRecords": [{"body": {"stringValue": "otlp line"}}]}]}]});
    let loki = json!({"streams": [{"stream": {"service_name": svc},
        "values": [[format!("{}", 1_700_000_000_000_000_000u64), "loki line"]]}]});
    let seed = json!({"service_name": svc, "level": "info", "message": "seed line"});
    let ours = json!({"service": svc, "message": "json line"});
    let b = |v: Value| Some(v.to_string().into_bytes());
    vec![
        (
            "POST",
            "/v1/logs".into(),
            b(ours),
            "application/json",
            "push",
        ),
        (
            "POST",
            "/v1/logs".into(),
            b(otlp),
            "application/json",
            "push",
        ),
        (
            "POST",
            "/loki/api/v1/push".into(),
            b(loki),
            "application/json",
            "push",
        ),
        (
            "POST",
            "/log/set".into(),
            b(seed),
            "application/json",
            "push",
        ),
        ("GET", format!("/v1/logs?service={svc}"), None, "", "read"),
        (
            "GET",
            format!("/v1/logs/export?service={svc}"),
            None,
            "",
            "read",
        ),
        ("GET", "/v1/services".into(), None, "", "read"),
        ("GET", format!("/v1/services/{svc}/tags"), None, "", "read"),
        ("GET", format!("/log/get/{svc}"), None, "", "read"),
        ("GET", format!("/v1/tail?service={svc}"), None, "", "read"),
        ("GET", "/metrics".into(), None, "", "admin"),
    ]
}

async fn send(
    base: &str,
    (method, path, body, ct, _): &Endpoint,
    auth: Option<&str>,
) -> (StatusCode, String) {
    let http = reqwest::Client::new();
    let url = format!("{base}{path}");
    let mut req = match *method {
        "POST" => http.post(&url),
        _ => http.get(&url),
    };
    if let Some(b) = body {
        req = req.header("content-type", *ct).body(b.clone());
    }
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    // A tail answers with a stream that does not end: the status is enough.
    let text = if path.starts_with("/v1/tail") && status.is_success() {
        String::new()
    } else {
        res.text().await.unwrap_or_default()
    };
    (status, text)
}

/// Every HTTP endpoint, with each kind of key: no key and a wrong key are
/// 401 (with `WWW-Authenticate`), a key of another scope 403 naming the
/// scope, the right scope succeeds; probes and the viewer stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_endpoint_needs_a_key_of_its_scope() {
    let k = keyed(Backend::Embedded, |_| {}).await;
    let base = k.server.http();
    let svc = unique("http-auth");
    for ep in http_endpoints(&svc) {
        let what = format!("{} {}", ep.0, ep.1);
        for auth in [
            None,
            Some("Bearer tl_not-a-key".to_string()),
            Some("Basic abc".into()),
        ] {
            let (status, body) = send(&base, &ep, auth.as_deref()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what} with {auth:?}: {body}"
            );
            let v: Value = serde_json::from_str(&body).expect("json error");
            assert_eq!(v["error"]["code"], "UNAUTHENTICATED", "{what}");
        }
        let (right, wrong) = match ep.4 {
            "push" => (&k.push, &k.read),
            "read" => (&k.read, &k.push),
            _ => (&k.admin, &k.all),
        };
        let (status, body) = send(&base, &ep, Some(&bearer(wrong))).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{what} with a key of another scope: {body}"
        );
        assert!(
            body.contains(&format!("the {} scope", ep.4)),
            "{what}: {body}"
        );
        let (status, body) = send(&base, &ep, Some(&bearer(right))).await;
        assert!(
            status.is_success(),
            "{what} with the {} key: {status} {body}",
            ep.4
        );
        if ep.4 != "admin" {
            let (status, body) = send(&base, &ep, Some(&bearer(&k.admin))).await;
            assert!(
                status.is_success(),
                "{what} with the admin key: {status} {body}"
            );
        }
    }
    let res = reqwest::get(format!("{base}/v1/services"))
        .await
        .expect("get");
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    for open in ["/healthz", "/readyz", "/"] {
        let res = reqwest::get(format!("{base}{open}")).await.expect("get");
        assert_eq!(res.status(), StatusCode::OK, "{open} stays open");
    }
    // An endpoint not classified needs admin: closed to other keys.
    let res = reqwest::Client::new()
        .get(format!("{base}/v1/nothing-here"))
        .header("authorization", bearer(&k.all))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The WebSocket: refused before the upgrade without a key.
    let res = reqwest::get(format!("{base}/ws")).await.expect("get");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // With the admin key (the harness holds it).
    let metrics = k.server.metrics_text().await;
    // By name, never the key.
    assert!(
        metrics.contains(r#"taillight_key_requests_total{key="pusher",outcome="allowed"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"taillight_key_requests_total{key="reader",outcome="denied"}"#));
    assert!(
        metrics.contains(r#"taillight_key_entries_total{key="pusher"} 4"#),
        "{metrics}"
    );
    assert!(!metrics.contains(&k.push));
}

/// Every RPC of LogService, OTLP's Export and gRPC-web: UNAUTHENTICATED
/// without a valid key, PERMISSION_DENIED with the wrong scope; health
/// stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_needs_a_key_of_its_scope() {
    let k = keyed(Backend::Embedded, |_| {}).await;
    let svc = unique("grpc-auth");
    for (key, push_code, read_code) in [
        (None, Code::Unauthenticated, Code::Unauthenticated),
        (
            Some("tl_wrong"),
            Code::Unauthenticated,
            Code::Unauthenticated,
        ),
        (Some(k.read.as_str()), Code::PermissionDenied, Code::Ok),
        (Some(k.push.as_str()), Code::Ok, Code::PermissionDenied),
        (Some(k.admin.as_str()), Code::Ok, Code::Ok),
    ] {
        let mut c = grpc(&k.server, key).await;
        let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
        let pushed = c
            .push_log(PushLogRequest {
                entry: Some(entry(&svc, "unary")),
            })
            .await
            .map(|_| ());
        assert_eq!(code(pushed), push_code, "PushLog with {key:?}");
        let stream = futures::stream::iter([PushLogsRequest {
            entries: vec![entry(&svc, "stream")],
        }]);
        assert_eq!(
            code(c.push_logs(stream).await.map(|_| ())),
            push_code,
            "PushLogs with {key:?}"
        );
        let q = c.query_logs(QueryLogsRequest::default()).await.map(|_| ());
        assert_eq!(code(q), read_code, "QueryLogs with {key:?}");
        let l = c.list_services(ListServicesRequest {}).await.map(|_| ());
        assert_eq!(code(l), read_code, "ListServices with {key:?}");
        let t = c
            .list_tags(ListTagsRequest {
                service: svc.clone(),
            })
            .await
            .map(|_| ());
        assert_eq!(code(t), read_code, "ListTags with {key:?}");
        let tail = c.tail(TailRequest::default()).await.map(|_| ());
        assert_eq!(code(tail), read_code, "Tail with {key:?}");
        let otlp = otlp_export(&k.server, key, &svc).await;
        assert_eq!(otlp, push_code, "OTLP Export with {key:?}");
    }
    // gRPC-web, as the viewer sends it: the status in the headers.
    let res = reqwest::Client::new()
        .post(format!(
            "{}/taillight.v1.LogService/ListServices",
            k.server.http()
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("grpc-web");
    assert_eq!(res.headers()["grpc-status"], "16", "gRPC-web without a key");
    // Health answers without a key, for probes.
    let channel = Channel::from_shared(k.server.http())
        .expect("url")
        .connect()
        .await
        .expect("c");
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(health.is_ok(), "{health:?}");
}

async fn otlp_export(server: &TestServer, key: Option<&str>, svc: &str) -> Code {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let channel = Channel::from_shared(server.http())
        .expect("url")
        .connect()
        .await
        .expect("c");
    let mut c = LogsServiceClient::new(channel);
    let text = |s: &str| {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s.into())),
        })
    };
    let mut req = tonic::Request::new(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: text(svc),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: text("otlp"),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    if let Some(k) = key {
        req.metadata_mut()
            .insert("authorization", bearer(k).parse().expect("metadata"));
    }
    c.export(req).await.err().map_or(Code::Ok, |s| s.code())
}

/// A key limited to `api*` pushes only to those services (a batch naming
/// another is refused whole, naming it) and reads only those: queries,
/// listings, tags, and live tails never show another service's records.
async fn a_key_limited_to_services_pushes_and_reads_only_those(backend: Backend) {
    let k = keyed(backend, |_| {}).await;
    let (mine, theirs) = (unique("api-mine"), unique("web-theirs"));
    let mut api = grpc(&k.server, Some(&k.api)).await;
    let mut all = grpc(&k.server, Some(&k.all)).await;
    let mut tail = api
        .tail(TailRequest {
            last: 0,
            ..Default::default()
        })
        .await
        .expect("tail")
        .into_inner();
    let denied = api
        .push_logs(futures::stream::iter([PushLogsRequest {
            entries: vec![entry(&mine, "ok"), entry(&theirs, "not mine")],
        }]))
        .await
        .expect_err("a batch with another service");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains(&format!("{theirs:?}")),
        "{}",
        denied.message()
    );
    let http = reqwest::Client::new()
        .post(format!("{}/v1/logs", k.server.http()))
        .header("authorization", bearer(&k.api))
        .json(&json!({"service": theirs, "message": "x"}))
        .send()
        .await
        .expect("post");
    assert_eq!(http.status(), StatusCode::FORBIDDEN);
    all.push_log(PushLogRequest {
        entry: Some(entry(&theirs, "theirs")),
    })
    .await
    .expect("push");
    api.push_log(PushLogRequest {
        entry: Some(entry(&mine, "mine")),
    })
    .await
    .expect("push");
    k.server.settle().await;

    // Live: only the covered service's record arrives.
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let msg = tail.message().await.expect("tail").expect("open");
            if let Some(taillight::proto::tail_response::Event::Records(rs)) = msg.event {
                return rs.records;
            }
        }
    })
    .await
    .expect("a record on the tail");
    assert!(got.iter().all(|r| r.service == mine), "{got:?}");

    // History: nothing of the other service, whichever way it is asked.
    let q = api
        .query_logs(QueryLogsRequest {
            include_total: true,
            ..Default::default()
        })
        .await
        .expect("q")
        .into_inner();
    assert!(
        q.records.iter().all(|r| r.service.starts_with("api")),
        "{:?}",
        q.records
    );
    assert!(q.records.iter().any(|r| r.service == mine));
    let named = api
        .query_logs(QueryLogsRequest {
            filter: Some(LogFilter {
                services: vec![theirs.clone()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("asking for another service");
    assert_eq!(named.code(), Code::PermissionDenied);
    let services = api
        .list_services(ListServicesRequest {})
        .await
        .expect("list")
        .into_inner()
        .services;
    assert!(
        services.contains(&mine) && !services.contains(&theirs),
        "{services:?}"
    );
    let tags = api
        .list_tags(ListTagsRequest {
            service: theirs.clone(),
        })
        .await
        .expect_err("tags");
    assert_eq!(tags.code(), Code::PermissionDenied);
    // GetContext finds an entry of another service as it finds none, and
    // around one of the key's own it shows only what the key may read.
    let mut id_of = async |svc: &str| {
        let q = all
            .query_logs(QueryLogsRequest {
                filter: Some(LogFilter {
                    services: vec![svc.to_string()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("query")
            .into_inner();
        q.records.first().expect("a record").id
    };
    let (my_id, their_id) = (id_of(&mine).await, id_of(&theirs).await);
    let ask = |id| GetContextRequest {
        id,
        all_services: true,
        ..Default::default()
    };
    let hidden = api.get_context(ask(their_id)).await.expect_err("theirs");
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    let around = api
        .get_context(ask(my_id))
        .await
        .expect("mine")
        .into_inner();
    let seen: Vec<&str> = (around
        .before
        .iter()
        .chain(&around.entry)
        .chain(&around.after))
    .map(|r| r.service.as_str())
    .collect();
    assert!(
        seen.contains(&mine.as_str()) && !seen.contains(&theirs.as_str()),
        "{seen:?}"
    );

    // Saved views: a key limited to services sees and saves only theirs.
    for (name, state) in [
        ("v-mine", format!("service={mine}")),
        ("v-theirs", format!("service={theirs}")),
        ("v-none", "levels=ERROR".to_string()),
    ] {
        all.put_view(PutViewRequest {
            view: Some(View {
                name: name.into(),
                state,
                updated_time: None,
            }),
        })
        .await
        .expect("put view");
    }
    let listed = api
        .list_views(ListViewsRequest {})
        .await
        .expect("views")
        .into_inner()
        .views;
    let names: Vec<&str> = listed.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["v-mine"]);
    for state in [format!("service={theirs}"), "levels=ERROR".to_string()] {
        let denied = api
            .put_view(PutViewRequest {
                view: Some(View {
                    name: "v-new".into(),
                    state,
                    updated_time: None,
                }),
            })
            .await
            .expect_err("a view of another service");
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    }
    let hidden = api
        .delete_view(DeleteViewRequest {
            name: "v-theirs".into(),
        })
        .await
        .expect_err("theirs");
    assert_eq!(hidden.code(), Code::NotFound);
    let get = |path: String| {
        let k = k.api.clone();
        async move {
            reqwest::Client::new()
                .get(path)
                .header("authorization", bearer(&k))
                .send()
                .await
                .expect("get")
        }
    };
    let export = get(format!("{}/v1/logs/export", k.server.http()))
        .await
        .text()
        .await
        .expect("text");
    assert!(
        export.contains("\"mine\"") && !export.contains(&theirs),
        "{export}"
    );
    let seed = get(format!("{}/log/get/{theirs}", k.server.http())).await;
    assert_eq!(seed.status(), StatusCode::FORBIDDEN);
    // The unlimited key sees both.
    let both = all
        .query_logs(QueryLogsRequest::default())
        .await
        .expect("q")
        .into_inner();
    assert!(both.records.iter().any(|r| r.service == theirs));
}

/// A revoked key and an expired one are refused; a key created while the
/// server runs works within a couple of seconds; a broken keys file on
/// reload keeps the keys in force (and counts the failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reload_revoke_and_expire() {
    let k = keyed(Backend::Embedded, |_| {}).await;
    let base = k.server.http();
    let services = |key: String| {
        let base = base.clone();
        async move {
            let res = reqwest::Client::new()
                .get(format!("{base}/v1/services"))
                .header("authorization", bearer(&key))
                .send()
                .await
                .expect("get");
            let status = res.status();
            (status, res.text().await.unwrap_or_default())
        }
    };
    assert_eq!(services(k.read.clone()).await.0, StatusCode::OK);
    let out = Command::new(env!("CARGO_BIN_EXE_taillight"))
        .args(["keys", "revoke", "reader", "--keys-file"])
        .arg(&k.file)
        .output()
        .expect("revoke");
    assert!(out.status.success());
    let later = create_key(&k.file, &["--scope", "read", "--name", "later"]);
    let expired = create_key(
        &k.file,
        &["--scope", "read", "--name", "brief", "--expires", "1s"],
    );
    wait_status(&services, &k.read, StatusCode::UNAUTHORIZED).await;
    let (_, body) = services(k.read.clone()).await;
    assert!(message(&body).contains("\"reader\" was revoked"), "{body}");
    wait_status(&services, &later, StatusCode::OK).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = services(expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&body).contains("\"brief\" has expired"), "{body}");

    let list = Command::new(env!("CARGO_BIN_EXE_taillight"))
        .args(["keys", "list", "--keys-file"])
        .arg(&k.file)
        .output()
        .expect("list");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("reader ") && l.ends_with("revoked")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("brief ") && l.ends_with("expired")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("api-team ") && l.contains("api*")),
        "{listed}"
    );
    assert!(!listed.contains(&k.all), "keys are never listed");

    std::fs::write(&k.file, "[[key]]\nname = \n").expect("break the file");
    let failures = "taillight_keys_reload_failures_total";
    for _ in 0..100 {
        if metric(&k.server, failures).await > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metric(&k.server, failures).await > 0.0);
    assert_eq!(
        services(later).await.0,
        StatusCode::OK,
        "the keys before stay"
    );
}

/// The message of a JSON error body.
fn message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn wait_status<F, Fut>(call: &F, key: &str, want: StatusCode)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, String)>,
{
    for _ in 0..100 {
        if call(key.to_string()).await.0 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never {want} for the key");
}

/// One sample of the server's /metrics, read with its admin key.
async fn metric(server: &TestServer, name: &str) -> f64 {
    common::sample(&server.metrics_text().await, name)
}

/// `--anonymous-scope push --anonymous-services 'seed-*'` keeps keyless
/// senders working for those services only; reading still needs a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_push_for_keyless_seed_clients() {
    let k = keyed(Backend::Embedded, |c| {
        c.access.anonymous_scope = vec![taillight::access::Scope::Push];
        c.access.anonymous_services = vec!["seed-*".into()];
    })
    .await;
    let base = k.server.http();
    let svc = unique("seed-anon");
    let set = |service: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/log/set"))
                .json(&json!({"service_name": service, "level": "info", "message": "hi"}))
                .send()
                .await
                .expect("post")
                .status()
        }
    };
    assert_eq!(set(svc.clone()).await, StatusCode::OK);
    assert_eq!(set(unique("other")).await, StatusCode::FORBIDDEN);
    let read = reqwest::get(format!("{base}/log/get/{svc}"))
        .await
        .expect("get");
    assert_eq!(
        read.status(),
        StatusCode::FORBIDDEN,
        "anonymous may only push"
    );
    k.server.settle().await;
    let mut c = grpc(&k.server, Some(&k.read)).await;
    let q = c
        .query_logs(QueryLogsRequest {
            filter: Some(common::only(&svc)),
            ..Default::default()
        })
        .await
        .expect("query")
        .into_inner();
    assert_eq!(q.records.len(), 1);
}

/// grpcurl (reflection needs a key; calls with `-H authorization`) and curl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_and_curl_send_keys() {
    let k = keyed(Backend::Embedded, |_| {}).await;
    let addr = k.server.addr.to_string();
    let run = |cmd: &str, args: Vec<String>| {
        let out = Command::new(cmd)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // grpcurl with `key` (if any) and `args`, whose last is the method (or
    // `list`): the address goes just before it.
    let grpcurl = |key: Option<&str>, args: &[&str]| {
        let mut all = vec!["-plaintext".to_string()];
        if let Some(k) = key {
            all.extend(["-H".into(), format!("authorization: {}", bearer(k))]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        all.insert(all.len() - 1, addr.clone());
        run("grpcurl", all)
    };
    let (ok, out) = grpcurl(None, &["list"]);
    assert!(
        !ok && out.contains("Unauthenticated"),
        "reflection without a key: {out}"
    );
    let (ok, out) = grpcurl(Some(&k.read), &["list"]);
    assert!(ok && out.contains("taillight.v1.LogService"), "{out}");
    let svc = unique("grpcurl-key");
    let push = json!({"entry": {"service": svc, "message": "from grpcurl"}}).to_string();
    let push_args = ["-d", push.as_str(), "taillight.v1.LogService/PushLog"];
    let (ok, out) = grpcurl(Some(&k.read), &push_args);
    assert!(
        !ok && out.contains("PermissionDenied") && out.contains("push scope"),
        "{out}"
    );
    let (ok, out) = grpcurl(Some(&k.push), &push_args);
    assert!(ok, "{out}");

    let url = format!("{}/v1/logs", k.server.http());
    let body = json!({"service": svc, "message": "from curl"}).to_string();
    let curl = |key: Option<&str>| {
        let mut args = vec![
            "-s".to_string(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code}".into(),
            "-H".into(),
            "content-type: application/json".into(),
            "-d".into(),
            body.clone(),
            url.clone(),
        ];
        if let Some(k) = key {
            args.extend(["-H".into(), format!("authorization: {}", bearer(k))]);
        }
        run("curl", args).1
    };
    assert_eq!(curl(None), "401");
    assert_eq!(curl(Some("tl_nope")), "401");
    assert_eq!(curl(Some(&k.read)), "403");
    assert_eq!(curl(Some(&k.push)), "200");
}

/// Start-up fails closed, naming the problem: a non-loopback listener with
/// no keys, a malformed keys file, a missing one.
#[test]
fn start_up_fails_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let serve = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_taillight"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(extra)
            .env_remove("TAILLIGHT_KEYS_FILE")
            .env_remove("TAILLIGHT_ALLOW_UNAUTHENTICATED")
            .output()
            .expect("serve");
        assert!(!out.status.success(), "serve {extra:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let open = serve(&["--listen", "0.0.0.0:0"]);
    assert!(
        open.contains("refusing to serve 0.0.0.0:")
            && open.contains("--allow-unauthenticated")
            && open.contains("taillight keys create"),
        "{open}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[key]]\nname = \"x\"\nhash = \"sha256:00\"\nscopes = [\"push\"]\ncreated = \"2026-01-01T00:00:00Z\"\n").expect("write");
    let malformed = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--keys-file",
        bad.to_str().expect("path"),
    ]);
    assert!(
        malformed.contains("bad.toml") && malformed.contains("sha256:<64 hex digits>"),
        "{malformed}"
    );
    let missing = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--keys-file",
        "/nonexistent/keys.toml",
    ]);
    assert!(missing.contains("/nonexistent/keys.toml"), "{missing}");
    let scope = serve(&["--listen", "127.0.0.1:0", "--anonymous-scope", "write"]);
    assert!(scope.contains("unknown scope \"write\""), "{scope}");
}

/// A non-loopback address serves when keys are given, or with the explicit
/// opt-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_with_keys_or_opt_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("keys.toml");
    let key = create_key(&file, &["--scope", "read"]);
    for extra in [
        vec!["--keys-file".to_string(), file.display().to_string()],
        vec!["--allow-unauthenticated".into()],
    ] {
        let mut args: Vec<String> = ["serve", "--listen", "0.0.0.0:0", "--data-dir"]
            .map(String::from)
            .into();
        args.push(dir.path().join(unique("d")).display().to_string());
        args.extend(extra.clone());
        let proc = common::process::Proc::spawn(&args);
        let port = proc.addr.rsplit(':').next().expect("port").to_string();
        let res = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/v1/services"))
            .header("authorization", bearer(&key))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::OK, "{extra:?}");
        proc.stop();
    }
}

/// Pages on other origins: a `text/plain` POST (sent by browsers without a
/// preflight) is refused before it is read, as is any request naming an
/// origin not listed; the server's own origin, listed origins and clients
/// that name none go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_on_other_origins_are_refused() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.cors_origins = vec!["https://logs.example.com".into()];
    })
    .await;
    let svc = unique("origin");
    let post = |origin: Option<String>, ct: &'static str| {
        let url = format!("{}/v1/logs", server.http());
        let body = json!({"service": svc, "message": "from a page"}).to_string();
        async move {
            let mut req = reqwest::Client::new()
                .post(url)
                .header("content-type", ct)
                .body(body);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            req.send().await.expect("post").status()
        }
    };
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json",
    ] {
        assert_eq!(
            post(Some("http://evil.example".into()), ct).await,
            StatusCode::FORBIDDEN,
            "{ct}"
        );
        assert_eq!(
            post(Some("null".into()), ct).await,
            StatusCode::FORBIDDEN,
            "{ct}"
        );
    }
    assert_eq!(
        post(Some(server.http()), "application/json").await,
        StatusCode::OK,
        "own origin"
    );
    assert_eq!(
        post(Some("https://logs.example.com".into()), "application/json").await,
        StatusCode::OK
    );
    assert_eq!(
        post(None, "application/json").await,
        StatusCode::OK,
        "no origin: curl, scripts"
    );
    server.settle().await;
    let mut c = server.client().await;
    let stored = common::query_all(&mut c, common::only(&svc)).await;
    assert_eq!(stored.len(), 3, "only the allowed requests stored");
    let ws = reqwest::Client::new()
        .get(format!("{}/ws", server.http()))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("ws");
    assert_eq!(
        ws.status(),
        StatusCode::FORBIDDEN,
        "a WebSocket from another page"
    );
}

/// `--metrics-listen` serves /metrics without a key on an address of its
/// own, while the main address keeps asking for an admin key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_address_need_no_key() {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .expect("addr");
    let k = keyed(Backend::Embedded, |c| c.metrics_listen = Some(addr)).await;
    let own = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("get");
    assert_eq!(own.status(), StatusCode::OK);
    assert!(
        own.text()
            .await
            .expect("text")
            .contains("taillight_keys_active 5")
    );
    let ready = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .expect("get");
    assert_eq!(ready.status(), StatusCode::OK);
    let main = reqwest::get(format!("{}/metrics", k.server.http()))
        .await
        .expect("get");
    assert_eq!(main.status(), StatusCode::UNAUTHORIZED);
    let logs = reqwest::get(format!("http://{addr}/v1/services"))
        .await
        .expect("get");
    assert_eq!(
        logs.status(),
        StatusCode::NOT_FOUND,
        "only the operational endpoints"
    );
}
