//! Comparing normalised answers field by field (status, each header, how JSON is written, each
//! JSON path, text lines), and telling real differences from noise: what differs between two
//! runs of the Django view itself is noise and never fails a comparison.
//!
//! It reports; deciding what to do with a difference (fail a test, log a mismatch) is the
//! caller's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::Answer;
use super::normalise::{Body, JsonStyle, Normalised, Rules, normalise, normalise_exact};

/// Where two answers differ.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "at", content = "name", rename_all = "snake_case")]
pub enum Location {
    /// The status code.
    Status,
    /// The header of this name.
    Header(String),
    /// The same headers in another order (compared in the byte-for-byte form only).
    HeaderOrder,
    /// Same JSON data written differently (separators, escaping).
    JsonStyle,
    /// A JSON path, as `.results[0].title`.
    Json(String),
    /// The body as a whole (text, binary, or bodies of different kinds).
    Body,
}

/// One difference between Django's answer and another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Where the answers differ.
    pub location: Location,
    /// Django's side there.
    pub django: String,
    /// The other side there (Rust's, or Django's second answer).
    pub other: String,
    /// For text bodies: the changed lines, as a unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<String>,
    /// For text bodies: the Django lines changed (for noise matching).
    #[serde(skip)]
    changed_lines: BTreeSet<usize>,
    /// For text bodies: whether the other side adds lines of its own.
    #[serde(skip)]
    inserts: bool,
}

/// The outcome for one request: real differences, and what was set aside as noise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Differences Django does not make with itself: porting bugs.
    pub differences: Vec<Difference>,
    /// Differences Django also makes with itself.
    pub noise: Vec<Difference>,
}

impl Verdict {
    /// Whether the other side answers as Django does, noise aside.
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

const MISSING: &str = "(missing)";

fn difference(location: Location, django: String, other: String) -> Difference {
    Difference {
        location,
        django,
        other,
        lines: None,
        changed_lines: BTreeSet::new(),
        inserts: false,
    }
}

/// Every difference between Django's answer and another, in a stable order.
pub fn compare(django: &Normalised, other: &Normalised) -> Vec<Difference> {
    let mut found = Vec::new();
    if django.status != other.status {
        found.push(difference(
            Location::Status,
            django.status.to_string(),
            other.status.to_string(),
        ));
    }
    let (ours, theirs) = (by_name(&django.headers), by_name(&other.headers));
    let names: BTreeSet<&str> = ours.keys().chain(theirs.keys()).copied().collect();
    for name in names {
        let (a, b) = (ours.get(name), theirs.get(name));
        if a != b {
            let show = |v: Option<&Vec<&str>>| v.map_or(MISSING.to_owned(), |v| v.join("\n"));
            found.push(difference(
                Location::Header(name.to_owned()),
                show(a),
                show(b),
            ));
        }
    }
    if ours == theirs {
        // The same fields: in the byte-for-byte form, header order is kept and must be Django's.
        let names = |headers: &[(String, String)]| -> String {
            let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
            names.join(", ")
        };
        let (a, b) = (names(&django.headers), names(&other.headers));
        if a != b {
            found.push(difference(Location::HeaderOrder, a, b));
        }
    }
    compare_bodies(&django.body, &other.body, &mut found);
    found
}

fn by_name(headers: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name).or_default().push(value);
    }
    map
}

fn compare_bodies(django: &Body, other: &Body, found: &mut Vec<Difference>) {
    match (django, other) {
        (
            Body::Json {
                value: a,
                style: sa,
            },
            Body::Json {
                value: b,
                style: sb,
            },
        ) => {
            if sa != sb {
                found.push(difference(Location::JsonStyle, describe(sa), describe(sb)));
            }
            compare_json("", a, b, found);
        }
        (Body::Text { text: a }, Body::Text { text: b }) if a != b => {
            found.push(text_difference(a, b))
        }
        (a, b) if a != b => found.push(difference(Location::Body, summary(a), summary(b))),
        _ => {}
    }
}

fn describe(style: &JsonStyle) -> String {
    format!(
        "items separated by {:?}, keys by {:?}, {}",
        if style.spaced_items { ", " } else { "," },
        if style.spaced_keys { ": " } else { ":" },
        if style.ascii_only {
            "non-ASCII escaped"
        } else {
            "non-ASCII as UTF-8"
        }
    )
}

fn summary(body: &Body) -> String {
    match body {
        Body::Empty => "(empty)".into(),
        Body::Json { value, .. } => value.to_string(),
        Body::Text { text } => text.clone(),
        Body::Binary { length, digest } => format!("{length} bytes, digest {digest}"),
    }
}

