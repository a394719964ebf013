//! Canary mode: which clients a canary route's Rust handler serves. A client is placed by a
//! stable key (its address, a cookie or a header, as the route's `sticky` says) hashed into one
//! of 10,000 buckets; the first `percent` of them go to Rust.
//!
//! The hash is fixed (FNV-1a, then a mixer), never seeded per process: a client lands on the same
//! side after a restart and in every worker process, and raising `percent` only adds clients,
//! it never moves one back to Django. It decides; serving and falling back are the server's.

use std::net::IpAddr;

use http::HeaderMap;

use crate::routes::{Route, Sticky};

const BUCKETS: u64 = 10_000;

/// Whether the Rust handler serves this client on this canary route.
pub(crate) fn serves(route: &Route, headers: &HeaderMap, client: Option<IpAddr>) -> bool {
    let key = key(&route.sticky, headers, client);
    let bucket = mix(fnv1a(&key)) % BUCKETS;
    (bucket as f64) < route.percent * (BUCKETS as f64 / 100.0)
}

/// The bytes a client is known by: the cookie or header when the request has it, else its address.
fn key(sticky: &Sticky, headers: &HeaderMap, client: Option<IpAddr>) -> Vec<u8> {
    let found = match sticky {
        Sticky::Client => None,
        Sticky::Header(name) => headers
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .filter(|v| !v.is_empty()),
        Sticky::Cookie(name) => crate::cookies::values(headers, name)
            .next()
            .map(|v| v.as_bytes().to_vec()),
    };
    // A unix-socket client with no forwarded address has no address of its own.
    found.unwrap_or_else(|| {
        client
            .map(|ip| ip.to_string())
            .unwrap_or_default()
            .into_bytes()
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64's finaliser: FNV alone leaves similar keys (sequential ids) in nearby buckets.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteTable;
    use std::collections::BTreeSet;

    fn route(percent: f64, sticky: &str) -> RouteTable {
        let handlers: BTreeSet<&str> = ["legacy::healthz"].into();
        RouteTable::parse(
            &format!(
                "[[route]]\npath = \"/healthz\"\nhandler = \"legacy::healthz\"\nmode = \"canary\"\npercent = {percent}\nsticky = \"{sticky}\"\n"
            ),
            &handlers,
        )
        .unwrap()
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            format!("a=1; sessionid={value}; b=2").parse().unwrap(),
        );
        headers
    }

    const NOWHERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn the_share_of_clients_follows_percent() {
        let table = route(10.0, "cookie:sessionid");
        let served = (0..10_000)
            .filter(|i| serves(&table.routes[0], &with_cookie(&format!("s{i}")), NOWHERE))
            .count();
        assert!((900..=1100).contains(&served), "{served} of 10000");
    }

    #[test]
    fn raising_percent_keeps_every_client_already_on_rust() {
        let (ten, thirty) = (
            route(10.0, "cookie:sessionid"),
            route(30.0, "cookie:sessionid"),
        );
        for i in 0..2_000 {
            let headers = with_cookie(&format!("user-{i}"));
            if serves(&ten.routes[0], &headers, NOWHERE) {
                assert!(serves(&thirty.routes[0], &headers, NOWHERE));
            }
        }
    }

    #[test]
    fn clients_without_the_cookie_or_header_are_placed_by_address() {
        let table = route(50.0, "header:x-user-id");
        let route = &table.routes[0];
        let by_address: Vec<bool> = (1..=50u8)
            .map(|i| serves(route, &HeaderMap::new(), Some(IpAddr::from([10, 0, 0, i]))))
            .collect();
        assert!(by_address.contains(&true) && by_address.contains(&false));
        let mut headers = HeaderMap::new();
        headers.insert("x-user-id", "42".parse().unwrap());
        let first = serves(route, &headers, Some(IpAddr::from([10, 0, 0, 1])));
        // The header wins over the address: the same user from another address stays put.
        assert!(
            (2..=50u8).all(|i| serves(route, &headers, Some(IpAddr::from([10, 0, 0, i]))) == first)
        );
    }
}
