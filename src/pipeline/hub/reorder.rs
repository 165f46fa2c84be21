//! Putting published batches back in id order. Several writers commit in id
//! order but publish independently, so a node can hear a later batch first;
//! handed on like that, a follower would pass over the earlier one's ids and
//! never see them. The fan-out holds a batch that comes early until the ones
//! before it arrive, and when they do not come within [`HOLD`] (a writer
//! died between commit and publish) it tells the followers of a gap, so they
//! read the hole from the store, and hands the held batches on after it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::bus::RecordBatch;

/// How long an early batch waits for the ones before it.
pub(super) const HOLD: Duration = Duration::from_millis(250);
/// Most batches held at once; beyond them the wait is given up at once.
const MOST_HELD: usize = 256;

/// What to hand the followers, in order.
#[derive(Debug)]
pub(super) enum Out {
    Batch(RecordBatch),
    /// Records between what was handed on and what follows may be missing.
    Gap,
}

#[derive(Debug, Default)]
pub(super) struct Reorder {
    /// The first id of the batch that comes next in order; `None` when not
    /// known (then the next batch heard sets it).
    next: Option<u64>,
    /// Batches that came early, by first id.
    held: BTreeMap<u64, RecordBatch>,
    /// When the oldest held batch came.
    since: Option<Instant>,
}

/// First and last id of a batch (never empty: only stored records are
/// published).
fn span(batch: &RecordBatch) -> Option<(u64, u64)> {
    Some((batch.first()?.id, batch.last()?.id))
}

impl Reorder {
    /// Batches from `next` on are in order; anything before it was stored
    /// before any follower started and reaches them from the store.
    pub fn start_at(&mut self, next: u64) {
        self.next = Some(next);
    }

    /// Takes a batch as heard; what can be handed on now.
    pub fn push(&mut self, batch: RecordBatch, now: Instant) -> Vec<Out> {
        let Some((first, last)) = span(&batch) else {
            return Vec::new();
        };
        match self.next {
            None => {
                self.next = Some(last + 1);
                vec![Out::Batch(batch)]
            }
            Some(next) if first == next => {
                self.next = Some(last + 1);
                let mut out = vec![Out::Batch(batch)];
                self.release(&mut out);
                out
            }
            // Late (heard again after a retried publish, or stored before
            // the order started): handed on as it is, since a follower that
            // has not passed its ids takes them, and one that has drops them.
            Some(next) if last < next => vec![Out::Batch(batch)],
            Some(next) if first < next => {
                self.next = Some(last + 1);
                vec![Out::Batch(batch)]
            }
            Some(_) => {
                self.held.insert(first, batch);
                self.since.get_or_insert(now);
                if self.held.len() > MOST_HELD {
                    return self.give_up();
                }
                Vec::new()
            }
        }
    }

    /// When the wait for the batches before the held ones ends.
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|s| s + HOLD)
    }

    /// The missing batches did not come: a gap, then the held ones in order.
    pub fn give_up(&mut self) -> Vec<Out> {
        let mut out = vec![Out::Gap];
        for (_, batch) in std::mem::take(&mut self.held) {
            if let Some((_, last)) = span(&batch) {
                self.next = Some(last + 1);
            }
            out.push(Out::Batch(batch));
        }
        self.since = None;
        out
    }

    /// The feed itself had a gap or went down: what is held goes on, in
    /// order, and the order starts over with the next batch heard.
    pub fn forget(&mut self) -> Vec<Out> {
        let out = std::mem::take(&mut self.held)
            .into_values()
            .map(Out::Batch)
            .collect();
        self.next = None;
        self.since = None;
        out
    }

    /// Hands on the held batches that are now in order.
    fn release(&mut self, out: &mut Vec<Out>) {
        while let Some(next) = self.next
            && let Some(batch) = self.held.remove(&next)
        {
            if let Some((_, last)) = span(&batch) {
                self.next = Some(last + 1);
            }
            out.push(Out::Batch(batch));
        }
        if self.held.is_empty() {
            self.since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proto::LogRecord;

    fn batch(ids: std::ops::RangeInclusive<u64>) -> RecordBatch {
        Arc::new(
            ids.map(|id| LogRecord {
                id,
                ..Default::default()
            })
            .collect(),
        )
    }

    fn firsts(out: &[Out]) -> Vec<Option<u64>> {
        out.iter()
            .map(|o| match o {
                Out::Batch(b) => b.first().map(|r| r.id),
                Out::Gap => None,
            })
            .collect()
    }

    #[test]
    fn an_early_batch_waits_for_the_ones_before_it() {
        let now = Instant::now();
        let mut r = Reorder::default();
        r.start_at(1);
        assert!(r.push(batch(11..=20), now).is_empty());
        assert!(r.push(batch(21..=25), now).is_empty());
        assert_eq!(r.deadline(), Some(now + HOLD));
        let out = r.push(batch(1..=10), now);
        assert_eq!(firsts(&out), [Some(1), Some(11), Some(21)]);
        assert_eq!(r.deadline(), None);
        // In order from then on; a late repeat goes on as it is (followers
        // drop ids they passed) without moving the order.
        assert_eq!(firsts(&r.push(batch(26..=30), now)), [Some(26)]);
        assert_eq!(firsts(&r.push(batch(1..=10), now)), [Some(1)]);
        assert_eq!(firsts(&r.push(batch(31..=31), now)), [Some(31)]);
    }

    #[test]
    fn a_batch_that_never_comes_is_a_gap() {
        let now = Instant::now();
        let mut r = Reorder::default();
        r.start_at(1);
        assert!(r.push(batch(11..=20), now).is_empty());
        let out = r.give_up();
        assert_eq!(firsts(&out), [None, Some(11)]);
        assert_eq!(firsts(&r.push(batch(21..=22), now)), [Some(21)]);
        // Too many held: given up at once.
        let mut r = Reorder::default();
        r.start_at(1);
        let mut out = Vec::new();
        for i in 0..=MOST_HELD as u64 {
            out = r.push(batch(10 + i * 2..=11 + i * 2), now);
        }
        assert_eq!(out.len(), MOST_HELD + 2);
        assert!(matches!(out[0], Out::Gap));
    }

    #[test]
    fn a_gap_in_the_feed_starts_the_order_over() {
        let now = Instant::now();
        let mut r = Reorder::default();
        r.start_at(1);
        assert!(r.push(batch(5..=6), now).is_empty());
        assert_eq!(firsts(&r.forget()), [Some(5)]);
        assert_eq!(firsts(&r.push(batch(40..=41), now)), [Some(40)]);
    }
}
