//! Shadow mode: Django answers the client; the same request also runs through the Rust handler
//! off the client's path, within the route's budget, and the two answers go through the parity
//! engine. Each mismatch is appended to the mismatch log, which `ficus diff` replays as it is.
//!
//! Nothing here may touch the client's answer or its timing: the Rust run is its own task, the
//! Django body is copied as it streams (up to a cap), and the comparison happens afterwards.

mod tee;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};

use crate::body::Body;
use crate::metrics::RouteStats;
use crate::ported::Dispatcher;
use crate::routes::Matched;
use crate::traffic_log::{RotatingLog, redact_body, redact_headers};
use ficus_parity::{Answer, Normalised, Rules, Verdict, compare, normalise, verdict};
use tee::Tee;

/// The most of Django's body kept for a comparison; larger answers are counted as skipped.
pub(crate) const COPY_CAP: usize = 4 * 1024 * 1024;

/// Mismatches kept in memory for the dashboard.
const RECENT: usize = 20;

/// Runs the same request through Django once more, to tell noise from real differences.
pub(crate) type DjangoAgain =
    Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Option<Answer>> + Send>> + Send>;

pub(crate) struct Shadow {
    ported: Arc<Dispatcher>,
    log: RotatingLog,
    stats: Mutex<BTreeMap<String, RouteStats>>,
    recent: Mutex<VecDeque<serde_json::Value>>,
    counter: AtomicU64,
    sampler: std::hash::RandomState,
}

/// One shadowed request: the Rust side is already running.
pub(crate) struct Run {
    shadow: Arc<Shadow>,
    route: String,
    handler: String,
    rules: Rules,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    /// The request body as it may be logged (redacted; None when left out).
    body: Option<Vec<u8>>,
    rust: tokio::task::JoinHandle<Option<Answer>>,
}

impl Shadow {
    pub(crate) fn new(ported: Arc<Dispatcher>, log: RotatingLog) -> Self {
        Self {
            ported,
            log,
            stats: Mutex::new(BTreeMap::new()),
            recent: Mutex::new(VecDeque::new()),
            counter: AtomicU64::new(0),
            sampler: std::hash::RandomState::new(),
        }
    }

    /// The figures so far, by route path.
    pub(crate) fn stats(&self) -> BTreeMap<String, RouteStats> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The latest mismatches, newest first.
    pub(crate) fn recent(&self) -> Vec<serde_json::Value> {
        self.recent
            .lock()
            .map(|r| r.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    fn remember(&self, mismatch: serde_json::Value) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(mismatch);
        }
    }

    fn count(&self, route: &str, update: impl FnOnce(&mut RouteStats)) {
        if let Ok(mut stats) = self.stats.lock() {
            update(stats.entry(route.to_owned()).or_default());
        }
    }

