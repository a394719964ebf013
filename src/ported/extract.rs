//! Extractors with Django's semantics, for handler signatures: `Path<T>` and `Params` for the
//! parameters the route's converters captured, `Query` for `request.GET`.
//!
//! They read what the route table and hyper already parsed; they do no routing of their own.

use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;

use super::python::ServerError;

/// The parameters the route's converters captured, in pattern order (put there by the dispatcher).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Params>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The route's single captured parameter, parsed: `Path(pk): Path<String>` for `<int:pk>`.
///
/// Django's converters pass strings that always convert (`int("123")`), so a parse failure here
/// means the handler asked for a narrower type than the converter guarantees (an `i64` for a
/// 30-digit `<int:...>`): that is a handler bug, logged and answered 500.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: FromStr> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = Params::from_request_parts(parts, state).await?;
        let [(name, value)] = params.0.as_slice() else {
            tracing::error!(
                "Path<T> needs a route with exactly one parameter; this one has {}",
                params.0.len()
            );
            return Err(ServerError::response());
        };
        value.parse().map(Path).map_err(|_| {
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
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(query: &str) -> Self {
        Query(
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

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Query::parse(parts.uri.query().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_django_semantics() {
        let q = Query::parse("q=caf%C3%A9+au+lait&page=1&page=3&flag&bad=%FF");
        assert_eq!(q.get("q"), Some("café au lait"));
        assert_eq!(q.get("page"), Some("3"), "the last value wins");
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("bad"), Some("\u{fffd}"));
        assert_eq!(q.get("missing"), None);
    }
}
