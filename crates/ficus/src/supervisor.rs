//! `-w N`: the main process of a multi-worker server. It binds the listening sockets, then starts
//! N workers by re-executing this binary with the sockets inherited, and supervises them: a
//! worker that dies is replaced (with a growing delay when it keeps dying), a worker recycled by
//! `--max-requests` is replaced at once, and SIGTERM, SIGINT and SIGHUP are passed on to every
//! worker. With `--reload`, a change of the project's source starts a fresh worker beside each
//! one, and the old one drains once the fresh one serves; a fresh one that fails to start (the
//! change broke the import) leaves the old one serving until the next change.
//!
//! It never starts Python, and nothing forks after a runtime started: each worker is a fresh
//! process (`fork` + `exec` of this binary), which builds its own interpreter, Python threads and
//! tokio runtime. The small tokio runtime here only waits for signals and worker exits.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{SignalKind, signal};

use crate::server::listen::Listener;

/// The inherited listening sockets of a worker, as `3,4`.
pub(crate) const WORKER_FDS: &str = "FICUS_WORKER_FDS";
/// Which worker this is (1 to N), for its log lines.
pub(crate) const WORKER_ID: &str = "FICUS_WORKER_ID";
/// Where a worker says it is serving.
/// Where workers publish their figures for each other (see `admin/peers.rs`).
pub(crate) const RUN_DIR: &str = "FICUS_RUN_DIR";
const READY_FD: &str = "FICUS_READY_FD";
/// The main process, which a worker asks to pass a reload on to every worker.
const SUPERVISOR_PID: &str = "FICUS_SUPERVISOR_PID";

/// A worker that lived less than this and died is "failing fast": its next start waits longer.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// This process's part when it is a worker: its id and its inherited sockets.
pub(crate) struct Worker {
    pub id: usize,
    pub listeners: Vec<Listener>,
}

/// The sockets and id a supervisor gave this process, when it is a worker.
pub(crate) fn worker() -> anyhow::Result<Option<Worker>> {
    let Ok(fds) = std::env::var(WORKER_FDS) else {
        return Ok(None);
    };
    let id = std::env::var(WORKER_ID)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let listeners = fds
        .split(',')
        .map(|fd| {
            let fd: RawFd = fd
                .trim()
                .parse()
                .with_context(|| format!("{WORKER_FDS} holds `{fd}`, not a file descriptor"))?;
            // The supervisor handed this descriptor over for exactly this.
            Ok(Listener::inherited(fd, WORKER_FDS)?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Worker { id, listeners }))
}

/// Tells the supervisor this worker is serving (a no-op outside a supervisor).
pub(crate) fn notify_ready() {
    let Some(fd) = std::env::var(READY_FD)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    else {
        return;
    };
    use std::io::Write;
    // SAFETY: the descriptor is the worker's end of the readiness socket, handed over at spawn
    // and owned by nothing else; this is the only place that takes it.
    let mut stream = unsafe { UnixStream::from_raw_fd(fd) };
    // One write, so lines of workers starting together never interleave.
    let _ = stream.write_all(format!("{}\n", std::process::id()).as_bytes());
}

/// Asks the supervisor to pass a reload on to every worker (`ficus reload` reaches only one);
/// false outside a supervisor.
pub(crate) fn reload_all_workers() -> bool {
    let Some(pid) = std::env::var(SUPERVISOR_PID)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return false;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, libc::SIGHUP) == 0 }
}

/// Clears (or sets) close-on-exec, so a descriptor is (or is not) inherited by `exec`.
fn set_inherited(fd: RawFd, inherited: bool) -> std::io::Result<()> {
    // SAFETY: F_GETFD reads the descriptor's flags; an invalid descriptor is an error, not UB.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = if inherited {
        flags & !libc::FD_CLOEXEC
    } else {
        flags | libc::FD_CLOEXEC
    };
    // SAFETY: F_SETFD with an integer argument only changes the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What the supervisor needs beyond the sockets.
