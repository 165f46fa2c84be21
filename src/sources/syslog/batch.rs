//! From parcels to the intake: what is waiting (up to a batch) goes in one
//! submission, at most a few awaiting durability at once. No time is spent
//! waiting for a batch to fill: a quiet source submits each message as it
//! comes, and a busy one finds its batches filled while the last ones were
//! being made durable.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::gather::Parcel;
use super::parse::Reject;
use crate::intake::Intake;
use crate::queue::QueueError;
use crate::sources::in_flight::InFlight;
use crate::sources::report::SourceReport;

/// Most entries in one submission.
const BATCH: usize = 1_000;
/// Submissions awaiting durability at once.
const MAX_IN_FLIGHT: usize = 8;

/// A submission awaiting durability.
struct Submitted {
    /// How many, to count as accepted or lost once settled.
    entries: u64,
    /// The budget its entries hold, given back once they are settled.
    _permit: OwnedSemaphorePermit,
}

pub struct Batcher {
    /// Where the entries go.
    intake: Intake,
    /// Counts entries accepted, rejected by validation, and lost.
    report: Arc<SourceReport>,
    /// What the TCP connections and the UDP reader parsed.
    parcels: mpsc::UnboundedReceiver<Parcel>,
    /// Submissions awaiting durability; while it is full no parcel is
    /// taken, and the budget fills.
    in_flight: InFlight<Submitted>,
}

impl Batcher {
    pub fn new(
        intake: Intake,
        report: Arc<SourceReport>,
        parcels: mpsc::UnboundedReceiver<Parcel>,
    ) -> Self {
        Batcher {
            intake,
            report,
            parcels,
            in_flight: InFlight::new(MAX_IN_FLIGHT),
        }
    }

    /// Submits parcels until `stop`.
    pub async fn run(&mut self, stop: &CancellationToken) {
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                Some((s, r)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    settled(&self.report, s, r)
                }
                p = self.parcels.recv(), if !self.in_flight.is_full() => {
                    let Some(first) = p else { return };
                    let parcels = self.gather(first);
                    self.submit(parcels).await;
                }
            }
        }
    }

    /// Once the readers have stopped: what they parsed and the intake no
    /// longer takes is lost; what was submitted is settled.
    pub async fn finish(mut self) {
        self.parcels.close();
        let mut left = 0;
        while let Ok(p) = self.parcels.try_recv() {
            left += p.entries.len() as u64;
        }
        self.report.lost("shutdown", left);
        while let Some((s, r)) = self.in_flight.next().await {
            settled(&self.report, s, r);
        }
    }

    /// `first` and the parcels queued behind it, up to a batch.
    fn gather(&mut self, first: Parcel) -> Vec<Parcel> {
        let mut n = first.entries.len();
        let mut parcels = vec![first];
        while n < BATCH {
            let Ok(p) = self.parcels.try_recv() else {
                break;
            };
            n += p.entries.len();
            parcels.push(p);
        }
        parcels
    }

    /// Validates the parcels' entries and hands them to the intake in one
    /// submission.
    async fn submit(&mut self, parcels: Vec<Parcel>) {
        let mut entries = Vec::new();
        let mut origins = Vec::new();
        let mut budget: Option<OwnedSemaphorePermit> = None;
        for p in parcels {
            for (e, origin) in p.entries {
                entries.push(e);
                origins.push(origin);
            }
            match &mut budget {
                Some(b) => b.merge(p.permit),
                None => budget = Some(p.permit),
            }
        }
        let Some(budget) = budget else { return };
        let prepared = self.intake.prepare(entries, false);
        for (i, v) in prepared.invalid {
            let why = Reject::Invalid(v);
            let origin = origins.get(i).map_or("", |o| o);
            self.report.rejected(why.reason(), &why, origin);
        }
        let n = prepared.entries.len() as u64;
        if n == 0 {
            return;
        }
        match self.intake.submit(prepared.entries).await {
            Ok(durable) => {
                let s = Submitted {
                    entries: n,
                    _permit: budget,
                };
                self.in_flight.push(s, durable);
            }
            Err(e) => {
                tracing::warn!(error = %e, entries = n, "the intake refused syslog entries");
                self.report.lost("intake_refused", n);
            }
        }
    }
}

/// A submission became durable, or failed: syslog cannot send it again.
fn settled(report: &SourceReport, s: Submitted, r: Result<(), QueueError>) {
    match r {
        Ok(()) => report.accepted(s.entries),
        Err(e) => {
            tracing::warn!(error = %e, entries = s.entries, "syslog entries were not stored");
            report.lost("not_stored", s.entries);
        }
    }
}
