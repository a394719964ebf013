//! `django.contrib.messages` for a ported view: messages added in Rust are shown by the next
//! Django page, and messages Django added are shown (and consumed) by a Rust page.
//!
//! It follows `MESSAGE_STORAGE` as `MessageMiddleware` does: the fallback storage reads the
//! `messages` cookie and, only when that says more are waiting, the session's `_messages`; it
//! stores what was added into the cookie and what does not fit into the session. Messages are
//! marked used when a page iterates them, and then removed from where they were stored.
//! `MESSAGE_LEVEL` drops messages below it, as `add_message` does.
//!
//! What it must not do: read the session unless the storage needs it (reading it adds
//! `Vary: Cookie` to the answer, as it would in Django).

use std::sync::{Arc, MutexGuard};

use axum::response::Response;
use serde_json::Value;

use ficus_django::cookies::{self, Attributes};
use ficus_django::messages::{self as codec, Message};

use super::RequestState;
use super::session::Session;
use super::settings::{COOKIE_STORAGE, FALLBACK_STORAGE, SESSION_STORAGE};
use crate::ported::error::Error;

/// The storage's state during one request (`BaseStorage`'s attributes).
#[derive(Debug, Default)]
pub(crate) struct MessagesState {
    loaded: Option<Vec<Message>>,
    queued: Vec<Message>,
    used: bool,
    from_cookie: bool,
    from_session: bool,
}

impl RequestState {
    fn messages_lock(&self) -> MutexGuard<'_, MessagesState> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn storage(&self) -> &str {
        &self.web.settings.messages.storage
    }

    /// `_loaded_messages`: read from the storages once.
    async fn load_messages(&self) -> Result<(), Error> {
        if self.messages_lock().loaded.is_some() {
            return Ok(());
        }
        let storage = self.storage().to_owned();
        let mut messages = Vec::new();
        let (mut from_cookie, mut from_session) = (false, false);
        let mut read_session = storage == SESSION_STORAGE;
        if storage == FALLBACK_STORAGE || storage == COOKIE_STORAGE {
            let cookie = self
                .facts
                .cookie("messages")
                .and_then(|c| self.web.message_cookies.decode(c));
            if let Some(read) = cookie {
                from_cookie = !read.messages.is_empty();
                messages.extend(read.messages);
                read_session = storage == FALLBACK_STORAGE && !read.all_retrieved;
            }
        }
        if read_session {
            let stored = Session(self.self_arc()).get(codec::SESSION_KEY).await?;
            let stored = stored.map(|v| codec::from_session(&v)).unwrap_or_default();
            from_session = !stored.is_empty();
            messages.extend(stored);
        }
        let mut state = self.messages_lock();
        if state.loaded.is_none() {
            state.loaded = Some(messages);
            state.from_cookie = from_cookie;
            state.from_session = from_session;
        }
        Ok(())
    }

    /// The messages a page shows (loaded, then added), marking them used when `consume`.
    pub(crate) fn messages_for_page(&self, consume: bool) -> Vec<Message> {
        let mut state = self.messages_lock();
        state.used |= consume;
        let mut all = state.loaded.clone().unwrap_or_default();
        all.extend(state.queued.iter().cloned());
        all
    }
}

/// Loads the messages ahead of a render (templates read them without awaiting).
pub(crate) async fn prepare(state: &RequestState) -> Result<(), Error> {
    if state.web.settings.messages_middleware {
        state.load_messages().await?;
    }
    Ok(())
}

/// `django.contrib.messages` for a handler: `messages.success("Saved.")`.
#[derive(Clone)]
pub struct Messages(pub(crate) Arc<RequestState>);

impl Messages {
    /// `messages.DEBUG`.
    pub const DEBUG: i64 = 10;
    /// `messages.INFO`.
    pub const INFO: i64 = 20;
    /// `messages.SUCCESS`.
    pub const SUCCESS: i64 = 25;
    /// `messages.WARNING`.
    pub const WARNING: i64 = 30;
    /// `messages.ERROR`.
    pub const ERROR: i64 = 40;

