//! Keyed tables: per-key limits for many keys in memory fixed at creation, owned by the
//! library (`ratecore_table_new`) or living in a caller-provided region (see `region`).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

use ratecore::table::region::{self, RegionTable, REGION_ALIGN};
use ratecore::table::MAX_CAPACITY;
use ratecore::{FullPolicy, LimitSpec, TableConfig, TableStats};

use crate::ffi::{
    create, handle_ref, input_slice, output, output_slice, read_into, release, Castable, Out,
    OutSlice,
};
use crate::panic::guard;
use crate::quota::{quotas_arg, ratecore_decision, ratecore_quota};
use crate::status::ratecore_status;

/// The most quotas one table applies to every key.
pub const RATECORE_MAX_TABLE_LIMITS: usize = 4;

/// The largest table capacity (key slots per quota): 2^32.
pub const RATECORE_MAX_TABLE_CAPACITY: u64 = 4_294_967_296;

const _: () = assert!(RATECORE_MAX_TABLE_LIMITS == ratecore::table::MAX_TABLE_LIMITS);
const _: () = assert!(RATECORE_MAX_TABLE_CAPACITY == MAX_CAPACITY);

/// A fixed-capacity table of per-key limits (per client IP, per account, per API key):
/// every key gets its own state for each of the table's quotas (1 to
/// `RATECORE_MAX_TABLE_LIMITS`, all of which must admit). Keys are byte strings, hashed
/// with a random per-table seed; no key bytes are stored. Memory never grows: when a new
/// key finds its neighbourhood of slots full, the table's `ratecore_full_policy` decides.
///
/// Lock-free and allocation-free after creation.
///
/// Thread safety: a handle may be shared by any number of threads, which may call
/// `ratecore_table_check`, `_peek`, `_check_each`, `_get_stats`, `_capacity`,
/// `_limit_count`, `_limits` and `_full_policy` on it concurrently. Under contention a
/// key's single quota stays exact; several quotas never over-admit, but a race may cost a
/// spurious denial. `ratecore_table_free` must not race any other call on the same handle. A table in a shared region (`ratecore_table_init_region`,
/// `ratecore_table_attach_region`) may also be used by other processes at the same time,
/// each through its own handle; its handle only borrows the region, which must outlive it.
pub struct ratecore_table {
    _private: [u8; 0],
}

/// What a table handle points to.
pub(crate) enum TableInner {
    /// A table in memory this library allocated (and frees with the handle).
    Owned {
        /// The table; declared first, so it is dropped before its memory.
        table: RegionTable<'static>,
        /// The memory it lives in (held for its `Drop`).
        _memory: OwnedRegion,
    },
    /// A caller-provided region, which the C caller keeps alive while the handle lives
    /// (hence `'static` here: the borrow is the caller's promise, not the compiler's).
    Region(RegionTable<'static>),
}

/// Zeroed, `REGION_ALIGN`-aligned heap memory for an owned table.
///
/// Owned tables use the region layout over memory allocated here rather than
/// `Table::new`, whose allocation aborts the process when it fails: a C caller asking for
/// more memory than the system gives gets `RATECORE_STATUS_OUT_OF_MEMORY` instead.
pub(crate) struct OwnedRegion {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the memory is only reached through the table, which accesses it atomically
// (`RegionTable` is `Send + Sync`); `OwnedRegion` itself only frees it, once, on drop.
unsafe impl Send for OwnedRegion {}
// SAFETY: as above; `&OwnedRegion` gives no access to the memory at all.
unsafe impl Sync for OwnedRegion {}

impl OwnedRegion {
    /// `size` zeroed bytes, or `None` if the allocator refuses.
    fn zeroed(size: usize) -> Option<Self> {
        let layout = Layout::from_size_align(size.max(1), REGION_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(Self { ptr, layout })
    }
}

impl Drop for OwnedRegion {
    fn drop(&mut self) {
        // SAFETY: allocated by `alloc_zeroed` with this very layout, freed only here.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A table in memory this library allocates.
fn owned_table(config: &TableConfig) -> Result<TableInner, ratecore_status> {
    let size = region::region_size(config)?;
    let memory = OwnedRegion::zeroed(size).ok_or(ratecore_status::OutOfMemory)?;
    // SAFETY: `memory` is `size` bytes, REGION_ALIGN-aligned, valid for reads and writes
    // until it is dropped, which happens only after the table (field order in
    // `TableInner::Owned`); nothing else ever sees the pointer.
    let table = unsafe { region::init(memory.ptr.as_ptr(), size, config)? };
    Ok(TableInner::Owned {
        table,
        _memory: memory,
    })
}

/// Both handle kinds are shared across threads by C callers.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<TableInner>();
};

impl Castable for ratecore_table {
    type Rust = TableInner;
}

/// Runs the same expression on either kind of table.
impl TableInner {
    pub(crate) fn table(&self) -> &RegionTable<'static> {
        match self {
            Self::Owned { table, .. } | Self::Region(table) => table,
        }
    }

