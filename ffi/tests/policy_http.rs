//! Policy checks of requests with named attributes, per-limit metrics and reloads, called
//! from Rust: the round trip against the Rust API, and the pointer checks C cannot express
//! without undefined behaviour of its own (misaligned structs). tests/c/ covers the
//! published policies from C.

use std::mem::size_of;
use std::ptr;

use ratecore::policy::{Attribute, LimitMetrics, OverrideQuota, Policy, PolicyError, Request};
use ratecore_ffi::*;

const SECOND: u64 = 1_000_000_000;

/// Two limits on one key, one of them shadow, and an exempting rule.
const TOML: &str = include_str!("policy_http.toml");

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
        assert_eq!(size_of::<ratecore_limit_metrics>(), 64);
        assert_eq!(size_of::<ratecore_reload_report>(), 40);
        assert_eq!(
            std::mem::offset_of!(ratecore_reload_report, overrides_dropped),
            32
        );
        assert_eq!(size_of::<ratecore_override_quota>(), 32);
        assert_eq!(size_of::<ratecore_offender_stats>(), 24);
    }
    assert_eq!(RATECORE_OFFENDERS, ratecore::policy::OFFENDERS);
    assert_eq!(
        RATECORE_OFFENDER_KEY_BYTES,
        ratecore::policy::OFFENDER_KEY_BYTES
    );
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
        // Which limit decided, and why.
        assert_eq!(
            (got.deciding_limit, got.shadow_denied_limit),
            (
                index(want.deciding().map(|l| l.id)),
                index(want.shadow_denied().map(|(l, _)| l.id))
            )
        );
        assert_eq!(
            (got.missing_key, got.exempted),
            (want.denied_for_missing_key(), want.exempted_by().is_some())
        );
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
    assert_metrics_match(policy, &mirror);
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

/// Every limit's names and counters through the C ABI equal the Rust API's, and so does
/// the Prometheus export.
fn assert_metrics_match(policy: *const ratecore_policy, mirror: &Policy) {
    let mut count = 0;
    // SAFETY: a live handle and a valid out pointer.
    let status = unsafe { ratecore_policy_limit_count(policy, &mut count) };
    assert_eq!(status, ratecore_status::Ok);
    assert_eq!(count, mirror.metrics().count());
    for (index, (limit, metrics)) in mirror.metrics().enumerate() {
        let mut got = blank_metrics();
        let mut text = [0u8; 64];
        // SAFETY: a live handle, a text buffer valid for its length, a valid out pointer
        // with its size set.
        let status = unsafe {
            ratecore_policy_limit_metrics(policy, index, text.as_mut_ptr(), text.len(), &mut got)
        };
        assert_eq!(status, ratecore_status::Ok);
        assert_eq!(got.size, size_of::<ratecore_limit_metrics>());
        let (rule, name) = text[..got.rule_len + got.name_len].split_at(got.rule_len);
        assert_eq!(rule, limit.rule.as_bytes());
        assert_eq!(name, limit.name.as_bytes());
        assert_eq!(got.shadow, limit.shadow);
        let counters = LimitMetrics {
            allowed: got.allowed,
            denied: got.denied,
            shadow_denied: got.shadow_denied,
            skipped: got.skipped,
        };
        assert_eq!(counters, metrics);
    }
    let mut buffer = [0u8; 4096];
    let n = mirror.render_metrics(&mut buffer).unwrap();
    let want = &buffer[..n];
    let mut got = [0u8; 4096];
    let mut len = 0;
    // SAFETY: a live handle, a buffer valid for its length, a valid out pointer.
    let status =
        unsafe { ratecore_policy_render_metrics(policy, got.as_mut_ptr(), got.len(), &mut len) };
    assert_eq!(status, ratecore_status::Ok);
    assert_eq!(&got[..len], want);
}

fn blank_metrics() -> ratecore_limit_metrics {
    ratecore_limit_metrics {
        size: size_of::<ratecore_limit_metrics>(),
        rule_len: 0,
        name_len: 0,
        shadow: false,
        allowed: 0,
        denied: 0,
        shadow_denied: 0,
        skipped: 0,
    }
}

fn blank_report() -> ratecore_reload_report {
    ratecore_reload_report {
        size: size_of::<ratecore_reload_report>(),
        ..ratecore_reload_report::default()
    }
}

/// Reloads through the C ABI from text.
fn reload(policy: *const ratecore_policy, toml: &str) -> (ratecore_status, ratecore_reload_report) {
    let mut report = blank_report();
    // SAFETY: the text is valid for its length; the report is valid with its size set.
    let status = unsafe {
        ratecore_policy_reload_toml(
            policy,
            toml.as_ptr(),
            toml.len(),
            ptr::null(),
            0,
            ptr::null_mut(),
            0,
            &mut report,
        )
    };
    (status, report)
}

