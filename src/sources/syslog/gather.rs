//! What the TCP connections and the UDP socket share: turning what the
//! decoder finds into entries (counting every rejection), and handing them
//! to the batcher within a byte budget. The budget is taken before a parcel
//! is queued and given back only once its entries are durable, so what the
//! source holds (parsed, queued, in flight) never exceeds it: a TCP reader
//! waits for room, which stops it reading and lets TCP slow the sender; the
//! UDP reader cannot wait, and drops (counted as lost).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::frame::Event;
use super::parse::{self, Context, Reject};
use crate::proto::LogEntry;
use crate::sources::report::SourceReport;

/// What an entry is counted as besides its message's bytes: the entry,
/// its attributes' keys and values, the queue's bookkeeping.
const ENTRY_OVERHEAD: usize = 1024;
/// What a reader gathers before handing it on: what it holds outside the
/// budget while it waits for room.
const PARCEL_BYTES: usize = 64 * 1024;

/// The settings every reader uses.
pub struct Settings {
    /// Service of messages without an app-name or tag.
    pub default_service: String,
    /// Longest service name the intake takes (longer app-names are cut).
    pub max_service_len: usize,
    /// Largest message, in bytes.
    pub max_message: usize,
    /// How long a TCP connection may send nothing between messages, if
    /// limited.
    pub idle_timeout: Option<Duration>,
    /// How long a begun message may take to arrive.
    pub frame_timeout: Duration,
}

/// Entries on their way to the batcher, with the budget they hold.
pub struct Parcel {
    /// Each entry and the sender it came from (for rejection logs).
    pub entries: Vec<(LogEntry, Arc<str>)>,
    /// Given back when the entries are durable (or dropped).
    pub permit: OwnedSemaphorePermit,
}

/// Entries parsed from one read, and what they cost of the budget.
#[derive(Default)]
pub struct Gathered {
    entries: Vec<(LogEntry, Arc<str>)>,
    bytes: usize,
}

impl Gathered {
    /// Whether it is time to hand these on.
    pub fn is_full(&self) -> bool {
        self.bytes >= PARCEL_BYTES
    }
}

/// Who sent a message.
pub struct Peer {
    /// The host of messages that name none.
    pub host: String,
    /// Address and port, for logs.
    pub origin: Arc<str>,
}

impl Peer {
    pub fn of(addr: SocketAddr) -> Self {
        Peer {
            // An IPv4 sender on a dual-stack socket is named as IPv4.
            host: addr.ip().to_canonical().to_string(),
            origin: addr.to_string().into(),
        }
    }
}

pub struct Shared {
    pub settings: Settings,
    /// Where every message received, rejected or lost is counted.
    pub report: Arc<SourceReport>,
    /// Bytes the source may hold, in permits.
    budget: Arc<Semaphore>,
    /// The budget's size: no parcel asks for more.
    budget_total: usize,
    /// Unbounded, since the budget bounds what can be in it.
    to_batcher: mpsc::UnboundedSender<Parcel>,
    /// Cancelled when the ways in stop.
    pub stop: CancellationToken,
}

impl Shared {
    pub fn new(
        settings: Settings,
        report: Arc<SourceReport>,
        budget: (Arc<Semaphore>, usize),
        to_batcher: mpsc::UnboundedSender<Parcel>,
        stop: CancellationToken,
    ) -> Self {
        Shared {
            settings,
            report,
            budget: budget.0,
            budget_total: budget.1,
            to_batcher,
            stop,
        }
    }

    /// Takes one decoder event from `peer`: an entry into `into`, or a
    /// counted rejection.
    pub fn take(&self, event: Event<'_>, peer: &Peer, now_us: i64, into: &mut Gathered) {
        self.report.received(1);
        let limit = self.settings.max_message;
        let frame = match event {
            Event::Frame(f) => f,
            Event::TooLarge(bytes) => return self.reject(Reject::TooLarge { bytes, limit }, peer),
            Event::BadCount => return self.reject(Reject::BadFrame, peer),
            Event::Incomplete(bytes) => return self.reject(Reject::Incomplete { bytes }, peer),
        };
        let cx = Context {
            default_service: &self.settings.default_service,
            max_service_len: self.settings.max_service_len,
            peer: &peer.host,
            now_us,
        };
        match parse::entry(frame, &cx) {
            Ok(entry) => {
                into.bytes += frame.len() + ENTRY_OVERHEAD;
                into.entries.push((entry, peer.origin.clone()));
            }
            Err(r) => self.reject(r, peer),
        }
    }

    fn reject(&self, r: Reject, peer: &Peer) {
        self.report.rejected(r.reason(), &r, &peer.origin);
    }

    /// Hands `g` on once the budget has room for it; false when the source
    /// is stopping (what `g` held is counted as lost).
    pub async fn hand_on(&self, g: Gathered) -> bool {
        if g.entries.is_empty() {
            return true;
        }
        let permits = self.permits(&g);
        let permit = tokio::select! {
            _ = self.stop.cancelled() => None,
            p = self.budget.clone().acquire_many_owned(permits) => p.ok(),
        };
        let Some(permit) = permit else {
            self.report.lost("shutdown", g.entries.len() as u64);
            return false;
        };
        self.send(g, permit)
    }

    /// Hands `g` on if the budget has room for it now, else counts it lost.
    pub fn try_hand_on(&self, g: Gathered) {
        if g.entries.is_empty() {
            return;
        }
        match self.budget.clone().try_acquire_many_owned(self.permits(&g)) {
            Ok(permit) => {
                self.send(g, permit);
            }
            Err(_) => self.report.lost("backlog", g.entries.len() as u64),
        }
    }

    fn permits(&self, g: &Gathered) -> u32 {
        g.bytes
            .min(self.budget_total)
            .try_into()
            .unwrap_or(u32::MAX)
    }

    fn send(&self, g: Gathered, permit: OwnedSemaphorePermit) -> bool {
        let n = g.entries.len() as u64;
        let parcel = Parcel {
            entries: g.entries,
            permit,
        };
        match self.to_batcher.send(parcel) {
            Ok(()) => true,
            Err(_) => {
                self.report.lost("shutdown", n);
                false
            }
        }
    }
}
