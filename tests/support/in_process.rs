//! A server built on the ficus library, as a team builds its own binary with its own handlers,
//! served from the test process over a real socket; its log is captured for the test to read.
//! And a deliberately wrong port of a legacy view, shared by the tests that must catch it.
//!
//! One interpreter per process: a test binary starts at most one of these.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ficus::prelude::Database;
use ficus::prelude::Kwarg;
use ficus::prelude::Registry;
use http_body_util::BodyExt;
use serde_json::Value;

/// What the in-process server has logged so far.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|log| String::from_utf8_lossy(&log).into_owned())
            .unwrap_or_default()
    }
}

pub struct InProcess {
    pub addr: SocketAddr,
    pub log: Log,
    /// Holds routes.toml and whatever else the test puts beside it.
    pub dir: tempfile::TempDir,
}

impl InProcess {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Serves the legacy project with `registry` and these `[[route]]` entries, plus `args` for
/// `ficus serve` (`{dir}` in them stands for the server's directory).
pub fn serve(routes: &str, registry: Registry, args: &[&str]) -> InProcess {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("routes.toml");
    std::fs::write(
        &file,
        format!(
            "[django]\nwsgi = \"legacy.wsgi:application\"\nsettings = \"legacy.settings\"\npath = \"{}\"\n\n{routes}",
            super::repo().join("legacy_django").display()
        ),
    )
    .expect("write routes.toml");
    let shown = dir.path().display().to_string();
    let mut argv: Vec<String> = [
        "ficus",
        "serve",
        "--venv",
        &super::venv().display().to_string(),
        "--routes",
        &file.display().to_string(),
        "-b",
        super::ANY_PORT,
        "--state-file",
        &dir.path().join("server.json").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(args.iter().map(|a| a.replace("{dir}", &shown)));
    std::thread::spawn(move || {
        if let Err(err) = ficus::run(argv, registry) {
            eprintln!("the in-process server failed: {err:#}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reported = super::reported_addresses(&log.text()).first().copied();
        if let Some(addr) = reported
            && TcpStream::connect(addr).is_ok()
        {
            return InProcess { addr, log, dir };
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start:\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A libtest-mimic trial running `f` on a copy of the harness the in-process server is in.
pub fn trial<H: Clone + Send + 'static>(
    name: &str,
    harness: &H,
    f: fn(&H) -> Result<(), libtest_mimic::Failed>,
) -> libtest_mimic::Trial {
    let harness = harness.clone();
    libtest_mimic::Trial::test(name, move || f(&harness))
}

/// One series of the server's `/metrics` (name and labels as written), 0 when absent.
pub fn metric(addr: SocketAddr, series: &str) -> f64 {
    super::get(addr, "/metrics")
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits up to ten seconds for a `/metrics` series to reach `at_least` (counts that shadow
/// runs finish after the client's answer).
pub fn metric_reaches(
    addr: SocketAddr,
    series: &str,
    at_least: f64,
) -> Result<(), libtest_mimic::Failed> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = metric(addr, series);
        if value >= at_least {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{series} is {value}, wanted at least {at_least}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rewrites a handler's JSON, keeping Django's encoding so only the intended change shows.
pub async fn rewrite_json(response: Response, change: impl FnOnce(&mut Value)) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    change(&mut value);
    let body = ficus::ported::pyjson::to_vec(&value).unwrap_or_default();
    let mut response = Response::from_parts(parts, axum::body::Body::from(body));
    response.headers_mut().remove(http::header::CONTENT_LENGTH);
    response
}

/// `articles::detail` ported wrong: `title` is called `name`.
pub async fn detail_with_a_renamed_field(db: State<Database>, pk: Kwarg<String>) -> Response {
    rewrite_json(
        legacy_migration::handlers::articles::detail(db, pk)
            .await
            .into_response(),
        |v| {
            if let Some(title) = v.as_object_mut().and_then(|o| o.shift_remove("title")) {
                v["name"] = title;
            }
        },
    )
    .await
}
