//! Loading the WSGI application: sys.path, DJANGO_SETTINGS_MODULE, the import of `module:attr`,
//! and what ficus needs to know about a Django project (STATIC_URL and STATIC_ROOT).
//!
//! Every way a user can get this wrong ends in one `AppError` sentence that says what to do; the
//! Python traceback, when there is one, is printed before it.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::config::AppConfig;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error(
        "Django is not installed in the virtualenv {venv}: install it with `{venv}/bin/pip install -r requirements.txt` (or `pip install django`)"
    )]
    NoDjango { venv: String },
    #[error(
        "cannot import `{module}` (APP `{app}`): no module named `{missing}`; check the name, or put its directory on the path with --chdir, --pythonpath or `path` under [django]"
    )]
    ModuleNotFound {
        app: String,
        module: String,
        missing: String,
    },
    #[error("importing `{module}` (APP `{app}`) raised {error}; see the traceback above")]
    ImportFailed {
        app: String,
        module: String,
        error: String,
    },
    #[error(
        "module `{module}` has no attribute `{attr}` (APP `{app}`): name the WSGI callable, e.g. `{module}:application`"
    )]
    NoAttribute {
        app: String,
        module: String,
        attr: String,
    },
    #[error("`{app}` is not callable, so it is not a WSGI application")]
    NotCallable { app: String },
    #[error("Python error while preparing the application: {0}")]
    Python(String),
}

/// Where Django's collected static files are, when the project serves them from a local prefix.
#[derive(Debug, Clone)]
pub(crate) struct StaticConfig {
    pub url_prefix: String,
    pub root: PathBuf,
}

pub(crate) struct LoadedApp {
    pub app: Py<PyAny>,
    pub static_files: Option<StaticConfig>,
}

/// Imports the application on the calling thread (the main thread, at start-up).
pub(crate) fn load(py: Python<'_>, cfg: &AppConfig, venv: &str) -> Result<LoadedApp, AppError> {
    let py_err = |e: PyErr| AppError::Python(e.to_string());
    let sys = py.import("sys").map_err(py_err)?;
    let path = sys.getattr("path").map_err(py_err)?;
    let path = path
        .cast::<PyList>()
        .map_err(|e| AppError::Python(e.to_string()))?;
    for dir in cfg.python_path.iter().rev() {
        let dir = dir.to_string_lossy();
        if !path.contains(&*dir).map_err(py_err)? {
            path.insert(0, &*dir).map_err(py_err)?;
        }
    }
    if let Some(settings) = &cfg.settings {
        let environ = py
            .import("os")
            .and_then(|os| os.getattr("environ"))
            .map_err(py_err)?;
        environ
            .set_item("DJANGO_SETTINGS_MODULE", settings)
            .map_err(py_err)?;
    }

    let app_name = cfg.app.to_string();
    let module = match py.import(cfg.app.module.as_str()) {
        Ok(module) => module,
        Err(err) => return Err(import_error(py, err, cfg, venv)),
    };
    let app = match module.getattr(cfg.app.attr.as_str()) {
        Ok(app) => app,
        Err(_) => {
            return Err(AppError::NoAttribute {
                app: app_name,
                module: cfg.app.module.clone(),
                attr: cfg.app.attr.clone(),
            });
        }
    };
    if !app.is_callable() {
        return Err(AppError::NotCallable { app: app_name });
    }

    Ok(LoadedApp {
        app: app.unbind(),
        static_files: django_static(py),
    })
}

fn import_error(py: Python<'_>, err: PyErr, cfg: &AppConfig, venv: &str) -> AppError {
    let app = cfg.app.to_string();
    let value = err.value(py);
    if err.is_instance_of::<pyo3::exceptions::PyModuleNotFoundError>(py) {
        let missing: String = value
            .getattr("name")
            .and_then(|n| n.extract())
            .unwrap_or_default();
        if missing == "django" || missing.starts_with("django.") {
            return AppError::NoDjango {
                venv: venv.to_owned(),
            };
        }
        let ours = cfg.app.module == missing || cfg.app.module.starts_with(&format!("{missing}."));
        if ours {
            return AppError::ModuleNotFound {
                app,
                module: cfg.app.module.clone(),
                missing,
            };
        }
    }
    err.print(py);
    AppError::ImportFailed {
        app,
        module: cfg.app.module.clone(),
        error: err.to_string(),
    }
}

