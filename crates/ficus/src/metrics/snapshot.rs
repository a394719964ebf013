//! The live figures as plain numbers: what `/metrics`, the dashboard and `ficus routes` show.
//! With worker processes each worker publishes its snapshot to the supervisor's run directory
//! (see `crate::admin::peers`), and whichever worker answers adds up everyone's, so the figures
//! are the server's, not one worker's.
//!
//! Only data and arithmetic here; nothing is read, written or counted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BUCKETS;
use crate::metrics::RouteStats;
use crate::python::pool::PoolFigures;

/// One backend's counts on one route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FiguresSnapshot {
    /// Responses by status class, 1xx to 5xx.
    pub classes: Vec<u64>,
    /// Latency histogram, not cumulative (see `super::Figures`).
    pub buckets: Vec<u64>,
    pub sum_micros: u64,
}

/// Everything counted for one route label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RouteSnapshot {
    pub rust: FiguresSnapshot,
    pub django: FiguresSnapshot,
    pub ficus: FiguresSnapshot,
    pub canary_served: u64,
    pub canary_fallbacks: u64,
}

/// The whole server's figures at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub routes: BTreeMap<String, RouteSnapshot>,
    pub shadow: BTreeMap<String, RouteStats>,
    pub pool: PoolFigures,
    pub in_flight: i64,
    /// The latest shadow mismatches, newest first.
    pub mismatches: Vec<Value>,
    /// Worker processes whose figures are included.
    pub workers: usize,
}

/// Element-wise sum, growing `into` to the longer length.
fn add(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

impl FiguresSnapshot {
    fn merge(&mut self, other: &FiguresSnapshot) {
        add(&mut self.classes, &other.classes);
        add(&mut self.buckets, &other.buckets);
        self.sum_micros += other.sum_micros;
    }

    pub(crate) fn requests(&self) -> u64 {
        self.classes.iter().sum()
    }

    /// Responses by class label ("2xx"), leaving out empty classes.
    pub(crate) fn classes(&self) -> BTreeMap<String, u64> {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (format!("{}xx", i + 1), *n))
            .collect()
    }

    /// Cumulative bucket counts, as Prometheus wants them (the last is +Inf, the total).
    pub(crate) fn cumulative(&self) -> Vec<u64> {
        let mut total = 0;
        self.buckets
            .iter()
            .map(|b| {
                total += b;
                total
            })
            .collect()
    }

    pub(crate) fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    /// The `q` quantile (0 to 1) in milliseconds, interpolated within its bucket as Prometheus's
    /// `histogram_quantile` does; None before the first answer.
    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        let cumulative = self.cumulative();
        let total = *cumulative.last()?;
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let index = cumulative.iter().position(|c| *c as f64 >= rank)?;
        let Some(&upper) = BUCKETS.get(index) else {
            // Beyond the last bound: the best that can be said is "at least the last bound".
            return BUCKETS.last().map(|b| b * 1000.0);
        };
        let lower = if index == 0 { 0.0 } else { BUCKETS[index - 1] };
        let below = if index == 0 {
            0.0
        } else {
            cumulative[index - 1] as f64
        };
        let inside = (cumulative[index] as f64 - below).max(1.0);
        let seconds = lower + (upper - lower) * ((rank - below) / inside).clamp(0.0, 1.0);
        Some(seconds * 1000.0)
    }
}

impl RouteSnapshot {
    pub(crate) fn backend(&self, backend: super::Backend) -> &FiguresSnapshot {
        match backend {
            super::Backend::Rust => &self.rust,
            super::Backend::Django => &self.django,
            super::Backend::Ficus => &self.ficus,
        }
    }

    fn merge(&mut self, other: &RouteSnapshot) {
        self.rust.merge(&other.rust);
        self.django.merge(&other.django);
        self.ficus.merge(&other.ficus);
        self.canary_served += other.canary_served;
        self.canary_fallbacks += other.canary_fallbacks;
    }
}

impl Snapshot {
    /// Adds another worker's figures to these.
    pub(crate) fn merge(&mut self, other: &Snapshot) {
        for (label, route) in &other.routes {
            self.routes.entry(label.clone()).or_default().merge(route);
        }
        for (label, stats) in &other.shadow {
            let mine = self.shadow.entry(label.clone()).or_default();
            mine.compared += stats.compared;
            mine.matched += stats.matched;
            mine.mismatched += stats.mismatched;
            mine.noise += stats.noise;
            mine.timed_out += stats.timed_out;
            mine.skipped += stats.skipped;
        }
        self.pool.threads += other.pool.threads;
        self.pool.busy += other.pool.busy;
        self.pool.queued += other.pool.queued;
        self.in_flight += other.in_flight;
        let keep = self.mismatches.len().max(other.mismatches.len());
        self.mismatches.extend(other.mismatches.iter().cloned());
        // Newest first across workers (RFC 3339 times sort as text).
        self.mismatches
            .sort_by(|a, b| b["time"].as_str().cmp(&a["time"].as_str()));
        self.mismatches.truncate(keep);
        self.workers += other.workers;
    }

    /// A route's figures; zeros when it has had no traffic.
    pub(crate) fn route(&self, label: &str) -> RouteSnapshot {
        self.routes.get(label).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(rust_ok: u64, fallbacks: u64, threads: usize, time: &str) -> Snapshot {
        let mut classes = vec![0; 5];
        classes[1] = rust_ok;
        let mut buckets = vec![0; BUCKETS.len() + 1];
        buckets[3] = rust_ok;
        Snapshot {
            routes: BTreeMap::from([(
                "/api/articles/".to_owned(),
                RouteSnapshot {
                    rust: FiguresSnapshot {
                        classes,
                        buckets,
                        sum_micros: 1000 * rust_ok,
                    },
                    canary_fallbacks: fallbacks,
                    ..Default::default()
                },
            )]),
            shadow: BTreeMap::from([(
                "/x/".to_owned(),
                RouteStats {
                    compared: 2,
                    matched: 1,
                    mismatched: 1,
                    ..Default::default()
                },
            )]),
            pool: PoolFigures {
                threads,
                busy: 1,
                queued: 0,
            },
            in_flight: 1,
            mismatches: vec![serde_json::json!({ "time": time })],
            workers: 1,
        }
    }

    #[test]
    fn two_workers_add_up_to_the_servers_figures() {
        let mut total = worker(3, 1, 4, "2026-11-24T10:00:00Z");
        total.merge(&worker(5, 2, 4, "2026-11-24T11:00:00Z"));
        let route = total.route("/api/articles/");
        assert_eq!(route.rust.requests(), 8);
        assert_eq!(route.rust.cumulative().last(), Some(&8));
        assert_eq!(route.canary_fallbacks, 3);
        assert_eq!(total.shadow["/x/"].mismatched, 2);
        assert_eq!(
            (total.pool.threads, total.pool.busy, total.in_flight),
            (8, 2, 2)
        );
        assert_eq!(total.workers, 2);
        assert_eq!(total.mismatches[0]["time"], "2026-11-24T11:00:00Z");
        assert_eq!(total.route("/nowhere/"), RouteSnapshot::default());
    }
}
