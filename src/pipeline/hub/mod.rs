//! The fan-out: one bus subscription per node, handed in process to every
//! follower of the store (tail streams, and the sinks that follow it).
//!
//! Each subscriber has a bounded queue ([`inbox`]). The fan-out never waits
//! for one: when a queue is full the records are dropped for that subscriber
//! only, counted, and it is told exactly which ids it lost as soon as it has
//! room again. A hole in the bus feed itself (a gap, an outage) is passed on
//! too; [`follow`](super::follow) repairs both from the store.

mod inbox;
mod join;
mod reorder;
mod share;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::bus::{BusEvent, RecordBatch};
use crate::metrics::Registry;
use crate::model::Filter;
use crate::proto::{EncodedBatch, LogRecord, Selection};
use crate::storage::{Order, Query, Store, StoreError};
pub use inbox::SkipRun;
use inbox::{Bounds, Next, Offered, Owed, Sub};
pub(super) use inbox::{Inbox, Item};
use join::Joiner;
use reorder::{Out, Reorder};
pub use share::{Rendered, Share};

/// The fan-out's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// Record batches buffered per tail stream before it starts skipping.
    #[arg(long, env = "TAILLIGHT_TAIL_BUFFER", default_value_t = 256)]
    pub tail_buffer: usize,
    /// Bytes of records buffered per tail stream that is behind before it
    /// starts skipping (it is told which ids it missed). At 16 MiB, 50
    /// streams reading on the benchmark's two busy cores skipped 3% at half
    /// the maximum rate; what they share is bounded by the total below.
    #[arg(long, env = "TAILLIGHT_TAIL_BUFFER_BYTES", default_value_t = 64 << 20)]
    pub tail_buffer_bytes: usize,
    /// Bytes the live feed's batches may hold in all before every stream
    /// that is behind starts skipping.
    #[arg(long, env = "TAILLIGHT_TAIL_BUFFER_TOTAL_BYTES", default_value_t = 256 << 20)]
    pub tail_buffer_total_bytes: usize,
}

#[derive(Default)]
struct HubState {
    subs: HashMap<u64, Sub>,
    next_sub: u64,
    /// Why the bus feed is down, while it is.
    down: Option<String>,
}

pub struct Hub {
    state: Mutex<HubState>,
    /// Where followers catch up and repair holes.
    pub(super) store: Arc<dyn Store>,
    /// Queue length of each subscriber, in batches.
    queue_len: usize,
    /// Open subscriptions.
    subscribers: Gauge,
    /// What streams that are behind may be held to, and the records they
    /// were dropped (each told).
    bounds: Bounds,
}

/// One subscriber's place in the fan-out, given up when dropped.
pub(super) struct Subscription {
    hub: Arc<Hub>,
    key: u64,
    pub inbox: Inbox,
    /// The feed's outage at the time of subscribing, if any.
    pub down: Option<String>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut s) = self.hub.state.lock() {
            s.subs.remove(&self.key);
        }
        self.hub.subscribers.dec();
    }
}

impl Hub {
    /// Starts the fan-out of `events`, the node's one bus subscription,
    /// until `stop`; the returned future is the fan-out, to be run.
    ///
    /// The feed's order starts after the store's newest record, read here,
    /// before any follower can subscribe: every follower's catch-up then
    /// reaches at least as far, so a batch older than that which is
    /// published late reaches each follower from the store.
    pub async fn start(
        events: BoxStream<'static, BusEvent>,
        store: Arc<dyn Store>,
        args: &HubArgs,
        registry: &Registry,
        stop: CancellationToken,
    ) -> (Arc<Hub>, impl Future<Output = ()> + Send + 'static) {
        let subscribers = Gauge::default();
        let live = Arc::new(AtomicUsize::new(0));
        let seen = live.clone();
        registry.gauge_fn(
            "taillight_tail_buffered_bytes",
            "Bytes held by live batches not yet sent to every tail stream.",
            move || seen.load(Relaxed) as i64,
        );
        registry.register(
            "taillight_tail_subscribers",
            "Open live tail streams.",
            subscribers.clone(),
        );
        let hub = Arc::new(Hub {
            state: Mutex::new(HubState::default()),
            store,
            queue_len: args.tail_buffer.max(1),
            subscribers,
            bounds: Bounds {
                stream: args.tail_buffer_bytes,
                total: args.tail_buffer_total_bytes,
                live: live.clone(),
                skipped: registry.counter(
                    "taillight_tail_skipped",
                    "Records dropped from tail subscribers that could not keep up.",
                ),
            },
        });
        let mut order = Reorder::default();
        hub.restart_order(&mut order).await;
        let task = hub.clone().fan_out(events, order, stop);
        (hub, task)
    }