    fn config(&self) -> &TableConfig {
        self.table().config()
    }

    fn stats(&self) -> TableStats {
        self.table().stats()
    }

    pub(crate) fn count(&self) -> usize {
        self.config().limits().count()
    }

    /// Decides, and writes the decision to `out`.
    // Inlined with the table's check, so the write happens in the branch that decided:
    // returning a `Result<Decision, _>` merged the fast and slow paths' decisions in a
    // stack temporary first, then copied it with loads wider than the stores that wrote
    // it (a store-forwarding stall per call; perf on `benches/ffi.rs`).
    #[inline(always)]
    fn decide_into(
        &self,
        key: &[u8],
        now: u64,
        cost: u64,
        commit: bool,
        out: Out<ratecore_decision>,
    ) -> Result<(), ratecore_status> {
        let decision = if commit {
            self.table().check(key, now, cost)
        } else {
            self.table().peek(key, now, cost)
        };
        match decision {
            Ok(decision) => {
                out.write_decision(decision);
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// What a new key does when every slot of its neighbourhood holds an active key (the
/// `full_policy` argument of the table constructors).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ratecore_full_policy {
    /// Evict the key closest to rest (its state soonest carries no information); counted
    /// in `evictions`. A new key is always tracked. The usual choice.
    EvictClosestToRest = 0,
    /// Deny the new key until a slot comes to rest; counted in `full_denied`.
    Deny = 1,
    /// Admit the new key without tracking it; counted in `full_allowed`.
    Allow = 2,
}

const _: () = assert!(
    ratecore_full_policy::EvictClosestToRest as u32 == FullPolicy::EvictClosestToRest as u32
);
const _: () = assert!(ratecore_full_policy::Deny as u32 == FullPolicy::Deny as u32);
const _: () = assert!(ratecore_full_policy::Allow as u32 == FullPolicy::Allow as u32);

/// A snapshot of a table's counters. Each is exact; they are read one after another, so
/// a snapshot taken under load mixes slightly different moments. For a table in a shared
/// region they count every process's activity.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ratecore_table_stats {
    /// Slots holding a key (summed over every quota's slots).
    pub occupied: u64,
    /// Keys that got a slot (new keys, and keys back after their slot was reused).
    pub new_keys: u64,
    /// Slots whose key was at rest (no information) given to another key: lossless.
    pub reclaims: u64,
    /// Slots whose key was still active given to another key (policy
    /// `EVICT_CLOSEST_TO_REST`): that key starts fresh.
    pub evictions: u64,
    /// Times a new key found both its neighbourhoods active and no resident key could
    /// move (whatever the policy did).
    pub full_neighbourhoods: u64,
    /// Requests denied because the neighbourhood was full (policy `DENY`).
    pub full_denied: u64,
    /// Requests admitted untracked because the neighbourhood was full (policy `ALLOW`).
    pub full_allowed: u64,
    /// Requests denied because the key's slot stayed contended past the retry bound.
    pub contended: u64,
    /// Claims abandoned mid-way (e.g. by a crashed process) and taken over.
    pub stale_claims: u64,
    /// Keys moved, state intact, to their other neighbourhood to make room for a new key
    /// whose two neighbourhoods were full: lossless.
    pub relocations: u64,
}

impl From<TableStats> for ratecore_table_stats {
    fn from(stats: TableStats) -> Self {
        Self {
            occupied: stats.occupied,
            new_keys: stats.new_keys,
            reclaims: stats.reclaims,
            evictions: stats.evictions,
            full_neighbourhoods: stats.full_neighbourhoods,
            full_denied: stats.full_denied,
            full_allowed: stats.full_allowed,
            contended: stats.contended,
            stale_claims: stats.stale_claims,
            relocations: stats.relocations,
        }
    }
}

/// Validates a table's arguments into its configuration (random hash seed).
///
/// # Safety
/// `quotas` points to `quotas_len` readable quotas, or is NULL with length 0.
pub(crate) unsafe fn table_config(
    quotas: *const ratecore_quota,
    quotas_len: usize,
    capacity: u64,
    full_policy: u32,
) -> Result<TableConfig, ratecore_status> {
    // SAFETY: forwarded from this function's contract.
    let quotas = unsafe { quotas_arg(quotas, quotas_len, RATECORE_MAX_TABLE_LIMITS)? };
    let policy = FullPolicy::from_code(full_policy).ok_or(ratecore_status::UnknownFullPolicy)?;
    let mut specs = Vec::with_capacity(quotas.len());
    for quota in quotas {
        specs.push(quota.to_spec()?);
    }
    let specs: &[LimitSpec] = &specs;
    Ok(TableConfig::new(capacity, specs)?.with_policy(policy))
}

/// Creates a table in memory it allocates now (all of it: checks never allocate) and
/// stores its handle in `*table_out`. `capacity` is the number of keys per quota, rounded
/// up to a power of two (at least 8); memory is about 16 bytes per key and quota (times
/// `sub_windows + 2` for a strict window). Free the handle with `ratecore_table_free`.
///
/// Errors: `NULL_POINTER`, `NO_LIMITS`, `TOO_MANY_LIMITS`, `UNKNOWN_ALGORITHM`,
/// `UNKNOWN_FULL_POLICY`, `INVALID_ARGUMENT`, the quota errors (100–199), `BAD_CAPACITY`,
/// `OUT_OF_MEMORY`, `NOT_LOCK_FREE`.
///
/// # Safety
/// `quotas` points to `quotas_len` readable `ratecore_quota` (or is NULL with length 0);
/// `table_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_new(
    quotas: *const ratecore_quota,
    quotas_len: usize,
    capacity: u64,
    full_policy: u32,
    table_out: *mut *mut ratecore_table,
) -> ratecore_status {
    let build = || {
        // SAFETY: forwarded from this function's contract.
        owned_table(&unsafe { table_config(quotas, quotas_len, capacity, full_policy)? })
    };
    // SAFETY: `table_out` is NULL or valid for one write (caller's promise).
    unsafe { create(table_out, build) }
}

/// Frees a table handle. NULL is ignored. For a table in a region this frees only the
/// handle: the region and the table in it are untouched (other handles, in this or other
/// processes, keep working).
///
/// # Safety
/// `table` is NULL or a live handle; no other call may use it during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_free(table: *mut ratecore_table) {
    // SAFETY: a live handle nobody else uses any more, or NULL (caller's promise).
    unsafe { release(table) }
}

/// Decides a request of weight `cost` by `key` (`key_len` bytes; `(NULL, 0)` is the empty
/// key) arriving at `now_ns`, against every quota of the table (admitted only if all
/// admit; a denial consumes nothing), and writes the decision to `*decision_out`.
///
/// A denial is a decision, not an error. Errors: `NULL_POINTER`, `INVALID_ARGUMENT`,
/// `COST_EXCEEDS_LIMIT`.
///
/// # Safety
/// `table` is NULL or a live handle; `key` is valid for reading `key_len` bytes (or is
/// NULL with length 0); `decision_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_check(
    table: *const ratecore_table,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { decide(table, key, key_len, now_ns, cost, true, decision_out) }
}

/// The decision `ratecore_table_check` would return, consuming nothing (and never
/// giving the key a slot).
///
/// # Safety
/// As for `ratecore_table_check`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_peek(
    table: *const ratecore_table,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { decide(table, key, key_len, now_ns, cost, false, decision_out) }
}

/// # Safety
/// As for `ratecore_table_check`.
unsafe fn decide(
    table: *const ratecore_table,
    key: *const u8,
    key_len: usize,
    now: u64,
    cost: u64,
    commit: bool,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let table = unsafe { handle_ref(table)? };
        // SAFETY: `key_len` readable bytes, or (NULL, 0) (caller's promise).
        let key = unsafe { input_slice(key, key_len)? };
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(decision_out)? };
        table.decide_into(key, now, cost, commit, out)?;
        Ok(())
    })
}

