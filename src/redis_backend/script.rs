//! One check, one `EVALSHA`: validate the check and build the script's arguments, send it
//! (loading the script when the server answers `NOSCRIPT`), then replay the algorithm on
//! the state the server read and verify the server's verdict, writes and TTLs against it
//! (the module's reply too: `module.rs`).

use super::cross_slot::Undo;
use super::pool::classify;
use super::stats::bump;
use super::wire::{self, ApplyError, KeyOutcome, Outcomes, StoredLimit};
use super::{BackendError, Check, Fault, Inner, RedisCheckError, MAX_LIMITS};
use crate::decision::Decision;

/// How a too-weakly replicated write is described (see `pool::classify`).
pub(super) const REPLICATION: &str = "not enough replicas acknowledged the write";

/// The Lua script every check runs.
pub(super) const SCRIPT: &str = include_str!("check.lua");

/// A validated check and its Redis keys (one per limit), for either engine's command.
pub(super) struct Prepared<'a> {
    pub(super) check: Check<'a>,
    charge: bool,
    pub(super) keys: Vec<Vec<u8>>,
    /// Whether to keep what an admitted charge wrote, to undo it (cross-slot checks).
    pub(super) keep: bool,
    /// What the admitted charge wrote, when `keep`.
    pub(super) kept: std::cell::RefCell<Vec<Undo>>,
}

impl Prepared<'_> {
    /// The first Redis key: where the check runs on a cluster.
    pub(super) fn first_key(&self) -> &[u8] {
        self.keys.first().map_or(&[], Vec::as_slice)
    }
}

