//! `ficus routes` and `ficus check`: the migration seen from the Django side. Both load the
//! project (as `serve` would, without binding anything), walk the live URLconf, and set it beside
//! routes.toml.
//!
//! They read and report; they never change routes.toml or the project.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use pyo3::prelude::*;
use serde::Serialize;

use crate::ported::Registry;
use crate::project::Project;
use crate::python::app;
use crate::python::django;
use crate::routes::RouteTable;
use crate::routes::summary::{Row, Summary, UrlPattern, compile, django_match, summarise};
use crate::state;

/// Loads the project and both tables: Django's URL patterns and routes.toml.
/// `ficus routes` and `ficus check`, as the command line gives them.
#[derive(Debug, Clone)]
pub(crate) struct InspectOptions {
    pub(crate) project: crate::config::ProjectOptions,
    /// JSON for tools instead of a table.
    pub(crate) json: bool,
    /// `ficus routes`: the running server whose live figures are shown.
    pub(crate) live: crate::state::ServerRef,
}

fn load(
    args: &InspectOptions,
    registry: &Registry,
) -> anyhow::Result<(Vec<UrlPattern>, RouteTable)> {
    let project = Project::find(&args.project)?;
    let table = RouteTable::read(project.config.routes_file.as_deref(), &registry.names())?;
    project.start_python()?;
    let venv = project.venv_shown();
    let patterns = Python::attach(|py| -> anyhow::Result<_> {
        app::load(py, &project.config, &venv)?;
        Ok(django::url_patterns(py)?)
    })?;
    Ok((patterns, table))
}

/// `ficus routes`.
pub(crate) fn routes(args: InspectOptions, registry: &Registry) -> anyhow::Result<()> {
    let (patterns, table) = load(&args, registry)?;
    let mut summary = summarise(&patterns, &table);
    let live = live_figures(&args.live);
    match &live {
        Ok(Some(status)) => add_live(&mut summary, status),
        Ok(None) => {}
        Err(why) => eprintln!("ficus: no live figures: {why:#}"),
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    Ok(())
}

/// The running server's status (`/_ficus/api/status`); None when no server is named anywhere.
fn live_figures(args: &crate::state::ServerRef) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(url) = state::server_url(args)? else {
        return Ok(None);
    };
    let reply = state::request(
        &url,
        "GET",
        "/_ficus/api/status",
        &[],
        args.admin_token.as_deref(),
    )?;
    if reply.status != 200 {
        anyhow::bail!("{url} answered {} for its status", reply.status);
    }
    Ok(Some(serde_json::from_str(&reply.body)?))
}

/// Puts each entry's live figures on its row.
fn add_live(summary: &mut Summary, status: &serde_json::Value) {
    let empty = Vec::new();
    let live_routes = status["routes"].as_array().unwrap_or(&empty);
    for row in &mut summary.routes {
        let shown: Vec<String> = row
            .entries
            .iter()
            .filter_map(|entry| {
                live_routes
                    .iter()
                    .find(|r| r["path"] == entry.path.as_str())
            })
            .map(live_line)
            .collect();
        if !shown.is_empty() {
            row.live = Some(shown.join("; "));
        }
    }
}

/// One entry's figures: who answered, and how shadow or canary is going.
fn live_line(route: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mut line = format!(
        "{} by Rust, {} by Django",
        n(&route["requests"]["rust"]),
        n(&route["requests"]["django"])
    );
    let shadow = &route["shadow"];
    if route["mode"] == "shadow" || n(&shadow["compared"]) > 0 {
        let (compared, matched) = (n(&shadow["compared"]), n(&shadow["matched"]));
        let rate = if compared == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", matched as f64 * 100.0 / compared as f64)
        };
        line.push_str(&format!(
            ", shadow {matched}/{compared} matched ({rate}), {} mismatched, {} noise, {} timed out",
            n(&shadow["mismatched"]),
            n(&shadow["noise"]),
            n(&shadow["timed_out"])
        ));
    }
    if route["mode"] == "canary" {
        line.push_str(&format!(
            ", canary {}%: {} fallbacks",
            route["percent"].as_f64().unwrap_or(0.0),
            n(&route["canary"]["fallbacks"])
        ));
    }
    line
}

fn render(summary: &Summary) -> String {
    let state = |row: &Row| {
        if row.entries.is_empty() {
            row.state.to_owned()
        } else {
            row.entries
                .iter()
                .map(|e| format!("{} {}", e.mode, e.methods.join(",")))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let name = |row: &Row| row.name.clone().unwrap_or_else(|| "-".into());
    let path_width = summary
        .routes
        .iter()
        .map(|r| r.path.chars().count())
        .max()
        .unwrap_or(0);
    let state_width = summary
        .routes
        .iter()
        .map(|r| state(r).len())
        .max()
        .unwrap_or(0);
    let name_width = summary
        .routes
        .iter()
        .map(|r| name(r).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:path_width$}  {:state_width$}  {:name_width$}  VIEW",
        "PATH", "STATE", "NAME"
    );
    for row in &summary.routes {
        let _ = writeln!(
            out,
            "{:path_width$}  {:state_width$}  {:name_width$}  {}",
            row.path,
            state(row),
            name(row),
            row.view
        );
        if let Some(live) = &row.live {
            let _ = writeln!(out, "{:path_width$}  live: {live}", "");
        }
    }
    let _ = writeln!(
        out,
        "\n{} of {} routes served by Rust ({} in canary, {} in shadow, {} switched back to Django, {} not listed)",
        summary.rust,
        summary.total,
        summary.canary,
        summary.shadow,
        summary.django,
        summary.not_listed
    );
    let _ = writeln!(out, "{}", project_line(summary));
    out
}

/// The migration's progress in one sentence: the project's own routes with a Rust handler, and
/// the installed apps' routes (the admin) that stay in Django.
pub(crate) fn project_line(summary: &Summary) -> String {
    let mut line = format!(
        "{} of {} project routes have a Rust handler",
        summary.project_ported, summary.project_total
    );
    if !summary.apps.is_empty() {
        let count: usize = summary.apps.values().sum();
        let names: Vec<&str> = summary.apps.keys().map(String::as_str).collect();
        line.push_str(&format!(
            "; {count} routes of installed apps ({}) stay in Django",
            names.join(", ")
        ));
    }
    line
}

#[derive(Debug, Default, Serialize)]
struct Findings {
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// `ficus check`: exit status 1 when routes.toml has an error.
pub(crate) fn check(args: InspectOptions, registry: &Registry) -> anyhow::Result<()> {
    let (patterns, table) = load(&args, registry)?;
    let findings = findings(&patterns, &table, &registry.names());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for error in &findings.errors {
            println!("error: {error}");
        }
        for warning in &findings.warnings {
            println!("warning: {warning}");
        }
        println!(
            "routes.toml: {} route(s), {} error(s), {} warning(s)",
            table.routes.len(),
            findings.errors.len(),
            findings.warnings.len()
        );
    }
    if findings.errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("routes.toml has {} error(s)", findings.errors.len())
    }
}

