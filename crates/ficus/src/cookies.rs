//! Reading a cookie from a request's `Cookie` headers (HTTP/2 may send several). Used by canary
//! stickiness and the admin token; Django parses cookies for itself.

use http::HeaderMap;

/// Every non-empty value of the cookie `name`, in header order.
pub(crate) fn values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_cookie_headers() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; sessionid=".parse().unwrap());
        headers.append("cookie", "sessionid=xyz".parse().unwrap());
        assert_eq!(values(&headers, "sessionid").collect::<Vec<_>>(), ["xyz"]);
        assert_eq!(values(&headers, "session").next(), None);
    }
}
