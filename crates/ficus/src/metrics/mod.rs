//! Live figures of the running server: requests, status classes and latency per route and per
//! backend, canary outcomes, and requests in flight. `/metrics` renders them for Prometheus
//! (`prometheus`), the dashboard and `ficus routes` read them as JSON (`crate::admin`).
//!
//! Counting is lock-free on the request path once a route's counters exist; nothing here may
//! block or allocate per request beyond the first request of a route.

pub(crate) mod prometheus;
mod snapshot;

pub(crate) use snapshot::{FiguresSnapshot, RouteSnapshot, Snapshot};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Per-route shadow figures.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RouteStats {
    pub compared: u64,
    pub matched: u64,
    pub mismatched: u64,
    /// Differed only where Django differs from itself (a second Django run showed it).
    pub noise: u64,
    pub timed_out: u64,
    /// Not compared: Django's body was too large, failed, or the client left early.
    pub skipped: u64,
}

/// Upper bounds of the latency histogram buckets, in seconds (the last bucket is +Inf).
pub(crate) const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of requests no routes.toml entry lists.
pub(crate) const UNLISTED: &str = "(unlisted)";

/// Who produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    Rust,
    Django,
    /// ficus itself: static files, refused request heads, its own pages.
    Ficus,
}

impl Backend {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Backend::Rust => "rust",
            Backend::Django => "django",
            Backend::Ficus => "ficus",
        }
    }
}

/// Counters of one backend on one route.
#[derive(Default)]
pub(crate) struct Figures {
    /// Responses by status class: 1xx to 5xx.
    classes: [AtomicU64; 5],
    /// Latency histogram, not cumulative: `buckets[i]` counts answers in (BUCKETS[i-1], BUCKETS[i]],
    /// the last one those above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of latencies, in microseconds.
    sum_micros: AtomicU64,
}

impl Figures {
    fn record(&self, status: u16, latency: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counts as they are now, as plain numbers.
    pub(crate) fn snapshot(&self) -> FiguresSnapshot {
        FiguresSnapshot {
            classes: self
                .classes
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// Everything counted for one route label.
#[derive(Default)]
pub(crate) struct RouteFigures {
    pub rust: Figures,
    pub django: Figures,
    pub ficus: Figures,
    /// Canary requests the Rust handler answered.
    pub canary_served: AtomicU64,
    /// Canary requests the Rust handler failed (panic, unexpected status, timeout), which
    /// Django then answered.
    pub canary_fallbacks: AtomicU64,
}

impl RouteFigures {
    pub(crate) fn backend(&self, backend: Backend) -> &Figures {
        match backend {
            Backend::Rust => &self.rust,
            Backend::Django => &self.django,
            Backend::Ficus => &self.ficus,
        }
    }

    fn snapshot(&self) -> RouteSnapshot {
        RouteSnapshot {
            rust: self.rust.snapshot(),
            django: self.django.snapshot(),
            ficus: self.ficus.snapshot(),
            canary_served: self.canary_served.load(Ordering::Relaxed),
            canary_fallbacks: self.canary_fallbacks.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Metrics {
    started: Instant,
    in_flight: AtomicI64,
    routes: RwLock<BTreeMap<String, Arc<RouteFigures>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicI64::new(0),
            routes: RwLock::new(BTreeMap::new()),
        }
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The counters of a route label, created on first use.
    pub(crate) fn route(&self, label: &str) -> Arc<RouteFigures> {
        if let Ok(routes) = self.routes.read()
            && let Some(figures) = routes.get(label)
        {
            return figures.clone();
        }
        match self.routes.write() {
            Ok(mut routes) => routes.entry(label.to_owned()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Every route label with its counters, in label order.
    pub(crate) fn routes(&self) -> Vec<(String, Arc<RouteFigures>)> {
        self.routes
            .read()
            .map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Counts one answer.
    pub(crate) fn record(&self, label: &str, backend: Backend, status: u16, latency: Duration) {
        self.route(label).backend(backend).record(status, latency);
    }

    /// Marks a request in flight until the guard is dropped.
    pub(crate) fn in_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub(crate) fn in_flight_now(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Every route's counts as plain numbers (to merge with other workers', and to show).
    pub(crate) fn snapshot(&self) -> BTreeMap<String, RouteSnapshot> {
        self.routes()
            .into_iter()
            .map(|(label, figures)| (label, figures.snapshot()))
            .collect()
    }
}

/// A request being answered; dropping it ends its count.
pub(crate) struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_status_class_and_latency_bucket() {
        let metrics = Metrics::new();
        metrics.record("/a/", Backend::Rust, 200, Duration::from_micros(800));
        metrics.record("/a/", Backend::Rust, 404, Duration::from_millis(30));
        metrics.record("/a/", Backend::Django, 500, Duration::from_secs(20));
        let a = metrics.snapshot().remove("/a/").unwrap();
        assert_eq!(a.rust.requests(), 2);
        assert_eq!(
            a.rust.classes(),
            BTreeMap::from([("2xx".into(), 1), ("4xx".into(), 1)])
        );
        // 0.8 ms lands in the 1 ms bucket, 30 ms in the 50 ms one; 20 s only in +Inf.
        let cumulative = a.rust.cumulative();
        assert_eq!((cumulative[0], cumulative[1], cumulative[6]), (0, 1, 2));
        assert_eq!(a.django.cumulative()[BUCKETS.len() - 1], 0);
        assert_eq!(a.django.cumulative()[BUCKETS.len()], 1);
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let live = Figures::default();
        assert_eq!(live.snapshot().quantile_ms(0.5), None);
        for _ in 0..100 {
            live.record(200, Duration::from_millis(7));
        }
        let figures = live.snapshot();
        // Every answer is in (5 ms, 10 ms]: the median is interpolated to the middle.
        let p50 = figures.quantile_ms(0.5).unwrap();
        assert!((p50 - 7.5).abs() < 1e-9, "{p50}");
        assert!(figures.quantile_ms(0.99).unwrap() <= 10.0);
    }

    #[test]
    fn in_flight_counts_until_the_guard_drops() {
        let metrics = Arc::new(Metrics::new());
        let first = metrics.in_flight();
        let second = metrics.in_flight();
        assert_eq!(metrics.in_flight_now(), 2);
        drop(first);
        drop(second);
        assert_eq!(metrics.in_flight_now(), 0);
    }
}
