//! The figures of the whole server when it runs worker processes: each worker writes its
//! snapshot to the supervisor's run directory every second, and the worker that answers
//! `/metrics` or the dashboard adds the others' latest to its own live figures.
//!
//! Files only: a worker never talks to another. A worker replaced after a crash starts its
//! counts again (its file is overwritten), which Prometheus reads as a counter reset.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Admin;
use crate::metrics::Snapshot;

/// Where workers publish, set by the supervisor.
const EVERY: Duration = Duration::from_secs(1);

/// This process's figures as they are now.
pub(crate) fn local(admin: &Admin) -> Snapshot {
    Snapshot {
        routes: admin.metrics.snapshot(),
        shadow: admin.shadow.as_ref().map(|s| s.stats()).unwrap_or_default(),
        pool: admin.pool.figures(),
        in_flight: admin.metrics.in_flight_now(),
        mismatches: admin
            .shadow
            .as_ref()
            .map(|s| s.recent())
            .unwrap_or_default(),
        workers: 1,
    }
}

/// The server's figures: this worker's live ones plus every other worker's latest.
pub(crate) fn gather(admin: &Admin) -> Snapshot {
    let mut total = local(admin);
    let Some((dir, me)) = run_dir() else {
        return total;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return total;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == me || path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        if let Ok(text) = std::fs::read(&path)
            && let Ok(other) = serde_json::from_slice::<Snapshot>(&text)
        {
            total.merge(&other);
        }
    }
    total
}

/// The run directory and this worker's file in it, when running under a supervisor.
fn run_dir() -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(std::env::var_os(crate::supervisor::RUN_DIR)?);
    let id = std::env::var(crate::supervisor::WORKER_ID).ok()?;
    let me = dir.join(format!("worker-{id}.json"));
    Some((dir, me))
}

/// Publishes this worker's figures every second, for as long as the server runs.
pub(crate) async fn publish(admin: std::sync::Arc<Admin>) {
    let Some((_, me)) = run_dir() else {
        return;
    };
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if let Err(err) = write(&me, &local(&admin)) {
            tracing::warn!(
                "cannot publish this worker's figures to {}: {err}",
                me.display()
            );
        }
    }
}

/// Written beside and renamed, so a reader never sees half a file.
fn write(path: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec(snapshot)?)?;
    std::fs::rename(&partial, path)
}
