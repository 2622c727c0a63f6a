//! Checks through the ratecore Redis module (`RATECORE.CHECK` / `RATECORE.PEEK`) when the
//! server has it, through the Lua script otherwise: detection, the command, and its reply
//! turned into the script's reply shape, so that one verification (`script.rs`) covers
//! both.
//!
//! # Orderings
//! `engine` caches what detection found; it is a hint read and written `Relaxed`: a stale
//! read at worst sends one command the server no longer knows, which is answered with an
//! error before anything runs and is then retried with the script. Counters are `Relaxed`
//! (see `stats`).

use std::sync::atomic::Ordering;

use super::config::RedisEngine;
use super::cross_slot::Undo;
use super::script::Prepared;
use super::stats::bump;
use super::{BackendError, Fault, Inner, RedisCheckError, RedisLimit};
use crate::algorithm::Algorithm;
use crate::decision::{Decision, Mode};

/// `engine` values: not detected yet, the module, the script.
pub(super) const UNKNOWN: u8 = 0;
pub(super) const MODULE: u8 = 1;
pub(super) const SCRIPT: u8 = 2;

impl Inner {
    /// One check: on a cluster whose keys fall in several slots, the cross-slot protocol
    /// (`cross_slot`); otherwise one call.
    pub(super) fn dispatch(
        &self,
        limits: &[(&RedisLimit, &[u8])],
        now: u64,
        cost: u64,
        mode: Mode,
        states: &mut [Decision],
    ) -> Result<Decision, RedisCheckError> {
        if self.cluster.is_some() {
            if let Some(groups) = super::cross_slot::groups(limits) {
                return self.cross_slot(limits, &groups, now, cost, mode, states);
            }
        } else {
            // Pipelined mode runs on the async transport, which talks to one server.
            #[cfg(feature = "redis-tokio")]
            if let Some(result) = self.run_pipelined(limits, now, cost, mode, states) {
                return result;
            }
        }
        self.dispatch_one(limits, now, cost, mode, states, false)
            .map(|(decision, _)| decision)
    }

    /// One call (all keys in one slot), on the module or the script as configured or
    /// detected; with `keep`, also what an admitted charge wrote.
    pub(super) fn dispatch_one(
        &self,
        limits: &[(&RedisLimit, &[u8])],
        now: u64,
        cost: u64,
        mode: Mode,
        states: &mut [Decision],
        keep: bool,
    ) -> Result<(Decision, Vec<Undo>), RedisCheckError> {
        if self.config.engine == RedisEngine::Script {
            bump(&self.counters.script_checks);
            return self.run(limits, now, cost, mode, states, keep);
        }
        let mut prepared = self.prepare(limits, now, cost, mode)?;
        prepared.keep = keep;
        let command = module_command(limits, now, cost, mode, self.min_ttl_ms);
        let forced = self.config.engine == RedisEngine::Module;
        let reply = self.with_connection(|connection, counters| {
            let mut engine = self.engine.load(Ordering::Relaxed);
            if engine == UNKNOWN && !forced {
                engine = if has_module(connection)? {
                    MODULE
                } else {
                    SCRIPT
                };
                self.engine.store(engine, Ordering::Relaxed);
            }
            if forced || engine == MODULE {
                match connection.query(&command) {
                    // The module is gone (a restart or failover without it): nothing ran,
                    // so the script may decide instead.
                    Err(e) if !forced && is_unknown_command(&e) => {
                        self.engine.store(SCRIPT, Ordering::Relaxed);
                    }
                    other => {
                        bump(&counters.module_checks);
                        let reply = other?;
                        self.await_replicas(connection, &prepared)?;
                        return Ok((true, reply));
                    }
                }
            }
            bump(&counters.script_checks);
            let reply = match connection.query(&prepared.eval) {
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                    connection.load_script(&self.script, &prepared.first_key)?;
                    bump(&counters.script_loads);
                    connection.query(&prepared.eval)
                }
                other => other,
            }?;
            self.await_replicas(connection, &prepared)?;
            Ok((false, reply))
        });
        let (from_module, reply) = match reply {
            Ok(answer) => answer,
            Err(error) => {
                // The server may come back with or without the module: detect again.
                if error.fault == Fault::Unavailable {
                    self.engine.store(UNKNOWN, Ordering::Relaxed);
                }
                return Err(RedisCheckError::Backend(error));
            }
        };
        let decision = if from_module {
            self.finish_module(&prepared, reply, states)
        } else {
            self.finish(&prepared, reply, states)
        }?;
        Ok((decision, prepared.kept.take()))
    }

    #[cfg(feature = "redis-tokio")]
    /// Which engine to try first: the module (forced, or detected), the script (forced
    /// or detected), or `UNKNOWN` (detect on this connection first).
    pub(super) fn engine_hint(&self) -> u8 {
        match self.config.engine {
            RedisEngine::Module => MODULE,
            RedisEngine::Script => SCRIPT,
            RedisEngine::Detect => self.engine.load(Ordering::Relaxed),
        }
    }

    #[cfg(feature = "redis-tokio")]
    /// Records what detection found, or forgets it (`UNKNOWN`: after the server went
    /// away, which may bring it back with or without the module).
    pub(super) fn note_engine(&self, engine: u8) {
        if self.config.engine == RedisEngine::Detect {
            self.engine.store(engine, Ordering::Relaxed);
        }
    }

    /// The module's reply turned into the decision: mapped onto the script's reply
    /// shape, replayed and verified like it, and its own decision fields checked against
    /// the replay (both transports).
    pub(super) fn finish_module(
        &self,
        prepared: &Prepared<'_>,
        reply: redis::Value,
        states: &mut [Decision],
    ) -> Result<Decision, RedisCheckError> {
        let (script_shape, fields) = match module_reply(reply, prepared.limits.len()) {
            Ok(parts) => parts,
            Err(message) => return Err(self.inconsistent(message)),
        };
        let decision = self.finish(prepared, script_shape, states)?;
        // The module's own fields must be the replay's (clamped to RESP integers).
        let agrees = fields.first() == Some(&clamped(&decision))
            && fields
                .iter()
                .skip(1)
                .zip(states.iter())
                .all(|(module, replayed)| *module == clamped(replayed));
        if !agrees {
            return Err(self.inconsistent("the module's decision differs from the algorithm's"));
        }
        Ok(decision)
    }
}

