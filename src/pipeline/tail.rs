//! Live tail: one bus subscription per node, fanned out in process to every
//! `Tail` stream.
//!
//! Each stream has a bounded queue. The fan-out never waits for a stream: when
//! a queue is full the records are dropped from that stream only, counted, and
//! the stream is told exactly which ids it lost (`Skipped`) as soon as it has
//! room again. A hole in the bus feed itself (`Gap`, an outage) is repaired by
//! each stream from the store, after the last id it delivered.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use super::filter::Filter;
use crate::bus::BusEvent;
use crate::metrics::Metrics;
use crate::proto::{
    self, EncodedBatch, Heartbeat, LogRecord, Records, Selection, TailResponse,
    stream_status::State, tail_response::Event,
};
use crate::storage::{Order, Query, Store, StoreError};
use crate::time;

/// Records per backfill query.
const BACKFILL_PAGE: u32 = 500;
/// Largest `Records` message we send, so clients with the default 4 MiB
/// decoding limit can always read it.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What the fan-out hands a stream.
#[derive(Debug)]
enum Item {
    /// The stream's share of a published batch, encoded once for all.
    Records(Selection),
    Skipped(SkipRun),
    /// The bus lost messages or came back from an outage: repair from the store.
    Gap {
        recovered: bool,
    },
    Down(String),
}

#[derive(Debug, Clone, Copy)]
struct SkipRun {
    count: u64,
    first: u64,
    last: u64,
}

impl SkipRun {
    /// The run covering `records` (in id order); `None` for none.
    fn of(records: &Selection) -> Option<SkipRun> {
        Some(SkipRun {
            count: records.len() as u64,
            first: records.iter().next()?.id,
            last: records.iter().next_back()?.id,
        })
    }

