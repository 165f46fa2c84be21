//! Alerts: rules over the stored entries, each a filter and a condition,
//! that POST to a webhook when they fire and when they resolve.
//!
//! Rules come from `--alerts-file` (TOML, see [`rules`]), read again when
//! it changes: a bad file at start-up stops the server, a bad edit keeps
//! the rules before it. They are evaluated on the records the node follows
//! from the store ([`Hub::follow`]: the live feed, holes repaired from the
//! store), never by polling it. In the Kafka mode one node evaluates, the
//! holder of a Redis lease, so a rule fires once however many nodes run.
//!
//! - [`rules`]: the file; [`state`]: one rule's evaluation;
//!   [`deliver`]: bodies and retries; [`metrics`].

pub mod deliver;
mod metrics;
pub mod rules;
pub mod state;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Sink, SinkContext, SinkError};
use crate::model::{Filter, time};
use crate::net::Cluster;
use crate::net::backoff::Backoff;
use crate::net::redis::Link;
use crate::net::redis::lease::{Lease, next_term};
use crate::pipeline::follow::{Followed, OnSkip};
use crate::pipeline::hub::Hub;
use crate::storage::{Query, Store, StoreError};
use deliver::Deliverer;
use metrics::AlertMetrics;
use rules::Rule;
use state::RuleState;

/// How long the evaluator's lease lasts without renewal: how long alerts
/// may go unevaluated after their node died before another takes over.
const LEASE_TTL: Duration = Duration::from_secs(6);
/// How often every rule is looked at without new entries: absences and
/// resolutions are noticed within this.
const TICK: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often the rules file's modification time and size are looked at.
const POLL: Duration = Duration::from_secs(1);

/// The alerts' flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertsArgs {
    /// TOML file of alert rules (`[[alert]]` tables: name, the filter's
    /// services, levels, min_level, tags, text, then threshold or absent,
    /// window, repeat, webhook, format); see the README. Read again when it
    /// changes. Off when unset.
    #[arg(long, env = "TAILLIGHT_ALERTS_FILE")]
    pub alerts_file: Option<PathBuf>,
    /// Where users open the viewer: notifications link to it.
    #[arg(
        long,
        env = "TAILLIGHT_PUBLIC_URL",
        default_value = DEFAULT_PUBLIC_URL
    )]
    pub public_url: String,
}

const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:50051";

impl Default for AlertsArgs {
    fn default() -> Self {
        AlertsArgs {
            alerts_file: None,
            public_url: DEFAULT_PUBLIC_URL.into(),
        }
    }
}

impl AlertsArgs {
    /// The alerts sink, when --alerts-file asks for one; its rules are
    /// checked here, so a bad file stops the server before it starts.
    pub fn build(&self, cluster: &Cluster) -> Result<Option<Box<dyn Sink>>, SinkError> {
        let Some(path) = self.alerts_file.clone() else {
            return Ok(None);
        };
        // Stamped before reading: an edit from here on is read again.
        let stamp = stamp(&path);
        let rules = read(&path).map_err(SinkError::Config)?;
        let lease = match (cluster.shared, &cluster.redis_url) {
            (false, _) => None,
            (true, None) => {
                return Err(SinkError::Config("--alerts-file with --kafka-brokers needs --redis-url: one node of the cluster evaluates the rules, holding a lease in Redis".into()));
            }
            (true, Some(url)) => {
                let client = ::redis::Client::open(url.as_str())
                    .map_err(|e| SinkError::Config(format!("--redis-url: {e}")))?;
                Some((client, format!("{}alerts:lease", cluster.redis_prefix)))
            }
        };
        Ok(Some(Box::new(AlertsSink {
            path,
            stamp,
            rules,
            public_url: self.public_url.clone(),
            lease,
        })))
    }
}

/// A file's modification time and size: what tells that it changed.
type Stamp = Option<(Option<std::time::SystemTime>, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len()))
}

/// The rules of the file at `path`, or why not, naming the file.
fn read(path: &std::path::Path) -> Result<Vec<Rule>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--alerts-file {}: {e}", path.display()))?;
    rules::parse(&text).map_err(|e| format!("--alerts-file {}: {e}", path.display()))
}

/// The alerts, as built from their flags.
struct AlertsSink {
    /// The rules file, read again when it changes.
    path: PathBuf,
    /// Its modification time and size when it was read at start-up.
    stamp: Stamp,
    /// The rules it held at start-up.
    rules: Vec<Rule>,
    public_url: String,
    /// The Redis client and key of the lease, in the Kafka mode.
    lease: Option<(::redis::Client, String)>,
}

