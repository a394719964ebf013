//! PEP 3333 corners and awkward requests, over real sockets against a raw WSGI app
//! (`crates/ficus/tests/pyapps/edge.py`) served by ficus.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::{Server, exchange, get, parse_response, request};

fn edge_server(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("edge.log").display().to_string();
    let server = support::edge_server(extra, &[("EDGE_LOG".to_owned(), log)]);
    (server, dir)
}

#[test]
fn environ_carries_gunicorns_keys_with_latin1_path_and_raw_query() {
    let (server, _dir) = edge_server(&[]);
    let raw = "GET /caf%C3%A9/a%20b/%E6%9D%B1?q=caf%C3%A9&x=%20 HTTP/1.1\r\nHost: example.test:8080\r\nX-Repeated: one\r\nX-Repeated: two\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
        .to_owned();
    let (response, _) = parse_response(&exchange(server.addr, raw.as_bytes()), false);
    assert_eq!(response.status, 200, "{}", server.log());
    let env = response.json();
    // PATH_INFO: percent-decoded bytes, each one a code point (latin-1), as PEP 3333 says.
    let expected_path: String = "/café/a b/東".bytes().map(char::from).collect();
    assert_eq!(env["PATH_INFO"], expected_path.as_str());
    assert_eq!(env["QUERY_STRING"], "q=caf%C3%A9&x=%20");
    assert_eq!(
        env["RAW_URI"],
        "/caf%C3%A9/a%20b/%E6%9D%B1?q=caf%C3%A9&x=%20"
    );
    assert_eq!(env["HTTP_X_REPEATED"], "one,two");
    // The underscore spelling is dropped; the trusted loopback proxy's header is used.
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "203.0.113.5");
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.5");
    assert_eq!(env["wsgi.url_scheme"], "https");
    // As gunicorn sets them: the listening socket's, whatever Host says.
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], server.addr.port().to_string().as_str());
    assert_eq!(env["HTTP_HOST"], "example.test:8080");
    assert_eq!(
        env["SERVER_SOFTWARE"],
        format!("ficus/{}", env!("CARGO_PKG_VERSION")).as_str()
    );
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(env["SCRIPT_NAME"], "");
    assert_eq!(env["REQUEST_METHOD"], "GET");
    assert!(
        env["REMOTE_PORT"]
            .as_str()
            .is_some_and(|p| p.parse::<u16>().is_ok())
    );
    assert_eq!(env["wsgi.version"], serde_json::json!([1, 0]));
    assert_eq!(env["wsgi.multithread"], true);
    assert_eq!(env["has_file_wrapper"], true);
}

#[test]
fn raw_non_ascii_in_the_target_is_refused_as_gunicorn_refuses_it() {
    let (server, _dir) = edge_server(&[]);
    // RFC 9112 section 3.2: the target is printable ASCII, the rest percent-encoded. Some
    // clients send UTF-8 raw anyway; gunicorn 27 refuses it with 400, and so does ficus.
    for target in [&b"/caf\xc3\xa9"[..], b"/?q=\xe6\x9d\xb1", b"/a\x7fb"] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (response, _) = parse_response(&exchange(server.addr, &raw), false);
        assert_eq!(response.status, 400, "{}", target.escape_ascii());
    }
    // Percent-encoded, the same text reaches the application.
    let env = get(server.addr, "/caf%C3%A9?q=%E6%9D%B1").json();
    let latin1 = |text: &str| text.bytes().map(char::from).collect::<String>();
    assert_eq!(env["PATH_INFO"], latin1("/café").as_str());
    assert_eq!(env["QUERY_STRING"], "q=%E6%9D%B1");
}

#[test]
fn forwarded_headers_from_an_untrusted_peer_change_nothing() {
    let (server, _dir) = edge_server(&["--forwarded-allow-ips", "10.9.9.9"]);
    let response = request(
        server.addr,
        "GET",
        "/",
        &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", "203.0.113.5"),
        ],
        b"",
    );
    let env = response.json();
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
}

