//! `ratecore_zone`'s parameters: the zone's name, size, quotas and capacity, with the
//! table sized to the shared memory (`capacity=auto` takes the largest power of two that
//! fits). Every message names the directive, and the zone once its name is known.

use crate::directive::ratecore_shm_layout;
use crate::directive_values::{name, param, size, time_ns, whole};
use crate::quota::ratecore_quota;
use crate::region::ratecore_table_region_size;
use crate::status::ratecore_status;
use crate::table::{RATECORE_MAX_TABLE_CAPACITY, RATECORE_MAX_TABLE_LIMITS};

/// The algorithms by their directive names, in code order (code = index + 1).
pub(crate) const ALGORITHMS: [(&str, u32); 4] = [
    ("gcra", 1),
    ("fixed_window", 2),
    ("sliding_window", 3),
    ("sliding_window_strict", 4),
];
const STRICT: u32 = 4;
const GCRA: u32 = 1;
const ALGORITHMS_EXPECTED: &str = "gcra, fixed_window, sliding_window or sliding_window_strict";
const TIME_EXPECTED: &str = "an nginx time such as 500ms, 10s, 5m, 1h or 1d";
const FULL_POLICIES: [(&str, u32); 3] = [("evict", 0), ("deny", 1), ("allow", 2)];
/// Sub-windows of a strict window when the directive names none.
const DEFAULT_SUB_WINDOWS: u32 = 60;
/// The smallest table `capacity=auto` tries.
const SMALLEST_AUTO: u64 = 8;

/// How the zone's shared memory is laid out around the region, as the server states it.
pub(crate) type Layout = ratecore_shm_layout;

impl Layout {
    /// The shared memory a region of `region` bytes needs: its header and region in whole
    /// pages, each page with its descriptor, one more page, and the fixed part; at least
    /// `min_pages` pages.
    pub(crate) fn needed(&self, region: usize) -> usize {
        let page = self.page_size.max(1);
        let pages = self.header.saturating_add(region).div_ceil(page);
        let needed = pages
            .saturating_add(1)
            .saturating_mul(page.saturating_add(self.per_page))
            .saturating_add(self.fixed);
        needed
            .div_ceil(page)
            .saturating_mul(page)
            .max(self.min_pages.saturating_mul(page))
    }
}

/// A parsed `ratecore_zone`: the name borrows the directive's argument.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Zone<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) size: usize,
    pub(crate) quotas: [ratecore_quota; RATECORE_MAX_TABLE_LIMITS],
    pub(crate) quota_count: usize,
    pub(crate) capacity: u64,
    pub(crate) full_policy: u32,
    pub(crate) region_size: usize,
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

const EMPTY_QUOTA: ratecore_quota = ratecore_quota {
    limit: 0,
    period_ns: 0,
    burst: 0,
    algorithm: 0,
    sub_windows: 0,
};

/// The single-quota parameters (`algorithm=` ... `sub_windows=`), as seen.
#[derive(Default)]
struct Single {
    algorithm: Option<u32>,
    limit: Option<u64>,
    period_ns: Option<u64>,
    burst: Option<u64>,
    sub_windows: Option<u32>,
}

