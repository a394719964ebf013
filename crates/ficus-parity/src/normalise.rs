//! Normalising an answer before comparison: what differs between any two runs of the same view
//! is taken out (Date and Server headers, HTTP dates in Expires and cookie expiries, CSRF and
//! session tokens, the signed messages cookie, header order, JSON key order), then a route's own rules (headers to ignore,
//! JSON fields to redact, regex filters).
//!
//! It keeps everything else, including how JSON is written (separators, escaping), because a
//! ported view must write the same bytes a client parses.

use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use super::Answer;
use super::selector::Selector;

/// What a route adds to the normalisation (its entry in routes.toml).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Header names left out of the comparison (any case).
    pub ignore_headers: Vec<String>,
    /// JSON fields replaced by `"[redacted]"` on every side.
    pub redact: Vec<Selector>,
    /// Applied to text bodies and header values: every match becomes the replacement.
    pub filters: Vec<(Regex, String)>,
}

/// A body, in the form it is compared in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Body {
    /// No body.
    Empty,
    /// Parsed JSON with object keys sorted, and how the text was written.
    Json {
        /// The data.
        value: Value,
        /// How it was written.
        style: JsonStyle,
    },
    /// UTF-8 text, after the route's filters.
    Text {
        /// The text.
        text: String,
    },
    /// Compared by length and digest; shown as such.
    Binary {
        /// Bytes in the body.
        length: usize,
        /// Its digest, in hex.
        digest: String,
    },
}

/// How a JSON text was written, beyond its data: Python's `json.dumps` (Django's JsonResponse)
/// and serde_json differ exactly here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JsonStyle {
    /// `", "` after items (Python's default) rather than `","`.
    pub spaced_items: bool,
    /// `": "` after keys rather than `":"`.
    pub spaced_keys: bool,
    /// Non-ASCII written as `\uXXXX` (ensure_ascii) rather than as UTF-8.
    pub ascii_only: bool,
}

/// An answer ready to compare.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Normalised {
    /// The status code.
    pub status: u16,
    /// Lower-cased names sorted; values of one name keep their order.
    pub headers: Vec<(String, String)>,
    /// The body, in the form it is compared in.
    pub body: Body,
}

const ALWAYS_IGNORED: [&str; 4] = ["date", "server", "transfer-encoding", "connection"];

static HTTP_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2}[ -][A-Za-z]{3}[ -]\d{4} \d{2}:\d{2}:\d{2} GMT",
    )
    .expect("constant regex")
});
static TOKEN_COOKIE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(csrftoken|sessionid|messages)=[^;]+").expect("constant regex"));
static CSRF_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(name="csrfmiddlewaretoken" value=")[^"]*(")"#).expect("constant regex")
});

/// An answer with what always differs between runs set aside (dates, tokens, header order, JSON
/// key order) and the route's own rules applied.
pub fn normalise(answer: &Answer, rules: &Rules) -> Normalised {
    let (body, rewritten) = body(answer, rules);
    let ignored = |name: &str| {
        ALWAYS_IGNORED.contains(&name)
            || rules.ignore_headers.iter().any(|h| h.eq_ignore_ascii_case(name))
            // A redacted or filtered body has another length on each side by design.
            || (rewritten && name == "content-length")
    };
    let mut headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .filter(|(name, _)| !ignored(name))
        .map(|(name, value)| {
            let value = header_value(&name, value);
            (name, apply_filters(&rules.filters, value))
        })
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    Normalised {
        status: answer.status,
        headers,
        body,
    }
}

/// Headers set aside in the byte-for-byte form: only what a server stamps per answer (a client
/// parses `Transfer-Encoding` and `Connection`, so they are compared there).
const EXACT_IGNORED: [&str; 2] = ["date", "server"];

/// An answer in the byte-for-byte form: as `normalise`, except that header order is kept and
/// the body is its own bytes (JSON key order, separators and escaping included), with only the
/// run-to-run noise (dates, tokens, a form's masked CSRF token) and the route's `filters` and
/// `ignore_headers` applied. A route's `redact` selectors need the JSON parsed, so they do not
/// apply to the bytes: a JSON body they redact something in is compared as its data in its own
/// key order (the loose form holds its spacing and escaping).
///
/// Header names are compared lower-cased: a handler's answer in-process has hyper's lower-case
/// names, and the server writes them in the case Django would (checked on the wire by the
/// migration's own tests).
pub fn normalise_exact(answer: &Answer, rules: &Rules) -> Normalised {
    let (body, rewritten) = exact_body(answer, rules);
    let length = answer.body.len().to_string();
    let headers = answer
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .filter(|(name, _)| {
            !EXACT_IGNORED.contains(&name.as_str())
                && !rules
                    .ignore_headers
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name))
        })
        .map(|(name, value)| {
            // A filtered body has another length on each side by design; the length must still
            // be this body's own.
            let value = if rewritten && name == "content-length" && value.trim() == length {
                "<the body's length>".to_owned()
            } else {
                apply_filters(&rules.filters, header_value(&name, value))
            };
            (name, value)
        })
        .collect();
    Normalised {
        status: answer.status,
        headers,
        body,
    }
}