fn findings(patterns: &[UrlPattern], table: &RouteTable, handlers: &BTreeSet<&str>) -> Findings {
    let mut found = Findings::default();
    let compiled = compile(patterns);
    for route in &table.routes {
        let at = format!("line {}: `{}`", route.line, route.pattern.source());
        match (
            django_match(route, &compiled).and_then(|i| patterns.get(i)),
            route.new,
        ) {
            (None, false) => found.errors.push(format!(
                "{at} is not a path Django knows; copy it from urls.py (with a leading /), or add `new = true` for a route Django never had"
            )),
            (None, true) => {}
            (Some(django), new) => {
                if new {
                    found.warnings.push(format!(
                        "{at} says `new = true`, but Django serves it with {}",
                        django.view
                    ));
                }
                if let Some(name) = &route.name
                    && django.name.as_deref() != Some(name.as_str())
                {
                    found.errors.push(format!(
                        "{at} is named `{name}`, but Django names it {}",
                        django
                            .name
                            .as_deref()
                            .map_or("nothing".to_owned(), |n| format!("`{n}`"))
                    ));
                }
            }
        }
    }
    let used: BTreeSet<&str> = table.routes.iter().map(|r| r.handler.as_str()).collect();
    for unused in handlers.iter().filter(|h| !used.contains(**h)) {
        found.warnings.push(format!(
            "handler `{unused}` is registered but no route uses it"
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns() -> Vec<UrlPattern> {
        let p = |route: &str, name: &str, view: &str, is_route| UrlPattern {
            route: route.into(),
            name: Some(name.into()),
            view: view.into(),
            is_route,
            app: name.starts_with("admin:").then(|| "admin".to_owned()),
        };
        vec![
            p("healthz", "healthz", "legacy.views.healthz", true),
            p(
                "api/articles/<int:pk>/",
                "api-article-detail",
                "articles.api.article_detail",
                true,
            ),
            p(
                "admin/^(?P<app_label>auth)/$",
                "admin:app_list",
                "admin.app_index",
                false,
            ),
        ]
    }

    fn table(text: &str) -> RouteTable {
        let handlers: BTreeSet<&str> = ["legacy::healthz", "articles::detail"].into();
        RouteTable::parse(text, &handlers).unwrap()
    }

    #[test]
    fn routes_lists_every_django_pattern_with_its_state_and_a_total() {
        let table = table(
            "[[route]]\npath = \"/api/articles/<int:id>/\"\nhandler = \"articles::detail\"\n\n[[route]]\npath = \"/healthz\"\nhandler = \"legacy::healthz\"\nmode = \"django\"\n",
        );
        let summary = summarise(&patterns(), &table);
        let states: Vec<&str> = summary.routes.iter().map(|r| r.state).collect();
        assert_eq!(states, ["django", "rust", "not listed"]);
        let text = render(&summary);
        assert!(
            text.contains("1 of 3 routes served by Rust (0 in canary, 0 in shadow, 1 switched back to Django, 1 not listed)"),
            "{text}"
        );
        assert!(
            text.contains(
                "1 of 2 project routes have a Rust handler; 1 routes of installed apps (admin) stay in Django"
            ),
            "{text}"
        );
        assert!(text.contains("rust GET"), "{text}");
    }

    #[test]
    fn check_refuses_unknown_paths_and_wrong_names_but_accepts_new_routes() {
        let table = table(
            "[[route]]\npath = \"/api/articles/<str:pk>/\"\nhandler = \"articles::detail\"\n\n[[route]]\npath = \"/healthz\"\nname = \"health\"\nhandler = \"legacy::healthz\"\n\n[[route]]\npath = \"/api/v2/healthz\"\nhandler = \"legacy::healthz\"\nnew = true\n",
        );
        let handlers: BTreeSet<&str> =
            ["legacy::healthz", "articles::detail", "ai::summarize"].into();
        let found = findings(&patterns(), &table, &handlers);
        assert_eq!(found.errors.len(), 2, "{:?}", found.errors);
        assert!(
            found.errors[0]
                .starts_with("line 1: `/api/articles/<str:pk>/` is not a path Django knows")
        );
        assert!(found.errors[1].contains("is named `health`, but Django names it `healthz`"));
        assert_eq!(
            found.warnings,
            ["handler `ai::summarize` is registered but no route uses it"]
        );
    }
}
