//! Turns `-b` addresses into listening sockets, in gunicorn's forms: HOST, HOST:PORT,
//! [IPV6]:PORT and `tcp://` before any of them; `unix:PATH` (or `unix://PATH`) for a socket nginx
//! reaches on the same host; `fd://N` for a socket already bound and handed over; and, as
//! gunicorn does, the sockets systemd passes by socket activation (`LISTEN_FDS`/`LISTEN_PID`),
//! which replace the `-b` list. PORT from the environment is used when no -b is given.
//!
//! A unix socket's file is this process's: a stale one (nobody listening) is replaced, a live
//! one is refused (gunicorn would silently take it over from the running server), and the file
//! is removed when the server stops (`Unlink`). Workers inherit the sockets and never remove
//! anything.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

const BACKLOG: i32 = 2048;
/// systemd's first passed descriptor (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

#[derive(Debug, thiserror::Error)]
pub(crate) enum BindError {
    #[error("-b {0}: not an address; use HOST, HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N")]
    BadAddress(String),
    #[error("cannot listen on {addr} (is another server already using it?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on unix:{}", path.display())]
    BindUnix {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on unix:{}: a server is already listening there", .0.display())]
    UnixInUse(PathBuf),
    #[error("cannot listen on unix:{}: the path exists and is not a socket", .0.display())]
    NotASocket(PathBuf),
    #[error("{what}: descriptor {fd} is not a listening stream socket ({reason})")]
    NotListening {
        what: String,
        fd: RawFd,
        reason: String,
    },
    #[error("LISTEN_FDS: `{0}` is not a number of sockets")]
    BadListenFds(String),
}

/// One `-b` address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    Tcp(SocketAddr),
    Unix(PathBuf),
    Fd(RawFd),
}

/// A listening socket, TCP or unix.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(std::net::TcpListener),
    Unix(UnixListener, Arc<Path>),
}

/// Where a listening socket listens: what the log, SERVER_NAME and SERVER_PORT tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Tcp(SocketAddr),
    Unix(Arc<Path>),
}

impl fmt::Display for Address {
    /// As gunicorn's "Listening at:" line shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "http://{addr}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Address {
    /// As gunicorn's "Listening at:" line shows it, https for a TLS server.
    pub(crate) fn url(&self, tls: bool) -> String {
        match self {
            Address::Tcp(addr) if tls => format!("https://{addr}"),
            other => other.to_string(),
        }
    }
}

impl Listener {
    /// A descriptor inherited from a supervisor, systemd or `fd://N`, which this takes over.
    pub(crate) fn inherited(fd: RawFd, what: &str) -> Result<Self, BindError> {
        let refuse = |reason: String| BindError::NotListening {
            what: what.to_owned(),
            fd,
            reason,
        };
        // SAFETY: fcntl(F_GETFD) only reads the descriptor's flags; it fails on a closed one.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(refuse(std::io::Error::last_os_error().to_string()));
        }
        // SAFETY: the descriptor is open (checked above); borrowed only to look at it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let probe = SockRef::from(&borrowed);
        let listening = probe.is_listener().map_err(|e| refuse(e.to_string()))?;
        let kind = probe.r#type().map_err(|e| refuse(e.to_string()))?;
        if !listening || kind != Type::STREAM {
            return Err(refuse("not listening".to_owned()));
        }
        // SAFETY: a listening socket handed to this process to serve on; nothing else in the
        // process owns it, so the socket may take ownership.
        let socket = unsafe { Socket::from_raw_fd(fd) };
        socket
            .set_nonblocking(true)
            .map_err(|e| refuse(e.to_string()))?;
        // Inherited once is enough: a program the application starts must not hold it open.
        socket
            .set_cloexec(true)
            .map_err(|e| refuse(e.to_string()))?;
        let local = socket.local_addr().map_err(|e| refuse(e.to_string()))?;
        if local.is_unix() {
            let path = local
                .as_pathname()
                .map_or_else(|| PathBuf::from("(unnamed)"), Path::to_path_buf);
            let fd = OwnedFd::from(socket);
            Ok(Listener::Unix(UnixListener::from(fd), path.into()))
        } else {
            Ok(Listener::Tcp(socket.into()))
        }
    }

    pub(crate) fn address(&self) -> std::io::Result<Address> {
        Ok(match self {
            Listener::Tcp(listener) => Address::Tcp(listener.local_addr()?),
            Listener::Unix(_, path) => Address::Unix(path.clone()),
        })
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(listener) => listener.as_raw_fd(),
            Listener::Unix(listener, _) => listener.as_raw_fd(),
        }
    }

    /// The TCP address, for what only TCP can reach (the state file's admin address).
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }
}

