//! The answer on a connection the listener took over one of its caps: the
//! refusal it names, in the request's protocol, before anything else runs.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::error::{ApiError, is_grpc};
use crate::listen::Refused;

/// Answers a refused connection's request with 503 / `UNAVAILABLE`.
pub async fn refuse(req: Request, next: Next) -> Response {
    match req.extensions().get::<Refused>() {
        Some(Refused(why)) => {
            ApiError::Overloaded(format!("too many connections: {why}; try again later"))
                .respond(is_grpc(req.headers()))
        }
        None => next.run(req).await,
    }
}
