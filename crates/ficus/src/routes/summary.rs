//! The migration at a glance: every Django URL pattern beside the routes.toml entries that stand
//! for it (same literal text, converters in the same places), and the counts by state. `ficus
//! routes` prints it and the dashboard shows it.
//!
//! It compares two tables it is given; reading Django's URLconf is `python/django.rs`'s job.

use std::collections::BTreeSet;

use serde::Serialize;

use super::pattern::PathPattern;
use super::{Mode, Route, RouteTable};

/// One entry of `ficus routes`: a URL pattern as Django resolves it.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct UrlPattern {
    /// The full route text without the leading "/", e.g. `api/articles/<int:pk>/`.
    pub(crate) route: String,
    /// The URL name, namespaced (`admin:index`) when it sits under a namespace.
    pub(crate) name: Option<String>,
    /// The dotted path of the view.
    pub(crate) view: String,
    /// False when any part of the route is a regular expression (`re_path`).
    pub(crate) is_route: bool,
    /// The installed app the pattern belongs to when it is not the project's own code
    /// (`admin`); None for the project's routes.
    #[serde(default)]
    pub(crate) app: Option<String>,
}

/// One line of `ficus routes`.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) path: String,
    pub(crate) name: Option<String>,
    pub(crate) view: String,
    /// The installed app whose route this is (`admin`); None for the project's own.
    pub(crate) app: Option<String>,
    /// rust, canary, shadow, django, or "not listed".
    pub(crate) state: &'static str,
    pub(crate) entries: Vec<Entry>,
    /// What the running server has seen on this route (`ficus routes` with a server running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) live: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Entry {
    /// The entry's path as routes.toml writes it.
    pub(crate) path: String,
    pub(crate) mode: &'static str,
    pub(crate) methods: Vec<String>,
    pub(crate) handler: String,
    pub(crate) line: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) routes: Vec<Row>,
    pub total: usize,
    pub rust: usize,
    pub canary: usize,
    pub shadow: usize,
    pub django: usize,
    pub not_listed: usize,
    /// The project's own routes, and how many of them have a Rust handler (rust, canary or
    /// shadow): the migration's progress, apart from the installed apps a team keeps.
    pub project_total: usize,
    pub project_ported: usize,
    /// The routes of installed apps (the admin), by app label.
    pub apps: std::collections::BTreeMap<String, usize>,
}

/// Django's `path()` patterns compiled once (None for regex patterns and what does not parse),
/// index for index with `patterns`.
pub(crate) fn compile(patterns: &[UrlPattern]) -> Vec<Option<PathPattern>> {
    patterns
        .iter()
        .map(|p| {
            p.is_route
                .then(|| PathPattern::parse(&format!("/{}", p.route)).ok())
                .flatten()
        })
        .collect()
}

/// The index of the Django pattern an entry stands for: same literal text and converters in
/// the same places.
pub(crate) fn django_match(route: &Route, compiled: &[Option<PathPattern>]) -> Option<usize> {
    compiled.iter().position(|django| {
        django
            .as_ref()
            .is_some_and(|d| d.same_shape(&route.pattern))
    })
}

fn entry(route: &Route) -> Entry {
    Entry {
        path: route.pattern.source().to_owned(),
        mode: route.mode.as_str(),
        methods: route.methods.iter().cloned().collect(),
        handler: route.handler.clone(),
        line: route.line,
    }
}

/// The most ported mode among a pattern's entries.
fn state(entries: &[&Route]) -> &'static str {
    [Mode::Rust, Mode::Canary, Mode::Shadow, Mode::Django]
        .into_iter()
        .find(|mode| entries.iter().any(|r| r.mode == *mode))
        .map_or("not listed", Mode::as_str)
}

pub(crate) fn summarise(patterns: &[UrlPattern], table: &RouteTable) -> Summary {
    let compiled = compile(patterns);
    let matched: Vec<Option<usize>> = table
        .routes
        .iter()
        .map(|r| django_match(r, &compiled))
        .collect();
    let mut claimed = BTreeSet::new();
    let mut routes: Vec<Row> = patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| {
            let entries: Vec<&Route> = table
                .routes
                .iter()
                .zip(&matched)
                .filter(|(_, m)| **m == Some(index))
                .map(|(r, _)| r)
                .collect();
            claimed.extend(entries.iter().map(|r| r.line));
            Row {
                path: format!("/{}", pattern.route),
                name: pattern.name.clone(),
                view: pattern.view.clone(),
                app: pattern.app.clone(),
                state: state(&entries),
                entries: entries.into_iter().map(entry).collect(),
                live: None,
            }
        })
        .collect();
    // Entries Django does not have (`new = true`) are routes too, served by Rust alone.
    for route in table.routes.iter().filter(|r| !claimed.contains(&r.line)) {
        routes.push(Row {
            path: route.pattern.source().to_owned(),
            name: route.name.clone(),
            view: format!("(Rust only) {}", route.handler),
            app: None,
            state: state(&[route]),
            entries: vec![entry(route)],
            live: None,
        });
    }
    let count = |state: &str| routes.iter().filter(|r| r.state == state).count();
    let project: Vec<&Row> = routes.iter().filter(|r| r.app.is_none()).collect();
    let mut apps = std::collections::BTreeMap::new();
    for app in routes.iter().filter_map(|r| r.app.clone()) {
        *apps.entry(app).or_insert(0) += 1;
    }
    Summary {
        project_total: project.len(),
        project_ported: project
            .iter()
            .filter(|r| ["rust", "canary", "shadow"].contains(&r.state))
            .count(),
        apps,
        total: routes.len(),
        rust: count("rust"),
        canary: count("canary"),
        shadow: count("shadow"),
        django: count("django"),
        not_listed: count("not listed"),
        routes,
    }
}
