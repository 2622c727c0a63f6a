//! Policy handles: from TOML, check / peek (fixed identities and named attributes),
//! introspection and per-limit metrics, the metrics export, free.

use std::ffi::{c_char, CStr};
use std::ptr;

use ratecore::policy::{Attribute, Policy, PolicyDecision, Request};
use ratecore_ffi::{
    ratecore_attribute, ratecore_decision, ratecore_http_request, ratecore_limit_metrics,
    ratecore_policy, ratecore_policy_check, ratecore_policy_check_http, ratecore_policy_free,
    ratecore_policy_from_toml, ratecore_policy_limit_count, ratecore_policy_limit_metrics,
    ratecore_policy_memory_bytes, ratecore_policy_outcome, ratecore_policy_peek,
    ratecore_policy_peek_http, ratecore_policy_render_metrics, ratecore_policy_result,
    ratecore_request, RATECORE_MAX_REQUEST_ATTRIBUTES, RATECORE_NO_LIMIT,
};

use super::args::{
    CStrArg, HttpRequestArg, HttpVariation, IdArg, OutArg, SizeArg, SliceArg, StrHow, ATTR_NAMES,
    ATTR_VALUES, IDS, METHODS,
};
use super::call::{Call, PolicyCheck};
use super::reload::assert_error_text;
use super::{
    c_decision, free_call, handle_arg, judge_new, out_ptr, policy_arg, slice_ptr, Arena, Faults,
    KeyBudget, OutBuf, OutBytes, PolicyHandle, Wide, S, SENTINEL,
};

/// The [`Answer`] in a `ratecore_policy_result` or a `ratecore_policy_outcome`, whose
/// fields have the same names.
macro_rules! answer_of {
    ($got:expr) => {{
        let got = $got;
        Answer {
            decision: got.decision,
            limited: got.limited,
            status: got.status,
            headers_len: got.headers_len,
            body_len: got.body_len,
            content_type: got.content_type,
        }
    }};
}

