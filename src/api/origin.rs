//! Which web pages may call the API. A browser names the page's origin on
//! every cross-origin request, also on the "simple" ones it sends without a
//! preflight (a `text/plain` or form POST, a WebSocket), which CORS headers
//! cannot stop: the browser only hides the answer, after the server acted.
//! So a request naming an origin that is neither the server's own nor
//! listed in `--cors-origins` is refused here, before its body is read.
//! Requests without an `Origin` (curl, the seed's clients, every client
//! that is not a browser) are not affected.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use super::error::ApiError;
use crate::access::AccessError;

/// The origins allowed besides the server's own.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// As configured, lower-cased, without a trailing slash.
    listed: Vec<String>,
}

impl Origins {
    /// Parses `--cors-origins`: each `scheme://host[:port]`.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let mut listed = Vec::new();
        for o in list.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            let o = o.trim_end_matches('/').to_ascii_lowercase();
            let valid = authority(&o).is_some_and(|a| !a.is_empty() && !a.contains('/'))
                && HeaderValue::from_str(&o).is_ok();
            if !valid {
                return Err(format!(
                    "CORS origin {o:?}: expected scheme://host[:port], e.g. https://logs.example.com"
                ));
            }
            listed.push(o);
        }
        Ok(Origins { listed })
    }

    /// The CORS answer for the listed origins, if any are.
    pub fn cors(&self) -> Option<CorsLayer> {
        if self.listed.is_empty() {
            return None;
        }
        // Each was checked to be a valid header value by `parse`.
        let values: Vec<HeaderValue> = self
            .listed
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(values))
                .allow_methods([http::Method::GET, http::Method::POST, http::Method::OPTIONS])
                // `*` would not cover `authorization` (the Fetch standard;
                // Firefox and Safari hold to it): the asked-for headers are
                // mirrored instead.
                .allow_headers(AllowHeaders::mirror_request())
                .expose_headers([
                    http::HeaderName::from_static("grpc-status"),
                    http::HeaderName::from_static("grpc-message"),
                    http::HeaderName::from_static("grpc-status-details-bin"),
                ]),
        )
    }

    /// Whether a request naming `origin` and sent to `host` may go on.
    fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let own = match (authority(&origin), host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            _ => false,
        };
        own || self.listed.contains(&origin)
    }
}

/// `host[:port]` of `scheme://host[:port]`, for the web's two schemes.
fn authority(origin: &str) -> Option<&str> {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
}

/// Refuses a request whose `Origin` the server does not allow (403).
pub async fn guard(State(origins): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        // HTTP/2 carries the host as the URI's authority, HTTP/1 in `Host`.
        // Behind a proxy the public host may come as X-Forwarded-Host: a
        // page cannot add that header to a request without a preflight,
        // and the preflight itself is refused here.
        let header_str = |name| {
            req.headers()
                .get(name)
                .and_then(|h: &HeaderValue| h.to_str().ok())
        };
        let host = header_str(header::HOST).or_else(|| req.uri().authority().map(|a| a.as_str()));
        let forwarded = header_str(http::HeaderName::from_static("x-forwarded-host"));
        let origin = origin.to_str().unwrap_or("");
        if !origins.allows(origin, host)
            && !forwarded.is_some_and(|f| origins.allows(origin, Some(f)))
        {
            return refused(origin);
        }
    }
    next.run(req).await
}

fn refused(origin: &str) -> Response {
    ApiError::from(AccessError::Denied(format!(
        "requests from pages on {origin:?} are not allowed: add the origin to --cors-origins \
         (TAILLIGHT_CORS_ORIGINS) to allow them"
    )))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_listed_origins_pass() {
        let o = Origins::parse(&["https://Logs.Example.com/".into()]).unwrap();
        assert!(o.allows("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(o.allows("https://logs.example.com", Some("other:1")));
        assert!(!o.allows("http://127.0.0.1:9999", Some("127.0.0.1:8080")));
        assert!(!o.allows("null", Some("127.0.0.1:8080")));
        assert!(!o.allows("http://evil.example", None));
        assert!(Origins::parse(&["logs.example.com".into()]).is_err());
        assert!(Origins::parse(&["https://a/b".into()]).is_err());
    }
}
