//! `django.core.signing`: what Django signs (sessions, the messages cookie, signed cookies), Rust
//! signs and reads back the same way.
//!
//! Written from Django 5.2's `django/core/signing.py` and `django/utils/crypto.py`: the salted
//! HMAC (`salted_hmac`), `Signer` (SHA-256, `:` separator, the salt plus `"signer"` as key salt),
//! `TimestampSigner` (a base-62 timestamp before the signature) and `dumps`/`loads` (compact
//! JSON, zlib-compressed when that is shorter, a leading `.` for compressed, URL-safe base64
//! without padding). Unsigning tries `SECRET_KEY` first, then each of `SECRET_KEY_FALLBACKS`.
//!
//! What it must not do: read settings or the clock on its own behalf beyond `now()` below. Keys
//! and salts are the caller's.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a signed value was not accepted; Django's `BadSignature` and `SignatureExpired`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No separator, or a part that is not what Django writes there.
    #[error("the signed value is malformed")]
    Malformed,
    /// The signature matches none of the keys.
    #[error("the signature does not match")]
    Mismatch,
    /// The signature is good but older than the allowed age.
    #[error("the signature is older than {0} seconds")]
    Expired(u64),
    /// The payload is signed but does not decode (bad base64, zlib or JSON).
    #[error("the signed payload does not decode: {0}")]
    Payload(String),
}

