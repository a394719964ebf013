//! A log file the server appends to (the access log, `--error-logfile`) and opens again on
//! SIGUSR1, as gunicorn does, so logrotate's `postrotate kill -USR1` moves the server to the new
//! file. `-` is standard output or standard error, which is never reopened.
//!
//! It only writes and reopens; what goes into the lines is its callers' business.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

pub(crate) struct LogFile {
    /// None for a standard stream.
    path: Option<PathBuf>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl LogFile {
    /// `path` appended to (created when missing).
    pub(crate) fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = append(&path)?;
        Ok(Self {
            path: Some(path),
            out: Mutex::new(Box::new(file)),
        })
    }

    pub(crate) fn stream(out: Box<dyn Write + Send>) -> Self {
        Self {
            path: None,
            out: Mutex::new(out),
        }
    }

    /// Opens the file again by its name (logrotate moved the old one away).
    pub(crate) fn reopen(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = append(path)?;
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
            *out = Box::new(file);
        }
        Ok(())
    }

    pub(crate) fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
    }

    /// One whole line (or lines), written and flushed under the lock so lines never interleave.
    pub(crate) fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("the log's lock is poisoned"))?;
        out.write_all(bytes)?;
        out.flush()
    }

    fn lock(&self) -> Option<MutexGuard<'_, Box<dyn Write + Send>>> {
        self.out.lock().ok()
    }
}

fn append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// The server's own log lines into a `LogFile`, for tracing.
#[derive(Clone)]
pub(crate) struct Lines(pub(crate) std::sync::Arc<LogFile>);

/// One log line's writer: the file's lock, held while tracing writes the line.
pub(crate) struct Line<'a>(Option<MutexGuard<'a, Box<dyn Write + Send>>>);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(out) => out.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.0 {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self.0.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_rotation_the_reopened_file_gets_the_next_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = LogFile::open(path.clone()).unwrap();
        log.write_all(b"before\n").unwrap();
        std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
        log.reopen().unwrap();
        log.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("access.log.1")).unwrap(),
            "before\n"
        );
    }
}