/// Makes one policy call and checks it against the Rust API.
#[allow(clippy::too_many_lines)]
pub(super) fn step(arena: &mut Arena, call: &Call) {
    match call {
        Call::PolicyNew {
            text,
            how,
            origin,
            error_len,
            error_arg,
            out,
        } => {
            let text = text.text();
            if crate::policy::table_bytes(&text) > crate::policy::MAX_TABLE_BYTES {
                return;
            }
            let mut faults = Faults::default();
            let t = CStrArg::new(&text, *how);
            let o = CStrArg::new(&origin.text, origin.how);
            faults.0.extend(t.fault);
            faults.0.extend(o.fault);
            faults.out(*out);
            let mut ebuf = vec![0xaa_u8; usize::from(*error_len) + 1];
            let untouched = ebuf.clone();
            let (ep, elen) = slice_ptr(&mut ebuf, *error_arg);
            let mut slot = [ptr::dangling_mut::<ratecore_policy>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: every pointer is valid for its length, NULL, or misaligned.
            let status = unsafe {
                ratecore_policy_from_toml(t.ptr(), t.len, o.ptr(), o.len, ep.cast(), elen, op)
            };
            let fine = judge_new(&faults, status, "policy_from_toml", &slot);
            if !fine {
                assert_eq!(ebuf, untouched, "error written with an argument fault");
                return;
            }
            let origin = if o.text.is_empty() {
                "<string>"
            } else {
                &o.text
            };
            match Policy::from_toml_str(&t.text, origin) {
                Ok(mirror) => {
                    assert_eq!(status, S::Ok, "policy_from_toml");
                    assert_eq!(ebuf, untouched, "error written on success");
                    arena.policies.push(PolicyHandle {
                        ptr: slot[0],
                        budget: KeyBudget::new(&mirror),
                        mirror,
                    });
                }
                Err(e) => {
                    assert_eq!(status, S::InvalidConfig, "policy_from_toml: {e}");
                    assert_error_text(&e, &ebuf, &untouched, elen, *error_arg);
                }
            }
        }
        Call::PolicyDecide { check, request } => {
            let mut c = Checked::new(arena, check);
            let method = request.as_ref().map(|r| {
                CStrArg::new(METHODS[usize::from(r.method) % METHODS.len()], r.method_how)
            });
            let path = request
                .as_ref()
                .map(|r| CStrArg::new(&r.path.text, r.path.how));
            let id = |arg: IdArg,
                      app: bool,
                      faults: &mut Faults|
             -> (*const u8, usize, Option<&'static [u8]>) {
                match arg {
                    IdArg::Absent => (ptr::null(), 0, None),
                    IdArg::AbsentWithLen => (ptr::null(), 3, None),
                    IdArg::Id(i) => {
                        let bytes = if app { IDS[8] } else { IDS[usize::from(i) % 8] };
                        (bytes.as_ptr(), bytes.len(), Some(bytes))
                    }
                    IdArg::Huge => {
                        faults.0.push(S::InvalidArgument);
                        (IDS[3].as_ptr(), isize::MAX as usize + 1, None)
                    }
                }
            };
            let mut creq = [None::<ratecore_request>; 1];
            let mut ids = [None; 4];
            if let (Some(r), Some(m), Some(p)) = (request, &method, &path) {
                c.faults.0.extend(m.fault);
                c.faults.0.extend(p.fault);
                let (ip, ip_len, ip_id) = id(r.client_ip, false, &mut c.faults);
                let (user, user_len, user_id) = id(r.user, false, &mut c.faults);
                let (app, app_len, app_id) = id(r.app, true, &mut c.faults);
                let (client, client_len, client_id) = id(r.client, false, &mut c.faults);
                ids = [ip_id, user_id, app_id, client_id];
                creq[0] = Some(ratecore_request {
                    method: m.ptr(),
                    method_len: m.len,
                    path: p.ptr(),
                    path_len: p.len,
                    client_ip: ip,
                    client_ip_len: ip_len,
                    user,
                    user_len,
                    app,
                    app_len,
                    client,
                    client_len,
                });
            } else {
                c.faults.0.push(S::NullPointer);
            }
            // The identities are the attributes of the same names (absent: not carried).
            let attributes: Vec<Attribute<'static>> = ["client_ip", "user", "app", "client"]
                .into_iter()
                .zip(ids)
                .filter_map(|(name, value)| Some(Attribute::new(name, value?)))
                .collect();
            let rp: *const ratecore_request =
                creq[0].as_ref().map_or(ptr::null(), |r| r as *const _);
            if c.faults.0.is_empty() && c.commit {
                let h = &mut arena.policies[c.target.expect("live")];
                if !h.budget.admit(&attributes) {
                    return;
                }
            }
            let sentinel = ratecore_policy_result {
                decision: SENTINEL,
                limited: true,
                status: 0xbeef,
                headers_len: usize::MAX,
                body_len: usize::MAX,
                content_type: ptr::null(),
            };
            let mut slot = [sentinel; 2];
            let op = out_ptr(&mut slot, c.out);
            let status = c.call([ratecore_policy_check, ratecore_policy_peek], rp, op);
            let fine = c.faults.judge(status, "policy_decide");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|r| *r == sentinel),
                    "result written with {status:?}"
                );
            }
            let Some(pd) = expected(status, fine, (&c.hbuf, &c.bbuf), || {
                let mirror = &arena.policies[c.target.expect("live")].mirror;
                let (m, p) = (method.expect("request"), path.expect("request"));
                let request = Request::new(&m.text, &p.text, &attributes);
                mirror_decide(mirror, &request, c.now, c.cost, c.commit)
            }) else {
                return;
            };
            let got = slot[0];
            answer_of!(got).compare(&pd, c.unix_now, &c.hbuf, &c.bbuf);
        }
        Call::PolicyDecideHttp {
            check,
            request,
            out_size,
        } => {
            let mut c = Checked::new(arena, check);
            let built = request.as_ref().map(|r| HttpRequest::new(r, &mut c.faults));
            let rp = built.as_ref().map_or(ptr::null(), HttpRequest::ptr);
            if built.is_none() {
                c.faults.0.push(S::NullPointer);
            }
            let (size, short) = out_size.of::<ratecore_policy_outcome>();
            if short {
                c.faults.0.push(S::InvalidArgument);
            }
            if c.faults.0.is_empty() && c.commit {
                let attributes = built.as_ref().expect("request").mirror_attributes();
                let h = &mut arena.policies[c.target.expect("live")];
                if !h.budget.admit(&attributes) {
                    return;
                }
            }
            let mut slot = [WideOutcome::sentinel(size); 2];
            let untouched = slot;
            let op = out_ptr(&mut slot, c.out).cast::<ratecore_policy_outcome>();
            let status = c.call(
                [ratecore_policy_check_http, ratecore_policy_peek_http],
                rp,
                op,
            );
            let fine = c.faults.judge(status, "policy_decide_http");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().zip(&untouched).all(|(a, b)| a.same(b)),
                    "outcome written with {status:?}"
                );
            }
            let Some(pd) = expected(status, fine, (&c.hbuf, &c.bbuf), || {
                let mirror = &arena.policies[c.target.expect("live")].mirror;
                let built = built.as_ref().expect("request");
                let attributes = built.mirror_attributes();
                let request = Request::new(&built.method.text, &built.path.text, &attributes);
                mirror_decide(mirror, &request, c.now, c.cost, c.commit)
            }) else {
                return;
            };
            let got = slot[0].value;
            assert_eq!(got.size, std::mem::size_of::<ratecore_policy_outcome>());
            assert_eq!(slot[0].tail, untouched[0].tail, "wrote past the outcome");
            assert!(slot[1].same(&untouched[1]), "wrote past the outcome");
            let index = |id: Option<usize>| {
                id.map_or(RATECORE_NO_LIMIT, |id| u32::try_from(id).expect("small"))
            };
            assert_eq!(got.deciding_limit, index(pd.deciding().map(|l| l.id)));
            assert_eq!(
                got.shadow_denied_limit,
                index(pd.shadow_denied().map(|(l, _)| l.id))
            );
            assert_eq!(got.missing_key, pd.denied_for_missing_key());
            assert_eq!(got.exempted, pd.exempted_by().is_some());
            answer_of!(got).compare(&pd, c.unix_now, &c.hbuf, &c.bbuf);
        }
        Call::PolicyInfo {
            handle,
            index,
            huge_index,
            size,
            text_len,
            text_arg,
            out,
        } => {
            let (target, hp, mut faults) = handle_arg(&arena.policies, *handle, |h| h.ptr);
            faults.out(*out);
            let mirror = target.map(|(_, h)| &h.mirror);

            let mut count = [usize::MAX; 2];
            // SAFETY: a live, NULL or misaligned handle; the out pointer as `out` says.
            let status = unsafe { ratecore_policy_limit_count(hp, out_ptr(&mut count, *out)) };
            let limits = mirror.map_or(0, |m| m.metrics().count());
            if faults.judge(status, "policy_limit_count") {
                assert_eq!(status, S::Ok);
                assert_eq!(count, [limits, usize::MAX]);
            } else {
                assert_eq!(count, [usize::MAX; 2], "count written with {status:?}");
            }

            let mut bytes = [usize::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_policy_memory_bytes(hp, out_ptr(&mut bytes, *out)) };
            if faults.judge(status, "policy_memory_bytes") {
                assert_eq!(status, S::Ok);
                let want = mirror.expect("live").memory_bytes();
                assert_eq!(bytes, [want, usize::MAX]);
            } else {
                assert_eq!(bytes, [usize::MAX; 2], "memory written with {status:?}");
            }

            let index = if *huge_index {
                usize::MAX - usize::from(*index)
            } else {
                usize::from(*index) % (limits + 2)
            };
            if index >= limits {
                faults.0.push(S::InvalidArgument);
            }
            let (size, short) = size.of::<ratecore_limit_metrics>();
            if short {
                faults.0.push(S::InvalidArgument);
            }
            let mut text = vec![0xaa_u8; usize::from(*text_len) + 1];
            let text_untouched = text.clone();
            let (tp, tlen) = slice_ptr(&mut text, *text_arg);
            faults.slice(*text_arg, tlen, 1);
            let mut slot = [WideMetrics::sentinel(size); 2];
            let untouched = slot;
            let op = out_ptr(&mut slot, *out).cast::<ratecore_limit_metrics>();
            // SAFETY: as above; the text buffer as `text_arg` says; a valid out pointer
            // holds the size it states.
            let status = unsafe { ratecore_policy_limit_metrics(hp, index, tp, tlen, op) };
            if !faults.judge(status, "policy_limit_metrics") {
                assert!(
                    slot.iter().zip(&untouched).all(|(a, b)| a.same(b)),
                    "metrics written with {status:?}"
                );
                assert_eq!(text, text_untouched, "names written with {status:?}");
                return;
            }
            let (limit, metrics) = mirror
                .expect("live")
                .metrics()
                .nth(index)
                .expect("in range");
            // The rule name, then the limit name, when they fit; else nothing.
            let names = [limit.rule.as_bytes(), limit.name.as_bytes()].concat();
            if names.len() > tlen {
                assert_eq!(status, S::BufferTooSmall, "policy_limit_metrics");
                assert_eq!(text, text_untouched, "names written past the capacity");
            } else {
                assert_eq!(status, S::Ok, "policy_limit_metrics");
                assert_eq!(&text[..names.len()], &names[..], "names differ");
                assert_eq!(
                    text[names.len()..],
                    text_untouched[names.len()..],
                    "wrote past the names"
                );
            }
            let got = slot[0].value;
            assert_eq!(got.size, std::mem::size_of::<ratecore_limit_metrics>());
            assert_eq!(slot[0].tail, untouched[0].tail, "wrote past the metrics");
            assert!(slot[1].same(&untouched[1]), "wrote past the metrics");
            assert_eq!(
                (got.rule_len, got.name_len),
                (limit.rule.len(), limit.name.len())
            );
            assert_eq!(got.shadow, limit.shadow);
            assert_eq!(
                (got.allowed, got.denied, got.shadow_denied, got.skipped),
                (
                    metrics.allowed,
                    metrics.denied,
                    metrics.shadow_denied,
                    metrics.skipped
                ),
                "metrics differ"
            );
        }
        Call::PolicyRenderMetrics { handle, out } => {
            let (target, hp, mut faults) = handle_arg(&arena.policies, *handle, |h| h.ptr);
            let mut o = OutBuf::new(out, &mut faults);
            // SAFETY: a live, NULL or misaligned handle; the buffer and `len_out` as `out`
            // says.
            let status = unsafe {
                ratecore_policy_render_metrics(hp, o.bytes.ptr, o.bytes.len, o.written_ptr())
            };
            if !o.judge(&faults, status, "policy_render_metrics") {
                return;
            }
            let mirror = &target.expect("live").1.mirror;
            o.compare(status, |buf| mirror.render_metrics(buf));
        }
        Call::PolicyFree { handle } => free_call(
            &mut arena.policies,
            *handle,
            |h| h.ptr,
            ratecore_policy_free,
        ),
        _ => unreachable!("not a policy call: {call:?}"),
    }
}

