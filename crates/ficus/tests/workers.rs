//! `-w N` worker processes, on the real binary over real sockets: workers share the listening
//! socket, a worker killed with SIGKILL is replaced while the socket keeps answering,
//! `--max-requests` recycles workers without a failed request, SIGTERM drains every worker,
//! a worker that cannot start stops the server with its reason, and no worker outlives its
//! supervisor.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Server, get};

fn edge_workers(extra: &[&str]) -> Server {
    let server = support::edge_server(extra, &[]);
    // The supervisor listens before its workers are up: wait for a real answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(server.addr, "/pid").status != 200 {
        assert!(
            Instant::now() < deadline,
            "no worker answered:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn pid_of_answer(addr: SocketAddr) -> Option<u64> {
    let answer = get(addr, "/pid");
    (answer.status == 200)
        .then(|| answer.json()["pid"].as_u64())
        .flatten()
}

/// Worker pids seen over rounds of concurrent requests, until `wanted` distinct ones answered
/// (a worker still booting answers nothing: up to 30 seconds).
fn pids_answering(addr: SocketAddr, wanted: usize) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let round: Vec<_> = (0..16)
            .map(|_| std::thread::spawn(move || pid_of_answer(addr)))
            .collect();
        seen.extend(round.into_iter().filter_map(|t| t.join().ok().flatten()));
        if seen.len() >= wanted {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    seen
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|status| !status.contains("State:\tZ"))
}

#[test]
fn a_worker_killed_under_load_is_replaced_and_the_socket_keeps_answering() {
    let server = edge_workers(&["-w", "2", "--threads", "2"]);
    let first = pids_answering(server.addr, 2);
    assert_eq!(
        first.len(),
        2,
        "two workers answer: {first:?}\n{}",
        server.log()
    );
    assert!(
        !first.contains(&u64::from(server.pid())),
        "the supervisor answers nothing"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, addr) = (stop.clone(), server.addr);
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    // A request the killed worker had in hand dies with it (its socket is
                    // closed unanswered); any other must be answered.
                    let sent = Instant::now();
                    let answered =
                        std::panic::catch_unwind(|| get(addr, "/pid").status).unwrap_or(0);
                    answers.push((sent, answered));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let victim = *first.iter().next().expect("a worker");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // The kernel tears the victim down (closing what it had accepted) within a moment.
    let killed_at = Instant::now() + Duration::from_millis(50);
    let deadline = Instant::now() + Duration::from_secs(30);
    let replaced = loop {
        let now = pids_answering(server.addr, 2);
        if now.len() == 2 && !now.contains(&victim) {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "no replacement:\n{}",
            server.log()
        );
    };
    // The load goes on a while beside the replacement.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let answers: Vec<(Instant, u16)> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, status)| *status != 200)
        .map(|(sent, _)| sent.saturating_duration_since(killed_at))
        .collect();
    // Only requests the victim had in hand when it died (a couple per client at most);
    // nothing sent after the kill.
    assert!(failed.len() <= 4, "{} requests failed", failed.len());
    let after = answers.iter().filter(|(sent, _)| *sent > killed_at).count();
    assert!(
        after > 0 && failed.iter().all(|since_kill| since_kill.is_zero()),
        "requests sent after the kill failed (times after the kill): {failed:?}; {after} sent after"
    );
    assert_eq!(
        replaced.intersection(&first).count(),
        1,
        "{first:?} -> {replaced:?}"
    );
    let log = server.log();
    assert!(
        log.contains(&format!("(pid {victim}) died (signal: 9 (SIGKILL))")),
        "{log}"
    );
}

#[test]
fn max_requests_recycles_workers_without_a_failed_request() {
    let server = edge_workers(&[
        "-w",
        "1",
        "--max-requests",
        "20",
        "--max-requests-jitter",
        "5",
    ]);
    let mut pids = BTreeSet::new();
    for i in 0..100 {
        let pid = pid_of_answer(server.addr);
        assert!(pid.is_some(), "request {i} failed:\n{}", server.log());
        pids.extend(pid);
    }
    // 20 to 25 requests a worker (the readiness probe counts too): at least four workers.
    assert!(
        pids.len() >= 4,
        "{} workers served 100 requests",
        pids.len()
    );
    assert!(
        server.log().contains("recycled; starting a new one"),
        "{}",
        server.log()
    );
}

