//! The client's IP address: the connection's peer, or, when the peer is a proxy the user
//! trusts, the address the proxies report in `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//!
//! # Which address is the client
//! Every proxy appends the address it received the request from, so the list reads left
//! to right from the client towards us, and only the entries added by proxies we trust
//! are trustworthy: anything to their left may have been written by the client itself.
//! Walking from the right, the first address that is not a trusted proxy is the client.
//!
//! - The headers are read only when the peer itself is inside a trusted CIDR; otherwise
//!   the peer is the client, whatever the headers say.
//! - `Forwarded` wins when present; `X-Forwarded-For` is read otherwise. Several lines of
//!   one header are read as one list, in order.
//! - If an entry that the walk reaches is not an IP address (`unknown`, an obfuscated
//!   `_name`, garbage), or the header is empty, the peer is the client: the proxies'
//!   report cannot be trusted past that point.
//! - If every listed address is a trusted proxy, the leftmost is the client (a request
//!   that only ever crossed our own proxies).
//! - IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, from dual-stack sockets) are
//!   treated as the IPv4 address, so one client has one key.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, FORWARDED};
use http::{Extensions, HeaderName};
use ipnet::IpNet;

/// The connection's remote address, for servers other than axum and tonic: insert it as
/// a request extension (hyper's `service_fn` closure knows it from the accepted socket).
/// Under axum, `into_make_service_with_connect_info::<SocketAddr>()` provides it instead;
/// under tonic's server (feature `tonic`), its `TcpConnectInfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The peer's address from the request's extensions: [`PeerAddr`], axum's
/// `ConnectInfo<SocketAddr>` (feature `axum`), or tonic's `TcpConnectInfo` (feature
/// `tonic`).
pub(crate) fn peer(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
    {
        return Some(addr.ip());
    }
    None
}

/// The client's address (module docs): `peer`, or what the trusted proxies report.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let reported = if headers.contains_key(FORWARDED) {
        walk(headers, &FORWARDED, forwarded_for, &is_trusted)
    } else {
        walk(headers, &X_FORWARDED_FOR, forwarded_ip, &is_trusted)
    };
    reported.unwrap_or(peer)
}

