//! `c_abi`: the C ABI (`ratecore-ffi`) called with arbitrary arguments.
//!
//! An input is a sequence of calls to the exported `extern "C"` functions, on an arena
//! of live handles and region buffers: limiters, tables (owned, initialised in a region,
//! attached to one), stats and introspection, status messages, policies (checked with
//! the fixed-identity request and with named attributes, reloaded from text or a file,
//! per-limit metrics with their names copied out, the metrics' text export, memory,
//! overrides set, removed and listed, the repeat-offender report).
//! Every pointer passed is either NULL, misaligned (inside a valid buffer, so a missing
//! check would still not read out of bounds), or valid for exactly the length passed; a
//! length is exact, 0, or above `PTRDIFF_MAX` (rejected before any read). Structs that
//! state their size state it exact, short (rejected) or long (a newer header's).
//!
//! - no panic anywhere (the fuzz harness aborts on any panic, even a caught one), and no
//!   status is `RATECORE_STATUS_PANIC`;
//! - when an argument is bad (NULL, misaligned, too long) the status is one of the
//!   statuses those faults call for, and no output was written;
//! - otherwise the status and outputs are exactly what the Rust API returns for the same
//!   request (a `Limiter`/`Composite`, or a keyed table with at most 8 keys, whose
//!   decisions do not depend on the hash seed; a policy check that would give one of a
//!   policy's limits a ninth key is not made; a reloaded handle is compared with its
//!   mirror reloaded alike), and outputs are written only on success (except what is
//!   documented to be reported on `BUFFER_TOO_SMALL`, and configuration errors' text);
//! - every status has a message.

pub mod args;
mod call;
mod directive;
mod limiter;
mod overrides;
mod policy;
mod reload;
mod render;
mod table;

pub use call::Call;

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::{fmt, ptr};

use arbitrary::Arbitrary;
use ratecore::policy::{Attribute, OnMissing, Policy};
use ratecore::table::OwnedTable;
use ratecore::{Composite, Decision, Limiter};
use ratecore_ffi::{
    ratecore_decision, ratecore_limiter, ratecore_limiter_free, ratecore_policy,
    ratecore_policy_free, ratecore_status, ratecore_status_message, ratecore_table,
    ratecore_table_free, ratecore_version,
};

use crate::region::AlignedBuf;

use self::args::{BufArg, DecisionArg, HandleArg, OutArg, SliceArg};

/// Tables bigger than this are not created (memory, not bugs).
pub const MAX_TABLE_BYTES: usize = 8 << 20;
/// At most this many calls per input.
pub const MAX_OPS: usize = 200;

type S = ratecore_status;

/// A fuzz input.
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct FfiCase {
    /// The calls (the first [`MAX_OPS`]).
    pub calls: Vec<Call>,
}

impl fmt::Debug for FfiCase {
    /// A reproducer: the calls in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// fuzz/c_abi reproducer: the calls, in order")?;
        for call in self.calls.iter().take(MAX_OPS) {
            writeln!(f, "{call:?}")?;
        }
        Ok(())
    }
}

/// The Rust side a handle must agree with.
enum LimiterMirror {
    Single(Limiter),
    Composite(Composite),
}

impl LimiterMirror {
    fn count(&self) -> usize {
        match self {
            Self::Single(_) => 1,
            Self::Composite(c) => c.limits().len(),
        }
    }
}

struct LimiterHandle {
    ptr: *mut ratecore_limiter,
    mirror: LimiterMirror,
}

struct TableHandle {
    ptr: *mut ratecore_table,
    /// Index into `Arena::mirrors`: tables on one region share one mirror.
    mirror: usize,
}

struct Region {
    buf: AlignedBuf,
    /// The mirror of the table initialised in it, if any.
    mirror: Option<usize>,
}

struct PolicyHandle {
    ptr: *mut ratecore_policy,
    mirror: Policy,
    budget: KeyBudget,
}

