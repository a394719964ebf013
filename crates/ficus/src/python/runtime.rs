//! Starting the embedded interpreter: find the virtualenv, check it matches the libpython this
//! binary links, and initialise CPython through PEP 587 `PyConfig` on the process main thread.
//!
//! This runs once, before any other thread exists. It does not import the application (see
//! `app.rs`) and installs no Python signal handlers: signals belong to the Rust side.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use pyo3::ffi;

/// The `major.minor` of the CPython this binary was built against.
pub(crate) const EMBEDDED_VERSION: &str = env!("FICUS_PYTHON_VERSION");

#[derive(Debug, thiserror::Error)]
pub(crate) enum RuntimeError {
    #[error(
        "no virtualenv found: create one with `python{EMBEDDED_VERSION} -m venv .venv`, or pass --venv DIR, or set VIRTUAL_ENV"
    )]
    NoVenv,
    #[error(
        "{0} is not a virtualenv (it has no pyvenv.cfg): create it with `python{EMBEDDED_VERSION} -m venv {0}`"
    )]
    NotAVenv(String),
    #[error(
        "the virtualenv {venv} was built for Python {found}, but this ficus embeds Python {EMBEDDED_VERSION}: recreate it with `python{EMBEDDED_VERSION} -m venv {venv}`, or rebuild ficus against Python {found}"
    )]
    VersionMismatch { venv: String, found: String },
    #[error(
        "the virtualenv {0} has no bin/python: recreate it with `python{EMBEDDED_VERSION} -m venv {0}`"
    )]
    NoInterpreter(String),
    #[error("Python failed to start: {0}")]
    InitFailed(String),
}

/// Picks the virtualenv: `--venv`, else `$VIRTUAL_ENV`, else `./.venv`.
pub(crate) fn find_venv(flag: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    if let Some(dir) = flag {
        return Ok(std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()));
    }
    if let Some(dir) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let local = std::path::absolute(".venv").unwrap_or_else(|_| PathBuf::from(".venv"));
    if local.join("pyvenv.cfg").is_file() {
        return Ok(local);
    }
    Err(RuntimeError::NoVenv)
}

/// Reads the Python version out of `pyvenv.cfg` and refuses a venv made by another minor version.
pub(crate) fn check_venv(venv: &Path) -> Result<PathBuf, RuntimeError> {
    let shown = venv.display().to_string();
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg"))
        .map_err(|_| RuntimeError::NotAVenv(shown.clone()))?;
    let version = cfg.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        matches!(key.trim(), "version" | "version_info").then(|| value.trim().to_owned())
    });
    if let Some(version) = version {
        let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        if minor != EMBEDDED_VERSION {
            return Err(RuntimeError::VersionMismatch {
                venv: shown,
                found: minor,
            });
        }
    }
    let python = venv.join("bin").join("python");
    if !python.exists() {
        return Err(RuntimeError::NoInterpreter(shown));
    }
    Ok(python)
}

/// Initialises CPython with the venv's interpreter as `sys.executable` (so `sys.prefix` is the
/// venv and its site-packages are importable), `sys.argv` set to ours, no argv parsing and no
/// Python signal handlers. Leaves the GIL released.
///
/// Must be called once, on the main thread, before any thread that attaches to Python starts.
pub(crate) fn initialize(venv_python: &Path, argv: &[String]) -> Result<(), RuntimeError> {
    let executable = CString::new(venv_python.as_os_str().as_encoded_bytes())
        .map_err(|_| RuntimeError::InitFailed("the venv path contains a NUL byte".into()))?;
    let args: Vec<CString> = argv
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut arg_ptrs: Vec<*const std::ffi::c_char> = args.iter().map(|a| a.as_ptr()).collect();

    // SAFETY: the PyConfig API is used as PEP 587 documents it: init, set, initialise, clear,
    // all on this thread before any other thread touches Python.
    unsafe {
        let mut cfg = MaybeUninit::<ffi::PyConfig>::uninit();
        ffi::PyConfig_InitPythonConfig(cfg.as_mut_ptr());
        let mut cfg = cfg.assume_init();
        cfg.install_signal_handlers = 0;
        cfg.parse_argv = 0;
        let status =
            ffi::PyConfig_SetBytesString(&mut cfg, &mut cfg.executable, executable.as_ptr());
        if ffi::PyStatus_Exception(status) != 0 {
            ffi::PyConfig_Clear(&mut cfg);
            return Err(RuntimeError::InitFailed(status_message(&status)));
        }
        let status =
            ffi::PyConfig_SetBytesArgv(&mut cfg, arg_ptrs.len() as _, arg_ptrs.as_mut_ptr());
        if ffi::PyStatus_Exception(status) != 0 {
            ffi::PyConfig_Clear(&mut cfg);
            return Err(RuntimeError::InitFailed(status_message(&status)));
        }
        let status = ffi::Py_InitializeFromConfig(&cfg);
        ffi::PyConfig_Clear(&mut cfg);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(RuntimeError::InitFailed(status_message(&status)));
        }
        // Release the GIL the initialising thread holds, or every Python thread waits forever.
        ffi::PyEval_SaveThread();
    }
    Ok(())
}

fn status_message(status: &ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        return "unknown error".into();
    }
    // SAFETY: err_msg is a static C string set by CPython.
    unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
        .to_string_lossy()
        .into_owned()
}