/// Like `ratecore_table_check`, and also writes the key's state under each quota to
/// `states[0 .. count)` (`count` from `ratecore_table_limit_count`), as
/// `ratecore_limiter_check_each` does.
///
/// Errors: as for `ratecore_table_check`, and `BUFFER_TOO_SMALL` when `states_len` is below
/// the quota count (nothing is checked or written then).
///
/// # Safety
/// As for `ratecore_table_check`; `states` is valid for writing `states_len` decisions (or
/// is NULL with length 0).
#[no_mangle]
#[allow(clippy::too_many_arguments)] // The C signature: inputs, then the two outputs.
pub unsafe extern "C" fn ratecore_table_check_each(
    table: *const ratecore_table,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    states: *mut ratecore_decision,
    states_len: usize,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        decide_each(
            table,
            key,
            key_len,
            now_ns,
            cost,
            true,
            states,
            states_len,
            decision_out,
        )
    }
}

/// What `ratecore_table_check_each` would answer, consuming nothing and never giving the
/// key a slot: the key's exact state under each quota.
///
/// # Safety
/// As for `ratecore_table_check_each`.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // The C signature: inputs, then the two outputs.
pub unsafe extern "C" fn ratecore_table_peek_each(
    table: *const ratecore_table,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    states: *mut ratecore_decision,
    states_len: usize,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        decide_each(
            table,
            key,
            key_len,
            now_ns,
            cost,
            false,
            states,
            states_len,
            decision_out,
        )
    }
}

