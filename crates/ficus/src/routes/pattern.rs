//! Django `path()` route syntax, compiled to a regex and matched the way Django 5.2 does it
//! (`django/urls/resolvers.py::_route_to_regex`, `django/urls/converters.py`), plus the
//! request-path decoding Django applies before it matches anything.
//!
//! This module only compiles patterns and matches paths. It must know nothing of routes.toml,
//! HTTP methods or handlers: a native route has to answer exactly the requests Django's own
//! `path()` would, and keeping this file free of routing policy keeps that equivalence checkable
//! against Django alone.
//!
//! Where Django merely warns (system checks `urls.W010` for unbalanced `<`/`>`) or accepts
//! something a routes.toml author almost certainly did not mean (whitespace, `<>`), we refuse:
//! a pattern refused at startup is better than a route that silently never matches.

use percent_encoding::percent_decode_str;
use regex::Regex;
use std::fmt::Write as _;

/// Django's built-in converters; custom `register_converter` ones have no Rust equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Converter {
    Int,
    Str,
    Slug,
    Uuid,
    Path,
}

impl Converter {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "int" => Self::Int,
            "str" => Self::Str,
            "slug" => Self::Slug,
            "uuid" => Self::Uuid,
            "path" => Self::Path,
            _ => return None,
        })
    }

    /// Copied verbatim from Django's converter classes. They mean the same in Python's `re` and
    /// the regex crate: `[0-9]` is ASCII-only in both, `.` excludes only `\n` in both, and
    /// `[^/]` includes `\n` in both.
    pub(crate) fn regex(self) -> &'static str {
        match self {
            Self::Int => "[0-9]+",
            Self::Str => "[^/]+",
            Self::Slug => "[-a-zA-Z0-9_]+",
            Self::Uuid => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            Self::Path => ".+",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PatternError {
    #[error("`{pattern}` must start with `/`")]
    MissingLeadingSlash { pattern: String },
    #[error("`{pattern}` contains whitespace")]
    Whitespace { pattern: String },
    #[error("`{pattern}` has an unclosed `<`")]
    UnclosedBracket { pattern: String },
    #[error("`{pattern}` has a `>` without a matching `<`")]
    UnopenedBracket { pattern: String },
    #[error("`{pattern}`: `{name}` is not a valid parameter name")]
    InvalidName { pattern: String, name: String },
    #[error(
        "`{pattern}` uses the unknown converter `{converter}` (Django knows int, str, slug, uuid and path)"
    )]
    UnknownConverter { pattern: String, converter: String },
    #[error("`{pattern}` names the parameter `{name}` twice")]
    DuplicateName { pattern: String, name: String },
    #[error("`{pattern}` cannot be compiled: {message}")]
    Regex { pattern: String, message: String },
}

#[derive(Debug, Clone)]
pub(crate) struct PathPattern {
    source: String,
    /// The text before the first converter, which every matching path starts with.
    literal_prefix: String,
    /// Uses unnamed groups, so its text is the pattern's shape: parameter names are absent and
    /// `same_shape` can compare the text directly. Group `i + 1` captures `params[i]`.
    regex: Regex,
    params: Vec<(String, Converter)>,
}

impl PathPattern {
    /// `source` is a routes.toml path: it starts with "/" and is otherwise Django path syntax,
    /// e.g. "/api/articles/<int:pk>/", "/api/media/<path:key>/signed-url/", "/healthz".
    pub(crate) fn parse(source: &str) -> Result<Self, PatternError> {
        let pattern = source.to_owned();
        if !source.starts_with('/') {
            return Err(PatternError::MissingLeadingSlash { pattern });
        }
        // Django rejects whitespace only inside `<…>`; elsewhere it is legal but in a config
        // file far likelier to be a typo than a real URL containing a space.
        if source.chars().any(char::is_whitespace) {
            return Err(PatternError::Whitespace { pattern });
        }
        let (body, params) = route_to_regex(source)?;
        // Django strips the leading "/" from the request path and matches the route without
        // its "/"; both sides here keep their "/", which is equivalent (see the tests). `\z`,
        // like Python's `\Z`, refuses a trailing "\n" where `$` would accept it.
        match Regex::new(&format!("^{body}\\z")) {
            Ok(regex) => Ok(Self {
                literal_prefix: source.split('<').next().unwrap_or("").to_owned(),
                source: pattern,
                regex,
                params,
            }),
            Err(e) => Err(PatternError::Regex {
                pattern,
                message: e.to_string(),
            }),
        }
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The Django route text (without the leading "/"), as `str(URLPattern.pattern)` shows it
    /// when the whole route is written in one path() call: "api/articles/<int:pk>/".
    /// (Split across `include()`, Django matches each prefix greedily without backtracking into
    /// the next, so a `<path:…>` before an include can match differently.)
    #[cfg(test)]
    pub(crate) fn django_route(&self) -> &str {
        self.source.strip_prefix('/').unwrap_or(&self.source)
    }

    /// Matches a decoded request path (see `decode_path`), which starts with "/".
    /// Returns the captured parameters in pattern order, as the strings Django passes to
    /// `to_python`: an int parameter is the digit string ("007"; Django's `int()` makes it 7
    /// and never fails on `[0-9]+`, so handlers parse it themselves).
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        // Most requests fail on the literal text before the first converter; that check is
        // cheaper than the regex, and a pattern without converters needs no regex at all.
        if !path.starts_with(&self.literal_prefix) {
            return None;
        }
        if self.params.is_empty() {
            return (path == self.source).then(Vec::new);
        }
        let captures = self.regex.captures(path)?;
        self.params
            .iter()
            .enumerate()
            .map(|(i, (name, _))| Some((name.clone(), captures.get(i + 1)?.as_str().to_owned())))
            .collect()
    }

