//! The URL checks of `django.utils.http` that decide where a request may send a browser:
//! `urlsplit`'s scheme and location, and `url_has_allowed_host_and_scheme` (the `next`
//! parameter of a login).
//!
//! What it must not do: parse more of a URL than these checks read.

/// `urlsplit(url)[:2]`: the lower-cased scheme and the network location. None where Python
/// raises (an unclosed `[` in the location).
pub fn split(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = match url.split_once(':') {
        Some((scheme, rest))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (scheme.to_ascii_lowercase(), rest)
        }
        _ => (String::new(), url),
    };
    let netloc = match rest.strip_prefix("//") {
        Some(after) => after
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    };
    if netloc.contains('[') != netloc.contains(']') {
        return None;
    }
    Some((scheme, netloc))
}

/// `url_has_allowed_host_and_scheme(url, allowed_hosts, require_https)`: whether redirecting to
/// `url` stays on one of `allowed_hosts` (a relative URL always does).
pub fn has_allowed_host_and_scheme(url: &str, allowed_hosts: &[&str], require_https: bool) -> bool {
    let url = url.trim();
    if url.is_empty() {
        return false;
    }
    // Browsers read `\` as `/`, so both spellings must be safe.
    allowed(url, allowed_hosts, require_https)
        && allowed(&url.replace('\\', "/"), allowed_hosts, require_https)
}

fn allowed(url: &str, allowed_hosts: &[&str], require_https: bool) -> bool {
    if url.starts_with("///") {
        return false;
    }
    let Some((scheme, netloc)) = split(url) else {
        return false;
    };
    if netloc.is_empty() && !scheme.is_empty() {
        return false;
    }
    if url.chars().next().is_some_and(char::is_control) {
        return false;
    }
    let scheme = if scheme.is_empty() && !netloc.is_empty() {
        "http".to_owned()
    } else {
        scheme
    };
    let schemes: &[&str] = if require_https {
        &["https"]
    } else {
        &["http", "https"]
    };
    (netloc.is_empty() || allowed_hosts.contains(&netloc.as_str()))
        && (scheme.is_empty() || schemes.contains(&scheme.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cases from Django 5.2's tests of url_has_allowed_host_and_scheme.
    #[test]
    fn only_local_and_allowed_urls_are_safe() {
        let hosts = ["testserver"];
        for safe in [
            "/articles/",
            "articles/",
            "http://testserver/x",
            "//testserver/x",
            "https://testserver/",
        ] {
            assert!(has_allowed_host_and_scheme(safe, &hosts, false), "{safe}");
        }
        for unsafe_url in [
            "http://evil.com",
            "//evil.com",
            "///evil.com",
            "\\\\evil.com",
            "http:///evil.com",
            "javascript:alert(1)",
            "",
            " ",
            "\u{1}/x",
        ] {
            assert!(
                !has_allowed_host_and_scheme(unsafe_url, &hosts, false),
                "{unsafe_url}"
            );
        }
        assert!(!has_allowed_host_and_scheme(
            "http://testserver/",
            &hosts,
            true
        ));
    }
}
