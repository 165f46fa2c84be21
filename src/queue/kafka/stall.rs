//! Noticing partitions no writer is taking.
//!
//! A consumer group is meant to give every partition to one member, but a
//! broker can get a rebalance wrong: tansu 0.6.0 sometimes left a partition
//! with no owner for over a minute after two writers joined at once, and
//! nothing in the protocol tells the members. The entries on it are durable
//! but reach neither the store nor a live tail. Every writer therefore
//! watches the whole topic. A partition with entries past its committed
//! offset, whose committed offset has not moved for a while, is stalled,
//! and reported. A stall alone says nothing about ownership: a writer
//! draining a backlog left some of its partitions untouched for minutes in
//! the benchmark's 10M-entry fill, and a writer whose store is down stalls
//! all of its own. Only a stalled partition that no member of the group
//! holds makes the writer rejoin the group, so the broker assigns it again;
//! or, where the broker does not say who holds what, a stall while the
//! group gave this writer nothing at all.

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
    /// Assigned to some member of the group (`None`: the group could not be
    /// described, so no one knows).
    pub owned: Option<bool>,
}

/// What the watch concluded from one look at the topic.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Partitions with entries waiting and no progress for the stall period.
    pub stalled: Vec<i32>,
    /// Rejoin the group now, so the broker assigns a stalled partition that
    /// has no owner.
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

    /// One look at the topic. `starved`: the group gave this writer no
    /// partition though it has enough for every member, which no assignor
    /// does; a rejoin is due then too while something stalls (for brokers
    /// that do not say who holds what).
    pub fn observe(&mut self, now: Instant, parts: &[PartitionState], starved: bool) -> Verdict {
        let mut verdict = Verdict::default();
        let mut orphaned = false;
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
                orphaned |= p.owned == Some(false);
            }
        }
        self.since = since;
        if !(orphaned || starved && !verdict.stalled.is_empty()) {
            self.next_rejoin = None;
            self.backoff = self.after;
        } else if self.next_rejoin.is_none_or(|t| now >= t) {
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

    fn part(partition: i32, committed: i64, end: i64, owned: Option<bool>) -> PartitionState {
        PartitionState {
            partition,
            committed,
            end,
            mine: false,
            owned,
        }
    }

    const AFTER: Duration = Duration::from_secs(10);
    const NOBODY: Option<bool> = Some(false);
    const SOMEONE: Option<bool> = Some(true);

    #[test]
    fn a_partition_nobody_holds_makes_the_writer_rejoin_with_backoff() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(AFTER);
        let parts = [part(0, 5, 5, SOMEONE), part(1, 10, 40, NOBODY)];
        assert_eq!(w.observe(t0, &parts, false), Verdict::default());
        assert_eq!(w.observe(t0 + AFTER / 2, &parts, false), Verdict::default());
        let v = w.observe(t0 + AFTER, &parts, false);
        assert_eq!((v.stalled, v.rejoin, v.changed), (vec![1], true, true));
        // Not again until the backoff has passed, then with twice the wait.
        let v = w.observe(t0 + AFTER + AFTER / 2, &parts, false);
        assert_eq!((v.rejoin, v.changed), (false, false));
        assert!(w.observe(t0 + 2 * AFTER, &parts, false).rejoin);
        assert!(!w.observe(t0 + 3 * AFTER, &parts, false).rejoin);
        assert!(w.observe(t0 + 4 * AFTER, &parts, false).rejoin);
    }

    #[test]
    fn progress_or_an_empty_partition_is_not_a_stall() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(AFTER);
        w.observe(t0, &[part(1, 10, 40, NOBODY), part(2, 7, 7, NOBODY)], false);
        // Moved on (a member took it meanwhile): the clock starts again.
        let v = w.observe(
            t0 + AFTER,
            &[part(1, 20, 40, NOBODY), part(2, 7, 7, NOBODY)],
            false,
        );
        assert_eq!(v, Verdict::default());
        let v = w.observe(
            t0 + 2 * AFTER,
            &[part(1, 20, 40, NOBODY), part(2, 7, 7, NOBODY)],
            false,
        );
        assert_eq!((v.stalled, v.rejoin), (vec![1], true));
        // Caught up: forgotten, and the backoff starts over.
        let v = w.observe(t0 + 3 * AFTER, &[part(1, 40, 40, NOBODY)], false);
        assert_eq!((v.stalled, v.rejoin, v.changed), (vec![], false, true));
    }

    #[test]
    fn a_writer_the_group_gave_nothing_rejoins_while_something_stalls() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(AFTER);
        let parts = [part(0, 1, 9, None), part(1, 10, 10, None)];
        assert!(!w.observe(t0, &parts, true).rejoin);
        assert!(w.observe(t0 + AFTER, &parts, true).rejoin);
        // Starved but nothing waits: nothing to repair.
        let mut w = StallWatch::new(AFTER);
        let idle = [part(0, 9, 9, None)];
        w.observe(t0, &idle, true);
        assert!(!w.observe(t0 + AFTER, &idle, true).rejoin);
    }

    #[test]
    fn a_stall_of_a_held_partition_or_of_an_unknown_group_is_only_reported() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(AFTER);
        let parts = [part(0, 1, 9, SOMEONE), part(1, 10, 40, None)];
        w.observe(t0, &parts, false);
        let v = w.observe(t0 + AFTER, &parts, false);
        assert_eq!((v.stalled, v.rejoin), (vec![0, 1], false));
    }
}