#[test]
fn reloads_match_the_rust_api() {
    let policy = policy();
    let mirror = Policy::from_toml_str(TOML, "<string>").unwrap();
    let acme = [attribute("tenant", "acme")];
    let rust_acme = [Attribute::new("tenant", b"acme")];
    let check_both = |now| {
        let (status, got) = check(policy, &request(&acme), now);
        assert_eq!(status, ratecore_status::Ok);
        let want = mirror
            .check(&Request::new("GET", "/v1/things", &rust_acme), now, 1)
            .unwrap();
        assert_eq!(got.decision.allowed, want.allowed());
        assert_eq!(got.decision.remaining, want.decision().remaining);
    };
    check_both(0);
    // The audit limit's quota changes, the tenant limit stays: each version, in turn.
    let next = TOML.replace("limit = 1\n", "limit = 3\n");
    assert_ne!(next, TOML);
    for (step, text) in [next.as_str(), TOML, "", TOML].into_iter().enumerate() {
        let (status, got) = reload(policy, text);
        assert_eq!(status, ratecore_status::Ok);
        let want = mirror.reload_toml_str(text, "<string>").unwrap();
        assert_eq!(got.size, size_of::<ratecore_reload_report>());
        assert_eq!(
            (got.kept, got.fresh, got.dropped, got.overrides_dropped),
            (want.kept, want.fresh, want.dropped, want.overrides_dropped)
        );
        check_both(SECOND / 10 * (step as u64 + 1));
        check_both(SECOND / 10 * (step as u64 + 1));
        assert_metrics_match(policy, &mirror);
    }
    // A malformed text: the same error, and both keep their version.
    let mut error = [0u8; 128];
    let mut report = ratecore_reload_report {
        kept: usize::MAX,
        ..blank_report()
    };
    let bad = "[[rule]]\nname = 3\n";
    // SAFETY: every pointer is valid for the length passed with it.
    let status = unsafe {
        ratecore_policy_reload_toml(
            policy,
            bad.as_ptr(),
            bad.len(),
            b"bad.toml".as_ptr(),
            8,
            error.as_mut_ptr().cast(),
            error.len(),
            &mut report,
        )
    };
    assert_eq!(status, ratecore_status::InvalidConfig);
    let want = mirror
        .reload_toml_str(bad, "bad.toml")
        .unwrap_err()
        .to_string();
    let got = std::ffi::CStr::from_bytes_until_nul(&error).unwrap();
    assert_eq!(got.to_str().unwrap(), want);
    assert_eq!(report.kept, usize::MAX, "report written on failure");
    check_both(SECOND);
    assert_metrics_match(policy, &mirror);
    // SAFETY: a live handle, freed once.
    unsafe { ratecore_policy_free(policy) };
}

/// Zeroed bytes aligned for every struct of the API, for passing pointers into them at
/// chosen offsets (misaligned ones included).
#[repr(C, align(8))]
struct Buffer([u8; 256]);

