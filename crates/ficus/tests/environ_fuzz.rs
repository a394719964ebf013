//! Pins the request-to-environ mapping (`src/wsgi/environ.rs`) as a property, over real sockets
//! against the real binary serving `crates/ficus/tests/pyapps/edge.py`, whose default path
//! echoes the environ.
//!
//! Whatever method, percent-escaped path, query, header fields (underscored, repeated, mixed
//! case, obs-text) and body a client sends, the server answers with a well-formed HTTP/1.1 status
//! line. A request valid per RFC 9112 reaches the application, and the environ it sees says what
//! the bytes on the wire said: PATH_INFO is the percent-decoded path as latin-1, QUERY_STRING and
//! RAW_URI are the raw target as latin-1, each header is `HTTP_*` with repeated values joined,
//! and a name with `_` in it never becomes a key. A request the RFC forbids may instead be
//! refused with a 4xx; never a 5xx, never silence.
//!
//! Bounded for `make test`: 1,000 cases (a few seconds), or `PROPTEST_CASES`. A longer session:
//! `PROPTEST_CASES=20000 cargo test --release --test environ_fuzz -- --nocapture`
//! (`PROPTEST_RNG_SEED=N` replays a run).

mod support;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use support::{Server, parse_response};

/// Sent as Host on every request, so a failing case's bytes replay against any server.
const HOST: &str = "fuzz.test:8080";

/// Longer than any answer from a healthy server on loopback; reaching it means a hang.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How often (in requests) the property run checks the server still serves a plain request.
const HEALTH_EVERY: usize = 32;

/// `tchar` (RFC 9110 5.6.2): what methods and field names are made of.
const TCHAR: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `pchar` without `%` (RFC 3986 3.3): unreserved, sub-delims, `:` and `@`.
const PCHAR: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@";

/// What a query may hold besides percent escapes (RFC 3986 3.4).
const QUERY_CHAR: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?";

/// Bytes RFC 3986 forbids raw in a path; lenient parsers let some of them through.
const LOOSE_IN_PATH: &[u8] = b"\"{}|\\^`[]<>%";

/// Bytes a field value may not hold (RFC 9110 5.5), short of CR and LF, which end the line.
const CONTROL: &[u8] = b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f";

/// Bytes that cannot be in a field name, short of `:` (which would move the name's end).
const NOT_TCHAR: &[u8] = b" \"(),/;<=>?@[\\]{}\x7f";

/// Fields that change framing or the connection, which each case controls itself.
const FRAMING: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "keep-alive",
    "proxy-connection",
    "http2-settings",
];

/// Names that spoof, differ only in case or `-`/`_`, or get special joining: drawn often so
/// they meet each other in one request.
const NAME_POOL: &[&str] = &[
    "X-Forwarded-For",
    "X_Forwarded_For",
    "x-forwarded-for",
    "X-Forwarded-Proto",
    "Content-Type",
    "content-type",
    "Content_Type",
    "Content_Length",
    "Transfer_Encoding",
    "Cookie",
    "COOKIE",
    "X-Repeated",
    "X_Repeated",
    "x-REPEATED",
    "Accept",
    "User-Agent",
    "Authorization",
    "X-Real-IP",
    "Forwarded",
];

/// Paths `edge.py` answers with something other than the environ echo (ficus's own `/metrics`
/// and `/_ficus/`, answered to loopback peers, are kept out beside them).
const NOT_ECHOED: &[&str] = &[
    "/keep",
    "/late",
    "/write",
    "/exc-info",
    "/exc-info-late",
    "/stream",
    "/pid",
    "/slow",
    "/raise",
    "/not-iterable",
    "/str-chunk",
    "/start-twice",
    "/never-starts",
    "/lines",
    "/iterate",
];

#[derive(Clone, Debug)]
enum Body {
    Absent,
    Sized(Vec<u8>),
    Chunked(Vec<Vec<u8>>),
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Absent => Vec::new(),
            Body::Sized(bytes) => bytes.clone(),
            Body::Chunked(chunks) => chunks.concat(),
        }
    }
}

/// One request, kept as the pieces it is written from so the expectations can be computed from
/// them independently of the server.
#[derive(Clone)]
struct Case {
    method: String,
    path: Vec<u8>,
    query: Option<Vec<u8>>,
    /// Name and value as written after the colon (with any optional whitespace around it).
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    body: Body,
}

impl Case {
    fn target(&self) -> Vec<u8> {
        let mut target = self.path.clone();
        if let Some(query) = &self.query {
            target.push(b'?');
            target.extend_from_slice(query);
        }
        target
    }

