/*
 * The nginx module adds the rate-limit headers ratecore_tables_check_headers hands it
 * (a static name and a value each; ffi/nginx/ngx_http_ratecore_module.c), rendered as
 * ratecore_render_check_headers renders them (tests/c/test_multi.c; the numeric
 * styles' own writer: ffi/src/multi_check_headers.rs's unit tests). This checks
 * those values, joined as lines, byte for byte against ratecore_render_headers, for
 * 1,000,000 pseudo-random decisions and wall clocks per style (RATECORE_NEVER, 0 and
 * UINT64_MAX mixed in; the IETF style with one to three reports, one item of two
 * quotas); that a seed style's values fit the module's 96-byte buffer; and the integers
 * against printf at every digit-count boundary (10^k - 1, 10^k, 10^k + 1). Run by
 * tests/nginx/run.sh:
 *
 *   cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude \
 *      tests/nginx/render_check.c target/release/libratecore_ffi.a -lpthread -ldl -lm
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ratecore.h>


/* the module's buffer for a seed style's values (ngx_http_ratecore_module.c) */
#define VALUES_BUF  96


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


/* The values of ratecore_render_check_headers joined as "Name: value\r\n" lines, the
 * way nginx writes them; 0 (and a message) when they differ from
 * ratecore_render_headers'. */
static int
same(uint32_t style, const ratecore_check_item *items, size_t nitems,
    const ratecore_check_result *r, const ratecore_quota_report *reports,
    size_t nreports, uint64_t wall)
{
    size_t             i, at, written;
    unsigned char      lib[1024], values[1024], mine[1024];
    ratecore_status    rc;
    ratecore_headers   h;

    rc = ratecore_render_headers(style, &r->decision, reports, nreports, wall, lib,
                                 sizeof(lib), &written);
    if (rc == RATECORE_STATUS_OK) {
        rc = ratecore_render_check_headers(style, items, nitems, r, wall, values,
                                           sizeof(values), &h);
    }

    if (rc != RATECORE_STATUS_OK) {
        printf("rendering failed: %s\n", ratecore_status_message(rc));
        return 0;
    }

    if (style != RATECORE_HEADER_STYLE_IETF && h.len > VALUES_BUF) {
        printf("style %u: %zu bytes of values, more than the module's %d\n",
               (unsigned) style, h.len, VALUES_BUF);
        return 0;
    }

    for (i = 0, at = 0; i < h.count; i++) {
        memcpy(mine + at, h.headers[i].name, h.headers[i].name_len);
        at += h.headers[i].name_len;
        memcpy(mine + at, ": ", 2);
        at += 2;
        memcpy(mine + at, h.headers[i].value, h.headers[i].value_len);
        at += h.headers[i].value_len;
        memcpy(mine + at, "\r\n", 2);
        at += 2;
    }

    if (at != written || memcmp(lib, mine, written) != 0) {
        printf("mismatch (style %u):\n%.*s--- values:\n%.*s\n", (unsigned) style,
               (int) written, lib, (int) at, mine);
        return 0;
    }

    return 1;
}


int
main(void)
{
    static const char  *names[3] = { "zone_a/1", "zone_a/2", "zone_b" };

    size_t                 k, n;
    uint32_t               style;
    uint64_t               wall, pow10;
    unsigned long          i, bad;
    ratecore_check_item    items[2];
    ratecore_check_result  r;
    ratecore_quota_report  reports[3];

    bad = 0;
    memset(items, 0, sizeof(items));
    items[0].name = (const uint8_t *) "zone_a";
    items[0].name_len = 6;
    items[1].name = (const uint8_t *) "zone_b";
    items[1].name_len = 6;
    memset(&r, 0, sizeof(r));

    /* every digit-count boundary, as a limit (printf as the reference) */
    for (k = 0, pow10 = 1; k < 20; k++, pow10 *= 10) {
        for (i = 0; i < 3; i++) {
            char              want[32];
            unsigned char     buf[VALUES_BUF];
            ratecore_headers  h;

            r.decision.allowed = true;
            r.decision.limit = k == 19 && i == 2 ? UINT64_MAX : pow10 + i - (k ? 1 : 0);
            snprintf(want, sizeof(want), "%" PRIu64, r.decision.limit);

            if (ratecore_render_check_headers(RATECORE_HEADER_STYLE_EVENERGY, NULL, 0, &r,
                                              0, buf, sizeof(buf), &h)
                != RATECORE_STATUS_OK
                || h.headers[0].value_len != strlen(want)
                || memcmp(h.headers[0].value, want, strlen(want)) != 0)
            {
                printf("limit %s rendered as \"%.*s\"\n", want,
                       (int) h.headers[0].value_len, h.headers[0].value);
                bad++;
            }
        }
    }

    for (i = 0; i < 1000000; i++) {
        r.decision.allowed = next() & 1;
        r.decision.limit = value();
        r.decision.remaining = value();
        r.decision.reset_after_ns = value();
        r.decision.retry_after_ns = value();
        wall = value();

        /* one to three reports: zone_a's two quotas, then zone_b's one */
        n = 1 + next() % 3;
        r.report_count = n;

        for (k = 0; k < n; k++) {
            r.reports[k].item = n == 1 ? 1 : k / 2;
            r.reports[k].quota = n == 1 ? 0 : k % 2;
            r.reports[k].period_ns = value();
            r.reports[k].decision = r.decision;
            r.reports[k].decision.remaining = value();
            reports[k].name = (const uint8_t *) (n == 1 ? names[2] : names[k]);
            reports[k].name_len = strlen((const char *) reports[k].name);
            reports[k].period_ns = r.reports[k].period_ns;
            reports[k].decision = r.reports[k].decision;
        }

        for (style = RATECORE_HEADER_STYLE_EVENERGY; style <= RATECORE_HEADER_STYLE_IETF;
             style++)
        {
            if (!same(style, items, 2, &r, reports, n, wall) && bad++ > 5) {
                return 1;
            }
        }
    }

    printf("render_check: %lu decisions x 4 styles, %lu mismatches\n", i, bad);

    return bad != 0;
}
