//! The ported views of the legacy project, one file per Django app they come from, and the
//! registry routes.toml names them by (`articles::detail` is `articles.rs`'s `detail`).
//!
//! Each handler names the Django view it replaces and must answer as that view does; the parity
//! tests hold it to that. Shared machinery (extractors, JSON bytes, the Python helper, the
//! database) lives in `crate::ported` and `crate::db`, not here.

pub mod ai;
pub mod articles;
pub mod legacy;
pub mod media;

use crate::ported::Registry;

/// Every handler routes.toml may name.
pub fn registry() -> Registry {
    Registry::new()
        .register("legacy::healthz", legacy::healthz)
        .register("articles::list", articles::list)
        .register("articles::detail", articles::detail)
        .register("media::signed_url", media::signed_url)
        .register("ai::summarize", ai::summarize)
}
