//! The migration's test support: the engine's (servers on ports of their own, seeded sites,
//! raw HTTP; `crates/ficus/tests/support`, shared with the engine's tests), plus what only the
//! migration's tests use: a browser-like cookie jar and the in-process server.

// Each test binary uses part of it, and its items are the tests' own, not an API.
#![allow(dead_code, unreachable_pub)]

#[path = "../../crates/ficus/tests/support/mod.rs"]
mod engine;

pub use engine::*;

use std::path::PathBuf;

pub mod browser;
pub mod in_process;

/// Every request list in tests/requests/, by file stem (`articles_detail`), in name order.
pub fn request_lists() -> Vec<(String, Vec<ficus::parity::requests::Request>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/requests"))
        .expect("tests/requests")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let list = ficus::parity::requests::read(&file).unwrap_or_else(|e| panic!("{e}"));
            (stem, list)
        })
        .collect()
}
