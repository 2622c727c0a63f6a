/*
 * Single-key limiters from C: every limiter function with valid input (each algorithm,
 * composites, peeks, per-quota states), then with NULL pointers, zero and absurd lengths,
 * too-small buffers and absurd quotas. Also ratecore_version and ratecore_status_message.
 */
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

static ratecore_limiter *new_limiter(const ratecore_quota *quotas, size_t n) {
    ratecore_limiter *limiter = NULL;
    REQUIRE_OK(ratecore_limiter_new(quotas, n, &limiter));
    CHECK(limiter != NULL);
    return limiter;
}

static void test_version_and_messages(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", RATECORE_VERSION_MAJOR,
             RATECORE_VERSION_MINOR, RATECORE_VERSION_PATCH);
    CHECK(strcmp(ratecore_version(), RATECORE_VERSION) == 0);
    CHECK(strcmp(ratecore_version(), expected) == 0);

    const uint32_t known[] = {
        RATECORE_STATUS_OK, RATECORE_STATUS_NULL_POINTER, RATECORE_STATUS_INVALID_ARGUMENT,
        RATECORE_STATUS_BUFFER_TOO_SMALL, RATECORE_STATUS_PANIC,
        RATECORE_STATUS_UNKNOWN_ALGORITHM, RATECORE_STATUS_UNKNOWN_FULL_POLICY,
        RATECORE_STATUS_OUT_OF_MEMORY, RATECORE_STATUS_INVALID_QUOTA,
        RATECORE_STATUS_ZERO_LIMIT, RATECORE_STATUS_ZERO_PERIOD, RATECORE_STATUS_ZERO_BURST,
        RATECORE_STATUS_EMISSION_INTERVAL_TOO_SMALL, RATECORE_STATUS_BURST_OVERFLOW,
        RATECORE_STATUS_ZERO_SUB_WINDOWS, RATECORE_STATUS_TOO_MANY_SUB_WINDOWS,
        RATECORE_STATUS_STORAGE_LENGTH, RATECORE_STATUS_STATE_TOO_WIDE,
        RATECORE_STATUS_NO_LIMITS, RATECORE_STATUS_TOO_MANY_LIMITS,
        RATECORE_STATUS_CHECK_ERROR, RATECORE_STATUS_COST_EXCEEDS_LIMIT,
        RATECORE_STATUS_TABLE_ERROR, RATECORE_STATUS_BAD_CAPACITY,
        RATECORE_STATUS_NOT_LOCK_FREE, RATECORE_STATUS_REGION_TOO_SMALL,
        RATECORE_STATUS_REGION_MISALIGNED, RATECORE_STATUS_BAD_MAGIC,
        RATECORE_STATUS_UNSUPPORTED_VERSION, RATECORE_STATUS_NOT_READY,
        RATECORE_STATUS_CORRUPT_HEADER, RATECORE_STATUS_HASH_MISMATCH,
        RATECORE_STATUS_POLICY_ERROR, RATECORE_STATUS_INVALID_CONFIG,
        RATECORE_STATUS_CONFIG_UNREADABLE, RATECORE_STATUS_UNKNOWN_LIMIT,
        RATECORE_STATUS_INVALID_OVERRIDE, RATECORE_STATUS_RENDER_ERROR,
        RATECORE_STATUS_UNKNOWN_HEADER_STYLE, RATECORE_STATUS_INVALID_UTF8,
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *message = ratecore_status_message(known[i]);
        CHECK(message != NULL && message[0] != '\0');
        CHECK(strcmp(message, "unknown status") != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(message, ratecore_status_message(known[j])) != 0);
        }
    }
    CHECK(strcmp(ratecore_status_message(RATECORE_STATUS_OK), "success") == 0);
    const uint32_t unknown[] = {8, 99, 112, 199, 202, 299, 310, 405, 503, 600, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK(strcmp(ratecore_status_message(unknown[i]), "unknown status") == 0);
    }
}

