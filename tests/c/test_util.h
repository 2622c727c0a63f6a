/*
 * Shared helpers for the ratecore C test programs in this directory, built by ffi/run-c-tests.sh with
 *   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsanitize=address,undefined
 * against the static library.
 */
#ifndef RATECORE_TEST_UTIL_H
#define RATECORE_TEST_UTIL_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratecore.h"

/* These tests are only meaningful under AddressSanitizer: refuse to build without it. */
#if defined(__SANITIZE_ADDRESS__)
#define RC_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RC_HAVE_ASAN 1
#endif
#endif
#ifndef RC_HAVE_ASAN
#error "the ratecore C tests must be built with -fsanitize=address (see ffi/run-c-tests.sh)"
#endif

#define RC_SECOND UINT64_C(1000000000)
#define RC_MINUTE (60 * RC_SECOND)
#define RC_HOUR (3600 * RC_SECOND)

static int rc_failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
            rc_failures++;                                                            \
        }                                                                             \
    } while (0)

/* The bodies of CHECK_EQ_U64 and CHECK_STATUS: `*_text` are the caller's expressions,
 * `file` and `line` where they stand. */
static inline void rc_check_eq_u64(uint64_t actual, uint64_t expected, const char *actual_text,
                                   const char *expected_text, const char *file, int line) {
    if (actual != expected) {
        fprintf(stderr, "%s:%d: %s == %" PRIu64 ", expected %s == %" PRIu64 "\n", file, line,
                actual_text, actual, expected_text, expected);
        rc_failures++;
    }
}

static inline void rc_check_status(uint32_t status, uint32_t expected, const char *call_text,
                                   const char *expected_text, const char *file, int line) {
    if (status != expected) {
        fprintf(stderr, "%s:%d: %s\n    returned %" PRIu32 " (%s)\n    expected %s (%" PRIu32 ")\n",
                file, line, call_text, status, ratecore_status_message(status), expected_text,
                expected);
        rc_failures++;
    }
}

