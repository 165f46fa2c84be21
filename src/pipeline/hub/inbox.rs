//! What passes between the fan-out and one subscriber: a bounded queue of
//! [`Item`]s and, beside it, what the fan-out owes the subscriber because the
//! queue was full (a run of skipped records, a gap in the feed). Whichever
//! side finds room first hands the debt over, in order.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::share::Share;
use crate::model::Filter;
use crate::proto::Selection;

/// What the fan-out hands a stream.
#[derive(Debug, Clone)]
pub(in crate::pipeline) enum Item {
    /// The stream's share of a published batch, encoded once for all.
    Records(Share),
    Skipped(SkipRun),
    /// The bus lost messages or came back from an outage: repair from the store.
    Gap {
        recovered: bool,
    },
    Down(String),
}

#[derive(Debug, Clone, Copy)]
pub struct SkipRun {
    pub count: u64,
    pub first: u64,
    pub last: u64,
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
pub(super) struct Owed {
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

    fn add(&mut self, item: Item, skipped: &Counter) {
        match item {
            Item::Records(rs) => self.skip(&rs.records, skipped),
            Item::Skipped(run) => self.skipped = SkipRun::merge(self.skipped, Some(run)),
            Item::Gap { recovered } => self.gap = Some(recovered || self.gap.unwrap_or(false)),
            // An outage is reported by the state the stream sees on recovery.
            Item::Down(_) => {}
        }
    }

    /// Owes a skip of `records`, dropped.
    fn skip(&mut self, records: &Selection, skipped: &Counter) {
        skipped.inc_by(records.len() as u64);
        self.skipped = SkipRun::merge(self.skipped, SkipRun::of(records));
    }
}

/// One filter's share of a batch, offered in one pass of the fan-out to
/// every stream with that filter: picked once, and detached once for all
/// of them that are behind.
pub(super) struct Offered {
    /// The share, on the published batch.
    share: Share,
    /// The share on a batch of its own (see [`Selection::detached`]), made
    /// for the first stream that is behind.
    detached: OnceLock<Share>,
}

impl Offered {
    pub fn new(share: Share) -> Offered {
        Offered {
            share,
            detached: OnceLock::new(),
        }
    }

