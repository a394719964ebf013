//! Production-traffic features against one server built on the ficus library (with test
//! handlers that say they served), in this process over real sockets: canary stickiness and
//! share, canary fallbacks to Django, the kill switch under load (SIGHUP and `ficus reload`),
//! recorded traffic that `ficus diff` replays, `/metrics`, who may see the admin pages, and the
//! dashboard in headless Chromium.
//!
//! Its own harness: the database path must be in the environment before Python starts.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ficus::prelude::Database;
use ficus::prelude::{Kwarg, QueryDict};
use http::StatusCode;
use libtest_mimic::{Arguments, Failed};
use support::in_process::{self, Log, metric, trial};
use support::{get, request};

/// Marks an answer as the Rust handler's, so the client side can tell who served it.
fn tagged(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("x-served-by", http::HeaderValue::from_static("rust"));
    response
}

async fn tagged_list(db: State<Database>, query: QueryDict) -> Response {
    tagged(
        legacy_migration::handlers::articles::list(db, query)
            .await
            .into_response(),
    )
}

async fn tagged_healthz(db: State<Database>) -> Response {
    tagged(
        legacy_migration::handlers::legacy::healthz(db)
            .await
            .into_response(),
    )
}

/// `articles::detail` that fails in each way canary must survive: article 2 panics, 3 is
/// slower than the budget, 4 answers a status the route does not expect.
async fn flaky_detail(db: State<Database>, pk: Kwarg<String>) -> Response {
    match pk.0.as_str() {
        "2" => panic!("a deliberate panic in a canary handler"),
        "3" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            tagged(
                legacy_migration::handlers::articles::detail(db, pk)
                    .await
                    .into_response(),
            )
        }
        "4" => (StatusCode::SERVICE_UNAVAILABLE, "not today").into_response(),
        _ => tagged(
            legacy_migration::handlers::articles::detail(db, pk)
                .await
                .into_response(),
        ),
    }
}

const ROUTES: &str = r#"[[route]]
path = "/api/articles/"
handler = "test::tagged_list"
mode = "canary"
percent = 30
sticky = "header:x-user"

[[route]]
path = "/api/articles/<int:pk>/"
handler = "test::flaky_detail"
mode = "canary"
percent = 100
budget_ms = 500

[[route]]
path = "/healthz"
handler = "test::tagged_healthz"
mode = "rust"

[[route]]
path = "/api/summarize/"
methods = ["POST"]
handler = "ai::summarize"
mode = "rust"
record = 1.0
"#;

