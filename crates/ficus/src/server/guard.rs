//! Watches HTTP/1 request heads as they arrive on the socket and judges what hyper lets through
//! but gunicorn refuses: a request line over `--limit-request-line` (414), too many header fields
//! or one too long (431), Transfer-Encoding together with Content-Length, repeated
//! Content-Length, and head lines ending in a bare LF (400: a proxy in front may split such a
//! head differently, the classic request-smuggling shape).
//!
//! Inside a chunked body it refuses what gunicorn refuses and hyper takes: a chunk size followed
//! by whitespace but no extension (`0 \r\n`), and trailer fields RFC 9110 forbids in trailers.
//!
//! And the other way round: a target with bytes gunicorn takes and hyper's URI parser refuses
//! (a `"` in the query) reaches hyper with those bytes percent-encoded, and the verdict keeps the
//! target as sent for RAW_URI, QUERY_STRING and the access log.
//!
//! It reads along line by line with bounded memory, follows body framing to find the next head on
//! a keep-alive connection, and leaves one verdict per head in a queue that the request handler
//! pops in order (hyper serves HTTP/1 requests of a connection one after another). It changes
//! bytes only as said above: a request line is held back until it is whole (at most
//! `--limit-request-line` bytes) so that it can still be rewritten, and in a chunked body it
//! refuses, the guard spoils the next byte hyper's decoder needs, since hyper is reading that body
//! already, and leaves the reason for the 400. On anything it does not understand (HTTP/2,
//! upgrades, framing hyper itself will refuse) it stops judging and lets hyper decide.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::linger::Close;

/// The limits a request head is held to, in gunicorn's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    pub request_line: usize,
    pub fields: usize,
    pub field_size: usize,
}

impl HeadLimits {
    /// The limits as gunicorn reads its `--limit-request-*` settings: a request line of 0 is
    /// unlimited (gunicorn's parser then stops at 1 MiB) and one over 8190 is 8190; 0 fields or
    /// more than 32768 is 32768; a field size of 0 is the default 8190, not unlimited.
    pub(crate) fn gunicorn(request_line: usize, fields: usize, field_size: usize) -> Self {
        const MAX_REQUEST_LINE: usize = 8190;
        const MAX_HEADERS: usize = 32768;
        const DEFAULT_FIELD_SIZE: usize = 8190;
        Self {
            request_line: match request_line {
                0 => 1024 * 1024,
                n => n.min(MAX_REQUEST_LINE),
            },
            fields: match fields {
                0 => MAX_HEADERS,
                n => n.min(MAX_HEADERS),
            },
            field_size: match field_size {
                0 => DEFAULT_FIELD_SIZE,
                n => n,
            },
        }
    }

    /// The most a whole head may hold, as gunicorn bounds its header buffer.
    pub(crate) fn head_bytes(&self) -> usize {
        self.request_line + 2 + self.fields * (self.field_size + 2) + 4
    }
}

/// Why a request is refused before it reaches the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    RequestLineTooLong {
        length: usize,
        limit: usize,
    },
    TooManyFields {
        limit: usize,
    },
    FieldTooLarge {
        limit: usize,
    },
    ContentLengthWithChunked,
    RepeatedContentLength,
    BareLineFeed,
    /// Not a method gunicorn takes: an RFC 9110 token of 3 to 20 characters, no lower case.
    InvalidMethod,
    /// A target with a byte outside printable ASCII, `*` with a method other than OPTIONS, or
    /// an authority (`host:port`) with a method other than CONNECT.
    InvalidTarget,
    /// A field that may appear once (Host, Content-Type) appears twice.
    RepeatedSingleton(&'static str),
    /// More than the one empty line RFC 9112 lets a client send before a request.
    BlankLines,
    /// A chunk-size line gunicorn refuses: not hex digits, or whitespace not followed by an
    /// extension (`0 \r\n`).
    InvalidChunkSize,
    /// A trailer field RFC 9110 section 6.5.1 forbids in trailers (framing, routing, auth).
    ForbiddenTrailer(String),
}