/// The keys each limit of a policy was checked with, so that no table holds more than 8
/// keys (its decisions then do not depend on its seed, and the mirror's equal the
/// handle's). Counts every checked request's key, whether or not its rule applied.
struct KeyBudget {
    /// Each limit's rule and name.
    names: Vec<(String, String)>,
    /// Each limit's key attributes, and whether a request lacking one still gets a key.
    limits: Vec<(Vec<String>, bool)>,
    /// The keys seen per limit.
    seen: Vec<BTreeSet<Vec<Option<Vec<u8>>>>>,
}

impl KeyBudget {
    fn new(policy: &Policy) -> Self {
        let rules: Vec<_> = policy.rules().collect();
        let names = rules
            .iter()
            .flat_map(|rule| {
                rule.limits
                    .iter()
                    .map(|l| (rule.name.clone(), l.name.clone()))
            })
            .collect();
        let limits: Vec<(Vec<String>, bool)> = rules
            .iter()
            .flat_map(|rule| &rule.limits)
            .map(|limit| (limit.key.clone(), limit.on_missing == OnMissing::Shared))
            .collect();
        let seen = vec![BTreeSet::new(); limits.len()];
        Self {
            names,
            limits,
            seen,
        }
    }

    /// The budget of `policy`, just reloaded from the version this one counts: a limit
    /// of the same rule and name keeps its keys (a reload keeps only the tables of such
    /// limits; counting a fresh table's keys too only makes the budget stricter).
    fn reloaded(&self, policy: &Policy) -> Self {
        let mut next = Self::new(policy);
        for (name, seen) in next.names.iter().zip(&mut next.seen) {
            if let Some(old) = self.names.iter().position(|n| n == name) {
                seen.clone_from(&self.seen[old]);
            }
        }
        next
    }

    /// Records the keys a check of a request with `attributes` gives the limits; false
    /// (recording nothing) if some limit would get a ninth key.
    fn admit(&mut self, attributes: &[Attribute<'_>]) -> bool {
        let keys: Vec<Option<Vec<Option<Vec<u8>>>>> = self
            .limits
            .iter()
            .map(|(names, shared)| {
                let key: Vec<Option<Vec<u8>>> = names
                    .iter()
                    .map(|name| {
                        attributes
                            .iter()
                            .find(|a| a.name == name.as_str())
                            .map(|a| a.value.to_vec())
                    })
                    .collect();
                (*shared || key.iter().all(Option::is_some)).then_some(key)
            })
            .collect();
        let fits = keys.iter().zip(&self.seen).all(|(key, seen)| {
            key.as_ref()
                .is_none_or(|key| seen.len() < 8 || seen.contains(key))
        });
        if fits {
            for (key, seen) in keys.into_iter().zip(&mut self.seen) {
                seen.extend(key);
            }
        }
        fits
    }
}

#[derive(Default)]
struct Arena {
    policies: Vec<PolicyHandle>,
    limiters: Vec<LimiterHandle>,
    tables: Vec<TableHandle>,
    mirrors: Vec<OwnedTable>,
    regions: Vec<Region>,
    /// The last zone directive parsed, with its name's bytes (the struct points there).
    zone: Option<(ratecore_ffi::ratecore_zone_directive, Vec<u8>)>,
}

impl Drop for Arena {
    fn drop(&mut self) {
        for p in self.policies.drain(..) {
            // SAFETY: a live handle from `ratecore_policy_from_toml`, freed once.
            unsafe { ratecore_policy_free(p.ptr) };
        }
        for l in self.limiters.drain(..) {
            // SAFETY: a live handle from `ratecore_limiter_new`, freed once.
            unsafe { ratecore_limiter_free(l.ptr) };
        }
        for t in self.tables.drain(..) {
            // SAFETY: a live handle, freed once, before the regions it may live in.
            unsafe { ratecore_table_free(t.ptr) };
        }
    }
}

/// The statuses argument faults call for (empty: the arguments are fine).
#[derive(Default)]
struct Faults(Vec<S>);

impl Faults {
    fn out(&mut self, out: OutArg) {
        match out {
            OutArg::Valid => {}
            OutArg::Null => self.0.push(S::NullPointer),
            OutArg::Misaligned => self.0.push(S::InvalidArgument),
        }
    }

