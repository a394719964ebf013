//! `request.user` and `django.contrib.auth`'s login and logout, over Django's own tables.
//!
//! The user is found as `AuthenticationMiddleware` finds it (`get_user`): the session's
//! `_auth_user_id` and `_auth_user_backend` (which must be one of `AUTHENTICATION_BACKENDS`),
//! the row of `AUTH_USER_MODEL`'s table, `is_active` (ModelBackend refuses inactive users), and
//! the session-auth hash checked against the password hash, so a changed password logs the
//! session out, and a hash made with a `SECRET_KEY_FALLBACKS` key is renewed. Logging in follows
//! `login()` (flush or cycle the session, store the three keys, rotate the CSRF token, update
//! `last_login`); logging out follows `logout()` (flush).
//!
//! What it must not do: treat a bad or stale session as an error. It is the anonymous user.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{StatusCode, header};
use serde_json::Value;

use ficus_django::passwords::{self, SessionHash};

use super::session::Session;
use super::{RequestState, state_of};
use crate::ported::error::Error;

const SESSION_KEY: &str = "_auth_user_id";
const BACKEND_SESSION_KEY: &str = "_auth_user_backend";
const HASH_SESSION_KEY: &str = "_auth_user_hash";
const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

/// The keys `login()` stores in the session for a user, in Django's order; `hash` is the
/// session-auth hash of the user's password.
pub(crate) fn logged_in(id: i64, hash: String) -> [(&'static str, Value); 3] {
    [
        (SESSION_KEY, Value::String(id.to_string())),
        (BACKEND_SESSION_KEY, Value::String(MODEL_BACKEND.to_owned())),
        (HASH_SESSION_KEY, Value::String(hash)),
    ]
}

/// A row of `AUTH_USER_MODEL`'s table, as a ported view sees `request.user`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// The primary key.
    pub id: i64,
    /// The `USERNAME_FIELD`'s value (`get_username()`).
    pub username: String,
    /// `is_active`.
    pub is_active: bool,
    /// `is_staff`.
    pub is_staff: bool,
    /// `is_superuser`.
    pub is_superuser: bool,
    /// `last_login`.
    pub last_login: Option<DateTime<Utc>>,
    password: String,
}

impl User {
    /// `has_perm("app_label.codename")`: an active superuser has every permission; others
    /// have those given to them or to one of their groups.
    pub async fn has_perm(&self, state: &RequestUser, perm: &str) -> Result<bool, Error> {
        if !self.is_active {
            return Ok(false);
        }
        if self.is_superuser {
            return Ok(true);
        }
        let Some((app_label, codename)) = perm.split_once('.') else {
            return Ok(false);
        };
        let table = state.0.user_table()?;
        let sql = format!(
            "SELECT COUNT(*) FROM auth_permission p \
             JOIN django_content_type ct ON ct.id = p.content_type_id \
             WHERE ct.app_label = $1 AND p.codename = $2 AND ( \
               p.id IN (SELECT permission_id FROM {table}_user_permissions WHERE user_id = $3) \
               OR p.id IN (SELECT gp.permission_id FROM auth_group_permissions gp \
                 JOIN {table}_groups ug ON ug.group_id = gp.group_id WHERE ug.user_id = $3))"
        );
        let count: i64 = state
            .0
            .web
            .db
            .query(sql)
            .bind(app_label)
            .bind(codename)
            .bind(self.id)
            .fetch_scalar()
            .await?;
        Ok(count > 0)
    }

    /// The names of the user's groups, in name order.
    pub async fn groups(&self, state: &RequestUser) -> Result<Vec<String>, Error> {
        let table = state.0.user_table()?;
        let sql = format!(
            "SELECT g.name FROM auth_group g JOIN {table}_groups ug ON ug.group_id = g.id \
             WHERE ug.user_id = $1 ORDER BY g.name"
        );
        let rows: Vec<(String,)> = state.0.web.db.query(sql).bind(self.id).fetch_all().await?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }
}

impl RequestState {
    fn user_table(&self) -> Result<&str, Error> {
        self.web
            .settings
            .auth
            .user_table
            .as_deref()
            .ok_or_else(|| Error::internal("django.contrib.auth is not installed"))
    }

