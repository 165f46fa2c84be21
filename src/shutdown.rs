//! Stopping in order. The caller hands in one token (a signal, a test);
//! every task is spawned here under the [`Part`] it belongs to, and when the
//! token fires the parts stop one after the other: the ways in first, so
//! nothing new arrives; then the writer, once the queue has drained into
//! the store; then the sinks, which follow the store; then the fan-out they
//! and the tails read from. A part that outlasts its grace period has its
//! tasks dropped, so shutdown always ends.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The parts of a process, in the order they stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The ways in: the listener and its requests, the sources.
    Intake = 0,
    /// The writer (after draining the queue), retention, queue watches.
    Writer = 1,
    /// The ways out that follow the store.
    Sinks = 2,
    /// The fan-out of the live feed.
    Fanout = 3,
}

const PARTS: [Part; 4] = [Part::Intake, Part::Writer, Part::Sinks, Part::Fanout];

/// One part's tasks and the tokens that stop them.
struct Phase {
    /// Cancelled when the part is asked to stop.
    stop: CancellationToken,
    /// Cancelled when the part took longer than its grace: its tasks are
    /// dropped.
    force: CancellationToken,
    tasks: TaskTracker,
}

pub struct Shutdown {
    /// Cancelled to begin shutting down: by the caller, or by a part that
    /// cannot go on.
    requested: CancellationToken,
    phases: [Phase; 4],
}

impl Shutdown {
    /// Shuts down once `requested` (the caller's token) is cancelled.
    pub fn new(requested: &CancellationToken) -> Self {
        Shutdown {
            requested: requested.child_token(),
            phases: PARTS.map(|_| Phase {
                stop: CancellationToken::new(),
                force: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Cancelled when `part` must stop taking new work and finish.
    pub fn token(&self, part: Part) -> CancellationToken {
        self.phases[part as usize].stop.clone()
    }

    /// Begins shutting down, from inside: a part that cannot go on.
    pub fn request(&self) {
        self.requested.cancel();
    }

    /// Resolves once shutdown was requested.
    pub async fn requested(&self) {
        self.requested.cancelled().await
    }

    /// Runs `task` as part of `part`; it is waited for when the part stops,
    /// and dropped if it outlasts the grace period. `None` when dropped.
    pub fn spawn<T: Send + 'static>(
        &self,
        part: Part,
        task: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<Option<T>> {
        let phase = &self.phases[part as usize];
        let force = phase.force.clone();
        phase.tasks.spawn(async move {
            tokio::select! {
                biased;
                out = task => Some(out),
                _ = force.cancelled() => None,
            }
        })
    }

    /// Stops every part in order, all within `grace`: a part still running
    /// at the deadline is dropped, and the parts after it are given what is
    /// left (they stop at once if nothing is).
    pub async fn stop(&self, grace: Duration) {
        self.requested.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        for (part, phase) in PARTS.iter().zip(&self.phases) {
            phase.stop.cancel();
            phase.tasks.close();
            if tokio::time::timeout_at(deadline, phase.tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    ?part,
                    ?grace,
                    "did not finish within the shutdown timeout; stopping it"
                );
                phase.force.cancel();
                phase.tasks.wait().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn parts_stop_in_order_and_stragglers_are_dropped() {
        let caller = CancellationToken::new();
        let s = Shutdown::new(&caller);
        let log = Arc::new(Mutex::new(Vec::new()));
        for part in [Part::Fanout, Part::Sinks, Part::Writer, Part::Intake] {
            let (log, stop) = (log.clone(), s.token(part));
            s.spawn(part, async move {
                stop.cancelled().await;
                log.lock().expect("log").push(part);
            });
        }
        let stuck = s.spawn(Part::Writer, std::future::pending::<()>());
        caller.cancel();
        s.requested().await;
        s.stop(Duration::from_millis(50)).await;
        assert_eq!(
            *log.lock().expect("log"),
            [Part::Intake, Part::Writer, Part::Sinks, Part::Fanout]
        );
        assert_eq!(stuck.await.expect("joined"), None);
    }
}
