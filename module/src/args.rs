//! The command's arguments, parsed into a check: pure, so every malformed vector is
//! unit-tested without a server.
//!
//! ```text
//! RATECORE.CHECK numkeys key [key ...] limit [limit ...] (NOW ns | TIME) [COST n] [MINTTL ms]
//!                [DIGEST]
//! limit: GCRA limit period_ns burst | FIXED limit period_ns | APPROX limit period_ns
//!      | STRICT limit period_ns sub_windows
//! ```
//!
//! One limit per key, in key order. Keywords are case-insensitive; numbers are unsigned
//! decimal integers without sign or spaces.

use arrayvec::ArrayVec;
use ratecore::redis_state::StoredLimit;
use ratecore::{Algorithm, Quota, QuotaError};

/// Where `now` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Now {
    /// The caller's `now`, ns on the callers' shared epoch.
    Caller(u64),
    /// The server's clock (Unix epoch; milliseconds on Redis 7.0).
    Server,
}

/// A parsed check (keys are `args[2..2 + keys]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// How many keys follow `numkeys`.
    pub keys: usize,
    /// One limit per key.
    pub limits: ArrayVec<StoredLimit, MAX_KEYS>,
    /// The time of the check.
    pub now: Now,
    /// The request's cost (default 1).
    pub cost: u64,
    /// The least TTL of a write, in ms (default 1).
    pub min_ttl_ms: u64,
    /// `DIGEST`: reply with the verdict, a digest of the fields and the values read,
    /// instead of the fields.
    pub digest: bool,
}

/// The error reply for malformed arguments (without the leading `ERR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(message.into()))
}

/// The most keys one check combines (the crate's composite limit).
pub const MAX_KEYS: usize = ratecore::composite::MAX_LIMITS;

/// The key count and the keys' positions, for `COMMAND GETKEYS` and Cluster routing:
/// `numkeys` must be a number from 1 to [`MAX_KEYS`] and the keys must be present.
pub fn key_count(args: &[&[u8]]) -> Result<usize, ArgError> {
    let Some(raw) = args.get(1) else {
        return err("wrong number of arguments");
    };
    let keys = match number(raw) {
        Some(n) if (1..=MAX_KEYS as u64).contains(&n) => n as usize,
        _ => return err(format!("numkeys must be a number from 1 to {MAX_KEYS}")),
    };
    if args.len() < 2 + keys {
        return err("fewer keys than numkeys");
    }
    Ok(keys)
}

/// Parses a whole argument vector (the command name first).
pub fn parse(args: &[&[u8]]) -> Result<Check, ArgError> {
    let keys = key_count(args)?;
    let mut rest = Cursor {
        args: &args[2 + keys..],
        at: 0,
    };
    let mut limits = ArrayVec::new();
    for index in 0..keys {
        limits.push(limit(&mut rest, index)?);
    }
    let mut now = None;
    let mut cost = None;
    let mut min_ttl_ms = None;
    let mut digest = None;
    while let Some(word) = rest.next() {
        let is = |name: &str| word.eq_ignore_ascii_case(name.as_bytes());
        if is("NOW") {
            set(
                &mut now,
                Now::Caller(rest.number(What::Option("NOW"))?),
                "NOW or TIME",
            )?;
        } else if is("TIME") {
            set(&mut now, Now::Server, "NOW or TIME")?;
        } else if is("DIGEST") {
            set(&mut digest, true, "DIGEST")?;
        } else if is("COST") {
            set(&mut cost, rest.number(What::Option("COST"))?, "COST")?;
        } else if is("MINTTL") {
            set(
                &mut min_ttl_ms,
                rest.number(What::Option("MINTTL"))?,
                "MINTTL",
            )?;
        } else {
            return err(format!(
                "unknown option '{}' (expected NOW, TIME, COST, MINTTL or DIGEST, or one limit per key)",
                printable(word)
            ));
        }
    }
    let Some(now) = now else {
        return err("NOW ns or TIME is required");
    };
    let cost = cost.unwrap_or(1);
    for (index, limit) in limits.iter().enumerate() {
        if cost > limit.capacity() {
            return err(format!(
                "COST {cost} exceeds limit {}'s capacity {}",
                index + 1,
                limit.capacity()
            ));
        }
    }
    Ok(Check {
        keys,
        limits,
        now,
        cost,
        min_ttl_ms: min_ttl_ms.unwrap_or(1),
        digest: digest.unwrap_or(false),
    })
}