    /// A slice passed as `arg` with `len` elements (a length of 0 is the empty slice,
    /// whatever the pointer).
    fn slice(&mut self, arg: SliceArg, len: usize, elem_align: usize) {
        if len == 0 {
            return;
        }
        match arg {
            SliceArg::Exact | SliceArg::NullEmpty => {}
            SliceArg::NullWithLen => self.0.push(S::NullPointer),
            SliceArg::Huge => self.0.push(S::InvalidArgument),
            SliceArg::Misaligned if elem_align > 1 => self.0.push(S::InvalidArgument),
            SliceArg::Misaligned => {}
        }
    }

    fn handle(&mut self, arg: HandleArg, live: usize) {
        match arg {
            HandleArg::Live(_) if live > 0 => {}
            HandleArg::Misaligned(_) if live > 0 => self.0.push(S::InvalidArgument),
            _ => self.0.push(S::NullPointer),
        }
    }

    /// Checks `status` against the faults; true if the arguments were fine.
    fn judge(&self, status: S, what: &str) -> bool {
        assert_ne!(status, S::Panic, "{what}: PANIC status");
        if self.0.is_empty() {
            return true;
        }
        assert!(
            self.0.contains(&status),
            "{what}: status {status:?}, faults call for {:?}",
            self.0
        );
        false
    }
}

/// A pointer to `len` `T`s passed as `arg`, into `buf` (which has `len + 1` elements).
fn slice_ptr<T>(buf: &mut [T], arg: SliceArg) -> (*mut T, usize) {
    let len = buf.len() - 1;
    match arg {
        SliceArg::Exact => (buf.as_mut_ptr(), len),
        SliceArg::NullEmpty => (ptr::null_mut(), 0),
        SliceArg::NullWithLen => (ptr::null_mut(), len.max(1)),
        SliceArg::Huge => (
            buf.as_mut_ptr(),
            (isize::MAX as usize / std::mem::size_of::<T>().max(1)) + 1,
        ),
        SliceArg::Misaligned if std::mem::align_of::<T>() > 1 => (
            buf.as_mut_ptr().cast::<u8>().wrapping_add(1).cast::<T>(),
            len,
        ),
        SliceArg::Misaligned => (buf.as_mut_ptr(), len),
    }
}

/// An output pointer into `slot` (two `T`s, so a misaligned one stays inside).
fn out_ptr<T>(slot: &mut [T; 2], arg: OutArg) -> *mut T {
    match arg {
        OutArg::Valid => slot.as_mut_ptr(),
        OutArg::Null => ptr::null_mut(),
        OutArg::Misaligned => slot.as_mut_ptr().cast::<u8>().wrapping_add(1).cast::<T>(),
    }
}

fn c_decision(d: Decision) -> ratecore_decision {
    ratecore_decision {
        allowed: d.allowed,
        limit: d.limit,
        remaining: d.remaining,
        reset_after_ns: d.reset_after,
        retry_after_ns: d.retry_after,
    }
}

const SENTINEL: ratecore_decision = ratecore_decision {
    allowed: true,
    limit: 0x5e57,
    remaining: 0x5e58,
    reset_after_ns: 0x5e59,
    retry_after_ns: 0x5e5a,
};

/// Runs one input.
pub fn run(case: &FfiCase) {
    let mut arena = Arena::default();
    for call in case.calls.iter().take(MAX_OPS) {
        step(&mut arena, call);
    }
}

fn pick<T>(items: &[T], arg: HandleArg) -> Option<(usize, &T)> {
    match arg {
        HandleArg::Live(i) | HandleArg::Misaligned(i) if !items.is_empty() => {
            let index = usize::from(i) % items.len();
            Some((index, &items[index]))
        }
        _ => None,
    }
}

fn handle_ptr<T>(ptr: *mut T, arg: HandleArg) -> *mut T {
    match arg {
        HandleArg::Live(_) => ptr,
        HandleArg::Null => ptr::null_mut(),
        HandleArg::Misaligned(_) => ptr.cast::<u8>().wrapping_add(1).cast::<T>(),
    }
}

/// A `_free` call on the handle `arg` names: a live handle is freed and leaves `items`;
/// a misaligned pointer (documented to be ignored) and NULL are passed as they are.
fn free_call<H, T>(
    items: &mut Vec<H>,
    arg: HandleArg,
    ptr_of: fn(&H) -> *mut T,
    free: unsafe extern "C" fn(*mut T),
) {
    match (pick(items, arg), arg) {
        (Some((index, _)), HandleArg::Live(_)) => {
            let h = items.remove(index);
            // SAFETY: a live handle, freed once.
            unsafe { free(ptr_of(&h)) };
        }
        (Some((_, h)), HandleArg::Misaligned(_)) => {
            // SAFETY: a misaligned pointer is documented to be ignored.
            unsafe { free(handle_ptr(ptr_of(h), arg)) };
        }
        // SAFETY: NULL is accepted.
        _ => unsafe { free(ptr::null_mut()) },
    }
}

/// The policy a call names: its index in the arena (none when no policy is live), the
/// pointer passed for it, and the faults the handle argument calls for.
fn policy_arg(arena: &Arena, handle: HandleArg) -> (Option<usize>, *mut ratecore_policy, Faults) {
    let (target, hp, faults) = handle_arg(&arena.policies, handle, |h| h.ptr);
    (target.map(|(index, _)| index), hp, faults)
}

/// The handle argument `arg` names among `items` (`ptr_of` gives a handle's pointer):
/// the target, the pointer to pass, and the fault the argument is, if any.
fn handle_arg<H, T>(
    items: &[H],
    arg: HandleArg,
    ptr_of: fn(&H) -> *mut T,
) -> (Option<(usize, &H)>, *mut T, Faults) {
    let target = pick(items, arg);
    let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(ptr_of(h), arg));
    let mut faults = Faults::default();
    faults.handle(arg, items.len());
    (target, hp, faults)
}

