//! The route table: which requests a Rust handler serves, read from the `[[route]]` entries of
//! routes.toml, and swapped atomically when the file is reloaded (SIGHUP).
//!
//! It decides *who* answers a request (a handler name and its captured parameters, or Django);
//! it never runs handlers, and it knows nothing of HTTP beyond the method and the path.

mod load;
pub(crate) mod pattern;
pub(crate) mod summary;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;

pub(crate) use load::RoutesError;
use pattern::PathPattern;

/// How an entry's traffic is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// The Rust handler answers.
    Rust,
    /// Django answers the client; the Rust handler is the one under evaluation.
    Shadow,
    /// The Rust handler answers a sticky share of clients (`percent`); Django the rest, and
    /// any request the Rust handler fails.
    Canary,
    /// Django answers: the entry is kept but switched off (the kill switch).
    Django,
}

impl Mode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Rust => "rust",
            Mode::Shadow => "shadow",
            Mode::Canary => "canary",
            Mode::Django => "django",
        }
    }
}

/// One `[[route]]` entry, validated.
#[derive(Debug)]
pub(crate) struct Route {
    pub pattern: PathPattern,
    /// The Django URL name, checked against the URLconf by `ficus check`.
    pub name: Option<String>,
    pub methods: BTreeSet<String>,
    pub handler: String,
    pub mode: Mode,
    /// A route Django does not have (a new endpoint written in Rust first).
    pub new: bool,
    /// Line of the entry in routes.toml, for messages.
    pub line: usize,
    /// How parity comparisons of this route are normalised beyond the defaults.
    pub rules: ficus_parity::Rules,
    /// Shadow mode: how long the Rust handler may take before its run is abandoned.
    pub budget: std::time::Duration,
    /// Shadow mode: the share of matching requests that are shadowed (0 to 1).
    pub sample: f64,
    /// Shadow mode: shadow methods that may write (POST, PUT, ...) too.
    pub shadow_writes: bool,
    /// Canary mode: the share of clients the Rust handler serves, 0 to 100.
    pub percent: f64,
    /// Canary mode: what keeps one client on one side.
    pub sticky: Sticky,
    /// Canary mode: the statuses the Rust handler may answer with; any other falls back to
    /// Django. None means every status below 500.
    pub expected_status: Option<BTreeSet<u16>>,
    /// The share of this route's requests recorded for `ficus diff` (0 to 1); None follows the
    /// table's global `record`.
    pub record: Option<f64>,
}

/// What identifies a client for canary stickiness (`sticky = "cookie:sessionid"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sticky {
    /// The client's address (the forwarded one behind a trusted proxy).
    Client,
    /// A cookie's value; clients without it are placed by their address.
    Cookie(String),
    /// A request header's value; clients without it are placed by their address.
    Header(http::HeaderName),
}

impl Route {
    /// Whether a shadow entry shadows requests of this method: GET, HEAD and OPTIONS, and the
    /// others only with `shadow_writes`.
    pub(crate) fn shadows(&self, method: &str) -> bool {
        self.mode == Mode::Shadow && (self.shadow_writes || SAFE_METHODS.contains(&method))
    }

    /// Whether a canary answer with this status may go to the client.
    pub(crate) fn expects(&self, status: u16) -> bool {
        match &self.expected_status {
            Some(listed) => listed.contains(&status),
            None => status < 500,
        }
    }
}

/// Methods shadowed without `shadow_writes`: the ones that must not change data.
pub(crate) const SAFE_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// A request the table gives to a Rust handler.
#[derive(Debug)]
pub(crate) struct Matched<'a> {
    pub route: &'a Route,
    /// Captured path parameters in pattern order, as Django's converters would pass them.
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    pub routes: Vec<Route>,
    /// The share of all requests recorded for `ficus diff` (top-level `record = 0.01`).
    pub record: f64,
}

impl RouteTable {
    /// Parses and validates routes.toml text; `handlers` are the registered handler names.
    pub(crate) fn parse(text: &str, handlers: &BTreeSet<&str>) -> Result<Self, RoutesError> {
        load::parse(text, handlers)
    }

