//! `Records`, the tail's batch message, written by hand instead of generated
//! (build.rs maps the proto message here) so that a published batch is
//! encoded once per node instead of once per tail stream. With 50 streams,
//! cloning and encoding each stream's copy was most of the server's work.
//!
//! On the wire nothing changes: a `Records` is `repeated LogRecord records
//! = 1`, and an encoded batch is that field's bytes, so a stream's message
//! is its records' slices of the shared buffer, copied once into the frame.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{DecodeContext, WireType, message, skip_field};
use prost::{DecodeError, Message};

use super::LogRecord;

/// Field number of `Records.records`.
const RECORDS_FIELD: u32 = 1;

/// A committed batch with each record's encoding, made once and shared by
/// every stream that is sent any of it.
#[derive(Debug)]
pub struct EncodedBatch {
    /// The records, in id order.
    records: Arc<Vec<LogRecord>>,
    /// Every record as a whole `records` field (key, length, message).
    bytes: Bytes,
    /// Where record `i`'s field ends in `bytes`; it starts where `i - 1`'s ends.
    ends: Vec<usize>,
    /// Counts the batch in a total while it is alive (the fan-out's bound
    /// on what tail queues hold).
    counted: Option<Counted>,
}

/// Bytes added to a shared total, taken off again on drop.
#[derive(Debug)]
struct Counted {
    bytes: usize,
    total: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Relaxed);
    }
}

impl EncodedBatch {
    pub fn new(records: Arc<Vec<LogRecord>>) -> Self {
        let mut buf =
            BytesMut::with_capacity(message::encoded_len_repeated(RECORDS_FIELD, &records[..]));
        let mut ends = Vec::with_capacity(records.len());
        for r in records.iter() {
            message::encode(RECORDS_FIELD, r, &mut buf);
            ends.push(buf.len());
        }
        EncodedBatch {
            records,
            bytes: buf.freeze(),
            ends,
            counted: None,
        }
    }

    /// [`EncodedBatch::new`], counted in `total` while it lives: twice its
    /// encoded size, for the records it also holds decoded.
    pub fn counted(records: Arc<Vec<LogRecord>>, total: &Arc<AtomicUsize>) -> Self {
        let mut batch = EncodedBatch::new(records);
        let bytes = 2 * batch.bytes.len();
        total.fetch_add(bytes, Relaxed);
        batch.counted = Some(Counted {
            bytes,
            total: total.clone(),
        });
        batch
    }

    /// Every record, as selections of at most `max` encoded bytes each (a
    /// larger record goes alone): the batch's `Records` messages, in order.
    pub fn split(self: &Arc<Self>, max: usize) -> Vec<Selection> {
        Selection::pick(self, |_| true).map_or_else(Vec::new, |all| all.split(max))
    }

    /// Bytes of record `i`'s field.
    fn span(&self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }
}

/// Some records of one encoded batch, in id order: a stream's share of it.
#[derive(Clone)]
pub struct Selection {
    batch: Arc<EncodedBatch>,
    /// Indexes into the batch, ascending.
    picked: Vec<usize>,
    /// Encoded length of the picked fields, kept because `encoded_len` is
    /// asked for every message sent.
    len: usize,
}

impl fmt::Debug for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |r: Option<&LogRecord>| r.map_or(0, |r| r.id);
        f.debug_struct("Selection")
            .field("records", &self.len())
            .field("first_id", &ids(self.iter().next()))
            .field("last_id", &ids(self.iter().next_back()))
            .finish()
    }
}

impl Selection {
    /// The records of `batch` that `keep` accepts; `None` if there are none.
    pub fn pick(
        batch: &Arc<EncodedBatch>,
        mut keep: impl FnMut(&LogRecord) -> bool,
    ) -> Option<Selection> {
        let picked: Vec<usize> = (0..batch.records.len())
            .filter(|&i| keep(&batch.records[i]))
            .collect();
        if picked.is_empty() {
            return None;
        }
        Some(Selection::of(batch.clone(), picked))
    }

    fn of(batch: Arc<EncodedBatch>, picked: Vec<usize>) -> Selection {
        let len = picked.iter().map(|&i| batch.span(i).len()).sum();
        Selection { batch, picked, len }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogRecord> + '_ {
        self.picked.iter().map(|&i| &self.batch.records[i])
    }

    pub fn len(&self) -> usize {
        self.picked.len()
    }

    /// Encoded bytes of the picked records.
    pub fn bytes(&self) -> usize {
        self.len
    }

    /// The selection on a batch of its own when it is a small part of the
    /// batch it picks from, so that holding it does not keep the whole
    /// batch alive (a filtered stream that lags would otherwise pin every
    /// batch it has a record of).
    pub fn detached(self, total: &Arc<AtomicUsize>) -> Selection {
        if self.len * 4 >= self.batch.bytes.len() {
            return self;
        }
        let records: Vec<LogRecord> = self.iter().cloned().collect();
        let batch = Arc::new(EncodedBatch::counted(Arc::new(records), total));
        let picked = (0..batch.records.len()).collect();
        Selection::of(batch, picked)
    }

    pub fn is_empty(&self) -> bool {
        self.picked.is_empty()
    }

