//! The C ABI called from Rust: stable status values, error mapping, pointer checks and the
//! basic behaviour of each handle. (The C programs in tests/c/ cover the same ground from
//! C, under ASan/UBSan.)

use std::ffi::CStr;
use std::ptr;

use ratecore::{CheckError, QuotaError, TableError};
use ratecore_ffi::*;

const SECOND: u64 = 1_000_000_000;

fn quota(algorithm: ratecore_algorithm, limit: u64, period_ns: u64) -> ratecore_quota {
    ratecore_quota {
        limit,
        period_ns,
        burst: 0,
        algorithm: algorithm as u32,
        sub_windows: 0,
    }
}

fn message(status: u32) -> String {
    // SAFETY: ratecore_status_message returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ratecore_status_message(status)) }
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn status_values_are_stable() {
    use ratecore_status as S;
    let expected = [
        (S::Ok, 0),
        (S::NullPointer, 1),
        (S::InvalidArgument, 2),
        (S::BufferTooSmall, 3),
        (S::Panic, 4),
        (S::UnknownAlgorithm, 5),
        (S::UnknownFullPolicy, 6),
        (S::OutOfMemory, 7),
        (S::InvalidQuota, 100),
        (S::ZeroLimit, 101),
        (S::ZeroPeriod, 102),
        (S::ZeroBurst, 103),
        (S::EmissionIntervalTooSmall, 104),
        (S::BurstOverflow, 105),
        (S::ZeroSubWindows, 106),
        (S::TooManySubWindows, 107),
        (S::StorageLength, 108),
        (S::StateTooWide, 109),
        (S::NoLimits, 110),
        (S::TooManyLimits, 111),
        (S::CheckError, 200),
        (S::CostExceedsLimit, 201),
        (S::TableError, 300),
        (S::BadCapacity, 301),
        (S::NotLockFree, 302),
        (S::RegionTooSmall, 303),
        (S::RegionMisaligned, 304),
        (S::BadMagic, 305),
        (S::UnsupportedVersion, 306),
        (S::NotReady, 307),
        (S::CorruptHeader, 308),
        (S::HashMismatch, 309),
        (S::PolicyError, 400),
        (S::InvalidConfig, 401),
        (S::ConfigUnreadable, 402),
        (S::UnknownLimit, 403),
        (S::InvalidOverride, 404),
        (S::RenderError, 500),
        (S::UnknownHeaderStyle, 501),
        (S::InvalidUtf8, 502),
    ];
    assert_eq!(
        expected.len(),
        S::all().len(),
        "a status was added: pin its value here"
    );
    for (status, value) in expected {
        assert_eq!(status as u32, value, "{status:?} was renumbered");
        assert_eq!(S::from_code(value), Some(status));
    }
}

#[test]
fn every_status_has_its_own_message() {
    let mut seen = std::collections::HashSet::new();
    for status in ratecore_status::all() {
        let text = message(status as u32);
        assert!(!text.is_empty() && text != "unknown status", "{status:?}");
        assert!(seen.insert(text), "{status:?} shares its message");
    }
    for unknown in [8, 99, 112, 199, 202, 310, 405, 503, 600, u32::MAX] {
        assert_eq!(message(unknown), "unknown status");
    }
}

#[test]
fn every_core_error_maps_to_its_own_status() {
    use ratecore_status as S;
    use QuotaError as Q;
    use TableError as T;
    // Any values: only the variant decides the status.
    let (limit, period, expected, needed, actual) = (2, 1, 2, 2, 1);
    // Quota errors map alike on their own and inside a table error.
    let errors = [
        (T::Quota(Q::ZeroLimit), S::ZeroLimit),
        (T::Quota(Q::ZeroPeriod), S::ZeroPeriod),
        (T::Quota(Q::ZeroBurst), S::ZeroBurst),
        (
            T::Quota(Q::EmissionIntervalTooSmall { limit, period }),
            S::EmissionIntervalTooSmall,
        ),
        (T::Quota(Q::BurstOverflow), S::BurstOverflow),
        (T::Quota(Q::ZeroSubWindows), S::ZeroSubWindows),
        (T::Quota(Q::TooManySubWindows), S::TooManySubWindows),
        (
            T::Quota(Q::StorageLength { expected, actual }),
            S::StorageLength,
        ),
        (T::Quota(Q::StateTooWide), S::StateTooWide),
        (T::Quota(Q::EmptyComposite), S::NoLimits),
        (T::Quota(Q::TooManyLimits), S::TooManyLimits),
        (T::NoLimits, S::NoLimits),
        (T::TooManyLimits, S::TooManyLimits),
        (T::BadCapacity, S::BadCapacity),
        (T::NotLockFree, S::NotLockFree),
        (T::RegionTooSmall { needed, actual }, S::RegionTooSmall),
        (T::RegionMisaligned, S::RegionMisaligned),
        (T::BadMagic, S::BadMagic),
        (T::UnsupportedVersion { found: 9 }, S::UnsupportedVersion),
        (T::NotReady, S::NotReady),
        (T::CorruptHeader, S::CorruptHeader),
        (T::HashMismatch, S::HashMismatch),
        (T::OutOfMemory, S::OutOfMemory),
    ];
    for (error, status) in errors {
        assert_eq!(S::from(error), status, "{error:?}");
        if let T::Quota(quota) = error {
            assert_eq!(S::from(quota), status, "{quota:?}");
        }
    }
    assert_eq!(
        S::from(CheckError::CostExceedsLimit { cost: 2, limit: 1 }),
        S::CostExceedsLimit
    );
}

#[test]
fn limiter_round_trip() {
    let quotas = [quota(ratecore_algorithm::Gcra, 3, SECOND)];
    let mut limiter = ptr::null_mut();
    // SAFETY: valid pointers to live locals.
    let status = unsafe { ratecore_limiter_new(quotas.as_ptr(), 1, &mut limiter) };
    assert_eq!(status, ratecore_status::Ok);
    let mut decision = ratecore_decision::default();
    for expected_remaining in [2, 1, 0] {
        // SAFETY: live handle, valid output.
        let status = unsafe { ratecore_limiter_check(limiter, SECOND, 1, &mut decision) };
        assert_eq!(status, ratecore_status::Ok);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected_remaining);
    }
    // SAFETY: live handle, valid output.
    let status = unsafe { ratecore_limiter_check(limiter, SECOND, 1, &mut decision) };
    assert_eq!(status, ratecore_status::Ok);
    assert!(!decision.allowed);
    assert_eq!(decision.retry_after_ns, 333_333_334);
    // SAFETY: live handle, valid output.
    let status = unsafe { ratecore_limiter_check(limiter, SECOND, 4, &mut decision) };
    assert_eq!(status, ratecore_status::CostExceedsLimit);
    // SAFETY: live handle, freed once.
    unsafe { ratecore_limiter_free(limiter) };
    // SAFETY: NULL is accepted.
    unsafe { ratecore_limiter_free(ptr::null_mut()) };
}

