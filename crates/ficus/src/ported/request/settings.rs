//! The Django settings a ported view's request follows (sessions, CSRF, users, messages,
//! uploads, templates), read once from the live project (`django.py`'s `web()`), and the
//! start-up refusal of a setting ficus cannot follow.
//!
//! A refusal is one sentence naming the setting and what to do; `serve` stops with it when
//! routes are served by Rust, instead of a handler misbehaving later at request time.

use serde::Deserialize;

use ficus_django::passwords::{Hashers, UnknownHasher};
use ficus_django::signing::Keys;

/// What `web()` in `django.py` returns.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WebSettings {
    pub secret_key: String,
    pub secret_key_fallbacks: Vec<String>,
    pub session_middleware: bool,
    pub csrf_middleware: bool,
    pub auth_middleware: bool,
    pub messages_middleware: bool,
    pub session: SessionSettings,
    pub csrf: CsrfSettings,
    pub auth: AuthSettings,
    pub messages: MessageSettings,
    pub uploads: UploadSettings,
    pub media: MediaSettings,
    pub templates: TemplateSettings,
}

/// What `set_cookie` is given for a middleware's cookie (`SESSION_COOKIE_*`, `CSRF_COOKIE_*`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CookieSettings {
    #[serde(rename = "cookie_name")]
    pub name: String,
    #[serde(rename = "cookie_domain")]
    pub domain: Option<String>,
    #[serde(rename = "cookie_path")]
    pub path: String,
    #[serde(rename = "cookie_secure")]
    pub secure: bool,
    #[serde(rename = "cookie_httponly")]
    pub httponly: bool,
    #[serde(rename = "cookie_samesite")]
    pub samesite: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SessionSettings {
    pub engine: String,
    pub serializer: String,
    #[serde(flatten)]
    pub cookie: CookieSettings,
    pub cookie_age: u64,
    pub save_every_request: bool,
    pub expire_at_browser_close: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CsrfSettings {
    #[serde(flatten)]
    pub cookie: CookieSettings,
    pub cookie_age: Option<i64>,
    pub header_meta_name: String,
    /// The request header `header_meta_name` stands for, lower case; None for a META key that
    /// is not a header.
    pub header: Option<String>,
    pub trusted_origins: Vec<String>,
    pub use_sessions: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AuthSettings {
    /// None when `django.contrib.auth` is not installed.
    pub user_table: Option<String>,
    pub user_pk: Option<String>,
    pub username_field: Option<String>,
    pub backends: Vec<String>,
    pub login_url: String,
    pub login_redirect_url: String,
    pub logout_redirect_url: Option<String>,
    pub password_hashers: Vec<String>,
    /// Whether the user model has `last_login`, which `login()` then updates.
    pub last_login: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MessageSettings {
    pub storage: String,
    /// `MESSAGE_LEVEL`.
    pub level: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UploadSettings {
    pub data_upload_max_memory_size: Option<u64>,
    pub data_upload_max_number_fields: Option<u64>,
    pub data_upload_max_number_files: Option<u64>,
    /// `FILE_UPLOAD_TEMP_DIR`: where uploads wait until stored (None: the system's).
    pub file_upload_temp_dir: Option<std::path::PathBuf>,
}

/// `STORAGES["default"]` when it is a `FileSystemStorage`, and the `mimetypes` tables of the
/// project's Python, which `FileResponse` consults.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MediaSettings {
    /// The default storage's backend (only `FileSystemStorage` is followed).
    pub backend: String,
    /// `FileSystemStorage.location`: `MEDIA_ROOT` made absolute.
    pub root: std::path::PathBuf,
    /// `FileSystemStorage.base_url`: `MEDIA_URL`.
    pub url: String,
    /// `FILE_UPLOAD_PERMISSIONS`.
    pub file_permissions: Option<u32>,
    /// `FILE_UPLOAD_DIRECTORY_PERMISSIONS`.
    pub directory_permissions: Option<u32>,
    pub mimetypes: ficus_django::storage::MimeTypes,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TemplateSettings {
    pub time_zone: String,
    pub use_tz: bool,
    pub static_url: String,
    pub static_storage: String,
}

/// The session engines whose storage ficus reads and writes itself.
pub(crate) const DB_ENGINE: &str = "django.contrib.sessions.backends.db";
pub(crate) const COOKIE_ENGINE: &str = "django.contrib.sessions.backends.signed_cookies";

/// The message storages ficus follows.
pub(crate) const FALLBACK_STORAGE: &str =
    "django.contrib.messages.storage.fallback.FallbackStorage";
pub(crate) const COOKIE_STORAGE: &str = "django.contrib.messages.storage.cookie.CookieStorage";
pub(crate) const SESSION_STORAGE: &str = "django.contrib.messages.storage.session.SessionStorage";

/// A setting the Rust handlers cannot follow, in one sentence.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unsupported {
    #[error(
        "SESSION_ENGINE is {0}, which ficus cannot share with Django (it reads and writes the db and signed_cookies engines; a cache in front of the session table would go stale): use one of those, or keep the routes that use sessions in Django"
    )]
    SessionEngine(String),
    #[error(
        "SESSION_SERIALIZER is {0}; ficus reads sessions written with django.contrib.sessions.serializers.JSONSerializer only"
    )]
    SessionSerializer(String),
    #[error(
        "MESSAGE_STORAGE is {0}; ficus follows the fallback, cookie and session storages of django.contrib.messages"
    )]
    MessageStorage(String),
    #[error(
        "AUTHENTICATION_BACKENDS lists {0}; ficus logs users in as django.contrib.auth.backends.ModelBackend does, and no other backend"
    )]
    AuthBackend(String),
    #[error(transparent)]
    Hasher(#[from] UnknownHasher),
    #[error("TIME_ZONE is {0}, which is not a time zone ficus knows")]
    TimeZone(String),
}

