//! `reverse()` and `resolve_url()` over the project's live URLconf, so templates (`url(...)`)
//! and redirects name routes as Django code does, and `iri_to_uri` for `Location`.
//!
//! Reversing covers `path()` routes (converters `int`, `str`, `slug`, `path`, `uuid`), with
//! the arguments quoted as Django quotes them. A `re_path()` route reverses only when it takes no
//! arguments and is a plain literal; anything else is an error naming the route.

use std::collections::HashMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::routes::summary::UrlPattern;

/// Python's `quote(text, safe="/")`: what `QueryDict.urlencode(safe="/")` leaves alone.
pub(crate) const QUOTE_SAFE_SLASH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/');

/// What `reverse()` leaves alone in an argument: unreserved, sub-delimiters and `/~:@`.
const REVERSE_SAFE: &AsciiSet = &QUOTE_SAFE_SLASH
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// `iri_to_uri`'s safe characters: `/#%[]=:;$&()+,!?*@'~`.
const IRI_SAFE: &AsciiSet = &REVERSE_SAFE
    .remove(b'#')
    .remove(b'%')
    .remove(b'[')
    .remove(b']')
    .remove(b'?');

/// `django.utils.encoding.iri_to_uri`.
pub(crate) fn iri_to_uri(iri: &str) -> String {
    utf8_percent_encode(iri, IRI_SAFE).to_string()
}

/// Named routes, for reversing.
#[derive(Debug, Default)]
pub(crate) struct Urls {
    by_name: HashMap<String, Vec<String>>,
}

/// Why a name did not reverse; Django's `NoReverseMatch`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Reverse for '{name}' with arguments {args:?} not found")]
pub(crate) struct NoReverseMatch {
    pub(crate) name: String,
    pub(crate) args: Vec<String>,
}

impl Urls {
    pub(crate) fn new(patterns: &[UrlPattern]) -> Self {
        let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
        for pattern in patterns {
            if let Some(name) = &pattern.name {
                let route = if pattern.is_route {
                    Some(pattern.route.clone())
                } else {
                    literal_regex(&pattern.route)
                };
                if let Some(route) = route {
                    by_name.entry(name.clone()).or_default().push(route);
                }
            }
        }
        Self { by_name }
    }

    /// `reverse(name, args=args)`: the first pattern of that name whose converters take these
    /// arguments.
    pub(crate) fn reverse(&self, name: &str, args: &[String]) -> Result<String, NoReverseMatch> {
        let fail = || NoReverseMatch {
            name: name.to_owned(),
            args: args.to_vec(),
        };
        let routes = self.by_name.get(name).ok_or_else(fail)?;
        routes
            .iter()
            .find_map(|route| fill(route, args))
            .ok_or_else(fail)
    }

    /// `resolve_url(to)`: a URL name reversed, anything else as it is.
    pub(crate) fn resolve_url(&self, to: &str) -> String {
        self.reverse(to, &[]).unwrap_or_else(|_| to.to_owned())
    }
}

/// The route with `args` in its converters, or None when they do not fit.
fn fill(route: &str, args: &[String]) -> Option<String> {
    let mut out = String::from("/");
    let mut rest = route;
    let mut args = args.iter();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('>')? + start;
        let spec = &rest[start + 1..end];
        let converter = spec.split_once(':').map_or("str", |(c, _)| c);
        let value = args.next()?;
        if !fits(converter, value) {
            return None;
        }
        out.push_str(&utf8_percent_encode(value, REVERSE_SAFE).to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    args.next().is_none().then_some(out)
}

fn fits(converter: &str, value: &str) -> bool {
    !value.is_empty()
        && match converter {
            "int" => value.bytes().all(|b| b.is_ascii_digit()),
            "slug" => value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "path" => true,
            "uuid" => {
                value.len() == 36 && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            }
            _ => !value.contains('/'),
        }
}

/// A `re_path()` regex that is only a literal (`^about/$`), as the path it matches.
fn literal_regex(route: &str) -> Option<String> {
    let path = route
        .trim_start_matches('^')
        .trim_end_matches('$')
        .replace("\\/", "/")
        .replace("\\.", ".");
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
        .then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Urls {
        let pattern = |route: &str, name: &str| UrlPattern {
            route: route.to_owned(),
            name: Some(name.to_owned()),
            view: String::new(),
            is_route: true,
            app: None,
        };
        Urls::new(&[
            pattern("", "home"),
            pattern("articles/<slug:slug>/", "article-detail"),
            pattern("api/articles/<int:pk>/", "api-article-detail"),
            pattern("admin/", "admin:index"),
        ])
    }

    #[test]
    fn names_reverse_as_in_django() {
        let urls = urls();
        assert_eq!(urls.reverse("home", &[]).as_deref(), Ok("/"));
        assert_eq!(urls.reverse("admin:index", &[]).as_deref(), Ok("/admin/"));
        assert_eq!(
            urls.reverse("article-detail", &["anas-cafe".into()])
                .as_deref(),
            Ok("/articles/anas-cafe/")
        );
        assert!(urls.reverse("api-article-detail", &["x".into()]).is_err());
        assert!(urls.reverse("nope", &[]).is_err());
        assert_eq!(urls.resolve_url("/accounts/login/"), "/accounts/login/");
    }

    #[test]
    fn locations_are_quoted_as_iri_to_uri_quotes_them() {
        assert_eq!(
            iri_to_uri("/a b/é?next=/x&y=1#top"),
            "/a%20b/%C3%A9?next=/x&y=1#top"
        );
    }
}
