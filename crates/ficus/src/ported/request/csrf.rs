//! `CsrfViewMiddleware` around a ported route: the secret read from the cookie (or the session
//! under `CSRF_USE_SESSIONS`), the check of every unsafe request before the handler runs (the
//! decision itself is `ficus_django::csrf`), the refusal answered with `CSRF_FAILURE_VIEW`'s own
//! page, and the cookie set again whenever a token was handed out or rotated.
//!
//! What it must not do: run for a route registered `#[csrf_exempt]`, or let a refusal reach the
//! handler. The refusal page is rendered by Django once per reason and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use ficus_django::csrf as rules;
use ficus_django::forms::FormData;

use super::RequestState;
use crate::ported::error::Error;

/// `request.META["CSRF_COOKIE"]` and `CSRF_COOKIE_NEEDS_UPDATE`.
#[derive(Debug, Default)]
pub(crate) struct CsrfState {
    read: bool,
    secret: Option<String>,
    /// The cookie held something Django would not take (it will be replaced).
    malformed: Option<rules::FormatError>,
    needs_update: bool,
}

impl RequestState {
    /// `process_request`: the secret the request came with (read once).
    async fn csrf_secret(&self) -> Result<(), Error> {
        if self.csrf_lock().read {
            return Ok(());
        }
        let settings = &self.web.settings.csrf;
        let found = if settings.use_sessions {
            let session = super::session::Session(self.self_arc());
            session
                .get(rules::SESSION_KEY)
                .await?
                .and_then(|v| v.as_str().map(str::to_owned))
                .map(|s| rules::secret_from_cookie(&s))
        } else {
            self.facts
                .cookie(&settings.cookie.name)
                .map(rules::secret_from_cookie)
        };
        let mut csrf = self.csrf_lock();
        if csrf.read {
            return Ok(());
        }
        csrf.read = true;
        match found {
            Some(Ok(secret)) => csrf.secret = Some(secret),
            Some(Err(bad)) => {
                // `_add_new_csrf_cookie`: a bad cookie is replaced on this very response.
                csrf.malformed = Some(bad);
                csrf.secret = Some(rules::new_secret());
                csrf.needs_update = true;
            }
            None => {}
        }
        Ok(())
    }

    fn csrf_lock(&self) -> std::sync::MutexGuard<'_, CsrfState> {
        self.csrf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The CSRF token, for a handler that draws a form itself or rotates the token.
#[derive(Clone)]
pub struct Csrf(pub(crate) Arc<RequestState>);

impl Csrf {
    /// `get_token(request)`: a masked token for a form; the response will set the cookie.
    pub async fn token(&self) -> Result<String, Error> {
        self.0.csrf_secret().await?;
        Ok(token_now(&self.0))
    }

