/*
 * Directive parsing from C (ratecore_zone_directive_parse, ratecore_limit_directive_parse,
 * ratecore_limit_directive_check_zone):
 * a zone with several quotas sized to its shared memory, a limit's defaults and values,
 * the messages written into the caller's buffer (NUL-terminated, truncated to fit, never
 * past its end), and bad input: NULL pointers, NULL texts with lengths, lengths above
 * PTRDIFF_MAX, a zero page size, bad values.
 */
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

#define MAX_ARGS 16

/* Splits a line at spaces into texts pointing into it. */
static size_t split(const char *line, ratecore_text *args) {
    size_t n = 0;
    const char *p = line;
    while (*p && n < MAX_ARGS) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        args[n].data = rc_bytes(p);
        args[n].len = len;
        n++;
        p += len + (end ? 1 : 0);
    }
    return n;
}

static ratecore_shm_layout layout(void) {
    ratecore_shm_layout l;
    l.header = 256;
    l.page_size = 4096;
    l.fixed = 4096 + 2048;
    l.per_page = 24;
    l.min_pages = 8;
    return l;
}

static ratecore_status zone(const char *line, ratecore_zone_directive *out, char *err,
                            size_t err_len) {
    ratecore_text args[MAX_ARGS];
    ratecore_shm_layout l = layout();
    size_t n = split(line, args);
    return ratecore_zone_directive_parse(args, n, &l, out, err, err_len);
}

static ratecore_status limit(const char *line, uint32_t level_style,
                             ratecore_limit_directive *out, char *err, size_t err_len) {
    ratecore_text args[MAX_ARGS];
    size_t n = split(line, args);
    return ratecore_limit_directive_parse(args, n, level_style, out, err, err_len);
}

static int text_is(ratecore_text t, const char *s) {
    return t.len == strlen(s) && (t.len == 0 || memcmp(t.data, s, t.len) == 0);
}

static void test_zone(void) {
    ratecore_zone_directive z;
    char err[256] = "";
    const char *line = "name=api size=1m quota=gcra:5/1s:burst=2 "
                       "quota=sliding_window_strict:100/1h when_full=deny";
    REQUIRE_OK(zone(line, &z, err, sizeof err));
    CHECK(text_is(z.name, "api"));
    CHECK(z.name.data == rc_bytes(line) + 5); /* points into the argument */
    CHECK_EQ_U64(z.size, 1 << 20);
    CHECK_EQ_U64(z.quota_count, 2);
    CHECK_EQ_U64(z.quotas[0].algorithm, RATECORE_ALGORITHM_GCRA);
    CHECK_EQ_U64(z.quotas[0].burst, 2);
    CHECK_EQ_U64(z.quotas[1].period_ns, RC_HOUR);
    CHECK_EQ_U64(z.quotas[1].sub_windows, 60);
    CHECK_EQ_U64(z.full_policy, RATECORE_FULL_POLICY_DENY);
    CHECK(z.capacity >= 8 && (z.capacity & (z.capacity - 1)) == 0);
    size_t region = 0;
    REQUIRE_OK(ratecore_table_region_size(z.quotas, z.quota_count, z.capacity, z.full_policy,
                                          &region));
    CHECK_EQ_U64(z.region_size, region);
    /* the sized table really works in a region of that size */
    void *mem = aligned_alloc(RATECORE_REGION_ALIGN,
                              (z.region_size + RATECORE_REGION_ALIGN - 1)
                                  / RATECORE_REGION_ALIGN * RATECORE_REGION_ALIGN);
    ratecore_table *t = NULL;
    REQUIRE_OK(ratecore_table_init_region(mem, z.region_size, z.quotas, z.quota_count,
                                          z.capacity, z.full_policy, &t));
    ratecore_table_free(t);
    free(mem);
}

static void test_zone_errors(void) {
    ratecore_zone_directive z;
    char err[512];
    CHECK_STATUS(zone("name=z size=1m algorithm=gcra limit=10 period=5x", &z, err, sizeof err),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(err, "ratecore_zone: invalid period=\"5x\" (expected an nginx time such as "
                      "500ms, 10s, 5m, 1h or 1d)") == 0);
    CHECK_STATUS(zone("name=z size=1m quota=gcra:ten/1s", &z, err, sizeof err),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strstr(err, "invalid limit \"ten\"") != NULL);
    /* truncated to fit, NUL-terminated, nothing written past the end */
    char small[12];
    memset(small, 'x', sizeof small);
    CHECK_STATUS(zone("name=z size=lots", &z, small, 8), RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(small, "ratecor") == 0);
    CHECK(small[8] == 'x');
    /* no buffer: the status alone */
    CHECK_STATUS(zone("name=z size=lots", &z, NULL, 0), RATECORE_STATUS_INVALID_CONFIG);
    CHECK_STATUS(zone("name=z size=lots", &z, err, 0), RATECORE_STATUS_INVALID_CONFIG);
}