#[test]
fn http10_is_reported_as_such() {
    let (server, _dir) = edge_server(&[]);
    let raw = exchange(server.addr, b"GET / HTTP/1.0\r\n\r\n");
    let (response, _) = parse_response(&raw, false);
    assert_eq!(response.json()["SERVER_PROTOCOL"], "HTTP/1.0");
    // No Host: SERVER_NAME/PORT come from the listening socket.
    assert_eq!(
        response.json()["SERVER_PORT"],
        server.addr.port().to_string()
    );
}

#[test]
fn a_chunked_body_reaches_the_app_with_a_content_length() {
    let (server, _dir) = edge_server(&[]);
    let raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    let (response, _) = parse_response(&exchange(server.addr, raw), false);
    let env = response.json();
    assert_eq!(env["CONTENT_LENGTH"], "12");
    assert_eq!(env["body"], "hello, world");
    assert_eq!(env["CONTENT_TYPE"], "text/plain");
    assert!(env.get("HTTP_TRANSFER_ENCODING").is_none());
}

#[test]
fn expect_100_continue_gets_the_interim_answer_then_the_real_one() {
    let (server, _dir) = edge_server(&[]);
    let mut stream = support::connect(server.addr);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(b"ping").unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let start = support::find(&rest, b"HTTP/1.1").unwrap();
    let (response, _) = parse_response(&rest[start..], false);
    assert_eq!(response.json()["body"], "ping");
}

#[test]
fn wsgi_input_supports_readline_readlines_and_iteration() {
    let (server, _dir) = edge_server(&[]);
    let body = b"first line\nsecond\nthird\nfourth";
    let response = request(server.addr, "POST", "/lines", &[], body);
    let seen = response.json();
    assert_eq!(seen["first"], "first line\n");
    assert_eq!(seen["second"], "sec");
    assert_eq!(
        seen["rest"],
        serde_json::json!(["ond\n", "third\n", "fourth"])
    );
    let response = request(server.addr, "POST", "/iterate", &[], body);
    assert_eq!(
        response.json()["lines"],
        serde_json::json!(["first line\n", "second\n", "third\n", "fourth"])
    );
}

#[test]
fn head_responses_carry_no_body_but_keep_the_length() {
    let (server, _dir) = edge_server(&[]);
    let raw = exchange(
        server.addr,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let end = support::find(&raw, b"\r\n\r\n").unwrap();
    assert_eq!(raw.len(), end + 4, "HEAD answered with a body");
    let (response, _) = parse_response(&raw, true);
    assert!(response.header("Content-Length").is_some_and(|l| l != "0"));
}

#[test]
fn start_response_may_come_late_inside_the_generator() {
    let (server, _dir) = edge_server(&[]);
    let response = get(server.addr, "/late");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("X-Late"), Some("yes"));
    assert_eq!(response.text(), "started late");
}

#[test]
fn write_callable_output_comes_before_the_iterable() {
    let (server, _dir) = edge_server(&[]);
    let response = get(server.addr, "/write");
    assert_eq!(response.text(), "written twice then returned");
}

#[test]
fn exc_info_replaces_an_unsent_head_and_cuts_a_sent_one() {
    let (server, _dir) = edge_server(&[]);
    let response = get(server.addr, "/exc-info");
    assert_eq!(
        (response.status, response.reason.as_str()),
        (503, "Replaced")
    );
    assert_eq!(response.text(), "replaced");

    // Headers already sent: the error is re-raised, the stream is cut short (no clean end).
    let raw = exchange(
        server.addr,
        b"GET /exc-info-late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    // Whether the head and first chunk were flushed before the abort is a race; what matters
    // is that the client never sees the rest, nor a well-terminated response.
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("never"), "{text}");
    assert!(
        server.log().contains("too late to replace"),
        "the re-raised error was not logged:\n{}",
        server.log()
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "a cut stream must not look complete: {text}"
    );
    // And the server carries on.
    assert_eq!(get(server.addr, "/late").status, 200);
}

