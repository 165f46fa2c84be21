//! One rule's evaluation: the matches within its window, whether it is
//! firing, when it last notified. Times are receipt times (the server's
//! clock when the entry arrived) and come in as arguments, so a catch-up
//! after a pause counts entries when they arrived, and tests drive time.

use std::collections::VecDeque;
use std::sync::Arc;

use super::rules::{Condition, Rule};
use crate::model::time;
use crate::proto::LogRecord;

/// Matching entries a notification shows.
pub const SAMPLES: usize = 5;
/// Matches counted within a window beyond the threshold: a notification's
/// count stops there ("at least"), so a flood costs bounded memory.
const COUNTED_PAST_THRESHOLD: usize = 1_000;
/// Longest message a sample keeps, in bytes: samples are held per rule.
const SAMPLE_MESSAGE: usize = 2_000;

/// Whether a notification says the rule fired or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Firing,
    Resolved,
}

/// What a rule has to say: handed to delivery.
#[derive(Debug, Clone)]
pub struct Notice {
    pub rule: Arc<Rule>,
    pub phase: Phase,
    /// When it was decided (µs since the epoch).
    pub at_us: i64,
    /// Matches within the window at that moment (at most the threshold
    /// plus [`COUNTED_PAST_THRESHOLD`]).
    pub count: u64,
    /// The first and last matching ids within the window; for an absence,
    /// the last match seen before it went quiet, if any.
    pub first_id: Option<u64>,
    pub last_id: Option<u64>,
    /// Up to [`SAMPLES`] of the newest matches within the window.
    pub samples: Vec<LogRecord>,
}

/// A rule's state between entries.
#[derive(Debug)]
pub struct RuleState {
    pub rule: Arc<Rule>,
    /// Receipt time and id of each match within the window, oldest first.
    matches: VecDeque<(i64, u64)>,
    /// The newest matches, newest last, with their receipt times.
    samples: VecDeque<(i64, LogRecord)>,
    /// When the last match arrived, or when evaluation began: an absence
    /// is counted from there.
    last_match_us: i64,
    last_match_id: Option<u64>,
    /// Notified as firing and not resolved since.
    firing: bool,
    /// When the last firing notification went out.
    sent_us: Option<i64>,
    /// Since when the condition has been false while firing.
    false_since_us: Option<i64>,
}

impl RuleState {
    pub fn new(rule: Arc<Rule>, now_us: i64) -> Self {
        RuleState {
            rule,
            matches: VecDeque::new(),
            samples: VecDeque::new(),
            last_match_us: now_us,
            last_match_id: None,
            firing: false,
            sent_us: None,
            false_since_us: None,
        }
    }

    fn window_us(&self) -> i64 {
        self.rule.window.as_micros().min(i64::MAX as u128) as i64
    }

    /// Counts `r` if the rule's filter matches it.
    pub fn observe(&mut self, r: &LogRecord) {
        if !self.rule.filter.matches(r) {
            return;
        }
        let at = r.received_time.as_ref().map_or(0, time::to_micros);
        self.last_match_us = self.last_match_us.max(at);
        self.last_match_id = Some(r.id);
        let cap = match self.rule.condition {
            Condition::AtLeast(n) => n as usize + COUNTED_PAST_THRESHOLD,
            Condition::Absent => 0,
        };
        if cap > 0 {
            if self.matches.len() >= cap {
                self.matches.pop_front();
            }
            self.matches.push_back((at, r.id));
        }
        if self.samples.len() >= SAMPLES {
            self.samples.pop_front();
        }
        let mut sample = r.clone();
        truncate(&mut sample.message, SAMPLE_MESSAGE);
        self.samples.push_back((at, sample));
    }

    /// Whether the rule's condition holds at `now_us`.
    fn holds(&mut self, now_us: i64) -> bool {
        let since = now_us.saturating_sub(self.window_us());
        while self.matches.front().is_some_and(|&(t, _)| t <= since) {
            self.matches.pop_front();
        }
        match self.rule.condition {
            Condition::AtLeast(n) => self.matches.len() >= n as usize,
            Condition::Absent => self.last_match_us <= since,
        }
    }

    /// What the rule says at `now_us`, if anything: it fires when its
    /// condition holds and it has not notified within `repeat`; it resolves
    /// when the condition has been false for a window (an absence: at the
    /// first match).
    pub fn evaluate(&mut self, now_us: i64) -> Option<Notice> {
        if self.holds(now_us) {
            self.false_since_us = None;
            let repeat = self.rule.repeat.as_micros().min(i64::MAX as u128) as i64;
            let quiet = self
                .sent_us
                .is_some_and(|s| now_us.saturating_sub(s) < repeat);
            if quiet {
                return None;
            }
            self.firing = true;
            self.sent_us = Some(now_us);
            return Some(self.notice(Phase::Firing, now_us));
        }
        if !self.firing {
            return None;
        }
        let since = *self.false_since_us.get_or_insert(now_us);
        let settled = match self.rule.condition {
            Condition::Absent => true,
            Condition::AtLeast(_) => now_us.saturating_sub(since) >= self.window_us(),
        };
        if !settled {
            return None;
        }
        self.firing = false;
        self.false_since_us = None;
        // A new firing after a resolution is news, whatever `repeat` says.
        self.sent_us = None;
        Some(self.notice(Phase::Resolved, now_us))
    }

