//! The access log, in gunicorn's default format:
//! `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`.
//!
//! One line per response, written when the response body is finished (so `%(b)s` is the real
//! byte count). It never fails a request: a write error is reported once and ignored. SIGUSR1
//! opens the file again (`reopen`).

use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;

use crate::logfile::LogFile;

pub(crate) struct AccessLog {
    out: LogFile,
    failed: AtomicBool,
}

/// What the access log needs of a request, taken before the request is consumed; `status` is
/// filled in once the response is known.
pub(crate) struct Entry {
    pub remote: String,
    pub user: String,
    pub time: String,
    pub request_line: String,
    pub status: u16,
    pub referer: String,
    pub user_agent: String,
}

impl AccessLog {
    /// `-` is stdout; anything else is a file, appended to.
    pub(crate) fn open(target: &str) -> std::io::Result<Self> {
        let out = if target == "-" {
            LogFile::stream(Box::new(std::io::stdout()))
        } else {
            LogFile::open(target.into())?
        };
        Ok(Self {
            out,
            failed: AtomicBool::new(false),
        })
    }

    /// Opens the file again (SIGUSR1, after logrotate moved it).
    pub(crate) fn reopen(&self) {
        match self.out.reopen() {
            Ok(()) => self.failed.store(false, Ordering::Relaxed),
            Err(err) => tracing::error!(
                "cannot open the access log {} again: {err}",
                self.out.name()
            ),
        }
    }

    pub(crate) fn write(&self, entry: &Entry, sent: u64) {
        let bytes = if sent == 0 {
            "-".to_owned()
        } else {
            sent.to_string()
        };
        let line = format!(
            "{} - {} {} \"{}\" {} {} \"{}\" \"{}\"\n",
            entry.remote,
            entry.user,
            entry.time,
            entry.request_line,
            entry.status,
            bytes,
            entry.referer,
            entry.user_agent
        );
        if self.out.write_all(line.as_bytes()).is_err()
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            tracing::error!("cannot write the access log; further errors are not reported");
        }
    }
}

impl Entry {
    pub(crate) fn new(
        remote: Option<std::net::IpAddr>,
        method: &http::Method,
        target: &str,
        version: http::Version,
        headers: &http::HeaderMap,
    ) -> Self {
        let header = |name: http::header::HeaderName| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "-".to_owned())
        };
        let version = match version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        Self {
            // A unix-socket client with nothing forwarded has no address.
            remote: remote.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
            user: basic_auth_user(headers).unwrap_or_else(|| "-".to_owned()),
            time: chrono::Local::now()
                .format("[%d/%b/%Y:%H:%M:%S %z]")
                .to_string(),
            request_line: format!("{method} {target} {version}"),
            status: 0,
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
        }
    }
}

fn basic_auth_user(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(
        text.split_once(':')
            .map_or(text.clone(), |(u, _)| u.to_owned()),
    )
}
