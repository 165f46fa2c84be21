//! A node's one subscription to the bus channel, as [`BusEvent`]s: what the
//! shared [`subscriber`] hears, decoded.

use std::sync::Arc;

use ::redis::Client;
use futures::StreamExt;
use futures::stream::BoxStream;
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;

use crate::bus::contract::BusEvent;
use crate::net::redis::subscriber::{self, Heard, Topics};
use crate::proto::Records;

/// Events waiting for the consumer. The node's fan-out never blocks, so this
/// only fills if it stalls; records are then dropped for a `Gap`.
const QUEUE_LEN: usize = 128;

/// Subscribes to `channel`; the subscription ends when the stream is dropped.
///
/// The first event tells how the subscription started: `Gap` once it is in
/// place (whatever was published before was not seen), or `Down` when Redis
/// cannot be reached, followed by `Up` when it can.
pub(super) fn start(
    runtime: &tokio::runtime::Handle,
    client: Client,
    addr: String,
    channel: String,
) -> BoxStream<'static, BusEvent> {
    let topics = Topics {
        channels: vec![channel],
        patterns: Vec::new(),
    };
    let heard = subscriber::subscribe(runtime, client, addr, topics, QUEUE_LEN);
    ReceiverStream::new(heard).map(event).boxed()
}

fn event(heard: Heard) -> BusEvent {
    match heard {
        Heard::Up { again: false } | Heard::Dropped(_) => BusEvent::Gap,
        Heard::Up { again: true } => BusEvent::Up,
        Heard::Down(why) => BusEvent::Down(why),
        Heard::Message(msg) => {
            let payload = msg.get_payload_bytes();
            match Records::decode(payload) {
                // Publishers send an empty message after they failed to publish.
                Ok(m) if m.records.is_empty() => BusEvent::Gap,
                Ok(m) => BusEvent::Records(Arc::new(m.records)),
                Err(e) => {
                    // It may have held records: let the tails repair from the store.
                    tracing::warn!(error = %e, bytes = payload.len(), "undecodable bus message");
                    BusEvent::Gap
                }
            }
        }
    }
}
