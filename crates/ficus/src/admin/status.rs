//! `/_ficus/api/status`: the JSON the dashboard draws and `ficus routes` shows beside each
//! route: migration progress, traffic by backend, per-route latency, shadow and canary figures,
//! the Python pool, and the latest mismatches.
//!
//! It reads the live figures; it never changes them.

use serde_json::{Value, json};

use super::Admin;
use crate::metrics::{Backend, FiguresSnapshot};
use crate::routes::Mode;
use crate::routes::summary::summarise;

pub(super) fn status(admin: &Admin) -> Value {
    let table = admin.routes.table();
    let summary = summarise(&admin.patterns, &table);
    let snapshot = super::peers::gather(admin);
    let (mut rust, mut django) = (0, 0);
    for figures in snapshot.routes.values() {
        rust += figures.rust.requests();
        django += figures.django.requests();
    }
    let routes: Vec<Value> = table
        .routes
        .iter()
        .map(|route| {
            let path = route.pattern.source();
            let figures = snapshot.route(path);
            let stats = snapshot.shadow.get(path).cloned().unwrap_or_default();
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
                    "served": figures.canary_served,
                    "fallbacks": figures.canary_fallbacks,
                },
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "app": admin.app,
        "uptime_seconds": admin.metrics.uptime().as_secs(),
        "workers": snapshot.workers,
        "routes_file": admin.routes.file().map(|f| f.display().to_string()),
        "last_reload": admin.routes.last_reload(),
        "progress": {
            "rust": summary.rust,
            "canary": summary.canary,
            "shadow": summary.shadow,
            "django": summary.django,
            "unported": summary.not_listed,
            "total": summary.total,
            "project_total": summary.project_total,
            "project_ported": summary.project_ported,
            "apps": summary.apps,
        },
        "traffic": { "rust": rust, "django": django },
        "pool": snapshot.pool,
        "in_flight": snapshot.in_flight,
        "routes": routes,
        "mismatches": snapshot.mismatches,
    })
}

fn latency(figures: &FiguresSnapshot) -> Value {
    match (
        figures.quantile_ms(0.5),
        figures.quantile_ms(0.95),
        figures.quantile_ms(0.99),
    ) {
        (Some(p50), Some(p95), Some(p99)) => json!({ "p50": p50, "p95": p95, "p99": p99 }),
        _ => Value::Null,
    }
}