static void test_gcra(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_GCRA, 3, RC_SECOND);
    ratecore_limiter *l = new_limiter(&q, 1);
    ratecore_decision d;
    uint64_t now = RC_SECOND;
    for (uint64_t expected = 3; expected-- > 0;) {
        REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
        CHECK(d.allowed);
        CHECK_EQ_U64(d.limit, 3);
        CHECK_EQ_U64(d.remaining, expected);
        CHECK_EQ_U64(d.retry_after_ns, 0);
    }
    REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
    CHECK(!d.allowed);
    CHECK_EQ_U64(d.remaining, 0);
    CHECK_EQ_U64(d.retry_after_ns, 333333334); /* one emission interval, rounded up */
    CHECK_EQ_U64(d.reset_after_ns, 3 * UINT64_C(333333334));
    /* One interval later, exactly one more request fits. */
    now += 333333334;
    REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
    CHECK(d.allowed);
    REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
    CHECK(!d.allowed);
    /* Time going backwards refunds nothing. */
    REQUIRE_OK(ratecore_limiter_check(l, 0, 1, &d));
    CHECK(!d.allowed);
    /* A cost above the burst can never be admitted: an error, and no output. */
    ratecore_decision untouched = rc_poisoned_decision();
    CHECK_STATUS(ratecore_limiter_check(l, now, 4, &untouched), RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK_STATUS(ratecore_limiter_peek(l, now, 4, &untouched), RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK(rc_is_poisoned(&untouched));
    size_t count = 0;
    REQUIRE_OK(ratecore_limiter_limit_count(l, &count));
    CHECK_EQ_U64(count, 1);
    ratecore_limiter_free(l);

    /* Burst: 10 per second, at most 2 at once. */
    q = rc_quota(RATECORE_ALGORITHM_GCRA, 10, RC_SECOND);
    q.burst = 2;
    l = new_limiter(&q, 1);
    REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
    CHECK(d.allowed && d.limit == 2 && d.remaining == 1);
    REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
    CHECK(d.allowed);
    REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
    CHECK(!d.allowed);
    CHECK_EQ_U64(d.retry_after_ns, RC_SECOND / 10);
    CHECK_STATUS(ratecore_limiter_check(l, now, 3, &d), RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    ratecore_limiter_free(l);
}

static void test_fixed_window(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 3, 10 * RC_SECOND);
    ratecore_limiter *l = new_limiter(&q, 1);
    ratecore_decision d;
    uint64_t now = 12 * RC_SECOND; /* windows are aligned: this one is [10 s, 20 s) */
    REQUIRE_OK(ratecore_limiter_check(l, now, 2, &d)); /* weighted cost */
    CHECK(d.allowed);
    CHECK_EQ_U64(d.remaining, 1);
    CHECK_EQ_U64(d.reset_after_ns, 8 * RC_SECOND);
    REQUIRE_OK(ratecore_limiter_check(l, now, 2, &d));
    CHECK(!d.allowed);
    CHECK_EQ_U64(d.retry_after_ns, 8 * RC_SECOND);
    REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
    CHECK(d.allowed && d.remaining == 0);
    REQUIRE_OK(ratecore_limiter_check(l, 20 * RC_SECOND, 3, &d));
    CHECK(d.allowed && d.remaining == 0);
    ratecore_limiter_free(l);
}

static void test_sliding_windows(void) {
    ratecore_quota quotas[2] = {
        rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW, 3, 10 * RC_SECOND),
        rc_strict(3, 10 * RC_SECOND, 10),
    };
    for (size_t i = 0; i < 2; i++) {
        ratecore_limiter *l = new_limiter(&quotas[i], 1);
        ratecore_decision d;
        uint64_t now = 12 * RC_SECOND;
        for (int n = 0; n < 3; n++) {
            REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
            CHECK(d.allowed);
            CHECK_EQ_U64(d.limit, 3);
        }
        REQUIRE_OK(ratecore_limiter_check(l, now, 1, &d));
        CHECK(!d.allowed);
        /* Strict: within one period. Approximate: the weighted estimate may keep a full
         * window's count weighing into the next one (here until 23.3 s). */
        CHECK(d.retry_after_ns > 0 && d.retry_after_ns <= (i ? 10 : 20) * RC_SECOND);
        /* A whole period later everything has left the window. */
        REQUIRE_OK(ratecore_limiter_check(l, now + 20 * RC_SECOND, 3, &d));
        CHECK(d.allowed);
        ratecore_limiter_free(l);
    }
}

static void test_peek(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 2, RC_MINUTE);
    ratecore_limiter *l = new_limiter(&q, 1);
    ratecore_decision d;
    for (int i = 0; i < 5; i++) {
        REQUIRE_OK(ratecore_limiter_peek(l, RC_SECOND, 1, &d));
        CHECK(d.allowed && d.remaining == 1);
        REQUIRE_OK(ratecore_limiter_check(l, RC_SECOND, 0, &d)); /* cost 0: a peek */
        CHECK(d.allowed && d.remaining == 2);
    }
    REQUIRE_OK(ratecore_limiter_check(l, RC_SECOND, 2, &d));
    CHECK(d.allowed && d.remaining == 0);
    REQUIRE_OK(ratecore_limiter_peek(l, RC_SECOND, 1, &d));
    CHECK(!d.allowed);
    ratecore_limiter_free(l);
}

