//! Latencies of calls in an HDR histogram (microseconds, 3 significant digits, up to one
//! hour), summarized as the percentiles the tools report in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::output::round_ms;

/// The highest latency recorded as itself (1 h, in µs); longer ones count as 1 h.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// Recorded latencies.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Self {
        Self(
            Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
                .expect("1 µs .. 1 h with 3 digits is a valid histogram"),
        )
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Self) {
        self.0
            .add(&other.0)
            .expect("histograms with the same bounds add up");
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Median, 99th percentile and maximum in milliseconds; `None` each when nothing was
    /// recorded.
    pub fn percentiles(&self) -> Percentiles {
        let at = |quantile: f64| {
            (self.count() > 0).then(|| round_ms(self.0.value_at_quantile(quantile) as f64 / 1e3))
        };
        Percentiles {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: (self.count() > 0).then(|| round_ms(self.0.max() as f64 / 1e3)),
        }
    }
}

/// The percentiles of the tools' JSON output (`null` when there was no sample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_values() {
        let mut latencies = Latencies::new();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let p = latencies.percentiles();
        let near = |value: Option<f64>, expected: f64| {
            let value = value.expect("samples were recorded");
            assert!(
                (value - expected).abs() <= expected * 0.001,
                "{value} vs {expected}"
            );
        };
        near(p.p50_ms, 50.0);
        near(p.p99_ms, 99.0);
        near(p.max_ms, 100.0);
    }

    #[test]
    fn merge_adds_counts_and_empty_has_no_percentiles() {
        let mut a = Latencies::new();
        assert_eq!(a.percentiles().p50_ms, None);
        let mut b = Latencies::new();
        b.record(Duration::from_micros(300));
        a.merge(&b);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.percentiles().max_ms, Some(0.3));
    }
}
