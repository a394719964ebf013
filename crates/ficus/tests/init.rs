//! `ficus init` on a Django project nobody here wrote: `django-admin startproject` and
//! `startapp` with a model, a migration and a JSON view; `ficus init`; one Rust handler for the
//! view; the new migration built against the engine; then `ficus check`, `ficus diff` and
//! `ficus serve` of that migration, as its team would run them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODELS: &str = r#"from django.db import models


class Note(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
"#;

const VIEWS: &str = r#"from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .models import Note


@require_GET
def note_detail(request, pk):
    note = Note.objects.filter(pk=pk).first()
    if note is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse({"id": note.pk, "title": note.title, "body": note.body})
"#;

const URLS: &str = r#"from django.urls import path

from . import views

urlpatterns = [path("api/notes/<int:pk>/", views.note_detail, name="note-detail")]
"#;

/// The team's port of `notes.views.note_detail`.
const HANDLER: &str = r#"//! Ported views of the `notes` app.

use ficus::prelude::*;
use serde_json::json;

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: i64,
    title: String,
    body: String,
}

/// A page of the note, from the template beside this file (`notes/page.html`).
pub async fn page(State(db): State<Database>, templates: Templates, Kwarg(pk): Kwarg<String>) -> Result<Response, Error> {
    let title: Option<String> = db
        .query("SELECT title FROM notes_note WHERE id = $1")
        .bind(pk.parse::<i64>().unwrap_or(-1))
        .fetch_optional::<(String,)>()
        .await?
        .map(|(title,)| title);
    match title {
        Some(title) => templates.render("notes/page.html", context! { title }).await,
        None => templates.not_found().await,
    }
}

/// Replaces `notes.views.note_detail` (`GET /api/notes/<int:pk>/`).
pub async fn detail(State(db): State<Database>, Kwarg(pk): Kwarg<String>) -> Result<Response, Error> {
    let not_found = || (StatusCode::NOT_FOUND, JsonResponse(json!({"error": "not found"}))).into_response();
    let Ok(pk) = pk.parse::<i64>() else {
        return Ok(not_found());
    };
    let note = db
        .query("SELECT CAST(id AS BIGINT) AS id, title, body FROM notes_note WHERE id = $1")
        .bind(pk)
        .fetch_optional::<NoteRow>()
        .await?;
    Ok(match note {
        Some(note) => JsonResponse(json!({"id": note.id, "title": note.title, "body": note.body})).into_response(),
        None => not_found(),
    })
}
"#;

const REQUESTS: &str = r#"[[request]]
name = "existing"
path = "/api/notes/1/"
headers = { Host = "127.0.0.1" }

[[request]]
name = "unicode"
path = "/api/notes/2/"
headers = { Host = "127.0.0.1" }

[[request]]
name = "missing"
path = "/api/notes/404/"
headers = { Host = "127.0.0.1" }

[[request]]
name = "beyond-64-bits"
path = "/api/notes/99999999999999999999/"
headers = { Host = "127.0.0.1" }
"#;

const ROUTE: &str = r#"
[[route]]
path = "/api/notes/<int:pk>/"
name = "note-detail"
handler = "notes::detail"
mode = "rust"

[[route]]
path = "/notes/<int:pk>/"
handler = "notes::page"
new = true
"#;

/// The template of `notes::page`, embedded by the generated build.rs.
const PAGE: &str =
    "<h1>{{ title }}</h1>{% if user.is_authenticated %}hello{% else %}anonymous{% endif %}\n";