impl CookieSettings {
    /// Adds the cookie with `value` to `response`, as the middleware's `set_cookie` call does.
    pub(crate) fn set(
        &self,
        response: &mut axum::response::Response,
        value: &str,
        max_age: Option<i64>,
    ) {
        let attributes = ficus_django::cookies::Attributes {
            max_age,
            expires: None,
            path: Some(self.path.clone()),
            domain: self.domain.clone(),
            secure: self.secure,
            httponly: self.httponly,
            samesite: self.samesite.clone(),
        };
        let now = chrono::Utc::now().timestamp();
        let cookie = ficus_django::cookies::set_cookie(&self.name, value, &attributes, now);
        super::add_cookie(response.headers_mut(), &cookie);
    }

    /// Deletes the cookie, as `delete_cookie(name, path, domain, samesite)` does.
    pub(crate) fn delete(&self, response: &mut axum::response::Response) {
        let cookie = ficus_django::cookies::delete_cookie(
            &self.name,
            Some(&self.path),
            self.domain.as_deref(),
            self.samesite.as_deref(),
        );
        super::add_cookie(response.headers_mut(), &cookie);
    }
}

impl WebSettings {
    /// Refuses what ficus cannot follow; the first such setting is the answer.
    pub(crate) fn check(&self) -> Result<(), Unsupported> {
        let session = &self.session;
        if self.session_middleware && ![DB_ENGINE, COOKIE_ENGINE].contains(&session.engine.as_str())
        {
            return Err(Unsupported::SessionEngine(session.engine.clone()));
        }
        let json = [
            "django.contrib.sessions.serializers.JSONSerializer",
            "django.core.signing.JSONSerializer",
        ];
        if self.session_middleware && !json.contains(&session.serializer.as_str()) {
            return Err(Unsupported::SessionSerializer(session.serializer.clone()));
        }
        let storages = [FALLBACK_STORAGE, COOKIE_STORAGE, SESSION_STORAGE];
        if self.messages_middleware && !storages.contains(&self.messages.storage.as_str()) {
            return Err(Unsupported::MessageStorage(self.messages.storage.clone()));
        }
        if self.auth.user_table.is_some()
            && let Some(other) = self
                .auth
                .backends
                .iter()
                .find(|b| b.as_str() != "django.contrib.auth.backends.ModelBackend")
        {
            return Err(Unsupported::AuthBackend(other.clone()));
        }
        self.hashers()?;
        self.time_zone()?;
        Ok(())
    }

    pub(crate) fn keys(&self) -> Keys {
        Keys::new(&self.secret_key, &self.secret_key_fallbacks)
    }

    pub(crate) fn hashers(&self) -> Result<Hashers, UnknownHasher> {
        Hashers::from_setting(&self.auth.password_hashers)
    }

    pub(crate) fn time_zone(&self) -> Result<chrono_tz::Tz, Unsupported> {
        self.templates
            .time_zone
            .parse()
            .map_err(|_| Unsupported::TimeZone(self.templates.time_zone.clone()))
    }
}
