//! Policy checks of requests with named attributes, and per-limit metrics, called from
//! Rust: the round trip against the Rust API, and the pointer checks C cannot express
//! without undefined behaviour of its own (misaligned structs). tests/c/ covers the
//! published policies from C.

use std::mem::size_of;
use std::ptr;

use ratecore::policy::{Attribute, Policy, Request};
use ratecore_ffi::*;

const SECOND: u64 = 1_000_000_000;

const TOML: &str = r#"
[[rule]]
name = "internal"
when = { tier = "internal" }
unlimited = true

[[rule]]
name = "api"
[[rule.limit]]
name = "per-tenant"
key = ["tenant"]
on_missing = "deny"
algorithm = "gcra"
limit = 2
period = "1s"
[[rule.limit]]
name = "per-tenant-audit"
key = ["tenant"]
on_missing = "deny"
algorithm = "fixed_window"
limit = 1
period = "1s"
shadow = true
"#;

fn policy() -> *mut ratecore_policy {
    let mut policy = ptr::null_mut();
    // SAFETY: the text is valid for its length; the out pointer is valid.
    let status = unsafe {
        ratecore_policy_from_toml(
            TOML.as_ptr(),
            TOML.len(),
            ptr::null(),
            0,
            ptr::null_mut(),
            0,
            &mut policy,
        )
    };
    assert_eq!(status, ratecore_status::Ok);
    policy
}

fn attribute(name: &'static str, value: &'static str) -> ratecore_attribute {
    ratecore_attribute {
        name: name.as_ptr(),
        name_len: name.len(),
        value: value.as_ptr(),
        value_len: value.len(),
    }
}

fn request(attributes: &[ratecore_attribute]) -> ratecore_http_request {
    ratecore_http_request {
        size: size_of::<ratecore_http_request>(),
        method: b"GET".as_ptr(),
        method_len: 3,
        path: b"/v1/things".as_ptr(),
        path_len: 10,
        attributes: attributes.as_ptr(),
        attribute_count: attributes.len(),
    }
}

fn blank_outcome() -> ratecore_policy_outcome {
    ratecore_policy_outcome {
        size: size_of::<ratecore_policy_outcome>(),
        decision: ratecore_decision::default(),
        limited: false,
        status: 0,
        headers_len: 0,
        body_len: 0,
        content_type: ptr::null(),
        deciding_limit: 0,
        missing_key: false,
        shadow_denied_limit: 0,
        exempted: false,
    }
}

/// Checks `request` through the C ABI, with 512-byte buffers.
fn check(
    policy: *const ratecore_policy,
    request: &ratecore_http_request,
    now: u64,
) -> (ratecore_status, ratecore_policy_outcome) {
    let mut outcome = blank_outcome();
    let (mut headers, mut body) = ([0u8; 512], [0u8; 512]);
    // SAFETY: every pointer is valid for the length passed with it.
    let status = unsafe {
        ratecore_policy_check_http(
            policy,
            request,
            now,
            1,
            0,
            headers.as_mut_ptr(),
            headers.len(),
            body.as_mut_ptr(),
            body.len(),
            &mut outcome,
        )
    };
    (status, outcome)
}

#[test]
fn layouts_are_what_the_header_pins() {
    if size_of::<usize>() == 8 {
        assert_eq!(size_of::<ratecore_attribute>(), 32);
        assert_eq!(size_of::<ratecore_http_request>(), 56);
        assert_eq!(size_of::<ratecore_policy_outcome>(), 96);
        assert_eq!(size_of::<ratecore_limit_metrics>(), 80);
    }
    assert_eq!(RATECORE_MAX_REQUEST_ATTRIBUTES, 64);
    assert_eq!(RATECORE_NO_LIMIT, u32::MAX);
}

