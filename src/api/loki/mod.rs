//! Loki's push API, `POST /loki/api/v1/push`, so Promtail, Grafana Alloy,
//! Fluent Bit, Vector and Loki logging libraries ship to taillight as they
//! would to Loki: a JSON body ([`json`], gzip allowed) or snappy-compressed
//! protobuf ([`proto`]). Lines become entries as [`map`] documents. Like
//! Loki, success is `204 No Content`; refused lines are listed in a 400
//! answer (with how many were stored), and the others are stored.

pub mod json;
pub mod labels;
pub mod map;
pub mod proto;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use prost::Message;

use super::body::{self, is_json, media_type};
use super::error::ApiError;
use super::{ApiState, batch};
use crate::access::Grant;
use map::{Line, Stream};

pub fn router(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route("/loki/api/v1/push", post(push))
        .with_state(state)
}

async fn push(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    let max = state.intake.limits().max_request_bytes;
    let media = media_type(&headers);
    let (streams, item) = if is_json(&media) {
        let decoded = body::decode(&headers, raw, max)?;
        (
            json::streams(&decoded).map_err(ApiError::from_violation)?,
            "values",
        )
    } else if media == "application/x-protobuf" {
        (protobuf_streams(&body::unsnappy(&raw, max)?)?, "entries")
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Loki push takes application/json or snappy-compressed application/x-protobuf, not {media:?}"
        )));
    };
    let (items, coords) = map::entries(streams);
    let path = |i: usize| {
        let (s, l) = coords.get(i).copied().unwrap_or_default();
        format!("streams[{s}].{item}[{l}]")
    };
    batch::push_valid(&state.intake, &grant, items, path)
        .await?
        .into_result()?;
    Ok(StatusCode::NO_CONTENT)
}

fn protobuf_streams(bytes: &[u8]) -> Result<Vec<Stream>, ApiError> {
    let req = proto::PushRequest::decode(bytes)
        .map_err(|e| ApiError::invalid("body", format!("is not a Loki PushRequest: {e}")))?;
    Ok(req
        .streams
        .into_iter()
        .map(|s| Stream {
            labels: labels::parse(&s.labels),
            lines: s
                .entries
                .into_iter()
                .map(|e| Line {
                    nanos: e.timestamp.map_or(0, |t| {
                        t.seconds
                            .saturating_mul(1_000_000_000)
                            .saturating_add(t.nanos.into())
                    }),
                    line: e.line,
                    metadata: e
                        .structured_metadata
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect(),
                })
                .collect(),
        })
        .collect())
}
