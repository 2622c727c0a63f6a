//! Pointer and length checks every exported function uses, the one typed cast between
//! an opaque C handle and the Rust value behind it (after rustls-ffi's `Castable`), and
//! the bodies every constructor, `_free` function and getter shares (`create`,
//! `release`, `read_into`).
//!
//! Checks happen before any work, so a rejected call has no effect. What cannot be checked
//! (that a non-NULL pointer really points to live memory of the right type) is the C
//! caller's promise, spelled out in each function's `# Safety` section.

use std::mem::size_of;
use std::ptr::NonNull;

use ratecore::Decision;

use crate::panic::{boundary, guard};
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;

/// Ties an opaque C handle type (`ratecore_limiter`) to the Rust value a handle points to.
pub(crate) trait Castable {
    /// The value behind the handle.
    type Rust;
}

/// Moves `value` to the heap and returns it as a handle for C.
pub(crate) fn into_handle<C: Castable>(value: C::Rust) -> *mut C {
    Box::into_raw(Box::new(value)).cast::<C>()
}

/// Borrows the value behind a handle.
///
/// # Errors
/// `NullPointer` for NULL, `InvalidArgument` for a pointer not aligned for the value.
///
/// # Safety
/// A non-NULL `handle` was returned by [`into_handle`] for this `C`, is not freed during
/// `'a`, and is only read (never freed) by others during `'a`.
pub(crate) unsafe fn handle_ref<'a, C: Castable>(
    handle: *const C,
) -> Result<&'a C::Rust, ratecore_status> {
    let ptr = handle.cast::<C::Rust>();
    check_pointer(ptr)?;
    // SAFETY: non-NULL and aligned (checked above); by the caller's promise it points to a
    // live `C::Rust` boxed by `into_handle`, which nobody frees or mutates during 'a.
    Ok(unsafe { &*ptr })
}

/// Frees a handle; NULL (and a misaligned pointer, which no handle can be) is ignored.
///
/// # Safety
/// A non-NULL `handle` was returned by [`into_handle`] for this `C`, has not been freed,
/// and no other call uses it during or after this one.
pub(crate) unsafe fn free_handle<C: Castable>(handle: *mut C) {
    let ptr = handle.cast::<C::Rust>();
    if ptr.is_null() || !ptr.is_aligned() {
        return;
    }
    // SAFETY: by the caller's promise `ptr` came from `Box::into_raw` in `into_handle` for
    // this very type, is still live, and is used by nobody else: we own it again.
    drop(unsafe { Box::from_raw(ptr) });
}

/// The body of every constructor: checks `handle_out`, then builds the value and hands its
/// handle out. Checking the output first means a rejected call builds nothing.
///
/// # Safety
/// `handle_out` is NULL or valid for writing one pointer during the call.
pub(crate) unsafe fn create<C: Castable>(
    handle_out: *mut *mut C,
    build: impl FnOnce() -> Result<C::Rust, ratecore_status>,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { output(handle_out)? };
        out.write(into_handle::<C>(build()?));
        Ok(())
    })
}

/// The body of every `_free` function: [`free_handle`] inside the panic boundary.
///
/// # Safety
/// As for [`free_handle`].
pub(crate) unsafe fn release<C: Castable>(handle: *mut C) {
    boundary((), || {
        // SAFETY: forwarded from this function's contract.
        unsafe { free_handle(handle) }
    });
}

/// The body of a call on a handle: inside the panic boundary, borrows the value behind
/// `handle` and runs `body` on it.
///
/// # Safety
/// `handle` is NULL or a live handle (as for [`handle_ref`]) not freed during the call.
pub(crate) unsafe fn with_handle<C: Castable>(
    handle: *const C,
    body: impl FnOnce(&C::Rust) -> Result<(), ratecore_status>,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        body(unsafe { handle_ref(handle)? })
    })
}

/// The body of every getter: borrows the value behind `handle` and writes what `read`
/// makes of it to `*value_out` (nothing on an error).
///
/// # Safety
/// `handle` is NULL or a live handle (as for [`handle_ref`]) not freed during the call;
/// `value_out` is NULL or valid for one write during the call.
pub(crate) unsafe fn read_into<C: Castable, T>(
    handle: *const C,
    value_out: *mut T,
    read: impl FnOnce(&C::Rust) -> Result<T, ratecore_status>,
) -> ratecore_status {
    let read_out = |value: &C::Rust| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { output(value_out)? };
        out.write(read(value)?);
        Ok(())
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { with_handle(handle, read_out) }
}

