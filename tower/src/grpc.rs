//! Denials of gRPC requests (tonic clients and every other gRPC implementation): a
//! gRPC client reads its status from `grpc-status`, and turns an HTTP error status into
//! `UNAVAILABLE` or `UNKNOWN` without the reason. So a gRPC request is denied with a
//! *trailers-only* response: HTTP 200, `content-type: application/grpc`, `grpc-status`
//! and `grpc-message` among the headers, no body. The rate-limit headers ride along as
//! response metadata.
//!
//! | the policy's status | `grpc-status` |
//! |---|---|
//! | 429 (denied) | 8 `RESOURCE_EXHAUSTED`: gRPC's code for an exhausted quota |
//! | 503 (Redis down, failing closed) | 14 `UNAVAILABLE`: worth retrying |
//! | another status | gRPC's own mapping of HTTP statuses (400 → 13 `INTERNAL`, 401 → 16, 403 → 7, 404 → 12, 502 and 504 → 14, otherwise 2 `UNKNOWN`) |
//!
//! gRPC-Web (`application/grpc-web…`) frames its trailers in the body, so its requests get
//! the plain HTTP denial a gRPC-Web proxy translates.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Whether the request is gRPC over HTTP/2: `content-type` is `application/grpc`, alone
/// or followed by `+codec` or parameters.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.as_bytes().strip_prefix(b"application/grpc"))
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
}

/// The `grpc-status` code for a denial answered with `status` over plain HTTP.
pub(crate) fn code(status: StatusCode) -> u8 {
    match status.as_u16() {
        429 => 8,
        502..=504 => 14,
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        _ => 2,
    }
}

/// A trailers-only response denying a gRPC request: `status` as its `grpc-status`,
/// `message` as its `grpc-message` (percent-encoded as gRPC requires), and what
/// `add_headers` adds (the rate-limit headers) as metadata; `empty` is its body.
pub(crate) fn denied<B>(
    empty: B,
    status: StatusCode,
    message: &str,
    add_headers: impl FnOnce(&mut HeaderMap),
) -> Response<B> {
    let mut response = Response::new(empty);
    let map = response.headers_mut();
    add_headers(map);
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    map.insert(
        GRPC_STATUS.clone(),
        HeaderValue::from(u16::from(code(status))),
    );
    if let Ok(message) = HeaderValue::from_maybe_shared(percent_encode(message)) {
        map.insert(GRPC_MESSAGE.clone(), message);
    }
    response
}

/// `grpc-message`'s encoding: printable ASCII but `%` as is, every other byte as `%XX`.
fn percent_encode(message: &str) -> Bytes {
    let mut out = Vec::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    Bytes::from(out)
}

/// The message of a denial of `status`.
pub(crate) fn message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "rate limit exceeded",
        503 => "rate limiter unavailable",
        _ => status
            .canonical_reason()
            .unwrap_or("denied by the rate limiter"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types() {
        let with = |ct: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            is_grpc(&headers)
        };
        assert!(with("application/grpc"));
        assert!(with("application/grpc+proto"));
        assert!(with("application/grpc;charset=utf-8"));
        assert!(!with("application/grpc-web"));
        assert!(!with("application/grpc-web+proto"));
        assert!(!with("application/json"));
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn statuses_map_to_grpc_codes() {
        assert_eq!(code(StatusCode::TOO_MANY_REQUESTS), 8);
        assert_eq!(code(StatusCode::SERVICE_UNAVAILABLE), 14);
        assert_eq!(code(StatusCode::BAD_GATEWAY), 14);
        assert_eq!(code(StatusCode::FORBIDDEN), 7);
        assert_eq!(code(StatusCode::IM_A_TEAPOT), 2);
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(
            &percent_encode("rate limit exceeded")[..],
            b"rate limit exceeded"
        );
        assert_eq!(&percent_encode("100% \u{e9}\n")[..], b"100%25 %C3%A9%0A");
    }
}
