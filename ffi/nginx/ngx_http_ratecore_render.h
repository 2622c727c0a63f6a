/*
 * The numbers of the seed header styles (ev.energy, Uphold, Switch), rendered by the
 * nginx module itself rather than by ratecore_render_headers: the same bytes, without
 * an FFI call, a render buffer to parse, or ngx_sprintf's format interpreter (which
 * alone cost more than the rest of the module's header rendering, per callgrind).
 *
 * Plain C without nginx, so that tests/nginx/render_check.c can compare these functions
 * with the library's renderer byte for byte (run by tests/nginx/run.sh).
 */

#ifndef NGX_HTTP_RATECORE_RENDER_H
#define NGX_HTTP_RATECORE_RENDER_H

#include <stdint.h>
#include <string.h>

/* the longest u64 in decimal; an ISO 8601 date of u64 seconds is 21 bytes */
#define NGX_HTTP_RATECORE_U64_LEN  20


/* Nanoseconds as whole seconds, rounded up (ratecore's ceil_seconds). */
static inline uint64_t
ngx_http_ratecore_ceil_s(uint64_t ns)
{
    return ns / 1000000000 + (ns % 1000000000 != 0);
}


/* The absolute reset in seconds since the epoch, as the library computes it:
 * ceil((wall + reset_after) / 1 s), the sum saturating. */
static inline uint64_t
ngx_http_ratecore_reset_s(uint64_t wall_ns, uint64_t reset_after_ns)
{
    uint64_t  t;

    t = wall_ns + reset_after_ns;

    return ngx_http_ratecore_ceil_s(t < wall_ns ? UINT64_MAX : t);
}


static const unsigned char  ngx_http_ratecore_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";


/* 10^k for k = 0..19: the digit count's correction step */
static const uint64_t  ngx_http_ratecore_pow10[20] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u,
    1000000000u, 10000000000u, 100000000000u, 1000000000000u, 10000000000000u,
    100000000000000u, 1000000000000000u, 10000000000000000u, 100000000000000000u,
    1000000000000000000u, 10000000000000000000u
};


/* v in decimal at p (as "%uL" writes it); returns the end. The length comes first, from
 * the bit length (log10 2 ~ 1233 / 4096, then one comparison), so the digits go straight
 * to their place, two per division: writing them into a buffer and copying it out cost
 * half of the module's header rendering (callgrind, a 10-digit epoch-seconds Reset). */
static unsigned char *
ngx_http_ratecore_u64(unsigned char *p, uint64_t v)
{
    uint32_t        w, t;
    unsigned char  *end, *d;

    if (v < 10) {
        *p = (unsigned char) ('0' + v);
        return p + 1;
    }

    /* floor(log10(v)) is t or t - 1, where t = floor(bits(v) * log10 2); v >= 10 */
    t = (uint32_t) (64 - __builtin_clzll(v)) * 1233 >> 12;
    end = p + t + (v >= ngx_http_ratecore_pow10[t]);
    d = end;

    while (v > UINT32_MAX) {
        d -= 2;
        memcpy(d, &ngx_http_ratecore_pairs[v % 100 * 2], 2);
        v /= 100;
    }

    /* the rest in 32 bits, where division by a constant is cheaper */
    for (w = (uint32_t) v; w >= 100; w /= 100) {
        d -= 2;
        memcpy(d, &ngx_http_ratecore_pairs[w % 100 * 2], 2);
    }

    if (w >= 10) {
        memcpy(d - 2, &ngx_http_ratecore_pairs[w * 2], 2);

    } else {
        d[-1] = (unsigned char) ('0' + w);
    }

    return end;
}


/* two digits, zero-padded (a date's month, day, hour, minute or second) */
static inline unsigned char *
ngx_http_ratecore_2digits(unsigned char *p, uint64_t v)
{
    *p++ = (unsigned char) ('0' + v / 10 % 10);
    *p++ = (unsigned char) ('0' + v % 10);
    return p;
}


/* YYYY-MM-DDTHH:MM:SSZ for seconds since the epoch: the same arithmetic as ratecore's
 * utc_from_unix_seconds (Howard Hinnant's civil_from_days, unsigned, any u64), so far
 * resets (RATECORE_NEVER) render as the library renders them. */
static unsigned char *
ngx_http_ratecore_iso8601(unsigned char *p, uint64_t seconds)
{
    uint64_t  days, rest, z, era, doe, yoe, doy, mp, day, month, year;

    days = seconds / 86400;
    rest = seconds % 86400;
    z = days + 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    day = doy - (153 * mp + 2) / 5 + 1;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = yoe + era * 400 + (month <= 2);

    p = ngx_http_ratecore_u64(p, year);
    *p++ = '-';
    p = ngx_http_ratecore_2digits(p, month);
    *p++ = '-';
    p = ngx_http_ratecore_2digits(p, day);
    *p++ = 'T';
    p = ngx_http_ratecore_2digits(p, rest / 3600);
    *p++ = ':';
    p = ngx_http_ratecore_2digits(p, rest % 3600 / 60);
    *p++ = ':';
    p = ngx_http_ratecore_2digits(p, rest % 60);
    *p++ = 'Z';

    return p;
}

#endif /* NGX_HTTP_RATECORE_RENDER_H */