    fn user_select(&self) -> Result<String, Error> {
        let auth = &self.web.settings.auth;
        let table = self.user_table()?;
        let pk = auth.user_pk.as_deref().unwrap_or("id");
        let username = auth.username_field.as_deref().unwrap_or("username");
        Ok(format!(
            "SELECT CAST(\"{pk}\" AS BIGINT) AS id, \"{username}\" AS username, is_active, is_staff, \
             is_superuser, last_login, password FROM \"{table}\""
        ))
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, Error> {
        let pk = self.web.settings.auth.user_pk.as_deref().unwrap_or("id");
        let sql = format!("{} WHERE \"{pk}\" = $1", self.user_select()?);
        Ok(self.web.db.query(sql).bind(id).fetch_optional().await?)
    }

    /// `get_user(request)`, looked up once per request.
    pub(crate) async fn user(&self) -> Result<Option<User>, Error> {
        let mut cached = self.user.lock().await;
        if let Some(user) = cached.as_ref() {
            return Ok(user.clone());
        }
        let user = self.find_user().await?;
        *cached = Some(user.clone());
        Ok(user)
    }

    async fn find_user(&self) -> Result<Option<User>, Error> {
        let settings = &self.web.settings;
        if !settings.session_middleware
            || !settings.auth_middleware
            || settings.auth.user_table.is_none()
        {
            return Ok(None);
        }
        let session = Session(self.self_arc());
        let id = session.get(SESSION_KEY).await?;
        let backend = session.get(BACKEND_SESSION_KEY).await?;
        let (Some(id), Some(Value::String(backend))) = (id, backend) else {
            return Ok(None);
        };
        if !self.web.settings.auth.backends.contains(&backend) {
            return Ok(None);
        }
        let id = match &id {
            Value::String(text) => text.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        let Some(user) = (match id {
            Some(id) => self.user_by_id(id).await?,
            None => None,
        }) else {
            return Ok(None);
        };
        let user = Some(user).filter(|u| u.is_active);
        let Some(user) = user else {
            return Ok(None);
        };
        let stored = session.get(HASH_SESSION_KEY).await?;
        let stored = stored.as_ref().and_then(Value::as_str);
        match passwords::check_session_hash(stored, &user.password, &self.web.keys) {
            SessionHash::Current => Ok(Some(user)),
            SessionHash::Fallback => {
                session.cycle_key().await?;
                let current = passwords::session_auth_hash(&user.password, &self.web.keys.current);
                session.insert(HASH_SESSION_KEY, current).await?;
                Ok(Some(user))
            }
            SessionHash::Stale => {
                session.flush().await?;
                Ok(None)
            }
        }
    }
}

/// `request.user`: `CurrentUser(Some(user))` when logged in, `CurrentUser(None)` for the
/// anonymous user. Reading it reads the session, as in Django.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Option<User>);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let state = state_of(parts).map_err(IntoResponse::into_response)?;
        state
            .user()
            .await
            .map(CurrentUser)
            .map_err(IntoResponse::into_response)
    }
}

/// `@login_required`: the logged-in user, or the redirect Django answers for the anonymous
/// one (`302` to `LOGIN_URL?next=<this path>`).
#[derive(Debug, Clone)]
pub struct LoginRequired(pub User);

impl<S: Send + Sync> FromRequestParts<S> for LoginRequired {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let state = state_of(parts).map_err(IntoResponse::into_response)?;
        match state.user().await {
            Ok(Some(user)) => Ok(LoginRequired(user)),
            Ok(None) => Err(redirect_to_login(&state)),
            Err(err) => Err(err.into_response()),
        }
    }
}

/// `redirect_to_login(request.get_full_path(), LOGIN_URL)`.
fn redirect_to_login(state: &RequestState) -> Response {
    let login_url = state
        .web
        .urls
        .resolve_url(&state.web.settings.auth.login_url);
    let next = percent_encoding::utf8_percent_encode(
        &state.facts.full_path,
        super::urls::QUOTE_SAFE_SLASH,
    );
    let (base, query) = login_url.split_once('?').unwrap_or((&login_url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("next="))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("next={next}"));
    redirect(&format!("{base}?{}", pairs.join("&")))
}

/// `HttpResponseRedirect(url)`: 302, the location, an empty HTML body.
pub fn redirect(url: &str) -> Response {
    let location = super::urls::iri_to_uri(url);
    (
        StatusCode::FOUND,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::LOCATION, location),
        ],
    )
        .into_response()
}

/// The user-related actions of a request: `authenticate`, `login`, `logout`.
#[derive(Clone)]
pub struct RequestUser(pub(crate) Arc<RequestState>);

