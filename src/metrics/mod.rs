//! `GET /metrics`: one Prometheus registry per server, into which every
//! component registers its own metrics when it is built (see each
//! component's `*Metrics`), so a new source or sink adds its figures without
//! touching this file. Exposed in the OpenMetrics text format.
//!
//! Counters and gauges are prometheus-client's (one relaxed atomic per
//! event); [`Histogram`] is ours, because the writer observes a whole batch
//! of entry delays at once and should pay per bucket, not per entry.

mod histogram;

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Metric, Registry as Inner};

pub use histogram::Histogram;

/// The content type of [`Registry::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label set of one `kind` label, as `taillight_errors_total` has.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

/// The registry of one server, shared by the components that register into
/// it and the endpoint that renders it.
#[derive(Clone)]
pub struct Registry {
    /// Locked to register (at start-up) and to render (per scrape).
    inner: Arc<Mutex<Inner>>,
    /// `taillight_errors_total{kind}`: one family that several layers count
    /// into, each under its own kinds.
    errors: Family<Kind, Counter>,
    /// Families several components share (each source under its own
    /// label), by name: registered by the first that asks.
    shared: Arc<Mutex<HashMap<String, Box<dyn Any + Send>>>>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut inner = Inner::default();
        let errors = Family::<Kind, Counter>::default();
        inner.register("taillight_errors", "Errors by kind.", errors.clone());
        Registry {
            inner: Arc::new(Mutex::new(inner)),
            errors,
            shared: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Registry {
    /// Adds `metric` as `name` (a counter's `_total` is added by the format).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(name, help, metric);
    }

    /// The counter of errors of `kind`, shown (at 0) from now on.
    pub fn error(&self, kind: &'static str) -> Counter {
        self.errors.get_or_create(&Kind { kind }).clone()
    }

    /// The family registered as `name`, registering it the first time: for
    /// metrics that several components count into under their own labels.
    pub fn family<L, M>(&self, name: &str, help: &str) -> Family<L, M>
    where
        Family<L, M>: Metric + Clone + Default,
        L: Send + 'static,
        M: Send + 'static,
    {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = shared
            .get(name)
            .and_then(|f| f.downcast_ref::<Family<L, M>>())
        {
            return f.clone();
        }
        let family = Family::<L, M>::default();
        self.register(name, help, family.clone());
        shared.insert(name.to_string(), Box::new(family.clone()));
        family
    }

    /// A counter registered as `name`.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let c = Counter::default();
        self.register(name, help, c.clone());
        c
    }

    /// A gauge whose value is read from `read` at every scrape.
    pub fn gauge_fn(&self, name: &str, help: &str, read: impl Fn() -> i64 + Send + Sync + 'static) {
        self.register(name, help, GaugeFn(Arc::new(read)));
    }

    /// Every metric, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &inner) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

/// A gauge sampled when scraped, for figures that live elsewhere (a queue's
/// depth) rather than being counted as they change.
#[derive(Clone)]
struct GaugeFn(Arc<dyn Fn() -> i64 + Send + Sync>);

impl std::fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GaugeFn")
    }
}

impl EncodeMetric for GaugeFn {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&(self.0)())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}
