//! `CsrfViewMiddleware`'s tokens and its decision, so a ported route accepts and refuses exactly
//! the unsafe requests Django would, with Django's reason.
//!
//! From Django 5.2's `django/middleware/csrf.py`: the cookie (or the session under
//! `CSRF_USE_SESSIONS`) holds a 32-character secret of letters and digits (64 characters when an
//! older Django masked it); a form or the `CSRF_HEADER_NAME` header carries it masked (a random
//! 32-character mask, then the secret shifted by it) or bare. An unsafe request is refused when
//! its `Origin` is not the site's or a trusted one, when over HTTPS without `Origin` its
//! `Referer` is missing or foreign, and when the token is missing, malformed or not the cookie's.
//!
//! What it must not do: read the request itself or render the refusal. The engine gathers the
//! facts of a request into [`Request`] and answers a [`Rejection`] with `CSRF_FAILURE_VIEW`.

use subtle::ConstantTimeEq;

use crate::sessions::random_string;
use crate::urls::split as split_url;

/// Length of a bare secret.
pub const SECRET_LENGTH: usize = 32;
/// Length of a masked token (mask and cipher).
pub const TOKEN_LENGTH: usize = 2 * SECRET_LENGTH;
/// `CSRF_ALLOWED_CHARS`.
const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// The session key of the secret under `CSRF_USE_SESSIONS`.
pub const SESSION_KEY: &str = "_csrftoken";

/// A new secret (`_get_new_csrf_string`), for a first visit and for `rotate_token` at login.
pub fn new_secret() -> String {
    random_string(SECRET_LENGTH, CHARS)
}

fn index(c: u8) -> usize {
    CHARS.iter().position(|&x| x == c).unwrap_or(0)
}

/// `_mask_cipher_secret`: what `get_token` gives a form, different on every call.
pub fn mask(secret: &str) -> String {
    let mask = new_secret();
    mask_with(secret, &mask)
}

fn mask_with(secret: &str, mask: &str) -> String {
    let cipher: String = secret
        .bytes()
        .zip(mask.bytes())
        .map(|(s, m)| char::from(CHARS[(index(s) + index(m)) % CHARS.len()]))
        .collect();
    format!("{mask}{cipher}")
}

/// `_unmask_cipher_token`: the secret a masked token carries. The token must be well formed.
pub fn unmask(token: &str) -> String {
    let (mask, cipher) = token.split_at(SECRET_LENGTH.min(token.len()));
    cipher
        .bytes()
        .zip(mask.bytes())
        .map(|(c, m)| char::from(CHARS[(index(c) + CHARS.len() - index(m)) % CHARS.len()]))
        .collect()
}

/// Why a token or cookie is not one Django writes (`InvalidTokenFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// Neither 32 nor 64 characters.
    IncorrectLength,
    /// A character other than an ASCII letter or digit.
    InvalidCharacters,
}

impl FormatError {
    fn reason(self) -> &'static str {
        match self {
            Self::IncorrectLength => "has incorrect length",
            Self::InvalidCharacters => "has invalid characters",
        }
    }
}

/// `_check_token_format`.
pub fn check_format(token: &str) -> Result<(), FormatError> {
    if token.len() != TOKEN_LENGTH && token.len() != SECRET_LENGTH {
        return Err(FormatError::IncorrectLength);
    }
    if !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FormatError::InvalidCharacters);
    }
    Ok(())
}

/// `_get_secret` for a cookie value: the bare secret, unmasked if an older Django masked it.
pub fn secret_from_cookie(value: &str) -> Result<String, FormatError> {
    check_format(value)?;
    Ok(bare(value))
}

fn bare(token: &str) -> String {
    if token.len() == TOKEN_LENGTH {
        unmask(token)
    } else {
        token.to_owned()
    }
}

/// `_does_token_match`: a well-formed token (masked or bare) against the secret.
pub fn token_matches(token: &str, secret: &str) -> bool {
    bool::from(bare(token).as_bytes().ct_eq(secret.as_bytes()))
}

/// The CSRF settings the decision depends on.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `CSRF_TRUSTED_ORIGINS`.
    pub trusted_origins: Vec<String>,
    /// `CSRF_COOKIE_DOMAIN`, or `SESSION_COOKIE_DOMAIN` under `CSRF_USE_SESSIONS`.
    pub cookie_domain: Option<String>,
    /// `CSRF_HEADER_NAME` as a META key (`HTTP_X_CSRFTOKEN`), for the reason's wording.
    pub header_meta_name: String,
}