#[derive(Clone)]
struct Harness {
    addr: SocketAddr,
    log: Log,
    dir: PathBuf,
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
    let registry = legacy_migration::handlers::registry()
        .register("test::tagged_list", tagged_list)
        .register("test::tagged_healthz", tagged_healthz)
        .register("test::flaky_detail", flaky_detail);
    let server = in_process::serve(
        ROUTES,
        registry,
        &[
            "--record-log",
            "{dir}/recorded.jsonl",
            "--admin-token",
            "open-sesame",
            "--threads",
            "4",
        ],
    );
    let harness = Harness {
        addr: server.addr,
        log: server.log.clone(),
        dir: server.dir.path().to_owned(),
        env: site.env(),
    };
    let trials = vec![
        trial(
            "canary_keeps_one_client_on_one_side_across_1000_requests",
            &harness,
            one_client_stays_put,
        ),
        trial(
            "canary_spreads_clients_near_the_configured_share",
            &harness,
            clients_spread_near_the_share,
        ),
        trial(
            "canary_falls_back_to_django_on_panic_timeout_and_unexpected_status",
            &harness,
            failures_fall_back,
        ),
        trial(
            "sighup_and_ficus_reload_flip_a_route_under_load_without_a_failed_request",
            &harness,
            kill_switch_under_load,
        ),
        trial(
            "recorded_requests_are_redacted_and_replay_with_ficus_diff",
            &harness,
            recording_replays,
        ),
        trial(
            "admin_pages_answer_loopback_and_the_token_only",
            &harness,
            admin_access,
        ),
        trial(
            "ficus_routes_shows_the_running_servers_figures",
            &harness,
            routes_show_live_figures,
        ),
        trial(
            "the_dashboard_renders_live_figures_in_headless_chromium",
            &harness,
            dashboard_in_chromium,
        ),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    drop((site, server));
    conclusion.exit();
}

fn served_by_rust(response: &support::Response) -> bool {
    response.header("x-served-by") == Some("rust")
}

fn one_client_stays_put(h: &Harness) -> Result<(), Failed> {
    // A list page of one article keeps the Django side quick.
    let mut by_rust = 0;
    for _ in 0..1000 {
        let answer = request(
            h.addr,
            "GET",
            "/api/articles/?page_size=1",
            &[("X-User", "alice")],
            b"",
        );
        if answer.status != 200 {
            return Err(format!("request failed: {} {}", answer.status, answer.text()).into());
        }
        by_rust += usize::from(served_by_rust(&answer));
    }
    if by_rust != 0 && by_rust != 1000 {
        return Err(format!("alice saw both sides: {by_rust} of 1000 from Rust").into());
    }
    Ok(())
}

fn clients_spread_near_the_share(h: &Harness) -> Result<(), Failed> {
    let clients = 1000;
    let by_rust = (0..clients)
        .filter(|i| {
            let user = format!("user-{i}");
            let answer = request(
                h.addr,
                "GET",
                "/api/articles/?page_size=1",
                &[("X-User", &user)],
                b"",
            );
            served_by_rust(&answer)
        })
        .count();
    // percent = 30: a binomial spread over 1000 clients has a standard deviation of about 15.
    if !(250..=350).contains(&by_rust) {
        return Err(format!("{by_rust} of {clients} clients on Rust, configured 30%").into());
    }
    Ok(())
}

fn failures_fall_back(h: &Harness) -> Result<(), Failed> {
    let before = metric(
        h.addr,
        r#"ficus_canary_fallbacks_total{route="/api/articles/<int:pk>/"}"#,
    );
    let healthy = get(h.addr, "/api/articles/1/");
    if healthy.status != 200 || !served_by_rust(&healthy) {
        return Err(format!("article 1 should come from Rust: {healthy:?}").into());
    }
    for pk in [2, 3, 4] {
        let started = Instant::now();
        let answer = get(h.addr, &format!("/api/articles/{pk}/"));
        let body = answer.json();
        if answer.status != 200 || served_by_rust(&answer) || body["id"] != pk {
            return Err(format!("article {pk} did not fall back to Django: {answer:?}").into());
        }
        // The slow one is cut at its 500 ms budget, not left to run its 3 s.
        if started.elapsed() > Duration::from_millis(2500) {
            return Err(format!("article {pk} took {:?}", started.elapsed()).into());
        }
    }
    let after = metric(
        h.addr,
        r#"ficus_canary_fallbacks_total{route="/api/articles/<int:pk>/"}"#,
    );
    if after - before != 3.0 {
        return Err(format!("fallbacks counted {before} -> {after}, expected 3 more").into());
    }
    let log = h.log.text();
    for why in ["answered 500", "took longer than 500 ms", "answered 503"] {
        if !log.contains(why) || !log.contains("Django answered instead") {
            return Err(format!("the log does not say {why:?}:\n{log}").into());
        }
    }
    Ok(())
}

fn set_healthz_mode(h: &Harness, mode: &str) {
    let file = h.dir.join("routes.toml");
    let text = std::fs::read_to_string(&file).expect("routes.toml");
    let start = text
        .find("handler = \"test::tagged_healthz\"")
        .expect("healthz entry");
    let (head, tail) = text.split_at(start);
    let mode_at = tail.find("mode = ").expect("mode line");
    let line_end = mode_at + tail[mode_at..].find('\n').expect("line end");
    let tail = format!("{}mode = \"{mode}\"{}", &tail[..mode_at], &tail[line_end..]);
    std::fs::write(&file, format!("{head}{tail}")).expect("write routes.toml");
}

/// Hammers /healthz from four clients until told to stop; returns (answers by Rust, by Django,
/// failures).
fn load(
    addr: SocketAddr,
    stop: Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<(usize, usize, Vec<String>)>> {
    (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut rust, mut django, mut failed) = (0, 0, Vec::new());
                while stop.load(Ordering::SeqCst) == 0 {
                    let answer = get(addr, "/healthz");
                    if answer.status != 200 || !answer.text().contains("\"status\"") {
                        failed.push(format!("{} {}", answer.status, answer.text()));
                    } else if served_by_rust(&answer) {
                        rust += 1;
                    } else {
                        django += 1;
                    }
                }
                (rust, django, failed)
            })
        })
        .collect()
}

