//! The shadow mismatch log: one JSON line per mismatch, appended to a file that is bounded in
//! size (at the limit it becomes `FILE.1`, replacing the previous one, and a new file starts).
//!
//! Each line is also a recorded request (method, path, query, headers, base64 body), so
//! `ficus diff FILE` replays the log as it is. Secrets in request headers are redacted before
//! anything is written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Header names whose values never reach the log.
const SECRET_HEADERS: [&str; 6] = [
    "cookie",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-csrftoken",
    "x-auth-token",
];

pub fn redact_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

pub struct MismatchLog {
    path: PathBuf,
    max_bytes: u64,
    file: Mutex<Option<(File, u64)>>,
}

impl MismatchLog {
    pub fn new(path: PathBuf, max_bytes: u64) -> Self {
        Self {
            path,
            max_bytes: max_bytes.max(1024),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line; rotates first when it would pass the limit. Errors are logged, never
    /// passed on: the log must not disturb serving.
    pub fn append(&self, line: &str) {
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        if let Err(err) = self.append_locked(&mut guard, line) {
            tracing::error!("cannot write the shadow log {}: {err}", self.path.display());
            *guard = None;
        }
    }

    fn append_locked(&self, open: &mut Option<(File, u64)>, line: &str) -> std::io::Result<()> {
        let needed = line.len() as u64 + 1;
        if let Some((_, size)) = open.as_ref()
            && size + needed > self.max_bytes
            && *size > 0
        {
            *open = None;
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, rotated)?;
        }
        if open.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let size = file.metadata()?.len();
            *open = Some((file, size));
        }
        if let Some((file, size)) = open.as_mut() {
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
            *size += needed;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let mut headers = http::HeaderMap::new();
        headers.insert("cookie", "sessionid=abc".parse().unwrap());
        headers.insert("authorization", "Bearer x".parse().unwrap());
        headers.insert("accept", "application/json".parse().unwrap());
        let shown = redact_headers(&headers);
        assert!(shown.contains(&("cookie".into(), "[redacted]".into())));
        assert!(shown.contains(&("authorization".into(), "[redacted]".into())));
        assert!(shown.contains(&("accept".into(), "application/json".into())));
    }

    #[test]
    fn the_log_rotates_at_its_limit_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shadow.jsonl");
        let log = MismatchLog::new(path.clone(), 1024);
        let line = "x".repeat(300);
        for _ in 0..7 {
            log.append(&line);
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.path().join("shadow.jsonl.1")).unwrap();
        // Three 301-byte lines fit in 1024: lines 1-3, then 4-6 (rotated once), then 7 alone.
        assert_eq!(current.lines().count(), 1);
        assert_eq!(old.lines().count(), 3);
    }
}