/// A struct that states its size, with room after it for the fields of a newer header,
/// filled with a pattern: what a call writes past the struct shows in `tail`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Wide<T> {
    value: T,
    tail: [u8; 32],
}

impl<T> Wide<T> {
    const fn new(value: T) -> Self {
        Self {
            value,
            tail: [0xaa; 32],
        }
    }
}

impl<T: PartialEq> Wide<T> {
    /// Whether both hold the same fields (padding aside) and the same tail.
    fn same(&self, other: &Self) -> bool {
        self.value == other.value && self.tail == other.tail
    }
}

/// Judges a constructor's `status` against the faults; on a fault or an error, asserts
/// that no handle was written to `slot` (filled with dangling pointers). True when the
/// arguments were fine.
fn judge_new<T>(faults: &Faults, status: S, what: &str, slot: &[*mut T]) -> bool {
    let fine = faults.judge(status, what);
    if !fine || status != S::Ok {
        assert!(
            slot.iter().all(|p| *p == ptr::dangling_mut()),
            "{what} wrote with {status:?}"
        );
    }
    fine
}

/// An `_each` call's states buffer of `len` entries (and one spare, which no call may
/// write), passed as `arg` says: the buffer, the pointer and length to pass, and how
/// many entries the call may fill (0 for `(NULL, 0)`).
fn states_arg(
    len: u8,
    arg: SliceArg,
    faults: &mut Faults,
) -> (Vec<ratecore_decision>, *mut ratecore_decision, usize, usize) {
    let mut states = vec![SENTINEL; usize::from(len) + 1];
    let (ptr, passed) = slice_ptr(&mut states, arg);
    faults.slice(arg, passed, 8);
    let effective = if arg == SliceArg::NullEmpty {
        0
    } else {
        usize::from(len)
    };
    (states, ptr, passed, effective)
}

