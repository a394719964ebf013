//! Builds the WSGI environ dict with the keys gunicorn provides, PEP 3333's way: native strings
//! carrying latin-1, PATH_INFO percent-decoded, QUERY_STRING raw, `HTTP_*` for headers with
//! repeated ones joined, and header names containing `_` dropped so no one can spoof
//! `HTTP_X_FORWARDED_FOR` with `X_Forwarded_For`.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::input::Input;
use super::{WsgiApp, WsgiRequest};
use crate::server::listen::Address;

/// `SERVER_SOFTWARE`, as gunicorn gives its own name and version there.
const SERVER_SOFTWARE: &str = concat!("ficus/", env!("CARGO_PKG_VERSION"));

/// The request target as the request line had it (what RAW_URI and the access log show): the
/// path and query, or for CONNECT the authority (`host:port`).
pub(crate) fn request_target(uri: &http::Uri) -> &str {
    match (uri.path_and_query(), uri.authority()) {
        (Some(path_and_query), _) => path_and_query.as_str(),
        (None, Some(authority)) => authority.as_str(),
        (None, None) => "/",
    }
}

/// SERVER_NAME and SERVER_PORT as gunicorn sets them: for a TCP listener its address, whatever
/// Host says (Django reads Host first and falls back to these); for a unix socket, which has
/// no port, the Host header's name and port (80 or 443 by scheme when it names none), or with
/// no Host the socket's path and an empty port.
fn server(request: &WsgiRequest) -> (String, String) {
    let path = match &request.local {
        Address::Tcp(addr) => return (addr.ip().to_string(), addr.port().to_string()),
        Address::Unix(path) => path,
    };
    let host = request
        .headers
        .get(http::header::HOST)
        .map(|v| latin1(v.as_bytes()))
        .filter(|h| !h.is_empty());
    let Some(host) = host else {
        return (path.display().to_string(), String::new());
    };
    let mut parts = host.split(':');
    let name = parts.next().unwrap_or_default().to_owned();
    let port = match parts.next() {
        Some(port) => port.to_owned(),
        None => match request.url_scheme {
            "https" => "443".to_owned(),
            _ => "80".to_owned(),
        },
    };
    (name, port)
}

pub(super) fn build<'py>(
    py: Python<'py>,
    request: &WsgiRequest,
    input: &Bound<'_, Input>,
    app: &WsgiApp,
) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    let set = |key: &Bound<'py, PyString>, value: &str| environ.set_item(key, value);

    set(intern!(py, "REQUEST_METHOD"), request.method.as_str())?;
    set(intern!(py, "SCRIPT_NAME"), "")?;
    let path = request.uri.path();
    let decoded = percent_encoding::percent_decode(path.as_bytes()).collect::<Vec<u8>>();
    set(intern!(py, "PATH_INFO"), &latin1(&decoded))?;
    // hyper lets raw UTF-8 through in the target; PEP 3333 wants its bytes, one code point each,
    // as gunicorn gives them (else Django's QueryDict fails to encode them back).
    let query = match &request.raw_target {
        Some(raw) => raw
            .split('#')
            .next()
            .and_then(|before| before.split_once('?'))
            .map_or("", |(_, query)| query),
        None => request.uri.query().unwrap_or(""),
    };
    set(intern!(py, "QUERY_STRING"), &latin1(query.as_bytes()))?;
    let raw_uri = request
        .raw_target
        .as_deref()
        .unwrap_or_else(|| request_target(&request.uri));
    set(intern!(py, "RAW_URI"), &latin1(raw_uri.as_bytes()))?;
    set(intern!(py, "SERVER_PROTOCOL"), protocol(request.version))?;
    // A unix-socket client has no address: gunicorn gives an empty REMOTE_ADDR and no port.
    let remote = request.client.ip().map(|ip| ip.to_string());
    set(intern!(py, "REMOTE_ADDR"), remote.as_deref().unwrap_or(""))?;
    if let Some(port) = request.client.port() {
        set(intern!(py, "REMOTE_PORT"), &port.to_string())?;
    }
    let (server_name, server_port) = server(request);
    set(intern!(py, "SERVER_NAME"), &server_name)?;
    set(intern!(py, "SERVER_PORT"), &server_port)?;
    set(intern!(py, "SERVER_SOFTWARE"), SERVER_SOFTWARE)?;

    if let Some(length) = request.content_length {
        set(intern!(py, "CONTENT_LENGTH"), &length.to_string())?;
    }

    let mut has_host = false;
    for name in request.headers.keys() {
        let name = name.as_str();
        if name.contains('_') || name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        let separator = if name == "cookie" { "; " } else { "," };
        let mut joined = String::new();
        for (i, value) in request.headers.get_all(name).iter().enumerate() {
            if i > 0 {
                joined.push_str(separator);
            }
            joined.push_str(&latin1(value.as_bytes()));
        }
        if name == "content-type" {
            set(intern!(py, "CONTENT_TYPE"), &joined)?;
            continue;
        }
        has_host |= name == "host";
        let key: String = "HTTP_"
            .chars()
            .chain(name.chars().map(|c| match c {
                '-' => '_',
                c => c.to_ascii_uppercase(),
            }))
            .collect();
        environ.set_item(key, joined)?;
    }
    if !has_host {
        // HTTP/2 carries the host in :authority.
        if let Some(authority) = request.uri.authority() {
            set(intern!(py, "HTTP_HOST"), authority.as_str())?;
        }
    }

    environ.set_item(intern!(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
    set(intern!(py, "wsgi.url_scheme"), request.url_scheme)?;
    environ.set_item(intern!(py, "wsgi.input"), input)?;
    environ.set_item(intern!(py, "wsgi.errors"), app.errors.bind(py))?;
    environ.set_item(intern!(py, "wsgi.multithread"), true)?;
    environ.set_item(intern!(py, "wsgi.multiprocess"), false)?;
    environ.set_item(intern!(py, "wsgi.run_once"), false)?;
    environ.set_item(intern!(py, "wsgi.input_terminated"), true)?;
    environ.set_item(intern!(py, "wsgi.file_wrapper"), app.file_wrapper.bind(py))?;
    Ok(environ)
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Bytes to a str of the same code points (latin-1), as PEP 3333 wants for native strings.
pub(super) fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => ascii.to_owned(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}
