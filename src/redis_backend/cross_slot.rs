//! A check whose keys fall in several Redis Cluster slots (a policy limiting per IP *and*
//! per account): check-then-commit with undo, across slots.
//!
//! Keys of one request key share a slot (their hash tag), so each slot's limits are still
//! checked by one atomic call. Across slots no single call can be atomic, so the check
//! runs the composite protocol with each slot's call as one member:
//! 1. every slot's limits are peeked (one call per slot); a denial, a peek or a zero cost
//!    is decided there, consuming nothing;
//! 2. otherwise each slot is charged in order; if one denies after all (a racing request
//!    took the room in between) or fails, the slots already charged are undone, newest
//!    first, and the denial (or the fault) is the answer.
//!
//! An undo is a compare-and-set: it restores the value (or, for a strict window, the
//! sub-window) the check replaced only if the key still holds exactly what the check
//! wrote, so a concurrent request's update is never overwritten. When it does not (a
//! concurrent request charged the same key in between) or the undo cannot reach the
//! server, the denied request's cost stays charged: stricter, never over-admission.
//!
//! The guarantee is weaker than a one-slot check's: between a slot's charge and its undo
//! a concurrent request can see the transient charge and be denied (or be told fewer
//! remain) although the request that charged was denied in the end.

use super::wire::SLOT_BYTES;
use super::{BackendError, Check, Inner, RedisCheckError, RedisLimit};
use crate::algorithm::Algorithm;
use crate::composite::Verdict;
use crate::decision::{Decision, Mode};

/// The undo: restores `restore` at `offset` (the whole value when `None`; an empty
/// `restore` deletes the key) if the key holds `expected` there. `1` when restored.
const UNDO: &str = r"
local current
if ARGV[1] == '' then
  current = redis.call('GET', KEYS[1])
else
  current = redis.call('GETRANGE', KEYS[1], ARGV[1], ARGV[1] + string.len(ARGV[2]) - 1)
end
if current ~= ARGV[2] then return 0 end
if ARGV[1] ~= '' then
  redis.call('SETRANGE', KEYS[1], ARGV[1], ARGV[3])
elseif ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
end
return 1
";

/// What one admitted charge wrote to one key, and what it replaced.
#[derive(Debug)]
pub(super) struct Undo {
    key: Vec<u8>,
    offset: Option<usize>,
    expected: Vec<u8>,
    restore: Vec<u8>,
}

impl Undo {
    /// From the value a check read (`old`) and what it wrote (`new`: the whole value, or
    /// for a strict window the changed sub-window's index and bytes). The TTL stays the
    /// charge's: at least the old state's time to rest, so keeping it loses nothing.
    pub(super) fn new(limit: &RedisLimit, key: &[u8], old: &[u8], new: &[u8]) -> Self {
        let key = limit.redis_key(key);
        if let Algorithm::SlidingWindowStrict { .. } = limit.algorithm() {
            let index = new
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, |b| u32::from_be_bytes(b) as usize);
            let offset = index * SLOT_BYTES;
            let restore = old
                .get(offset..offset + SLOT_BYTES)
                .map_or_else(|| vec![0; SLOT_BYTES], <[u8]>::to_vec);
            Self {
                key,
                offset: Some(offset),
                expected: new.get(4..).unwrap_or_default().to_vec(),
                restore,
            }
        } else {
            Self {
                key,
                offset: None,
                expected: new.to_vec(),
                restore: old.to_vec(),
            }
        }
    }

    /// The compare-and-set that gives this charge back.
    fn command(&self) -> redis::Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(UNDO)
            .arg(1)
            .arg(&self.key)
            .arg(self.offset.map(|o| o.to_string()).unwrap_or_default())
            .arg(&self.expected)
            .arg(&self.restore);
        eval
    }
}

/// The check's limits grouped by slot, in order of first appearance, or `None` when they
/// all share one slot.
pub(super) fn groups(limits: &[(&RedisLimit, &[u8])]) -> Option<Vec<Vec<usize>>> {
    let slots: Vec<u16> = limits
        .iter()
        .map(|(limit, key)| super::cluster::slot(&limit.redis_key(key)))
        .collect();
    if slots.iter().all(|s| Some(s) == slots.first()) {
        return None;
    }
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for (index, slot) in slots.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| s == slot) {
            Some((_, members)) => members.push(index),
            None => groups.push((*slot, vec![index])),
        }
    }
    Some(groups.into_iter().map(|(_, members)| members).collect())
}

