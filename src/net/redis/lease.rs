//! A lease in Redis that at most one process holds at a time: the node that
//! subscribes to a pub/sub channel, or writes the archive, when several
//! nodes share one store. The holder renews it well before it expires; a
//! holder that cannot renew gives it up on its own side before Redis lets
//! another take it, so two never act at once while their clocks agree.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Pipeline;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Link;

/// Renews the lease only if this holder still has it.
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
    return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/// Gives the lease up only if this holder still has it.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
    return redis.call('del', KEYS[1]) else return 0 end";

/// One process's claim on a lease.
pub struct Lease {
    link: Arc<Link>,
    /// The Redis key; whoever's value it holds has the lease.
    key: String,
    /// This claim's value: unique per process and lease.
    holder: String,
    /// How long the lease lasts without renewal.
    ttl: Duration,
}

impl Lease {
    pub fn new(link: Arc<Link>, key: String, ttl: Duration) -> Self {
        Lease {
            link,
            key,
            holder: holder_id(),
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    /// Tries for the lease and keeps it renewed until `stop`, then gives it
    /// up. The receiver tells whether this process holds it now.
    pub fn hold(
        self,
        stop: CancellationToken,
    ) -> (watch::Receiver<bool>, impl Future<Output = ()>) {
        let (tx, rx) = watch::channel(false);
        (rx, self.run(tx, stop))
    }

    async fn run(self, held: watch::Sender<bool>, stop: CancellationToken) {
        let every = self.ttl / 3;
        // Given up on our side a third before Redis would let it go.
        let trust = self.ttl * 2 / 3;
        // When the last renewal (or the acquisition) was sent, while held:
        // the lease lasts at least `ttl` from then.
        let mut renewed: Option<Instant> = None;
        loop {
            let sent = Instant::now();
            renewed = match renewed {
                None => self.acquire().await.then_some(sent),
                Some(at) => match self.renew().await {
                    Some(true) => Some(sent),
                    // Redis answered: it is not ours any more.
                    Some(false) => None,
                    // No answer: keep it while it surely has not expired.
                    None => (at.elapsed() < trust).then_some(at),
                },
            };
            let holding = renewed.is_some();
            if *held.borrow() != holding {
                tracing::info!(key = %self.key, holding, "lease changed hands");
                held.send_replace(holding);
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        held.send_replace(false);
        if renewed.is_some() {
            self.call::<i64>(&self.script(RELEASE, None)).await;
        }
    }

    /// Takes the lease if nobody has it.
    async fn acquire(&self) -> bool {
        let mut pipe = ::redis::pipe();
        pipe.cmd("SET")
            .arg(&self.key)
            .arg(&self.holder)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl.as_millis() as u64);
        matches!(self.call::<Option<String>>(&pipe).await, Some(Some(_)))
    }

    /// Extends the lease if this holder still has it; `None` without an
    /// answer.
    async fn renew(&self) -> Option<bool> {
        let pipe = self.script(RENEW, Some(self.ttl.as_millis() as u64));
        self.call::<i64>(&pipe).await.map(|n| n == 1)
    }

    fn script(&self, body: &str, arg: Option<u64>) -> Pipeline {
        let mut pipe = ::redis::pipe();
        let cmd = pipe
            .cmd("EVAL")
            .arg(body)
            .arg(1)
            .arg(&self.key)
            .arg(&self.holder);
        if let Some(a) = arg {
            cmd.arg(a);
        }
        pipe
    }

    /// One round trip; `None` when Redis did not answer.
    async fn call<T: ::redis::FromRedisValue>(&self, pipe: &Pipeline) -> Option<T> {
        match self.link.run::<(T,)>(pipe).await {
            Ok((v,)) => Some(v),
            Err(why) => {
                tracing::debug!(key = %self.key, error = %why, "lease call failed");
                None
            }
        }
    }
}

/// Unique enough across the processes of a cluster: host, process, time.
fn holder_id() -> String {
    format!(
        "{}:{}:{}",
        crate::net::host_name(),
        std::process::id(),
        crate::model::time::now_micros()
    )
}

/// Waits until this process holds the lease `held` tells of (at once when
/// there is no lease), and returns the token a term of the holder's work
/// runs under: cancelled at `stop` or as soon as the lease is lost. `None`
/// at `stop`, or once the lease is given up for good.
pub async fn next_term(
    held: &mut Option<watch::Receiver<bool>>,
    stop: &CancellationToken,
) -> Option<CancellationToken> {
    if let Some(rx) = held.as_mut() {
        tokio::select! {
            _ = stop.cancelled() => return None,
            got = rx.wait_for(|h| *h) => if got.is_err() { return None },
        }
    }
    let term = stop.child_token();
    if let Some(rx) = held.clone() {
        tokio::spawn(cancel_when_lost(rx, term.clone()));
    }
    Some(term)
}

/// Cancels `term` as soon as the lease `held` tells of is lost.
async fn cancel_when_lost(mut held: watch::Receiver<bool>, term: CancellationToken) {
    tokio::select! {
        _ = term.cancelled() => {}
        _ = held.wait_for(|h| !*h) => term.cancel(),
    }
}