fn kill_switch_under_load(h: &Harness) -> Result<(), Failed> {
    let stop = Arc::new(AtomicUsize::new(0));
    let clients = load(h.addr, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    set_healthz_mode(h, "django");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("kill -HUP failed".into());
    }
    wait_until(
        || !served_by_rust(&get(h.addr, "/healthz")),
        "SIGHUP to switch /healthz to Django",
    )?;
    std::thread::sleep(Duration::from_millis(300));
    set_healthz_mode(h, "rust");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficus"))
        .args(["reload", "--state-file"])
        .arg(h.dir.join("server.json"))
        .output()
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success()
        || !said.contains("Reloaded routes.toml. Routes: 2 served by Rust, 2 in canary")
    {
        return Err(format!(
            "ficus reload: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    // The next request follows the new table.
    if !served_by_rust(&get(h.addr, "/healthz")) {
        return Err("after ficus reload, /healthz is not served by Rust".into());
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(1, Ordering::SeqCst);
    let (mut rust, mut django, mut failed) = (0, 0, Vec::new());
    for client in clients {
        let (r, d, f) = client.join().map_err(|_| "a client thread panicked")?;
        (rust, django) = (rust + r, django + d);
        failed.extend(f);
    }
    if !failed.is_empty() || rust == 0 || django == 0 {
        return Err(format!("{rust} by Rust, {django} by Django, failed: {failed:?}").into());
    }
    // A broken file is refused by `ficus reload` with the reason, and the table stays.
    std::fs::write(
        h.dir.join("routes.toml"),
        "[[route]]\npath = \"/healthz\"\n",
    )
    .map_err(|e| e.to_string())?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficus"))
        .args(["reload", "--server", &format!("http://{}", h.addr)])
        .output()
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&out.stderr);
    let restored = set_routes(h);
    if out.status.code() != Some(1)
        || !said.contains("routes.toml was not reloaded, the previous routes stay")
    {
        return Err(format!("a broken routes.toml: {said}").into());
    }
    restored?;
    if !served_by_rust(&get(h.addr, "/healthz")) {
        return Err("a refused reload changed the table".into());
    }
    Ok(())
}

/// Writes the harness's routes back (after a test broke the file on purpose).
fn set_routes(h: &Harness) -> Result<(), Failed> {
    let file = h.dir.join("routes.toml");
    let header = format!(
        "[django]\nwsgi = \"legacy.wsgi:application\"\nsettings = \"legacy.settings\"\npath = \"{}\"\n\n",
        support::repo().join("legacy_django").display()
    );
    std::fs::write(&file, format!("{header}{ROUTES}")).map_err(|e| e.to_string())?;
    Ok(())
}

fn wait_until(mut done: impl FnMut() -> bool, what: &str) -> Result<(), Failed> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn recording_replays(h: &Harness) -> Result<(), Failed> {
    let body =
        r#"{"text": "Rust owns the request. Python keeps the model.", "api_key": "sk-live-123"}"#;
    let answer = request(
        h.addr,
        "POST",
        "/api/summarize/",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer tok-456"),
        ],
        body.as_bytes(),
    );
    if answer.status != 200 {
        return Err(format!("summarize failed: {answer:?}").into());
    }
    let file = h.dir.join("recorded.jsonl");
    wait_until(|| file.exists(), "the recorded-traffic file")?;
    let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    if text.contains("sk-live-123") || text.contains("tok-456") {
        return Err(format!("a secret was recorded: {text}").into());
    }
    // Only the route with `record = 1.0` is recorded.
    if text.lines().any(|l| !l.contains("/api/summarize/")) {
        return Err(format!("an unrecorded route was recorded: {text}").into());
    }
    support::diff_replays(
        &file.display().to_string(),
        &h.env,
        "MATCH  POST /api/summarize/",
    )?;
    Ok(())
}

fn admin_access(h: &Harness) -> Result<(), Failed> {
    let local = get(h.addr, "/_ficus/api/status");
    if local.status != 200 || local.json()["routes"].as_array().map(Vec::len) != Some(4) {
        return Err(format!("loopback status: {local:?}").into());
    }
    // Through a proxy the peer is loopback but the client is not: Django answers (its 404).
    let proxied = request(
        h.addr,
        "GET",
        "/_ficus/api/status",
        &[("X-Forwarded-For", "203.0.113.7")],
        b"",
    );
    if proxied.status != 404 || proxied.text().contains("\"routes\"") {
        return Err(format!("a proxied request reached the status: {proxied:?}").into());
    }
    let metrics = request(
        h.addr,
        "GET",
        "/metrics",
        &[("X-Forwarded-For", "203.0.113.7")],
        b"",
    );
    if metrics.text().contains("ficus_requests_total") {
        return Err("a proxied request reached /metrics".into());
    }
    let with_token = request(
        h.addr,
        "GET",
        "/metrics",
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("Authorization", "Bearer open-sesame"),
        ],
        b"",
    );
    let text = with_token.text();
    if with_token.status != 200
        || !with_token
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4"))
        || !text.contains("# TYPE ficus_response_seconds histogram")
        || !text.contains("ficus_python_threads 4")
    {
        return Err(format!("/metrics with the token: {text}").into());
    }
    // A browser opens the dashboard with ?token= once; the token moves to a cookie.
    let opened = request(
        h.addr,
        "GET",
        "/_ficus/?token=open-sesame",
        &[("X-Forwarded-For", "203.0.113.7")],
        b"",
    );
    let cookie = opened.header("set-cookie").unwrap_or_default().to_owned();
    if opened.status != 303
        || !cookie.starts_with("ficus_admin=open-sesame;")
        || !cookie.contains("HttpOnly")
    {
        return Err(format!("opening with the token: {opened:?}").into());
    }
    let wrong = request(
        h.addr,
        "GET",
        "/_ficus/",
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("Cookie", "ficus_admin=guess"),
        ],
        b"",
    );
    if wrong.status != 404 {
        return Err(format!("a wrong token was let in: {}", wrong.status).into());
    }
    // A reload needs its header, so a web page elsewhere cannot trigger one from a browser.
    let forged = request(h.addr, "POST", "/_ficus/api/reload", &[], b"");
    if forged.status != 403 {
        return Err(format!("a reload without its header: {forged:?}").into());
    }
    Ok(())
}