#[test]
fn null_and_bad_arguments_are_rejected_without_writing() {
    let quotas = [quota(ratecore_algorithm::FixedWindow, 3, SECOND)];
    let sentinel = 0x5a5a as *mut ratecore_limiter;
    let mut limiter = sentinel;
    // SAFETY: every pointer is NULL or valid.
    unsafe {
        assert_eq!(
            ratecore_limiter_new(ptr::null(), 1, &mut limiter),
            ratecore_status::NullPointer
        );
        assert_eq!(
            ratecore_limiter_new(ptr::null(), 0, &mut limiter),
            ratecore_status::NoLimits
        );
        assert_eq!(
            ratecore_limiter_new(quotas.as_ptr(), 1, ptr::null_mut()),
            ratecore_status::NullPointer
        );
        assert_eq!(
            ratecore_limiter_new(quotas.as_ptr(), usize::MAX, &mut limiter),
            ratecore_status::InvalidArgument
        );
        assert_eq!(
            ratecore_limiter_new(quotas.as_ptr(), 17, &mut limiter),
            ratecore_status::TooManyLimits
        );
        let mut decision = ratecore_decision::default();
        assert_eq!(
            ratecore_limiter_check(ptr::null(), 0, 1, &mut decision),
            ratecore_status::NullPointer
        );
        assert_eq!(
            ratecore_table_check(ptr::null(), ptr::null(), 0, 0, 1, &mut decision),
            ratecore_status::NullPointer
        );
    }
    assert_eq!(limiter, sentinel, "an output was written on failure");
}

