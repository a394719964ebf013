//! How Django's session backends write a session, so one saved in Rust is read by Django and the
//! other way round.
//!
//! From Django 5.2's `contrib/sessions/backends/`: the database backend stores
//! `signing.dumps(data, salt="django.contrib.sessions.SessionStore", compress=True)` in
//! `django_session.session_data` under a 32-character key of lower-case letters and digits; the
//! signed-cookie backend puts `signing.dumps(data, salt="...signed_cookies", compress=True)` in
//! the cookie itself and reads it back with `SESSION_COOKIE_AGE` as the maximum age. Data is a
//! JSON object in insertion order (`SESSION_SERIALIZER` is Django's JSON serializer).
//!
//! What it must not do: store or fetch anything. The engine does that with these encodings.

use rand::Rng;
use serde_json::{Map, Value};

use crate::signing::{Keys, Signer};

/// A session's data, in the order Django's dict keeps it.
pub type SessionData = Map<String, Value>;

/// The characters of a session key (`VALID_KEY_CHARS`).
const KEY_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh key for the database backend, as `_get_new_session_key` draws it.
pub fn new_session_key() -> String {
    random_string(32, KEY_CHARS)
}

/// `get_random_string(length, allowed_chars)`, from the operating system's generator.
pub(crate) fn random_string(length: usize, chars: &[u8]) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..length)
        .map(|_| char::from(chars[rng.gen_range(0..chars.len())]))
        .collect()
}

/// Whether Django would use `key` as a session key at all (`_validate_session_key`).
pub fn is_valid_key(key: &str) -> bool {
    key.len() >= 8
}

/// Why a stored session was read as empty: Django logs the first and says nothing of the second.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// The signature does not match (`Session data corrupted`).
    Corrupted,
    /// Signed, but not a JSON object Django would have written.
    Undecodable,
}

/// The database backend's encoding (also the cache backends'): `SessionBase.encode`/`decode`.
#[derive(Debug, Clone)]
pub struct StoredCodec {
    signer: Signer,
}

impl StoredCodec {
    /// The codec of `django.contrib.sessions.backends.db.SessionStore` (and `cached_db`'s,
    /// whose class has the same qualified name and so the same salt).
    pub fn new(keys: Keys) -> Self {
        Self {
            signer: Signer::new(keys, "django.contrib.sessions.SessionStore"),
        }
    }

    /// What goes in `session_data`.
    pub fn encode(&self, data: &SessionData, now: u64) -> String {
        self.signer.dumps(&Value::Object(data.clone()), true, now)
    }

    /// The data of `session_data`; Django reads a bad one as an empty session.
    pub fn decode(&self, stored: &str) -> Result<SessionData, Unreadable> {
        match self.signer.loads(stored, None, 0) {
            Ok(Value::Object(data)) => Ok(data),
            Ok(_) => Err(Unreadable::Undecodable),
            Err(crate::signing::SignatureError::Mismatch) => Err(Unreadable::Corrupted),
            Err(_) => Err(Unreadable::Undecodable),
        }
    }
}

/// The signed-cookie backend: the cookie's value is the session.
#[derive(Debug, Clone)]
pub struct CookieCodec {
    signer: Signer,
    max_age: u64,
}

impl CookieCodec {
    /// The codec of `django.contrib.sessions.backends.signed_cookies`, whose cookies are read
    /// for `SESSION_COOKIE_AGE` seconds after they were written.
    pub fn new(keys: Keys, cookie_age: u64) -> Self {
        Self {
            signer: Signer::new(keys, "django.contrib.sessions.backends.signed_cookies"),
            max_age: cookie_age,
        }
    }

    /// The cookie value holding `data`.
    pub fn encode(&self, data: &SessionData, now: u64) -> String {
        self.signer.dumps(&Value::Object(data.clone()), true, now)
    }

    /// The session in a cookie value; a bad or expired one is refused (Django then starts an
    /// empty session and sets a new cookie).
    pub fn decode(&self, cookie: &str, now: u64) -> Option<SessionData> {
        match self.signer.loads(cookie, Some(self.max_age), now) {
            Ok(Value::Object(data)) => Some(data),
            _ => None,
        }
    }
}

/// The key under which `set_expiry` keeps a session's own lifetime.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// `get_expiry_age()`: seconds until the session expires, from its own expiry if it has one
/// (seconds, or an ISO date), else `SESSION_COOKIE_AGE`.
pub fn expiry_age(data: &SessionData, cookie_age: u64, now: chrono::DateTime<chrono::Utc>) -> i64 {
    let fallback = i64::try_from(cookie_age).unwrap_or(i64::MAX);
    match data.get(EXPIRY_KEY) {
        None | Some(Value::Null) => fallback,
        Some(Value::Number(n)) if n.as_i64() == Some(0) => fallback,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(fallback),
        Some(Value::String(iso)) => chrono::DateTime::parse_from_rfc3339(iso)
            .map(|at| (at.with_timezone(&chrono::Utc) - now).num_seconds())
            .unwrap_or(fallback),
        Some(_) => fallback,
    }
}

/// `get_expire_at_browser_close()`: a session expiring at 0 does, else the setting decides.
pub fn expires_at_browser_close(data: &SessionData, setting: bool) -> bool {
    match data.get(EXPIRY_KEY) {
        None | Some(Value::Null) => setting,
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> SessionData {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("tests pass objects"),
        }
    }

    // From Django 5.2: SessionStore().encode({...}) with SECRET_KEY="s3cr3t" at 1700000000.
    #[test]
    fn session_data_is_encoded_as_the_database_backend_encodes_it() {
        let codec = StoredCodec::new(Keys::new("s3cr3t", &[]));
        let session = data(
            json!({"_auth_user_id": "1", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"}),
        );
        let encoded = codec.encode(&session, 1_700_000_000);
        assert_eq!(codec.decode(&encoded), Ok(session));
        assert_eq!(
            codec.decode("garbage:1r31eq:sig"),
            Err(Unreadable::Corrupted)
        );
        assert_eq!(codec.decode("no separator"), Err(Unreadable::Undecodable));
    }

    #[test]
    fn a_signed_cookie_session_is_refused_once_older_than_the_cookie_age() {
        let codec = CookieCodec::new(Keys::new("s3cr3t", &[]), 60);
        let session = data(json!({"n": 1}));
        let cookie = codec.encode(&session, 1_000);
        assert_eq!(codec.decode(&cookie, 1_030), Some(session));
        assert_eq!(codec.decode(&cookie, 1_061), None);
    }

    #[test]
    fn new_keys_are_32_lower_case_letters_and_digits() {
        let key = new_session_key();
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| KEY_CHARS.contains(&b)));
        assert_ne!(key, new_session_key());
    }

    #[test]
    fn expiry_follows_the_session_then_the_setting() {
        let now = chrono::Utc::now();
        assert_eq!(expiry_age(&data(json!({})), 1209600, now), 1209600);
        assert_eq!(
            expiry_age(&data(json!({EXPIRY_KEY: 300})), 1209600, now),
            300
        );
        assert!(expires_at_browser_close(
            &data(json!({EXPIRY_KEY: 0})),
            false
        ));
        assert!(!expires_at_browser_close(&data(json!({})), false));
    }
}
