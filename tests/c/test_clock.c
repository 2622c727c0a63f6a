/*
 * The clocks the library offers C callers: ratecore_monotonic_now_ns reads exactly
 * CLOCK_MONOTONIC (the clock processes sharing a region, and the nginx module, agree on)
 * and ratecore_unix_now_ns the wall clock. Each library read falls between two reads of
 * the same clock through clock_gettime: an ordering, not a timing, so it cannot flake.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stdint.h>
#include <time.h>

static uint64_t read_ns(clockid_t id) {
    struct timespec ts;
    CHECK(clock_gettime(id, &ts) == 0);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void test_monotonic_is_clock_monotonic(void) {
    uint64_t previous = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t before = read_ns(CLOCK_MONOTONIC);
        uint64_t ours = ratecore_monotonic_now_ns();
        uint64_t after = read_ns(CLOCK_MONOTONIC);
        CHECK(before <= ours);
        CHECK(ours <= after);
        CHECK(previous <= ours);
        previous = ours;
    }
}

static void test_unix_is_the_wall_clock(void) {
    for (int i = 0; i < 100; i++) {
        uint64_t before = read_ns(CLOCK_REALTIME);
        uint64_t ours = ratecore_unix_now_ns();
        uint64_t after = read_ns(CLOCK_REALTIME);
        /* The wall clock may be stepped between reads; a step is the only way to fail. */
        CHECK(before <= ours);
        CHECK(ours <= after);
    }
}

int main(void) {
    test_monotonic_is_clock_monotonic();
    test_unix_is_the_wall_clock();
    return rc_finish("test_clock");
}
