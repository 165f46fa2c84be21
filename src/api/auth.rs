//! Every request's key: checked here, before any handler, against the scope
//! its path needs; the [`Grant`] goes into the request's extensions, where
//! handlers find the services it covers. Paths are classified by what they
//! do, and a path not listed needs `admin`, so an endpoint added later is
//! closed until it is placed.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, header};

use super::error::{ApiError, is_grpc};
use crate::access::{Access, AccessError, Grant, Scope};

/// What a path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Nothing: probes and the viewer's page (it asks for the key).
    Open,
    /// Any valid key (gRPC reflection).
    AnyKey,
    Scope(Scope),
}

/// The scope `path` needs.
fn need(method: &Method, path: &str) -> Need {
    const LOGS: &str = "/taillight.v1.LogService/";
    const OTLP: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/";
    match path {
        "/healthz" | "/readyz" => Need::Open,
        p if p.starts_with("/grpc.health.v1.Health/") => Need::Open,
        "/" | "/app.js" | "/app.css" | "/favicon.ico" if method == Method::GET => Need::Open,
        p if p.starts_with("/grpc.reflection.") => Need::AnyKey,
        "/metrics" => Need::Scope(Scope::Admin),
        "/taillight.v1.LogService/PushLog" | "/taillight.v1.LogService/PushLogs" => {
            Need::Scope(Scope::Push)
        }
        p if p.starts_with(LOGS) => Need::Scope(Scope::Read),
        p if p.starts_with(OTLP) => Need::Scope(Scope::Push),
        "/v1/logs" if method == Method::POST => Need::Scope(Scope::Push),
        "/log/set" | "/loki/api/v1/push" => Need::Scope(Scope::Push),
        "/v1/logs" | "/v1/services" | "/v1/tail" | "/v1/histogram" | "/v1/views" | "/ws" => {
            Need::Scope(Scope::Read)
        }
        // Export, an entry's context; services' tags; saved views by name;
        // alert firings.
        p if [
            "/v1/logs/",
            "/v1/services/",
            "/v1/views/",
            "/v1/alerts/",
            "/log/get/",
        ]
        .iter()
        .any(|prefix| p.starts_with(prefix)) =>
        {
            Need::Scope(Scope::Read)
        }
        _ => Need::Scope(Scope::Admin),
    }
}

/// Checks the request's key against what its path needs.
pub async fn check(State(access): State<Arc<Access>>, mut req: Request, next: Next) -> Response {
    let need = need(req.method(), req.uri().path());
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if need == Need::Open || !access.required() {
        let grant = match need {
            Need::Open => Grant::everything(),
            _ => access.open(ip),
        };
        req.extensions_mut().insert(grant);
        return next.run(req).await;
    }
    let grpc = is_grpc(req.headers());
    let grant = match bearer(&req).and_then(|key| access.grant(key, ip)) {
        Ok(g) => g,
        Err(e) => return refuse(e, grpc),
    };
    if let Need::Scope(scope) = need
        && !grant.may(scope)
    {
        access.count(&grant.name, "denied");
        return refuse(
            AccessError::Denied(format!(
                "API key {:?} does not have the {} scope this needs",
                &*grant.name,
                scope.name()
            )),
            grpc,
        );
    }
    access.count(&grant.name, "allowed");
    req.extensions_mut().insert(grant);
    next.run(req).await
}

/// The grant [`check`] gave a gRPC request. Every routed request has one;
/// one without is refused rather than served.
pub fn grant_of<T>(req: &tonic::Request<T>) -> Result<Grant, tonic::Status> {
    grant_in(req.extensions())
}

/// [`grant_of`] for a request before tonic reads it.
pub fn grant_in(extensions: &http::Extensions) -> Result<Grant, tonic::Status> {
    extensions
        .get::<Grant>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("the request was not checked for a key"))
}

/// The request's bearer key, if it sent one.
fn bearer(req: &Request) -> Result<Option<&str>, AccessError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad =
        || AccessError::Unauthenticated("the authorization header is not `Bearer KEY`".into());
    let text = value.to_str().map_err(|_| bad())?;
    let (scheme, key) = text.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
        return Err(bad());
    }
    Ok(Some(key.trim()))
}

/// The refusal in the request's protocol: a gRPC status, or 401 (with
/// `WWW-Authenticate`) / 403 with the gateway's JSON error.
fn refuse(e: AccessError, grpc: bool) -> Response {
    let unauthenticated = matches!(e, AccessError::Unauthenticated(_));
    let mut res = ApiError::from(e).respond(grpc);
    if unauthenticated && !grpc {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_need_their_scope_and_unknown_ones_admin() {
        let (get, post) = (Method::GET, Method::POST);
        assert_eq!(need(&get, "/healthz"), Need::Open);
        assert_eq!(
            need(&post, "/taillight.v1.LogService/PushLogs"),
            Need::Scope(Scope::Push)
        );
        assert_eq!(
            need(&post, "/taillight.v1.LogService/Tail"),
            Need::Scope(Scope::Read)
        );
        assert_eq!(need(&post, "/v1/logs"), Need::Scope(Scope::Push));
        assert_eq!(need(&get, "/v1/logs"), Need::Scope(Scope::Read));
        assert_eq!(
            need(&get, "/v1/services/api/tags"),
            Need::Scope(Scope::Read)
        );
        assert_eq!(
            need(
                &post,
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
            ),
            Need::Scope(Scope::Push)
        );
        for path in [
            "/v1/histogram",
            "/v1/logs/42/context",
            "/v1/views",
            "/v1/views/mine",
            "/v1/alerts/firings",
        ] {
            assert_eq!(need(&get, path), Need::Scope(Scope::Read), "{path}");
        }
        assert_eq!(need(&get, "/metrics"), Need::Scope(Scope::Admin));
        assert_eq!(need(&get, "/v2/anything"), Need::Scope(Scope::Admin));
        assert_eq!(need(&post, "/"), Need::Scope(Scope::Admin));
        assert_eq!(
            need(
                &post,
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
            ),
            Need::AnyKey
        );
    }
}
