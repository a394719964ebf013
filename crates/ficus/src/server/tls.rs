//! TLS on every listening socket when `--certfile` is given (gunicorn's `is_ssl`): rustls on
//! ring, ALPN offering h2 then http/1.1, the certificate chain and key read at start-up (a bad
//! or missing one stops the start in one sentence) and again on SIGHUP (a bad one then is
//! logged, and the previous one kept). A client must finish its handshake within
//! `--keep-alive`, as it must send its request head.
//!
//! It only turns a stream into a TLS stream; what is served over it is `server`'s business.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::{self, ServerConfig};

use super::linger::Close;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("--certfile {} cannot be read as PEM certificates", path.display())]
    Certificates {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("--certfile {}: no certificate in it", .0.display())]
    NoCertificate(PathBuf),
    #[error("--keyfile {} holds no private key ficus can read", path.display())]
    Key {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("--certfile {} and --keyfile {} do not go together", cert.display(), key.display())]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// Where the certificate chain and its key are (one file may hold both, as gunicorn allows).
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// The server's TLS configuration, replaced whole on SIGHUP.
pub(crate) struct Tls {
    files: TlsFiles,
    config: ArcSwap<ServerConfig>,
}

impl Tls {
    pub(crate) fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = read(&files)?;
        Ok(Self {
            files,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again (SIGHUP): the next handshake uses them, one under way finishes
    /// with the old ones.
    pub(crate) fn reload(&self) {
        match read(&self.files) {
            Ok(config) => {
                self.config.store(Arc::new(config));
                tracing::info!("Read the certificate {} again", self.files.cert.display());
            }
            Err(err) => tracing::error!("{err}; the previous certificate stays in use"),
        }
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }
}

fn read(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Key {
        path: files.key.clone(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config_error = |source| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        // Also checks that the key is the certificate's.
        .with_single_cert(certs, key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |source| TlsError::Certificates {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// A TLS connection closes as its socket does (the lingering close reads and discards what the
/// client still sends, encrypted or not).
impl<S> Close for tokio_rustls::server::TlsStream<S>
where
    S: Close + AsyncRead + AsyncWrite + Unpin,
{
    fn close(self, client_may_send: bool) {
        let (socket, _) = self.into_inner();
        socket.close(client_may_send);
    }
}
