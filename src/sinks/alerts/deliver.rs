//! Sending notifications: the body a rule's format asks for, POSTed to its
//! webhook with retries and backoff, and kept in the store as a firing
//! (before the first attempt, and again with how delivery went).
//! Deliveries run beside evaluation, a bounded number at a time, so a slow
//! receiver holds up neither the rules nor other receivers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::metrics::AlertMetrics;
use super::rules::{Condition, Format, Rule};
use super::state::{Notice, Phase};
use crate::model::firing::{self, Firing};
use crate::model::json::RecordOut;
use crate::model::{level, time};
use crate::net::backoff::Backoff;
use crate::storage::{Document, Store};

/// Attempts at one notification before it counts as failed.
const ATTEMPTS: u32 = 5;
/// Pause before the second attempt; doubled after each failure.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// One attempt's limit, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries under way at once; more wait their turn.
const CONCURRENT: usize = 16;
/// Deliveries waiting or under way; past it a notification is dropped and
/// counted as failed rather than held without bound.
pub const MOST_PENDING: usize = 1_000;
/// Firings the store keeps: the older ones are deleted as new ones come,
/// every [`TRIM_EVERY`] writes.
const KEPT_FIRINGS: u32 = 10_000;
const TRIM_EVERY: u64 = 100;

/// Sends notices, each on a task of its own.
#[derive(Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    /// How the viewer is reached, for the notification's `url`.
    public_url: Arc<str>,
    /// Where firings are kept.
    store: Arc<dyn Store>,
    /// Firings written, for trimming them now and then.
    written: Arc<std::sync::atomic::AtomicU64>,
    /// Deliveries under way at once.
    running: Arc<Semaphore>,
    /// Deliveries not finished (permits taken when one is handed over).
    pending: Arc<Semaphore>,
    metrics: AlertMetrics,
    /// Ends retries at shutdown.
    stop: CancellationToken,
}

impl Deliverer {
    pub fn new(
        public_url: &str,
        store: Arc<dyn Store>,
        metrics: AlertMetrics,
        stop: CancellationToken,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .unwrap_or_default();
        Deliverer {
            http,
            public_url: public_url.into(),
            store,
            written: Arc::default(),
            running: Arc::new(Semaphore::new(CONCURRENT)),
            pending: Arc::new(Semaphore::new(MOST_PENDING)),
            metrics,
            stop,
        }
    }

    /// Sends `n` in the background.
    pub fn send(&self, n: Notice) {
        self.metrics.notified(&n.rule.name, n.phase);
        let Ok(slot) = self.pending.clone().try_acquire_owned() else {
            tracing::warn!(alert = %n.rule.name, "alert notification dropped: {MOST_PENDING} deliveries are pending");
            self.metrics.failed(&n.rule.name);
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(_running) = this.running.acquire().await else {
                return;
            };
            this.deliver(n).await;
        });
    }

    async fn deliver(&self, n: Notice) {
        let url = viewer_url(&n.rule, n.at_us, &self.public_url);
        let body = body(&n, &url);
        let mut kept = firing_of(&n, url);
        self.keep(&kept).await;
        let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
        let mut why = String::new();
        for attempt in 1..=ATTEMPTS {
            kept.attempts = attempt;
            match self.post(&n.rule.webhook, &body).await {
                Ok(()) => {
                    kept.delivery = "delivered".into();
                    self.keep(&kept).await;
                    return;
                }
                Err(e) => why = e,
            }
            tracing::debug!(alert = %n.rule.name, attempt, error = %why, "alert notification not delivered yet");
            if attempt < ATTEMPTS {
                tokio::select! {
                    _ = self.stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff.step()) => {}
                }
            }
        }
        tracing::warn!(alert = %n.rule.name, error = %why, "alert notification not delivered");
        self.metrics.failed(&n.rule.name);
        kept.delivery = format!("failed: {why}");
        self.keep(&kept).await;
    }

    /// Writes `f` to the store; a store that cannot take it is logged, and
    /// delivery goes on.
    async fn keep(&self, f: &Firing) {
        let body = match serde_json::to_string(f) {
            Ok(b) => b,
            Err(e) => {
                return tracing::error!(error = %e, "an alert firing could not be written as JSON");
            }
        };
        let doc = Document {
            kind: firing::KIND.into(),
            name: f.name(),
            body,
            updated_us: time::now_micros(),
        };
        if let Err(e) = self.store.put_document(doc).await {
            tracing::warn!(alert = %f.alert, error = %e, "an alert firing was not kept in the store");
        }
        let n = self
            .written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(TRIM_EVERY)
            && let Err(e) = self.store.trim_documents(firing::KIND, KEPT_FIRINGS).await
        {
            tracing::warn!(error = %e, "old alert firings were not deleted");
        }
    }

    async fn post(&self, url: &str, body: &Value) -> Result<(), String> {
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(format!("the webhook answered {s}")),
        }
    }
}

/// What the store keeps of notice `n`, before its delivery.
fn firing_of(n: &Notice, url: String) -> Firing {
    Firing {
        alert: n.rule.name.clone(),
        state: phase_name(n.phase).into(),
        condition: condition(&n.rule),
        services: n.rule.filter.services.clone(),
        count: n.count,
        first_id: n.first_id,
        last_id: n.last_id,
        at_us: n.at_us,
        delivery: "pending".into(),
        attempts: 0,
        url,
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Firing => "firing",
        Phase::Resolved => "resolved",
    }
}