    /// Two patterns are "the same path" for duplicate detection when their regexes are identical
    /// (same literal text, same converters in the same places; parameter names do not matter).
    pub(crate) fn same_shape(&self, other: &PathPattern) -> bool {
        self.regex.as_str() == other.regex.as_str()
    }

    #[cfg(test)]
    pub(crate) fn params(&self) -> &[(String, Converter)] {
        &self.params
    }
}

/// The regex body (unanchored) for `route` and its parameters; `route` is also the text quoted
/// in errors.
fn route_to_regex(route: &str) -> Result<(String, Vec<(String, Converter)>), PatternError> {
    let mut body = String::new();
    let mut params: Vec<(String, Converter)> = Vec::new();
    let mut rest = route;
    while let Some(open) = rest.find(['<', '>']) {
        let pattern = route.to_owned();
        if rest[open..].starts_with('>') {
            return Err(PatternError::UnopenedBracket { pattern });
        }
        let Some(close) = rest[open..].find('>').map(|len| open + len) else {
            return Err(PatternError::UnclosedBracket { pattern });
        };
        let inner = &rest[open + 1..close];
        // Django's `<(?:(?P<converter>[^>:]+):)?(?P<parameter>[^>]+)>`: the converter ends at the
        // first ":" and must be non-empty, otherwise the whole text is the parameter name
        // (so `<:pk>` is the invalid name `:pk`, as in Django).
        let (converter, name) = match inner.split_once(':') {
            Some((c, n)) if !c.is_empty() => (c, n.to_owned()),
            _ => ("str", inner.to_owned()),
        };
        // Django checks the name before the converter; keep its order so errors agree.
        if !is_identifier(&name) {
            return Err(PatternError::InvalidName { pattern, name });
        }
        let Some(converter) = Converter::from_name(converter) else {
            let converter = converter.to_owned();
            return Err(PatternError::UnknownConverter { pattern, converter });
        };
        if params.iter().any(|(n, _)| *n == name) {
            return Err(PatternError::DuplicateName { pattern, name });
        }
        body.push_str(&regex::escape(&rest[..open]));
        let _ = write!(body, "({})", converter.regex());
        params.push((name, converter));
        rest = &rest[close + 1..];
    }
    body.push_str(&regex::escape(rest));
    Ok((body, params))
}

/// Django requires `str.isidentifier()`. We accept only its ASCII subset, `[A-Za-z_][A-Za-z0-9_]*`:
/// std has no XID_Start/XID_Continue tables, and approximating them with `is_alphabetic` would
/// accept names Python rejects (e.g. a leading combining mark). Stricter is the safe direction.
fn is_identifier(name: &str) -> bool {
    let word = |c: char| c == '_' || c.is_ascii_alphanumeric();
    name.starts_with(|c: char| !c.is_ascii_digit()) && name.chars().all(word)
}