/// The name handlers use for [`RequestUser`]: `auth: Auth` reads as `django.contrib.auth`.
pub type Auth = RequestUser;

impl RequestUser {
    /// `authenticate(request, username=..., password=...)` with `ModelBackend`: the active
    /// user whose password this is. Unknown names cost as long as wrong passwords.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, Error> {
        let state = &self.0;
        let username_field = state
            .web
            .settings
            .auth
            .username_field
            .as_deref()
            .unwrap_or("username");
        let sql = format!("{} WHERE \"{username_field}\" = $1", state.user_select()?);
        let user: Option<User> = state
            .web
            .db
            .query(sql)
            .bind(username)
            .fetch_optional()
            .await?;
        let hashers = state.web.hashers.clone();
        let password = password.to_owned();
        let verdict = tokio::task::spawn_blocking(move || match user {
            Some(user) => {
                let ok = hashers.check(&password, &user.password) && user.is_active;
                ok.then_some(user)
            }
            None => {
                hashers.waste_time(&password);
                None
            }
        })
        .await
        .map_err(|e| Error::internal(format!("the password check stopped: {e}")))?;
        Ok(verdict)
    }

    /// `login(request, user)`.
    pub async fn login(&self, user: &User) -> Result<(), Error> {
        let state = &self.0;
        let session = Session(state.self_arc());
        let hash = passwords::session_auth_hash(&user.password, &state.web.keys.current);
        if session.contains(SESSION_KEY).await? {
            let current = session.get(SESSION_KEY).await?;
            let same_user =
                current.as_ref().and_then(Value::as_str) == Some(user.id.to_string().as_str());
            let stored = session.get(HASH_SESSION_KEY).await?;
            let same_hash = stored.as_ref().and_then(Value::as_str) == Some(hash.as_str());
            if !same_user || !same_hash {
                session.flush().await?;
            }
        } else {
            session.cycle_key().await?;
        }
        for (key, value) in logged_in(user.id, hash) {
            session.insert(key, value).await?;
        }
        *state.user.lock().await = Some(Some(user.clone()));
        super::csrf::Csrf(state.self_arc()).rotate().await?;
        if state.web.settings.auth.last_login {
            let table = state.user_table()?;
            let pk = state.web.settings.auth.user_pk.as_deref().unwrap_or("id");
            let db = &state.web.db;
            db.query(format!(
                "UPDATE \"{table}\" SET last_login = $1 WHERE \"{pk}\" = $2"
            ))
            .bind(db.timestamp(Utc::now()))
            .bind(user.id)
            .execute()
            .await?;
        }
        Ok(())
    }

    /// `logout(request)`: the session is flushed and the user is anonymous.
    pub async fn logout(&self) -> Result<(), Error> {
        Session(self.0.self_arc()).flush().await?;
        *self.0.user.lock().await = Some(None);
        Ok(())
    }

    /// `request.user`, as [`CurrentUser`] reads it.
    pub async fn user(&self) -> Result<Option<User>, Error> {
        self.0.user().await
    }

    /// Where `LoginView` sends a user after logging in: `next` (from the form, else the query)
    /// when it stays on this site, else `LOGIN_REDIRECT_URL` (`get_success_url`).
    pub fn login_redirect(&self, next: Option<&str>) -> String {
        self.safe_next(next).unwrap_or_else(|| {
            self.0
                .web
                .urls
                .resolve_url(&self.0.web.settings.auth.login_redirect_url)
        })
    }

    /// Where `LogoutView` sends a user: a safe `next`, else `LOGOUT_REDIRECT_URL`; None when
    /// neither is set (Django then renders `registration/logged_out.html`).
    pub fn logout_redirect(&self, next: Option<&str>) -> Option<String> {
        self.safe_next(next).or_else(|| {
            let setting = self.0.web.settings.auth.logout_redirect_url.as_deref()?;
            Some(self.0.web.urls.resolve_url(setting))
        })
    }

    /// `get_redirect_url()`: `next` when `url_has_allowed_host_and_scheme` accepts it for
    /// this request's host (HTTPS only for a secure request).
    pub fn safe_next(&self, next: Option<&str>) -> Option<String> {
        let next = next.filter(|n| !n.is_empty())?;
        let host = self.0.facts.host.as_deref().unwrap_or("");
        ficus_django::urls::has_allowed_host_and_scheme(next, &[host], self.0.facts.secure)
            .then(|| next.to_owned())
    }
}
