//! A `Set-Cookie` value as Django writes it, so the cookies of a ported route are the bytes
//! Django's would be.
//!
//! From `HttpResponseBase.set_cookie`/`delete_cookie` (Django 5.2) and Python's
//! `http.cookies.Morsel.OutputString`: attributes in sorted order (`Domain`, `expires`,
//! `HttpOnly`, `Max-Age`, `Path`, `SameSite`, `Secure`), `expires` computed from `max_age` when
//! only that is given, and values outside the cookie-safe characters quoted as `SimpleCookie`
//! quotes them.
//!
//! What it must not do: decide which cookies a response gets; that is each convention's job.

/// The attributes of `set_cookie(key, value, ...)`; `path` is `/` unless said otherwise.
#[derive(Debug, Clone)]
pub struct Attributes {
    /// `max_age` in seconds; also sets `expires` when that is not given.
    pub max_age: Option<i64>,
    /// An HTTP date, as `expires=` takes it.
    pub expires: Option<String>,
    /// `path`.
    pub path: Option<String>,
    /// `domain`.
    pub domain: Option<String>,
    /// `secure`.
    pub secure: bool,
    /// `httponly`.
    pub httponly: bool,
    /// `samesite` (`Lax`, `Strict`, `None`).
    pub samesite: Option<String>,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            max_age: None,
            expires: None,
            path: Some("/".to_owned()),
            domain: None,
            secure: false,
            httponly: false,
            samesite: None,
        }
    }
}

/// An HTTP date (`django.utils.http.http_date`) for a time in seconds since the epoch.
pub fn http_date(epoch: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(epoch).unwrap_or(0));
    httpdate_fmt(at)
}

fn httpdate_fmt(at: std::time::SystemTime) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.into();
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The value of a `Set-Cookie` header for `set_cookie(name, value, ...)` at `now`.
pub fn set_cookie(name: &str, value: &str, attributes: &Attributes, now: i64) -> String {
    let mut out = format!("{name}={}", quote(value));
    let expires = match (&attributes.expires, attributes.max_age) {
        (Some(expires), _) => Some(expires.clone()),
        (None, Some(max_age)) => Some(http_date(now.saturating_add(max_age))),
        (None, None) => None,
    };
    // Morsel writes its attributes sorted by their lower-case names.
    if let Some(domain) = &attributes.domain {
        out.push_str(&format!("; Domain={domain}"));
    }
    if let Some(expires) = expires {
        out.push_str(&format!("; expires={expires}"));
    }
    if attributes.httponly {
        out.push_str("; HttpOnly");
    }
    if let Some(max_age) = attributes.max_age {
        out.push_str(&format!("; Max-Age={max_age}"));
    }
    if let Some(path) = &attributes.path {
        out.push_str(&format!("; Path={path}"));
    }
    if let Some(samesite) = &attributes.samesite {
        out.push_str(&format!("; SameSite={samesite}"));
    }
    if attributes.secure {
        out.push_str("; Secure");
    }
    out
}

/// `delete_cookie(name, path, domain, samesite)`: an empty value that expired in 1970.
pub fn delete_cookie(
    name: &str,
    path: Option<&str>,
    domain: Option<&str>,
    samesite: Option<&str>,
) -> String {
    let attributes = Attributes {
        max_age: Some(0),
        expires: Some("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        path: path.map(str::to_owned),
        domain: domain.map(str::to_owned),
        secure: name.starts_with("__Secure-") || name.starts_with("__Host-"),
        httponly: false,
        samesite: samesite.map(str::to_owned),
    };
    set_cookie(name, "", &attributes, 0)
}

/// `http.cookies._quote`: a value of cookie-safe characters as it is, anything else in double
/// quotes with `"` and `\` escaped and other unsafe bytes as octal escapes.
fn quote(value: &str) -> String {
    const LEGAL: &str = "!#$%&'*+-.^_`|~:";
    let legal = |c: char| c.is_ascii_alphanumeric() || LEGAL.contains(c);
    if !value.is_empty() && value.chars().all(legal) {
        return value.to_owned();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (' '..='~').contains(&c) && c != ';' && c != ',' => out.push(c),
            // Python's translation table covers code points up to 255 only.
            c if u32::from(c) <= 0xff => out.push_str(&format!("\\{:03o}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expectations from Django 5.2's HttpResponse.set_cookie/delete_cookie, cookies.output().
    #[test]
    fn a_session_cookie_is_written_as_django_writes_it() {
        let attributes = Attributes {
            max_age: Some(1_209_600),
            httponly: true,
            samesite: Some("Lax".into()),
            ..Attributes::default()
        };
        assert_eq!(
            set_cookie("sessionid", "abc123", &attributes, 1_700_000_000),
            "sessionid=abc123; expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
        );
    }

    #[test]
    fn every_attribute_is_in_djangos_order() {
        let attributes = Attributes {
            max_age: Some(60),
            domain: Some(".example.com".into()),
            secure: true,
            httponly: true,
            samesite: Some("Strict".into()),
            ..Attributes::default()
        };
        assert_eq!(
            set_cookie("a", "b", &attributes, 0),
            "a=b; Domain=.example.com; expires=Thu, 01 Jan 1970 00:01:00 GMT; HttpOnly; Max-Age=60; Path=/; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn a_deleted_cookie_is_empty_and_expired() {
        assert_eq!(
            delete_cookie("sessionid", Some("/"), None, Some("Lax")),
            "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
        );
    }

    #[test]
    fn unsafe_values_are_quoted_as_simplecookie_quotes_them() {
        let plain = Attributes {
            path: None,
            ..Attributes::default()
        };
        assert_eq!(
            set_cookie("a", "x y;\"é", &plain, 0),
            "a=\"x y\\073\\\"\\351\""
        );
    }
}
