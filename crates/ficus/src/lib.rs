//! ficus: one Rust binary that serves an unmodified Django project in-process (through pyo3) and
//! lets a team port it to Rust one route at a time.
//!
//! This crate is the engine. A migration (a team's own repository, made by `ficus init`) is a
//! small package beside the Django project that depends on it: its ported views, registered in a
//! [`ported::Registry`], and a `main.rs` that hands them to [`main`]:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     ficus::main(ficus::ported::Registry::new())
//! }
//! ```
//!
//! # Layout
//!
//! Each module has one job, and they depend one way, from the top of this list to the bottom
//! (none imports a module above it):
//!
//! - `cli`: the command line (clap's types stay there), resolved into plain options for:
//! - the commands: `serve` (puts the server together), `inspect` (`ficus routes` and `check`),
//!   `diff` (`ficus diff`, and the in-process `runner` the parity tests use), `state` (how
//!   commands find a running server), `init`, and `project` (finding the venv and the app).
//! - `server`: accept loop, limits (`guard`), shutdown, and `service`, where each request goes
//!   where the route table decides: Rust, canary, shadow or Django.
//! - `admin` (`/metrics`, the dashboard; it sees the server through a narrow view),
//!   `supervisor` (worker processes) and `reload` (the files `--reload` watches).
//! - traffic modes: `shadow`, `canary`, `record`; `metrics`; `static_files`.
//! - `ported`: the porting toolkit behind [`prelude`] and the dispatcher that runs handlers.
//! - `wsgi`: the PEP 3333 bridge. `python`: the interpreter, its threads, the only way in.
//! - `routes`: routes.toml, Django's path syntax, and the migration summary.
//! - plain parts: `config`, `conventions` (what Django's middleware adds), `db`, `body`,
//!   `cookies`, `traffic_log`; and the parity engine, a crate of its own (`ficus-parity`) that
//!   only compares answers it is given.
//!
//! Beside the library: `src/bin/ficus-engine.rs`, the engine with no ported view (the drop-in
//! server on its own), which the engine's integration tests in `tests/` run.

// The porting toolkit and the parity engine are public (through `prelude`, and for a
// migration's parity tests); everything else is the engine's own.
mod admin;
mod body;
mod canary;
mod cli;
mod config;
mod conventions;
mod cookies;
pub mod db;
mod diff;
mod init;
mod inspect;
mod logfile;
mod metrics;
pub mod ported;
mod project;
mod python;
mod record;
mod reload;
mod routes;
mod serve;
mod server;
mod shadow;
mod state;
mod static_files;
mod supervisor;
mod traffic_log;
mod wsgi;

/// What a ported view is written with: `use ficus::prelude::*;`.
pub mod prelude {
    pub use crate::db::{Database, Transaction, placeholders};
    pub use crate::ported::error::Error;
    pub use crate::ported::extract::{Kwarg, Kwargs, QueryDict};
    pub use crate::ported::pyjson::{PyInt, py_int, py_strip};
    pub use crate::ported::python::PythonCalls;
    pub use crate::ported::request::auth::{Auth, CurrentUser, LoginRequired, User, redirect};
    pub use crate::ported::request::csrf::Csrf;
    pub use crate::ported::request::form::Form;
    pub use crate::ported::request::messages::Messages;
    pub use crate::ported::request::session::Session;
    pub use crate::ported::request::storage::{FileResponse, Storage};
    pub use crate::ported::request::templates::Templates;
    pub use crate::ported::request::upload::{Multipart, UploadedFile, Uploads};
    pub use crate::ported::respond::{JsonResponse, never_cache};
    pub use crate::ported::{AppState, Registry};
    pub use crate::registry;
    pub use axum::extract::State;
    pub use axum::response::{IntoResponse, Response};
    pub use ficus_django::form_html;
    pub use http::StatusCode;
    pub use minijinja::context;
}

/// The parity engine (normalisation and diff, request lists), and the runner that gets it the
/// answers of a project in this process: what a migration's parity tests are written with.
pub mod parity {
    pub use crate::diff::runner::{Runner, Trio};
    pub use ficus_parity::*;
}

/// The versions the engine is built with, for a migration to use the same ones.
pub use {axum, ficus_django, http, minijinja, pyo3, serde_json, sqlx};

use std::ffi::OsString;
use std::process::ExitCode;

/// The `ficus` command with the migration's handlers: parses the command line, runs the command,
/// and turns an error a user can cause into one sentence (`ficus: error: ...`) and status 1.
pub fn main(registry: ported::Registry) -> ExitCode {
    match run(std::env::args_os(), registry) {
        Ok(code) => code,
        Err(err) => {
            // One write, so the lines of worker processes failing together never interleave
            // (`eprintln!` writes its pieces one by one).
            let line = format!("ficus: error: {err:#}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
            ExitCode::FAILURE
        }
    }
}

/// Runs one `ficus` command line (`args` starts with the program name) with these handlers; the
/// exit status it ends with. A wrong command line, `--help` and `--version` print clap's text
/// and end with clap's status (2 for a usage error, 0 otherwise).
pub fn run<I, T>(args: I, registry: ported::Registry) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = match cli::parse(args) {
        Ok(cli) => cli.command,
        Err(cli::ParseError::Usage(err)) => {
            // Printing to a closed terminal is no reason to change the status.
            let _ = err.print();
            return Ok(ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2)));
        }
        Err(err) => return Err(err.into()),
    };
    match command {
        cli::Command::Serve(args) => serve::run(args.resolved(), registry),
        cli::Command::Runserver(args) => serve::run(args.resolved(), registry),
        cli::Command::Routes(args) => done(inspect::routes(args.resolved(), &registry)),
        cli::Command::Check(args) => done(inspect::check(args.resolved(), &registry)),
        cli::Command::Diff(args) => done(diff::run(args.resolved(), registry)),
        cli::Command::Reload(args) => done(state::reload(args.resolved())),
        cli::Command::Init(args) => done(init::run(args.resolved())),
    }
}