/// A table of 100 keys limited by GCRA 2/s and a strict window of 3/min (4
/// sub-windows), and the quotas it was made with.
fn gcra_and_strict_table() -> (*mut ratecore_table, [ratecore_quota; 2]) {
    let quotas = [
        quota(ratecore_algorithm::Gcra, 2, SECOND),
        ratecore_quota {
            sub_windows: 4,
            ..quota(ratecore_algorithm::SlidingWindowStrict, 3, 60 * SECOND)
        },
    ];
    let mut table = ptr::null_mut();
    // SAFETY: valid pointers to live locals.
    let status = unsafe { ratecore_table_new(quotas.as_ptr(), 2, 100, 0, &mut table) };
    assert_eq!(status, ratecore_status::Ok);
    (table, quotas)
}

/// `ratecore_table_check_each` (`commit`) or `_peek_each` of `key` at `SECOND`, into the
/// two states of a [`gcra_and_strict_table`].
///
/// # Safety
/// `table` is a live handle.
unsafe fn table_each(
    table: *mut ratecore_table,
    key: &[u8],
    cost: u64,
    commit: bool,
    states: &mut [ratecore_decision; 2],
    decision: &mut ratecore_decision,
) -> ratecore_status {
    let each = if commit {
        ratecore_table_check_each
    } else {
        ratecore_table_peek_each
    };
    let (ptr, len, out) = (key.as_ptr(), key.len(), states.as_mut_ptr());
    // SAFETY: a live handle (caller's promise); the key and both states are valid.
    unsafe { each(table, ptr, len, SECOND, cost, out, 2, decision) }
}

#[test]
fn table_round_trip() {
    let (table, quotas) = gcra_and_strict_table();
    // SAFETY: a live handle, freed once at the end.
    unsafe {
        let mut decision = ratecore_decision::default();
        let mut states = [ratecore_decision::default(); 2];
        for key in [&b"a"[..], b"b", b""] {
            for _ in 0..2 {
                assert_eq!(
                    ratecore_table_check(table, key.as_ptr(), key.len(), SECOND, 1, &mut decision),
                    ratecore_status::Ok
                );
                assert!(decision.allowed);
            }
            assert_eq!(
                table_each(table, key, 1, true, &mut states, &mut decision),
                ratecore_status::Ok
            );
            assert!(!decision.allowed);
            assert!(!states[0].allowed && states[1].allowed);
            assert_eq!(states[1].remaining, 1);
        }
        // (NULL, 0) is the empty key: it was limited above.
        assert_eq!(
            ratecore_table_peek(table, ptr::null(), 0, SECOND, 1, &mut decision),
            ratecore_status::Ok
        );
        assert!(!decision.allowed);
        let mut stats = ratecore_table_stats::default();
        assert_eq!(
            ratecore_table_get_stats(table, &mut stats),
            ratecore_status::Ok
        );
        assert_eq!(stats.new_keys, 6, "3 keys × 2 quotas");
        let mut capacity = 0;
        assert_eq!(
            ratecore_table_capacity(table, &mut capacity),
            ratecore_status::Ok
        );
        assert_eq!(capacity, 128);
        let mut back = [ratecore_quota::default(); 4];
        let mut count = 0;
        assert_eq!(
            ratecore_table_limits(table, back.as_mut_ptr(), 1, &mut count),
            ratecore_status::BufferTooSmall
        );
        assert_eq!(count, 2);
        assert_eq!(
            ratecore_table_limits(table, back.as_mut_ptr(), 4, &mut count),
            ratecore_status::Ok
        );
        assert_eq!(
            back[0],
            ratecore_quota {
                burst: 2,
                ..quotas[0]
            }
        );
        assert_eq!(
            back[1],
            ratecore_quota {
                burst: 3,
                ..quotas[1]
            }
        );
        ratecore_table_free(table);
    }
}

#[cfg(feature = "test-hooks")]
#[test]
fn panics_become_a_status() {
    let mut decision = ratecore_decision {
        remaining: 42,
        ..Default::default()
    };
    // SAFETY: a valid output pointer.
    let status = unsafe { ratecore_test_panic(&mut decision) };
    assert_eq!(status, ratecore_status::Panic);
    assert_eq!(decision.remaining, 42, "the output was written");
}