impl Rejection {
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            Self::RequestLineTooLong { .. } => http::StatusCode::URI_TOO_LONG,
            Self::TooManyFields { .. } | Self::FieldTooLarge { .. } => {
                http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::ContentLengthWithChunked
            | Self::RepeatedContentLength
            | Self::BareLineFeed
            | Self::InvalidMethod
            | Self::InvalidTarget
            | Self::RepeatedSingleton(_)
            | Self::BlankLines
            | Self::InvalidChunkSize
            | Self::ForbiddenTrailer(_) => http::StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn reason(&self) -> String {
        match self {
            Self::RequestLineTooLong { length, limit } => {
                format!("Request Line is too large ({length} > {limit})")
            }
            Self::TooManyFields { limit } => format!("More than {limit} header fields"),
            Self::FieldTooLarge { limit } => format!("A header field is larger than {limit} bytes"),
            Self::ContentLengthWithChunked => {
                "Content-Length together with Transfer-Encoding".to_owned()
            }
            Self::RepeatedContentLength => "More than one Content-Length".to_owned(),
            Self::BareLineFeed => "A request head line ends in LF without CR".to_owned(),
            Self::InvalidMethod => "Invalid HTTP method".to_owned(),
            Self::InvalidTarget => "Invalid request target".to_owned(),
            Self::RepeatedSingleton(name) => format!("More than one {name}"),
            Self::BlankLines => "More than one empty line before the request line".to_owned(),
            Self::InvalidChunkSize => "Invalid chunk size".to_owned(),
            Self::ForbiddenTrailer(name) => format!("{name} is not allowed in trailers"),
        }
    }
}

/// What the guard made of one request head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Verdict {
    #[default]
    Pass,
    Refused(Rejection),
    /// Taken, with a target hyper does not keep as sent: bytes gunicorn takes and hyper's URI
    /// parser refuses (a `"` in the query), which hyper got percent-encoded, or a fragment,
    /// which hyper drops. The application gets the target as sent (RAW_URI).
    Rewritten(RawTarget),
}

/// A request target as the client sent it, when hyper holds another (encoded, or cut at `#`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawTarget(pub String);

/// One verdict per request head seen on a connection, oldest first, and what was refused
/// inside a chunked body.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verdicts {
    heads: Arc<Mutex<VecDeque<Verdict>>>,
    body: Arc<Mutex<Option<Rejection>>>,
}

impl Verdicts {
    fn push(&self, verdict: Verdict) {
        if let Ok(mut queue) = self.heads.lock() {
            queue.push_back(verdict);
        }
    }

    /// The verdict on the request hyper hands over next.
    pub(crate) fn pop(&self) -> Verdict {
        self.heads
            .lock()
            .ok()
            .and_then(|mut queue| queue.pop_front())
            .unwrap_or_default()
    }

    fn refuse_body(&self, fault: Rejection) {
        if let Ok(mut body) = self.body.lock() {
            *body = Some(fault);
        }
    }

    /// Why hyper failed to read the current body, when the guard made it fail.
    pub(crate) fn body_fault(&self) -> Option<Rejection> {
        self.body.lock().ok()?.take()
    }
}

#[derive(Debug)]
enum State {
    /// Reading a head; `line` holds the current line only.
    Head(HeadScan),
    /// Skipping a body of known length.
    Body(u64),
    Chunked(ChunkState),
    /// No longer judging: HTTP/2, an upgrade, a refused request, or framing hyper will refuse.
    Passthrough,
}

#[derive(Debug, Default)]
struct HeadScan {
    line: Vec<u8>,
    /// Bytes of the current line seen so far (it may be longer than what `line` keeps).
    line_len: usize,
    seen_request_line: bool,
    blank_lines: usize,
    is_connect: bool,
    hosts: usize,
    content_types: usize,
    fields: usize,
    content_lengths: usize,
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    upgrade: bool,
    raw_target: Option<RawTarget>,
}

#[derive(Debug)]
enum ChunkState {
    Size(Vec<u8>),
    Data(u64),
    DataEnd(u8),
    Trailer(TrailerLine),
}

/// The trailer line being read: its length so far, and its field name until the colon.
#[derive(Debug, Default)]
struct TrailerLine {
    len: usize,
    name: Vec<u8>,
    name_done: bool,
}

/// RFC 9110 section 6.5.1: fields a sender must not put in trailers, as gunicorn lists them.
const FORBIDDEN_TRAILERS: [&str; 6] = [
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Trailer",
    "Authorization",
    "TE",
];

pub(crate) struct Guarded<T: Close> {
    /// The socket; taken only when the guard is dropped, to be closed (server/linger.rs).
    inner: Option<T>,
    state: State,
    limits: HeadLimits,
    verdicts: Verdicts,
    /// The start of a request line read but not yet given to hyper, which may need rewriting.
    held: Vec<u8>,
    /// Bytes for hyper that replace what was read (a rewritten request line), and how many of
    /// them hyper has taken.
    ready: Vec<u8>,
    ready_at: usize,
    /// When held bytes go to hyper as they are: a client that stops mid request line must still
    /// meet hyper's header timeout, which only starts once hyper has bytes.
    release: Option<Pin<Box<tokio::time::Sleep>>>,
    /// What `observe` wants changed in the bytes it was given.
    edits: Vec<Edit>,
    hold_from: Option<usize>,
    /// How long a new connection may stay silent, and its timer (started at the first read):
    /// hyper's header timeout starts only with a first byte, so a client that connects and
    /// sends nothing would otherwise hold its connection for good. gunicorn closes it after
    /// its keep-alive time.
    silent_at_most: Option<Duration>,
    silence: Option<Pin<Box<tokio::time::Sleep>>>,
    heard: bool,
}

