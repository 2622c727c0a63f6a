/*
 * Keyed tables in library-owned memory from C: every table function with valid input
 * (keys, empty and binary keys, peeks, per-quota states, stats, introspection, the three
 * full-neighbourhood policies), then with NULL pointers, zero and absurd lengths, too-small
 * buffers, bad capacities and policies, and absurd quotas.
 */
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

static ratecore_table *new_table(const ratecore_quota *quotas, size_t n, uint64_t capacity,
                                 uint32_t policy) {
    ratecore_table *table = NULL;
    REQUIRE_OK(ratecore_table_new(quotas, n, capacity, policy, &table));
    CHECK(table != NULL);
    return table;
}

static ratecore_decision check_key(const ratecore_table *t, const char *key, uint64_t now,
                                   uint64_t cost) {
    ratecore_decision d;
    REQUIRE_OK(ratecore_table_check(t, rc_bytes(key), strlen(key), now, cost, &d));
    return d;
}

static ratecore_table_stats stats_of(const ratecore_table *t) {
    ratecore_table_stats s;
    REQUIRE_OK(ratecore_table_get_stats(t, &s));
    return s;
}

static void test_keys_are_independent(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_GCRA, 3, RC_MINUTE);
    ratecore_table *t = new_table(&q, 1, 1024, RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST);
    const char *keys[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
    for (size_t k = 0; k < 3; k++) {
        for (uint64_t left = 3; left-- > 0;) {
            ratecore_decision d = check_key(t, keys[k], RC_SECOND, 1);
            CHECK(d.allowed && d.remaining == left && d.limit == 3);
        }
        ratecore_decision d = check_key(t, keys[k], RC_SECOND, 1);
        CHECK(!d.allowed);
        CHECK_EQ_U64(d.retry_after_ns, 20 * RC_SECOND);
    }
    ratecore_table_stats s = stats_of(t);
    CHECK_EQ_U64(s.occupied, 3);
    CHECK_EQ_U64(s.new_keys, 3);
    CHECK_EQ_U64(s.evictions + s.full_neighbourhoods + s.full_denied + s.full_allowed, 0);
    CHECK_EQ_U64(s.contended + s.stale_claims + s.reclaims, 0);

    /* Peeking a new key reports a fresh state and claims nothing. */
    ratecore_decision d;
    REQUIRE_OK(ratecore_table_peek(t, rc_bytes("new"), 3, RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 2);
    CHECK_EQ_U64(stats_of(t).new_keys, 3);
    REQUIRE_OK(ratecore_table_peek(t, rc_bytes(keys[0]), strlen(keys[0]), RC_SECOND, 1, &d));
    CHECK(!d.allowed);
    /* Cost 0 is a peek too. */
    REQUIRE_OK(ratecore_table_check(t, rc_bytes("new"), 3, RC_SECOND, 0, &d));
    CHECK(d.allowed && d.remaining == 3);
    CHECK_EQ_U64(stats_of(t).new_keys, 3);
    /* A cost above the limit is an error; nothing written. */
    ratecore_decision untouched = rc_poisoned_decision();
    CHECK_STATUS(ratecore_table_check(t, rc_bytes("new"), 3, RC_SECOND, 4, &untouched),
                 RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK_STATUS(ratecore_table_peek(t, rc_bytes("new"), 3, RC_SECOND, 4, &untouched),
                 RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK(rc_is_poisoned(&untouched));
    ratecore_table_free(t);
}

static void test_empty_and_binary_keys(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 2, RC_HOUR);
    ratecore_table *t = new_table(&q, 1, 64, RATECORE_FULL_POLICY_DENY);
    ratecore_decision d;
    /* (NULL, 0), ("", 0) and (non-NULL, 0) are one and the same empty key. */
    REQUIRE_OK(ratecore_table_check(t, NULL, 0, RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 1);
    REQUIRE_OK(ratecore_table_check(t, rc_bytes("ignored"), 0, RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 0);
    REQUIRE_OK(ratecore_table_check(t, rc_bytes(""), 0, RC_SECOND, 1, &d));
    CHECK(!d.allowed);
    /* Keys are bytes: embedded NULs count, prefixes differ. */
    const uint8_t a_nul_b[3] = {'a', 0, 'b'};
    const uint8_t a[1] = {'a'};
    REQUIRE_OK(ratecore_table_check(t, a_nul_b, 3, RC_SECOND, 2, &d));
    CHECK(d.allowed && d.remaining == 0);
    REQUIRE_OK(ratecore_table_check(t, a, 1, RC_SECOND, 2, &d));
    CHECK(d.allowed);
    REQUIRE_OK(ratecore_table_check(t, a_nul_b, 2, RC_SECOND, 2, &d));
    CHECK(d.allowed);
    /* A long key. */
    static uint8_t big[1 << 16];
    memset(big, 0x7f, sizeof big);
    REQUIRE_OK(ratecore_table_check(t, big, sizeof big, RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 1);
    CHECK_EQ_U64(stats_of(t).new_keys, 5);
    ratecore_table_free(t);
}

static void test_composite_table_and_introspection(void) {
    ratecore_quota quotas[3] = {
        rc_quota(RATECORE_ALGORITHM_GCRA, 2, RC_SECOND),
        rc_strict(3, RC_MINUTE, 6),
        rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW, 100, RC_HOUR),
    };
    quotas[0].burst = 2;
    ratecore_table *t = new_table(quotas, 3, 100, RATECORE_FULL_POLICY_ALLOW);

    uint64_t capacity = 0;
    REQUIRE_OK(ratecore_table_capacity(t, &capacity));
    CHECK_EQ_U64(capacity, 128);
    uint32_t policy = 99;
    REQUIRE_OK(ratecore_table_full_policy(t, &policy));
    CHECK_EQ_U64(policy, RATECORE_FULL_POLICY_ALLOW);
    size_t count = 0;
    REQUIRE_OK(ratecore_table_limit_count(t, &count));
    CHECK_EQ_U64(count, 3);
    ratecore_quota back[RATECORE_MAX_TABLE_LIMITS];
    memset(back, 0xab, sizeof back);
    count = 0;
    CHECK_STATUS(ratecore_table_limits(t, back, 2, &count), RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ_U64(count, 3); /* the needed count is reported... */
    CHECK_EQ_U64(back[0].limit, UINT64_C(0xabababababababab)); /* ...nothing else written */
    count = 0;
    CHECK_STATUS(ratecore_table_limits(t, NULL, 0, &count), RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ_U64(count, 3);
    REQUIRE_OK(ratecore_table_limits(t, back, RATECORE_MAX_TABLE_LIMITS, &count));
    CHECK_EQ_U64(count, 3);
    CHECK(memcmp(&back[0], &quotas[0], sizeof quotas[0]) == 0);
    CHECK(memcmp(&back[1], &quotas[1], sizeof quotas[1]) == 0 || back[1].burst == 3);
    CHECK(back[1].limit == 3 && back[1].sub_windows == 6 &&
          back[1].algorithm == RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT);
    CHECK(back[2].limit == 100 && back[2].period_ns == RC_HOUR && back[2].burst == 100);
    CHECK_EQ_U64(back[3].limit, UINT64_C(0xabababababababab));

    ratecore_decision d, states[4];
    states[3] = rc_poisoned_decision();
    const uint8_t *key = rc_bytes("user:42");
    REQUIRE_OK(ratecore_table_check_each(t, key, 7, RC_SECOND, 1, states, 4, &d));
    CHECK(d.allowed && d.remaining == 1);
    CHECK(states[0].remaining == 1 && states[1].remaining == 2 && states[2].remaining == 99);
    CHECK(rc_is_poisoned(&states[3]));
    REQUIRE_OK(ratecore_table_check(t, key, 7, RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 0);
    /* GCRA denies; the others are not charged. */
    REQUIRE_OK(ratecore_table_check_each(t, key, 7, RC_SECOND, 1, states, 3, &d));
    CHECK(!d.allowed);
    CHECK(!states[0].allowed && states[1].allowed && states[2].allowed);
    CHECK(states[1].remaining == 1 && states[2].remaining == 98);
    /* Later, the strict window is the one that denies. */
    REQUIRE_OK(ratecore_table_check(t, key, 7, 2 * RC_SECOND, 1, &d));
    CHECK(d.allowed);
    REQUIRE_OK(ratecore_table_check_each(t, key, 7, 3 * RC_SECOND, 1, states, 3, &d));
    CHECK(!d.allowed);
    CHECK(states[0].allowed && !states[1].allowed);
    CHECK(d.retry_after_ns > 0 && d.retry_after_ns <= RC_MINUTE);

    /* peek_each: the same per-quota view, consuming nothing, never claiming a slot. */
    ratecore_decision peeked[3], again[3];
    REQUIRE_OK(ratecore_table_peek_each(t, key, 7, 3 * RC_SECOND, 1, peeked, 3, &d));
    REQUIRE_OK(ratecore_table_peek_each(t, key, 7, 3 * RC_SECOND, 1, again, 3, &d));
    CHECK(memcmp(peeked, again, sizeof peeked) == 0);
    CHECK(peeked[0].allowed && !peeked[1].allowed);
    ratecore_table_stats before, after;
    REQUIRE_OK(ratecore_table_get_stats(t, &before));
    REQUIRE_OK(ratecore_table_peek_each(t, rc_bytes("nobody"), 6, RC_SECOND, 1, peeked, 3, &d));
    REQUIRE_OK(ratecore_table_check_each(t, rc_bytes("nobody"), 6, RC_SECOND, 0, peeked, 3, &d));
    REQUIRE_OK(ratecore_table_get_stats(t, &after));
    CHECK(d.allowed && before.new_keys == after.new_keys && before.occupied == after.occupied);
    CHECK_STATUS(ratecore_table_peek_each(t, key, 7, RC_SECOND, 1, peeked, 1, &d),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);

    ratecore_decision untouched = rc_poisoned_decision();
    ratecore_decision one = rc_poisoned_decision();
    CHECK_STATUS(ratecore_table_check_each(t, key, 7, RC_SECOND, 1, &one, 1, &untouched),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(ratecore_table_check_each(t, key, 7, RC_SECOND, 1, NULL, 0, &untouched),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(ratecore_table_check_each(t, key, 7, RC_SECOND, 1, NULL, 3, &untouched),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_check_each(t, key, 7, RC_SECOND, 1, states, SIZE_MAX, &untouched),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_table_check_each(t, key, 7, RC_SECOND, 1, states, 3, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_check_each(NULL, key, 7, RC_SECOND, 1, states, 3, &untouched),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_check_each(t, NULL, 7, RC_SECOND, 1, states, 3, &untouched),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK(rc_is_poisoned(&untouched) && rc_is_poisoned(&one));
    ratecore_table_free(t);
}

/* Capacity 8 is one neighbourhood: the ninth active key meets the policy. */
static void test_full_policies(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_GCRA, 1, RC_HOUR);
    const uint32_t policies[3] = {RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST,
                                  RATECORE_FULL_POLICY_DENY, RATECORE_FULL_POLICY_ALLOW};
    for (size_t p = 0; p < 3; p++) {
        ratecore_table *t = new_table(&q, 1, 1, policies[p]);
        uint64_t capacity = 0;
        REQUIRE_OK(ratecore_table_capacity(t, &capacity));
        CHECK_EQ_U64(capacity, 8);
        char key[16];
        for (int k = 0; k < 8; k++) {
            snprintf(key, sizeof key, "key-%d", k);
            ratecore_decision d = check_key(t, key, RC_SECOND, 1);
            CHECK(d.allowed);
        }
        ratecore_table_stats s = stats_of(t);
        CHECK_EQ_U64(s.occupied, 8);
        ratecore_decision d = check_key(t, "ninth", RC_SECOND, 1);
        s = stats_of(t);
        CHECK_EQ_U64(s.full_neighbourhoods, 1);
        switch (policies[p]) {
        case RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST:
            CHECK(d.allowed);
            CHECK_EQ_U64(s.evictions, 1);
            CHECK_EQ_U64(s.occupied, 8);
            break;
        case RATECORE_FULL_POLICY_DENY:
            CHECK(!d.allowed);
            CHECK(d.retry_after_ns > 0);
            CHECK_EQ_U64(s.full_denied, 1);
            break;
        default:
            CHECK(d.allowed);
            CHECK_EQ_U64(s.full_allowed, 1);
            d = check_key(t, "ninth", RC_SECOND, 1); /* untracked: admitted again */
            CHECK(d.allowed);
            CHECK_EQ_U64(stats_of(t).full_allowed, 2);
            break;
        }
        /* An hour later every slot is at rest: reclaimed losslessly. */
        d = check_key(t, "tenth", RC_SECOND + RC_HOUR, 1);
        CHECK(d.allowed);
        CHECK_EQ_U64(stats_of(t).reclaims, 1);
        ratecore_table_free(t);
    }
}

/* Every table function with NULL, zero-length and absurd-length arguments. */
static void test_bad_pointers_and_lengths(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_GCRA, 5, RC_SECOND);
    ratecore_table *sentinel = (ratecore_table *)&q;
    ratecore_table *out = sentinel;
    CHECK_STATUS(ratecore_table_new(NULL, 1, 64, 0, &out), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_new(NULL, 50, 64, 0, &out), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_new(&q, 1, 64, 0, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_new(NULL, 0, 64, 0, &out), RATECORE_STATUS_NO_LIMITS);
    CHECK_STATUS(ratecore_table_new(&q, 0, 64, 0, &out), RATECORE_STATUS_NO_LIMITS);
    CHECK_STATUS(ratecore_table_new(&q, SIZE_MAX, 64, 0, &out), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_table_new(&q, RATECORE_MAX_TABLE_LIMITS + 1, 64, 0, &out),
                 RATECORE_STATUS_TOO_MANY_LIMITS);
    CHECK(out == sentinel);

    ratecore_table *t = new_table(&q, 1, 64, 0);
    ratecore_decision d = rc_poisoned_decision();
    ratecore_table_stats s;
    memset(&s, 0xab, sizeof s);
    uint64_t capacity = 777;
    uint32_t policy = 777;
    size_t count = 777;
    const uint8_t *key = rc_bytes("k");
    CHECK_STATUS(ratecore_table_check(NULL, key, 1, 0, 1, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_check(t, NULL, 1, 0, 1, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_check(t, key, 1, 0, 1, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_check(t, key, SIZE_MAX, 0, 1, &d), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_table_check(t, key, (size_t)PTRDIFF_MAX + 1, 0, 1, &d),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_table_peek(NULL, key, 1, 0, 1, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_peek(t, NULL, 1, 0, 1, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_peek(t, key, 1, 0, 1, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_peek(t, key, SIZE_MAX, 0, 1, &d), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_table_get_stats(NULL, &s), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_get_stats(t, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_capacity(NULL, &capacity), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_capacity(t, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_full_policy(NULL, &policy), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_full_policy(t, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_limit_count(NULL, &count), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_limit_count(t, NULL), RATECORE_STATUS_NULL_POINTER);
    ratecore_quota back[2];
    CHECK_STATUS(ratecore_table_limits(NULL, back, 2, &count), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_limits(t, NULL, 2, &count), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_limits(t, back, 2, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_limits(t, back, SIZE_MAX, &count), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK(rc_is_poisoned(&d));
    CHECK_EQ_U64(s.occupied, UINT64_C(0xabababababababab));
    CHECK(capacity == 777 && policy == 777 && count == 777);
    ratecore_table_free(t);
    ratecore_table_free(NULL);
}

static void expect_table_rejected(const ratecore_quota *quotas, size_t n, uint64_t capacity,
                                  uint32_t policy, uint32_t expected, const char *what) {
    ratecore_table *out = NULL;
    rc_check_built(ratecore_table_new(quotas, n, capacity, policy, &out), expected, "table",
                   what);
    CHECK(out == NULL);
    size_t size = 12345;
    CHECK_STATUS(ratecore_table_region_size(quotas, n, capacity, policy, &size), expected);
    CHECK(size == 12345);
}

static void test_absurd_tables(void) {
    ratecore_quota ok = rc_quota(RATECORE_ALGORITHM_GCRA, 5, RC_SECOND);
    expect_table_rejected(&ok, 1, 0, 0, RATECORE_STATUS_BAD_CAPACITY, "capacity 0");
    expect_table_rejected(&ok, 1, RATECORE_MAX_TABLE_CAPACITY + 1, 0,
                          RATECORE_STATUS_BAD_CAPACITY, "capacity above the maximum");
    expect_table_rejected(&ok, 1, UINT64_MAX, 0, RATECORE_STATUS_BAD_CAPACITY, "capacity max");
    expect_table_rejected(&ok, 1, 64, 3, RATECORE_STATUS_UNKNOWN_FULL_POLICY, "policy 3");
    expect_table_rejected(&ok, 1, 64, UINT32_MAX, RATECORE_STATUS_UNKNOWN_FULL_POLICY,
                          "policy UINT32_MAX");
    ratecore_quota bad[2] = {ok, rc_quota(RATECORE_ALGORITHM_GCRA, 0, RC_SECOND)};
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_ZERO_LIMIT, "limit 0");
    bad[1] = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 1, 0);
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_ZERO_PERIOD, "period 0");
    bad[1] = rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW, 10, 9);
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_EMISSION_INTERVAL_TOO_SMALL,
                          "period < limit");
    bad[1] = rc_quota(RATECORE_ALGORITHM_GCRA, 1, UINT64_MAX);
    bad[1].burst = 3;
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_BURST_OVERFLOW, "burst overflow");
    bad[1] = rc_strict(10, RC_SECOND, 0);
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_ZERO_SUB_WINDOWS, "sub_windows 0");
    bad[1] = rc_strict(10, RC_SECOND, UINT32_MAX);
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_TOO_MANY_SUB_WINDOWS, "sub_windows huge");
    bad[1] = rc_quota(42, 10, RC_SECOND);
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_UNKNOWN_ALGORITHM, "algorithm 42");
    bad[1] = rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW, 10, RC_SECOND);
    bad[1].sub_windows = 2;
    expect_table_rejected(bad, 2, 64, 0, RATECORE_STATUS_INVALID_ARGUMENT, "stray sub_windows");
    ratecore_quota five[5] = {ok, ok, ok, ok, ok};
    expect_table_rejected(five, 5, 64, 0, RATECORE_STATUS_TOO_MANY_LIMITS, "five quotas");
    expect_table_rejected(five, 0, 64, 0, RATECORE_STATUS_NO_LIMITS, "no quotas");
    /* The largest legal table's size is computed, not allocated. */
    ratecore_quota strict[4] = {
        rc_strict(10, RC_HOUR, RATECORE_MAX_SUB_WINDOWS),
        rc_strict(10, RC_HOUR, RATECORE_MAX_SUB_WINDOWS),
        rc_strict(10, RC_HOUR, RATECORE_MAX_SUB_WINDOWS),
        rc_strict(10, RC_HOUR, RATECORE_MAX_SUB_WINDOWS),
    };
    size_t size = 0;
    REQUIRE_OK(ratecore_table_region_size(strict, 4, RATECORE_MAX_TABLE_CAPACITY, 0, &size));
    CHECK(size > (size_t)4 * RATECORE_MAX_TABLE_CAPACITY * (RATECORE_MAX_SUB_WINDOWS + 2) * 16);
}

int main(void) {
    test_keys_are_independent();
    test_empty_and_binary_keys();
    test_composite_table_and_introspection();
    test_full_policies();
    test_bad_pointers_and_lengths();
    test_absurd_tables();
    return rc_finish("test_table");
}