/// The body as text (any UTF-8 body) or as a digest, masked and filtered; whether that changed it.
fn exact_body(answer: &Answer, rules: &Rules) -> (Body, bool) {
    if answer.body.is_empty() {
        return (Body::Empty, false);
    }
    if !rules.redact.is_empty()
        && let Ok(mut value) = serde_json::from_slice::<Value>(&answer.body)
    {
        let redacted = redact(&mut value, rules);
        if redacted > 0 {
            filter_strings(&mut value, &rules.filters);
            return (
                Body::Text {
                    text: value.to_string(),
                },
                true,
            );
        }
    }
    match std::str::from_utf8(&answer.body) {
        Ok(raw) => {
            let text = CSRF_FIELD.replace_all(raw, "${1}<csrf>${2}").into_owned();
            let filtered = apply_filters(&rules.filters, text);
            let rewritten = filtered != raw;
            (Body::Text { text: filtered }, rewritten)
        }
        Err(_) => (digest(&answer.body), false),
    }
}

fn digest(body: &[u8]) -> Body {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    Body::Binary {
        length: body.len(),
        digest: format!("{:016x}", hasher.finish()),
    }
}

fn header_value(name: &str, value: &str) -> String {
    // Surrounding whitespace is not part of a field value (Django's WSGI handler writes each
    // Set-Cookie with a leading space, which servers and clients drop).
    let value = HTTP_DATE.replace_all(value.trim(), "<date>");
    if name == "set-cookie" {
        TOKEN_COOKIE.replace(&value, "$1=<token>").into_owned()
    } else {
        value.into_owned()
    }
}

fn apply_filters(filters: &[(Regex, String)], text: String) -> String {
    filters.iter().fold(text, |text, (pattern, replacement)| {
        pattern
            .replace_all(&text, replacement.as_str())
            .into_owned()
    })
}

/// The comparable body, and whether a rule rewrote it.
fn body(answer: &Answer, rules: &Rules) -> (Body, bool) {
    if answer.body.is_empty() {
        return (Body::Empty, false);
    }
    let content_type = answer
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = content_type.split(';').next().unwrap_or("").trim();
    // JSON that does not parse is compared as text, so the difference stays visible.
    if (mime == "application/json" || mime.ends_with("+json"))
        && let Ok(mut value) = serde_json::from_slice::<Value>(&answer.body)
    {
        let redacted = redact(&mut value, rules);
        let filtered = filter_strings(&mut value, &rules.filters);
        let style = json_style(&answer.body);
        return (
            Body::Json {
                value: sorted(value),
                style,
            },
            redacted + filtered > 0,
        );
    }
    let textual = mime.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded", "csv"]
            .iter()
            .any(|kind| mime.contains(kind));
    if textual || (mime.is_empty() && std::str::from_utf8(&answer.body).is_ok()) {
        let raw = String::from_utf8_lossy(&answer.body);
        let text = CSRF_FIELD.replace_all(&raw, "${1}<csrf>${2}").into_owned();
        let filtered = apply_filters(&rules.filters, text.clone());
        let rewritten = filtered != text;
        return (Body::Text { text: filtered }, rewritten);
    }
    (digest(&answer.body), false)
}

/// Replaces what the route's selectors pick with `"[redacted]"`; how many values it replaced.
fn redact(value: &mut Value, rules: &Rules) -> usize {
    let replacement = Value::String("[redacted]".into());
    rules
        .redact
        .iter()
        .map(|selector| selector.redact(value, &replacement))
        .sum()
}

/// Applies the filters to every string in a JSON value; returns how many strings changed.
fn filter_strings(value: &mut Value, filters: &[(Regex, String)]) -> usize {
    if filters.is_empty() {
        return 0;
    }
    match value {
        Value::String(text) => {
            let filtered = apply_filters(filters, text.clone());
            let changed = usize::from(filtered != *text);
            *text = filtered;
            changed
        }
        Value::Array(items) => items.iter_mut().map(|v| filter_strings(v, filters)).sum(),
        Value::Object(map) => map.values_mut().map(|v| filter_strings(v, filters)).sum(),
        _ => 0,
    }
}

