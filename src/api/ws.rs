//! `GET /ws`: the seed system's live view, a WebSocket that sends each new
//! record as the seed's JSON (`service_name`, `level`, `message`, `tag`,
//! `timestamp`), so the seed's page keeps working. It is a tail like any
//! other (the one fan-out, a bounded queue, skips told, never silent): the
//! gateway's filters and `after_id` / `last` apply. Keepalive as the seed
//! did it: the server sends `{"type":"ping"}`, the page answers
//! `{"type":"pong"}`, and a socket that stops answering, or stops reading,
//! is closed.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

use super::ApiState;
use super::error::ApiError;
use super::params::{self, Params};
use super::tail::{self, TailParams};
use crate::access::Grant;
use crate::model::json::SeedRecordOut;
use crate::proto::{TailResponse, stream_status, tail_response::Event};

/// Default time between pings (`?ping=SECONDS` to change, 1 to 300).
const PING_EVERY: Duration = Duration::from_secs(15);
/// Pings without an answer before the socket is closed.
const UNANSWERED: u32 = 2;
/// Largest message a page may send (a pong is a dozen bytes).
const MAX_INCOMING: usize = 4096;

pub fn router(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route("/ws", get(upgrade))
        .with_state(state)
}

async fn upgrade(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    RawQuery(raw): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let p = Params::parse(raw);
    let ping = match p.num::<u64>("ping")? {
        Some(s) => Duration::from_secs(s.clamp(1, 300)),
        None => PING_EVERY,
    };
    // Tail heartbeats are not needed: pings keep the socket busy.
    let mut params =
        TailParams::from_request(&grant, params::tail_request(&p, None)?, state.heartbeat)?;
    params.heartbeat = Duration::from_secs(300);
    Ok(ws
        .max_message_size(MAX_INCOMING)
        .on_upgrade(move |socket| serve(socket, state, params, ping)))
}

/// Why a socket was closed by the server.
enum End {
    /// The page went away, or the server is stopping.
    Done,
    /// Pings went unanswered, or the page stopped reading.
    Silent,
}

async fn serve(socket: WebSocket, state: Arc<ApiState>, params: TailParams, ping: Duration) {
    let (mut out, mut incoming) = socket.split();
    let mut records = pin!(tail::stream(&state, params));
    let mut beat = tokio::time::interval_at(Instant::now() + ping, ping);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut answered = Instant::now();
    let end = loop {
        let frames = tokio::select! {
            item = records.next() => match item {
                Some(Ok(resp)) => frames(resp),
                Some(Err(e)) => vec![json!({"type": "error", "message": e.to_string()}).to_string()],
                None => break End::Done,
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(_) | Message::Pong(_))) => {
                    // Any word from the page, a pong above all, shows it is there.
                    answered = Instant::now();
                    continue;
                }
                Some(Ok(Message::Binary(_) | Message::Ping(_))) => continue,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break End::Done,
            },
            _ = beat.tick() => {
                if answered.elapsed() > ping * UNANSWERED {
                    break End::Silent;
                }
                vec![json!({"type": "ping"}).to_string()]
            }
        };
        // A page that stops reading fills the socket; it is given as long
        // as a silent one before it is closed.
        let sent = tokio::time::timeout(ping * UNANSWERED, async {
            for f in frames {
                out.feed(Message::Text(f.into())).await?;
            }
            out.flush().await
        });
        match sent.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break End::Done,
            Err(_) => break End::Silent,
        }
    };
    if let End::Silent = end {
        let close = CloseFrame {
            code: 1001,
            reason: Utf8Bytes::from_static("no answer to ping"),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            out.send(Message::Close(Some(close))),
        )
        .await;
    }
}

/// One tail message as WebSocket text frames: a record each, in the seed's
/// JSON; what the seed's page does not know (skips, state changes) under a
/// `type` it ignores.
fn frames(resp: TailResponse) -> Vec<String> {
    match resp.event {
        Some(Event::Records(rs)) => rs
            .iter()
            .map(|r| serde_json::to_string(&SeedRecordOut::from(r)).unwrap_or_default())
            .collect(),
        Some(Event::Skipped(s)) => vec![
            json!({"type": "skipped", "count": s.count, "first_id": s.first_id, "last_id": s.last_id})
                .to_string(),
        ],
        Some(Event::Status(s)) => {
            let state = match stream_status::State::try_from(s.state) {
                Ok(stream_status::State::Degraded) => "DEGRADED",
                _ => "LIVE",
            };
            vec![json!({"type": "status", "state": state, "message": s.message}).to_string()]
        }
        Some(Event::Heartbeat(_)) | None => Vec::new(),
    }
}