/// A request as a caller built against a newer header may pass it: room after the
/// struct for the size it states.
type WideRequest = Wide<ratecore_http_request>;

/// A `ratecore_http_request` as passed, with everything it points to.
struct HttpRequest {
    method: CStrArg,
    path: CStrArg,
    /// The names' bytes (pointed to by `_attributes`).
    _names: Vec<Vec<u8>>,
    /// The attributes, plus one (a misaligned pointer stays inside).
    _attributes: Vec<ratecore_attribute>,
    /// The attributes the library reads, as the Rust API takes them (meaningful when
    /// nothing is at fault).
    seen: Vec<(&'static str, &'static [u8])>,
    wide: Box<WideRequest>,
    misaligned: bool,
}

impl HttpRequest {
    fn new(arg: &HttpRequestArg, faults: &mut Faults) -> Self {
        let variation = arg.variation;
        let method = CStrArg::new(
            METHODS[usize::from(arg.method) % METHODS.len()],
            match variation {
                Some(HttpVariation::Method(how)) => how,
                _ => StrHow::Valid,
            },
        );
        let path = CStrArg::new(
            &arg.path,
            match variation {
                Some(HttpVariation::Path(how)) => how,
                _ => StrHow::Valid,
            },
        );
        faults.0.extend(method.fault);
        faults.0.extend(path.fault);
        let given = arg.attributes.iter().take(16).map(|a| {
            (
                ATTR_NAMES[usize::from(a.name) % ATTR_NAMES.len()],
                ATTR_VALUES[usize::from(a.value) % ATTR_VALUES.len()],
            )
        });
        let filler = std::iter::repeat_n(("x-fill", &b"v"[..]), usize::from(arg.filler % 72));
        let all: Vec<(&'static str, &'static [u8])> = given.chain(filler).collect();
        // The attribute the variation concerns, if any.
        let varied = |which: u8| usize::from(which) % all.len().max(1);
        let target = match variation {
            Some(
                HttpVariation::NullEmptyValue(i)
                | HttpVariation::NullName(i)
                | HttpVariation::InvalidUtf8Name(i)
                | HttpVariation::HugeName(i)
                | HttpVariation::NullValueWithLen(i)
                | HttpVariation::HugeValue(i),
            ) if !all.is_empty() => Some(varied(i)),
            _ => None,
        };
        let names: Vec<Vec<u8>> = all
            .iter()
            .enumerate()
            .map(|(index, (name, _))| {
                let mut bytes = name.as_bytes().to_vec();
                if target == Some(index)
                    && matches!(variation, Some(HttpVariation::InvalidUtf8Name(_)))
                {
                    bytes.push(0xff);
                }
                bytes
            })
            .collect();
        let huge = isize::MAX as usize + 1;
        let mut attributes: Vec<ratecore_attribute> = all
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(index, (&(_, value), name))| {
                let here = if target == Some(index) {
                    variation
                } else {
                    None
                };
                let (name_ptr, name_len) = match here {
                    Some(HttpVariation::NullName(_)) => (ptr::null(), name.len()),
                    Some(HttpVariation::HugeName(_)) => (name.as_ptr(), huge),
                    _ => (name.as_ptr(), name.len()),
                };
                let (value_ptr, value_len) = match here {
                    Some(HttpVariation::NullEmptyValue(_)) => (ptr::null(), 0),
                    Some(HttpVariation::NullValueWithLen(_)) => (ptr::null(), value.len().max(1)),
                    Some(HttpVariation::HugeValue(_)) => (value.as_ptr(), huge),
                    _ => (value.as_ptr(), value.len()),
                };
                ratecore_attribute {
                    name: name_ptr,
                    name_len,
                    value: value_ptr,
                    value_len,
                }
            })
            .collect();
        attributes.push(ratecore_attribute {
            name: ptr::null(),
            name_len: 0,
            value: ptr::null(),
            value_len: 0,
        });
        let attributes_arg = match variation {
            Some(HttpVariation::Attributes(arg)) => arg,
            _ => SliceArg::Exact,
        };
        let (attributes_ptr, count) = slice_ptr(&mut attributes, attributes_arg);
        if count > RATECORE_MAX_REQUEST_ATTRIBUTES {
            faults.0.push(S::InvalidArgument);
        }
        faults.slice(attributes_arg, count, 8);
        // The library reads the attributes only when they are passed with their count.
        let read = matches!(attributes_arg, SliceArg::Exact | SliceArg::Misaligned);
        let mut seen = Vec::new();
        if read {
            for (index, &(name, value)) in all.iter().enumerate() {
                match (target == Some(index)).then_some(variation).flatten() {
                    Some(HttpVariation::NullEmptyValue(_)) => seen.push((name, &b""[..])),
                    Some(HttpVariation::NullName(_) | HttpVariation::NullValueWithLen(_)) => {
                        faults.0.push(S::NullPointer);
                    }
                    Some(HttpVariation::HugeName(_) | HttpVariation::HugeValue(_)) => {
                        faults.0.push(S::InvalidArgument);
                    }
                    Some(HttpVariation::InvalidUtf8Name(_)) => faults.0.push(S::InvalidUtf8),
                    _ => seen.push((name, value)),
                }
            }
        }
        let size = match variation {
            Some(HttpVariation::ShortSize(n)) => SizeArg::Short(n),
            Some(HttpVariation::LongerSize(n)) => SizeArg::Longer(n),
            _ => SizeArg::Exact,
        };
        let (size, short) = size.of::<ratecore_http_request>();
        let misaligned = variation == Some(HttpVariation::Misaligned);
        if short || misaligned {
            faults.0.push(S::InvalidArgument);
        }
        let wide = Box::new(WideRequest::new(ratecore_http_request {
            size,
            method: method.ptr(),
            method_len: method.len,
            path: path.ptr(),
            path_len: path.len,
            attributes: attributes_ptr.cast_const(),
            attribute_count: count,
        }));
        Self {
            method,
            path,
            _names: names,
            _attributes: attributes,
            seen,
            wide,
            misaligned,
        }
    }

    fn ptr(&self) -> *const ratecore_http_request {
        let request = &self.wide.value as *const ratecore_http_request;
        if self.misaligned {
            request.cast::<u8>().wrapping_add(1).cast()
        } else {
            request
        }
    }

    fn mirror_attributes(&self) -> Vec<Attribute<'static>> {
        self.seen
            .iter()
            .map(|&(name, value)| Attribute::new(name, value))
            .collect()
    }
}