/// Unix socket files this process created, removed when it stops (gunicorn's close_sockets).
#[derive(Debug, Default)]
pub(crate) struct Unlink(Vec<PathBuf>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What the main process listens on: systemd's sockets when it passed some, else the -b list
/// (else 0.0.0.0:$PORT, else 127.0.0.1:8000). `umask` sets a unix socket's mode, as gunicorn's
/// `--umask` does (0, its default, lets every local user connect, nginx's included).
pub(crate) fn open(binds: &[String], umask: u32) -> Result<(Vec<Listener>, Unlink), BindError> {
    let mut unlink = Unlink::default();
    if let Some(count) = systemd_sockets()? {
        if !binds.is_empty() {
            tracing::warn!(
                "systemd passed {count} socket(s) (LISTEN_FDS): serving on those; -b {} is not used, as in gunicorn",
                binds.join(" -b ")
            );
        }
        let listeners = (0..count)
            .map(|i| Listener::inherited(LISTEN_FDS_START + i, "LISTEN_FDS"))
            .collect::<Result<_, _>>()?;
        return Ok((listeners, unlink));
    }
    let specs: Vec<String> = if binds.is_empty() {
        match std::env::var("PORT") {
            Ok(port) if !port.is_empty() => vec![format!("0.0.0.0:{port}")],
            _ => vec!["127.0.0.1:8000".to_owned()],
        }
    } else {
        binds.to_vec()
    };
    let mut listeners = Vec::new();
    for spec in &specs {
        for bind in parse(spec)? {
            listeners.push(match bind {
                Bind::Tcp(addr) => Listener::Tcp(bind_tcp(addr)?),
                Bind::Unix(path) => {
                    let listener = bind_unix(&path, umask)?;
                    unlink.0.push(path.clone());
                    Listener::Unix(listener, path.into())
                }
                Bind::Fd(fd) => Listener::inherited(fd, spec)?,
            });
        }
    }
    Ok((listeners, unlink))
}

/// How many sockets systemd passed to this very process (LISTEN_PID names it; a child that
/// inherited the variables is not meant), clearing the variables so no child reads them again.
fn systemd_sockets() -> Result<Option<RawFd>, BindError> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    // SAFETY: called before any thread starts (serve binds first), so nothing reads the
    // environment concurrently.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    match fds.trim().parse::<RawFd>() {
        Ok(0) => Ok(None),
        Ok(count) if count > 0 => Ok(Some(count)),
        _ => Err(BindError::BadListenFds(fds)),
    }
}

fn parse(spec: &str) -> Result<Vec<Bind>, BindError> {
    if let Some(path) = spec.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(BindError::BadAddress(spec.to_owned()));
        }
        return Ok(vec![Bind::Unix(PathBuf::from(path))]);
    }
    if let Some(fd) = spec.strip_prefix("fd://") {
        return match fd.parse::<RawFd>() {
            Ok(fd) if fd >= 0 => Ok(vec![Bind::Fd(fd)]),
            _ => Err(BindError::BadAddress(spec.to_owned())),
        };
    }
    let netloc = spec.strip_prefix("tcp://").unwrap_or(spec);
    let with_port = if netloc.starts_with('[') {
        if netloc.contains("]:") {
            netloc.to_owned()
        } else {
            format!("{netloc}:8000")
        }
    } else if netloc.contains(':') {
        netloc.to_owned()
    } else {
        format!("{netloc}:8000")
    };
    let addrs: Vec<Bind> = with_port
        .to_socket_addrs()
        .map_err(|_| BindError::BadAddress(spec.to_owned()))?
        .map(Bind::Tcp)
        .collect();
    if addrs.is_empty() {
        return Err(BindError::BadAddress(spec.to_owned()));
    }
    Ok(addrs)
}