/// The checked arguments every `_each` call on a table takes besides time and cost.
pub(crate) struct EachCall<'a> {
    pub(crate) table: &'a TableInner,
    pub(crate) key: &'a [u8],
    pub(crate) states: OutSlice<ratecore_decision>,
    pub(crate) out: Out<ratecore_decision>,
}

impl EachCall<'_> {
    /// Checks the arguments in the order the C signatures list them.
    ///
    /// # Safety
    /// As for `ratecore_table_check_each`; the result does not outlive the call.
    pub(crate) unsafe fn new(
        table: *const ratecore_table,
        key: *const u8,
        key_len: usize,
        states: *mut ratecore_decision,
        states_len: usize,
        decision_out: *mut ratecore_decision,
    ) -> Result<Self, ratecore_status> {
        Ok(Self {
            // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
            table: unsafe { handle_ref(table)? },
            // SAFETY: `key_len` readable bytes, or (NULL, 0) (caller's promise).
            key: unsafe { input_slice(key, key_len)? },
            // SAFETY: valid for `states_len` writes during this call, or (NULL, 0).
            states: unsafe { output_slice(states, states_len)? },
            // SAFETY: valid for one write during this call, or NULL (caller's promise).
            out: unsafe { output(decision_out)? },
        })
    }
}

