//! Recording real traffic (`record = 0.01` in routes.toml, per route or for every request):
//! a sampled share of requests is appended to a JSON Lines file in the recorded format of
//! `ficus diff`, redacted like the shadow log, so production traffic becomes parity test material.
//!
//! Only the request is written, never the answer; recording never changes how a request is
//! served.

use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;

use crate::traffic_log::{RotatingLog, redact_body, redact_headers};

pub(crate) struct Recorder {
    log: RotatingLog,
    counter: AtomicU64,
    sampler: std::hash::RandomState,
}

impl Recorder {
    pub(crate) fn new(path: PathBuf, max_bytes: u64) -> Self {
        Self {
            log: RotatingLog::new("recorded-traffic log", path, max_bytes),
            counter: AtomicU64::new(0),
            sampler: std::hash::RandomState::new(),
        }
    }

    /// Whether this request is in a `rate` sample (0 to 1).
    pub(crate) fn sampled(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        rate >= 1.0 || (self.sampler.hash_one(n) as f64 / u64::MAX as f64) < rate
    }

    /// Appends one request; `route` is its routes.toml path, if listed.
    pub(crate) fn write(&self, parts: &http::request::Parts, body: &[u8], route: Option<&str>) {
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let kept = redact_body(content_type, body);
        let mut line = serde_json::json!({
            "name": format!("{} {} {}", parts.method, parts.uri.path(), chrono::Utc::now().to_rfc3339()),
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query().unwrap_or(""),
            "headers": redact_headers(&parts.headers),
            "body": base64::engine::general_purpose::STANDARD.encode(kept.as_deref().unwrap_or(b"")),
        });
        if let Some(map) = line.as_object_mut() {
            if let Some(route) = route {
                map.insert("route".into(), route.into());
            }
            if kept.is_none() {
                map.insert("body_left_out".into(), true.into());
            }
        }
        self.log.append(&line.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ficus_parity::requests::parse_recorded;

    #[test]
    fn recorded_lines_replay_with_ficus_diff_and_hide_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recorded.jsonl");
        let recorder = Recorder::new(path.clone(), 1 << 20);
        let request = http::Request::post("/api/summarize/?lang=de")
            .header("content-type", "application/json")
            .header("authorization", "Bearer secret-token")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        recorder.write(
            &parts,
            r#"{"text":"Grüezi","api_key":"k"}"#.as_bytes(),
            Some("/api/summarize/"),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("secret-token") && !text.contains("\"k\""),
            "{text}"
        );
        let requests = parse_recorded(&text).unwrap();
        assert_eq!(requests.len(), 1);
        let replayed = &requests[0];
        assert_eq!(
            (replayed.method.as_str(), replayed.path.as_str()),
            ("POST", "/api/summarize/")
        );
        assert_eq!(replayed.query, "lang=de");
        assert_eq!(
            String::from_utf8(replayed.body.to_vec()).unwrap(),
            r#"{"text":"Grüezi","api_key":"[redacted]"}"#
        );
    }

    #[test]
    fn a_zero_rate_records_nothing_and_one_records_everything() {
        let recorder = Recorder::new(PathBuf::from("unused.jsonl"), 1 << 20);
        assert!((0..100).all(|_| !recorder.sampled(0.0)));
        assert!((0..100).all(|_| recorder.sampled(1.0)));
        let some = (0..10_000).filter(|_| recorder.sampled(0.1)).count();
        assert!((800..=1200).contains(&some), "{some}");
    }
}
