//! Finding the project before Python starts: the virtualenv (checked against the embedded
//! Python), the routes file and the application, then the interpreter itself. Shared by
//! `ficus serve`, `ficus routes` and `ficus check`, so each finds the project the same way.
//!
//! It starts the interpreter but imports nothing; loading the application is `python::app`.

use std::path::PathBuf;

use crate::config::{self, AppConfig, ProjectOptions};
use crate::python::runtime;

pub(crate) struct Project {
    pub(crate) config: AppConfig,
    pub(crate) venv: PathBuf,
    venv_python: PathBuf,
}

impl Project {
    /// Resolves everything a user can get wrong before any socket is bound or Python is started.
    pub(crate) fn find(args: &ProjectOptions) -> anyhow::Result<Self> {
        let venv = runtime::find_venv(args.venv.as_deref())?;
        let venv_python = runtime::check_venv(&venv)?;
        let config = config::resolve(args)?;
        Ok(Self {
            config,
            venv,
            venv_python,
        })
    }

    /// Starts the embedded interpreter in the virtualenv (once per process).
    pub(crate) fn start_python(&self) -> anyhow::Result<()> {
        let argv: Vec<String> = std::env::args().collect();
        runtime::initialize(&self.venv_python, &argv)?;
        Ok(())
    }

    /// The virtualenv as messages show it.
    pub(crate) fn venv_shown(&self) -> String {
        self.venv.display().to_string()
    }
}