#[test]
fn an_exception_in_the_app_is_a_logged_500_and_the_next_request_is_served() {
    let (server, _dir) = edge_server(&[]);
    let response = get(server.addr, "/raise");
    assert_eq!(response.status, 500);
    assert!(
        server.log().contains("the application failed on purpose"),
        "{}",
        server.log()
    );
    assert!(server.log().contains("Traceback"), "{}", server.log());
    assert_eq!(get(server.addr, "/late").status, 200);
}

#[test]
fn a_streamed_response_arrives_before_the_generator_finishes() {
    let (server, _dir) = edge_server(&[]);
    let mut stream = support::connect(server.addr);
    let started = Instant::now();
    stream
        .write_all(b"GET /stream?n=10&delay=0.5&name=early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while support::find(&buf, b"chunk 0").is_none() {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the first chunk");
        buf.extend_from_slice(&chunk[..n]);
    }
    // Ten chunks half a second apart take 4.5 s; the first is here long before.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "first chunk after {:?}",
        started.elapsed()
    );
    assert!(support::find(&buf, b"chunk 9").is_none());
}

#[test]
fn a_client_leaving_mid_stream_still_gets_close_called() {
    let (server, dir) = edge_server(&[]);
    support::read_first_then_leave(
        server.addr,
        b"GET /stream?n=100&delay=0.05&name=abandoned HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let log = dir.path().join("edge.log");
    assert!(
        support::file_comes_to_contain(&log, "closed abandoned"),
        "close() was not called after the client left:\n{}",
        server.log()
    );
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let (server, _dir) = edge_server(&[]);
    let raw = exchange(
        server.addr,
        b"GET /late HTTP/1.1\r\nHost: x\r\n\r\nGET /write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let (first, rest) = parse_response(&raw, false);
    let (second, _) = parse_response(&rest, false);
    assert_eq!(first.text(), "started late");
    assert_eq!(second.text(), "written twice then returned");
}

#[test]
fn http2_cleartext_is_spoken_when_the_client_opens_with_it() {
    let (server, _dir) = edge_server(&[]);
    let output = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-w", "\n%{http_version}"])
        .arg(format!("http://{}/late", server.addr))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.ends_with("\n2"), "{text}");
    assert!(text.starts_with("started late"), "{text}");
}

#[test]
fn the_access_log_uses_gunicorns_default_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let log_arg = log.display().to_string();
    let server = support::edge_server(&["--access-logfile", &log_arg], &[]);
    let response = request(
        server.addr,
        "GET",
        "/write?x=1",
        &[
            ("Referer", "http://example.test/from"),
            ("User-Agent", "parity-agent/1.0"),
            ("Authorization", "Basic YWxpY2U6c2VjcmV0"),
        ],
        b"",
    );
    assert_eq!(response.status, 200);
    let line_format = regex::Regex::new(
        r#"^127\.0\.0\.1 - alice \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /write\?x=1 HTTP/1\.1" 200 27 "http://example\.test/from" "parity-agent/1\.0"$"#,
    )
    .unwrap();
    assert!(
        support::file_comes_to_contain(&log, "parity-agent"),
        "nothing logged"
    );
    let written = std::fs::read_to_string(&log).unwrap();
    let line = written.lines().last().unwrap_or_default();
    assert!(line_format.is_match(line), "{line}");
}