    /// Whether this request is in the route's sample (`sample = 0.1` shadows about a tenth).
    fn sampled(&self, sample: f64) -> bool {
        if sample >= 1.0 {
            return true;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        (self.sampler.hash_one(n) as f64 / u64::MAX as f64) < sample
    }

    /// Whether a request of this route is in its shadow sample (`sample = 0.1`).
    pub(crate) fn sampled_for(&self, matched: &Matched<'_>) -> bool {
        self.sampled(matched.route.sample)
    }

    /// Starts the Rust side of a shadowed request, given its whole body.
    pub(crate) fn start(
        self: &Arc<Self>,
        matched: Matched<'_>,
        parts: &http::request::Parts,
        body: Bytes,
        secure: bool,
    ) -> Run {
        let route = matched.route;
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let logged_body = redact_body(content_type, &body);
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.headers_mut() = parts.headers.clone();
        let (ported, handler, params, budget) = (
            self.ported.clone(),
            route.handler.clone(),
            matched.params,
            route.budget,
        );
        let rust = tokio::spawn({
            let handler = handler.clone();
            async move {
                let run = async {
                    let response = ported.dispatch(&handler, params, request, secure).await;
                    let (parts, body) = response.into_parts();
                    let body = body.collect().await.ok()?.to_bytes();
                    Some(answer(parts.status, &parts.headers, body))
                };
                tokio::time::timeout(budget, run).await.ok().flatten()
            }
        });
        Run {
            shadow: self.clone(),
            route: route.pattern.source().to_owned(),
            handler,
            rules: route.rules.clone(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: redact_headers(&parts.headers),
            body: logged_body,
            rust,
        }
    }
}

/// What a shadow comparison concluded.
#[derive(Debug)]
enum Judgement {
    Matched,
    /// The answers differ only where Django's two answers differ too.
    Noise,
    Mismatched(Verdict),
}

/// Judges the Rust answer against Django's. Only when they differ is `again` asked for Django's
/// second answer to the same request (None when it may not be re-run, or failed): whatever
/// differs between Django's two answers is noise.
async fn judge<F, Fut>(ours: &Normalised, theirs: &Normalised, again: Option<F>) -> Judgement
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Normalised>>,
{
    let differences = compare(ours, theirs);
    if differences.is_empty() {
        return Judgement::Matched;
    }
    let django_again = match again {
        Some(again) => again().await,
        None => None,
    };
    match django_again {
        Some(django_again) => {
            let judged = verdict(ours, &django_again, theirs);
            if judged.matches() {
                Judgement::Noise
            } else {
                Judgement::Mismatched(judged)
            }
        }
        None => Judgement::Mismatched(Verdict {
            differences,
            noise: Vec::new(),
        }),
    }
}

pub(crate) fn answer(status: http::StatusCode, headers: &http::HeaderMap, body: Bytes) -> Answer {
    Answer {
        status: status.as_u16(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    }
}

impl Run {
    /// Gives Django's response to the client unchanged, keeping a copy for the comparison.
    /// `again` (safe methods only) runs Django once more when the answers differ, so that what
    /// Django does not repeat itself is counted as noise rather than a mismatch.
    pub(crate) fn observe(
        self,
        response: Response<Body>,
        again: Option<DjangoAgain>,
    ) -> Response<Body> {
        let (parts, body) = response.into_parts();
        let (status, headers) = (parts.status, parts.headers.clone());
        let expected = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let (tee, copied) = Tee::new(body, COPY_CAP, expected);
        tokio::spawn(async move {
            let Ok(Some(body)) = copied.await else {
                self.shadow.count(&self.route, |s| s.skipped += 1);
                self.rust.abort();
                return;
            };
            let django = answer(status, &headers, body);
            self.compare(django, again).await;
        });
        Response::from_parts(parts, tee.boxed_unsync())
    }

    async fn compare(mut self, django: Answer, again: Option<DjangoAgain>) {
        let rust = match (&mut self.rust).await {
            Ok(Some(rust)) => rust,
            Ok(None) => {
                tracing::warn!(
                    "shadow: {} {} took longer than its budget in {}",
                    self.method,
                    self.path,
                    self.handler
                );
                self.shadow.count(&self.route, |s| s.timed_out += 1);
                return;
            }
            Err(_) => {
                self.shadow.count(&self.route, |s| s.skipped += 1);
                return;
            }
        };
        let (ours, theirs) = (
            normalise(&django, &self.rules),
            normalise(&rust, &self.rules),
        );
        let rules = self.rules.clone();
        let again = again.map(|again| {
            move || async move { again().await.map(|answer| normalise(&answer, &rules)) }
        });
        let (differences, noise) = match judge(&ours, &theirs, again).await {
            Judgement::Matched => {
                self.shadow.count(&self.route, |s| {
                    s.compared += 1;
                    s.matched += 1;
                });
                return;
            }
            Judgement::Noise => {
                self.shadow.count(&self.route, |s| {
                    s.compared += 1;
                    s.noise += 1;
                });
                return;
            }
            Judgement::Mismatched(verdict) => (verdict.differences, verdict.noise),
        };
        self.shadow.count(&self.route, |s| {
            s.compared += 1;
            s.mismatched += 1;
        });
        let log = &self.shadow.log;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let replay = format!("ficus diff {}", log.path().display());
        let line = serde_json::json!({
            "name": format!("{} {now}", self.handler),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": base64::engine::general_purpose::STANDARD.encode(self.body.as_deref().unwrap_or(b"")),
            "route": self.route,
            "handler": self.handler,
            "differences": differences,
            "noise": noise,
            "django": ours,
            "rust": theirs,
            "replay": replay,
        });
        self.shadow.remember(serde_json::json!({
            "time": now,
            "route": self.route,
            "handler": self.handler,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "differences": differences,
            "replay": replay,
        }));
        tracing::warn!(
            "shadow: {} {} differs from Django in {} ({} difference(s)); logged to {}",
            self.method,
            self.path,
            self.handler,
            differences.len(),
            log.path().display()
        );
        log.append(&line.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> Normalised {
        let answer = Answer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_owned()),
        };
        normalise(&answer, &Rules::default())
    }

    fn again(
        body: &'static str,
    ) -> Option<impl FnOnce() -> std::future::Ready<Option<Normalised>>> {
        Some(move || std::future::ready(Some(json(body))))
    }

    const NONE: Option<fn() -> std::future::Ready<Option<Normalised>>> = None;

    #[tokio::test]
    async fn what_django_does_not_repeat_itself_is_noise_not_a_mismatch() {
        let django = json(r#"{"id": 1, "served_at": "10:00:01"}"#);
        let rust = json(r#"{"id": 1, "served_at": "10:00:02"}"#);
        let judged = judge(
            &django,
            &rust,
            again(r#"{"id": 1, "served_at": "10:00:03"}"#),
        )
        .await;
        assert!(matches!(judged, Judgement::Noise), "{judged:?}");
    }

    #[tokio::test]
    async fn a_real_difference_beside_noise_is_a_mismatch_that_names_both() {
        let django = json(r#"{"id": 1, "served_at": "10:00:01"}"#);
        let rust = json(r#"{"id": 2, "served_at": "10:00:02"}"#);
        let Judgement::Mismatched(verdict) = judge(
            &django,
            &rust,
            again(r#"{"id": 1, "served_at": "10:00:03"}"#),
        )
        .await
        else {
            panic!("not a mismatch");
        };
        let at = |d: &Vec<ficus_parity::Difference>| {
            d.iter().map(|d| d.location.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(at(&verdict.differences), ["JSON .id"]);
        assert_eq!(at(&verdict.noise), ["JSON .served_at"]);
    }

    #[tokio::test]
    async fn without_a_second_django_run_every_difference_counts() {
        let django = json(r#"{"id": 1, "served_at": "10:00:01"}"#);
        let rust = json(r#"{"id": 1, "served_at": "10:00:02"}"#);
        assert!(matches!(
            judge(&django, &rust, NONE).await,
            Judgement::Mismatched(_)
        ));
        assert!(matches!(
            judge(&django, &django, NONE).await,
            Judgement::Matched
        ));
    }
}
