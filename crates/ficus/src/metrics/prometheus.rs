//! `/metrics`: the live figures in Prometheus's text exposition format (version 0.0.4).
//!
//! It only formats; what is counted, and when, is decided by the server and the shadow runner.

use std::fmt::Write as _;

use std::time::Duration;

use super::{BUCKETS, Backend, RouteSnapshot, Snapshot};
use crate::metrics::RouteStats;

pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn render(snapshot: &Snapshot, uptime: Duration) -> String {
    let mut out = String::new();
    let routes: Vec<(&String, &RouteSnapshot)> = snapshot.routes.iter().collect();
    let (shadow, pool) = (&snapshot.shadow, snapshot.pool);
    let backends = [Backend::Rust, Backend::Django, Backend::Ficus];

    header(
        &mut out,
        "ficus_requests_total",
        "counter",
        "Answered requests by route, backend and status class.",
    );
    for (route, figures) in &routes {
        for backend in backends {
            for (class, n) in figures.backend(backend).classes() {
                let _ = writeln!(
                    out,
                    "ficus_requests_total{{route=\"{}\",backend=\"{}\",class=\"{class}\"}} {n}",
                    escape(route),
                    backend.as_str()
                );
            }
        }
    }

    header(
        &mut out,
        "ficus_response_seconds",
        "histogram",
        "Time until the response head was ready, by route and backend.",
    );
    for (route, figures) in &routes {
        for backend in backends {
            let figures = figures.backend(backend);
            if figures.requests() == 0 {
                continue;
            }
            let labels = format!(
                "route=\"{}\",backend=\"{}\"",
                escape(route),
                backend.as_str()
            );
            let cumulative = figures.cumulative();
            for (bound, count) in BUCKETS.iter().zip(&cumulative) {
                let _ = writeln!(
                    out,
                    "ficus_response_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let total = cumulative.last().copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "ficus_response_seconds_bucket{{{labels},le=\"+Inf\"}} {total}"
            );
            let _ = writeln!(
                out,
                "ficus_response_seconds_sum{{{labels}}} {}",
                figures.sum_seconds()
            );
            let _ = writeln!(out, "ficus_response_seconds_count{{{labels}}} {total}");
        }
    }

    type Counter = (&'static str, &'static str, fn(&RouteStats) -> u64);
    let shadow_counters: [Counter; 6] = [
        (
            "compared",
            "Shadowed requests whose two answers were compared.",
            |s| s.compared,
        ),
        (
            "matched",
            "Compared shadow requests whose answers agree.",
            |s| s.matched,
        ),
        (
            "mismatched",
            "Compared shadow requests whose answers differ.",
            |s| s.mismatched,
        ),
        (
            "noise",
            "Compared shadow requests that differ only where Django differs from itself.",
            |s| s.noise,
        ),
        (
            "timed_out",
            "Shadow runs abandoned at the route's budget.",
            |s| s.timed_out,
        ),
        (
            "skipped",
            "Shadow runs not compared (body too large, client gone, Rust task failed).",
            |s| s.skipped,
        ),
    ];
    for (name, help, value) in shadow_counters {
        let metric = format!("ficus_shadow_{name}_total");
        header(&mut out, &metric, "counter", help);
        for (route, stats) in shadow {
            let _ = writeln!(
                out,
                "{metric}{{route=\"{}\"}} {}",
                escape(route),
                value(stats)
            );
        }
    }

    header(
        &mut out,
        "ficus_canary_served_total",
        "counter",
        "Canary requests answered by the Rust handler.",
    );
    header_rows(&mut out, &routes, "ficus_canary_served_total", |f| {
        f.canary_served
    });
    header(
        &mut out,
        "ficus_canary_fallbacks_total",
        "counter",
        "Canary requests the Rust handler failed, answered by Django instead.",
    );
    header_rows(&mut out, &routes, "ficus_canary_fallbacks_total", |f| {
        f.canary_fallbacks
    });

    let gauges = [
        (
            "ficus_python_threads",
            "Python threads that run the application.",
            pool.threads as i64,
        ),
        (
            "ficus_python_threads_busy",
            "Python threads running a job now.",
            pool.busy as i64,
        ),
        (
            "ficus_python_queue_depth",
            "Jobs waiting for a free Python thread.",
            pool.queued as i64,
        ),
        (
            "ficus_in_flight_requests",
            "Requests being answered now.",
            snapshot.in_flight,
        ),
    ];
    for (name, help, value) in gauges {
        header(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        &mut out,
        "ficus_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(out, "ficus_uptime_seconds {}", uptime.as_secs_f64());
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn header_rows(
    out: &mut String,
    routes: &[(&String, &RouteSnapshot)],
    name: &str,
    value: impl Fn(&RouteSnapshot) -> u64,
) {
    for (route, figures) in routes {
        let n = value(figures);
        if n > 0 {
            let _ = writeln!(out, "{name}{{route=\"{}\"}} {n}", escape(route));
        }
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::python::pool::PoolFigures;
    use std::collections::BTreeMap;

    #[test]
    fn counters_histograms_and_gauges_are_written_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.record(
            "/api/articles/<int:pk>/",
            Backend::Rust,
            200,
            Duration::from_millis(3),
        );
        metrics.record(
            "/api/articles/<int:pk>/",
            Backend::Django,
            404,
            Duration::from_millis(40),
        );
        let shadow = BTreeMap::from([(
            "/api/x/".to_owned(),
            RouteStats {
                compared: 3,
                matched: 2,
                mismatched: 1,
                ..Default::default()
            },
        )]);
        let pool = PoolFigures {
            threads: 4,
            busy: 1,
            queued: 0,
        };
        let snapshot = Snapshot {
            routes: metrics.snapshot(),
            shadow,
            pool,
            ..Default::default()
        };
        let text = render(&snapshot, Duration::from_secs(5));
        for line in [
            r#"ficus_requests_total{route="/api/articles/<int:pk>/",backend="rust",class="2xx"} 1"#,
            r#"ficus_requests_total{route="/api/articles/<int:pk>/",backend="django",class="4xx"} 1"#,
            r#"ficus_response_seconds_bucket{route="/api/articles/<int:pk>/",backend="rust",le="0.0025"} 0"#,
            r#"ficus_response_seconds_bucket{route="/api/articles/<int:pk>/",backend="rust",le="0.005"} 1"#,
            r#"ficus_response_seconds_count{route="/api/articles/<int:pk>/",backend="django"} 1"#,
            r#"ficus_shadow_mismatched_total{route="/api/x/"} 1"#,
            "ficus_python_threads 4",
            "ficus_python_threads_busy 1",
            "# TYPE ficus_response_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