#[test]
fn a_body_the_app_never_reads_does_not_hold_the_connection_open() {
    let (server, _dir) = edge_server(&[]);
    let body = vec![b'x'; 1024 * 1024];
    let mut stream = support::connect(server.addr);
    let head = format!(
        "POST /keep HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut writer = stream.try_clone().expect("clone");
    // The server may stop reading once it has answered; the writer must not block the test.
    std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let mut answer = Vec::new();
    let ended = stream.read_to_end(&mut answer);
    // EOF (or a reset after the answer) within the read timeout, although the app keeps the
    // environ (and its wsgi.input) alive: the connection did not wait for the unread body.
    assert!(
        !matches!(&ended, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the connection stayed open: {ended:?}"
    );
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn a_broken_application_gets_a_logged_500_and_the_next_request_is_served() {
    let (server, _log) = edge_server(&[]);
    for (path, logged) in [
        ("/not-iterable", "TypeError: 'int' object is not iterable"),
        (
            "/str-chunk",
            "TypeError: the WSGI iterable yielded str, not bytes",
        ),
        (
            "/start-twice",
            "AssertionError: start_response() called a second time without exc_info",
        ),
        (
            "/never-starts",
            "AssertionError: response body sent before start_response()",
        ),
        ("/raise", "RuntimeError: the application failed on purpose"),
    ] {
        assert_eq!(get(server.addr, path).status, 500, "{path}");
        assert!(server.log().contains(logged), "{path}: {}", server.log());
        assert_eq!(get(server.addr, "/pid").status, 200, "after {path}");
    }
}

/// Reads until the server closes; Err when it keeps the connection open past the read timeout.
fn read_until_closed(stream: &mut std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn an_http10_response_that_ends_its_connection_says_connection_close() {
    let (server, _dir) = edge_server(&[]);
    let mut stream = support::connect(server.addr);
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let raw = read_until_closed(&mut stream).expect("the connection is closed");
    let (response, _) = parse_response(&raw, false);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));

    // Kept alive with a known length: it says so, and a second request is served on it.
    let mut stream = support::connect(server.addr);
    stream
        .write_all(b"GET /keep HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).unwrap();
    let (response, _) = parse_response(&first[..n], false);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("keep-alive"));
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let raw = read_until_closed(&mut stream).expect("closed after the second answer");
    assert_eq!(parse_response(&raw, false).0.status, 200);
}

#[test]
fn an_http10_keep_alive_request_whose_answer_has_no_length_is_told_close_and_closed() {
    let (server, _dir) = edge_server(&[]);
    let mut stream = support::connect(server.addr);
    stream
        .write_all(b"GET /stream?n=3&delay=0 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    // Without a length or chunked framing, the end of the connection is the end of the body.
    let raw = read_until_closed(&mut stream).expect("the connection is closed after the body");
    let (response, _) = parse_response(&raw, false);
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.text(), "chunk 0\nchunk 1\nchunk 2\n");
}

#[test]
fn no_content_length_on_a_204_or_1xx_and_none_added_to_a_304() {
    let (server, _dir) = edge_server(&[]);
    let no_content = get(server.addr, "/status?code=204&length=0");
    assert_eq!(no_content.status, 204);
    assert_eq!(no_content.header("content-length"), None, "{no_content:?}");
    let not_modified = get(server.addr, "/status?code=304");
    assert_eq!(not_modified.status, 304);
    assert_eq!(
        not_modified.header("content-length"),
        None,
        "{not_modified:?}"
    );
    assert_eq!(not_modified.header("transfer-encoding"), None);
    // The server keeps serving after each.
    assert_eq!(get(server.addr, "/status?code=200&length=0").status, 200);
}

#[test]
fn requests_gunicorn_refuses_are_400_before_the_application_runs() {
    let (server, dir) = edge_server(&[]);
    let refused: [&[u8]; 8] = [
        b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /caf\xc3\xa9/keep HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\n\r\nGET /keep HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /keep HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST /keep HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n",
    ];
    for raw in refused {
        let (response, _) = parse_response(&exchange(server.addr, raw), false);
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(raw));
        assert_eq!(response.header("connection"), Some("close"));
    }
    // What gunicorn 27.0.1 takes still reaches the application (checked against it): one empty
    // line first, OPTIONS *, and any token for a method.
    let accepted: [&[u8]; 4] = [
        b"\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"-GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"PROPFIND /dav HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ];
    for raw in accepted {
        let (response, _) = parse_response(&exchange(server.addr, raw), false);
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(raw));
    }
    let env = get(server.addr, "/").json();
    assert_eq!(env["REQUEST_METHOD"], "GET");
    drop(dir);
}

#[test]
fn refusals_inside_a_chunked_body_are_400_and_the_application_never_sees_the_body() {
    let (server, _dir) = edge_server(&[]);
    let chunked = |size_line: &str, trailers: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n{size_line}\r\n{trailers}\r\n"
        )
    };
    let refused = [
        (chunked("0 ", ""), "Invalid chunk size"),
        (chunked("0\t", ""), "Invalid chunk size"),
        (
            chunked("0", "Host: y\r\n"),
            "Host is not allowed in trailers",
        ),
        (
            chunked("0", "X-Sum: 1\r\ncontent-length: 3\r\n"),
            "Content-Length is not allowed in trailers",
        ),
        (
            chunked("0", "Authorization: Basic eA==\r\n"),
            "Authorization is not allowed in trailers",
        ),
    ];
    for (raw, reason) in refused {
        let (response, _) = parse_response(&exchange(server.addr, raw.as_bytes()), false);
        assert_eq!(response.status, 400, "{raw:?}");
        assert!(
            response.text().contains(reason),
            "{raw:?}: {}",
            response.text()
        );
        assert_eq!(response.header("connection"), Some("close"));
    }
    // What gunicorn takes: whitespace before an extension, and ordinary trailer fields.
    for raw in [
        chunked("0 ;ext=1", "Connection: close\r\n"),
        chunked("0", "X-Checksum: 900150983cd24fb0\r\n"),
    ] {
        let raw = raw.replace("Host: x\r\n", "Host: x\r\nConnection: close\r\n");
        let (response, _) = parse_response(&exchange(server.addr, raw.as_bytes()), false);
        assert_eq!(response.status, 200, "{raw:?}: {}", response.text());
        assert_eq!(response.json()["body"], "abc");
    }
    assert_eq!(get(server.addr, "/keep").status, 200);
}

