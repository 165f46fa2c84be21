//! Who may do what: API keys with scopes and services ([`keys`]), anonymous
//! access for clients that cannot send a key, and the rule that a server
//! reachable from other hosts does not start without keys. The api layer
//! asks [`Access::grant`] for every request; this module decides.

pub mod grant;
pub mod keys;
pub mod meter;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::Registry;
pub use crate::model::Pattern;
pub use grant::{Grant, Scope};
use keys::{KeySet, KeysFile};
use meter::{Meters, Rates};
pub use watch::watch;

/// Access flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccessArgs {
    /// API keys file (`taillight keys create` makes it). With it, every
    /// request needs `authorization: Bearer KEY` except /healthz, /readyz,
    /// gRPC health and the viewer's page. Reloaded when it changes and on
    /// SIGHUP; a bad file at start stops the server, on reload it is
    /// ignored (the old keys stay) and logged.
    #[arg(long, env = "TAILLIGHT_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// Serve a non-loopback address without keys: anyone who reaches the
    /// port may push and read everything. Without this, such a server
    /// refuses to start unless --keys-file is given.
    #[arg(long, env = "TAILLIGHT_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Scopes of requests that carry no key when keys are required
    /// (comma-separated), e.g. `push` to keep clients that cannot send a key
    /// (the seed's /log/set senders) working. None by default.
    #[arg(long, env = "TAILLIGHT_ANONYMOUS_SCOPE", value_delimiter = ',', value_parser = Scope::parse)]
    pub anonymous_scope: Vec<Scope>,
    /// Service patterns (`*`, `?`) anonymous requests are limited to,
    /// comma-separated; all services when none are given.
    #[arg(long, env = "TAILLIGHT_ANONYMOUS_SERVICES", value_delimiter = ',')]
    pub anonymous_services: Vec<String>,
    /// Entries per second each API key may push (and each client address,
    /// for requests without a key); a key's own `entries_per_second` in the
    /// keys file overrides it. Over it: 429 / RESOURCE_EXHAUSTED with a
    /// retry delay. Unlimited by default.
    #[arg(long, env = "TAILLIGHT_KEY_ENTRIES_PER_SECOND")]
    pub key_entries_per_second: Option<f64>,
    /// Bytes per second (entries as encoded) each key or keyless client
    /// address may push; a key's `bytes_per_second` overrides it.
    /// Unlimited by default.
    #[arg(long, env = "TAILLIGHT_KEY_BYTES_PER_SECOND")]
    pub key_bytes_per_second: Option<f64>,
    /// Tail streams (gRPC, SSE, WebSocket) each key or keyless client
    /// address may hold open; a key's `tail_streams` overrides it.
    #[arg(
        long,
        env = "TAILLIGHT_MAX_TAIL_STREAMS_PER_KEY",
        default_value_t = 512
    )]
    pub max_tail_streams_per_key: usize,
    /// Tail streams open on the server at most.
    #[arg(long, env = "TAILLIGHT_MAX_TAIL_STREAMS", default_value_t = 4096)]
    pub max_tail_streams: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No key, or one that is not (or no longer) valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid key that does not cover the request.
    #[error("{0}")]
    Denied(String),
    /// The keys file cannot be read or is not valid.
    #[error("keys file {0}")]
    KeysFile(String),
    /// A configuration that would leave the server open by accident.
    #[error("{0}")]
    Config(String),
    /// Over a rate or a cap; may pass after `retry_after`.
    #[error("{message}")]
    Limited {
        message: String,
        retry_after: Duration,
    },
}

/// Per-key counts on `/metrics`, by the key's name (never the key).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyOutcome {
    key: String,
    outcome: &'static str,
}

/// The server's access policy.
pub struct Access {
    /// The current keys; `None` when the server requires none.
    keys: Option<Arc<RwLock<Arc<KeySet>>>>,
    /// Where the keys come from, for reloads.
    path: Option<PathBuf>,
    /// What a request without a key may do when keys are required.
    anonymous: Option<Grant>,
    /// Each key's and keyless address's rates and streams.
    meters: Meters,
    /// Requests by key name and outcome.
    requests: Family<KeyOutcome, Counter>,
    /// Reloads of the keys file that failed (the old keys stayed).
    reload_failures: Counter,
}