fn run(command: &mut Command) -> Output {
    let out = command.output().expect("run a command");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn manage(site: &Path, args: &[&str]) -> Output {
    run(Command::new(support::python())
        .arg("manage.py")
        .args(args)
        .current_dir(site)
        .env_remove("DATABASE_URL"))
}

/// A fresh `startproject` site with the `notes` app, migrated, and two notes in it.
fn django_project(site: &Path) {
    let admin = support::venv().join("bin").join("django-admin");
    std::fs::create_dir_all(site).expect("the project directory");
    run(Command::new(admin)
        .args(["startproject", "mysite"])
        .arg(site));
    manage(site, &["startapp", "notes"]);
    std::fs::write(site.join("notes/models.py"), MODELS).expect("models.py");
    std::fs::write(site.join("notes/views.py"), VIEWS).expect("views.py");
    std::fs::write(site.join("notes/urls.py"), URLS).expect("urls.py");
    let urls = site.join("mysite/urls.py");
    let text = std::fs::read_to_string(&urls).expect("mysite/urls.py");
    let text = text
        .replace(
            "from django.urls import path",
            "from django.urls import include, path",
        )
        .replace(
            "urlpatterns = [",
            "urlpatterns = [\n    path(\"\", include(\"notes.urls\")),",
        );
    std::fs::write(&urls, text).expect("mysite/urls.py");
    let settings = site.join("mysite/settings.py");
    let mut text = std::fs::read_to_string(&settings).expect("settings.py");
    text.push_str("\nINSTALLED_APPS += [\"notes\"]\n");
    std::fs::write(&settings, text).expect("settings.py");
    manage(site, &["makemigrations", "notes", "-v", "0"]);
    manage(site, &["migrate", "--noinput", "-v", "0"]);
    manage(
        site,
        &[
            "shell",
            "-c",
            "from notes.models import Note; Note.objects.create(title='First', body='Hello'); \
             Note.objects.create(title='Zweite Notiz', body='Grüße, 東京')",
        ],
    );
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo().join("target"))
}