/// The path a Django view sees, from the raw request path (percent-encoded, as on the wire,
/// without the query string): percent-decoded to bytes, then decoded as UTF-8 where valid; byte
/// sequences that are not valid UTF-8 are re-percent-encoded (upper-case hex), exactly as
/// Django's `repercent_broken_unicode` + WSGIRequest do. So "/caf%C3%A9/" -> "/café/",
/// "/a%2Fb/" -> "/a/b/" (Django decodes %2F too, since PATH_INFO is decoded), "/x%FF/" -> "/x%FF/".
pub(crate) fn decode_path(raw: &str) -> String {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    let mut out = String::with_capacity(bytes.len());
    // `utf8_chunks` splits invalid input into "maximal subparts", the same spans Python's
    // UnicodeDecodeError reports, and only bytes >= 0x80 can be invalid, all of which Django's
    // `quote` encodes, so every invalid byte becomes %XX.
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    // WSGIRequest: `get_path_info(environ) or "/"`.
    if out.is_empty() { "/".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(source: &str) -> PathPattern {
        PathPattern::parse(source).expect("test patterns are valid")
    }

    fn one(name: &str, value: &str) -> Option<Vec<(String, String)>> {
        Some(vec![(name.to_string(), value.to_string())])
    }

    /// What `/x/<converter:v>/` captures from `/x/{segment}/`, if it matches.
    fn capture(converter: &str, segment: &str) -> Option<String> {
        let p = pattern(&format!("/x/<{converter}:v>/"));
        Some(p.matches(&format!("/x/{segment}/"))?.pop()?.1)
    }

    fn refuses(converter: &str, segments: &[&str]) {
        for s in segments {
            assert_eq!(capture(converter, s), None, "{converter} took {s:?}");
        }
    }

    #[test]
    fn int_takes_ascii_digits_and_keeps_them_as_text() {
        assert_eq!(capture("int", "007").as_deref(), Some("007"));
        refuses("int", &["-1", "1.5", "٣", "1a", ""]);
    }

    #[test]
    fn slug_takes_ascii_letters_digits_dash_and_underscore_only() {
        assert_eq!(capture("slug", "a-b_C9").as_deref(), Some("a-b_C9"));
        refuses("slug", &["é", "a.b", "a/b"]);
    }

    #[test]
    fn uuid_takes_lower_case_hyphenated_hex_only() {
        let id = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(capture("uuid", id).as_deref(), Some(id));
        refuses("uuid", &[&id.to_uppercase(), &id.replace('-', "")]);
    }

    #[test]
    fn str_is_the_default_and_takes_anything_but_slash_even_newline() {
        assert_eq!(pattern("/<name>").params()[0].1, Converter::Str);
        assert_eq!(capture("str", "a\nb").as_deref(), Some("a\nb"));
        refuses("str", &["a/b", ""]);
    }

    #[test]
    fn path_takes_slashes_but_not_empty_or_newline() {
        assert_eq!(capture("path", "a/b").as_deref(), Some("a/b"));
        refuses("path", &["", "a\nb"]);
    }

    #[test]
    fn path_converter_is_greedy_before_a_literal_suffix() {
        let p = pattern("/api/media/<path:key>/signed-url/");
        assert_eq!(p.matches("/api/media/a/b/signed-url/"), one("key", "a/b"));
        let twice = p.matches("/api/media/a/signed-url/signed-url/");
        assert_eq!(twice, one("key", "a/signed-url"));
        assert_eq!(p.matches("/api/media//signed-url/"), None);
    }

    #[test]
    fn whole_path_must_match_and_trailing_slash_and_newline_matter() {
        let p = pattern("/healthz");
        assert_eq!(p.matches("/healthz"), Some(vec![]));
        for bad in ["/healthz/", "/healthz\n", "/x/healthz", "healthz"] {
            assert_eq!(p.matches(bad), None, "{bad:?}");
        }
        assert_eq!(pattern("/healthz/").matches("/healthz"), None);
    }

    #[test]
    fn literal_text_is_escaped() {
        let p = pattern("/a.b/<int:pk>");
        assert_eq!(p.matches("/a.b/1"), one("pk", "1"));
        assert_eq!(p.matches("/axb/1"), None);
    }

    #[test]
    fn matching_with_leading_slash_equals_djangos_stripped_matching() {
        let cases = [
            ("/m/<path:key>/signed-url/", "/m/a/b/signed-url/"),
            ("/api/articles/<int:pk>/", "/api/articles/12/"),
            ("/api/articles/<int:pk>/", "/api/articles/12"),
            ("/<a>/<b>", "/x/y"),
            ("/<a>/<b>", "//y"),
        ];
        for (source, path) in cases {
            let p = pattern(source);
            // What Django does: the route without "/" against the path without "/".
            let (body, _) = route_to_regex(p.django_route()).expect("valid route");
            let django = Regex::new(&format!("^{body}\\z")).expect("valid regex");
            let stripped = path.strip_prefix('/').expect("paths start with /");
            let expected = django.captures(stripped).map(|c| {
                let values = c.iter().skip(1).flatten().map(|m| m.as_str());
                let names = p.params().iter().map(|(n, _)| n.clone());
                names.zip(values.map(String::from)).collect()
            });
            assert_eq!(p.matches(path), expected, "{source} vs {path}");
        }
    }

    #[test]
    fn decode_path_matches_django_path_info() {
        assert_eq!(decode_path("/caf%C3%A9/"), "/café/");
        assert_eq!(decode_path("/a%2Fb/"), "/a/b/");
        assert_eq!(decode_path("/x%FF/"), "/x%FF/");
        assert_eq!(decode_path("/%E4%B8%AD"), "/中");
        assert_eq!(decode_path("/a+b"), "/a+b");
        let mixed = decode_path("/%E4%B8%AD%ff%E4%B8%AD/%E4%B8x%C3%A9");
        assert_eq!(mixed, "/中%FF中/%E4%B8xé");
        assert_eq!(decode_path("/%ED%A0%80/%C0%AF"), "/%ED%A0%80/%C0%AF");
        assert_eq!(decode_path(""), "/");
    }

    #[test]
    fn every_pattern_error() {
        // Each message starts by quoting the pattern; the table holds what follows.
        let cases = [
            ("a/b/", " must start with `/`"),
            ("/a b/", " contains whitespace"),
            ("/<int pk>", " contains whitespace"),
            ("/a/<int:pk", " has an unclosed `<`"),
            ("/int:pk>", " has a `>` without a matching `<`"),
            ("/>x<y>", " has a `>` without a matching `<`"),
            ("/a/<int:1x>/", ": `1x` is not a valid parameter name"),
            ("/<:pk>", ": `:pk` is not a valid parameter name"),
            ("/<int:a:b>", ": `a:b` is not a valid parameter name"),
            ("/<>", ": `` is not a valid parameter name"),
            ("/<é>", ": `é` is not a valid parameter name"),
            ("/<int:pk>/<str:pk>", " names the parameter `pk` twice"),
            (
                "/a/<foo:x>/",
                " uses the unknown converter `foo` (Django knows int, str, slug, uuid and path)",
            ),
        ];
        for (source, rest) in cases {
            let error = PathPattern::parse(source).err().map(|e| e.to_string());
            assert_eq!(error, Some(format!("`{source}`{rest}")));
        }
        // Past regex's compiled-size limit (thousands of parameters): an error, not a panic.
        let huge: String = (0..4000).map(|i| format!("/<uuid:p{i}>")).collect();
        let error = PathPattern::parse(&huge).err();
        assert!(matches!(error, Some(PatternError::Regex { .. })));
    }

    #[test]
    fn same_shape_ignores_names_but_not_converters_or_text() {
        assert!(pattern("/a/<int:pk>/").same_shape(&pattern("/a/<int:id>/")));
        assert!(!pattern("/a/<int:pk>/").same_shape(&pattern("/a/<str:pk>/")));
        assert!(!pattern("/a/<int:pk>/").same_shape(&pattern("/a/<int:pk>")));
        assert!(pattern("/a/<pk>/").same_shape(&pattern("/a/<str:id>/")));
    }

    #[test]
    fn django_route_strips_only_the_leading_slash() {
        let p = pattern("/api/articles/<int:pk>/");
        assert_eq!(p.django_route(), "api/articles/<int:pk>/");
        assert_eq!(p.source(), "/api/articles/<int:pk>/");
        assert_eq!(pattern("//x/").django_route(), "/x/");
        assert_eq!(pattern("/").django_route(), "");
    }

    mod properties {
        //! Property tests, bounded (proptest's 256 cases each) so they run in `make test`;
        //! `PROPTEST_CASES=100000 cargo test --lib routes::pattern` runs them longer.
        use super::*;
        use proptest::prelude::*;

        const PATTERNS: [&str; 6] = [
            "/healthz",
            "/api/articles/<int:pk>/",
            "/api/media/<path:key>/signed-url/",
            "/a/<slug:s>/b/<uuid:u>/",
            "/<str:x>",
            "/files/<path:rest>",
        ];

        /// Paths built from the characters that matter to the converters and the literals.
        fn paths() -> impl Strategy<Value = String> {
            proptest::string::string_regex(
                "/(api/|articles/|media/|signed-url/|healthz|a/|b/|files/|[0-9]{1,3}|[a-z_-]{1,4}|ü|%2F|/|-|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}){0,8}",
            )
            .expect("a valid strategy")
        }

        proptest! {
            #[test]
            fn the_fast_paths_agree_with_the_regex(path in paths(), which in 0..PATTERNS.len()) {
                let p = pattern(PATTERNS[which]);
                let by_regex = p.regex.captures(&path).map(|c| {
                    p.params
                        .iter()
                        .enumerate()
                        .map(|(i, (name, _))| (name.clone(), c[i + 1].to_owned()))
                        .collect::<Vec<_>>()
                });
                prop_assert_eq!(p.matches(&path), by_regex);
            }

            #[test]
            fn int_matches_exactly_the_ascii_digit_segments(segment in "[0-9a-z٣/ -]{0,6}") {
                let p = pattern("/x/<int:v>/");
                let fits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
                prop_assert_eq!(p.matches(&format!("/x/{segment}/")).is_some(), fits);
            }

            #[test]
            fn decoding_any_path_never_fails(raw in "[ -~]{0,40}") {
                let decoded = decode_path(&raw);
                // Whatever comes in, something Django would also route comes out.
                prop_assert!(decoded.len() <= raw.len() * 3 + 3);
            }
        }
    }
}