fn set<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), ArgError> {
    if slot.is_some() {
        return err(format!("{what} given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn limit(rest: &mut Cursor<'_>, index: usize) -> Result<StoredLimit, ArgError> {
    let which = index + 1;
    let Some(name) = rest.next() else {
        return err(format!("limit {which} is missing (one limit per key)"));
    };
    let what = What::Limit(which);
    let is = |algorithm: &str| name.eq_ignore_ascii_case(algorithm.as_bytes());
    let algorithm = if is("GCRA") {
        Algorithm::Gcra
    } else if is("FIXED") {
        Algorithm::FixedWindow
    } else if is("APPROX") {
        Algorithm::SlidingWindowApprox
    } else if is("STRICT") {
        Algorithm::SlidingWindowStrict { sub_windows: 0 }
    } else {
        return err(format!(
            "{what}: unknown algorithm '{}' (expected GCRA, FIXED, APPROX or STRICT)",
            printable(name)
        ));
    };
    let count = rest.number(what)?;
    let period = rest.number(what)?;
    let quota = Quota::new(count, period).map_err(|e| quota_error(what, e))?;
    let (algorithm, quota) = match algorithm {
        Algorithm::Gcra => {
            let burst = rest.number(what)?;
            let quota = quota.with_burst(burst).map_err(|e| quota_error(what, e))?;
            (algorithm, quota)
        }
        Algorithm::SlidingWindowStrict { .. } => {
            let n = rest.number(what)?;
            let Ok(sub_windows) = u32::try_from(n) else {
                return err(format!("{what}: sub_windows {n} is too large"));
            };
            (Algorithm::SlidingWindowStrict { sub_windows }, quota)
        }
        _ => (algorithm, quota),
    };
    StoredLimit::new(algorithm, &quota).map_err(|e| quota_error(what, e))
}

/// What a number belongs to, for error messages (built only on error).
#[derive(Clone, Copy)]
enum What {
    Limit(usize),
    Option(&'static str),
}

impl core::fmt::Display for What {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Limit(n) => write!(f, "limit {n}"),
            Self::Option(name) => f.write_str(name),
        }
    }
}

fn quota_error(what: What, e: QuotaError) -> ArgError {
    ArgError(format!("{what}: {e}"))
}

struct Cursor<'a> {
    args: &'a [&'a [u8]],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let arg = self.args.get(self.at)?;
        self.at += 1;
        Some(arg)
    }

    fn number(&mut self, what: What) -> Result<u64, ArgError> {
        match self.next() {
            None => err(format!("{what}: a number is missing")),
            Some(raw) => number(raw).ok_or_else(|| {
                ArgError(format!(
                    "{what}: '{}' is not an unsigned 64-bit integer",
                    printable(raw)
                ))
            }),
        }
    }
}

/// `raw` for an error reply: printable ASCII as is, every other byte as `\xNN` (a reply
/// must not carry line breaks, and clients expect text).
fn printable(raw: &[u8]) -> String {
    let mut out = String::new();
    for &b in raw.iter().take(64) {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// An unsigned decimal integer: digits only (no sign, no spaces), at most `u64::MAX`.
fn number(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() {
        return None;
    }
    raw.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Check, ArgError> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        parse(&args)
    }

    #[test]
    fn parses_every_algorithm_and_option() {
        let check = parse_str(
            "RATECORE.CHECK 4 a b c d GCRA 10 1000 20 fixed 5 100 APPROX 5 100 STRICT 5 100 4 \
             NOW 123 COST 2 MINTTL 7 digest",
        )
        .unwrap();
        assert!(check.digest);
        assert_eq!(check.keys, 4);
        assert_eq!(check.limits.len(), 4);
        assert_eq!(check.limits[0].capacity(), 20);
        assert_eq!(check.now, Now::Caller(123));
        assert_eq!(check.cost, 2);
        assert_eq!(check.min_ttl_ms, 7);
        let check = parse_str("RATECORE.CHECK 1 a GCRA 10 1000 10 TIME").unwrap();
        assert_eq!(
            (check.now, check.cost, check.min_ttl_ms, check.digest),
            (Now::Server, 1, 1, false)
        );
    }

    #[test]
    fn rejects_malformed_vectors_with_a_reason() {
        for (line, reason) in [
            ("RATECORE.CHECK", "wrong number"),
            ("RATECORE.CHECK 0 a", "numkeys"),
            ("RATECORE.CHECK 17 a", "numkeys"),
            ("RATECORE.CHECK -1 a", "numkeys"),
            ("RATECORE.CHECK 2 a", "fewer keys"),
            ("RATECORE.CHECK 1 a", "limit 1 is missing"),
            ("RATECORE.CHECK 1 a LEAKY 1 1 NOW 1", "unknown algorithm"),
            ("RATECORE.CHECK 1 a GCRA 1 1000", "a number is missing"),
            ("RATECORE.CHECK 1 a GCRA 0 1000 1 NOW 1", "limit 1:"),
            ("RATECORE.CHECK 1 a GCRA 1 0 1 NOW 1", "limit 1:"),
            ("RATECORE.CHECK 1 a FIXED 1 +5 NOW 1", "not an unsigned"),
            (
                "RATECORE.CHECK 1 a FIXED 1 18446744073709551616 NOW 1",
                "not an unsigned",
            ),
            ("RATECORE.CHECK 1 a STRICT 1 100 0 NOW 1", "limit 1:"),
            (
                "RATECORE.CHECK 1 a STRICT 1 100 4294967296 NOW 1",
                "too large",
            ),
            ("RATECORE.CHECK 1 a FIXED 1 100", "NOW ns or TIME"),
            ("RATECORE.CHECK 1 a FIXED 1 100 NOW 1 TIME", "given twice"),
            (
                "RATECORE.CHECK 1 a FIXED 1 100 NOW 1 DIGEST DIGEST",
                "DIGEST given twice",
            ),
            ("RATECORE.CHECK 1 a FIXED 1 100 NOW", "a number is missing"),
            ("RATECORE.CHECK 1 a FIXED 1 100 NOW 1 COST 2", "exceeds"),
            (
                "RATECORE.CHECK 1 a FIXED 1 100 NOW 1 PEEK",
                "unknown option",
            ),
        ] {
            let e = parse_str(line).unwrap_err();
            assert!(e.0.contains(reason), "{line}: {e:?}");
        }
    }

    #[test]
    fn error_replies_quote_bytes_as_printable_ascii() {
        let args: [&[u8]; 7] = [
            b"RATECORE.CHECK",
            b"1",
            b"a",
            b"FIXED",
            b"1",
            b"100",
            b"\r\n\0\xff",
        ];
        let e = parse(&args).unwrap_err();
        assert!(e.0.contains("'\\x0d\\x0a\\x00\\xff'"), "{e:?}");
    }
}
