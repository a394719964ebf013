//! Shadow mode against deliberately wrong, slow and panicking handlers, in a server built on the
//! ficus library (as a team builds its own binary) and served in this process over real
//! sockets: the client always gets Django's answer, without waiting for Rust; the mismatch log
//! records what differs, with secrets redacted, and `ficus diff` replays it.
//!
//! Its own harness: the database path must be in the environment before Python starts.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed};
use serde_json::Value;
use support::in_process::{
    self, InProcess, Log, detail_with_a_renamed_field, metric_reaches, trial,
};
use support::{get, request};

static SLOW_FINISHED: AtomicBool = AtomicBool::new(false);

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    SLOW_FINISHED.store(true, Ordering::SeqCst);
    "late"
}

async fn panics() -> &'static str {
    panic!("a deliberate panic in a shadowed handler")
}

#[derive(Clone)]
struct Harness {
    addr: SocketAddr,
    log: Log,
    mismatches: PathBuf,
    env: Vec<(String, String)>,
}

fn main() {
    let args = Arguments::from_args();
    let site = support::Site::new();
    // Nothing else runs yet: Django reads these when Python starts, below.
    for (name, value) in site.env() {
        // SAFETY: no other thread runs yet, so nothing reads the environment meanwhile.
        unsafe { std::env::set_var(name, value) };
    }
    let (server, harness) = start(site.env());
    let trials = vec![
        trial(
            "client_gets_djangos_answer_and_the_log_names_the_difference",
            &harness,
            mismatch_is_logged,
        ),
        trial(
            "a_slow_shadow_handler_never_delays_the_client",
            &harness,
            slow_handler,
        ),
        trial(
            "a_panicking_shadow_handler_leaves_the_client_untouched",
            &harness,
            panicking_handler,
        ),
        trial(
            "a_shadowed_post_gives_both_sides_the_same_body",
            &harness,
            shadowed_post,
        ),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    drop((site, server));
    conclusion.exit();
}

fn start(env: Vec<(String, String)>) -> (InProcess, Harness) {
    let routes = r#"[[route]]
path = "/api/articles/<int:pk>/"
handler = "articles::detail"
mode = "shadow"

[[route]]
path = "/healthz"
handler = "legacy::healthz"
mode = "shadow"
budget_ms = 100

[[route]]
path = "/api/articles/"
handler = "articles::list"
mode = "shadow"

[[route]]
path = "/api/summarize/"
methods = ["POST"]
handler = "ai::summarize"
mode = "shadow"
shadow_writes = true
"#;
    let registry = legacy_migration::handlers::registry()
        .register("articles::detail", detail_with_a_renamed_field)
        .register("legacy::healthz", slow)
        .register("articles::list", panics);
    let server = in_process::serve(routes, registry, &["--shadow-log", "{dir}/shadow.jsonl"]);
    let harness = Harness {
        addr: server.addr,
        log: server.log.clone(),
        mismatches: server.path("shadow.jsonl"),
        env,
    };
    (server, harness)
}

/// The mismatch log's lines about `route`, waiting up to ten seconds for `count` of them.
fn logged(h: &Harness, route: &str, count: usize) -> Result<Vec<Value>, Failed> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = std::fs::read_to_string(&h.mismatches)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["route"] == route)
            .collect();
        if lines.len() >= count {
            return Ok(lines);
        }
        if Instant::now() > deadline {
            return Err(format!("no mismatch logged for {route}:\n{}", h.log.text()).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mismatch_is_logged(h: &Harness) -> Result<(), Failed> {
    let answer = request(
        h.addr,
        "GET",
        "/api/articles/1/",
        &[
            ("Cookie", "sessionid=very-secret"),
            ("Authorization", "Bearer also-secret"),
        ],
        b"",
    );
    let body = answer.json();
    if answer.status != 200 || body.get("title").is_none() || body.get("name").is_some() {
        return Err(format!("the client did not get Django's answer: {body}").into());
    }
    let line = logged(h, "/api/articles/<int:pk>/", 1)?.remove(0);
    metric_reaches(
        h.addr,
        r#"ficus_shadow_mismatched_total{route="/api/articles/<int:pk>/"}"#,
        1.0,
    )?;
    // Django answered the client, and the metrics say so.
    metric_reaches(
        h.addr,
        r#"ficus_requests_total{route="/api/articles/<int:pk>/",backend="django",class="2xx"}"#,
        1.0,
    )?;
    let differences = line["differences"].to_string();
    for needle in [r#""name":".name""#, r#""name":".title""#] {
        if !differences.contains(needle) {
            return Err(format!("the log does not name {needle}: {differences}").into());
        }
    }
    let text = std::fs::read_to_string(&h.mismatches).unwrap_or_default();
    if text.contains("very-secret") || text.contains("also-secret") {
        return Err(format!("a secret reached the log: {text}").into());
    }
    // The replay command works as written, with the real handlers: they match Django.
    let replay = line["replay"].as_str().unwrap_or_default().to_owned();
    let file = replay
        .strip_prefix("ficus diff ")
        .ok_or("no replay command")?;
    support::diff_replays(file, &h.env, "MATCH  GET /api/articles/1/")?;
    Ok(())
}

fn slow_handler(h: &Harness) -> Result<(), Failed> {
    let answer = get(h.addr, "/healthz");
    let finished = SLOW_FINISHED.load(Ordering::SeqCst);
    if answer.status != 200 || answer.json() != serde_json::json!({"status": "ok", "db": true}) {
        return Err(format!("not Django's answer: {}", answer.text()).into());
    }
    if finished {
        return Err("the client waited for the shadowed handler".into());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h
        .log
        .text()
        .contains("/healthz took longer than its budget")
    {
        if Instant::now() > deadline {
            return Err(format!("the budget was not enforced:\n{}", h.log.text()).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    metric_reaches(
        h.addr,
        r#"ficus_shadow_timed_out_total{route="/healthz"}"#,
        1.0,
    )
}

fn panicking_handler(h: &Harness) -> Result<(), Failed> {
    let answer = get(h.addr, "/api/articles/?page_size=2");
    if answer.status != 200 || answer.json()["count"].as_u64().is_none() {
        return Err(format!("not Django's answer: {}", answer.text()).into());
    }
    let line = logged(h, "/api/articles/", 1)?.remove(0);
    let differences = line["differences"].to_string();
    if !differences.contains(r#""at":"status""#) || !h.log.text().contains("panicked") {
        return Err(format!(
            "the panic was not recorded: {differences}\n{}",
            h.log.text()
        )
        .into());
    }
    if get(h.addr, "/api/articles/1/").status != 200 {
        return Err("the server stopped serving".into());
    }
    metric_reaches(
        h.addr,
        r#"ficus_shadow_mismatched_total{route="/api/articles/"}"#,
        1.0,
    )
}

fn shadowed_post(h: &Harness) -> Result<(), Failed> {
    let body = r#"{"text": "Shadow mode compares. Canary mode serves. Both keep Django close."}"#;
    let answer = request(
        h.addr,
        "POST",
        "/api/summarize/",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    if answer.status != 200 || answer.json()["sentences"] != 3 {
        return Err(format!("not Django's answer: {}", answer.text()).into());
    }
    // The real handler matches Django only if it read the same body.
    metric_reaches(
        h.addr,
        r#"ficus_shadow_matched_total{route="/api/summarize/"}"#,
        1.0,
    )?;
    let broken = request(
        h.addr,
        "POST",
        "/api/summarize/",
        &[("Content-Type", "application/json")],
        b"{\"text\": 42}",
    );
    if broken.status != 400 {
        return Err(format!("not Django's 400: {broken:?}").into());
    }
    metric_reaches(
        h.addr,
        r#"ficus_shadow_matched_total{route="/api/summarize/"}"#,
        2.0,
    )
}