/// Walks the list in every `name` line from the right; `None` (use the peer) when the
/// header is absent or unreadable where the walk needs it.
fn walk(
    headers: &HeaderMap,
    name: &HeaderName,
    parse: fn(&str) -> Option<IpAddr>,
    is_trusted: &dyn Fn(&IpAddr) -> bool,
) -> Option<IpAddr> {
    let mut leftmost = None;
    // Lines in reverse, then each line's entries in reverse: the whole list from the right.
    for line in headers.get_all(name).iter().rev() {
        let line = line.to_str().ok()?;
        for entry in line.rsplit(',') {
            let ip = parse(entry.trim())?.to_canonical();
            if !is_trusted(&ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
    }
    leftmost
}

/// One `X-Forwarded-For` entry: an address, with or without a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), or a bracketed IPv6 address.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse().ok())
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.60;proto=http`,
/// `For="[2001:db8:cafe::17]:4711"`); `None` for an element without one, or whose node
/// is `unknown`, obfuscated or malformed.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"')?,
            None => value,
        };
        forwarded_ip(value)
    })
}

/// Longest text form of an address (an IPv6 address with an embedded IPv4 one).
pub(crate) const IP_TEXT_MAX: usize = 45;

/// Writes `ip`'s text form (`192.0.2.1`, `2001:db8::1`) into `buf` without allocating,
/// and returns it: the form policies name addresses in (Uphold's override
/// `value = "203.0.113.7"`). IPv4, the common case, skips the formatting machinery.
pub(crate) fn ip_text(ip: IpAddr, buf: &mut [u8; IP_TEXT_MAX]) -> &[u8] {
    let len = match ip {
        IpAddr::V4(v4) => {
            let mut len = 0;
            for octet in v4.octets() {
                let (text, n) = OCTET_TEXT[usize::from(octet)];
                // Four bytes at a time (the digits and a dot, then whatever follows is
                // overwritten or cut off): at most 16 of the buffer's 45.
                if let Some(slot) = buf.get_mut(len..len + 4) {
                    slot.copy_from_slice(&text);
                }
                len += usize::from(n);
            }
            // Without the last octet's dot.
            len - 1
        }
        IpAddr::V6(_) => {
            let capacity = buf.len();
            let mut rest: &mut [u8] = buf;
            // Never fails: every address fits in IP_TEXT_MAX bytes.
            let _ = write!(rest, "{ip}");
            capacity - rest.len()
        }
    };
    buf.get(..len).unwrap_or(&[])
}

/// Each octet's decimal digits followed by a dot, and how many bytes that is.
static OCTET_TEXT: [([u8; 4], u8); 256] = octet_text();

const fn octet_text() -> [([u8; 4], u8); 256] {
    let mut table = [([0; 4], 0); 256];
    let mut i = 0;
    while i < 256 {
        let o = i as u8;
        let (hundreds, tens, ones) = (b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10);
        table[i] = match o {
            100.. => ([hundreds, tens, ones, b'.'], 4),
            10.. => ([tens, ones, b'.', 0], 3),
            _ => ([ones, b'.', 0, 0], 2),
        };
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PROXY: &str = "10.0.0.5";

    fn through_proxy(pairs: &[(&str, &str)]) -> IpAddr {
        client_ip(ip(PROXY), &headers(pairs), &nets(&["10.0.0.0/8"]))
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers_say() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=7.7.7.7")]);
        assert_eq!(
            client_ip(ip("192.0.2.9"), &h, &nets(&["10.0.0.0/8"])),
            ip("192.0.2.9")
        );
        assert_eq!(client_ip(ip("192.0.2.9"), &h, &[]), ip("192.0.2.9"));
    }

    #[test]
    fn rightmost_untrusted_address_is_the_client() {
        // One `X-Forwarded-For` line's value, and the client it names.
        let one_line = [
            ("6.6.6.6, 1.2.3.4", "1.2.3.4"),
            // Trusted hops on the right are skipped; what the client wrote on the left is
            // not read.
            ("garbage, 1.2.3.4, 10.1.1.1,10.2.2.2", "1.2.3.4"),
            // Ports and brackets.
            ("1.2.3.4:5678", "1.2.3.4"),
            ("[2001:db8::1]:80", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
        ];
        for (value, want) in one_line {
            let got = through_proxy(&[("x-forwarded-for", value)]);
            assert_eq!(got, ip(want), "{value:?}");
        }
        // Several lines are one list, in order.
        assert_eq!(
            through_proxy(&[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "1.2.3.4, 10.0.0.7")
            ]),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn only_trusted_addresses_gives_the_leftmost() {
        assert_eq!(
            through_proxy(&[("x-forwarded-for", "10.9.9.9, 10.0.0.7")]),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn malformed_headers_fall_back_to_the_peer() {
        for bad in [
            "",
            " ",
            "not-an-ip",
            "1.2.3.4, unknown",
            "1.2.3.4,",
            "300.1.1.1",
            "1.2.3.4;x",
        ] {
            assert_eq!(
                through_proxy(&[("x-forwarded-for", bad)]),
                ip(PROXY),
                "{bad:?}"
            );
        }
        for bad in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "for=\"[2001:db8::1]",
            "for",
        ] {
            assert_eq!(through_proxy(&[("forwarded", bad)]), ip(PROXY), "{bad:?}");
        }
        // Not visible ASCII: unreadable.
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_bytes(b"1.2.3.4\xff").unwrap(),
        );
        assert_eq!(client_ip(ip(PROXY), &h, &nets(&["10.0.0.0/8"])), ip(PROXY));
    }

    #[test]
    fn forwarded_is_parsed_and_wins() {
        let cases = [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            (
                "for=198.51.100.17, for=10.0.0.9;proto=https",
                "198.51.100.17",
            ),
            ("proto=https; for=\"192.0.2.1:443\"", "192.0.2.1"),
            // Left of the client, anything goes: it is never read.
            ("for=unknown, for=198.51.100.17", "198.51.100.17"),
        ];
        for (value, want) in cases {
            let got = through_proxy(&[("forwarded", value), ("x-forwarded-for", "6.6.6.6")]);
            assert_eq!(got, ip(want), "{value:?}");
        }
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let peer = ip("::ffff:192.0.2.1");
        assert_eq!(client_ip(peer, &HeaderMap::new(), &[]), ip("192.0.2.1"));
        let trusted = nets(&["127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "::ffff:1.2.3.4")]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn text_forms() {
        let mut buf = [0u8; IP_TEXT_MAX];
        for v4 in [
            "203.0.113.7",
            "0.0.0.0",
            "255.255.255.255",
            "10.100.9.99",
            "1.20.100.0",
        ] {
            assert_eq!(ip_text(ip(v4), &mut buf), v4.as_bytes());
        }
        for octet in 0..=255u8 {
            let v4 = std::net::Ipv4Addr::new(octet, 255 - octet, octet / 7, octet % 10);
            let text = v4.to_string();
            assert_eq!(ip_text(IpAddr::V4(v4), &mut buf), text.as_bytes());
        }
        let longest = ip("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
        assert_eq!(ip_text(longest, &mut buf).len(), 39);
        let v6 = ip("0:0:0:0:0:ffff:255.255.255.255");
        assert_eq!(ip_text(v6, &mut buf), b"::ffff:255.255.255.255");
    }
}
