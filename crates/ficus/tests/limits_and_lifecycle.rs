//! gunicorn's limits and ficus's own (each answered with its status, the server serving the next
//! request), back-pressure, timeouts, start-up mistakes, signals, and Django's request_finished
//! firing when a client leaves mid-stream.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Server, Site, exchange, get, parse_response};

fn edge_server(extra: &[&str]) -> Server {
    support::edge_server(extra, &[])
}

fn status_of(server: &Server, raw: &[u8]) -> u16 {
    let reply = exchange(server.addr, raw);
    assert!(
        !reply.is_empty(),
        "no answer to {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(80)])
    );
    parse_response(&reply, false).0.status
}

#[test]
fn each_limit_gives_its_status_and_the_server_carries_on() {
    let server = edge_server(&["--max-body-size", "1000"]);
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(5000));
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_fields = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let big_field = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "v".repeat(9000)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("request line over 4094", long_line.into_bytes(), 414),
        ("101 header fields", many_fields.into_bytes(), 431),
        ("a 9000-byte field", big_field.into_bytes(), 431),
        (
            "Transfer-Encoding with Content-Length",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two Content-Length headers",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab".to_vec(),
            400,
        ),
        ("a bad version", b"GET / HTTP/1.7\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("bare LF line ends", b"GET / HTTP/1.1\nHost: x\n\n".to_vec(), 400),
        ("one bare LF among CRLFs", b"GET / HTTP/1.1\r\nHost: x\nX-B: 1\r\n\r\n".to_vec(), 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_vec(), 400),
        (
            "a chunk size that is not hex",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "chunk data longer than its size",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "chunked not the last transfer coding",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        ("a NUL in a header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(), 400),
        (
            "a body over --max-body-size",
            format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n{}", "b".repeat(2000)).into_bytes(),
            413,
        ),
        (
            "a chunked body over --max-body-size",
            format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n{}\r\n0\r\n\r\n", "c".repeat(2000)).into_bytes(),
            413,
        ),
    ];
    for (what, raw, expected) in cases {
        assert_eq!(status_of(&server, &raw), expected, "{what}");
        assert_eq!(get(server.addr, "/late").status, 200, "after {what}");
    }
    // Just inside the limits is fine.
    let at_limit = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(4094 - 15)
    );
    assert_eq!(status_of(&server, at_limit.as_bytes()), 200);
}

#[test]
fn a_client_trickling_headers_is_cut_off_without_holding_a_python_thread() {
    let server = edge_server(&["--keep-alive", "1", "--threads", "1"]);
    let mut slow = support::connect(server.addr);
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Meanwhile the only Python thread is free for others.
    assert_eq!(get(server.addr, "/late").status, 200);
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the trickling client was kept for {:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_trickling_its_body_is_cut_off_without_holding_a_python_thread() {
    let server = edge_server(&["--timeout", "2", "--threads", "1"]);
    let mut slow = support::connect(server.addr);
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let mut trickle = slow.try_clone().unwrap();
    let started = Instant::now();
    let trickler = std::thread::spawn(move || {
        // One byte every 100 ms: the body would take 10 s to arrive.
        for _ in 0..100 {
            if trickle.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // Meanwhile the only Python thread answers others.
    for _ in 0..5 {
        assert_eq!(get(server.addr, "/late").status, 200);
    }
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert_eq!(parse_response(&answer, false).0.status, 408);
    assert!(
        waited < Duration::from_secs(5),
        "the trickling client was kept for {waited:?}"
    );
    trickler.join().unwrap();
    assert_eq!(get(server.addr, "/late").status, 200);
}

#[test]
fn a_full_queue_is_answered_503_with_retry_after() {
    // One thread and one queue slot: of four slow requests sent together, at most two are taken
    // (one running, one waiting; fewer when the burst lands before the thread has picked up the
    // first) and the rest are turned away with 503.
    let server = edge_server(&["--threads", "1", "--queue-size", "1"]);
    let addr = server.addr;
    let requests: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let sent = Instant::now();
                (support::get(addr, "/slow?s=3"), sent.elapsed())
            })
        })
        .collect();
    let responses: Vec<_> = requests.into_iter().map(|r| r.join().unwrap()).collect();
    let statuses: Vec<u16> = responses.iter().map(|(r, _)| r.status).collect();
    let refused: Vec<_> = responses.iter().filter(|(r, _)| r.status == 503).collect();
    let served = responses.iter().filter(|(r, _)| r.status == 200).count();
    assert_eq!(served + refused.len(), 4, "{statuses:?}");
    assert!((1..=2).contains(&served), "{statuses:?}");
    assert!(
        refused
            .iter()
            .all(|(r, _)| r.header("Retry-After") == Some("1"))
    );
    // Turned away at once, not after waiting for the slow requests ahead of them.
    for (_, waited) in &refused {
        assert!(*waited < Duration::from_secs(1), "a 503 took {waited:?}");
    }
    assert_eq!(get(addr, "/late").status, 200);
}

#[test]
fn an_app_slower_than_the_timeout_gets_504_and_the_pool_recovers() {
    let server = edge_server(&["--timeout", "1", "--threads", "1"]);
    let started = Instant::now();
    assert_eq!(get(server.addr, "/slow?s=3").status, 504);
    assert!(started.elapsed() < Duration::from_millis(2500));
    // The late view still occupies its thread, and the pool says so ...
    assert_eq!(busy_python_threads(&server), 1);
    std::thread::sleep(Duration::from_secs(3));
    // ... until it finishes: then the thread is back, and capacity with it.
    assert!(busy_python_threads_come_to(&server, 0));
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/late").status, 200);
    }
    // A thread is idle again a moment after its client has the whole answer (it still closes
    // the iterable and hands back the job), so the gauge is waited for, not sampled once.
    assert!(busy_python_threads_come_to(&server, 0));
}