    fn detached(&self, live: &Arc<AtomicUsize>) -> Share {
        let detached = self.detached.get_or_init(|| Share {
            records: self.share.records.clone().detached(live),
            rendered: self.share.rendered.clone(),
        });
        detached.clone()
    }
}

/// What [`Sub::offer`] hands over after what is owed.
pub(super) enum Next<'a> {
    /// A batch's share, shared with the other streams of its filter.
    Records(&'a Offered),
    /// Anything else: a notice, a gap, an outage.
    Event(Item),
}

/// What the fan-out may hold for streams that are behind, in bytes.
pub(super) struct Bounds {
    /// Queued for one stream (records' encoded bytes); a stream whose queue
    /// is empty is always handed the next batch, however large.
    pub stream: usize,
    /// Held by the fan-out's batches in all (see `live`); over it, streams
    /// that are behind are handed nothing new.
    pub total: usize,
    /// Bytes of the batches the fan-out made that are still alive: queued,
    /// or being sent.
    pub live: Arc<AtomicUsize>,
    /// Records dropped from streams that could not keep up.
    pub skipped: Counter,
}

pub(super) struct Sub {
    pub filter: Arc<Filter>,
    pub tx: mpsc::Sender<Item>,
    pub owed: Arc<Mutex<Owed>>,
    /// Bytes of records in the queue, shared with the [`Inbox`].
    pub queued: Arc<AtomicUsize>,
}

impl Sub {
    /// Hands over what is owed first, then `next`; whatever does not fit is
    /// owed. Returns false when the stream is gone.
    pub fn offer(&mut self, next: Next<'_>, bounds: &Bounds) -> bool {
        let mut owed = self.owed.lock().unwrap_or_else(|p| p.into_inner());
        // While the stream is over its bytes the records would be owed
        // right after the skip it is owed: one notice covers both, instead
        // of a notice for every batch dropped while its queue has room.
        if let Next::Records(offered) = &next
            && owed.skipped.is_some()
            && owed.gap.is_none()
            && self.over(offered.share.records.bytes(), bounds)
        {
            owed.skip(&offered.share.records, &bounds.skipped);
            return !self.tx.is_closed();
        }
        let mut queue: Vec<Next> = owed.take().into_iter().map(Next::Event).collect();
        queue.push(next);
        let mut items = queue.into_iter();
        for next in items.by_ref() {
            let (next, cost) = match self.fit(next, bounds) {
                Ok(fits) => fits,
                Err(records) => {
                    owed.skip(records, &bounds.skipped);
                    break;
                }
            };
            // Counted before the stream can take it off again.
            self.queued.fetch_add(cost, Relaxed);
            match self.tx.try_send(next) {
                Ok(()) => {}
                Err(TrySendError::Full(next)) => {
                    self.queued.fetch_sub(cost, Relaxed);
                    owed.add(next, &bounds.skipped);
                    break;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        for rest in items {
            match rest {
                Next::Records(offered) => owed.skip(&offered.share.records, &bounds.skipped),
                Next::Event(item) => owed.add(item, &bounds.skipped),
            }
        }
        true
    }

    /// `next` as it would be queued, with its bytes; or the records back,
    /// when the stream is behind and over its bytes, or the fan-out over
    /// its total.
    fn fit<'a>(&self, next: Next<'a>, bounds: &Bounds) -> Result<(Item, usize), &'a Selection> {
        let offered = match next {
            Next::Event(item) => return Ok((item, 0)),
            Next::Records(offered) => offered,
        };
        let records = &offered.share.records;
        if self.queued.load(Relaxed) == 0 {
            return Ok((Item::Records(offered.share.clone()), records.bytes()));
        }
        if self.over(records.bytes(), bounds) {
            return Err(records);
        }
        let share = offered.detached(&bounds.live);
        let cost = share.records.bytes();
        Ok((Item::Records(share), cost))
    }

    /// Whether `bytes` more of records are refused: the stream is behind
    /// and would be over its bytes, or the fan-out is over its total. A
    /// stream whose queue is empty always takes the next batch.
    fn over(&self, bytes: usize, bounds: &Bounds) -> bool {
        let queued = self.queued.load(Relaxed);
        queued != 0 && (queued + bytes > bounds.stream || bounds.live.load(Relaxed) > bounds.total)
    }
}

/// The stream's end of its queue, and what the fan-out owes it.
pub(in crate::pipeline) struct Inbox {
    pub(super) rx: mpsc::Receiver<Item>,
    pub(super) owed: Arc<Mutex<Owed>>,
    pub(super) queued: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next item, and once the queue is empty whatever the fan-out could
    /// not hand over: it can only have dropped records while the queue was
    /// full, so everything queued is older and must go first.
    pub fn try_next(&mut self) -> Option<Item> {
        if let Ok(item) = self.rx.try_recv() {
            return Some(self.taken(item));
        }
        let mut owed = self.owed.lock().unwrap_or_else(|p| p.into_inner());
        // Looked at again under the lock, which the fan-out holds while it
        // sends: between the look above and the lock it may have queued a
        // batch and owed the next, and taking the newer skip first made the
        // stream step over the queued batch without a word.
        if let Ok(item) = self.rx.try_recv() {
            drop(owed);
            return Some(self.taken(item));
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

    pub async fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.try_next() {
            return Some(item);
        }
        let item = self.rx.recv().await?;
        Some(self.taken(item))
    }

    /// `item`, out of the queue's bytes.
    fn taken(&self, item: Item) -> Item {
        if let Item::Records(share) = &item {
            self.queued.fetch_sub(share.records.bytes(), Relaxed);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{EncodedBatch, LogRecord};
    use std::time::Duration;

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

    /// `share` as the fan-out offers it.
    fn offered(first: u64, n: u64) -> Offered {
        Offered::new(Share::alone(share(first, n)))
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
        let bounds = Bounds {
            stream: usize::MAX,
            total: usize::MAX,
            live: Arc::default(),
            skipped: Counter::default(),
        };
        let (mut sub, mut inbox) = pair(1);
        let fan_out = std::thread::spawn(move || {
            for b in 0..BATCHES {
                assert!(sub.offer(Next::Records(&offered(1 + b * PER, PER)), &bounds));
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

    fn pair(len: usize) -> (Sub, Inbox) {
        let (tx, rx) = mpsc::channel(len);
        let owed = Arc::new(Mutex::new(Owed::default()));
        let queued = Arc::new(AtomicUsize::new(0));
        let sub = Sub {
            filter: Arc::new(Filter::default()),
            tx,
            owed: owed.clone(),
            queued: queued.clone(),
        };
        (sub, Inbox { rx, owed, queued })
    }

    /// A stream that is behind is held to its bytes, then told what it
    /// missed; one with an empty queue always takes the next batch.
    #[test]
    fn a_stream_behind_is_held_to_its_bytes() {
        let bounds = Bounds {
            stream: 1_000,
            total: usize::MAX,
            live: Arc::default(),
            skipped: Counter::default(),
        };
        let (mut sub, mut inbox) = pair(1_000);
        // Each record of `share` encodes to a few bytes; 400 of them are
        // over the stream's 1,000 bytes on their own.
        assert!(sub.offer(Next::Records(&offered(1, 400)), &bounds));
        assert!(sub.offer(Next::Records(&offered(401, 10)), &bounds));
        assert!(sub.queued.load(Relaxed) > 1_000);
        let mut next = 1;
        let mut skips = 0;
        while let Some(item) = inbox.try_next() {
            check(item, &mut next, &mut skips);
        }
        assert_eq!((next, skips), (411, 1), "the second batch was skipped");
        assert_eq!(inbox.queued.load(Relaxed), 0);
        // Over the fan-out's total, only a stream that is behind skips.
        let tight = Bounds {
            total: 0,
            live: Arc::new(AtomicUsize::new(1)),
            stream: usize::MAX,
            skipped: Counter::default(),
        };
        assert!(sub.offer(Next::Records(&offered(411, 5)), &tight));
        assert!(sub.offer(Next::Records(&offered(416, 5)), &tight));
        assert!(matches!(inbox.try_next(), Some(Item::Records(_))));
        assert!(matches!(inbox.try_next(), Some(Item::Skipped(run)) if run.first == 416));
    }

    /// A stream over its bytes whose queue has room is told of the batches
    /// it was dropped in one notice, not one per batch.
    #[test]
    fn drops_while_over_the_bytes_make_one_notice() {
        let bounds = Bounds {
            stream: 1_000,
            total: usize::MAX,
            live: Arc::default(),
            skipped: Counter::default(),
        };
        let (mut sub, mut inbox) = pair(1_000);
        assert!(sub.offer(Next::Records(&offered(1, 400)), &bounds));
        for b in 0..50 {
            assert!(sub.offer(Next::Records(&offered(401 + b * 10, 10)), &bounds));
        }
        let mut next = 1;
        let mut skips = 0;
        while let Some(item) = inbox.try_next() {
            check(item, &mut next, &mut skips);
        }
        assert_eq!((next, skips), (901, 1));
        assert_eq!(bounds.skipped.get(), 500);
    }

    fn check(item: Item, next: &mut u64, skips: &mut u64) {
        let (first, last) = match item {
            Item::Records(rs) => {
                let ids: Vec<u64> = rs.records.iter().map(|r| r.id).collect();
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
