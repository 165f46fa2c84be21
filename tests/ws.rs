//! `GET /ws`, the seed system's live view, with a real WebSocket client
//! (Python's `websockets`): records in the seed's JSON, the gateway's
//! filters, ping and pong, and a socket that stops answering or reading is
//! closed without harming anything else.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, TestServer, unique};
use serde_json::{Value, json};

backend_tests!(
    records_arrive_in_the_seeds_json_with_pings,
    a_page_that_stops_answering_pings_is_closed,
    a_socket_that_never_reads_is_closed_and_harms_nothing,
);

/// The Python client, and its output lines.
struct Client {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Client {
    fn open(url: &str, count: usize, pong: bool) -> Client {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_client.py");
        let mut cmd = Command::new("python3");
        cmd.args([script, url, &count.to_string()]);
        if !pong {
            cmd.arg("--no-pong");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (tests/setup.sh installs websockets)");
        let out: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let c = Client { child, lines };
        assert_eq!(c.next(Duration::from_secs(20)).as_deref(), Some("ready"));
        c
    }

    fn next(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    /// Lines until `stop` accepts one (included), within `within`.
    fn until(&self, within: Duration, stop: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        while let Some(line) = self.next(deadline.saturating_duration_since(Instant::now())) {
            let done = stop(&line);
            out.push(line);
            if done {
                return out;
            }
        }
        panic!("the client never saw what it waited for; it saw {out:?}");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ws_url(server: &TestServer, query: &str) -> String {
    format!("ws://{}/ws?{query}", server.addr)
}

async fn push(server: &TestServer, body: Value) {
    let (status, v) = common::send_json(
        reqwest::Client::new()
            .post(format!("{}/v1/logs", server.http()))
            .json(&body),
    )
    .await;
    assert!(status.is_success(), "push answered {status} {v}");
}

async fn records_arrive_in_the_seeds_json_with_pings(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("ws");
    let client = Client::open(
        &ws_url(&server, &format!("service={svc}&min_level=warn&ping=1")),
        2,
        true,
    );
    // Answered pings keep it open well past two of them.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    push(
        &server,
        json!([
            {"service": svc, "level": "error", "message": "disk full", "tags": ["db", "disk"], "time": "2026-12-06T10:00:00Z"},
            {"service": svc, "level": "info", "message": "below the filter"},
            {"service": "other", "level": "error", "message": "another service"},
            {"service": svc, "level": "warn", "message": "slow query"},
        ]),
    )
    .await;
    let lines = client.until(Duration::from_secs(30), |l| l.contains("slow query"));
    let pings = lines.iter().filter(|l| l.contains("\"ping\"")).count();
    assert!(pings >= 2, "{lines:?}");
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|v| v.get("service_name").is_some())
        .collect();
    assert_eq!(records.len(), 2, "{lines:?}");
    let first = &records[0];
    assert_eq!(first["service_name"], svc.as_str());
    assert_eq!(first["level"], "ERROR");
    assert_eq!(first["message"], "disk full");
    assert_eq!(first["tag"], "db");
    assert_eq!(first["timestamp"], "2026-12-06T10:00:00.000000Z");
    assert_eq!(records[1]["message"], "slow query");
}

async fn a_page_that_stops_answering_pings_is_closed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::open(&ws_url(&server, "ping=1"), 1, false);
    let t = Instant::now();
    let lines = client.until(Duration::from_secs(10), |l| l.starts_with("closed"));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("closed 1001"),
        "{lines:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "closed after {:?}",
        t.elapsed()
    );
    // The server counts no subscriber for it any more.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.metric("taillight_tail_subscribers").await != 0 {
        assert!(
            Instant::now() < deadline,
            "the closed socket is still subscribed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client that completes the handshake and then never reads: pushes go
/// on, another reader gets everything, and the stuck socket is closed.
async fn a_socket_that_never_reads_is_closed_and_harms_nothing(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(backend).await;
    let svc = unique("wsstuck");
    let mut raw = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let handshake = format!(
        "GET /ws?service={svc}&ping=1 HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    raw.write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).await.expect("answer");
    assert_eq!(&head, b"HTTP/1.1 101");
    // It reads nothing from here on.
    let reader = Client::open(
        &ws_url(&server, &format!("service={svc}&ping=1")),
        20_000,
        true,
    );
    let big = "x".repeat(1000);
    for chunk in 0..20 {
        let batch: Vec<Value> = (0..1000)
            .map(|i| json!({"service": svc, "message": format!("{chunk}-{i} {big}")}))
            .collect();
        push(&server, Value::Array(batch)).await;
    }
    let seen = reader.until(Duration::from_secs(60), |l| l.contains("\"19-999 "));
    let records = seen.iter().filter(|l| l.contains("service_name")).count();
    let skipped: u64 = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "skipped")
        .map(|v| v["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        records as u64 + skipped,
        20_000,
        "a reading client sees everything or is told"
    );
    // The stuck socket is closed by the server within a few ping periods.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.metric("taillight_tail_subscribers").await > 1 {
        assert!(
            Instant::now() < deadline,
            "the stuck socket was never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(raw);
}
