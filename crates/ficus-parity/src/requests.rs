//! The requests parity is checked with: request lists (TOML, written beside a route's tests) and
//! recorded traffic (JSON Lines, one request a line, bodies in base64, as shadow mode records).
//!
//! It reads and writes the formats; it sends nothing.

use std::path::Path;

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One request to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its name in the list (the snapshot's name).
    pub name: String,
    /// The method, as `GET`.
    pub method: String,
    /// The path as on the wire (percent-encoded), without the query.
    pub path: String,
    /// The query string, without the `?`.
    pub query: String,
    /// Headers to send, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// The user the request is made as: the runner logs them in on each side's copy of the
    /// database (a session row, as Django's `login()` leaves it) and sends its cookie.
    pub user: Option<String>,
    /// Whether the answer must be Django's byte for byte: header order and the body's bytes
    /// (JSON key order and spacing included), with only run-to-run noise and the route's own
    /// `filters` and `ignore_headers` set aside.
    pub byte_for_byte: bool,
}

impl Request {
    /// `path?query`, the request target.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// Why a request list or a recorded-traffic file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// What reading it gave.
        source: std::io::Error,
    },
    /// An entry is not a request.
    #[error("{path} line {line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The line of the entry at fault.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    /// The default of every entry's `byte_for_byte`.
    #[serde(default)]
    byte_for_byte: bool,
    #[serde(default, rename = "request")]
    requests: Vec<toml::Spanned<ListEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListEntry {
    name: String,
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    headers: toml::Table,
    body: Option<String>,
    body_base64: Option<String>,
    #[serde(default)]
    user: Option<String>,
    byte_for_byte: Option<bool>,
}

fn get() -> String {
    "GET".to_owned()
}

/// One line of recorded traffic. Other fields are allowed (the shadow log's lines carry the
/// comparison beside the request).
#[derive(Debug, Serialize, Deserialize)]
pub struct Recorded {
    /// A name for the request, when it has one.
    #[serde(default)]
    pub name: Option<String>,
    /// The method.
    pub method: String,
    /// The path as on the wire, without the query.
    pub path: String,
    /// The query string, without the `?`.
    #[serde(default)]
    pub query: String,
    /// Headers, in the order they came (redacted ones already replaced).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Base64 of the body bytes.
    #[serde(default)]
    pub body: String,
}

fn decode(text: &str) -> Result<Bytes, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map(Bytes::from)
        .map_err(|e| format!("the body is not base64: {e}"))
}

/// Reads a request list (`.toml`) or recorded traffic (`.jsonl`, `.ndjson`, `.json`).
pub fn read(path: &Path) -> Result<Vec<Request>, RequestsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RequestsError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    if is_toml {
        parse_list(&text).map_err(|(line, message)| RequestsError::Invalid {
            path: shown,
            line,
            message,
        })
    } else {
        parse_recorded(&text).map_err(|(line, message)| RequestsError::Invalid {
            path: shown,
            line,
            message,
        })
    }
}

/// Parses a TOML request list; errors carry their line.
pub fn parse_list(text: &str) -> Result<Vec<Request>, (usize, String)> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let file: ListFile = toml::from_str(text).map_err(|e| {
        (
            e.span().map_or(1, |s| line_of(s.start)),
            e.message().trim_end().to_owned(),
        )
    })?;
    file.requests
        .into_iter()
        .map(|spanned| {
            let line = line_of(spanned.span().start);
            let entry = spanned.into_inner();
            let body = match (entry.body, entry.body_base64) {
                (Some(_), Some(_)) => {
                    return Err((line, "give `body` or `body_base64`, not both".to_owned()));
                }
                (Some(text), None) => Bytes::from(text),
                (None, Some(encoded)) => decode(&encoded).map_err(|m| (line, m))?,
                (None, None) => Bytes::new(),
            };
            let headers = entry
                .headers
                .into_iter()
                .map(|(name, value)| match value {
                    toml::Value::String(v) => Ok((name, v)),
                    _ => Err((line, format!("header `{name}` must be a string"))),
                })
                .collect::<Result<_, _>>()?;
            check_path(&entry.path).map_err(|m| (line, m))?;
            Ok(Request {
                name: entry.name,
                method: entry.method.to_ascii_uppercase(),
                path: entry.path,
                query: entry.query,
                headers,
                body,
                user: entry.user,
                byte_for_byte: entry.byte_for_byte.unwrap_or(file.byte_for_byte),
            })
        })
        .collect()
}