/// A rewritten request target: where it is in the bytes observed, and what hyper gets instead.
#[derive(Debug)]
struct Edit {
    range: std::ops::Range<usize>,
    with: Vec<u8>,
}

/// What hyper gets of bytes just read.
#[derive(Debug)]
enum Admit {
    AsRead,
    /// These instead (possibly nothing yet: a request line still arriving).
    Instead(Vec<u8>),
}

impl<T: Close> Drop for Guarded<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.close(self.mid_request());
        }
    }
}

impl<T: Close> Guarded<T> {
    pub(crate) fn new(inner: T, limits: HeadLimits, verdicts: Verdicts) -> Self {
        Self {
            inner: Some(inner),
            state: State::Head(HeadScan::default()),
            limits,
            verdicts,
            held: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            release: None,
            edits: Vec::new(),
            hold_from: None,
            silent_at_most: None,
            silence: None,
            heard: false,
        }
    }

    /// Closes the connection when its first byte has not come within `limit`.
    pub(crate) fn first_byte_within(mut self, limit: Duration) -> Self {
        self.silent_at_most = Some(limit);
        self
    }

    /// Whether the connection ends in the middle of a request: a head or body not read to its
    /// end, or a request refused (the client may still be sending it).
    fn mid_request(&self) -> bool {
        !self.held.is_empty()
            || match &self.state {
                State::Head(scan) => scan.seen_request_line || scan.line_len > 0,
                State::Body(left) => *left > 0,
                State::Chunked(_) | State::Passthrough => true,
            }
    }

    /// Judges bytes just read from the socket and says what hyper gets of them: as read (the
    /// usual case, no copy), or rewritten, or nothing yet while a request line is incomplete.
    fn admit(&mut self, fresh: &mut [u8]) -> Admit {
        let mut joined;
        let was_held = !self.held.is_empty();
        let data: &mut [u8] = if !was_held {
            fresh
        } else {
            joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(fresh);
            &mut joined
        };
        if let Err((at, fault)) = self.observe(data) {
            // hyper is already reading this body for a handler, so the refusal is hyper's own:
            // a NUL where it expects the chunk-size line's LF or a trailer's colon fails its
            // decoder (a failed read would drop the connection without an answer). The reason
            // waits for whoever answers the failed body.
            if let Some(byte) = data.get_mut(at) {
                *byte = 0;
            }
            self.verdicts.refuse_body(fault);
        }
        let edits = std::mem::take(&mut self.edits);
        let hold_from = self.hold_from.take();
        if edits.is_empty() && hold_from.is_none() && !was_held {
            return Admit::AsRead;
        }
        let end = hold_from.unwrap_or(data.len());
        let mut out = Vec::with_capacity(end + 16);
        let mut from = 0;
        for edit in edits {
            out.extend_from_slice(&data[from..edit.range.start]);
            out.extend_from_slice(&edit.with);
            from = edit.range.end;
        }
        out.extend_from_slice(&data[from..end]);
        self.held = data[end..].to_vec();
        Admit::Instead(out)
    }

