/*
 * One request against several tables from C (ratecore_tables_check) and its headers
 * (ratecore_render_check_headers): a later table's denial consumes nothing from the
 * earlier ones; the deciding item and quota; per-quota reports of a two-quota table;
 * peek mode; a C reference model of all-or-nothing over a long random sequence; the
 * rendered header values against ratecore_render_headers' lines, byte for byte; and bad
 * input: NULL pointers, zero items, too many items or quotas, an unknown mode, an
 * overflowing cost, a too-small buffer, a report naming no item, a name that is not UTF-8.
 * Then ratecore_tables_check_headers against those two calls (status, result, header
 * names and value bytes) for every style, one table or several, admitted and denied,
 * over twin tables; a too-small buffer (the check made once, the headers rendered again
 * from the result); and bad input refused before anything is consumed.
 */
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

#define NOW (10 * RC_SECOND)

static ratecore_table *new_table(const ratecore_quota *quotas, size_t n) {
    ratecore_table *table = NULL;
    REQUIRE_OK(ratecore_table_new(quotas, n, 1024, RATECORE_FULL_POLICY_DENY, &table));
    return table;
}

static ratecore_check_item item(const ratecore_table *table, const char *key, uint64_t cost,
                                const char *name) {
    ratecore_check_item it;
    memset(&it, 0, sizeof it);
    it.table = table;
    it.key = rc_bytes(key);
    it.key_len = strlen(key);
    it.cost = cost;
    it.name = rc_bytes(name);
    it.name_len = strlen(name);
    return it;
}

static uint64_t remaining(const ratecore_table *t, const char *key, uint64_t now) {
    ratecore_decision d;
    REQUIRE_OK(ratecore_table_peek(t, rc_bytes(key), strlen(key), now, 0, &d));
    return d.remaining;
}

/* Per IP 5 per minute, per account 2 per minute: the account's third request is denied
 * and the IP is not charged for it; the account decides. */
static void test_later_denial_consumes_nothing(void) {
    ratecore_quota ip_q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 5, RC_MINUTE);
    ratecore_quota acct_q = rc_strict(2, RC_MINUTE, 6);
    ratecore_table *ip = new_table(&ip_q, 1), *acct = new_table(&acct_q, 1);
    ratecore_check_item items[2] = {item(ip, "198.51.100.7", 1, "ip"),
                                    item(acct, "acct-1", 1, "account")};
    ratecore_check_result r;
    for (int i = 0; i < 2; i++) {
        REQUIRE_OK(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r));
        CHECK(r.decision.allowed);
        /* the fewest remaining: the account (1, then 0) */
        CHECK_EQ_U64(r.item, 1);
        CHECK_EQ_U64(r.decision.remaining, (uint64_t)(1 - i));
        CHECK_EQ_U64(r.report_count, 2);
        CHECK_EQ_U64(r.reports[0].decision.remaining, (uint64_t)(4 - i));
    }
    REQUIRE_OK(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r));
    CHECK(!r.decision.allowed);
    CHECK_EQ_U64(r.item, 1);
    CHECK_EQ_U64(r.quota, 0);
    CHECK_EQ_U64(r.period_ns, RC_MINUTE);
    CHECK_EQ_U64(r.decision.limit, 2);
    CHECK(r.decision.retry_after_ns > 0 && r.decision.retry_after_ns <= RC_MINUTE);
    CHECK_EQ_U64(r.report_count, 2);
    CHECK(r.reports[0].decision.allowed);             /* the IP alone would admit */
    CHECK_EQ_U64(r.reports[0].decision.remaining, 3); /* and was not charged */
    CHECK_EQ_U64(r.reports[1].item, 1);
    CHECK(!r.reports[1].decision.allowed);
    CHECK_EQ_U64(remaining(ip, "198.51.100.7", NOW), 3);
    CHECK_EQ_U64(remaining(acct, "acct-1", NOW), 0);
    ratecore_table_free(ip);
    ratecore_table_free(acct);
}

/* A table of two strict quotas (3 an hour, 5 a day) and a table of `one_q`, checked
 * together on key "k" with cost 1 as the items `a` (the pair) and `b`. */
