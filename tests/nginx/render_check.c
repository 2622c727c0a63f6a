/*
 * The nginx module renders the seed header styles' values itself
 * (ffi/nginx/ngx_http_ratecore_render.h); this checks them byte for byte against
 * ratecore_render_headers, for 1,000,000 pseudo-random decisions and wall clocks per
 * style, with RATECORE_NEVER, 0 and UINT64_MAX mixed in; and ngx_http_ratecore_u64
 * against printf at every digit-count boundary (10^k - 1, 10^k, 10^k + 1), where its
 * length computation could be off by one. Run by tests/nginx/run.sh:
 *
 *   cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude -Iffi/nginx \
 *      tests/nginx/render_check.c target/release/libratecore_ffi.a -lpthread -ldl -lm
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ratecore.h>

#include "ngx_http_ratecore_render.h"


static uint64_t  state = 0x9e3779b97f4a7c15u;

/* splitmix64: reproducible without libc's random() */
static uint64_t
next(void)
{
    uint64_t  z;

    z = (state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}


/* a value of any magnitude, sometimes one of the edges */
static uint64_t
value(void)
{
    uint64_t  r;

    r = next();

    switch (r % 16) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX;
    default:
        return next() >> (r >> 58);
    }
}


static unsigned char *
line(unsigned char *p, const char *name, const unsigned char *v, const unsigned char *end)
{
    p += sprintf((char *) p, "%s: ", name);
    memcpy(p, v, (size_t) (end - v));
    p += end - v;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}


int
main(void)
{
    static const struct {
        uint32_t     style;
        const char  *limit, *remaining, *reset, *retry;
        int          iso;
    } styles[] = {
        { RATECORE_HEADER_STYLE_EVENERGY, "x-ratelimit-limit", "x-ratelimit-remaining",
          NULL, "retry-after", 0 },
        { RATECORE_HEADER_STYLE_UPHOLD, "X-RateLimit-Limit", "X-RateLimit-Remaining",
          "X-RateLimit-Reset", "Retry-After", 0 },
        { RATECORE_HEADER_STYLE_SWITCH, "X-Rate-Limit-Limit", "X-Rate-Limit-Remaining",
          "X-Rate-Limit-Reset", "Retry-After", 1 },
    };

    size_t             s, written;
    uint64_t           wall;
    unsigned long      i, bad;
    unsigned char      lib[512], mine[512], v[64], *p, *e;
    ratecore_status    rc;
    ratecore_decision  d;

    bad = 0;

    for (i = 0; i < 20 * 3 + 1; i++) {
        uint64_t  n;
        char      want[32];

        n = i == 60 ? UINT64_MAX : ngx_http_ratecore_pow10[i / 3] + i % 3 - 1;
        memset(v, 'x', sizeof(v));
        e = ngx_http_ratecore_u64(v, n);
        snprintf(want, sizeof(want), "%" PRIu64, n);

        /* the digits, and not a byte written past the returned end */
        if ((size_t) (e - v) != strlen(want) || memcmp(v, want, strlen(want)) != 0
            || *e != 'x')
        {
            printf("ngx_http_ratecore_u64(%s) wrote \"%.*s\"\n", want, (int) (e - v), v);
            bad++;
        }
    }

    for (i = 0; i < 1000000; i++) {
        d.allowed = next() & 1;
        d.limit = value();
        d.remaining = value();
        d.reset_after_ns = value();
        d.retry_after_ns = value();
        wall = value();

        for (s = 0; s < sizeof(styles) / sizeof(styles[0]); s++) {
            written = 0;
            rc = ratecore_render_headers(styles[s].style, &d, NULL, 0, wall, lib,
                                         sizeof(lib), &written);
            if (rc != RATECORE_STATUS_OK) {
                printf("ratecore_render_headers: %s\n", ratecore_status_message(rc));
                return 1;
            }

            p = mine;
            e = ngx_http_ratecore_u64(v, d.limit);
            p = line(p, styles[s].limit, v, e);
            e = ngx_http_ratecore_u64(v, d.remaining);
            p = line(p, styles[s].remaining, v, e);

            if (styles[s].reset) {
                e = styles[s].iso
                    ? ngx_http_ratecore_iso8601(v, ngx_http_ratecore_reset_s(wall, d.reset_after_ns))
                    : ngx_http_ratecore_u64(v, ngx_http_ratecore_reset_s(wall, d.reset_after_ns));
                p = line(p, styles[s].reset, v, e);
            }

            if (!d.allowed) {
                e = ngx_http_ratecore_u64(v, ngx_http_ratecore_ceil_s(d.retry_after_ns));
                p = line(p, styles[s].retry, v, e);
            }

            if ((size_t) (p - mine) != written || memcmp(lib, mine, written) != 0) {
                if (bad++ < 5) {
                    printf("mismatch (style %u):\n%.*s--- module:\n%.*s\n",
                           (unsigned) styles[s].style, (int) written, lib,
                           (int) (p - mine), mine);
                }
            }
        }
    }

    printf("render_check: %lu decisions x %zu styles, %lu mismatches\n", i,
           sizeof(styles) / sizeof(styles[0]), bad);

    return bad != 0;
}
