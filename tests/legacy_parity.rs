//! Every legacy route answered through ficus matches the same request answered by Django's own
//! server (`manage.py runserver`), each with its own copy of the same seeded database: status,
//! headers (names compared case-sensitively, Date/Server/framing removed) and body, with CSRF
//! and session tokens normalised. The same walk runs against the app wrapped in
//! `wsgiref.validate.validator`, which must raise nothing.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use regex::Regex;
use support::{Response, Server, Site, request};

/// One side of the comparison, with its own cookie jar (sessions differ per side).
struct Side {
    addr: SocketAddr,
    cookies: BTreeMap<String, String>,
}

impl Side {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    fn send(
        &mut self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers: Vec<(&str, &str)> = vec![("User-Agent", "ficus-parity")];
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let csrf = self.cookies.get("csrftoken").cloned().unwrap_or_default();
        let origin = format!("http://127.0.0.1:{}", self.addr.port());
        if method == "POST" {
            headers.push(("X-CSRFToken", &csrf));
            headers.push(("Origin", &origin));
        }
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
        }
        let response = request(self.addr, method, target, &headers, body);
        for value in response.headers_named("Set-Cookie") {
            let pair = value.split(';').next().unwrap_or("");
            if let Some((name, val)) = pair.split_once('=') {
                if val.is_empty() || value.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), val.to_owned());
                }
            }
        }
        response
    }
}

