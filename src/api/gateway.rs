//! The HTTP/JSON gateway under `/v1`, for everything that cannot speak gRPC.
//! Each handler builds the same proto request the gRPC method takes.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::BytesMut;
use futures::StreamExt;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::json;

use super::error::ApiError;
use super::params::{self, Params, query_request};
use super::tail::{self, TailParams, Tailed};
use super::{ApiState, alerts, batch, body, context, export, histogram, otlp, query, views};
use crate::access::Grant;
use crate::model::json::{EntryIn, RecordOut, parse_entries};
use crate::model::time;
use crate::proto::{self, LogRecord, tail_response};
use crate::storage::StoreError;

pub fn router(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route("/v1/logs", post(push_logs).get(get_logs))
        .route("/v1/logs/export", get(export::export))
        .route("/v1/logs/{id}/context", get(context::get))
        .route("/v1/services", get(services))
        .route("/v1/services/{service}/tags", get(tags))
        .route("/v1/tail", get(tail))
        .route("/v1/histogram", get(histogram::get))
        .route("/v1/views", get(views::list))
        .route("/v1/alerts/firings", get(alerts::get))
        .route(
            "/v1/views/{name}",
            axum::routing::put(views::put).delete(views::delete),
        )
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
/// through `Last-Event-ID`. A record's event is made once for every stream
/// that sends it (see [`Rendered`](crate::pipeline::hub::Rendered)): the
/// body is written here rather than by axum's `Sse`, which takes each event
/// as a new string.
async fn tail(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(raw);
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let req = params::tail_request(&p, last_event_id)?;
    let params = TailParams::from_request(&grant, req, state.heartbeat)?;
    let events = tail::events(&state, params)
        .map(sse_text)
        // An empty chunk says nothing: not worth a frame.
        .filter(|text| std::future::ready(!text.is_empty()))
        .map(Ok::<_, Infallible>);
    let headers = [
        (CONTENT_TYPE, "text/event-stream"),
        (CACHE_CONTROL, "no-cache"),
    ];
    Ok((headers, Body::from_stream(events)).into_response())
}

/// The SSE text of one item: a record's event shared by every stream that
/// sends it, the events of several records joined in one chunk.
fn sse_text(item: Result<Tailed, StoreError>) -> Bytes {
    let resp = match item {
        Err(e) => return event("error", &json!({ "message": e.to_string() })),
        Ok(Tailed::Message(resp)) => resp,
        Ok(Tailed::Records(share)) => {
            let texts = share
                .records
                .iter()
                .map(|r| share.rendered.get(r, log_event));
            return joined(texts);
        }
    };
    match resp.event {
        // Records come as `Tailed::Records`; any here have no one to share.
        Some(tail_response::Event::Records(rs)) => joined(rs.iter().map(log_event)),
        Some(tail_response::Event::Heartbeat(h)) => event(
            "heartbeat",
            &json!({
                "time": h.time.as_ref().map(|t| time::rfc3339(time::to_micros(t))),
                "lastId": h.last_id,
            }),
        ),
        Some(tail_response::Event::Skipped(s)) => event(
            "skipped",
            &json!({ "count": s.count, "firstId": s.first_id, "lastId": s.last_id }),
        ),
        Some(tail_response::Event::Status(s)) => {
            let state = match proto::stream_status::State::try_from(s.state) {
                Ok(proto::stream_status::State::Degraded) => "DEGRADED",
                _ => "LIVE",
            };
            event("status", &json!({ "state": state, "message": s.message }))
        }
        None => Bytes::new(),
    }
}

/// `texts` as one chunk; a single one (the usual share of a filtered
/// stream) as it is, without a copy.
fn joined(mut texts: impl Iterator<Item = Bytes>) -> Bytes {
    let Some(first) = texts.next() else {
        return Bytes::new();
    };
    let Some(second) = texts.next() else {
        return first;
    };
    let mut out = BytesMut::from(&first[..]);
    out.extend_from_slice(&second);
    texts.for_each(|t| out.extend_from_slice(&t));
    out.freeze()
}

/// A record's `log` event.
fn log_event(r: &LogRecord) -> Bytes {
    let data = serde_json::to_string(&RecordOut::from(r)).unwrap_or_default();
    sse_event("log", Some(r.id), &data)
}

/// An event without an id (not a record: nothing to resume after).
fn event(name: &str, data: &serde_json::Value) -> Bytes {
    sse_event(name, None, &data.to_string())
}

/// An event as axum's `Sse` writes it. `data` is JSON, whose text never
/// holds a line break (they are escaped in strings), so it is one line.
fn sse_event(name: &str, id: Option<u64>, data: &str) -> Bytes {
    let id = id.map_or_else(String::new, |id| format!("id: {id}\n"));
    Bytes::from(format!("event: {name}\n{id}data: {data}\n\n"))
}