#[test]
fn outcomes_and_metrics_match_the_rust_api() {
    let policy = policy();
    let mirror = Policy::from_toml_str(TOML, "<string>").unwrap();
    let acme = [attribute("tenant", "acme")];
    let internal = [attribute("tier", "internal"), attribute("tenant", "acme")];
    let nobody: [ratecore_attribute; 0] = [];
    let rust_acme = [Attribute::new("tenant", b"acme")];
    let rust_internal = [
        Attribute::new("tier", b"internal"),
        Attribute::new("tenant", b"acme"),
    ];
    let cases: [(&[ratecore_attribute], &[Attribute<'_>]); 3] = [
        (&acme, &rust_acme),
        (&internal, &rust_internal),
        (&nobody, &[]),
    ];
    // Every kind of outcome comes up: denied, shadow-denied, missing key, exempted.
    let mut seen = [false; 4];
    for step in 0..12u64 {
        let (c, rust) = cases[usize::try_from(step % 3).unwrap()];
        let now = step * SECOND / 10;
        let (status, got) = check(policy, &request(c), now);
        assert_eq!(status, ratecore_status::Ok);
        let want = mirror
            .check(&Request::new("GET", "/v1/things", rust), now, 1)
            .unwrap();
        assert_eq!(got.size, size_of::<ratecore_policy_outcome>());
        assert_eq!(got.decision.allowed, want.allowed());
        assert_eq!(got.decision.remaining, want.decision().remaining);
        assert_eq!(got.limited, want.limited());
        let index = |id: Option<usize>| id.map_or(RATECORE_NO_LIMIT, |i| u32::try_from(i).unwrap());
        assert_eq!(got.deciding_limit, index(want.deciding().map(|l| l.id)));
        assert_eq!(
            got.shadow_denied_limit,
            index(want.shadow_denied().map(|(l, _)| l.id))
        );
        assert_eq!(got.missing_key, want.denied_for_missing_key());
        assert_eq!(got.exempted, want.exempted_by().is_some());
        for (seen, now) in seen.iter_mut().zip([
            !got.decision.allowed && !got.missing_key,
            got.shadow_denied_limit != RATECORE_NO_LIMIT,
            got.missing_key,
            got.exempted,
        ]) {
            *seen |= now;
        }
    }
    assert_eq!(seen, [true; 4]);

    let mut count = 0;
    // SAFETY: a live handle and a valid out pointer.
    assert_eq!(
        unsafe { ratecore_policy_limit_count(policy, &mut count) },
        ratecore_status::Ok
    );
    assert_eq!(count, 2);
    for (index, (limit, metrics)) in mirror.metrics().enumerate() {
        let mut got = ratecore_limit_metrics {
            size: size_of::<ratecore_limit_metrics>(),
            rule: ptr::null(),
            rule_len: 0,
            name: ptr::null(),
            name_len: 0,
            shadow: false,
            allowed: 0,
            denied: 0,
            shadow_denied: 0,
            skipped: 0,
        };
        // SAFETY: a live handle and a valid out pointer with its size set.
        let status = unsafe { ratecore_policy_limit_metrics(policy, index, &mut got) };
        assert_eq!(status, ratecore_status::Ok);
        // SAFETY: documented valid for their lengths while the policy lives.
        let (rule, name) = unsafe {
            (
                std::slice::from_raw_parts(got.rule, got.rule_len),
                std::slice::from_raw_parts(got.name, got.name_len),
            )
        };
        assert_eq!(rule, limit.rule.as_bytes());
        assert_eq!(name, limit.name.as_bytes());
        assert_eq!(got.shadow, limit.shadow);
        assert_eq!(
            (got.allowed, got.denied, got.shadow_denied, got.skipped),
            (
                metrics.allowed,
                metrics.denied,
                metrics.shadow_denied,
                metrics.skipped
            )
        );
    }
    let mut bytes = 0;
    // SAFETY: a live handle and a valid out pointer.
    assert_eq!(
        unsafe { ratecore_policy_memory_bytes(policy, &mut bytes) },
        ratecore_status::Ok
    );
    assert_eq!(bytes, mirror.memory_bytes());
    // SAFETY: a live handle, freed once.
    unsafe { ratecore_policy_free(policy) };
}

#[test]
fn misaligned_structs_are_rejected_without_writing() {
    #[repr(C, align(8))]
    struct Buffer([u8; 256]);
    let policy = policy();
    let acme = [attribute("tenant", "acme")];
    let good = request(&acme);
    let mut buffer = Buffer([0; 256]);
    let base = buffer.0.as_mut_ptr();
    // SAFETY: the misaligned pointers stay inside `buffer` and are only checked, never
    // dereferenced, by the library; the other pointers are valid.
    unsafe {
        let mut outcome = blank_outcome();
        let misaligned_request = base.add(1).cast::<ratecore_http_request>();
        assert_eq!(
            ratecore_policy_check_http(
                policy,
                misaligned_request,
                0,
                1,
                0,
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                0,
                &mut outcome
            ),
            ratecore_status::InvalidArgument
        );
        let misaligned_outcome = base.add(4).cast::<ratecore_policy_outcome>();
        assert_eq!(
            ratecore_policy_peek_http(
                policy,
                &good,
                0,
                1,
                0,
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                0,
                misaligned_outcome
            ),
            ratecore_status::InvalidArgument
        );
        let misaligned_attributes = base.add(2).cast::<ratecore_attribute>();
        let mut bad = good;
        bad.attributes = misaligned_attributes;
        assert_eq!(
            ratecore_policy_check_http(
                policy,
                &bad,
                0,
                1,
                0,
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                0,
                &mut outcome
            ),
            ratecore_status::InvalidArgument
        );
        let misaligned_metrics = base.add(3).cast::<ratecore_limit_metrics>();
        assert_eq!(
            ratecore_policy_limit_metrics(policy, 0, misaligned_metrics),
            ratecore_status::InvalidArgument
        );
        let misaligned_count = base.add(5).cast::<usize>();
        assert_eq!(
            ratecore_policy_limit_count(policy, misaligned_count),
            ratecore_status::InvalidArgument
        );
        assert_eq!(
            ratecore_policy_memory_bytes(policy, misaligned_count),
            ratecore_status::InvalidArgument
        );
        assert_eq!(
            ratecore_policy_limit_count(policy.cast::<u8>().add(1).cast(), &mut 0),
            ratecore_status::InvalidArgument
        );
        assert_eq!(outcome.size, size_of::<ratecore_policy_outcome>());
        assert_eq!(outcome.status, 0, "outcome written on failure");
        ratecore_policy_free(policy);
    }
    assert!(buffer.0.iter().all(|&b| b == 0), "nothing written");
}