/// What is compared: everything but what differs between any two runs of the same server.
fn normalise(response: &Response, port: u16) -> (u16, Vec<(String, String)>, String) {
    let token = Regex::new(r"(csrftoken|sessionid)=[^;]+").unwrap();
    let expires = Regex::new(r"(?i)expires=[^;]+").unwrap();
    // The messages cookie is signed with the current second: the message itself must agree.
    let signed = Regex::new(r"(messages=[^:;]*):[^;]+").unwrap();
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(n, _)| {
            !["date", "server", "connection", "transfer-encoding"]
                .contains(&n.to_ascii_lowercase().as_str())
        })
        .map(|(n, v)| {
            let v = match n.to_ascii_lowercase().as_str() {
                "set-cookie" => {
                    let v = token.replace_all(v, "$1=<token>");
                    let v = signed.replace_all(&v, "$1:<signature>");
                    expires.replace_all(&v, "expires=<date>").into_owned()
                }
                "expires" => "<date>".to_owned(),
                // Signed URLs vary in length with their signatures' percent-escapes: compare
                // "the length of this body", which it must be on each side.
                "content-length" if *v == response.body.len().to_string() => {
                    "<the body's length>".to_owned()
                }
                _ => v.replace(&port.to_string(), "<port>"),
            };
            (n.clone(), v)
        })
        .collect();
    headers.sort();
    let body = response.text().replace(&port.to_string(), "<port>");
    let body = Regex::new(r#"name="csrfmiddlewaretoken" value="[^"]+""#)
        .unwrap()
        .replace_all(&body, r#"name="csrfmiddlewaretoken" value="<token>""#);
    // Signed URLs embed the signing time; the URL up to its query string must agree.
    let body = Regex::new(r#""url": "([^"?]*)\?[^"]*""#)
        .unwrap()
        .replace_all(&body, r#""url": "$1?<signature>""#);
    // Rows created during the walk carry the current time (seeded rows have whole minutes).
    let body = Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00")
        .unwrap()
        .replace_all(&body, "<now>");
    // The admin shows them to the minute ("Dec. 2, 2026, 1:36 p.m."): one side may be a minute on.
    let body =
        Regex::new(r"(\w{3,5}\.? \d{1,2}, \d{4}, )(\d{1,2}(:\d\d)? [ap]\.m\.|noon|midnight)")
            .unwrap()
            .replace_all(&body, "$1<time>");
    (response.status, headers, body.into_owned())
}

struct Step {
    method: &'static str,
    target: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Articles created "now" carry the current time; their listing is compared by shape.
    time_sensitive: bool,
}

fn get(target: impl Into<String>) -> Step {
    Step {
        method: "GET",
        target: target.into(),
        content_type: None,
        body: Vec::new(),
        time_sensitive: false,
    }
}

fn post(target: impl Into<String>, content_type: &'static str, body: impl Into<Vec<u8>>) -> Step {
    Step {
        method: "POST",
        target: target.into(),
        content_type: Some(content_type),
        body: body.into(),
        time_sensitive: false,
    }
}

fn walk(slug: &str, tag: &str) -> Vec<Step> {
    let boundary = "ficusboundary7MA4YWxkTrZu0gW";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nhello from the parity test\n\r\n--{boundary}--\r\n"
    );
    let multipart_type: &'static str = "multipart/form-data; boundary=ficusboundary7MA4YWxkTrZu0gW";
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    vec![
        get("/"),
        get("/articles/"),
        get("/articles/?page=2"),
        get(format!("/articles/?tag={tag}")),
        get("/articles/?page=999"),
        get(format!("/articles/{slug}/")),
        post(
            format!("/articles/{slug}/"),
            form,
            "author_name=Ana&body=Caf%C3%A9+first%21",
        ),
        get(format!("/articles/{slug}/")),
        get("/articles/no-such-article/"),
        get("/api/articles/"),
        get("/api/articles/?q=caf%C3%A9"),
        get("/api/articles/?q=%E6%9D%B1%E4%BA%AC&page_size=3"),
        get("/api/articles/?page=2&page_size=5"),
        get("/api/articles/?page=999"),
        get("/api/articles/1/"),
        get("/api/articles/999999/"),
        get("/api/articles/1/related/"),
        get("/api/articles/999999/related/"),
        post(
            "/api/summarize/",
            json,
            r#"{"text": "Rust is fast. Django is productive. Rust and Django work together. The migration is gradual.", "max_sentences": 2}"#,
        ),
        post("/api/summarize/", json, "{not json"),
        post("/api/summarize/", json, r#"{"max_sentences": 2}"#),
        get("/api/summarize/"),
        post(
            "/api/articles/",
            json,
            r#"{"title": "Anonymous", "body": "x"}"#,
        ),
        get("/accounts/profile/"),
        get("/accounts/login/"),
        post(
            "/accounts/login/",
            form,
            "username=editor&password=editor-password",
        ),
        get("/accounts/profile/"),
        Step {
            time_sensitive: true,
            ..post(
                "/api/articles/",
                json,
                r#"{"title": "Ported to Rust", "body": "One route at a time.", "tags": ["rust"]}"#,
            )
        },
        post("/api/articles/", json, "[broken"),
        post("/api/articles/", json, r#"{"title": ""}"#),
        get("/media/upload/"),
        post("/media/upload/", multipart_type, multipart),
        get("/media/files/uploads/notes.txt"),
        get("/media/files/uploads/missing.txt"),
        get("/api/media/docs/2026/report.pdf/signed-url/?provider=oss"),
        get("/api/media/docs/2026/report.pdf/signed-url/?provider=cos&expires=600"),
        get("/api/media/docs/report.pdf/signed-url/?provider=s3"),
        get("/reports/articles.csv"),
        get("/healthz"),
        get("/admin/"),
        get("/admin/articles/article/?q=rust"),
        post("/accounts/logout/", form, ""),
        get("/admin/"),
        get("/admin/login/"),
        get("/no/such/page/"),
        Step {
            method: "HEAD",
            ..get("/")
        },
    ]
}

fn first_article(server: &Server) -> (String, String) {
    let list = support::get(server.addr, "/api/articles/?page_size=50").json();
    let with_tag = list["results"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["tags"].as_array().is_some_and(|t| !t.is_empty()))
        })
        .expect("an article with a tag")
        .clone();
    (
        with_tag["slug"].as_str().unwrap_or_default().to_owned(),
        with_tag["tags"][0].as_str().unwrap_or_default().to_owned(),
    )
}

fn run_walk(ficus_args: &[&str], extra_env: &[(String, String)]) -> (Server, Vec<u16>) {
    let ficus_site = Site::new();
    let django_site = Site::new();
    let mut ficus_env = ficus_site.env();
    ficus_env.extend_from_slice(extra_env);
    let ficus = Server::ficus(ficus_args, &ficus_env);
    let django = Server::django(&django_site.env());
    let (slug, tag) = first_article(&ficus);

    let mut ours = Side::new(ficus.addr);
    let mut theirs = Side::new(django.addr);
    let mut statuses = Vec::new();
    let mut failures = Vec::new();
    for step in walk(&slug, &tag) {
        let a = ours.send(step.method, &step.target, step.content_type, &step.body);
        let b = theirs.send(step.method, &step.target, step.content_type, &step.body);
        statuses.push(a.status);
        let (na, nb) = (
            normalise(&a, ficus.addr.port()),
            normalise(&b, django.addr.port()),
        );
        let same = if step.time_sensitive {
            na.0 == nb.0 && na.1.len() == nb.1.len()
        } else {
            na == nb
        };
        if !same {
            failures.push(format!(
                "{} {}\n  ficus:  {:?}\n  django: {:?}",
                step.method, step.target, na, nb
            ));
        }
    }
    drop(ficus_site);
    assert!(
        failures.is_empty(),
        "{} of the walk's requests differ:\n{}\n--- ficus log ---\n{}",
        failures.len(),
        failures.join("\n"),
        ficus.log()
    );
    (ficus, statuses)
}

#[test]
fn every_legacy_route_answers_as_django_does() {
    let (ficus, statuses) = run_walk(&[], &[]);
    // The walk reaches success, redirect and error answers alike.
    for expected in [200, 201, 302, 400, 403, 404, 405] {
        assert!(
            statuses.contains(&expected),
            "no {expected} in the walk: {statuses:?}"
        );
    }
    assert!(!ficus.log().contains("panicked"), "{}", ficus.log());
}

#[test]
fn the_validator_wrapped_site_raises_nothing_across_the_walk() {
    let pythonpath = support::site_pythonpath();
    let env = vec![("PYTHONWARNINGS".to_owned(), "error".to_owned())];
    let (ficus, statuses) = run_walk(
        &[
            "validated_site",
            "--pythonpath",
            &pythonpath,
            "--settings",
            "legacy.settings",
        ],
        &env,
    );
    let log = ficus.log();
    assert!(
        !statuses.contains(&500),
        "a 500 in the walk: {statuses:?}\n{log}"
    );
    for complaint in ["AssertionError", "WSGIWarning", "Traceback"] {
        assert!(!log.contains(complaint), "the validator complained:\n{log}");
    }
}

#[test]
fn the_site_on_rust_handlers_and_the_admin_answers_the_walk_as_django_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let routes = support::routes_with_mode(dir.path(), "rust");
    let env = vec![("FICUS_LOG".to_owned(), "info,ficus=debug".to_owned())];
    let (ficus, statuses) = run_walk(&["--routes", &routes], &env);
    for expected in [200, 201, 302, 400, 403, 404, 405] {
        assert!(
            statuses.contains(&expected),
            "no {expected} in the walk: {statuses:?}"
        );
    }
    // Every handler routes.toml names answered some step of the walk.
    let log = ficus.log();
    let table: toml::Table = std::fs::read_to_string(&routes)
        .expect("routes")
        .parse()
        .expect("TOML");
    let handlers: std::collections::BTreeSet<String> = table["route"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["handler"].as_str().map(str::to_owned))
        .collect();
    let unused: Vec<&String> = handlers
        .iter()
        .filter(|h| !log.contains(&format!("served by the Rust handler {h}")))
        .collect();
    assert!(
        unused.is_empty(),
        "the walk never reached {unused:?}\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}
