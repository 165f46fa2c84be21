//! Assembles the embedded pipeline and serves every protocol on one listener.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::DefaultBodyLimit;
use http::HeaderValue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::api::grpc::LogApi;
use crate::api::{AppState, gateway, ops, seed};
use crate::bus::Bus;
use crate::bus::memory::MemoryBus;
use crate::config::ServeArgs;
use crate::metrics::Metrics;
use crate::pipeline::tail::TailHub;
use crate::pipeline::writer::Writer;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::log_service_server::LogServiceServer;
use crate::queue::memory;
use crate::storage::sqlite::SqliteStore;
use crate::storage::{Store, StoreError};

/// Batches the in-process bus keeps for a lagging receiver.
const BUS_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Serves until `shutdown` fires, then stops accepting, flips readiness to
/// not-serving, lets open requests finish (bounded by the shutdown timeout),
/// and drains the queue into the store before returning.
pub async fn run(
    listener: TcpListener,
    cfg: ServeArgs,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let dir = cfg.data_dir.clone();
    let sync = cfg.sqlite_synchronous;
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir, sync))
        .await
        .map_err(|e| ServerError::Config(format!("opening the store: {e}")))??;
    let store: Arc<dyn Store> = Arc::new(store);
    let metrics = Arc::new(Metrics::default());
    let (producer, consumer) = memory::channel(cfg.queue_capacity.max(1));
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(BUS_CAPACITY));

    // The hub outlives the listener: it stops only after the drain.
    let hub_stop = CancellationToken::new();
    let (hub, hub_task) = TailHub::start(
        bus.subscribe(),
        store.clone(),
        metrics.clone(),
        cfg.tail_buffer,
        hub_stop.clone(),
    );
    let writer = tokio::spawn(
        Writer {
            consumer,
            store: store.clone(),
            bus,
            metrics: metrics.clone(),
            max_batch: cfg.batch_max.max(1),
        }
        .run(),
    );

    let state = Arc::new(AppState {
        producer: Arc::new(producer.clone()),
        store,
        hub,
        metrics,
        limits: cfg.limits.clone(),
        heartbeat: cfg.heartbeat,
        push_timeout: cfg.push_timeout,
        ready: AtomicBool::new(true),
        shutdown: shutdown.clone(),
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LogServiceServer<LogApi>>().await;
    let app = router(state.clone(), &cfg, health_service)?;

    tracing::info!(addr = %listener.local_addr()?, data_dir = %cfg.data_dir.display(), "serving");
    let drain_state = state.clone();
    let stop = shutdown.clone();
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stop.cancelled().await;
                // Load balancers see not-ready before connections start closing.
                drain_state.ready.store(false, Relaxed);
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
    // Every accepted push is in the queue; store it before returning.
    producer.close();
    if let Err(e) = writer.await {
        tracing::error!(error = %e, "writer task failed");
    }
    hub_stop.cancel();
    // Release the store before returning, so a restart can open it at once.
    let _ = hub_task.await;
    drop(state);
    match served {
        Ok(r) => r.map_err(ServerError::Io),
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(ServerError::Config(format!("server task failed: {e}"))),
    }
}

fn router(
    state: Arc<AppState>,
    cfg: &ServeArgs,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> Result<axum::Router, ServerError> {
    let max = cfg.limits.max_request_bytes;
    let logs = LogServiceServer::new(LogApi {
        state: state.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max.max(4 << 20));
    // Our protos, health, and google.rpc error details, so grpcurl can
    // describe everything and decode field violations without proto files.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let grpc = tonic::service::Routes::new(logs)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .into_axum_router()
        .layer(tonic_web::GrpcWebLayer::new());

    let mut app = grpc
        .merge(gateway::router(state.clone()))
        .merge(seed::router(state.clone()))
        .merge(ops::router(state))
        .layer(DefaultBodyLimit::max(max))
        // A bug in a handler answers 500 instead of dropping the connection.
        .layer(CatchPanicLayer::new());
    if !cfg.cors_origins.is_empty() {
        let origins = cfg
            .cors_origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim())
                    .map_err(|_| ServerError::Config(format!("CORS origin {o:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([http::Method::GET, http::Method::POST, http::Method::OPTIONS])
                .allow_headers(tower_http::cors::Any)
                .expose_headers([
                    http::HeaderName::from_static("grpc-status"),
                    http::HeaderName::from_static("grpc-message"),
                    http::HeaderName::from_static("grpc-status-details-bin"),
                ]),
        );
    }
    Ok(app)
}
