//! Django and Rust share one login, both ways: the real binary serving the repository's
//! routes.toml (the login, logout and profile pages in Rust, the admin in Django), driven by one
//! cookie jar over real sockets, on SQLite and, in `make test`'s second half, PostgreSQL.
//!
//! The cookies, the session rows and the password hashes are the real ones each side writes:
//! nothing here is shared but the database and the jar, as in production.

mod support;

use support::browser::Browser;
use support::{Server, Site};

/// The seeded staff user (`manage.py seed`), and the password the seed gives it.
const EDITOR: (&str, &str) = ("editor", "editor-password");

fn serve() -> (Server, Site) {
    let site = Site::new();
    let mut env = site.env();
    env.push(("FICUS_LOG".into(), "info,ficus=debug".into()));
    (Server::ficus(&[], &env), site)
}

/// Logs in through the Rust login page, as a user fills in its form.
fn log_in_through_rust(browser: &mut Browser) {
    let form = browser.get("/accounts/login/");
    assert_eq!(form.status, 200, "{}", form.text());
    assert!(
        browser.cookie("csrftoken").is_some(),
        "the form page sets the CSRF cookie"
    );
    let before = browser.cookie("csrftoken").map(str::to_owned);
    let done = browser.post_form(
        "/accounts/login/",
        &[("username", EDITOR.0), ("password", EDITOR.1)],
    );
    assert_eq!(done.status, 302, "{}", done.text());
    assert_eq!(done.header("location"), Some("/accounts/profile/"));
    assert!(
        browser.cookie("sessionid").is_some(),
        "logging in sets the session cookie"
    );
    assert_ne!(
        browser.cookie("csrftoken").map(str::to_owned),
        before,
        "logging in rotates the CSRF token"
    );
}

fn served_by_rust(server: &Server, line: &str) -> bool {
    server
        .log()
        .contains(&format!("{line} served by the Rust handler"))
}

#[test]
fn a_login_through_rust_is_seen_by_the_django_admin_and_a_rust_logout_by_django() {
    let (server, _site) = serve();
    let mut browser = Browser::new(server.addr);
    log_in_through_rust(&mut browser);
    assert!(
        served_by_rust(&server, "POST /accounts/login/"),
        "{}",
        server.log()
    );

    let admin = browser.get("/admin/");
    assert_eq!(
        admin.status,
        200,
        "Django's admin sees the staff user: {}",
        admin.text()
    );
    assert!(
        admin.text().contains("Site administration"),
        "{}",
        admin.text()
    );

    let out = browser.post_form("/accounts/logout/", &[]);
    assert_eq!(out.status, 302, "{}", out.text());
    assert_eq!(out.header("location"), Some("/"));
    assert!(
        served_by_rust(&server, "POST /accounts/logout/"),
        "{}",
        server.log()
    );
    assert_eq!(
        browser.cookie("sessionid"),
        None,
        "logging out deletes the session cookie"
    );

    let admin = browser.get("/admin/");
    assert_eq!(admin.status, 302, "Django sees an anonymous user again");
    assert_eq!(admin.header("location"), Some("/admin/login/?next=/admin/"));
}