/// Django's `salted_hmac(key_salt, value, secret, algorithm="sha256")`: an HMAC-SHA256 whose key
/// is the SHA-256 of the salt followed by the secret.
pub fn salted_hmac_sha256(key_salt: &str, value: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(key_salt.as_bytes());
    hasher.update(secret);
    let key = hasher.finalize();
    // An HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// URL-safe base64 without padding, as `signing.b64_encode` writes it.
pub fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The inverse of [`b64_encode`]; padding is tolerated as Django's `b64_decode` adds its own.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `signing.b62_encode`, for the timestamps of `TimestampSigner`.
pub fn b62_encode(mut n: u64) -> String {
    if n == 0 {
        return "0".to_owned();
    }
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// `signing.b62_decode`; None for a character outside the alphabet or an overflow. Django would
/// also take a leading `-`, which no timestamp it writes has.
pub fn b62_decode(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |n, b| {
        let digit = BASE62.iter().position(|&c| c == b)? as u64;
        n.checked_mul(62)?.checked_add(digit)
    })
}

/// Seconds since the epoch, as `time.time()` gives them (whole seconds are enough here).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The key material of a signer: `SECRET_KEY` and its fallbacks, as bytes.
#[derive(Debug, Clone)]
pub struct Keys {
    /// `SECRET_KEY`, used to sign and tried first to unsign.
    pub current: Vec<u8>,
    /// `SECRET_KEY_FALLBACKS`, tried in order to unsign.
    pub fallbacks: Vec<Vec<u8>>,
}

impl Keys {
    /// Keys from the settings' strings.
    pub fn new(secret_key: &str, fallbacks: &[String]) -> Self {
        Self {
            current: secret_key.as_bytes().to_vec(),
            fallbacks: fallbacks.iter().map(|k| k.as_bytes().to_vec()).collect(),
        }
    }

    /// The keys `signing.get_cookie_signer` signs with: each prefixed with
    /// `django.http.cookies`, so a cookie signature is never valid as another signature.
    pub fn for_cookies(&self) -> Self {
        let prefix = |k: &Vec<u8>| [b"django.http.cookies".as_slice(), k].concat();
        Self {
            current: prefix(&self.current),
            fallbacks: self.fallbacks.iter().map(prefix).collect(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.current.as_slice()).chain(self.fallbacks.iter().map(Vec::as_slice))
    }
}

/// Django's `Signer` with the default algorithm (SHA-256) and separator (`:`).
#[derive(Debug, Clone)]
pub struct Signer {
    keys: Keys,
    salt: String,
}

impl Signer {
    /// A signer with `salt` (Django's `Signer(salt=...)`).
    pub fn new(keys: Keys, salt: &str) -> Self {
        Self {
            keys,
            salt: salt.to_owned(),
        }
    }

    fn signature(&self, value: &str, key: &[u8]) -> String {
        let key_salt = format!("{}signer", self.salt);
        b64_encode(&salted_hmac_sha256(&key_salt, value.as_bytes(), key))
    }

    /// `value:signature`.
    pub fn sign(&self, value: &str) -> String {
        format!("{value}:{}", self.signature(value, &self.keys.current))
    }

    /// The value of `signed` when one of the keys signed it.
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<&'a str, SignatureError> {
        let (value, signature) = signed.rsplit_once(':').ok_or(SignatureError::Malformed)?;
        let matches = self.keys.all().any(|key| {
            let expected = self.signature(value, key);
            bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
        });
        if matches {
            Ok(value)
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// `TimestampSigner.sign`: `value:timestamp:signature`, the timestamp being `at`.
    pub fn sign_timestamped(&self, value: &str, at: u64) -> String {
        self.sign(&format!("{value}:{}", b62_encode(at)))
    }

    /// `TimestampSigner.unsign(max_age=...)`: the value and when it was signed.
    pub fn unsign_timestamped<'a>(
        &self,
        signed: &'a str,
        max_age: Option<u64>,
        now: u64,
    ) -> Result<(&'a str, u64), SignatureError> {
        let value = self.unsign(signed)?;
        let (value, stamp) = value.rsplit_once(':').ok_or(SignatureError::Malformed)?;
        let at = b62_decode(stamp).ok_or(SignatureError::Malformed)?;
        if let Some(max_age) = max_age
            && now.saturating_sub(at) > max_age
        {
            return Err(SignatureError::Expired(max_age));
        }
        Ok((value, at))
    }

    /// `TimestampSigner.sign_object(obj, compress=...)`, as `signing.dumps` writes it.
    pub fn dumps(&self, value: &serde_json::Value, compress: bool, at: u64) -> String {
        self.sign_timestamped(&encode_payload(value, compress), at)
    }

    /// `signing.loads(..., max_age=...)`.
    pub fn loads(
        &self,
        signed: &str,
        max_age: Option<u64>,
        now: u64,
    ) -> Result<serde_json::Value, SignatureError> {
        let (payload, _) = self.unsign_timestamped(signed, max_age, now)?;
        decode_payload(payload)
    }
}

/// JSON as Python's `json.dumps(obj, separators=(",", ":"))` writes it: compact, with every
/// character outside ASCII escaped (`ensure_ascii`), so the signed bytes are Django's.
pub fn python_json(value: &serde_json::Value) -> String {
    let compact = value.to_string();
    if compact.is_ascii() {
        return compact;
    }
    // Outside ASCII can only occur inside strings, where an escape means the same character.
    let mut out = String::with_capacity(compact.len() + 16);
    for c in compact.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn encode_payload(value: &serde_json::Value, compress: bool) -> String {
    let data = python_json(value).into_bytes();
    if compress {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        let compressed = encoder
            .write_all(&data)
            .and_then(|()| encoder.finish())
            .ok();
        // Django keeps the compressed form only when it saves more than a byte.
        if let Some(compressed) = compressed
            && compressed.len() + 1 < data.len()
        {
            return format!(".{}", b64_encode(&compressed));
        }
    }
    b64_encode(&data)
}

/// Payloads Django wrote are small; a bomb is cut off well above any real session.
const MAX_DECOMPRESSED: u64 = 16 * 1024 * 1024;

fn decode_payload(payload: &str) -> Result<serde_json::Value, SignatureError> {
    let (compressed, text) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let mut data = b64_decode(text).ok_or_else(|| SignatureError::Payload("base64".into()))?;
    if compressed {
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(data.as_slice())
            .take(MAX_DECOMPRESSED)
            .read_to_end(&mut inflated)
            .map_err(|e| SignatureError::Payload(format!("zlib: {e}")))?;
        data = inflated;
    }
    // Django decodes the JSON as latin-1, which only matters for bytes it never writes.
    serde_json::from_slice(&data).map_err(|e| SignatureError::Payload(format!("JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expectations from Django 5.2 (`django.core.signing` with the key and salt shown).
    fn keys() -> Keys {
        Keys::new("s3cr3t", &[])
    }

    #[test]
    fn salted_hmac_matches_django() {
        // salted_hmac("salt", "value", "s3cr3t", algorithm="sha256").hexdigest()
        let mac = salted_hmac_sha256("salt", b"value", b"s3cr3t");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "728dbfe57b6bc8aa2056c570449513980aa2bdd126c495f4700a529523aadb87"
        );
    }

    #[test]
    fn signatures_are_djangos() {
        // Signer(key="s3cr3t", salt="salt").sign("hello")
        let signer = Signer::new(keys(), "salt");
        assert_eq!(
            signer.sign("hello"),
            "hello:jWT3jr9PghuceYa6a_WiazmsE2281XnELzNM_vH97MU"
        );
        // signing.dumps({"a": 1, "b": "café"}, salt=..., compress=True) at 1700000000
        let sessions = Signer::new(keys(), "django.contrib.sessions.SessionStore");
        assert_eq!(
            sessions.dumps(&json!({"a": 1, "b": "café"}), true, 1_700_000_000),
            "eyJhIjoxLCJiIjoiY2FmXHUwMGU5In0:1r31eq:cLkuL5JvM81NCgAmSqJ0deb29ioMc5txU7i7M-VBNoE"
        );
    }

    #[test]
    fn values_django_compressed_and_signed_for_cookies_are_read() {
        let sessions = Signer::new(keys(), "django.contrib.sessions.SessionStore");
        let django =
            ".eJyrVspWslKqGAUjDijVAgA_G-yG:1r31eq:oM5DfeNJH0dYT879Dyz9TZJIkuQxXP_fDjsTszpqneY";
        assert_eq!(
            sessions.loads(django, None, 1_700_000_000),
            Ok(json!({"k": "x".repeat(500)}))
        );
        // signing.get_cookie_signer(salt="django.contrib.messages").sign_object(...)
        let messages = Signer::new(keys().for_cookies(), "django.contrib.messages");
        let cookie = "W1siX19qc29uX21lc3NhZ2UiLDAsMjUsIkhpIl1d:1r31eq:VEMpQkLO6YEHFXpPkDkh-ZLNk_8TzboBY2yl6LOn1EI";
        assert_eq!(
            messages.loads(cookie, None, 1_700_000_000),
            Ok(json!([["__json_message", 0, 25, "Hi"]]))
        );
        assert_eq!(
            messages.dumps(
                &json!([["__json_message", 0, 25, "Hi"]]),
                true,
                1_700_000_000
            ),
            cookie
        );
    }

    #[test]
    fn base62_round_trips_timestamps() {
        assert_eq!(b62_encode(0), "0");
        assert_eq!(b62_encode(61), "z");
        assert_eq!(b62_encode(62), "10");
        assert_eq!(b62_decode(&b62_encode(1_764_633_600)), Some(1_764_633_600));
        assert_eq!(b62_decode("!"), None);
    }

    #[test]
    fn a_signed_value_is_read_back_and_a_changed_one_is_not() {
        let signer = Signer::new(keys(), "django.core.signing");
        let signed = signer.sign_timestamped("hello", 1_700_000_000);
        assert_eq!(
            signer.unsign_timestamped(&signed, None, 1_700_000_100),
            Ok(("hello", 1_700_000_000))
        );
        let tampered = signed.replacen("hello", "hellp", 1);
        assert_eq!(
            signer.unsign_timestamped(&tampered, None, 0),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            signer.unsign_timestamped(&signed, Some(60), 1_700_000_100),
            Err(SignatureError::Expired(60))
        );
    }

    #[test]
    fn a_value_signed_with_a_fallback_key_is_accepted() {
        let old = Signer::new(Keys::new("old", &[]), "salt");
        let signed = old.sign("v");
        let rotated = Signer::new(Keys::new("new", &["old".to_owned()]), "salt");
        assert_eq!(rotated.unsign(&signed), Ok("v"));
        let other = Signer::new(Keys::new("new", &[]), "salt");
        assert_eq!(other.unsign(&signed), Err(SignatureError::Mismatch));
    }

    #[test]
    fn json_is_written_as_python_writes_it() {
        assert_eq!(
            python_json(&json!({"a": "café", "b": [1, 2], "c": "😀"})),
            r#"{"a":"caf\u00e9","b":[1,2],"c":"\ud83d\ude00"}"#
        );
    }

    #[test]
    fn dumps_compresses_only_what_shrinks() {
        let signer = Signer::new(keys(), "s");
        let small = signer.dumps(&json!({"a": 1}), true, 0);
        assert!(!small.starts_with('.'), "{small}");
        let big = json!({"k": "x".repeat(500)});
        let signed = signer.dumps(&big, true, 0);
        assert!(signed.starts_with('.'), "{signed}");
        assert_eq!(signer.loads(&signed, None, 0), Ok(big));
    }
}
