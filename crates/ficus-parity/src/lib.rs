//! Parity: the one normalisation and diff engine that holds a ported route to the Django view it
//! replaces. The parity tests, `ficus diff` and shadow mode all go through it.
//!
//! Given Django's answer twice and Rust's answer once for the same request, it normalises all
//! three (what always differs between runs: Date and Server headers, CSRF and session tokens,
//! header order, JSON key order, plus a route's own rules), measures noise (whatever differs
//! between the two Django answers) and reports every other difference field by field.
//!
//! It only compares answers it is given; obtaining them (running Django and the handler) is the
//! caller's job: its own crate, so it can depend on nothing that does.

mod diff;
mod normalise;
pub mod requests;
mod selector;

pub use diff::{Difference, Location, Verdict, compare, judge, verdict};
pub use normalise::{Body, Normalised, Rules, normalise, normalise_exact};
pub use selector::{Selector, SelectorError};

use bytes::Bytes;

/// One HTTP answer as a client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// In the order they were sent, names as written.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// The first header of this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
