//! The answer side of WSGI: `start_response` (with `exc_info` and the `write()` callable it
//! returns), and iterating the application's iterable into the reply channels.
//!
//! PEP 3333's order is kept: the head goes out just before the first non-empty chunk (so
//! `start_response` may be called late, inside a generator), or at the end for an empty body.
//! A client that went away turns every later send into a no-op, and iteration stops.

use std::sync::Mutex;

use bytes::Bytes;
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::Reply;

/// One piece of the response body, or the error that aborts it mid-stream.
pub(crate) use crate::body::Chunk;

/// Status and headers as the application gave them (names keep their case).
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, Bytes)>,
    /// The whole body, when the application's answer was already complete in memory (Django's
    /// HttpResponse, a list): it travels with the head, and the body channel stays empty.
    pub body: Option<Bytes>,
}

/// The application failed before a response head could be sent.
#[derive(Debug, Clone, Copy)]
pub struct WsgiFailure;

struct State {
    reply: Option<Reply>,
    pending: Option<ResponseHead>,
    head_sent: bool,
    client_gone: bool,
    body: Option<tokio::sync::mpsc::Sender<Chunk>>,
}

#[pyclass(module = "ficus")]
pub struct Responder {
    state: Mutex<State>,
}

impl Responder {
    pub fn new(reply: Reply) -> Self {
        let body = reply.body.clone();
        Self {
            state: Mutex::new(State {
                reply: Some(reply),
                pending: None,
                head_sent: false,
                client_gone: false,
                body: Some(body),
            }),
        }
    }

    fn state(&self) -> PyResult<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| PyAssertionError::new_err("the WSGI response state is poisoned"))
    }

    /// Sends the pending head if it has not gone yet.
    fn send_head(&self) -> PyResult<()> {
        let mut state = self.state()?;
        if state.head_sent {
            return Ok(());
        }
        let head = state.pending.take().ok_or_else(|| {
            PyAssertionError::new_err("response body sent before start_response()")
        })?;
        state.head_sent = true;
        if let Some(reply) = state.reply.take()
            && reply.head.send(Ok(head)).is_err()
        {
            state.client_gone = true;
        }
        Ok(())
    }

    /// Sends the head with the whole body in one hand-over, when the head has not gone yet
    /// (else the body follows as a chunk).
    fn send_whole(&self, py: Python<'_>, body: Bytes) -> PyResult<()> {
        let mut state = self.state()?;
        let Some(mut head) = state.pending.take() else {
            // The head went out already (through write()), or start_response() was never
            // called: an ordinary chunk, which sends or refuses as the stream would.
            drop(state);
            self.send_chunk(py, &body)?;
            return Ok(());
        };
        head.body = Some(body);
        state.head_sent = true;
        state.body = None;
        if let Some(reply) = state.reply.take()
            && reply.head.send(Ok(head)).is_err()
        {
            state.client_gone = true;
        }
        Ok(())
    }

    /// Sends one body chunk; returns false when nobody is listening any more.
    fn send_chunk(&self, py: Python<'_>, data: &[u8]) -> PyResult<bool> {
        if data.is_empty() {
            return Ok(!self.state()?.client_gone);
        }
        self.send_head()?;
        let sender = {
            let state = self.state()?;
            if state.client_gone {
                return Ok(false);
            }
            state.body.clone()
        };
        let Some(sender) = sender else {
            return Ok(false);
        };
        let chunk = Bytes::copy_from_slice(data);
        // Detached: the async side may take a while to drain a slow client.
        let sent = py.detach(|| sender.blocking_send(Ok(chunk)).is_ok());
        if !sent {
            self.state()?.client_gone = true;
        }
        Ok(sent)
    }

    /// End of a successful response: a head still pending goes out now (empty body).
    pub fn finish(&self, _py: Python<'_>) -> PyResult<()> {
        self.send_head()?;
        if let Ok(mut state) = self.state() {
            state.body = None;
        }
        Ok(())
    }

    /// The application failed: a 500 if no head went out yet, else the stream is cut short.
    pub fn fail(&self, _py: Python<'_>) {
        let Ok(mut state) = self.state() else {
            return;
        };
        if let Some(reply) = state.reply.take() {
            let _ = reply.head.send(Err(WsgiFailure));
        } else if let Some(body) = state.body.take() {
            let _ = body.try_send(Err(std::io::Error::other(
                "the application failed while streaming its response",
            )));
        }
        state.body = None;
    }

    fn start(
        &self,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let state = self.state()?;
            if state.head_sent {
                return match exc_info {
                    // PEP 3333: too late to change the head, so re-raise the original error.
                    Some(info) => Err(reraise(info)),
                    None => Err(PyAssertionError::new_err(
                        "start_response() called again after the headers were sent",
                    )),
                };
            }
            if state.pending.is_some() && exc_info.is_none() {
                return Err(PyAssertionError::new_err(
                    "start_response() called a second time without exc_info",
                ));
            }
        }
        let head = parse_head(status, headers)?;
        self.state()?.pending = Some(head);
        Ok(())
    }
}

