//! Pacing the fan-out when many streams are open. Handing a batch on costs
//! work for every subscriber (a filter, a queue, a wake-up, a write to its
//! connection) whatever the batch's size: with a thousand streams open and
//! a batch every few milliseconds, that was nearly all of the server's work
//! and ingest fell to a tenth. With [`JOIN_FROM`] subscribers or more, the
//! fan-out hands on at most once per [`EVERY`]: a batch that comes sooner
//! waits for the rest of that interval and goes on joined with those that
//! came meanwhile. A batch after a quiet interval goes on at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::reorder::Out;

/// Subscribers from which batches are paced: below it, the hand-overs cost
/// less than the latency and the copy into one batch.
pub(super) const JOIN_FROM: usize = 16;
/// Shortest time between two hand-ons while paced: what it adds to a live
/// line's latency at most.
const EVERY: Duration = Duration::from_millis(25);
/// Most records joined into one batch; more goes on at once.
const MOST_RECORDS: usize = 5_000;

/// What waits to be handed on, and when the next hand-on may be.
#[derive(Default)]
pub(super) struct Joiner {
    waiting: Vec<Out>,
    /// The earliest time of the next hand-on while paced.
    next: Option<Instant>,
}

impl Joiner {
    /// Takes `outs`; what to hand on now, if anything (all of it, in order).
    pub fn add(&mut self, outs: Vec<Out>, subscribers: usize, now: Instant) -> Vec<Out> {
        self.waiting.extend(outs);
        let paced = subscribers >= JOIN_FROM;
        let due = self.next.is_none_or(|next| now >= next);
        // A few batches wait at most: counted again rather than kept.
        let records: usize = self.waiting.iter().map(Out::len).sum();
        if !paced || due || records >= MOST_RECORDS {
            return self.take(now);
        }
        Vec::new()
    }

    /// When what waits is due, if anything waits.
    pub fn due(&self) -> Option<Instant> {
        self.next.filter(|_| !self.waiting.is_empty())
    }

    /// Everything waiting, joined, to be handed on now.
    pub fn take(&mut self, now: Instant) -> Vec<Out> {
        let outs = joined(std::mem::take(&mut self.waiting));
        if !outs.is_empty() {
            self.next = Some(now + EVERY);
        }
        outs
    }
}

/// `outs` with each run of adjacent batches made one.
fn joined(outs: Vec<Out>) -> Vec<Out> {
    let mut out: Vec<Out> = Vec::with_capacity(outs.len());
    for next in outs {
        match (out.last_mut(), next) {
            (Some(Out::Batch(run)), Out::Batch(batch)) => {
                Arc::make_mut(run).extend(batch.iter().cloned());
            }
            (_, next) => out.push(next),
        }
    }
    out
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Batch(b) => b.len(),
            Out::Gap => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::LogRecord;

    fn batch(ids: std::ops::RangeInclusive<u64>) -> Out {
        let rs = ids.map(|id| LogRecord {
            id,
            ..Default::default()
        });
        Out::Batch(Arc::new(rs.collect()))
    }

    fn ids(outs: &[Out]) -> Vec<Option<Vec<u64>>> {
        outs.iter()
            .map(|o| match o {
                Out::Batch(b) => Some(b.iter().map(|r| r.id).collect()),
                Out::Gap => None,
            })
            .collect()
    }

    #[test]
    fn adjacent_batches_become_one_and_a_gap_stays_between() {
        let outs = vec![
            batch(1..=2),
            batch(3..=3),
            Out::Gap,
            batch(7..=8),
            batch(9..=9),
        ];
        assert_eq!(
            ids(&joined(outs)),
            vec![Some(vec![1, 2, 3]), None, Some(vec![7, 8, 9])]
        );
    }

    #[test]
    fn with_many_subscribers_batches_within_an_interval_go_on_joined() {
        let (mut j, t0) = (Joiner::default(), Instant::now());
        let many = JOIN_FROM;
        // The first goes at once, the next two wait for the interval.
        assert_eq!(
            ids(&j.add(vec![batch(1..=1)], many, t0)),
            vec![Some(vec![1])]
        );
        assert!(j.add(vec![batch(2..=2)], many, t0 + EVERY / 4).is_empty());
        assert!(j.add(vec![batch(3..=3)], many, t0 + EVERY / 2).is_empty());
        assert_eq!(j.due(), Some(t0 + EVERY));
        let then = t0 + EVERY;
        assert_eq!(ids(&j.take(then)), vec![Some(vec![2, 3])]);
        assert_eq!(j.due(), None);
        // After a quiet interval a batch goes at once.
        let later = then + EVERY * 2;
        assert_eq!(
            ids(&j.add(vec![batch(4..=4)], many, later)),
            vec![Some(vec![4])]
        );
    }

    #[test]
    fn with_few_subscribers_every_batch_goes_at_once() {
        let (mut j, t0) = (Joiner::default(), Instant::now());
        assert_eq!(ids(&j.add(vec![batch(1..=1)], 1, t0)), vec![Some(vec![1])]);
        assert_eq!(ids(&j.add(vec![batch(2..=2)], 1, t0)), vec![Some(vec![2])]);
    }
}
