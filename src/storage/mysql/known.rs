//! The listing rows (`services`, `service_tags`) this process has seen
//! committed, so a batch inserts only names it has not: a batch of known
//! services and tags, the usual kind, skips both statements. At half the
//! Kafka mode's maximum rate those were about a tenth of each transaction.
//!
//! Nothing in taillight deletes listing rows, but an operator may; the
//! memory is forgotten every [`FORGET_AFTER`], so a deleted row is written
//! again within that time.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a remembered row is trusted.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Most names and pairs remembered; past it the memory starts again, so
/// services that make up a new tag for every entry cannot grow it.
const MOST: usize = 100_000;

#[derive(Default)]
pub(super) struct Known(Mutex<Memory>);

#[derive(Default)]
struct Memory {
    services: HashSet<String>,
    /// service -> its tags.
    tags: HashMap<String, HashSet<String>>,
    /// When the memory was last emptied; `None` before the first batch.
    since: Option<Instant>,
}

impl Memory {
    /// Names and pairs held.
    fn len(&self) -> usize {
        self.services.len() + self.tags.values().map(HashSet::len).sum::<usize>()
    }
}

/// A batch's listing rows not known to be stored: what it must insert, and
/// what to remember once it committed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Unlisted {
    pub services: Vec<String>,
    pub pairs: Vec<(String, String)>,
}

impl Known {
    /// The rows of `services` and `pairs` that may not be stored yet.
    pub fn unlisted(&self, services: &BTreeSet<&str>, pairs: &BTreeSet<(&str, &str)>) -> Unlisted {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let stale = m.since.is_none_or(|t| t.elapsed() > FORGET_AFTER);
        if stale || m.len() > MOST {
            *m = Memory {
                since: Some(Instant::now()),
                ..Memory::default()
            };
        }
        Unlisted {
            services: services
                .iter()
                .filter(|s| !m.services.contains(**s))
                .map(|s| s.to_string())
                .collect(),
            pairs: pairs
                .iter()
                .filter(|(s, t)| !m.tags.get(*s).is_some_and(|tags| tags.contains(*t)))
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// Remembers rows a committed transaction stored.
    pub fn remember(&self, stored: Unlisted) {
        if stored.services.is_empty() && stored.pairs.is_empty() {
            return;
        }
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.services.extend(stored.services);
        for (s, t) in stored.pairs {
            m.tags.entry(s).or_default().insert(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rows_not_remembered_are_unlisted() {
        let known = Known::default();
        let services = BTreeSet::from(["api", "db"]);
        let pairs = BTreeSet::from([("api", "http"), ("db", "slow")]);
        let first = known.unlisted(&services, &pairs);
        assert_eq!(first.services, ["api", "db"]);
        assert_eq!(first.pairs.len(), 2);

        // Not committed yet: still unlisted.
        assert_eq!(known.unlisted(&services, &pairs), first);

        known.remember(Unlisted {
            services: vec!["api".into()],
            pairs: vec![("api".into(), "http".into())],
        });
        let next = known.unlisted(&services, &pairs);
        assert_eq!(next.services, ["db"]);
        assert_eq!(next.pairs, [("db".to_string(), "slow".to_string())]);
    }
}