pub(crate) struct Plan {
    pub workers: usize,
    pub graceful_timeout: Duration,
    /// Called once every worker has said it is serving (writes the state file).
    pub on_ready: Box<dyn FnOnce()>,
    /// Called before the supervisor exits (removes the state file).
    pub on_exit: Box<dyn FnOnce()>,
    /// Variables only the workers get (the settings the configuration layers resolved to, so a
    /// worker does not run the configuration file again).
    pub worker_env: Vec<(String, String)>,
    /// `--reload`: the changes that replace the workers.
    pub changes: Option<crate::reload::Changes>,
    /// `--error-logfile`, opened again on SIGUSR1 (the workers open theirs).
    pub error_log: Option<std::sync::Arc<crate::logfile::LogFile>>,
}

/// How long changes that come together (an editor saving several files, a `git checkout`) are
/// gathered before the workers are replaced once.
const SETTLE_CHANGES: Duration = Duration::from_millis(200);

async fn next_change(changes: &mut Option<crate::reload::Changes>) -> Option<std::path::PathBuf> {
    match changes {
        Some(changes) => changes.paths.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the workers until a signal stops them; the process's exit status.
pub(crate) fn run(listeners: Vec<Listener>, plan: Plan) -> anyhow::Result<i32> {
    let fds = listeners
        .iter()
        .map(|l| {
            set_inherited(l.as_raw_fd(), true)?;
            Ok(l.as_raw_fd().to_string())
        })
        .collect::<std::io::Result<Vec<_>>>()?
        .join(",");
    let (ours, theirs) = UnixStream::pair().context("cannot create the readiness socket")?;
    set_inherited(theirs.as_raw_fd(), true)?;
    // Where workers publish their figures for each other (see `admin/peers.rs`).
    let run_dir = tempfile::Builder::new()
        .prefix("ficus-run-")
        .tempdir()
        .context("cannot create the workers' run directory")?;
    // SAFETY: the supervisor is single-threaded here: its runtime has not started yet.
    unsafe { std::env::set_var(RUN_DIR, run_dir.path()) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the supervisor's runtime")?;
    let code = runtime.block_on(supervise(fds, ours, &theirs, plan))?;
    drop((listeners, run_dir));
    Ok(code)
}

struct Running {
    pid: u32,
    started: Instant,
    ready: bool,
}

async fn supervise(
    fds: String,
    ready_socket: UnixStream,
    theirs: &UnixStream,
    plan: Plan,
) -> anyhow::Result<i32> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut ttin = signal(SignalKind::from_raw(libc::SIGTTIN))?;
    let mut ttou = signal(SignalKind::from_raw(libc::SIGTTOU))?;
    ready_socket.set_nonblocking(true)?;
    let mut ready_lines =
        tokio::io::BufReader::new(tokio::net::UnixStream::from_std(ready_socket)?).lines();

    let spawn = |id: usize| -> anyhow::Result<tokio::process::Child> {
        let exe =
            std::env::current_exe().context("cannot find the ficus binary to start workers")?;
        let mut command = tokio::process::Command::new(exe);
        command
            .args(std::env::args_os().skip(1))
            .env(WORKER_FDS, &fds)
            .envs(plan.worker_env.iter().map(|(k, v)| (k, v)))
            .env(WORKER_ID, id.to_string())
            .env(READY_FD, theirs.as_raw_fd().to_string())
            .env(SUPERVISOR_PID, std::process::id().to_string())
            .kill_on_drop(false);
        // A worker must not outlive its supervisor (killed with SIGKILL, say): the kernel sends
        // it SIGTERM then, and it drains.
        // SAFETY: the closure only calls prctl, which is async-signal-safe and allocates
        // nothing, as pre_exec requires between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.spawn().context("cannot start a worker process")
    };

    let mut running: BTreeMap<usize, Running> = BTreeMap::new();
    // Fresh workers for a change, by pid, with the slot each will take once it serves.
    let mut fresh: BTreeMap<u32, usize> = BTreeMap::new();
    // Workers a change replaced, finishing their requests.
    let mut retiring: BTreeSet<u32> = BTreeSet::new();
    let mut changes = plan.changes;
    let mut exits = tokio::task::JoinSet::new();
    let mut failures: BTreeMap<usize, u32> = BTreeMap::new();
    let mut restarts = tokio::task::JoinSet::new();
    for id in 1..=plan.workers {
        let child = spawn(id)?;
        watch(&mut exits, &mut running, id, child);
    }
    let mut on_ready = Some(plan.on_ready);
    // SIGTTIN and SIGTTOU move it, as in gunicorn.
    let mut wanted = plan.workers;
    let stop = loop {
        tokio::select! {
            _ = term.recv() => break libc::SIGTERM,
            _ = int.recv() => break libc::SIGINT,
            _ = hup.recv() => {
                tracing::info!("Received SIGHUP: every worker reads routes.toml again");
                signal_all(&running, libc::SIGHUP);
            }
            _ = ttin.recv() => {
                wanted += 1;
                let id = running.keys().max().map_or(1, |max| max + 1);
                tracing::info!("Received SIGTTIN: {wanted} workers");
                match spawn(id) {
                    Ok(child) => watch(&mut exits, &mut running, id, child),
                    Err(err) => tracing::error!("{err:#}"),
                }
            }
            _ = ttou.recv() => {
                if wanted <= 1 {
                    tracing::info!("Received SIGTTOU: one worker is the fewest; none stopped");
                    continue;
                }
                wanted -= 1;
                // The oldest goes, as in gunicorn; it finishes its requests first.
                let oldest = running.iter().min_by_key(|(_, w)| w.started).map(|(id, _)| *id);
                if let Some(worker) = oldest.and_then(|id| running.remove(&id)) {
                    tracing::info!(
                        "Received SIGTTOU: {wanted} workers; pid {} finishes its requests",
                        worker.pid
                    );
                    signal_pid(worker.pid, libc::SIGTERM);
                    retiring.insert(worker.pid);
                }
            }
            _ = usr1.recv() => {
                if let Some(log) = &plan.error_log
                    && let Err(err) = log.reopen()
                {
                    tracing::error!("cannot open the error log {} again: {err}", log.name());
                }
                signal_all(&running, libc::SIGUSR1);
            }
            Some(first) = next_change(&mut changes) => {
                let mut changed = BTreeSet::from([first]);
                let settled = tokio::time::sleep(SETTLE_CHANGES);
                tokio::pin!(settled);
                loop {
                    tokio::select! {
                        _ = &mut settled => break,
                        Some(more) = next_change(&mut changes) => { changed.insert(more); }
                    }
                }
                let shown: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
                tracing::info!("{} changed: starting fresh workers", shown.join(", "));
                // Fresh workers of an earlier change that are still starting are superseded.
                for pid in std::mem::take(&mut fresh).into_keys() {
                    signal_pid(pid, libc::SIGTERM);
                }
                for id in running.keys().copied().collect::<Vec<_>>() {
                    match spawn(id) {
                        Ok(child) => {
                            if let Some(pid) = wait_for_exit(&mut exits, id, child) {
                                tracing::info!("Booting worker {id} with pid {pid} for the change");
                                fresh.insert(pid, id);
                            }
                        }
                        Err(err) => tracing::error!("{err:#}"),
                    }
                }
            }
            Ok(Some(line)) = ready_lines.next_line() => {
                tracing::debug!("worker pid {} is serving", line.trim());
                let pid = line.trim().parse::<u32>().unwrap_or_default();
                if let Some(id) = fresh.remove(&pid) {
                    let old = running.insert(id, Running { pid, started: Instant::now(), ready: true });
                    if let Some(old) = old {
                        tracing::info!(
                            "Worker {id} (pid {pid}) serves the change; pid {} finishes its requests",
                            old.pid
                        );
                        signal_pid(old.pid, libc::SIGTERM);
                        retiring.insert(old.pid);
                    }
                }
                if let Some(worker) = running.values_mut().find(|w| w.pid == pid) {
                    worker.ready = true;
                }
                if running.len() == wanted && running.values().all(|w| w.ready)
                    && let Some(ready) = on_ready.take()
                {
                    ready();
                }
            }
            Some(Ok((id, pid, status))) = exits.join_next() => {
                if fresh.remove(&pid).is_some() {
                    tracing::error!(
                        "The change did not load: the fresh worker {id} (pid {pid}) exited ({status}) before serving (its error is above); the previous worker serves on, and the next change is tried"
                    );
                    continue;
                }
                // A worker replaced after a change, or superseded before it served: expected.
                retiring.remove(&pid);
                if running.get(&id).is_none_or(|w| w.pid != pid) {
                    continue;
                }
                let Some(gone) = running.remove(&id) else { continue };
                if !gone.ready {
                    tracing::error!("worker {id} (pid {pid}) failed to start ({status}); stopping");
                    signal_all(&running, libc::SIGTERM);
                    finish(&mut exits, plan.graceful_timeout, &every_pid(&running, &fresh, &retiring)).await;
                    (plan.on_exit)();
                    return Ok(1);
                }
                let delay = if status.success() {
                    failures.remove(&id);
                    tracing::info!("worker {id} (pid {pid}) recycled; starting a new one");
                    Duration::ZERO
                } else {
                    let count = failures.entry(id).or_default();
                    if gone.started.elapsed() >= HEALTHY_AFTER {
                        *count = 0;
                    }
                    let delay = backoff(*count);
                    *count += 1;
                    tracing::warn!(
                        "worker {id} (pid {pid}) died ({status}); a new one starts in {} ms",
                        delay.as_millis()
                    );
                    delay
                };
                restarts.spawn(async move {
                    tokio::time::sleep(delay).await;
                    id
                });
            }
            Some(Ok(id)) = restarts.join_next() => {
                match spawn(id) {
                    Ok(child) => watch(&mut exits, &mut running, id, child),
                    Err(err) => tracing::error!("{err:#}"),
                }
            }
        }
    };
    restarts.abort_all();
    tracing::info!(
        "{}",
        if stop == libc::SIGTERM {
            "Received SIGTERM: workers finish their in-flight requests"
        } else {
            "Received SIGINT: stopping the workers"
        }
    );
    signal_all(&running, stop);
    for pid in fresh.keys().chain(&retiring) {
        signal_pid(*pid, stop);
    }
    let grace = if stop == libc::SIGTERM {
        plan.graceful_timeout
    } else {
        Duration::from_secs(2)
    };
    finish(&mut exits, grace, &every_pid(&running, &fresh, &retiring)).await;
    (plan.on_exit)();
    tracing::info!("Shutting down: every worker stopped");
    Ok(0)
}

/// The wait before a worker that died starts again: none the first time, then doubling from
/// half a second, at most thirty.
fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => (Duration::from_millis(500) * 2u32.saturating_pow(n - 1)).min(MAX_BACKOFF),
    }
}