fn compare_json(path: &str, a: &Value, b: &Value, found: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                compare_member(format!("{path}.{key}"), x.get(key), y.get(key), found);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                compare_member(format!("{path}[{i}]"), x.get(i), y.get(i), found);
            }
        }
        (x, y) if x != y => {
            let at = if path.is_empty() { "." } else { path };
            found.push(difference(
                Location::Json(at.to_owned()),
                x.to_string(),
                y.to_string(),
            ));
        }
        _ => {}
    }
}

/// A member present on either side: compared further when on both, else reported missing.
fn compare_member(here: String, a: Option<&Value>, b: Option<&Value>, found: &mut Vec<Difference>) {
    match (a, b) {
        (Some(u), Some(v)) => compare_json(&here, u, v, found),
        (u, v) => found.push(difference(
            Location::Json(here),
            u.map_or(MISSING.to_owned(), Value::to_string),
            v.map_or(MISSING.to_owned(), Value::to_string),
        )),
    }
}

fn text_difference(a: &str, b: &str) -> Difference {
    let diff = TextDiff::from_lines(a, b);
    let mut changed_lines = BTreeSet::new();
    let mut inserts = false;
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Delete => {
                changed_lines.extend(change.old_index());
            }
            ChangeTag::Insert => inserts = true,
            ChangeTag::Equal => {}
        }
    }
    let lines = diff
        .unified_diff()
        .context_radius(2)
        .header("django", "other")
        .to_string();
    Difference {
        location: Location::Body,
        django: format!("{} lines", a.lines().count()),
        other: format!("{} lines", b.lines().count()),
        lines: Some(lines),
        changed_lines,
        inserts,
    }
}

/// Compares `other` with Django's answer, setting aside as noise whatever also differs between
/// `django` and `django_again` (two runs of the same Django view).
pub fn verdict(django: &Normalised, django_again: &Normalised, other: &Normalised) -> Verdict {
    let noise = compare(django, django_again);
    let (differences, also_noise): (Vec<_>, Vec<_>) = compare(django, other)
        .into_iter()
        .partition(|d| !is_noise(d, &noise));
    let mut noise = noise;
    for d in also_noise {
        if !noise.iter().any(|n| n.location == d.location) {
            noise.push(d);
        }
    }
    Verdict { differences, noise }
}

/// The verdict on `other` for one request: over the `normalise`d answers and, when the request
/// must be byte for byte, over their `normalise_exact` forms too (both differences reported).
pub fn judge(answers: [&Answer; 3], rules: &Rules, byte_for_byte: bool) -> Verdict {
    let [django, django_again, other] = answers;
    let loose = verdict(
        &normalise(django, rules),
        &normalise(django_again, rules),
        &normalise(other, rules),
    );
    if !byte_for_byte {
        return loose;
    }
    let exact = verdict(
        &normalise_exact(django, rules),
        &normalise_exact(django_again, rules),
        &normalise_exact(other, rules),
    );
    let mut judged = loose;
    for d in exact.differences {
        if !judged.differences.contains(&d) {
            judged.differences.push(d);
        }
    }
    for n in exact.noise {
        if !judged.noise.iter().any(|m| m.location == n.location) {
            judged.noise.push(n);
        }
    }
    judged
}