#[test]
fn a_field_line_counts_its_crlf_and_a_field_size_of_zero_is_the_default() {
    for limit in [&["--limit-request-field-size", "0"][..], &[][..]] {
        let (server, _dir) = edge_server(limit);
        let field = |value_len: usize| {
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX: {}\r\n\r\n",
                "v".repeat(value_len)
            )
        };
        // "X: " + value + CRLF = 8190 bytes fits; one more byte is gunicorn's 431.
        let fits = field(8190 - 5);
        let (response, _) = parse_response(&exchange(server.addr, fits.as_bytes()), false);
        assert_eq!(response.status, 200, "{limit:?}");
        assert_eq!(response.json()["HTTP_X"].as_str().map(str::len), Some(8185));
        let over = field(8190 - 4);
        let (response, _) = parse_response(&exchange(server.addr, over.as_bytes()), false);
        assert_eq!(response.status, 431, "{limit:?}");
    }
}

#[test]
fn secure_scheme_headers_that_disagree_are_400_from_a_trusted_proxy() {
    let (server, _dir) = edge_server(&[]);
    let with =
        |headers: &str| format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
    let (response, _) = parse_response(
        &exchange(
            server.addr,
            with("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n").as_bytes(),
        ),
        false,
    );
    assert_eq!(response.status, 400);
    assert!(response.text().contains("Contradictory scheme headers"));
    for (headers, scheme) in [
        (
            "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n",
            "https",
        ),
        (
            "X-Forwarded-Proto: http\r\nX-Forwarded-Ssl: off\r\n",
            "http",
        ),
        ("X-Forwarded-Protocol: ssl\r\n", "https"),
    ] {
        let (response, _) = parse_response(&exchange(server.addr, with(headers).as_bytes()), false);
        assert_eq!(response.status, 200, "{headers}");
        assert_eq!(response.json()["wsgi.url_scheme"], scheme, "{headers}");
    }
    // Only a trusted peer is listened to: from one nobody trusts, nothing is refused.
    let (untrusting, _dir) = edge_server(&["--forwarded-allow-ips", "10.9.9.9"]);
    let (response, _) = parse_response(
        &exchange(
            untrusting.addr,
            with("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n").as_bytes(),
        ),
        false,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["wsgi.url_scheme"], "http");
}