/// NULL → `NullPointer`; misaligned for `T` → `InvalidArgument`.
fn check_pointer<T>(ptr: *const T) -> Result<(), ratecore_status> {
    if ptr.is_null() {
        Err(ratecore_status::NullPointer)
    } else if !ptr.is_aligned() {
        Err(ratecore_status::InvalidArgument)
    } else {
        Ok(())
    }
}

/// A count of `T` whose total size stays within `isize::MAX` bytes, as
/// `slice::from_raw_parts` requires.
pub(crate) fn check_len<T>(len: usize) -> Result<(), ratecore_status> {
    let max = isize::MAX.unsigned_abs() / size_of::<T>().max(1);
    if len > max {
        Err(ratecore_status::InvalidArgument)
    } else {
        Ok(())
    }
}

/// An input array `(ptr, len)`. `(NULL, 0)` — or any pointer with length 0 — is empty.
///
/// # Errors
/// `NullPointer` for NULL with `len > 0`; `InvalidArgument` for a length above
/// `isize::MAX` bytes or a pointer misaligned for `T`.
///
/// # Safety
/// When `len > 0`, `ptr` is valid for reads of `len` initialised `T` during `'a`, and
/// nobody writes them during `'a`.
pub(crate) unsafe fn input_slice<'a, T>(
    ptr: *const T,
    len: usize,
) -> Result<&'a [T], ratecore_status> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(ratecore_status::NullPointer);
    }
    check_len::<T>(len)?;
    check_pointer(ptr)?;
    // SAFETY: non-NULL, aligned, at most isize::MAX bytes (checked above); valid for `len`
    // initialised reads and not written during 'a (caller's promise).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Checks a pointer to a struct that may grow, whose first field is its size in bytes as
/// the caller compiled it, and that size: at least `size_of::<T>()`.
///
/// # Errors
/// As for [`check_pointer`] for `T`; `InvalidArgument` for a smaller size.
///
/// # Safety
/// A non-NULL, aligned `ptr` is valid for reading its first `usize`, which the caller
/// initialised.
unsafe fn check_sized<T>(ptr: *const T) -> Result<(), ratecore_status> {
    // SAFETY: forwarded from this function's contract.
    unsafe { stated_size(ptr, size_of::<T>()) }.map(|_| ())
}

/// The size a struct that may grow states in its first field, checked to be at least
/// `min` bytes.
///
/// # Errors
/// As for [`check_pointer`] for `T`; `InvalidArgument` for a size below `min`.
///
/// # Safety
/// A non-NULL, aligned `ptr` is valid for reading its first `usize`, which the caller
/// initialised.
unsafe fn stated_size<T>(ptr: *const T, min: usize) -> Result<usize, ratecore_status> {
    // Reading the size as a `usize` needs the struct's alignment to cover one.
    const { assert!(std::mem::align_of::<T>() >= std::mem::align_of::<usize>()) };
    check_pointer(ptr)?;
    // SAFETY: non-NULL and aligned for `T`, hence for `usize` (checked above); the first
    // field is the caller-initialised size (caller's promise).
    let size = unsafe { ptr.cast::<usize>().read() };
    if size < min {
        return Err(ratecore_status::InvalidArgument);
    }
    Ok(size)
}

/// An input pointer to one `T`.
///
/// # Errors
/// As for [`check_pointer`].
///
/// # Safety
/// A non-NULL `ptr` is valid for reads of one initialised `T` during `'a`, and nobody
/// writes it during `'a`.
pub(crate) unsafe fn input_ref<'a, T>(ptr: *const T) -> Result<&'a T, ratecore_status> {
    check_pointer(ptr)?;
    // SAFETY: non-NULL and aligned (checked above); valid for one initialised read and
    // not written during 'a (caller's promise).
    Ok(unsafe { &*ptr })
}

/// Reads an input struct that may grow: its first field is its size in bytes as the
/// caller compiled it. A size below `size_of::<T>()` is rejected; a larger one (a caller
/// built against a newer header) is accepted, and only the fields this library knows are
/// read.
///
/// # Errors
/// `NullPointer` for NULL; `InvalidArgument` for a misaligned pointer or a short size.
///
/// # Safety
/// A non-NULL `ptr` is valid for reads of the size its first field states, all of it
/// initialised, and nobody writes it during the call.
pub(crate) unsafe fn sized_input<T: Copy>(ptr: *const T) -> Result<T, ratecore_status> {
    // SAFETY: forwarded from this function's contract.
    unsafe { check_sized(ptr) }?;
    // SAFETY: non-NULL and aligned (checked), and by the caller's promise valid for reads
    // of the size it stated, checked to be at least `size_of::<T>()` initialised bytes.
    // `T` is plain C data: every bit pattern is a value.
    Ok(unsafe { ptr.read() })
}

