//! Whether a connection is idle: no request in flight (a response counts
//! until its body has been sent or dropped, so a long tail stream is busy)
//! since some time. An idle connection is closed after the idle timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    busy: usize,
    since: Instant,
    /// Requests answered so far.
    answered: u64,
}

/// One connection's requests in flight.
#[derive(Debug)]
pub struct Activity(Mutex<State>);

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity(Mutex::new(State {
            busy: 0,
            since: Instant::now(),
            answered: 0,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request begins; it ends when the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.state().busy += 1;
        Busy(self.clone())
    }

    /// Resolves once nothing has been in flight for `idle`, or, before
    /// the first request, once `first` has passed without one (a client
    /// that connects and sends nothing is held no longer than one that
    /// sends half a request head).
    pub async fn expired(&self, first: Duration, idle: Duration) {
        loop {
            let wake = {
                let s = self.state();
                let timeout = if s.answered == 0 { first } else { idle };
                if s.busy > 0 {
                    Instant::now() + timeout
                } else if s.since.elapsed() >= timeout {
                    return;
                } else {
                    s.since + timeout
                }
            };
            tokio::time::sleep_until(wake).await;
        }
    }

    /// Resolves once a request has been answered and none is in flight.
    pub async fn answered(&self) {
        loop {
            {
                let s = self.state();
                if s.answered > 0 && s.busy == 0 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A request in flight; ends when dropped.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.busy -= 1;
        s.answered += 1;
        s.since = Instant::now();
    }
}

/// A response body that keeps its request in flight until it is done.
pub struct Tracked<B> {
    pub body: B,
    pub busy: Option<Busy>,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
