//! Each ported route against Django's own answer over real sockets: the requests of every list
//! in tests/requests/ go to ficus serving every routes.toml entry in Rust and to ficus with
//! every entry switched to `mode = "django"` (the one-line rollback), each on its own copy of
//! the seeded database. A list that says `byte_for_byte = true` (every list here does) is held to
//! the status line, every header name as written and in order, and the body's bytes; only
//! run-to-run noise (dates, tokens, a form's masked CSRF token) and the route's own routes.toml
//! `filters` and `ignore_headers` are set aside. Other lists are held to the loose form `ficus
//! diff` uses (header order and JSON key order aside).
//!
//! A list's requests run in its order on one database per side, so what one request changes
//! (a comment, an upload) the next sees on both sides alike; the session of a request's `user`
//! is put back before each such request, so a logout earlier in the list does not log them out.
//!
//! The trials after the lists hold what a list cannot say: HTTP/2, a Host Django refuses,
//! concurrent reads, bodies at the upload limit, and requests next to a ported route that no
//! entry takes. (Django served through ficus is itself held to `manage.py runserver` by
//! tests/legacy_parity.rs.)

mod support;

use ficus::parity::requests::Request;
use ficus::parity::{Answer, Normalised, Rules, Selector, normalise, normalise_exact};
use libtest_mimic::{Arguments, Failed, Trial};
use regex::Regex;
use support::{Logins, Response, Server, Site};

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = support::request_lists()
        .into_iter()
        .map(|(list, requests)| {
            Trial::test(format!("{list}::answers_as_django_does"), move || {
                list_answers_as_django_does(&list, &requests)
            })
        })
        .collect();
    let hand: [(&str, fn()); 5] = [
        (
            "healthz_is_rusts_also_over_http2",
            healthz_is_rusts_also_over_http2,
        ),
        (
            "host_outside_allowed_hosts_gets_djangos_400_on_a_ported_route",
            host_outside_allowed_hosts_gets_djangos_400_on_a_ported_route,
        ),
        (
            "article_page_counts_each_read_once_also_when_reads_race",
            article_page_counts_each_read_once_also_when_reads_race,
        ),
        (
            "summarize_bodies_at_the_upload_limit_answer_as_django_does",
            summarize_bodies_at_the_upload_limit_answer_as_django_does,
        ),
        (
            "requests_beside_a_ported_route_answer_as_django_does",
            requests_beside_a_ported_route_answer_as_django_does,
        ),
    ];
    trials.extend(hand.into_iter().map(|(name, test)| {
        Trial::test(name, move || {
            test();
            Ok(())
        })
    }));
    libtest_mimic::run(&args, trials).exit();
}

struct Pair {
    rust: Server,
    django: Server,
    sites: (Site, Site),
    _routes: tempfile::TempDir,
}

/// Two servers on their own copies of the seeded site: every routes.toml entry in Rust (shadow
/// entries included, so a handler is held to Django before it takes traffic), and every entry
/// switched back to Django (the one-line rollback).
fn servers() -> Pair {
    let rust_site = Site::new();
    let django_site = Site::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let debug = ("FICUS_LOG".to_owned(), "info,ficus=debug".to_owned());
    let mut rust_env = rust_site.env();
    rust_env.push(debug.clone());
    let mut django_env = django_site.env();
    django_env.push(debug);
    Pair {
        rust: Server::ficus(
            &["--routes", &support::routes_with_mode(dir.path(), "rust")],
            &rust_env,
        ),
        django: Server::ficus(
            &["--routes", &support::routes_with_mode(dir.path(), "django")],
            &django_env,
        ),
        sites: (rust_site, django_site),
        _routes: dir,
    }
}

/// The list `app_view` holds requests for the handler `app::view`.
fn handler_of(list: &str) -> String {
    list.replacen('_', "::", 1)
}

/// The parity rules of the routes.toml entries of `handler`, as `ficus diff` applies them.
fn rules_of(handler: &str) -> Rules {
    let text = std::fs::read_to_string(support::repo().join("routes.toml")).expect("routes.toml");
    let routes: toml::Table = text.parse().expect("routes.toml is TOML");
    let mut rules = Rules::default();
    let entries = routes.get("route").and_then(toml::Value::as_array);
    for entry in entries
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
    {
        if entry.get("handler").and_then(toml::Value::as_str) != Some(handler) {
            continue;
        }
        let strings = |key: &str| -> Vec<String> {
            entry
                .get(key)
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        rules.ignore_headers.extend(strings("ignore_headers"));
        for selector in strings("redact") {
            rules
                .redact
                .push(Selector::parse(&selector).expect("a routes.toml selector"));
        }
        let filters = entry.get("filters").and_then(toml::Value::as_array);
        for pair in filters
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_array)
        {
            let text = |i: usize| pair.get(i).and_then(toml::Value::as_str).unwrap_or("");
            rules.filters.push((
                Regex::new(text(0)).expect("a routes.toml filter"),
                text(1).to_owned(),
            ));
        }
    }
    rules
}

