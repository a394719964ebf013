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
        let replacement = Value::String("[redacted]".into());
        let redacted: usize = rules
            .redact
            .iter()
            .map(|selector| selector.redact(&mut value, &replacement))
            .sum();
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
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    answer.body.hash(&mut hasher);
    (
        Body::Binary {
            length: answer.body.len(),
            digest: format!("{:016x}", hasher.finish()),
        },
        false,
    )
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
}