/// A successful decide call's decision (`written`) and the quota states it wrote
/// (`states`, as many as the mirror reported) against the mirror's.
fn assert_decided(
    what: &str,
    status: S,
    (written, states): (ratecore_decision, &[ratecore_decision]),
    (decision, each_states): (Decision, &[Decision]),
) {
    assert_eq!(status, S::Ok, "{what}");
    assert_eq!(
        written,
        c_decision(decision),
        "{what}: decision differs from the Rust API"
    );
    let want: Vec<ratecore_decision> = each_states.iter().map(|d| c_decision(*d)).collect();
    assert_eq!(states, &want[..], "{what}: states differ from the Rust API");
}

/// Judges a decide call's `status` against the faults; on a fault or an error, asserts
/// that neither the decision nor any state (`states`: the buffer and its length) was
/// written. True when the arguments were fine.
fn judge_decision(
    faults: &Faults,
    status: S,
    what: &str,
    slot: &[ratecore_decision],
    states: Option<&(Vec<ratecore_decision>, usize)>,
) -> bool {
    let fine = faults.judge(status, what);
    if !fine || status != S::Ok {
        let states = states.map_or(&[][..], |(s, _)| s.as_slice());
        assert_no_decision(status, slot, states);
    }
    fine
}

/// Asserts that a call that failed wrote neither its decision nor any state.
fn assert_no_decision(status: S, slot: &[ratecore_decision], states: &[ratecore_decision]) {
    assert!(
        slot.iter().all(|d| *d == SENTINEL),
        "decision written with {status:?}"
    );
    assert!(
        states.iter().all(|d| *d == SENTINEL),
        "states written with {status:?}"
    );
}

/// A decision pointer: NULL, misaligned, or to `buf[0]`.
fn decision_ptr(
    buf: &mut [ratecore_decision; 2],
    decision: Option<&DecisionArg>,
    faults: &mut Faults,
) -> *const ratecore_decision {
    match decision {
        None => {
            faults.0.push(S::NullPointer);
            ptr::null()
        }
        Some(d) => {
            buf[0] = c_decision(d.decision());
            if d.misaligned {
                faults.0.push(S::InvalidArgument);
                buf.as_ptr().cast::<u8>().wrapping_add(1).cast()
            } else {
                buf.as_ptr()
            }
        }
    }
}

/// An output byte buffer, filled with a pattern so the checks see what the call wrote.
/// Alone, it is a buffer whose length the call reports elsewhere (a policy check's
/// result); [`OutBuf`] adds a `written_out`.
struct OutBytes {
    buf: Vec<u8>,
    untouched: Vec<u8>,
    ptr: *mut u8,
    len: usize,
}

impl OutBytes {
    fn new(arg: &BufArg, faults: &mut Faults) -> Self {
        let mut buf = vec![0xaa_u8; usize::from(arg.len) + 1];
        let untouched = buf.clone();
        let (ptr, len) = slice_ptr(&mut buf, arg.arg);
        faults.slice(arg.arg, len, 1);
        Self {
            buf,
            untouched,
            ptr,
            len,
        }
    }

    fn assert_untouched(&self) {
        assert_eq!(self.buf, self.untouched, "buffer written on failure");
    }
}

/// An output byte buffer and its `written_out`.
struct OutBuf {
    bytes: OutBytes,
    written: [usize; 2],
    written_arg: OutArg,
}

impl OutBuf {
    fn new(arg: &BufArg, faults: &mut Faults) -> Self {
        let bytes = OutBytes::new(arg, faults);
        faults.out(arg.written);
        Self {
            bytes,
            written: [usize::MAX; 2],
            written_arg: arg.written,
        }
    }

    fn written_ptr(&mut self) -> *mut usize {
        out_ptr(&mut self.written, self.written_arg)
    }