    async fn fan_out(
        self: Arc<Self>,
        mut events: BoxStream<'static, BusEvent>,
        mut order: Reorder,
        stop: CancellationToken,
    ) {
        let mut joiner = Joiner::default();
        loop {
            let deadline = order.deadline();
            let wait = sleep_until(deadline.unwrap_or_else(Instant::now));
            let due = joiner.due();
            let paced = sleep_until(due.unwrap_or_else(Instant::now));
            let event = tokio::select! {
                e = events.next() => match e { Some(e) => e, None => return },
                _ = wait, if deadline.is_some() => {
                    let now = Instant::now();
                    self.hand_on(joiner.add(order.give_up(), self.open(), now));
                    continue;
                }
                _ = paced, if due.is_some() => {
                    self.hand_on(joiner.take(Instant::now()));
                    continue;
                }
                _ = stop.cancelled() => return,
            };
            let now = Instant::now();
            match event {
                BusEvent::Records(batch) => {
                    self.hand_on(joiner.add(order.push(batch, now), self.open(), now));
                }
                // Batches that wait go before what the feed says next.
                BusEvent::Down(why) => {
                    self.hand_on(joiner.take(now));
                    self.deliver(&BusEvent::Down(why));
                }
                // The feed lost batches: followers repair from the store,
                // which holds everything up to its newest id by now.
                gap @ (BusEvent::Gap | BusEvent::Up) => {
                    self.hand_on(joiner.take(now));
                    let held = order.forget();
                    self.restart_order(&mut order).await;
                    self.deliver(&gap);
                    for out in held {
                        if let Out::Batch(b) = out {
                            self.hand_on(order.push(b, Instant::now()));
                        }
                    }
                }
            }
        }
    }

    /// Open subscriptions.
    fn open(&self) -> usize {
        usize::try_from(self.subscribers.get()).unwrap_or(0)
    }

    /// The order of the feed starts after the store's newest record: what
    /// is older reaches followers from the store.
    async fn restart_order(&self, order: &mut Reorder) {
        match self.newest_id().await {
            Ok(newest) => order.start_at(newest + 1),
            Err(e) => {
                tracing::warn!(error = %e, "the store did not say its newest id; the feed's order starts with the next batch")
            }
        }
    }

    fn hand_on(&self, outs: Vec<Out>) {
        for out in outs {
            match out {
                Out::Batch(batch) => self.deliver(&BusEvent::Records(batch)),
                Out::Gap => self.deliver(&BusEvent::Gap),
            }
        }
    }

    /// Offers `event` to every subscriber, dropping those that are gone.
    fn deliver(&self, event: &BusEvent) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let item = match event {
            BusEvent::Records(batch) => return self.deliver_records(&mut state, batch),
            BusEvent::Down(why) => {
                state.down = Some(why.clone());
                Item::Down(why.clone())
            }
            BusEvent::Up => {
                state.down = None;
                Item::Gap { recovered: true }
            }
            BusEvent::Gap => Item::Gap { recovered: false },
        };
        state
            .subs
            .retain(|_, sub| sub.offer(Next::Event(item.clone()), &self.bounds));
    }

    /// Offers each subscriber its share of `batch`. The batch is encoded
    /// once, and filtered once per distinct filter (subscribers with equal
    /// filters share one, see [`Hub::subscribe`]): per subscriber, queueing
    /// is all that is left.
    fn deliver_records(&self, state: &mut HubState, batch: &RecordBatch) {
        let bounds = &self.bounds;
        let mut encoded: Option<(Arc<EncodedBatch>, Arc<Rendered>)> = None;
        // By the filter's address: equal filters are one `Arc`.
        let mut picked: HashMap<*const Filter, Option<Offered>> = HashMap::new();
        state.subs.retain(|_, sub| {
            let offered = picked.entry(Arc::as_ptr(&sub.filter)).or_insert_with(|| {
                let (batch, rendered) = encoded.get_or_insert_with(|| {
                    let encoded = EncodedBatch::counted(batch.clone(), &bounds.live);
                    (Arc::new(encoded), Arc::new(Rendered::counted(&bounds.live)))
                });
                let records = Selection::pick(batch, |r| sub.filter.matches(r))?;
                Some(Offered::new(Share {
                    records,
                    rendered: rendered.clone(),
                }))
            });
            match offered {
                Some(offered) => sub.offer(Next::Records(offered), bounds),
                None => !sub.tx.is_closed(),
            }
        });
    }

    pub(super) fn subscribe(self: &Arc<Self>, filter: Arc<Filter>) -> Subscription {
        let (tx, rx) = mpsc::channel(self.queue_len);
        let owed = Arc::new(Mutex::new(Owed::default()));
        let queued = Arc::new(AtomicUsize::new(0));
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Equal filters made one, so that the fan-out filters a batch once
        // for all their subscribers.
        let filter = s
            .subs
            .values()
            .find(|sub| *sub.filter == *filter)
            .map_or(filter, |sub| sub.filter.clone());
        let key = s.next_sub;
        s.next_sub += 1;
        s.subs.insert(
            key,
            Sub {
                filter,
                tx,
                owed: owed.clone(),
                queued: queued.clone(),
            },
        );
        self.subscribers.inc();
        Subscription {
            hub: self.clone(),
            key,
            inbox: Inbox { rx, owed, queued },
            down: s.down.clone(),
        }
    }

    /// The highest stored id, 0 for none.
    pub async fn newest_id(&self) -> Result<u64, StoreError> {
        let q = Query {
            order: Order::NewestFirst,
            limit: 1,
            ..Default::default()
        };
        Ok(self
            .store
            .query(q)
            .await?
            .records
            .first()
            .map_or(0, |r| r.id))
    }

    /// The newest `n` stored records matching `filter` with ids up to
    /// `through`, oldest first.
    pub async fn newest(
        &self,
        filter: &Filter,
        through: u64,
        n: u32,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let q = Query {
            filter: filter.clone(),
            before_id: Some(through.saturating_add(1)),
            order: Order::NewestFirst,
            limit: n,
            ..Default::default()
        };
        let mut rs = self.store.query(q).await?.records;
        rs.reverse();
        Ok(rs)
    }
}