/// An outcome slot with room for the size it states, filled with a pattern.
type WideOutcome = Wide<ratecore_policy_outcome>;

impl Wide<ratecore_policy_outcome> {
    fn sentinel(size: usize) -> Self {
        Self::new(ratecore_policy_outcome {
            size,
            decision: SENTINEL,
            limited: true,
            status: 0xbeef,
            headers_len: usize::MAX,
            body_len: usize::MAX,
            content_type: ptr::null(),
            deciding_limit: 0x5e5e,
            missing_key: true,
            shadow_denied_limit: 0x5e5f,
            exempted: true,
        })
    }
}

/// A metrics slot with room for the size it states, filled with a pattern.
type WideMetrics = Wide<ratecore_limit_metrics>;

impl Wide<ratecore_limit_metrics> {
    fn sentinel(size: usize) -> Self {
        Self::new(ratecore_limit_metrics {
            size,
            rule_len: usize::MAX,
            name_len: usize::MAX,
            shadow: true,
            allowed: 0x5e5e,
            denied: 0x5e5f,
            shadow_denied: 0x5e60,
            skipped: 0x5e61,
        })
    }
}

/// The arguments every policy check step prepares alike.
struct Checked {
    now: u64,
    cost: u64,
    unix_now: u64,
    commit: bool,
    out: OutArg,
    /// The target policy's index (`None`: NULL, or no live policy).
    target: Option<usize>,
    /// The handle pointer passed.
    hp: *mut ratecore_policy,
    /// The argument faults so far.
    faults: Faults,
    hbuf: OutBytes,
    bbuf: OutBytes,
}

