//! Syslog over TCP: a task per connection, at most `--syslog-max-connections`
//! at once (one more is closed at once, and counted). A connection that
//! begins a message and does not finish it within the frame timeout is
//! closed, the half message counted; one silent for the idle timeout (when
//! set) is closed too; one whose peer is gone is found by keepalive probes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::frame::Decoder;
use super::gather::{Gathered, Peer, Shared};
use crate::model::time;
use crate::net::backoff::Backoff;

/// Bytes read from a connection at once.
const READ_CHUNK: usize = 16 * 1024;
/// Quiet time before the first keepalive probe, the time between probes, and
/// how many unanswered probes end the connection.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// Accepts connections until the source stops; each holds one of `slots`.
pub async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
) {
    // Accepting fails when the process is out of file descriptors: pause
    // rather than spin.
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            _ = shared.stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff.reset();
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, "syslog: accepting a TCP connection failed");
                tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.step()) => continue,
                }
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                keep_alive(&stream);
                tasks.spawn(connection(stream, peer, shared.clone(), slot));
            }
            Err(_) => {
                let why = "too many connections (--syslog-max-connections)";
                shared
                    .report
                    .rejected("connection_limit", why, &peer.to_string());
            }
        }
    }
}

/// Probes a quiet connection, so a sender that vanished (its host gone,
/// no FIN) gives its place back within a couple of minutes; closing quiet
/// connections instead would lose what Python's `SysLogHandler`, which never
/// reconnects, logs after a quiet spell.
fn keep_alive(stream: &TcpStream) {
    let probes = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(&probes) {
        tracing::debug!(error = %e, "syslog: could not set TCP keepalive");
    }
}

/// Resolves at `deadline`, or never.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Reads one connection's messages until it closes, stalls or the source
/// stops. `_slot` is its place among the connections allowed.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
) {
    let max = shared.settings.max_message;
    let mut c = Connection {
        stream,
        peer: Peer::of(addr),
        decoder: Decoder::new(max),
        chunk: vec![0u8; READ_CHUNK.min(max + 1)],
        begun: None,
        shared,
    };
    while c.read().await {}
}

/// One connection's state between reads.
struct Connection {
    stream: TcpStream,
    /// Who sends, for the host of messages that name none, and for logs.
    peer: Peer,
    decoder: Decoder,
    /// Where a read lands before the decoder takes it.
    chunk: Vec<u8>,
    /// When the message under way began, if one is: it must be finished
    /// within the frame timeout.
    begun: Option<Instant>,
    shared: Arc<Shared>,
}

impl Connection {
    /// Reads once and hands on what the read completed; false when the
    /// connection is done with.
    async fn read(&mut self) -> bool {
        let read = tokio::select! {
            _ = self.shared.stop.cancelled() => return false,
            _ = until(self.deadline()) => None,
            r = self.stream.read(&mut self.chunk) => Some(r),
        };
        match read {
            Some(Ok(n)) if n > 0 => self.take(n).await,
            Some(Ok(_)) => {
                self.end(true).await;
                false
            }
            // Reset, or stalled: a message under way will not be finished.
            Some(Err(_)) | None => {
                self.end(false).await;
                false
            }
        }
    }

    /// When the connection has waited too long: for the rest of a message,
    /// or (if limited) for the next one.
    fn deadline(&self) -> Option<Instant> {
        let settings = &self.shared.settings;
        match self.begun {
            Some(t) => Some(t + settings.frame_timeout),
            None => settings.idle_timeout.map(|d| Instant::now() + d),
        }
    }

    /// The messages `n` more bytes complete; false when the source stops.
    async fn take(&mut self, n: usize) -> bool {
        let now_us = time::now_micros();
        let mut gathered = Gathered::default();
        self.decoder.feed(&self.chunk[..n]);
        let mut finished = false;
        while let Some(e) = self.decoder.next() {
            finished = true;
            self.shared.take(e, &self.peer, now_us, &mut gathered);
            // A read of many small messages is handed on in parts, so what
            // waits for the budget outside it stays small.
            if gathered.is_full() && !self.shared.hand_on(std::mem::take(&mut gathered)).await {
                return false;
            }
        }
        self.begun = match self.decoder.pending() {
            false => None,
            true if finished || self.begun.is_none() => Some(Instant::now()),
            true => self.begun,
        };
        self.shared.hand_on(gathered).await
    }

    /// The stream ended: closed by the sender (`closed`: a last line
    /// without its line end is a message), or reset or stalled.
    async fn end(&mut self, closed: bool) {
        let mut gathered = Gathered::default();
        let last = match closed {
            true => self.decoder.finish(),
            false => self.decoder.abandon(),
        };
        if let Some(e) = last {
            self.shared
                .take(e, &self.peer, time::now_micros(), &mut gathered);
        }
        self.shared.hand_on(gathered).await;
    }
}
