//! One message per unary call. tonic reads a unary request's first message
//! and drains the rest unseen, so a client that sent two (a bug, or a
//! stream sent to the wrong method) had its second entry dropped without a
//! word. Here a unary call's body is read whole (it is read whole anyway,
//! within the same size limit) and one holding more than one message is
//! refused with INVALID_ARGUMENT. A message that does not decode is the
//! client's fault too: tonic's INTERNAL for it becomes INVALID_ARGUMENT.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt, Limited};

use super::error::ApiError;

/// The unary methods that read a request message.
const UNARY: [&str; 6] = [
    "/taillight.v1.LogService/PushLog",
    "/taillight.v1.LogService/QueryLogs",
    "/taillight.v1.LogService/ListServices",
    "/taillight.v1.LogService/ListTags",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "/grpc.health.v1.Health/Check",
];

/// Refuses a unary gRPC call whose body holds more than one message; `max`
/// bounds what is read (the gRPC decoding limit plus framing).
pub async fn one_message(max: usize, req: Request, next: Next) -> Response {
    if !UNARY.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, max + 5).collect().await {
        Ok(b) => b.to_bytes(),
        // As tonic answers a message over its decoding limit.
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let status = tonic::Status::out_of_range(format!(
                "the request message is over the limit of {max} bytes"
            ));
            return status.into_http();
        }
        Err(e) => {
            return ApiError::invalid("request", format!("could not be read: {e}")).respond(true);
        }
    };
    let frames = frames(&bytes);
    if frames > 1 {
        return ApiError::invalid(
            "request",
            format!("a unary call takes one message; this one sent {frames}"),
        )
        .respond(true);
    }
    let mut res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if undecodable(&res) {
        res.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    res
}

/// Whether tonic answered that the request message did not decode (a
/// trailers-only answer, so the status is in the headers).
fn undecodable(res: &Response) -> bool {
    let h = res.headers();
    h.get("grpc-status").is_some_and(|s| s == "13")
        && h.get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.starts_with("failed%20to%20decode%20Protobuf"))
}

/// Length-prefixed messages in a gRPC body (a partial last one counts).
fn frames(mut body: &[u8]) -> usize {
    let mut n = 0;
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        n += 1;
        body = body.get(5 + len..).unwrap_or_default();
    }
    n + usize::from(!body.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_by_their_length_prefix() {
        assert_eq!(frames(b""), 0);
        assert_eq!(frames(&[0, 0, 0, 0, 2, 8, 1]), 1);
        assert_eq!(frames(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7]), 2);
        assert_eq!(frames(&[0, 0, 0, 0, 1, 8, 0]), 2);
    }
}