#[test]
fn a_startproject_site_becomes_a_migration_that_serves_its_ported_route() {
    let dir = tempfile::tempdir().expect("temp dir");
    let site = dir.path().join("mysite");
    django_project(&site);

    let venv = support::venv().display().to_string();
    let engine = support::repo().join("crates/ficus").display().to_string();
    let init = run(Command::new(support::binary())
        .args(["init", "--venv", &venv, "--ficus-path", &engine])
        .arg(&site)
        .env_remove("VIRTUAL_ENV"));
    let said = String::from_utf8_lossy(&init.stdout);
    for file in [
        "Cargo.toml",
        ".cargo/config.toml",
        "build.rs",
        "src/main.rs",
        "src/handlers/mod.rs",
        "routes.toml",
        "Makefile",
        ".gitignore",
        "README.md",
    ] {
        assert!(said.contains(&format!("wrote      {file}")), "{said}");
        assert!(site.join(file).is_file(), "{file} missing");
    }
    let routes = std::fs::read_to_string(site.join("routes.toml")).expect("routes.toml");
    assert!(
        routes.contains("wsgi = \"mysite.wsgi:application\""),
        "{routes}"
    );
    assert!(
        routes.contains("settings = \"mysite.settings\""),
        "{routes}"
    );

    // `ficus routes` on the fresh migration: the project's URLconf, nothing listed yet.
    let listed = support::ficus_in(&site, &["routes", "--venv", &venv]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("/api/notes/<int:pk>/") && l.contains("not listed")),
        "{listed}"
    );

    // What the team writes: the handler, its registration, its route and its request list.
    std::fs::write(site.join("src/handlers/notes.rs"), HANDLER).expect("notes.rs");
    std::fs::create_dir_all(site.join("src/handlers/notes")).expect("notes/");
    std::fs::write(site.join("src/handlers/notes/page.html"), PAGE).expect("page.html");
    let registry = site.join("src/handlers/mod.rs");
    let text = std::fs::read_to_string(&registry).expect("mod.rs");
    let text = text
        .replace(
            "use ficus::prelude::*;",
            "pub mod notes;\n\nuse ficus::prelude::*;",
        )
        .replace("registry![]", "registry![notes::detail, notes::page]");
    std::fs::write(&registry, text).expect("mod.rs");
    let mut routes_text = routes;
    routes_text.push_str(ROUTE);
    std::fs::write(site.join("routes.toml"), routes_text).expect("routes.toml");
    std::fs::write(site.join("tests/requests/notes_detail.toml"), REQUESTS).expect("requests");

    // Built against the engine in this target dir, with this lock file, so nothing already
    // built is built again. Binaries are placed in the target dir by name, and this one's is
    // also `ficus`: it is renamed here so it does not replace the binary the other tests run.
    std::fs::copy(support::repo().join("Cargo.lock"), site.join("Cargo.lock")).expect("lock");
    let manifest = site.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("Cargo.toml");
    assert!(text.contains("name = \"ficus\""), "{text}");
    std::fs::write(
        &manifest,
        text.replace("name = \"ficus\"", "name = \"mysite-ficus\""),
    )
    .expect("Cargo.toml");
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir()));
    let binary = target_dir().join("debug").join("mysite-ficus");

    let ficus = |args: &[&str]| {
        Command::new(&binary)
            .args(args)
            .args(["--venv", &venv])
            .current_dir(&site)
            .env_remove("VIRTUAL_ENV")
            .env_remove("DATABASE_URL")
            .output()
            .expect("run the new migration's ficus")
    };
    // Each command must succeed; its output is what is checked.
    let succeeds = |args: &[&str]| {
        let out = ficus(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let check_out = succeeds(&["check"]);
    assert!(
        check_out.contains("2 route(s), 0 error(s), 0 warning(s)"),
        "{check_out}"
    );

    let diff_out = succeeds(&["diff", "tests/requests/notes_detail.toml"]);
    assert!(
        diff_out.contains("4 request(s), 4 match, 0 differ"),
        "{diff_out}"
    );

    let server = support::Server::ficus_binary(
        &binary,
        &site,
        &["serve", "--venv", &venv, "--state-file", ""],
    );
    let note = support::get(server.addr, "/api/notes/2/");
    assert_eq!(note.status, 200, "{}", note.text());
    assert_eq!(note.json()["title"], "Zweite Notiz");
    // A ported template, embedded in the binary by the generated build.rs.
    let page = support::get(server.addr, "/notes/2/");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.text(), "<h1>Zweite Notiz</h1>anonymous\n");
    // `raise Http404` without a ported 404.html: the page Django's handler404 renders.
    let missing = support::get(server.addr, "/notes/404/");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(
        missing.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        missing.text().contains(
            "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"
        ),
        "{}",
        missing.text()
    );
    let login = support::get(server.addr, "/admin/login/");
    assert_eq!(login.status, 200);
    assert!(
        login.text().contains("Django administration"),
        "{}",
        login.text()
    );
    let metrics = support::get(server.addr, "/metrics").text();
    assert!(
        metrics.contains(
            "ficus_requests_total{route=\"/api/notes/<int:pk>/\",backend=\"rust\",class=\"2xx\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "ficus_requests_total{route=\"(unlisted)\",backend=\"django\",class=\"2xx\"} 1"
        ),
        "{metrics}"
    );
}

fn init_error(dir: &Path, extra: &[&str]) -> String {
    let out = Command::new(support::binary())
        .arg("init")
        .args(extra)
        .arg(dir)
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run ficus init");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("ficus: error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn init_refuses_what_it_cannot_follow_in_one_sentence_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("temp dir");
    let no_project = init_error(dir.path(), &[]);
    assert!(no_project.contains("has no manage.py"), "{no_project}");

    std::fs::write(dir.path().join("manage.py"), "print('no settings here')\n").expect("write");
    let no_settings = init_error(dir.path(), &[]);
    assert!(
        no_settings.contains("does not set DJANGO_SETTINGS_MODULE"),
        "{no_settings}"
    );

    let site = dir.path().join("mysite");
    std::fs::create_dir_all(&site).expect("dir");
    let admin = support::venv().join("bin").join("django-admin");
    run(Command::new(admin)
        .args(["startproject", "mysite"])
        .arg(&site));
    let bare = dir.path().join("bare-venv");
    run(Command::new(support::python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&bare));
    let no_django = init_error(&site, &["--venv", &bare.display().to_string()]);
    assert!(no_django.contains("has no Django"), "{no_django}");

    // A file the team already has stays as it is, and the run says so.
    std::fs::write(site.join("Makefile"), "# ours\n").expect("Makefile");
    let venv = support::venv().display().to_string();
    let out = run(Command::new(support::binary())
        .args(["init", "--venv", &venv])
        .arg(&site)
        .env_remove("VIRTUAL_ENV"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("left alone Makefile (it exists)"), "{said}");
    assert!(said.contains("wrote      routes.toml"), "{said}");
    assert_eq!(
        std::fs::read_to_string(site.join("Makefile")).expect("Makefile"),
        "# ours\n"
    );
    let again = run(Command::new(support::binary())
        .args(["init", "--venv", &venv])
        .arg(&site)
        .env_remove("VIRTUAL_ENV"));
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(!said.contains("wrote"), "a second init wrote files: {said}");
}