/// The protocol, written once for both transports (as `checks!` writes the public
/// methods): `$one` is the transport's one-slot call (`dispatch_one` or `run_one_async`)
/// and `$send` its keyed command (an undo); `[async] [.await]` make the async versions.
macro_rules! cross_slot_protocol {
    ($protocol:ident, $slot:ident, $undo:ident = $one:ident, $send:ident,
        [$($a:ident)?] [$($s:tt)*]) => {
        impl Inner {
            /// The cross-slot protocol (module docs).
            pub(super) $($a)? fn $protocol(
                &self,
                check: Check<'_>,
                groups: &[Vec<usize>],
                states: &mut [Decision],
            ) -> Result<Decision, RedisCheckError> {
                let Check { limits, cost, mode, .. } = check;
                // Caller errors first (cost, count, duplicate keys), before anything runs.
                self.validate(limits, cost)?;
                let mut each = vec![Decision::EMPTY; limits.len()];
                let mut admitted = true;
                for group in groups {
                    admitted &= self.$slot(check, group, Mode::Peek, &mut each) $($s)* ?
                        .0
                        .allowed;
                }
                if !admitted || !mode.charges() || cost == 0 {
                    return Ok(report(&each, states, None));
                }
                let mut taken: Vec<Undo> = Vec::new();
                for group in groups {
                    match self.$slot(check, group, Mode::Charge, &mut each) $($s)* {
                        Ok((decision, undo)) if decision.allowed => taken.extend(undo),
                        Ok((decision, _)) => {
                            self.$undo(taken) $($s)*;
                            return Ok(report(&each, states, Some(decision)));
                        }
                        Err(error) => {
                            self.$undo(taken) $($s)*;
                            return Err(error);
                        }
                    }
                }
                Ok(report(&each, states, None))
            }

            /// One slot's call on the limits of `group`, their decisions into `each`;
            /// a charge keeps what it wrote, to undo it.
            $($a)? fn $slot(
                &self,
                check: Check<'_>,
                group: &[usize],
                mode: Mode,
                each: &mut [Decision],
            ) -> Result<(Decision, Vec<Undo>), RedisCheckError> {
                let members: Vec<(&RedisLimit, &[u8])> =
                    group.iter().map(|&i| check.limits[i]).collect();
                let mut got = vec![Decision::EMPTY; members.len()];
                let one = Check::new(&members, check.now, check.cost, mode);
                let result = self.$one(one, &mut got, mode.charges()) $($s)* ?;
                for (&i, decision) in group.iter().zip(got) {
                    each[i] = decision;
                }
                Ok(result)
            }

            /// Gives back the charges in `taken`, newest first. One that cannot be given
            /// back (the key changed since, or the server is unreachable) stays charged.
            $($a)? fn $undo(&self, taken: Vec<Undo>) {
                for undo in taken.into_iter().rev() {
                    let restored = self.$send(&undo.command(), &undo.key) $($s)*;
                    let counter = match restored {
                        Ok(redis::Value::Int(1)) => &self.counters.undone,
                        _ => &self.counters.undo_kept,
                    };
                    super::stats::bump(counter);
                }
            }
        }
    };
}

cross_slot_protocol!(cross_slot, slot_call, undo = dispatch_one, query_keyed, [] []);
#[cfg(feature = "redis-tokio")]
cross_slot_protocol!(
    cross_slot_async, slot_call_async, undo_async = run_one_async, query_keyed_async,
    [async] [.await]
);

impl Inner {
    fn validate(&self, limits: &[(&RedisLimit, &[u8])], cost: u64) -> Result<(), RedisCheckError> {
        if limits.len() > super::MAX_LIMITS {
            return Err(RedisCheckError::Limits(
                "a check combines at most 16 limits",
            ));
        }
        let keys: Vec<Vec<u8>> = limits.iter().map(|(l, key)| l.redis_key(key)).collect();
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].contains(key) {
                return Err(RedisCheckError::Limits(
                    "two limits of one check use the same Redis key",
                ));
            }
        }
        for (limit, _) in limits {
            limit.spec.check_cost(cost)?;
        }
        Ok(())
    }

    /// One keyed command on a pooled connection (an undo), classified and counted.
    fn query_keyed(&self, command: &redis::Cmd, key: &[u8]) -> Result<redis::Value, BackendError> {
        self.with_connection(|connection, _| connection.query(command, key))
    }
}

/// The combined decision over every limit's (the composite's rule), or `denial` when a
/// slot denied while charging; each limit's decision into `states`.
fn report(each: &[Decision], states: &mut [Decision], denial: Option<Decision>) -> Decision {
    for (entry, decision) in states.iter_mut().zip(each) {
        *entry = *decision;
    }
    if let Some(denial) = denial {
        return denial;
    }
    let mut verdict = Verdict::default();
    for (index, decision) in each.iter().enumerate() {
        verdict.add(index, *decision);
    }
    verdict.decided().decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_backend::{RedisBackend, RedisConfig};
    use crate::Quota;

    fn limits() -> (RedisLimit, RedisLimit) {
        let backend = RedisBackend::new(RedisConfig::cluster(["redis://127.0.0.1:1/"])).unwrap();
        let quota = Quota::per_hour(10).unwrap();
        (
            backend.limit("ip", Algorithm::Gcra, quota).unwrap(),
            backend
                .limit(
                    "account",
                    Algorithm::SlidingWindowStrict { sub_windows: 3 },
                    quota,
                )
                .unwrap(),
        )
    }

    #[test]
    fn one_request_key_is_one_slot() {
        let (ip, account) = limits();
        assert!(groups(&[(&ip, b"k"), (&account, b"k")]).is_none());
        // `{a}` and `{b}`: slots 15495 and 3300.
        let split = groups(&[(&ip, b"a"), (&account, b"b"), (&ip, b"b")]);
        assert_eq!(split, Some(vec![vec![0], vec![1, 2]]));
    }

    #[test]
    fn undos_restore_what_the_charge_replaced() {
        let (ip, account) = limits();
        let whole = Undo::new(&ip, b"k", b"", &7u64.to_be_bytes());
        assert_eq!((whole.offset, whole.restore.as_slice()), (None, &b""[..]));
        assert_eq!(whole.expected, 7u64.to_be_bytes());
        // A strict window: the changed sub-window only, zeros where the key had none.
        let mut new = 2u32.to_be_bytes().to_vec();
        new.extend_from_slice(&[1; SLOT_BYTES]);
        let cell = Undo::new(&account, b"k", &[9; SLOT_BYTES], &new);
        assert_eq!(cell.offset, Some(2 * SLOT_BYTES));
        assert_eq!(cell.expected, vec![1; SLOT_BYTES]);
        assert_eq!(cell.restore, vec![0; SLOT_BYTES]);
        let cell = Undo::new(&account, b"k", &[9; 3 * SLOT_BYTES], &new);
        assert_eq!(cell.restore, vec![9; SLOT_BYTES]);
    }
}