#[test]
fn a_table_the_system_cannot_hold_is_out_of_memory() {
    let strict = ratecore_quota {
        sub_windows: RATECORE_MAX_SUB_WINDOWS,
        ..quota(ratecore_algorithm::SlidingWindowStrict, 10, 3600 * SECOND)
    };
    let quotas = [strict; 4];
    let mut size = 0;
    let mut table = ptr::null_mut();
    // SAFETY: valid pointers to live locals.
    unsafe {
        assert_eq!(
            ratecore_table_region_size(
                quotas.as_ptr(),
                4,
                RATECORE_MAX_TABLE_CAPACITY,
                0,
                &mut size
            ),
            ratecore_status::Ok
        );
        assert!(
            size > 1 << 50,
            "{size} bytes: beyond any x86-64 or aarch64 address space"
        );
        assert_eq!(
            ratecore_table_new(
                quotas.as_ptr(),
                4,
                RATECORE_MAX_TABLE_CAPACITY,
                0,
                &mut table
            ),
            ratecore_status::OutOfMemory
        );
    }
    assert!(table.is_null());
}

#[test]
fn misaligned_pointers_are_rejected() {
    #[repr(C, align(8))]
    struct Buffer([u8; 128]);
    let mut buffer = Buffer([0; 128]);
    let base = buffer.0.as_mut_ptr();
    // SAFETY: the misaligned pointers stay inside `buffer` and are only checked, never
    // dereferenced, by the library; the other pointers are valid.
    unsafe {
        let quota = base.add(1).cast::<ratecore_quota>();
        let mut limiter = ptr::null_mut();
        assert_eq!(
            ratecore_limiter_new(quota, 1, &mut limiter),
            ratecore_status::InvalidArgument
        );
        assert!(limiter.is_null());
        let quotas = [quota_for_alignment()];
        assert_eq!(
            ratecore_limiter_new(quotas.as_ptr(), 1, &mut limiter),
            ratecore_status::Ok
        );
        let decision = base.add(4).cast::<ratecore_decision>();
        assert_eq!(
            ratecore_limiter_check(limiter, 0, 1, decision),
            ratecore_status::InvalidArgument
        );
        assert_eq!(
            ratecore_limiter_check(
                limiter.cast::<u8>().add(1).cast(),
                0,
                1,
                &mut Default::default()
            ),
            ratecore_status::InvalidArgument
        );
        ratecore_limiter_free(limiter);
    }
    assert!(buffer.0.iter().all(|&b| b == 0), "nothing written");
}

fn quota_for_alignment() -> ratecore_quota {
    quota(ratecore_algorithm::Gcra, 1, SECOND)
}

#[test]
fn undoable_check_round_trip() {
    // GCRA 2/s and a strict window 3/min: a charge on both quotas, given back exactly.
    let (table, _) = gcra_and_strict_table();
    // SAFETY: a live handle, freed once at the end.
    unsafe {
        let key = b"acct-9";
        let mut decision = ratecore_decision::default();
        let mut states = [ratecore_decision::default(); 2];
        let mut charge = ratecore_table_charge::default();
        assert_eq!(
            ratecore_table_check(table, key.as_ptr(), key.len(), SECOND, 1, &mut decision),
            ratecore_status::Ok
        );
        assert_eq!(
            ratecore_table_check_undoable(
                table,
                key.as_ptr(),
                key.len(),
                SECOND,
                1,
                states.as_mut_ptr(),
                2,
                &mut decision,
                &mut charge,
            ),
            ratecore_status::Ok
        );
        assert!(decision.allowed);
        assert_eq!((states[0].remaining, states[1].remaining), (0, 1));
        assert_ne!(charge, ratecore_table_charge::default());
        assert_eq!(ratecore_table_undo(table, &mut charge), ratecore_status::Ok);
        assert_eq!(
            charge,
            ratecore_table_charge::default(),
            "zeroed once undone"
        );
        // Back to one charge on each quota.
        assert_eq!(
            table_each(table, key, 0, false, &mut states, &mut decision),
            ratecore_status::Ok
        );
        assert_eq!((states[0].remaining, states[1].remaining), (1, 2));
        // A forged charge is refused and left as it was.
        let mut forged = ratecore_table_charge {
            words: [7; RATECORE_TABLE_CHARGE_WORDS],
        };
        assert_eq!(
            ratecore_table_undo(table, &mut forged),
            ratecore_status::InvalidArgument
        );
        assert_eq!(forged.words, [7; RATECORE_TABLE_CHARGE_WORDS]);
        ratecore_table_free(table);
    }
}