#[async_trait]
impl Sink for AlertsSink {
    fn name(&self) -> &'static str {
        "alerts"
    }

    async fn run(self: Box<Self>, cx: SinkContext) {
        let this = *self;
        let metrics = AlertMetrics::new(&cx.registry);
        metrics.rules.store(
            this.rules.len() as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let (rules_tx, rules) = watch::channel(shared_rules(this.rules));
        let reload = reload(
            this.path,
            this.stamp,
            rules_tx,
            metrics.clone(),
            cx.stop.clone(),
        );
        let deliverer = Deliverer::new(
            &this.public_url,
            cx.store.clone(),
            metrics.clone(),
            cx.stop.clone(),
        );
        let evaluator = Evaluator {
            hub: cx.hub,
            store: cx.store,
            deliverer,
            metrics,
            rules,
        };
        let Some((client, key)) = this.lease else {
            tokio::join!(reload, evaluator.terms(None, cx.stop));
            return;
        };
        let link = match Link::new(client) {
            Ok(link) => link,
            Err(e) => {
                tracing::error!(error = %e, "alerts: no Redis link for the lease; no rule is evaluated");
                return;
            }
        };
        let (held, holding) = Lease::new(link, key, LEASE_TTL).hold(cx.stop.clone());
        tokio::join!(reload, holding, evaluator.terms(Some(held), cx.stop));
    }
}

fn shared_rules(rules: Vec<Rule>) -> Vec<Arc<Rule>> {
    rules.into_iter().map(Arc::new).collect()
}

/// Reads the rules file again whenever it changes, until `stop`; a refused
/// edit keeps the rules in force and says why.
async fn reload(
    path: PathBuf,
    mut seen: Stamp,
    rules: watch::Sender<Vec<Arc<Rule>>>,
    metrics: AlertMetrics,
    stop: CancellationToken,
) {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match read(&path) {
            Ok(new) => {
                tracing::info!(rules = new.len(), "alert rules reloaded");
                metrics.rules.store(new.len() as i64, Relaxed);
                metrics.file_valid.store(1, Relaxed);
                rules.send_replace(shared_rules(new));
            }
            Err(e) => {
                tracing::error!(error = %e, "the alerts file was not reloaded; the rules before stay in force");
                metrics.reload_failures.inc();
                metrics.file_valid.store(0, Relaxed);
            }
        }
    }
}

/// What evaluates the rules while this node holds the role.
struct Evaluator {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    deliverer: Deliverer,
    metrics: AlertMetrics,
    rules: watch::Receiver<Vec<Arc<Rule>>>,
}

impl Evaluator {
    /// Evaluates whenever this node has the role (always, with no lease),
    /// until `stop`.
    async fn terms(mut self, mut held: Option<watch::Receiver<bool>>, stop: CancellationToken) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
        loop {
            let Some(term) = next_term(&mut held, &stop).await else {
                return;
            };
            self.metrics.holder.store(1, Relaxed);
            let end = self.term(&term).await;
            term.cancel();
            self.metrics.holder.store(0, Relaxed);
            if stop.is_cancelled() {
                return;
            }
            match end {
                Ok(()) => backoff.reset(),
                Err(e) => tracing::error!(error = %e, "alerts stopped evaluating; starting again"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff.step()) => {}
            }
        }
    }

    /// One holder's evaluation, from the newest record stored on.
    async fn term(&mut self, term: &CancellationToken) -> Result<(), StoreError> {
        let newest = self
            .store
            .query(Query {
                limit: 1,
                ..Default::default()
            })
            .await?;
        let after = newest.records.first().map_or(0, |r| r.id);
        let mut states = States::default();
        states.replace(&self.rules.borrow_and_update(), time::now_micros());
        let records = self
            .hub
            .follow(after, Filter::default(), OnSkip::Repair, term.clone());
        let mut records = std::pin::pin!(records);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = term.cancelled() => return Ok(()),
                changed = self.rules.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    states.replace(&self.rules.borrow_and_update(), time::now_micros());
                }
                item = records.next() => match item {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(Followed::Records(batch))) => {
                        for r in batch.iter() {
                            states.observe(r);
                        }
                        states.evaluate(time::now_micros(), &self.deliverer);
                    }
                    Some(Ok(_)) => {}
                },
                _ = tick.tick() => states.evaluate(time::now_micros(), &self.deliverer),
            }
        }
    }
}

/// Every rule's state, by name.
#[derive(Default)]
struct States(HashMap<String, RuleState>);

impl States {
    /// Takes `rules` in force: a rule unchanged keeps its state (an edit of
    /// another rule does not make it fire again), a new or changed one
    /// starts afresh at `now_us`.
    fn replace(&mut self, rules: &[Arc<Rule>], now_us: i64) {
        let mut old = std::mem::take(&mut self.0);
        for rule in rules {
            let state = match old.remove(&rule.name) {
                Some(s) if *s.rule == **rule => s,
                _ => RuleState::new(rule.clone(), now_us),
            };
            self.0.insert(rule.name.clone(), state);
        }
    }

    fn observe(&mut self, r: &crate::proto::LogRecord) {
        for s in self.0.values_mut() {
            s.observe(r);
        }
    }

    fn evaluate(&mut self, now_us: i64, deliverer: &Deliverer) {
        for s in self.0.values_mut() {
            if let Some(n) = s.evaluate(now_us) {
                deliverer.send(n);
            }
        }
    }
}
