//! The migration of legacy_django to Rust: its ported views, one module per Django app, and the
//! registry `routes.toml` names them by. The `ficus` binary (`main.rs`) serves the project with
//! them; the tests under `tests/` hold each to the Django view it replaces.

pub mod handlers;
