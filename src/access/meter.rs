//! What one client may use: entries and bytes per second (token buckets)
//! and tail streams open at once, per API key, or per client address for
//! requests without one; and tail streams open in all. Over a rate the
//! batch is refused whole with the time after which it would pass.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;

use super::AccessError;
use crate::metrics::Registry;

/// Clients tracked by address before idle ones are forgotten.
const ADDRESSES_KEPT: usize = 10_000;

/// The limits of one subject; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub entries_per_second: Option<f64>,
    pub bytes_per_second: Option<f64>,
    pub tail_streams: Option<usize>,
}

impl Rates {
    /// These, with `fallback`'s where these say nothing.
    pub fn or(self, fallback: Rates) -> Rates {
        Rates {
            entries_per_second: self.entries_per_second.or(fallback.entries_per_second),
            bytes_per_second: self.bytes_per_second.or(fallback.bytes_per_second),
            tail_streams: self.tail_streams.or(fallback.tail_streams),
        }
    }
}

/// A token bucket holding up to one second of its rate. A batch larger
/// than that passes when the bucket is full and leaves it in debt, so no
/// batch is refused for ever.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    /// Tokens now (negative: debt), as of the instant beside them.
    level: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        Bucket {
            rate,
            level: Mutex::new((rate, Instant::now())),
        }
    }

    /// Takes `cost` tokens, or says how long until they could be taken.
    fn take(&self, cost: f64) -> Result<(), Duration> {
        let mut level = self.level.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let tokens =
            (level.0 + now.duration_since(level.1).as_secs_f64() * self.rate).min(self.rate);
        let needed = cost.min(self.rate);
        if tokens < needed {
            *level = (tokens, now);
            return Err(Duration::from_secs_f64((needed - tokens) / self.rate));
        }
        *level = (tokens - cost, now);
        Ok(())
    }

    fn full(&self) -> bool {
        let level = self.level.lock().unwrap_or_else(|p| p.into_inner());
        level.0 + level.1.elapsed().as_secs_f64() * self.rate >= self.rate
    }
}

/// One subject's buckets and streams.
#[derive(Debug)]
pub struct Meter {
    /// `key "ci"` or `address 10.0.0.7`, for messages.
    subject: String,
    rates: Rates,
    entries: Option<Bucket>,
    bytes: Option<Bucket>,
    streams: AtomicUsize,
    /// Tail streams open on the whole server, and their cap.
    all_streams: Arc<AtomicUsize>,
    max_all_streams: usize,
    /// Its refusals, in `/metrics` under the key's name.
    refusals: Counter,
}

impl Meter {
    /// Charges a batch of `entries` entries of `bytes` bytes.
    pub fn charge(&self, entries: usize, bytes: usize) -> Result<(), AccessError> {
        self.counted(self.take(entries, bytes))
    }

    fn counted<T>(&self, r: Result<T, AccessError>) -> Result<T, AccessError> {
        if r.is_err() {
            self.refusals.inc();
        }
        r
    }

    fn take(&self, entries: usize, bytes: usize) -> Result<(), AccessError> {
        for (bucket, cost, what) in [
            (&self.entries, entries, "entries"),
            (&self.bytes, bytes, "bytes"),
        ] {
            if let Some(b) = bucket
                && let Err(wait) = b.take(cost as f64)
            {
                return Err(AccessError::Limited {
                    message: format!(
                        "{} is over its rate of {} {what} per second; retry in {} ms",
                        self.subject,
                        b.rate,
                        wait.as_millis().max(1)
                    ),
                    retry_after: wait,
                });
            }
        }
        Ok(())
    }

    /// Counts a tail stream in, while the permit lives, or says which cap
    /// it is over.
    pub fn open_stream(self: &Arc<Self>) -> Result<StreamPermit, AccessError> {
        self.counted(self.stream())
    }

    fn stream(self: &Arc<Self>) -> Result<StreamPermit, AccessError> {
        let mine = self.streams.fetch_add(1, Relaxed);
        let all = self.all_streams.fetch_add(1, Relaxed);
        let permit = StreamPermit(self.clone());
        let over = |message: String| AccessError::Limited {
            message,
            retry_after: Duration::from_secs(1),
        };
        if all >= self.max_all_streams {
            return Err(over(format!(
                "the server has {} tail streams open, its most (--max-tail-streams)",
                self.max_all_streams
            )));
        }
        if let Some(max) = self.rates.tail_streams
            && mine >= max
        {
            return Err(over(format!(
                "{} has {max} tail streams open, its most (--max-tail-streams-per-key)",
                self.subject
            )));
        }
        Ok(permit)
    }
}

