//! Load on the real binary over real sockets: 2,000 keep-alive connections held open and each
//! served, a soak of 200,000 requests with no error and flat memory, and 10,000 clients leaving
//! mid-stream (from a plain WSGI app, and from a Django view reading an open database cursor)
//! with nothing leaked. The figures are printed (`cargo test --test load -- --nocapture`); only
//! correctness and growth are asserted.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Server, get};

/// Lets this process (and the server it starts) hold a few thousand sockets.
fn raise_open_files(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the rlimit struct owned here.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A keep-alive connection that sends GETs and reads whole answers (Content-Length framed).
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, path: &str) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .expect("send");
    }

    /// The status of the next answer on this connection.
    fn status(&mut self) -> u16 {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            self.reader.read_line(&mut header).expect("header");
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        status
    }
}

/// Eight client threads send `clients` requests between them, each on its own connection, read
/// the first bytes of the answer (a 200's status line), and hang up mid-response.
fn leave_mid_stream(addr: SocketAddr, clients: usize, request: fn(usize) -> String) {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in (t..clients).step_by(8) {
                    let mut stream = TcpStream::connect(addr).expect("connect");
                    stream.write_all(request(i).as_bytes()).expect("send");
                    let mut first = [0u8; 64];
                    let _ = stream.read(&mut first);
                    assert!(
                        first.starts_with(b"HTTP/1.1 200"),
                        "{:?}",
                        first.escape_ascii()
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client");
    }
}

/// Descriptors and resident memory after a run, against before: nothing left behind.
fn assert_flat((files_before, files_after): (usize, usize), (rss_before, rss_after): (u64, u64)) {
    assert!(
        files_after <= files_before + 8,
        "descriptors grew from {files_before} to {files_after}"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 16 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

fn edge(extra: &[&str]) -> Server {
    let server = support::edge_server(extra, &[]);
    assert_eq!(get(server.addr, "/pid").status, 200);
    server
}

#[test]
fn two_thousand_keep_alive_connections_are_held_and_served() {
    raise_open_files(8192);
    // 2,000 requests at once must all wait for 4 Python threads: the queue has room for them
    // (with the default of 128 the rest get 503 and Retry-After, which is the back-pressure).
    let server = edge(&["--keep-alive", "60", "--queue-size", "2000"]);
    let mut clients: Vec<Client> = (0..2000).map(|_| Client::connect(server.addr)).collect();
    // Every connection is open at once: all send, then all read, twice over.
    for round in 0..2 {
        for client in &mut clients {
            client.send("/pid");
        }
        let failed = clients
            .iter_mut()
            .map(|c| c.status())
            .filter(|status| *status != 200)
            .count();
        assert_eq!(
            failed, 0,
            "round {round}: {failed} of 2000 connections failed"
        );
    }
    let held = open_files(server.pid());
    eprintln!("2000 keep-alive connections served twice; the server holds {held} descriptors");
    assert!(held >= 2000, "the server holds only {held} descriptors");
    drop(clients);
    assert_eq!(get(server.addr, "/pid").status, 200);
}

#[test]
fn a_soak_of_200000_requests_has_no_error_and_flat_memory() {
    let server = edge(&[]);
    let per_thread = 200_000 / 8;
    let soak = |requests: usize| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let addr = server.addr;
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    let mut failed = 0;
                    for i in 0..requests {
                        // A fresh connection now and then, as real clients come and go.
                        if i % 1000 == 999 {
                            client = Client::connect(addr);
                        }
                        client.send("/pid");
                        failed += usize::from(client.status() != 200);
                    }
                    failed
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("client"))
            .sum::<usize>()
    };
    // Warm up, so the interpreter, caches and pools have their working size.
    assert_eq!(soak(2_000), 0);
    let before = resident_kib(server.pid());
    let started = Instant::now();
    let failed = soak(per_thread);
    let took = started.elapsed();
    let after = resident_kib(server.pid());
    eprintln!(
        "200000 requests in {:.1} s ({:.0}/s), {failed} failed; RSS {} -> {} KiB",
        took.as_secs_f64(),
        200_000.0 / took.as_secs_f64(),
        before,
        after
    );
    assert_eq!(failed, 0);
    // Flat: growth under 16 MiB over 200,000 requests (a leak of 100 bytes a request is 19 MiB).
    assert!(
        after.saturating_sub(before) < 16 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}

#[test]
fn ten_thousand_clients_leaving_mid_stream_leak_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let closes = dir.path().join("closes.log");
    let server = support::edge_server(
        &[],
        &[("EDGE_LOG".to_owned(), closes.display().to_string())],
    );
    assert_eq!(get(server.addr, "/pid").status, 200);
    // A stream of 5 chunks 10 ms apart; each client reads the head and the first chunk, then
    // leaves. Each time the server must notice, stop iterating and call close().
    let leave = |clients: usize| {
        leave_mid_stream(server.addr, clients, |i| {
            format!("GET /stream?name=c{i}&n=5&delay=0.01 HTTP/1.1\r\nHost: x\r\n\r\n")
        })
    };
    leave(500);
    std::thread::sleep(Duration::from_millis(500));
    let (files_before, rss_before) = (open_files(server.pid()), resident_kib(server.pid()));
    let started = Instant::now();
    leave(10_000);
    let took = started.elapsed();
    // Every stream's close() is called (the log has one line per call).
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        let closed = std::fs::read_to_string(&closes)
            .unwrap_or_default()
            .lines()
            .count();
        if closed >= 10_500 || Instant::now() > deadline {
            break closed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    let (files_after, rss_after) = (open_files(server.pid()), resident_kib(server.pid()));
    eprintln!(
        "10000 clients left mid-stream in {:.1} s: close() called {closed} times (500 warm-up \
         included); descriptors {files_before} -> {files_after}; RSS {rss_before} -> {rss_after} KiB",
        took.as_secs_f64()
    );
    assert_eq!(closed, 10_500, "close() was not called for every stream");
    assert_flat((files_before, files_after), (rss_before, rss_after));
    assert_eq!(get(server.addr, "/pid").status, 200);
}

/// Descriptors of `pid` open on the SQLite database file itself (one per connection).
fn database_connections(pid: u32, database: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == database)
        .count()
}

#[test]
fn ten_thousand_clients_leaving_a_database_stream_leak_no_connection() {
    let site = support::Site::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let finished = dir.path().join("finished.log");
    let mut env = site.env();
    env.push(("FINISHED_LOG".into(), finished.display().to_string()));
    let pythonpath = support::site_pythonpath();
    let server = Server::ficus(
        &[
            "observed_site",
            "--pythonpath",
            &pythonpath,
            "--threads",
            "4",
        ],
        &env,
    );
    let database = site
        .dir
        .path()
        .join("db.sqlite3")
        .canonicalize()
        .expect("the site's database");
    // Each client reads the head and the first row, then leaves while Django still iterates an
    // open cursor: the server must close the iterable, and Django its cursor and connection.
    let leave = |clients: usize| {
        leave_mid_stream(server.addr, clients, |_| {
            "GET /_test/db-stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_owned()
        })
    };
    let finished_count = || {
        std::fs::read_to_string(&finished)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let wait_finished = |wanted: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while finished_count() < wanted && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        finished_count()
    };
    leave(500);
    wait_finished(500);
    let pid = server.pid();
    let (connections_before, files_before, rss_before) = (
        database_connections(pid, &database),
        open_files(pid),
        resident_kib(pid),
    );
    let started = Instant::now();
    leave(10_000);
    let took = started.elapsed();
    let finished = wait_finished(10_500);
    std::thread::sleep(Duration::from_millis(500));
    let (connections_after, files_after, rss_after) = (
        database_connections(pid, &database),
        open_files(pid),
        resident_kib(pid),
    );
    eprintln!(
        "10000 clients left a database stream in {:.1} s: request_finished {finished} times \
         (500 warm-up included); database connections {connections_before} -> \
         {connections_after}; descriptors {files_before} -> {files_after}; RSS {rss_before} -> \
         {rss_after} KiB",
        took.as_secs_f64()
    );
    assert_eq!(
        finished, 10_500,
        "Django's request_finished did not fire for every stream"
    );
    // One persistent connection per Python thread at most (CONN_MAX_AGE), before and after.
    assert!(connections_before <= 4 && connections_after <= 4);
    assert_flat((files_before, files_after), (rss_before, rss_after));
    assert_eq!(get(server.addr, "/healthz").status, 200);
}