/// Checks an output struct that may grow: its first field, set by the caller, is its size
/// in bytes as the caller compiled it. A size below `size_of::<T>()` is rejected because
/// the whole `T` is written; a struct that grows must instead keep accepting its first
/// version's size and write only the bytes the caller's size covers
/// ([`versioned_output`]).
///
/// # Errors
/// As for [`output`]; `InvalidArgument` for a short size.
///
/// # Safety
/// As for [`output`], and a non-NULL `ptr` holds its caller-initialised size in its first
/// field.
pub(crate) unsafe fn sized_output<T>(ptr: *mut T) -> Result<Out<T>, ratecore_status> {
    // SAFETY: forwarded from this function's contract.
    unsafe { check_sized(ptr.cast_const()) }?;
    // SAFETY: forwarded from this function's contract.
    unsafe { output(ptr) }
}

/// Checks an output struct that has grown since its first version: its first field, set
/// by the caller, is its size in bytes as the caller compiled it. `versions` are the
/// struct's sizes in each version, ascending, the last `size_of::<T>()`. A size below the
/// first version's is rejected; otherwise the largest version the size covers is the one
/// written, so a caller built against an older header gets exactly the fields it knows.
///
/// # Errors
/// As for [`output`]; `InvalidArgument` for a size below the first version's.
///
/// # Safety
/// As for [`output`], and a non-NULL `ptr` holds its caller-initialised size in its first
/// field and is valid for writes of that many bytes.
pub(crate) unsafe fn versioned_output<T>(
    ptr: *mut T,
    versions: &[usize],
) -> Result<VersionedOut<T>, ratecore_status> {
    let first = versions.first().copied().unwrap_or(size_of::<T>());
    // SAFETY: forwarded from this function's contract.
    let size = unsafe { stated_size(ptr.cast_const(), first) }?;
    let bytes = versions
        .iter()
        .copied()
        .filter(|&v| v <= size && v <= size_of::<T>())
        .max()
        .ok_or(ratecore_status::InvalidArgument)?;
    let ptr = NonNull::new(ptr).ok_or(ratecore_status::NullPointer)?;
    Ok(VersionedOut { ptr, bytes })
}

/// A checked output struct of some version: written once, and only on success.
pub(crate) struct VersionedOut<T> {
    ptr: NonNull<T>,
    /// The bytes of the version written.
    bytes: usize,
}

impl<T> VersionedOut<T> {
    /// The size of the version written: the value for the struct's `size` field.
    pub(crate) const fn bytes(&self) -> usize {
        self.bytes
    }

    /// Writes the first [`bytes`](Self::bytes) bytes of `value` (whose `size` field the
    /// caller set to that).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `versioned_output`'s caller promised the struct is valid for writes of
        // the size it states, which `bytes` does not exceed, nor does it exceed
        // `size_of::<T>()`, so the read stays inside `value`; the two do not overlap.
        // An untyped byte copy: any padding is copied as it is.
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::from_ref::<T>(&value).cast::<u8>(),
                self.ptr.as_ptr().cast::<u8>(),
                self.bytes,
            );
        }
    }
}

/// A checked output pointer: written once, and only on success.
pub(crate) struct Out<T>(NonNull<T>);

/// Checks an output pointer.
///
/// # Errors
/// As for [`check_pointer`].
///
/// # Safety
/// A non-NULL `ptr` is valid for writes of one `T` (its old contents need not be
/// initialised) until the exported function returns; the returned [`Out`] must not
/// outlive that call.
pub(crate) unsafe fn output<T>(ptr: *mut T) -> Result<Out<T>, ratecore_status> {
    check_pointer(ptr)?;
    NonNull::new(ptr)
        .map(Out)
        .ok_or(ratecore_status::NullPointer)
}

impl<T> Out<T> {
    /// The checked pointer, for an output written field by field (each write needs its
    /// own `// SAFETY:` argument: valid for one `T`'s writes during the exported call).
    pub(crate) const fn as_ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    /// Writes the output (without reading or dropping the old contents).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `output`'s caller promised the pointer is valid for one write during the
        // call this `Out` lives in; it is non-NULL and aligned (checked).
        unsafe { self.0.as_ptr().write(value) }
    }
}

