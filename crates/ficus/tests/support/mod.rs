//! Shared by the integration tests of the engine (here) and of the migration (`tests/` at the
//! top, which includes this file): start the binary under test (Django's own runserver, for
//! reference answers) on a port of its own with a fresh copy of the seeded legacy database, and
//! speak raw HTTP/1.1 to it over real sockets.
//!
//! The binary under test is the package's own: `ficus-engine` (the engine with no ported view)
//! for the engine's tests, the migration's `ficus` for the migration's. The engine's tests serve
//! legacy_django with nothing ported: without a `--routes` of their own, they get its
//! `[django]` section and no route.

// Each test binary uses part of it, and its items are the tests' own, not an API.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository's root (the engine's tests run from `crates/ficus`).
pub fn repo() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("legacy_django").is_dir())
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The engine's own test apps (`crates/ficus/tests/pyapps`).
pub fn pyapps() -> PathBuf {
    repo().join("crates/ficus/tests/pyapps")
}

/// The binary under test: the migration's `ficus`, or in the engine's tests `ficus-engine`.
pub fn binary() -> &'static str {
    match (
        option_env!("CARGO_BIN_EXE_ficus"),
        option_env!("CARGO_BIN_EXE_ficus-engine"),
    ) {
        (Some(migration), _) => migration,
        (None, Some(engine)) => engine,
        (None, None) => panic!("this test package builds no ficus binary"),
    }
}

/// Whether the binary under test is the engine alone (no handler of the migration's).
pub fn engine_alone() -> bool {
    option_env!("CARGO_BIN_EXE_ficus").is_none()
}

/// legacy_django with nothing ported: the repository's routes.toml without its routes (the
/// engine alone knows none of their handlers), `[django] path` absolute; written once.
pub fn django_only_routes() -> &'static str {
    static FILE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let file = routes_with_mode(dir.path(), "django");
            let text = std::fs::read_to_string(&file).expect("routes");
            let mut routes: toml::Table = text.parse().expect("TOML");
            routes.remove("route");
            std::fs::write(&file, toml::to_string(&routes).expect("TOML")).expect("write");
            (dir, file)
        })
        .1
}

pub fn venv() -> PathBuf {
    std::env::var_os("FICUS_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv"))
}

pub fn python() -> PathBuf {
    venv().join("bin").join("python")
}

/// A `-b` address for a server under test: port 0, so the kernel gives the server a port no
/// other process holds, and the server reports it ("Listening at: ..."). Picking a free number
/// here and handing it on would race with every other test starting a server meanwhile.
pub const ANY_PORT: &str = "127.0.0.1:0";

/// The addresses a server reported listening on, in the order it reported them: ficus's
/// "Listening at: http://ADDR" (https with TLS) and runserver's "Starting development server at http://ADDR/".
pub fn reported_addresses(log: &str) -> Vec<SocketAddr> {
    log.lines()
        .filter_map(|line| {
            let rest = line
                .split_once("Listening at: http://")
                .or_else(|| line.split_once("Listening at: https://"))
                .or_else(|| line.split_once("Starting development server at http://"))?
                .1;
            let end = rest.find([' ', '/']).unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .collect()
}

/// A migrated, seeded and collected legacy site, made once per test binary; each server gets
/// its own copy of the database and media directory.
pub struct SiteTemplate {
    _dir: tempfile::TempDir,
    db: PathBuf,
    static_root: PathBuf,
}

/// How many sites this test binary has made (for PostgreSQL database names).
static SITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn site_template() -> &'static SiteTemplate {
    static TEMPLATE: OnceLock<SiteTemplate> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("template.sqlite3");
        let static_root = dir.path().join("static");
        let postgres = postgres_template();
        for args in [
            vec!["migrate", "--noinput", "-v", "0"],
            vec!["seed", "--articles", "30", "--seed", "7"],
            vec!["collectstatic", "--noinput", "-v", "0"],
        ] {
            let mut command = Command::new(python());
            command
                .arg("manage.py")
                .args(&args)
                .current_dir(repo().join("legacy_django"))
                .env("LEGACY_DB_PATH", &db)
                .env("LEGACY_STATIC_ROOT", &static_root)
                .env_remove("DATABASE_URL")
                .stdout(Stdio::null());
            if let Some((url, _)) = &postgres {
                command.env("DATABASE_URL", url);
            }
            let status = command.status().expect("run manage.py");
            assert!(status.success(), "manage.py {args:?} failed");
        }
        SiteTemplate {
            _dir: dir,
            db,
            static_root,
        }
    })
}

