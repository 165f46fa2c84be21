//! One axum router for every protocol: gRPC (with gRPC-web, health and
//! reflection), OTLP, Loki push, the HTTP/JSON gateway, the seed endpoints
//! and operations.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use tower_http::catch_panic::CatchPanicLayer;

use super::ServerError;
use crate::access::Access;
use crate::api::grpc::LogApi;
use crate::api::ops::{self, OpsState};
use crate::api::origin::{self, Origins};
use crate::api::{ApiState, gateway, grpc_tail, loki, otlp, seed, ws};
use crate::api::{auth, error, overload, unary};
use crate::config::ServeArgs;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::log_service_server::LogServiceServer;
use tonic_health::pb::health_server::{Health, HealthServer};

/// Metrics and health only: what a writer serves.
pub fn ops_only(ops: OpsState) -> axum::Router {
    ops::router(ops)
}

/// The whole API.
pub fn api(
    state: Arc<ApiState>,
    access: Arc<Access>,
    cfg: &ServeArgs,
    health: HealthServer<impl Health>,
    ops: OpsState,
) -> Result<axum::Router, ServerError> {
    let max = cfg.intake.limits.max_request_bytes;
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
    let grpc = tonic::service::Routes::new(logs)
        .add_service(otlp::grpc::server(state.clone(), max))
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .into_axum_router()
        // Before the generated route for the same path; see grpc_tail.
        .merge(grpc_tail::router(state.clone()))
        .layer(axum::middleware::from_fn(move |req, next| {
            unary::one_message(max, req, next)
        }))
        .layer(tonic_web::GrpcWebLayer::new());

    let mut app = grpc
        .merge(gateway::router(state.clone()))
        .merge(loki::router(state.clone()))
        .merge(seed::router(state.clone()))
        .merge(ws::router(state))
        .merge(ops_only(ops))
        .merge(crate::viewer::router())
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(max))
        // A bug in a handler answers 500 instead of dropping the connection.
        .layer(CatchPanicLayer::new())
        // Inside CORS, so preflights (which carry no key) are answered.
        .layer(axum::middleware::from_fn_with_state(access, auth::check));
    let origins = Origins::parse(&cfg.cors_origins).map_err(ServerError::Config)?;
    if let Some(cors) = origins.cors() {
        app = app.layer(cors);
    }
    // Outermost: a page that may not call the API is refused before
    // anything else reads the request.
    Ok(app.layer(axum::middleware::from_fn_with_state(
        Arc::new(origins),
        origin::guard,
    )))
}

/// `app` behind the answer to connections over the listener's caps.
pub fn guarded(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::from_fn(overload::refuse))
}