/// `django.conf.settings`, when the application imported Django and configured it (never
/// importing Django itself).
fn configured_settings(py: Python<'_>) -> Option<Bound<'_, PyAny>> {
    let modules = py.import("sys").ok()?.getattr("modules").ok()?;
    if !modules
        .cast::<PyDict>()
        .ok()?
        .contains("django.conf")
        .ok()?
    {
        return None;
    }
    let settings = py.import("django.conf").ok()?.getattr("settings").ok()?;
    let configured: bool = settings.getattr("configured").ok()?.extract().ok()?;
    configured.then_some(settings)
}

/// With DEBUG on and `django.contrib.staticfiles` installed, the application wrapped in
/// staticfiles' `StaticFilesHandler`, as `manage.py runserver` wraps it: STATIC_URL is then
/// served from the finders (each app's `static/` and STATICFILES_DIRS, no collectstatic needed,
/// an edit seen at once). None otherwise (or when Django is not configured).
pub(crate) fn finders_handler(py: Python<'_>, app: &Py<PyAny>) -> Option<Py<PyAny>> {
    let settings = configured_settings(py)?;
    let debug: bool = settings.getattr("DEBUG").ok()?.extract().ok()?;
    let installed: bool = py
        .import("django.apps")
        .ok()?
        .getattr("apps")
        .ok()?
        .call_method1("is_installed", ("django.contrib.staticfiles",))
        .ok()?
        .extract()
        .ok()?;
    if !debug || !installed {
        return None;
    }
    let handler = py
        .import("django.contrib.staticfiles.handlers")
        .ok()?
        .getattr("StaticFilesHandler")
        .ok()?;
    Some(handler.call1((app.bind(py),)).ok()?.unbind())
}

/// STATIC_URL and STATIC_ROOT, when Django is configured and serves static files from a local
/// path prefix (not a CDN URL).
fn django_static(py: Python<'_>) -> Option<StaticConfig> {
    let settings = configured_settings(py)?;
    let url: String = settings.getattr("STATIC_URL").ok()?.extract().ok()?;
    let root: String = settings
        .getattr("STATIC_ROOT")
        .ok()?
        .str()
        .ok()?
        .extract()
        .ok()?;
    if !url.starts_with('/') || root.is_empty() || root == "None" {
        return None;
    }
    let url_prefix = if url.ends_with('/') {
        url
    } else {
        format!("{url}/")
    };
    Some(StaticConfig {
        url_prefix,
        root: PathBuf::from(root),
    })
}

/// Run on each Python thread as it stops: Django's connections are per thread.
pub(crate) fn close_thread_resources(py: Python<'_>) {
    let Ok(modules) = py.import("sys").and_then(|s| s.getattr("modules")) else {
        return;
    };
    // A WSGI application that is not Django may still have had django.db imported (by ficus's
    // own look at the project): with no settings there are no connections to close.
    if modules.contains("django.db").unwrap_or(false)
        && configured_settings(py).is_some()
        && let Err(err) = py
            .import("django.db")
            .and_then(|db| db.getattr("connections"))
            .and_then(|c| c.call_method0("close_all"))
    {
        err.print(py);
    }
}

/// Run on the main thread once every Python thread has stopped: what `atexit` would have done.
pub(crate) fn finish(py: Python<'_>) {
    let _ = py
        .import("logging")
        .and_then(|logging| logging.call_method0("shutdown"));
    for stream in ["stdout", "stderr"] {
        let _ = py
            .import("sys")
            .and_then(|sys| sys.getattr(stream))
            .and_then(|s| s.call_method0("flush"));
    }
}