impl Inner {
    fn inconsistent(&self, message: &'static str) -> RedisCheckError {
        bump(&self.counters.inconsistent);
        RedisCheckError::Backend(BackendError {
            fault: Fault::Inconsistent,
            message: String::from(message),
        })
    }
}

/// Whether the server knows `RATECORE.CHECK`.
fn has_module(connection: &mut super::cluster::Conn) -> redis::RedisResult<bool> {
    Ok(knows_check(&connection.query(&detect_command())?))
}

/// The detection command: `COMMAND INFO RATECORE.CHECK`.
pub(super) fn detect_command() -> redis::Cmd {
    let mut command = redis::cmd("COMMAND");
    command.arg("INFO").arg("RATECORE.CHECK");
    command
}

/// Whether `COMMAND INFO`'s reply describes the command (it answers nil for an unknown
/// one).
pub(super) fn knows_check(info: &redis::Value) -> bool {
    matches!(info, redis::Value::Array(items)
        if matches!(items.first(), Some(redis::Value::Array(_))))
}

pub(super) fn is_unknown_command(e: &redis::RedisError) -> bool {
    e.code() == Some("ERR") && e.detail().is_some_and(|d| d.starts_with("unknown command"))
}

/// `RATECORE.CHECK numkeys key... limit... NOW now COST cost MINTTL ms` (or `PEEK`).
pub(super) fn module_command(
    limits: &[(&RedisLimit, &[u8])],
    now: u64,
    cost: u64,
    mode: Mode,
    min_ttl_ms: u64,
) -> redis::Cmd {
    let mut cmd = redis::cmd(if mode.charges() {
        "RATECORE.CHECK"
    } else {
        "RATECORE.PEEK"
    });
    cmd.arg(limits.len());
    for (limit, key) in limits {
        cmd.arg(limit.redis_key(key));
    }
    for (limit, _) in limits {
        let quota = limit.quota();
        match limit.algorithm() {
            Algorithm::Gcra => cmd
                .arg("GCRA")
                .arg(quota.limit())
                .arg(quota.period())
                .arg(quota.burst()),
            Algorithm::FixedWindow => cmd.arg("FIXED").arg(quota.limit()).arg(quota.period()),
            Algorithm::SlidingWindowApprox => {
                cmd.arg("APPROX").arg(quota.limit()).arg(quota.period())
            }
            Algorithm::SlidingWindowStrict { sub_windows } => cmd
                .arg("STRICT")
                .arg(quota.limit())
                .arg(quota.period())
                .arg(sub_windows),
        };
    }
    cmd.arg("NOW").arg(now).arg("COST").arg(cost);
    if mode.charges() {
        cmd.arg("MINTTL").arg(min_ttl_ms);
    }
    cmd
}

/// The decision's fields as the module sends them: RESP integers, clamped to `i64::MAX`.
type Fields = [i64; 5];

fn clamped(d: &Decision) -> Fields {
    let c = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    [
        i64::from(d.allowed),
        c(d.limit),
        c(d.remaining),
        c(d.reset_after),
        c(d.retry_after),
    ]
}

/// The module's reply `[allowed, limit, remaining, reset_after, retry_after, now,
/// [per key: allowed, limit, remaining, reset_after, retry_after, old, written, ttl]]` as
/// the script's `[allowed, (old, written, ttl) per key]`, and the decision fields
/// (combined first, then per key).
fn module_reply(
    reply: redis::Value,
    limits: usize,
) -> Result<(redis::Value, Vec<Fields>), &'static str> {
    let redis::Value::Array(items) = reply else {
        return Err("the module's reply is not an array");
    };
    let [a, l, r, rs, rt, _now, redis::Value::Array(per_key)] =
        <[redis::Value; 7]>::try_from(items)
            .map_err(|_| "the module's reply has the wrong length")?
    else {
        return Err("the module's reply has an unexpected shape");
    };
    if per_key.len() != limits {
        return Err("the module's reply has the wrong number of keys");
    }
    let int = |v: &redis::Value| match v {
        redis::Value::Int(i) => Ok(*i),
        _ => Err("the module's reply holds a non-integer field"),
    };
    let mut fields = vec![[int(&a)?, int(&l)?, int(&r)?, int(&rs)?, int(&rt)?]];
    let mut shape = vec![a];
    for entry in per_key {
        let redis::Value::Array(entry) = entry else {
            return Err("the module's reply has an unexpected shape");
        };
        let [a, l, r, rs, rt, old, written, ttl] = <[redis::Value; 8]>::try_from(entry)
            .map_err(|_| "the module's reply has an unexpected shape")?;
        fields.push([int(&a)?, int(&l)?, int(&r)?, int(&rs)?, int(&rt)?]);
        shape.extend([old, written, ttl]);
    }
    Ok((redis::Value::Array(shape), fields))
}
