/*
 * ratecore_tables_check_headers from C: one call answers what ratecore_tables_check and
 * then ratecore_render_check_headers answer (status, result, header names and value
 * bytes) for every style, one table or several, admitted and denied, over twin tables;
 * a too-small buffer (the check made, the headers rendered again from the result); and
 * bad input refused before anything is consumed: an unknown style, NULL outputs, a name
 * the IETF style cannot render, no items, a cost no quota admits.
 */
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

#define WALL UINT64_C(1700000000123456789)

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
                                                 WALL, va, sizeof va, &ra, &ha));
        REQUIRE_OK(ratecore_tables_check(b, n, now, RATECORE_CHECK_MODE_CHARGE, &rb));
        REQUIRE_OK(ratecore_render_check_headers(style, b, n, &rb, WALL, vb, sizeof vb, &hb));
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

static void test_same_as_two_calls(void) {
    for (uint32_t style = RATECORE_HEADER_STYLE_EVENERGY; style <= RATECORE_HEADER_STYLE_IETF;
         style++) {
        twins(style, 0);
        twins(style, 1);
    }
}

/* IETF lists longer than the buffer: the check is made (and counted once), the result
 * written, and ratecore_render_check_headers renders them from it. */
static void test_buffer_too_small(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 10, RC_MINUTE);
    ratecore_table *t = new_table(&q, 1);
    ratecore_check_item it = item(t, "k", 1, "a-rather-long-policy-name");
    ratecore_check_result r;
    ratecore_headers h;
    uint8_t small[8], big[256];
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, RATECORE_CHECK_MODE_CHARGE,
                                               RATECORE_HEADER_STYLE_IETF, WALL, small,
                                               sizeof small, &r, &h),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK(h.len > sizeof small && h.len <= sizeof big);
    CHECK_EQ_U64(remaining(t, "k", RC_SECOND), 9);
    CHECK(r.decision.allowed);
    CHECK_EQ_U64(r.report_count, 1);
    size_t needed = h.len;
    REQUIRE_OK(ratecore_render_check_headers(RATECORE_HEADER_STYLE_IETF, &it, 1, &r, WALL, big,
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
static void test_bad_input(void) {
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
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge, 99, WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_UNKNOWN_HEADER_STYLE);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, WALL, buf,
                                               sizeof buf, &r, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, WALL, NULL,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, WALL, buf,
                                               sizeof buf, NULL, &h),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_tables_check_headers(&latin1, 1, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_IETF, WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_INVALID_UTF8);
    CHECK_STATUS(ratecore_tables_check_headers(&it, 1, RC_SECOND, 7,
                                               RATECORE_HEADER_STYLE_UPHOLD, WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_tables_check_headers(NULL, 0, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_NO_LIMITS);
    ratecore_check_item greedy[2] = {it, item(t, "k2", 11, "greedy")};
    CHECK_STATUS(ratecore_tables_check_headers(greedy, 2, RC_SECOND, charge,
                                               RATECORE_HEADER_STYLE_UPHOLD, WALL, buf,
                                               sizeof buf, &r, &h),
                 RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK_EQ_U64(r.item, 1);
    /* a Latin-1 name is fine for a style that never renders names */
    REQUIRE_OK(ratecore_tables_check_headers(&latin1, 1, RC_SECOND, RATECORE_CHECK_MODE_PEEK,
                                             RATECORE_HEADER_STYLE_EVENERGY, WALL, buf,
                                             sizeof buf, &r, &h));
    CHECK_EQ_U64(remaining(t, "k", RC_SECOND), 10);
    CHECK_EQ_U64(remaining(t, "k2", RC_SECOND), 10);
    ratecore_table_free(t);
}

int main(void) {
    test_same_as_two_calls();
    test_buffer_too_small();
    test_bad_input();
    return rc_finish("test_check_headers");
}