fn bind_tcp(addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    let fail = |source| BindError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(fail)?;
    }
    socket.set_nonblocking(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)?;
    Ok(socket.into())
}

fn bind_unix(path: &Path, umask: u32) -> Result<UnixListener, BindError> {
    let fail = |source| BindError::BindUnix {
        path: path.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(BindError::NotASocket(path.to_owned()));
        }
        Ok(_) => {
            // A socket file outlives a server killed without its cleanup: it is stale when
            // nobody accepts on it, and only then replaced.
            match UnixStream::connect(path) {
                Ok(_) => return Err(BindError::UnixInUse(path.to_owned())),
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(fail)?;
                }
                Err(err) => return Err(fail(err)),
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(fail(err)),
    }
    let listener = UnixListener::bind(path).map_err(fail)?;
    // The mode is set on the path, after bind: until then the process umask's (stricter,
    // usually) applies, so nobody gets in early.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777 & !umask))
        .map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorn_address_forms_parse() {
        let tcp = |s: &str| Bind::Tcp(s.parse().unwrap());
        assert_eq!(
            parse("127.0.0.1:9000").unwrap(),
            vec![tcp("127.0.0.1:9000")]
        );
        assert_eq!(parse("0.0.0.0").unwrap(), vec![tcp("0.0.0.0:8000")]);
        assert_eq!(parse("[::1]:9000").unwrap(), vec![tcp("[::1]:9000")]);
        assert_eq!(parse("[::1]").unwrap(), vec![tcp("[::1]:8000")]);
        assert_eq!(
            parse("tcp://127.0.0.1:9000").unwrap(),
            vec![tcp("127.0.0.1:9000")]
        );
        assert_eq!(
            parse("unix:/run/app.sock").unwrap(),
            vec![Bind::Unix("/run/app.sock".into())]
        );
        assert_eq!(
            parse("unix:///run/app.sock").unwrap(),
            vec![Bind::Unix("/run/app.sock".into())]
        );
        assert_eq!(
            parse("unix:app.sock").unwrap(),
            vec![Bind::Unix("app.sock".into())]
        );
        assert_eq!(parse("fd://3").unwrap(), vec![Bind::Fd(3)]);
        assert!(parse("fd://three").is_err());
        assert!(parse("unix:").is_err());
        assert!(parse("300.1.1.1:80").is_err());
    }

    #[test]
    fn a_live_unix_socket_is_refused_and_a_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sock");
        let live = bind_unix(&path, 0).unwrap();
        assert!(matches!(bind_unix(&path, 0), Err(BindError::UnixInUse(_))));
        drop(live);
        // The file stays behind, as after a server killed with SIGKILL.
        assert!(path.exists());
        let again = bind_unix(&path, 0o007).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o770);
        drop(again);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(bind_unix(&path, 0), Err(BindError::NotASocket(_))));
    }

    #[test]
    fn a_descriptor_that_is_not_a_listening_socket_is_refused() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = Listener::inherited(file.as_raw_fd(), "fd://N").unwrap_err();
        assert!(
            err.to_string().contains("is not a listening stream socket"),
            "{err}"
        );
        // Still open: it was not ours to close.
        drop(file);
        let err = Listener::inherited(987, "fd://987").unwrap_err();
        assert!(err.to_string().contains("descriptor 987"), "{err}");
    }
}
