//! A command connection that reconnects by itself: shared by the bus's
//! publishing and catalogue and by the ways in that read from Redis.
//!
//! A call never waits on Redis for longer than [`CALL_DEADLINE`], and once
//! Redis is known to be away calls fail at once while a background task
//! reconnects: an outage costs the writer one slow publish at most, then an
//! immediate error per batch until Redis is back.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, ErrorKind, FromRedisValue, Pipeline, RedisError};
use tokio::sync::Mutex;

use crate::net::backoff::Backoff;

/// How long establishing a connection (TCP, handshake, subscribe) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer one command or pipeline.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on a whole call, connecting included.
const CALL_DEADLINE: Duration = Duration::from_secs(3);
/// First pause before reconnecting in the background.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// Longest pause, which is also how long publishing may stay failed after
/// Redis is back.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// One multiplexed connection, shared by every call made through it.
pub struct Link {
    /// Opens connections, here and for subscriptions.
    pub client: Client,
    /// Host and port without credentials, for error messages.
    pub addr: String,
    /// Where background work runs; some callers are not async.
    pub runtime: tokio::runtime::Handle,
    /// Held while connecting inline, so concurrent callers share the attempt.
    state: Mutex<State>,
}

/// What is known about the connection.
struct State {
    /// The working connection; `None` once it broke.
    conn: Option<MultiplexedConnection>,
    /// Numbers connections, so a failure noticed late on an old connection
    /// does not condemn a newer one.
    generation: u64,
    /// Why Redis is unreachable. While set, calls fail at once with it and a
    /// background task is reconnecting.
    down: Option<String>,
}

impl Link {
    /// Fails outside a tokio runtime, which the connections need.
    pub fn new(client: Client) -> Result<Arc<Self>, String> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        let addr = client.get_connection_info().addr().to_string();
        Ok(Arc::new(Link {
            client,
            addr,
            runtime,
            state: Mutex::new(State {
                conn: None,
                generation: 0,
                down: None,
            }),
        }))
    }

    /// Runs `pipe` within [`CALL_DEADLINE`], connecting first if needed;
    /// the error says why it failed.
    pub async fn run<T: FromRedisValue>(self: &Arc<Self>, pipe: &Pipeline) -> Result<T, String> {
        match tokio::time::timeout(CALL_DEADLINE, self.try_run(pipe)).await {
            Ok(result) => result,
            Err(_) => {
                let why = format!("no answer within {CALL_DEADLINE:?}");
                // Whoever holds the lock is connecting and will judge for
                // itself; waiting for it would break the deadline.
                if let Ok(mut state) = self.state.try_lock() {
                    self.mark_down(&mut state, why.clone());
                }
                Err(why)
            }
        }
    }

    async fn try_run<T: FromRedisValue>(self: &Arc<Self>, pipe: &Pipeline) -> Result<T, String> {
        let mut retried = false;
        loop {
            let (generation, mut conn, fresh) = self.connection().await?;
            let err = match pipe.query_async(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let why = if err.is_timeout() {
                format!("no answer within {RESPONSE_TIMEOUT:?}")
            } else {
                err.to_string()
            };
            if !connection_broken(&err) {
                return Err(why);
            }
            let mut state = self.state.lock().await;
            if state.generation != generation {
                // Already replaced by another caller.
            } else if err.is_connection_dropped() && !fresh && !retried {
                // A connection that sat idle may have been closed by the
                // server or a proxy; that is no outage, so try a new one
                // once. A repeated PUBLISH is harmless: tails skip ids
                // they have delivered.
                state.conn = None;
                retried = true;
                continue;
            } else {
                self.mark_down(&mut state, why.clone());
            }
            return Err(why);
        }
    }

    /// The current connection, or a new one (`true`), unless Redis is down.
    async fn connection(self: &Arc<Self>) -> Result<(u64, MultiplexedConnection, bool), String> {
        let mut state = self.state.lock().await;
        if let Some(conn) = &state.conn {
            return Ok((state.generation, conn.clone(), false));
        }
        if let Some(why) = &state.down {
            return Err(why.clone());
        }
        match self.open().await {
            Ok(conn) => {
                state.install(conn.clone());
                Ok((state.generation, conn, true))
            }
            Err(why) => {
                self.mark_down(&mut state, why.clone());
                Err(why)
            }
        }
    }

    async fn open(&self) -> Result<MultiplexedConnection, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let attempt = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) if !e.is_timeout() => Err(e.to_string()),
            // The library's own timeout says no more than "timed out".
            Ok(Err(_)) | Err(_) => Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
        }
    }

    /// Drops the connection and, unless already at it, starts reconnecting
    /// in the background.
    fn mark_down(self: &Arc<Self>, state: &mut State, why: String) {
        state.conn = None;
        if state.down.is_none() {
            tracing::warn!(addr = %self.addr, error = %why, "Redis unreachable; reconnecting");
            self.runtime.spawn(reconnect(Arc::downgrade(self)));
        }
        state.down = Some(why);
    }
}

impl State {
    fn install(&mut self, conn: MultiplexedConnection) {
        self.generation += 1;
        self.conn = Some(conn);
        self.down = None;
    }
}

/// Reconnects with backoff until it succeeds or the bus is dropped.
async fn reconnect(link: Weak<Link>) {
    let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
    loop {
        tokio::time::sleep(backoff.step()).await;
        let Some(link) = link.upgrade() else {
            return;
        };
        let opened = link.open().await;
        let mut state = link.state.lock().await;
        if state.down.is_none() {
            // A caller connected meanwhile.
            return;
        }
        match opened {
            Ok(conn) => {
                state.install(conn);
                tracing::info!(addr = %link.addr, "Redis reachable again");
                return;
            }
            Err(why) => state.down = Some(why),
        }
    }
}

/// Whether `e` leaves the connection unusable. An error reply from the server
/// (wrong type, out of memory, ...) comes over a healthy connection.
fn connection_broken(e: &RedisError) -> bool {
    !matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}