impl Inner {
    /// Validates a check and computes its Redis keys (transport-independent: every
    /// transport sends the command built from them and hands the reply to `finish`);
    /// with `keep`, what an admitted charge writes is kept, to undo it.
    pub(super) fn prepare<'a>(
        &self,
        check: Check<'a>,
        keep: bool,
    ) -> Result<Prepared<'a>, RedisCheckError> {
        let limits = check.limits;
        if limits.is_empty() {
            return Err(RedisCheckError::Limits("a check needs at least one limit"));
        }
        if limits.len() > MAX_LIMITS {
            return Err(RedisCheckError::Limits(
                "a check combines at most 16 limits",
            ));
        }
        for (limit, _) in limits {
            limit.spec.check_cost(check.cost)?;
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
        bump(&self.counters.checks);
        Ok(Prepared {
            check,
            charge: check.mode.charges() && check.cost > 0,
            keys,
            keep,
            kept: std::cell::RefCell::default(),
        })
    }

    /// The script's `EVALSHA` for a prepared check (built only when the script runs).
    pub(super) fn eval(&self, prepared: &Prepared<'_>) -> redis::Cmd {
        let Check {
            limits, now, cost, ..
        } = prepared.check;
        let mut args: Vec<u64> = Vec::with_capacity(4 + 13 * limits.len());
        args.extend_from_slice(&[
            u64::from(prepared.charge),
            self.min_ttl_ms,
            now >> 32,
            now & 0xffff_ffff,
        ]);
        for (limit, _) in limits {
            limit.spec.push_args(now, cost, &mut args);
        }
        let mut eval = redis::cmd("EVALSHA");
        eval.arg(self.script.get_hash())
            .arg(prepared.keys.len())
            .arg(&prepared.keys)
            .arg(&args);
        eval
    }

    /// Runs the script on a blocking connection, loading it first when the server
    /// answers `NOSCRIPT` (nothing ran then).
    ///
    /// Not the `redis` crate's `Script::invoke`, which does the same reload but hides it
    /// (`RedisStats::script_loads` counts reloads), and on a cluster sends `SCRIPT LOAD`
    /// to every primary, so one node down elsewhere would fail a check whose own slot is
    /// up; the async and pipelined transports also need the bare `EVALSHA` command to
    /// batch it with `WAIT`. With `then` (a `WAIT`), both are sent together, and both
    /// again after the load (see [`Conn::send`](super::cluster::Conn::send)).
    pub(super) fn query_script(
        &self,
        connection: &mut super::cluster::Conn,
        prepared: &Prepared<'_>,
        then: Option<&redis::Cmd>,
    ) -> redis::RedisResult<redis::Value> {
        let eval = self.eval(prepared);
        let key = prepared.first_key();
        match connection.send(&eval, then, key) {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                connection.load_script(&self.script, key)?;
                bump(&self.counters.script_loads);
                match connection.send(&eval, then, key) {
                    Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                        connection.send(&with_body(&eval), then, key)
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    /// With [`RedisConfig::wait_replicas`](super::RedisConfig::wait_replicas), after a
    /// check that may have written: `WAIT replicas timeout_ms`, sent to the primary that
    /// ran the check (its first key's), which answers how many replicas hold every write
    /// the connection made there.
    pub(super) fn wait_command(&self, prepared: &Prepared<'_>) -> Option<redis::Cmd> {
        let wanted = self.config.wait_replicas;
        if wanted == 0 || !prepared.charge {
            return None;
        }
        let millis = u64::try_from(self.config.wait_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut wait = redis::cmd("WAIT");
        wait.arg(wanted).arg(millis);
        Some(wait)
    }

    /// `WAIT`'s reply: too few replicas in time is an error `pool::classify` maps to
    /// [`Fault::Replication`].
    pub(super) fn replicated(&self, reply: &redis::Value) -> redis::RedisResult<()> {
        let wanted = self.config.wait_replicas;
        let acknowledged: u64 = redis::from_redis_value(reply)?;
        if acknowledged < u64::from(wanted) {
            return Err(redis::RedisError::from((
                redis::ErrorKind::ClientError,
                REPLICATION,
                format!("{acknowledged} of {wanted} replicas acknowledged the write"),
            )));
        }
        Ok(())
    }

    /// The check's reply out of the `[check, WAIT]` pair (both transports), when `WAIT`
    /// says enough replicas hold the write (else a counted [`Fault::Replication`]).
    pub(super) fn after_wait(&self, reply: redis::Value) -> Result<redis::Value, RedisCheckError> {
        let not_pair = || {
            RedisCheckError::Backend(self.count(
                Fault::Inconsistent,
                String::from("the reply to a check and WAIT is not a pair"),
            ))
        };
        let redis::Value::Array(mut replies) = reply else {
            return Err(not_pair());
        };
        if replies.len() != 2 {
            return Err(not_pair());
        }
        self.replicated(&replies[1])
            .map_err(|e| RedisCheckError::Backend(self.count(classify(&e), e.to_string())))?;
        Ok(replies.swap_remove(0))
    }

    /// Turns the script's reply `[admitted, (old, written, ttl) per key]` into the
    /// decision, replayed and verified.
    pub(super) fn finish(
        &self,
        prepared: &Prepared<'_>,
        reply: redis::Value,
        states: &mut [Decision],
    ) -> Result<Decision, RedisCheckError> {
        let parsed = script_reply(&reply, prepared.check.limits.len());
        self.verified(prepared, parsed, states, |_, outcomes, writes| {
            for (outcome, (new, ttl)) in outcomes.iter().zip(writes) {
                if *outcome.written != **new {
                    return Err("the script wrote a state the algorithm would not");
                }
                if outcome.ttl_ms != *ttl {
                    return Err("the script set a TTL other than the time to rest");
                }
            }
            Ok(())
        })
    }

    /// Replays the check on the values the server read (`parsed`: its verdict, the
    /// values, and what the reply says was done), with [`wire::apply`], the code the
    /// module runs; `agrees` compares the replay with the rest of the reply. A
    /// disagreement is a [`Fault::Inconsistent`], counted.
    pub(super) fn verified<T>(
        &self,
        prepared: &Prepared<'_>,
        parsed: Result<(bool, Vec<&[u8]>, T), &'static str>,
        states: &mut [Decision],
        agrees: impl FnOnce(&Decision, &[KeyOutcome], &T) -> Result<(), &'static str>,
    ) -> Result<Decision, RedisCheckError> {
        let replayed = parsed.and_then(|(admitted, olds, rest)| {
            let Check {
                limits,
                now,
                cost,
                mode,
            } = prepared.check;
            let stored: Vec<StoredLimit> = limits
                .iter()
                .map(|(l, _)| StoredLimit::of(l.spec))
                .collect();
            let mut outcomes = Outcomes::new();
            let decision = wire::apply(
                &stored,
                &olds,
                now,
                cost,
                mode,
                self.min_ttl_ms,
                &mut outcomes,
            )
            .map_err(|e| match e {
                ApplyError::State(_, why) => why,
                _ => "the replay rejected a cost the server accepted",
            })?;
            if decision.allowed != admitted {
                return Err("the server's verdict differs from the algorithm's");
            }
            agrees(&decision, &outcomes, &rest)?;
            for (state, outcome) in states.iter_mut().zip(&outcomes) {
                *state = outcome.decision;
            }
            if prepared.keep && prepared.charge && admitted {
                let mut kept = prepared.kept.borrow_mut();
                for (((limit, key), old), outcome) in limits.iter().zip(&olds).zip(&outcomes) {
                    kept.push(Undo::new(limit, key, old, &outcome.written));
                }
            }
            Ok(decision)
        });
        let decision = replayed.map_err(|message| {
            bump(&self.counters.inconsistent);
            RedisCheckError::Backend(BackendError {
                fault: Fault::Inconsistent,
                message: String::from(message),
            })
        })?;
        bump(&self.counters.decided);
        Ok(decision)
    }
}

/// The verdict, the values read and the (written, TTL) pairs of the script's reply.
type ScriptReply<'r> = (bool, Vec<&'r [u8]>, Vec<(&'r [u8], u64)>);

fn script_reply(reply: &redis::Value, limits: usize) -> Result<ScriptReply<'_>, &'static str> {
    let redis::Value::Array(items) = reply else {
        return Err("the script's reply is not an array");
    };
    if items.len() != 1 + 3 * limits {
        return Err("the script's reply has the wrong length");
    }
    let admitted = verdict(items.first())?;
    let mut olds: Vec<&[u8]> = Vec::with_capacity(limits);
    let mut writes: Vec<(&[u8], u64)> = Vec::with_capacity(limits);
    for chunk in items.get(1..).unwrap_or(&[]).chunks_exact(3) {
        let (Some(old), Some(new), Some(redis::Value::Int(ttl))) =
            (bytes(&chunk[0]), bytes(&chunk[1]), chunk.get(2))
        else {
            return Err("the script's reply has an unexpected shape");
        };
        olds.push(old);
        writes.push((new, u64::try_from(*ttl).unwrap_or(u64::MAX)));
    }
    Ok((admitted, olds, writes))
}

/// A reply's verdict: 1 admitted, 0 denied.
pub(super) fn verdict(value: Option<&redis::Value>) -> Result<bool, &'static str> {
    match value {
        Some(redis::Value::Int(1)) => Ok(true),
        Some(redis::Value::Int(0)) => Ok(false),
        _ => Err("the server's verdict is not 0 or 1"),
    }
}

/// A value read or written: a bulk string, or nil for none.
pub(super) fn bytes(value: &redis::Value) -> Option<&[u8]> {
    match value {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::Nil => Some(&[]),
        _ => None,
    }
}

/// `EVAL` with the script's body in place of an `EVALSHA` of it: the same keys and
/// arguments. For a check still answered `NOSCRIPT` after the script was loaded where
/// its slot lives: during a slot migration an `ASK` sends it to the importing node,
/// which may never have loaded it, and a node compiles (and keeps) a script sent whole.
pub(super) fn with_body(evalsha: &redis::Cmd) -> redis::Cmd {
    let mut eval = redis::cmd("EVAL");
    eval.arg(SCRIPT);
    for arg in evalsha.args_iter().skip(2) {
        if let redis::Arg::Simple(bytes) = arg {
            eval.arg(bytes);
        }
    }
    eval
}
