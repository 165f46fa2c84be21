//! `ListAlertFirings` and `GET /v1/alerts/firings`: the notifications the
//! alerts sent, as they keep them in the store (see
//! [`crate::model::firing`]), newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::params::Params;
use crate::access::Grant;
use crate::model::firing::{self, Firing};
use crate::model::time;
use crate::proto::{AlertFiring, ListAlertFiringsRequest, ListAlertFiringsResponse};
use crate::storage::Order;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1_000;

/// Whether `grant` may see `f`: a key limited to services sees the firings
/// of rules on its services only.
fn visible(grant: &Grant, f: &Firing) -> bool {
    grant.services().is_none()
        || (!f.services.is_empty() && f.services.iter().all(|s| grant.check_read(s).is_ok()))
}

fn proto(f: Firing) -> AlertFiring {
    AlertFiring {
        alert: f.alert,
        state: f.state,
        condition: f.condition,
        services: f.services,
        count: f.count,
        first_id: f.first_id,
        last_id: f.last_id,
        time: Some(time::from_micros(f.at_us)),
        delivery: f.delivery,
        attempts: f.attempts,
        url: f.url,
    }
}

pub async fn list_firings(
    state: &ApiState,
    grant: &Grant,
    req: ListAlertFiringsRequest,
) -> Result<ListAlertFiringsResponse, ApiError> {
    let limit = match req.limit {
        0 => DEFAULT_LIMIT,
        n if n > MAX_LIMIT => {
            return Err(ApiError::invalid(
                "limit",
                format!("{n} exceeds the limit of {MAX_LIMIT}"),
            ));
        }
        n => n,
    };
    let docs = (state.store)
        .documents(firing::KIND, Order::NewestFirst, limit)
        .await?;
    let firings = (docs.into_iter())
        .filter_map(|d| serde_json::from_str::<Firing>(&d.body).ok())
        .filter(|f| visible(grant, f))
        .map(proto)
        .collect();
    Ok(ListAlertFiringsResponse { firings })
}

/// `GET /v1/alerts/firings?limit=N`.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(raw);
    let req = ListAlertFiringsRequest {
        limit: p.num("limit")?.unwrap_or(0),
    };
    let resp = list_firings(&state, &grant, req).await?;
    let firings: Vec<Value> = (resp.firings.iter())
        .map(|f| {
            json!({
                "alert": f.alert,
                "state": f.state,
                "condition": f.condition,
                "services": f.services,
                "count": f.count,
                "firstId": f.first_id,
                "lastId": f.last_id,
                "time": f.time.as_ref().map(|t| time::rfc3339(time::to_micros(t))),
                "delivery": f.delivery,
                "attempts": f.attempts,
                "url": f.url,
            })
        })
        .collect();
    Ok(Json(json!({ "firings": firings })))
}