    /// Reads along. An error is a refusal inside a chunked body, which hyper is already
    /// reading for the handler, with the offset of the byte that hyper must be made to refuse.
    fn observe(&mut self, mut bytes: &[u8]) -> Result<(), (usize, Rejection)> {
        let whole = bytes.len();
        while !bytes.is_empty() {
            match &mut self.state {
                State::Passthrough => return Ok(()),
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::Head(HeadScan::default());
                    }
                }
                State::Chunked(chunk) => {
                    let (used, next) = match step_chunked(chunk, bytes) {
                        Ok(step) => step,
                        Err((at, fault)) => {
                            self.state = State::Passthrough;
                            return Err((whole - bytes.len() + at, fault));
                        }
                    };
                    bytes = &bytes[used..];
                    if let Some(next) = next {
                        self.state = next;
                    }
                }
                State::Head(scan) => {
                    let at = whole - bytes.len();
                    let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
                        // A request line is held back until it is whole, so that it can still
                        // be rewritten; one too long for that is refused as it grows.
                        if !scan.seen_request_line
                            && scan.line_len == 0
                            && bytes.len() <= self.limits.request_line + 2
                        {
                            self.hold_from = Some(at);
                            return Ok(());
                        }
                        self.extend_line(bytes);
                        return Ok(());
                    };
                    self.extend_line(&bytes[..newline]);
                    bytes = &bytes[newline + 1..];
                    self.end_line(at);
                }
            }
        }
        Ok(())
    }

    fn extend_line(&mut self, bytes: &[u8]) {
        let State::Head(scan) = &mut self.state else {
            return;
        };
        scan.line_len += bytes.len();
        let keep = self.limits.request_line.max(self.limits.field_size) + 2;
        let room = keep.saturating_sub(scan.line.len());
        scan.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let too_long = if scan.seen_request_line {
            // gunicorn counts a field line with its CRLF: refused once it cannot fit.
            (scan.line_len >= self.limits.field_size).then_some(Rejection::FieldTooLarge {
                limit: self.limits.field_size,
            })
        } else {
            (scan.line_len > self.limits.request_line + 1).then_some(
                Rejection::RequestLineTooLong {
                    length: scan.line_len,
                    limit: self.limits.request_line,
                },
            )
        };
        if let Some(rejection) = too_long {
            self.reject(rejection);
        }
    }

    fn reject(&mut self, rejection: Rejection) {
        self.verdicts.push(Verdict::Refused(rejection));
        self.state = State::Passthrough;
    }

    /// The current head line has ended; it began at `at` in the bytes being observed (for a
    /// request line, which is never split across reads).
    fn end_line(&mut self, at: usize) {
        let limits = self.limits;
        let State::Head(scan) = &mut self.state else {
            return;
        };
        let mut line = std::mem::take(&mut scan.line);
        let length = std::mem::take(&mut scan.line_len);
        let crlf = line.last() == Some(&b'\r');
        if crlf {
            line.pop();
        }
        // Only a line kept whole shows its real end; a longer one is refused for its length.
        if !crlf && length == line.len() && (scan.seen_request_line || !line.is_empty()) {
            return self.reject(Rejection::BareLineFeed);
        }
        let length = length.saturating_sub(usize::from(length > line.len()));
        if !scan.seen_request_line {
            if line.is_empty() {
                // One is tolerated (RFC 9112 section 2.2), as gunicorn tolerates it.
                scan.blank_lines += 1;
                if scan.blank_lines > 1 {
                    return self.reject(Rejection::BlankLines);
                }
                return;
            }
            if length > limits.request_line {
                return self.reject(Rejection::RequestLineTooLong {
                    length,
                    limit: limits.request_line,
                });
            }
            if line.starts_with(b"PRI * HTTP/2") {
                self.state = State::Passthrough;
                return;
            }
            if let Some(rejection) = judge_request_line(&line) {
                return self.reject(rejection);
            }
            if let Some((start, target, encoded)) = target_to_encode(&line) {
                let start = at + start;
                self.edits.push(Edit {
                    range: start..start + target.len(),
                    with: encoded,
                });
                scan.raw_target = Some(RawTarget(String::from_utf8_lossy(target).into_owned()));
            } else if let Some(target) = line.split(|&b| b == b' ').nth(1)
                && target.contains(&b'#')
            {
                // hyper drops a fragment; gunicorn's RAW_URI keeps it.
                scan.raw_target = Some(RawTarget(String::from_utf8_lossy(target).into_owned()));
            }
            scan.seen_request_line = true;
            scan.is_connect = line.starts_with(b"CONNECT ");
            return;
        }
        if line.is_empty() {
            return self.end_head();
        }
        if length + 2 > limits.field_size {
            return self.reject(Rejection::FieldTooLarge {
                limit: limits.field_size,
            });
        }
        scan.fields += 1;
        if scan.fields > limits.fields {
            return self.reject(Rejection::TooManyFields {
                limit: limits.fields,
            });
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            scan.content_lengths += 1;
            scan.content_length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            scan.transfer_encoding = true;
            let last = value.rsplit(|&b| b == b',').next().map(trim).unwrap_or(b"");
            scan.chunked = last.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            scan.upgrade = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            scan.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-type") {
            scan.content_types += 1;
        }
    }

    fn end_head(&mut self) {
        let State::Head(scan) = &mut self.state else {
            return;
        };
        if scan.content_lengths > 1 {
            return self.reject(Rejection::RepeatedContentLength);
        }
        if scan.hosts > 1 {
            return self.reject(Rejection::RepeatedSingleton("Host"));
        }
        if scan.content_types > 1 {
            return self.reject(Rejection::RepeatedSingleton("Content-Type"));
        }
        if scan.transfer_encoding && scan.content_lengths > 0 {
            return self.reject(Rejection::ContentLengthWithChunked);
        }
        self.verdicts.push(match scan.raw_target.take() {
            Some(raw) => Verdict::Rewritten(raw),
            None => Verdict::Pass,
        });
        self.state = if scan.upgrade || scan.is_connect {
            State::Passthrough
        } else if scan.transfer_encoding {
            if scan.chunked {
                State::Chunked(ChunkState::Size(Vec::new()))
            } else {
                State::Passthrough
            }
        } else {
            match (scan.content_lengths, scan.content_length) {
                (0, _) | (_, Some(0)) => State::Head(HeadScan::default()),
                (_, Some(n)) => State::Body(n),
                (_, None) => State::Passthrough,
            }
        };
    }
}

