//! routes.toml as a user edits it: reloaded on SIGHUP (an invalid edit keeps the old table),
//! refused at start with one sentence naming the line, and inspected by `ficus routes` and
//! `ficus check` against the legacy project's live URLconf.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use support::{Server, Site, get};

/// The repository's routes.toml, made usable from anywhere (absolute `path`).
fn repository_routes() -> String {
    std::fs::read_to_string(support::repo().join("routes.toml"))
        .expect("routes.toml")
        .replace(
            "path = \"legacy_django\"",
            &format!(
                "path = \"{}\"",
                support::repo().join("legacy_django").display()
            ),
        )
}

fn write_routes(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("routes.toml");
    std::fs::write(&file, text).expect("write routes.toml");
    file
}

fn ficus(args: &[&str], site: &Site) -> Output {
    support::ficus_on_project(args, &site.env())
}

fn wait_for_log(server: &Server, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "never logged {needle:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn served_by_rust(server: &Server, handler: &str) -> usize {
    server
        .log()
        .matches(&format!("served by the Rust handler {handler}"))
        .count()
}

#[test]
fn sighup_switches_a_route_back_to_django_and_keeps_the_table_on_a_bad_edit() {
    let site = Site::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let original = repository_routes();
    let routes = write_routes(dir.path(), &original);
    let mut env = site.env();
    env.push(("FICUS_LOG".into(), "info,ficus=debug".into()));
    let server = Server::ficus(&["--routes", &routes.display().to_string()], &env);

    assert_eq!(get(server.addr, "/healthz").status, 200);
    assert_eq!(served_by_rust(&server, "legacy::healthz"), 1);

    // Clients keep coming while the table is swapped twice; none of them may fail.
    let addr = server.addr;
    let load = std::thread::spawn(move || {
        (0..150)
            .map(|_| get(addr, "/healthz").status)
            .filter(|status| *status != 200)
            .count()
    });
    let healthz_entry = "handler = \"legacy::healthz\"\nmode = \"rust\"";
    let switched_off = original.replace(
        healthz_entry,
        "handler = \"legacy::healthz\"\nmode = \"django\"",
    );
    assert_ne!(switched_off, original);
    write_routes(dir.path(), &switched_off);
    server.signal("HUP");
    wait_for_log(&server, "Reloaded routes.toml", 1);
    write_routes(dir.path(), &original);
    server.signal("HUP");
    wait_for_log(&server, "Reloaded routes.toml", 2);
    write_routes(dir.path(), &switched_off);
    server.signal("HUP");
    wait_for_log(&server, "Reloaded routes.toml", 3);
    assert_eq!(
        load.join().expect("load thread"),
        0,
        "a request failed during reloads"
    );

    // Switched off: Django answers /healthz now.
    let before = served_by_rust(&server, "legacy::healthz");
    assert_eq!(get(server.addr, "/healthz").status, 200);
    assert_eq!(served_by_rust(&server, "legacy::healthz"), before);

    // A bad edit is logged with its line and changes nothing.
    let broken = switched_off.replace(
        "handler = \"articles::detail\"",
        "handler = \"articles::detial\"",
    );
    let typo_line = 1 + broken
        .lines()
        .position(|l| l.contains("articles::detial"))
        .expect("edited line");
    write_routes(dir.path(), &broken);
    server.signal("HUP");
    wait_for_log(&server, "was not reloaded", 1);
    let log = server.log();
    assert!(log.contains("unknown handler `articles::detial`"), "{log}");
    // The error names the line of the typo.
    let named = regex::Regex::new(r"routes\.toml line (\d+): unknown handler")
        .unwrap()
        .captures(&log)
        .and_then(|c| c[1].parse::<usize>().ok())
        .expect("a line number");
    assert_eq!(named, typo_line);
    let before = served_by_rust(&server, "articles::detail");
    assert_eq!(get(server.addr, "/api/articles/1/").status, 200);
    assert_eq!(served_by_rust(&server, "articles::detail"), before + 1);
}

