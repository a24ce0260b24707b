//! The server's counters and histograms, rendered in Prometheus' text format (version
//! 0.0.4) for `GET /metrics`: requests by endpoint and status, errors by endpoint, request
//! latency, inputs and forward-pass batch sizes by tower, queue depth, open connections.
//!
//! Not here: what is measured when (the callers in `routes.rs`, `batcher.rs`, `http.rs`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The endpoints requests are counted under (anything else is "other").
pub const ENDPOINTS: [&str; 5] = [
    "/v1/embeddings",
    "/v1/classify",
    "/health",
    "/metrics",
    "other",
];

/// The towers batches are counted under.
pub const TOWERS: [&str; 2] = ["text", "image"];

const LATENCY_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];
const BATCH_BOUNDS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A cumulative histogram with fixed upper bounds.
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then +Inf.
    counts: Vec<AtomicU64>,
    /// The sum of observations, in millionths (latencies in microseconds, sizes x 1e6).
    sum_micro: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micro
            .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".into(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cum}");
        }
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cum}");
    }
}

/// Everything `/metrics` reports except queue depths (read from the queues when rendered).
pub struct Metrics {
    /// (endpoint index, status) -> count.
    requests: Mutex<BTreeMap<(usize, u16), u64>>,
    latency: Vec<Histogram>,
    batch: Vec<Histogram>,
    inputs: Vec<AtomicU64>,
    pub connections: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            latency: ENDPOINTS
                .iter()
                .map(|_| Histogram::new(&LATENCY_BOUNDS))
                .collect(),
            batch: TOWERS
                .iter()
                .map(|_| Histogram::new(&BATCH_BOUNDS))
                .collect(),
            inputs: TOWERS.iter().map(|_| AtomicU64::new(0)).collect(),
            connections: AtomicU64::new(0),
        }
    }

    /// The index of `path` in [`ENDPOINTS`].
    pub fn endpoint(path: &str) -> usize {
        ENDPOINTS[..4].iter().position(|&e| e == path).unwrap_or(4)
    }

    /// One finished request.
    pub fn request(&self, endpoint: usize, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((endpoint, status))
            .or_default() += 1;
        self.latency[endpoint].observe(seconds);
    }

    /// One forward pass of `tower` (0 text, 1 image) over `n` inputs.
    pub fn batch(&self, tower: usize, n: usize) {
        self.batch[tower].observe(n as f64);
        self.inputs[tower].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The text format; `queues` gives (depth, capacity) per tower, in inputs.
    pub fn render(&self, queues: [(usize, usize); 2]) -> String {
        let mut out = String::new();
        let counts = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str(
            "# HELP clip_requests_total Requests answered, by endpoint and status code.\n",
        );
        out.push_str("# TYPE clip_requests_total counter\n");
        for ((e, code), n) in &counts {
            let _ = writeln!(
                out,
                "clip_requests_total{{endpoint=\"{}\",code=\"{code}\"}} {n}",
                ENDPOINTS[*e]
            );
        }
        out.push_str("# HELP clip_request_errors_total Requests answered with a status of 400 or more, by endpoint.\n");
        out.push_str("# TYPE clip_request_errors_total counter\n");
        for (e, name) in ENDPOINTS.iter().enumerate() {
            let n: u64 = counts
                .iter()
                .filter(|((ce, code), _)| *ce == e && *code >= 400)
                .map(|(_, n)| n)
                .sum();
            let _ = writeln!(out, "clip_request_errors_total{{endpoint=\"{name}\"}} {n}");
        }
        out.push_str("# HELP clip_request_duration_seconds Time from a request's arrival to its response, by endpoint.\n");
        out.push_str("# TYPE clip_request_duration_seconds histogram\n");
        for (e, name) in ENDPOINTS.iter().enumerate() {
            self.latency[e].render(
                &mut out,
                "clip_request_duration_seconds",
                &format!("endpoint=\"{name}\""),
            );
        }
        out.push_str("# HELP clip_batch_size Inputs per forward pass, by tower.\n");
        out.push_str("# TYPE clip_batch_size histogram\n");
        for (t, name) in TOWERS.iter().enumerate() {
            self.batch[t].render(&mut out, "clip_batch_size", &format!("tower=\"{name}\""));
        }
        out.push_str("# HELP clip_inputs_total Inputs embedded, by tower.\n");
        out.push_str("# TYPE clip_inputs_total counter\n");
        for (t, name) in TOWERS.iter().enumerate() {
            let n = self.inputs[t].load(Ordering::Relaxed);
            let _ = writeln!(out, "clip_inputs_total{{tower=\"{name}\"}} {n}");
        }
        out.push_str("# HELP clip_queue_depth Inputs waiting for a forward pass, by tower.\n");
        out.push_str("# TYPE clip_queue_depth gauge\n");
        for (t, name) in TOWERS.iter().enumerate() {
            let _ = writeln!(out, "clip_queue_depth{{tower=\"{name}\"}} {}", queues[t].0);
        }
        out.push_str(
            "# HELP clip_queue_capacity Inputs a tower's queue holds before refusing requests.\n",
        );
        out.push_str("# TYPE clip_queue_capacity gauge\n");
        for (t, name) in TOWERS.iter().enumerate() {
            let _ = writeln!(
                out,
                "clip_queue_capacity{{tower=\"{name}\"}} {}",
                queues[t].1
            );
        }
        out.push_str("# HELP clip_open_connections Open HTTP connections.\n");
        out.push_str("# TYPE clip_open_connections gauge\n");
        let _ = writeln!(
            out,
            "clip_open_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::new();
        m.batch(1, 3);
        m.batch(1, 8);
        m.batch(1, 1000);
        m.request(0, 200, 0.02);
        m.request(0, 429, 0.001);
        let text = m.render([(0, 128), (5, 128)]);
        assert!(text.contains("clip_batch_size_bucket{tower=\"image\",le=\"4\"} 1\n"));
        assert!(text.contains("clip_batch_size_bucket{tower=\"image\",le=\"8\"} 2\n"));
        assert!(text.contains("clip_batch_size_bucket{tower=\"image\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("clip_batch_size_sum{tower=\"image\"} 1011\n"));
        assert!(text.contains("clip_inputs_total{tower=\"image\"} 1011\n"));
        assert!(text.contains("clip_requests_total{endpoint=\"/v1/embeddings\",code=\"429\"} 1\n"));
        assert!(text.contains("clip_request_errors_total{endpoint=\"/v1/embeddings\"} 1\n"));
        assert!(text.contains("clip_queue_depth{tower=\"image\"} 5\n"));
    }
}