impl Out<ratecore_decision> {
    /// Writes a decision field by field.
    ///
    /// Why not `write(decision.into())`: where the decision was assembled in a stack slot
    /// (the result of a `match` over algorithms), LLVM copied it out with 16-byte loads
    /// of fields just stored 8 bytes at a time, which cannot be store-forwarded and stalled
    /// each check by several ns (perf on `benches/ffi.rs`'s C loop). Volatile stores keep
    /// the copy field-sized; they cost nothing more than the plain stores they replace.
    #[inline(always)]
    pub(crate) fn write_decision(self, decision: Decision) {
        // Destructured, so a field added to `ratecore_decision` fails to compile here
        // rather than going unwritten.
        let ratecore_decision {
            allowed,
            limit,
            remaining,
            reset_after_ns,
            retry_after_ns,
        } = decision.into();
        let out = self.0.as_ptr();
        // SAFETY: as in `write`: valid and aligned for one `ratecore_decision`, written
        // only here during this call; each field pointer stays inside it.
        unsafe {
            std::ptr::addr_of_mut!((*out).allowed).write_volatile(allowed);
            std::ptr::addr_of_mut!((*out).limit).write_volatile(limit);
            std::ptr::addr_of_mut!((*out).remaining).write_volatile(remaining);
            std::ptr::addr_of_mut!((*out).reset_after_ns).write_volatile(reset_after_ns);
            std::ptr::addr_of_mut!((*out).retry_after_ns).write_volatile(retry_after_ns);
        }
    }
}

/// A checked output array `(ptr, len)`; `(NULL, 0)` is an empty buffer.
pub(crate) struct OutSlice<T> {
    ptr: *mut T,
    len: usize,
}

/// Checks an output array.
///
/// # Errors
/// As for [`input_slice`].
///
/// # Safety
/// When `len > 0`, `ptr` is valid for writes of `len` `T` (old contents need not be
/// initialised) until the exported function returns; the returned [`OutSlice`] must not
/// outlive that call.
pub(crate) unsafe fn output_slice<T>(
    ptr: *mut T,
    len: usize,
) -> Result<OutSlice<T>, ratecore_status> {
    if len == 0 {
        return Ok(OutSlice {
            ptr: std::ptr::null_mut(),
            len: 0,
        });
    }
    if ptr.is_null() {
        return Err(ratecore_status::NullPointer);
    }
    check_len::<T>(len)?;
    check_pointer(ptr)?;
    Ok(OutSlice { ptr, len })
}

impl<T> OutSlice<T> {
    /// Elements the buffer holds.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// Writes `values` to the first `values.len()` elements (no more than the buffer holds).
    pub(crate) fn write_all(self, values: impl IntoIterator<Item = T>) {
        for (index, value) in values.into_iter().take(self.len).enumerate() {
            // SAFETY: index < len, and `output_slice`'s caller promised `len` writable,
            // aligned elements at the non-NULL `ptr` during this call.
            unsafe { self.ptr.add(index).write(value) }
        }
    }
}

impl OutSlice<ratecore_decision> {
    /// The core of every `_check_each` call: runs `decide` over one state per quota
    /// (`count` of them, at most `N`, the most quotas the caller's kind holds) and writes
    /// them here. A buffer holding fewer than `count` is `BufferTooSmall`, and nothing is
    /// decided or written then.
    #[inline(always)]
    pub(crate) fn decide_each<const N: usize, R>(
        self,
        count: usize,
        decide: impl FnOnce(&mut [Decision]) -> Result<R, ratecore_status>,
    ) -> Result<R, ratecore_status> {
        if self.len < count {
            return Err(ratecore_status::BufferTooSmall);
        }
        let mut each = [Decision::EMPTY; N];
        let each = &mut each[..count.min(N)];
        let result = decide(each)?;
        self.write_all(each.iter().map(|d| ratecore_decision::from(*d)));
        Ok(result)
    }
}

impl OutSlice<u8> {
    /// Where the buffer starts (NULL for an empty one), for pointers into it handed back
    /// to the caller.
    pub(crate) const fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The buffer as a byte slice for writers that fill it in place. Zeroed first: the C
    /// caller's buffer need not be initialised, and a Rust `&mut [u8]` must be.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: `output_slice`'s caller promised `len` writable, aligned bytes at the
        // non-NULL `ptr` during this call; zeroing initialises them, and no other
        // reference to them exists while the returned slice lives (it borrows `self`,
        // which is used once per exported call).
        unsafe {
            self.ptr.write_bytes(0, self.len);
            std::slice::from_raw_parts_mut(self.ptr, self.len)
        }
    }
}
