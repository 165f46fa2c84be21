//! OTLP/HTTP: `POST /v1/logs` with an `application/x-protobuf` body, or an
//! OTLP/JSON one (told apart from taillight's own JSON on the same path by
//! its `resourceLogs` key). The answer is in the request's encoding.

use std::collections::HashMap;

use axum::Json;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use serde::de::IgnoredAny;
use serde_json::json;

use crate::access::Grant;
use crate::api::ApiState;
use crate::api::body::{is_json, media_type, parse_json};
use crate::api::error::ApiError;

fn is_protobuf(media: &str) -> bool {
    media == "application/x-protobuf" || media == "application/protobuf"
}

/// Whether a `/v1/logs` body (already decoded) is an OTLP export.
pub fn is_otlp(headers: &HeaderMap, body: &[u8]) -> bool {
    is_protobuf(&media_type(headers)) || has_resource_logs(body)
}

/// Whether the body's first JSON object has a `resourceLogs` key; a
/// taillight entry never has one.
fn has_resource_logs(body: &[u8]) -> bool {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    serde_json::Deserializer::from_slice(body)
        .into_iter::<HashMap<String, IgnoredAny>>()
        .next()
        .and_then(Result::ok)
        .is_some_and(|keys| keys.contains_key("resourceLogs"))
}

/// Stores an OTLP/HTTP export and answers in its encoding.
pub async fn export(
    state: &ApiState,
    grant: &Grant,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let media = media_type(headers);
    if is_protobuf(&media) {
        let req = ExportLogsServiceRequest::decode(body).map_err(|e| {
            ApiError::invalid(
                "body",
                format!("is not an OTLP ExportLogsServiceRequest: {e}"),
            )
        })?;
        let outcome = super::export(state, grant, req).await?;
        let bytes = super::response(&outcome).encode_to_vec();
        return Ok(([(header::CONTENT_TYPE, "application/x-protobuf")], bytes).into_response());
    }
    if !media.is_empty() && !is_json(&media) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "OTLP/HTTP takes application/x-protobuf or application/json, not {media:?}"
        )));
    }
    let req: ExportLogsServiceRequest =
        parse_json(body, "OTLP/JSON").map_err(ApiError::from_violation)?;
    let outcome = super::export(state, grant, req).await?;
    let body = match super::response(&outcome).partial_success {
        None => json!({}),
        Some(p) => json!({ "partialSuccess": {
            "rejectedLogRecords": p.rejected_log_records.to_string(),
            "errorMessage": p.error_message,
        }}),
    };
    Ok(Json(body).into_response())
}