#[test]
fn misaligned_structs_are_rejected_without_writing() {
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
            ratecore_policy_limit_metrics(policy, 0, ptr::null_mut(), 0, misaligned_metrics),
            ratecore_status::InvalidArgument
        );
        let misaligned_report = base.add(6).cast::<ratecore_reload_report>();
        assert_eq!(
            ratecore_policy_reload_toml(
                policy,
                TOML.as_ptr(),
                TOML.len(),
                ptr::null(),
                0,
                ptr::null_mut(),
                0,
                misaligned_report
            ),
            ratecore_status::InvalidArgument
        );
        assert_eq!(
            ratecore_policy_reload_file(
                policy,
                c"examples/policies/switch.toml".as_ptr(),
                ptr::null_mut(),
                0,
                misaligned_report
            ),
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

fn override_quota(limit: u64, burst: u64) -> ratecore_override_quota {
    ratecore_override_quota {
        size: size_of::<ratecore_override_quota>(),
        unlimited: false,
        limit,
        burst,
    }
}

/// The quota the Rust API takes for a C quota.
fn rust_quota(quota: &ratecore_override_quota) -> OverrideQuota {
    if quota.unlimited {
        OverrideQuota::Unlimited
    } else {
        OverrideQuota::Limit {
            limit: quota.limit,
            burst: (quota.burst != 0).then_some(quota.burst),
        }
    }
}

/// An override's rule, limit, attribute and value as the C calls take them: `(pointer,
/// length)` pairs.
fn override_args(
    rule: &str,
    limit: &str,
    attribute: &str,
    value: &[u8],
) -> [(*const u8, usize); 4] {
    [
        rule.as_bytes(),
        limit.as_bytes(),
        attribute.as_bytes(),
        value,
    ]
    .map(|s| (s.as_ptr(), s.len()))
}

/// Sets an override through the C ABI; the status and the error text.
fn set_override(
    policy: *const ratecore_policy,
    rule: &str,
    limit: &str,
    attribute: &str,
    value: &[u8],
    quota: &ratecore_override_quota,
) -> (ratecore_status, String) {
    let mut error = [0u8; 256];
    let [(r, rl), (l, ll), (a, al), (v, vl)] = override_args(rule, limit, attribute, value);
    let (e, el) = (error.as_mut_ptr().cast(), error.len());
    // SAFETY: every pointer is valid for the length passed with it; the quota's size is
    // set.
    let status =
        unsafe { ratecore_policy_set_override(policy, r, rl, l, ll, a, al, v, vl, quota, e, el) };
    let text = std::ffi::CStr::from_bytes_until_nul(&error)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (status, text)
}

/// Removes an override through the C ABI.
fn remove_override(
    policy: *const ratecore_policy,
    rule: &str,
    limit: &str,
    attribute: &str,
    value: &[u8],
) -> (ratecore_status, bool) {
    let mut removed = false;
    let [(r, rl), (l, ll), (a, al), (v, vl)] = override_args(rule, limit, attribute, value);
    // SAFETY: every pointer is valid for the length passed with it.
    let status = unsafe {
        ratecore_policy_remove_override(policy, r, rl, l, ll, a, al, v, vl, &mut removed)
    };
    (status, removed)
}

/// The documented escaping of a text report's field.
fn escaped(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'\\' => "\\\\".to_owned(),
            0x20..=0x7e => char::from(b).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// A text report through the C ABI, read the documented way: ask for the length, then
/// fetch with exactly that much room.
fn text_report(
    fetch: impl Fn(*mut u8, usize, *mut usize) -> ratecore_status,
) -> (ratecore_status, String) {
    let mut needed = usize::MAX;
    let status = fetch(ptr::null_mut(), 0, &mut needed);
    if status == ratecore_status::Ok {
        assert_eq!(needed, 0);
        return (status, String::new());
    }
    assert_eq!(status, ratecore_status::BufferTooSmall);
    let mut buffer = vec![0u8; needed];
    let mut len = usize::MAX;
    let status = fetch(buffer.as_mut_ptr(), buffer.len(), &mut len);
    assert_eq!(len, needed);
    buffer.truncate(len);
    (status, String::from_utf8(buffer).unwrap())
}

fn overrides_text(policy: *const ratecore_policy) -> String {
    // SAFETY: a live handle; the buffer and length pointers are valid.
    let (status, text) =
        text_report(|out, cap, len| unsafe { ratecore_policy_overrides(policy, out, cap, len) });
    assert_eq!(status, ratecore_status::Ok);
    text
}

/// The overrides listing the Rust API's overrides call for.
fn expected_overrides(mirror: &Policy) -> String {
    let mut overrides = mirror.overrides();
    overrides.sort_by(|a, b| {
        (&a.0, &a.1, &a.2.attribute, &a.2.value).cmp(&(&b.0, &b.1, &b.2.attribute, &b.2.value))
    });
    overrides
        .iter()
        .map(|(rule, limit, o)| {
            let (quota, burst) = match o.quota {
                OverrideQuota::Limit { limit, burst } => {
                    (limit.to_string(), burst.unwrap_or(0).to_string())
                }
                OverrideQuota::Unlimited => ("unlimited".to_owned(), "0".to_owned()),
            };
            format!(
                "{}\t{}\t{}\t{}\t{quota}\t{burst}\n",
                escaped(rule.as_bytes()),
                escaped(limit.as_bytes()),
                escaped(o.attribute.as_bytes()),
                escaped(&o.value)
            )
        })
        .collect()
}

#[test]
fn overrides_match_the_rust_api() {
    let policy = policy();
    let mirror = Policy::from_toml_str(TOML, "<string>").unwrap();
    let unlimited = ratecore_override_quota {
        unlimited: true,
        ..override_quota(0, 0)
    };
    // Accepted and refused changes alike: the same status, message and effect.
    let changes: [(&str, &str, &str, &[u8], ratecore_override_quota); 10] = [
        ("api", "per-tenant", "tenant", b"acme", override_quota(5, 0)),
        ("api", "per-tenant", "tenant", b"big", override_quota(5, 9)),
        ("api", "per-tenant", "tenant", b"t\tab\n\xff", unlimited),
        (
            "api",
            "per-tenant-audit",
            "tenant",
            b"acme",
            override_quota(4, 0),
        ),
        (
            "api",
            "per-tenant-audit",
            "tenant",
            b"acme",
            override_quota(4, 2),
        ),
        ("api", "per-tenant", "tenant", b"zero", override_quota(0, 0)),
        ("api", "per-tenant", "bad name", b"x", override_quota(3, 0)),
        ("api", "nope", "tenant", b"x", override_quota(3, 0)),
        (
            "internal",
            "per-tenant",
            "tenant",
            b"x",
            override_quota(3, 0),
        ),
        (
            "api",
            "per-tenant",
            "plan",
            b"gold",
            override_quota(u64::MAX, 0),
        ),
    ];
    let tenants: [&[u8]; 4] = [b"acme", b"big", b"t\tab\n\xff", b"other"];
    let mut now = 0;
    for (rule, limit, attribute, value, quota) in changes {
        let (status, error) = set_override(policy, rule, limit, attribute, value, &quota);
        match mirror.set_override(rule, limit, attribute, value, rust_quota(&quota)) {
            Ok(()) => assert_eq!((status, error.as_str()), (ratecore_status::Ok, "")),
            Err(e) => {
                let want = match e {
                    PolicyError::UnknownLimit { .. } => ratecore_status::UnknownLimit,
                    _ => ratecore_status::InvalidOverride,
                };
                assert_eq!((status, error), (want, e.to_string()), "{rule}/{limit}");
            }
        }
        assert_eq!(overrides_text(policy), expected_overrides(&mirror));
        // Every tenant's decision agrees.
        now += SECOND / 20;
        for tenant in tenants {
            let attributes = [ratecore_attribute {
                name: b"tenant".as_ptr(),
                name_len: 6,
                value: tenant.as_ptr(),
                value_len: tenant.len(),
            }];
            let (status, got) = check(policy, &request(&attributes), now);
            assert_eq!(status, ratecore_status::Ok);
            let rust = [Attribute::new("tenant", tenant)];
            let want = mirror
                .check(&Request::new("GET", "/v1/things", &rust), now, 1)
                .unwrap();
            assert_eq!(got.decision.allowed, want.allowed());
            assert_eq!(got.decision.limit, want.decision().limit);
            assert_eq!(got.decision.remaining, want.decision().remaining);
            assert_eq!(got.limited, want.limited());
        }
    }
    assert!(overrides_text(policy).contains("\tt\\x09ab\\x0a\\xff\tunlimited\t0\n"));
    for (rule, limit, attribute, value) in [
        ("api", "per-tenant", "tenant", &b"acme"[..]),
        ("api", "per-tenant", "tenant", b"acme"),
        ("api", "per-tenant", "nobody", b"acme"),
        ("api", "missing", "tenant", b"acme"),
    ] {
        let (status, removed) = remove_override(policy, rule, limit, attribute, value);
        match mirror.remove_override(rule, limit, attribute, value) {
            Ok(want) => assert_eq!((status, removed), (ratecore_status::Ok, want)),
            Err(_) => assert_eq!((status, removed), (ratecore_status::UnknownLimit, false)),
        }
        assert_eq!(overrides_text(policy), expected_overrides(&mirror));
    }
    assert_metrics_match(policy, &mirror);
    // A reload drops them all (the configuration has none), and says how many.
    let (status, got) = reload(policy, TOML);
    let want = mirror.reload_toml_str(TOML, "<string>").unwrap();
    assert_eq!(status, ratecore_status::Ok);
    assert!(want.overrides_dropped > 0);
    assert_eq!(got.overrides_dropped, want.overrides_dropped);
    assert_eq!(overrides_text(policy), "");
    // SAFETY: a live handle, freed once.
    unsafe { ratecore_policy_free(policy) };
}

#[test]
fn offenders_match_the_rust_api() {
    let policy = policy();
    let mirror = Policy::from_toml_str(TOML, "<string>").unwrap();
    let long = [b'k'; 80];
    let tenants: [&[u8]; 4] = [b"acme", b"t\tab\n\xff\\", &long, b"once"];
    // acme: 2 admitted (the GCRA burst), then denied 8 times; the others fewer.
    for (tenant, n) in tenants.into_iter().zip([10, 6, 4, 3]) {
        for _ in 0..n {
            let attributes = [ratecore_attribute {
                name: b"tenant".as_ptr(),
                name_len: 6,
                value: tenant.as_ptr(),
                value_len: tenant.len(),
            }];
            let (status, got) = check(policy, &request(&attributes), 0);
            assert_eq!(status, ratecore_status::Ok);
            let rust = [Attribute::new("tenant", tenant)];
            let want = mirror
                .check(&Request::new("GET", "/v1/things", &rust), 0, 1)
                .unwrap();
            assert_eq!(got.decision.allowed, want.allowed());
        }
    }
    let (offenders, stats) = mirror.offenders();
    assert_eq!(offenders.len(), 3, "{offenders:?}");
    let want: String = offenders
        .iter()
        .map(|o| {
            format!(
                "{}\t{}\t{}\t{}\t{}\n",
                escaped(o.rule.as_bytes()),
                escaped(o.limit.as_bytes()),
                escaped(&o.key),
                o.denials,
                u8::from(o.truncated)
            )
        })
        .collect();
    let mut got_stats = ratecore_offender_stats {
        size: size_of::<ratecore_offender_stats>(),
        evicted: u64::MAX,
        unrecorded: u64::MAX,
    };
    let stats_ptr: *mut ratecore_offender_stats = &mut got_stats;
    // SAFETY: a live handle; the buffers and out pointers are valid, the stats' size set.
    let (status, got) = text_report(|out, cap, len| unsafe {
        ratecore_policy_offenders(policy, out, cap, len, stats_ptr)
    });
    assert_eq!(status, ratecore_status::Ok);
    assert_eq!(got, want);
    assert_eq!(
        (got_stats.size, got_stats.evicted, got_stats.unrecorded),
        (
            size_of::<ratecore_offender_stats>(),
            stats.evicted,
            stats.unrecorded
        )
    );
    assert!(got.starts_with("api\tper-tenant\tacme\t8\t0\n"), "{got}");
    assert!(
        got.contains(&format!("\t{}\t2\t1\n", "k".repeat(64))),
        "{got}"
    );
    assert!(got.contains("\tt\\x09ab\\x0a\\xff\\\\\t4\t0\n"), "{got}");
    // SAFETY: a live handle, freed once.
    unsafe { ratecore_policy_free(policy) };
}

#[test]
fn misaligned_override_and_offender_pointers_are_rejected() {
    let policy = policy();
    let mut buffer = Buffer([0; 256]);
    let base = buffer.0.as_mut_ptr();
    let (rule, limit, attribute) = ("api", "per-tenant", "tenant");
    // SAFETY: the misaligned pointers stay inside `buffer` and are only checked, never
    // dereferenced, by the library; the other pointers are valid.
    unsafe {
        let quota = base.add(1).cast::<ratecore_override_quota>();
        let [(r, rl), (l, ll), (a, al), _] = override_args(rule, limit, attribute, &[]);
        let (v, e) = (ptr::null(), ptr::null_mut());
        assert_eq!(
            ratecore_policy_set_override(policy, r, rl, l, ll, a, al, v, 0, quota, e, 0),
            ratecore_status::InvalidArgument
        );
        assert_eq!(
            ratecore_policy_remove_override(policy, r, rl, l, ll, a, al, v, 0, ptr::null_mut()),
            ratecore_status::NullPointer
        );
        let misaligned_len = base.add(3).cast::<usize>();
        assert_eq!(
            ratecore_policy_overrides(policy, ptr::null_mut(), 0, misaligned_len),
            ratecore_status::InvalidArgument
        );
        let mut stats = ratecore_offender_stats {
            size: size_of::<ratecore_offender_stats>(),
            ..ratecore_offender_stats::default()
        };
        assert_eq!(
            ratecore_policy_offenders(policy, ptr::null_mut(), 0, misaligned_len, &mut stats),
            ratecore_status::InvalidArgument
        );
        let misaligned_stats = base.add(5).cast::<ratecore_offender_stats>();
        let mut len = 0;
        assert_eq!(
            ratecore_policy_offenders(policy, ptr::null_mut(), 0, &mut len, misaligned_stats),
            ratecore_status::InvalidArgument
        );
        assert_eq!(
            ratecore_policy_overrides(
                policy.cast::<u8>().add(1).cast(),
                ptr::null_mut(),
                0,
                &mut len
            ),
            ratecore_status::InvalidArgument
        );
        assert_eq!((len, stats.evicted), (0, 0), "written on failure");
        ratecore_policy_free(policy);
    }
    assert!(buffer.0.iter().all(|&b| b == 0), "nothing written");
}
