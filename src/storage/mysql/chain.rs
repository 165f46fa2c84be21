//! The order of batches stored at the same time.
//!
//! A writer keeps a second batch in the database while the first commits,
//! because MariaDB takes rows on two connections about 1.5 times as fast as
//! on one. Live tails need ids in commit order all the same, so each batch
//! joins a chain when it starts: it commits only after the batch before it
//! committed, and fails if that one failed. To load its rows before then,
//! it guesses its first id from where the batch before it ends, and checks
//! the guess under the id lock before it commits.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::watch;

use super::delivery::Delivery;
use crate::model::QueuedEntry;

/// Where a batch stands, as the batch after it sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Choosing its ids, or choosing them again after a wrong guess.
    Choosing,
    /// Its rows take the ids below `end`, and the first of them is stored
    /// (see `write_batch`); not committed yet.
    Placed {
        end: i64,
    },
    /// Committed; the next id is `end`.
    Committed {
        end: i64,
    },
    Failed,
}

/// A batch's own place in the chain: it tells the batch after it.
pub(super) struct Link(watch::Sender<Stage>);

impl Link {
    pub fn set(&self, stage: Stage) {
        self.0.send_replace(stage);
    }
}

impl Drop for Link {
    /// A batch dropped unfinished (its task cancelled) stored nothing.
    fn drop(&mut self) {
        self.0.send_if_modified(|s| match s {
            Stage::Committed { .. } | Stage::Failed => false,
            _ => {
                *s = Stage::Failed;
                true
            }
        });
    }
}

/// The batch before, as its successor watches it.
pub(super) struct Before(watch::Receiver<Stage>);

/// What waiting for the batch before ends with.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// It committed: the next id is `end`.
    Committed { end: i64 },
    /// It failed, so this batch must fail too.
    Failed,
    /// It chose other ids than the ones this batch guessed from.
    Moved,
}

impl Before {
    fn stage(&self) -> Stage {
        *self.0.borrow()
    }

    /// Waits until the batch before has ids, and returns where they end;
    /// `None` if it failed.
    pub async fn placed(&mut self) -> Option<i64> {
        loop {
            match self.stage() {
                Stage::Placed { end } | Stage::Committed { end } => return Some(end),
                Stage::Failed => return None,
                Stage::Choosing => {}
            }
            self.0.changed().await.ok()?;
        }
    }

    /// Waits until the batch before has committed or failed. With `guess`,
    /// gives up as soon as it is clear that the batch before does not end at
    /// `guess`, so a batch that guessed wrong lets go of its rows at once
    /// (the batch before may need their ids).
    pub async fn settled(&mut self, guess: Option<i64>) -> Outcome {
        loop {
            match (self.stage(), guess) {
                (Stage::Committed { end }, _) => return Outcome::Committed { end },
                (Stage::Failed, _) => return Outcome::Failed,
                (Stage::Choosing, Some(_)) => return Outcome::Moved,
                (Stage::Placed { end }, Some(g)) if end != g => return Outcome::Moved,
                _ => {}
            }
            if self.0.changed().await.is_err() {
                return Outcome::Failed;
            }
        }
    }
}

/// A batch's turn: the batch before it, if that was still open when it
/// joined, and the deliveries that earlier open batches are storing.
pub(super) struct Turn {
    pub link: Link,
    pub before: Option<Before>,
    /// Redeliveries of entries in batches not committed yet: left out here,
    /// since those batches store them (or fail, and this one with them).
    pub claimed: HashSet<Delivery>,
}

/// The batches started and not yet settled, oldest first.
#[derive(Default)]
pub(super) struct Chain(Mutex<VecDeque<(watch::Receiver<Stage>, Vec<Delivery>)>>);

impl Chain {
    /// Puts a batch of `entries` at the end of the chain.
    pub fn join(&self, entries: &[QueuedEntry]) -> Turn {
        let (tx, rx) = watch::channel(Stage::Choosing);
        let sources: Vec<_> = entries.iter().filter_map(Delivery::of).collect();
        // A poisoned lock only means a panic elsewhere; the queue is intact.
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(rx, _)| !matches!(*rx.borrow(), Stage::Committed { .. } | Stage::Failed));
        let claimed = open.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        let before = open.back().map(|(rx, _)| Before(rx.clone()));
        open.push_back((rx, sources));
        Turn {
            link: Link(tx),
            before,
            claimed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_successor_sees_its_guess_go_wrong() {
        let chain = Chain::default();
        let a = chain.join(&[]);
        let mut b = chain.join(&[]);
        let before = b.before.as_mut().expect("a is open");
        a.link.set(Stage::Placed { end: 10 });
        assert_eq!(before.placed().await, Some(10));
        // a retries with other ids: b must not wait for a's commit.
        a.link.set(Stage::Choosing);
        assert_eq!(before.settled(Some(10)).await, Outcome::Moved);
        a.link.set(Stage::Committed { end: 12 });
        assert_eq!(before.settled(None).await, Outcome::Committed { end: 12 });
    }

    #[tokio::test]
    async fn a_dropped_batch_fails_its_successor_and_leaves_the_chain() {
        let chain = Chain::default();
        let a = chain.join(&[]);
        let mut b = chain.join(&[]);
        drop(a);
        let before = b.before.as_mut().expect("a was open");
        assert_eq!(before.settled(None).await, Outcome::Failed);
        b.link.set(Stage::Committed { end: 3 });
        let c = chain.join(&[]);
        assert!(c.before.is_none(), "settled batches leave the chain");
    }
}
