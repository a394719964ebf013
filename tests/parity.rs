//! Parity snapshot tests: every request of every list in tests/requests/ is one test. Each runs
//! in-process through the parity engine (Django twice, the Rust handler once, each on its own
//! copy of the seeded database), must show no difference beyond noise, and keeps an insta
//! snapshot of the normalised answer under tests/snapshots/parity/, so a change on either side
//! shows up in review. A snapshot no request refers to fails too.
//!
//! The wrong-handler tests swap deliberately wrong handlers in under the real names and check
//! that the engine names the exact difference: a check that cannot fail proves nothing.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ficus::parity::Runner;
use ficus::parity::requests::Request;
use ficus::parity::{Verdict, judge, normalise};
use ficus::prelude::Database;
use ficus::prelude::Registry;
use ficus::prelude::{Kwarg, QueryDict};
use legacy_migration::handlers::{articles, legacy};
use libtest_mimic::{Arguments, Failed, Trial};
use support::in_process::{detail_with_a_renamed_field, rewrite_json};

fn snapshots() -> PathBuf {
    support::repo().join("tests/snapshots/parity")
}

/// `list__request`, as insta names the snapshot file.
fn snapshot_name(list: &str, request: &str) -> String {
    format!("{list}__{request}")
}

fn main() {
    let args = Arguments::from_args();
    // Django reads its database path from the environment when Python starts, below; nothing
    // else runs yet, so setting it here races with no one.
    let site = support::Site::new();
    for (name, value) in site.env() {
        // SAFETY: no other thread runs yet, so nothing reads the environment meanwhile.
        unsafe { std::env::set_var(name, value) };
    }
    let runner = Runner::for_project(
        &support::repo().join("routes.toml"),
        &support::venv(),
        legacy_migration::handlers::registry(),
    )
    .expect("the parity runner on the legacy project");
    let runner = Arc::new(Mutex::new(runner));

    let mut trials = Vec::new();
    let mut expected = BTreeSet::new();
    for (list, requests) in support::request_lists() {
        for request in requests {
            expected.insert(format!("{}.snap", snapshot_name(&list, &request.name)));
            let (runner, list) = (runner.clone(), list.clone());
            trials.push(Trial::test(
                format!("{list}::{}", request.name),
                move || agrees(&runner, &list, &request),
            ));
        }
    }
    trials.push(Trial::test("no_unreferenced_snapshots", move || {
        unreferenced(&expected)
    }));
    for (name, wrong) in wrong_handlers() {
        let runner = runner.clone();
        trials.push(Trial::test(format!("engine_catches::{name}"), move || {
            catches(&runner, wrong)
        }));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(site);
    conclusion.exit();
}

fn run(
    runner: &Mutex<Runner>,
    request: &Request,
    registry: Option<&Registry>,
) -> Result<(Verdict, ficus::parity::Normalised), Failed> {
    let runner = runner.lock().unwrap_or_else(|p| p.into_inner());
    let trio = match registry {
        Some(registry) => runner.run_with(request, registry),
        None => runner.run(request),
    }
    .map_err(|e| format!("{e:#}"))?;
    let (Some(rust), Some((route, handler))) = (&trio.rust, &trio.route) else {
        return Err(format!(
            "no Rust route serves {} {}: a parity list holds requests for ported routes",
            request.method,
            request.target()
        )
        .into());
    };
    let rules = runner.rules_for(route, handler);
    let found = judge(
        [&trio.django, &trio.django_again, rust],
        &rules,
        request.byte_for_byte,
    );
    Ok((found, normalise(&trio.django, &rules)))
}

fn agrees(runner: &Mutex<Runner>, list: &str, request: &Request) -> Result<(), Failed> {
    let (found, django) = run(runner, request, None)?;
    if !found.matches() {
        let lines: Vec<String> = found.differences.iter().map(ToString::to_string).collect();
        return Err(format!(
            "Rust and Django differ on {} {}:\n{}",
            request.method,
            request.target(),
            lines.join("\n")
        )
        .into());
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshots());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_info(&format!("{} {}", request.method, request.target()));
    settings.bind(|| {
        insta::assert_yaml_snapshot!(snapshot_name(list, &request.name), django);
    });
    Ok(())
}

fn unreferenced(expected: &BTreeSet<String>) -> Result<(), Failed> {
    let present: BTreeSet<String> = std::fs::read_dir(snapshots())
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".snap"))
                .collect()
        })
        .unwrap_or_default();
    let stale: Vec<&String> = present.difference(expected).collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "snapshots no listed request refers to (delete them, or restore their requests): {stale:?}"
        )
        .into())
    }
}