/// gunicorn's rules for the request line that hyper does not apply. A line that is not three
/// parts is left to hyper, which refuses it.
fn judge_request_line(line: &[u8]) -> Option<Rejection> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let method_ok = (3..=20).contains(&method.len())
        && method.iter().all(token)
        && !method.iter().any(|b| b.is_ascii_lowercase() || *b == b'#');
    if !method_ok {
        return Some(Rejection::InvalidMethod);
    }
    if target.is_empty() || target.iter().any(|b| !(0x21..=0x7e).contains(b)) {
        return Some(Rejection::InvalidTarget);
    }
    let asterisk = target == b"*";
    if asterisk && method != b"OPTIONS" {
        return Some(Rejection::InvalidTarget);
    }
    let absolute = target.windows(3).any(|w| w == b"://");
    let authority = !asterisk && !target.starts_with(b"/") && !absolute;
    if authority && method != b"CONNECT" {
        return Some(Rejection::InvalidTarget);
    }
    None
}

/// How long the start of a request line is held back waiting for its end (a real client sends
/// it in one packet); then hyper gets it as it is, and the guard stops judging the connection.
const HOLD_AT_MOST: Duration = Duration::from_secs(1);

/// Bytes gunicorn takes in a target and hyper's URI parser refuses (the `http` crate follows the
/// WHATWG URL rules: `"`, `<`, `>` in a query, `<`, `>` and a backtick in a path).
const ENCODED_FOR_HYPER: &[u8] = b"\"<>`";

/// For a request line whose target hyper would refuse only for bytes gunicorn takes: where the
/// target starts in the line, the target, and the same target with those bytes percent-encoded.
fn target_to_encode(line: &[u8]) -> Option<(usize, &[u8], Vec<u8>)> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    if !target.iter().any(|b| ENCODED_FOR_HYPER.contains(b)) || http::Uri::try_from(target).is_ok()
    {
        return None;
    }
    let mut encoded = Vec::with_capacity(target.len() + 8);
    for &b in target {
        if ENCODED_FOR_HYPER.contains(&b) {
            encoded.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            encoded.push(b);
        }
    }
    http::Uri::try_from(encoded.as_slice()).ok()?;
    Some((method.len() + 1, target, encoded))
}