#define CHECK_EQ_U64(actual, expected) \
    rc_check_eq_u64((uint64_t)(actual), (uint64_t)(expected), #actual, #expected, __FILE__, __LINE__)

#define CHECK_STATUS(call, expected) \
    rc_check_status((uint32_t)(call), (uint32_t)(expected), #call, #expected, __FILE__, __LINE__)

/* Fatal: later steps depend on it. */
#define REQUIRE_OK(call)                                                              \
    do {                                                                              \
        uint32_t rc_s_ = (uint32_t)(call);                                            \
        if (rc_s_ != RATECORE_STATUS_OK) {                                            \
            fprintf(stderr, "%s:%d: %s failed: %" PRIu32 " (%s)\n", __FILE__, __LINE__, \
                    #call, rc_s_, ratecore_status_message(rc_s_));                    \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static inline ratecore_quota rc_quota(uint32_t algorithm, uint64_t limit, uint64_t period_ns) {
    ratecore_quota q;
    memset(&q, 0, sizeof q);
    q.algorithm = algorithm;
    q.limit = limit;
    q.period_ns = period_ns;
    return q;
}

static inline ratecore_quota rc_strict(uint64_t limit, uint64_t period_ns, uint32_t sub_windows) {
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT, limit, period_ns);
    q.sub_windows = sub_windows;
    return q;
}

/* One quota of each algorithm at `limit` per `period_ns`, the strict window in
 * `sub_windows` sub-windows. */
#define RC_ALGORITHMS 4
static inline void rc_each_algorithm(ratecore_quota out[RC_ALGORITHMS], uint64_t limit,
                                     uint64_t period_ns, uint32_t sub_windows) {
    out[0] = rc_quota(RATECORE_ALGORITHM_GCRA, limit, period_ns);
    out[1] = rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, limit, period_ns);
    out[2] = rc_quota(RATECORE_ALGORITHM_SLIDING_WINDOW, limit, period_ns);
    out[3] = rc_strict(limit, period_ns, sub_windows);
}

/* A constructor's status against the expected one; `kind` and `what` name what was built. */
static inline void rc_check_built(uint32_t status, uint32_t expected, const char *kind,
                                  const char *what) {
    if (status != expected) {
        fprintf(stderr, "%s '%s': got %" PRIu32 " (%s), expected %" PRIu32 " (%s)\n", kind, what,
                status, ratecore_status_message(status), expected,
                ratecore_status_message(expected));
        rc_failures++;
    }
}

/* For a versioned output struct `type` (one with a `size` field): `poisoned()` returns one
 * filled with 0x5a, its size set, and `untouched(p)` says whether `*p` is still that, so
 * a test sees whether a call wrote it. */
#define RC_POISONED_TYPE(type, poisoned, untouched)        \
    static inline type poisoned(void) {                    \
        type value;                                        \
        memset(&value, 0x5a, sizeof value);                \
        value.size = sizeof value;                         \
        return value;                                      \
    }                                                      \
    static inline int untouched(const type *value) {       \
        type pattern = poisoned();                         \
        return memcmp(value, &pattern, sizeof pattern) == 0; \
    }

/* A `type` as a caller built against a newer header lays it out: one more field after
 * it (`newer_field`), its `size` covering both. An input starts zeroed with `newer_field`
 * set, for the library to ignore; an output starts filled with 0x5a, so a test sees that
 * the library wrote only the bytes of its own version. */
#define RC_NEWER(type) \
    struct {           \
        type value;    \
        uint64_t newer_field; \
    }
#define RC_NEWER_POISON UINT64_C(0x5a5a5a5a5a5a5a5a)
#define RC_NEWER_INPUT(newer, input)          \
    do {                                      \
        memset(&(newer), 0, sizeof(newer));   \
        (newer).value = (input);              \
        (newer).value.size = sizeof(newer);   \
        (newer).newer_field = 7;              \
    } while (0)
#define RC_NEWER_OUTPUT(newer)                \
    do {                                      \
        memset(&(newer), 0x5a, sizeof(newer)); \
        (newer).value.size = sizeof(newer);   \
    } while (0)

/* A decision filled with a recognisable pattern, to prove an output was not written. */
static inline ratecore_decision rc_poisoned_decision(void) {
    ratecore_decision d;
    memset(&d, 0, sizeof d);
    d.allowed = true;
    d.limit = 0xdeadbeef;
    d.remaining = 0xdeadbeef;
    d.reset_after_ns = 0xdeadbeef;
    d.retry_after_ns = 0xdeadbeef;
    return d;
}

static inline int rc_is_poisoned(const ratecore_decision *d) {
    return d->allowed && d->limit == 0xdeadbeef && d->remaining == 0xdeadbeef &&
           d->reset_after_ns == 0xdeadbeef && d->retry_after_ns == 0xdeadbeef;
}

static inline const uint8_t *rc_bytes(const char *s) {
    return (const uint8_t *)s;
}

/* Points a `(pointer, length)` string field pair at the NUL-terminated `s`. */
static inline void rc_set_str(const uint8_t **ptr, size_t *len, const char *s) {
    *ptr = rc_bytes(s);
    *len = strlen(s);
}

/* The wall clock at `now` = 0 in the policy tests: 2026-11-24T11:00:00Z. */
#define RC_WALL_AT_ZERO (UINT64_C(1795518000) * RC_SECOND)

/* The policy in the TOML file at `path` (relative to the repository root); fatal when it
 * does not load. */
static inline ratecore_policy *rc_policy_file(const char *path) {
    ratecore_policy *policy = NULL;
    char error[256];
    uint32_t status = ratecore_policy_from_file(path, error, sizeof error, &policy);
    if (status != RATECORE_STATUS_OK) {
        fprintf(stderr, "%s: %s\n", path, error);
        exit(1);
    }
    return policy;
}

/* The policy in `toml`; fatal, with the parser's message, when it does not load. */
static inline ratecore_policy *rc_policy_toml(const char *toml) {
    ratecore_policy *policy = NULL;
    char error[256] = "";
    uint32_t status = ratecore_policy_from_toml(rc_bytes(toml), strlen(toml), NULL, 0, error,
                                                sizeof error, &policy);
    if (status != RATECORE_STATUS_OK) {
        fprintf(stderr, "policy: %s\n", error);
        exit(1);
    }
    return policy;
}

/* A request attribute naming NUL-terminated strings. */
static inline ratecore_attribute rc_attr(const char *name, const char *value) {
    ratecore_attribute a;
    memset(&a, 0, sizeof a);
    rc_set_str(&a.name, &a.name_len, name);
    rc_set_str(&a.value, &a.value_len, value);
    return a;
}

/* A request with `count` attributes, sized for this header. */
static inline ratecore_http_request rc_http(const char *method, const char *path,
                                            const ratecore_attribute *attributes, size_t count) {
    ratecore_http_request r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    rc_set_str(&r.method, &r.method_len, method);
    rc_set_str(&r.path, &r.path_len, path);
    r.attributes = attributes;
    r.attribute_count = count;
    return r;
}

/* Rendered text (headers or body) compared byte for byte; `line` is the caller's. */
static inline void rc_check_text(const uint8_t *buf, size_t len, const char *expected, int line) {
    if (len != strlen(expected) || memcmp(buf, expected, len) != 0) {
        fprintf(stderr, "%s:%d: got:\n\"%.*s\"\nexpected:\n\"%s\"\n", __FILE__, line, (int)len,
                (const char *)buf, expected);
        rc_failures++;
    }
}
#define CHECK_TEXT(buf, len, expected) rc_check_text(buf, len, expected, __LINE__)

/* Races for the tests that ask for POSIX (pthread barriers): RC_RACE_THREADS threads each
 * make `attempts` calls of `attempt` on one policy, released together with the caller,
 * who changes the policy while they run. */
#if defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE >= 200112L
#include <pthread.h>
#include <stdatomic.h>

#define RC_RACE_THREADS 4

/* One racing thread: its policy, what it counted, and how it makes one call. */
typedef struct rc_race_job {
    const ratecore_policy *policy;
    unsigned admitted;
    unsigned errors;
    void (*attempt)(struct rc_race_job *job);
    unsigned attempts;
    pthread_barrier_t *start;
    atomic_int *running;
} rc_race_job;

typedef struct {
    pthread_barrier_t start;
    atomic_int running;
    rc_race_job jobs[RC_RACE_THREADS];
    pthread_t threads[RC_RACE_THREADS];
} rc_race;

static inline void *rc_race_thread(void *arg) {
    rc_race_job *job = arg;
    pthread_barrier_wait(job->start);
    for (unsigned i = 0; i < job->attempts; i++) job->attempt(job);
    atomic_fetch_sub(job->running, 1);
    return NULL;
}

/* Starts the threads; returns once they and the caller have crossed the start line. */
static inline void rc_race_start(rc_race *race, const ratecore_policy *policy,
                                 void (*attempt)(rc_race_job *job), unsigned attempts) {
    pthread_barrier_init(&race->start, NULL, RC_RACE_THREADS + 1);
    atomic_init(&race->running, RC_RACE_THREADS);
    for (int i = 0; i < RC_RACE_THREADS; i++) {
        race->jobs[i] =
            (rc_race_job){policy, 0, 0, attempt, attempts, &race->start, &race->running};
        if (pthread_create(&race->threads[i], NULL, rc_race_thread, &race->jobs[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&race->start);
}

/* Whether any racing thread is still making calls. */
static inline int rc_race_running(rc_race *race) {
    return atomic_load(&race->running) > 0;
}

/* Joins the threads and checks that none counted an error; returns their admissions. */
static inline unsigned rc_race_finish(rc_race *race) {
    unsigned total = 0;
    for (int i = 0; i < RC_RACE_THREADS; i++) {
        pthread_join(race->threads[i], NULL);
        total += race->jobs[i].admitted;
        CHECK_EQ_U64(race->jobs[i].errors, 0);
    }
    pthread_barrier_destroy(&race->start);
    return total;
}
#endif

/* A call that writes a policy's text into a caller's buffer: (policy, out, cap, &len). */
typedef ratecore_status (*rc_text_call)(const ratecore_policy *policy, uint8_t *out, size_t cap,
                                        size_t *len_out);

/* The buffer protocol of `call`, whose text is `n` bytes (`out` holds at least n + 16):
 * one byte short, or no buffer, is BUFFER_TOO_SMALL with the length needed (and, when
 * `writes_nothing`, `out` untouched); bad arguments report nothing. `line` is the
 * caller's. */
static inline void rc_check_text_buffers(rc_text_call call, const ratecore_policy *policy,
                                         uint8_t *out, size_t out_size, size_t n,
                                         int writes_nothing, int line) {
    size_t len = 0;
    memset(out, 0x5a, out_size);
    uint32_t short_by_one = call(policy, out, n - 1, &len);
    size_t len_short = len;
    len = 0;
    uint32_t no_buffer = call(policy, NULL, 0, &len);
    size_t len_none = len;
    len = 12345;
    uint32_t null_policy = call(NULL, out, out_size, &len);
    uint32_t null_len = call(policy, out, out_size, NULL);
    uint32_t null_out = call(policy, NULL, 16, &len);
    uint32_t huge = call(policy, out, SIZE_MAX, &len);
    if (short_by_one != RATECORE_STATUS_BUFFER_TOO_SMALL || len_short != n ||
        no_buffer != RATECORE_STATUS_BUFFER_TOO_SMALL || len_none != n ||
        null_policy != RATECORE_STATUS_NULL_POINTER || null_len != RATECORE_STATUS_NULL_POINTER ||
        null_out != RATECORE_STATUS_NULL_POINTER || huge != RATECORE_STATUS_INVALID_ARGUMENT ||
        len != 12345 || (writes_nothing && out[0] != 0x5a)) {
        fprintf(stderr,
                "%s:%d: text buffers: short %" PRIu32 " (len %zu), none %" PRIu32
                " (len %zu), NULL policy %" PRIu32 ", NULL len %" PRIu32 ", NULL out %" PRIu32
                ", cap SIZE_MAX %" PRIu32 ", len after bad arguments %zu, first byte 0x%02x; "
                "text of %zu bytes\n",
                __FILE__, line, short_by_one, len_short, no_buffer, len_none, null_policy,
                null_len, null_out, huge, len, out[0], n);
        rc_failures++;
    }
}
#define CHECK_TEXT_BUFFERS(call, policy, out, n, writes_nothing) \
    rc_check_text_buffers(call, policy, out, sizeof(out), n, writes_nothing, __LINE__)

/* Switch's published answer to the 21st save-readings request of the minute from 12:00,
 * sent at 12:00:19: its headers, text body and content type. */
static inline void rc_check_switch_denial(const uint8_t *headers, size_t headers_len,
                                          const uint8_t *body, size_t body_len,
                                          const char *content_type, int line) {
    rc_check_text(headers, headers_len,
                  "X-Rate-Limit-Limit: 20\r\nX-Rate-Limit-Remaining: 0\r\n"
                  "X-Rate-Limit-Reset: 2026-11-24T12:01:00Z\r\nRetry-After: 41\r\n",
                  line);
    rc_check_text(body, body_len,
                  "Save readings API interface quota exceeded. Maximum allowed is 20 requests "
                  "per 1m. Please try again in 41 second.",
                  line);
    if (content_type == NULL || strcmp(content_type, "text/plain; charset=utf-8") != 0) {
        fprintf(stderr, "%s:%d: content type %s\n", __FILE__, line,
                content_type ? content_type : "(null)");
        rc_failures++;
    }
}
#define CHECK_SWITCH_DENIAL(headers, headers_len, body, body_len, content_type) \
    rc_check_switch_denial(headers, headers_len, body, body_len, content_type, __LINE__)

static inline int rc_finish(const char *name) {
    if (rc_failures) {
        fprintf(stderr, "%s: %d check(s) FAILED\n", name, rc_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif /* RATECORE_TEST_UTIL_H */