/// The notification's body in the rule's format, linking to `url`.
pub fn body(n: &Notice, url: &str) -> Value {
    match n.rule.format {
        Format::Json => json!({
            "alert": n.rule.name,
            "state": phase_name(n.phase),
            "condition": condition(&n.rule),
            "count": n.count,
            "window": format!("{}s", n.rule.window.as_secs()),
            "first_id": n.first_id,
            "last_id": n.last_id,
            "at": time::rfc3339(n.at_us),
            "samples": n.samples.iter().map(RecordOut::from).collect::<Vec<_>>(),
            "url": url,
        }),
        Format::Slack => json!({ "text": slack_text(n, url) }),
    }
}

/// The rule's condition in words.
fn condition(rule: &Rule) -> String {
    let window = format!("{}s", rule.window.as_secs());
    match rule.condition {
        Condition::AtLeast(1) => format!("any matching entry within {window}"),
        Condition::AtLeast(n) => format!("at least {n} matching entries within {window}"),
        Condition::Absent => format!("no matching entry for {window}"),
    }
}

fn slack_text(n: &Notice, url: &str) -> String {
    let head = match n.phase {
        Phase::Firing => format!(":rotating_light: *{}* is firing", n.rule.name),
        Phase::Resolved => format!(":white_check_mark: *{}* resolved", n.rule.name),
    };
    let mut text = format!(
        "{head}: {} ({} in the window). <{url}|Open in taillight>",
        condition(&n.rule),
        n.count
    );
    for r in &n.samples {
        let line: String = r.message.chars().take(300).collect();
        text.push_str(&format!(
            "\n> `{}` {} {}: {}",
            r.id,
            level::name(r.level),
            r.service,
            line.replace('\n', " ")
        ));
    }
    text
}

/// The viewer on the rule's filter, over the window up to the moment.
pub fn viewer_url(rule: &Rule, at_us: i64, public_url: &str) -> String {
    let f = &rule.filter;
    let from = at_us.saturating_sub(rule.window.as_micros().min(i64::MAX as u128) as i64);
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(s) = f.services.first() {
        q.append_pair("service", s);
    }
    if !f.tags.is_empty() {
        q.append_pair("tags", &f.tags.join(","));
    }
    let levels: Vec<&str> = match (f.levels.is_empty(), f.min_level) {
        (false, _) => f.levels.iter().map(|&l| level::name(l)).collect(),
        (true, 0) => Vec::new(),
        (true, min) => (min..=6).map(level::name).collect(),
    };
    if !levels.is_empty() {
        q.append_pair("levels", &levels.join(","));
    }
    if !f.text.is_empty() {
        q.append_pair("q", &f.text);
    }
    q.append_pair("range", "custom");
    q.append_pair("from", &time::rfc3339(from));
    // Just past the moment, so the entry that decided it is inside.
    q.append_pair("to", &time::rfc3339(at_us.saturating_add(1_000_000)));
    q.append_pair("history", "1");
    format!("{}/?{}", public_url.trim_end_matches('/'), q.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Filter;
    use crate::proto::LogRecord;

    fn notice(format: Format) -> Notice {
        Notice {
            rule: Arc::new(Rule {
                name: "payments errors".into(),
                filter: Filter {
                    services: vec!["payments".into()],
                    min_level: 5,
                    text: "time out".into(),
                    ..Default::default()
                },
                condition: Condition::AtLeast(2),
                window: Duration::from_secs(60),
                repeat: Duration::from_secs(300),
                webhook: "http://h/".into(),
                format,
            }),
            phase: Phase::Firing,
            at_us: 1_700_000_000_000_000,
            count: 2,
            first_id: Some(7),
            last_id: Some(9),
            samples: vec![LogRecord {
                id: 9,
                service: "payments".into(),
                level: 5,
                message: "upstream time out".into(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn json_and_slack_bodies_carry_the_facts_and_a_link() {
        let n = notice(Format::Json);
        let v = body(
            &n,
            &viewer_url(&n.rule, n.at_us, "http://tl.example:50051/"),
        );
        assert_eq!(v["alert"], "payments errors");
        assert_eq!(
            (v["state"].as_str(), v["count"].as_u64()),
            (Some("firing"), Some(2))
        );
        assert_eq!(
            (v["first_id"].as_u64(), v["last_id"].as_u64()),
            (Some(7), Some(9))
        );
        assert_eq!(v["samples"][0]["message"], "upstream time out");
        let url = v["url"].as_str().expect("url");
        assert!(url.starts_with("http://tl.example:50051/?service=payments&levels=ERROR%2CFATAL&q=time+out&range=custom&from="), "{url}");
        let n = notice(Format::Slack);
        let s = body(&n, &viewer_url(&n.rule, n.at_us, "http://tl"));
        let text = s["text"].as_str().expect("text");
        assert!(text.contains("*payments errors* is firing"), "{text}");
        assert!(
            text.contains("at least 2 matching entries within 60s"),
            "{text}"
        );
        assert!(
            text.contains("upstream time out") && text.contains("|Open in taillight>"),
            "{text}"
        );
    }
}
