//! Connection caps, in all and per client address. A connection over a cap
//! is still answered, once, with a refusal that names the cap (a client
//! that is simply dropped cannot tell a full server from a dead one); the
//! refusals themselves have a small cap of their own, beyond which a
//! connection is closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::Registry;

/// Connections being answered with a refusal at once, at most.
const REFUSING_MAX: usize = 64;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Why a connection is refused, for the client: which cap, and its value.
#[derive(Debug, Clone)]
pub struct Refused(pub Arc<str>);

/// What the caps allow a new connection.
pub enum Admission {
    /// Served; the permit is held as long as the connection is open.
    Open(Permit),
    /// Answered once with the refusal, then closed.
    Refuse(Permit, Refused),
    /// Closed at once: too many refusals are under way.
    Drop,
}

#[derive(Default)]
struct Counts {
    open: usize,
    refusing: usize,
    by_address: HashMap<IpAddr, usize>,
}

pub struct Limits {
    total: usize,
    per_address: usize,
    counts: Mutex<Counts>,
    refused: Family<Reason, Counter>,
}

impl Limits {
    pub fn new(total: usize, per_address: usize, registry: &Registry) -> Arc<Self> {
        let limits = Arc::new(Limits {
            total,
            per_address,
            counts: Mutex::default(),
            refused: registry.family(
                "taillight_connections_refused",
                "Connections refused, by the cap they were over (total, per_address) or `dropped` \
                 when too many refusals were under way.",
            ),
        });
        let seen = limits.clone();
        registry.gauge_fn(
            "taillight_connections_open",
            "Client connections open on the listener.",
            move || seen.counts().open as i64,
        );
        limits
    }

    /// Counts a new connection from `ip` in, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let mut c = self.counts();
        let from_ip = c.by_address.get(&ip).copied().unwrap_or(0);
        let over = if c.open >= self.total {
            Some((
                "total",
                format!(
                    "the server has {} connections open, its most (--max-connections)",
                    self.total
                ),
            ))
        } else if from_ip >= self.per_address {
            Some((
                "per_address",
                format!(
                    "{ip} has {} connections open, the most one address may (--max-connections-per-address)",
                    self.per_address
                ),
            ))
        } else {
            None
        };
        let Some((reason, message)) = over else {
            c.open += 1;
            *c.by_address.entry(ip).or_default() += 1;
            return Admission::Open(self.permit(Some(ip)));
        };
        if c.refusing >= REFUSING_MAX {
            drop(c);
            self.count("dropped");
            return Admission::Drop;
        }
        c.refusing += 1;
        drop(c);
        self.count(reason);
        Admission::Refuse(self.permit(None), Refused(message.into()))
    }

    fn permit(self: &Arc<Self>, ip: Option<IpAddr>) -> Permit {
        Permit {
            limits: self.clone(),
            ip,
        }
    }

    fn count(&self, reason: &'static str) {
        self.refused.get_or_create(&Reason { reason }).inc();
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One admitted (or refusing) connection, released when dropped.
pub struct Permit {
    limits: Arc<Limits>,
    /// The address an open connection counts against; `None` for a refusal.
    ip: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limits.counts();
        let Some(ip) = self.ip else {
            c.refusing -= 1;
            return;
        };
        c.open -= 1;
        if let Some(n) = c.by_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_in_and_out() {
        let limits = Limits::new(3, 2, &Registry::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limits.admit(a);
        let _second = limits.admit(a);
        assert!(
            matches!(limits.admit(a), Admission::Refuse(_, Refused(m)) if m.contains("--max-connections-per-address"))
        );
        let _third = limits.admit(b);
        assert!(
            matches!(limits.admit(b), Admission::Refuse(_, Refused(m)) if m.contains("--max-connections)"))
        );
        drop(first);
        assert!(matches!(limits.admit(a), Admission::Open(_)));
        assert_eq!(limits.counts().refusing, 0);
    }
}