/// With `FICUS_TEST_DATABASE_URL` (see scripts/with-postgres), the sites live in PostgreSQL:
/// the template is a database of its own, and each site a copy of it (`CREATE DATABASE ...
/// TEMPLATE`), as each SQLite site is a copy of the template file. The URL and name of the
/// template database.
fn postgres_template() -> Option<(String, String)> {
    let name = format!("ficus_template_{}", std::process::id());
    postgres_create(&name, None).map(|url| (url, name))
}

/// Creates a database (from `template`), returning its URL; None when tests run on SQLite.
fn postgres_create(name: &str, template: Option<&str>) -> Option<String> {
    let admin = std::env::var("FICUS_TEST_DATABASE_URL").ok()?;
    let sql = match template {
        Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
        None => format!("CREATE DATABASE {name}"),
    };
    let status = Command::new(python())
        .args([
            "-c",
            "import psycopg, sys; psycopg.connect(sys.argv[1], autocommit=True).execute(sys.argv[2])",
            &admin,
            &sql,
        ])
        .status()
        .expect("run python");
    assert!(status.success(), "{sql} failed");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    Some(format!("{base}/{name}"))
}

/// A private copy of the seeded site: database, media root, and the shared static root.
pub struct Site {
    pub dir: tempfile::TempDir,
    /// The site's PostgreSQL database, when tests run on PostgreSQL.
    database_url: Option<String>,
}

impl Site {
    pub fn new() -> Self {
        let template = site_template();
        let dir = tempfile::tempdir().expect("temp dir");
        if template.db.exists() {
            std::fs::copy(&template.db, dir.path().join("db.sqlite3")).expect("copy db");
        }
        std::fs::create_dir_all(dir.path().join("media")).expect("media dir");
        let n = SITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let pid = std::process::id();
        let database_url = postgres_create(
            &format!("ficus_site_{pid}_{n}"),
            Some(&format!("ficus_template_{pid}")),
        );
        Site { dir, database_url }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        let p = |name: &str| self.dir.path().join(name).display().to_string();
        let mut env = vec![
            ("LEGACY_DB_PATH".into(), p("db.sqlite3")),
            ("LEGACY_MEDIA_ROOT".into(), p("media")),
            (
                "LEGACY_STATIC_ROOT".into(),
                site_template().static_root.display().to_string(),
            ),
        ];
        if let Some(url) = &self.database_url {
            env.push(("DATABASE_URL".into(), url.clone()));
        }
        env
    }

    pub fn static_root(&self) -> &Path {
        &site_template().static_root
    }
}

