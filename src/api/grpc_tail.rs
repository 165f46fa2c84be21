//! `LogService/Tail` over gRPC, framed here instead of by tonic, so that a
//! published batch goes to every stream's socket from the one shared
//! encoding.
//!
//! tonic encodes each response message into a buffer of its stream's own:
//! with 50 subscribers every batch was copied 50 times before the kernel
//! copied it again, about a fifth of the server's core in the benchmark's
//! 50-subscriber runs (docs/benchmarks/tail-fan-out.md). Here a message is a short header and
//! slices of the batch's bytes. The wire is the same gRPC (length-prefixed
//! messages, then `grpc-status` in the trailers; errors before the stream
//! starts as a trailers-only response), so every client, grpcurl and the
//! browser's gRPC-web (translated by the layer in front) read it as before.
//! The route takes precedence over the generated service's, which stays
//! complete for anyone serving `LogServiceServer` alone.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use tonic::Status;

use super::ApiState;
use super::auth::grant_in;
use super::error::ApiError;
use super::tail::{self, TailParams};
use crate::proto::{TailRequest, TailResponse, tail_response::Event};

/// The method's path, as the generated service routes it.
pub const PATH: &str = "/taillight.v1.LogService/Tail";
/// Shared runs shorter than this are copied into the message's own chunk:
/// a separate DATA frame costs more than copying a few records.
const MIN_SLICE: usize = 4096;
/// Field number of `TailResponse.records`.
const RECORDS_FIELD: u32 = 1;

type Messages = Pin<Box<dyn Stream<Item = Result<TailResponse, Status>> + Send>>;

/// Serves `Tail` on `PATH`.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route(PATH, axum::routing::post(tail))
        .with_state(state)
}

async fn tail(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    match start(&state, req).await {
        Ok(messages) => {
            let mut res = Response::new(Body::new(TailBody::new(messages)));
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            res
        }
        Err(status) => status.into_http(),
    }
}

/// Reads and checks the request; the stream of response messages.
async fn start(state: &Arc<ApiState>, req: Request) -> Result<Messages, Status> {
    // The limit of every other request (tonic's decoding limit), plus the
    // message's header.
    let grant = grant_in(req.extensions())?;
    let max = state.intake.limits().max_request_bytes;
    let body = Limited::new(req.into_body(), max.saturating_add(5))
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                Status::out_of_range(format!("the Tail request is over {max} bytes"))
            } else {
                Status::unavailable(format!("reading the request: {e}"))
            }
        })?
        .to_bytes();
    let req = TailRequest::decode(one_message(body)?)
        .map_err(|e| Status::internal(format!("decoding the Tail request: {e}")))?;
    let params = TailParams::from_request(&grant, req, state.heartbeat)?;
    let messages =
        tail::stream(state, params).map(|r| r.map_err(|e| Status::from(ApiError::from(e))));
    Ok(Box::pin(messages))
}

/// The one message of a unary request body: a flag byte (compressed or
/// not), a four-byte length, the message.
fn one_message(mut body: Bytes) -> Result<Bytes, Status> {
    if body.is_empty() {
        return Err(Status::internal("missing request message"));
    }
    if body.len() < 5 {
        return Err(Status::internal(
            "the request's message header is cut short",
        ));
    }
    let compressed = body.get_u8();
    let len = body.get_u32() as usize;
    if compressed != 0 {
        return Err(Status::unimplemented(
            "compressed requests are not supported: send Tail uncompressed",
        ));
    }
    if body.len() < len {
        return Err(Status::internal(format!(
            "the request's message is cut short: {} of {len} bytes",
            body.len()
        )));
    }
    if body.len() > len {
        return Err(Status::internal("expected one request message, got more"));
    }
    Ok(body)
}

/// The response body: each message as a gRPC frame, then the status.
struct TailBody {
    messages: Messages,
    /// What is framed and not yet handed to hyper.
    chunks: VecDeque<Bytes>,
    /// Reused for the headers and short parts of messages.
    buf: BytesMut,
    /// The trailers are sent: nothing follows.
    done: bool,
}

impl TailBody {
    fn new(messages: Messages) -> Self {
        TailBody {
            messages,
            chunks: VecDeque::new(),
            buf: BytesMut::new(),
            done: false,
        }
    }
}

impl http_body::Body for TailBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let me = &mut *self;
        loop {
            if let Some(chunk) = me.chunks.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if me.done {
                return Poll::Ready(None);
            }
            let status = match ready!(me.messages.poll_next_unpin(cx)) {
                Some(Ok(msg)) => {
                    let mut out = Vec::new();
                    frame(&msg, &mut me.buf, &mut out);
                    me.chunks.extend(out);
                    continue;
                }
                Some(Err(status)) => status,
                None => Status::ok(""),
            };
            me.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers(&status)))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.chunks.is_empty()
    }
}