    fn wire(&self) -> Vec<u8> {
        let mut wire = Vec::new();
        wire.extend_from_slice(self.method.as_bytes());
        wire.push(b' ');
        wire.extend_from_slice(&self.target());
        wire.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        wire.extend_from_slice(HOST.as_bytes());
        wire.extend_from_slice(b"\r\n");
        for (name, value) in &self.fields {
            wire.extend_from_slice(name);
            wire.push(b':');
            wire.extend_from_slice(value);
            wire.extend_from_slice(b"\r\n");
        }
        match &self.body {
            Body::Absent => {}
            Body::Sized(bytes) => {
                wire.extend_from_slice(format!("Content-Length: {}\r\n", bytes.len()).as_bytes())
            }
            Body::Chunked(_) => wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        wire.extend_from_slice(b"Connection: close\r\n\r\n");
        match &self.body {
            Body::Absent => {}
            Body::Sized(bytes) => wire.extend_from_slice(bytes),
            Body::Chunked(chunks) => {
                for chunk in chunks {
                    wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    wire.extend_from_slice(chunk);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            }
        }
        wire
    }

    /// Whether RFC 9112 (with RFC 3986 for the target) allows every byte of this request, and
    /// gunicorn takes it; the generator only ever bends the method, the target and the fields.
    fn is_valid(&self) -> bool {
        let path_ok = escapes_and(&self.path, |b| b == b'/' || PCHAR.contains(&b));
        let query_ok = self
            .query
            .as_deref()
            .is_none_or(|q| escapes_and(q, |b| QUERY_CHAR.contains(&b)));
        let fields_ok = self.fields.iter().all(|(name, value)| {
            !name.is_empty()
                && name.iter().all(|b| TCHAR.contains(b))
                && value
                    .iter()
                    .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)
        });
        // gunicorn 27 refuses more than RFC 9112 does: a method of fewer than 3 or more than 20
        // characters, or with lower case or `#`; a second Host (the wire has one) or
        // Content-Type.
        let method_ok = (3..=20).contains(&self.method.len())
            && !self
                .method
                .bytes()
                .any(|b| b.is_ascii_lowercase() || b == b'#');
        let named = |field: &[u8]| {
            self.fields
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(field))
                .count()
        };
        let singletons_ok = named(b"host") == 0 && named(b"content-type") <= 1;
        path_ok && query_ok && fields_ok && method_ok && singletons_ok
    }
}

/// Failing cases print as the bytes on the wire, ready to replay with `nc`.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.wire().escape_ascii())
    }
}

/// Every `%` starts a two-hex-digit escape, and every other byte passes `allowed`.
fn escapes_and(bytes: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if allowed(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Percent-decoding as RFC 3986 defines it; a `%` not followed by two hex digits stays as is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            // from_str_radix alone would take a sign: `%+A` is no escape.
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// PEP 3333's native strings: each byte one code point.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Optional whitespace around a field value is not part of it (RFC 9110 5.5).
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |e| e + 1);
    &value[start..end]
}

fn escape_pct(byte: u8, lower: bool) -> Vec<u8> {
    if lower {
        format!("%{byte:02x}").into_bytes()
    } else {
        format!("%{byte:02X}").into_bytes()
    }
}

fn non_ascii_char() -> impl Strategy<Value = Vec<u8>> {
    any::<char>()
        .prop_filter("ASCII is generated elsewhere", |c| !c.is_ascii())
        .prop_map(|c| c.to_string().into_bytes())
}

/// Something the RFC forbids raw in a path: a loose ASCII byte, a UTF-8 character, or a lone
/// byte above 0x7F.
fn loose_path_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => select(LOOSE_IN_PATH).prop_map(|b| vec![b]),
        2 => non_ascii_char(),
        1 => (0x80u8..=0xff).prop_map(|b| vec![b]),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(&["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"][..])
            .prop_map(str::to_owned),
        2 => "[A-Z]{1,10}",
        1 => vec(select(TCHAR), 1..8).prop_map(|b| b.iter().map(|&c| char::from(c)).collect()),
    ]
    // A HEAD answer has no body to read the environ from; CONNECT takes an authority, not a path.
    .prop_filter("HEAD and CONNECT", |m| m != "HEAD" && m != "CONNECT")
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        20 => select(PCHAR).prop_map(|b| vec![b]),
        8 => (any::<u8>(), any::<bool>()).prop_map(|(b, lower)| escape_pct(b, lower)),
        3 => select(&["%2F", "%2f", "%25", "%2e", "%2E", "%00", "%C3%A9", "%FF", ".", ".."][..])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    let segment = vec(piece, 0..6).prop_map(|pieces| pieces.concat());
    let clean = vec(segment, 1..5).prop_map(|segments| {
        segments
            .into_iter()
            .flat_map(|s| std::iter::once(b'/').chain(s))
            .collect::<Vec<u8>>()
    });
    let loose = prop_oneof![12 => Just(None), 1 => loose_path_bytes().prop_map(Some)];
    (clean, loose, any::<Index>())
        .prop_map(|(mut path, loose, at)| {
            if let Some(bytes) = loose {
                // After the leading slash, so the target stays in origin-form.
                let at = 1 + at.index(path.len());
                path.splice(at..at, bytes);
            }
            path
        })
        .prop_filter("answered by something other than the echo", |path| {
            let decoded = percent_decode(path);
            !NOT_ECHOED.iter().any(|p| decoded == p.as_bytes())
                && path.as_slice() != b"/metrics"
                && !path.starts_with(b"/_ficus")
        })
}

