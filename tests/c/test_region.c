/*
 * Tables in caller-provided regions from C: size query, init, attach (two handles on one
 * region share state, stats and configuration), then too-small, misaligned, NULL and
 * absurd-length regions, and garbage regions: zeroed, random bytes, and a valid header with
 * each field corrupted in turn (BAD_MAGIC, UNSUPPORTED_VERSION, CORRUPT_HEADER,
 * HASH_MISMATCH, NOT_READY). No input may crash or be accepted as a table.
 *
 * The corruption cases poke at layout version 2 of the region header (the byte layout of
 * version 1; version 2 changed where keys are placed):
 *   0 magic[8] | 8 version u32 | 12 header_bytes u32 | 16 capacity u64 |
 *   24 limit_count u32 | 28 policy u32 | 32 seed u64[4] |
 *   64 limits[4] {algorithm u32, sub_windows u32, limit u64, period u64, burst u64} |
 *   192 hash_probe u64 | 200 checksum u64 (FNV-1a) | 208 init state u64 (2 = ready)
 */
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

#define OFF_MAGIC 0
#define OFF_VERSION 8
#define OFF_HEADER_BYTES 12
#define OFF_CAPACITY 16
#define OFF_LIMIT_COUNT 24
#define OFF_POLICY 28
#define OFF_SEED 32
#define OFF_LIMITS 64
#define OFF_HASH_PROBE 192
#define OFF_CHECKSUM 200
#define OFF_STATE 208
#define HEADER_BYTES 896 /* everything before the slots */

_Static_assert(RATECORE_REGION_LAYOUT_VERSION == 2, "these offsets describe layout version 2");

static uint64_t get_u64(const unsigned char *region, size_t offset) {
    uint64_t v;
    memcpy(&v, region + offset, sizeof v);
    return v;
}
static uint32_t get_u32(const unsigned char *region, size_t offset) {
    uint32_t v;
    memcpy(&v, region + offset, sizeof v);
    return v;
}
static void put_u64(unsigned char *region, size_t offset, uint64_t v) {
    memcpy(region + offset, &v, sizeof v);
}
static void put_u32(unsigned char *region, size_t offset, uint32_t v) {
    memcpy(region + offset, &v, sizeof v);
}

/* The header checksum (little-endian host assumed, as x86-64 and aarch64 are). */
static uint64_t fnv_mix(uint64_t hash, uint64_t value) {
    for (int i = 0; i < 8; i++) {
        hash ^= (value >> (8 * i)) & 0xff;
        hash *= UINT64_C(0x100000001b3);
    }
    return hash;
}
static uint64_t header_checksum(const unsigned char *r) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    h = fnv_mix(h, get_u64(r, OFF_MAGIC));
    h = fnv_mix(h, get_u32(r, OFF_VERSION));
    h = fnv_mix(h, get_u32(r, OFF_HEADER_BYTES));
    h = fnv_mix(h, get_u64(r, OFF_CAPACITY));
    h = fnv_mix(h, get_u32(r, OFF_LIMIT_COUNT));
    h = fnv_mix(h, get_u32(r, OFF_POLICY));
    for (int i = 0; i < 4; i++) h = fnv_mix(h, get_u64(r, OFF_SEED + 8 * (size_t)i));
    for (int i = 0; i < 4; i++) {
        size_t base = OFF_LIMITS + 32 * (size_t)i;
        h = fnv_mix(h, get_u32(r, base));
        h = fnv_mix(h, get_u32(r, base + 4));
        h = fnv_mix(h, get_u64(r, base + 8));
        h = fnv_mix(h, get_u64(r, base + 16));
        h = fnv_mix(h, get_u64(r, base + 24));
    }
    return fnv_mix(h, get_u64(r, OFF_HASH_PROBE));
}
static void reseal(unsigned char *region) {
    put_u64(region, OFF_CHECKSUM, header_checksum(region));
}

static unsigned char *alloc_region(size_t size) {
    size_t rounded = (size + RATECORE_REGION_ALIGN - 1) / RATECORE_REGION_ALIGN * RATECORE_REGION_ALIGN;
    unsigned char *region = aligned_alloc(RATECORE_REGION_ALIGN, rounded);
    if (!region) {
        perror("aligned_alloc");
        exit(1);
    }
    memset(region, 0, rounded);
    return region;
}

static uint32_t attach_status(unsigned char *region, size_t len) {
    ratecore_table *t = NULL;
    uint32_t status = ratecore_table_attach_region(region, len, &t);
    if (status == RATECORE_STATUS_OK) {
        ratecore_table_free(t);
    } else {
        CHECK(t == NULL);
    }
    return status;
}

