//! Syslog: RFC 5424 and RFC 3164 messages over TCP (octet-counted or one a
//! line, [`frame`]) and UDP (one a datagram), on one address. Parsing is
//! pure ([`parse`], [`rfc5424`], [`rfc3164`]); the readers ([`tcp`],
//! [`udp`]) hand entries through a byte budget ([`gather`]) to one batcher
//! ([`batch`]) in front of the intake. Syslog acknowledges nothing: what a
//! sender has written is its own business once it is in the socket.

mod batch;
mod fields;
mod frame;
mod gather;
mod parse;
mod rfc3164;
mod rfc5424;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use super::report::SourceReport;
use super::{Source, SourceContext, SourceError};
use crate::metrics::Registry;
use crate::model::time::parse_duration;
use gather::{Settings, Shared};

/// Least the byte budget holds: room for several batches of ordinary
/// lines, or a few of the largest messages.
const MIN_BUDGET: usize = 32 << 20;

/// What the kernel is asked to hold of datagrams not yet read.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// The syslog source's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SyslogArgs {
    /// Address to take syslog messages on, over TCP and UDP both (e.g.
    /// `0.0.0.0:514`, or an unprivileged `0.0.0.0:5514`); off when unset.
    #[arg(long, env = "TAILLIGHT_SYSLOG_LISTEN")]
    pub syslog_listen: Option<SocketAddr>,
    /// Service of messages that name no app (no RFC 5424 APP-NAME, no
    /// RFC 3164 tag).
    #[arg(long, env = "TAILLIGHT_SYSLOG_SERVICE", default_value = "syslog")]
    pub syslog_service: String,
    /// Largest message, in bytes; a longer one is counted and skipped, and
    /// TCP framing resumes after it.
    #[arg(long, env = "TAILLIGHT_SYSLOG_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub syslog_max_message_bytes: usize,
    /// Most TCP connections open at once; one more is closed at once (and
    /// counted).
    #[arg(long, env = "TAILLIGHT_SYSLOG_MAX_CONNECTIONS", default_value_t = 1024)]
    pub syslog_max_connections: usize,
    /// How long a TCP connection may send nothing before it is closed; 0
    /// (the default) never closes one. Python's `SysLogHandler` never
    /// reconnects: closing its quiet connection loses all it logs after.
    /// Senders that vanish without closing are found by keepalive probes.
    #[arg(long, env = "TAILLIGHT_SYSLOG_IDLE_TIMEOUT", default_value = "0", value_parser = parse_duration)]
    pub syslog_idle_timeout: Duration,
    /// How long a message may take to arrive once begun; a connection that
    /// stalls in the middle of one is closed and the half message counted.
    #[arg(long, env = "TAILLIGHT_SYSLOG_FRAME_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub syslog_frame_timeout: Duration,
}

impl Default for SyslogArgs {
    fn default() -> Self {
        SyslogArgs {
            syslog_listen: None,
            syslog_service: "syslog".into(),
            syslog_max_message_bytes: 64 * 1024,
            syslog_max_connections: 1024,
            syslog_idle_timeout: Duration::ZERO,
            syslog_frame_timeout: Duration::from_secs(30),
        }
    }
}

impl SyslogArgs {
    /// The source, listening already (so a taken address fails the start),
    /// when `--syslog-listen` is set.
    pub fn build(&self) -> Result<Vec<Box<dyn Source>>, SourceError> {
        let Some(addr) = self.syslog_listen else {
            return Ok(Vec::new());
        };
        let bad = |what: &str| Err(SourceError::Config(format!("{what} must be more than 0")));
        if self.syslog_max_message_bytes == 0 {
            return bad("--syslog-max-message-bytes");
        }
        if self.syslog_max_connections == 0 {
            return bad("--syslog-max-connections");
        }
        if self.syslog_frame_timeout.is_zero() {
            return bad("--syslog-frame-timeout");
        }
        let (tcp, udp) =
            bind(addr).map_err(|e| SourceError::Config(format!("--syslog-listen {addr}: {e}")))?;
        Ok(vec![Box::new(SyslogSource {
            args: self.clone(),
            tcp,
            udp,
        })])
    }
}

