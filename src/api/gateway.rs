//! The HTTP/JSON gateway under `/v1`, for everything that cannot speak gRPC.
//! Each handler builds the same proto request the gRPC method takes.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use serde_json::json;

use super::error::ApiError;
use super::params::{self, Params, query_request};
use super::tail::{self, TailParams};
use super::{ApiState, batch, body, export, otlp, query};
use crate::access::Grant;
use crate::model::json::{EntryIn, RecordOut, parse_entries};
use crate::model::time;
use crate::proto::{self, tail_response};

pub fn router(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route("/v1/logs", post(push_logs).get(get_logs))
        .route("/v1/logs/export", get(export::export))
        .route("/v1/services", get(services))
        .route("/v1/services/{service}/tags", get(tags))
        .route("/v1/tail", get(tail))
        .with_state(state)
}

/// Stores every valid entry of the body. If some are invalid, the answer is
/// 400 listing each one (`entries[I].FIELD`) with how many were accepted;
/// the valid ones are stored all the same. An OTLP/HTTP export (protobuf, or
/// JSON with `resourceLogs`) to the same path goes to [`otlp::http`].
async fn push_logs(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let max = state.intake.limits().max_request_bytes;
    let body = body::decode(&headers, body, max)?;
    if otlp::http::is_otlp(&headers, &body) {
        return otlp::http::export(&state, &grant, &headers, &body).await;
    }
    let parsed = parse_entries::<EntryIn>(&body).map_err(ApiError::from_violation)?;
    let items = parsed
        .into_iter()
        .map(|item| item.and_then(EntryIn::into_proto))
        .collect();
    let outcome =
        batch::push_valid(&state.intake, &grant, items, |i| format!("entries[{i}]")).await?;
    let accepted = outcome.into_result()?;
    Ok(Json(json!({ "accepted": accepted })).into_response())
}

async fn get_logs(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let req = query_request(&Params::parse(raw))?;
    let resp = query::query_logs(&state, &grant, req).await?;
    let records: Vec<RecordOut> = resp.records.iter().map(RecordOut::from).collect();
    let mut body = json!({ "records": records, "nextPageToken": resp.next_page_token });
    if let Some(total) = resp.total_count {
        body["totalCount"] = json!(total);
    }
    Ok(Json(body).into_response())
}

async fn services(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "services": state.services(&grant).await? })))
}

async fn tags(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    Path(service): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .intake
        .limits()
        .check_service(&service)
        .map_err(ApiError::from_violation)?;
    Ok(Json(json!({ "tags": state.tags(&grant, service).await? })))
}

/// Live tail as Server-Sent Events: one `log` event per record with the
/// record id as the event id, so a reconnecting EventSource resumes by itself
/// through `Last-Event-ID`.
async fn tail(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p = Params::parse(raw);
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let req = params::tail_request(&p, last_event_id)?;
    let params = TailParams::from_request(&grant, req, state.heartbeat)?;
    let stream =
        tail::stream(&state, params).flat_map(|item| futures::stream::iter(sse_events(item)));
    Ok(Sse::new(stream))
}

fn sse_events(
    item: Result<proto::TailResponse, crate::storage::StoreError>,
) -> Vec<Result<Event, Infallible>> {
    let data =
        |name: &str, v: serde_json::Value| Ok(Event::default().event(name).data(v.to_string()));
    match item {
        Err(e) => vec![data("error", json!({ "message": e.to_string() }))],
        Ok(resp) => match resp.event {
            Some(tail_response::Event::Records(rs)) => rs
                .iter()
                .map(|r| {
                    let body = serde_json::to_string(&RecordOut::from(r)).unwrap_or_default();
                    Ok(Event::default()
                        .event("log")
                        .id(r.id.to_string())
                        .data(body))
                })
                .collect(),
            Some(tail_response::Event::Heartbeat(h)) => vec![data(
                "heartbeat",
                json!({
                    "time": h.time.as_ref().map(|t| time::rfc3339(time::to_micros(t))),
                    "lastId": h.last_id,
                }),
            )],
            Some(tail_response::Event::Skipped(s)) => vec![data(
                "skipped",
                json!({ "count": s.count, "firstId": s.first_id, "lastId": s.last_id }),
            )],
            Some(tail_response::Event::Status(s)) => {
                let state = match proto::stream_status::State::try_from(s.state) {
                    Ok(proto::stream_status::State::Degraded) => "DEGRADED",
                    _ => "LIVE",
                };
                vec![data(
                    "status",
                    json!({ "state": state, "message": s.message }),
                )]
            }
            None => Vec::new(),
        },
    }
}