impl Access {
    /// The policy for a server listening on `listen`. Fails closed: a bad
    /// keys file, or a non-loopback address with no keys and no explicit
    /// opt-out, is an error.
    pub fn new(
        args: &AccessArgs,
        listen: SocketAddr,
        registry: &Registry,
    ) -> Result<Self, AccessError> {
        let keys = match &args.keys_file {
            Some(path) => Some(Arc::new(RwLock::new(load(path)?))),
            None if listen.ip().is_loopback() || args.allow_unauthenticated => None,
            None => {
                return Err(AccessError::Config(format!(
                    "refusing to serve {listen} without API keys: anyone who can reach it could read and \
                     write every log. Create a key with `taillight keys create --scope push,read \
                     --keys-file keys.toml` and start with --keys-file keys.toml (TAILLIGHT_KEYS_FILE), or \
                     accept an open server with --allow-unauthenticated"
                )));
            }
        };
        let anonymous = if args.anonymous_scope.is_empty() {
            None
        } else {
            let services = (!args.anonymous_services.is_empty())
                .then(|| {
                    args.anonymous_services
                        .iter()
                        .map(|p| Pattern::parse(p))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|e| AccessError::Config(format!("--anonymous-services: {e}")))?;
            Some(Grant::new(
                "anonymous",
                args.anonymous_scope.clone(),
                services,
            ))
        };
        let requests = registry.family(
            "taillight_key_requests",
            "Requests by API key name and outcome (allowed, unauthenticated, denied).",
        );
        let reload_failures = registry.counter(
            "taillight_keys_reload_failures",
            "Reloads of the keys file that failed; the keys before stay in force.",
        );
        if let Some(set) = &keys {
            let set = set.clone();
            registry.gauge_fn(
                "taillight_keys_active",
                "API keys that can be used.",
                move || set.read().map(|s| s.active() as i64).unwrap_or(0),
            );
        }
        let defaults = Rates {
            entries_per_second: args.key_entries_per_second,
            bytes_per_second: args.key_bytes_per_second,
            tail_streams: Some(args.max_tail_streams_per_key),
        };
        Ok(Access {
            keys,
            path: args.keys_file.clone(),
            anonymous,
            meters: Meters::new(defaults, args.max_tail_streams, registry),
            requests,
            reload_failures,
        })
    }

    /// Whether requests need a key at all.
    pub fn required(&self) -> bool {
        self.keys.is_some()
    }

    /// The grant of a request that carried `key` (or none).
    /// The rights of a request with `key` (or none) from `ip`, metered
    /// per key, or per address without one.
    pub fn grant(&self, key: Option<&str>, ip: Option<IpAddr>) -> Result<Grant, AccessError> {
        let Some(keys) = &self.keys else {
            return Ok(self.open(ip));
        };
        let result = match (key, &self.anonymous) {
            (Some(k), _) => current(keys).grant(k).map(|g| {
                let meter = self.meters.for_key(&g.name, g.rates);
                g.metered(meter)
            }),
            (None, Some(anon)) => Ok(self.by_address(anon.clone(), ip)),
            (None, None) => Err(AccessError::Unauthenticated(
                "an API key is required: send `authorization: Bearer KEY`".into(),
            )),
        };
        if let Err(e) = &result {
            self.count(
                "unknown",
                if matches!(e, AccessError::Unauthenticated(_)) {
                    "unauthenticated"
                } else {
                    "denied"
                },
            );
        }
        result
    }

    /// The rights of a request on a server that requires no keys: all of
    /// them, metered per client address.
    pub fn open(&self, ip: Option<IpAddr>) -> Grant {
        self.by_address(Grant::everything(), ip)
    }

    fn by_address(&self, grant: Grant, ip: Option<IpAddr>) -> Grant {
        match ip {
            Some(ip) => grant.metered(self.meters.for_address(ip)),
            None => grant,
        }
    }

    pub fn count(&self, key: &str, outcome: &'static str) {
        if self.keys.is_some() {
            self.requests
                .get_or_create(&KeyOutcome {
                    key: key.to_string(),
                    outcome,
                })
                .inc();
        }
    }

    /// Reads the keys file again; on failure the keys before stay.
    pub fn reload(&self) -> Result<usize, AccessError> {
        let (Some(keys), Some(path)) = (&self.keys, &self.path) else {
            return Ok(0);
        };
        match load(path) {
            Ok(new) => {
                let n = new.active();
                if let Ok(mut k) = keys.write() {
                    *k = new;
                }
                Ok(n)
            }
            Err(e) => {
                self.reload_failures.inc();
                Err(e)
            }
        }
    }

    fn keys_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

fn load(path: &Path) -> Result<Arc<KeySet>, AccessError> {
    let set = KeysFile::read(path)?.check().map_err(|e| match e {
        AccessError::KeysFile(m) => AccessError::KeysFile(format!("{}: {m}", path.display())),
        other => other,
    })?;
    Ok(Arc::new(set))
}

/// The keys in force; a poisoned lock still holds the last good set.
fn current(keys: &RwLock<Arc<KeySet>>) -> Arc<KeySet> {
    match keys.read() {
        Ok(k) => k.clone(),
        Err(p) => p.into_inner().clone(),
    }
}
