//! `/_ficus/api/status`: the JSON the dashboard draws and `ficus routes` shows beside each
//! route: migration progress, traffic by backend, per-route latency, shadow and canary figures,
//! the Python pool, and the latest mismatches.
//!
//! It reads the live figures; it never changes them.

use serde_json::{Value, json};

use crate::inspect::summarise;
use crate::metrics::{Backend, Figures};
use crate::routes::Mode;
use crate::server::service::Shared;

pub fn status(shared: &Shared) -> Value {
    let table = shared.routes.table();
    let summary = summarise(&shared.admin.patterns, &table);
    let metrics = &shared.metrics;
    let shadow = shared
        .shadow
        .as_ref()
        .map(|s| s.stats())
        .unwrap_or_default();
    let (mut rust, mut django) = (0, 0);
    for (_, figures) in metrics.routes() {
        rust += figures.rust.requests();
        django += figures.django.requests();
    }
    let routes: Vec<Value> = table
        .routes
        .iter()
        .map(|route| {
            let path = route.pattern.source();
            let figures = metrics.route(path);
            let stats = shadow.get(path).cloned().unwrap_or_default();
            json!({
                "path": path,
                "name": route.name,
                "methods": route.methods,
                "handler": route.handler,
                "mode": route.mode.as_str(),
                "percent": (route.mode == Mode::Canary).then_some(route.percent),
                "requests": {
                    "rust": figures.rust.requests(),
                    "django": figures.django.requests(),
                },
                "latency_ms": {
                    "rust": latency(&figures.rust),
                    "django": latency(&figures.django),
                },
                "status": {
                    "rust": figures.backend(Backend::Rust).classes(),
                    "django": figures.backend(Backend::Django).classes(),
                },
                "shadow": stats,
                "canary": {
                    "served": figures.canary_served.load(std::sync::atomic::Ordering::Relaxed),
                    "fallbacks": figures.canary_fallbacks.load(std::sync::atomic::Ordering::Relaxed),
                },
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "app": shared.admin.app,
        "uptime_seconds": metrics.uptime().as_secs(),
        "routes_file": shared.routes.file().map(|f| f.display().to_string()),
        "last_reload": shared.routes.last_reload(),
        "progress": {
            "rust": summary.rust,
            "canary": summary.canary,
            "shadow": summary.shadow,
            "django": summary.django,
            "unported": summary.not_listed,
            "total": summary.total,
        },
        "traffic": { "rust": rust, "django": django },
        "pool": shared.pool.figures(),
        "in_flight": metrics.in_flight_now(),
        "routes": routes,
        "mismatches": shared.shadow.as_ref().map(|s| s.recent()).unwrap_or_default(),
    })
}

fn latency(figures: &Figures) -> Value {
    match (
        figures.quantile_ms(0.5),
        figures.quantile_ms(0.95),
        figures.quantile_ms(0.99),
    ) {
        (Some(p50), Some(p95), Some(p99)) => json!({ "p50": p50, "p95": p95, "p99": p99 }),
        _ => Value::Null,
    }
}
