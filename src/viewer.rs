//! The browser log viewer, served from the binary itself.
//!
//! `web/` builds a static bundle into `web/dist/` (committed, so building
//! taillight never needs Node); it is embedded here at compile time. The page
//! talks to the same port over gRPC-web, so serving three files is all the
//! server does for it. Any query string on `/` (`?service=api&entry=42`) is
//! the viewer's own state and still gets the page.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &[u8] = include_bytes!("../web/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../web/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../web/dist/app.css");

/// Scripts and styles only from our own files (no inline code, so log text can
/// never become markup that runs), gRPC-web calls only to this origin, and the
/// page may not be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| serve(h, &INDEX, "text/html; charset=utf-8")),
        )
        .route(
            "/app.js",
            get(|h: HeaderMap| serve(h, &JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|h: HeaderMap| serve(h, &CSS, "text/css; charset=utf-8")),
        )
}

/// One embedded file and its ETag, computed on first use.
struct Asset {
    body: &'static [u8],
    etag: OnceLock<HeaderValue>,
}

static INDEX: Asset = Asset::new(INDEX_HTML);
static JS: Asset = Asset::new(APP_JS);
static CSS: Asset = Asset::new(APP_CSS);

impl Asset {
    const fn new(body: &'static [u8]) -> Self {
        Asset {
            body,
            etag: OnceLock::new(),
        }
    }

    /// FNV-1a of the contents: stable across builds and processes, unlike
    /// std's randomly seeded hasher, so every node of a cluster agrees.
    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in self.body {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            HeaderValue::from_str(&format!("\"{h:016x}\"")).expect("hex is a valid header")
        })
    }
}

async fn serve(req: HeaderMap, asset: &'static Asset, content_type: &'static str) -> Response {
    let etag = asset.etag().clone();
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // Revalidate every time (cheap with the ETag): a new binary's page
        // must never run against a stale script.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, asset.body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, etag: Option<&HeaderValue>) -> Response {
        let mut req = Request::get(uri);
        if let Some(t) = etag {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        router()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn serves_the_bundle_with_strict_headers() {
        for (uri, ty) in [
            ("/", "text/html"),
            ("/?service=api&entry=42", "text/html"),
            ("/app.js", "text/javascript"),
            ("/app.css", "text/css"),
        ] {
            let res = get(uri, None).await;
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            let h = res.headers();
            assert!(
                h[header::CONTENT_TYPE].to_str().unwrap().starts_with(ty),
                "{uri}"
            );
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';"));
            assert!(!csp.contains("unsafe"));
        }
    }

    #[tokio::test]
    async fn answers_not_modified_for_a_current_etag() {
        let first = get("/app.js", None).await;
        let etag = first.headers()[header::ETAG].clone();
        let again = get("/app.js", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(get("/app.css", Some(&etag)).await.status(), StatusCode::OK);
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        let html = std::str::from_utf8(INDEX_HTML).unwrap();
        assert!(html.contains(r#"<script src="/app.js""#));
        assert!(html.contains(r#"href="/app.css""#));
        // No inline script or style: the CSP would block them.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(!html.contains("<style") && !html.contains(" style="));
    }
}
