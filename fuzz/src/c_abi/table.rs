//! Table handles: new, initialised in or attached to a region, check / peek (each),
//! undoable checks and undo, stats and introspection, free.

use std::ffi::c_void;
use std::ptr;

use ratecore::table::region::region_size;
use ratecore::{Decision, FullPolicy, Table, TableConfig, TableStats};
use ratecore_ffi::table::ratecore_table_stats;
use ratecore_ffi::{
    ratecore_quota, ratecore_table, ratecore_table_attach_region, ratecore_table_capacity,
    ratecore_table_charge, ratecore_table_check, ratecore_table_check_each,
    ratecore_table_check_undoable, ratecore_table_free, ratecore_table_full_policy,
    ratecore_table_get_stats, ratecore_table_init_region, ratecore_table_limit_count,
    ratecore_table_limits, ratecore_table_new, ratecore_table_peek, ratecore_table_peek_each,
    ratecore_table_region_size, ratecore_table_undo, RATECORE_TABLE_CHARGE_WORDS,
};

use crate::region::{expected_attach, AlignedBuf};

use super::args::{spec_of, RawQuota, SliceArg};
use super::call::Call;
use super::{
    assert_decided, assert_no_decision, free_call, handle_arg, judge_decision, judge_new, out_ptr,
    slice_ptr, states_arg, Arena, Faults, Region, TableHandle, MAX_TABLE_BYTES, S, SENTINEL,
};

