//! The HTTP server: accept loops on every listening socket, one hyper connection per client
//! (HTTP/1.1 with keep-alive, or HTTP/2 when the client opens with its preface), and the two ways
//! to stop: drain (SIGTERM) and quick (SIGINT).
//!
//! It knows nothing of Python; each request goes to `service::handle`.

pub(crate) mod access_log;
pub(crate) mod body;
mod buffer;
mod connect;
mod django;
mod errors;
mod framing;
pub(crate) mod guard;
mod header_case;
mod linger;
pub(crate) mod listen;
pub(crate) mod proxy;
pub(crate) mod service;
pub(crate) mod shared;
mod short_body;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

pub(crate) use header_case::HeaderCase;

use guard::{Guarded, HeadLimits, Verdicts};
use linger::Close;
use listen::{Address, Listener};
use shared::{Connection, Peer, Shared};

/// How long a drain keeps serving connections that have not sent their first request yet.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerSettings {
    pub limits: HeadLimits,
    pub keep_alive: Duration,
    pub graceful_timeout: Duration,
}

/// How the server was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM: stop accepting, let in-flight requests finish.
    Drain,
    /// SIGINT: stop now.
    Quick,
}

/// A connection just accepted, and where.
struct Accepted {
    stream: Stream,
    local: Address,
}

enum Stream {
    Tcp(tokio::net::TcpStream, std::net::SocketAddr),
    Unix(tokio::net::UnixStream),
}

/// A listening socket in tokio's hands.
enum Accepting {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Accepting {
    fn new(listener: Listener) -> std::io::Result<Self> {
        Ok(match listener {
            Listener::Tcp(listener) => Accepting::Tcp(tokio::net::TcpListener::from_std(listener)?),
            Listener::Unix(listener, _) => {
                Accepting::Unix(tokio::net::UnixListener::from_std(listener)?)
            }
        })
    }

    async fn accept(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Accepting::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                Stream::Tcp(stream, peer)
            }
            Accepting::Unix(listener) => Stream::Unix(listener.accept().await?.0),
        })
    }
}

/// Serves until `stop` fires; returns once connections are drained (or the grace period ends).
pub(crate) async fn run(
    listeners: Vec<Listener>,
    shared: Arc<Shared>,
    settings: ServerSettings,
    mut stop: watch::Receiver<Option<Stop>>,
) -> std::io::Result<Stop> {
    // Accept loops only accept; this loop owns every connection, so SIGTERM can drain them all.
    let (accepted_tx, mut accepted) = mpsc::channel::<Accepted>(64);
    let (closing_tx, _) = watch::channel(false);
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let local = listener.address()?;
        let listener = Accepting::new(listener)?;
        let mut closing = closing_tx.subscribe();
        let accepted_tx = accepted_tx.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = closing.changed() => break,
                    result = listener.accept() => match result {
                        Ok(stream) => {
                            let local = local.clone();
                            if accepted_tx.send(Accepted { stream, local }).await.is_err() {
                                break;
                            }
                        }
                        Err(err) => {
                            // Out of file descriptors and the like: pause instead of spinning.
                            tracing::error!("accept failed: {err}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
        }));
    }
    drop(accepted_tx);

    let graceful = GracefulShutdown::new();
    let how = loop {
        if let Some(how) = *stop.borrow_and_update() {
            break how;
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { break Stop::Quick },
            Some(accepted) = accepted.recv() => {
                serve_connection(accepted, &shared, settings, &graceful);
            }
        }
    };
    let _ = closing_tx.send(true);
    for task in accept_tasks {
        let _ = task.await;
    }
    if how == Stop::Drain {
        // Connections accepted but not yet picked up are ours: the kernel will not hand them to
        // another worker, so they are served, not dropped.
        while let Ok(accepted) = accepted.try_recv() {
            serve_connection(accepted, &shared, settings, &graceful);
        }
        // A connection whose request has not arrived yet counts as idle, and a graceful
        // shutdown would close it unanswered: give fresh connections a moment to send it.
        let drained = async {
            tokio::time::sleep(SETTLE.min(settings.graceful_timeout)).await;
            tokio::time::timeout(settings.graceful_timeout, graceful.shutdown()).await
        };
        tokio::select! {
            result = drained => if result.is_err() {
                tracing::warn!("graceful timeout reached with requests still in flight");
            },
            // A second signal during the drain: stop now.
            _ = stop.wait_for(|how| *how == Some(Stop::Quick)) => return Ok(Stop::Quick),
        }
    }
    Ok(how)
}

fn serve_connection(
    accepted: Accepted,
    shared: &Arc<Shared>,
    settings: ServerSettings,
    graceful: &GracefulShutdown,
) {
    let local = accepted.local;
    let watcher = graceful.watcher();
    match accepted.stream {
        Stream::Tcp(stream, peer) => {
            let _ = stream.set_nodelay(true);
            start(stream, Peer::Tcp(peer), local, shared, settings, watcher);
        }
        Stream::Unix(stream) => start(stream, Peer::Unix, local, shared, settings, watcher),
    }
}

/// Serves a stream, after a TLS handshake when the server has a certificate. A drain waits for
/// a handshake under way (it holds a watcher), at most `--keep-alive`.
fn start<S>(
    stream: S,
    peer: Peer,
    local: Address,
    shared: &Arc<Shared>,
    settings: ServerSettings,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Close + Unpin + Send + 'static,
{
    let Some(tls) = &shared.tls else {
        return serve_stream(stream, peer, local, false, shared, settings, watcher);
    };
    let acceptor = tls.acceptor();
    let shared = shared.clone();
    tokio::spawn(async move {
        match tokio::time::timeout(settings.keep_alive, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => serve_stream(stream, peer, local, true, &shared, settings, watcher),
            Ok(Err(err)) => tracing::debug!("TLS handshake with {peer} failed: {err}"),
            Err(_) => tracing::debug!("{peer} did not finish its TLS handshake in time"),
        }
    });
}

fn serve_stream<S>(
    stream: S,
    peer: Peer,
    local: Address,
    tls: bool,
    shared: &Arc<Shared>,
    settings: ServerSettings,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Close + Unpin + Send + 'static,
{
    let verdicts = Verdicts::default();
    let guarded = Guarded::new(stream, settings.limits, verdicts.clone())
        .first_byte_within(settings.keep_alive);
    let io = TokioIo::new(guarded);
    let conn = Arc::new(Connection {
        peer,
        local,
        tls,
        verdicts,
    });
    let shared = shared.clone();
    let service =
        hyper::service::service_fn(move |req| service::handle(shared.clone(), conn.clone(), req));

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(settings.keep_alive)
        // The guard judges the field count; hyper must let one more through for it to do so.
        .max_headers(settings.limits.fields + 1)
        // And a head as large as gunicorn's header buffer (hyper's own default is 400 KiB).
        .max_buf_size(settings.limits.head_bytes().max(8192))
        .preserve_header_case(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(settings.limits.fields * settings.limits.field_size).unwrap_or(u32::MAX),
        );
    // Upgrades only so a CONNECT's answer can be written whole (server/connect.rs).
    let connection = builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let watched = watcher.watch(connection);
    tokio::spawn(async move {
        if let Err(err) = watched.await {
            tracing::debug!("connection from {peer} ended: {err}");
        }
    });
}
