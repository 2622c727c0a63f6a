//! Per-client overrides (set, remove, list) and the repeat-offender report.

use std::ptr;

use ratecore::policy::{OverrideQuota, Policy, PolicyError};
use ratecore_ffi::{
    ratecore_offender_stats, ratecore_override_quota, ratecore_policy_offenders,
    ratecore_policy_overrides, ratecore_policy_remove_override, ratecore_policy_set_override,
};

use crate::gen::Num;
use crate::policy::model;

use super::args::{
    CStrArg, LimitName, OutArg, OverrideArg, QuotaArg, SliceArg, StrHow, ATTR_VALUES,
    OVERRIDE_ATTRIBUTES,
};
use super::call::Call;
use super::reload::assert_error_message;
use super::{handle_arg, out_ptr, policy_arg, slice_ptr, Arena, Faults, OutBuf, Wide, S};

/// Makes one overrides call and checks it against the Rust API.
#[allow(clippy::too_many_lines)]
pub(super) fn step(arena: &mut Arena, call: &Call) {
    match call {
        Call::PolicySetOverride {
            handle,
            which,
            quota,
            error_len,
            error_arg,
        } => {
            let (target, hp, mut faults) = policy_arg(arena, *handle);
            let names = target.map(|index| arena.policies[index].budget.names.as_slice());
            let selector = Selector::new(which, names, &mut faults);
            let (size, short) = quota.size.of::<ratecore_override_quota>();
            if short {
                faults.0.push(S::InvalidArgument);
            }
            faults.out(quota.ptr);
            let wanted = quota.quota();
            if wanted.is_none() {
                faults.0.push(S::InvalidArgument);
            }
            let mut slot = [WideQuota::new(size, quota); 2];
            let qp = out_ptr(&mut slot, quota.ptr).cast::<ratecore_override_quota>();
            let mut ebuf = vec![0xaa_u8; usize::from(*error_len) + 1];
            let untouched = ebuf.clone();
            let (ep, elen) = slice_ptr(&mut ebuf, *error_arg);
            let [rule, limit, attribute] = selector.strs();
            let [(r, rl), (l, ll), (a, al), (v, vl)] = selector.args();
            // SAFETY: every pointer is valid for its length, NULL, or misaligned; a valid
            // quota pointer holds the size it states.
            let status = unsafe {
                ratecore_policy_set_override(hp, r, rl, l, ll, a, al, v, vl, qp, ep.cast(), elen)
            };
            if !faults.judge(status, "policy_set_override") {
                assert_eq!(ebuf, untouched, "error written with an argument fault");
                return;
            }
            let mirror = &arena.policies[target.expect("live")].mirror;
            let result = mirror.set_override(
                &rule.text,
                &limit.text,
                &attribute.text,
                &selector.value_seen,
                wanted.expect("a valid quota"),
            );
            match result {
                Ok(()) => {
                    assert_eq!(status, S::Ok, "policy_set_override");
                    assert_eq!(ebuf, untouched, "error written on success");
                }
                Err(e) => {
                    assert_eq!(status, override_status(&e), "policy_set_override: {e}");
                    assert_error_message(&e.to_string(), &ebuf, &untouched, elen, *error_arg);
                }
            }
        }
        Call::PolicyRemoveOverride { handle, which, out } => {
            let (target, hp, mut faults) = policy_arg(arena, *handle);
            let names = target.map(|index| arena.policies[index].budget.names.as_slice());
            let selector = Selector::new(which, names, &mut faults);
            // A `bool` is byte-aligned: "misaligned" is the next byte, a valid pointer.
            let mut slot = [0xaa_u8; 3];
            let (op, at) = match out {
                OutArg::Valid => (slot.as_mut_ptr().cast::<bool>(), Some(0)),
                OutArg::Misaligned => (slot.as_mut_ptr().wrapping_add(1).cast::<bool>(), Some(1)),
                OutArg::Null => {
                    faults.0.push(S::NullPointer);
                    (ptr::null_mut(), None)
                }
            };
            let [rule, limit, attribute] = selector.strs();
            let [(r, rl), (l, ll), (a, al), (v, vl)] = selector.args();
            // SAFETY: every pointer is valid for its length, NULL, or misaligned;
            // `removed_out` is NULL or points into `slot`.
            let status =
                unsafe { ratecore_policy_remove_override(hp, r, rl, l, ll, a, al, v, vl, op) };
            if !faults.judge(status, "policy_remove_override") {
                assert_eq!(slot, [0xaa; 3], "removed_out written with {status:?}");
                return;
            }
            let mirror = &arena.policies[target.expect("live")].mirror;
            match mirror.remove_override(
                &rule.text,
                &limit.text,
                &attribute.text,
                &selector.value_seen,
            ) {
                Ok(removed) => {
                    assert_eq!(status, S::Ok, "policy_remove_override");
                    let mut want = [0xaa_u8; 3];
                    want[at.expect("valid")] = u8::from(removed);
                    assert_eq!(slot, want, "removed_out");
                }
                Err(e) => {
                    assert_eq!(status, override_status(&e), "policy_remove_override: {e}");
                    assert_eq!(slot, [0xaa; 3], "removed_out written with {status:?}");
                }
            }
        }
        Call::PolicyOverrides { handle, out } => {
            let (target, hp, mut faults) = handle_arg(&arena.policies, *handle, |h| h.ptr);
            let mut o = OutBuf::new(out, &mut faults);
            // SAFETY: a live, NULL or misaligned handle; the buffer and `len_out` as `out`
            // says.
            let status =
                unsafe { ratecore_policy_overrides(hp, o.bytes.ptr, o.bytes.len, o.written_ptr()) };
            if !o.judge(&faults, status, "policy_overrides") {
                return;
            }
            let mirror = &target.expect("live").1.mirror;
            o.compare_text(status, &override_lines(mirror));
        }
        Call::PolicyOffenders {
            handle,
            out,
            stats,
            size,
        } => {
            let (target, hp, mut faults) = handle_arg(&arena.policies, *handle, |h| h.ptr);
            let mut o = OutBuf::new(out, &mut faults);
            faults.out(*stats);
            let (size, short) = size.of::<ratecore_offender_stats>();
            if short {
                faults.0.push(S::InvalidArgument);
            }
            let mut slot = [Wide::new(ratecore_offender_stats { size, ..STATS }); 2];
            let untouched = slot;
            let sp = out_ptr(&mut slot, *stats).cast::<ratecore_offender_stats>();
            // SAFETY: a live, NULL or misaligned handle; the buffer and `len_out` as `out`
            // says; a valid stats pointer holds the size it states.
            let status = unsafe {
                ratecore_policy_offenders(hp, o.bytes.ptr, o.bytes.len, o.written_ptr(), sp)
            };
            if !o.judge(&faults, status, "policy_offenders") {
                assert!(
                    slot.iter().zip(&untouched).all(|(a, b)| a.same(b)),
                    "stats written with {status:?}"
                );
                return;
            }
            let mirror = &target.expect("live").1.mirror;
            let (offenders, want) = mirror.offenders();
            o.compare_text(status, &offender_lines(&offenders));
            // Written on success and with BUFFER_TOO_SMALL alike.
            let got = slot[0].value;
            assert_eq!(
                (got.size, got.evicted, got.unrecorded),
                (
                    std::mem::size_of::<ratecore_offender_stats>(),
                    want.evicted,
                    want.unrecorded
                ),
                "offender stats differ"
            );
            assert_eq!(slot[0].tail, untouched[0].tail, "wrote past the stats");
            assert!(slot[1].same(&untouched[1]), "wrote past the stats");
        }
        _ => unreachable!("not a overrides call: {call:?}"),
    }
}