/// Waits up to two seconds for the busy-thread gauge to read `wanted`.
fn busy_python_threads_come_to(server: &Server, wanted: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if busy_python_threads(server) == wanted {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn busy_python_threads(server: &Server) -> u64 {
    let metrics = get(server.addr, "/metrics").text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("ficus_python_threads_busy "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no busy-thread gauge in:\n{metrics}"))
}

#[test]
fn sigterm_lets_the_slow_request_finish_then_exits_zero() {
    let mut server = edge_server(&[]);
    let addr = server.addr;
    let slow = std::thread::spawn(move || get(addr, "/slow?s=2"));
    std::thread::sleep(Duration::from_millis(500));
    server.signal("TERM");
    let response = slow.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["slept"], "2");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("ficus did not exit");
    assert!(status.success(), "exit status {status}\n{}", server.log());
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after SIGTERM"
    );
}

/// What one client of the load below saw of one request.
#[derive(Debug)]
enum Outcome {
    /// Connected before SIGTERM; the status it got (0 when the connection closed unanswered).
    Before(u16),
    /// Connected after SIGTERM (a race with the signal); the status, or 0.
    After(u16),
    /// The connection was refused: the server had stopped accepting.
    Refused,
}

#[test]
fn sigterm_under_load_finishes_in_flight_requests_and_accepts_nothing_after() {
    let mut server = edge_server(&["--graceful-timeout", "5", "--threads", "4"]);
    let addr = server.addr;
    let signalled = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let signalled = signalled.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    let Ok(mut stream) = TcpStream::connect(addr) else {
                        seen.push(Outcome::Refused);
                        return seen;
                    };
                    let connected_after = signalled.get().is_some();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let _ = stream.write_all(
                        b"GET /slow?s=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    );
                    let mut answer = Vec::new();
                    let _ = stream.read_to_end(&mut answer);
                    let status = if answer.is_empty() {
                        0
                    } else {
                        parse_response(&answer, false).0.status
                    };
                    seen.push(if connected_after {
                        Outcome::After(status)
                    } else {
                        Outcome::Before(status)
                    });
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let at = *signalled.get_or_init(Instant::now);
    server.signal("TERM");
    // Requests are still in flight (each takes 1 s), yet no new connection gets in once the
    // signal is handled (a loaded machine may take a moment to get there).
    let refused_by = at + Duration::from_millis(900);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < refused_by, "accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("ficus did not exit within --graceful-timeout");
    let exited_after = at.elapsed();
    assert!(status.success(), "exit status {status}\n{}", server.log());
    let seen: Vec<Outcome> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let before: Vec<u16> = seen
        .iter()
        .filter_map(|o| match o {
            Outcome::Before(status) => Some(*status),
            _ => None,
        })
        .collect();
    // Every request that was in before the signal got its whole answer.
    assert!(before.len() >= 8, "{seen:?}");
    assert!(before.iter().all(|&s| s == 200), "{seen:?}");
    // One that slipped in while the signal was on its way is answered or closed unanswered,
    // never half-answered.
    assert!(
        seen.iter()
            .all(|o| !matches!(o, Outcome::After(s) if *s != 200 && *s != 0)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|o| matches!(o, Outcome::Refused)),
        "{seen:?}"
    );
    eprintln!(
        "SIGTERM under load: {} requests answered 200 before it, exit 0 after {exited_after:?}",
        before.len()
    );
}

#[test]
fn a_request_longer_than_the_graceful_timeout_does_not_hold_the_exit() {
    let mut server = edge_server(&["--graceful-timeout", "1"]);
    let addr = server.addr;
    // Cut off at the exit, so its answer never comes.
    let _stuck =
        std::thread::spawn(move || exchange(addr, b"GET /slow?s=30 HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::thread::sleep(Duration::from_millis(500));
    let at = Instant::now();
    server.signal("TERM");
    assert!(
        server.wait_exit(Duration::from_secs(5)).is_some(),
        "ficus kept waiting for a 30 s request with --graceful-timeout 1"
    );
    assert!(at.elapsed() < Duration::from_secs(4), "{:?}", at.elapsed());
}

#[test]
fn sigint_stops_the_server() {
    let mut server = edge_server(&[]);
    server.signal("INT");
    assert!(
        server.wait_exit(Duration::from_secs(10)).is_some(),
        "{}",
        server.log()
    );
}

#[test]
fn django_request_finished_fires_when_a_client_leaves_mid_stream() {
    let site = Site::new();
    let dir = tempfile::tempdir().unwrap();
    let finished = dir.path().join("finished.log");
    let mut env = site.env();
    env.push(("FINISHED_LOG".into(), finished.display().to_string()));
    let pythonpath = support::site_pythonpath();
    let server = Server::ficus(&["observed_site", "--pythonpath", &pythonpath], &env);
    let first = support::read_first_then_leave(
        server.addr,
        b"GET /_test/slow-stream/?n=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        support::file_comes_to_contain(&finished, "finished"),
        "request_finished never fired:
{}",
        server.log()
    );
}

#[test]
fn static_files_are_served_natively_with_validators_and_no_way_out() {
    let site = Site::new();
    let server = Server::ficus(&[], &site.env());
    let css = get(server.addr, "/static/css/site.css");
    assert_eq!(css.status, 200);
    assert_eq!(
        css.body,
        std::fs::read(site.static_root().join("css/site.css")).unwrap()
    );
    assert!(
        css.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    let etag = css.header("ETag").expect("an ETag").to_owned();
    let modified = css
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_owned();
    let again = support::request(
        server.addr,
        "GET",
        "/static/css/site.css",
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let again = support::request(
        server.addr,
        "GET",
        "/static/css/site.css",
        &[("If-Modified-Since", &modified)],
        b"",
    );
    assert_eq!(again.status, 304);
    for escape in [
        "/static/../db.sqlite3",
        "/static/%2e%2e/%2e%2e/routes.toml",
        "/static/..%2f..%2fCargo.toml",
        "/static/%2fetc/passwd",
        "/static//etc/passwd",
        "/static/css/site.css%00.txt",
        "/static/css%00/site.css",
    ] {
        let response = get(server.addr, escape);
        assert_eq!(response.status, 404, "{escape}");
        assert!(
            !response.text().contains("[package]") && !response.text().contains("root:"),
            "{escape}"
        );
    }
}

#[test]
fn a_symlink_out_of_the_static_root_is_not_followed() {
    let site = Site::new();
    let outside = site.dir.path().join("secret.txt");
    std::fs::write(&outside, "root:x:0:0 the secret").unwrap();
    let root = site.dir.path().join("static");
    std::fs::create_dir_all(root.join("css")).unwrap();
    std::fs::write(root.join("css/site.css"), "body {}").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(site.dir.path(), root.join("up")).unwrap();
    // A link that stays inside the root is an ordinary file.
    std::os::unix::fs::symlink(root.join("css/site.css"), root.join("inside.css")).unwrap();
    let env: Vec<(String, String)> = site
        .env()
        .into_iter()
        .filter(|(name, _)| name != "LEGACY_STATIC_ROOT")
        .chain([("LEGACY_STATIC_ROOT".into(), root.display().to_string())])
        .collect();
    let server = Server::ficus(&[], &env);
    assert_eq!(get(server.addr, "/static/inside.css").text(), "body {}");
    for escape in [
        "/static/leak.txt",
        "/static/up/secret.txt",
        "/static/up/db.sqlite3",
    ] {
        let response = get(server.addr, escape);
        assert_eq!(response.status, 404, "{escape}");
        assert!(!response.text().contains("the secret"), "{escape}");
    }
}

fn ficus_start_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(support::binary());
    command.arg("serve").args(args);
    if !args.contains(&"--routes") {
        command.args(["--routes", support::django_only_routes()]);
    }
    let output = command
        .args(["-b", support::ANY_PORT])
        .envs(env.iter().copied())
        .env_remove("VIRTUAL_ENV")
        .current_dir(support::repo())
        .output()
        .expect("run ficus");
    assert!(!output.status.success(), "ficus should refuse to start");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("ficus: error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    last
}

#[test]
fn startup_mistakes_end_in_one_sentence_saying_what_to_do() {
    let venv = support::venv().display().to_string();
    let wrong_app = ficus_start_error(&["no_such_module.wsgi", "--venv", &venv], &[]);
    assert!(
        wrong_app.contains("cannot import `no_such_module.wsgi`"),
        "{wrong_app}"
    );

    let wrong_attr = ficus_start_error(&["legacy.wsgi:app", "--venv", &venv], &[]);
    assert!(
        wrong_attr.contains("has no attribute `app`"),
        "{wrong_attr}"
    );

    // A venv without Django.
    let bare = tempfile::tempdir().unwrap();
    let made = Command::new(support::python())
        .args(["-m", "venv", "--without-pip"])
        .arg(bare.path())
        .status()
        .unwrap();
    assert!(made.success());
    let no_django = ficus_start_error(&["--venv", &bare.path().display().to_string()], &[]);
    assert!(no_django.contains("Django is not installed"), "{no_django}");

    // A venv made by another Python version.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("bin")).unwrap();
    std::fs::write(
        other.path().join("pyvenv.cfg"),
        "home = /usr/bin\nversion = 2.7.18\n",
    )
    .unwrap();
    let mismatch = ficus_start_error(&["--venv", &other.path().display().to_string()], &[]);
    assert!(mismatch.contains("was built for Python 2.7"), "{mismatch}");

    let not_venv = tempfile::tempdir().unwrap();
    let missing = ficus_start_error(&["--venv", &not_venv.path().display().to_string()], &[]);
    assert!(missing.contains("is not a virtualenv"), "{missing}");
}

/// This host's address on its default route, as other hosts would see it.
fn non_loopback_address() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    // Connecting a UDP socket sends nothing; it only picks the local address of the route.
    probe
        .connect("192.0.2.1:9")
        .expect("this test needs a non-loopback IPv4 address (a default route)");
    let ip = probe.local_addr().expect("local address").ip();
    assert!(!ip.is_loopback(), "no non-loopback address: {ip}");
    ip
}

#[test]
fn admin_pages_are_not_reachable_from_another_address_without_the_token() {
    let host = non_loopback_address();
    let bind = SocketAddr::new(host, 0).to_string();
    let server = edge_server(&["-b", &bind, "--admin-token", "s3cret"]);
    let outside = *server
        .listening
        .iter()
        .find(|a| a.ip() == host)
        .expect("the server reports its non-loopback address");
    for path in ["/metrics", "/_ficus/", "/_ficus/api/status"] {
        let from_outside = support::get(outside, path);
        assert!(
            !from_outside.text().contains("ficus_requests_total")
                && !from_outside.text().contains("\"routes\"")
                && !from_outside.text().contains("migration dashboard"),
            "{path} answered a non-loopback client: {}",
            from_outside.text()
        );
        let with_token = support::request(
            outside,
            "GET",
            path,
            &[("Authorization", "Bearer s3cret")],
            b"",
        );
        assert_eq!(with_token.status, 200, "{path} with the token");
        assert_eq!(
            support::get(server.addr, path).status,
            200,
            "{path} on loopback"
        );
    }
}

#[test]
fn a_client_still_sending_when_refused_gets_its_answer_not_a_reset() {
    let server = edge_server(&["--max-body-size", "1000"]);
    let refusals: [(&[u8], u16); 2] = [
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n",
            413,
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", 431),
    ];
    for (head, status) in refusals {
        let mut stream = support::connect(server.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head).unwrap();
        // The rest is sent before anything is read, as an uploading client does: the server
        // answered long before, and keeps reading (and discarding) instead of resetting.
        let sent = stream.write_all(&vec![b'v'; 5_000_000]);
        assert!(sent.is_ok(), "{status}: sending the rest failed: {sent:?}");
        let mut reply = Vec::new();
        let read = stream.read_to_end(&mut reply);
        assert!(read.is_ok(), "{status}: {read:?}");
        assert_eq!(parse_response(&reply, false).0.status, status);
    }
    assert_eq!(get(server.addr, "/late").status, 200);
}

#[test]
fn a_client_stopping_mid_request_line_is_cut_off_too() {
    // The guard holds an unfinished request line back (it may need rewriting); it must still
    // reach hyper, whose header timeout closes the connection.
    let server = edge_server(&["--keep-alive", "1"]);
    let mut slow = support::connect(server.addr);
    slow.write_all(b"GET /search?q=\"unfinish").unwrap();
    let mut buf = Vec::new();
    let read = slow.read_to_end(&mut buf);
    assert!(read.is_ok(), "the connection was kept open: {read:?}");
    assert_eq!(get(server.addr, "/late").status, 200);
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_the_keep_alive_time() {
    let server = edge_server(&["--keep-alive", "1"]);
    let mut silent = support::connect(server.addr);
    let mut buf = [0u8; 16];
    // Closed by the server (a read of 0), well before the ten-second read timeout: before,
    // such a connection was held for good, as hyper's header timer starts at a first byte.
    let read = silent.read(&mut buf);
    assert!(matches!(read, Ok(0)), "{read:?}");
    // The server serves on.
    assert_eq!(get(server.addr, "/environ").status, 200);
}

#[test]
fn under_debug_static_files_come_from_the_finders_without_collectstatic_as_runserver_serves_them() {
    let site = Site::new();
    // Nothing collected: only the finders (each app's static/ folder) have the files.
    let empty = tempfile::tempdir().expect("temp dir");
    let mut env = site.env();
    env.retain(|(k, _)| k != "LEGACY_STATIC_ROOT");
    env.push((
        "LEGACY_STATIC_ROOT".into(),
        empty.path().display().to_string(),
    ));
    let admin_css = "/static/admin/css/base.css";

    let production = Server::ficus(&[], &env);
    assert_eq!(
        get(production.addr, admin_css).status,
        404,
        "DEBUG off: STATIC_ROOT only"
    );
    drop(production);

    env.push(("DJANGO_DEBUG".into(), "1".into()));
    let debug = Server::ficus(&[], &env);
    let css = get(debug.addr, admin_css);
    assert_eq!(css.status, 200, "{}", debug.log());
    assert!(css.text().contains("DJANGO Admin styles"), "{}", css.text());
    assert!(
        debug
            .log()
            .contains("static files are served from the finders")
    );
    // The project's own app static folder too.
    assert_eq!(get(debug.addr, "/static/css/site.css").status, 200);
    drop(debug);

    let off = Server::ficus(&["--no-static"], &env);
    assert_eq!(get(off.addr, admin_css).status, 404, "--no-static");
}