/// A deliberately wrong port, the request that shows it, and the difference the engine must name.
struct Wrong {
    registry: Registry,
    request: Request,
    expected: &'static [&'static str],
}

fn request(path: &str, query: &str) -> Request {
    Request {
        name: "wrong".into(),
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        headers: Vec::new(),
        body: bytes::Bytes::new(),
        user: None,
        byte_for_byte: false,
    }
}

async fn detail_with_another_status(db: State<Database>, pk: Kwarg<String>) -> Response {
    let mut response = articles::detail(db, pk).await.into_response();
    if response.status() == http::StatusCode::NOT_FOUND {
        *response.status_mut() = http::StatusCode::GONE;
    }
    response
}

async fn healthz_without_cache_control(db: State<Database>) -> Response {
    let mut response = legacy::healthz(db).await.into_response();
    response.headers_mut().remove(http::header::CACHE_CONTROL);
    response
}

async fn list_with_a_float_count(db: State<Database>, query: QueryDict) -> Response {
    rewrite_json(articles::list(db, query).await.into_response(), |v| {
        if let Some(count) = v["count"].as_u64() {
            v["count"] = serde_json::json!(count as f64);
        }
    })
    .await
}

async fn list_in_another_order(db: State<Database>, query: QueryDict) -> Response {
    rewrite_json(articles::list(db, query).await.into_response(), |v| {
        if let Some(results) = v["results"].as_array_mut() {
            results.reverse();
        }
    })
    .await
}

fn wrong_handlers() -> Vec<(&'static str, Wrong)> {
    vec![
        (
            "a_renamed_field",
            Wrong {
                registry: legacy_migration::handlers::registry()
                    .register("articles::detail", detail_with_a_renamed_field),
                request: request("/api/articles/1/", ""),
                expected: &[
                    ".name: django (missing), got",
                    ".title: django \"",
                    "got (missing)",
                ],
            },
        ),
        (
            "a_changed_status",
            Wrong {
                registry: legacy_migration::handlers::registry()
                    .register("articles::detail", detail_with_another_status),
                request: request("/api/articles/999999/", ""),
                expected: &["status: django 404, got 410"],
            },
        ),
        (
            "a_missing_header",
            Wrong {
                registry: legacy_migration::handlers::registry()
                    .register("legacy::healthz", healthz_without_cache_control),
                request: request("/healthz", ""),
                expected: &[
                    "header cache-control: django max-age=0, no-cache, no-store, must-revalidate, private, got (missing)",
                ],
            },
        ),
        (
            "a_float_formatted_differently",
            Wrong {
                registry: legacy_migration::handlers::registry()
                    .register("articles::list", list_with_a_float_count),
                request: request("/api/articles/", "page_size=2"),
                expected: &["JSON .count: django 30, got 30.0"],
            },
        ),
        (
            "a_changed_list_order",
            Wrong {
                registry: legacy_migration::handlers::registry()
                    .register("articles::list", list_in_another_order),
                request: request("/api/articles/", "page_size=2"),
                expected: &["JSON .results[0].id: django "],
            },
        ),
    ]
}

fn catches(runner: &Mutex<Runner>, wrong: Wrong) -> Result<(), Failed> {
    let (found, _) = run(runner, &wrong.request, Some(&wrong.registry))?;
    let shown: Vec<String> = found.differences.iter().map(ToString::to_string).collect();
    let text = shown.join("\n");
    if found.matches() {
        return Err("the engine found no difference in a deliberately wrong handler".into());
    }
    for needle in wrong.expected {
        if !text.contains(needle) {
            return Err(format!("expected the report to name `{needle}`, it said:\n{text}").into());
        }
    }
    Ok(())
}
