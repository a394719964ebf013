//! What every connection shares, and what a request knows of its connection: the parts of the
//! server the request path reads (the route table, the Rust handlers, the WSGI application, the
//! limits), put together once by `ficus serve`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::access_log::AccessLog;
use super::guard::Verdicts;
use super::header_case::HeaderCase;
use super::listen::Address;
use super::proxy::{ContradictoryScheme, ForwardedPolicy};
use super::tls::Tls;
use crate::admin::Admin;
use crate::metrics::Metrics;
use crate::ported::Dispatcher;
use crate::python::pool::PythonPool;
use crate::record::Recorder;
use crate::routes::LiveRoutes;
use crate::shadow::Shadow;
use crate::static_files::StaticFiles;
use crate::wsgi::WsgiApp;

/// What every connection shares.
pub(crate) struct Shared {
    pub routes: Arc<LiveRoutes>,
    /// The Rust handlers; None when they cannot run (not a Django project, unsupported database).
    pub ported: Option<Arc<Dispatcher>>,
    /// Shadow runs of the Rust handlers beside Django (present whenever `ported` is).
    pub shadow: Option<Arc<Shadow>>,
    pub pool: Arc<PythonPool>,
    pub wsgi: Arc<WsgiApp>,
    pub static_files: Option<StaticFiles>,
    pub forwarded: ForwardedPolicy,
    pub access_log: Option<Arc<AccessLog>>,
    pub header_case: HeaderCase,
    pub timeout: Duration,
    pub max_body_size: u64,
    pub metrics: Arc<Metrics>,
    /// `record = ...` sampling (the file is created at the first recorded request).
    pub recorder: Recorder,
    /// `/metrics` and the `/_ficus/` dashboard.
    pub admin: Arc<Admin>,
    /// `--max-requests` in a worker: drain and exit after so many, for a fresh one.
    pub recycle: Option<Recycle>,
    /// `--certfile`: every connection is TLS.
    pub tls: Option<Arc<Tls>>,
}

/// Counts a worker's requests and starts its drain at its limit (`--max-requests`, plus up to
/// `--max-requests-jitter`); the supervisor starts a fresh worker when it exits.
pub(crate) struct Recycle {
    limit: u64,
    served: std::sync::atomic::AtomicU64,
    stop: Arc<tokio::sync::watch::Sender<Option<super::Stop>>>,
}

impl Recycle {
    pub(crate) fn new(
        max: u64,
        jitter: u64,
        stop: Arc<tokio::sync::watch::Sender<Option<super::Stop>>>,
    ) -> Self {
        use std::hash::BuildHasher;
        let extra = match jitter {
            0 => 0,
            j => std::hash::RandomState::new().hash_one(std::process::id()) % (j + 1),
        };
        Self {
            limit: max + extra,
            served: Default::default(),
            stop,
        }
    }

    pub(super) fn count(&self) {
        if self.served.fetch_add(1, Ordering::Relaxed) + 1 == self.limit {
            tracing::info!(
                "Served {} requests (--max-requests): finishing in-flight requests, then a fresh worker takes over",
                self.limit
            );
            let _ = self.stop.send(Some(super::Stop::Drain));
        }
    }
}

/// What a request knows of its connection.
pub(crate) struct Connection {
    pub peer: Peer,
    /// The listening socket it came in on (SERVER_NAME and SERVER_PORT, as gunicorn sets them).
    pub local: Address,
    /// Over TLS (`--certfile`): the scheme is https unless a trusted proxy says otherwise.
    pub tls: bool,
    pub verdicts: Verdicts,
}

impl Connection {
    /// `wsgi.url_scheme`, as gunicorn decides it: https over TLS, else http, unless a trusted
    /// peer's secure-scheme headers say otherwise (and they must agree).
    pub(crate) fn scheme(
        &self,
        policy: &ForwardedPolicy,
        headers: &http::HeaderMap,
    ) -> Result<&'static str, ContradictoryScheme> {
        let own = if self.tls { "https" } else { "http" };
        Ok(policy.scheme(self.peer, headers)?.unwrap_or(own))
    }
}

/// The other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    Tcp(SocketAddr),
    /// A client on a unix socket (nginx on the same host, usually): it has no address, and it
    /// is trusted with the forwarded headers, as gunicorn trusts it.
    Unix,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix => f.write_str("a unix-socket client"),
        }
    }
}

impl Peer {
    pub(crate) fn ip(self) -> Option<IpAddr> {
        match self {
            Peer::Tcp(addr) => Some(addr.ip()),
            Peer::Unix => None,
        }
    }

    /// On this machine: loopback, or a unix socket.
    pub(crate) fn is_local(self) -> bool {
        self.ip().is_none_or(|ip| ip.to_canonical().is_loopback())
    }
}
