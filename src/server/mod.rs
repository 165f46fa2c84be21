//! Runs one taillight process: its parts ([`assemble`]) behind every
//! protocol on one listener ([`routes`]), until the caller's shutdown token.

mod assemble;
mod routes;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access::{self, Access, AccessError};
use crate::api::grpc::LogApi;
use crate::api::ops::OpsState;
use crate::bus::BusError;
use crate::config::ServeArgs;
use crate::health::Health;
use crate::listen::{Listen, ListenError};
use crate::metrics::Registry;
use crate::proto::log_service_server::LogServiceServer;
use crate::queue::QueueError;
use crate::shutdown::{Part, Shutdown};
use crate::sinks::SinkError;
use crate::sources::SourceError;
use crate::storage::StoreError;
use tonic_health::server::HealthReporter;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// Serves the operational endpoints alone on `addr` until the very end of
/// shutdown, so a scraper sees it through.
async fn serve_ops(addr: SocketAddr, ops: OpsState, stop: &Shutdown) -> Result<(), ServerError> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        ServerError::Config(format!("cannot listen on --metrics-listen {addr}: {e}"))
    })?;
    // Scripts and tests read the bound address (the port may have been 0).
    eprintln!("taillight metrics listening on {}", listener.local_addr()?);
    let serve = axum::serve(listener, routes::ops_only(ops))
        .with_graceful_shutdown(stop.token(Part::Fanout).cancelled_owned())
        .into_future();
    stop.spawn(Part::Fanout, async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(())
}

/// Keeps gRPC health in step with the parts' health (what `/readyz` says)
/// on every change, until `stop`.
async fn follow_health(parts: Health, grpc: HealthReporter, stop: CancellationToken) {
    let mut changes = parts.changes();
    let mut was = None;
    loop {
        let up = parts.report().0;
        if was != Some(up) {
            grpc_serving(&grpc, up).await;
            was = Some(up);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

/// Says `up` in gRPC health, for the log service and the server as a whole.
async fn grpc_serving(grpc: &HealthReporter, up: bool) {
    let status = match up {
        true => tonic_health::ServingStatus::Serving,
        false => tonic_health::ServingStatus::NotServing,
    };
    grpc.set_service_status("", status).await;
    match up {
        true => grpc.set_serving::<LogServiceServer<LogApi>>().await,
        false => grpc.set_not_serving::<LogServiceServer<LogApi>>().await,
    }
}

/// Serves until `shutdown` fires; then flips readiness and gRPC health to
/// not-serving and stops the parts in order (see [`Shutdown`]): open
/// requests and sources finish, the writer stores what was accepted, the
/// sinks and the fan-out end.
pub async fn run(
    listener: TcpListener,
    cfg: ServeArgs,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    // One TLS provider for every rustls user in the process (the port,
    // Redis, MariaDB); with more than one built in, rustls wants it named.
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let stop = Shutdown::new(&shutdown);
    let registry = Registry::default();
    let health = Health::default();
    // Before anything opens: a server that would be open by mistake, or
    // whose keys cannot be read, does not start.
    let access = Arc::new(Access::new(&cfg.access, listener.local_addr()?, &registry)?);
    let port = Listen::new(&cfg.connections, &registry)?;
    stop.spawn(
        Part::Intake,
        access::watch(access.clone(), stop.token(Part::Intake)),
    );
    let node = assemble::start(&cfg, &stop, &registry, &health).await?;
    let parts = health.clone();
    registry.gauge_fn(
        "taillight_ready",
        "1 while every part of the server is up (what /readyz says), else 0.",
        move || i64::from(parts.report().0),
    );
    let ready = Arc::new(AtomicBool::new(true));
    let ops = OpsState {
        registry,
        ready: ready.clone(),
        health,
    };
    if let Some(addr) = cfg.metrics_listen {
        serve_ops(addr, ops.clone(), &stop).await?;
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    let app = match &node.api {
        Some(state) => {
            stop.spawn(
                Part::Intake,
                follow_health(ops.health.clone(), health.clone(), shutdown.clone()),
            );
            routes::api(state.clone(), access, &cfg, health_service, ops)?
        }
        None => routes::ops_only(ops),
    };

    tracing::info!(addr = %listener.local_addr()?, role = ?cfg.role, tls = port.is_tls(), "serving");
    let closing = stop.token(Part::Intake);
    stop.spawn(Part::Intake, port.clone().reload_on_hangup(closing.clone()));
    let serve = port.serve(listener, routes::guarded(app), closing);
    let mut served = stop.spawn(Part::Intake, serve);
    let early = tokio::select! {
        _ = stop.requested() => None,
        r = &mut served => Some(r),
    };
    // Load balancers see not-ready before connections start closing.
    ready.store(false, Relaxed);
    grpc_serving(&health, false).await;
    stop.stop(cfg.shutdown_timeout).await;
    let served = match early {
        Some(r) => r,
        None => served.await,
    };
    // Released before returning, so a restart can open the store at once.
    drop(node);
    match served {
        Ok(_) => Ok(()),
        Err(e) => Err(ServerError::Config(format!("server task failed: {e}"))),
    }
}
