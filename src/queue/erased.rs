//! A consumer with its token type hidden, so the writer and the code that
//! wires it need not be generic over the queue backend.

use std::any::Any;

use async_trait::async_trait;

use super::contract::{Batch, Consumer, QueueError};

/// A backend's batch token, boxed.
pub type AnyToken = Box<dyn Any + Send>;

/// Any backend's consumer.
pub type AnyConsumer = Box<dyn Consumer<Token = AnyToken>>;

/// Boxes `c`'s tokens.
pub fn erase<C: Consumer>(c: C) -> AnyConsumer {
    Box::new(Erased(c))
}

struct Erased<C>(C);

/// `token` as the backend's own; only ever given tokens it issued.
fn own<C: Consumer>(token: AnyToken) -> Option<C::Token> {
    match token.downcast::<C::Token>() {
        Ok(t) => Some(*t),
        Err(_) => {
            tracing::error!("a batch token of another queue was handed back; ignored");
            None
        }
    }
}

#[async_trait]
impl<C: Consumer> Consumer for Erased<C> {
    type Token = AnyToken;

    async fn next_batch(&mut self, max: usize) -> Result<Option<Batch<AnyToken>>, QueueError> {
        Ok(self.0.next_batch(max).await?.map(|b| Batch {
            entries: b.entries,
            token: Box::new(b.token) as AnyToken,
        }))
    }

    fn top_up(&mut self, batch: &mut Batch<AnyToken>, max: usize) {
        let token = std::mem::replace(&mut batch.token, Box::new(()));
        let Some(token) = own::<C>(token) else {
            return;
        };
        let mut own_batch = Batch {
            entries: std::mem::take(&mut batch.entries),
            token,
        };
        self.0.top_up(&mut own_batch, max);
        batch.entries = own_batch.entries;
        batch.token = Box::new(own_batch.token);
    }

    async fn commit(&mut self, token: AnyToken) -> Result<(), QueueError> {
        match own::<C>(token) {
            Some(t) => self.0.commit(t).await,
            None => Ok(()),
        }
    }

    async fn abort(&mut self, token: AnyToken, error: QueueError) {
        if let Some(t) = own::<C>(token) {
            self.0.abort(t, error).await;
        }
    }
}