/// Parses `ratecore_zone`'s arguments (without the directive's name).
///
/// # Errors
/// The message nginx should print.
pub(crate) fn parse<'a>(args: &[&'a [u8]], layout: &Layout) -> Result<Zone<'a>, String> {
    let invalid = |key: &str, value: &[u8], expected: &str| {
        format!(
            "ratecore_zone: invalid {key}\"{}\" (expected {expected})",
            text(value)
        )
    };
    let mut zone_size = 0;
    let mut zone_name: &[u8] = &[];
    let mut single = Single::default();
    let mut full_policy = 0;
    let mut capacity = 0; // auto
    let mut quota_texts: [&[u8]; RATECORE_MAX_TABLE_LIMITS] = [&[]; RATECORE_MAX_TABLE_LIMITS];
    let mut nq = 0;
    for &arg in args {
        if let Some(v) = param(arg, "size=") {
            zone_size = size(v).ok_or_else(|| invalid("size=", v, "e.g. 64k, 10m, 1g"))?;
        } else if let Some(v) = param(arg, "algorithm=") {
            single.algorithm = Some(
                name(&ALGORITHMS, v)
                    .ok_or_else(|| invalid("algorithm=", v, ALGORITHMS_EXPECTED))?,
            );
        } else if let Some(v) = param(arg, "limit=") {
            single.limit = Some(whole(v).ok_or_else(|| invalid("limit=", v, "a whole number"))?);
        } else if let Some(v) = param(arg, "period=") {
            single.period_ns =
                Some(time_ns(v).ok_or_else(|| invalid("period=", v, TIME_EXPECTED))?);
        } else if let Some(v) = param(arg, "burst=") {
            single.burst = Some(whole(v).ok_or_else(|| invalid("burst=", v, "a whole number"))?);
        } else if let Some(v) = param(arg, "sub_windows=") {
            let n = whole(v).and_then(|n| u32::try_from(n).ok());
            single.sub_windows =
                Some(n.ok_or_else(|| invalid("sub_windows=", v, "a whole number"))?);
        } else if let Some(v) = param(arg, "when_full=") {
            full_policy = name(&FULL_POLICIES, v)
                .ok_or_else(|| invalid("when_full=", v, "evict, deny or allow"))?;
        } else if let Some(v) = param(arg, "name=") {
            if v.is_empty() {
                return Err("ratecore_zone: name= must not be empty".into());
            }
            // the name is quoted in IETF headers and logs: keep it plain
            if v.iter()
                .any(|&c| c <= b' ' || c == b'"' || c == b'\\' || c > b'~')
            {
                return Err(format!(
                    "ratecore_zone: name=\"{}\" may hold only printable characters without \
                     spaces, quotes or backslashes",
                    text(v)
                ));
            }
            zone_name = v;
        } else if let Some(v) = param(arg, "quota=") {
            // parsed once name= is known (it may come later), for messages naming the zone
            let slot = quota_texts.get_mut(nq).ok_or_else(|| {
                format!("ratecore_zone: at most {RATECORE_MAX_TABLE_LIMITS} quota= per zone")
            })?;
            *slot = v;
            nq += 1;
        } else if let Some(v) = param(arg, "capacity=") {
            capacity = if v == b"auto" {
                0
            } else {
                whole(v)
                    .filter(|c| (1..=RATECORE_MAX_TABLE_CAPACITY).contains(c))
                    .ok_or_else(|| {
                        format!(
                            "ratecore_zone: invalid capacity=\"{}\" (expected auto or 1 to \
                             {RATECORE_MAX_TABLE_CAPACITY} keys)",
                            text(v)
                        )
                    })?
            };
        } else {
            return Err(format!(
                "ratecore_zone: unknown parameter \"{}\"",
                text(arg)
            ));
        }
    }
    if zone_name.is_empty() {
        return Err("ratecore_zone: name= is required".into());
    }
    let zn = text(zone_name);
    if zone_size == 0 {
        return Err(format!(
            "ratecore_zone \"{zn}\": size= is required (e.g. size=10m)"
        ));
    }
    let mut quotas = [EMPTY_QUOTA; RATECORE_MAX_TABLE_LIMITS];
    for (index, (slot, quota)) in quotas.iter_mut().zip(&quota_texts).take(nq).enumerate() {
        *slot = parse_quota(&zn, index + 1, quota)?;
    }
    let any_single = single.algorithm.is_some()
        || single.limit.is_some()
        || single.period_ns.is_some()
        || single.burst.is_some()
        || single.sub_windows.is_some();
    if nq > 0 && any_single {
        return Err(format!(
            "ratecore_zone \"{zn}\": use either quota= (one or more) or algorithm= limit= \
             period=, not both"
        ));
    }
    if nq == 0 {
        let (Some(algorithm), Some(limit), Some(period_ns)) =
            (single.algorithm, single.limit, single.period_ns)
        else {
            return Err(format!(
                "ratecore_zone \"{zn}\": algorithm=, limit= and period= are required (or one \
                 or more quota=<algorithm>:<limit>/<period>)"
            ));
        };
        let quota = ratecore_quota {
            limit,
            period_ns,
            burst: single.burst.unwrap_or(0),
            algorithm,
            sub_windows: single.sub_windows.unwrap_or(0),
        };
        quotas[0] = finish_quota(
            &zn,
            1,
            quota,
            single.burst.is_some(),
            single.sub_windows.is_some(),
        )?;
        nq = 1;
    }
    let used = quotas.get(..nq).unwrap_or(&[]);
    // every quota on its own first, for a message that names it
    for (index, quota) in used.iter().enumerate() {
        if let Err(status) = region_size(std::slice::from_ref(quota), SMALLEST_AUTO, full_policy) {
            let algorithm = ALGORITHMS
                .iter()
                .find(|(_, code)| *code == quota.algorithm)
                .map_or("?", |(n, _)| n);
            return Err(format!(
                "ratecore_zone \"{zn}\": quota {} ({algorithm}, limit {} per {} ms) is invalid: {}",
                index + 1,
                quota.limit,
                quota.period_ns / 1_000_000,
                message(status)
            ));
        }
    }
    let (capacity, region) = size_table(&zn, zone_size, used, capacity, full_policy, layout)?;
    Ok(Zone {
        name: zone_name,
        size: zone_size,
        quotas,
        quota_count: nq,
        capacity,
        full_policy,
        region_size: region,
    })
}

