//! The API layer's error, and how it reads on the wire: a gRPC status with
//! google.rpc error details, or an HTTP status with a JSON body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::access::AccessError;
use crate::intake::IntakeError;
pub use crate::model::FieldViolation;
use crate::model::violation::describe;
use crate::queue::QueueError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument: {}", describe(.violations))]
    Invalid {
        violations: Vec<FieldViolation>,
        /// For batches: how many entries were accepted despite the violations.
        accepted: Option<u64>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A body in a media type or encoding the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A body over the request limit once decoded.
    #[error("{0}")]
    TooLarge(String),
    /// The server is at a limit (its connection caps); try again later.
    #[error("{0}")]
    Overloaded(String),
    /// No valid key, or one that does not cover the request.
    #[error(transparent)]
    Access(#[from] AccessError),
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::ShuttingDown => ApiError::ShuttingDown,
            IntakeError::Queue(q) => ApiError::Queue(q),
        }
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::Invalid {
            violations: vec![FieldViolation::new(field, description)],
            accepted: None,
        }
    }

    pub fn from_violation(v: FieldViolation) -> Self {
        ApiError::Invalid {
            violations: vec![v],
            accepted: None,
        }
    }

    fn code(&self) -> Code {
        match self {
            ApiError::Invalid { .. } | ApiError::UnsupportedMediaType(_) => Code::InvalidArgument,
            ApiError::TooLarge(_) => Code::ResourceExhausted,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::Queue(QueueError::Timeout(_)) => Code::DeadlineExceeded,
            ApiError::Queue(QueueError::StoreFull(_)) => Code::ResourceExhausted,
            ApiError::Queue(_) | ApiError::ShuttingDown | ApiError::Overloaded(_) => {
                Code::Unavailable
            }
            ApiError::Store(StoreError::Connection(_)) => Code::Unavailable,
            ApiError::Store(_) => Code::Internal,
            ApiError::Access(AccessError::Unauthenticated(_)) => Code::Unauthenticated,
            ApiError::Access(AccessError::Denied(_)) => Code::PermissionDenied,
            ApiError::Access(AccessError::Limited { .. }) => Code::ResourceExhausted,
            ApiError::Access(_) => Code::Internal,
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        match e {
            ApiError::Invalid {
                violations,
                accepted,
            } => {
                let mut message = format!("invalid argument: {}", describe(&violations));
                if let Some(n) = accepted {
                    message.push_str(&format!(" ({n} entries before it were accepted)"));
                }
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let status = tonic::Status::with_error_details(code, message, details);
                match accepted {
                    Some(n) => with_accepted(status, n),
                    None => status,
                }
            }
            ApiError::Access(AccessError::Limited {
                message,
                retry_after,
            }) => {
                let details = ErrorDetails::with_retry_info(Some(retry_after));
                tonic::Status::with_error_details(code, message, details)
            }
            other => tonic::Status::new(code, other.to_string()),
        }
    }
}

/// `status` with the `accepted` trailer: how many entries of a stream were
/// stored before it failed, so a retrying client does not send them again.
pub fn with_accepted(mut status: tonic::Status, n: u64) -> tonic::Status {
    if let Ok(v) = n.to_string().parse() {
        status.metadata_mut().insert("accepted", v);
    }
    status
}

/// Whether a request is gRPC (or gRPC-web), to be answered with a status.
pub fn is_grpc(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

impl ApiError {
    /// The error as a gRPC status when `grpc`, else the gateway's JSON: for
    /// layers that answer before any handler (keys, origins).
    pub fn respond(self, grpc: bool) -> Response {
        match grpc {
            true => tonic::Status::from(self).into_http(),
            false => self.into_response(),
        }
    }
}

/// The answer to a path nothing serves: gRPC's UNIMPLEMENTED to a gRPC
/// client, 404 to everyone else (the router's default was a bare 400).
pub async fn not_found(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> Response {
    if is_grpc(&headers) {
        let status = tonic::Status::unimplemented(format!("no method {}", uri.path()));
        return status.into_http::<axum::body::Body>();
    }
    ApiError::NotFound(format!("nothing is served at {}", uri.path())).into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    error: ErrorInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorInfo {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    field_violations: Vec<FieldViolation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        if let ApiError::Access(AccessError::Limited { retry_after, .. }) = &self {
            return limited(*retry_after, self.to_string());
        }
        let (http, name) = match (&self, code) {
            (ApiError::UnsupportedMediaType(_), _) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_ARGUMENT")
            }
            // Not 503: a client's retry policy differs for a full disk.
            (ApiError::Queue(QueueError::StoreFull(_)), _) => {
                (StatusCode::INSUFFICIENT_STORAGE, "RESOURCE_EXHAUSTED")
            }
            (_, Code::ResourceExhausted) => (StatusCode::PAYLOAD_TOO_LARGE, "RESOURCE_EXHAUSTED"),
            (_, Code::InvalidArgument) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            (_, Code::NotFound) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            (_, Code::Unauthenticated) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            (_, Code::PermissionDenied) => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            (_, Code::DeadlineExceeded) => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
            (_, Code::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        let message = self.to_string();
        let (field_violations, accepted) = match self {
            ApiError::Invalid {
                violations,
                accepted,
            } => (violations, accepted),
            _ => (Vec::new(), None),
        };
        let body = ErrorBody {
            error: ErrorInfo {
                code: name,
                message,
                field_violations,
                accepted,
            },
        };
        (http, Json(body)).into_response()
    }
}

/// 429 with `Retry-After` in whole seconds (rounded up, so a client that
/// waits that long passes).
fn limited(retry_after: std::time::Duration, message: String) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let body = ErrorBody {
        error: ErrorInfo {
            code: "RESOURCE_EXHAUSTED",
            message,
            field_violations: Vec::new(),
            accepted: None,
        },
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::RETRY_AFTER, seconds.max(1).to_string())],
        Json(body),
    )
        .into_response()
}
