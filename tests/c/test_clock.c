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

/* Reads `ours` between two readings of `id`, checking it lies between them; returns it. */
static uint64_t bracketed(clockid_t id, uint64_t (*ours)(void)) {
    uint64_t before = read_ns(id);
    uint64_t reading = ours();
    uint64_t after = read_ns(id);
    CHECK(before <= reading);
    CHECK(reading <= after);
    return reading;
}

static void test_monotonic_is_clock_monotonic(void) {
    uint64_t previous = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t ours = bracketed(CLOCK_MONOTONIC, ratecore_monotonic_now_ns);
        CHECK(previous <= ours);
        previous = ours;
    }
}

static void test_unix_is_the_wall_clock(void) {
    /* The wall clock may be stepped between reads; a step is the only way to fail. */
    for (int i = 0; i < 100; i++) bracketed(CLOCK_REALTIME, ratecore_unix_now_ns);
}

int main(void) {
    test_monotonic_is_clock_monotonic();
    test_unix_is_the_wall_clock();
    return rc_finish("test_clock");
}
