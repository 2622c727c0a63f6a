//! `ratecore_limit`'s parameters: the zone, the key and cost (their text: the server
//! compiles variables), the response's status, header style and body. Every message
//! names the directive.

use crate::directive_values::{name, param, status, whole};
use crate::quota::ratecore_quota;

/// `style=none`: no rate-limit headers (not a library header style).
pub(crate) const STYLE_NONE: u32 = 255;
const STYLE_IETF: u32 = 4;
const STYLE_SWITCH: u32 = 3;
const GCRA: u32 = 1;
const STYLES: [(&str, u32); 5] = [
    ("evenergy", 1),
    ("uphold", 2),
    ("switch", STYLE_SWITCH),
    ("ietf", STYLE_IETF),
    ("none", STYLE_NONE),
];
pub(crate) const BODY_PROBLEM_JSON: u32 = 1;
pub(crate) const BODY_TEXT: u32 = 2;
pub(crate) const BODY_NONE: u32 = 3;
pub(crate) const BODY_SERVER: u32 = 4;
const BODIES: [(&str, u32); 4] = [
    ("text", BODY_TEXT),
    ("problem+json", BODY_PROBLEM_JSON),
    ("none", BODY_NONE),
    ("nginx", BODY_SERVER),
];
const ON_OFF: [(&str, u32); 2] = [("on", 1), ("off", 0)];

/// A parsed `ratecore_limit`: the texts borrow the directive's arguments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit<'a> {
    pub(crate) zone: &'a [u8],
    pub(crate) key: &'a [u8],
    /// `cost=` holding a `$`: evaluated per request; else empty.
    pub(crate) cost_text: &'a [u8],
    pub(crate) cost: u64,
    pub(crate) status: u32,
    pub(crate) style: u32,
    pub(crate) body: u32,
    pub(crate) dry_run: u32,
    pub(crate) description: &'a [u8],
    pub(crate) problem_type: &'a [u8],
    pub(crate) problem_title: &'a [u8],
    /// The key's variable name when the key is one variable alone (`$remote_addr`, not
    /// a capture like `$1`): read by index, without a script engine; else empty.
    pub(crate) key_variable: &'a [u8],
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Parses `ratecore_limit`'s arguments (without the directive's name). `level_style` is
/// the style of the limits already at the same level, 0 for the first.
///
/// # Errors
/// The message nginx should print.
pub(crate) fn parse<'a>(args: &[&'a [u8]], level_style: u32) -> Result<Limit<'a>, String> {
    let invalid = |key: &str, value: &[u8], expected: &str| {
        format!(
            "ratecore_limit: invalid {key}\"{}\" (expected {expected})",
            text(value)
        )
    };
    let mut limit = Limit {
        zone: &[],
        key: &[],
        cost_text: &[],
        cost: 1,
        status: 429,
        style: STYLE_IETF,
        body: 0,
        dry_run: 0,
        description: b"API",
        problem_type: b"about:blank",
        problem_title: b"Too Many Requests",
        key_variable: &[],
    };
    let mut have_key = false;
    let mut have_style = false;
    for &arg in args {
        if let Some(v) = param(arg, "zone=") {
            limit.zone = v;
        } else if let Some(v) = param(arg, "style=") {
            limit.style = name(&STYLES, v)
                .ok_or_else(|| invalid("style=", v, "evenergy, uphold, switch or ietf"))?;
            have_style = true;
        } else if let Some(v) = param(arg, "status=") {
            limit.status = status(v).ok_or_else(|| invalid("status=", v, "400 to 599"))?;
        } else if let Some(v) = param(arg, "dry_run=") {
            limit.dry_run = name(&ON_OFF, v).ok_or_else(|| invalid("dry_run=", v, "on or off"))?;
        } else if let Some(v) = param(arg, "body=") {
            limit.body = name(&BODIES, v)
                .ok_or_else(|| invalid("body=", v, "text, problem+json, none or nginx"))?;
        } else if let Some(v) = param(arg, "description=") {
            limit.description = v;
        } else if let Some(v) = param(arg, "problem_type=") {
            limit.problem_type = v;
        } else if let Some(v) = param(arg, "problem_title=") {
            limit.problem_title = v;
        } else if let Some(v) = param(arg, "key=") {
            if v.is_empty() {
                return Err("ratecore_limit: key= must not be empty (e.g. \
                            key=$binary_remote_addr)"
                    .into());
            }
            limit.key = v;
            have_key = true;
        } else if let Some(v) = param(arg, "cost=") {
            if v.contains(&b'$') {
                limit.cost_text = v;
            } else {
                limit.cost_text = &[];
                limit.cost =
                    whole(v).ok_or_else(|| invalid("cost=", v, "a whole number or a variable"))?;
            }
        } else {
            let hint = if arg.contains(&b'=') {
                ""
            } else {
                " (a description with spaces is written \"description=...\", quoted whole)"
            };
            return Err(format!(
                "ratecore_limit: unknown parameter \"{}\"{hint}",
                text(arg)
            ));
        }
    }
    if limit.zone.is_empty() {
        return Err("ratecore_limit: zone= is required".into());
    }
    if !have_key {
        return Err("ratecore_limit: key= is required (e.g. key=$binary_remote_addr)".into());
    }
    if limit.body == 0 {
        limit.body = match limit.style {
            STYLE_SWITCH => BODY_TEXT,
            STYLE_NONE => BODY_SERVER,
            _ => BODY_PROBLEM_JSON,
        };
    }
    // the bodies put them in JSON and text as they are
    if [limit.description, limit.problem_type, limit.problem_title]
        .iter()
        .any(|s| std::str::from_utf8(s).is_err())
    {
        return Err(
            "ratecore_limit: description=, problem_type= and problem_title= must be \
                    UTF-8"
                .into(),
        );
    }
    if level_style != 0 && level_style != limit.style {
        let default = if have_style {
            ""
        } else {
            "; the default style is ietf"
        };
        return Err(format!(
            "ratecore_limit: every ratecore_limit at one level must use the same style= (one \
             set of rate-limit headers per response){default}"
        ));
    }
    limit.key_variable = lone_variable(limit.key);
    Ok(limit)
}