fn is_noise(d: &Difference, noise: &[Difference]) -> bool {
    noise.iter().any(|n| {
        if n.location != d.location {
            return false;
        }
        match (&n.lines, &d.lines) {
            // Text differs in both: noise only if every Django line the other side changed also
            // changed between the two Django runs, and it adds nothing of its own beyond that.
            (Some(_), Some(_)) => {
                d.changed_lines.is_subset(&n.changed_lines) && (!d.inserts || n.inserts)
            }
            _ => true,
        }
    })
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Status => write!(f, "status"),
            Location::Header(name) => write!(f, "header {name}"),
            Location::HeaderOrder => write!(f, "header order"),
            Location::JsonStyle => write!(f, "JSON encoding"),
            Location::Json(path) => write!(f, "JSON {path}"),
            Location::Body => write!(f, "body"),
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lines {
            Some(lines) => write!(f, "{}:\n{lines}", self.location),
            None => write!(
                f,
                "{}: django {}, got {}",
                self.location, self.django, self.other
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn json(status: u16, body: &str) -> Normalised {
        normalise(
            &Answer {
                status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: Bytes::from(body.to_owned()),
            },
            &Rules::default(),
        )
    }

    fn text(body: &str) -> Normalised {
        normalise(
            &Answer {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html".into())],
                body: Bytes::from(body.to_owned()),
            },
            &Rules::default(),
        )
    }

    fn shown(differences: &[Difference]) -> Vec<String> {
        differences.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn identical_answers_have_no_difference() {
        let a = json(200, r#"{"a": [1, 2]}"#);
        assert!(verdict(&a, &a, &a).matches());
    }

    #[test]
    fn each_json_difference_is_named_by_its_path() {
        let django = json(
            200,
            r#"{"count": 2, "results": [{"id": 1, "title": "A"}, {"id": 2, "title": "B"}]}"#,
        );
        let renamed = json(
            200,
            r#"{"count": 2, "results": [{"id": 1, "name": "A"}, {"id": 2, "title": "B"}]}"#,
        );
        assert_eq!(
            shown(&compare(&django, &renamed)),
            [
                "JSON .results[0].name: django (missing), got \"A\"",
                "JSON .results[0].title: django \"A\", got (missing)"
            ]
        );
        let reordered = json(
            200,
            r#"{"count": 2, "results": [{"id": 2, "title": "B"}, {"id": 1, "title": "A"}]}"#,
        );
        assert_eq!(
            compare(&django, &reordered).len(),
            4,
            "list order is a difference"
        );
        let float = json(
            200,
            r#"{"count": 2.0, "results": [{"id": 1, "title": "A"}, {"id": 2, "title": "B"}]}"#,
        );
        assert_eq!(
            shown(&compare(&django, &float)),
            ["JSON .count: django 2, got 2.0"]
        );
    }

    #[test]
    fn status_headers_and_encoding_are_reported() {
        let django = json(404, r#"{"error": "caf\u00e9"}"#);
        let mut other = json(200, r#"{"error":"café"}"#);
        other.headers.clear();
        assert_eq!(
            shown(&compare(&django, &other)),
            [
                "status: django 404, got 200",
                "header content-type: django application/json, got (missing)",
                "JSON encoding: django items separated by \", \", keys by \": \", non-ASCII escaped, got items separated by \", \", keys by \":\", non-ASCII as UTF-8",
            ]
        );
    }

    #[test]
    fn what_differs_between_two_django_runs_is_noise() {
        let django = json(200, r#"{"now": "10:00:01", "id": 1}"#);
        let again = json(200, r#"{"now": "10:00:02", "id": 1}"#);
        let rust = json(200, r#"{"now": "10:00:03", "id": 2}"#);
        let verdict = verdict(&django, &again, &rust);
        assert_eq!(shown(&verdict.differences), ["JSON .id: django 1, got 2"]);
        assert_eq!(
            shown(&verdict.noise),
            ["JSON .now: django \"10:00:01\", got \"10:00:02\""]
        );
    }

    #[test]
    fn text_noise_covers_only_the_lines_that_moved_between_django_runs() {
        let page = |stamp: &str, title: &str| {
            text(&format!(
                "<h1>{title}</h1>\n<p>at {stamp}</p>\n<footer>x</footer>\n"
            ))
        };
        let (django, again) = (page("1", "Home"), page("2", "Home"));
        assert!(verdict(&django, &again, &page("3", "Home")).matches());
        let wrong = verdict(&django, &again, &page("3", "Start"));
        assert_eq!(wrong.differences.len(), 1);
        let lines = wrong.differences[0].lines.as_deref().unwrap_or_default();
        assert!(
            lines.contains("-<h1>Home</h1>") && lines.contains("+<h1>Start</h1>"),
            "{lines}"
        );
    }

    #[test]
    fn a_byte_for_byte_request_also_fails_on_header_order_and_json_spacing() {
        let answer = |headers: &[(&str, &str)], body: &str| Answer {
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Bytes::from(body.to_owned()),
        };
        let django = answer(
            &[("Content-Type", "application/json"), ("Vary", "Cookie")],
            r#"{"a": 1}"#,
        );
        let reordered = answer(
            &[("Vary", "Cookie"), ("Content-Type", "application/json")],
            r#"{"a":1}"#,
        );
        let rules = Rules::default();
        let loose = judge([&django, &django, &reordered], &rules, false);
        assert_eq!(
            shown(&loose.differences),
            [
                "JSON encoding: django items separated by \", \", keys by \": \", non-ASCII escaped, got items separated by \", \", keys by \":\", non-ASCII escaped"
            ]
        );
        let exact = judge([&django, &django, &reordered], &rules, true);
        let at: Vec<&Location> = exact.differences.iter().map(|d| &d.location).collect();
        assert_eq!(
            at,
            [
                &Location::JsonStyle,
                &Location::HeaderOrder,
                &Location::Body
            ]
        );
        assert!(judge([&django, &django, &django], &rules, true).matches());
    }
}
