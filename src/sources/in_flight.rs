//! Submissions a source has handed to the intake and not yet seen become
//! durable, in order, each with what the source must do once it is (how
//! many entries to count, which upstream ids to acknowledge). Bounded, so a
//! slow store slows the source instead of growing its memory.

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};

use crate::queue::{Durable, QueueError};

pub struct InFlight<T> {
    pending: FuturesOrdered<BoxFuture<'static, (T, Result<(), QueueError>)>>,
    /// Most submissions awaiting durability at once.
    max: usize,
}

impl<T: Send + 'static> InFlight<T> {
    pub fn new(max: usize) -> Self {
        InFlight {
            pending: FuturesOrdered::new(),
            max: max.max(1),
        }
    }

    pub fn push(&mut self, tag: T, durable: Durable) {
        self.pending
            .push_back(async move { (tag, durable.await) }.boxed());
    }

    pub fn is_full(&self) -> bool {
        self.pending.len() >= self.max
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The oldest submission, once settled; `None` when there are none.
    pub async fn next(&mut self) -> Option<(T, Result<(), QueueError>)> {
        self.pending.next().await
    }

    /// The oldest submission if it has settled already.
    pub fn ready(&mut self) -> Option<(T, Result<(), QueueError>)> {
        self.pending.next().now_or_never().flatten()
    }
}