fn query() -> impl Strategy<Value = Option<Vec<u8>>> {
    let clean = prop_oneof![
        20 => select(QUERY_CHAR).prop_map(|b| vec![b]),
        4 => (any::<u8>(), any::<bool>()).prop_map(|(b, lower)| escape_pct(b, lower)),
    ];
    let wild = prop_oneof![
        10 => (0x21u8..=0x7e).prop_map(|b| vec![b]),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(b, lower)| escape_pct(b, lower)),
        1 => non_ascii_char(),
        1 => (0x80u8..=0xff).prop_map(|b| vec![b]),
    ];
    prop_oneof![
        3 => Just(None),
        6 => vec(clean, 0..16).prop_map(|p| Some(p.concat())),
        1 => vec(wild, 0..16).prop_map(|p| Some(p.concat())),
    ]
}

fn field_name() -> impl Strategy<Value = Vec<u8>> {
    let token = vec(select(TCHAR), 1..12);
    let words = ("[A-Za-z]{1,6}", select(&["-", "_"][..]), "[A-Za-z]{1,6}")
        .prop_map(|(a, sep, b)| format!("{a}{sep}{b}").into_bytes());
    let broken = (vec(select(TCHAR), 1..8), select(NOT_TCHAR), any::<Index>()).prop_map(
        |(mut name, bad, at)| {
            let at = at.index(name.len() + 1);
            name.insert(at, bad);
            name
        },
    );
    prop_oneof![
        12 => select(NAME_POOL).prop_map(|n| n.as_bytes().to_vec()),
        8 => token,
        6 => words,
        1 => broken,
    ]
    .prop_filter("framing fields are the case's own", |name| {
        let lower = name.to_ascii_lowercase();
        !FRAMING.iter().any(|f| lower == f.as_bytes())
    })
}

fn field_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        10 => 0x21u8..=0x7e,
        2 => Just(b' '),
        1 => Just(b'\t'),
        2 => 0x80u8..=0xff,
    ];
    let ows = || vec(select(&b" \t"[..]), 0..3);
    let clean = (ows(), vec(byte, 0..24), ows()).prop_map(|(lead, mut value, trail)| {
        value.splice(0..0, lead);
        value.extend(trail);
        value
    });
    let control = prop_oneof![60 => Just(None), 1 => select(CONTROL).prop_map(Some)];
    (clean, control, any::<Index>()).prop_map(|(mut value, control, at)| {
        if let Some(byte) = control {
            let at = at.index(value.len() + 1);
            value.insert(at, byte);
        }
        value
    })
}

/// 0 to 8 fields named from at most four names, so repeats are common.
fn fields() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    (
        vec(field_name(), 1..=4),
        vec((any::<Index>(), field_value()), 0..=8),
    )
        .prop_map(|(names, picks)| {
            picks
                .into_iter()
                .map(|(which, value)| (which.get(&names).clone(), value))
                .collect()
        })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        3 => Just(Body::Absent),
        3 => vec(any::<u8>(), 0..48).prop_map(Body::Sized),
        1 => vec(vec(any::<u8>(), 1..16), 1..4).prop_map(Body::Chunked),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (method(), path(), query(), fields(), body()).prop_map(|(method, path, query, fields, body)| {
        Case {
            method,
            path,
            query,
            fields,
            body,
        }
    })
}

/// The environ keys and values a case must produce, computed from its pieces alone.
struct Expected {
    strings: BTreeMap<&'static str, String>,
    /// Every `HTTP_*` key, with its joined value.
    http: BTreeMap<String, String>,
    content_type: Option<String>,
    content_length: Option<String>,
    /// X-Forwarded-For from the trusted loopback peer legitimately replaces REMOTE_ADDR.
    forwarded_for: bool,
    /// X-Forwarded-Proto and its kin, likewise, may replace the scheme.
    forwarded_scheme: bool,
}