static const ratecore_quota QUOTAS[2] = {
    {.limit = 3, .period_ns = RC_MINUTE, .burst = 0, .algorithm = RATECORE_ALGORITHM_FIXED_WINDOW,
     .sub_windows = 0},
    {.limit = 5, .period_ns = RC_HOUR, .burst = 0,
     .algorithm = RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT, .sub_windows = 12},
};

static void test_init_and_attach(void) {
    size_t size = 0;
    REQUIRE_OK(ratecore_table_region_size(QUOTAS, 2, 256, RATECORE_FULL_POLICY_DENY, &size));
    CHECK_EQ_U64(size, HEADER_BYTES + 16 * 256 * (1 + (1 + 13)));
    unsigned char *region = alloc_region(size);
    memset(region, 0xee, size); /* init overwrites whatever was there */

    ratecore_table *a = NULL, *b = NULL;
    REQUIRE_OK(ratecore_table_init_region(region, size, QUOTAS, 2, 256, RATECORE_FULL_POLICY_DENY, &a));
    CHECK_EQ_U64(get_u32(region, OFF_VERSION), RATECORE_REGION_LAYOUT_VERSION);
    CHECK(memcmp(region, "RATECORE", 8) == 0);
    REQUIRE_OK(ratecore_table_attach_region(region, size, &b));
    CHECK(a != b);

    /* Configuration comes from the region. */
    uint64_t capacity = 0;
    uint32_t policy = 0;
    size_t count = 0;
    ratecore_quota back[4];
    REQUIRE_OK(ratecore_table_capacity(b, &capacity));
    REQUIRE_OK(ratecore_table_full_policy(b, &policy));
    REQUIRE_OK(ratecore_table_limits(b, back, 4, &count));
    CHECK_EQ_U64(capacity, 256);
    CHECK_EQ_U64(policy, RATECORE_FULL_POLICY_DENY);
    CHECK_EQ_U64(count, 2);
    CHECK(back[0].limit == 3 && back[0].period_ns == RC_MINUTE &&
          back[0].algorithm == RATECORE_ALGORITHM_FIXED_WINDOW);
    CHECK(back[1].limit == 5 && back[1].sub_windows == 12 &&
          back[1].algorithm == RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT);

    /* One state, two handles. */
    ratecore_decision d;
    const uint8_t *key = rc_bytes("shared");
    for (int i = 0; i < 3; i++) {
        REQUIRE_OK(ratecore_table_check(i % 2 ? a : b, key, 6, RC_SECOND, 1, &d));
        CHECK(d.allowed);
    }
    REQUIRE_OK(ratecore_table_check(a, key, 6, RC_SECOND, 1, &d));
    CHECK(!d.allowed);
    REQUIRE_OK(ratecore_table_peek(b, key, 6, RC_SECOND, 1, &d));
    CHECK(!d.allowed);
    ratecore_table_stats sa, sb;
    REQUIRE_OK(ratecore_table_get_stats(a, &sa));
    REQUIRE_OK(ratecore_table_get_stats(b, &sb));
    CHECK(memcmp(&sa, &sb, sizeof sa) == 0);
    CHECK_EQ_U64(sa.new_keys, 2); /* one key, two quotas */

    /* Freeing one handle leaves the table to the other. */
    ratecore_table_free(a);
    REQUIRE_OK(ratecore_table_check(b, key, 6, RC_MINUTE, 1, &d));
    CHECK(d.allowed); /* the fixed window rolled over; the strict window has 2 left */
    ratecore_table_free(b);

    /* Re-attaching later finds the same state; a larger region is fine too. */
    REQUIRE_OK(ratecore_table_attach_region(region, size, &b));
    REQUIRE_OK(ratecore_table_peek(b, key, 6, RC_MINUTE, 1, &d));
    CHECK(d.allowed && d.remaining == 0); /* the strict window's 5th and last */
    REQUIRE_OK(ratecore_table_peek(b, key, 6, RC_MINUTE, 2, &d));
    CHECK(!d.allowed);
    ratecore_table_free(b);

    /* Re-initialising (with no handle left) starts over. */
    REQUIRE_OK(ratecore_table_init_region(region, size, QUOTAS, 1, 8, RATECORE_FULL_POLICY_ALLOW, &a));
    REQUIRE_OK(ratecore_table_check(a, key, 6, RC_MINUTE, 3, &d));
    CHECK(d.allowed);
    ratecore_table_free(a);
    free(region);
}

