//! How deployments start ficus, on the real binary: the sockets they hand it (a unix socket for
//! nginx, with its mode, the environ and proxy trust gunicorn gives a unix-socket client, its
//! removal on exit, a live one refused and a stale one replaced; a socket already bound and
//! passed as `fd://3`; systemd socket activation) and the settings gunicorn reads besides the
//! command line (`gunicorn.conf.py`, `GUNICORN_CMD_ARGS`, in gunicorn's order), with `-e`,
//! `--pid` and `--error-logfile`; TLS; and runserver's development loop (`--reload`).

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::{Server, get, parse_response};

/// One request over a unix socket; the whole answer (the request says `Connection: close`).
fn exchange_unix(path: &Path, raw: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(path).expect("connect to the unix socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(raw).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// `ficus serve` of the edge app with `extra`, which must fail to start: what it said.
fn refused_start(extra: &[&str]) -> String {
    let out = Command::new(support::binary())
        .args(["serve", "edge", "--routes", "/dev/null", "--state-file", ""])
        .args(["--pythonpath", &support::pyapps().display().to_string()])
        .args(["--venv", &support::venv().display().to_string()])
        .args(extra)
        .output()
        .expect("run the server");
    assert!(!out.status.success(), "{extra:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn environ_over_unix(path: &Path, headers: &str) -> serde_json::Value {
    let raw = format!("GET /environ HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
    let (response, _) = parse_response(&exchange_unix(path, raw.as_bytes()), false);
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn a_unix_socket_is_served_as_gunicorn_serves_it_and_removed_on_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("app.sock");
    let bind = format!("unix:{}", sock.display());
    // Two workers: the socket is inherited by processes that did not bind it. Proxy trust is
    // set to a stranger: a unix-socket peer is trusted whatever the list says.
    let mut server = support::edge_server(
        &["-b", &bind, "-w", "2", "--forwarded-allow-ips", "10.9.9.9"],
        &[],
    );
    assert!(
        server.log().contains(&format!("Listening at: {bind}")),
        "{}",
        server.log()
    );
    let meta = std::fs::metadata(&sock).expect("the socket file exists");
    assert!(meta.file_type().is_socket());
    // gunicorn's default umask, 0: nginx, running as another user, may connect.
    assert_eq!(meta.permissions().mode() & 0o777, 0o777);

    // Workers boot after the supervisor listens: wait for one to answer.
    let mut env = serde_json::Value::Null;
    for _ in 0..300 {
        let raw = b"GET /environ HTTP/1.1\r\nHost: example.com:8443\r\nConnection: close\r\n\r\n";
        let (response, _) = parse_response(&exchange_unix(&sock, raw), false);
        if response.status == 200 {
            env = response.json();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // As gunicorn 27 fills them for a unix socket: no client address, the server from Host.
    assert_eq!(env["REMOTE_ADDR"], "", "{env}");
    assert!(env.get("REMOTE_PORT").is_none(), "{env}");
    assert_eq!(env["SERVER_NAME"], "example.com");
    assert_eq!(env["SERVER_PORT"], "8443");

    let env = environ_over_unix(&sock, "Host: example.com\r\n");
    assert_eq!(env["SERVER_PORT"], "80", "no port in Host: the scheme's");
    let env = environ_over_unix(&sock, "");
    assert_eq!(env["SERVER_NAME"], sock.display().to_string(), "no Host");
    assert_eq!(env["SERVER_PORT"], "");

    let env = environ_over_unix(
        &sock,
        "Host: example.com\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.7\r\n",
    );
    assert_eq!(env["wsgi.url_scheme"], "https", "{env}");
    assert_eq!(env["SERVER_PORT"], "443");
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.7");

    // The harness's own TCP socket serves beside it, with its address as before.
    let tcp = get(server.addr, "/environ").json();
    assert_eq!(tcp["SERVER_PORT"], server.addr.port().to_string());

    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.log()
    );
    assert!(!sock.exists(), "the socket file is removed on exit");
}

#[test]
fn a_unix_socket_a_live_server_holds_is_refused_and_a_stale_one_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("app.sock");
    // A socket file nobody listens on any more, as a server killed with SIGKILL leaves it.
    drop(UnixListener::bind(&sock).expect("bind"));
    assert!(sock.exists());
    let bind = format!("unix:{}", sock.display());
    let server = support::edge_server(&["-b", &bind], &[]);
    let env = environ_over_unix(&sock, "Host: x\r\n");
    assert_eq!(env["PATH_INFO"], "/environ");

    let stderr = refused_start(&["-b", &bind]);
    assert!(
        stderr.contains(&format!(
            "cannot listen on {bind}: a server is already listening there"
        )),
        "{stderr}"
    );
    // The running server keeps its socket and serves on.
    let env = environ_over_unix(&sock, "Host: x\r\n");
    assert_eq!(env["PATH_INFO"], "/environ");
    drop(server);

    std::fs::remove_file(&sock).ok();
    std::fs::write(&sock, b"a file, not a socket").expect("write");
    let stderr = refused_start(&["-b", &bind]);
    assert!(
        stderr.contains("the path exists and is not a socket"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&sock).expect("read"),
        b"a file, not a socket",
        "a file that is not a socket is never removed"
    );
}

fn edge_args() -> Vec<String> {
    vec![
        "edge".to_owned(),
        "--pythonpath".to_owned(),
        support::pyapps().display().to_string(),
        "--routes".to_owned(),
        "/dev/null".to_owned(),
    ]
}

#[test]
fn a_socket_passed_as_fd_3_is_served() {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("address");
    let mut args = edge_args();
    args.extend(["-b".to_owned(), "fd://3".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::ficus_with_socket(&args, &socket, false);
    assert_eq!(server.addr, addr, "{}", server.log());
    let env = get(addr, "/environ").json();
    assert_eq!(env["SERVER_PORT"], addr.port().to_string());
}

#[test]
fn systemd_socket_activation_serves_the_passed_socket_instead_of_the_binds() {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("address");
    let mut args = edge_args();
    args.extend(["-b".to_owned(), "127.0.0.1:1".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::ficus_with_socket(&args, &socket, true);
    assert_eq!(server.addr, addr, "{}", server.log());
    assert!(
        server.log().contains(
            "systemd passed 1 socket(s) (LISTEN_FDS): serving on those; -b 127.0.0.1:1 is not used"
        ),
        "{}",
        server.log()
    );
    let env = get(addr, "/environ").json();
    assert_eq!(env["SERVER_PORT"], addr.port().to_string());
}

#[test]
fn a_descriptor_that_is_no_listening_socket_stops_the_start_in_one_sentence() {
    let stderr = refused_start(&["-b", "fd://57"]);
    assert!(
        stderr.contains("fd://57: descriptor 57 is not a listening stream socket"),
        "{stderr}"
    );
}

/// A server started by hand in a directory of its own (where its gunicorn.conf.py is), killed
/// when the test ends.
struct Started {
    child: Child,
    log: std::path::PathBuf,
}

impl Started {
    fn new(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut with_routes = args.to_vec();
        with_routes.extend(["--routes", "/dev/null"]);
        Self::command(dir, "serve", &with_routes, env)
    }

    /// `ficus SUBCOMMAND ARGS` in `dir`.
    fn command(dir: &Path, subcommand: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = dir.join("server.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(support::binary())
            .arg(subcommand)
            .args(args)
            .args(["--state-file", ""])
            .args(["--venv", &support::venv().display().to_string()])
            .env_remove("GUNICORN_CMD_ARGS")
            .env_remove("FICUS_CMD_ARGS")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start the server");
        Started { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The environ of a request over the unix socket at `sock`, once a worker answers.
    fn environ_at(&mut self, sock: &Path, target: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early ({status}):\n{}", self.log());
            }
            if UnixStream::connect(sock).is_ok() {
                let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let (response, _) = parse_response(&exchange_unix(sock, raw.as_bytes()), false);
                if response.status == 200 {
                    return response.json();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no answer on {}:\n{}",
                sock.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not stop:\n{}", self.log());
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_gunicorn_conf_py_in_the_working_directory_is_read_as_gunicorn_reads_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("app.sock");
    std::fs::write(
        dir.path().join("gunicorn.conf.py"),
        format!(
            r#"import os
wsgi_app = "edge"
pythonpath = {pyapps:?}
bind = ["unix:{sock}"]
workers = 2
raw_env = ["FICUS_TEST_GREETING=hello from the config"]
pidfile = "ficus.pid"
loglevel = "DEBUG"
print("the configuration file ran")

def post_fork(server, worker):
    pass
"#,
            pyapps = support::pyapps().display().to_string(),
            sock = sock.display(),
        ),
    )
    .expect("write gunicorn.conf.py");
    let mut server = Started::new(dir.path(), &[], &[]);
    let env = server.environ_at(&sock, "/os-environ?FICUS_TEST_GREETING");
    assert_eq!(env["FICUS_TEST_GREETING"], "hello from the config", "{env}");
    let log = server.log();
    assert!(log.contains("Booting worker 2"), "{log}");
    assert!(
        log.contains("gunicorn.conf.py: ficus does not implement post_fork; ignored"),
        "{log}"
    );
    assert!(log.contains("DEBUG"), "loglevel = DEBUG: {log}");
    // Run once, by the main process: the workers start from what it resolved.
    assert_eq!(
        log.matches("the configuration file ran").count(),
        1,
        "{log}"
    );
    let pid: u32 = std::fs::read_to_string(dir.path().join("ficus.pid"))
        .expect("the pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert_eq!(pid, server.child.id());
    server.stop();
    assert!(
        !dir.path().join("ficus.pid").exists(),
        "the pid file goes on exit"
    );
    assert!(!sock.exists());
}

#[test]
fn the_command_line_beats_gunicorn_cmd_args_which_beats_the_configuration_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (file_sock, env_sock) = (dir.path().join("file.sock"), dir.path().join("env.sock"));
    std::fs::write(
        dir.path().join("settings.py"),
        format!(
            "bind = 'unix:{}'\nthreads = 3\ntimeout = 9\n",
            file_sock.display()
        ),
    )
    .expect("write the configuration file");
    let cmd_args = format!(
        "--bind unix:{} --threads 5 -c settings.py",
        env_sock.display()
    );
    let pyapps = support::pyapps().display().to_string();
    let mut server = Started::new(
        dir.path(),
        &[
            "edge",
            "--pythonpath",
            &pyapps,
            "--threads",
            "6",
            "--error-logfile",
            "errors.log",
        ],
        &[("GUNICORN_CMD_ARGS", cmd_args.as_str())],
    );
    server.log = dir.path().join("errors.log");
    server.environ_at(&env_sock, "/environ");
    let log = server.log();
    // The variable's bind replaced the file's; the command line's threads beat both.
    assert!(
        log.contains(&format!("Listening at: unix:{}", env_sock.display())),
        "{log}"
    );
    assert!(!file_sock.exists(), "{log}");
    assert!(log.contains("Serving with 6 Python threads"), "{log}");
}

#[test]
fn a_configuration_file_that_fails_stops_the_start_with_its_error_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("gunicorn.conf.py"),
        "workers = 2\nbind = undefined_name\n",
    )
    .expect("write");
    let mut server = Started::new(dir.path(), &["edge"], &[]);
    let status = server.child.wait().expect("wait");
    assert!(!status.success());
    let log = server.log();
    assert!(
        log.contains(
            "cannot read the configuration file gunicorn.conf.py: NameError: name 'undefined_name' is not defined (line 2)"
        ),
        "{log}"
    );

    std::fs::write(dir.path().join("gunicorn.conf.py"), "workers = 'many'\n").expect("write");
    let mut server = Started::new(dir.path(), &["edge"], &[]);
    assert!(!server.child.wait().expect("wait").success());
    assert!(
        server
            .log()
            .contains("gunicorn.conf.py: invalid value 'many' for '--workers"),
        "{}",
        server.log()
    );
}

/// A self-signed certificate for localhost and 127.0.0.1, written as `cert.pem` and `key.pem`
/// in `dir`; its DER, to recognise it.
fn write_certificate(dir: &Path) -> Vec<u8> {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("a certificate");
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).expect("write cert.pem");
    std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).expect("write key.pem");
    made.cert.der().to_vec()
}

/// A TLS client that trusts only `cert` and offers `alpn`.
fn tls_client(cert: &[u8], alpn: &[u8]) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(cert.to_vec()))
        .expect("trust the certificate");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Over TLS to `addr`: the server's certificate, the protocol ALPN chose, and the answer to one
/// HTTP/1.1 request (or, with ALPN h2, one HTTP/2 request) for `/environ`.
fn over_tls(
    addr: std::net::SocketAddr,
    cert: &[u8],
    alpn: &[u8],
) -> (Vec<u8>, Vec<u8>, u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tls_client(cert, alpn)
            .connect(name, tcp)
            .await
            .expect("handshake");
        let (_, session) = tls.get_ref();
        let presented = session.peer_certificates().expect("a certificate")[0].to_vec();
        let chosen = session.alpn_protocol().unwrap_or_default().to_vec();
        if chosen == b"h2" {
            let io = hyper_util::rt::TokioIo::new(tls);
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .expect("h2 handshake");
            tokio::spawn(connection);
            let request = http::Request::get("https://localhost/environ")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("request");
            let response = sender.send_request(request).await.expect("h2 answer");
            let status = response.status().as_u16();
            use http_body_util::BodyExt;
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            return (
                presented,
                chosen,
                status,
                String::from_utf8_lossy(&body).into_owned(),
            );
        }
        tls.write_all(b"GET /environ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let (response, _) = parse_response(&raw, false);
        (presented, chosen, response.status, response.text())
    })
}

#[test]
fn with_a_certificate_every_request_is_https_over_http11_or_h2_and_sighup_rereads_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = write_certificate(dir.path());
    let cert = dir.path().join("cert.pem").display().to_string();
    let key = dir.path().join("key.pem").display().to_string();
    let server = support::edge_server(&["--certfile", &cert, "--keyfile", &key], &[]);
    assert!(
        server
            .log()
            .contains(&format!("Listening at: https://{}", server.addr)),
        "{}",
        server.log()
    );

    let (presented, chosen, status, body) = over_tls(server.addr, &first, b"http/1.1");
    assert_eq!(
        (presented.as_slice(), chosen.as_slice(), status),
        (first.as_slice(), &b"http/1.1"[..], 200)
    );
    let env: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");

    let (_, chosen, status, body) = over_tls(server.addr, &first, b"h2");
    assert_eq!((chosen.as_slice(), status), (&b"h2"[..], 200), "{body}");
    let env: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2");
    assert_eq!(env["wsgi.url_scheme"], "https");

    // A renewed certificate (certbot's way): the files change, SIGHUP, new handshakes use it.
    let second = write_certificate(dir.path());
    assert_ne!(first, second);
    server.signal("HUP");
    assert!(
        server.log_comes_to_contain("Read the certificate"),
        "{}",
        server.log()
    );
    let (presented, _, status, _) = over_tls(server.addr, &second, b"http/1.1");
    assert_eq!((presented.as_slice(), status), (second.as_slice(), 200));

    // A bad file on SIGHUP keeps the certificate in use.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("write");
    server.signal("HUP");
    assert!(
        server.log_comes_to_contain("no certificate in it; the previous certificate stays in use"),
        "{}",
        server.log()
    );
    let (_, _, status, _) = over_tls(server.addr, &second, b"http/1.1");
    assert_eq!(status, 200);
}

#[test]
fn a_missing_or_mismatched_certificate_stops_the_start_in_one_sentence() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_certificate(dir.path());
    let other = tempfile::tempdir().expect("temp dir");
    write_certificate(other.path());
    let start = |cert: &Path, key: &Path| {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        refused_start(&["-b", "127.0.0.1:0", "--certfile", &cert, "--keyfile", &key])
    };
    let missing = dir.path().join("missing.pem");
    let stderr = start(&missing, &dir.path().join("key.pem"));
    assert!(
        stderr.contains(&format!(
            "--certfile {} cannot be read as PEM certificates",
            missing.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let stderr = start(&dir.path().join("cert.pem"), &other.path().join("key.pem"));
    assert!(stderr.contains("do not go together"), "{stderr}");
}

/// The body of `GET /` over the unix socket, when the server answers 200.
fn body_at(sock: &Path) -> Option<String> {
    UnixStream::connect(sock).ok()?;
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (response, _) = parse_response(&exchange_unix(sock, raw), false);
    (response.status == 200).then(|| response.text())
}

fn comes_to_answer(server: &Started, sock: &Path, wanted: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if body_at(sock).as_deref() == Some(wanted) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{}", server.log());
    false
}

fn write_app(dir: &Path, answer: &str) {
    std::fs::write(
        dir.join("app.py"),
        format!(
            "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'{answer}']\n"
        ),
    )
    .expect("write app.py");
}

#[test]
fn with_reload_an_edited_view_is_served_and_a_broken_one_leaves_the_old_worker_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("app.sock");
    write_app(dir.path(), "version 1");
    let bind = format!("unix:{}", sock.display());
    let server = Started::new(dir.path(), &["app", "--reload", "-b", &bind], &[]);
    assert!(comes_to_answer(&server, &sock, "version 1"));

    write_app(dir.path(), "version 2");
    assert!(comes_to_answer(&server, &sock, "version 2"));

    std::fs::write(
        dir.path().join("app.py"),
        "def application(environ, start_response:\n",
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains("The change did not load") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.log();
    assert!(
        log.contains("SyntaxError"),
        "the worker's error is in the log: {log}"
    );
    assert_eq!(body_at(&sock).as_deref(), Some("version 2"), "{log}");

    write_app(dir.path(), "version 3");
    assert!(comes_to_answer(&server, &sock, "version 3"));
    // A file that is no source (a log, a database) changes nothing.
    let boots = server.log().matches("for the change").count();
    std::fs::write(dir.path().join("notes.txt"), "not source").expect("write");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(server.log().matches("for the change").count(), boots);
}

#[test]
fn sigusr1_reopens_the_access_and_error_logs_after_logrotate_moves_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("app.sock");
    let bind = format!("unix:{}", sock.display());
    let pyapps = support::pyapps().display().to_string();
    let mut server = Started::new(
        dir.path(),
        &[
            "edge",
            "--pythonpath",
            &pyapps,
            "-b",
            &bind,
            "--access-logfile",
            "access.log",
            "--error-logfile",
            "error.log",
        ],
        &[],
    );
    server.log = dir.path().join("error.log");
    server.environ_at(&sock, "/before-rotation");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    assert!(
        read("access.log").contains("GET /before-rotation"),
        "{}",
        read("access.log")
    );
    assert!(read("error.log").contains("Listening at"));

    // logrotate's `create` way: move the files away, then tell the server.
    std::fs::rename(
        dir.path().join("access.log"),
        dir.path().join("access.log.1"),
    )
    .expect("mv");
    std::fs::rename(dir.path().join("error.log"), dir.path().join("error.log.1")).expect("mv");
    let _ = Command::new("kill")
        .args(["-USR1", &server.child.id().to_string()])
        .status();
    // The signal is handled between requests; the next lines go to the new files.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.path().join("access.log").exists() {
        assert!(
            Instant::now() < deadline,
            "the access log was not opened again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.environ_at(&sock, "/after-rotation");
    let _ = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    assert!(
        read("access.log").contains("GET /after-rotation"),
        "{}",
        read("access.log")
    );
    assert!(!read("access.log.1").contains("/after-rotation"));
    assert!(
        support::file_comes_to_contain(&dir.path().join("error.log"), "Reloaded"),
        "{}",
        read("error.log")
    );
    assert!(!read("error.log.1").contains("Reloaded"));
}

#[test]
fn runserver_in_a_startproject_directory_serves_it_with_the_admin_css_from_the_finders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let made = Command::new(support::venv().join("bin/django-admin"))
        .args(["startproject", "mysite"])
        .arg(dir.path())
        .status()
        .expect("django-admin");
    assert!(made.success());
    let sock = dir.path().join("dev.sock");
    let bind = format!("unix:{}", sock.display());
    // Nothing but what `manage.py runserver` is given: the project's directory.
    let mut server = Started::command(dir.path(), "runserver", &["-b", &bind], &[]);
    server.environ_at_status(&sock, "/static/admin/css/base.css", 200);
    assert_eq!(
        body_status(&sock, "/admin/login/"),
        Some(200),
        "{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("(mysite.wsgi:application)"), "{log}");
    assert!(
        log.contains("static files are served from the finders"),
        "{log}"
    );
}

/// The status of `GET target` over the unix socket.
fn body_status(sock: &Path, target: &str) -> Option<u16> {
    UnixStream::connect(sock).ok()?;
    let raw = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let answer = exchange_unix(sock, raw.as_bytes());
    (!answer.is_empty()).then(|| parse_response(&answer, false).0.status)
}

impl Started {
    /// Waits until `target` answers `status` over the unix socket.
    fn environ_at_status(&mut self, sock: &Path, target: &str, status: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while body_status(sock, target) != Some(status) {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("server exited early ({exit}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{target} never answered {status}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
