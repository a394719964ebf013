//! Reading `[[route]]` entries: TOML to validated [`Route`]s, every mistake reported as one
//! sentence that names the line, so a bad edit is fixed without guessing.
//!
//! It checks what the file alone can tell (syntax, modes, converters, methods, known handler
//! names, two entries claiming one path and method); the Django side is `ficus check`'s job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::pattern::PathPattern;
use super::{Mode, Route, RouteTable, Sticky};
use ficus_parity::{Rules, Selector};

#[derive(Debug, thiserror::Error)]
pub(crate) enum RoutesError {
    #[error("cannot read the routes file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}line {line}: {message}", file_prefix(.file))]
    Invalid {
        file: Option<PathBuf>,
        line: usize,
        message: String,
    },
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!("{} ", f.display()))
        .unwrap_or_default()
}

impl RoutesError {
    pub(super) fn in_file(self, path: &Path) -> Self {
        match self {
            RoutesError::Invalid { line, message, .. } => RoutesError::Invalid {
                file: Some(path.to_owned()),
                line,
                message,
            },
            other => other,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[allow(dead_code)] // read by crate::config; accepted here so it is not an unknown key
    #[serde(default)]
    django: Option<toml::Table>,
    #[serde(default)]
    route: Vec<Spanned<Entry>>,
    /// The share of every request recorded for `ficus diff`.
    record: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    path: Spanned<String>,
    name: Option<String>,
    methods: Option<Spanned<Vec<String>>>,
    handler: Spanned<String>,
    mode: Option<Spanned<Mode>>,
    #[serde(default)]
    new: bool,
    /// Parity rules: response headers left out of comparisons.
    #[serde(default)]
    ignore_headers: Vec<String>,
    /// Parity rules: JSON fields redacted on every side (insta selector syntax).
    #[serde(default)]
    redact: Vec<String>,
    /// Parity rules: `[regex, replacement]` pairs applied to text bodies and header values.
    #[serde(default)]
    filters: Vec<(String, String)>,
    /// Shadow mode: milliseconds the Rust handler gets (default 1000).
    budget_ms: Option<u64>,
    /// Shadow mode: the share of requests shadowed, 0 to 1 (default 1).
    sample: Option<Spanned<f64>>,
    /// Shadow mode: shadow methods that may write too.
    #[serde(default)]
    shadow_writes: bool,
    /// Canary mode: the share of clients served by Rust, 0 to 100.
    percent: Option<Spanned<f64>>,
    /// Canary mode: `client`, `cookie:NAME` or `header:NAME` (default `client`).
    sticky: Option<Spanned<String>>,
    /// Canary mode: statuses the Rust handler may answer with (default: any below 500).
    expected_status: Option<Spanned<Vec<u16>>>,
    /// The share of this route's requests recorded for `ficus diff`, 0 to 1.
    record: Option<Spanned<f64>>,
}

pub(super) fn parse(text: &str, handlers: &BTreeSet<&str>) -> Result<RouteTable, RoutesError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let document: Document = toml::from_str(text).map_err(|err| RoutesError::Invalid {
        file: None,
        line: err.span().map(|s| line_of(s.start)).unwrap_or(1),
        message: err.message().trim_end().to_owned(),
    })?;

    let mut routes: Vec<Route> = Vec::with_capacity(document.route.len());
    for spanned in document.route {
        let line = line_of(spanned.span().start);
        // Each mistake is reported on the line of the key that holds it.
        let invalid_at = |span: std::ops::Range<usize>, message: String| RoutesError::Invalid {
            file: None,
            line: line_of(span.start),
            message,
        };
        let entry = spanned.into_inner();
        let path_span = entry.path.span();
        let (mode, mode_span) = match &entry.mode {
            Some(mode) => (*mode.get_ref(), mode.span()),
            None => (Mode::Rust, path_span.clone()),
        };
        let path = entry.path.into_inner();
        let pattern =
            PathPattern::parse(&path).map_err(|e| invalid_at(path_span.clone(), e.to_string()))?;
        let handler_span = entry.handler.span();
        let handler = entry.handler.into_inner();
        if !handlers.contains(handler.as_str()) {
            return Err(invalid_at(
                handler_span,
                format!(
                    "unknown handler `{handler}`; the registered handlers are: {}",
                    handlers.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let methods = match entry.methods {
            Some(listed) => {
                let span = listed.span();
                methods(Some(listed.into_inner())).map_err(|m| invalid_at(span, m))?
            }
            None => methods(None).map_err(|m| invalid_at(path_span.clone(), m))?,
        };
        if let Some(other) = routes.iter().find(|r| {
            r.pattern.same_shape(&pattern) && r.methods.intersection(&methods).next().is_some()
        }) {
            let shared: Vec<&str> = other
                .methods
                .intersection(&methods)
                .map(String::as_str)
                .collect();
            return Err(invalid_at(
                path_span,
                format!(
                    "`{path}` {} is already claimed by the entry on line {}",
                    shared.join(", "),
                    other.line
                ),
            ));
        }
        let rules = parity_rules(entry.ignore_headers, entry.redact, entry.filters)
            .map_err(|m| invalid_at(path_span.clone(), m))?;
        let sample = share(entry.sample, "sample", 1.0).map_err(|(s, m)| invalid_at(s, m))?;
        let record = entry
            .record
            .map(|r| share(Some(r), "record", 0.0))
            .transpose()
            .map_err(|(s, m)| invalid_at(s, m))?;
        let percent = match entry.percent {
            Some(p) if !(0.0..=100.0).contains(p.get_ref()) => {
                return Err(invalid_at(
                    p.span(),
                    format!("`percent = {}` must be between 0 and 100", p.get_ref()),
                ));
            }
            Some(p) => p.into_inner(),
            None if mode == Mode::Canary => {
                return Err(invalid_at(
                    mode_span,
                    "a canary route needs `percent`, the share of clients Rust serves (0 to 100)"
                        .to_owned(),
                ));
            }
            None => 0.0,
        };
        let sticky = match entry.sticky {
            Some(s) => {
                let span = s.span();
                sticky(s.get_ref()).map_err(|m| invalid_at(span, m))?
            }
            None => Sticky::Client,
        };
        let expected_status = match entry.expected_status {
            Some(listed) => {
                let span = listed.span();
                let listed = listed.into_inner();
                if let Some(bad) = listed.iter().find(|s| !(100..=599).contains(*s)) {
                    return Err(invalid_at(
                        span,
                        format!("`expected_status` lists {bad}, which is not an HTTP status"),
                    ));
                }
                Some(listed.into_iter().collect())
            }
            None => None,
        };
        routes.push(Route {
            pattern,
            name: entry.name,
            methods,
            handler,
            mode,
            new: entry.new,
            line,
            rules,
            budget: std::time::Duration::from_millis(entry.budget_ms.unwrap_or(1000)),
            sample,
            shadow_writes: entry.shadow_writes,
            percent,
            sticky,
            expected_status,
            record,
        });
    }
    let record =
        share(document.record, "record", 0.0).map_err(|(span, message)| RoutesError::Invalid {
            file: None,
            line: line_of(span.start),
            message,
        })?;
    Ok(RouteTable { routes, record })
}

type Spot = (std::ops::Range<usize>, String);

/// A share between 0 and 1 (`sample`, `record`), or `default` when absent.
fn share(value: Option<Spanned<f64>>, key: &str, default: f64) -> Result<f64, Spot> {
    match value {
        Some(v) if !(0.0..=1.0).contains(v.get_ref()) => Err((
            v.span(),
            format!("`{key} = {}` must be between 0 and 1", v.get_ref()),
        )),
        Some(v) => Ok(v.into_inner()),
        None => Ok(default),
    }
}

fn sticky(source: &str) -> Result<Sticky, String> {
    let invalid = || {
        format!(
            "`sticky = \"{source}\"` is not one of \"client\", \"cookie:NAME\" or \"header:NAME\""
        )
    };
    match source.split_once(':') {
        None if source == "client" => Ok(Sticky::Client),
        Some(("cookie", name)) if !name.trim().is_empty() => {
            Ok(Sticky::Cookie(name.trim().to_owned()))
        }
        Some(("header", name)) => http::HeaderName::from_bytes(name.trim().as_bytes())
            .map(Sticky::Header)
            .map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

fn parity_rules(
    ignore_headers: Vec<String>,
    redact: Vec<String>,
    filters: Vec<(String, String)>,
) -> Result<Rules, String> {
    let redact = redact
        .iter()
        .map(|s| Selector::parse(s).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let filters = filters
        .into_iter()
        .map(|(pattern, replacement)| {
            regex::Regex::new(&pattern)
                .map(|re| (re, replacement))
                .map_err(|e| format!("filter `{pattern}` is not a regular expression: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Rules {
        ignore_headers,
        redact,
        filters,
    })
}

/// Upper-cased, de-duplicated methods; GET alone when the entry lists none.
fn methods(listed: Option<Vec<String>>) -> Result<BTreeSet<String>, String> {
    let listed = listed.unwrap_or_else(|| vec!["GET".to_owned()]);
    if listed.is_empty() {
        return Err("`methods` is empty; list at least one, e.g. [\"GET\"]".into());
    }
    listed
        .into_iter()
        .map(|m| {
            let upper = m.to_ascii_uppercase();
            if !upper.is_empty() && upper.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(upper)
            } else {
                Err(format!("`{m}` is not an HTTP method"))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handlers() -> BTreeSet<&'static str> {
        ["articles::detail", "legacy::healthz"]
            .into_iter()
            .collect()
    }

    fn error(text: &str) -> String {
        parse(text, &handlers()).unwrap_err().to_string()
    }

    const DETAIL: &str = r#"
[django]
wsgi = "legacy.wsgi:application"

[[route]]
path = "/api/articles/<int:pk>/"
name = "api-article-detail"
methods = ["get"]
handler = "articles::detail"
"#;

    #[test]
    fn entry_defaults_to_rust_mode_and_upper_cases_methods() {
        let table = parse(DETAIL, &handlers()).unwrap();
        let route = &table.routes[0];
        assert_eq!(route.mode, Mode::Rust);
        assert_eq!(route.methods.iter().collect::<Vec<_>>(), ["GET"]);
        assert_eq!(route.line, 5);
        assert!(table.resolve("GET", "/api/articles/7/").is_some());
    }

    #[test]
    fn unlisted_method_and_unfit_segment_fall_through() {
        let table = parse(DETAIL, &handlers()).unwrap();
        assert!(table.resolve("POST", "/api/articles/7/").is_none());
        assert!(table.resolve("HEAD", "/api/articles/7/").is_none());
        assert!(table.resolve("GET", "/api/articles/seven/").is_none());
        assert!(table.resolve("GET", "/api/articles/7").is_none());
    }

    #[test]
    fn django_and_shadow_modes_leave_traffic_to_django() {
        for mode in ["django", "shadow"] {
            let text = format!("{DETAIL}mode = \"{mode}\"\n");
            let table = parse(&text, &handlers()).unwrap();
            assert!(table.resolve("GET", "/api/articles/7/").is_none(), "{mode}");
        }
    }

    #[test]
    fn unknown_handler_names_the_line_and_the_known_ones() {
        let text = DETAIL.replace("articles::detail", "articles::detial");
        let message = error(&text);
        assert!(message.starts_with("line 9: unknown handler `articles::detial`"));
        assert!(message.contains("articles::detail, legacy::healthz"));
    }

    #[test]
    fn unknown_mode_is_refused_with_its_line() {
        let message = error(&format!("{DETAIL}mode = \"shade\"\n"));
        assert!(message.contains("line 10"), "{message}");
        assert!(message.contains("shade"), "{message}");
    }

    #[test]
    fn a_canary_entry_reads_its_share_stickiness_and_expected_statuses() {
        let handlers: BTreeSet<&str> = ["articles::detail", "legacy::healthz"].into();
        let table = RouteTable::parse(
            &format!(
                "{DETAIL}mode = \"canary\"\npercent = 12.5\nsticky = \"cookie:sessionid\"\nexpected_status = [200, 404]\n"
            ),
            &handlers,
        )
        .unwrap();
        let route = &table.routes[0];
        assert_eq!(route.mode, Mode::Canary);
        assert_eq!(route.percent, 12.5);
        assert_eq!(route.sticky, Sticky::Cookie("sessionid".into()));
        assert!(route.expects(404) && !route.expects(500) && !route.expects(302));
    }

    #[test]
    fn canary_mistakes_are_refused_on_their_line() {
        let missing = error(&format!("{DETAIL}mode = \"canary\"\n"));
        assert!(
            missing.starts_with("line 10: a canary route needs `percent`"),
            "{missing}"
        );
        let too_much = error(&format!("{DETAIL}mode = \"canary\"\npercent = 150\n"));
        assert!(
            too_much.starts_with("line 11: `percent = 150` must be between 0 and 100"),
            "{too_much}"
        );
        let sticky = error(&format!(
            "{DETAIL}mode = \"canary\"\npercent = 5\nsticky = \"ip\"\n"
        ));
        assert!(
            sticky.starts_with("line 12: `sticky = \"ip\"` is not one of"),
            "{sticky}"
        );
        let status = error(&format!("{DETAIL}expected_status = [200, 99]\n"));
        assert!(
            status.contains("lists 99, which is not an HTTP status"),
            "{status}"
        );
        let record = error(&format!("record = 2\n{DETAIL}"));
        assert!(
            record.starts_with("line 1: `record = 2` must be between 0 and 1"),
            "{record}"
        );
    }

    #[test]
    fn two_entries_claiming_one_path_and_method_are_refused() {
        let text = format!(
            "{DETAIL}\n[[route]]\npath = \"/api/articles/<int:id>/\"\nmethods = [\"GET\", \"POST\"]\nhandler = \"articles::detail\"\n"
        );
        assert_eq!(
            error(&text),
            "line 12: `/api/articles/<int:id>/` GET is already claimed by the entry on line 5"
        );
    }

    #[test]
    fn same_path_with_other_methods_is_allowed() {
        let text = format!(
            "{DETAIL}\n[[route]]\npath = \"/api/articles/<int:pk>/\"\nmethods = [\"DELETE\"]\nhandler = \"articles::detail\"\n"
        );
        assert_eq!(parse(&text, &handlers()).unwrap().routes.len(), 2);
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let message = error("[[route]]\npath = \"/healthz\"\nhandler = legacy::healthz\n");
        assert!(message.starts_with("line 3: "), "{message}");
    }

    #[test]
    fn misspelt_key_is_refused() {
        let message = error(
            "[[route]]\npath = \"/healthz\"\nhandler = \"legacy::healthz\"\nmehtods = [\"GET\"]\n",
        );
        assert!(message.contains("mehtods"), "{message}");
    }

    #[test]
    fn bad_converter_is_refused_with_its_line() {
        let message =
            error("\n[[route]]\npath = \"/a/<float:x>/\"\nhandler = \"legacy::healthz\"\n");
        assert!(message.starts_with("line 3: "), "{message}");
        assert!(message.contains("float"), "{message}");
    }

    #[test]
    fn parity_rules_are_read_and_checked() {
        let text = format!(
            "{DETAIL}redact = [\".published_at\"]\nfilters = [[\"\\\\d+\", \"<n>\"]]\nignore_headers = [\"Vary\"]\n"
        );
        let table = parse(&text, &handlers()).unwrap();
        let rules = &table.routes[0].rules;
        assert_eq!((rules.redact.len(), rules.filters.len()), (1, 1));
        assert_eq!(rules.ignore_headers, ["Vary"]);
        let message = error(&format!("{DETAIL}redact = [\"published_at\"]\n"));
        assert!(
            message.contains("`published_at` is not a selector"),
            "{message}"
        );
        let message = error(&format!("{DETAIL}filters = [[\"(\", \"x\"]]\n"));
        assert!(message.contains("is not a regular expression"), "{message}");
    }

    #[test]
    fn shadow_entries_shadow_only_safe_methods_unless_told() {
        let text = format!(
            "{}\nmode = \"shadow\"\nsample = 0.25\nbudget_ms = 50\n",
            DETAIL.replace("methods = [\"get\"]", "methods = [\"GET\", \"POST\"]")
        );
        let table = parse(&text, &handlers()).unwrap();
        assert!(
            table.resolve("GET", "/api/articles/7/").is_none(),
            "Django answers"
        );
        assert!(table.shadowed("GET", "/api/articles/7/").is_some());
        assert!(table.shadowed("POST", "/api/articles/7/").is_none());
        let route = &table.routes[0];
        assert_eq!((route.sample, route.budget.as_millis()), (0.25, 50));
        let writes = parse(&format!("{text}shadow_writes = true\n"), &handlers()).unwrap();
        assert!(writes.shadowed("POST", "/api/articles/7/").is_some());
        let message = error(&format!("{DETAIL}sample = 1.5\n"));
        assert!(
            message.contains("`sample = 1.5` must be between 0 and 1"),
            "{message}"
        );
    }

    #[test]
    fn bad_method_is_refused() {
        let message = error(
            "[[route]]\npath = \"/healthz\"\nhandler = \"legacy::healthz\"\nmethods = [\"GE T\"]\n",
        );
        assert!(
            message.contains("`GE T` is not an HTTP method"),
            "{message}"
        );
    }
}
