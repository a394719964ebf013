//! The embedded Python runtime: interpreter start-up, the application, and the thread pool that
//! is the only way into Python.

pub mod app;
pub mod django;
pub mod pool;
pub mod runtime;
