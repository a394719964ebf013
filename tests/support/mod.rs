//! The migration's test support: the engine's (servers on ports of their own, seeded sites,
//! raw HTTP; `crates/ficus/tests/support`, shared with the engine's tests), plus what only the
//! migration's tests use: a browser-like cookie jar and the in-process server.

// Each test binary uses part of it, and its items are the tests' own, not an API.
#![allow(dead_code, unreachable_pub)]

#[path = "../../crates/ficus/tests/support/mod.rs"]
mod engine;

pub use engine::*;

pub mod browser;
pub mod in_process;