/// A server process on 127.0.0.1; killed when dropped.
pub struct Server {
    child: Child,
    /// The harness's own address (`-b 127.0.0.1:0`, as the server reported it).
    pub addr: SocketAddr,
    /// Every address the server reported, a test's own `-b` ones included.
    pub listening: Vec<SocketAddr>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Server {
    /// `ficus serve ARGS -b 127.0.0.1:PORT`, run from the repository root.
    pub fn ficus(args: &[&str], env: &[(String, String)]) -> Self {
        let mut command = Command::new(binary());
        command.arg("serve").args(args);
        if engine_alone() && !args.contains(&"--routes") {
            command.args(["--routes", django_only_routes()]);
        }
        command
            .args(["-b", ANY_PORT])
            .args(["--venv", &venv().display().to_string()])
            // Test servers run side by side: none may claim the repository's state file.
            .args(["--state-file", ""]);
        Self::spawn(command, env)
    }

    /// Django's own `manage.py runserver`: the reference answers.
    pub fn django(env: &[(String, String)]) -> Self {
        let mut command = Command::new(python());
        command
            .args([
                "manage.py",
                "runserver",
                "--noreload",
                "--skip-checks",
                ANY_PORT,
            ])
            // runserver prints the port it bound on stdout; unbuffered, that line reaches the log
            // as soon as the socket listens.
            .env("PYTHONUNBUFFERED", "1")
            .current_dir(repo().join("legacy_django"));
        Self::spawn(command, env)
    }

    /// `ficus serve ARGS` with `socket` handed over as descriptor 3, as systemd hands a socket
    /// to the service it starts: with `systemd`, `LISTEN_FDS=1` and `LISTEN_PID` naming the
    /// server itself; without, the test's ARGS say `-b fd://3`. The test holds the socket, so
    /// its port is nobody else's.
    pub fn ficus_with_socket(args: &[&str], socket: &std::net::TcpListener, systemd: bool) -> Self {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        // `exec` keeps the shell's pid, so `$$` is the server's pid.
        let script = if systemd {
            r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#
        } else {
            r#"exec "$0" "$@""#
        };
        let mut command = Command::new("sh");
        command
            .args(["-c", script, binary(), "serve"])
            .args(args)
            .args(["--venv", &venv().display().to_string()])
            .args(["--state-file", ""]);
        let fd = socket.as_raw_fd();
        // SAFETY: between fork and exec the closure calls only dup2 and fcntl, which are
        // async-signal-safe and allocate nothing.
        unsafe {
            command.pre_exec(move || {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::spawn(command, &[])
    }

    /// Another `ficus` binary (a migration a test built), `BINARY ARGS -b 127.0.0.1:0` run in
    /// `dir`.
    pub fn ficus_binary(binary: &Path, dir: &Path, args: &[&str]) -> Self {
        let mut command = Command::new(binary);
        command
            .args(args)
            .args(["-b", ANY_PORT])
            .current_dir(dir)
            .env_remove("DATABASE_URL");
        Self::spawn(command, &[])
    }

    fn spawn(mut command: Command, env: &[(String, String)]) -> Self {
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = log_dir.path().join("stderr.log");
        let file = std::fs::File::create(&log).expect("log file");
        if command.get_current_dir().is_none() {
            command.current_dir(repo());
        }
        command
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("VIRTUAL_ENV")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        let child = command.spawn().expect("spawn server");
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            listening: Vec::new(),
            log,
            _log_dir: log_dir,
        };
        server.wait_ready();
        server
    }

    /// Waits for the server to report its addresses (the harness's own is its first loopback
    /// one), then for that socket to accept a connection.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early ({status}):\n{}", self.log());
            }
            self.listening = reported_addresses(&self.log());
            if let Some(addr) = self.listening.iter().find(|a| a.ip().is_loopback()) {
                self.addr = *addr;
                if TcpStream::connect(self.addr).is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start listening:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the server's log comes to contain `needle` within ten seconds (a line written
    /// after the client has its answer, such as the access log's, may come a moment later).
    pub fn log_comes_to_contain(&self, needle: &str) -> bool {
        file_comes_to_contain(&self.log, needle)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; None if it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Writes `raw` and reads until the server closes the connection.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(raw).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Parses one response off the front of `raw`; returns it and the bytes after it.
pub fn parse_response(raw: &[u8], head_request: bool) -> (Response, Vec<u8>) {
    let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no complete response head in {:?}",
            String::from_utf8_lossy(raw)
        )
    });
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let status = parts.next().and_then(|s| s.parse().ok()).expect("status");
    let reason = parts.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    let mut rest = &raw[end + 4..];
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let no_body = head_request || status == 204 || status == 304 || (100..200).contains(&status);
    let body = if no_body {
        Vec::new()
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = find(rest, b"\r\n").expect("chunk size line");
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .expect("chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                let trailer_end = find(rest, b"\r\n").expect("end of chunked body");
                rest = &rest[trailer_end + 2..];
                break;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body
    } else if let Some(length) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let body = rest[..length.min(rest.len())].to_vec();
        rest = &rest[length.min(rest.len())..];
        body
    } else {
        let body = rest.to_vec();
        rest = &[];
        body
    };
    (
        Response {
            status,
            reason,
            headers,
            body,
        },
        rest.to_vec(),
    )
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on its own connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
        addr.port()
    );
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    parse_response(&exchange(addr, &bytes), method == "HEAD").0
}

pub fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, "GET", target, &[], b"")
}

/// A ficus command that loads the legacy project (`routes`, `diff`, ...), run from the
/// repository root with the site's environment and the test venv; its output.
pub fn ficus_on_project(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .args(["--venv", &venv().display().to_string()])
        .current_dir(repo())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run ficus")
}

/// This repository's `ficus` run in `dir` (a project other than the legacy one); its output.
pub fn ficus_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env_remove("VIRTUAL_ENV")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run ficus")
}