    /// `rotate_token(request)`: a new secret, as at login.
    pub async fn rotate(&self) -> Result<(), Error> {
        self.0.csrf_secret().await?;
        let mut csrf = self.0.csrf_lock();
        csrf.secret = Some(rules::new_secret());
        csrf.needs_update = true;
        Ok(())
    }
}

/// `get_token` once the secret has been read (templates call it while rendering).
pub(crate) fn token_now(state: &RequestState) -> String {
    let mut csrf = state.csrf_lock();
    let secret = csrf.secret.get_or_insert_with(rules::new_secret).clone();
    csrf.needs_update = true;
    rules::mask(&secret)
}

/// Reads the secret ahead of a render, so the template's token is the cookie's.
pub(crate) async fn prepare(state: &RequestState) -> Result<(), Error> {
    state.csrf_secret().await
}

/// `process_view`'s checks up to the token, which need no body: the Origin, the Referer and
/// the cookie. None when the request may go on to have its body read for the token.
pub(crate) async fn check_before_body(state: &RequestState) -> Option<Response> {
    if let Err(err) = state.csrf_secret().await {
        return Some(err.into_response());
    }
    match decide(state, None, None) {
        // With no token given, "missing" means everything before the token passed.
        Err(reason) if reason == MISSING => None,
        Err(reason) => Some(refuse(state, &reason).await),
        Ok(()) => None,
    }
}

/// `process_view` for a route that is not exempt: None to go on, or the refusal to send.
/// `form` is `request.POST` when the body was read for the token.
pub(crate) async fn check(state: &RequestState, form: Option<&FormData>) -> Option<Response> {
    let form_token = form.and_then(|f| f.get("csrfmiddlewaretoken"));
    let header_token = state.facts.csrf_header.as_deref();
    if let Err(err) = state.csrf_secret().await {
        return Some(err.into_response());
    }
    match decide(state, form_token, header_token) {
        Ok(()) => None,
        Err(reason) => Some(refuse(state, &reason).await),
    }
}

/// Django's reason when no token came with the request.
const MISSING: &str = "CSRF token missing.";

/// The policy's decision, once the secret has been read.
fn decide(
    state: &RequestState,
    form_token: Option<&str>,
    header_token: Option<&str>,
) -> Result<(), String> {
    let facts = &state.facts;
    let (secret, malformed) = {
        let csrf = state.csrf_lock();
        (csrf.secret.clone(), csrf.malformed)
    };
    let request = rules::Request {
        method: facts.method.as_str(),
        secure: facts.secure,
        host: facts.host.as_deref(),
        port: &facts.port,
        origin: facts.origin.as_deref(),
        referer: facts.referer.as_deref(),
        secret: match malformed {
            Some(bad) => Some(Err(bad)),
            None => secret.map(Ok),
        },
        form_token,
        header_token,
    };
    state
        .web
        .csrf_policy
        .check(&request)
        .map_err(|rules::Rejection(reason)| reason)
}

async fn refuse(state: &RequestState, reason: &str) -> Response {
    tracing::warn!("Forbidden ({reason}): {}", state.facts.path);
    state.web.csrf_pages.page(state, reason).await
}

/// `CSRF_FAILURE_VIEW`'s answers, by reason.
#[derive(Default)]
pub(crate) struct FailurePages {
    pages: Mutex<HashMap<String, (u16, String, Bytes)>>,
}

impl FailurePages {
    async fn page(&self, state: &RequestState, reason: &str) -> Response {
        let cached = self
            .pages
            .lock()
            .ok()
            .and_then(|pages| pages.get(reason).cloned());
        let page = match cached {
            Some(page) => page,
            None => {
                let (reason_owned, method, path) = (
                    reason.to_owned(),
                    state.facts.method.to_string(),
                    state.facts.path.clone(),
                );
                let rendered = state
                    .web
                    .python
                    .call(move |py| {
                        crate::python::django::csrf_failure(py, &reason_owned, &method, &path)
                    })
                    .await;
                match rendered {
                    Ok(page) => {
                        if let Ok(mut pages) = self.pages.lock() {
                            pages.insert(reason.to_owned(), page.clone());
                        }
                        page
                    }
                    Err(err) => return err.into_response(),
                }
            }
        };
        let (status, content_type, body) = page;
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            body,
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    }
}

/// `CsrfViewMiddleware.process_response`: the cookie again when a token was used or rotated.
pub(crate) async fn finish(state: &RequestState, response: &mut Response) {
    if !state.web.settings.csrf_middleware {
        return;
    }
    let secret = {
        let mut csrf = state.csrf_lock();
        if !csrf.needs_update {
            return;
        }
        csrf.needs_update = false;
        csrf.secret.clone()
    };
    let Some(secret) = secret else { return };
    let settings = &state.web.settings.csrf;
    if settings.use_sessions {
        let session = super::session::Session(state.self_arc());
        let stored = session.get(rules::SESSION_KEY).await.ok().flatten();
        if stored.as_ref().and_then(|v| v.as_str()) != Some(secret.as_str()) {
            let _ = session.insert(rules::SESSION_KEY, secret).await;
        }
        return;
    }
    settings.cookie.set(response, &secret, settings.cookie_age);
    super::vary_cookie(response.headers_mut());
}
