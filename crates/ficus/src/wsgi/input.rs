//! `wsgi.input`: the request body as a Python file-like object (`read`, `readline`,
//! `readlines`, iteration), streamed from hyper as the application reads it.
//!
//! Reads never go past CONTENT_LENGTH, and block only while detached from Python, with a timeout,
//! so a slow client holds this one thread and never the GIL.

use std::sync::Mutex;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// Where the body comes from.
pub enum BodySource {
    Empty,
    /// Already read (a de-chunked body, buffered so the application gets a CONTENT_LENGTH).
    Buffered(Bytes),
    /// Still on the socket.
    Stream(Incoming),
}

struct Reader {
    source: BodySource,
    buffer: BytesMut,
    /// Bytes the application may still read (CONTENT_LENGTH minus what it has read).
    remaining: u64,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

#[pyclass(module = "ficus")]
pub struct Input {
    reader: Mutex<Reader>,
}

impl Input {
    pub fn new(
        source: BodySource,
        content_length: u64,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
    ) -> Self {
        Self {
            reader: Mutex::new(Reader {
                source,
                buffer: BytesMut::new(),
                remaining: content_length,
                runtime,
                timeout,
            }),
        }
    }

    /// Lets go of the request body once the response is done. The application may keep the
    /// environ alive (Django's request sits in reference cycles until the garbage collector
    /// runs), and while hyper's body lives, hyper waits for it to be read before it can close
    /// or reuse the connection: a view that answered without reading a large body would hang
    /// the client.
    pub fn release(&self) {
        if let Ok(mut reader) = self.reader.lock() {
            reader.source = BodySource::Empty;
            reader.buffer.clear();
            reader.remaining = 0;
        }
    }

    fn with_reader<T>(&self, f: impl FnOnce(&mut Reader) -> PyResult<T>) -> PyResult<T> {
        let mut reader = self
            .reader
            .lock()
            .map_err(|_| PyOSError::new_err("wsgi.input is unusable after an earlier failure"))?;
        f(&mut reader)
    }
}

impl Reader {
    /// Makes `want` bytes available in the buffer, or as many as the body still has.
    fn fill(&mut self, py: Python<'_>, want: usize) -> PyResult<()> {
        let want = want.min(self.buffer.len() + self.unbuffered());
        while self.buffer.len() < want {
            let next = match &mut self.source {
                BodySource::Empty => None,
                BodySource::Buffered(bytes) => (!bytes.is_empty()).then(|| std::mem::take(bytes)),
                BodySource::Stream(body) => {
                    let (runtime, timeout) = (&self.runtime, self.timeout);
                    let frame = py.detach(|| {
                        runtime
                            .block_on(async { tokio::time::timeout(timeout, body.frame()).await })
                    });
                    match frame {
                        Err(_) => {
                            return Err(PyOSError::new_err(
                                "timed out reading the request body from the client",
                            ));
                        }
                        Ok(None) => None,
                        Ok(Some(Err(err))) => {
                            return Err(PyOSError::new_err(format!(
                                "the client's request body could not be read: {err}"
                            )));
                        }
                        Ok(Some(Ok(frame))) => Some(frame.into_data().unwrap_or_default()),
                    }
                }
            };
            match next {
                Some(data) if !data.is_empty() => self.buffer.extend_from_slice(&data),
                Some(_) => {}
                None => {
                    self.source = BodySource::Empty;
                    break;
                }
            }
        }
        Ok(())
    }

    fn unbuffered(&self) -> usize {
        let left = self.remaining.saturating_sub(self.buffer.len() as u64);
        match self.source {
            BodySource::Empty => 0,
            _ => usize::try_from(left).unwrap_or(usize::MAX),
        }
    }

    fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.buffer.len());
        self.remaining -= n as u64;
        self.buffer.split_to(n).freeze()
    }

    fn read(&mut self, py: Python<'_>, size: Option<usize>) -> PyResult<Bytes> {
        let want = size.unwrap_or(usize::MAX);
        self.fill(py, want)?;
        Ok(self.take(want))
    }

    fn readline(&mut self, py: Python<'_>, limit: Option<usize>) -> PyResult<Bytes> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buffer[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(self.take((scanned + pos + 1).min(limit)));
            }
            scanned = self.buffer.len();
            if scanned >= limit || self.unbuffered() == 0 {
                return Ok(self.take(limit));
            }
            self.fill(py, scanned + 8192)?;
            if self.buffer.len() == scanned {
                return Ok(self.take(limit));
            }
        }
    }
}

/// PEP 3333 passes sizes as optional ints; negative or None means "all".
fn size_arg(size: Option<i64>) -> Option<usize> {
    size.filter(|s| *s >= 0).map(|s| s as usize)
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.with_reader(|r| r.read(py, size_arg(size)))?;
        Ok(PyBytes::new(py, data.chunk()))
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.with_reader(|r| r.readline(py, size_arg(size)))?;
        Ok(PyBytes::new(py, &line))
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<i64>) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint).filter(|h| *h > 0).unwrap_or(usize::MAX);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.with_reader(|r| r.readline(py, None))?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if total >= hint {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.with_reader(|r| r.readline(py, None))?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}
