//! Runs one taillight process: its backends ([`assemble`]) behind every
//! protocol on one listener ([`routes`]), until the caller's shutdown token.

mod assemble;
mod routes;

use axum::serve::ListenerExt as _;
use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::api::grpc::LogApi;
use crate::bus::BusError;
use crate::config::{Role, ServeArgs};
use crate::metrics::Metrics;
use crate::pipeline::tail::TailHub;
use crate::proto::log_service_server::LogServiceServer;
use crate::queue::QueueError;
use crate::storage::StoreError;
use assemble::Node;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

impl From<ServerError> for tonic::Status {
    fn from(e: ServerError) -> Self {
        tonic::Status::internal(e.to_string())
    }
}

/// Serves until `shutdown` fires, then flips readiness and gRPC health to
/// not-serving, stops accepting, lets open requests finish (bounded by the
/// shutdown timeout), and lets the writer store what was accepted.
pub async fn run(
    listener: TcpListener,
    cfg: ServeArgs,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let metrics = Arc::new(Metrics::default());
    let mut node = Node::start(&cfg, metrics.clone()).await?;
    let ready = Arc::new(AtomicBool::new(true));

    // The hub outlives the listener: it stops only after the drain.
    let hub_stop = CancellationToken::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    let (app, hub_task) = match (&node.producer, cfg.role) {
        (Some(producer), Role::All | Role::Ingest) => {
            let (hub, hub_task) = TailHub::start(
                node.bus.subscribe(),
                node.store.clone(),
                metrics.clone(),
                cfg.tail_buffer,
                hub_stop.clone(),
            );
            let state = Arc::new(AppState {
                producer: producer.clone(),
                store: node.store.clone(),
                hub,
                metrics: metrics.clone(),
                limits: cfg.limits.clone(),
                heartbeat: cfg.heartbeat,
                push_timeout: cfg.push_timeout,
                catalog: node.catalog.clone(),
                ready: ready.clone(),
                shutdown: shutdown.clone(),
            });
            health.set_serving::<LogServiceServer<LogApi>>().await;
            (routes::api(state, &cfg, health_service)?, Some(hub_task))
        }
        _ => (routes::ops_only(&metrics, None, &ready), None),
    };

    tracing::info!(addr = %listener.local_addr()?, role = ?cfg.role, "serving");
    let stop = shutdown.clone();
    let drain_ready = ready.clone();
    // Without TCP_NODELAY a response written in several pieces (headers,
    // body, gRPC trailers) waits for the peer's delayed ACK: ~40 ms added
    // to small queries and tail messages (found by the benchmark).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stop.cancelled().await;
                // Load balancers see not-ready before connections start closing.
                drain_ready.store(false, Relaxed);
                health.set_not_serving::<LogServiceServer<LogApi>>().await;
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
            })
            .into_future(),
    );
    let served = tokio::select! {
        r = &mut server => r,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(cfg.shutdown_timeout).await } => {
            tracing::warn!("open requests did not finish within the shutdown timeout; closing them");
            server.abort();
            Ok(Ok(()))
        }
    };
    node.drain().await;
    hub_stop.cancel();
    // Release the store before returning, so a restart can open it at once.
    if let Some(t) = hub_task {
        let _ = t.await;
    }
    drop(node);
    match served {
        Ok(r) => r.map_err(ServerError::Io),
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(ServerError::Config(format!("server task failed: {e}"))),
    }
}
