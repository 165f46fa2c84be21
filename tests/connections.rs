//! What a client cannot do to the port: hold it with idle or trickling
//! connections, or with more connections than the caps allow. Each cap is
//! answered with a clear refusal (HTTP and gRPC), never a hang, and the
//! server recovers by itself once the connections are gone.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes (or `within` passes); what it sent.
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(within, tcp.read_to_end(&mut got)).await;
    r.ok().map(|_| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_closed() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.connections.header_timeout = Duration::from_secs(1);
        c.connections.idle_timeout = Duration::from_secs(1);
    })
    .await;
    // Half a request head, then nothing: closed after the header timeout.
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let closed = read_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "a connection sending half a head was held"
    );
    // Nothing at all: the same.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    assert!(
        read_to_close(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
    // An HTTP/2 (gRPC) connection that made one call and went quiet.
    let mut c = server.client().await;
    c.list_services(taillight::proto::ListServicesRequest::default())
        .await
        .expect("a call");
    let open = || async { server.metric("taillight_connections_open").await };
    assert!(
        open().await >= 2,
        "the gRPC connection and this one are open"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Only the connection reading /metrics is left.
    assert_eq!(open().await, 1);
    // The client reconnects by itself on its next call.
    c.list_services(taillight::proto::ListServicesRequest::default())
        .await
        .expect("a call after the idle close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_fails_the_request() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.connections.body_timeout = Duration::from_secs(1);
    })
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.write_all(
        b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"service\":",
    )
    .await
    .expect("write");
    let answer = read_to_close(&mut tcp, Duration::from_secs(10))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("--body-timeout"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_caps_are_refused_clearly_and_the_server_recovers() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.connections.max_connections_per_address = 4;
        // Long enough that the idle connections stay however slow the
        // machine is; closing them by timeout is another test's.
        c.connections.header_timeout = Duration::from_secs(30);
    })
    .await;
    // Four connections, each answered once and then left open, fill this
    // address's share (answered, so each is surely counted already).
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(answered_once(server.addr).await);
    }
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/healthz", server.http()))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "UNAVAILABLE");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("--max-connections-per-address"),
        "{message}"
    );
    let mut c = taillight::proto::log_service_client::LogServiceClient::connect(server.http())
        .await
        .expect("connect");
    let status = c
        .list_services(taillight::proto::ListServicesRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("--max-connections-per-address"),
        "{status:?}"
    );
    drop(c);
    // Once the idle ones are gone, it answers.
    drop(idle);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = http
        .get(format!("{}/healthz", server.http()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let text = server.metrics_text().await;
    assert!(
        common::sample_of(
            &text,
            "taillight_connections_refused_total{reason=\"per_address\"}"
        )
        .is_some_and(|n| n >= 2),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_sockets_do_not_stop_the_server() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.connections.max_connections = 200;
        c.connections.header_timeout = Duration::from_secs(2);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2_000 {
        match TcpStream::connect(server.addr).await {
            Ok(s) => held.push(s),
            Err(e) => panic!("connect: {e}"),
        }
    }
    // Over the cap: refused or closed at once, never a hang.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::get(format!("{}/healthz", server.http())),
    )
    .await
    .expect("an answer within 10 s");
    if let Ok(r) = r {
        assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    }
    drop(held);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = reqwest::get(format!("{}/healthz", server.http()))
        .await
        .expect("healthz");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    // Only the metrics request's own connection stays, once the server has
    // seen the health check's client close its connection too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let open = server.metric("taillight_connections_open").await;
        if open == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} connections still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection that `/healthz` answered once, left open. The readiness
/// probe's connection may still be counted for a moment after its client
/// has gone (the server sees the close later, sooner or later on a busy
/// machine), so a refusal for this address's share is waited out.
async fn answered_once(addr: std::net::SocketAddr) -> TcpStream {
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 1024];
        let n = tcp.read(&mut buf).await.expect("answer");
        let answer = String::from_utf8_lossy(&buf[..n]);
        if answer.starts_with("HTTP/1.1 200") {
            return tcp;
        }
        assert!(answer.contains("--max-connections-per-address"), "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the address's earlier connections were never closed");
}