fn expected(case: &Case) -> Expected {
    // A fragment is no part of a request-target: PATH_INFO and QUERY_STRING end before it,
    // and RAW_URI keeps it, as in gunicorn.
    let raw = case.target();
    let target = match raw.iter().position(|&b| b == b'#') {
        Some(hash) => raw[..hash].to_vec(),
        None => raw.clone(),
    };
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(at) => (&target[..at], &target[at + 1..]),
        None => (&target[..], &[][..]),
    };
    let mut strings = BTreeMap::new();
    strings.insert("REQUEST_METHOD", case.method.clone());
    strings.insert("SCRIPT_NAME", String::new());
    strings.insert("PATH_INFO", latin1(&percent_decode(path)));
    strings.insert("QUERY_STRING", latin1(query));
    strings.insert("RAW_URI", latin1(&raw));
    strings.insert("SERVER_PROTOCOL", "HTTP/1.1".to_owned());
    // The listening socket's address whatever Host says, as gunicorn sets it (its port is
    // pinned in edge_requests.rs, which knows the server's address).
    strings.insert("SERVER_NAME", "127.0.0.1".to_owned());
    strings.insert(
        "SERVER_SOFTWARE",
        format!("ficus/{}", env!("CARGO_PKG_VERSION")),
    );

    // Grouped by name, case-insensitively, in order of first appearance.
    let mut grouped: Vec<(String, Vec<String>)> = vec![
        ("host".to_owned(), vec![HOST.to_owned()]),
        ("connection".to_owned(), vec!["close".to_owned()]),
    ];
    for (name, value) in &case.fields {
        let name = latin1(name).to_ascii_lowercase();
        let value = latin1(trim_ows(value));
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    let mut http = BTreeMap::new();
    let mut content_type = None;
    for (name, values) in grouped {
        if name.contains('_') {
            continue;
        }
        let joined = values.join(if name == "cookie" { "; " } else { "," });
        if name == "content-type" {
            content_type = Some(joined);
        } else {
            http.insert(
                format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_")),
                joined,
            );
        }
    }
    let content_length = match &case.body {
        Body::Absent => None,
        Body::Sized(bytes) => Some(bytes.len().to_string()),
        Body::Chunked(chunks) => Some(chunks.iter().map(Vec::len).sum::<usize>().to_string()),
    };
    Expected {
        strings,
        forwarded_for: http.contains_key("HTTP_X_FORWARDED_FOR"),
        forwarded_scheme: [
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_FORWARDED_PROTOCOL",
            "HTTP_X_FORWARDED_SSL",
        ]
        .iter()
        .any(|k| http.contains_key(*k)),
        http,
        content_type,
        content_length,
    }
}

/// Writes the request on a fresh connection and reads until the server closes it.
fn send(addr: SocketAddr, wire: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|e| format!("read timeout: {e}"))?;
    // A server refusing the head may close before the rest is written; its answer still counts.
    let _ = stream.write_all(wire);
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => Ok(answer),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(format!(
            "no end of answer within {ANSWER_TIMEOUT:?}; got b\"{}\"",
            answer.escape_ascii()
        )),
        // A reset after a complete answer is a close that skipped the niceties.
        Err(_) if answer.windows(4).any(|w| w == b"\r\n\r\n") => Ok(answer),
        Err(e) => Err(format!(
            "connection ended without an answer ({e}); got b\"{}\"",
            answer.escape_ascii()
        )),
    }
}

/// The status of a well-formed `HTTP/1.1 NNN reason` line heading a complete response head.
fn status_of(answer: &[u8]) -> Option<u16> {
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let line_end = answer.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&answer[..line_end]).ok()?;
    let rest = line.strip_prefix("HTTP/1.1 ")?;
    let (code, _reason) = rest.split_at_checked(3)?;
    let well_formed = code.bytes().all(|b| b.is_ascii_digit())
        && (rest.len() == 3 || rest.as_bytes()[3] == b' ')
        && head_end >= line_end;
    well_formed.then(|| code.parse().ok()).flatten()
}

#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    valid: AtomicUsize,
    loose_accepted: AtomicUsize,
    loose_refused: AtomicUsize,
}

