//! The WSGI bridge (PEP 3333): runs one request through the Python application on a Python
//! thread and hands the status, headers and body chunks back to the async side over channels.
//!
//! Everything here runs on a Python pool thread, attached. It never touches hyper's connection:
//! the request arrives as plain data plus a body source, the answer leaves through `Reply`.

mod environ;
mod input;
mod response;

use crate::server::listen::Address;
use crate::server::proxy::Client;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use pyo3::prelude::*;

pub(crate) use environ::request_target;
pub(crate) use input::BodySource;
pub(crate) use response::{Chunk, ResponseHead, WsgiFailure};

use response::{Responder, StartResponse};

/// What the application sees of a request (already decided: scheme, client address, body).
pub(crate) struct WsgiRequest {
    pub method: http::Method,
    pub uri: http::Uri,
    /// The target as the client sent it, when `uri` holds it percent-encoded for hyper (a `"`
    /// in the query): RAW_URI and QUERY_STRING come from it.
    pub raw_target: Option<String>,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    /// The client as REMOTE_ADDR/REMOTE_PORT report it (the socket peer, or a trusted proxy's
    /// X-Forwarded-For).
    pub client: Client,
    /// The listening socket the request came in on.
    pub local: Address,
    pub url_scheme: &'static str,
    /// CONTENT_LENGTH: the header's, or the size of a de-chunked body.
    pub content_length: Option<u64>,
    pub body: BodySource,
}

/// Where the answer goes: the head once, then the body chunks.
pub struct Reply {
    pub head: tokio::sync::oneshot::Sender<Result<ResponseHead, WsgiFailure>>,
    pub body: tokio::sync::mpsc::Sender<Chunk>,
}

/// Chunks a streamed response may have in flight between Python and the socket.
const BODY_CHANNEL_CHUNKS: usize = 16;

/// The async side of one call to the application: its head arrives once, then its body chunks.
pub(crate) struct Answering {
    pub(crate) head: oneshot::Receiver<Result<ResponseHead, WsgiFailure>>,
    pub(crate) body: mpsc::Receiver<Chunk>,
}

impl Answering {
    /// The head and every body byte (for comparing answers, not for serving them); no head when
    /// the application failed before answering.
    pub(crate) async fn collect(mut self) -> std::io::Result<(Option<ResponseHead>, Bytes)> {
        let head = self.head.await.ok().and_then(Result::ok);
        let mut body = BytesMut::new();
        while let Some(chunk) = self.body.recv().await {
            body.extend_from_slice(&chunk?);
        }
        Ok((head, body.freeze()))
    }
}

/// The loaded application and the objects every environ shares.
pub(crate) struct WsgiApp {
    app: Py<PyAny>,
    file_wrapper: Py<PyAny>,
    errors: Py<PyAny>,
    runtime: tokio::runtime::Handle,
    body_read_timeout: Duration,
}

impl WsgiApp {
    pub(crate) fn new(
        py: Python<'_>,
        app: Py<PyAny>,
        runtime: tokio::runtime::Handle,
        body_read_timeout: Duration,
    ) -> PyResult<Self> {
        Ok(Self {
            app,
            file_wrapper: py.import("wsgiref.util")?.getattr("FileWrapper")?.unbind(),
            errors: py.import("sys")?.getattr("stderr")?.unbind(),
            runtime,
            body_read_timeout,
        })
    }

    /// Calls the application, iterates its answer into `reply`, and calls `close()` on the
    /// iterable whatever happens (success, exception, client gone).
    /// One request for the application: the call to run on a Python thread, and where its
    /// answer arrives. The server and `ficus diff`'s runner both call the application this way.
    pub(crate) fn prepare(
        self: &Arc<Self>,
        request: WsgiRequest,
    ) -> (
        impl for<'py> FnOnce(Python<'py>) + Send + 'static,
        Answering,
    ) {
        let (head, head_rx) = oneshot::channel();
        let (body, body_rx) = mpsc::channel(BODY_CHANNEL_CHUNKS);
        let app = self.clone();
        let run = move |py: Python<'_>| app.handle(py, request, Reply { head, body });
        let answering = Answering {
            head: head_rx,
            body: body_rx,
        };
        (run, answering)
    }

    pub(crate) fn handle(&self, py: Python<'_>, request: WsgiRequest, reply: Reply) {
        // Cheap clones (shared bytes); formatted only if something is logged.
        let label = (request.method.clone(), request.uri.clone());
        let responder = match Py::new(py, Responder::new(reply)) {
            Ok(responder) => responder,
            Err(err) => return log_exception(py, &label, &err),
        };
        let outcome = self.call(py, request, &responder);
        let responder = responder.borrow(py);
        match outcome {
            Ok(()) => {
                if let Err(err) = responder.finish(py) {
                    log_exception(py, &label, &err);
                    responder.fail(py);
                }
            }
            Err(err) => {
                log_exception(py, &label, &err);
                responder.fail(py);
            }
        }
    }

    fn call(
        &self,
        py: Python<'_>,
        mut request: WsgiRequest,
        responder: &Py<Responder>,
    ) -> PyResult<()> {
        let input = Bound::new(
            py,
            input::Input::new(
                std::mem::replace(&mut request.body, BodySource::Empty),
                request.content_length.unwrap_or(0),
                self.runtime.clone(),
                self.body_read_timeout,
            ),
        )?;
        let outcome = self.call_app(py, &request, &input, responder);
        input.borrow().release();
        outcome
    }

    fn call_app(
        &self,
        py: Python<'_>,
        request: &WsgiRequest,
        input: &Bound<'_, input::Input>,
        responder: &Py<Responder>,
    ) -> PyResult<()> {
        let environ = environ::build(py, request, input, self)?;
        let start_response = Py::new(
            py,
            StartResponse {
                responder: responder.clone_ref(py),
            },
        )?;
        let iterable = self.app.bind(py).call1((environ, start_response))?;
        let result = response::drain(py, &iterable, responder);
        // PEP 3333: close() on every path; Django's request_finished (and its DB connection
        // housekeeping) hangs off it.
        let closed = match iterable.getattr(pyo3::intern!(py, "close")) {
            Ok(close) => close.call0().map(drop),
            Err(_) => Ok(()),
        };
        result.and(closed)
    }
}

fn log_exception(py: Python<'_>, (method, uri): &(http::Method, http::Uri), err: &PyErr) {
    tracing::error!("Error handling request {method} {uri}");
    err.display(py);
}
