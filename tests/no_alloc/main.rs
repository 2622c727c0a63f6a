//! The hot paths never allocate: limiters (every algorithm, the `Limiter` enum, `Composite`),
//! keyed tables (full tables on every full-table policy, owned or in a region), policy
//! checks with their rendering, and the Redis module's check of single-word limits. One
//! binary, one counting allocator: each module drives one part and asserts every measured
//! section allocated nothing.
//!
//! A counting `#[global_allocator]` wraps the system allocator and counts allocations
//! made by the current thread while a thread-local flag is set, so the test harness's own
//! allocations (other threads, output capture) never count, and tests running in parallel
//! do not see each other's. Construction allocates (boxed rings, the composite's `Vec`,
//! tables, policies, request values) and happens outside the measured sections. The
//! harness is proven live: a measured `Box::new` must be counted.

mod limiters;
mod policies;
mod redis_state;
#[path = "../support/mod.rs"]
mod support;
mod tables;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting allocations made while the current thread counts.
struct CountingAllocator;

impl CountingAllocator {
    fn note() {
        // `try_with`: the thread-locals may already be gone while a thread shuts down.
        let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
        if counting {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the bookkeeping touches only const-initialised `Cell`
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note();
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` with this thread's allocations counted; returns its result and the count.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (result, ALLOCATIONS.with(Cell::get))
}

/// Asserts `f` allocates nothing.
pub fn assert_no_alloc<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let (result, allocations) = measure(f);
    assert_eq!(allocations, 0, "{what} allocated {allocations} times");
    result
}

#[test]
fn the_counter_sees_allocations() {
    let (boxed, n) = measure(|| black_box(Box::new(black_box(42u64))));
    assert_eq!(*boxed, 42);
    assert!(
        n >= 1,
        "a Box::new inside a measured section was not counted"
    );
    let (v, n) = measure(|| {
        let mut v = Vec::new();
        for i in 0..100u64 {
            v.push(black_box(i));
        }
        v
    });
    assert_eq!(v.len(), 100);
    assert!(n >= 2, "a growing Vec was counted only {n} times");
    // And nothing is counted outside a measured section.
    drop(black_box(vec![1u8; 64]));
    assert_eq!(measure(|| black_box(1 + 1)).1, 0);
}

#[test]
#[should_panic(expected = "allocated")]
fn assert_no_alloc_can_fail() {
    assert_no_alloc("a Box", || black_box(Box::new(7u32)));
}
