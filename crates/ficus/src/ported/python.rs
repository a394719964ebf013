//! The one way a Rust handler calls Python: run a closure on the Python thread pool and await its
//! result. A Python exception becomes a 500 (the project's own 500 page) with the traceback in the
//! log; a full pool becomes a 503, as for Django's own requests.
//!
//! Handlers never attach to Python themselves: the closure runs on one of the pool's threads,
//! which are attached for life, so tokio's threads are never blocked on the GIL.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use pyo3::prelude::*;

use crate::python::pool::{PoolError, PythonPool};

/// Handle to the Python thread pool, extracted with `State<PythonCalls>`.
#[derive(Clone)]
pub struct PythonCalls {
    pool: Arc<PythonPool>,
}

/// Why a Python call gave no result.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// The closure raised; `traceback` is Python's own rendering of it.
    #[error("Python raised {summary}")]
    Exception {
        /// The exception, as `str(exc)` with its type.
        summary: String,
        /// Python's `traceback.format_exception` text.
        traceback: String,
    },
    /// The Python threads could not take the call (all busy and the queue full, or stopped).
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl PythonCalls {
    pub(crate) fn new(pool: Arc<PythonPool>) -> Self {
        Self { pool }
    }

    /// Runs `f` attached to the interpreter on a Python thread and awaits what it returns.
    ///
    /// Blocking calls inside `f` (network I/O in an SDK) hold one pool thread, never a tokio
    /// thread; Python releases the GIL while it blocks, so other pool threads carry on.
    pub async fn call<T, F>(&self, f: F) -> Result<T, PythonError>
    where
        T: Send + 'static,
        F: for<'py> FnOnce(Python<'py>) -> PyResult<T> + Send + 'static,
    {
        self.pool
            .run(move |py| f(py).map_err(|err| describe(py, err)))
            .await?
    }
}

/// Renders the exception while still attached, so the error can cross back to tokio as text.
fn describe(py: Python<'_>, err: PyErr) -> PythonError {
    let summary = err.to_string();
    let traceback = py
        .import("traceback")
        .and_then(|tb| {
            tb.call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_else(|_| format!("{summary}\n"));
    PythonError::Exception { summary, traceback }
}

/// A response that asks the dispatcher to send the project's 500 page instead.
#[derive(Clone, Copy)]
pub(crate) struct ServerError;

impl ServerError {
    pub(crate) fn response() -> Response {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(ServerError);
        response
    }
}

impl IntoResponse for PythonError {
    fn into_response(self) -> Response {
        match self {
            PythonError::Exception { summary, traceback } => {
                tracing::error!("a Rust handler's Python call raised {summary}\n{traceback}");
                ServerError::response()
            }
            PythonError::Pool(PoolError::Full) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(http::header::RETRY_AFTER, "1")],
                "Every worker thread is busy; try again shortly.",
            )
                .into_response(),
            PythonError::Pool(err) => {
                tracing::error!("a Rust handler's Python call failed: {err}");
                ServerError::response()
            }
        }
    }
}
