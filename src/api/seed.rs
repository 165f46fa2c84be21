//! The seed system's endpoints, kept byte-compatible for its existing
//! clients: `POST /log/set` and `GET /log/get/{service_name}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::error::{ApiError, FieldViolation};
use super::params::Params;
use super::{ApiState, query};
use crate::access::Grant;
use crate::model::json::{SeedEntry, SeedRecordOut, level_from_json};
use crate::proto::{LogFilter, QueryLogsRequest};

/// The seed viewer's page size.
pub const SEED_PAGE_SIZE: u32 = 50;

pub fn router(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route("/log/set", post(set))
        .route("/log/get/{service_name}", get(get_logs))
        .with_state(state)
}

/// Our field names mapped back to the seed's, so errors name what was sent.
fn seed_field(mut v: FieldViolation) -> FieldViolation {
    let renamed = match v.field.split(['.', '[']).next().unwrap_or_default() {
        "service" => v.field.replacen("service", "service_name", 1),
        "tags" => "tag".to_string(),
        "time" => "timestamp".to_string(),
        _ => return v,
    };
    v.field = renamed;
    v
}

async fn set(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let seed: SeedEntry =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body))
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError::invalid(
                    if path == "." { "body".into() } else { path },
                    e.into_inner().to_string(),
                )
            })?;
    let entry = seed.into_proto().map_err(ApiError::from_violation)?;
    let p = state.intake.prepare_for(&grant, vec![entry], true)?;
    if let Some((_, v)) = p.invalid.into_iter().next() {
        return Err(ApiError::from_violation(seed_field(v)));
    }
    state.intake.push(p.entries).await?;
    Ok(Json(json!({ "message": "Log saved successfully" })))
}

/// Newest first, `page` (1-based) of the service's entries, optionally only
/// those carrying one of `tags` (comma-separated) or of `levels`.
async fn get_logs(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    Path(service_name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(raw);
    let levels = p
        .list(&["levels", "level"])
        .iter()
        .map(|l| level_from_json(&Value::String(l.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::from_violation)?;
    let req = QueryLogsRequest {
        filter: Some(LogFilter {
            services: vec![service_name],
            tags: p.list(&["tags", "tag"]),
            levels,
            ..Default::default()
        }),
        page: p.num("page")?.unwrap_or(1).max(1),
        page_size: p.num("page_size")?.unwrap_or(SEED_PAGE_SIZE),
        ..Default::default()
    };
    let resp = query::query_logs(&state, &grant, req).await?;
    let logs: Vec<SeedRecordOut> = resp.records.iter().map(SeedRecordOut::from).collect();
    Ok(Json(
        json!({ "logs": logs, "total": resp.total_count.unwrap_or(0) }),
    ))
}