/// An open tail stream; counted out when dropped.
#[derive(Debug)]
pub struct StreamPermit(Arc<Meter>);

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Relaxed);
        self.0.all_streams.fetch_sub(1, Relaxed);
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyName {
    key: String,
}

/// Every subject's meter.
#[derive(Debug)]
pub struct Meters {
    refusals: Family<KeyName, Counter>,
    defaults: Rates,
    max_all_streams: usize,
    all_streams: Arc<AtomicUsize>,
    keys: Mutex<HashMap<String, Arc<Meter>>>,
    addresses: Mutex<HashMap<IpAddr, Arc<Meter>>>,
}

impl Meters {
    pub fn new(defaults: Rates, max_all_streams: usize, registry: &Registry) -> Self {
        Meters {
            refusals: registry.family(
                "taillight_key_limited",
                "Pushes and tail streams refused for going over a rate or a stream cap, by API key \
                 name (`anonymous` for clients without a key).",
            ),
            defaults,
            max_all_streams,
            all_streams: Arc::default(),
            keys: Mutex::default(),
            addresses: Mutex::default(),
        }
    }

    /// The meter of the key `name`, with its own `rates` over the defaults.
    pub fn for_key(&self, name: &str, rates: Rates) -> Arc<Meter> {
        let rates = rates.or(self.defaults);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.get(name) {
            // A reload that changed the key's rates starts a new meter.
            Some(m) if m.rates == rates => m.clone(),
            _ => {
                let m = self.meter(format!("API key {name:?}"), name, rates);
                keys.insert(name.to_string(), m.clone());
                m
            }
        }
    }

    /// The meter of a client without a key.
    pub fn for_address(&self, ip: IpAddr) -> Arc<Meter> {
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = addresses.get(&ip) {
            return m.clone();
        }
        if addresses.len() >= ADDRESSES_KEPT {
            // Forget clients that are within their rates and hold nothing.
            addresses.retain(|_, m| Arc::strong_count(m) > 1 || !m.idle());
        }
        let m = self.meter(format!("client address {ip}"), "anonymous", self.defaults);
        addresses.insert(ip, m.clone());
        m
    }

    fn meter(&self, subject: String, key: &str, rates: Rates) -> Arc<Meter> {
        let refusals = self
            .refusals
            .get_or_create(&KeyName {
                key: key.to_string(),
            })
            .clone();
        Arc::new(Meter {
            refusals,
            subject,
            rates,
            entries: rates.entries_per_second.map(Bucket::new),
            bytes: rates.bytes_per_second.map(Bucket::new),
            streams: AtomicUsize::new(0),
            all_streams: self.all_streams.clone(),
            max_all_streams: self.max_all_streams,
        })
    }
}

impl Meter {
    /// Nothing in its buckets' debt and no stream open.
    fn idle(&self) -> bool {
        self.streams.load(Relaxed) == 0
            && self.entries.as_ref().is_none_or(Bucket::full)
            && self.bytes.as_ref().is_none_or(Bucket::full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buckets_refill_at_their_rate_and_big_batches_pass_when_full() {
        let meters = Meters::new(
            Rates {
                entries_per_second: Some(100.0),
                ..Rates::default()
            },
            10,
            &Registry::default(),
        );
        let m = meters.for_key("ci", Rates::default());
        assert!(m.charge(60, 0).is_ok());
        let Err(AccessError::Limited { retry_after, .. }) = m.charge(60, 0) else {
            panic!("over the rate");
        };
        assert_eq!(retry_after, Duration::from_millis(200));
        tokio::time::advance(retry_after).await;
        assert!(m.charge(60, 0).is_ok());
        // Larger than a second's worth: passes once the bucket is full.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(m.charge(500, 0).is_ok());
        assert!(m.charge(1, 0).is_err());
    }

    #[test]
    fn streams_are_capped_per_subject_and_in_all() {
        let meters = Meters::new(
            Rates {
                tail_streams: Some(2),
                ..Rates::default()
            },
            3,
            &Registry::default(),
        );
        let a = meters.for_key("a", Rates::default());
        let b = meters.for_address("10.0.0.1".parse().unwrap());
        let (a1, _a2) = (a.open_stream().unwrap(), a.open_stream().unwrap());
        let e = a.open_stream().unwrap_err().to_string();
        assert!(e.contains("--max-tail-streams-per-key"), "{e}");
        let _b1 = b.open_stream().unwrap();
        let e = b.open_stream().unwrap_err().to_string();
        assert!(e.contains("--max-tail-streams)"), "{e}");
        drop(a1);
        assert!(b.open_stream().is_ok());
    }
}