/// What the decision needs to know of one request.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// The method, upper case.
    pub method: &'a str,
    /// `request.is_secure()`.
    pub secure: bool,
    /// `request.get_host()`; None when Django would raise `DisallowedHost`.
    pub host: Option<&'a str>,
    /// `request.get_port()`.
    pub port: &'a str,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Referer` header.
    pub referer: Option<&'a str>,
    /// The secret from the cookie (or session): None without one, an error for a bad cookie.
    pub secret: Option<Result<String, FormatError>>,
    /// `request.POST["csrfmiddlewaretoken"]` (its last value) for a POST with a form body.
    pub form_token: Option<&'a str>,
    /// The `CSRF_HEADER_NAME` header.
    pub header_token: Option<&'a str>,
}

/// A refusal, with the reason Django passes to `CSRF_FAILURE_VIEW` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

impl Policy {
    /// `process_view` for a view that is not `csrf_exempt`.
    pub fn check(&self, request: &Request<'_>) -> Result<(), Rejection> {
        if matches!(request.method, "GET" | "HEAD" | "OPTIONS" | "TRACE") {
            return Ok(());
        }
        if let Some(origin) = request.origin {
            if !self.origin_verified(request, origin) {
                return Err(Rejection(format!(
                    "Origin checking failed - {origin} does not match any trusted origins."
                )));
            }
        } else if request.secure {
            self.check_referer(request)?;
        }
        self.check_token(request)
    }

    fn origin_verified(&self, request: &Request<'_>, origin: &str) -> bool {
        if let Some(host) = request.host {
            let scheme = if request.secure { "https" } else { "http" };
            if origin == format!("{scheme}://{host}") {
                return true;
            }
        }
        if self
            .trusted_origins
            .iter()
            .any(|t| !t.contains('*') && t == origin)
        {
            return true;
        }
        let Some((scheme, netloc)) = split_url(origin) else {
            return false;
        };
        self.trusted_origins
            .iter()
            .filter(|t| t.contains('*'))
            .filter_map(|t| split_url(t))
            .filter(|(s, _)| *s == scheme)
            .any(|(_, host)| is_same_domain(&netloc, host.trim_start_matches('*')))
    }

    fn check_referer(&self, request: &Request<'_>) -> Result<(), Rejection> {
        let Some(referer) = request.referer else {
            return Err(Rejection("Referer checking failed - no Referer.".into()));
        };
        let malformed = || Rejection("Referer checking failed - Referer is malformed.".into());
        let (scheme, netloc) = split_url(referer).ok_or_else(malformed)?;
        if scheme.is_empty() || netloc.is_empty() {
            return Err(malformed());
        }
        if scheme != "https" {
            return Err(Rejection(
                "Referer checking failed - Referer is insecure while host is secure.".into(),
            ));
        }
        let trusted = self
            .trusted_origins
            .iter()
            .filter_map(|t| split_url(t))
            .any(|(_, host)| is_same_domain(&netloc, host.trim_start_matches('*')));
        if trusted {
            return Ok(());
        }
        let bad = || {
            Rejection(format!(
                "Referer checking failed - {referer} does not match any trusted origins."
            ))
        };
        let good = match &self.cookie_domain {
            None => request.host.ok_or_else(bad)?.to_owned(),
            Some(domain) if matches!(request.port, "443" | "80") => domain.clone(),
            Some(domain) => format!("{domain}:{}", request.port),
        };
        if is_same_domain(&netloc, &good) {
            Ok(())
        } else {
            Err(bad())
        }
    }

    fn check_token(&self, request: &Request<'_>) -> Result<(), Rejection> {
        let secret = match &request.secret {
            None => return Err(Rejection("CSRF cookie not set.".into())),
            Some(Err(e)) => return Err(Rejection(format!("CSRF cookie {}.", e.reason()))),
            Some(Ok(secret)) => secret,
        };
        let (token, source) = match request.form_token.filter(|t| !t.is_empty()) {
            Some(token) => (token, "POST".to_owned()),
            None => match request.header_token {
                Some(token) => (token, format!("the '{}' HTTP header", self.header_name())),
                None => return Err(Rejection("CSRF token missing.".into())),
            },
        };
        if let Err(e) = check_format(token) {
            return Err(Rejection(format!(
                "CSRF token from {source} {}.",
                e.reason()
            )));
        }
        if token_matches(token, secret) {
            Ok(())
        } else {
            Err(Rejection(format!("CSRF token from {source} incorrect.")))
        }
    }