#[test]
fn sigterm_lets_every_worker_finish_in_flight_requests_then_exits_0() {
    let mut server = edge_workers(&["-w", "2"]);
    let addr = server.addr;
    let in_flight: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || get(addr, "/slow?s=1.5")))
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let workers = pids_of_children(server.pid());
    server.signal("TERM");
    for request in in_flight {
        let answer = request.join().expect("client");
        assert_eq!(
            answer.status,
            200,
            "an in-flight request was cut: {}",
            answer.text()
        );
    }
    let status = server.wait_exit(Duration::from_secs(15)).expect("exited");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(
        workers.iter().all(|pid| !alive(*pid)),
        "a worker is left: {workers:?}"
    );
}

#[test]
fn a_worker_that_cannot_start_stops_the_server_with_its_reason() {
    let out = std::process::Command::new(support::binary())
        .args([
            "serve",
            "no_such_module",
            "-w",
            "2",
            "--routes",
            "/dev/null",
        ])
        .args(["-b", support::ANY_PORT])
        .args(["--venv", &support::venv().display().to_string()])
        .args(["--state-file", ""])
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run ficus");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot import `no_such_module`"),
        "{stderr}"
    );
    assert!(stderr.contains("failed to start"), "{stderr}");
}

#[test]
fn workers_do_not_outlive_a_killed_supervisor() {
    let server = edge_workers(&["-w", "2"]);
    let workers = pids_of_children(server.pid());
    assert_eq!(workers.len(), 2, "{workers:?}");
    drop(server); // SIGKILL to the supervisor
    let deadline = Instant::now() + Duration::from_secs(15);
    while workers.iter().any(|pid| alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "workers outlived their supervisor: {workers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The child processes of `parent`, from /proc.
fn pids_of_children(parent: u32) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // The parent pid is the second field after the parenthesised command name.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

#[test]
fn metrics_and_status_add_up_every_workers_figures() {
    let server = edge_workers(&["-w", "2"]);
    let pids = pids_answering(server.addr, 2);
    assert_eq!(pids.len(), 2, "{pids:?}");
    let series = r#"ficus_requests_total{route="(unlisted)",backend="django",class="2xx"}"#;
    let counted = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    };
    // Both workers have answered; wait for their published figures (every second), then every
    // scrape, whichever worker takes it, sees all of them.
    let answered = {
        let mut n = 0;
        for _ in 0..40 {
            n += u64::from(pid_of_answer(server.addr).is_some());
        }
        n
    };
    std::thread::sleep(Duration::from_millis(2500));
    for _ in 0..6 {
        let text = get(server.addr, "/metrics").text();
        assert!(
            counted(&text) >= answered + 2,
            "a scrape saw {} of at least {} answers:\n{text}",
            counted(&text),
            answered + 2
        );
        assert!(
            text.contains("ficus_python_threads 8"),
            "4 threads x 2 workers:\n{text}"
        );
    }
    let status = get(server.addr, "/_ficus/api/status").json();
    assert_eq!(status["workers"], 2, "{status}");
}

#[test]
fn sigttin_adds_a_worker_and_sigttou_retires_the_oldest_as_in_gunicorn() {
    let server = edge_workers(&["-w", "2"]);
    let two = pids_answering(server.addr, 2);
    assert_eq!(two.len(), 2, "{}", server.log());
    let booted: Vec<u64> = server
        .log()
        .lines()
        .filter_map(|l| l.split_once("with pid ")?.1.trim().parse().ok())
        .collect();
    let first = booted[0];

    server.signal("TTIN");
    assert!(
        server.log_comes_to_contain("Received SIGTTIN: 3 workers"),
        "{}",
        server.log()
    );
    let three = pids_answering(server.addr, 3);
    assert_eq!(three.len(), 3, "{}", server.log());

    server.signal("TTOU");
    assert!(
        server.log_comes_to_contain(&format!(
            "Received SIGTTOU: 2 workers; pid {first} finishes its requests"
        )),
        "{}",
        server.log()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(first) {
        assert!(Instant::now() < deadline, "the oldest worker did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It is not replaced: the two others answer.
    std::thread::sleep(Duration::from_millis(500));
    let mut left = pids_answering(server.addr, 2);
    for _ in 0..10 {
        left.extend(pids_answering(server.addr, 1));
    }
    assert_eq!(left.len(), 2, "{left:?}\n{}", server.log());
    assert!(!left.contains(&first));
}