/// Advances through a chunked body; returns the bytes used and the next state when it changes,
/// or what gunicorn refuses in it and where (a byte hyper has not read yet).
fn step_chunked(
    chunk: &mut ChunkState,
    bytes: &[u8],
) -> Result<(usize, Option<State>), (usize, Rejection)> {
    Ok(match chunk {
        ChunkState::Size(line) => {
            let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
                if line.len() + bytes.len() > 1024 {
                    return Ok((bytes.len(), Some(State::Passthrough)));
                }
                line.extend_from_slice(bytes);
                return Ok((bytes.len(), None));
            };
            line.extend_from_slice(&bytes[..newline]);
            let Some(line) = line.strip_suffix(b"\r") else {
                // A bare LF: hyper refuses it itself.
                return Ok((newline + 1, Some(State::Passthrough)));
            };
            *chunk = match chunk_size(line) {
                Some(0) => ChunkState::Trailer(TrailerLine::default()),
                Some(n) => ChunkState::Data(n),
                None => return Err((newline, Rejection::InvalidChunkSize)),
            };
            (newline + 1, None)
        }
        ChunkState::Data(left) => {
            let n = (*left).min(bytes.len() as u64);
            *left -= n;
            if *left == 0 {
                *chunk = ChunkState::DataEnd(0);
            }
            (n as usize, None)
        }
        ChunkState::DataEnd(seen) => {
            // The CRLF after a chunk's data; a bare LF is accepted as hyper accepts it.
            let byte = bytes[0];
            if byte == b'\n' {
                *chunk = ChunkState::Size(Vec::new());
            } else if byte == b'\r' && *seen == 0 {
                *seen = 1;
            } else {
                return Ok((1, Some(State::Passthrough)));
            }
            (1, None)
        }
        ChunkState::Trailer(trailer) => {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let line = &bytes[..newline.unwrap_or(bytes.len())];
            if !trailer.name_done {
                let colon = line.iter().position(|&b| b == b':');
                let name = &line[..colon.unwrap_or(line.len())];
                let room = 32usize.saturating_sub(trailer.name.len());
                trailer
                    .name
                    .extend_from_slice(&name[..name.len().min(room)]);
                if let Some(colon) = colon {
                    trailer.name_done = true;
                    let name = trim(&trailer.name);
                    if let Some(forbidden) = FORBIDDEN_TRAILERS
                        .iter()
                        .find(|f| f.as_bytes().eq_ignore_ascii_case(name))
                    {
                        return Err((colon, Rejection::ForbiddenTrailer((*forbidden).to_owned())));
                    }
                }
            }
            let Some(newline) = newline else {
                trailer.len += bytes.len();
                return Ok((bytes.len(), None));
            };
            let this_line = trailer.len + newline;
            let blank = this_line == 0 || (this_line == 1 && (newline == 0 || bytes[0] == b'\r'));
            if blank {
                return Ok((newline + 1, Some(State::Head(HeadScan::default()))));
            }
            *trailer = TrailerLine::default();
            (newline + 1, None)
        }
    })
}

/// A chunk size as gunicorn reads it: hex digits only, whitespace allowed only before an
/// extension (RFC 9112 section 7.1.1).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let (size, extension) = match line.iter().position(|&b| b == b';') {
        Some(semicolon) => (&line[..semicolon], true),
        None => (line, false),
    };
    let size = if extension {
        let end = size
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(0, |e| e + 1);
        &size[..end]
    } else {
        size
    };
    if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(size).ok()?, 16).ok()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

impl<T: AsyncRead + Close + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            match Pin::new(inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                Poll::Pending if !this.heard && this.silent_at_most.is_some() => {
                    let limit = this.silent_at_most.unwrap_or_default();
                    let silence = this
                        .silence
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    if silence.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // Nothing was said: hyper sees the client leave and closes quietly.
                    tracing::debug!("a connection sent nothing for {limit:?}: closed");
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending if !this.held.is_empty() => {
                    let release = this
                        .release
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(HOLD_AT_MOST)));
                    if release.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.release = None;
                    this.ready = std::mem::take(&mut this.held);
                    this.state = State::Passthrough;
                    continue;
                }
                other => return other,
            }
            if buf.filled().len() > before && !this.heard {
                this.heard = true;
                this.silence = None;
            }
            if buf.filled().len() == before {
                // The client is done: hyper gets a held, unfinished request line as it is.
                if this.held.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.ready = std::mem::take(&mut this.held);
                continue;
            }
            let admitted = this.admit(&mut buf.filled_mut()[before..]);
            if this.held.is_empty() {
                this.release = None;
            }
            match admitted {
                Admit::AsRead => return Poll::Ready(Ok(())),
                Admit::Instead(bytes) => {
                    buf.set_filled(before);
                    this.ready = bytes;
                    this.ready_at = 0;
                }
            }
        }
    }
}

