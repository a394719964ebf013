//! `ficus diff FILE...`: replays request lists (TOML) or recorded traffic (JSON Lines) against
//! Django twice and the Rust handler once, in-process, and prints a verdict per request and a
//! summary per route. Exit status 1 when a real difference is found.
//!
//! It reports what the parity engine finds; it changes no file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use ficus_parity::requests::{self, Request};
use ficus_parity::{Difference, judge, normalise};

pub(crate) mod runner;

use crate::ported::Registry;
use crate::project::Project;
use crate::routes::RouteTable;
use runner::Runner;

/// `ficus diff`, as the command line gives it.
#[derive(Debug, Clone)]
pub(crate) struct DiffOptions {
    /// Request lists (`.toml`) or recorded traffic (`.jsonl`).
    pub(crate) files: Vec<PathBuf>,
    pub(crate) project: crate::config::ProjectOptions,
    /// JSON for tools instead of text.
    pub(crate) json: bool,
    /// Differing requests as request-list entries.
    pub(crate) toml: bool,
}

/// The outcome for one request.
#[derive(Debug, Serialize)]
struct Outcome {
    file: String,
    name: String,
    method: String,
    target: String,
    /// The routes.toml path that served it in Rust, or None when Django answers either way.
    route: Option<String>,
    handler: Option<String>,
    /// `match`, `differ` or `django` (no Rust route).
    verdict: &'static str,
    differences: Vec<Difference>,
    noise: Vec<Difference>,
    #[serde(skip)]
    request: Request,
}

pub(crate) fn run(args: DiffOptions, registry: Registry) -> anyhow::Result<()> {
    let mut listed = Vec::new();
    for file in &args.files {
        for request in requests::read(file)? {
            listed.push((file.display().to_string(), request));
        }
    }
    let project = Project::find(&args.project)?;
    let routes = RouteTable::read(project.config.routes_file.as_deref(), &registry.names())?;
    let runner = Runner::start(&project, registry, routes)?;

    let mut outcomes = Vec::with_capacity(listed.len());
    for (file, request) in listed {
        let trio = runner.run(&request)?;
        let (route, handler) = match trio.route {
            Some((route, handler)) => (Some(route), Some(handler)),
            None => (None, None),
        };
        let route_rules = match (&route, &handler) {
            (Some(route), Some(handler)) => runner.rules_for(route, handler),
            _ => Default::default(),
        };
        let (verdict_name, differences, noise) = match &trio.rust {
            Some(rust) => {
                let found = judge(
                    [&trio.django, &trio.django_again, rust],
                    &route_rules,
                    request.byte_for_byte,
                );
                let name = if found.matches() { "match" } else { "differ" };
                (name, found.differences, found.noise)
            }
            None => {
                let django = normalise(&trio.django, &route_rules);
                let again = normalise(&trio.django_again, &route_rules);
                ("django", Vec::new(), ficus_parity::compare(&django, &again))
            }
        };
        outcomes.push(Outcome {
            file,
            name: request.name.clone(),
            method: request.method.clone(),
            target: request.target(),
            route,
            handler,
            verdict: verdict_name,
            differences,
            noise,
            request,
        });
    }

    let differing = outcomes.iter().filter(|o| o.verdict == "differ").count();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else if args.toml {
        for outcome in outcomes.iter().filter(|o| o.verdict == "differ") {
            println!("{}", requests::to_list_entry(&outcome.request));
        }
    } else {
        print!("{}", render(&outcomes));
    }
    if differing > 0 {
        anyhow::bail!("{differing} request(s) differ from Django");
    }
    Ok(())
}

fn render(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let label = match o.verdict {
            "match" => "MATCH ",
            "differ" => "DIFFER",
            _ => "DJANGO",
        };
        let served = o
            .handler
            .as_deref()
            .map_or("no Rust route".to_owned(), |h| format!("Rust: {h}"));
        let _ = writeln!(
            out,
            "{label} {} {}  [{}]  ({served})",
            o.method, o.target, o.name
        );
        for d in &o.differences {
            for line in d.to_string().lines() {
                let _ = writeln!(out, "         {line}");
            }
        }
        if !o.noise.is_empty() && o.verdict != "django" {
            let places: Vec<String> = o.noise.iter().map(|n| n.location.to_string()).collect();
            let _ = writeln!(
                out,
                "         noise (differs between two Django runs): {}",
                places.join(", ")
            );
        }
    }
    let mut by_route: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    for o in outcomes {
        let key = match (&o.route, &o.handler) {
            (Some(route), Some(handler)) => format!("{route} ({handler})"),
            _ => "(Django only)".to_owned(),
        };
        let counts = by_route.entry(key).or_default();
        counts[match o.verdict {
            "match" => 0,
            "differ" => 1,
            _ => 2,
        }] += 1;
    }
    let _ = writeln!(out);
    for (route, [matched, differ, django]) in by_route {
        if django > 0 && matched + differ == 0 {
            let _ = writeln!(out, "{route}: {django} request(s), not served by Rust");
        } else {
            let _ = writeln!(
                out,
                "{route}: {} request(s), {matched} match, {differ} differ",
                matched + differ
            );
        }
    }
    out
}