fn reraise(info: &Bound<'_, PyAny>) -> PyErr {
    match info.cast::<PyTuple>().ok().and_then(|t| t.get_item(1).ok()) {
        Some(value) => PyErr::from_value(value),
        None => PyTypeError::new_err("exc_info must be a (type, value, traceback) tuple"),
    }
}

fn parse_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<ResponseHead> {
    let status = status
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("status must be a str, like '200 OK'"))?
        .to_str()?
        .to_owned();
    let code = status
        .get(..3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=999).contains(c) && status.as_bytes().get(3).is_none_or(|&b| b == b' '))
        .ok_or_else(|| PyValueError::new_err(format!("invalid WSGI status {status:?}")))?;
    let reason = status.get(4..).unwrap_or("").to_owned();

    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err("response headers must be a list of (name, value) tuples")
    })?;
    let mut parsed = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err("each response header must be a (name, value) tuple")
        })?;
        if pair.len() != 2 {
            return Err(PyTypeError::new_err(
                "each response header must be a (name, value) tuple",
            ));
        }
        let name: String = pair.get_item(0)?.extract()?;
        let value: String = pair.get_item(1)?.extract()?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(PyValueError::new_err(format!(
                "invalid header name {name:?}"
            )));
        }
        // gunicorn strips spaces and tabs around a value; Django's cookies start with one.
        let value = latin1(value.trim_matches([' ', '\t']))
            .filter(|v| !v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0))
            .ok_or_else(|| PyValueError::new_err(format!("invalid value for header {name:?}")))?;
        parsed.push((name, Bytes::from(value)));
    }
    Ok(ResponseHead {
        status: code,
        reason,
        headers: parsed,
        body: None,
    })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// PEP 3333 native strings carry latin-1 text.
fn latin1(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

/// The `start_response` callable handed to the application.
#[pyclass(module = "ficus")]
pub struct StartResponse {
    pub responder: Py<Responder>,
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Write> {
        self.responder.borrow(py).start(status, headers, exc_info)?;
        Ok(Write {
            responder: self.responder.clone_ref(py),
        })
    }
}

/// The legacy `write(data)` callable that `start_response` returns.
#[pyclass(module = "ficus")]
pub struct Write {
    responder: Py<Responder>,
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = data
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("write() takes bytes"))?;
        self.responder.borrow(py).send_chunk(py, data.as_bytes())?;
        Ok(())
    }
}

/// Iterates the application's iterable into the reply: gathered and handed over with the head
/// when it is already complete in memory, else chunk by chunk as it is produced.
pub(super) fn drain(
    py: Python<'_>,
    iterable: &Bound<'_, PyAny>,
    responder: &Py<Responder>,
) -> PyResult<()> {
    let responder = responder.borrow(py);
    if in_memory(py, iterable) {
        // One hand-over instead of a head and a chunk: the Python thread keeps the GIL, and
        // the async side wakes once.
        let mut chunks = Vec::new();
        for item in iterable.try_iter()? {
            chunks.push(bytes_of(&item?)?);
        }
        return responder.send_whole(py, join(chunks));
    }
    for item in iterable.try_iter()? {
        let chunk = bytes_of(&item?)?;
        if !responder.send_chunk(py, chunk.as_bytes())? {
            break;
        }
    }
    Ok(())
}

/// Whether the iterable holds its whole body already: a list or tuple, or a Django response
/// that is not a streaming one. Generators, file wrappers and StreamingHttpResponse stream.
fn in_memory(py: Python<'_>, iterable: &Bound<'_, PyAny>) -> bool {
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return true;
    }
    iterable
        .getattr(pyo3::intern!(py, "streaming"))
        .is_ok_and(|streaming| streaming.is(pyo3::types::PyBool::new(py, false)))
}

fn bytes_of<'py>(item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    item.cast::<PyBytes>().cloned().map_err(|_| {
        PyTypeError::new_err(format!(
            "the WSGI iterable yielded {}, not bytes",
            item.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// The chunks as one buffer; a single large chunk is shared with Python rather than copied.
fn join(chunks: Vec<Bound<'_, PyBytes>>) -> Bytes {
    const SHARE_FROM: usize = 64 * 1024;
    match chunks.as_slice() {
        [] => Bytes::new(),
        [only] if only.as_bytes().len() >= SHARE_FROM => {
            Bytes::from_owner(pyo3::pybacked::PyBackedBytes::from(only.clone()))
        }
        [only] => Bytes::copy_from_slice(only.as_bytes()),
        many => {
            let mut joined = Vec::with_capacity(many.iter().map(|c| c.as_bytes().len()).sum());
            for chunk in many {
                joined.extend_from_slice(chunk.as_bytes());
            }
            Bytes::from(joined)
        }
    }
}