    /// One run covering both (they are contiguous: drops only happen while
    /// the stream's queue stays full).
    fn merge(a: Option<SkipRun>, b: Option<SkipRun>) -> Option<SkipRun> {
        match (a, b) {
            (Some(a), Some(b)) => Some(SkipRun {
                count: a.count + b.count,
                first: a.first.min(b.first),
                last: a.last.max(b.last),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// What a stream is owed but could not be handed because its queue was full.
/// Shared by the fan-out and the stream: whichever finds room first delivers
/// it, so a notice is never stuck waiting for more records to arrive.
#[derive(Debug, Default)]
struct Owed {
    /// Records dropped and not yet reported.
    skipped: Option<SkipRun>,
    /// A bus gap not yet reported (`true`: the feed has recovered).
    gap: Option<bool>,
}

impl Owed {
    fn take(&mut self) -> Vec<Item> {
        let mut out = Vec::new();
        if let Some(run) = self.skipped.take() {
            out.push(Item::Skipped(run));
        }
        if let Some(recovered) = self.gap.take() {
            out.push(Item::Gap { recovered });
        }
        out
    }

    fn add(&mut self, item: Item, metrics: &Metrics) {
        match item {
            Item::Records(rs) => {
                metrics.tail_skipped.fetch_add(rs.len() as u64, Relaxed);
                self.skipped = SkipRun::merge(self.skipped, SkipRun::of(&rs));
            }
            Item::Skipped(run) => self.skipped = SkipRun::merge(self.skipped, Some(run)),
            Item::Gap { recovered } => self.gap = Some(recovered || self.gap.unwrap_or(false)),
            // An outage is reported by the state the stream sees on recovery.
            Item::Down(_) => {}
        }
    }
}

struct Sub {
    filter: Arc<Filter>,
    tx: mpsc::Sender<Item>,
    owed: Arc<Mutex<Owed>>,
}

impl Sub {
    /// Hands over what is owed first, then `item`; whatever does not fit is
    /// owed. Returns false when the stream is gone.
    fn offer(&mut self, item: Item, metrics: &Metrics) -> bool {
        let mut owed = self.owed.lock().unwrap_or_else(|p| p.into_inner());
        let mut queue = owed.take();
        queue.push(item);
        let mut items = queue.into_iter();
        for next in items.by_ref() {
            match self.tx.try_send(next) {
                Ok(()) => {}
                Err(TrySendError::Full(next)) => {
                    owed.add(next, metrics);
                    break;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        for rest in items {
            owed.add(rest, metrics);
        }
        true
    }
}

#[derive(Default)]
struct HubState {
    subs: HashMap<u64, Sub>,
    next_sub: u64,
    /// Why the bus feed is down, while it is.
    down: Option<String>,
}

pub struct TailHub {
    state: Mutex<HubState>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Queue length of each stream, in batches.
    queue_len: usize,
}

/// Parameters of one tail stream, validated by the API layer.
#[derive(Debug, Clone)]
pub struct TailParams {
    pub filter: Filter,
    pub after_id: Option<u64>,
    pub last: u32,
    pub heartbeat: Duration,
}

/// The stream's end of its queue, and what the fan-out owes it.
struct Inbox {
    rx: mpsc::Receiver<Item>,
    owed: Arc<Mutex<Owed>>,
}

impl Inbox {
    /// The next item, and once the queue is empty whatever the fan-out could
    /// not hand over: it can only have dropped records while the queue was
    /// full, so everything queued is older and must go first.
    fn try_next(&mut self) -> Option<Item> {
        if let Ok(item) = self.rx.try_recv() {
            return Some(item);
        }
        let mut owed = self.owed.lock().unwrap_or_else(|p| p.into_inner());
        // Looked at again under the lock, which the fan-out holds while it
        // sends: between the look above and the lock it may have queued a
        // batch and owed the next, and taking the newer skip first made the
        // stream step over the queued batch without a word.
        if let Ok(item) = self.rx.try_recv() {
            return Some(item);
        }
        let mut items = owed.take().into_iter();
        let first = items.next();
        for rest in items {
            // At most a skip and a gap: re-owe the gap for the next call.
            if let Item::Gap { recovered } = rest {
                owed.gap = Some(recovered);
            }
        }
        first
    }

    async fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.try_next() {
            return Some(item);
        }
        self.rx.recv().await
    }
}

struct Subscription {
    hub: Arc<TailHub>,
    key: u64,
    inbox: Inbox,
    /// The feed's outage at the time of subscribing, if any.
    down: Option<String>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut s) = self.hub.state.lock() {
            s.subs.remove(&self.key);
        }
        self.hub.metrics.tail_subscribers.fetch_sub(1, Relaxed);
    }
}

impl TailHub {
    /// Starts the fan-out of `events`, the node's one bus subscription,
    /// until `shutdown`; the handle tells when it has let go of the store.
    pub fn start(
        events: BoxStream<'static, BusEvent>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        queue_len: usize,
        shutdown: CancellationToken,
    ) -> (Arc<TailHub>, tokio::task::JoinHandle<()>) {
        let hub = Arc::new(TailHub {
            state: Mutex::new(HubState::default()),
            store,
            metrics,
            queue_len: queue_len.max(1),
        });
        let task = tokio::spawn(hub.clone().fan_out(events, shutdown));
        (hub, task)
    }

    async fn fan_out(
        self: Arc<Self>,
        mut events: BoxStream<'static, BusEvent>,
        shutdown: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                e = events.next() => match e { Some(e) => e, None => return },
                _ = shutdown.cancelled() => return,
            };
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            match &event {
                BusEvent::Down(why) => state.down = Some(why.clone()),
                BusEvent::Up => state.down = None,
                _ => {}
            }
            let metrics = &self.metrics;
            // Encoded once, for the first stream, and each stream sends its
            // share of the bytes: per stream, filtering is all that is left.
            let mut encoded: Option<Arc<EncodedBatch>> = None;
            state.subs.retain(|_, sub| {
                let item = match &event {
                    BusEvent::Records(batch) => {
                        let batch = encoded
                            .get_or_insert_with(|| Arc::new(EncodedBatch::new(batch.clone())));
                        match Selection::pick(batch, |r| sub.filter.matches(r)) {
                            Some(share) => Item::Records(share),
                            None => return !sub.tx.is_closed(),
                        }
                    }
                    BusEvent::Gap => Item::Gap { recovered: false },
                    BusEvent::Up => Item::Gap { recovered: true },
                    BusEvent::Down(why) => Item::Down(why.clone()),
                };
                sub.offer(item, metrics)
            });
        }
    }

    fn subscribe(self: &Arc<Self>, filter: Arc<Filter>) -> Subscription {
        let (tx, rx) = mpsc::channel(self.queue_len);
        let owed = Arc::new(Mutex::new(Owed::default()));
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = s.next_sub;
        s.next_sub += 1;
        s.subs.insert(
            key,
            Sub {
                filter,
                tx,
                owed: owed.clone(),
            },
        );
        self.metrics.tail_subscribers.fetch_add(1, Relaxed);
        Subscription {
            hub: self.clone(),
            key,
            inbox: Inbox { rx, owed },
            down: s.down.clone(),
        }
    }

    /// One tail stream: backfill, the switch to live, then live records,
    /// heartbeats, skips and status changes, until the client goes away or
    /// `shutdown` fires.
    pub fn tail(
        self: &Arc<Self>,
        params: TailParams,
        shutdown: CancellationToken,
    ) -> impl Stream<Item = Result<TailResponse, StoreError>> + Send + use<> {
        let hub = self.clone();
        async_stream::try_stream! {
            let filter = Arc::new(params.filter);
            // Subscribe before reading the store: whatever commits after the
            // read is then in the queue, and ids tell the overlap apart.
            let mut sub = hub.subscribe(filter.clone());
            let mut last_id = match params.after_id {
                Some(id) => id,
                None => hub.newest_id(&Filter::default()).await?,
            };
            if params.after_id.is_none() && params.last > 0 {
                let q = Query {
                    filter: (*filter).clone(),
                    before_id: Some(last_id + 1),
                    order: Order::NewestFirst,
                    limit: params.last,
                    ..Default::default()
                };
                let mut rs = hub.store.query(q).await?.records;
                rs.reverse();
                for msg in chunk(rs) { yield msg; }
            }
            // Backfill, then drain what queued meanwhile; a skip or gap seen
            // before going live is repaired from the store, never reported.
            loop {
                let mut caught_up = true;
                while let Some(page) = hub.backfill_page(&filter, last_id).await? {
                    last_id = page.last().map_or(last_id, |r| r.id);
                    let full = page.len() == BACKFILL_PAGE as usize;
                    for msg in chunk(page) { yield msg; }
                    if !full { break; }
                }
                let mut queued = Vec::new();
                while let Some(item) = sub.inbox.try_next() {
                    match item {
                        Item::Records(rs) => queued.push(rs),
                        Item::Skipped(_) | Item::Gap { .. } => caught_up = false,
                        Item::Down(why) => sub.down = Some(why),
                    }
                }
                if caught_up {
                    for share in queued {
                        for msg in fresh(share, &mut last_id) { yield msg; }
                    }
                    break;
                }
            }
            yield status(sub.down.as_deref());

            let mut beat = tokio::time::interval_at(
                tokio::time::Instant::now() + params.heartbeat,
                params.heartbeat,
            );
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let item = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    item = sub.inbox.next() => match item { Some(i) => i, None => break },
                    _ = beat.tick() => {
                        yield TailResponse { event: Some(Event::Heartbeat(Heartbeat {
                            time: Some(time::from_micros(time::now_micros())),
                            last_id,
                        })) };
                        continue;
                    }
                };
                match item {
                    Item::Records(share) => {
                        for msg in fresh(share, &mut last_id) { yield msg; }
                    }
                    Item::Skipped(run) => {
                        last_id = last_id.max(run.last);
                        yield TailResponse { event: Some(Event::Skipped(proto::Skipped {
                            count: run.count, first_id: run.first, last_id: run.last,
                        })) };
                    }
                    Item::Gap { recovered } => {
                        while let Some(page) = hub.backfill_page(&filter, last_id).await? {
                            last_id = page.last().map_or(last_id, |r| r.id);
                            let full = page.len() == BACKFILL_PAGE as usize;
                            for msg in chunk(page) { yield msg; }
                            if !full { break; }
                        }
                        if recovered {
                            yield status(None);
                        }
                    }
                    Item::Down(why) => yield status(Some(&why)),
                }
                beat.reset();
            }
        }
    }

    /// The highest id matching `filter`, 0 for none.
    async fn newest_id(&self, filter: &Filter) -> Result<u64, StoreError> {
        let q = Query {
            filter: filter.clone(),
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

    /// The next stored records after `after`, `None` when there are none.
    async fn backfill_page(
        &self,
        filter: &Filter,
        after: u64,
    ) -> Result<Option<Vec<LogRecord>>, StoreError> {
        let q = Query {
            filter: filter.clone(),
            after_id: Some(after),
            order: Order::OldestFirst,
            limit: BACKFILL_PAGE,
            ..Default::default()
        };
        let rs = self.store.query(q).await?.records;
        Ok((!rs.is_empty()).then_some(rs))
    }
}

fn status(down: Option<&str>) -> TailResponse {
    let (state, message) = match down {
        Some(why) => (State::Degraded, why.to_string()),
        None => (State::Live, String::new()),
    };
    TailResponse {
        event: Some(Event::Status(proto::StreamStatus {
            state: state as i32,
            message,
        })),
    }
}

/// Records read from the store, as messages of bounded size.
fn chunk(records: Vec<LogRecord>) -> Vec<TailResponse> {
    let batch = Arc::new(EncodedBatch::new(Arc::new(records)));
    batch
        .split(MAX_MESSAGE_BYTES)
        .into_iter()
        .map(message)
        .collect()
}

/// The records of `share` after `last_id` (the backfill may have sent the
/// rest), as messages of bounded size; moves `last_id` past them.
fn fresh(mut share: Selection, last_id: &mut u64) -> Vec<TailResponse> {
    share.retain(|r| r.id > *last_id);
    *last_id = share.iter().next_back().map_or(*last_id, |r| r.id);
    messages(share)
}

/// `share` as `Records` messages of at most `MAX_MESSAGE_BYTES` each.
fn messages(share: Selection) -> Vec<TailResponse> {
    share
        .split(MAX_MESSAGE_BYTES)
        .into_iter()
        .map(message)
        .collect()
}

fn message(part: Selection) -> TailResponse {
    TailResponse {
        event: Some(Event::Records(Records::shared(part))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream's share: `n` records from id `first`.
    fn share(first: u64, n: u64) -> Selection {
        let records = (first..first + n)
            .map(|id| LogRecord {
                id,
                ..Default::default()
            })
            .collect();
        let batch = Arc::new(EncodedBatch::new(Arc::new(records)));
        Selection::pick(&batch, |_| true).expect("records")
    }

    /// The fan-out offers batches as fast as it can to a one-slot queue while
    /// the stream reads: whatever the interleaving, the stream must see every
    /// id exactly once, as records or inside a skip, in id order. A skip taken
    /// from what is owed while an older batch sat in the queue used to make
    /// the stream drop that batch without a word.
    #[test]
    fn a_full_queue_loses_nothing_silently_and_keeps_order() {
        const BATCHES: u64 = 200_000;
        const PER: u64 = 3;
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = mpsc::channel(1);
        let owed = Arc::new(Mutex::new(Owed::default()));
        let mut sub = Sub {
            filter: Arc::new(Filter::default()),
            tx,
            owed: owed.clone(),
        };
        let mut inbox = Inbox { rx, owed };
        let fan_out = std::thread::spawn(move || {
            for b in 0..BATCHES {
                assert!(sub.offer(Item::Records(share(1 + b * PER, PER)), &metrics));
            }
        });
        let end = 1 + BATCHES * PER;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut next = 1;
        let mut skips = 0u64;
        while next < end {
            match inbox.try_next() {
                Some(item) => check(item, &mut next, &mut skips),
                None => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "stuck after id {}",
                        next - 1
                    );
                    std::hint::spin_loop();
                }
            }
        }
        fan_out.join().expect("fan-out thread");
        assert!(skips > 0, "the test never overflowed the queue");
    }

    fn check(item: Item, next: &mut u64, skips: &mut u64) {
        let (first, last) = match item {
            Item::Records(rs) => {
                let ids: Vec<u64> = rs.iter().map(|r| r.id).collect();
                let (first, last) = (ids[0], ids[ids.len() - 1]);
                assert_eq!(ids, (first..=last).collect::<Vec<_>>());
                (first, last)
            }
            Item::Skipped(run) => {
                *skips += 1;
                assert_eq!(run.count, run.last - run.first + 1, "count of {run:?}");
                (run.first, run.last)
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            first,
            *next,
            "an item starting at {first} after {} was seen",
            *next - 1
        );
        *next = last + 1;
    }
}