/// An override's strings and value as passed, and what the library reads of them.
struct Selector {
    rule: CStrArg,
    limit: CStrArg,
    attribute: CStrArg,
    /// The value's bytes (pointed to by `value_ptr`).
    _value: Vec<u8>,
    value_ptr: *const u8,
    value_len: usize,
    /// The value the library reads (meaningful when nothing is at fault).
    value_seen: Vec<u8>,
}

impl Selector {
    /// `names`: the picked policy's limits, by rule and name.
    fn new(arg: &OverrideArg, names: Option<&[(String, String)]>, faults: &mut Faults) -> Self {
        let (rule, limit) = match (&arg.limit, names) {
            (LimitName::Known(i), Some(names)) if !names.is_empty() => {
                let (rule, limit) = &names[usize::from(*i) % names.len()];
                (
                    CStrArg::new(rule, StrHow::Valid),
                    CStrArg::new(limit, StrHow::Valid),
                )
            }
            (LimitName::Known(_), _) => (
                CStrArg::new("api", StrHow::Valid),
                CStrArg::new("per-app", StrHow::Valid),
            ),
            (LimitName::Raw(rule, limit), _) => (
                CStrArg::new(&rule.text, rule.how),
                CStrArg::new(&limit.text, limit.how),
            ),
        };
        let attribute = CStrArg::new(
            OVERRIDE_ATTRIBUTES[usize::from(arg.attribute) % OVERRIDE_ATTRIBUTES.len()],
            arg.attribute_how,
        );
        faults.0.extend(rule.fault);
        faults.0.extend(limit.fault);
        faults.0.extend(attribute.fault);
        let bytes = ATTR_VALUES[usize::from(arg.value) % ATTR_VALUES.len()];
        let mut value = bytes.to_vec();
        value.push(0);
        let (value_ptr, value_len) = slice_ptr(&mut value, arg.value_arg);
        faults.slice(arg.value_arg, value_len, 1);
        let value_seen = match arg.value_arg {
            SliceArg::NullEmpty => Vec::new(),
            _ => bytes.to_vec(),
        };
        Self {
            rule,
            limit,
            attribute,
            _value: value,
            value_ptr,
            value_len,
            value_seen,
        }
    }