static void pair_and_one(ratecore_quota one_q, const char *a, const char *b, ratecore_table **two,
                         ratecore_table **one, ratecore_check_item items[2]) {
    ratecore_quota pair[2] = {rc_strict(3, RC_HOUR, 60), rc_strict(5, 24 * RC_HOUR, 24)};
    *two = new_table(pair, 2);
    *one = new_table(&one_q, 1);
    items[0] = item(*two, "k", 1, a);
    items[1] = item(*one, "k", 1, b);
}

/* A two-quota table and a one-quota table: three reports, the deciding quota named by
 * its index; peek consumes nothing. */
static void test_reports_and_peek(void) {
    ratecore_table *two, *one;
    ratecore_check_item items[2];
    pair_and_one(rc_quota(RATECORE_ALGORITHM_GCRA, 4, RC_HOUR), "a", "b", &two, &one, items);
    ratecore_check_result r;
    REQUIRE_OK(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_PEEK, &r));
    CHECK(r.decision.allowed);
    CHECK_EQ_U64(r.report_count, 3);
    CHECK_EQ_U64(r.reports[1].item, 0);
    CHECK_EQ_U64(r.reports[1].quota, 1);
    CHECK_EQ_U64(r.reports[1].period_ns, 24 * RC_HOUR);
    CHECK_EQ_U64(r.reports[2].item, 1);
    CHECK_EQ_U64(remaining(two, "k", NOW), 3); /* the peek consumed nothing */
    for (int i = 0; i < 3; i++) {
        REQUIRE_OK(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r));
        CHECK(r.decision.allowed);
    }
    REQUIRE_OK(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r));
    CHECK(!r.decision.allowed);
    CHECK_EQ_U64(r.item, 0);
    CHECK_EQ_U64(r.quota, 0);
    CHECK_EQ_U64(r.period_ns, RC_HOUR);
    CHECK_EQ_U64(r.reports[1].decision.remaining, 2); /* 5/day: 3 used, none for the denial */
    ratecore_table_free(two);
    ratecore_table_free(one);
}

/* A C reference of all-or-nothing: fixed windows at one moment (no window rolls), so a
 * quota admits a cost exactly while used + cost <= limit. Random subsets of three tables
 * and costs; after every request each (table, key) must hold exactly the model's count,
 * and the deciding report must be the rule's. */
static uint64_t lcg(uint64_t *state) {
    *state = *state * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *state >> 33;
}

static void test_reference_model(void) {
    const uint64_t limits[3] = {7, 11, 5};
    ratecore_table *tables[3];
    uint64_t used[3][2] = {{0}};
    static const char *const keys[2] = {"x", "y"};
    for (int t = 0; t < 3; t++) {
        ratecore_quota q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, limits[t], RC_HOUR);
        tables[t] = new_table(&q, 1);
    }
    uint64_t seed = 42;
    for (int step = 0; step < 400; step++) {
        ratecore_check_item items[3];
        int which[3], keyof[3];
        size_t n = 0;
        for (int t = 0; t < 3; t++) {
            if (lcg(&seed) % 2 == 0) {
                continue;
            }
            which[n] = t;
            keyof[n] = (int)(lcg(&seed) % 2);
            items[n] = item(tables[t], keys[keyof[n]], lcg(&seed) % 3, "m");
            n++;
        }
        if (n == 0) {
            continue;
        }
        int admit = 1;
        for (size_t i = 0; i < n; i++) {
            admit &= used[which[i]][keyof[i]] + items[i].cost <= limits[which[i]];
        }
        ratecore_check_result r;
        REQUIRE_OK(ratecore_tables_check(items, n, NOW, RATECORE_CHECK_MODE_CHARGE, &r));
        CHECK_EQ_U64(r.decision.allowed, (uint64_t)admit);
        if (admit) {
            for (size_t i = 0; i < n; i++) {
                used[which[i]][keyof[i]] += items[i].cost;
            }
        }
        /* the deciding report, by the rule, over the reports */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < r.report_count; i++) {
            const ratecore_decision *d = &r.reports[i].decision;
            if (!admit && d->allowed) {
                continue;
            }
            if (best == SIZE_MAX) {
                best = i;
                continue;
            }
            const ratecore_decision *b = &r.reports[best].decision;
            int better = admit ? d->remaining < b->remaining ||
                                     (d->remaining == b->remaining &&
                                      d->reset_after_ns > b->reset_after_ns)
                               : d->retry_after_ns > b->retry_after_ns ||
                                     (d->retry_after_ns == b->retry_after_ns &&
                                      d->remaining < b->remaining);
            if (better) {
                best = i;
            }
        }
        CHECK(best != SIZE_MAX);
        if (best != SIZE_MAX) {
            CHECK_EQ_U64(r.item, r.reports[best].item);
            CHECK_EQ_U64(r.decision.remaining, r.reports[best].decision.remaining);
        }
        for (int t = 0; t < 3; t++) {
            for (int k = 0; k < 2; k++) {
                CHECK_EQ_U64(remaining(tables[t], keys[k], NOW), limits[t] - used[t][k]);
            }
        }
    }
    for (int t = 0; t < 3; t++) {
        ratecore_table_free(tables[t]);
    }
}

