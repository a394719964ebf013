//! `--reload`: which changes replace the worker (a Python file of the project, a file in a
//! `templates` folder, the routes file, a `--reload-extra-file`), watched through the
//! platform's file events (the `notify` crate: inotify on Linux), never by polling.
//!
//! It only watches and tells the supervisor what changed; replacing the worker is the
//! supervisor's. Folders that are no part of the project's source (the venv, `.git`, `target`,
//! `node_modules`, `__pycache__`, hidden ones) are not watched at all, so a build or an
//! installation next to the project costs nothing.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Folders never watched, wherever they are.
const SKIPPED: [&str; 6] = [
    "__pycache__",
    "node_modules",
    "target",
    "venv",
    "site-packages",
    "var",
];

#[derive(Debug, thiserror::Error)]
#[error("--reload cannot watch {}", path.display())]
pub(crate) struct WatchError {
    path: PathBuf,
    source: notify::Error,
}

/// What to watch: the project's folders, files named on their own, and folders to leave out.
#[derive(Debug, Clone, Default)]
pub(crate) struct WatchPlan {
    pub(crate) folders: Vec<PathBuf>,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) skip: Vec<PathBuf>,
}

/// The watcher (watching stops when it is dropped) and the changed paths it reports.
pub(crate) struct Changes {
    _watcher: notify::RecommendedWatcher,
    pub(crate) paths: mpsc::UnboundedReceiver<PathBuf>,
}

pub(crate) fn watch(plan: WatchPlan) -> Result<Changes, WatchError> {
    let (tx, paths) = mpsc::unbounded_channel();
    let named: BTreeSet<PathBuf> = plan.files.iter().map(|f| absolute(f)).collect();
    let skip: Vec<PathBuf> = plan.skip.iter().map(|s| absolute(s)).collect();
    let filter_named = named.clone();
    let roots: Vec<PathBuf> = plan.folders.iter().map(|f| absolute(f)).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
            return;
        }
        for path in event.paths {
            let inside = roots.iter().find_map(|root| path.strip_prefix(root).ok());
            if filter_named.contains(&path) || inside.is_some_and(is_source) {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|source| WatchError {
        path: PathBuf::from("."),
        source,
    })?;
    let mut add = |path: &Path, mode| {
        watcher.watch(path, mode).map_err(|source| WatchError {
            path: path.to_owned(),
            source,
        })
    };
    for folder in &plan.folders {
        let folder = absolute(folder);
        // A root is watched wherever it is (a checkout under a hidden folder included).
        if !folder.is_dir() || skip.contains(&folder) {
            continue;
        }
        // The folder itself, then each sub-folder worth watching, whole.
        add(&folder, RecursiveMode::NonRecursive)?;
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !skipped(&path, &skip) {
                add(&path, RecursiveMode::Recursive)?;
            }
        }
    }
    for file in &named {
        // A named file is watched through its folder, so a file replaced by a rename (as
        // editors save) is still seen.
        if let Some(parent) = file.parent().filter(|p| p.is_dir()) {
            add(parent, RecursiveMode::NonRecursive)?;
        }
    }
    Ok(Changes {
        _watcher: watcher,
        paths,
    })
}

/// A Python file or a template (`path` below a watched folder), outside the folders that are
/// never the project's source.
fn is_source(path: &Path) -> bool {
    let in_skipped = path.components().any(|c| match c {
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            name.starts_with('.') || SKIPPED.contains(&name.as_ref())
        }
        _ => false,
    });
    if in_skipped {
        return false;
    }
    let python = path.extension().is_some_and(|e| e == "py");
    let template = path
        .parent()
        .is_some_and(|p| p.components().any(|c| c.as_os_str() == "templates"));
    python || template
}

fn skipped(folder: &Path, skip: &[PathBuf]) -> bool {
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with('.') || SKIPPED.contains(&name.as_str()) || skip.iter().any(|s| s == folder)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_files_and_templates_count_and_build_output_does_not() {
        assert!(is_source(Path::new("blog/views.py")));
        assert!(is_source(Path::new("manage.py")));
        assert!(is_source(Path::new("blog/templates/blog/list.html")));
        assert!(is_source(Path::new("templates/base.txt")));
        assert!(!is_source(Path::new("blog/static/site.css")));
        assert!(!is_source(Path::new(
            "blog/__pycache__/views.cpython-311.pyc"
        )));
        assert!(!is_source(Path::new(
            ".venv/lib/python3.11/site-packages/x.py"
        )));
        assert!(!is_source(Path::new("target/debug/build/x.py")));
        assert!(!is_source(Path::new(".git/hooks/x.py")));
        assert!(!is_source(Path::new("var/db.sqlite3")));
    }

    #[tokio::test]
    async fn an_edit_of_a_python_file_is_reported_and_a_log_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(app.join("views.py"), "x = 1\n").unwrap();
        let mut changes = watch(WatchPlan {
            folders: vec![dir.path().to_owned()],
            ..WatchPlan::default()
        })
        .unwrap();
        std::fs::write(dir.path().join("server.log"), "a line\n").unwrap();
        std::fs::write(app.join("views.py"), "x = 2\n").unwrap();
        let path = tokio::time::timeout(std::time::Duration::from_secs(10), changes.paths.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(path, absolute(&app.join("views.py")));
    }
}
