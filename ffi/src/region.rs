//! Keyed tables in a caller-provided region — an `mmap(MAP_SHARED)` mapping, an nginx
//! shared zone — so that several processes share one table.
//!
//! One process sizes the region (`ratecore_table_region_size`), maps it, and initialises
//! it (`ratecore_table_init_region`); the others attach to it
//! (`ratecore_table_attach_region`), each getting its own handle. The region holds no
//! pointers, so every process may map it at a different address. The header is
//! validated on attach; a foreign or corrupt region is an error, never undefined
//! behaviour.

use std::ffi::c_void;

use ratecore::table::region::{self, LAYOUT_VERSION, REGION_ALIGN};

use crate::ffi::{check_len, create, output};
use crate::panic::guard;
use crate::quota::ratecore_quota;
use crate::status::ratecore_status;
use crate::table::{ratecore_table, table_config, TableInner};

/// The alignment a region must have (bytes). Page-aligned memory (`mmap`) always has it;
/// otherwise use `aligned_alloc(RATECORE_REGION_ALIGN, size)` or an aligned offset.
pub const RATECORE_REGION_ALIGN: usize = 64;

/// The region layout this library reads and writes; regions laid out by another version
/// are refused with `RATECORE_STATUS_UNSUPPORTED_VERSION`.
pub const RATECORE_REGION_LAYOUT_VERSION: u32 = 2;

const _: () = assert!(RATECORE_REGION_ALIGN == REGION_ALIGN);
const _: () = assert!(RATECORE_REGION_LAYOUT_VERSION == LAYOUT_VERSION);

/// The region argument, checked before anything is read or written: non-NULL and at most
/// `PTRDIFF_MAX` bytes (alignment and size are the layout's to check).
fn region_arg(region: *mut c_void, region_len: usize) -> Result<*mut u8, ratecore_status> {
    if region.is_null() {
        return Err(ratecore_status::NullPointer);
    }
    check_len::<u8>(region_len)?;
    Ok(region.cast::<u8>())
}

/// Writes to `*size_out` the bytes a region needs for a table of these quotas, capacity and
/// policy (the same arguments as `ratecore_table_init_region`, which validates them the
/// same way).
///
/// Errors: as for `ratecore_table_new`.
///
/// # Safety
/// `quotas` points to `quotas_len` readable `ratecore_quota` (or is NULL with length 0);
/// `size_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_region_size(
    quotas: *const ratecore_quota,
    quotas_len: usize,
    capacity: u64,
    full_policy: u32,
    size_out: *mut usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(size_out)? };
        // SAFETY: forwarded from this function's contract.
        let config = unsafe { table_config(quotas, quotas_len, capacity, full_policy)? };
        let size = region::region_size(&config)?;
        // A size beyond PTRDIFF_MAX could never be passed back in.
        check_len::<u8>(size).map_err(|_| ratecore_status::BadCapacity)?;
        out.write(size);
        Ok(())
    })
}

/// Initialises a table in the region `region` (`region_len` bytes, at least
/// `ratecore_table_region_size`, aligned to `RATECORE_REGION_ALIGN`), overwriting
/// whatever it held, and stores a handle to it in `*table_out`. The hash seed is random.
/// Other processes then attach with `ratecore_table_attach_region`.
///
/// The handle only borrows the region: `ratecore_table_free` frees the handle, never the
/// region, and the region must stay mapped until every handle on it is freed.
///
/// Errors: as for `ratecore_table_new`, and `NULL_POINTER` (region), `INVALID_ARGUMENT`
/// (`region_len` above `PTRDIFF_MAX`), `REGION_MISALIGNED`, `REGION_TOO_SMALL`.
///
/// # Safety
/// - `region` is valid for reads and writes of `region_len` bytes until every handle on
///   the region (this one, and every handle attached to it, in any process) is freed;
/// - nothing else accesses the region during this call: no live handle on it in any
///   process (re-initialising a region in use is undefined behaviour), and no process
///   attaches before this call returns;
/// - afterwards the region is accessed only through ratecore handles;
/// - `quotas` points to `quotas_len` readable `ratecore_quota` (or is NULL with length 0);
///   `table_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_init_region(
    region: *mut c_void,
    region_len: usize,
    quotas: *const ratecore_quota,
    quotas_len: usize,
    capacity: u64,
    full_policy: u32,
    table_out: *mut *mut ratecore_table,
) -> ratecore_status {
    let build = || {
        let region = region_arg(region, region_len)?;
        // SAFETY: forwarded from this function's contract.
        let config = unsafe { table_config(quotas, quotas_len, capacity, full_policy)? };
        // SAFETY: the region is valid for `region_len` bytes for as long as the returned
        // table lives (the handle; the caller frees it before unmapping), untouched by
        // anything else during init and accessed only through ratecore afterwards: the
        // caller's promise above. `region::init` checks alignment and size itself.
        let table = unsafe { region::init(region, region_len, &config)? };
        Ok(TableInner::Region(table))
    };
    // SAFETY: `table_out` is NULL or valid for one write (caller's promise).
    unsafe { create(table_out, build) }
}

/// Attaches to a table another handle (usually in another process) initialised in
/// `region` (`region_len` bytes), validating its header, and stores a new handle in
/// `*table_out`. The quotas, capacity and policy come from the region
/// (`ratecore_table_limits` reports them). All processes must pass `now_ns` from one
/// system-wide monotonic clock (`CLOCK_MONOTONIC`) and run the same ratecore build.
///
/// The handle only borrows the region, which must stay mapped until the handle is freed.
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT`, `REGION_MISALIGNED`, `REGION_TOO_SMALL`,
/// `NOT_READY` (initialisation not finished: retry later), `BAD_MAGIC`,
/// `UNSUPPORTED_VERSION`, `CORRUPT_HEADER`, `HASH_MISMATCH`, `NOT_LOCK_FREE`.
///
/// # Safety
/// - `region` is valid for reads and writes of `region_len` bytes until the returned
///   handle is freed, and is accessed only through ratecore handles meanwhile;
/// - no `ratecore_table_init_region` on the region runs during this call;
/// - `table_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_attach_region(
    region: *mut c_void,
    region_len: usize,
    table_out: *mut *mut ratecore_table,
) -> ratecore_status {
    // SAFETY: `table_out` is NULL or valid for one write; the region as
    // `ratecore_table_attach_region` requires (caller's promise).
    unsafe { create(table_out, || attached(region, region_len)) }
}

/// The table another handle initialised in `region`, checked.
///
/// # Safety
/// The region as `ratecore_table_attach_region` requires.
unsafe fn attached(region: *mut c_void, len: usize) -> Result<TableInner, ratecore_status> {
    let region = region_arg(region, len)?;
    // SAFETY: the region is valid for `len` bytes while the handle lives and is accessed
    // only through ratecore (caller's promise); `region::attach` validates alignment, size
    // and header before building any view.
    let table = unsafe { region::attach(region, len)? };
    Ok(TableInner::Region(table))
}