/// # Safety
/// As for `ratecore_table_check_each`.
#[allow(clippy::too_many_arguments)]
unsafe fn decide_each(
    table: *const ratecore_table,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    commit: bool,
    states: *mut ratecore_decision,
    states_len: usize,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let call = unsafe { EachCall::new(table, key, key_len, states, states_len, decision_out) }?;
        let (table, key) = (call.table.table(), call.key);
        let count = call.table.count();
        let decision = call
            .states
            .decide_each::<RATECORE_MAX_TABLE_LIMITS, _>(count, |each| {
                Ok(if commit {
                    table.check_each(key, now_ns, cost, each)?
                } else {
                    table.peek_each(key, now_ns, cost, each)?
                })
            })?;
        call.out.write_decision(decision);
        Ok(())
    })
}

/// Writes a snapshot of the table's counters to `*stats_out`.
///
/// # Safety
/// `table` is NULL or a live handle; `stats_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_get_stats(
    table: *const ratecore_table,
    stats_out: *mut ratecore_table_stats,
) -> ratecore_status {
    // SAFETY: a live handle or NULL; `stats_out` NULL or valid for one write (caller's
    // promise).
    unsafe { read_into(table, stats_out, |table| Ok(table.stats().into())) }
}

/// Writes the table's capacity (key slots per quota: the requested capacity rounded up
/// to a power of two, at least 8) to `*capacity_out`.
///
/// # Safety
/// `table` is NULL or a live handle; `capacity_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_capacity(
    table: *const ratecore_table,
    capacity_out: *mut u64,
) -> ratecore_status {
    // SAFETY: a live handle or NULL; `capacity_out` NULL or valid for one write (caller's
    // promise).
    unsafe { read_into(table, capacity_out, |table| Ok(table.config().capacity())) }
}

/// Writes the table's full-neighbourhood policy (a `RATECORE_FULL_POLICY_*` value) to
/// `*full_policy_out`.
///
/// # Safety
/// `table` is NULL or a live handle; `full_policy_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_full_policy(
    table: *const ratecore_table,
    full_policy_out: *mut u32,
) -> ratecore_status {
    // SAFETY: a live handle or NULL; `full_policy_out` NULL or valid for one write (caller's
    // promise).
    unsafe { read_into(table, full_policy_out, |t| Ok(t.config().policy() as u32)) }
}

/// Writes the number of quotas the table applies per key to `*count_out`.
///
/// # Safety
/// `table` is NULL or a live handle; `count_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_limit_count(
    table: *const ratecore_table,
    count_out: *mut usize,
) -> ratecore_status {
    // SAFETY: a live handle or NULL; `count_out` NULL or valid for one write (caller's
    // promise).
    unsafe { read_into(table, count_out, |table| Ok(table.count())) }
}

/// Writes the table's quotas, in order, to `quotas[0 .. count)` and their number to
/// `*count_out` — e.g. to learn the configuration of a table attached from a region. `burst`
/// is reported as the effective burst (the limit when none was set).
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT`, and `BUFFER_TOO_SMALL` when `quotas_len` is
/// below the count. On `BUFFER_TOO_SMALL`, and only then, `*count_out` still receives the
/// count needed (the quotas are not written).
///
/// # Safety
/// `table` is NULL or a live handle; `quotas` is valid for writing `quotas_len` quotas (or
/// is NULL with length 0); `count_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_limits(
    table: *const ratecore_table,
    quotas: *mut ratecore_quota,
    quotas_len: usize,
    count_out: *mut usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let table = unsafe { handle_ref(table)? };
        // SAFETY: valid for `quotas_len` writes during this call, or (NULL, 0).
        let quotas = unsafe { output_slice(quotas, quotas_len)? };
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(count_out)? };
        let count = table.count();
        out.write(count);
        if quotas.len() < count {
            return Err(ratecore_status::BufferTooSmall);
        }
        quotas.write_all(table.config().limits().map(ratecore_quota::from_spec));
        Ok(())
    })
}
