//! Which peers may speak for the client: `X-Forwarded-Proto` (and gunicorn's other secure-scheme
//! headers) set `wsgi.url_scheme`, and `X-Forwarded-For` sets REMOTE_ADDR, but only when the
//! socket peer is listed in `--forwarded-allow-ips` (loopback by default, as in gunicorn), or
//! is on a unix socket (gunicorn trusts those whatever the list says).

use std::net::{IpAddr, SocketAddr};

use super::shared::Peer;

use ipnet::IpNet;

#[derive(Debug, thiserror::Error)]
#[error(
    "--forwarded-allow-ips: `{0}` is not an IP address or network (use e.g. `127.0.0.1,10.0.0.0/8`, or `*`)"
)]
pub(crate) struct BadAllowList(String);

/// gunicorn's default `secure_scheme_headers`: the header, and the value that means https.
const SECURE_SCHEME_HEADERS: [(&str, &str); 3] = [
    ("x-forwarded-protocol", "ssl"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-ssl", "on"),
];

/// A trusted peer's secure-scheme headers disagree (gunicorn's InvalidSchemeHeaders, 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("Contradictory scheme headers")]
pub(crate) struct ContradictoryScheme;

#[derive(Debug, Clone)]
pub(crate) struct ForwardedPolicy {
    trust_all: bool,
    networks: Vec<IpNet>,
}

impl ForwardedPolicy {
    pub(crate) fn parse(list: &str) -> Result<Self, BadAllowList> {
        let mut policy = Self {
            trust_all: false,
            networks: Vec::new(),
        };
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                policy.trust_all = true;
            } else if let Ok(net) = item.parse::<IpNet>() {
                policy.networks.push(net);
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                policy.networks.push(IpNet::from(ip));
            } else {
                return Err(BadAllowList(item.to_owned()));
            }
        }
        Ok(policy)
    }

    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trust_all || self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The scheme a trusted peer says the original request had, as gunicorn reads its
    /// `secure_scheme_headers`: each such header, every time it appears, says https when its
    /// value is exactly the secure one and http otherwise, and they must all say the same.
    /// None when the peer is not trusted or says nothing.
    pub(crate) fn scheme(
        &self,
        peer: Peer,
        headers: &http::HeaderMap,
    ) -> Result<Option<&'static str>, ContradictoryScheme> {
        if !self.trusts_peer(peer) {
            return Ok(None);
        }
        let mut said = None;
        for (name, value) in headers {
            let Some((_, secure)) = SECURE_SCHEME_HEADERS.iter().find(|(n, _)| name == n) else {
                continue;
            };
            let value = value.as_bytes();
            let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
            let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
            let value = match (start, end) {
                (Some(start), Some(end)) => &value[start..=end],
                _ => &[][..],
            };
            let scheme = if value == secure.as_bytes() {
                "https"
            } else {
                "http"
            };
            match said {
                Some(earlier) if earlier != scheme => return Err(ContradictoryScheme),
                _ => said = Some(scheme),
            }
        }
        Ok(said)
    }

    fn trusts_peer(&self, peer: Peer) -> bool {
        peer.ip().is_none_or(|ip| self.trusts(ip))
    }

    /// The client address: the right-most X-Forwarded-For entry that is not itself a trusted
    /// proxy, when the peer is trusted; otherwise the peer.
    pub(crate) fn client(&self, peer: Peer, headers: &http::HeaderMap) -> Client {
        let direct = match peer {
            Peer::Tcp(addr) => Client::Tcp(addr),
            Peer::Unix => Client::Unix,
        };
        if !self.trusts_peer(peer) {
            return direct;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse().ok())
            .collect();
        let Some(ip) = hops
            .iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(hops.first())
        else {
            return direct;
        };
        match peer {
            Peer::Tcp(addr) => Client::Tcp(SocketAddr::new(*ip, addr.port())),
            Peer::Unix => Client::Forwarded(*ip),
        }
    }
}

/// Who the application is told the client is (REMOTE_ADDR and REMOTE_PORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    Tcp(SocketAddr),
    /// Named by a proxy on a unix socket, which gives no port.
    Forwarded(IpAddr),
    /// A unix-socket peer and nothing forwarded: gunicorn's REMOTE_ADDR is then empty.
    Unix,
}

