//! Writes HTTP/1 response header names in the case the application gave them (`ETag`,
//! `X-Frame-Options`, a quirky `Content-length`), as gunicorn does, where hyper would lower-case.
//!
//! hyper keeps original case only through a private extension that it fills when it parses a
//! message. So for each distinct list of header names we let hyper parse a tiny in-memory request
//! carrying exactly those names, keep the extensions it produced, and attach a clone to every
//! response with the same names. The cache is bounded; HTTP/2 ignores all of this (its header
//! names are lower case by definition).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;

use bytes::Bytes;
use http::{Extensions, Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::body::Body;

const MAX_ENTRIES: usize = 1024;

#[derive(Default)]
pub(crate) struct HeaderCase {
    cache: Mutex<HashMap<String, Extensions>>,
}

impl HeaderCase {
    /// Extensions that make hyper write `names` (in response order) with their original case.
    pub(crate) async fn extensions_for(&self, names: &[&str]) -> Option<Extensions> {
        let key = names.join("\n");
        if let Some(found) = self.cache.lock().ok()?.get(&key) {
            return Some(found.clone());
        }
        let extensions = parse_names(names).await?;
        if let Ok(mut cache) = self.cache.lock()
            && cache.len() < MAX_ENTRIES
        {
            cache.insert(key, extensions.clone());
        }
        Some(extensions)
    }
}

async fn parse_names(names: &[&str]) -> Option<Extensions> {
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    let has = |wanted: &str| names.iter().any(|n| n.eq_ignore_ascii_case(wanted));
    // The headers hyper may add itself, spelled as gunicorn spells them. Content-Length comes
    // before Transfer-Encoding, or hyper's parser would drop it from the case map.
    let added = ["Content-Length", "Date", "Connection", "Transfer-Encoding"]
        .into_iter()
        .filter(|name| !has(name));
    for name in names.iter().copied().chain(added) {
        // Values hyper's request parser accepts for the framing headers.
        let value: &[u8] = if name.eq_ignore_ascii_case("content-length") {
            b"0"
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            b"chunked"
        } else {
            b"x"
        };
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");

    let (mut client, server) = tokio::io::duplex(head.len() + 1024);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if let Some(tx) = tx.lock().ok().and_then(|mut slot| slot.take()) {
            let _ = tx.send(std::mem::take(req.extensions_mut()));
        }
        async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(server), service);
    let driver = tokio::spawn(connection);
    client.write_all(&head).await.ok()?;
    let extensions = rx.await.ok();
    drop(client);
    driver.abort();
    extensions
}

/// Remembers the application's header-name case for hyper's HTTP/1 writer.
pub(super) async fn preserve_case(cache: &HeaderCase, response: &mut Response<Body>) {
    // The original spelling travels in a private list kept next to the headers.
    let names = match response.extensions_mut().remove::<OriginalNames>() {
        Some(original) => original.0,
        // One name per value: a second Set-Cookie needs its own entry to keep its case.
        None => response
            .headers()
            .iter()
            .map(|(k, _)| title_case(k.as_str()))
            .collect(),
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Some(mut extensions) = cache.extensions_for(&refs).await {
        if let Some(reason) = response
            .extensions_mut()
            .remove::<hyper::ext::ReasonPhrase>()
        {
            extensions.insert(reason);
        }
        *response.extensions_mut() = extensions;
    }
}

/// The header names in the case the application wrote them, in response order.
#[derive(Clone)]
pub(crate) struct OriginalNames(pub Vec<String>);

pub(super) fn title_case(name: &str) -> String {
    match name {
        "etag" => return "ETag".to_owned(),
        "www-authenticate" => return "WWW-Authenticate".to_owned(),
        _ => {}
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn repeated_lists_are_served_from_the_cache() {
        let case = HeaderCase::default();
        assert!(
            case.extensions_for(&["ETag", "Set-Cookie", "Set-Cookie"])
                .await
                .is_some()
        );
        assert!(
            case.extensions_for(&["ETag", "Set-Cookie", "Set-Cookie"])
                .await
                .is_some()
        );
        assert_eq!(case.cache.lock().unwrap().len(), 1);
    }
}