fn dashboard_in_chromium(h: &Harness) -> Result<(), Failed> {
    // Traffic of every kind first, so there is something to draw.
    for i in 0..20 {
        let user = format!("dash-{i}");
        get(h.addr, "/healthz");
        request(
            h.addr,
            "GET",
            "/api/articles/?page_size=1",
            &[("X-User", &user)],
            b"",
        );
    }
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("Chromium is not installed (`make test` installs Debian's chromium package)")?;
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let url = format!("http://{}/_ficus/", h.addr);
    let run = |extra: &[String]| {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1400",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
    };
    let dom = run(&["--dump-dom".to_owned()]).map_err(|e| e.to_string())?;
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Newer serialisers escape < and > in attribute values.
    let dom = dom.replace("&lt;", "<").replace("&gt;", ">");
    let wanted = [
        r#"data-loaded="1""#,
        r#"data-path="/api/articles/<int:pk>/""#,
        r#"data-state="canary""#,
        r#"id="rust-share""#,
        // The migration's total counts the project's own routes apart from the admin's.
        "of 15; 47 routes of installed apps (admin) stay in Django",
    ];
    if let Some(missing) = wanted.iter().find(|w| !dom.contains(**w)) {
        return Err(format!("the rendered dashboard lacks {missing}:\n{dom}").into());
    }
    run(&[format!("--screenshot={}", screenshot.display())]).map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    if size < 10_000 {
        return Err(format!("no screenshot at {} ({size} bytes)", screenshot.display()).into());
    }
    eprintln!("dashboard screenshot: {}", screenshot.display());
    Ok(())
}

fn routes_show_live_figures(h: &Harness) -> Result<(), Failed> {
    for i in 0..10 {
        let user = format!("routes-{i}");
        request(
            h.addr,
            "GET",
            "/api/articles/?page_size=1",
            &[("X-User", &user)],
            b"",
        );
    }
    // The repository's routes.toml lists the same paths; the figures come from the server.
    let server = format!("http://{}", h.addr);
    let out = support::ficus_on_project(&["routes", "--server", &server], &h.env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let live = stdout
        .lines()
        .skip_while(|l| !l.starts_with("/api/articles/ "))
        .nth(1)
        .unwrap_or_default();
    let figures =
        regex::Regex::new(r"live: (\d+) by Rust, (\d+) by Django, canary 30%: \d+ fallbacks")
            .map_err(|e| e.to_string())?;
    let Some(caught) = figures.captures(live) else {
        return Err(format!(
            "no live canary figures under /api/articles/:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    };
    let served: u64 = caught[1].parse::<u64>().unwrap_or(0) + caught[2].parse::<u64>().unwrap_or(0);
    if served < 10 {
        return Err(format!("only {served} requests counted: {live}").into());
    }
    Ok(())
}
