//! Operational endpoints: metrics, liveness, readiness. Served by every role,
//! writers included.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::health::Health;
use crate::metrics::{CONTENT_TYPE, Registry};

#[derive(Clone)]
pub struct OpsState {
    /// Every component's metrics.
    pub registry: Registry,
    /// Cleared when shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// What the parts say of themselves.
    pub health: Health,
}

pub fn router(state: OpsState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.registry.render(),
    )
}

/// 200 while serving, listing degraded parts; 503 once shutdown begins or
/// while a part is down.
async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    if !state.ready.load(Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_string(),
        );
    }
    match state.health.report() {
        (true, detail) => (StatusCode::OK, format!("ready\n{detail}")),
        (false, detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{detail}"),
        ),
    }
}