    fn strs(&self) -> [&CStrArg; 3] {
        [&self.rule, &self.limit, &self.attribute]
    }

    /// The four strings as the C calls take them: `(pointer, length)` of the rule, the
    /// limit, the attribute and the value.
    fn args(&self) -> [(*const u8, usize); 4] {
        let [rule, limit, attribute] = self.strs();
        [
            (rule.ptr(), rule.len),
            (limit.ptr(), limit.len),
            (attribute.ptr(), attribute.len),
            (self.value_ptr, self.value_len),
        ]
    }
}

/// The status an override change's error calls for.
fn override_status(error: &PolicyError) -> S {
    match error {
        PolicyError::UnknownLimit { .. } => S::UnknownLimit,
        PolicyError::AttributeName(_) | PolicyError::Override { .. } => S::InvalidOverride,
        _ => S::PolicyError,
    }
}

/// A quota as C lays it out, with room for the size it states, and any byte where the
/// `bool` is (so a bad one can be passed without making a Rust `bool` of it).
#[repr(C)]
#[derive(Clone, Copy)]
struct WideQuota {
    size: usize,
    unlimited: u8,
    limit: u64,
    burst: u64,
    tail: [u8; 32],
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(WideQuota, unlimited) == offset_of!(ratecore_override_quota, unlimited));
    assert!(offset_of!(WideQuota, limit) == offset_of!(ratecore_override_quota, limit));
    assert!(offset_of!(WideQuota, burst) == offset_of!(ratecore_override_quota, burst));
    assert!(offset_of!(WideQuota, tail) == size_of::<ratecore_override_quota>());
};

impl WideQuota {
    fn new(size: usize, quota: &QuotaArg) -> Self {
        Self {
            size,
            unlimited: quota.unlimited_byte(),
            limit: quota.limit.get(),
            burst: quota.burst.map_or(0, Num::get),
            tail: [0xaa; 32],
        }
    }
}

/// The pattern an offender stats slot holds before a call (its size set per call).
const STATS: ratecore_offender_stats = ratecore_offender_stats {
    size: 0,
    evicted: 0x5e5e,
    unrecorded: 0x5e5f,
};

/// A text report's field as documented: bytes 0x20 to 0x7e but the backslash as they
/// are, the backslash doubled, any other byte `\xNN`.
fn escaped_field(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out
}

/// A text report's line: the fields escaped, tab-separated, then a newline.
fn text_line(fields: &[&[u8]]) -> Vec<u8> {
    let mut line = fields
        .iter()
        .map(|f| escaped_field(f))
        .collect::<Vec<_>>()
        .join(&b'\t');
    line.push(b'\n');
    line
}

/// `ratecore_policy_overrides`' documented text for the mirror's overrides.
fn override_lines(mirror: &Policy) -> Vec<u8> {
    let mut overrides = mirror.overrides();
    // (rule, limit, attribute, value) is unique: the quota never decides the order.
    overrides.sort_by_key(model::order);
    overrides
        .iter()
        .flat_map(|(rule, limit, o)| {
            let [quota, burst] = quota_fields(o.quota);
            text_line(&[
                rule.as_bytes(),
                limit.as_bytes(),
                o.attribute.as_bytes(),
                &o.value,
                &quota,
                &burst,
            ])
        })
        .collect()
}

/// An override's quota and burst fields as the listing writes them.
fn quota_fields(quota: OverrideQuota) -> [Vec<u8>; 2] {
    match quota {
        OverrideQuota::Limit { limit, burst } => {
            [limit.to_string(), burst.unwrap_or(0).to_string()]
        }
        OverrideQuota::Unlimited => ["unlimited".to_string(), "0".to_string()],
    }
    .map(String::into_bytes)
}

/// `ratecore_policy_offenders`' documented text for the mirror's report.
fn offender_lines(offenders: &[ratecore::policy::Offender]) -> Vec<u8> {
    offenders
        .iter()
        .flat_map(|o| {
            text_line(&[
                o.rule.as_bytes(),
                o.limit.as_bytes(),
                &o.key,
                o.denials.to_string().as_bytes(),
                if o.truncated { b"1" } else { b"0" },
            ])
        })
        .collect()
}
