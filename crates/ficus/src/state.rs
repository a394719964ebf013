//! How commands find the running server: `ficus serve` writes its address and pid to a small
//! JSON state file (`.ficus/server.json` by default) and removes it when it stops; `ficus reload`
//! and `ficus routes` read it and talk to the server's admin paths over plain HTTP/1.1.
//!
//! The client here is deliberately tiny (one request, `Connection: close`): it only ever talks to
//! ficus's own admin answers, which always carry a Content-Length.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::server::listen::Address;

pub(crate) const DEFAULT_PATH: &str = ".ficus/server.json";

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct State {
    pub pid: u32,
    /// Where the admin paths answer, as `http://127.0.0.1:8000` or `unix:/run/app.sock`.
    pub url: String,
}

impl State {
    /// The state of this process, listening on `addr` (a wildcard address is reached through
    /// loopback, which the admin paths admit without a token, as they admit a unix socket).
    pub(crate) fn of_this_process(addr: &Address, tls: bool) -> Self {
        let url = match addr {
            Address::Tcp(addr) => {
                let mut reach = *addr;
                if reach.ip().is_unspecified() {
                    reach.set_ip(match addr {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                if tls {
                    format!("https://{reach}")
                } else {
                    format!("http://{reach}")
                }
            }
            unix => unix.to_string(),
        };
        State {
            pid: std::process::id(),
            url,
        }
    }

    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
    }

    /// Removes the file if it is still this process's (another server may have written it since).
    pub(crate) fn remove(path: &Path) {
        if let Ok(text) = std::fs::read(path)
            && let Ok(state) = serde_json::from_slice::<State>(&text)
            && state.pid == std::process::id()
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The server a command should talk to: `--server`, else the state file; None when neither
/// names one.
/// Which running server a command talks to.
#[derive(Debug, Clone)]
pub(crate) struct ServerRef {
    /// Its address, as `http://127.0.0.1:8000`; else the one in the state file.
    pub(crate) server: Option<String>,
    /// The state file `ficus serve` wrote.
    pub(crate) state_file: PathBuf,
    /// The admin token, for a server on another host.
    pub(crate) admin_token: Option<String>,
}

pub(crate) fn server_url(args: &ServerRef) -> anyhow::Result<Option<String>> {
    if let Some(url) = &args.server {
        return Ok(Some(url.trim_end_matches('/').to_owned()));
    }
    let text = match std::fs::read(&args.state_file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read {}", args.state_file.display()));
        }
    };
    let state: State = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a ficus state file", args.state_file.display()))?;
    Ok(Some(state.url))
}

/// An answer from the server: status and body.
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
}

/// A connection to `http://HOST:PORT` or `unix:PATH`, and the Host to send.
fn connect(url: &str) -> anyhow::Result<(Box<dyn ReadWrite>, String)> {
    if let Some(path) = url.strip_prefix("unix:") {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("no ficus server answers at {url}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        return Ok((Box::new(stream), "localhost".to_owned()));
    }
    if url.starts_with("https://") {
        bail!(
            "the server at {url} speaks TLS, which this command does not yet; `kill -HUP` its main process to reload it"
        );
    }
    let authority = url
        .strip_prefix("http://")
        .with_context(|| format!("`{url}` is not an http:// or unix: address"))?;
    let authority = authority.split('/').next().unwrap_or(authority);
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("no ficus server answers at {url}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok((Box::new(stream), authority.to_owned()))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Sends one request to a ficus server's admin path.
pub(crate) fn request(
    url: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    token: Option<&str>,
) -> anyhow::Result<Reply> {
    let (mut stream, authority) = connect(url)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{url} sent an incomplete answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{url} did not answer in HTTP"))?;
    Ok(Reply {
        status,
        body: body.to_owned(),
    })
}

/// `ficus reload`.
pub(crate) fn reload(args: ServerRef) -> anyhow::Result<()> {
    let Some(url) = server_url(&args)? else {
        bail!(
            "no running ficus server was found: {} does not exist (start one with `ficus serve`, or pass --server URL)",
            args.state_file.display()
        );
    };
    let reply = request(
        &url,
        "POST",
        "/_ficus/api/reload",
        &[(crate::admin::RELOAD_HEADER, "1")],
        args.admin_token.as_deref(),
    )?;
    let outcome: Option<crate::routes::ReloadOutcome> = serde_json::from_str(&reply.body).ok();
    match (reply.status, outcome) {
        (200, Some(outcome)) => {
            println!("{}", outcome.message);
            Ok(())
        }
        (_, Some(outcome)) => bail!("{}", outcome.message),
        (status, None) => bail!(
            "{url} answered {status} to the reload; is it a ficus server, and does it admit this host (--admin-token)?"
        ),
    }
}

/// The state file path a server uses; None when it writes none (`--state-file ""`).
pub(crate) fn file(path: &str) -> Option<PathBuf> {
    (!path.is_empty()).then(|| PathBuf::from(path))
}
