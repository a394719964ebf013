//! The JSON Lines files real traffic is written to: the shadow mismatch log and the recorded
//! requests (`record = 0.01`). Each is bounded in size (at the limit it becomes `FILE.1`,
//! replacing the previous one, and a new file starts).
//!
//! Every line is a recorded request (method, path, query, headers, base64 body), so
//! `ficus diff FILE` replays either file as it is. Secrets (credential headers, and password or
//! token fields of form and JSON bodies) are redacted before anything is written. Writing never
//! fails a request: errors are logged and the line is dropped.

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

/// Body field names (form or JSON keys) whose values never reach the log, matched as parts of
/// the lowercased name (`new_password1`, `access_token`).
const SECRET_FIELDS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "credit_card",
    "card_number",
    "cvv",
];

const REDACTED: &str = "[redacted]";

pub(crate) fn redact_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

fn secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_FIELDS.iter().any(|s| name.contains(s))
}

/// The request body as it may be written: secret fields of form and JSON bodies redacted,
/// multipart bodies (uploads, often personal files) left out. None when nothing may be kept.
pub(crate) fn redact_body(content_type: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
            if !pairs.iter().any(|(k, _)| secret_field(k)) {
                return Some(body.to_vec());
            }
            let mut out = form_urlencoded::Serializer::new(String::new());
            for (key, value) in &pairs {
                let value = if secret_field(key) { REDACTED } else { value };
                out.append_pair(key, value);
            }
            Some(out.finish().into_bytes())
        }
        m if m.starts_with("multipart/") => None,
        _ => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(mut value) => {
                if redact_json(&mut value) {
                    serde_json::to_vec(&value).ok()
                } else {
                    Some(body.to_vec())
                }
            }
            Err(_) => Some(body.to_vec()),
        },
    }
}

/// Replaces secret members anywhere in `value`; true when one was found.
fn redact_json(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(members) => {
            let mut found = false;
            for (key, member) in members.iter_mut() {
                if secret_field(key) {
                    *member = serde_json::Value::String(REDACTED.to_owned());
                    found = true;
                } else {
                    found |= redact_json(member);
                }
            }
            found
        }
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |f, i| redact_json(i) | f),
        _ => false,
    }
}

pub(crate) struct RotatingLog {
    what: &'static str,
    path: PathBuf,
    max_bytes: u64,
    file: Mutex<Option<(File, u64)>>,
}

impl RotatingLog {
    /// `what` names the log in error messages ("shadow log").
    pub(crate) fn new(what: &'static str, path: PathBuf, max_bytes: u64) -> Self {
        Self {
            what,
            path,
            max_bytes: max_bytes.max(1024),
            file: Mutex::new(None),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line; rotates first when it would pass the limit. Errors are logged, never
    /// passed on: the log must not disturb serving.
    pub(crate) fn append(&self, line: &str) {
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        if let Err(err) = self.append_locked(&mut guard, line) {
            tracing::error!(
                "cannot write the {} {}: {err}",
                self.what,
                self.path.display()
            );
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
    fn secret_form_and_json_fields_are_redacted_and_uploads_left_out() {
        let form = redact_body(
            Some("application/x-www-form-urlencoded"),
            b"username=ada&password=hunter2&next=%2F",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(form).unwrap(),
            "username=ada&password=%5Bredacted%5D&next=%2F"
        );
        let json = redact_body(
            Some("application/json"),
            br#"{"text":"hi","auth":{"access_token":"x"},"items":[{"client_secret":"y"}]}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"text":"hi","auth":{"access_token":"[redacted]"},"items":[{"client_secret":"[redacted]"}]}"#
        );
        let plain = br#"{"text": "kept as sent"}"#;
        assert_eq!(redact_body(None, plain).unwrap(), plain);
        assert_eq!(
            redact_body(Some("multipart/form-data; boundary=x"), b"--x"),
            None
        );
    }

    #[test]
    fn the_log_rotates_at_its_limit_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shadow.jsonl");
        let log = RotatingLog::new("test log", path.clone(), 1024);
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