fn message(status: ratecore_status) -> std::borrow::Cow<'static, str> {
    status.message().to_string_lossy()
}

fn region_size(
    quotas: &[ratecore_quota],
    capacity: u64,
    full_policy: u32,
) -> Result<usize, ratecore_status> {
    let mut size = 0usize;
    // SAFETY: `quotas` is a live slice of `quotas.len()` quotas; `size` is a live local.
    let status = unsafe {
        ratecore_table_region_size(
            quotas.as_ptr(),
            quotas.len(),
            capacity,
            full_policy,
            &mut size,
        )
    };
    match status {
        ratecore_status::Ok => Ok(size),
        other => Err(other),
    }
}

/// Applies the options a quota's algorithm allows; sets the strict window's default
/// number of sub-windows.
fn finish_quota(
    zone: &str,
    index: usize,
    mut quota: ratecore_quota,
    have_burst: bool,
    have_sub_windows: bool,
) -> Result<ratecore_quota, String> {
    let strict = quota.algorithm == STRICT;
    if have_burst && quota.algorithm != GCRA {
        return Err(format!(
            "ratecore_zone \"{zone}\": quota {index}: burst= applies only to algorithm gcra"
        ));
    }
    if have_sub_windows && !strict {
        return Err(format!(
            "ratecore_zone \"{zone}\": quota {index}: sub_windows= applies only to algorithm \
             sliding_window_strict"
        ));
    }
    if strict && !have_sub_windows {
        quota.sub_windows = DEFAULT_SUB_WINDOWS;
    }
    Ok(quota)
}

/// `quota=<algorithm>:<limit>/<period>[:burst=<n>][:sub_windows=<n>]`
fn parse_quota(zone: &str, index: usize, quota_text: &[u8]) -> Result<ratecore_quota, String> {
    let qt = text(quota_text);
    let invalid = || {
        format!(
            "ratecore_zone \"{zone}\": invalid quota=\"{qt}\" (expected \
             quota=<algorithm>:<limit>/<period>[:burst=<n>][:sub_windows=<n>], e.g. \
             quota=fixed_window:20/1m)"
        )
    };
    let (algorithm, rest) = split_once(quota_text, b':').ok_or_else(invalid)?;
    let algorithm = name(&ALGORITHMS, algorithm).ok_or_else(|| {
        format!(
            "ratecore_zone \"{zone}\": quota=\"{qt}\": unknown algorithm \"{}\" (expected \
             {ALGORITHMS_EXPECTED})",
            text(algorithm)
        )
    })?;
    let (limit, rest) = split_once(rest, b'/').ok_or_else(invalid)?;
    let limit = whole(limit).ok_or_else(|| {
        format!(
            "ratecore_zone \"{zone}\": quota=\"{qt}\": invalid limit \"{}\" (expected a whole \
             number)",
            text(limit)
        )
    })?;
    let mut parts = rest.split(|&c| c == b':');
    let period = parts.next().unwrap_or(&[]);
    let period_ns = time_ns(period).ok_or_else(|| {
        format!(
            "ratecore_zone \"{zone}\": quota=\"{qt}\": invalid period \"{}\" (expected \
             {TIME_EXPECTED})",
            text(period)
        )
    })?;
    let mut quota = ratecore_quota {
        limit,
        period_ns,
        burst: 0,
        algorithm,
        sub_windows: 0,
    };
    let (mut have_burst, mut have_sub_windows) = (false, false);
    for option in parts {
        if let Some(burst) = param(option, "burst=").and_then(whole) {
            quota.burst = burst;
            have_burst = true;
        } else if let Some(n) = param(option, "sub_windows=")
            .and_then(whole)
            .and_then(|n| u32::try_from(n).ok())
        {
            quota.sub_windows = n;
            have_sub_windows = true;
        } else {
            return Err(invalid());
        }
    }
    finish_quota(zone, index, quota, have_burst, have_sub_windows)
}

fn split_once(bytes: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&c| c == at)?;
    Some((bytes.get(..i)?, bytes.get(i + 1..)?))
}