/// Parses JSON Lines of recorded requests; blank lines are skipped.
pub fn parse_recorded(text: &str) -> Result<Vec<Request>, (usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let line_number = index + 1;
            let recorded: Recorded =
                serde_json::from_str(line).map_err(|e| (line_number, e.to_string()))?;
            check_path(&recorded.path).map_err(|m| (line_number, m))?;
            Ok(Request {
                name: recorded
                    .name
                    .unwrap_or_else(|| format!("line-{line_number}")),
                method: recorded.method.to_ascii_uppercase(),
                path: recorded.path,
                query: recorded.query,
                headers: recorded.headers,
                body: decode(&recorded.body).map_err(|m| (line_number, m))?,
                user: None,
                byte_for_byte: false,
            })
        })
        .collect()
}

fn check_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') && !path.contains(['?', ' ', '#']) {
        Ok(())
    } else {
        Err(format!(
            "`{path}` is not a request path (it starts with / and has no query; put that in `query`)"
        ))
    }
}

/// A request as a request-list entry, ready to paste into a route's TOML list.
pub fn to_list_entry(request: &Request) -> String {
    let mut out = String::from("[[request]]\n");
    let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
    out.push_str(&format!("name = {}\n", quoted(&request.name)));
    out.push_str(&format!("method = {}\n", quoted(&request.method)));
    out.push_str(&format!("path = {}\n", quoted(&request.path)));
    if !request.query.is_empty() {
        out.push_str(&format!("query = {}\n", quoted(&request.query)));
    }
    if !request.headers.is_empty() {
        let pairs: Vec<String> = request
            .headers
            .iter()
            .map(|(n, v)| format!("{} = {}", quoted(n), quoted(v)))
            .collect();
        out.push_str(&format!("headers = {{ {} }}\n", pairs.join(", ")));
    }
    if request.byte_for_byte {
        out.push_str("byte_for_byte = true\n");
    }
    if !request.body.is_empty() {
        match std::str::from_utf8(&request.body) {
            Ok(text) => out.push_str(&format!("body = {}\n", quoted(text))),
            Err(_) => out.push_str(&format!(
                "body_base64 = {}\n",
                quoted(&base64::engine::general_purpose::STANDARD.encode(&request.body))
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"
[[request]]
name = "existing"
path = "/api/articles/1/"

[[request]]
name = "summarize"
method = "post"
path = "/api/summarize/"
headers = { "Content-Type" = "application/json" }
body = '{"text": "café"}'
"#;

    #[test]
    fn request_list_defaults_to_get_and_keeps_bodies() {
        let list = parse_list(LIST).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].method.as_str(), list[0].target()),
            ("GET", "/api/articles/1/".to_owned())
        );
        assert_eq!(list[1].method, "POST");
        assert_eq!(list[1].body, Bytes::from("{\"text\": \"café\"}"));
        assert_eq!(
            list[1].headers,
            [("Content-Type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn a_list_entry_reads_back_as_the_same_request() {
        for request in parse_list(LIST).unwrap() {
            let again = parse_list(&to_list_entry(&request)).unwrap();
            assert_eq!(again, [request]);
        }
    }

    #[test]
    fn byte_for_byte_is_the_file_default_unless_an_entry_says_otherwise() {
        let plain = parse_list(LIST).unwrap();
        assert!(plain.iter().all(|r| !r.byte_for_byte));
        let strict = parse_list(&format!(
            "byte_for_byte = true\n{LIST}\n[[request]]\nname = \"loose\"\npath = \"/\"\nbyte_for_byte = false\n"
        ))
        .unwrap();
        let flags: Vec<bool> = strict.iter().map(|r| r.byte_for_byte).collect();
        assert_eq!(flags, [true, true, false]);
        let again = parse_list(&to_list_entry(&strict[0])).unwrap();
        assert_eq!(again, [strict[0].clone()]);
    }

    #[test]
    fn recorded_lines_decode_base64_bodies() {
        let line = r#"{"method": "POST", "path": "/api/summarize/", "query": "", "headers": [["Content-Type", "application/json"]], "body": "eyJ0ZXh0IjogImEifQ=="}"#;
        let recorded = parse_recorded(&format!("\n{line}\n")).unwrap();
        assert_eq!(recorded[0].name, "line-2");
        assert_eq!(recorded[0].body, Bytes::from("{\"text\": \"a\"}"));
    }

    #[test]
    fn mistakes_name_their_line() {
        assert_eq!(
            parse_list("[[request]]\nname = \"x\"\npath = \"/a?b=1\"\n")
                .unwrap_err()
                .0,
            1
        );
        let (line, message) =
            parse_list("[[request]]\nname = \"x\"\npath = \"/a\"\nbody = 3\n").unwrap_err();
        assert_eq!(line, 4, "{message}");
        assert_eq!(
            parse_recorded("{\"method\": \"GET\", \"path\": \"/\"}\nnot json\n")
                .unwrap_err()
                .0,
            2
        );
    }
}
