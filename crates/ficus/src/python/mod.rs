//! The embedded Python runtime: interpreter start-up, the application, and the thread pool that
//! is the only way into Python.

pub(crate) mod app;
pub(crate) mod django;
pub(crate) mod pool;
pub(crate) mod runtime;