#[test]
fn start_stops_with_one_sentence_for_each_routes_mistake() {
    let site = Site::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let header = "[django]\nwsgi = \"legacy.wsgi:application\"\n\n";
    let cases = [
        (
            "[[route]]\npath = \"/healthz\"\nhandler = legacy::healthz\n",
            "routes.toml line 6: string values must be quoted",
        ),
        (
            "[[route]]\npath = \"/healthz\"\nhandler = \"legacy::health\"\n",
            "unknown handler `legacy::health`",
        ),
        (
            "[[route]]\npath = \"/healthz\"\nhandler = \"legacy::healthz\"\nmode = \"blue-green\"\n",
            "unknown variant `blue-green`, expected one of `rust`, `shadow`, `canary`, `django`",
        ),
        (
            "[[route]]\npath = \"/api/articles/<int:pk>/\"\nhandler = \"articles::detail\"\n\n[[route]]\npath = \"/api/articles/<int:id>/\"\nmethods = [\"GET\", \"PUT\"]\nhandler = \"articles::detail\"\n",
            "`/api/articles/<int:id>/` GET is already claimed by the entry on line 4",
        ),
        (
            "[[route]]\npath = \"/api/articles/<float:pk>/\"\nhandler = \"articles::detail\"\n",
            "unknown converter `float`",
        ),
    ];
    for (entries, expected) in cases {
        let routes = write_routes(dir.path(), &format!("{header}{entries}"));
        let out = ficus(
            &[
                "serve",
                "--routes",
                &routes.display().to_string(),
                "-b",
                support::ANY_PORT,
            ],
            &site,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(expected),
            "wanted {expected:?} in:\n{stderr}"
        );
        assert!(stderr.starts_with("ficus: error: "), "{stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one sentence:\n{stderr}"
        );
    }
}

#[test]
fn ficus_routes_lists_the_legacy_urlconf_beside_routes_toml() {
    let site = Site::new();
    let out = ficus(
        &["routes", "--state-file", "no-such-dir/server.json"],
        &site,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = regex::Regex::new(r"(\d+) of (\d+) routes served by Rust")
        .unwrap()
        .captures(&stdout)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .expect("a total line");
    assert_eq!(total.0, "14", "{stdout}");
    // /api/articles/ counts as Rust: its POST is, while its GET stays in canary.
    assert!(
        stdout.contains("(0 in canary, 1 in shadow, 0 switched back to Django, 47 not listed)"),
        "{stdout}"
    );
    // The end of the walk: every route of the project's own, the admin's left to Django.
    assert!(
        stdout.contains(
            "15 of 15 project routes have a Rust handler; 47 routes of installed apps (admin) stay in Django"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("/api/articles/<int:pk>/") && stdout.contains("shadow GET"),
        "{stdout}"
    );
    assert!(stdout.contains("canary GET; rust POST"), "{stdout}");

    let out = ficus(
        &[
            "routes",
            "--json",
            "--state-file",
            "no-such-dir/server.json",
        ],
        &site,
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let routes = json["routes"].as_array().expect("routes");
    assert_eq!(json["total"].as_u64(), Some(routes.len() as u64));
    assert_eq!(total.1, routes.len().to_string());
    let state_of = |name: &str| {
        routes
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["state"].as_str().unwrap_or_default().to_owned())
    };
    for (name, state) in [
        ("healthz", "rust"),
        ("api-article-list", "rust"),
        ("api-article-detail", "shadow"),
        ("api-media-signed-url", "rust"),
        ("api-summarize", "rust"),
        ("login", "rust"),
        ("logout", "rust"),
        ("profile", "rust"),
        ("home", "rust"),
        ("article-list", "rust"),
        ("api-article-related", "rust"),
        ("report-articles-csv", "rust"),
        ("media-upload", "rust"),
        ("media-file", "rust"),
    ] {
        assert_eq!(state_of(name).as_deref(), Some(state), "{name}");
    }
    // Included and namespaced patterns are walked too.
    assert_eq!(state_of("article-detail").as_deref(), Some("rust"));
    assert_eq!(state_of("admin:index").as_deref(), Some("not listed"));
    let app_of = |name: &str| {
        routes
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["app"].clone())
    };
    assert_eq!(app_of("admin:index"), Some(serde_json::json!("admin")));
    assert_eq!(
        app_of("login"),
        Some(serde_json::Value::Null),
        "the project's own URLconf"
    );
}

#[test]
fn ficus_check_accepts_the_repository_and_refuses_paths_django_does_not_know() {
    let site = Site::new();
    let out = ficus(&["check"], &site);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("19 route(s), 0 error(s), 0 warning(s)"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let unknown = format!(
        "{}\n[[route]]\npath = \"/api/v2/health\"\nhandler = \"legacy::healthz\"\n",
        repository_routes()
    );
    let routes = write_routes(dir.path(), &unknown).display().to_string();
    let out = ficus(&["check", "--routes", &routes], &site);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("`/api/v2/health` is not a path Django knows"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("routes.toml has 1 error(s)"));

    // A route Django never had is fine when the entry says so; an unused handler is a warning.
    let declared_new = unknown.replace(
        "path = \"/api/v2/health\"\n",
        "path = \"/api/v2/health\"\nnew = true\n",
    );
    let without_summarize = declared_new.replace(
        "handler = \"ai::summarize\"",
        "handler = \"legacy::healthz\"",
    );
    let routes = write_routes(dir.path(), &without_summarize)
        .display()
        .to_string();
    let out = ficus(&["check", "--routes", &routes, "--json"], &site);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["errors"], serde_json::json!([]));
    assert_eq!(
        json["warnings"],
        serde_json::json!(["handler `ai::summarize` is registered but no route uses it"])
    );

    // A name that is not Django's name for the path is an error.
    let misnamed = repository_routes().replace("name = \"healthz\"", "name = \"health\"");
    let routes = write_routes(dir.path(), &misnamed).display().to_string();
    let out = ficus(&["check", "--routes", &routes], &site);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("is named `health`, but Django names it `healthz`"),
        "{stdout}"
    );
}