#[test]
fn a_login_through_the_django_admin_is_seen_by_the_rust_profile_page() {
    let (server, _site) = serve();
    let mut browser = Browser::new(server.addr);
    assert_eq!(browser.get("/admin/login/").status, 200);
    let done = browser.post_form(
        "/admin/login/?next=/admin/",
        &[
            ("username", EDITOR.0),
            ("password", EDITOR.1),
            ("next", "/admin/"),
        ],
    );
    assert_eq!(done.status, 302, "Django's admin login: {}", done.text());

    let profile = browser.get("/accounts/profile/");
    assert!(
        served_by_rust(&server, "GET /accounts/profile/"),
        "{}",
        server.log()
    );
    assert_eq!(profile.status, 200, "{}", profile.text());
    let page = profile.text();
    assert!(page.contains("<h1>editor</h1>"), "{page}");
    assert!(
        page.contains("<a href=\"/admin/\">Site administration</a>"),
        "{page}"
    );
    assert!(page.contains("action=\"/accounts/logout/\""), "{page}");

    // The JSON API's create, in Rust, with the CSRF token Django issued in its cookie.
    let token = browser.cookie("csrftoken").unwrap_or_default().to_owned();
    let created = browser.send(
        "POST",
        "/api/articles/",
        &[
            ("Content-Type", "application/json"),
            ("X-CSRFToken", &token),
        ],
        br#"{"title": "Written through the admin's login", "body": "b", "tags": ["Rust"]}"#,
    );
    assert!(
        served_by_rust(&server, "POST /api/articles/"),
        "{}",
        server.log()
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let article = created.json();
    assert_eq!(article["author"], "editor");
    assert_eq!(article["tags"], serde_json::json!(["rust"]));
    let location = created.header("location").unwrap_or_default().to_owned();
    let read_back = browser.get(&location);
    assert_eq!(read_back.status, 200, "{location}: {}", read_back.text());
    assert_eq!(read_back.json()["slug"], "written-through-the-admins-login");

    let forged = browser.send(
        "POST",
        "/api/articles/",
        &[
            ("Content-Type", "application/json"),
            ("X-CSRFToken", "bbcdefghijklmnopqrstuvwxyzABCDEF"),
        ],
        br#"{"title": "t", "body": "b"}"#,
    );
    assert_eq!(
        forged.status, 403,
        "a forged token is refused before the handler runs"
    );
}

#[test]
fn changing_the_password_in_django_logs_the_rust_read_session_out() {
    let (server, site) = serve();
    let mut browser = Browser::new(server.addr);
    log_in_through_rust(&mut browser);
    assert_eq!(browser.get("/accounts/profile/").status, 200);

    support::django_shell(
        &site,
        "from django.contrib.auth.models import User; u = User.objects.get(username='editor'); u.set_password('another-passphrase'); u.save()",
    );
    let profile = browser.get("/accounts/profile/");
    assert_eq!(profile.status, 302, "{}", profile.text());
    assert_eq!(
        profile.header("location"),
        Some("/accounts/login/?next=/accounts/profile/")
    );
    assert_eq!(
        browser.cookie("sessionid"),
        None,
        "the stale session is flushed"
    );
    // The old password no longer works; the new one does, through Rust again.
    let wrong = browser.post_form(
        "/accounts/login/",
        &[("username", EDITOR.0), ("password", EDITOR.1)],
    );
    assert_eq!(wrong.status, 200);
    assert!(
        wrong
            .text()
            .contains("Please enter a correct username and password")
    );
    let right = browser.post_form(
        "/accounts/login/",
        &[("username", EDITOR.0), ("password", "another-passphrase")],
    );
    assert_eq!(right.status, 302, "{}", right.text());
}

#[test]
fn expired_tampered_and_malformed_sessions_are_anonymous_and_never_errors() {
    let (server, site) = serve();
    let anonymous = |browser: &mut Browser, case: &str| {
        let profile = browser.get("/accounts/profile/");
        assert_eq!(profile.status, 302, "{case}: {}", profile.text());
        assert_eq!(
            profile.header("location"),
            Some("/accounts/login/?next=/accounts/profile/"),
            "{case}"
        );
    };

    let mut forged = Browser::new(server.addr);
    forged.set_cookie("sessionid", "nosuchsessionkeyanywhere0000000000");
    anonymous(&mut forged, "an unknown key");
    forged.set_cookie("sessionid", "\"unterminated");
    anonymous(&mut forged, "a malformed cookie");

    let mut tampered = Browser::new(server.addr);
    log_in_through_rust(&mut tampered);
    let key = tampered.cookie("sessionid").unwrap_or_default().to_owned();
    support::django_shell(
        &site,
        &format!(
            "from django.contrib.sessions.models import Session; Session.objects.filter(session_key='{key}').update(session_data='e30:1r31eq:forged')"
        ),
    );
    anonymous(&mut tampered, "a row whose signature does not match");
    assert!(
        server.log().contains("Session data corrupted"),
        "{}",
        server.log()
    );

    let mut expired = Browser::new(server.addr);
    log_in_through_rust(&mut expired);
    let key = expired.cookie("sessionid").unwrap_or_default().to_owned();
    support::django_shell(
        &site,
        &format!(
            "from datetime import timedelta; from django.utils import timezone; from django.contrib.sessions.models import Session; Session.objects.filter(session_key='{key}').update(expire_date=timezone.now() - timedelta(seconds=1))"
        ),
    );
    anonymous(&mut expired, "an expired session");

    // The server carried on through all of it.
    assert_eq!(Browser::new(server.addr).get("/healthz").status, 200);
}

#[test]
fn bad_logins_get_djangos_answers_and_the_next_request_is_served() {
    let (server, _site) = serve();
    let mut browser = Browser::new(server.addr);
    assert_eq!(browser.get("/accounts/login/").status, 200);

    let huge = "x".repeat(10 * 1024);
    let long = browser.post_form(
        "/accounts/login/",
        &[("username", &huge), ("password", "x")],
    );
    assert_eq!(long.status, 200, "a 10 kB user name is a failed login");
    assert!(
        long.text()
            .contains("Please enter a correct username and password")
    );

    browser.set_cookie("csrftoken", "bbcdefghijklmnopqrstuvwxyzABCDEF");
    let forged = browser.send(
        "POST",
        "/accounts/login/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"csrfmiddlewaretoken=abcdefghijklmnopqrstuvwxyzABCDEF&username=editor&password=editor-password",
    );
    assert_eq!(forged.status, 403, "a forged CSRF token");
    assert!(
        forged.text().contains("CSRF verification failed"),
        "{}",
        forged.text()
    );
    assert!(
        server
            .log()
            .contains("Forbidden (CSRF token from POST incorrect.): /accounts/login/"),
        "{}",
        server.log()
    );

    let fields = "&a=1".repeat(1000);
    let token = browser.cookie("csrftoken").unwrap_or_default().to_owned();
    let over = browser.send(
        "POST",
        "/accounts/login/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("csrfmiddlewaretoken={token}{fields}").as_bytes(),
    );
    assert_eq!(
        over.status, 400,
        "more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS"
    );
    assert!(over.text().contains("Bad Request (400)"), "{}", over.text());

    assert_eq!(
        browser.get("/accounts/login/").status,
        200,
        "the server carries on"
    );
}

#[test]
fn a_message_django_adds_is_shown_once_by_the_next_rust_page() {
    let (server, _site) = serve();
    let mut browser = Browser::new(server.addr);
    log_in_through_rust(&mut browser);
    assert_eq!(browser.get("/admin/auth/group/add/").status, 200);
    let added = browser.post_form(
        "/admin/auth/group/add/",
        &[("name", "editors"), ("_save", "Save")],
    );
    assert_eq!(
        added.status,
        302,
        "Django's admin adds the group: {}",
        added.text()
    );
    assert!(
        browser.cookie("messages").is_some(),
        "the admin leaves its message in the cookie"
    );

    let profile = browser.get("/accounts/profile/");
    assert_eq!(profile.status, 200);
    let page = profile.text();
    // The admin's message is safe HTML with a link, and shown as such.
    assert!(
        page.contains("<ul class=\"messages\"><li>The group “<a href=\"/admin/auth/group/1/change/\">editors</a>” was added successfully.</li></ul>"),
        "{page}"
    );
    assert_eq!(
        browser.cookie("messages"),
        None,
        "shown once, the message is used up"
    );
    let again = browser.get("/accounts/profile/").text();
    assert!(!again.contains("class=\"messages\""), "{again}");
}

#[test]
fn a_message_the_rust_comment_form_adds_is_shown_by_the_next_django_page() {
    let (server, _site) = serve();
    let mut browser = Browser::new(server.addr);
    let article = "/articles/legacy-request-story/";
    let page = browser.get(article);
    assert_eq!(
        page.status,
        200,
        "Django serves the article page: {}",
        page.text()
    );
    assert!(page.text().contains("name=\"csrfmiddlewaretoken\""));

    let posted = browser.post_form(article, &[("author_name", "Ana"), ("body", "First!")]);
    assert!(
        served_by_rust(&server, &format!("POST {article}")),
        "{}",
        server.log()
    );
    assert_eq!(posted.status, 302, "{}", posted.text());
    assert_eq!(posted.header("location"), Some(article));
    assert!(
        browser.cookie("messages").is_some(),
        "the message waits in the cookie"
    );

    let shown = browser.get(article);
    let text = shown.text();
    assert!(
        text.contains("<ul class=\"messages\"><li>Thanks, your comment was posted.</li></ul>"),
        "{text}"
    );
    assert!(
        text.contains("<p>First!</p>"),
        "the comment is on Django's page: {text}"
    );
    assert_eq!(
        browser.cookie("messages"),
        None,
        "Django used the message up"
    );

    let invalid = browser.post_form(article, &[("author_name", " "), ("body", "kept")]);
    assert_eq!(invalid.status, 200);
    assert!(
        invalid
            .text()
            .contains("id=\"id_author_name_error\"><li>This field is required.")
    );
    assert!(
        invalid.text().contains(">\nkept</textarea>"),
        "{}",
        invalid.text()
    );
}