impl Checked {
    fn new(arena: &Arena, check: &PolicyCheck) -> Self {
        let (target, hp, mut faults) = policy_arg(arena, check.handle);
        let hbuf = OutBytes::new(&check.headers, &mut faults);
        let bbuf = OutBytes::new(&check.body, &mut faults);
        faults.out(check.out);
        Self {
            now: check.now.get(),
            cost: u64::from(check.cost % 4),
            unix_now: check.unix_now.get(),
            commit: check.commit,
            out: check.out,
            target,
            hp,
            faults,
            hbuf,
            bbuf,
        }
    }
}

/// `ratecore_policy_check` and its kin: the same arguments but the request's and the
/// output's types.
type CheckFn<R, O> = unsafe extern "C" fn(
    *const ratecore_policy,
    *const R,
    u64,
    u64,
    u64,
    *mut u8,
    usize,
    *mut u8,
    usize,
    *mut O,
) -> S;

impl Checked {
    /// Calls `check` (or `peek`, without commit) with the prepared arguments, `request`
    /// and `out`.
    fn call<R, O>(&self, [check, peek]: [CheckFn<R, O>; 2], request: *const R, out: *mut O) -> S {
        let f = if self.commit { check } else { peek };
        let (hp, hlen, bp, blen) = (self.hbuf.ptr, self.hbuf.len, self.bbuf.ptr, self.bbuf.len);
        // SAFETY: every pointer is valid for its length (a request and an output for the
        // size they state), NULL, or misaligned inside a live buffer.
        unsafe {
            f(
                self.hp,
                request,
                self.now,
                self.cost,
                self.unix_now,
                hp,
                hlen,
                bp,
                blen,
                out,
            )
        }
    }
}