#[test]
fn ficus_diff_replays_request_lists_and_recorded_traffic() {
    let site = Site::new();
    let list = support::repo().join("tests/requests/articles_detail.toml");
    let out = ficus(&["diff", &list.display().to_string()], &site);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = ficus::parity::requests::read(&list)
        .expect("the request list")
        .len();
    assert_eq!(stdout.matches("MATCH ").count(), listed, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "/api/articles/<int:pk>/ (articles::detail): {listed} request(s), {listed} match, 0 differ"
        )),
        "{stdout}"
    );

    // Recorded traffic: JSON Lines, bodies in base64; a request no Rust route serves is Django's.
    let dir = tempfile::tempdir().expect("temp dir");
    let recorded = dir.path().join("traffic.jsonl");
    std::fs::write(
        &recorded,
        concat!(
            r#"{"method": "POST", "path": "/api/summarize/", "headers": [["Content-Type", "application/json"]], "body": "eyJ0ZXh0IjogIk9uZS4gVHdvLiJ9"}"#,
            "\n",
            r#"{"method": "GET", "path": "/admin/login/"}"#,
            "\n"
        ),
    )
    .expect("write traffic");
    let out = ficus(&["diff", "--json", &recorded.display().to_string()], &site);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcomes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(outcomes[0]["verdict"], "match");
    assert_eq!(outcomes[0]["handler"], "ai::summarize");
    assert_eq!(outcomes[1]["verdict"], "django");
}

#[test]
fn ficus_diff_exits_1_on_a_difference_and_turns_it_into_a_list_entry() {
    // A known gap of the summarize port: Python's json.loads takes NaN, serde_json does not.
    let site = Site::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let recorded = dir.path().join("traffic.jsonl");
    std::fs::write(
        &recorded,
        r#"{"name": "nan-sentences", "method": "POST", "path": "/api/summarize/", "body": "eyJ0ZXh0IjogImEiLCAibWF4X3NlbnRlbmNlcyI6IE5hTn0="}"#,
    )
    .expect("write traffic");
    let file = recorded.display().to_string();
    let out = ficus(&["diff", &file], &site);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("DIFFER POST /api/summarize/  [nan-sentences]"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"JSON .error: django "max_sentences must be an integer between 1 and 10", got "invalid JSON""#),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 request(s) differ from Django"));

    let out = ficus(&["diff", "--toml", &file], &site);
    let entry = String::from_utf8_lossy(&out.stdout);
    let list = dir.path().join("summarize.toml");
    std::fs::write(&list, entry.as_bytes()).expect("write list");
    let again = ficus_parity_list(&list);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, "{\"text\": \"a\", \"max_sentences\": NaN}");
}

fn ficus_parity_list(path: &Path) -> Vec<ficus::parity::requests::Request> {
    ficus::parity::requests::read(path).expect("a valid request list")
}
