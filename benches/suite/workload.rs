//! Realistic log entries, the same for every mode and every limit
//! measurement: eight services, a skewed level mix, 100-300 byte messages,
//! one to three tags and three or four attributes. Deterministic in the
//! sequence number, and each message starts with `MARKER:SEQ` so stored and
//! tailed entries can be counted and matched to what was sent.

use std::collections::HashMap;

use taillight::proto::{Level, LogEntry, LogRecord};

pub const SERVICES: [&str; 8] = [
    "checkout",
    "payments",
    "search",
    "auth",
    "inventory",
    "shipping",
    "gateway",
    "notifier",
];

/// The filters the query benchmark uses, and how often they match.
pub const QUERY_SERVICE: &str = "checkout";
pub const QUERY_TAG: &str = "region:eu-west-1";
/// In about one message in a thousand.
pub const RARE_WORD: &str = "deadlock";
/// In one message in [`NEEDLE_EVERY`] (ten of 10M): a search a scan
/// cannot answer quickly.
pub const NEEDLE: &str = "zq7needle";
pub const NEEDLE_EVERY: u64 = 1_000_000;

const WORDS: [&str; 32] = [
    "request",
    "handled",
    "upstream",
    "cache",
    "miss",
    "hit",
    "retry",
    "user",
    "session",
    "token",
    "refreshed",
    "order",
    "item",
    "queued",
    "flushed",
    "batch",
    "latency",
    "slow",
    "query",
    "index",
    "connection",
    "pool",
    "acquired",
    "released",
    "payload",
    "validated",
    "rejected",
    "accepted",
    "worker",
    "shard",
    "replica",
    "lease",
];
const PATHS: [&str; 6] = ["orders", "carts", "users", "items", "invoices", "sessions"];
const VERBS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// splitmix64: cheap, well-mixed pseudo-randomness from the sequence number.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Entry number `seq` of a run marked `marker`.
pub fn entry(marker: &str, seq: u64, time: Option<prost_types::Timestamp>) -> LogEntry {
    let h = mix(seq);
    let service = SERVICES[(h % 8) as usize];
    let level = match (h >> 8) % 100 {
        0..5 => Level::Error,
        5..15 => Level::Warn,
        15..30 => Level::Debug,
        _ => Level::Info,
    };
    let target_len = 100 + ((h >> 16) % 201) as usize;
    let mut message = format!(
        "{marker}:{seq} {} /api/v1/{}/{} status={} took={}ms",
        VERBS[((h >> 24) % 4) as usize],
        PATHS[((h >> 26) % 6) as usize],
        (h >> 32) % 100_000,
        [200, 200, 200, 201, 204, 400, 404, 500][((h >> 29) % 8) as usize],
        (h >> 40) % 2000,
    );
    let mut w = mix(h);
    if (h >> 44).is_multiple_of(1000) {
        message.push(' ');
        message.push_str(RARE_WORD);
    }
    if seq.is_multiple_of(NEEDLE_EVERY) {
        message.push(' ');
        message.push_str(NEEDLE);
    }
    while message.len() < target_len {
        message.push(' ');
        message.push_str(WORDS[(w % 32) as usize]);
        w = mix(w);
    }
    message.truncate(target_len.max(message.find(' ').unwrap_or(0)));
    let region = if (h >> 50).is_multiple_of(2) {
        QUERY_TAG
    } else {
        "region:us-east-1"
    };
    let mut tags = vec![region.to_string()];
    if !(h >> 52).is_multiple_of(3) {
        tags.push(format!("pod:{service}-{}", (h >> 54) % 8));
    }
    if (h >> 57).is_multiple_of(3) {
        tags.push(["http", "db", "cache"][((h >> 59) % 3) as usize].to_string());
    }
    let mut attributes = HashMap::new();
    attributes.insert("request_id".to_string(), format!("{:016x}", mix(w)));
    attributes.insert("user_id".to_string(), format!("u{}", (w >> 20) % 50_000));
    attributes.insert("duration_ms".to_string(), ((h >> 40) % 2000).to_string());
    // Half the entries were logged inside a trace.
    let (trace_id, span_id) = match (w >> 60).is_multiple_of(2) {
        true => (
            format!("{:032x}", w as u128 * 31 + 1),
            format!("{:016x}", h | 1),
        ),
        false => (String::new(), String::new()),
    };
    LogEntry {
        service: service.to_string(),
        level: level as i32,
        message,
        tags,
        attributes,
        time,
        trace_id,
        span_id,
    }
}

/// The sequence number of a record whose message carries `marker`, if any.
pub fn seq_of(marker: &str, message: &str) -> Option<u64> {
    let rest = message.strip_prefix(marker)?.strip_prefix(':')?;
    rest.split(' ').next()?.parse().ok()
}

/// A record as the broker carries it (the limit measurements send the same
/// bytes as taillight's producer).
pub fn envelope(e: &LogEntry) -> LogRecord {
    LogRecord {
        id: 0,
        service: e.service.clone(),
        level: e.level,
        message: e.message.clone(),
        tags: e.tags.clone(),
        attributes: e.attributes.clone(),
        time: e.time,
        received_time: e.time,
        trace_id: e.trace_id.clone(),
        span_id: e.span_id.clone(),
    }
}

/// Now, as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    taillight::model::time::from_micros(taillight::model::time::now_micros())
}