    /// `messages.add_message(request, level, text)`; below `MESSAGE_LEVEL` it is dropped.
    pub fn add(&self, level: i64, text: &str) {
        if level < self.0.web.settings.messages.level {
            return;
        }
        self.0.messages_lock().queued.push(Message {
            level,
            text: text.to_owned(),
            extra_tags: Some(String::new()),
            safe: false,
        });
    }

    /// `messages.success(request, text)`.
    pub fn success(&self, text: &str) {
        self.add(Self::SUCCESS, text);
    }

    /// `messages.info(request, text)`.
    pub fn info(&self, text: &str) {
        self.add(Self::INFO, text);
    }

    /// `messages.warning(request, text)`.
    pub fn warning(&self, text: &str) {
        self.add(Self::WARNING, text);
    }

    /// `messages.error(request, text)`.
    pub fn error(&self, text: &str) {
        self.add(Self::ERROR, text);
    }
}

/// `MessageMiddleware.process_response`: `storage.update(response)`.
pub(crate) async fn finish(state: &RequestState, response: &mut Response) {
    if !state.web.settings.messages_middleware {
        return;
    }
    let (to_store, from_cookie, from_session) = {
        let state = state.messages_lock();
        let to_store = if state.used {
            state.queued.clone()
        } else if !state.queued.is_empty() {
            let mut all = state.loaded.clone().unwrap_or_default();
            all.extend(state.queued.iter().cloned());
            all
        } else {
            return;
        };
        (to_store, state.from_cookie, state.from_session)
    };
    if let Err(err) = store(state, response, to_store, from_cookie, from_session).await {
        tracing::error!("cannot store messages: {err}");
    }
}

async fn store(
    state: &RequestState,
    response: &mut Response,
    messages: Vec<Message>,
    from_cookie: bool,
    from_session: bool,
) -> Result<(), Error> {
    let storage = state.storage().to_owned();
    let session = Session(state.self_arc());
    if storage == SESSION_STORAGE {
        return store_in_session(&session, &messages).await;
    }
    let uses_cookie = !messages.is_empty() || from_cookie || storage == COOKIE_STORAGE;
    let mut rest = messages;
    if uses_cookie {
        let (cookie, unstored) = state
            .web
            .message_cookies
            .encode(&rest, ficus_django::signing::now());
        set_messages_cookie(state, response, cookie.as_deref());
        rest = unstored;
    }
    if storage == FALLBACK_STORAGE && (!rest.is_empty() || from_session) {
        store_in_session(&session, &rest).await?;
    }
    Ok(())
}

async fn store_in_session(session: &Session, messages: &[Message]) -> Result<(), Error> {
    if messages.is_empty() {
        session.remove(codec::SESSION_KEY).await?;
    } else {
        session
            .insert(
                codec::SESSION_KEY,
                Value::String(codec::to_session(messages)),
            )
            .await?;
    }
    Ok(())
}

/// `CookieStorage._update_cookie`: set with the session cookie's domain and flags, or deleted.
fn set_messages_cookie(state: &RequestState, response: &mut Response, value: Option<&str>) {
    let session = &state.web.settings.session;
    let cookie = match value {
        Some(value) => {
            let attributes = Attributes {
                max_age: None,
                expires: None,
                path: Some("/".to_owned()),
                domain: session.cookie.domain.clone(),
                secure: session.cookie.secure,
                httponly: session.cookie.httponly,
                samesite: session.cookie.samesite.clone(),
            };
            cookies::set_cookie("messages", value, &attributes, 0)
        }
        None => cookies::delete_cookie(
            "messages",
            Some("/"),
            session.cookie.domain.as_deref(),
            session.cookie.samesite.as_deref(),
        ),
    };
    super::add_cookie(response.headers_mut(), &cookie);
}
