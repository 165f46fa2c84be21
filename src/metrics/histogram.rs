//! A histogram with fixed buckets, per label value, that takes many
//! observations at once: the writer adds a batch's entry delays with one
//! atomic add per bucket the batch touches instead of one lock per entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// One histogram per value of the label `label`, over the same buckets.
#[derive(Clone, Debug)]
pub struct Histogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The label telling the series apart, e.g. `point`.
    label: &'static str,
    /// Its values, one series each.
    values: Vec<&'static str>,
    /// Upper bounds, ascending; a `+Inf` bucket follows.
    bounds: Vec<f64>,
    /// Per series: each bucket's own count (not cumulative), then `+Inf`.
    counts: Vec<Vec<AtomicU64>>,
    /// Per series: the sum of observations, in millionths.
    sums: Vec<AtomicU64>,
}

impl Histogram {
    pub fn new(label: &'static str, values: &[&'static str], bounds: &[f64]) -> Self {
        let counts = values
            .iter()
            .map(|_| (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect())
            .collect();
        Histogram {
            inner: Arc::new(Inner {
                label,
                values: values.to_vec(),
                bounds: bounds.to_vec(),
                counts,
                sums: values.iter().map(|_| AtomicU64::new(0)).collect(),
            }),
        }
    }

    /// Adds `observations` to series `series` (an index into the values).
    pub fn observe_many(&self, series: usize, observations: impl IntoIterator<Item = f64>) {
        let inner = &self.inner;
        let mut counts = vec![0u64; inner.bounds.len() + 1];
        let mut sum = 0.0;
        for v in observations {
            sum += v;
            counts[inner.bounds.partition_point(|le| *le < v)] += 1;
        }
        for (bucket, n) in inner.counts[series].iter().zip(counts) {
            if n > 0 {
                bucket.fetch_add(n, Relaxed);
            }
        }
        inner.sums[series].fetch_add((sum * 1e6) as u64, Relaxed);
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &self.inner;
        for (i, value) in inner.values.iter().enumerate() {
            let buckets: Vec<(f64, u64)> = inner
                .bounds
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(inner.counts[i].iter().map(|c| c.load(Relaxed)))
                .collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = inner.sums[i].load(Relaxed) as f64 / 1e6;
            encoder
                .encode_family(&[(inner.label, *value)])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;

    fn line<'a>(text: &'a str, name: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    }

    #[test]
    fn observations_land_in_cumulative_buckets_per_series() {
        let r = Registry::default();
        let h = Histogram::new("point", &["read", "stored"], &[0.002, 0.005, 2.0, 5.0]);
        r.register("delay_seconds", "test", h.clone());
        h.observe_many(0, [0.003, 3.0]);
        h.observe_many(1, [3.0]);
        let text = r.render();
        let bucket = |point: &str, le: &str| {
            line(
                &text,
                &format!("delay_seconds_bucket{{le=\"{le}\",point=\"{point}\"}}"),
            )
        };
        assert_eq!(bucket("read", "0.002"), "0");
        assert_eq!(bucket("read", "0.005"), "1");
        assert_eq!(bucket("read", "2.0"), "1");
        assert_eq!(bucket("read", "5.0"), "2");
        assert_eq!(bucket("read", "+Inf"), "2");
        assert_eq!(bucket("stored", "2.0"), "0");
        assert_eq!(bucket("stored", "+Inf"), "1");
        assert_eq!(line(&text, "delay_seconds_count{point=\"read\"}"), "2");
        let sum: f64 = line(&text, "delay_seconds_sum{point=\"stored\"}")
            .parse()
            .expect("sum");
        assert!((2.99..3.01).contains(&sum), "{sum}");
    }
}
