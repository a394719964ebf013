//! Extractors with Django's semantics, for handler signatures: `Kwarg<T>` and `Kwargs` for the
//! keyword arguments the route's converters captured (what Django passes the view), `QueryDict`
//! for `request.GET`. Their names are Django's, not axum's: axum's `Path` and `Query` parse
//! differently.
//!
//! They read what the route table and hyper already parsed; they do no routing of their own.

use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;

use super::python::ServerError;

/// The keyword arguments the route's converters captured, in pattern order (put there by the
/// dispatcher), as the strings Django's converters give.
#[derive(Debug, Clone, Default)]
pub struct Kwargs(pub Vec<(String, String)>);

impl Kwargs {
    /// The argument called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Kwargs {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Kwargs>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The route's single keyword argument, parsed: `Kwarg(pk): Kwarg<String>` for `<int:pk>`.
///
/// Django's converters pass strings that always convert (`int("123")`), so a parse failure here
/// means the handler asked for a narrower type than the converter guarantees (an `i64` for a
/// 30-digit `<int:...>`): that is a handler bug, logged and answered 500.
#[derive(Debug)]
pub struct Kwarg<T>(pub T);

impl<S: Send + Sync, T: FromStr> FromRequestParts<S> for Kwarg<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = Kwargs::from_request_parts(parts, state).await?;
        let [(name, value)] = params.0.as_slice() else {
            tracing::error!(
                "Kwarg<T> needs a route with exactly one parameter; this one has {}",
                params.0.len()
            );
            return Err(ServerError::response());
        };
        value.parse().map(Kwarg).map_err(|_| {
            tracing::error!(
                "path parameter `{name}` = {value:?} does not parse as {}",
                std::any::type_name::<T>()
            );
            ServerError::response()
        })
    }
}

/// `request.GET`: the query string parsed as Django's QueryDict parses it (`+` is a space,
/// percent-escapes decoded as UTF-8 with replacement, blank values kept, the last value wins).
#[derive(Debug, Clone, Default)]
pub struct QueryDict(pub Vec<(String, String)>);

impl QueryDict {
    /// Parses a query string (without the `?`).
    pub fn parse(query: &str) -> Self {
        QueryDict(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// `request.GET.get(name)`: the last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryDict {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryDict::parse(parts.uri.query().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_django_semantics() {
        let q = QueryDict::parse("q=caf%C3%A9+au+lait&page=1&page=3&flag&bad=%FF");
        assert_eq!(q.get("q"), Some("café au lait"));
        assert_eq!(q.get("page"), Some("3"), "the last value wins");
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("bad"), Some("\u{fffd}"));
        assert_eq!(q.get("missing"), None);
    }
}