impl<T: AsyncWrite + Close + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_write(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(T::is_write_vectored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        request_line: 4094,
        fields: 100,
        field_size: 8190,
    };

    /// What hyper is given of `wire` read `split` bytes at a time, and the verdicts.
    fn admitted(wire: &[u8], split: usize) -> (Vec<u8>, Vec<Verdict>) {
        let verdicts = Verdicts::default();
        let mut guard = Guarded::new((), LIMITS, verdicts.clone());
        let mut given = Vec::new();
        for piece in wire.chunks(split) {
            let mut piece = piece.to_vec();
            match guard.admit(&mut piece) {
                Admit::AsRead => given.extend_from_slice(&piece),
                Admit::Instead(bytes) => given.extend_from_slice(&bytes),
            }
            if let Some(fault) = verdicts.body_fault() {
                verdicts.push(Verdict::Refused(fault));
            }
        }
        given.extend_from_slice(&guard.held);
        let queue = verdicts.heads.lock().unwrap();
        (given, queue.iter().cloned().collect())
    }

    fn verdicts_for(wire: &[u8], split: usize) -> Vec<Option<Rejection>> {
        let (given, verdicts) = admitted(wire, split);
        let nuls = |bytes: &[u8]| bytes.iter().filter(|&&b| b == 0).count();
        let spoiled = nuls(&given) - nuls(wire);
        if !verdicts.iter().any(|v| matches!(v, Verdict::Rewritten(_))) {
            assert_eq!(
                given.len(),
                wire.len(),
                "only a rewritten target changes the length"
            );
        }
        assert!(spoiled <= 1, "one byte at most is spoiled");
        verdicts
            .into_iter()
            .map(|verdict| match verdict {
                Verdict::Refused(rejection) => Some(rejection),
                Verdict::Pass | Verdict::Rewritten(_) => None,
            })
            .collect()
    }

    #[test]
    fn targets_hyper_would_refuse_reach_it_percent_encoded_and_the_raw_one_is_kept() {
        let wire = b"GET /search?q=\"exact\"&t=<b> HTTP/1.1\r\nHost: x\r\n\r\nGET /a<b>`c HTTP/1.1\r\n\r\nGET /plain?q=%22 HTTP/1.1\r\n\r\n";
        for split in [1, 2, 5, 17, wire.len()] {
            let (given, verdicts) = admitted(wire, split);
            assert_eq!(
                String::from_utf8_lossy(&given),
                "GET /search?q=%22exact%22&t=%3Cb%3E HTTP/1.1\r\nHost: x\r\n\r\nGET /a%3Cb%3E%60c HTTP/1.1\r\n\r\nGET /plain?q=%22 HTTP/1.1\r\n\r\n",
                "split {split}"
            );
            assert_eq!(
                verdicts,
                vec![
                    Verdict::Rewritten(RawTarget("/search?q=\"exact\"&t=<b>".to_owned())),
                    Verdict::Rewritten(RawTarget("/a<b>`c".to_owned())),
                    Verdict::Pass,
                ],
                "split {split}"
            );
        }
        // A `"` in a path hyper takes as it is.
        let (given, verdicts) = admitted(b"GET /a\"b HTTP/1.1\r\n\r\n", 3);
        assert_eq!(given, b"GET /a\"b HTTP/1.1\r\n\r\n");
        assert_eq!(verdicts, vec![Verdict::Pass]);
    }

    #[test]
    fn keep_alive_requests_each_get_a_verdict_whatever_the_read_sizes() {
        let wire = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        for split in [1, 2, 7, wire.len()] {
            assert_eq!(
                verdicts_for(wire, split),
                vec![None, None, None],
                "split {split}"
            );
        }
    }

    #[test]
    fn long_request_line_is_414() {
        let wire = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000));
        let verdicts = verdicts_for(wire.as_bytes(), 512);
        assert_eq!(verdicts.len(), 1);
        assert_eq!(
            verdicts[0].as_ref().map(Rejection::status),
            Some(http::StatusCode::URI_TOO_LONG)
        );
    }

    #[test]
    fn request_line_at_the_limit_passes() {
        let path = "a".repeat(4094 - "GET / HTTP/1.1".len());
        let wire = format!("GET /{path} HTTP/1.1\r\n\r\n");
        assert_eq!(verdicts_for(wire.as_bytes(), 100), vec![None]);
    }

    #[test]
    fn header_count_and_size_limits_are_431() {
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let wire = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            verdicts_for(wire.as_bytes(), 64),
            vec![Some(Rejection::TooManyFields { limit: 100 })]
        );
        let wire = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "v".repeat(9000));
        assert_eq!(
            verdicts_for(wire.as_bytes(), 64),
            vec![Some(Rejection::FieldTooLarge { limit: 8190 })]
        );
    }

    #[test]
    fn smuggling_shapes_are_400() {
        let te_cl = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            verdicts_for(te_cl, 5),
            vec![Some(Rejection::ContentLengthWithChunked)]
        );
        let two_cl = b"POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(
            verdicts_for(two_cl, 5),
            vec![Some(Rejection::RepeatedContentLength)]
        );
    }

    #[test]
    fn request_lines_gunicorn_refuses_are_400() {
        let refused = |line: &str| {
            let wire = format!("{line}\r\nHost: x\r\n\r\n");
            verdicts_for(wire.as_bytes(), 3)
        };
        for method in ["get", "Get", "GE", "G#T", "G@T", "ABCDEFGHIJKLMNOPQRSTU"] {
            assert_eq!(
                refused(&format!("{method} / HTTP/1.1")),
                vec![Some(Rejection::InvalidMethod)],
                "{method}"
            );
        }
        for line in [
            "GET * HTTP/1.1",
            "GET example.com:443 HTTP/1.1",
            "GET /caf\u{e9} HTTP/1.1",
        ] {
            assert_eq!(
                refused(line),
                vec![Some(Rejection::InvalidTarget)],
                "{line}"
            );
        }
        for line in [
            "OPTIONS * HTTP/1.1",
            "CONNECT example.com:443 HTTP/1.1",
            "GET http://example.com/ HTTP/1.1",
            "PROPFIND /dav HTTP/1.1",
            // A token, so gunicorn 27.0.1 takes it (checked against it), whatever it looks like.
            "-GET / HTTP/1.1",
            "GET /search?q=\"exact\" HTTP/1.1",
        ] {
            assert_eq!(refused(line), vec![None], "{line}");
        }
    }

    #[test]
    fn one_empty_line_before_a_request_is_tolerated_and_two_are_400() {
        assert_eq!(verdicts_for(b"\r\nGET / HTTP/1.1\r\n\r\n", 2), vec![None]);
        assert_eq!(
            verdicts_for(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", 2),
            vec![Some(Rejection::BlankLines)]
        );
    }

    #[test]
    fn a_second_host_or_content_type_is_400() {
        let hosts = b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n";
        assert_eq!(
            verdicts_for(hosts, 4),
            vec![Some(Rejection::RepeatedSingleton("Host"))]
        );
        let types = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            verdicts_for(types, 4),
            vec![Some(Rejection::RepeatedSingleton("Content-Type"))]
        );
    }

    #[test]
    fn a_field_line_is_counted_with_its_crlf_as_gunicorn_counts_it() {
        // "X: " and the value, plus CRLF: 8190 fits the default limit, 8191 does not.
        let fits = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(8190 - 5));
        assert_eq!(verdicts_for(fits.as_bytes(), 100), vec![None]);
        let over = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(8190 - 4));
        for split in [100, over.len()] {
            assert_eq!(
                verdicts_for(over.as_bytes(), split),
                vec![Some(Rejection::FieldTooLarge { limit: 8190 })],
                "split {split}"
            );
        }
    }

    #[test]
    fn zero_limits_mean_what_gunicorn_makes_of_them() {
        let limits = HeadLimits::gunicorn(0, 0, 0);
        assert_eq!(limits.field_size, 8190, "0 is the default field size");
        assert_eq!(limits.fields, 32768);
        assert_eq!(limits.request_line, 1024 * 1024);
        let limits = HeadLimits::gunicorn(10_000, 50_000, 20_000);
        assert_eq!(
            (limits.request_line, limits.fields, limits.field_size),
            (8190, 32768, 20_000)
        );
    }

    #[test]
    fn chunk_sizes_take_whitespace_only_before_an_extension() {
        let body = |size_line: &str| {
            format!(
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n{size_line}\r\n\r\nGET /next HTTP/1.1\r\n\r\n"
            )
        };
        for line in ["0", "0;ext=1", "0 ;ext", "0\t; ext", "00"] {
            assert_eq!(
                verdicts_for(body(line).as_bytes(), 3),
                vec![None, None],
                "{line:?}"
            );
        }
        for line in ["0 ", "0\t", " 0", "0x0", "", "-0"] {
            for split in [1, 4, 1000] {
                assert_eq!(
                    verdicts_for(body(line).as_bytes(), split),
                    vec![None, Some(Rejection::InvalidChunkSize)],
                    "{line:?} split {split}"
                );
            }
        }
    }

    #[test]
    fn framing_routing_and_auth_fields_are_refused_in_trailers() {
        let body = |trailer: &str| {
            format!(
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n{trailer}\r\n\r\n"
            )
        };
        for (trailer, name) in [
            ("Host: y", "Host"),
            ("content-length: 3", "Content-Length"),
            ("Transfer-Encoding: chunked", "Transfer-Encoding"),
            ("TRAILER: x", "Trailer"),
            ("Authorization: Basic eA==", "Authorization"),
            ("te: trailers", "TE"),
        ] {
            for split in [1, 5, 1000] {
                assert_eq!(
                    verdicts_for(body(trailer).as_bytes(), split),
                    vec![None, Some(Rejection::ForbiddenTrailer(name.to_owned()))],
                    "{trailer} split {split}"
                );
            }
        }
        for trailer in [
            "X-Checksum: abc",
            "Hosts: y",
            "Expires: 0\r\nServer-Timing: a",
        ] {
            assert_eq!(
                verdicts_for(body(trailer).as_bytes(), 2),
                vec![None],
                "{trailer}"
            );
        }
    }

    #[test]
    fn http2_preface_is_left_to_hyper() {
        let wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
        assert!(verdicts_for(wire, 3).is_empty());
    }
}