/// Sizes the table: `capacity` 0 (auto) takes the largest power of two that fits
/// `zone_size`; an explicit capacity must fit it. Returns (capacity, region size).
fn size_table(
    zone: &str,
    zone_size: usize,
    quotas: &[ratecore_quota],
    capacity: u64,
    full_policy: u32,
    layout: &Layout,
) -> Result<(u64, usize), String> {
    if capacity != 0 {
        let region = region_size(quotas, capacity, full_policy).map_err(|status| {
            format!(
                "ratecore_zone \"{zone}\": capacity={capacity} is invalid: {}",
                message(status)
            )
        })?;
        let needed = layout.needed(region);
        if needed > zone_size {
            return Err(format!(
                "ratecore_zone \"{zone}\": size={zone_size} is too small: capacity={capacity} \
                 needs a {region}-byte table and {needed} bytes of shared memory in all, use \
                 size={}k or more (or a smaller capacity=, or capacity=auto to fit the size)",
                needed.div_ceil(1024)
            ));
        }
        return Ok((capacity, region));
    }
    let mut best: Option<(u64, usize)> = None;
    let mut last_error = ratecore_status::Ok;
    let mut candidate = SMALLEST_AUTO;
    while candidate <= RATECORE_MAX_TABLE_CAPACITY {
        match region_size(quotas, candidate, full_policy) {
            Ok(region) if layout.needed(region) <= zone_size => best = Some((candidate, region)),
            Ok(region) => {
                if best.is_none() {
                    let needed = layout.needed(region);
                    return Err(format!(
                        "ratecore_zone \"{zone}\": size={zone_size} is too small: the smallest \
                         table ({SMALLEST_AUTO} keys) needs {needed} bytes of shared memory, use \
                         size={}k or more",
                        needed.div_ceil(1024)
                    ));
                }
                break;
            }
            Err(status) => {
                last_error = status;
                break;
            }
        }
        candidate *= 2;
    }
    best.ok_or_else(|| {
        // even the smallest table of all the quotas together is invalid
        format!(
            "ratecore_zone \"{zone}\": its quotas together cannot make a table: {}",
            message(last_error)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        header: 256,
        page_size: 4096,
        fixed: 4096 + 2048,
        per_page: 24,
        min_pages: 8,
    };

    fn zone(line: &str) -> Result<Zone<'_>, String> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        parse(&args, &LAYOUT)
    }

    fn error(line: &str) -> String {
        zone(line).expect_err(line)
    }

    #[test]
    fn single_quota_and_auto_capacity() {
        let z =
            zone("name=api size=1m algorithm=sliding_window_strict limit=10 period=1h").unwrap();
        assert_eq!(z.name, b"api");
        assert_eq!(z.size, 1 << 20);
        assert_eq!(z.quota_count, 1);
        assert_eq!(
            (z.quotas[0].limit, z.quotas[0].period_ns),
            (10, 3_600_000_000_000)
        );
        assert_eq!(z.quotas[0].sub_windows, 60);
        assert!(z.capacity.is_power_of_two() && z.capacity >= 8);
        assert!(LAYOUT.needed(z.region_size) <= z.size);
        let twice = region_size(&z.quotas[..1], z.capacity * 2, 0).unwrap();
        assert!(
            LAYOUT.needed(twice) > z.size,
            "auto takes the largest that fits"
        );
    }

    #[test]
    fn several_quotas_explicit_capacity() {
        let z = zone("size=1m quota=gcra:5/1s:burst=2 quota=fixed_window:100/1m name=z capacity=100 when_full=deny")
            .unwrap();
        assert_eq!(z.quota_count, 2);
        assert_eq!((z.quotas[0].algorithm, z.quotas[0].burst), (1, 2));
        assert_eq!(
            (z.quotas[1].algorithm, z.quotas[1].period_ns),
            (2, 60_000_000_000)
        );
        assert_eq!((z.capacity, z.full_policy), (100, 1));
    }

    #[test]
    fn messages_nginx_prints() {
        for (line, message) in [
            ("name=z size=1m algorithm=leaky_bucket limit=1 period=1s",
             "ratecore_zone: invalid algorithm=\"leaky_bucket\" (expected gcra, fixed_window, sliding_window or sliding_window_strict)"),
            ("name=z size=1m algorithm=gcra limit=10 period=5x",
             "ratecore_zone: invalid period=\"5x\" (expected an nginx time such as 500ms, 10s, 5m, 1h or 1d)"),
            ("name=z size=lots", "ratecore_zone: invalid size=\"lots\" (expected e.g. 64k, 10m, 1g)"),
            ("name=z size=1m algorithm=fixed_window limit=0 period=1s",
             "ratecore_zone \"z\": quota 1 (fixed_window, limit 0 per 1000 ms) is invalid: quota limit must be at least 1"),
            ("name=z size=1m algorithm=fixed_window limit=5 period=1s burst=3",
             "ratecore_zone \"z\": quota 1: burst= applies only to algorithm gcra"),
            ("name=z size=1m algorithm=gcra limit=5 period=1s sub_windows=3",
             "ratecore_zone \"z\": quota 1: sub_windows= applies only to algorithm sliding_window_strict"),
            ("name=z size=1m quota=fixed_window:5",
             "ratecore_zone \"z\": invalid quota=\"fixed_window:5\" (expected quota=<algorithm>:<limit>/<period>[:burst=<n>][:sub_windows=<n>], e.g. quota=fixed_window:20/1m)"),
            ("name=z size=1m quota=gcra:5/1s:colour=1", "ratecore_zone \"z\": invalid quota=\"gcra:5/1s:colour=1\""),
            ("size=1m quota=gcra:ten/1s name=late",
             "ratecore_zone \"late\": quota=\"gcra:ten/1s\": invalid limit \"ten\" (expected a whole number)"),
            ("name=z size=1m quota=leaky:1/1s", "ratecore_zone \"z\": quota=\"leaky:1/1s\": unknown algorithm \"leaky\""),
            ("name=z size=1m quota=gcra:1/1x", "ratecore_zone \"z\": quota=\"gcra:1/1x\": invalid period \"1x\""),
            ("name=z size=1m quota=gcra:1/1s quota=gcra:2/1s quota=gcra:3/1s quota=gcra:4/1s quota=gcra:5/1s",
             "ratecore_zone: at most 4 quota= per zone"),
            ("name=z size=1m algorithm=gcra limit=1 period=1s colour=blue",
             "ratecore_zone: unknown parameter \"colour=blue\""),
            ("name=z size=64k algorithm=fixed_window limit=10 period=1m capacity=1000000",
             "ratecore_zone \"z\": size=65536 is too small: capacity=1000000 needs a"),
            ("name=z size=32k algorithm=sliding_window_strict limit=10 period=1h sub_windows=4096",
             "ratecore_zone \"z\": size=32768 is too small: the smallest table (8 keys) needs"),
            ("size=1m algorithm=gcra limit=1 period=1s", "ratecore_zone: name= is required"),
            ("name= size=1m", "ratecore_zone: name= must not be empty"),
            ("name=a\"b size=1m", "ratecore_zone: name=\"a\"b\" may hold only printable characters"),
            ("name=z algorithm=gcra limit=1 period=1s", "ratecore_zone \"z\": size= is required (e.g. size=10m)"),
            ("name=z size=1m algorithm=gcra limit=1", "ratecore_zone \"z\": algorithm=, limit= and period= are required"),
            ("name=z size=1m quota=gcra:1/1s limit=3", "ratecore_zone \"z\": use either quota= (one or more) or algorithm= limit= period=, not both"),
            ("name=z size=1m algorithm=gcra limit=1 period=1s capacity=0",
             "ratecore_zone: invalid capacity=\"0\" (expected auto or 1 to 4294967296 keys)"),
            ("name=z size=1m algorithm=gcra limit=1 period=1s when_full=drop",
             "ratecore_zone: invalid when_full=\"drop\" (expected evict, deny or allow)"),
            ("name=z size=1m algorithm=gcra limit=1 period=1s sub_windows=4294967296",
             "ratecore_zone: invalid sub_windows=\"4294967296\" (expected a whole number)"),
        ] {
            let got = error(line);
            assert!(got.starts_with(message), "{line}:\n  got  {got}\n  want {message}");
        }
    }

    #[test]
    fn the_size_asked_for_is_enough() {
        let got =
            error("name=z size=64k algorithm=fixed_window limit=10 period=1m capacity=1000000");
        let kb: usize = got
            .split("use size=")
            .nth(1)
            .and_then(|s| s.split('k').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        let line =
            format!("name=z size={kb}k algorithm=fixed_window limit=10 period=1m capacity=1000000");
        assert_eq!(zone(&line).unwrap().capacity, 1_000_000);
        let less = format!(
            "name=z size={}k algorithm=fixed_window limit=10 period=1m capacity=1000000",
            kb - 4
        );
        assert!(error(&less).contains("is too small"));
    }
}
