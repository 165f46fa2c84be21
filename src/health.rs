//! What each part of the server says of its own state, shown by `/readyz`:
//! a part that is down makes the server not ready; a degraded one (a way in
//! whose upstream is away) is listed while the server stays ready, since
//! everything else still works.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// One part's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Ok,
    /// Working in part, and why not in full.
    Degraded(String),
    /// Not working, and why: the server is not ready.
    Down(String),
}

/// The parts' states, shared by the parts and the endpoint.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Each part's last word.
    parts: Mutex<BTreeMap<String, State>>,
    /// Ticks on every change, so what follows the state (gRPC health) says
    /// the same as `/readyz` at once rather than at its next look.
    changes: watch::Sender<()>,
}

impl Health {
    /// Records `part`'s state, replacing what it said before.
    pub fn set(&self, part: &str, state: State) {
        let mut parts = self.0.parts.lock().unwrap_or_else(|p| p.into_inner());
        if parts.get(part) == Some(&state) {
            return;
        }
        // Recorded before it is logged: a log that cannot be written must
        // not keep the state from being seen.
        parts.insert(part.to_string(), state.clone());
        drop(parts);
        self.0.changes.send_replace(());
        match state {
            State::Ok => tracing::info!(part, "healthy"),
            State::Degraded(why) => tracing::warn!(part, %why, "degraded"),
            State::Down(why) => tracing::error!(part, %why, "down"),
        }
    }

    /// A receiver that wakes on every change from now on.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.0.changes.subscribe()
    }

    /// Whether every part is up, and one line per part that is not ok.
    pub fn report(&self) -> (bool, String) {
        let parts = self.0.parts.lock().unwrap_or_else(|p| p.into_inner());
        let mut up = true;
        let mut detail = String::new();
        for (part, state) in parts.iter() {
            match state {
                State::Ok => {}
                State::Degraded(why) => detail.push_str(&format!("{part}: degraded: {why}\n")),
                State::Down(why) => {
                    up = false;
                    detail.push_str(&format!("{part}: down: {why}\n"));
                }
            }
        }
        (up, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_parts_are_listed_and_down_ones_make_it_unready() {
        let h = Health::default();
        h.set("a", State::Ok);
        assert_eq!(h.report(), (true, String::new()));
        h.set("b", State::Degraded("redis away".into()));
        assert_eq!(h.report(), (true, "b: degraded: redis away\n".into()));
        h.set("a", State::Down("stopped".into()));
        assert_eq!(
            h.report(),
            (false, "a: down: stopped\nb: degraded: redis away\n".into())
        );
        h.set("a", State::Ok);
        h.set("b", State::Ok);
        assert_eq!(h.report(), (true, String::new()));
    }
}
