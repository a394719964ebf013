//! Watches HTTP/1 request heads as they arrive on the socket and judges what hyper lets through
//! but gunicorn refuses: a request line over `--limit-request-line` (414), too many header fields
//! or one too long (431), Transfer-Encoding together with Content-Length, repeated
//! Content-Length, and head lines ending in a bare LF (400: a proxy in front may split such a
//! head differently, the classic request-smuggling shape).
//!
//! It never changes or holds back a byte: it only reads along, line by line with bounded memory,
//! follows body framing to find the next head on a keep-alive connection, and leaves one verdict
//! per head in a queue that the request handler pops in order (hyper serves HTTP/1 requests of a
//! connection one after another). On anything it does not understand (HTTP/2, upgrades, framing
//! hyper itself will refuse) it stops judging and lets hyper decide.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The limits a request head is held to, in gunicorn's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    pub request_line: usize,
    pub fields: usize,
    pub field_size: usize,
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
            | Self::BlankLines => http::StatusCode::BAD_REQUEST,
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
        }
    }
}

/// One verdict per request head seen on a connection, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verdicts(Arc<Mutex<VecDeque<Option<Rejection>>>>);

impl Verdicts {
    fn push(&self, verdict: Option<Rejection>) {
        if let Ok(mut queue) = self.0.lock() {
            queue.push_back(verdict);
        }
    }

    /// The verdict on the request hyper hands over next (None: nothing against it).
    pub(crate) fn pop(&self) -> Option<Rejection> {
        self.0.lock().ok()?.pop_front().flatten()
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
}

#[derive(Debug)]
enum ChunkState {
    Size(Vec<u8>),
    Data(u64),
    DataEnd(u8),
    Trailer(usize),
}

pub(crate) struct Guarded<T> {
    inner: T,
    state: State,
    limits: HeadLimits,
    verdicts: Verdicts,
}

impl<T> Guarded<T> {
    pub(crate) fn new(inner: T, limits: HeadLimits, verdicts: Verdicts) -> Self {
        Self {
            inner,
            state: State::Head(HeadScan::default()),
            limits,
            verdicts,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Passthrough => return,
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::Head(HeadScan::default());
                    }
                }
                State::Chunked(chunk) => {
                    let (used, next) = step_chunked(chunk, bytes);
                    bytes = &bytes[used..];
                    if let Some(next) = next {
                        self.state = next;
                    }
                }
                State::Head(_) => {
                    let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
                        self.extend_line(bytes);
                        return;
                    };
                    self.extend_line(&bytes[..newline]);
                    bytes = &bytes[newline + 1..];
                    self.end_line();
                }
            }
        }
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
            (scan.line_len > self.limits.field_size + 1).then_some(Rejection::FieldTooLarge {
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
        self.verdicts.push(Some(rejection));
        self.state = State::Passthrough;
    }

    fn end_line(&mut self) {
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
            scan.seen_request_line = true;
            scan.is_connect = line.starts_with(b"CONNECT ");
            return;
        }
        if line.is_empty() {
            return self.end_head();
        }
        if length > limits.field_size {
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
        self.verdicts.push(None);
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

/// Advances through a chunked body; returns the bytes used and the next state when it changes.
fn step_chunked(chunk: &mut ChunkState, bytes: &[u8]) -> (usize, Option<State>) {
    match chunk {
        ChunkState::Size(line) => {
            let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
                if line.len() + bytes.len() > 1024 {
                    return (bytes.len(), Some(State::Passthrough));
                }
                line.extend_from_slice(bytes);
                return (bytes.len(), None);
            };
            line.extend_from_slice(&bytes[..newline]);
            let text = String::from_utf8_lossy(line);
            let size = text.split(';').next().map(str::trim).unwrap_or("");
            let next = match u64::from_str_radix(size, 16) {
                Ok(0) => ChunkState::Trailer(0),
                Ok(n) => ChunkState::Data(n),
                Err(_) => return (newline + 1, Some(State::Passthrough)),
            };
            *chunk = next;
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
                return (1, Some(State::Passthrough));
            }
            (1, None)
        }
        ChunkState::Trailer(line_len) => {
            let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
                *line_len += bytes.len();
                return (bytes.len(), None);
            };
            let this_line = *line_len + newline;
            let blank = this_line == 0 || (this_line == 1 && (newline == 0 || bytes[0] == b'\r'));
            if blank {
                return (newline + 1, Some(State::Head(HeadScan::default())));
            }
            *line_len = 0;
            (newline + 1, None)
        }
    }
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

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.observe(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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

    fn verdicts_for(wire: &[u8], split: usize) -> Vec<Option<Rejection>> {
        let verdicts = Verdicts::default();
        let mut guard = Guarded::new((), LIMITS, verdicts.clone());
        for piece in wire.chunks(split) {
            guard.observe(piece);
        }
        let queue = verdicts.0.lock().unwrap();
        queue.iter().cloned().collect()
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
    fn http2_preface_is_left_to_hyper() {
        let wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
        assert!(verdicts_for(wire, 3).is_empty());
    }
}
