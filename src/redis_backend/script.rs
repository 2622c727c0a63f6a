//! One check, one `EVALSHA`: validate the check and build the script's arguments, send it
//! (loading the script when the server answers `NOSCRIPT`), then replay the algorithm on
//! the state the script read and verify the script's verdict, writes and TTLs against it.

use super::cross_slot::Undo;
use super::stats::bump;
use super::wire::{self, Replica};
use super::{BackendError, Fault, Inner, RedisCheckError, RedisLimit, MAX_LIMITS};
use crate::decision::Decision;
use crate::decision::Mode;

/// How a too-weakly replicated write is described (see `pool::classify`).
pub(super) const REPLICATION: &str = "not enough replicas acknowledged the write";

/// The Lua script every check runs.
pub(super) const SCRIPT: &str = include_str!("check.lua");

/// A validated check and its `EVALSHA`.
pub(super) struct Prepared<'a> {
    pub(super) limits: &'a [(&'a RedisLimit, &'a [u8])],
    now: u64,
    cost: u64,
    mode: Mode,
    charge: bool,
    pub(super) eval: redis::Cmd,
    /// The first Redis key: where the check runs on a cluster.
    pub(super) first_key: Vec<u8>,
    /// Whether to keep what an admitted charge wrote, to undo it (cross-slot checks).
    pub(super) keep: bool,
    /// What the admitted charge wrote, when `keep`.
    pub(super) kept: std::cell::RefCell<Vec<Undo>>,
}