/// Checks (or peeks) on the mirror, as the C ABI did.
fn mirror_decide<'p>(
    mirror: &'p Policy,
    request: &Request<'_>,
    now: u64,
    cost: u64,
    commit: bool,
) -> Result<PolicyDecision<'p>, ratecore::CheckError> {
    if commit {
        mirror.check(request, now, cost)
    } else {
        mirror.peek(request, now, cost)
    }
}

/// The mirror's decision for a policy check the C ABI answered with `status` (`fine`:
/// the argument faults accounted for it). `None` when the check ended there, a fault or
/// the error the mirror also gives, after asserting that neither buffer was touched.
/// `decide` runs only for fine arguments, so it may take the target handle as live.
fn expected<'p, E>(
    status: S,
    fine: bool,
    (headers, body): (&OutBytes, &OutBytes),
    decide: impl FnOnce() -> Result<PolicyDecision<'p>, E>,
) -> Option<PolicyDecision<'p>>
where
    S: From<E>,
{
    if fine {
        match decide() {
            Ok(pd) => {
                assert_eq!(status, S::Ok);
                return Some(pd);
            }
            Err(e) => assert_eq!(status, S::from(e)),
        }
    }
    headers.assert_untouched();
    body.assert_untouched();
    None
}

/// What a policy check reports: the decision and the answer rendered beside it.
struct Answer {
    decision: ratecore_decision,
    limited: bool,
    status: u16,
    headers_len: usize,
    body_len: usize,
    content_type: *const c_char,
}

