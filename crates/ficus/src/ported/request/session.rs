//! `request.session` and `SessionMiddleware`: the session named by `SESSION_COOKIE_NAME`,
//! loaded from Django's own store on first use, and saved after the handler so Django reads it
//! back.
//!
//! The database engine reads `django_session` (only rows whose `expire_date` is still ahead, as
//! Django's `load()`), writes a new row under a fresh key for a new session (never the key a
//! client sent, against session fixation), updates the row of a known one, and deletes rows on
//! `flush()` and `cycle_key()`. The signed-cookie engine keeps the whole session in the cookie.
//! The response then gets what `SessionMiddleware.process_response` gives it: `Vary: Cookie`
//! when the session was read, the cookie (with `SESSION_COOKIE_AGE`, `DOMAIN`, `PATH`,
//! `SECURE`, `HTTPONLY`, `SAMESITE`) when it was modified or `SESSION_SAVE_EVERY_REQUEST`, and a
//! deleted cookie when the session became empty.
//!
//! What it must not do: fail a request over a bad cookie or row. Those are an empty session,
//! as in Django (a corrupted one is logged once).

use std::sync::Arc;

use axum::response::Response;
use chrono::Utc;
use serde_json::Value;

use ficus_django::sessions::{self, SessionData, Unreadable};

use super::RequestState;
use super::settings::{COOKIE_ENGINE, SessionSettings};
use crate::ported::error::Error;

/// The session's state during one request (`SessionBase`'s attributes).
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    loaded: bool,
    /// The database key, or the signed cookie itself; None for a session not stored yet.
    key: Option<String>,
    data: SessionData,
    modified: bool,
    /// Rows to delete when the response is finished (the old key after `cycle_key`).
    doomed: Vec<String>,
}

impl SessionState {
    /// `is_empty()`: no key and no data.
    fn is_empty(&self) -> bool {
        self.key.is_none() && self.data.is_empty()
    }
}

impl RequestState {
    fn session_settings(&self) -> &SessionSettings {
        &self.web.settings.session
    }

    fn signed_cookies(&self) -> bool {
        self.session_settings().engine == COOKIE_ENGINE
    }

    /// Loads the session if this request has not yet: `SessionBase._get_session`.
    async fn loaded_session(&self) -> Result<tokio::sync::MutexGuard<'_, SessionState>, Error> {
        let mut session = self.session.lock().await;
        if session.loaded {
            return Ok(session);
        }
        session.loaded = true;
        let cookie = self
            .facts
            .cookie(&self.session_settings().cookie.name)
            .filter(|key| sessions::is_valid_key(key))
            .map(str::to_owned);
        let Some(key) = cookie else {
            return Ok(session);
        };
        if self.signed_cookies() {
            match self
                .web
                .cookie_sessions
                .decode(&key, ficus_django::signing::now())
            {
                Some(data) => session.data = data,
                // Django's load() calls create(): an empty session that will be saved.
                None => session.modified = true,
            }
            session.key = Some(key);
            return Ok(session);
        }
        let db = &self.web.db;
        let row: Option<(String,)> = db
            .query("SELECT session_data FROM django_session WHERE session_key = $1 AND expire_date > $2")
            .bind(key.as_str())
            .bind(db.timestamp(Utc::now()))
            .fetch_optional()
            .await?;
        match row {
            Some((stored,)) => {
                match self.web.stored_sessions.decode(&stored) {
                    Ok(data) => session.data = data,
                    Err(Unreadable::Corrupted) => {
                        tracing::warn!("Session data corrupted (session key {key:.8}...)");
                    }
                    Err(Unreadable::Undecodable) => {}
                }
                session.key = Some(key);
            }
            // Expired or unknown: a new session, under a key of our own when saved.
            None => session.key = None,
        }
        Ok(session)
    }
}

/// `request.session`, for a handler: `session: Session` in its arguments.
///
/// Every method loads the session first (from the database or the cookie) if this request has
/// not; reading marks the response `Vary: Cookie`, writing also saves it when the handler is
/// done.
#[derive(Clone)]
pub struct Session(pub(crate) Arc<RequestState>);

impl Session {
    /// `request.session.get(key)`.
    pub async fn get(&self, key: &str) -> Result<Option<Value>, Error> {
        self.0.mark_session_accessed();
        Ok(self.0.loaded_session().await?.data.get(key).cloned())
    }

    /// `key in request.session`.
    pub async fn contains(&self, key: &str) -> Result<bool, Error> {
        self.0.mark_session_accessed();
        Ok(self.0.loaded_session().await?.data.contains_key(key))
    }

    /// `request.session[key] = value`.
    pub async fn insert(&self, key: &str, value: impl Into<Value>) -> Result<(), Error> {
        self.0.mark_session_accessed();
        let mut session = self.0.loaded_session().await?;
        session.data.insert(key.to_owned(), value.into());
        session.modified = true;
        Ok(())
    }