/// Makes one table call and checks it against the Rust API.
#[allow(clippy::too_many_lines)]
pub(super) fn step(arena: &mut Arena, call: &Call) {
    match call {
        Call::TableNew {
            quotas,
            arg,
            capacity,
            policy,
            out,
        } => {
            let capacity = capacity.get();
            let policy = u32::from(*policy % 4);
            let mut buf: Vec<ratecore_quota> = quotas.iter().take(6).map(RawQuota::c).collect();
            let given = buf.clone();
            buf.push(ratecore_quota::default());
            let (qp, qlen) = slice_ptr(&mut buf, *arg);
            let mut faults = Faults::default();
            if given.len() <= 4 || *arg != SliceArg::Exact {
                faults.slice(*arg, qlen, 8);
            }
            if !faults.0.is_empty() && qlen > 4 {
                // Too many quotas may be reported before the pointer is looked at.
                faults.0.push(S::TooManyLimits);
            }
            let quotas: &[ratecore_quota] = if *arg == SliceArg::NullEmpty {
                &[]
            } else {
                &given
            };
            let expected = expected_config(quotas, capacity, policy);
            // Region size first: it never allocates.
            let mut size = [usize::MAX; 2];
            let sp = out_ptr(&mut size, *out);
            // SAFETY: pointers valid for their lengths, NULL, or misaligned.
            let status = unsafe { ratecore_table_region_size(qp, qlen, capacity, policy, sp) };
            let mut size_faults = Faults(faults.0.clone());
            size_faults.out(*out);
            let fine = size_faults.judge(status, "table_region_size");
            let expected_size = expected
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|c| region_size(c).map_err(|e| vec![S::from(e)]));
            if fine {
                match &expected_size {
                    Ok(n) if isize::try_from(*n).is_ok() => {
                        assert_eq!(status, S::Ok);
                        assert_eq!(size[0], *n);
                    }
                    Ok(_) => assert_eq!(status, S::BadCapacity),
                    Err(errors) => assert!(
                        errors.contains(&status),
                        "region_size: {status:?} not in {errors:?}"
                    ),
                }
            }
            if !fine || status != S::Ok {
                assert_eq!(size, [usize::MAX; 2], "region_size wrote with {status:?}");
            }
            if expected_size.as_ref().is_ok_and(|n| *n > MAX_TABLE_BYTES) {
                return;
            }
            let mut slot = [ptr::dangling_mut::<ratecore_table>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: as above; the table is small (checked).
            let status = unsafe { ratecore_table_new(qp, qlen, capacity, policy, op) };
            faults.out(*out);
            let fine = judge_new(&faults, status, "table_new", &slot);
            if !fine {
                return;
            }
            adopt(arena, status, "table_new", expected, slot[0]);
        }
        Call::InitRegion {
            quotas,
            capacity,
            policy,
            cut,
            skew,
            null,
            out,
        } => {
            let policy = u32::from(*policy % 4);
            let quotas: Vec<ratecore_quota> = quotas.iter().take(5).map(RawQuota::c).collect();
            let expected = expected_config(&quotas, u64::from(*capacity), policy);
            let needed = expected.as_ref().ok().and_then(|c| region_size(c).ok());
            if needed.is_some_and(|n| n > MAX_TABLE_BYTES) {
                return;
            }
            let size = needed.unwrap_or(1024);
            let len = size - usize::from(*cut) % (size + 1);
            let skew = if skew % 4 == 0 {
                0
            } else {
                usize::from(skew % 64)
            };
            let mut region = Region {
                buf: AlignedBuf::new(len + skew),
                mirror: None,
            };
            let rp: *mut c_void = if *null {
                ptr::null_mut()
            } else {
                region.buf.as_mut_ptr().wrapping_add(skew).cast()
            };
            let mut slot = [ptr::dangling_mut::<ratecore_table>(); 2];
            let op = out_ptr(&mut slot, *out);
            let mut buf = quotas.clone();
            buf.push(ratecore_quota::default());
            // SAFETY: the region is valid for `len` bytes (or NULL) and only used through
            // ratecore afterwards; the quotas are valid.
            let status = unsafe {
                ratecore_table_init_region(
                    rp,
                    len,
                    buf.as_ptr(),
                    quotas.len(),
                    (*capacity).into(),
                    policy,
                    op,
                )
            };
            let mut faults = Faults::default();
            if *null {
                faults.0.push(S::NullPointer);
            }
            faults.out(*out);
            let fine = judge_new(&faults, status, "init_region", &slot);
            if fine {
                let expected = expected.and_then(|config| {
                    if skew != 0 {
                        Err(vec![S::RegionMisaligned])
                    } else if len < size {
                        Err(vec![S::RegionTooSmall])
                    } else {
                        Ok(config)
                    }
                });
                region.mirror = adopt(arena, status, "init_region", expected, slot[0]);
            }
            arena.regions.push(region);
        }
        Call::AttachRegion {
            region,
            cut,
            skew,
            null,
            out,
        } => {
            if arena.regions.is_empty() {
                return;
            }
            let index = usize::from(*region) % arena.regions.len();
            let r = &mut arena.regions[index];
            // Raw pointers only: tables may hold references into the buffer.
            let total = r.buf.len();
            let base = r.buf.as_mut_ptr();
            // Where the table (if any) starts: init used the aligned start.
            let skew = if skew % 4 == 0 {
                0
            } else {
                usize::from(skew % 64).min(total)
            };
            let len = (total - skew) - usize::from(*cut) % (total - skew + 1);
            // A copy of the bytes, read through the raw pointer (tables may live there).
            let mut copy = vec![0u8; len];
            // SAFETY: `base + skew .. + len` lies inside the buffer; nothing else runs.
            unsafe { ptr::copy_nonoverlapping(base.wrapping_add(skew), copy.as_mut_ptr(), len) };
            let rp: *mut c_void = if *null {
                ptr::null_mut()
            } else {
                base.wrapping_add(skew).cast()
            };
            let mut slot = [ptr::dangling_mut::<ratecore_table>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: the region is valid for `len` bytes (or NULL) and only accessed
            // through ratecore tables.
            let status = unsafe { ratecore_table_attach_region(rp, len, op) };
            let mut faults = Faults::default();
            if *null {
                faults.0.push(S::NullPointer);
            }
            faults.out(*out);
            let fine = judge_new(&faults, status, "attach_region", &slot);
            if !fine {
                return;
            }
            match expected_attach(&copy, skew == 0) {
                Ok(_) => {
                    assert_eq!(status, S::Ok, "attach_region");
                    let mirror = r.mirror.expect("a ready region was initialised");
                    arena.tables.push(TableHandle {
                        ptr: slot[0],
                        mirror,
                    });
                }
                Err(e) => assert_eq!(status, S::from(e), "attach_region"),
            }
        }
        Call::TableDecide {
            decide,
            key,
            key_arg,
        } => {
            let (now, cost) = (decide.now.get(), decide.cost.get());
            let (target, hp, mut faults) = handle_arg(&arena.tables, decide.handle, |h| h.ptr);
            let id = if *key_arg == SliceArg::NullEmpty {
                0
            } else {
                *key % 8
            };
            let mut kb = key_bytes(id);
            kb.push(0);
            let (kp, klen) = slice_ptr(&mut kb, *key_arg);
            faults.slice(*key_arg, klen, 1);
            faults.out(decide.out);
            let mut slot = [SENTINEL; 2];
            let op = out_ptr(&mut slot, decide.out);
            let (status, states) = match &decide.each {
                Some((len, sarg)) => {
                    let (states, sp, slen, effective) = states_arg(*len, *sarg, &mut faults);
                    // SAFETY: every pointer valid for its length, NULL, or misaligned.
                    let status = unsafe {
                        if decide.commit {
                            ratecore_table_check_each(hp, kp, klen, now, cost, sp, slen, op)
                        } else {
                            ratecore_table_peek_each(hp, kp, klen, now, cost, sp, slen, op)
                        }
                    };
                    (status, Some((states, effective)))
                }
                _ => {
                    // SAFETY: as above.
                    let status = unsafe {
                        if decide.commit {
                            ratecore_table_check(hp, kp, klen, now, cost, op)
                        } else {
                            ratecore_table_peek(hp, kp, klen, now, cost, op)
                        }
                    };
                    (status, None)
                }
            };
            if !judge_decision(&faults, status, "table_decide", &slot, states.as_ref()) {
                return;
            }
            let (_, h) = target.expect("live");
            let mirror = &arena.mirrors[h.mirror];
            let count = mirror.config().limits().count();
            let key = key_bytes(id);
            let expected = match &states {
                Some((_, len)) if *len < count => {
                    assert_eq!(status, S::BufferTooSmall);
                    return;
                }
                Some(_) => {
                    let mut each_states = vec![Decision::EMPTY; count];
                    let decided = if decide.commit {
                        mirror.check_each(&key, now, cost, &mut each_states)
                    } else {
                        mirror.peek_each(&key, now, cost, &mut each_states)
                    };
                    decided.map(|d| (d, Some(each_states)))
                }
                None if decide.commit => mirror.check(&key, now, cost).map(|d| (d, None)),
                None => mirror.peek(&key, now, cost).map(|d| (d, None)),
            };
            match expected {
                Ok((d, each_states)) => match (states, each_states) {
                    (Some((states, _)), Some(each_states)) => {
                        let written = (slot[0], &states[..count]);
                        assert_decided("table", status, written, (d, &each_states));
                        assert!(states[count..].iter().all(|d| *d == SENTINEL));
                    }
                    _ => assert_decided("table", status, (slot[0], &[]), (d, &[])),
                },
                Err(e) => assert_eq!(status, S::from(e)),
            }
        }
        Call::TableUndoable {
            handle,
            key,
            now,
            cost,
            with_states,
            undo,
            tamper,
            out,
        } => {
            let (now, cost) = (now.get(), cost.get());
            let (target, hp, mut faults) = handle_arg(&arena.tables, *handle, |h| h.ptr);
            let id = *key % 8;
            let kb = key_bytes(id);
            faults.out(*out);
            let mut slot = [SENTINEL; 2];
            let op = out_ptr(&mut slot, *out);
            let poison = ratecore_table_charge {
                words: [0xab; RATECORE_TABLE_CHARGE_WORDS],
            };
            let mut charge = [poison; 2];
            let cp = out_ptr(&mut charge, *out);
            let count = target.map_or(0, |(_, h)| {
                arena.mirrors[h.mirror].config().limits().count()
            });
            let mut states = vec![SENTINEL; if *with_states { count } else { 0 }];
            let (sp, slen) = if states.is_empty() {
                (ptr::null_mut(), 0)
            } else {
                (states.as_mut_ptr(), states.len())
            };
            // SAFETY: key and states valid for their lengths; handle and outs valid, NULL
            // or misaligned.
            let status = unsafe {
                ratecore_table_check_undoable(
                    hp,
                    kb.as_ptr(),
                    kb.len(),
                    now,
                    cost,
                    sp,
                    slen,
                    op,
                    cp,
                )
            };
            let fine = faults.judge(status, "table_check_undoable");
            if !fine || status != S::Ok {
                assert_no_decision(status, &slot, &states);
                assert!(
                    charge.iter().all(|c| *c == poison),
                    "charge written with {status:?}"
                );
            }
            if !fine {
                return;
            }
            let (_, h) = target.expect("live");
            let mirror = &arena.mirrors[h.mirror];
            let mut each_states = vec![Decision::EMPTY; states.len()];
            match mirror.check_undoable(&kb, now, cost, &mut each_states) {
                Ok((d, mirror_charge)) => {
                    let written = (slot[0], &states[..]);
                    assert_decided("undoable", status, written, (d, &each_states));
                    let zero = charge[0].words == [0; RATECORE_TABLE_CHARGE_WORDS];
                    assert_eq!(
                        zero,
                        mirror_charge.is_none(),
                        "a charge exactly when consumed"
                    );
                    if !*undo {
                        return;
                    }
                    if let Some(word) = tamper {
                        let mut altered = charge[0];
                        let at = usize::from(*word) % RATECORE_TABLE_CHARGE_WORDS;
                        altered.words[at] ^= 1 << (word / 32 % 64);
                        // SAFETY: a live handle; one valid charge.
                        let refused = unsafe { ratecore_table_undo(hp, &mut altered) };
                        if !zero {
                            assert_eq!(refused, S::InvalidArgument, "an altered charge is refused");
                        }
                    }
                    // SAFETY: a live handle; one valid charge.
                    let undone = unsafe { ratecore_table_undo(hp, &mut charge[0]) };
                    assert_eq!(undone, S::Ok);
                    assert_eq!(charge[0].words, [0; RATECORE_TABLE_CHARGE_WORDS], "zeroed");
                    if let Some(c) = mirror_charge {
                        mirror.undo(c);
                    }
                }
                Err(e) => assert_eq!(status, S::from(e)),
            }
        }
        Call::TableInfo {
            handle,
            limits_len,
            limits_arg,
            out,
        } => {
            let (target, hp, mut faults) = handle_arg(&arena.tables, *handle, |h| h.ptr);
            let hp = hp.cast_const();
            faults.out(*out);
            let mirror = target.map(|(_, h)| &arena.mirrors[h.mirror]);
            let mut stats = [ratecore_table_stats::default(); 2];
            stats[0].occupied = u64::MAX;
            let before = stats;
            // SAFETY: handle live (or NULL / misaligned), output valid or faulty.
            let status = unsafe { ratecore_table_get_stats(hp, out_ptr(&mut stats, *out)) };
            if faults.judge(status, "get_stats") {
                assert_eq!(status, S::Ok);
                assert_eq!(
                    stats[0],
                    c_stats(mirror.expect("live").stats()),
                    "stats differ"
                );
            } else {
                assert_eq!(stats, before);
            }
            let mut cap = [u64::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_table_capacity(hp, out_ptr(&mut cap, *out)) };
            if faults.judge(status, "capacity") {
                assert_eq!(cap[0], mirror.expect("live").config().capacity());
            } else {
                assert_eq!(cap, [u64::MAX; 2]);
            }
            let mut pol = [u32::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_table_full_policy(hp, out_ptr(&mut pol, *out)) };
            if faults.judge(status, "full_policy") {
                assert_eq!(pol[0], mirror.expect("live").config().policy() as u32);
            } else {
                assert_eq!(pol, [u32::MAX; 2]);
            }
            let mut count = [usize::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_table_limit_count(hp, out_ptr(&mut count, *out)) };
            if faults.judge(status, "limit_count") {
                assert_eq!(count[0], mirror.expect("live").config().limits().count());
            } else {
                assert_eq!(count, [usize::MAX; 2]);
            }
            let mut quotas = vec![
                ratecore_quota {
                    limit: 7,
                    ..ratecore_quota::default()
                };
                usize::from(*limits_len) + 1
            ];
            let untouched = quotas.clone();
            let (qp, qlen) = slice_ptr(&mut quotas, *limits_arg);
            let mut count = [usize::MAX; 2];
            faults.slice(*limits_arg, qlen, 8);
            // SAFETY: as above; the quota buffer is valid for `qlen` or faulty.
            let status = unsafe { ratecore_table_limits(hp, qp, qlen, out_ptr(&mut count, *out)) };
            if faults.judge(status, "table_limits") {
                let mirror = mirror.expect("live");
                let n = mirror.config().limits().count();
                assert_eq!(count[0], n, "limits count (reported even when too small)");
                let room = if *limits_arg == SliceArg::NullEmpty {
                    0
                } else {
                    usize::from(*limits_len)
                };
                if room < n {
                    assert_eq!(status, S::BufferTooSmall);
                    assert_eq!(quotas, untouched);
                } else {
                    assert_eq!(status, S::Ok);
                    for (got, spec) in quotas.iter().zip(mirror.config().limits()) {
                        assert_eq!(
                            (
                                got.limit,
                                got.period_ns,
                                got.burst,
                                got.algorithm,
                                got.sub_windows
                            ),
                            (
                                spec.quota.limit(),
                                spec.quota.period(),
                                spec.quota.burst(),
                                spec.algorithm.code(),
                                spec.algorithm.sub_windows()
                            )
                        );
                    }
                    assert_eq!(quotas[n..], untouched[n..]);
                }
            } else {
                assert_eq!(quotas, untouched);
            }
        }
        Call::TableFree { handle } => {
            free_call(&mut arena.tables, *handle, |h| h.ptr, ratecore_table_free)
        }
        _ => unreachable!("not a table call: {call:?}"),
    }
}

fn c_stats(s: TableStats) -> ratecore_table_stats {
    ratecore_table_stats {
        occupied: s.occupied,
        new_keys: s.new_keys,
        reclaims: s.reclaims,
        evictions: s.evictions,
        full_neighbourhoods: s.full_neighbourhoods,
        full_denied: s.full_denied,
        full_allowed: s.full_allowed,
        contended: s.contended,
        stale_claims: s.stale_claims,
        relocations: s.relocations,
    }
}

fn key_bytes(id: u8) -> Vec<u8> {
    crate::table::key_bytes(id % 8)
}

/// What `table_config` must return for these C arguments (ignoring pointer faults):
/// the config, or every status that may be reported.
fn expected_config(
    quotas: &[ratecore_quota],
    capacity: u64,
    policy: u32,
) -> Result<TableConfig, Vec<S>> {
    let mut errors = Vec::new();
    if quotas.len() > 4 {
        return Err(vec![S::TooManyLimits]);
    }
    let policy = FullPolicy::from_code(policy);
    if policy.is_none() {
        errors.push(S::UnknownFullPolicy);
    }
    let mut specs = Vec::new();
    for q in quotas {
        match spec_of(q) {
            Ok(s) => specs.push(s),
            Err(e) => errors.push(e),
        }
    }
    if capacity == 0 || capacity > 1 << 32 {
        errors.push(S::BadCapacity);
    }
    if specs.len() == quotas.len() {
        match TableConfig::new(capacity, &specs) {
            Ok(config) => {
                if errors.is_empty() {
                    let policy = policy.expect("no policy error");
                    return Ok(config.with_policy(policy).with_seed([1, 2, 3, 4]));
                }
            }
            Err(e) => errors.push(e.into()),
        }
    }
    Err(errors)
}

/// Judges a constructor's successful-arguments `status` against what the model expected:
/// on success, keeps `handle` with a fresh mirror table and returns the mirror's index.
fn adopt(
    arena: &mut Arena,
    status: S,
    what: &str,
    expected: Result<TableConfig, Vec<S>>,
    handle: *mut ratecore_table,
) -> Option<usize> {
    match expected {
        Ok(config) => {
            assert_eq!(status, S::Ok, "{what}");
            arena.mirrors.push(Table::new(config).expect("mirror"));
            let mirror = arena.mirrors.len() - 1;
            arena.tables.push(TableHandle {
                ptr: handle,
                mirror,
            });
            Some(mirror)
        }
        Err(errors) => {
            assert!(
                errors.contains(&status),
                "{what}: {status:?} not in {errors:?}"
            );
            None
        }
    }
}