/// `ficus diff FILE` on the project: Ok when it succeeds and prints `expected` (a MATCH line),
/// else what it printed.
pub fn diff_replays(file: &str, env: &[(String, String)], expected: &str) -> Result<(), String> {
    let out = ficus_on_project(&["diff", file], env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains(expected) {
        return Ok(());
    }
    Err(format!(
        "`ficus diff {file}` did not print {expected:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// ficus serving the raw WSGI app `crates/ficus/tests/pyapps/edge.py` (no routes file, no Django).
pub fn edge_server(extra: &[&str], env: &[(String, String)]) -> Server {
    let pyapps = pyapps().display().to_string();
    let mut args = vec![
        "edge",
        "--pythonpath",
        pyapps.as_str(),
        "--routes",
        "/dev/null",
    ];
    args.extend_from_slice(extra);
    Server::ficus(&args, env)
}

/// `--pythonpath` for the test apps that wrap the legacy Django site.
pub fn site_pythonpath() -> String {
    format!(
        "{},{}",
        pyapps().display(),
        repo().join("legacy_django").display()
    )
}

/// Waits up to ten seconds for `path` to contain `needle` (what a test app writes when it
/// observes something, such as close() being called).
pub fn file_comes_to_contain(path: &Path, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains(needle)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A raw connection whose reads give up after ten seconds instead of hanging a test.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// Sends `raw`, reads the first bytes of the answer, and hangs up: a client leaving mid-response.
pub fn read_first_then_leave(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(raw).expect("write");
    let mut first = [0u8; 256];
    let n = stream.read(&mut first).expect("read");
    String::from_utf8_lossy(&first[..n]).into_owned()
}

/// The repository's routes.toml with every entry switched to `mode` (`"rust"`: the whole site
/// on its handlers, shadow and canary entries included; `"django"`: the one-line rollback of
/// every entry), with an absolute `[django] path`, written to `dir`; the file's path.
pub fn routes_with_mode(dir: &Path, mode: &str) -> String {
    let text = std::fs::read_to_string(repo().join("routes.toml")).expect("routes.toml");
    let mut routes: toml::Table = text.parse().expect("routes.toml is TOML");
    let legacy = repo().join("legacy_django").display().to_string();
    if let Some(toml::Value::Table(django)) = routes.get_mut("django") {
        django.insert("path".into(), legacy.into());
    }
    if let Some(toml::Value::Array(entries)) = routes.get_mut("route") {
        for entry in entries.iter_mut().filter_map(toml::Value::as_table_mut) {
            entry.insert("mode".into(), mode.into());
            // What only a canary means.
            entry.remove("percent");
            entry.remove("sticky");
        }
    }
    let file = dir.join(format!("routes-{mode}.toml"));
    std::fs::write(&file, toml::to_string(&routes).expect("TOML")).expect("write routes");
    file.display().to_string()
}

/// Runs Python in the site's Django (`manage.py shell -c`), as an operator would; what it
/// printed, trimmed. Fails the test when the code raises.
pub fn django_shell(site: &Site, code: &str) -> String {
    let out = Command::new(python())
        .args(["manage.py", "shell", "-c", code])
        .current_dir(repo().join("legacy_django"))
        .envs(site.env())
        .output()
        .expect("run manage.py shell");
    assert!(
        out.status.success(),
        "manage.py shell -c {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Logs users in on a site as Django's `login()` leaves them: a session row under the key
/// `paritysessionof<user>` (the key `ficus diff` uses), written by Django's own session store.
/// One Python process per site stays up, so a session can be put back before every request
/// that needs it (a logout or a login in a list deletes or rotates it).
pub struct Logins {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// `SESSION_COOKIE_NAME`.
    pub cookie_name: String,
}

const LOG_IN: &str = r#"
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacy.settings")
import django
django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
store_class = import_module(settings.SESSION_ENGINE).SessionStore
print(settings.SESSION_COOKIE_NAME, flush=True)
for line in sys.stdin:
    user = get_user_model()._default_manager.get_by_natural_key(line.strip())
    key = "paritysessionof" + user.get_username()
    store = store_class(session_key=key)
    store.clear()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save(must_create=not store.exists(key))
    print(key, flush=True)
"#;

impl Logins {
    pub fn new(site: &Site) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(python())
            .args(["-c", LOG_IN])
            .current_dir(repo().join("legacy_django"))
            .envs(site.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the log-in helper");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut cookie_name = String::new();
        stdout.read_line(&mut cookie_name).expect("read");
        let cookie_name = cookie_name.trim().to_owned();
        assert!(!cookie_name.is_empty(), "the log-in helper did not start");
        Logins {
            child,
            stdin,
            stdout,
            cookie_name,
        }
    }

    /// Logs `user` in (again); the session key their cookie carries.
    pub fn log_in(&mut self, user: &str) -> String {
        use std::io::BufRead;
        writeln!(self.stdin, "{user}").expect("write to the log-in helper");
        let mut key = String::new();
        self.stdout.read_line(&mut key).expect("read");
        assert!(!key.trim().is_empty(), "could not log {user:?} in");
        key.trim().to_owned()
    }
}

impl Drop for Logins {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