static void test_limit(void) {
    ratecore_limit_directive l;
    char err[512] = "";
    REQUIRE_OK(limit("zone=z key=$binary_remote_addr", 0, &l, err, sizeof err));
    CHECK(text_is(l.zone, "z"));
    CHECK(text_is(l.key, "$binary_remote_addr"));
    CHECK_EQ_U64(l.cost_text.len, 0);
    CHECK_EQ_U64(l.cost, 1);
    CHECK_EQ_U64(l.status, 429);
    CHECK_EQ_U64(l.style, RATECORE_HEADER_STYLE_IETF);
    CHECK_EQ_U64(l.body, RATECORE_LIMIT_BODY_PROBLEM_JSON);
    CHECK(text_is(l.description, "API"));
    CHECK(text_is(l.problem_type, "about:blank"));
    CHECK(text_is(l.problem_title, "Too Many Requests"));
    REQUIRE_OK(limit("zone=z key=$uri style=none cost=$http_x_cost dry_run=on status=503",
                     RATECORE_LIMIT_STYLE_NONE, &l, err, sizeof err));
    CHECK_EQ_U64(l.style, RATECORE_LIMIT_STYLE_NONE);
    CHECK_EQ_U64(l.body, RATECORE_LIMIT_BODY_SERVER);
    CHECK(text_is(l.cost_text, "$http_x_cost"));
    CHECK_EQ_U64(l.dry_run, 1);
    CHECK_EQ_U64(l.status, 503);
    CHECK_STATUS(limit("zone=z key=$uri style=github", 0, &l, err, sizeof err),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(err, "ratecore_limit: invalid style=\"github\" (expected evenergy, uphold, "
                      "switch or ietf)") == 0);
    CHECK_STATUS(limit("zone=z key=$uri", RATECORE_HEADER_STYLE_UPHOLD, &l, err, sizeof err),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strstr(err, "; the default style is ietf") != NULL);
}

static void test_check_zone(void) {
    ratecore_zone_directive z;
    ratecore_limit_directive l;
    char err[512] = "";
    REQUIRE_OK(zone("name=z size=1m quota=fixed_window:100/1m quota=gcra:5/1s:burst=2", &z, err,
                    sizeof err));
    REQUIRE_OK(limit("zone=z key=$uri cost=2", 0, &l, err, sizeof err));
    REQUIRE_OK(ratecore_limit_directive_check_zone(&l, &z, err, sizeof err));
    REQUIRE_OK(limit("zone=z key=$uri cost=3", 0, &l, err, sizeof err));
    CHECK_STATUS(ratecore_limit_directive_check_zone(&l, &z, err, sizeof err),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(err, "ratecore_limit: cost=3 exceeds what zone \"z\" can ever admit (its "
                      "quota 5 per 1000 ms takes at most 2 at once)") == 0);
    /* a cost from a variable is checked per request */
    REQUIRE_OK(limit("zone=z key=$uri cost=$http_x_cost", 0, &l, err, sizeof err));
    REQUIRE_OK(ratecore_limit_directive_check_zone(&l, &z, err, sizeof err));
    /* the key's variable, for reading it by index */
    CHECK(text_is(l.key_variable, "uri"));
    REQUIRE_OK(limit("zone=z key=$1", 0, &l, err, sizeof err));
    CHECK_EQ_U64(l.key_variable.len, 0);
    CHECK_STATUS(ratecore_limit_directive_check_zone(NULL, &z, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limit_directive_check_zone(&l, NULL, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
    z.quota_count = RATECORE_MAX_TABLE_LIMITS + 1;
    CHECK_STATUS(ratecore_limit_directive_check_zone(&l, &z, err, sizeof err),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    z.quota_count = 1;
    z.name.data = NULL;
    CHECK_STATUS(ratecore_limit_directive_check_zone(&l, &z, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
}

static void test_bad_input(void) {
    ratecore_zone_directive z;
    ratecore_limit_directive l;
    ratecore_shm_layout lay = layout();
    ratecore_text args[2];
    char err[64];
    args[0].data = rc_bytes("zone=z");
    args[0].len = 6;
    args[1].data = rc_bytes("key=$uri");
    args[1].len = 8;
    CHECK_STATUS(ratecore_limit_directive_parse(NULL, 2, 0, &l, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limit_directive_parse(args, 2, 0, NULL, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limit_directive_parse(args, SIZE_MAX, 0, &l, err, sizeof err),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    /* no arguments: the required ones are missing */
    CHECK_STATUS(ratecore_limit_directive_parse(NULL, 0, 0, &l, err, sizeof err),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(err, "ratecore_limit: zone= is required") == 0);
    args[1].data = NULL;
    CHECK_STATUS(ratecore_limit_directive_parse(args, 2, 0, &l, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
    args[1].data = rc_bytes("key=$uri");
    args[1].len = SIZE_MAX;
    CHECK_STATUS(ratecore_limit_directive_parse(args, 2, 0, &l, err, sizeof err),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    args[1].len = 8;
    /* an error buffer NULL with a length: the status, no message */
    CHECK_STATUS(ratecore_limit_directive_parse(args, 1, 0, &l, NULL, 64),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK_STATUS(ratecore_zone_directive_parse(args, 1, NULL, &z, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_zone_directive_parse(args, 1, &lay, NULL, err, sizeof err),
                 RATECORE_STATUS_NULL_POINTER);
    lay.page_size = 0;
    CHECK_STATUS(ratecore_zone_directive_parse(args, 1, &lay, &z, err, sizeof err),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    /* a huge page size: sizing saturates, and the zone is reported too small */
    lay.page_size = SIZE_MAX;
    ratecore_text zargs[MAX_ARGS];
    size_t n = split("name=z size=1m algorithm=gcra limit=1 period=1s", zargs);
    CHECK_STATUS(ratecore_zone_directive_parse(zargs, n, &lay, &z, err, sizeof err),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strstr(err, "is too small") != NULL);
}

int main(void) {
    test_zone();
    test_zone_errors();
    test_limit();
    test_check_zone();
    test_bad_input();
    return rc_finish("test_directive");
}