#[test]
fn connect_reaches_the_application_and_its_answer_ends_the_connection() {
    let (server, _dir) = edge_server(&["--access-logfile", "-"]);
    // Bytes after a CONNECT are tunnel data to gunicorn, never a request: one answer only.
    let raw = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nGET /keep HTTP/1.1\r\nHost: x\r\n\r\n";
    let reply = exchange(server.addr, raw);
    let (response, _) = parse_response(&reply, false);
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&reply));
    assert_eq!(response.header("connection"), Some("close"));
    // No length (hyper sends none on a 2xx to CONNECT): the body is all up to the close.
    let env = response.json();
    assert_eq!(env["REQUEST_METHOD"], "CONNECT");
    assert_eq!(env["RAW_URI"], "example.com:443");
    assert_eq!(env["PATH_INFO"], "");
    assert!(!String::from_utf8_lossy(&reply).contains("kept"));
    assert!(
        server.log_comes_to_contain("\"CONNECT example.com:443 HTTP/1.1\" 200"),
        "{}",
        server.log()
    );
    assert_eq!(get(server.addr, "/keep").status, 200);
}

#[test]
fn a_query_with_quotes_and_angle_brackets_reaches_the_application_as_sent() {
    let (server, _dir) = edge_server(&["--access-logfile", "-"]);
    // Two requests on one connection, the first split mid request line (held back whole).
    let mut stream = support::connect(server.addr);
    stream.write_all(b"GET /search?q=\"ex").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream
        .write_all(b"act\"&t=<b>#frag HTTP/1.1\r\nHost: x\r\n\r\nGET /a<b> HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let (first, rest) = parse_response(&reply, false);
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&reply));
    let env = first.json();
    assert_eq!(env["PATH_INFO"], "/search");
    assert_eq!(env["QUERY_STRING"], "q=\"exact\"&t=<b>");
    assert_eq!(env["RAW_URI"], "/search?q=\"exact\"&t=<b>#frag");
    let (second, _) = parse_response(&rest, false);
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["PATH_INFO"], "/a<b>");
    assert_eq!(second.json()["RAW_URI"], "/a<b>");
    // gunicorn's `%(r)s` is the raw request line, quotes and all.
    assert!(
        server.log_comes_to_contain("\"GET /search?q=\"exact\"&t=<b>#frag HTTP/1.1\" 200"),
        "{}",
        server.log()
    );
}

#[test]
fn a_fragment_stays_in_raw_uri_and_out_of_path_and_query_as_in_gunicorn() {
    let (server, _dir) = edge_server(&[]);
    for (target, path, query) in [
        ("/p?a=1#frag", "/p", "a=1"),
        ("/p#x?y", "/p", ""),
        ("/?>#f?g", "/", ">"),
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (answer, _) = parse_response(&exchange(server.addr, raw.as_bytes()), false);
        assert_eq!(answer.status, 200, "{target}");
        let env = answer.json();
        assert_eq!(env["RAW_URI"], target);
        assert_eq!(env["PATH_INFO"], path, "{target}");
        assert_eq!(env["QUERY_STRING"], query, "{target}");
    }
}

#[test]
fn a_body_short_of_its_content_length_is_sent_as_produced_then_the_connection_closes() {
    let (server, _dir) = edge_server(&[]);
    for via in ["list", "write", "wrapper"] {
        let mut stream = support::connect(server.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(4)))
            .unwrap();
        // Keep-alive asked for: only the short body makes the server close.
        write!(stream, "GET /short?via={via} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(_) => break false,
            }
        };
        let text = String::from_utf8_lossy(&reply);
        assert!(closed, "{via}: the connection stayed open after {text:?}");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200"), "{via}: {head}");
        assert!(head.contains("Content-Length: 10"), "{via}: {head}");
        assert_eq!(body, "hello", "{via}");
    }
    assert!(
        server.log_comes_to_contain(
            "/short: the application declared Content-Length 10 and sent 5 bytes"
        ),
        "{}",
        server.log()
    );
    // A HEAD answer keeps its length without a body, and the server serves on.
    let head = request(server.addr, "HEAD", "/short", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(get(server.addr, "/keep").status, 200);
}
