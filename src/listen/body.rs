//! The body read timeout: a request body that sends nothing for the
//! timeout while its handler waits for it fails, so a client trickling a
//! body (or stopping halfway) does not hold a handler forever. Measured
//! between chunks, as nginx's `client_body_timeout`, so long uploads and
//! client streams that keep sending are untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A body whose next chunk must come within `timeout` of being awaited.
pub struct GapTimeout<B> {
    body: B,
    timeout: Duration,
    /// Armed while the handler waits for a chunk.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> GapTimeout<B> {
    pub fn new(body: B, timeout: Duration) -> Self {
        GapTimeout {
            body,
            timeout,
            deadline: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {0:?} (--body-timeout)")]
pub struct BodyTimedOut(Duration);

impl<B> Body for GapTimeout<B>
where
    B: Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            self.deadline = None;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
