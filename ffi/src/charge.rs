//! Undoable table checks: a request checked against several tables (say, per client IP
//! and per account) consumes from each in turn; when a later table denies, the earlier
//! charges are given back, so that a denial consumes nothing in any table.
//!
//! `ratecore_table_check_undoable` checks like `ratecore_table_check_each` and also
//! writes what it consumed into a `ratecore_table_charge`; `ratecore_table_undo` gives that
//! back: exactly when nothing else touched the key since (but a strict window's
//! sub-window that already held admissions keeps the undone request's time, releasing
//! them at most one sub-window late), otherwise only what is provably safe: never an
//! over-admission.

use ratecore::table::TABLE_CHARGE_WORDS;

use crate::ffi::{handle_ref, input_slice, output};
use crate::panic::guard;
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;
use crate::table::{ratecore_table, EachCall, RATECORE_MAX_TABLE_LIMITS};

/// Words in a `ratecore_table_charge`.
pub const RATECORE_TABLE_CHARGE_WORDS: usize = 27;

const _: () = assert!(RATECORE_TABLE_CHARGE_WORDS == TABLE_CHARGE_WORDS);

/// What one `ratecore_table_check_undoable` consumed, for `ratecore_table_undo`. Plain
/// words, to keep on the stack or in a request's memory; opaque: only the table that made
/// it reads it, and it refuses words it did not write (a checksum keyed by the table's
/// secret hash seed). All zero means "nothing consumed" (a denial, cost 0); undoing it does
/// nothing. Valid only for the table handle, and the process, that made it, and only
/// while that handle lives: undo it soon, before freeing the table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ratecore_table_charge {
    /// Opaque.
    pub words: [u64; RATECORE_TABLE_CHARGE_WORDS],
}

/// Like `ratecore_table_check_each` (pass `(NULL, 0)` states for none), and also writes
/// to `*charge_out` what the check consumed, which `ratecore_table_undo` gives back. On a
/// denial, or for cost 0, the charge is all zero. Takes the table's general path (about
/// as fast as a check of a multi-quota table), since it keeps each quota's reservation.
///
/// Errors: as for `ratecore_table_check_each`; `BUFFER_TOO_SMALL` when `states_len` is
/// neither 0 nor at least the quota count. Nothing is written then.
///
/// Thread safety: as for `ratecore_table_check`.
///
/// # Safety
/// As for `ratecore_table_check_each`; `charge_out` is NULL or valid for one write.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // The C signature: inputs, then the three outputs.
pub unsafe extern "C" fn ratecore_table_check_undoable(
    table: *const ratecore_table,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    states: *mut ratecore_decision,
    states_len: usize,
    decision_out: *mut ratecore_decision,
    charge_out: *mut ratecore_table_charge,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let call = unsafe { EachCall::new(table, key, key_len, states, states_len, decision_out) }?;
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let charge_out = unsafe { output(charge_out)? };
        // No states buffer asks for no states.
        let count = if call.states.len() == 0 {
            0
        } else {
            call.table.count()
        };
        let (table, key) = (call.table.table(), call.key);
        let (decision, charge) = call
            .states
            .decide_each::<RATECORE_MAX_TABLE_LIMITS, _>(count, |each| {
                Ok(table.check_undoable(key, now_ns, cost, each)?)
            })?;
        call.out.write_decision(decision);
        charge_out.write(ratecore_table_charge {
            words: charge.map_or([0; RATECORE_TABLE_CHARGE_WORDS], |c| {
                table.charge_to_words(&c)
            }),
        });
        Ok(())
    })
}

/// Gives back what `charge` consumed, and zeroes `*charge`, so undoing it again does
/// nothing. An all-zero charge is a no-op. Undo each charge once: a *copy* of a charge
/// made before the undo is not zeroed, and undoing it too would give a window's cost
/// back twice. Give a charge back soon (the moment another
/// table denies the same request): what is given back is exactly what was consumed when
/// nothing else touched the key since (a strict window's sub-window that already held
/// admissions keeps the undone request's time); otherwise only what is provably safe
/// (possibly nothing), never creating an over-admission.
///
/// Errors: `NULL_POINTER`; `INVALID_ARGUMENT` (and nothing undone or zeroed) for a charge
/// that this table did not make, or that was altered.
///
/// Thread safety: as for `ratecore_table_check`, on the table; the charge itself must not
/// be used by two calls at once.
///
/// # Safety
/// `table` is NULL or a live handle; `charge` is NULL or valid for reading and writing one
/// `ratecore_table_charge`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_table_undo(
    table: *const ratecore_table,
    charge: *mut ratecore_table_charge,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let table = unsafe { handle_ref(table)? };
        let words = {
            // SAFETY: valid for one read during this call, or NULL (caller's promise);
            // the slice ends with this block, before the write below.
            let charge_in = unsafe { input_slice(charge.cast_const(), 1)? };
            charge_in.first().map(|c| c.words).unwrap_or_default()
        };
        if words == [0; RATECORE_TABLE_CHARGE_WORDS] {
            return Ok(());
        }
        let table = table.table();
        let charge_value = table
            .charge_from_words(&words)
            .ok_or(ratecore_status::InvalidArgument)?;
        // Zeroed before the undo: even if the undo were cut short (a panic, reported as
        // RATECORE_STATUS_PANIC), retrying could not give anything back twice.
        // SAFETY: valid for one write during this call (checked non-NULL above).
        let out = unsafe { output(charge)? };
        out.write(ratecore_table_charge::default());
        table.undo(charge_value);
        Ok(())
    })
}
