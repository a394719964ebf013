//! The ported views of the legacy project, one file per Django app they come from, and the
//! registry routes.toml names them by (`articles::detail` is `articles.rs`'s `detail`).
//!
//! Each handler names the Django view it replaces and must answer as that view does; the parity
//! tests hold it to that. Shared machinery (extractors, JSON bytes, the Python helper, the
//! database) is the engine's, in `ficus::prelude`.

pub mod ai;
pub mod articles;
pub mod legacy;
pub mod media;

use ficus::prelude::*;

/// Every handler routes.toml may name, under its path here (`articles::detail`).
pub fn registry() -> Registry {
    registry![
        legacy::healthz,
        articles::list,
        articles::detail,
        media::signed_url,
        ai::summarize,
    ]
}