/// JSON key order is not part of the comparison (Django's dicts and Rust's structs may list
/// fields in any order a client cannot tell apart).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Reads the separators and escaping of a JSON text, outside its strings.
fn json_style(raw: &[u8]) -> JsonStyle {
    let mut style = JsonStyle {
        spaced_items: true,
        spaced_keys: true,
        ascii_only: raw.is_ascii(),
    };
    let (mut in_string, mut escaped) = (false, false);
    let (mut seen_item, mut seen_key) = (false, false);
    for (i, &byte) in raw.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        let next = raw.get(i + 1).copied();
        match byte {
            b'"' => in_string = true,
            b',' if !seen_item => {
                seen_item = true;
                style.spaced_items = next == Some(b' ');
            }
            b':' if !seen_key => {
                seen_key = true;
                style.spaced_keys = next == Some(b' ');
            }
            _ => {}
        }
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn answer(headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn run_to_run_headers_and_order_are_taken_out() {
        let a = answer(
            &[
                ("Server", "WSGIServer/0.2"),
                ("Date", "Tue, 24 Nov 2026 01:00:00 GMT"),
                ("X-B", "2"),
                ("Expires", "Tue, 24 Nov 2026 01:00:00 GMT"),
                ("Content-Type", "text/plain"),
            ],
            "hi",
        );
        let b = answer(
            &[
                ("Content-Type", "text/plain"),
                ("Expires", "Tue, 24 Nov 2026 01:00:07 GMT"),
                ("X-B", "2"),
                ("Server", "ficus"),
            ],
            "hi",
        );
        let rules = Rules::default();
        assert_eq!(normalise(&a, &rules), normalise(&b, &rules));
        assert_eq!(
            normalise(&a, &rules).headers,
            [
                ("content-type".to_owned(), "text/plain".to_owned()),
                ("expires".to_owned(), "<date>".to_owned()),
                ("x-b".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn csrf_and_session_tokens_become_placeholders() {
        let page = |token: &str, session: &str| {
            answer(
                &[
                    ("Content-Type", "text/html; charset=utf-8"),
                    (
                        "Set-Cookie",
                        &format!(
                            "csrftoken={token}; expires=Tue, 23 Nov 2027 01:00:00 GMT; Max-Age=31449600; Path=/"
                        ),
                    ),
                    (
                        "Set-Cookie",
                        &format!("sessionid={session}; HttpOnly; Path=/"),
                    ),
                ],
                &format!(r#"<input type="hidden" name="csrfmiddlewaretoken" value="{token}x">"#),
            )
        };
        let rules = Rules::default();
        let one = normalise(&page("AAA", "s1"), &rules);
        assert_eq!(one, normalise(&page("BBBB", "s2"), &rules));
        assert_eq!(
            one.headers[1].1,
            "csrftoken=<token>; expires=<date>; Max-Age=31449600; Path=/"
        );
    }

    #[test]
    fn json_key_order_is_taken_out_but_data_and_style_are_kept() {
        let json = [("Content-Type", "application/json")];
        let rules = Rules::default();
        let django = normalise(&answer(&json, r#"{"b": 1, "a": "caf\u00e9"}"#), &rules);
        assert_eq!(
            django,
            normalise(&answer(&json, r#"{"a": "caf\u00e9", "b": 1}"#), &rules)
        );
        let Body::Json { value, style } = &django.body else {
            panic!("not JSON: {django:?}");
        };
        assert_eq!(value, &json!({"a": "café", "b": 1}));
        assert_eq!(
            *style,
            JsonStyle {
                spaced_items: true,
                spaced_keys: true,
                ascii_only: true
            }
        );
        let serde = normalise(&answer(&json, r#"{"a":"café","b":1}"#), &rules);
        assert_ne!(django, serde, "compact, unescaped JSON is another answer");
        assert_ne!(
            django,
            normalise(&answer(&json, r#"{"a": "café", "b": 1.0}"#), &rules)
        );
    }

    #[test]
    fn route_rules_redact_filter_and_ignore() {
        let rules = Rules {
            ignore_headers: vec!["X-Request-Id".into()],
            redact: vec![Selector::parse(".at").unwrap()],
            filters: vec![(Regex::new(r"id=\d+").unwrap(), "id=<n>".into())],
        };
        let one = answer(
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", "27"),
                ("X-Request-Id", "1"),
            ],
            r#"{"at": "2026-01-01", "n": 1}"#,
        );
        let two = answer(
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", "33"),
                ("X-Request-Id", "2"),
            ],
            r#"{"at": "2026-01-01T10:00", "n": 1}"#,
        );
        assert_eq!(normalise(&one, &rules), normalise(&two, &rules));
        let signed = |url: &str| {
            answer(
                &[("Content-Type", "application/json")],
                &format!(r#"{{"url": "{url}"}}"#),
            )
        };
        assert_eq!(
            normalise(&signed("https://x/?id=1"), &rules),
            normalise(&signed("https://x/?id=22"), &rules),
            "filters reach strings inside JSON"
        );
        let text = |body: &str| answer(&[("Content-Type", "text/plain")], body);
        assert_eq!(
            normalise(&text("see id=12"), &rules),
            normalise(&text("see id=345"), &rules)
        );
    }

    #[test]
    fn binary_bodies_compare_by_length_and_digest() {
        let png = |body: &str| answer(&[("Content-Type", "image/png")], body);
        let rules = Rules::default();
        assert_eq!(
            normalise(&png("\u{1}abc"), &rules),
            normalise(&png("\u{1}abc"), &rules)
        );
        assert_ne!(
            normalise(&png("\u{1}abc"), &rules),
            normalise(&png("\u{1}abd"), &rules)
        );
    }

    #[test]
    fn the_byte_for_byte_form_keeps_header_order_and_the_bodys_bytes() {
        let rules = Rules::default();
        let json = |headers: &[(&str, &str)], body: &str| answer(headers, body);
        let django = json(
            &[("Content-Type", "application/json"), ("X-A", "1")],
            r#"{"b": 1, "a": 2}"#,
        );
        let reordered = json(
            &[("X-A", "1"), ("Content-Type", "application/json")],
            r#"{"b": 1, "a": 2}"#,
        );
        let other_keys = json(
            &[("Content-Type", "application/json"), ("X-A", "1")],
            r#"{"a": 2, "b": 1}"#,
        );
        for other in [&reordered, &other_keys] {
            assert_eq!(normalise(&django, &rules), normalise(other, &rules));
            assert_ne!(
                normalise_exact(&django, &rules),
                normalise_exact(other, &rules)
            );
        }
    }

    #[test]
    fn the_byte_for_byte_form_still_sets_aside_run_to_run_noise() {
        let page = |date: &str, token: &str| {
            answer(
                &[
                    ("Date", date),
                    ("Content-Type", "text/html"),
                    ("Expires", date),
                    ("Set-Cookie", &format!("csrftoken={token}; Path=/")),
                ],
                &format!(r#"<input name="csrfmiddlewaretoken" value="{token}">"#),
            )
        };
        let rules = Rules::default();
        assert_eq!(
            normalise_exact(&page("Tue, 24 Nov 2026 01:00:00 GMT", "abc"), &rules),
            normalise_exact(&page("Tue, 24 Nov 2026 01:00:09 GMT", "xyz"), &rules)
        );
    }

    #[test]
    fn a_filtered_body_keeps_its_own_length_in_the_byte_for_byte_form() {
        let rules = Rules {
            filters: vec![(Regex::new("id=[0-9]+").unwrap(), "id=<n>".into())],
            ..Rules::default()
        };
        let text = |body: &str, length: &str| {
            answer(
                &[("Content-Type", "text/plain"), ("Content-Length", length)],
                body,
            )
        };
        assert_eq!(
            normalise_exact(&text("id=1", "4"), &rules),
            normalise_exact(&text("id=22", "5"), &rules)
        );
        assert_ne!(
            normalise_exact(&text("id=1", "4"), &rules),
            normalise_exact(&text("id=22", "4"), &rules),
            "a length that is not the body's own is a difference"
        );
    }

    #[test]
    fn a_redacted_json_body_keeps_its_key_order_in_the_byte_for_byte_form() {
        let rules = Rules {
            redact: vec![Selector::parse(".at").unwrap()],
            ..Rules::default()
        };
        let json = |body: &str| answer(&[("Content-Type", "application/json")], body);
        assert_eq!(
            normalise_exact(&json(r#"{"id": 1, "at": "01:00"}"#), &rules),
            normalise_exact(&json(r#"{"id": 1, "at": "01:07"}"#), &rules)
        );
        assert_ne!(
            normalise_exact(&json(r#"{"id": 1, "at": "01:00"}"#), &rules),
            normalise_exact(&json(r#"{"at": "01:00", "id": 1}"#), &rules)
        );
    }
}