/* The values, joined as "Name: value\r\n" lines, are ratecore_render_headers' lines. */
static void check_values_match_lines(uint32_t style, const ratecore_check_item *items,
                                     size_t n, const ratecore_check_result *r,
                                     const ratecore_quota_report *reports, size_t nreports) {
    uint8_t values[512], lines[512], joined[512];
    size_t lines_len = 0, at = 0;
    ratecore_headers h;
    const uint64_t wall = UINT64_C(1700000000123456789);
    REQUIRE_OK(ratecore_render_check_headers(style, items, n, r, wall, values, sizeof values, &h));
    REQUIRE_OK(ratecore_render_headers(style, &r->decision, reports, nreports, wall, lines,
                                       sizeof lines, &lines_len));
    for (size_t i = 0; i < h.count; i++) {
        const ratecore_header *x = &h.headers[i];
        CHECK(x->value >= values && x->value + x->value_len <= values + h.len);
        memcpy(joined + at, x->name, x->name_len);
        at += x->name_len;
        memcpy(joined + at, ": ", 2);
        at += 2;
        memcpy(joined + at, x->value, x->value_len);
        at += x->value_len;
        memcpy(joined + at, "\r\n", 2);
        at += 2;
    }
    CHECK_EQ_U64(at, lines_len);
    CHECK(at == lines_len && memcmp(joined, lines, at) == 0);
    /* one byte short: BUFFER_TOO_SMALL with the length needed */
    if (h.len > 0) {
        ratecore_headers short_h;
        CHECK_STATUS(ratecore_render_check_headers(style, items, n, r, wall, values, h.len - 1,
                                                   &short_h),
                     RATECORE_STATUS_BUFFER_TOO_SMALL);
        CHECK_EQ_U64(short_h.len, h.len);
    }
}

