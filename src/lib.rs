//! ficus: one Rust binary that serves an unmodified Django project in-process (through pyo3) and
//! lets a team port it to Rust one route at a time.

pub mod admin;
pub mod canary;
pub mod cli;
pub mod config;
pub mod cookies;
pub mod db;
pub mod diff;
pub mod handlers;
pub mod inspect;
pub mod metrics;
pub mod parity;
pub mod ported;
pub mod project;
pub mod python;
pub mod record;
pub mod routes;
pub mod serve;
pub mod server;
pub mod shadow;
pub mod state;
pub mod static_files;
pub mod supervisor;
pub mod traffic_log;
pub mod wsgi;