    /// `faults.judge` for a call that writes this buffer: when the faults reject the
    /// call, also that it wrote nothing.
    fn judge(&self, faults: &Faults, status: S, what: &str) -> bool {
        let fine = faults.judge(status, what);
        if !fine {
            assert_eq!(self.written, [usize::MAX; 2], "{what}: written_out set");
            self.bytes.assert_untouched();
        }
        fine
    }

    /// Compares with a text report's documented contents: copied whole when it fits,
    /// nothing written past it; else `BUFFER_TOO_SMALL` and the buffer untouched; the
    /// length (needed) reported either way.
    fn compare_text(&self, status: S, text: &[u8]) {
        assert_eq!(self.written, [text.len(), usize::MAX], "len_out");
        if text.len() <= self.bytes.len {
            assert_eq!(status, S::Ok, "text report status");
            assert_eq!(&self.bytes.buf[..text.len()], text, "text report differs");
            assert_eq!(
                self.bytes.buf[text.len()..],
                self.bytes.untouched[text.len()..],
                "wrote past the text"
            );
        } else {
            assert_eq!(status, S::BufferTooSmall, "text report status");
            assert_eq!(
                self.bytes.buf, self.bytes.untouched,
                "text written with BUFFER_TOO_SMALL"
            );
        }
    }

    /// Compares with the Rust renderer on a zeroed buffer of the same size.
    fn compare(
        &self,
        status: S,
        render: impl FnOnce(&mut [u8]) -> Result<usize, ratecore::http::BufferTooSmall>,
    ) {
        let mut want = vec![0u8; self.bytes.len];
        let (expected_status, n) = match render(&mut want) {
            Ok(n) => (S::Ok, n),
            Err(e) => (S::BufferTooSmall, e.needed),
        };
        assert_eq!(status, expected_status, "render status");
        assert_eq!(self.written[0], n, "written_out");
        assert_eq!(
            &self.bytes.buf[..self.bytes.len],
            &want[..],
            "rendered bytes differ from the Rust API"
        );
        assert_eq!(
            self.bytes.buf[self.bytes.len..],
            self.bytes.untouched[self.bytes.len..],
            "wrote past the buffer"
        );
    }
}

/// Makes one call, by the family of handles it is made on.
fn step(arena: &mut Arena, call: &Call) {
    match call {
        Call::LimiterNew { .. }
        | Call::LimiterDecide { .. }
        | Call::LimiterCount { .. }
        | Call::LimiterFree { .. } => limiter::step(arena, call),
        Call::TableNew { .. }
        | Call::InitRegion { .. }
        | Call::AttachRegion { .. }
        | Call::TableDecide { .. }
        | Call::TableUndoable { .. }
        | Call::TableInfo { .. }
        | Call::TableFree { .. } => table::step(arena, call),
        Call::RenderHeaders { .. } | Call::RenderBody { .. } => render::step(call),
        Call::PolicyNew { .. }
        | Call::PolicyDecide { .. }
        | Call::PolicyDecideHttp { .. }
        | Call::PolicyInfo { .. }
        | Call::PolicyRenderMetrics { .. }
        | Call::PolicyFree { .. } => policy::step(arena, call),
        Call::PolicyReload { .. } => reload::step(arena, call),
        Call::PolicySetOverride { .. }
        | Call::PolicyRemoveOverride { .. }
        | Call::PolicyOverrides { .. }
        | Call::PolicyOffenders { .. } => overrides::step(arena, call),
        Call::Message(code) => message(*code),
        Call::Directive { .. } => directive::step(arena, call),
    }
}

/// `ratecore_status_message` and `ratecore_version`: static, non-empty ASCII text.
fn message(code: u32) {
    for code in [code, code % 400] {
        let message = ratecore_status_message(code);
        assert!(!message.is_null());
        // SAFETY: documented to be a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(message) }
            .to_str()
            .expect("UTF-8 message");
        assert!(!text.is_empty() && text.is_ascii(), "message {text:?}");
    }
    let version = ratecore_version();
    assert!(!version.is_null());
    // SAFETY: documented to be a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(version) }.to_str().expect("UTF-8");
    assert!(!version.is_empty());
}