/// TCP and UDP on `addr`; with port 0, UDP on the port TCP was given.
fn bind(addr: SocketAddr) -> std::io::Result<(std::net::TcpListener, std::net::UdpSocket)> {
    let tcp = std::net::TcpListener::bind(addr)?;
    let udp = std::net::UdpSocket::bind(tcp.local_addr()?)?;
    // Datagrams that arrive while the reader is busy wait here; the kernel
    // grants at most `net.core.rmem_max`.
    if let Err(e) = socket2::SockRef::from(&udp).set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::debug!(error = %e, "syslog: could not enlarge the UDP receive buffer");
    }
    tcp.set_nonblocking(true)?;
    udp.set_nonblocking(true)?;
    Ok((tcp, udp))
}

pub struct SyslogSource {
    /// The flags it was built from: limits and timeouts.
    args: SyslogArgs,
    /// Bound at build, so the server refuses to start on a taken address.
    tcp: std::net::TcpListener,
    /// Bound with `tcp`, on the same port.
    udp: std::net::UdpSocket,
}

#[async_trait]
impl Source for SyslogSource {
    fn name(&self) -> &'static str {
        "syslog"
    }

    async fn run(self: Box<Self>, cx: SourceContext) {
        let report = Arc::new(SourceReport::new(
            self.name(),
            &cx.registry,
            cx.health.clone(),
        ));
        let SyslogSource { args, tcp, udp } = *self;
        let sockets = tokio::net::TcpListener::from_std(tcp)
            .and_then(|t| Ok((t, tokio::net::UdpSocket::from_std(udp)?)));
        let (tcp, udp) = match sockets {
            Ok(s) => s,
            Err(e) => return report.disconnected(&format!("cannot listen: {e}")),
        };
        let max = args.syslog_max_message_bytes;
        let budget_total = MIN_BUDGET.max(8 * max);
        let budget = Arc::new(Semaphore::new(budget_total));
        let slots = Arc::new(Semaphore::new(args.syslog_max_connections));
        gauges(
            &cx.registry,
            (&budget, budget_total),
            (&slots, args.syslog_max_connections),
        );
        let (to_batcher, parcels) = mpsc::unbounded_channel();
        let settings = Settings {
            default_service: args.syslog_service.clone(),
            max_service_len: cx.intake.limits().max_service_len,
            max_message: max,
            idle_timeout: Some(args.syslog_idle_timeout).filter(|d| !d.is_zero()),
            frame_timeout: args.syslog_frame_timeout,
        };
        let shared = Shared::new(
            settings,
            report.clone(),
            (budget, budget_total),
            to_batcher,
            cx.stop.clone(),
        );
        let shared = Arc::new(shared);
        let tasks = TaskTracker::new();
        tasks.spawn(tcp::accept(tcp, shared.clone(), slots, tasks.clone()));
        tasks.spawn(udp::receive(udp, shared));
        report.connected();
        let mut batcher = batch::Batcher::new(cx.intake, report, parcels);
        batcher.run(&cx.stop).await;
        tasks.close();
        tasks.wait().await;
        batcher.finish().await;
    }
}

/// Open connections and the bytes held, read at each scrape.
fn gauges(registry: &Registry, budget: (&Arc<Semaphore>, usize), slots: (&Arc<Semaphore>, usize)) {
    let (b, total) = (budget.0.clone(), budget.1);
    registry.gauge_fn(
        "taillight_syslog_buffered_bytes",
        "Bytes of syslog messages parsed and not yet durable (with a per-entry overhead).",
        move || (total - b.available_permits()) as i64,
    );
    let (s, max) = (slots.0.clone(), slots.1);
    registry.gauge_fn(
        "taillight_syslog_connections",
        "Open syslog TCP connections.",
        move || (max - s.available_permits()) as i64,
    );
}