/// `$name` with a name of letters, digits and `_` not starting with a digit: `name`.
fn lone_variable(key: &[u8]) -> &[u8] {
    let Some(name) = key.strip_prefix(b"$") else {
        return &[];
    };
    let plain = name.first().is_some_and(|c| !c.is_ascii_digit())
        && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    if plain {
        name
    } else {
        &[]
    }
}

/// The most `quota` admits at once: its limit, or its burst for a GCRA quota that sets
/// one (as the library measures a cost; burst 0 means the limit).
fn quota_cap(quota: &ratecore_quota) -> u64 {
    if quota.algorithm == GCRA && quota.burst != 0 {
        quota.burst
    } else {
        quota.limit
    }
}

/// A constant cost that a quota of the zone can never admit would reject every request
/// at run time: refused at configuration instead (a cost from a variable is checked per
/// request).
///
/// # Errors
/// The message nginx should print (before the directive's place).
pub(crate) fn check_cost(
    cost: u64,
    zone_name: &[u8],
    quotas: &[ratecore_quota],
) -> Result<(), String> {
    for quota in quotas {
        let cap = quota_cap(quota);
        if cost > cap {
            return Err(format!(
                "ratecore_limit: cost={cost} exceeds what zone \"{}\" can ever admit (its quota \
                 {} per {} ms takes at most {cap} at once)",
                text(zone_name),
                quota.limit,
                quota.period_ns / 1_000_000
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(line: &str, level_style: u32) -> Result<Limit<'_>, String> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        parse(&args, level_style)
    }

    #[test]
    fn defaults_and_values() {
        let l = limit("zone=z key=$binary_remote_addr", 0).unwrap();
        assert_eq!((l.zone, l.key), (&b"z"[..], &b"$binary_remote_addr"[..]));
        assert_eq!(
            (l.cost, l.status, l.style, l.body, l.dry_run),
            (1, 429, STYLE_IETF, BODY_PROBLEM_JSON, 0)
        );
        assert_eq!(
            (l.description, l.problem_type),
            (&b"API"[..], &b"about:blank"[..])
        );
        let l = limit(
            "zone=z key=$uri style=switch cost=$http_x_cost status=503 dry_run=on",
            0,
        )
        .unwrap();
        assert_eq!(
            (l.style, l.body, l.status, l.dry_run),
            (STYLE_SWITCH, BODY_TEXT, 503, 1)
        );
        assert_eq!(l.cost_text, b"$http_x_cost");
        let l = limit("zone=z key=$uri style=none cost=7 body=text", STYLE_NONE).unwrap();
        assert_eq!(
            (l.style, l.body, l.cost, l.cost_text),
            (STYLE_NONE, BODY_TEXT, 7, &b""[..])
        );
        assert_eq!(
            limit("zone=z key=$uri style=none", 0).unwrap().body,
            BODY_SERVER
        );
    }

    #[test]
    fn messages_nginx_prints() {
        for (line, level, message) in [
            ("zone=z", 0, "ratecore_limit: key= is required (e.g. key=$binary_remote_addr)"),
            ("key=$uri", 0, "ratecore_limit: zone= is required"),
            ("zone=z key=", 0, "ratecore_limit: key= must not be empty (e.g. key=$binary_remote_addr)"),
            ("zone=z key=$uri status=200", 0, "ratecore_limit: invalid status=\"200\" (expected 400 to 599)"),
            ("zone=z key=$uri style=github", 0,
             "ratecore_limit: invalid style=\"github\" (expected evenergy, uphold, switch or ietf)"),
            ("zone=z key=$uri body=html", 0,
             "ratecore_limit: invalid body=\"html\" (expected text, problem+json, none or nginx)"),
            ("zone=z key=$uri dry_run=yes", 0, "ratecore_limit: invalid dry_run=\"yes\" (expected on or off)"),
            ("zone=z key=$uri cost=-1", 0,
             "ratecore_limit: invalid cost=\"-1\" (expected a whole number or a variable)"),
            ("zone=z key=$uri description=Save readings", 0,
             "ratecore_limit: unknown parameter \"readings\" (a description with spaces is written \"description=...\", quoted whole)"),
            ("zone=z key=$uri colour=blue", 0, "ratecore_limit: unknown parameter \"colour=blue\""),
            ("zone=z key=$host style=switch", 2,
             "ratecore_limit: every ratecore_limit at one level must use the same style= (one set of rate-limit headers per response)"),
            ("zone=z key=$host", 2,
             "ratecore_limit: every ratecore_limit at one level must use the same style= (one set of rate-limit headers per response); the default style is ietf"),
        ] {
            let got = limit(line, level).expect_err(line);
            assert_eq!(got, message, "{line}");
        }
        let q = |algorithm, limit, burst| ratecore_quota {
            limit,
            period_ns: 1_000_000_000,
            burst,
            algorithm,
            sub_windows: 0,
        };
        assert_eq!(check_cost(5, b"z", &[q(2, 5, 0)]), Ok(()));
        assert_eq!(
            check_cost(6, b"z", &[q(2, 5, 0)]).unwrap_err(),
            "ratecore_limit: cost=6 exceeds what zone \"z\" can ever admit (its quota 5 per 1000 \
             ms takes at most 5 at once)"
        );
        assert!(check_cost(3, b"z", &[q(2, 100, 0), q(GCRA, 5, 2)])
            .unwrap_err()
            .ends_with("(its quota 5 per 1000 ms takes at most 2 at once)"));
        let bad = [&b"zone=z"[..], b"key=$uri", b"description=\xff"];
        assert!(parse(&bad, 0).unwrap_err().ends_with("must be UTF-8"));
    }
}