    /// `HttpHeaders.parse_header_name`: `HTTP_X_CSRFTOKEN` is `X-Csrftoken`.
    fn header_name(&self) -> String {
        let name = self
            .header_meta_name
            .strip_prefix("HTTP_")
            .unwrap_or(&self.header_meta_name);
        name.split('_')
            .map(|word| {
                let lower = word.to_ascii_lowercase();
                let mut chars = lower.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// `django.utils.http.is_same_domain`.
fn is_same_domain(host: &str, pattern: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix('.') {
        Some(bare) => host.ends_with(&pattern) || host == bare,
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";

    fn policy() -> Policy {
        Policy {
            trusted_origins: vec!["https://*.example.com".into(), "https://partner.org".into()],
            cookie_domain: None,
            header_meta_name: "HTTP_X_CSRFTOKEN".into(),
        }
    }

    fn post<'a>(token: &'a str) -> Request<'a> {
        Request {
            method: "POST",
            host: Some("testserver"),
            port: "80",
            secret: Some(Ok(SECRET.to_owned())),
            form_token: Some(token),
            ..Request::default()
        }
    }

    fn reason(request: &Request<'_>) -> Option<String> {
        policy().check(request).err().map(|Rejection(r)| r)
    }

    // Django 5.2: _mask_cipher_secret(SECRET) with the mask "0123456789abcdefghijklmnopqrstuv".
    #[test]
    fn tokens_are_masked_as_django_masks_them() {
        let token = mask_with(SECRET, "0123456789abcdefghijklmnopqrstuv");
        assert_eq!(
            token,
            "0123456789abcdefghijklmnopqrstuv02468acegikmoqsuwyACEGIKMOQSUWY0"
        );
        assert_eq!(unmask(&token), SECRET);
        let random = mask(SECRET);
        assert_eq!(random.len(), TOKEN_LENGTH);
        assert_ne!(random, mask(SECRET));
        assert!(token_matches(&random, SECRET));
        assert!(token_matches(SECRET, SECRET));
    }

    #[test]
    fn safe_methods_pass_without_any_token() {
        let request = Request {
            method: "GET",
            ..Request::default()
        };
        assert_eq!(reason(&request), None);
    }

    #[test]
    fn a_post_needs_the_cookie_and_a_matching_token() {
        assert_eq!(reason(&post(&mask(SECRET))), None);
        let no_cookie = Request {
            secret: None,
            ..post(SECRET)
        };
        assert_eq!(reason(&no_cookie).as_deref(), Some("CSRF cookie not set."));
        let bad_cookie = Request {
            secret: Some(Err(FormatError::InvalidCharacters)),
            ..post(SECRET)
        };
        assert_eq!(
            reason(&bad_cookie).as_deref(),
            Some("CSRF cookie has invalid characters.")
        );
        let other = "bbcdefghijklmnopqrstuvwxyzABCDEF";
        assert_eq!(
            reason(&post(other)).as_deref(),
            Some("CSRF token from POST incorrect.")
        );
        assert_eq!(
            reason(&post("short")).as_deref(),
            Some("CSRF token from POST has incorrect length.")
        );
        let missing = Request {
            form_token: None,
            ..post("")
        };
        assert_eq!(reason(&missing).as_deref(), Some("CSRF token missing."));
        let header = Request {
            form_token: None,
            header_token: Some("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"),
            ..post("")
        };
        assert_eq!(
            reason(&header).as_deref(),
            Some("CSRF token from the 'X-Csrftoken' HTTP header has invalid characters.")
        );
    }

    #[test]
    fn origins_must_be_the_site_or_trusted() {
        let token = mask(SECRET);
        let with = |origin| Request {
            origin: Some(origin),
            ..post(&token)
        };
        assert_eq!(reason(&with("http://testserver")), None);
        assert_eq!(reason(&with("https://a.example.com")), None);
        assert_eq!(reason(&with("https://partner.org")), None);
        assert_eq!(
            reason(&with("https://evil.org")).as_deref(),
            Some("Origin checking failed - https://evil.org does not match any trusted origins.")
        );
        assert_eq!(
            reason(&with("http://a.example.com")).as_deref(),
            Some(
                "Origin checking failed - http://a.example.com does not match any trusted origins."
            )
        );
    }

    #[test]
    fn https_without_origin_checks_the_referer() {
        let token = mask(SECRET);
        let secure = |referer| Request {
            secure: true,
            port: "443",
            referer,
            ..post(&token)
        };
        assert_eq!(reason(&secure(Some("https://testserver/form/"))), None);
        assert_eq!(reason(&secure(Some("https://b.example.com/"))), None);
        assert_eq!(
            reason(&secure(None)).as_deref(),
            Some("Referer checking failed - no Referer.")
        );
        assert_eq!(
            reason(&secure(Some("http://testserver/"))).as_deref(),
            Some("Referer checking failed - Referer is insecure while host is secure.")
        );
        assert_eq!(
            reason(&secure(Some("nonsense"))).as_deref(),
            Some("Referer checking failed - Referer is malformed.")
        );
        assert_eq!(
            reason(&secure(Some("https://evil.org/x"))).as_deref(),
            Some(
                "Referer checking failed - https://evil.org/x does not match any trusted origins."
            )
        );
    }
}