/// A response as the parity engine reads one.
fn answer(response: &Response) -> Answer {
    Answer {
        status: response.status,
        headers: response.headers.clone(),
        body: bytes::Bytes::from(response.body.clone()),
    }
}

/// What must be equal on both sides: the normalised answer, plus, byte for byte, the status
/// line's reason and the header names as written.
type Comparable = (Normalised, Option<(String, Vec<String>)>);

fn comparable(response: &Response, rules: &Rules, byte_for_byte: bool) -> Comparable {
    let answer = answer(response);
    if byte_for_byte {
        let names = response.headers.iter().map(|(n, _)| n.clone()).collect();
        (
            normalise_exact(&answer, rules),
            Some((response.reason.clone(), names)),
        )
    } else {
        (normalise(&answer, rules), None)
    }
}

/// Sends `request` to both servers (as its `user` when it has one); the difference, if any.
fn compare(
    pair: &Pair,
    logins: &mut Option<(Logins, Logins)>,
    request: &Request,
    rules: &Rules,
) -> Option<String> {
    let mut sides = Vec::new();
    for (side, server) in [(0, &pair.rust), (1, &pair.django)] {
        let mut headers = request.headers.clone();
        if let Some(user) = &request.user {
            let (rust_logins, django_logins) = logins
                .get_or_insert_with(|| (Logins::new(&pair.sites.0), Logins::new(&pair.sites.1)));
            let logins = if side == 0 {
                rust_logins
            } else {
                django_logins
            };
            let key = logins.log_in(user);
            let cookie = format!("{}={key}", logins.cookie_name);
            match headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            {
                Some((_, value)) => *value = format!("{value}; {cookie}"),
                None => headers.push(("Cookie".to_owned(), cookie)),
            }
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        sides.push(support::request(
            server.addr,
            &request.method,
            &request.target(),
            &headers,
            &request.body,
        ));
    }
    let ours = comparable(&sides[0], rules, request.byte_for_byte);
    let theirs = comparable(&sides[1], rules, request.byte_for_byte);
    (ours != theirs).then(|| {
        format!(
            "{} {} ({}):\n{}",
            request.method,
            request.target(),
            request.name,
            differences(&theirs, &ours)
        )
    })
}

/// Each difference on its own line, as `ficus diff` shows them.
fn differences(django: &Comparable, rust: &Comparable) -> String {
    let mut lines: Vec<String> = ficus::parity::compare(&django.0, &rust.0)
        .iter()
        .map(|d| format!("  {d}"))
        .collect();
    if django.1 != rust.1 {
        lines.push(format!(
            "  reason and header names as written: django {:?}, got {:?}",
            django.1, rust.1
        ));
    }
    lines.join("\n")
}

fn list_answers_as_django_does(list: &str, requests: &[Request]) -> Result<(), Failed> {
    let pair = servers();
    let handler = handler_of(list);
    let rules = rules_of(&handler);
    let mut logins = None;
    let failures: Vec<String> = requests
        .iter()
        .filter_map(|request| compare(&pair, &mut logins, request, &rules))
        .collect();
    if !failures.is_empty() {
        return Err(format!(
            "{} request(s) of {list} differ:\n{}\n--- rust server log ---\n{}",
            failures.len(),
            failures.join("\n"),
            pair.rust.log()
        )
        .into());
    }
    let needle = format!("served by the Rust handler {handler}");
    if !pair.rust.log().contains(&needle) {
        return Err(format!("{handler} served none of {list}:\n{}", pair.rust.log()).into());
    }
    if pair.django.log().contains("served by the Rust handler") {
        return Err("the rolled-back server ran a Rust handler".into());
    }
    Ok(())
}

/// Hand-written requests, compared as a byte-for-byte list entry is; the statuses seen.
fn compare_by_hand(pair: &Pair, requests: &[(&str, &str, &[u8])]) -> Vec<u16> {
    let rules = Rules::default();
    let mut failures = Vec::new();
    let mut statuses = Vec::new();
    for (method, target, body) in requests {
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        let ours = support::request(pair.rust.addr, method, target, headers, body);
        let theirs = support::request(pair.django.addr, method, target, headers, body);
        statuses.push(ours.status);
        let (a, b) = (
            comparable(&ours, &rules, true),
            comparable(&theirs, &rules, true),
        );
        if a != b {
            failures.push(format!("{method} {target}:\n{}", differences(&b, &a)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} request(s) differ:\n{}\n--- rust server log ---\n{}",
        failures.len(),
        failures.join("\n"),
        pair.rust.log()
    );
    statuses
}

fn healthz_is_rusts_also_over_http2() {
    let pair = servers();
    // HTTP/2 has no Host header, only :authority; the route is still Rust's.
    let out = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-w", "\n%{http_version}"])
        .arg(format!("http://{}/healthz", pair.rust.addr))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "{\"status\": \"ok\", \"db\": true}\n2", "{text}");
    assert_eq!(pair.rust.log().matches("legacy::healthz").count(), 1);
}

fn host_outside_allowed_hosts_gets_djangos_400_on_a_ported_route() {
    let pair = servers();
    let raw = b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    let ours = support::parse_response(&support::exchange(pair.rust.addr, raw), false).0;
    let theirs = support::parse_response(&support::exchange(pair.django.addr, raw), false).0;
    assert_eq!(ours.status, 400);
    let rules = Rules::default();
    assert_eq!(
        comparable(&ours, &rules, true),
        comparable(&theirs, &rules, true)
    );
    assert!(!pair.rust.log().contains("served by the Rust handler"));
}

/// `view_count` of the article `slug`, as the JSON API reports it.
fn view_count(server: &Server, slug: &str) -> i64 {
    let answer = support::get(server.addr, "/api/articles/?page_size=50");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let list = answer.json();
    let article = list["results"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["slug"] == slug))
        .unwrap_or_else(|| panic!("no article {slug} in {list}"));
    article["view_count"].as_i64().expect("view_count")
}

fn article_page_counts_each_read_once_also_when_reads_race() {
    let pair = servers();
    let slug = "legacy-request-story";
    let page = format!("/articles/{slug}/");
    for server in [&pair.rust, &pair.django] {
        let before = view_count(server, slug);
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (addr, page) = (server.addr, page.clone());
                std::thread::spawn(move || {
                    (0..5)
                        .map(|_| support::get(addr, &page).status)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.join().expect("reader"), [200; 5]);
        }
        // An unknown slug counts nothing.
        assert_eq!(
            support::get(server.addr, "/articles/no-such-article/").status,
            404
        );
        assert_eq!(view_count(server, slug), before + 40, "{}", server.log());
    }
    assert!(
        pair.rust
            .log()
            .contains("served by the Rust handler articles::article_page")
    );
}

fn summarize_bodies_at_the_upload_limit_answer_as_django_does() {
    let pair = servers();
    let text = "Rust owns the request. Python keeps the model.";
    // Django reads up to DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) and refuses more with its 400 page.
    // (Padded with JSON whitespace, so the size is in the body, not in the text work.)
    let padded = |size: usize| format!("{{\"text\": \"{text}\"{}}}", " ".repeat(size));
    let (under_limit, over_limit) = (padded(2_400_000), padded(2_700_000));
    let statuses = compare_by_hand(
        &pair,
        &[
            ("POST", "/api/summarize/", under_limit.as_bytes()),
            ("POST", "/api/summarize/", over_limit.as_bytes()),
        ],
    );
    assert_eq!(statuses, [200, 400]);
    assert!(
        pair.rust
            .log()
            .contains("served by the Rust handler ai::summarize")
    );
}

/// Methods and paths a routes.toml entry does not take, next to ones it does: they reach Django
/// on both sides, as they did before the port.
fn requests_beside_a_ported_route_answer_as_django_does() {
    let pair = servers();
    let statuses = compare_by_hand(
        &pair,
        &[
            ("HEAD", "/healthz", b""),
            ("POST", "/healthz", b""),
            ("GET", "/api/articles/abc/", b""),
            ("GET", "/api/articles/1", b""),
            ("HEAD", "/api/articles/1/", b""),
            ("POST", "/api/articles/1/", b""),
            ("GET", "/api/summarize/", b""),
            ("GET", "/api/media//signed-url/?provider=oss", b""),
        ],
    );
    // HEAD is not listed, so Django answers: 405 from require_GET. A POST meets Django's CSRF
    // middleware first: 403. An empty key does not fit <path:key>.
    assert_eq!(statuses, [405, 403, 404, 301, 405, 403, 405, 404]);
    assert!(!pair.rust.log().contains("served by the Rust handler"));
}
