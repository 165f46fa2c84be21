//! One connection: its TLS handshake, HTTP/1 or HTTP/2 (whichever the
//! client speaks), the per-request wrapping (client address, body timeout,
//! in-flight tracking), and its end: when the server stops, when it has
//! been idle too long, or, for a refused connection, once its refusal is
//! answered.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::activity::{Activity, Tracked};
use super::body::GapTimeout;
use super::limit::{Permit, Refused};
use super::{Listen, Settings};

/// Serves one accepted connection until it ends.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: Permit,
    refused: Option<Refused>,
    listen: Arc<Listen>,
    app: Router,
    stop: CancellationToken,
) {
    // Without TCP_NODELAY a response written in several pieces (headers,
    // body, gRPC trailers) waits for the peer's delayed ACK: ~40 ms added
    // to small queries and tail messages (found by the benchmark).
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let s = listen.settings;
    let Some(tls) = &listen.tls else {
        return http(tcp, peer, permit, refused, s, app, stop).await;
    };
    match tokio::time::timeout(s.header_timeout, tls.acceptor().accept(tcp)).await {
        Ok(Ok(io)) => http(io, peer, permit, refused, s, app, stop).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

async fn http<I>(
    io: I,
    peer: SocketAddr,
    permit: Permit,
    refused: Option<Refused>,
    s: Settings,
    app: Router,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let refusing = refused.is_some();
    let service = {
        let activity = activity.clone();
        tower::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            if let Some(r) = &refused {
                req.extensions_mut().insert(r.clone());
            }
            let busy = Some(activity.begin());
            let req = req.map(|b| Body::new(GapTimeout::new(b, s.body_timeout)));
            let app = app.clone();
            async move {
                let res = app.oneshot(req).await?;
                Ok::<_, std::convert::Infallible>(res.map(|body| Body::new(Tracked { body, busy })))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(s.header_timeout)
        .keep_alive(!refusing);
    builder.http2().timer(TokioTimer::new());
    // The permit lives with the connection's socket, so an upgraded
    // WebSocket still counts against the caps.
    let io = TokioIo::new(Held {
        io,
        _permit: permit,
    });
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    tokio::pin!(conn);
    let ending = async {
        if refusing {
            // Long enough to read one request and answer it, no longer.
            let _ = tokio::time::timeout(s.header_timeout, activity.answered()).await;
        } else {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = activity.expired(s.header_timeout, s.idle_timeout) => {}
            }
        }
    };
    tokio::select! {
        r = conn.as_mut() => return done(peer, r),
        _ = ending => conn.as_mut().graceful_shutdown(),
    }
    // Open requests may finish (the server's shutdown bounds how long).
    let r = conn.await;
    done(peer, r);
}

fn done(peer: SocketAddr, r: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = r {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A socket with the permit it counts against.
struct Held<I> {
    io: I,
    _permit: Permit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Held<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Held<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