static void test_bad_regions(void) {
    size_t size = 0;
    REQUIRE_OK(ratecore_table_region_size(QUOTAS, 2, 64, 0, &size));
    unsigned char *buffer = alloc_region(size + 2 * RATECORE_REGION_ALIGN);
    ratecore_table *sentinel = (ratecore_table *)buffer;
    ratecore_table *out = sentinel;

    /* NULL, lengths. */
    CHECK_STATUS(ratecore_table_region_size(QUOTAS, 2, 64, 0, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_init_region(NULL, size, QUOTAS, 2, 64, 0, &out),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_init_region(buffer, size, QUOTAS, 2, 64, 0, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_init_region(buffer, size, NULL, 2, 64, 0, &out),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_init_region(buffer, size, NULL, 0, 64, 0, &out),
                 RATECORE_STATUS_NO_LIMITS);
    CHECK_STATUS(ratecore_table_init_region(buffer, SIZE_MAX, QUOTAS, 2, 64, 0, &out),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_table_attach_region(NULL, size, &out), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_attach_region(buffer, size, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_attach_region(buffer, SIZE_MAX, &out),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    /* Too small. */
    CHECK_STATUS(ratecore_table_init_region(buffer, 0, QUOTAS, 2, 64, 0, &out),
                 RATECORE_STATUS_REGION_TOO_SMALL);
    CHECK_STATUS(ratecore_table_init_region(buffer, size - 1, QUOTAS, 2, 64, 0, &out),
                 RATECORE_STATUS_REGION_TOO_SMALL);
    CHECK_STATUS(ratecore_table_attach_region(buffer, 0, &out), RATECORE_STATUS_REGION_TOO_SMALL);
    CHECK_STATUS(ratecore_table_attach_region(buffer, 100, &out), RATECORE_STATUS_REGION_TOO_SMALL);
    /* Misaligned (by 1, and by 16: aligned for the slots, not for the region). */
    CHECK_STATUS(ratecore_table_init_region(buffer + 1, size, QUOTAS, 2, 64, 0, &out),
                 RATECORE_STATUS_REGION_MISALIGNED);
    CHECK_STATUS(ratecore_table_init_region(buffer + 16, size, QUOTAS, 2, 64, 0, &out),
                 RATECORE_STATUS_REGION_MISALIGNED);
    CHECK_STATUS(ratecore_table_attach_region(buffer + 16, size, &out),
                 RATECORE_STATUS_REGION_MISALIGNED);
    /* An invalid configuration is refused before the region is touched. */
    memset(buffer, 0x5c, size);
    ratecore_quota zero = rc_quota(RATECORE_ALGORITHM_GCRA, 0, RC_SECOND);
    CHECK_STATUS(ratecore_table_init_region(buffer, size, &zero, 1, 64, 0, &out),
                 RATECORE_STATUS_ZERO_LIMIT);
    CHECK_STATUS(ratecore_table_init_region(buffer, size, QUOTAS, 2, 0, 0, &out),
                 RATECORE_STATUS_BAD_CAPACITY);
    CHECK_STATUS(ratecore_table_init_region(buffer, size, QUOTAS, 2, 64, 9, &out),
                 RATECORE_STATUS_UNKNOWN_FULL_POLICY);
    CHECK(buffer[0] == 0x5c && buffer[size - 1] == 0x5c);
    CHECK(out == sentinel);

    /* Never initialised. */
    memset(buffer, 0, size);
    CHECK_STATUS(attach_status(buffer, size), RATECORE_STATUS_BAD_MAGIC);

    /* A valid region, then each header field corrupted in turn. */
    ratecore_table *t = NULL;
    REQUIRE_OK(ratecore_table_init_region(buffer, size, QUOTAS, 2, 64, 0, &t));
    ratecore_table_free(t);
    unsigned char good[HEADER_BYTES];
    memcpy(good, buffer, HEADER_BYTES);
    CHECK_STATUS(attach_status(buffer, size), RATECORE_STATUS_OK);
    CHECK_STATUS(attach_status(buffer, size - 1), RATECORE_STATUS_REGION_TOO_SMALL);
    CHECK_STATUS(attach_status(buffer, HEADER_BYTES), RATECORE_STATUS_REGION_TOO_SMALL);

    struct {
        const char *what;
        size_t offset;
        int width; /* 4 or 8 bytes */
        uint64_t value;
        int reseal; /* recompute the checksum after the change */
        uint32_t expected;
    } cases[] = {
        {"magic", OFF_MAGIC, 8, 0x0123456789abcdef, 0, RATECORE_STATUS_BAD_MAGIC},
        {"magic, resealed", OFF_MAGIC, 8, 0x0123456789abcdef, 1, RATECORE_STATUS_BAD_MAGIC},
        {"version 3", OFF_VERSION, 4, 3, 0, RATECORE_STATUS_UNSUPPORTED_VERSION},
        {"version 1 (old key placement), resealed", OFF_VERSION, 4, 1, 1,
         RATECORE_STATUS_UNSUPPORTED_VERSION},
        {"version 0, resealed", OFF_VERSION, 4, 0, 1, RATECORE_STATUS_UNSUPPORTED_VERSION},
        {"header bytes", OFF_HEADER_BYTES, 4, 64, 0, RATECORE_STATUS_CORRUPT_HEADER},
        {"header bytes, resealed", OFF_HEADER_BYTES, 4, 64, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"capacity", OFF_CAPACITY, 8, 128, 0, RATECORE_STATUS_CORRUPT_HEADER},
        {"capacity not a power of two", OFF_CAPACITY, 8, 100, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"capacity 0", OFF_CAPACITY, 8, 0, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"capacity huge", OFF_CAPACITY, 8, UINT64_C(1) << 63, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"capacity larger than the region", OFF_CAPACITY, 8, 1024, 1, RATECORE_STATUS_REGION_TOO_SMALL},
        {"limit count 0", OFF_LIMIT_COUNT, 4, 0, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"limit count 5", OFF_LIMIT_COUNT, 4, 5, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"limit count 3 (an empty third limit)", OFF_LIMIT_COUNT, 4, 3, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"policy 7", OFF_POLICY, 4, 7, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"seed", OFF_SEED, 8, 42, 0, RATECORE_STATUS_CORRUPT_HEADER},
        {"seed, resealed", OFF_SEED, 8, 42, 1, RATECORE_STATUS_HASH_MISMATCH},
        {"algorithm 9", OFF_LIMITS, 4, 9, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"limit 0", OFF_LIMITS + 8, 8, 0, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"period 0", OFF_LIMITS + 16, 8, 0, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"burst 0", OFF_LIMITS + 24, 8, 0, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"strict sub-windows 0", OFF_LIMITS + 32 + 4, 4, 0, 1, RATECORE_STATUS_CORRUPT_HEADER},
        {"strict sub-windows 13 (ring size changes)", OFF_LIMITS + 32 + 4, 4, 13, 1,
         RATECORE_STATUS_REGION_TOO_SMALL},
        {"hash probe", OFF_HASH_PROBE, 8, 7, 0, RATECORE_STATUS_CORRUPT_HEADER},
        {"hash probe, resealed", OFF_HASH_PROBE, 8, 7, 1, RATECORE_STATUS_HASH_MISMATCH},
        {"checksum", OFF_CHECKSUM, 8, 7, 0, RATECORE_STATUS_CORRUPT_HEADER},
        {"state: initialising", OFF_STATE, 8, 1, 0, RATECORE_STATUS_NOT_READY},
        {"state: garbage", OFF_STATE, 8, 0x5555, 0, RATECORE_STATUS_NOT_READY},
        {"state: blank, magic intact", OFF_STATE, 8, 0, 0, RATECORE_STATUS_NOT_READY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(buffer, good, HEADER_BYTES);
        if (cases[i].width == 4) {
            put_u32(buffer, cases[i].offset, (uint32_t)cases[i].value);
        } else {
            put_u64(buffer, cases[i].offset, cases[i].value);
        }
        if (cases[i].reseal) reseal(buffer);
        uint32_t status = attach_status(buffer, size);
        if (status != cases[i].expected) {
            fprintf(stderr, "corrupt header '%s': got %" PRIu32 " (%s), expected %" PRIu32 "\n",
                    cases[i].what, status, ratecore_status_message(status), cases[i].expected);
            rc_failures++;
        }
    }
    /* The C checksum really is the library's: resealing an untouched header changes nothing. */
    memcpy(buffer, good, HEADER_BYTES);
    reseal(buffer);
    CHECK(memcmp(buffer, good, HEADER_BYTES) == 0);
    CHECK_STATUS(attach_status(buffer, size), RATECORE_STATUS_OK);

    /* Garbage: random headers, as such and with the magic and "ready" state planted. */
    uint64_t x = 0x9e3779b97f4a7c15;
    for (int round = 0; round < 3000; round++) {
        for (size_t i = 0; i < HEADER_BYTES; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            put_u64(buffer, i, x);
        }
        if (round % 3 >= 1) {
            memcpy(buffer, "RATECORE", 8);
            put_u64(buffer, OFF_STATE, 2);
        }
        if (round % 3 == 2) {
            put_u32(buffer, OFF_VERSION, 1);
            put_u32(buffer, OFF_HEADER_BYTES, HEADER_BYTES);
            put_u32(buffer, OFF_LIMIT_COUNT, 1 + (uint32_t)(x % 4));
            put_u64(buffer, OFF_CAPACITY, UINT64_C(8) << (x % 4));
            reseal(buffer);
        }
        uint32_t status = attach_status(buffer, size);
        CHECK(status != RATECORE_STATUS_OK && status != RATECORE_STATUS_PANIC);
    }
    free(buffer);
}

int main(void) {
    test_init_and_attach();
    test_bad_regions();
    return rc_finish("test_region");
}