fn check(addr: SocketAddr, case: &Case, tally: &Tally) -> Result<(), TestCaseError> {
    tally.sent.fetch_add(1, Ordering::Relaxed);
    let valid = case.is_valid();
    let answer = send(addr, &case.wire()).map_err(TestCaseError::fail)?;
    let Some(status) = status_of(&answer) else {
        return Err(TestCaseError::fail(format!(
            "no well-formed HTTP/1.1 status line: b\"{}\"",
            answer.escape_ascii()
        )));
    };
    match (status, valid) {
        (200, _) => {
            let counter = if valid {
                &tally.valid
            } else {
                &tally.loose_accepted
            };
            counter.fetch_add(1, Ordering::Relaxed);
            environ_matches(case, &answer)
        }
        (400..=499, false) => {
            tally.loose_refused.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        _ => Err(TestCaseError::fail(format!(
            "a request {} RFC 9112 was answered {status}: b\"{}\"",
            if valid { "valid per" } else { "refusable by" },
            answer.escape_ascii()
        ))),
    }
}

fn environ_matches(case: &Case, answer: &[u8]) -> Result<(), TestCaseError> {
    let (response, _) = parse_response(answer, false);
    let env: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&response.body)
        .map_err(|e| TestCaseError::fail(format!("the echo is not JSON ({e})")))?;
    let get = |key: &str| env.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let want = expected(case);
    for (key, value) in &want.strings {
        prop_assert_eq!(get(key), Some(value.clone()), "{}", key);
    }
    let http: BTreeMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("HTTP_"))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    prop_assert_eq!(&http, &want.http, "the HTTP_* keys");
    prop_assert_eq!(get("CONTENT_TYPE"), want.content_type, "CONTENT_TYPE");
    prop_assert_eq!(get("CONTENT_LENGTH"), want.content_length, "CONTENT_LENGTH");
    prop_assert_eq!(
        get("body"),
        Some(latin1(&case.body.bytes())),
        "the body read"
    );
    if !want.forwarded_for {
        prop_assert_eq!(get("REMOTE_ADDR"), Some("127.0.0.1".to_owned()));
    }
    if !want.forwarded_scheme {
        prop_assert_eq!(get("wsgi.url_scheme"), Some("http".to_owned()));
    }
    Ok(())
}

fn still_serving(server: &Server) -> Result<(), TestCaseError> {
    let answer = send(
        server.addr,
        format!("GET /pid HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| TestCaseError::fail(format!("GET /pid after the case: {e}")))?;
    prop_assert_eq!(status_of(&answer), Some(200), "GET /pid after the case");
    Ok(())
}

/// The end of the server's log, where the story of a failure is.
fn log_tail(server: &Server) -> String {
    let log = server.log();
    let start = log.len().saturating_sub(4000);
    let start = (start..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(log.len());
    log[start..].to_owned()
}

#[test]
fn the_environ_says_what_the_wire_said_for_any_request_the_server_accepts() {
    let server = support::edge_server(&[], &[]);
    let base = Config::default();
    let config = Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000),
        // Failing cases are printed as bytes to replay; nothing is written into the tree.
        failure_persistence: None,
        // Each shrinking step is a request; a minute is plenty.
        max_shrink_time: if base.max_shrink_time == 0 {
            60_000
        } else {
            base.max_shrink_time
        },
        ..base
    };
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let tally = Tally::default();
    let started = Instant::now();
    let outcome = runner.run(&case(), |case| {
        check(server.addr, &case, &tally)?;
        if tally.sent.load(Ordering::Relaxed) % HEALTH_EVERY == 0 {
            still_serving(&server)?;
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}\n--- server log (end) ---\n{}", log_tail(&server));
    }
    if let Err(failure) = still_serving(&server) {
        panic!("{failure}\n--- server log (end) ---\n{}", log_tail(&server));
    }
    eprintln!(
        "environ_fuzz: {cases} cases, {} requests in {:.1?}: {} valid answered 200, {} outside the RFC answered 200, {} refused with a 4xx",
        tally.sent.load(Ordering::Relaxed),
        started.elapsed(),
        tally.valid.load(Ordering::Relaxed),
        tally.loose_accepted.load(Ordering::Relaxed),
        tally.loose_refused.load(Ordering::Relaxed),
    );
}

#[test]
fn an_underscored_forwarded_for_alone_neither_reaches_the_environ_nor_moves_remote_addr() {
    let server = support::edge_server(&[], &[]);
    let answer = send(
        server.addr,
        b"GET /who HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 1.2.3.4\r\nConnection: close\r\n\r\n",
    )
    .expect("an answer");
    let (response, _) = parse_response(&answer, false);
    assert_eq!(response.status, 200, "{}", log_tail(&server));
    let env = response.json();
    assert!(env.get("HTTP_X_FORWARDED_FOR").is_none(), "{env}");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
}
