//! Alerts end to end: a rules file, a real server, entries pushed over
//! HTTP, and a real HTTP receiver in the test (an axum server recording
//! every POST) standing for the webhook.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use common::{Backend, TestServer, unique};
use serde_json::{Value, json};

backend_tests!(
    fires_once_for_n_entries_keeps_quiet_then_resolves,
    an_absence_fires_when_a_service_goes_quiet,
);

// ---------------------------------------------------------------- helpers

/// What the receiver was sent, and how it answers.
#[derive(Default)]
struct Inbox {
    /// Every POST body, with its path under `"path"`.
    got: Mutex<Vec<Value>>,
    /// POSTs still to be answered 500.
    failures_left: AtomicUsize,
}

/// A webhook receiver on an ephemeral port.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let inbox = Arc::new(Inbox::default());
        inbox.failures_left.store(fail_first, SeqCst);
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inbox }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// The bodies POSTed to `path` so far.
    fn at(&self, path: &str) -> Vec<Value> {
        let got = self.inbox.got.lock().expect("inbox");
        (got.iter())
            .filter(|v| v["path"] == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` was sent `n` bodies; they, once there are.
    async fn wait(&self, path: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path} got {} of {n} notifications: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    UrlPath(path): UrlPath<String>,
    body: String,
) -> StatusCode {
    let mut v: Value = serde_json::from_str(&body).unwrap_or_else(|_| json!({ "raw": body }));
    v["path"] = json!(path);
    inbox.got.lock().expect("inbox").push(v);
    let failing = inbox
        .failures_left
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok();
    match failing {
        true => StatusCode::INTERNAL_SERVER_ERROR,
        false => StatusCode::OK,
    }
}

/// Writes `rules` as the alerts file in `dir`.
fn rules_file(dir: &Path, rules: &str) -> PathBuf {
    let path = dir.join("alerts.toml");
    std::fs::write(&path, rules).expect("write rules");
    path
}

async fn start(backend: Backend, rules: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let file = rules_file(dir.path(), rules);
    let server = TestServer::start_with(backend, |c| {
        c.sinks.alerts.alerts_file = Some(file);
        c.sinks.alerts.public_url = "http://viewer.example:50051".into();
    })
    .await;
    (server, dir)
}

async fn push(server: &TestServer, entries: Value) {
    let (status, v) = common::send_json(
        reqwest::Client::new()
            .post(format!("{}/v1/logs", server.http()))
            .json(&entries),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{v}");
}

fn errors(service: &str, n: usize, tag: &str) -> Value {
    (0..n)
        .map(|i| json!({ "service": service, "level": "ERROR", "message": format!("{tag} {i} upstream timeout") }))
        .collect()
}

// ---------------------------------------------------------------- tests

/// Three errors within the window fire one JSON notification with the
/// facts and samples; more errors within `repeat` send nothing; once the
/// window has been quiet for a window, one resolved notification.
async fn fires_once_for_n_entries_keeps_quiet_then_resolves(backend: Backend) {
    let hook = Receiver::start(0).await;
    let svc = unique("pay");
    let rules = format!(
        r#"
        [[alert]]
        name = "payments errors"
        services = ["{svc}"]
        min_level = "error"
        text = "timeout"
        threshold = 3
        window = "3s"
        repeat = "1h"
        webhook = "{}"
        "#,
        hook.url("json")
    );
    let (server, _dir) = start(backend, &rules).await;
    push(&server, errors(&svc, 2, "first")).await;
    push(
        &server,
        json!([{ "service": svc, "level": "INFO", "message": "an info timeout" },
               { "service": svc, "level": "ERROR", "message": "an error without the word" }]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(hook.at("json").is_empty(), "two matches of three fired");

    push(&server, errors(&svc, 1, "third")).await;
    let got = hook.wait("json", 1, Duration::from_secs(15)).await;
    let n = &got[0];
    assert_eq!(n["alert"], "payments errors");
    assert_eq!(n["state"], "firing");
    assert_eq!(n["count"], 3, "{n}");
    assert_eq!(n["window"], "3s");
    let samples = n["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 3, "{n}");
    assert!(
        samples.iter().all(|s| s["service"] == svc.as_str()
            && s["level"] == "ERROR"
            && s["message"].as_str().is_some_and(|m| m.contains("timeout"))),
        "{samples:?}"
    );
    let (first, last) = (n["first_id"].as_u64(), n["last_id"].as_u64());
    assert!(first.is_some() && first < last, "{n}");
    assert_eq!(samples[2]["id"].as_u64(), last);
    let url = n["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!(
            "http://viewer.example:50051/?service={svc}&levels=ERROR%2CFATAL&q=timeout&range=custom"
        )),
        "{url}"
    );

    // More within `repeat`: nothing new.
    push(&server, errors(&svc, 3, "more")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.at("json").len(), 1, "{:?}", hook.at("json"));

    // Quiet: false after a window, resolved a window later.
    let got = hook.wait("json", 2, Duration::from_secs(20)).await;
    assert_eq!(got[1]["state"], "resolved", "{:?}", got[1]);
    assert_eq!(got[1]["count"], 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.at("json").len(), 2);

    let text = server.metrics_text().await;
    for line in [
        "taillight_alert_notifications_total{rule=\"payments errors\",state=\"firing\"} 1",
        "taillight_alert_notifications_total{rule=\"payments errors\",state=\"resolved\"} 1",
        "taillight_alerts_rules 1",
        "taillight_alerts_holder 1",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(
        !text.contains("taillight_alert_delivery_failures_total{"),
        "{text}"
    );

    // Both kept by the server, newest first, delivered at the first try.
    let firings = firings(&server).await;
    let states: Vec<&str> = (firings.iter())
        .filter(|f| f["alert"] == "payments errors")
        .map(|f| f["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["resolved", "firing"], "{firings:?}");
    let fired = &firings[1];
    assert_eq!(
        (fired["delivery"].as_str(), fired["attempts"].as_u64()),
        (Some("delivered"), Some(1))
    );
    assert_eq!(
        (fired["count"].as_u64(), fired["firstId"].as_u64()),
        (Some(3), first)
    );
    assert_eq!(fired["services"], json!([svc]));
    assert!(
        fired["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://viewer.example:50051/?"))
    );
}

/// `GET /v1/alerts/firings`, which must succeed.
async fn firings(server: &TestServer) -> Vec<Value> {
    let v = common::get_json(format!("{}/v1/alerts/firings", server.http())).await;
    v["firings"].as_array().expect("firings").clone()
}

/// A service that stops logging for a window fires a Slack notification;
/// its next entry resolves it.
async fn an_absence_fires_when_a_service_goes_quiet(backend: Backend) {
    let hook = Receiver::start(0).await;
    let svc = unique("quiet");
    let rules = format!(
        r#"
        [[alert]]
        name = "checkout quiet"
        services = ["{svc}"]
        absent = true
        window = "2s"
        webhook = "{}"
        format = "slack"
        "#,
        hook.url("slack")
    );
    let (server, _dir) = start(backend, &rules).await;
    push(&server, json!({ "service": svc, "message": "still here" })).await;
    let got = hook.wait("slack", 1, Duration::from_secs(15)).await;
    let text = got[0]["text"].as_str().expect("slack text");
    assert!(text.contains("*checkout quiet* is firing"), "{text}");
    assert!(text.contains("no matching entry for 2s"), "{text}");
    assert!(text.contains("|Open in taillight>"), "{text}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.at("slack").len(), 1, "repeat keeps it quiet");

    push(&server, json!({ "service": svc, "message": "back" })).await;
    let got = hook.wait("slack", 2, Duration::from_secs(15)).await;
    let text = got[1]["text"].as_str().expect("slack text");
    assert!(text.contains("*checkout quiet* resolved"), "{text}");
}

/// A receiver that fails twice gets the notification on the third try,
/// and nothing counts as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_retried_with_backoff() {
    let hook = Receiver::start(2).await;
    let svc = unique("retry");
    let rules = format!(
        "[[alert]]\nname = \"r\"\nservices = [\"{svc}\"]\nwindow = \"5s\"\nwebhook = \"{}\"\n",
        hook.url("r")
    );
    let (server, _dir) = start(Backend::Embedded, &rules).await;
    push(&server, errors(&svc, 1, "x")).await;
    let got = hook.wait("r", 3, Duration::from_secs(20)).await;
    assert!(
        got.iter()
            .all(|n| n["state"] == "firing" && n["count"] == 1),
        "{got:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.at("r").len(), 3, "delivered once, then no more tries");
    let kept = firings(&server).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (kept[0]["delivery"].as_str(), kept[0]["attempts"].as_u64()),
        (Some("delivered"), Some(3))
    );
    let text = server.metrics_text().await;
    assert!(
        !text.contains("taillight_alert_delivery_failures_total{"),
        "{text}"
    );
}

/// A bad rules file stops the server at start, naming the rule and the
/// field; a bad edit while running keeps the rules before it, and says so
/// in `/metrics`; a good edit takes effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_are_refused_with_the_rule_and_field_named() {
    let dir = tempfile::tempdir().expect("dir");
    for (rules, said) in [
        (
            "[[alert]]\nname = \"slow\"\nwindow = \"5 parsecs\"\nwebhook = \"http://h/\"\n",
            "alert \"slow\": window:",
        ),
        (
            "[[alert]]\nname = \"ftp\"\nwindow = \"1m\"\nwebhook = \"ftp://h/x\"\n",
            "alert \"ftp\": webhook: \"ftp://h/x\" is not an http(s) URL",
        ),
        (
            "[[alert]]\nname = \"typo\"\nwindow = \"1m\"\nwebhok = \"http://h/\"\n",
            "alert \"typo\": webhok: unknown field `webhok`",
        ),
    ] {
        let file = rules_file(dir.path(), rules);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_taillight"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--alerts-file")
            .arg(&file)
            .output()
            .expect("run taillight");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {rules}");
        assert!(stderr.contains(said), "{said:?} not in {stderr}");
    }

    let hook = Receiver::start(0).await;
    let svc = unique("reload");
    let good = |name: &str| {
        format!(
            "[[alert]]\nname = \"{name}\"\nservices = [\"{svc}\"]\nwindow = \"5s\"\nwebhook = \"{}\"\n",
            hook.url(name)
        )
    };
    let (server, dir) = start(Backend::Embedded, &good("before")).await;
    rules_file(
        dir.path(),
        "[[alert]]\nname = \"broken\"\nwindow = \"soon\"\n",
    );
    wait_metric(&server, "taillight_alerts_file_valid 0").await;
    wait_metric(&server, "taillight_alerts_reload_failures_total 1").await;
    push(&server, errors(&svc, 1, "kept")).await;
    hook.wait("before", 1, Duration::from_secs(15)).await;

    rules_file(
        dir.path(),
        &(good("after") + &good("second").replace(&svc, "other")),
    );
    wait_metric(&server, "taillight_alerts_rules 2").await;
    wait_metric(&server, "taillight_alerts_file_valid 1").await;
    push(&server, errors(&svc, 1, "new")).await;
    hook.wait("after", 1, Duration::from_secs(15)).await;
    assert!(hook.at("second").is_empty());
}

async fn wait_metric(server: &TestServer, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = server.metrics_text().await;
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "{line} never in\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two nodes of one cluster, both with the rules: entries pushed to both
/// fire the rule once, evaluated by the node holding the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_fire_once() {
    let hook = Receiver::start(0).await;
    let svc = unique("twice");
    let rules = format!(
        "[[alert]]\nname = \"both\"\nservices = [\"{svc}\"]\nthreshold = 10\nwindow = \"30s\"\nwebhook = \"{}\"\n",
        hook.url("both")
    );
    let (a, dir) = start(Backend::Distributed, &rules).await;
    let b = a.sibling(|_| {}).await;
    assert_eq!(
        b.cfg.sinks.alerts.alerts_file.as_deref(),
        Some(dir.path().join("alerts.toml").as_path())
    );
    push(&a, errors(&svc, 5, "a")).await;
    push(&b, errors(&svc, 5, "b")).await;
    let got = hook.wait("both", 1, Duration::from_secs(20)).await;
    assert_eq!(got[0]["count"], 10, "{got:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.at("both").len(), 1, "{:?}", hook.at("both"));
    let holders: u64 = [&a, &b]
        .iter()
        .map(|s| async move { s.metric("taillight_alerts_holder").await })
        .collect::<futures::future::JoinAll<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(holders, 1, "one node evaluates");
}
