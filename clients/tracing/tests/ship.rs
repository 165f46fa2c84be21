//! The layer against a real taillight server, started in this process:
//! events arrive as entries; while the server is away the application is
//! never held up, the buffer stays bounded and what overflows is counted;
//! what was buffered arrives when the server comes.

use std::net::SocketAddr;
use std::time::Duration;

use taillight::config::ServeArgs;
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{LogFilter, LogRecord, Order, QueryLogsRequest};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::prelude::*;

/// A taillight server on `addr` (0: any port), embedded mode.
async fn serve(
    addr: SocketAddr,
    dir: &std::path::Path,
) -> (SocketAddr, CancellationToken, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut cfg = ServeArgs::with_data_dir(dir);
    cfg.store.sqlite.sqlite_synchronous = taillight::storage::sqlite::Synchronous::Normal;
    let stop = CancellationToken::new();
    let run = taillight::server::run(listener, cfg, stop.clone());
    let task = tokio::spawn(async move {
        run.await.expect("server");
    });
    (addr, stop, task)
}

async fn stored(addr: SocketAddr, service: &str) -> Vec<LogRecord> {
    let mut c = LogServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    c.query_logs(QueryLogsRequest {
        filter: Some(LogFilter {
            services: vec![service.into()],
            ..Default::default()
        }),
        order: Order::OldestFirst as i32,
        page_size: 1000,
        ..Default::default()
    })
    .await
    .expect("query")
    .into_inner()
    .records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_as_entries() {
    let dir = tempfile::tempdir().expect("tmp");
    let (addr, stop, task) = serve("127.0.0.1:0".parse().expect("addr"), dir.path()).await;
    let (layer, shipper) = taillight_tracing::Builder::new(format!("http://{addr}"), "checkout")
        .linger(Duration::from_millis(20))
        .build()
        .expect("url");
    let handle = shipper.spawn();
    let too_long = "v".repeat(5000);
    {
        let _guard = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(order = 42, "order placed");
        tracing::warn!(tags = "payments, retry", card = "visa", "card declined");
        tracing::error!(blob = %too_long, "refused by the server: an attribute over its limit");
        tracing::debug!("after the refused one");
    }
    let stats = handle.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        (stats.sent, stats.rejected, stats.dropped),
        (3, 1, 0),
        "{stats:?}"
    );
    let rs = stored(addr, "checkout").await;
    let messages: Vec<&str> = rs.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        ["order placed", "card declined", "after the refused one"]
    );
    assert_eq!(rs[0].level, 3);
    assert_eq!(rs[0].attributes["order"], "42");
    assert_eq!(rs[0].attributes["target"], "ship");
    assert_eq!(
        (rs[1].level, rs[1].tags.clone()),
        (4, vec!["payments".to_string(), "retry".to_string()])
    );
    assert_eq!(rs[1].attributes["card"], "visa");
    assert_eq!(rs[2].level, 2);
    stop.cancel();
    task.await.expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_server_costs_dropped_events_not_a_stalled_application() {
    // A port nobody listens on yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let (layer, shipper) = taillight_tracing::Builder::new(format!("http://{addr}"), "offline")
        .buffer(500)
        .batch(100)
        .linger(Duration::from_millis(10))
        .build()
        .expect("url");
    let handle = shipper.spawn();
    {
        let _guard = tracing_subscriber::registry().with(layer).set_default();
        // Far more than the buffer holds; each call returns at once.
        for i in 0..5000 {
            tracing::info!(i, "while the server is away");
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = handle.stats();
    assert_eq!(before.sent, 0);
    assert!(before.dropped >= 5000 - 500 - 100, "{before:?}");
    assert!(before.retries >= 1, "{before:?}");

    // The server comes: what was buffered (and not dropped) arrives.
    let dir = tempfile::tempdir().expect("tmp");
    let (addr, stop, task) = serve(addr, dir.path()).await;
    let stats = handle.shutdown(Duration::from_secs(30)).await;
    assert_eq!(stats.sent + stats.dropped, 5000, "{stats:?}");
    let rs = stored(addr, "offline").await;
    assert_eq!(rs.len() as u64, stats.sent);
    // The newest events were the ones dropped: those kept are the first.
    let first: Vec<&str> = rs
        .iter()
        .take(3)
        .map(|r| r.attributes["i"].as_str())
        .collect();
    assert_eq!(first, ["0", "1", "2"]);
    stop.cancel();
    task.await.expect("server task");
}
