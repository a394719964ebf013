//! A browser for the tests: a cookie jar over `support::request`, so a test can log in on one
//! side and go on with the same cookies on the other, as a user's browser does.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Response, request};

pub struct Browser {
    addr: SocketAddr,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Sets a cookie by hand (a tampered one, say).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    pub fn get(&mut self, target: &str) -> Response {
        self.send("GET", target, &[], b"")
    }

    /// A form POST with the CSRF token the jar's cookie holds, as a page's form would send it.
    pub fn post_form(&mut self, target: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.cookie("csrftoken").unwrap_or_default().to_owned();
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("csrfmiddlewaretoken", &token);
        for (name, value) in fields {
            body.append_pair(name, value);
        }
        let body = body.finish();
        self.send(
            "POST",
            target,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("Cookie", &cookie));
        }
        let response = request(self.addr, method, target, &all, body);
        for set in response.headers_named("set-cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if set.contains("Max-Age=0") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        response
    }
}
