//! Turns `-b` addresses (gunicorn's forms: HOST, HOST:PORT, [IPV6]:PORT; PORT from the
//! environment when no -b is given) into listening sockets.

use std::net::{SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

const BACKLOG: i32 = 2048;

#[derive(Debug, thiserror::Error)]
pub(crate) enum BindError {
    #[error(
        "-b {0}: unix sockets and file descriptors are not supported yet; bind a TCP address such as 127.0.0.1:8000"
    )]
    Unsupported(String),
    #[error("-b {0}: not an address; use HOST, HOST:PORT or [IPV6]:PORT")]
    BadAddress(String),
    #[error("cannot listen on {addr}: {source} (is another server already using it?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The addresses to bind: the -b list, else 0.0.0.0:$PORT, else 127.0.0.1:8000.
pub(crate) fn addresses(binds: &[String]) -> Result<Vec<SocketAddr>, BindError> {
    let specs: Vec<String> = if binds.is_empty() {
        match std::env::var("PORT") {
            Ok(port) if !port.is_empty() => vec![format!("0.0.0.0:{port}")],
            _ => vec!["127.0.0.1:8000".to_owned()],
        }
    } else {
        binds.to_vec()
    };
    let mut out = Vec::new();
    for spec in specs {
        out.extend(parse(&spec)?);
    }
    Ok(out)
}

fn parse(spec: &str) -> Result<Vec<SocketAddr>, BindError> {
    if spec.starts_with("unix:") || spec.starts_with("fd://") {
        return Err(BindError::Unsupported(spec.to_owned()));
    }
    let with_port = if spec.starts_with('[') {
        if spec.contains("]:") {
            spec.to_owned()
        } else {
            format!("{spec}:8000")
        }
    } else if spec.contains(':') {
        spec.to_owned()
    } else {
        format!("{spec}:8000")
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|_| BindError::BadAddress(spec.to_owned()))?
        .collect();
    if addrs.is_empty() {
        return Err(BindError::BadAddress(spec.to_owned()));
    }
    Ok(addrs)
}

pub(crate) fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorn_address_forms_parse() {
        assert_eq!(
            parse("127.0.0.1:9000").unwrap(),
            vec!["127.0.0.1:9000".parse().unwrap()]
        );
        assert_eq!(
            parse("0.0.0.0").unwrap(),
            vec!["0.0.0.0:8000".parse().unwrap()]
        );
        assert_eq!(
            parse("[::1]:9000").unwrap(),
            vec!["[::1]:9000".parse().unwrap()]
        );
        assert_eq!(parse("[::1]").unwrap(), vec!["[::1]:8000".parse().unwrap()]);
        assert!(parse("unix:/tmp/x.sock").is_err());
        assert!(parse("300.1.1.1:80").is_err());
    }
}
