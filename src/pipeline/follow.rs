//! Following the store: every record stored after an id, matching a filter,
//! in id order, first from the store and then live from the fan-out, with
//! no gap and no duplicate at the switch and every hole in the live feed
//! repaired from the store. Tail streams, SSE and the sinks that follow the
//! store (the archive) are all this one stream.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Item, Share, SkipRun, Subscription};
use crate::model::Filter;
use crate::proto::{EncodedBatch, LogRecord, Selection};
use crate::storage::{Order, Query, StoreError};

/// Records per query when catching up from the store.
const PAGE: u32 = 500;

/// What a follower is told, in order: records as a [`Selection`], or, for
/// a stream that sends them as text, as a [`Share`] with their renderings.
#[derive(Debug)]
pub enum Followed<R = Selection> {
    /// Stored records, in id order, all after what came before.
    Records(R),
    /// Records this follower was too slow to be handed (only with
    /// [`OnSkip::Report`]); what follows comes after them.
    Skipped(SkipRun),
    /// The live feed is down (with why) or live (`None`). Told once when the
    /// follower has caught up, and on every change after that. While it is
    /// down nothing new arrives; what was stored meanwhile is read from the
    /// store when it returns.
    Status(Option<String>),
}

/// What to do with records dropped because the follower was slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSkip {
    /// Tell the follower which ids it lost (a live view, which cannot wait).
    Report,
    /// Read them from the store instead (a sink, which must be exact).
    Repair,
}

/// Where a follower stands.
struct Cursor {
    hub: Arc<Hub>,
    filter: Arc<Filter>,
    /// The last id handed over (or reported skipped).
    last_id: u64,
    /// The last page read was short: the store had nothing more then, so
    /// the next call ends the catch-up without asking it again.
    short: bool,
}

impl Hub {
    /// Every stored record after `after_id` that matches `filter`, then live
    /// ones, until `stop` or until the caller drops the stream.
    pub fn follow(
        self: &Arc<Self>,
        after_id: u64,
        filter: Filter,
        on_skip: OnSkip,
        stop: CancellationToken,
    ) -> impl Stream<Item = Result<Followed, StoreError>> + Send + use<> {
        self.follow_shared(after_id, filter, on_skip, stop)
            .map(|f| f.map(Followed::without_renderings))
    }

    /// [`Hub::follow`], with each batch's renderings.
    pub fn follow_shared(
        self: &Arc<Self>,
        after_id: u64,
        filter: Filter,
        on_skip: OnSkip,
        stop: CancellationToken,
    ) -> impl Stream<Item = Result<Followed<Share>, StoreError>> + Send + use<> {
        let filter = Arc::new(filter);
        // Subscribed before reading the store: whatever commits after the
        // read is then in the queue, and ids tell the overlap apart.
        let sub = self.subscribe(filter.clone());
        let cursor = Cursor {
            hub: self.clone(),
            filter,
            last_id: after_id,
            short: false,
        };
        run(cursor, sub, on_skip, stop)
    }
}

impl Followed<Share> {
    fn without_renderings(self) -> Followed {
        match self {
            Followed::Records(share) => Followed::Records(share.records),
            Followed::Skipped(run) => Followed::Skipped(run),
            Followed::Status(down) => Followed::Status(down),
        }
    }
}

fn run(
    mut at: Cursor,
    mut sub: Subscription,
    on_skip: OnSkip,
    stop: CancellationToken,
) -> impl Stream<Item = Result<Followed<Share>, StoreError>> + Send {
    async_stream::try_stream! {
        // Catch up, then take what queued meanwhile; a skip or gap seen
        // before going live is repaired from the store, never reported.
        loop {
            while let Some(page) = at.page().await? {
                yield Followed::Records(page);
            }
            let mut queued = Vec::new();
            let mut caught_up = true;
            while let Some(item) = sub.inbox.try_next() {
                match item {
                    Item::Records(rs) => queued.push(rs),
                    Item::Skipped(_) | Item::Gap { .. } => caught_up = false,
                    Item::Down(why) => sub.down = Some(why),
                }
            }
            if caught_up {
                for share in queued {
                    if let Some(fresh) = at.fresh(share) {
                        yield Followed::Records(fresh);
                    }
                }
                break;
            }
        }
        yield Followed::Status(sub.down.clone());
        loop {
            let item = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                item = sub.inbox.next() => match item { Some(i) => i, None => break },
            };
            match item {
                Item::Records(share) => {
                    if let Some(fresh) = at.fresh(share) {
                        yield Followed::Records(fresh);
                    }
                }
                Item::Skipped(run) if on_skip == OnSkip::Report => {
                    at.last_id = at.last_id.max(run.last);
                    yield Followed::Skipped(run);
                }
                Item::Skipped(_) => {
                    while let Some(page) = at.page().await? {
                        yield Followed::Records(page);
                    }
                }
                Item::Gap { recovered } => {
                    while let Some(page) = at.page().await? {
                        yield Followed::Records(page);
                    }
                    if recovered {
                        yield Followed::Status(None);
                    }
                }
                Item::Down(why) => yield Followed::Status(Some(why)),
            }
        }
    }
}

impl Cursor {
    /// The next stored records after the cursor, moving it past them; `None`
    /// once the store has no more.
    async fn page(&mut self) -> Result<Option<Share>, StoreError> {
        // No stored id is beyond what the stores' signed columns hold.
        if std::mem::take(&mut self.short) || self.last_id >= i64::MAX as u64 {
            return Ok(None);
        }
        let q = Query {
            filter: (*self.filter).clone(),
            after_id: Some(self.last_id),
            order: Order::OldestFirst,
            limit: PAGE,
            ..Default::default()
        };
        let records = self.hub.store.query(q).await?.records;
        let Some(last) = records.last().map(|r| r.id) else {
            return Ok(None);
        };
        self.short = records.len() < PAGE as usize;
        self.last_id = last;
        Ok(selection(records).map(Share::alone))
    }

    /// The records of `share` after the cursor (the store may have handed
    /// over the rest), moving it past them.
    fn fresh(&mut self, mut share: Share) -> Option<Share> {
        share.records.retain(|r| r.id > self.last_id);
        let last = share.records.iter().next_back()?.id;
        self.last_id = last;
        Some(share)
    }
}

/// Records read from the store, encoded once like a published batch.
fn selection(records: Vec<LogRecord>) -> Option<Selection> {
    Selection::pick(&Arc::new(EncodedBatch::new(Arc::new(records))), |_| true)
}
