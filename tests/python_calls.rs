//! Rust handlers calling Python through the helper, under load, in a server built on the ficus
//! library the way a team builds its own binary: the legacy project's handlers plus a few
//! test-only ones, served in this process over real sockets.
//!
//! One interpreter per process, so every test here shares one server (started once) and takes
//! a lock, since they count the Python threads' work.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ficus::prelude::JsonResponse;
use ficus::prelude::PythonCalls;
use ficus::prelude::QueryDict;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::json;

use support::get;
use support::in_process::{self, InProcess, Log};

const PYTHON_THREADS: usize = 8;

/// Fetches `?url=` with Python's urllib: blocking network I/O on a Python thread.
async fn fetch(State(python): State<PythonCalls>, query: QueryDict) -> Response {
    let url = query.get("url").unwrap_or_default().to_owned();
    let fetched = python
        .call(move |py| {
            let options = PyDict::new(py);
            options.set_item("timeout", 30)?;
            let body = py
                .import("urllib.request")?
                .call_method("urlopen", (url,), Some(&options))?
                .call_method0("read")?;
            body.extract::<Vec<u8>>()
        })
        .await;
    match fetched {
        Ok(body) => JsonResponse(json!({"body": String::from_utf8_lossy(&body)})).into_response(),
        Err(err) => err.into_response(),
    }
}

/// Needs no Python at all.
async fn plain() -> &'static str {
    "served by Rust alone"
}

async fn raise(State(python): State<PythonCalls>) -> Response {
    match python
        .call(|py| py.eval(c"1 / 0", None, None).map(|_| ()))
        .await
    {
        Ok(()) => "unreachable".into_response(),
        Err(err) => err.into_response(),
    }
}

async fn panic() -> &'static str {
    panic!("a deliberate panic in a test handler")
}

/// The upstream the Python calls fetch from: answers each request after a delay, counting how
/// many are in flight at once.
struct SlowUpstream {
    addr: SocketAddr,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl SlowUpstream {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (now, max) = (in_flight.clone(), peak.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (now, max) = (now.clone(), max.clone());
                std::thread::spawn(move || answer_slowly(stream, &now, &max));
            }
        });
        SlowUpstream {
            addr,
            in_flight,
            peak,
        }
    }

    fn url(&self, millis: u64) -> String {
        format!("http://{}/slow?ms={millis}", self.addr)
    }
}

fn answer_slowly(mut stream: TcpStream, now: &AtomicUsize, max: &AtomicUsize) {
    let mut head = [0u8; 1024];
    let n = stream.read(&mut head).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]);
    let millis = text
        .split("ms=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(200);
    let current = now.fetch_add(1, Ordering::SeqCst) + 1;
    max.fetch_max(current, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(millis));
    now.fetch_sub(1, Ordering::SeqCst);
    let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

struct Harness {
    addr: SocketAddr,
    upstream: SlowUpstream,
    log: Log,
    _server: InProcess,
}

fn harness() -> MutexGuard<'static, Harness> {
    static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
    let harness = HARNESS.get_or_init(|| Mutex::new(start()));
    harness
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn start() -> Harness {
    let routes = ["fetch", "plain", "raise", "panic"]
        .map(|name| {
            format!("[[route]]\npath = \"/test/{name}\"\nhandler = \"test::{name}\"\nnew = true\n")
        })
        .join("\n");
    let registry = legacy_migration::handlers::registry()
        .register("test::fetch", fetch)
        .register("test::plain", plain)
        .register("test::raise", raise)
        .register("test::panic", panic);
    let threads = PYTHON_THREADS.to_string();
    let server = in_process::serve(&routes, registry, &["--threads", &threads]);
    Harness {
        addr: server.addr,
        upstream: SlowUpstream::start(),
        log: server.log.clone(),
        _server: server,
    }
}

fn fetch_target(url: &str) -> String {
    format!(
        "/test/fetch?url={}",
        url.replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('=', "%3D")
    )
}

#[test]
fn thirty_two_blocking_python_calls_overlap_and_all_succeed() {
    let h = harness();
    h.upstream.peak.store(0, Ordering::SeqCst);
    let target = fetch_target(&h.upstream.url(200));
    let started = Instant::now();
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (addr, target) = (h.addr, target.clone());
            std::thread::spawn(move || get(addr, &target))
        })
        .collect();
    let responses: Vec<_> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    let elapsed = started.elapsed();
    for response in &responses {
        assert_eq!(response.status, 200, "{}", h.log.text());
        assert_eq!(response.json(), json!({"body": "ok"}));
    }
    // Every Python thread had a call in flight at once: the calls ran side by side, as many
    // at a time as there are threads, not one after another.
    assert_eq!(h.upstream.peak.load(Ordering::SeqCst), PYTHON_THREADS);
    eprintln!(
        "32 calls of 200 ms on {PYTHON_THREADS} Python threads took {} ms",
        elapsed.as_millis()
    );
}

#[test]
fn rust_route_without_python_is_served_while_every_python_thread_is_busy() {
    let h = harness();
    let target = fetch_target(&h.upstream.url(3000));
    let busy: Vec<_> = (0..PYTHON_THREADS)
        .map(|_| {
            let (addr, target) = (h.addr, target.clone());
            std::thread::spawn(move || get(addr, &target))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.upstream.in_flight.load(Ordering::SeqCst) < PYTHON_THREADS {
        assert!(
            Instant::now() < deadline,
            "the Python threads never all got busy"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let plain = get(h.addr, "/test/plain");
    let still_busy = h.upstream.in_flight.load(Ordering::SeqCst);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.text(), "served by Rust alone");
    assert_eq!(
        still_busy, PYTHON_THREADS,
        "the Python threads were all busy while the Rust route answered"
    );
    for client in busy {
        assert_eq!(client.join().expect("client thread").status, 200);
    }
}

#[test]
fn python_exception_in_a_handler_is_a_500_with_the_traceback_logged() {
    let h = harness();
    let response = get(h.addr, "/test/raise");
    assert_eq!(response.status, 500);
    // The project's own 500 page (legacy/templates/500.html), not a bare status.
    assert!(
        response.text().contains("Something went wrong on our side"),
        "{}",
        response.text()
    );
    let log = h.log.text();
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    assert!(log.contains("ZeroDivisionError: division by zero"), "{log}");
    assert_eq!(
        get(h.addr, "/test/plain").status,
        200,
        "the server carries on"
    );
}

#[test]
fn panicking_handler_is_a_500_and_the_server_keeps_serving() {
    let h = harness();
    let response = get(h.addr, "/test/panic");
    assert_eq!(response.status, 500);
    assert!(response.text().contains("Something went wrong on our side"));
    assert!(
        h.log
            .text()
            .contains("the Rust handler `test::panic` panicked")
    );
    assert_eq!(get(h.addr, "/test/plain").status, 200);
}