type Exits = tokio::task::JoinSet<(usize, u32, std::process::ExitStatus)>;

fn watch(
    exits: &mut Exits,
    running: &mut BTreeMap<usize, Running>,
    id: usize,
    child: tokio::process::Child,
) {
    let Some(pid) = wait_for_exit(exits, id, child) else {
        return;
    };
    tracing::info!("Booting worker {id} with pid {pid}");
    running.insert(
        id,
        Running {
            pid,
            started: Instant::now(),
            ready: false,
        },
    );
}

/// Reports the worker's exit through `exits`; its pid.
fn wait_for_exit(exits: &mut Exits, id: usize, mut child: tokio::process::Child) -> Option<u32> {
    let pid = child.id()?;
    exits.spawn(async move {
        let status = match child.wait().await {
            Ok(status) => status,
            Err(_) => std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
        };
        (id, pid, status)
    });
    Some(pid)
}

fn signal_pid(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe { libc::kill(pid, signal) };
    }
}

fn signal_all(running: &BTreeMap<usize, Running>, signal: i32) {
    for worker in running.values() {
        signal_pid(worker.pid, signal);
    }
}

/// Every worker process: serving, starting for a change, or retiring after one.
fn every_pid(
    running: &BTreeMap<usize, Running>,
    fresh: &BTreeMap<u32, usize>,
    retiring: &BTreeSet<u32>,
) -> Vec<u32> {
    running
        .values()
        .map(|w| w.pid)
        .chain(fresh.keys().copied())
        .chain(retiring.iter().copied())
        .collect()
}

/// Waits for every worker to exit, killing the ones still there after `grace` (and a margin for
/// their own graceful timeout to fire first).
async fn finish(exits: &mut Exits, grace: Duration, pids: &[u32]) {
    let waited = tokio::time::timeout(grace + Duration::from_secs(2), async {
        while exits.join_next().await.is_some() {}
    })
    .await;
    if waited.is_err() {
        tracing::warn!("workers still running after the graceful timeout; killing them");
        for pid in pids {
            signal_pid(*pid, libc::SIGKILL);
        }
        while exits.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_keeps_dying_waits_longer_each_time() {
        let waits: Vec<u128> = (0..9).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [0, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    }
}
