//! Checks through the ratecore Redis module (`RATECORE.CHECK` / `RATECORE.PEEK`) when the
//! server has it, through the Lua script otherwise: detection, the command, and its
//! short reply (the verdict, the values read and a digest of the rest), verified by the
//! same replay as the script's (`script.rs`).
//!
//! # Orderings
//! `engine` caches what detection found; it is a hint read and written `Relaxed`: a stale
//! read at worst sends one command the server no longer knows, which is answered with an
//! error before anything runs and is then retried with the script. Counters are `Relaxed`
//! (see `stats`).

use std::sync::atomic::Ordering;

use super::config::RedisEngine;
use super::cross_slot::Undo;
use super::script::{bytes, verdict, Prepared};
use super::stats::bump;
use super::wire;
use super::{Check, Fault, Inner, RedisCheckError};
use crate::algorithm::Algorithm;
use crate::decision::Decision;
use crate::quota::Quota;

/// `engine` values: not detected yet, the module, the script.
pub(super) const UNKNOWN: u8 = 0;
pub(super) const MODULE: u8 = 1;
pub(super) const SCRIPT: u8 = 2;

impl Inner {
    /// One check: on a cluster whose keys fall in several slots, the cross-slot protocol
    /// (`cross_slot`); otherwise one call.
    pub(super) fn dispatch(
        &self,
        check: Check<'_>,
        states: &mut [Decision],
    ) -> Result<Decision, RedisCheckError> {
        // Pipelined mode runs the async transport's check, cross-slot protocol included.
        #[cfg(feature = "redis-tokio")]
        if let Some(result) = self.run_pipelined(check, states) {
            return result;
        }
        if self.cluster.is_some() {
            if let Some(groups) = super::cross_slot::groups(check.limits) {
                return self.cross_slot(check, &groups, states);
            }
        }
        self.dispatch_one(check, states, false)
            .map(|(decision, _)| decision)
    }

    /// One call (all keys in one slot), on the module or the script as configured or
    /// detected; with `keep`, also what an admitted charge wrote.
    pub(super) fn dispatch_one(
        &self,
        check: Check<'_>,
        states: &mut [Decision],
        keep: bool,
    ) -> Result<(Decision, Vec<Undo>), RedisCheckError> {
        let prepared = self.prepare(check, keep)?;
        let detecting = self.config.engine == RedisEngine::Detect;
        // `WAIT` travels with the check, on the same connection (see `Conn::send`).
        let wait = self.wait_command(&prepared);
        let reply = self.with_connection(|connection, counters| {
            let mut engine = self.engine_hint();
            if engine == UNKNOWN {
                let info = connection.query(&detect_command(), prepared.first_key())?;
                engine = self.detected(&info);
            }
            if engine == MODULE {
                let command = module_command(&prepared, self.min_ttl_ms);
                match connection.send(&command, wait.as_ref(), prepared.first_key()) {
                    // The module is gone (a restart or failover without it): nothing ran,
                    // so the script may decide instead.
                    Err(e) if detecting && is_unknown_command(&e) => self.note_engine(SCRIPT),
                    other => {
                        bump(&counters.module_checks);
                        return Ok((true, other?));
                    }
                }
            }
            bump(&counters.script_checks);
            let reply = self.query_script(connection, &prepared, wait.as_ref())?;
            Ok((false, reply))
        });
        let (from_module, reply) = match reply {
            Ok(answer) => answer,
            Err(error) => {
                // The server may come back with or without the module: detect again.
                if error.fault == Fault::Unavailable {
                    self.note_engine(UNKNOWN);
                }
                return Err(RedisCheckError::Backend(error));
            }
        };
        let reply = match wait {
            Some(_) => self.after_wait(reply)?,
            None => reply,
        };
        self.verify_reply(from_module, &prepared, reply, states)
    }

    /// Verifies the reply of whichever engine ran the check, and hands back what an
    /// admitted charge wrote (kept for an undo).
    pub(super) fn verify_reply(
        &self,
        from_module: bool,
        prepared: &Prepared<'_>,
        reply: redis::Value,
        states: &mut [Decision],
    ) -> Result<(Decision, Vec<Undo>), RedisCheckError> {
        let decision = if from_module {
            self.finish_module(prepared, &reply, states)
        } else {
            self.finish(prepared, reply, states)
        }?;
        Ok((decision, prepared.kept.take()))
    }

    /// Which engine to try first: the module (forced, or detected), the script (forced
    /// or detected), or `UNKNOWN` (detect on this connection first).
    pub(super) fn engine_hint(&self) -> u8 {
        match self.config.engine {
            RedisEngine::Module => MODULE,
            RedisEngine::Script => SCRIPT,
            RedisEngine::Detect => self.engine.load(Ordering::Relaxed),
        }
    }

