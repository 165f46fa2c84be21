//! `Tail` (and its SSE twin): an optional backfill of the newest records,
//! then everything the store is [followed](crate::pipeline::follow) for, as
//! `TailResponse` messages of bounded size, with heartbeats while quiet.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};

use super::ApiState;
use super::error::ApiError;
use super::query;
use crate::access::Grant;
use crate::access::meter::StreamPermit;
use crate::model::{Filter, time};
use crate::pipeline::follow::{Followed, OnSkip};
use crate::pipeline::hub::Share;
use crate::proto::{
    self, EncodedBatch, Heartbeat, Records, Selection, TailRequest, TailResponse,
    stream_status::State, tail_response::Event,
};
use crate::storage::StoreError;

/// Most records a tail may ask to start with.
pub const MAX_TAIL_LAST: u32 = 10_000;
/// Largest `Records` message we send, so clients with the default 4 MiB
/// decoding limit can always read it.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// One tail stream's request, checked.
#[derive(Debug, Clone)]
pub struct TailParams {
    pub filter: Filter,
    /// Resume after this id; without it, start at the newest record.
    pub after_id: Option<u64>,
    /// Without `after_id`: first send this many of the newest records.
    pub last: u32,
    pub heartbeat: Duration,
    /// Counts the stream against the client's and the server's stream
    /// caps for as long as the stream holds it.
    pub permit: Option<Arc<StreamPermit>>,
}

impl TailParams {
    /// Checks a request, filling in the server's default heartbeat.
    pub fn from_request(
        grant: &Grant,
        req: TailRequest,
        default_heartbeat: Duration,
    ) -> Result<Self, ApiError> {
        if req.last > MAX_TAIL_LAST {
            return Err(ApiError::invalid(
                "last",
                format!("{} exceeds the limit of {MAX_TAIL_LAST}", req.last),
            ));
        }
        let heartbeat = match req.heartbeat_interval {
            None => default_heartbeat,
            Some(d) => {
                let d = Duration::try_from(d)
                    .map_err(|_| ApiError::invalid("heartbeat_interval", "must be positive"))?;
                d.clamp(Duration::from_secs(1), Duration::from_secs(300))
            }
        };
        Ok(TailParams {
            filter: query::filter(grant, req.filter)?,
            after_id: req.after_id,
            last: req.last,
            heartbeat,
            permit: grant.open_stream()?.map(Arc::new),
        })
    }
}

/// What a tail stream sends: records with the renderings shared by every
/// stream that sends them as text, or any other message.
#[derive(Debug)]
pub enum Tailed {
    /// At most [`MAX_MESSAGE_BYTES`] of encoded records.
    Records(Share),
    /// A heartbeat, skip notice or status.
    Message(TailResponse),
}

impl From<Tailed> for TailResponse {
    fn from(t: Tailed) -> TailResponse {
        match t {
            Tailed::Records(share) => records(share.records),
            Tailed::Message(m) => m,
        }
    }
}

/// The stream's messages, until the client goes away or the ways in stop.
pub fn stream(
    state: &ApiState,
    params: TailParams,
) -> impl Stream<Item = Result<TailResponse, StoreError>> + Send + use<> {
    events(state, params).map(|t| t.map(TailResponse::from))
}

/// [`stream`], its records with their renderings.
pub fn events(
    state: &ApiState,
    params: TailParams,
) -> impl Stream<Item = Result<Tailed, StoreError>> + Send + use<> {
    let hub = state.hub.clone();
    let stop = state.stop.clone();
    async_stream::try_stream! {
        let _counted = params.permit;
        let from = match params.after_id {
            Some(id) => id,
            None => {
                let newest = hub.newest_id().await?;
                if params.last > 0 {
                    let rs = hub.newest(&params.filter, newest, params.last).await?;
                    let batch = Arc::new(EncodedBatch::new(Arc::new(rs)));
                    for part in batch.split(MAX_MESSAGE_BYTES) {
                        yield Tailed::Records(Share::alone(part));
                    }
                }
                newest
            }
        };
        let mut last_id = from;
        let mut follow = pin!(hub.follow_shared(from, params.filter, OnSkip::Report, stop));
        let hb = params.heartbeat;
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + hb, hb);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let followed = tokio::select! {
                biased;
                item = follow.next() => match item { Some(f) => f, None => break },
                _ = beat.tick() => {
                    yield Tailed::Message(heartbeat(last_id));
                    continue;
                }
            };
            match followed? {
                Followed::Records(share) => {
                    last_id = share.records.iter().next_back().map_or(last_id, |r| r.id);
                    for part in share.split(MAX_MESSAGE_BYTES) {
                        yield Tailed::Records(part);
                    }
                }
                Followed::Skipped(run) => {
                    last_id = last_id.max(run.last);
                    yield Tailed::Message(TailResponse { event: Some(Event::Skipped(proto::Skipped {
                        count: run.count, first_id: run.first, last_id: run.last,
                    })) });
                }
                Followed::Status(down) => yield Tailed::Message(status(down.as_deref())),
            }
            beat.reset();
        }
    }
}

fn records(part: Selection) -> TailResponse {
    TailResponse {
        event: Some(Event::Records(Records::shared(part))),
    }
}

fn heartbeat(last_id: u64) -> TailResponse {
    TailResponse {
        event: Some(Event::Heartbeat(Heartbeat {
            time: Some(time::from_micros(time::now_micros())),
            last_id,
        })),
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
