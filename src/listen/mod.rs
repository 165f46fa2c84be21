//! The one port every protocol shares: TLS when configured, and the limits
//! that keep clients from holding the server: caps on open connections in
//! all and per client address, and header, body and idle timeouts. A
//! connection over a cap is answered with a refusal naming it (see
//! [`Refused`]) rather than left to hang.

mod activity;
mod body;
mod conn;
mod limit;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::Registry;
use crate::model::time::parse_duration;
pub use limit::Refused;
use limit::{Admission, Limits};
use tls::{Tls, TlsFiles};

#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// PEM certificate chain to serve TLS with, on the one port (gRPC,
    /// gRPC-web, HTTP); needs --tls-key. A file that cannot be used stops
    /// start-up. Both are read again on SIGHUP.
    #[arg(long, env = "TAILLIGHT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TAILLIGHT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: when set, every client must present a
    /// certificate one of them signed (mutual TLS).
    #[arg(long, env = "TAILLIGHT_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Most client connections open at once; one more is answered with
    /// 503 / UNAVAILABLE naming this cap, then closed.
    #[arg(long, env = "TAILLIGHT_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: usize,
    /// Most connections open at once from one client address (a proxy in
    /// front counts as one address).
    #[arg(
        long,
        env = "TAILLIGHT_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1024
    )]
    pub max_connections_per_address: usize,
    /// Longest a client may take to send a request's headers (and the TLS
    /// handshake); a connection that has not by then is closed.
    #[arg(long, env = "TAILLIGHT_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Longest a request body may send nothing while the server waits for
    /// it; the request then fails.
    #[arg(long, env = "TAILLIGHT_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// A connection with no request in flight for this long is closed
    /// (clients reconnect on their next request).
    #[arg(long, env = "TAILLIGHT_IDLE_TIMEOUT", default_value = "2m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("TLS: {0}")]
    Tls(String),
}

/// The timeouts every connection is served with.
#[derive(Debug, Clone, Copy)]
struct Settings {
    header_timeout: Duration,
    body_timeout: Duration,
    idle_timeout: Duration,
}

/// What the listener serves connections with.
pub struct Listen {
    /// `None` serves plaintext.
    tls: Option<Tls>,
    limits: Arc<Limits>,
    settings: Settings,
    /// SIGHUP reloads whose files could not be used.
    reload_failures: Counter,
}

impl Listen {
    /// Reads the TLS files (failing if any cannot be used) and sets the caps.
    pub fn new(args: &ListenArgs, registry: &Registry) -> Result<Arc<Self>, ListenError> {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::load(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls_client_ca.clone(),
            })?),
            (None, None) if args.tls_client_ca.is_none() => None,
            _ => {
                return Err(ListenError::Tls(
                    "--tls-cert and --tls-key go together (and --tls-client-ca needs them)".into(),
                ));
            }
        };
        raise_open_files_limit(args.max_connections);
        Ok(Arc::new(Listen {
            tls,
            limits: Limits::new(args.max_connections, args.max_connections_per_address, registry),
            settings: Settings {
                header_timeout: args.header_timeout,
                body_timeout: args.body_timeout,
                idle_timeout: args.idle_timeout,
            },
            reload_failures: registry.counter(
                "taillight_tls_reload_failures",
                "SIGHUP reloads of the TLS files that failed; the certificate before stays in force.",
            ),
        }))
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads the TLS files again on every SIGHUP until `stop`; when they
    /// cannot be used, the configuration in force stays.
    pub async fn reload_on_hangup(self: Arc<Self>, stop: CancellationToken) {
        let Some(tls) = &self.tls else { return };
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                return tracing::warn!(error = %e, "no SIGHUP handler; TLS files are read once");
            }
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = hup.recv() => {}
            }
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    self.reload_failures.inc();
                    tracing::error!(error = %e, "TLS files not reloaded; the certificate before stays in force");
                }
            }
        }
    }

    /// Serves `app` on `listener` until `stop`; then open connections are
    /// asked to finish and waited for. Dropped, it drops them all.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        app: Router,
        stop: CancellationToken,
    ) {
        let mut open = JoinSet::new();
        loop {
            let (tcp, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                Some(_) = open.join_next(), if !open.is_empty() => continue,
                r = listener.accept() => match r {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, or a connection reset before
                        // it was taken: wait a little rather than spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let (permit, refused) = match self.limits.admit(peer.ip()) {
                Admission::Open(p) => (p, None),
                Admission::Refuse(p, why) => (p, Some(why)),
                Admission::Drop => continue,
            };
            open.spawn(conn::serve(
                tcp,
                peer,
                permit,
                refused,
                self.clone(),
                app.clone(),
                stop.clone(),
            ));
        }
        while open.join_next().await.is_some() {}
    }
}

/// Lifts the soft open-files limit toward the hard one, so the connection
/// cap (with room for the store, the queue and the logs) is reached before
/// the kernel's limit; says so when the hard limit is lower.
fn raise_open_files_limit(connections: usize) {
    let want = connections as u64 + 1024;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want.min(lim.rlim_max),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    if lim.rlim_cur < want {
        tracing::warn!(
            open_files = lim.rlim_cur,
            max_connections = connections,
            "the open-files limit is below --max-connections plus room for the server's own files; \
             lower --max-connections or raise the limit (ulimit -n)"
        );
    }
}