    /// Reads and validates a routes file; no file means an empty table.
    pub(crate) fn read(
        file: Option<&Path>,
        handlers: &BTreeSet<&str>,
    ) -> Result<Self, RoutesError> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| RoutesError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, handlers).map_err(|err| err.in_file(path))
    }

    /// The Rust route for this request, if any. `path` is the decoded path Django would route
    /// (see [`pattern::decode_path`]). A method the entry does not list, a segment that does not
    /// fit a converter, or an entry not in rust mode all leave the request to Django.
    #[cfg(test)]
    pub(crate) fn resolve(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        self.first(method, path, |route| route.mode == Mode::Rust)
    }

    /// The shadow entry for this request, if any: Django answers it, the Rust handler runs
    /// beside. Only GET, HEAD and OPTIONS unless the entry sets `shadow_writes`.
    #[cfg(test)]
    pub(crate) fn shadowed(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        self.first(method, path, |route| route.shadows(method))
    }

    /// The entry of any mode for this request, if any (for metrics and recording).
    pub(crate) fn listed(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        self.first(method, path, |_| true)
    }

    fn first(
        &self,
        method: &str,
        path: &str,
        keep: impl Fn(&Route) -> bool,
    ) -> Option<Matched<'_>> {
        self.routes
            .iter()
            .filter(|route| keep(route) && route.methods.contains(method))
            .find_map(|route| {
                route
                    .pattern
                    .matches(path)
                    .map(|params| Matched { route, params })
            })
    }

    /// Entries by mode, for the start-up line and `ficus routes`.
    pub(crate) fn count(&self, mode: Mode) -> usize {
        self.routes.iter().filter(|r| r.mode == mode).count()
    }

    /// One line for the log: how many entries are in each mode.
    pub(crate) fn describe(&self) -> String {
        format!(
            "Routes: {} served by Rust, {} in canary, {} in shadow, {} switched to Django",
            self.count(Mode::Rust),
            self.count(Mode::Canary),
            self.count(Mode::Shadow),
            self.count(Mode::Django)
        )
    }
}

/// How the last reload went, for the dashboard.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ReloadOutcome {
    pub at: String,
    pub reloaded: bool,
    pub message: String,
}

/// The table requests are routed by, replaceable while the server runs.
pub(crate) struct LiveRoutes {
    current: ArcSwap<RouteTable>,
    file: Option<PathBuf>,
    handlers: BTreeSet<&'static str>,
    last_reload: std::sync::Mutex<Option<ReloadOutcome>>,
}

impl LiveRoutes {
    /// Loads `file` (or starts with an empty table when there is none).
    pub(crate) fn load(
        file: Option<&Path>,
        handlers: BTreeSet<&'static str>,
    ) -> Result<Self, RoutesError> {
        let table = RouteTable::read(file, &handlers)?;
        Ok(Self {
            current: ArcSwap::from_pointee(table),
            file: file.map(Path::to_owned),
            handlers,
            last_reload: std::sync::Mutex::new(None),
        })
    }

    /// The table as it is now; cheap, and never blocks a reload.
    pub(crate) fn table(&self) -> Arc<RouteTable> {
        self.current.load_full()
    }

    /// Reads the file again and swaps the table in one step. On any error the old table stays.
    pub(crate) fn reload(&self) -> Result<Arc<RouteTable>, RoutesError> {
        let Some(path) = &self.file else {
            return Ok(self.table());
        };
        let table = Arc::new(RouteTable::read(Some(path), &self.handlers)?);
        self.current.store(table.clone());
        Ok(table)
    }

    /// Reloads (on SIGHUP or `ficus reload`), logs the outcome in one line and keeps it for
    /// the dashboard.
    pub(crate) fn reload_logged(&self) -> ReloadOutcome {
        let (reloaded, message) = match self.reload() {
            Ok(table) => {
                let message = format!("Reloaded routes.toml. {}", table.describe());
                tracing::info!("{message}");
                (true, message)
            }
            Err(err) => {
                let message =
                    format!("routes.toml was not reloaded, the previous routes stay: {err}");
                tracing::error!("{message}");
                (false, message)
            }
        };
        let outcome = ReloadOutcome {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            reloaded,
            message,
        };
        if let Ok(mut last) = self.last_reload.lock() {
            *last = Some(outcome.clone());
        }
        outcome
    }

    pub(crate) fn last_reload(&self) -> Option<ReloadOutcome> {
        self.last_reload.lock().ok().and_then(|l| l.clone())
    }

    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}
