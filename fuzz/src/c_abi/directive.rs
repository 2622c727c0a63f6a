//! Server directives: `ratecore_zone_directive_parse`, `ratecore_limit_directive_parse`
//! and `ratecore_limit_directive_check_zone` on parameter lists built from the directives'
//! keys and near-valid or arbitrary values.

use std::ffi::CStr;
use std::ptr;

use ratecore_ffi::{
    ratecore_limit_directive, ratecore_limit_directive_check_zone,
    ratecore_limit_directive_parse, ratecore_shm_layout, ratecore_table_region_size,
    ratecore_text, ratecore_zone_directive, ratecore_zone_directive_parse,
    RATECORE_MAX_TABLE_CAPACITY, RATECORE_MAX_TABLE_LIMITS,
};

use super::call::{Call, DirectiveValue};
use super::{Arena, S};

const KEYS: [&str; 20] = [
    "name=", "size=", "algorithm=", "limit=", "period=", "burst=", "sub_windows=",
    "when_full=", "quota=", "capacity=", "zone=", "key=", "cost=", "style=", "status=",
    "dry_run=", "body=", "description=", "problem_type=", "problem_title=",
];

const VALUES: [&str; 24] = [
    "z", "64k", "1m", "gcra", "sliding_window_strict", "10", "0", "1h30m", "500ms", "5x",
    "gcra:5/1s:burst=2", "fixed_window:100/1m", "auto", "8", "evict", "$binary_remote_addr",
    "$http_x_cost", "uphold", "none", "429", "on", "problem+json", "", "18446744073709551616",
];

/// A limit's fixed output checks, and the three calls' error contract.
pub(super) fn step(arena: &mut Arena, call: &Call) {
    let Call::Directive {
        zone,
        args,
        level_style,
        err_len,
    } = call
    else {
        return;
    };
    let owned: Vec<Vec<u8>> = args
        .iter()
        .take(24)
        .map(|(key, value)| {
            let mut arg = KEYS.get(usize::from(*key)).map_or(Vec::new(), |k| k.as_bytes().to_vec());
            match value {
                DirectiveValue::Known(i) => {
                    arg.extend_from_slice(VALUES[usize::from(*i) % VALUES.len()].as_bytes());
                }
                DirectiveValue::Bytes(bytes) => arg.extend(bytes.iter().take(64)),
            }
            arg
        })
        .collect();
    let texts: Vec<ratecore_text> = owned
        .iter()
        .map(|a| ratecore_text {
            len: a.len(),
            data: if a.is_empty() { ptr::null() } else { a.as_ptr() },
        })
        .collect();
    let len = usize::from(*err_len);
    let mut err = vec![0xAAu8; len + 8];
    let (status, written) = if *zone {
        let layout = ratecore_shm_layout {
            header: 256,
            page_size: 4096,
            fixed: 4096 + 2048,
            per_page: 24,
            min_pages: 8,
        };
        let mut out = std::mem::MaybeUninit::<ratecore_zone_directive>::uninit();
        // SAFETY: every text points into `owned` for its length; the layout, out and
        // error buffer (`len` of its `len + 8` bytes) are live locals.
        let status = unsafe {
            ratecore_zone_directive_parse(
                texts.as_ptr(),
                texts.len(),
                &layout,
                out.as_mut_ptr(),
                err.as_mut_ptr().cast(),
                len,
            )
        };
        if status == S::Ok {
            // SAFETY: written on success.
            let z = unsafe { out.assume_init() };
            check_zone(&z);
            // SAFETY: the name points into `owned`, alive here.
            let name = unsafe { std::slice::from_raw_parts(z.name.data, z.name.len) }.to_vec();
            arena.zone = Some((z, name));
        }
        (status, status != S::Ok)
    } else {
        let mut out = std::mem::MaybeUninit::<ratecore_limit_directive>::uninit();
        // SAFETY: as above.
        let status = unsafe {
            ratecore_limit_directive_parse(
                texts.as_ptr(),
                texts.len(),
                u32::from(*level_style),
                out.as_mut_ptr(),
                err.as_mut_ptr().cast(),
                len,
            )
        };
        if status == S::Ok {
            // SAFETY: written on success.
            let l = unsafe { out.assume_init() };
            assert!(l.zone.len > 0 && l.key.len > 0, "zone= and key= are required");
            assert!((400..=599).contains(&l.status));
            assert!((1..=4).contains(&l.body));
            assert!(matches!(l.style, 1..=4 | 255));
            if let Some((mut z, name)) = arena.zone.clone() {
                z.name = ratecore_text {
                    len: name.len(),
                    data: name.as_ptr(),
                };
                let mut zone_err = [0u8; 256];
                // SAFETY: `l` and `z` are live, `z.name` points into `name`.
                let checked = unsafe {
                    ratecore_limit_directive_check_zone(
                        &l,
                        &z,
                        zone_err.as_mut_ptr().cast(),
                        zone_err.len(),
                    )
                };
                assert!(matches!(checked, S::Ok | S::InvalidConfig), "{checked:?}");
            }
        }
        (status, status != S::Ok)
    };
    assert!(matches!(status, S::Ok | S::InvalidConfig), "{status:?}");
    assert!(err[len..].iter().all(|&b| b == 0xAA), "wrote past the error buffer");
    if written && len > 0 {
        let message = CStr::from_bytes_until_nul(&err[..len]).expect("NUL-terminated");
        let message = message.to_str().expect("UTF-8 message");
        // the directive's name first, unless the buffer cut the message before its end
        let names = ["ratecore_zone", "ratecore_limit"];
        assert!(
            names
                .iter()
                .any(|n| message.starts_with(n) || n.starts_with(message)),
            "{message:?}"
        );
    }
}

fn check_zone(z: &ratecore_zone_directive) {
    assert!((1..=RATECORE_MAX_TABLE_LIMITS).contains(&z.quota_count));
    assert!(z.size > 0 && z.name.len > 0);
    assert!((1..=RATECORE_MAX_TABLE_CAPACITY).contains(&z.capacity));
    let mut region = 0usize;
    // SAFETY: the quotas are a live array of `quota_count` (<= its length) entries.
    let status = unsafe {
        ratecore_table_region_size(z.quotas.as_ptr(), z.quota_count, z.capacity, z.full_policy, &mut region)
    };
    assert_eq!(status, S::Ok);
    assert_eq!(region, z.region_size, "the region the zone was sized for");
}
