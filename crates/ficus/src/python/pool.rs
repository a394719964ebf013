//! The Python thread pool: a fixed set of OS threads, each attached to the interpreter once for
//! its whole life and detached while it waits, fed through a bounded queue.
//!
//! Keeping one thread state per thread is what makes `threading.local` and Django's persistent
//! database connections (`CONN_MAX_AGE`) work. Nothing else in ficus may attach to Python on a
//! tokio thread: all Python work goes through `submit` or `run`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use pyo3::prelude::*;

/// What the Python thread pool is doing right now.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct PoolFigures {
    pub threads: usize,
    pub busy: usize,
    pub queued: usize,
}

/// Work for a Python thread. It runs attached, with the thread's persistent thread state.
pub(crate) type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// Run by each thread as it leaves, still attached (to close its database connections).
pub(crate) type ExitHook = Arc<dyn Fn(Python<'_>) + Send + Sync>;

enum Message {
    Job(Job),
    Stop,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("every Python thread is busy and the queue is full")]
    Full,
    #[error("the Python thread pool has stopped")]
    Stopped,
    #[error("the Python job panicked")]
    Panicked,
}

pub(crate) struct PythonPool {
    tx: Sender<Message>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    size: usize,
    /// Threads running a job now (for the metrics).
    busy: Arc<AtomicUsize>,
}

impl PythonPool {
    /// Starts `threads` Python threads behind a queue of `queue_size` waiting jobs.
    pub(crate) fn start(
        threads: usize,
        queue_size: usize,
        on_exit: ExitHook,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded(queue_size.max(1));
        let busy = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads.max(1) {
            let rx: Receiver<Message> = rx.clone();
            let on_exit = on_exit.clone();
            let busy = busy.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ficus-python-{index}"))
                .spawn(move || worker_loop(rx, on_exit, busy))?;
            handles.push(handle);
        }
        Ok(Self {
            tx,
            threads: Mutex::new(handles),
            size: threads.max(1),
            busy,
        })
    }

    /// Queues a job; fails at once when the queue is full, so callers can answer 503.
    pub(crate) fn submit(&self, job: Job) -> Result<(), PoolError> {
        self.tx.try_send(Message::Job(job)).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Full,
            TrySendError::Disconnected(_) => PoolError::Stopped,
        })
    }

    /// Runs `f` on a Python thread and awaits its result: the one way async Rust code calls Python.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(Python<'_>) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move |py| {
            let _ = tx.send(f(py));
        }))?;
        // A dropped sender means the job panicked (the pool catches it and keeps the thread).
        rx.await.map_err(|_| PoolError::Panicked)
    }

    /// Lets queued jobs finish, then stops every thread (each runs the exit hook) and joins them.
    pub(crate) fn shutdown(&self) {
        for _ in 0..self.size {
            if self.tx.send(Message::Stop).is_err() {
                break;
            }
        }
        let handles = match self.threads.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for handle in handles {
            let _ = handle.join();
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Threads, busy threads and queued jobs, as they are now.
    pub(crate) fn figures(&self) -> PoolFigures {
        PoolFigures {
            threads: self.size,
            busy: self.busy.load(Ordering::Relaxed),
            queued: self.tx.len(),
        }
    }
}

fn worker_loop(rx: Receiver<Message>, on_exit: ExitHook, busy: Arc<AtomicUsize>) {
    Python::attach(|py| {
        loop {
            // Detached while idle, so other threads run Python meanwhile.
            let message = py.detach(|| rx.recv());
            match message {
                Ok(Message::Job(job)) => {
                    busy.fetch_add(1, Ordering::Relaxed);
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(py))).is_err() {
                        tracing::error!("a job on a Python thread panicked; the thread carries on");
                    }
                    busy.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(Message::Stop) | Err(_) => break,
            }
        }
        on_exit(py);
    });
}