    /// Keeps only the records `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&LogRecord) -> bool) {
        let mut picked = std::mem::take(&mut self.picked);
        picked.retain(|&i| keep(&self.batch.records[i]));
        *self = Selection::of(self.batch.clone(), picked);
    }

    /// Splits into selections of at most `max` encoded bytes each (a record
    /// larger than that goes alone).
    pub fn split(self, max: usize) -> Vec<Selection> {
        if self.is_empty() {
            return Vec::new();
        }
        if self.len <= max {
            return vec![self];
        }
        let mut out = Vec::new();
        let mut cur = Vec::new();
        let mut bytes = 0;
        for i in self.picked {
            let len = self.batch.span(i).len();
            if !cur.is_empty() && bytes + len > max {
                out.push(Selection::of(self.batch.clone(), std::mem::take(&mut cur)));
                bytes = 0;
            }
            bytes += len;
            cur.push(i);
        }
        if !cur.is_empty() {
            out.push(Selection::of(self.batch, cur));
        }
        out
    }

    /// Byte ranges of the batch holding the picked fields, neighbouring
    /// records joined: an unfiltered stream's whole share is one range.
    fn runs(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let mut picked = self.picked.iter().map(|&i| self.batch.span(i)).peekable();
        std::iter::from_fn(move || {
            let mut run = picked.next()?;
            while let Some(next) = picked.next_if(|s| s.start == run.end) {
                run.end = next.end;
            }
            Some(run)
        })
    }

    fn write(&self, buf: &mut impl BufMut) {
        for run in self.runs() {
            buf.put_slice(&self.batch.bytes[run]);
        }
    }
}

/// Records in id order: built or decoded ones in `records`, then, on the
/// node that sends them, a shared selection already encoded.
#[derive(Clone, Default)]
pub struct Records {
    /// Records built here, or every record of a decoded message.
    pub records: Vec<LogRecord>,
    /// Records sent from a shared encoding; never set by decoding, so only
    /// code holding a message it did not decode needs [`Records::iter`].
    shared: Option<Selection>,
}

impl Records {
    pub fn shared(selection: Selection) -> Self {
        Records {
            records: Vec::new(),
            shared: Some(selection),
        }
    }

    /// Every record, owned and shared, in order.
    pub fn iter(&self) -> impl Iterator<Item = &LogRecord> + '_ {
        self.records
            .iter()
            .chain(self.shared.iter().flat_map(Selection::iter))
    }
}

impl Records {
    /// The message's fields (what `encode_raw` writes) as chunks to send:
    /// owned records and shared runs shorter than `min_slice` are written
    /// into `buf`; a longer shared run ends `buf`'s chunk and goes as a slice
    /// of the batch's bytes, so a large share reaches the socket without
    /// being copied once per stream.
    pub fn encode_chunks(&self, buf: &mut BytesMut, min_slice: usize, out: &mut Vec<Bytes>) {
        message::encode_repeated(RECORDS_FIELD, &self.records, buf);
        let Some(s) = &self.shared else { return };
        for run in s.runs() {
            if run.len() < min_slice {
                buf.put_slice(&s.batch.bytes[run]);
                continue;
            }
            if !buf.is_empty() {
                out.push(buf.split().freeze());
            }
            out.push(s.batch.bytes.slice(run));
        }
    }
}

impl From<Vec<LogRecord>> for Records {
    fn from(records: Vec<LogRecord>) -> Self {
        Records {
            records,
            shared: None,
        }
    }
}

impl PartialEq for Records {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("records", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

impl Message for Records {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        message::encode_repeated(RECORDS_FIELD, &self.records, buf);
        if let Some(s) = &self.shared {
            s.write(buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag == RECORDS_FIELD {
            message::merge_repeated(wire_type, &mut self.records, buf, ctx).map_err(|mut e| {
                e.push("Records", "records");
                e
            })
        } else {
            skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        message::encoded_len_repeated(RECORDS_FIELD, &self.records)
            + self.shared.as_ref().map_or(0, |s| s.len)
    }

    fn clear(&mut self) {
        self.records.clear();
        self.shared = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, service: &str) -> LogRecord {
        LogRecord {
            id,
            service: service.into(),
            message: format!("entry {id}"),
            tags: vec!["t".into()],
            ..Default::default()
        }
    }

    fn batch() -> Arc<EncodedBatch> {
        let rs = (1..=6)
            .map(|id| record(id, if id % 2 == 0 { "even" } else { "odd" }))
            .collect();
        Arc::new(EncodedBatch::new(Arc::new(rs)))
    }

    #[test]
    fn a_shared_selection_encodes_as_its_records_would() {
        let b = batch();
        for keep in [|_: &LogRecord| true, |r: &LogRecord| r.service == "even"] {
            let sel = Selection::pick(&b, keep).expect("some records");
            let owned: Vec<LogRecord> = sel.iter().cloned().collect();
            let shared = Records::shared(sel).encode_to_vec();
            assert_eq!(shared, Records::from(owned.clone()).encode_to_vec());
            assert_eq!(
                Records::decode(&shared[..]).expect("decodes").records,
                owned
            );
        }
    }

    #[test]
    fn encoded_len_and_equality_count_shared_records() {
        let b = batch();
        let sel = Selection::pick(&b, |r| r.id > 2).expect("some records");
        let msg = Records::shared(sel.clone());
        assert_eq!(msg.encoded_len(), msg.encode_to_vec().len());
        assert_eq!(msg, Records::from(sel.iter().cloned().collect::<Vec<_>>()));
        assert!(Selection::pick(&b, |_| false).is_none());
    }

    #[test]
    fn split_bounds_each_part_and_keeps_the_order() {
        let b = batch();
        let all = Selection::pick(&b, |_| true).expect("all");
        // Records 1, 3, 5 are "odd" and 2, 4, 6 "even": every pair is as long.
        let pair = b.span(0).len() + b.span(1).len();
        let parts = all.clone().split(pair);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len <= pair));
        let ids: Vec<u64> = parts.iter().flat_map(|p| p.iter().map(|r| r.id)).collect();
        assert_eq!(ids, (1..=6).collect::<Vec<_>>());
        let mut tail = all;
        tail.retain(|r| r.id >= 5);
        assert_eq!(tail.iter().map(|r| r.id).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(Records::shared(tail.clone()).encoded_len(), tail.len);
    }
}