impl Client {
    pub(crate) fn ip(self) -> Option<IpAddr> {
        match self {
            Client::Tcp(addr) => Some(addr.ip()),
            Client::Forwarded(ip) => Some(ip),
            Client::Unix => None,
        }
    }

    pub(crate) fn port(self) -> Option<u16> {
        match self {
            Client::Tcp(addr) => Some(addr.port()),
            Client::Forwarded(_) | Client::Unix => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn forwarded_proto_counts_only_from_trusted_peers() {
        let policy = ForwardedPolicy::parse("127.0.0.1,::1").unwrap();
        let h = headers(&[("x-forwarded-proto", "https")]);
        let scheme = |peer: &str, h: &http::HeaderMap| {
            policy
                .scheme(Peer::Tcp(peer.parse().unwrap()), h)
                .map_err(|e| e.to_string())
        };
        assert_eq!(scheme("127.0.0.1:5000", &h), Ok(Some("https")));
        assert_eq!(scheme("[::1]:5000", &h), Ok(Some("https")));
        assert_eq!(scheme("10.1.2.3:5000", &h), Ok(None));
        // gunicorn compares the value exactly.
        let upper = headers(&[("x-forwarded-proto", "HTTPS")]);
        assert_eq!(scheme("127.0.0.1:5000", &upper), Ok(Some("http")));
    }

    #[test]
    fn secure_scheme_headers_that_disagree_are_refused_from_a_trusted_peer() {
        let policy = ForwardedPolicy::parse("127.0.0.1").unwrap();
        let scheme = |peer: &str, h: &[(&'static str, &'static str)]| {
            policy
                .scheme(Peer::Tcp(peer.parse().unwrap()), &headers(h))
                .map_err(|e| e.to_string())
        };
        let contradiction = [("x-forwarded-proto", "https"), ("x-forwarded-ssl", "off")];
        assert_eq!(
            scheme("127.0.0.1:1", &contradiction),
            Err("Contradictory scheme headers".to_owned())
        );
        // From a peer nobody trusts they are not read at all.
        assert_eq!(scheme("10.0.0.1:1", &contradiction), Ok(None));
        let agreeing = [("x-forwarded-proto", "https"), ("x-forwarded-ssl", "on")];
        assert_eq!(scheme("127.0.0.1:1", &agreeing), Ok(Some("https")));
        let both_plain = [("x-forwarded-proto", "http"), ("x-forwarded-ssl", "off")];
        assert_eq!(scheme("127.0.0.1:1", &both_plain), Ok(Some("http")));
    }

    #[test]
    fn forwarded_for_names_the_first_untrusted_hop_from_the_right() {
        let policy = ForwardedPolicy::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.7")]);
        let tcp = |addr: &str| Peer::Tcp(addr.parse().unwrap());
        let client = policy.client(tcp("127.0.0.1:5000"), &h);
        assert_eq!(client, Client::Tcp("203.0.113.9:5000".parse().unwrap()));
        let spoofed = policy.client(tcp("198.51.100.1:5000"), &h);
        assert_eq!(spoofed, Client::Tcp("198.51.100.1:5000".parse().unwrap()));
    }

    #[test]
    fn a_unix_socket_peer_is_trusted_whatever_the_allow_list_says() {
        let policy = ForwardedPolicy::parse("10.9.9.9").unwrap();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(policy.scheme(Peer::Unix, &h), Ok(Some("https")));
        let client = policy.client(Peer::Unix, &h);
        assert_eq!(client, Client::Forwarded("203.0.113.9".parse().unwrap()));
        assert_eq!(client.port(), None);
        assert_eq!(policy.client(Peer::Unix, &headers(&[])), Client::Unix);
    }

    #[test]
    fn garbage_in_the_allow_list_is_refused() {
        assert!(ForwardedPolicy::parse("127.0.0.1,nonsense").is_err());
        assert!(
            ForwardedPolicy::parse("*")
                .unwrap()
                .trusts("8.8.8.8".parse().unwrap())
        );
    }
}