    /// `request.session.pop(key, None)`.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        self.0.mark_session_accessed();
        let mut session = self.0.loaded_session().await?;
        let removed = session.data.shift_remove(key);
        session.modified |= removed.is_some();
        Ok(removed)
    }

    /// `request.session.flush()`: the data and the stored row go, and the cookie is deleted.
    pub async fn flush(&self) -> Result<(), Error> {
        self.0.mark_session_accessed();
        let mut session = self.0.loaded_session().await?;
        session.data.clear();
        session.modified = true;
        if let Some(key) = session.key.take()
            && !self.0.signed_cookies()
        {
            delete_row(&self.0, &key).await?;
        }
        Ok(())
    }

    /// `request.session.cycle_key()`: the same data under a new key (at login).
    pub async fn cycle_key(&self) -> Result<(), Error> {
        self.0.mark_session_accessed();
        let mut session = self.0.loaded_session().await?;
        if let Some(old) = session.key.take()
            && !self.0.signed_cookies()
        {
            session.doomed.push(old);
        }
        session.modified = true;
        Ok(())
    }

    /// The session key, once the session is stored (`request.session.session_key`).
    pub async fn key(&self) -> Result<Option<String>, Error> {
        Ok(self.0.loaded_session().await?.key.clone())
    }
}

async fn delete_row(state: &RequestState, key: &str) -> Result<(), Error> {
    state
        .web
        .db
        .query("DELETE FROM django_session WHERE session_key = $1")
        .bind(key)
        .execute()
        .await?;
    Ok(())
}

/// Saves the session as `SessionStore.save()` does; the key it is now stored under.
async fn save(state: &RequestState, session: &mut SessionState) -> Result<String, Error> {
    let settings = state.session_settings();
    let now = Utc::now();
    if state.signed_cookies() {
        let value = state
            .web
            .cookie_sessions
            .encode(&session.data, ficus_django::signing::now());
        session.key = Some(value.clone());
        return Ok(value);
    }
    let db = &state.web.db;
    let encoded = state
        .web
        .stored_sessions
        .encode(&session.data, ficus_django::signing::now());
    let age = sessions::expiry_age(&session.data, settings.cookie_age, now);
    let expires = db.timestamp(now + chrono::Duration::seconds(age));
    for old in std::mem::take(&mut session.doomed) {
        delete_row(state, &old).await?;
    }
    if let Some(key) = &session.key {
        let updated = db
            .query("UPDATE django_session SET session_data = $1, expire_date = $2 WHERE session_key = $3")
            .bind(encoded)
            .bind(expires)
            .bind(key.as_str())
            .execute()
            .await?;
        if updated == 1 {
            return Ok(key.clone());
        }
        // Deleted meanwhile (a logout in another tab): Django answers 400, SessionInterrupted.
        return Err(Error::SessionInterrupted);
    }
    // A fresh key; a clash with a stored one (one in 36^32) draws again, as Django's create().
    for _ in 0..10 {
        let key = sessions::new_session_key();
        let inserted = db
            .query("INSERT INTO django_session (session_key, session_data, expire_date) VALUES ($1, $2, $3) ON CONFLICT (session_key) DO NOTHING")
            .bind(key.as_str())
            .bind(encoded.as_str())
            .bind(expires.clone())
            .execute()
            .await?;
        if inserted == 1 {
            session.key = Some(key.clone());
            return Ok(key);
        }
    }
    Err(Error::internal("no free session key after 10 draws"))
}

/// `SessionMiddleware.process_response`.
pub(crate) async fn finish(state: &RequestState, response: &mut Response) {
    if !state.web.settings.session_middleware {
        return;
    }
    let settings = state.session_settings();
    let cookie_key = state.facts.cookie(&settings.cookie.name);
    let valid_cookie = cookie_key.is_some_and(sessions::is_valid_key);
    // SESSION_SAVE_EVERY_REQUEST saves a session the view never read, so it is read now.
    if settings.save_every_request
        && valid_cookie
        && let Err(err) = state.loaded_session().await
    {
        *response = axum::response::IntoResponse::into_response(err);
        return;
    }
    let accessed = state
        .session_accessed
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut session = state.session.lock().await;
    // Django's is_empty() on a session never read looks at the key alone.
    let empty = if session.loaded {
        session.is_empty()
    } else {
        !valid_cookie
    };
    if cookie_key.is_some() && empty {
        settings.cookie.delete(response);
        super::vary_cookie(response.headers_mut());
        return;
    }
    if accessed {
        super::vary_cookie(response.headers_mut());
    }
    let wanted = session.modified || (settings.save_every_request && session.loaded);
    if !wanted || empty || response.status().is_server_error() {
        return;
    }
    let browser_close =
        sessions::expires_at_browser_close(&session.data, settings.expire_at_browser_close);
    let key = match save(state, &mut session).await {
        Ok(key) => key,
        Err(err) => {
            *response = axum::response::IntoResponse::into_response(err);
            return;
        }
    };
    let max_age = (!browser_close)
        .then(|| sessions::expiry_age(&session.data, settings.cookie_age, Utc::now()));
    settings.cookie.set(response, &key, max_age);
}
