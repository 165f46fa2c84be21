//! Reading archive files back: `.ndjson`, `.ndjson.zst` and `.ndjson.gz`
//! (the archive writes the first two; gzip is read for files recompressed
//! by hand), one record a line in the gateway's JSON. A line that does not
//! parse (the torn last line of a file copied while written) is counted
//! and skipped, never guessed at.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use crate::model::QueuedEntry;
use crate::model::{level, time};
use crate::proto::LogEntry;

/// A record as an archive line holds it (the gateway's `RecordOut`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedRecord {
    pub id: u64,
    pub service: String,
    pub level: String,
    pub message: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    pub time: String,
    pub received_time: String,
    /// Absent from lines of records without one, and from older archives.
    #[serde(default)]
    pub trace_id: String,
    #[serde(default)]
    pub span_id: String,
}

impl ArchivedRecord {
    /// The entry time, in microseconds.
    pub fn time_us(&self) -> Option<i64> {
        time::parse(&self.time)
    }

    /// The receipt time, in microseconds.
    pub fn received_us(&self) -> Option<i64> {
        time::parse(&self.received_time)
    }

    /// The entry to store again, keyed so that a second restore of the
    /// same record stores nothing: `restore:<id>:<receipt µs>`.
    pub fn to_entry(&self) -> Option<QueuedEntry> {
        let (t, received_us) = (self.time_us()?, self.received_us()?);
        Some(QueuedEntry {
            entry: LogEntry {
                service: self.service.clone(),
                level: level::parse(&self.level).map_or(0, |l| l as i32),
                message: self.message.clone(),
                tags: self.tags.clone(),
                attributes: self.attributes.clone(),
                time: Some(time::from_micros(t)),
                trace_id: self.trace_id.clone(),
                span_id: self.span_id.clone(),
            },
            received_us,
            source: None,
            dedup_key: Some(format!("restore:{}:{received_us}", self.id)),
        })
    }
}

/// What kind of archive file a name is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Zstd,
    Gzip,
}

/// The kind and period stem of an archive file name.
pub fn classify(name: &str) -> Option<(Kind, &str)> {
    [
        (".ndjson.zst", Kind::Zstd),
        (".ndjson.gz", Kind::Gzip),
        (".ndjson", Kind::Plain),
    ]
    .into_iter()
    .find_map(|(suffix, kind)| name.strip_suffix(suffix).map(|stem| (kind, stem)))
}

/// The lines of an archive file, decompressed as its kind says.
pub fn open(path: &Path, kind: Kind) -> io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    let raw: Box<dyn Read + Send> = match kind {
        Kind::Plain => Box::new(file),
        Kind::Zstd => Box::new(zstd::stream::Decoder::new(file)?),
        Kind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, raw)))
}

/// One line read: a record, or a line that is not one.
pub enum Line {
    Record(Box<ArchivedRecord>),
    Bad,
}

/// Reads the next line of `input`; `None` at the end. `buf` is reused.
pub fn next_line(input: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<Line>> {
    buf.clear();
    if input.read_until(b'\n', buf)? == 0 {
        return Ok(None);
    }
    // A last line without its newline was cut short while written.
    if buf.last() != Some(&b'\n') {
        return Ok(Some(Line::Bad));
    }
    Ok(Some(match serde_json::from_slice::<ArchivedRecord>(buf) {
        Ok(r) => Line::Record(Box::new(r)),
        Err(_) => Line::Bad,
    }))
}