impl Answer {
    /// Compares with the Rust API's decision `pd` and its rendering into zeroed buffers
    /// of the same sizes.
    fn compare(&self, pd: &PolicyDecision<'_>, unix_now: u64, headers: &OutBytes, body: &OutBytes) {
        assert_eq!(
            self.decision,
            c_decision(*pd.decision()),
            "policy decision differs"
        );
        assert_eq!(self.limited, pd.limited());
        let mut want = vec![0u8; headers.len];
        let n = pd
            .render_headers(unix_now, &mut want)
            .unwrap_or_else(|e| e.needed);
        assert_eq!(self.headers_len, n);
        assert_eq!(&headers.buf[..headers.len], &want[..], "headers differ");
        assert_eq!(headers.buf[headers.len..], headers.untouched[headers.len..]);
        if pd.allowed() {
            assert_eq!((self.status, self.body_len), (200, 0));
            assert!(self.content_type.is_null());
            body.assert_untouched();
        } else {
            assert_eq!(self.status, pd.denial_status());
            let mut want = vec![0u8; body.len];
            let n = pd.render_body(&mut want).unwrap_or_else(|e| e.needed);
            assert_eq!(self.body_len, n);
            assert_eq!(&body.buf[..body.len], &want[..], "body differs");
            assert_eq!(body.buf[body.len..], body.untouched[body.len..]);
            assert!(!self.content_type.is_null());
            // SAFETY: documented to be a static NUL-terminated string.
            let ct = unsafe { CStr::from_ptr(self.content_type) };
            assert_eq!(ct.to_str().ok(), Some(pd.content_type()));
        }
    }
}