static void test_render(void) {
    ratecore_table *two, *one;
    ratecore_check_item items[2];
    pair_and_one(rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 1, RC_MINUTE), "zone_a", "zone_b", &two,
                 &one, items);
    ratecore_check_result r;
    for (int round = 0; round < 2; round++) { /* admitted, then denied */
        REQUIRE_OK(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r));
        CHECK_EQ_U64(r.decision.allowed, (uint64_t)(round == 0));
        static const char *const names[3] = {"zone_a/1", "zone_a/2", "zone_b"};
        ratecore_quota_report reports[3];
        for (size_t i = 0; i < 3; i++) {
            reports[i].name = rc_bytes(names[i]);
            reports[i].name_len = strlen(names[i]);
            reports[i].period_ns = r.reports[i].period_ns;
            reports[i].decision = r.reports[i].decision;
        }
        for (uint32_t style = RATECORE_HEADER_STYLE_EVENERGY; style <= RATECORE_HEADER_STYLE_IETF;
             style++) {
            check_values_match_lines(style, items, 2, &r, reports, 3);
        }
    }
    /* the seed styles read no items */
    ratecore_headers h;
    uint8_t buf[128];
    REQUIRE_OK(ratecore_render_check_headers(RATECORE_HEADER_STYLE_UPHOLD, NULL, 0, &r, 0, buf,
                                             sizeof buf, &h));
    CHECK_EQ_U64(h.count, 4);
    CHECK(h.headers[3].name_len == 11 && memcmp(h.headers[3].name, "Retry-After", 11) == 0);
    /* bad input */
    CHECK_STATUS(ratecore_render_check_headers(99, items, 2, &r, 0, buf, sizeof buf, &h),
                 RATECORE_STATUS_UNKNOWN_HEADER_STYLE);
    CHECK_STATUS(ratecore_render_check_headers(RATECORE_HEADER_STYLE_IETF, NULL, 0, &r, 0, buf,
                                               sizeof buf, &h),
                 RATECORE_STATUS_INVALID_ARGUMENT); /* reports name items 0 and 1 */
    CHECK_STATUS(ratecore_render_check_headers(RATECORE_HEADER_STYLE_UPHOLD, items, 2, NULL, 0,
                                               buf, sizeof buf, &h),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_render_check_headers(RATECORE_HEADER_STYLE_UPHOLD, items, 2, &r, 0, buf,
                                               sizeof buf, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_render_check_headers(RATECORE_HEADER_STYLE_UPHOLD, items, 2, &r, 0, NULL,
                                               16, &h),
                 RATECORE_STATUS_NULL_POINTER);
    ratecore_check_result bad = r;
    bad.report_count = RATECORE_MAX_QUOTA_REPORTS + 1;
    CHECK_STATUS(ratecore_render_check_headers(RATECORE_HEADER_STYLE_IETF, items, 2, &bad, 0, buf,
                                               sizeof buf, &h),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    ratecore_check_item latin1[2] = {items[0], items[1]};
    latin1[1].name = rc_bytes("\xe9t\xe9");
    latin1[1].name_len = 3;
    CHECK_STATUS(ratecore_render_check_headers(RATECORE_HEADER_STYLE_IETF, latin1, 2, &r, 0, buf,
                                               sizeof buf, &h),
                 RATECORE_STATUS_INVALID_UTF8);
    ratecore_table_free(two);
    ratecore_table_free(one);
}

static void test_bad_input(void) {
    ratecore_quota q4[4] = {rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 10, RC_MINUTE),
                            rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 10, RC_HOUR),
                            rc_quota(RATECORE_ALGORITHM_GCRA, 10, RC_MINUTE),
                            rc_quota(RATECORE_ALGORITHM_GCRA, 10, RC_HOUR)};
    ratecore_table *four = new_table(q4, 4), *one = new_table(q4, 1);
    ratecore_check_item items[RATECORE_MAX_CHECK_ITEMS + 1];
    for (size_t i = 0; i < RATECORE_MAX_CHECK_ITEMS + 1; i++) {
        items[i] = item(one, "k", 1, "n");
    }
    ratecore_check_result r;
    r.item = 77;
    CHECK_STATUS(ratecore_tables_check(NULL, 1, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check(items, 1, NOW, RATECORE_CHECK_MODE_CHARGE, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check(items, 0, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_NO_LIMITS);
    CHECK_STATUS(ratecore_tables_check(NULL, 0, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_NO_LIMITS);
    CHECK_STATUS(ratecore_tables_check(items, RATECORE_MAX_CHECK_ITEMS + 1, NOW,
                                       RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_TOO_MANY_LIMITS);
    CHECK_STATUS(ratecore_tables_check(items, SIZE_MAX, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_tables_check(items, 1, NOW, 0, &r), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_tables_check(items, 1, NOW, 3, &r), RATECORE_STATUS_INVALID_ARGUMENT);
    /* five tables of four quotas: 20 quotas, more than RATECORE_MAX_QUOTA_REPORTS */
    for (size_t i = 0; i < 5; i++) {
        items[i].table = four;
    }
    CHECK_STATUS(ratecore_tables_check(items, 5, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_TOO_MANY_LIMITS);
    CHECK_EQ_U64(r.item, 77); /* not written */
    /* an overflowing cost on the second item: named, nothing consumed from the first */
    items[0].table = one;
    items[1].table = four;
    items[1].cost = UINT64_MAX;
    CHECK_STATUS(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK_EQ_U64(r.item, 1);
    CHECK_EQ_U64(remaining(one, "k", NOW), 10);
    items[1].cost = 1;
    /* NULL handle, NULL key with a length, a length beyond PTRDIFF_MAX */
    items[1].table = NULL;
    CHECK_STATUS(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_NULL_POINTER);
    items[1].table = four;
    items[1].key = NULL;
    CHECK_STATUS(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_NULL_POINTER);
    items[1].key = rc_bytes("k");
    items[1].key_len = SIZE_MAX;
    CHECK_STATUS(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_EQ_U64(remaining(one, "k", NOW), 10);
    /* (NULL, 0) is the empty key */
    items[1].key = NULL;
    items[1].key_len = 0;
    REQUIRE_OK(ratecore_tables_check(items, 2, NOW, RATECORE_CHECK_MODE_CHARGE, &r));
    CHECK(r.decision.allowed);
    CHECK_EQ_U64(r.report_count, 5);
    ratecore_table_free(four);
    ratecore_table_free(one);
}

/* ratecore_tables_check_headers: one call answers what ratecore_tables_check and then
 * ratecore_render_check_headers answer. */
#define CH_WALL UINT64_C(1700000000123456789)

static int same_decision(const ratecore_decision *a, const ratecore_decision *b) {
    return a->allowed == b->allowed && a->limit == b->limit && a->remaining == b->remaining &&
           a->reset_after_ns == b->reset_after_ns && a->retry_after_ns == b->retry_after_ns;
}

/* The same results, and the same headers (names, and value bytes in their buffers). */
static void check_same(const ratecore_check_result *a, const ratecore_headers *ha,
                       const ratecore_check_result *b, const ratecore_headers *hb) {
    CHECK(same_decision(&a->decision, &b->decision));
    CHECK_EQ_U64(a->item, b->item);
    CHECK_EQ_U64(a->quota, b->quota);
    CHECK_EQ_U64(a->period_ns, b->period_ns);
    CHECK_EQ_U64(a->report_count, b->report_count);
    for (size_t i = 0; i < a->report_count && i < b->report_count; i++) {
        CHECK_EQ_U64(a->reports[i].item, b->reports[i].item);
        CHECK_EQ_U64(a->reports[i].quota, b->reports[i].quota);
        CHECK_EQ_U64(a->reports[i].period_ns, b->reports[i].period_ns);
        CHECK(same_decision(&a->reports[i].decision, &b->reports[i].decision));
    }
    CHECK_EQ_U64(ha->count, hb->count);
    CHECK_EQ_U64(ha->len, hb->len);
    for (size_t i = 0; i < ha->count && i < hb->count; i++) {
        const ratecore_header *x = &ha->headers[i], *y = &hb->headers[i];
        CHECK(x->name_len == y->name_len && memcmp(x->name, y->name, x->name_len) == 0);
        CHECK(x->value_len == y->value_len && memcmp(x->value, y->value, x->value_len) == 0);
    }
}

/* Twin tables (a: one call, b: two calls) driven through the same requests: 6 requests
 * against a per-IP quota of 5 a minute and, with `account`, a per-account table of 3 a
 * minute and 4 an hour, so that later requests are denied. */
static void twins(uint32_t style, int account) {
    ratecore_quota ip_q = rc_quota(RATECORE_ALGORITHM_GCRA, 5, RC_MINUTE);
    ratecore_quota acct_q[2] = {rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 3, RC_MINUTE),
                                rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW, 4, RC_HOUR)};
    ratecore_table *ip[2] = {new_table(&ip_q, 1), new_table(&ip_q, 1)};
    ratecore_table *acct[2] = {new_table(acct_q, 2), new_table(acct_q, 2)};
    size_t n = account ? 2 : 1;
    for (int step = 0; step < 6; step++) {
        uint64_t now = RC_SECOND + (uint64_t)step * RC_SECOND;
        ratecore_check_item a[2] = {item(ip[0], "10.0.0.1", 1, "ip"),
                                    item(acct[0], "acct-7", 1, "account")};
        ratecore_check_item b[2] = {item(ip[1], "10.0.0.1", 1, "ip"),
                                    item(acct[1], "acct-7", 1, "account")};
        ratecore_check_result ra, rb;
        ratecore_headers ha, hb;
        uint8_t va[512], vb[512];
        memset(&ha, 0, sizeof ha);
        memset(&hb, 0, sizeof hb);
        REQUIRE_OK(ratecore_tables_check_headers(a, n, now, RATECORE_CHECK_MODE_CHARGE, style,
                                                 CH_WALL, va, sizeof va, &ra, &ha));
        REQUIRE_OK(ratecore_tables_check(b, n, now, RATECORE_CHECK_MODE_CHARGE, &rb));
        REQUIRE_OK(ratecore_render_check_headers(style, b, n, &rb, CH_WALL, vb, sizeof vb, &hb));
        check_same(&ra, &ha, &rb, &hb);
        CHECK(ha.count == 0 || (ha.headers[0].value >= va && ha.headers[0].value < va + ha.len));
        CHECK_EQ_U64(remaining(ip[0], "10.0.0.1", now), remaining(ip[1], "10.0.0.1", now));
        if (step == 5) {
            CHECK(!ra.decision.allowed); /* the sixth request: past either limit */
        }
    }
    for (int i = 0; i < 2; i++) {
        ratecore_table_free(ip[i]);
        ratecore_table_free(acct[i]);
    }
}

static void test_check_headers_same_as_two_calls(void) {
    for (uint32_t style = RATECORE_HEADER_STYLE_EVENERGY; style <= RATECORE_HEADER_STYLE_IETF;
         style++) {
        twins(style, 0);
        twins(style, 1);
    }
}

/* IETF lists longer than the buffer: the check is made (and counted once), the result
 * written, and ratecore_render_check_headers renders them from it. */
static void test_check_headers_buffer_too_small(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 10, RC_MINUTE);
    ratecore_table *t = new_table(&q, 1);
    ratecore_check_item it = item(t, "k", 1, "a-rather-long-policy-name");
    ratecore_check_result r;
    ratecore_headers h;
    uint8_t small[8], big[256];
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, RATECORE_CHECK_MODE_CHARGE,
                                               RATECORE_HEADER_STYLE_IETF, CH_WALL, small,
                                               sizeof small, &r, &h),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK(h.len > sizeof small && h.len <= sizeof big);
    CHECK_EQ_U64(remaining(t, "k", RC_SECOND), 9);
    CHECK(r.decision.allowed);
    CHECK_EQ_U64(r.report_count, 1);
    size_t needed = h.len;
    REQUIRE_OK(ratecore_render_check_headers(RATECORE_HEADER_STYLE_IETF, &it, 1, &r, CH_WALL, big,
                                             needed, &h));
    CHECK_EQ_U64(h.len, needed);
    CHECK_EQ_U64(h.count, 2);
    /* the seed styles' values fit RATECORE_MAX_HEADERS * 24 bytes */
    uint8_t seed[RATECORE_MAX_HEADERS * 24];
    REQUIRE_OK(ratecore_tables_check_headers(&it, 1, RC_SECOND, RATECORE_CHECK_MODE_CHARGE,
                                             RATECORE_HEADER_STYLE_SWITCH, UINT64_MAX, seed,
                                             sizeof seed, &r, &h));
    CHECK_EQ_U64(h.count, 3);
    ratecore_table_free(t);
}

/* Refused before anything is consumed. */
static void test_check_headers_bad_input(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 10, RC_MINUTE);
    ratecore_table *t = new_table(&q, 1);
    ratecore_check_item it = item(t, "k", 1, "ok");
    ratecore_check_item latin1 = it;
    static const uint8_t bad_name[] = {'c', 0xe9};
    latin1.name = bad_name;
    latin1.name_len = sizeof bad_name;
    ratecore_check_result r;
    ratecore_headers h;
    uint8_t buf[256];
    const uint32_t charge = RATECORE_CHECK_MODE_CHARGE;
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge, 99, CH_WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_UNKNOWN_HEADER_STYLE);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, CH_WALL, buf,
                                               sizeof buf, &r, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, CH_WALL, NULL,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, CH_WALL, buf,
                                               sizeof buf, NULL, &h),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check_headers(&latin1, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_IETF, CH_WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_INVALID_UTF8);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, 7,
                                               RATECORE_HEADER_STYLE_UPHOLD, CH_WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_tables_check_headers(NULL, 0, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, CH_WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_NO_LIMITS);
    ratecore_check_item greedy[2] = {it, item(t, "k2", 11, "greedy")};
    CHECK_STATUS(ratecore_tables_check_headers(greedy, 2, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, CH_WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK_EQ_U64(r.item, 1);
    /* a Latin-1 name is fine for a style that never renders names */
    REQUIRE_OK(ratecore_tables_check_headers(&latin1, 1, RC_SECOND, RATECORE_CHECK_MODE_PEEK,
                                             RATECORE_HEADER_STYLE_EVENERGY, CH_WALL, buf,
                                             sizeof buf, &r, &h));
    CHECK_EQ_U64(remaining(t, "k", RC_SECOND), 10);
    CHECK_EQ_U64(remaining(t, "k2", RC_SECOND), 10);
    ratecore_table_free(t);
}

int main(void) {
    test_later_denial_consumes_nothing();
    test_reports_and_peek();
    test_reference_model();
    test_render();
    test_bad_input();
    test_check_headers_same_as_two_calls();
    test_check_headers_buffer_too_small();
    test_check_headers_bad_input();
    return rc_finish("test_multi");
}