impl Inner {
    /// One check over the blocking connection pool.
    pub(super) fn run(
        &self,
        limits: &[(&RedisLimit, &[u8])],
        now: u64,
        cost: u64,
        mode: Mode,
        states: &mut [Decision],
        keep: bool,
    ) -> Result<(Decision, Vec<Undo>), RedisCheckError> {
        let mut prepared = self.prepare(limits, now, cost, mode)?;
        prepared.keep = keep;
        let reply = self
            .with_connection(|connection, counters| {
                let reply = match connection.query(&prepared.eval) {
                    Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                        connection.load_script(&self.script, &prepared.first_key)?;
                        bump(&counters.script_loads);
                        connection.query(&prepared.eval)
                    }
                    other => other,
                }?;
                self.await_replicas(connection, &prepared)?;
                Ok(reply)
            })
            .map_err(RedisCheckError::Backend)?;
        let decision = self.finish(&prepared, reply, states)?;
        Ok((decision, prepared.kept.take()))
    }

    /// Validates a check and builds its `EVALSHA` (transport-independent: an async
    /// connection could send the same command and hand the reply to `finish`).
    pub(super) fn prepare<'a>(
        &self,
        limits: &'a [(&'a RedisLimit, &'a [u8])],
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<Prepared<'a>, RedisCheckError> {
        if limits.is_empty() {
            return Err(RedisCheckError::Limits("a check needs at least one limit"));
        }
        if limits.len() > MAX_LIMITS {
            return Err(RedisCheckError::Limits(
                "a check combines at most 16 limits",
            ));
        }
        for (limit, _) in limits {
            limit.spec.check_cost(cost)?;
        }
        let keys: Vec<Vec<u8>> = limits.iter().map(|(l, key)| l.redis_key(key)).collect();
        if self.cluster.is_some() {
            let first = super::cluster::slot(&keys[0]);
            if keys.iter().any(|key| super::cluster::slot(key) != first) {
                return Err(RedisCheckError::Limits(
                    "the keys of one check fall in different Redis Cluster slots",
                ));
            }
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].contains(key) {
                return Err(RedisCheckError::Limits(
                    "two limits of one check use the same Redis key",
                ));
            }
        }
        let charge = mode.charges() && cost > 0;
        let mut args: Vec<u64> = Vec::with_capacity(4 + 13 * limits.len());
        args.extend_from_slice(&[
            u64::from(charge),
            self.min_ttl_ms,
            now >> 32,
            now & 0xffff_ffff,
        ]);
        for (limit, _) in limits {
            limit.spec.push_args(now, cost, &mut args);
        }
        let mut eval = redis::cmd("EVALSHA");
        eval.arg(self.script.get_hash())
            .arg(keys.len())
            .arg(&keys)
            .arg(&args);
        bump(&self.counters.checks);
        let first_key = keys.into_iter().next().unwrap_or_default();
        Ok(Prepared {
            limits,
            now,
            cost,
            mode,
            charge,
            eval,
            first_key,
            keep: false,
            kept: std::cell::RefCell::default(),
        })
    }

    /// With [`RedisConfig::wait_replicas`](super::RedisConfig::wait_replicas), after a
    /// check that may have written: `WAIT` until that many replicas hold the write. Too
    /// few in time is an error the pool classifies as a fault (`Replication`).
    pub(super) fn await_replicas(
        &self,
        connection: &mut super::cluster::Conn,
        prepared: &Prepared<'_>,
    ) -> redis::RedisResult<()> {
        let wanted = self.config.wait_replicas;
        if wanted == 0 || !prepared.charge {
            return Ok(());
        }
        let millis = u64::try_from(self.config.wait_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let acknowledged = connection.wait(wanted, millis, &prepared.first_key)?;
        if acknowledged < u64::from(wanted) {
            return Err(redis::RedisError::from((
                redis::ErrorKind::ClientError,
                REPLICATION,
                format!("{acknowledged} of {wanted} replicas acknowledged the write"),
            )));
        }
        Ok(())
    }

    /// Turns the script's reply into the decision (replayed and verified).
    pub(super) fn finish(
        &self,
        prepared: &Prepared<'_>,
        reply: redis::Value,
        states: &mut [Decision],
    ) -> Result<Decision, RedisCheckError> {
        let decision = self.interpret(prepared, reply, states).map_err(|message| {
            bump(&self.counters.inconsistent);
            RedisCheckError::Backend(BackendError {
                fault: Fault::Inconsistent,
                message: String::from(message),
            })
        })?;
        bump(&self.counters.decided);
        Ok(decision)
    }

    /// Replays the check on the state the script read and verifies the script's
    /// verdict, writes and TTLs against the replay.
    fn interpret(
        &self,
        prepared: &Prepared<'_>,
        reply: redis::Value,
        states: &mut [Decision],
    ) -> Result<Decision, &'static str> {
        let Prepared {
            limits,
            now,
            cost,
            mode,
            charge,
            ..
        } = *prepared;
        let redis::Value::Array(items) = reply else {
            return Err("the script's reply is not an array");
        };
        if items.len() != 1 + 3 * limits.len() {
            return Err("the script's reply has the wrong length");
        }
        let admitted = match items.first() {
            Some(redis::Value::Int(1)) => true,
            Some(redis::Value::Int(0)) => false,
            _ => return Err("the script's verdict is not 0 or 1"),
        };
        let mut olds: Vec<&[u8]> = Vec::with_capacity(limits.len());
        let mut writes: Vec<(&[u8], u64)> = Vec::with_capacity(limits.len());
        for chunk in items.get(1..).unwrap_or(&[]).chunks_exact(3) {
            let (Some(old), Some(new), Some(redis::Value::Int(ttl))) =
                (bytes(&chunk[0]), bytes(&chunk[1]), chunk.get(2))
            else {
                return Err("the script's reply has an unexpected shape");
            };
            olds.push(old);
            writes.push((new, u64::try_from(*ttl).unwrap_or(u64::MAX)));
        }
        let replicas = limits
            .iter()
            .zip(&olds)
            .map(|((limit, _), old)| limit.spec.replica(old))
            .collect::<Result<Vec<Replica>, _>>()?;
        let decision = wire::replay(&replicas, now, cost, mode, states)
            .map_err(|_| "the replay rejected a cost the script accepted")?;
        if decision.allowed != admitted {
            return Err("the script's verdict differs from the algorithm's");
        }
        for ((((limit, key), replica), old), (new, ttl)) in
            limits.iter().zip(&replicas).zip(&olds).zip(&writes)
        {
            let (expected, expected_ttl) =
                limit
                    .spec
                    .expected_write(replica, old, charge && admitted, now, self.min_ttl_ms);
            if expected.as_slice() != *new {
                return Err("the script wrote a state the algorithm would not");
            }
            if expected_ttl != *ttl {
                return Err("the script set a TTL other than the time to rest");
            }
            if prepared.keep && charge && admitted {
                prepared
                    .kept
                    .borrow_mut()
                    .push(Undo::new(limit, key, old, new));
            }
        }
        Ok(decision)
    }
}

fn bytes(value: &redis::Value) -> Option<&[u8]> {
    match value {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::Nil => Some(&[]),
        _ => None,
    }
}
