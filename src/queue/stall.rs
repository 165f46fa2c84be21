//! Noticing partitions no writer is taking.
//!
//! A consumer group is meant to give every partition to one member, but a
//! broker can get a rebalance wrong: tansu 0.6.0 sometimes left a partition
//! with no owner for over a minute after two writers joined at once, and
//! nothing in the protocol tells the members. The entries on it are durable
//! but reach neither the store nor a live tail. Every writer therefore
//! watches the whole topic: a partition with entries past its committed
//! offset, whose committed offset has not moved for a while, is stalled. If
//! the stalled partition is someone else's (or no one's) while this writer's
//! own are fine, rejoining the group makes the broker assign it again. If
//! this writer's own partitions stall too, the trouble is downstream (the
//! store), which a rebalance cannot fix, so it only reports.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where one partition of the topic stands.
#[derive(Debug, Clone, Copy)]
pub struct PartitionState {
    pub partition: i32,
    /// The group's committed offset (the low watermark when none).
    pub committed: i64,
    /// The offset the next entry produced will get.
    pub end: i64,
    /// Assigned to this writer now.
    pub mine: bool,
}

/// What the watch concluded from one look at the topic.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Partitions with entries waiting and no progress for the stall period.
    pub stalled: Vec<i32>,
    /// Rejoin the group now, so the broker assigns the stalled ones again.
    pub rejoin: bool,
    /// `stalled` differs from the last look's: worth a line in the log.
    pub changed: bool,
}

#[derive(Debug)]
pub struct StallWatch {
    /// How long a committed offset may stand still with entries behind it.
    after: Duration,
    /// Per partition: the committed offset last seen, and since when it has
    /// stood there with entries waiting.
    since: HashMap<i32, (i64, Instant)>,
    /// Earliest time of the next rejoin: each rejoin that did not help
    /// doubles the wait, so a broker that keeps getting it wrong is not
    /// rebalanced in a loop.
    next_rejoin: Option<Instant>,
    backoff: Duration,
    /// The last look's stalled partitions.
    stalled: Vec<i32>,
}

/// Longest wait between two rejoins for the same stall.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl StallWatch {
    pub fn new(after: Duration) -> Self {
        StallWatch {
            after,
            since: HashMap::new(),
            next_rejoin: None,
            backoff: after,
            stalled: Vec::new(),
        }
    }

    pub fn observe(&mut self, now: Instant, parts: &[PartitionState]) -> Verdict {
        let mut verdict = Verdict::default();
        let mut own_stalled = false;
        let mut others_stalled = false;
        let mut since = HashMap::with_capacity(parts.len());
        for p in parts {
            if p.committed >= p.end {
                continue;
            }
            let start = match self.since.get(&p.partition) {
                Some(&(offset, at)) if offset == p.committed => at,
                _ => now,
            };
            since.insert(p.partition, (p.committed, start));
            if now.duration_since(start) >= self.after {
                verdict.stalled.push(p.partition);
                if p.mine {
                    own_stalled = true;
                } else {
                    others_stalled = true;
                }
            }
        }
        self.since = since;
        if verdict.stalled.is_empty() {
            self.next_rejoin = None;
            self.backoff = self.after;
        } else if others_stalled && !own_stalled && self.next_rejoin.is_none_or(|t| now >= t) {
            verdict.rejoin = true;
            self.next_rejoin = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
        verdict.changed = verdict.stalled != self.stalled;
        self.stalled.clone_from(&verdict.stalled);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(partition: i32, committed: i64, end: i64, mine: bool) -> PartitionState {
        PartitionState {
            partition,
            committed,
            end,
            mine,
        }
    }

    const AFTER: Duration = Duration::from_secs(10);

    #[test]
    fn a_partition_nobody_takes_makes_a_healthy_writer_rejoin_with_backoff() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(AFTER);
        let parts = [part(0, 5, 5, true), part(1, 10, 40, false)];
        assert_eq!(w.observe(t0, &parts), Verdict::default());
        assert_eq!(w.observe(t0 + AFTER / 2, &parts), Verdict::default());
        let v = w.observe(t0 + AFTER, &parts);
        assert_eq!((v.stalled, v.rejoin, v.changed), (vec![1], true, true));
        // Not again until the backoff has passed, then with twice the wait.
        let v = w.observe(t0 + AFTER + AFTER / 2, &parts);
        assert_eq!((v.rejoin, v.changed), (false, false));
        assert!(w.observe(t0 + 2 * AFTER, &parts).rejoin);
        assert!(!w.observe(t0 + 3 * AFTER, &parts).rejoin);
        assert!(w.observe(t0 + 4 * AFTER, &parts).rejoin);
    }

    #[test]
    fn progress_or_an_empty_partition_is_not_a_stall() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(AFTER);
        w.observe(t0, &[part(1, 10, 40, false), part(2, 7, 7, false)]);
        // The owner moved on: the clock starts again.
        let v = w.observe(t0 + AFTER, &[part(1, 20, 40, false), part(2, 7, 7, false)]);
        assert_eq!(v, Verdict::default());
        let v = w.observe(
            t0 + 2 * AFTER,
            &[part(1, 20, 40, false), part(2, 7, 7, false)],
        );
        assert_eq!((v.stalled, v.rejoin), (vec![1], true));
        // Caught up: forgotten, and the backoff starts over.
        let v = w.observe(t0 + 3 * AFTER, &[part(1, 40, 40, false)]);
        assert_eq!((v.stalled, v.rejoin, v.changed), (vec![], false, true));
    }

    #[test]
    fn when_its_own_partitions_stall_too_a_writer_only_reports() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(AFTER);
        let parts = [part(0, 1, 9, true), part(1, 10, 40, false)];
        w.observe(t0, &parts);
        let v = w.observe(t0 + AFTER, &parts);
        assert_eq!((v.stalled, v.rejoin), (vec![0, 1], false));
    }
}