/// `grpc-status` and, for an error, its message and details.
fn trailers(status: &Status) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Err(e) = status.add_header(&mut map) {
        // Only a message that cannot be a header value gets here; the code
        // alone still tells the client how the call ended.
        tracing::warn!(error = %e, "tail status not sent in full");
        map.insert("grpc-status", HeaderValue::from(status.code() as i32));
    }
    map
}

/// `msg` as one gRPC frame, in chunks: the header and short parts written
/// into `buf`, a stream's share of a published batch as slices of it.
fn frame(msg: &TailResponse, buf: &mut BytesMut, out: &mut Vec<Bytes>) {
    let len = msg.encoded_len();
    buf.reserve(5 + len.min(MIN_SLICE));
    buf.put_u8(0);
    // Messages are bounded far below 4 GiB by the hub (1 MiB).
    buf.put_u32(len as u32);
    match &msg.event {
        Some(Event::Records(rs)) => {
            encode_key(RECORDS_FIELD, WireType::LengthDelimited, buf);
            encode_varint(rs.encoded_len() as u64, buf);
            rs.encode_chunks(buf, MIN_SLICE, out);
        }
        _ => msg.encode_raw(buf),
    }
    if !buf.is_empty() {
        out.push(buf.split().freeze());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proto::{EncodedBatch, Heartbeat, LogRecord, Records, Selection};

    fn batch(n: u64) -> Arc<EncodedBatch> {
        let rs = (1..=n)
            .map(|id| LogRecord {
                id,
                service: if id % 3 == 0 { "b" } else { "a" }.into(),
                message: format!("entry {id} {}", "x".repeat(100)),
                ..Default::default()
            })
            .collect();
        Arc::new(EncodedBatch::new(Arc::new(rs)))
    }

    /// What tonic would send for `msg`: the header, then prost's encoding.
    fn tonic_frame(msg: &TailResponse) -> Vec<u8> {
        let body = msg.encode_to_vec();
        let mut v = vec![0];
        v.extend((body.len() as u32).to_be_bytes());
        v.extend(body);
        v
    }

    fn framed(msg: &TailResponse) -> (Vec<u8>, usize) {
        let (mut buf, mut out) = (BytesMut::new(), Vec::new());
        frame(msg, &mut buf, &mut out);
        (out.concat(), out.len())
    }

    fn records(sel: Selection) -> TailResponse {
        TailResponse {
            event: Some(Event::Records(Records::shared(sel))),
        }
    }

    #[test]
    fn frames_are_what_tonic_would_send() {
        let b = batch(200);
        let all = Selection::pick(&b, |_| true).expect("records");
        let (bytes, chunks) = framed(&records(all));
        assert_eq!(chunks, 2, "a header, then the batch as one slice");
        let whole = records(Selection::pick(&b, |_| true).expect("records"));
        assert_eq!(bytes, tonic_frame(&whole));

        // Runs of two records are short: copied, one chunk in all.
        let some = Selection::pick(&b, |r| r.service == "a").expect("records");
        let (bytes, chunks) = framed(&records(some.clone()));
        assert_eq!(chunks, 1);
        assert_eq!(bytes, tonic_frame(&records(some)));

        let beat = TailResponse {
            event: Some(Event::Heartbeat(Heartbeat {
                last_id: 7,
                time: None,
            })),
        };
        assert_eq!(framed(&beat).0, tonic_frame(&beat));
    }

    #[test]
    fn a_request_body_is_exactly_one_uncompressed_message() {
        let msg = TailRequest {
            last: 5,
            ..Default::default()
        }
        .encode_to_vec();
        let mut body = vec![0];
        body.extend((msg.len() as u32).to_be_bytes());
        body.extend(&msg);
        let got = one_message(Bytes::from(body.clone())).expect("one message");
        assert_eq!(&got[..], &msg[..]);

        let code = |b: Vec<u8>| one_message(Bytes::from(b)).map(|_| ()).unwrap_err().code();
        assert_eq!(code(Vec::new()), tonic::Code::Internal);
        assert_eq!(code(body[..3].to_vec()), tonic::Code::Internal);
        assert_eq!(code(body[..body.len() - 1].to_vec()), tonic::Code::Internal);
        assert_eq!(code([&body[..], &body[..]].concat()), tonic::Code::Internal);
        let mut compressed = body;
        compressed[0] = 1;
        assert_eq!(code(compressed), tonic::Code::Unimplemented);
    }
}