    fn notice(&self, phase: Phase, now_us: i64) -> Notice {
        let since = now_us.saturating_sub(self.window_us());
        let (first_id, last_id) = match self.rule.condition {
            Condition::Absent => (self.last_match_id, self.last_match_id),
            Condition::AtLeast(_) => (
                self.matches.front().map(|m| m.1),
                self.matches.back().map(|m| m.1),
            ),
        };
        Notice {
            rule: self.rule.clone(),
            phase,
            at_us: now_us,
            count: self.matches.len() as u64,
            first_id,
            last_id,
            samples: (self.samples.iter())
                .filter(|(t, _)| *t > since)
                .map(|(_, r)| r.clone())
                .collect(),
        }
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::rules::Format;
    use super::*;
    use crate::model::Filter;

    const S: i64 = 1_000_000;

    fn rule(condition: Condition, window_s: u64, repeat_s: u64) -> Arc<Rule> {
        Arc::new(Rule {
            name: "r".into(),
            filter: Filter {
                services: vec!["pay".into()],
                ..Default::default()
            },
            condition,
            window: Duration::from_secs(window_s),
            repeat: Duration::from_secs(repeat_s),
            webhook: "http://h/".into(),
            format: Format::Json,
        })
    }

    fn rec(id: u64, service: &str, at: i64) -> LogRecord {
        LogRecord {
            id,
            service: service.into(),
            message: format!("m{id}"),
            received_time: Some(time::from_micros(at)),
            ..Default::default()
        }
    }

    #[test]
    fn at_least_fires_once_repeats_after_quiet_time_and_resolves() {
        let mut s = RuleState::new(rule(Condition::AtLeast(3), 60, 300), 0);
        for (id, t) in [(1, 1), (2, 2)] {
            s.observe(&rec(id, "pay", t * S));
        }
        s.observe(&rec(3, "other", 3 * S));
        assert!(s.evaluate(3 * S).is_none(), "two matches of three");
        s.observe(&rec(4, "pay", 4 * S));
        let n = s.evaluate(4 * S).expect("fires");
        assert_eq!(
            (n.phase, n.count, n.first_id, n.last_id),
            (Phase::Firing, 3, Some(1), Some(4))
        );
        assert_eq!(
            n.samples.iter().map(|r| r.id).collect::<Vec<_>>(),
            [1, 2, 4]
        );
        s.observe(&rec(5, "pay", 5 * S));
        assert!(s.evaluate(5 * S).is_none(), "quiet within repeat");
        // Still holding after `repeat`: a reminder.
        for i in 0..3 {
            s.observe(&rec(10 + i, "pay", 304 * S));
        }
        assert_eq!(s.evaluate(305 * S).map(|n| n.phase), Some(Phase::Firing));
        // False from 365 s (the window empties); resolved a window later.
        assert!(s.evaluate(365 * S).is_none());
        assert!(s.evaluate(400 * S).is_none());
        let r = s.evaluate(425 * S).expect("resolved");
        assert_eq!((r.phase, r.count), (Phase::Resolved, 0));
        assert!(s.evaluate(500 * S).is_none());
    }

    #[test]
    fn absence_fires_after_a_quiet_window_and_resolves_on_a_match() {
        let mut s = RuleState::new(rule(Condition::Absent, 60, 300), 0);
        s.observe(&rec(1, "pay", 10 * S));
        assert!(s.evaluate(69 * S).is_none());
        let n = s.evaluate(71 * S).expect("quiet for a window");
        assert_eq!((n.phase, n.last_id), (Phase::Firing, Some(1)));
        assert!(s.evaluate(200 * S).is_none(), "quiet within repeat");
        s.observe(&rec(2, "pay", 201 * S));
        assert_eq!(s.evaluate(201 * S).map(|n| n.phase), Some(Phase::Resolved));
        assert!(s.evaluate(202 * S).is_none());
        // Counted from the start when nothing ever matched.
        let mut fresh = RuleState::new(rule(Condition::Absent, 60, 300), 100 * S);
        assert!(fresh.evaluate(150 * S).is_none());
        assert!(fresh.evaluate(160 * S).is_some());
    }

    #[test]
    fn a_flood_is_counted_up_to_a_bound_with_a_few_short_samples() {
        let mut s = RuleState::new(rule(Condition::AtLeast(1), 60, 300), 0);
        for id in 0..5_000 {
            let mut r = rec(id, "pay", S);
            r.message = "é".repeat(3_000);
            s.observe(&r);
        }
        let n = s.evaluate(2 * S).expect("fires");
        assert_eq!(n.count, 1 + COUNTED_PAST_THRESHOLD as u64);
        assert_eq!(n.samples.len(), SAMPLES);
        assert!(n.samples.iter().all(|r| r.message.len() <= SAMPLE_MESSAGE));
    }
}
