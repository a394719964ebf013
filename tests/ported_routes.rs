//! Each ported route against Django's own answer: the same requests go to ficus serving every
//! entry of the repository's routes.toml in Rust and to ficus with every entry switched to
//! `mode = "django"` (the one-line rollback), each on its own copy of the seeded database.
//! Status, every header in order and the body bytes must match; only Date and the signing times
//! of pre-signed URLs may differ. (Django served through ficus is itself held to `manage.py
//! runserver` by tests/legacy_parity.rs, whose walk now also crosses the Rust routes.)

mod support;

use regex::Regex;
use support::{Response, Server, Site, request};

struct Pair {
    rust: Server,
    django: Server,
    _sites: (Site, Site),
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
        _sites: (rust_site, django_site),
        _routes: dir,
    }
}

/// Only what legitimately differs between two runs: the Date header, and the signing times (and
/// so the signatures, and the body's length) of pre-signed URLs.
fn normalise(response: &Response) -> (u16, Vec<(String, String)>, String) {
    // A signature's percent-escapes vary in number, and so does the body's length: a
    // Content-Length is compared as "the length of this body", which it must be on each side.
    let body_length = response.body.len().to_string();
    let headers = response
        .headers
        .iter()
        .filter(|(name, _)| name != "Date")
        .map(|(name, value)| {
            let value = if name == "Expires" {
                "<now>".to_owned()
            } else if name == "Content-Length" && *value == body_length {
                "<the body's length>".to_owned()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect();
    let headers = mask_csrf_cookie(headers);
    let body = response.text();
    // Each side masks its own CSRF secret with a random salt on every page.
    let body = Regex::new(r#"name="csrfmiddlewaretoken" value="[0-9A-Za-z]{64}""#)
        .unwrap()
        .replace_all(&body, r#"name="csrfmiddlewaretoken" value="<token>""#);
    let body = Regex::new(r"(Expires=|q-sign-time=|q-key-time=)[0-9%AB;]+")
        .unwrap()
        .replace_all(&body, "$1<time>");
    let body = Regex::new(r"(Signature=|q-signature=)[0-9A-Za-z%]+")
        .unwrap()
        .replace_all(&body, "$1<signature>");
    (response.status, headers, body.into_owned())
}

/// A new CSRF cookie is a random secret on each side (its expiry is the response's time).
fn mask_csrf_cookie(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let token = Regex::new(r"^csrftoken=[0-9A-Za-z]{32}; expires=[^;]+;").unwrap();
    headers
        .into_iter()
        .map(|(name, value)| {
            let value = token
                .replace(&value, "csrftoken=<secret>; expires=<date>;")
                .into_owned();
            (name, value)
        })
        .collect()
}

/// Sends every request to both servers; returns the statuses seen, fails on any difference.
fn compare(pair: &Pair, requests: &[(&str, &str, &[u8])]) -> Vec<u16> {
    let mut failures = Vec::new();
    let mut statuses = Vec::new();
    for (method, target, body) in requests {
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        let ours = request(pair.rust.addr, method, target, headers, body);
        let theirs = request(pair.django.addr, method, target, headers, body);
        statuses.push(ours.status);
        let (a, b) = (normalise(&ours), normalise(&theirs));
        if a != b {
            failures.push(format!(
                "{method} {target}\n  rust:   {a:?}\n  django: {b:?}"
            ));
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

/// The Rust server really used `handler`, and the rolled-back one never did.
fn assert_served_by(pair: &Pair, handler: &str) {
    let needle = format!("served by the Rust handler {handler}");
    assert!(pair.rust.log().contains(&needle), "{}", pair.rust.log());
    assert!(!pair.django.log().contains("served by the Rust handler"));
}

#[test]
fn healthz_answers_as_django_does() {
    let pair = servers();
    let statuses = compare(
        &pair,
        &[
            ("GET", "/healthz", b""),
            ("HEAD", "/healthz", b""),
            ("POST", "/healthz", b""),
        ],
    );
    // HEAD is not listed, so Django answers: 405 from require_GET. POST meets Django's CSRF
    // middleware first: 403.
    assert_eq!(statuses, [200, 405, 403]);
    assert_served_by(&pair, "legacy::healthz");

    // HTTP/2 has no Host header, only :authority; the route is still Rust's.
    let before = pair.rust.log().matches("legacy::healthz").count();
    let out = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-w", "\n%{http_version}"])
        .arg(format!("http://{}/healthz", pair.rust.addr))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "{\"status\": \"ok\", \"db\": true}\n2", "{text}");
    assert_eq!(
        pair.rust.log().matches("legacy::healthz").count(),
        before + 1
    );
}

#[test]
fn article_list_answers_as_django_does() {
    let pair = servers();
    let targets = [
        "/api/articles/",
        "/api/articles/?page=2&page_size=5",
        "/api/articles/?page_size=50",
        "/api/articles/?page_size=51",
        "/api/articles/?page_size=0",
        "/api/articles/?page_size=-3",
        "/api/articles/?page_size=abc",
        "/api/articles/?page_size=99999999999999999999999",
        "/api/articles/?page=0",
        "/api/articles/?page=999",
        "/api/articles/?page=abc",
        "/api/articles/?page=1.0",
        "/api/articles/?page=%EF%BC%92&page_size=3",
        "/api/articles/?page=+2&page_size=3",
        "/api/articles/?page=1&page=3&page_size=2",
        "/api/articles/?page=99999999999999999999999999",
        "/api/articles/?q=caf%C3%A9",
        "/api/articles/?q=CAF%C3%89&page=2&page_size=2",
        "/api/articles/?q=Z%C3%9CRICH",
        "/api/articles/?q=%E6%9D%B1%E4%BA%AC&page_size=3",
        "/api/articles/?q=++%09",
        "/api/articles/?q=100%25",
        "/api/articles/?q=_",
        "/api/articles/?q=%FF",
        "/api/articles/?q=no-such-words-anywhere",
    ];
    let requests: Vec<(&str, &str, &[u8])> =
        targets.iter().map(|t| ("GET", *t, &b""[..])).collect();
    let statuses = compare(&pair, &requests);
    for expected in [200, 400, 404] {
        assert!(statuses.contains(&expected), "{statuses:?}");
    }
    assert_served_by(&pair, "articles::list");
}

#[test]
fn article_detail_answers_as_django_does() {
    let pair = servers();
    let statuses = compare(
        &pair,
        &[
            ("GET", "/api/articles/1/", b""),
            ("GET", "/api/articles/7/", b""),
            ("GET", "/api/articles/0007/", b""),
            ("GET", "/api/articles/0/", b""),
            ("GET", "/api/articles/999999/", b""),
            ("GET", "/api/articles/99999999999999999999/", b""),
            ("GET", "/api/articles/abc/", b""),
            ("GET", "/api/articles/1", b""),
            ("HEAD", "/api/articles/1/", b""),
            ("POST", "/api/articles/1/", b""),
        ],
    );
    assert_eq!(statuses, [200, 200, 200, 404, 404, 404, 404, 301, 405, 403]);
    assert_served_by(&pair, "articles::detail");
}

#[test]
fn signed_url_answers_as_django_does_for_both_providers() {
    let pair = servers();
    let statuses = compare(
        &pair,
        &[
            (
                "GET",
                "/api/media/docs/2026/report.pdf/signed-url/?provider=oss",
                b"",
            ),
            (
                "GET",
                "/api/media/docs/2026/report.pdf/signed-url/?provider=cos&expires=600",
                b"",
            ),
            (
                "GET",
                "/api/media/%E6%96%87%E4%BB%B6/a%20b.txt/signed-url/?provider=oss",
                b"",
            ),
            (
                "GET",
                "/api/media/%E6%96%87%E4%BB%B6/a%20b.txt/signed-url/?provider=cos",
                b"",
            ),
            (
                "GET",
                "/api/media/a%2Fb.txt/signed-url/?provider=oss&expires=604800",
                b"",
            ),
            (
                "GET",
                "/api/media/x/signed-url/?provider=oss&expires=%2B60",
                b"",
            ),
            (
                "GET",
                "/api/media/x/signed-url/?provider=cos&expires=%EF%BC%96%EF%BC%90",
                b"",
            ),
            ("GET", "/api/media/x/signed-url/", b""),
            ("GET", "/api/media/x/signed-url/?provider=s3", b""),
            (
                "GET",
                "/api/media/x/signed-url/?provider=oss&expires=0",
                b"",
            ),
            (
                "GET",
                "/api/media/x/signed-url/?provider=oss&expires=604801",
                b"",
            ),
            (
                "GET",
                "/api/media/x/signed-url/?provider=oss&expires=soon",
                b"",
            ),
            ("GET", "/api/media//signed-url/?provider=oss", b""),
        ],
    );
    assert_eq!(&statuses[..7], [200; 7]);
    assert_eq!(&statuses[7..12], [400; 5]);
    assert_eq!(statuses[12], 404, "an empty key does not fit <path:key>");
    assert_served_by(&pair, "media::signed_url");
}

#[test]
fn summarize_answers_as_django_does() {
    let pair = servers();
    let text = "Rust owns the request. Python keeps the model. The route moves one step at a time! Is it safe? Shadow mode says so.";
    let ok = format!(r#"{{"text": "{text}", "max_sentences": 2}}"#);
    let unicode =
        r#"{"text": "東京は大きい。大阪も大きい。Zürich est petit.", "max_sentences": 1}"#;
    let bom = format!("\u{feff}{{\"text\": \"{text}\"}}");
    // Django reads up to DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) and refuses more with its 400 page.
    // (Padded with JSON whitespace, so the size is in the body, not in the text work.)
    let padded = |size: usize| format!("{{\"text\": \"{text}\"{}}}", " ".repeat(size));
    let (under_limit, over_limit) = (padded(2_400_000), padded(2_700_000));
    let statuses = compare(
        &pair,
        &[
            ("POST", "/api/summarize/", ok.as_bytes()),
            ("POST", "/api/summarize/", unicode.as_bytes()),
            ("POST", "/api/summarize/", bom.as_bytes()),
            (
                "POST",
                "/api/summarize/",
                br#"{"text": "a", "text": "Last one wins."}"#,
            ),
            ("POST", "/api/summarize/", under_limit.as_bytes()),
            ("POST", "/api/summarize/", b"{not json"),
            ("POST", "/api/summarize/", b""),
            ("POST", "/api/summarize/", b"[1, 2]"),
            ("POST", "/api/summarize/", br#"{"max_sentences": 2}"#),
            ("POST", "/api/summarize/", br#"{"text": "   "}"#),
            ("POST", "/api/summarize/", br#"{"text": 42}"#),
            (
                "POST",
                "/api/summarize/",
                br#"{"text": "a", "max_sentences": true}"#,
            ),
            (
                "POST",
                "/api/summarize/",
                br#"{"text": "a", "max_sentences": 2.0}"#,
            ),
            (
                "POST",
                "/api/summarize/",
                br#"{"text": "a", "max_sentences": 11}"#,
            ),
            (
                "POST",
                "/api/summarize/",
                br#"{"text": "a", "max_sentences": 99999999999999999999}"#,
            ),
            ("POST", "/api/summarize/", over_limit.as_bytes()),
            ("GET", "/api/summarize/", b""),
        ],
    );
    assert_eq!(&statuses[..5], [200; 5]);
    assert_eq!(&statuses[5..16], [400; 11]);
    assert_eq!(
        statuses[16], 405,
        "GET falls through to Django's require_POST"
    );
    assert_served_by(&pair, "ai::summarize");
}

#[test]
fn host_outside_allowed_hosts_gets_djangos_400_on_a_ported_route() {
    let pair = servers();
    let raw = b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    let ours = support::parse_response(&support::exchange(pair.rust.addr, raw), false).0;
    let theirs = support::parse_response(&support::exchange(pair.django.addr, raw), false).0;
    assert_eq!(ours.status, 400);
    assert_eq!(normalise(&ours), normalise(&theirs));
    assert!(!pair.rust.log().contains("served by the Rust handler"));
}

#[test]
fn article_pages_answer_as_django_does() {
    let pair = servers();
    let targets = [
        "/",
        "/?page=2",
        "/articles/",
        "/articles/?page=2",
        "/articles/?page=3",
        "/articles/?page=4",
        "/articles/?page=0",
        "/articles/?page=abc",
        "/articles/?page=99999999999999999999999999999999",
        "/articles/?tag=zurich",
        "/articles/?tag=cloud",
        "/articles/?tag=z%C3%BCrich",
        "/articles/?tag=python&page=2",
        "/articles/legacy-request-story/",
        "/articles/naive-museum-notes/",
        "/articles/no-such-article/",
    ];
    let requests: Vec<(&str, &str, &[u8])> =
        targets.iter().map(|t| ("GET", *t, &b""[..])).collect();
    let statuses = compare(&pair, &requests);
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        7,
        "{statuses:?}"
    );
    for handler in [
        "articles::home",
        "articles::article_list",
        "articles::article_page",
    ] {
        assert_served_by(&pair, handler);
    }
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

#[test]
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
    assert_served_by(&pair, "articles::article_page");
}

#[test]
fn login_profile_and_upload_pages_answer_as_django_does() {
    let pair = servers();
    let statuses = compare(
        &pair,
        &[
            ("GET", "/accounts/login/", b""),
            ("GET", "/accounts/login/?next=/accounts/profile/", b""),
            ("GET", "/accounts/login/?next=https://evil.example/", b""),
            ("GET", "/accounts/profile/", b""),
            ("GET", "/accounts/profile/?tab=articles", b""),
            ("GET", "/media/upload/", b""),
            ("GET", "/api/articles/3/related/", b""),
            ("GET", "/api/articles/99999/related/", b""),
            ("GET", "/reports/articles.csv", b""),
        ],
    );
    assert_eq!(statuses, [200, 200, 200, 302, 302, 200, 200, 404, 200]);
    for handler in [
        "accounts::login_form",
        "accounts::profile",
        "media::upload_form",
        "ai::related",
        "reports::articles_csv",
    ] {
        assert_served_by(&pair, handler);
    }
}