static void test_composite(void) {
    ratecore_quota quotas[2] = {
        rc_quota(RATECORE_ALGORITHM_GCRA, 2, RC_SECOND),
        rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 3, RC_MINUTE),
    };
    ratecore_limiter *l = new_limiter(quotas, 2);
    size_t count = 0;
    REQUIRE_OK(ratecore_limiter_limit_count(l, &count));
    CHECK_EQ_U64(count, 2);
    ratecore_decision d, states[4];
    memset(states, 0, sizeof states);
    states[2] = rc_poisoned_decision();
    REQUIRE_OK(ratecore_limiter_check_each(l, RC_SECOND, 1, states, 4, &d));
    CHECK(d.allowed && d.remaining == 1);
    CHECK(states[0].allowed && states[0].remaining == 1 && states[0].limit == 2);
    CHECK(states[1].allowed && states[1].remaining == 2 && states[1].limit == 3);
    CHECK(rc_is_poisoned(&states[2])); /* beyond the quota count: untouched */
    REQUIRE_OK(ratecore_limiter_check(l, RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 0);
    /* GCRA denies; the fixed window is not charged. */
    REQUIRE_OK(ratecore_limiter_check_each(l, RC_SECOND, 1, states, 2, &d));
    CHECK(!d.allowed);
    CHECK_EQ_U64(d.retry_after_ns, RC_SECOND / 2);
    CHECK(!states[0].allowed);
    CHECK(states[1].allowed && states[1].remaining == 1);
    /* One second later GCRA admits again; the fixed window allows one more. */
    REQUIRE_OK(ratecore_limiter_check(l, 2 * RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 0);
    REQUIRE_OK(ratecore_limiter_peek_each(l, 2 * RC_SECOND, 1, states, 2, &d));
    CHECK(!d.allowed);
    CHECK_EQ_U64(d.retry_after_ns, 58 * RC_SECOND); /* the window ends at 60 s */
    CHECK(states[0].allowed && !states[1].allowed);
    REQUIRE_OK(ratecore_limiter_check_each(l, 2 * RC_SECOND, 1, states, 2, &d));
    CHECK(!d.allowed);
    CHECK(states[0].allowed && states[0].remaining == 1); /* nothing consumed */
    /* Cost above one quota's capacity: an error. */
    CHECK_STATUS(ratecore_limiter_check(l, 2 * RC_SECOND, 3, &d), RATECORE_STATUS_COST_EXCEEDS_LIMIT);

    /* Too-small state buffers: nothing checked, nothing written. */
    ratecore_decision untouched = rc_poisoned_decision();
    ratecore_decision one = rc_poisoned_decision();
    CHECK_STATUS(ratecore_limiter_check_each(l, 3 * RC_SECOND, 1, &one, 1, &untouched),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(ratecore_limiter_check_each(l, 3 * RC_SECOND, 1, NULL, 0, &untouched),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(ratecore_limiter_peek_each(l, 3 * RC_SECOND, 1, &one, 1, &untouched),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(ratecore_limiter_check_each(l, 3 * RC_SECOND, 1, NULL, 2, &untouched),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_check_each(l, 3 * RC_SECOND, 1, states, 2, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_check_each(NULL, 3 * RC_SECOND, 1, states, 2, &untouched),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_peek_each(l, 3 * RC_SECOND, 1, states, SIZE_MAX, &untouched),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK(rc_is_poisoned(&untouched) && rc_is_poisoned(&one));
    ratecore_limiter_free(l);

    /* A single-quota limiter fills one state. */
    l = new_limiter(&quotas[1], 1);
    states[1] = rc_poisoned_decision();
    REQUIRE_OK(ratecore_limiter_check_each(l, RC_SECOND, 1, states, 2, &d));
    CHECK(d.allowed && states[0].allowed && states[0].remaining == d.remaining);
    CHECK(rc_is_poisoned(&states[1]));
    ratecore_limiter_free(l);

    /* The most quotas a limiter takes. */
    ratecore_quota many[RATECORE_MAX_LIMITER_LIMITS + 1];
    for (size_t i = 0; i < RATECORE_MAX_LIMITER_LIMITS + 1; i++) {
        many[i] = rc_quota(RATECORE_ALGORITHM_GCRA, 100 + i, RC_SECOND);
    }
    l = new_limiter(many, RATECORE_MAX_LIMITER_LIMITS);
    REQUIRE_OK(ratecore_limiter_check(l, RC_SECOND, 1, &d));
    CHECK(d.allowed && d.remaining == 99);
    ratecore_limiter_free(l);
    ratecore_limiter *never = (ratecore_limiter *)&untouched;
    CHECK_STATUS(ratecore_limiter_new(many, RATECORE_MAX_LIMITER_LIMITS + 1, &never),
                 RATECORE_STATUS_TOO_MANY_LIMITS);
    CHECK(never == (ratecore_limiter *)&untouched);
}

static void test_extreme_times(void) {
    /* Windows: 1 per UINT64_MAX ns, decided at the last representable nanosecond. */
    ratecore_quota quotas[3] = {
        rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 1, UINT64_MAX),
        rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW, 1, UINT64_MAX),
        rc_strict(1, UINT64_MAX, RATECORE_MAX_SUB_WINDOWS),
    };
    for (size_t i = 0; i < 3; i++) {
        ratecore_limiter *l = new_limiter(&quotas[i], 1);
        ratecore_decision d;
        REQUIRE_OK(ratecore_limiter_check(l, UINT64_MAX, 1, &d));
        CHECK(d.allowed);
        REQUIRE_OK(ratecore_limiter_check(l, UINT64_MAX, 1, &d));
        CHECK(!d.allowed);
        CHECK_EQ_U64(d.retry_after_ns, RATECORE_NEVER);
        REQUIRE_OK(ratecore_limiter_check(l, 0, 1, &d)); /* going back refunds nothing */
        CHECK(!d.allowed);
        ratecore_limiter_free(l);
    }
    /* GCRA: a request whose theoretical arrival time would pass UINT64_MAX ns can never be
     * scheduled: denied with retry RATECORE_NEVER, and nothing consumed. */
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_GCRA, 1, UINT64_MAX);
    ratecore_limiter *l = new_limiter(&q, 1);
    ratecore_decision d;
    REQUIRE_OK(ratecore_limiter_check(l, UINT64_MAX, 1, &d));
    CHECK(!d.allowed);
    CHECK_EQ_U64(d.retry_after_ns, RATECORE_NEVER);
    REQUIRE_OK(ratecore_limiter_check(l, 0, 1, &d));
    CHECK(d.allowed);
    CHECK_EQ_U64(d.reset_after_ns, UINT64_MAX);
    REQUIRE_OK(ratecore_limiter_check(l, UINT64_MAX - 1, 1, &d));
    CHECK(!d.allowed);
    ratecore_limiter_free(l);
}

/* Every limiter function with NULL, zero-length and absurd-length arguments. */
static void test_bad_pointers_and_lengths(void) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_GCRA, 5, RC_SECOND);
    ratecore_limiter *sentinel = (ratecore_limiter *)&q;
    ratecore_limiter *out = sentinel;
    CHECK_STATUS(ratecore_limiter_new(NULL, 1, &out), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_new(NULL, 100, &out), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_new(&q, 1, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_new(NULL, 0, &out), RATECORE_STATUS_NO_LIMITS);
    CHECK_STATUS(ratecore_limiter_new(&q, 0, &out), RATECORE_STATUS_NO_LIMITS);
    CHECK_STATUS(ratecore_limiter_new(&q, SIZE_MAX, &out), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_limiter_new(&q, (size_t)PTRDIFF_MAX + 1, &out),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_limiter_new(&q, 1000, &out), RATECORE_STATUS_TOO_MANY_LIMITS);
    CHECK(out == sentinel);

    ratecore_limiter *l = new_limiter(&q, 1);
    ratecore_decision d = rc_poisoned_decision();
    size_t count = 12345;
    CHECK_STATUS(ratecore_limiter_check(NULL, 0, 1, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_check(l, 0, 1, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_peek(NULL, 0, 1, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_peek(l, 0, 1, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_check_each(NULL, 0, 1, NULL, 0, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_peek_each(NULL, 0, 1, NULL, 0, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_peek_each(l, 0, 1, NULL, 1, &d), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_limit_count(NULL, &count), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_limiter_limit_count(l, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK(rc_is_poisoned(&d));
    CHECK_EQ_U64(count, 12345);
    ratecore_limiter_free(l);
    ratecore_limiter_free(NULL);
}

static void expect_rejected(ratecore_quota q, uint32_t expected, const char *what) {
    ratecore_limiter *out = NULL;
    rc_check_built(ratecore_limiter_new(&q, 1, &out), expected, "quota", what);
    CHECK(out == NULL);
    /* The same quota second in a composite is rejected the same way. */
    ratecore_quota pair[2] = {rc_quota(RATECORE_ALGORITHM_GCRA, 1, RC_SECOND), q};
    CHECK_STATUS(ratecore_limiter_new(pair, 2, &out), expected);
    CHECK(out == NULL);
}

static void test_absurd_quotas(void) {
    const uint32_t GCRA = RATECORE_ALGORITHM_GCRA, FIXED = RATECORE_ALGORITHM_FIXED_WINDOW,
                   SLIDING = RATECORE_ALGORITHM_SLIDING_WINDOW;
    ratecore_quota q;
    expect_rejected(rc_quota(GCRA, 0, RC_SECOND), RATECORE_STATUS_ZERO_LIMIT, "limit 0");
    expect_rejected(rc_quota(FIXED, 0, 0), RATECORE_STATUS_ZERO_LIMIT, "limit 0, period 0");
    expect_rejected(rc_quota(GCRA, 1, 0), RATECORE_STATUS_ZERO_PERIOD, "period 0");
    expect_rejected(rc_quota(SLIDING, 1000, 999), RATECORE_STATUS_EMISSION_INTERVAL_TOO_SMALL,
                    "period < limit");
    expect_rejected(rc_quota(GCRA, UINT64_MAX, 1), RATECORE_STATUS_EMISSION_INTERVAL_TOO_SMALL,
                    "limit UINT64_MAX per ns");
    q = rc_quota(GCRA, 1, UINT64_MAX);
    q.burst = 2;
    expect_rejected(q, RATECORE_STATUS_BURST_OVERFLOW, "burst overflow");
    q = rc_quota(GCRA, 1000, RC_SECOND);
    q.burst = UINT64_MAX;
    expect_rejected(q, RATECORE_STATUS_BURST_OVERFLOW, "burst UINT64_MAX");
    expect_rejected(rc_strict(10, RC_SECOND, 0), RATECORE_STATUS_ZERO_SUB_WINDOWS, "sub_windows 0");
    expect_rejected(rc_strict(10, RC_SECOND, RATECORE_MAX_SUB_WINDOWS + 1),
                    RATECORE_STATUS_TOO_MANY_SUB_WINDOWS, "sub_windows above the maximum");
    expect_rejected(rc_strict(10, RC_SECOND, UINT32_MAX), RATECORE_STATUS_TOO_MANY_SUB_WINDOWS,
                    "sub_windows UINT32_MAX");
    expect_rejected(rc_strict(1, 5, 10), RATECORE_STATUS_TOO_MANY_SUB_WINDOWS,
                    "more sub-windows than nanoseconds");
    expect_rejected(rc_strict(UINT64_C(1) << 33, RC_HOUR, 10), RATECORE_STATUS_STATE_TOO_WIDE,
                    "strict limit above 2^32");
    expect_rejected(rc_quota(FIXED, UINT64_C(1) << 40, UINT64_C(1) << 40),
                    RATECORE_STATUS_STATE_TOO_WIDE, "fixed window state too wide");
    expect_rejected(rc_quota(0, 1, RC_SECOND), RATECORE_STATUS_UNKNOWN_ALGORITHM, "algorithm 0");
    expect_rejected(rc_quota(5, 1, RC_SECOND), RATECORE_STATUS_UNKNOWN_ALGORITHM, "algorithm 5");
    expect_rejected(rc_quota(UINT32_MAX, 1, RC_SECOND), RATECORE_STATUS_UNKNOWN_ALGORITHM,
                    "algorithm UINT32_MAX");
    q = rc_quota(GCRA, 10, RC_SECOND);
    q.sub_windows = 4;
    expect_rejected(q, RATECORE_STATUS_INVALID_ARGUMENT, "sub_windows on GCRA");
    q = rc_quota(FIXED, 10, RC_SECOND);
    q.burst = 3;
    expect_rejected(q, RATECORE_STATUS_INVALID_ARGUMENT, "burst on a fixed window");

    /* Accepted edges: burst equal to the limit on a window; 1 per UINT64_MAX ns. */
    q = rc_quota(FIXED, 10, RC_SECOND);
    q.burst = 10;
    ratecore_limiter *l = new_limiter(&q, 1);
    ratecore_limiter_free(l);
    q = rc_quota(GCRA, 1, 1);
    l = new_limiter(&q, 1);
    ratecore_limiter_free(l);
}

int main(void) {
    test_version_and_messages();
    test_gcra();
    test_fixed_window();
    test_sliding_windows();
    test_peek();
    test_composite();
    test_extreme_times();
    test_bad_pointers_and_lengths();
    test_absurd_quotas();
    return rc_finish("test_limiter");
}