    /// The engine `COMMAND INFO RATECORE.CHECK`'s reply (`info`) says the server has,
    /// recorded.
    pub(super) fn detected(&self, info: &redis::Value) -> u8 {
        let engine = if knows_check(info) { MODULE } else { SCRIPT };
        self.note_engine(engine);
        engine
    }

    /// Records what detection found, or forgets it (`UNKNOWN`: after the server went
    /// away, which may bring it back with or without the module).
    pub(super) fn note_engine(&self, engine: u8) {
        if self.config.engine == RedisEngine::Detect {
            self.engine.store(engine, Ordering::Relaxed);
        }
    }

    /// The module's reply `[allowed, digest, old value per key]` (`DIGEST`) turned into
    /// the decision: replayed on the values read like the script's, and the digest of
    /// the replay's fields, writes and TTLs compared with the module's (both
    /// transports).
    pub(super) fn finish_module(
        &self,
        prepared: &Prepared<'_>,
        reply: &redis::Value,
        states: &mut [Decision],
    ) -> Result<Decision, RedisCheckError> {
        let parsed = digest_reply(reply, prepared.check.limits.len());
        let now = prepared.check.now;
        self.verified(prepared, parsed, states, |decision, outcomes, digest| {
            if wire::digest(decision, now, outcomes) == *digest {
                Ok(())
            } else {
                Err("the module's decision differs from the algorithm's")
            }
        })
    }
}

/// The detection command: `COMMAND INFO RATECORE.CHECK`.
pub(super) fn detect_command() -> redis::Cmd {
    let mut command = redis::cmd("COMMAND");
    command.arg("INFO").arg("RATECORE.CHECK");
    command
}

/// Whether `COMMAND INFO`'s reply describes the command (it answers nil for an unknown
/// one).
fn knows_check(info: &redis::Value) -> bool {
    matches!(info, redis::Value::Array(items)
        if matches!(items.first(), Some(redis::Value::Array(_))))
}

pub(super) fn is_unknown_command(e: &redis::RedisError) -> bool {
    e.code() == Some("ERR") && e.detail().is_some_and(|d| d.starts_with("unknown command"))
}

/// `RATECORE.CHECK numkeys key... limit... NOW now COST cost MINTTL ms DIGEST` (or
/// `PEEK`), sized up front so that building it copies each argument once.
pub(super) fn module_command(prepared: &Prepared<'_>, min_ttl_ms: u64) -> redis::Cmd {
    let Check { limits, mode, .. } = prepared.check;
    let args = 10 + limits.len() * 6;
    let mut cmd = redis::Cmd::with_capacity(args, 64 + limits.len() * 128);
    cmd.arg(if mode.charges() {
        "RATECORE.CHECK"
    } else {
        "RATECORE.PEEK"
    })
    .arg(limits.len())
    .arg(&prepared.keys);
    for (limit, _) in limits {
        cmd.arg(&limit.module_args);
    }
    cmd.arg("NOW")
        .arg(prepared.check.now)
        .arg("COST")
        .arg(prepared.check.cost);
    if mode.charges() {
        cmd.arg("MINTTL").arg(min_ttl_ms);
    }
    cmd.arg("DIGEST");
    cmd
}

/// A limit's words in `RATECORE.CHECK`: `GCRA limit period_ns burst`, `FIXED limit
/// period_ns`, `APPROX limit period_ns` or `STRICT limit period_ns sub_windows`.
pub(super) fn limit_args(algorithm: Algorithm, quota: &Quota) -> Vec<Vec<u8>> {
    let number = |n: u64| n.to_string().into_bytes();
    let (name, last) = match algorithm {
        Algorithm::Gcra => ("GCRA", Some(quota.burst())),
        Algorithm::FixedWindow => ("FIXED", None),
        Algorithm::SlidingWindowApprox => ("APPROX", None),
        Algorithm::SlidingWindowStrict { sub_windows } => ("STRICT", Some(u64::from(sub_windows))),
    };
    let mut args = vec![
        name.as_bytes().to_vec(),
        number(quota.limit()),
        number(quota.period()),
    ];
    args.extend(last.map(number));
    args
}

/// The verdict, the values read and the digest of the module's `DIGEST` reply.
fn digest_reply(
    reply: &redis::Value,
    limits: usize,
) -> Result<(bool, Vec<&[u8]>, u64), &'static str> {
    let redis::Value::Array(items) = reply else {
        return Err("the module's reply is not an array");
    };
    if items.len() != 2 + limits {
        return Err("the module's reply has the wrong length");
    }
    let admitted = verdict(items.first())?;
    let Some(redis::Value::Int(digest)) = items.get(1) else {
        return Err("the module's reply has an unexpected shape");
    };
    let olds = items[2..]
        .iter()
        .map(bytes)
        .collect::<Option<Vec<&[u8]>>>()
        .ok_or("the module's reply has an unexpected shape")?;
    // The digest's 64 bits travel as a RESP integer.
    Ok((admitted, olds, *digest as u64))
}
