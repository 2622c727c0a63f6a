/*
 * Per-client overrides and repeat offenders through the C ABI: an app of ev.energy's
 * published policy (examples/policies/evenergy.toml) raised at run time keeps what it
 * consumed and its headers show the new limit; unlimited and removed overrides; a GCRA
 * burst; the escaped text listings of overrides and offenders with exact counts;
 * refused overrides with their messages; too-small buffers; bad arguments (nothing
 * written, nothing changed); override changes racing checks on other threads.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

static uint8_t headers[1024], body[1024];

/* Every request here is GET /v2/users/. */
static ratecore_http_request http(const ratecore_attribute *attributes, size_t count) {
    return rc_http("GET", "/v2/users/", attributes, count);
}

static ratecore_status check_at(const ratecore_policy *policy, const ratecore_http_request *r,
                                uint64_t now, ratecore_policy_outcome *o) {
    memset(o, 0x5a, sizeof *o);
    o->size = sizeof *o;
    return ratecore_policy_check_http(policy, r, now, 1, RC_WALL_AT_ZERO + now, headers,
                                      sizeof headers, body, sizeof body, o);
}

/* Checks `n` requests at `now`; returns how many were admitted. */
static unsigned admitted(const ratecore_policy *policy, const ratecore_http_request *r,
                         unsigned n, uint64_t now) {
    unsigned count = 0;
    for (unsigned i = 0; i < n; i++) {
        ratecore_policy_outcome o;
        if (check_at(policy, r, now, &o) != RATECORE_STATUS_OK) {
            fprintf(stderr, "check failed\n");
            rc_failures++;
        } else if (o.decision.allowed) {
            count++;
        }
    }
    return count;
}

static ratecore_override_quota quota_of(uint64_t limit, uint64_t burst) {
    ratecore_override_quota q;
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.limit = limit;
    q.burst = burst;
    return q;
}

static ratecore_override_quota unlimited(void) {
    ratecore_override_quota q = quota_of(0, 0);
    q.unlimited = true;
    return q;
}

/* Sets an override with NUL-terminated names and value, its error (if any) into `error`
 * (256 bytes), which is cleared first. */
static ratecore_status set_override(const ratecore_policy *policy, const char *rule,
                                    const char *limit, const char *attribute, const char *value,
                                    ratecore_override_quota quota, char *error) {
    memset(error, 0, 256);
    return ratecore_policy_set_override(policy, rc_bytes(rule), strlen(rule), rc_bytes(limit),
                                        strlen(limit), rc_bytes(attribute), strlen(attribute),
                                        rc_bytes(value), strlen(value), &quota, error, 256);
}

static ratecore_status remove_override(const ratecore_policy *policy, const char *rule,
                                       const char *limit, const char *attribute,
                                       const char *value, bool *removed) {
    return ratecore_policy_remove_override(policy, rc_bytes(rule), strlen(rule), rc_bytes(limit),
                                           strlen(limit), rc_bytes(attribute), strlen(attribute),
                                           rc_bytes(value), strlen(value), removed);
}

/* The overrides listing, into `out` (4096 bytes); its length. */
static size_t list_overrides(const ratecore_policy *policy, uint8_t *out) {
    size_t len = SIZE_MAX;
    REQUIRE_OK(ratecore_policy_overrides(policy, out, 4096, &len));
    return len;
}
#define CHECK_OVERRIDES(policy, expected)                          \
    do {                                                           \
        uint8_t listing_[4096];                                    \
        size_t listing_len_ = list_overrides(policy, listing_);    \
        CHECK_TEXT(listing_, listing_len_, expected);              \
    } while (0)

/* The offenders report, into `out` (8192 bytes); its length and the stats. */
static size_t offenders(const ratecore_policy *policy, uint8_t *out, ratecore_offender_stats *s) {
    size_t len = SIZE_MAX;
    memset(s, 0x5a, sizeof *s);
    s->size = sizeof *s;
    REQUIRE_OK(ratecore_policy_offenders(policy, out, 8192, &len, s));
    CHECK_EQ_U64(s->size, sizeof *s);
    return len;
}
#define CHECK_OFFENDERS(policy, expected, evicted_, unrecorded_)  \
    do {                                                          \
        uint8_t report_[8192];                                    \
        ratecore_offender_stats stats_;                           \
        size_t report_len_ = offenders(policy, report_, &stats_); \
        CHECK_TEXT(report_, report_len_, expected);               \
        CHECK_EQ_U64(stats_.evicted, evicted_);                   \
        CHECK_EQ_U64(stats_.unrecorded, unrecorded_);             \
    } while (0)

static void check_metrics(const ratecore_policy *policy, size_t index, uint64_t allowed,
                          uint64_t denied, uint64_t skipped, int line) {
    ratecore_limit_metrics m;
    memset(&m, 0, sizeof m);
    m.size = sizeof m;
    uint8_t text[128];
    REQUIRE_OK(ratecore_policy_limit_metrics(policy, index, text, sizeof text, &m));
    if (m.allowed != allowed || m.denied != denied || m.skipped != skipped) {
        fprintf(stderr,
                "%s:%d: limit %zu allowed=%" PRIu64 " denied=%" PRIu64 " skipped=%" PRIu64
                ", expected %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                __FILE__, line, index, m.allowed, m.denied, m.skipped, allowed, denied, skipped);
        rc_failures++;
    }
}
#define CHECK_METRICS(policy, index, allowed, denied, skipped) \
    check_metrics(policy, index, allowed, denied, skipped, __LINE__)

#define CC "client-credentials"
#define FLEET_LINE CC "\tper-app\tapp\tfleet-integration\t5000\t0\n"

/* A policy of one rule, "api", with one limit: `limit` is that limit's TOML fields. */
#define api_policy(limit) rc_policy_toml("[[rule]]\nname = \"api\"\n[[rule.limit]]\n" limit)

/* ev.energy: client-credentials requests share one limit per app, 1000 per rolling hour
 * (limit 1 in policy order); the file raises the fleet integration's app to 5000. */
static void evenergy_app_raised_at_run_time(void) {
    char error[256];
    ratecore_policy *policy = rc_policy_file("examples/policies/evenergy.toml");
    CHECK_OVERRIDES(policy, FLEET_LINE);
    uint64_t t0 = 59 * RC_MINUTE;
    ratecore_policy_outcome o;

    /* The file's override: the fleet integration's headers say 5000. */
    ratecore_attribute fleet[] = {rc_attr("auth", "client_credentials"),
                                  rc_attr("app", "fleet-integration")};
    ratecore_http_request rf = http(fleet, 2);
    REQUIRE_OK(check_at(policy, &rf, t0, &o));
    CHECK(o.decision.allowed);
    CHECK_TEXT(headers, o.headers_len,
               "x-ratelimit-limit: 5000\r\nx-ratelimit-remaining: 4999\r\n");

    /* app-cc uses 900 of its 1000. */
    ratecore_attribute cc[] = {rc_attr("auth", "client_credentials"), rc_attr("app", "app-cc")};
    ratecore_http_request r = http(cc, 2);
    CHECK_EQ_U64(admitted(policy, &r, 899, t0), 899);
    REQUIRE_OK(check_at(policy, &r, t0, &o));
    CHECK_TEXT(headers, o.headers_len, "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 100\r\n");

    /* "We can arrange a more appropriate limit": raised to 5000, it keeps the 900 it
     * used, so 4100 remain; the headers say so at once. */
    REQUIRE_OK(set_override(policy, CC, "per-app", "app", "app-cc", quota_of(5000, 0), error));
    CHECK_EQ_U64(error[0], 0);
    REQUIRE_OK(check_at(policy, &r, t0, &o));
    CHECK(o.decision.allowed);
    CHECK_EQ_U64(o.decision.limit, 5000);
    CHECK_EQ_U64(o.deciding_limit, 1);
    CHECK_TEXT(headers, o.headers_len,
               "x-ratelimit-limit: 5000\r\nx-ratelimit-remaining: 4099\r\n");
    CHECK_EQ_U64(admitted(policy, &r, 4100, t0), 4099);
    /* The 5001st request in the hour is denied with the new limit. */
    REQUIRE_OK(check_at(policy, &r, t0 + RC_HOUR - 42 * RC_SECOND, &o));
    CHECK(!o.decision.allowed);
    CHECK_EQ_U64(o.status, 429);
    CHECK_TEXT(headers, o.headers_len,
               "x-ratelimit-limit: 5000\r\nx-ratelimit-remaining: 0\r\nretry-after: 42\r\n");
    /* Another app is untouched. */
    ratecore_attribute other[] = {rc_attr("auth", "client_credentials"), rc_attr("app", "app-other")};
    ratecore_http_request ro = http(other, 2);
    REQUIRE_OK(check_at(policy, &ro, t0, &o));
    CHECK_EQ_U64(o.decision.limit, 1000);
    CHECK_EQ_U64(o.decision.remaining, 999);
    /* Listed, sorted by value. */
    CHECK_OVERRIDES(policy, CC "\tper-app\tapp\tapp-cc\t5000\t0\n" FLEET_LINE);

    /* Unlimited: the limit no longer applies to app-cc (counted as skipped). */
    REQUIRE_OK(set_override(policy, CC, "per-app", "app", "app-cc", unlimited(), error));
    for (int i = 0; i < 10; i++) {
        REQUIRE_OK(check_at(policy, &r, t0, &o));
        CHECK(o.decision.allowed);
        CHECK(!o.limited);
        CHECK(!o.exempted);
        CHECK_EQ_U64(o.headers_len, 0);
        CHECK_EQ_U64(o.deciding_limit, RATECORE_NO_LIMIT);
    }
    CHECK_OVERRIDES(policy, CC "\tper-app\tapp\tapp-cc\tunlimited\t0\n" FLEET_LINE);

    /* Removed: the app's own 1000 again, of which it used 5000: denied. */
    bool removed = false;
    REQUIRE_OK(remove_override(policy, CC, "per-app", "app", "app-cc", &removed));
    CHECK(removed);
    REQUIRE_OK(check_at(policy, &r, t0, &o));
    CHECK(!o.decision.allowed);
    CHECK_TEXT(headers, o.headers_len,
               "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 3600\r\n");
    removed = true;
    REQUIRE_OK(remove_override(policy, CC, "per-app", "app", "app-cc", &removed));
    CHECK(!removed);
    CHECK_OVERRIDES(policy, FLEET_LINE);

    /* Denied three times by per-app (the 4100th request, the 5001st, the one after the
     * removal): a repeat offender; three more denials count exactly. */
    CHECK_OFFENDERS(policy, CC "\tper-app\tapp-cc\t3\t0\n", 0, 0);
    CHECK_EQ_U64(admitted(policy, &r, 3, t0), 0);
    CHECK_OFFENDERS(policy, CC "\tper-app\tapp-cc\t6\t0\n", 0, 0);

    /* per-app: 1 (fleet) + 900 + 1 + 4099 + 1 (app-other) admitted, 3 + 3 denied, 10
     * skipped. */
    CHECK_METRICS(policy, 1, 5002, 6, 10);
    CHECK_METRICS(policy, 0, 0, 0, 0);
    ratecore_policy_free(policy);
}

/* Overrides the limit cannot take are refused with a status and a message; nothing
 * changes. */
static void refused_overrides(void) {
    char error[256];
    ratecore_policy *policy = rc_policy_file("examples/policies/evenergy.toml");
    static const struct {
        const char *rule, *attribute;
        uint64_t limit, burst;
        uint32_t expected;
        const char *message; /* NULL: not checked */
    } cases[] = {
        {"nope", "app", 5, 0, RATECORE_STATUS_UNKNOWN_LIMIT,
         "no limit \"per-app\" in rule \"nope\""},
        /* per-app is client-credentials', not authorization-code's. */
        {"authorization-code", "app", 5, 0, RATECORE_STATUS_UNKNOWN_LIMIT,
         "no limit \"per-app\" in rule \"authorization-code\""},
        {CC, "a b", 5, 0, RATECORE_STATUS_INVALID_OVERRIDE,
         "bad attribute name \"a b\": use ASCII letters, digits, '_', '-', '.' or ':'"},
        {CC, "", 5, 0, RATECORE_STATUS_INVALID_OVERRIDE, NULL},
        {CC, "app", 0, 0, RATECORE_STATUS_INVALID_OVERRIDE,
         "rule \"client-credentials\", limit \"per-app\": override: quota limit must be at "
         "least 1"},
        /* A burst on a strict sliding window. */
        {CC, "app", 5, 10, RATECORE_STATUS_INVALID_OVERRIDE,
         "rule \"client-credentials\", limit \"per-app\": override: burst only applies to "
         "algorithm = \"gcra\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_STATUS(set_override(policy, cases[i].rule, "per-app", cases[i].attribute, "a",
                                  quota_of(cases[i].limit, cases[i].burst), error),
                     cases[i].expected);
        if (cases[i].message != NULL && strcmp(error, cases[i].message) != 0) {
            fprintf(stderr, "refused override %zu: message \"%s\"\n", i, error);
            rc_failures++;
        }
    }
    /* A short error buffer gets the message cut and NUL-terminated; none at all is fine. */
    char small[8];
    memset(small, 0x5a, sizeof small);
    ratecore_override_quota q = quota_of(5, 10);
    CHECK_STATUS(ratecore_policy_set_override(policy, rc_bytes(CC), strlen(CC),
                                              rc_bytes("per-app"), 7, rc_bytes("app"), 3,
                                              rc_bytes("a"), 1, &q, small, sizeof small),
                 RATECORE_STATUS_INVALID_OVERRIDE);
    CHECK(strcmp(small, "rule \"c") == 0);
    CHECK_STATUS(ratecore_policy_set_override(policy, rc_bytes(CC), strlen(CC),
                                              rc_bytes("per-app"), 7, rc_bytes("app"), 3,
                                              rc_bytes("a"), 1, &q, NULL, 0),
                 RATECORE_STATUS_INVALID_OVERRIDE);
    /* Removing from an unknown limit. */
    bool removed = true;
    CHECK_STATUS(remove_override(policy, CC, "per-user", "app", "a", &removed),
                 RATECORE_STATUS_UNKNOWN_LIMIT);
    CHECK(removed);
    CHECK_OVERRIDES(policy, FLEET_LINE);
    ratecore_policy_free(policy);
}

/* A GCRA limit takes an override's burst; other algorithms refuse one (above). */
static void gcra_burst(void) {
    ratecore_policy *policy =
        api_policy("name = \"per-app\"\nkey = [\"app\"]\n"
                   "on_missing = \"deny\"\nalgorithm = \"gcra\"\n"
                   "limit = 10\nperiod = \"1s\"\n");
    char error[256];
    REQUIRE_OK(set_override(policy, "api", "per-app", "app", "big", quota_of(10, 30), error));
    ratecore_attribute big[] = {rc_attr("app", "big")};
    ratecore_http_request rb = http(big, 1);
    CHECK_EQ_U64(admitted(policy, &rb, 40, 0), 30);
    /* One more every 100 ms at 10 per second. */
    CHECK_EQ_U64(admitted(policy, &rb, 5, RC_SECOND / 10), 1);
    ratecore_attribute small[] = {rc_attr("app", "small")};
    ratecore_http_request rs = http(small, 1);
    CHECK_EQ_U64(admitted(policy, &rs, 40, 0), 10);
    /* A burst times the emission interval must fit 64-bit nanoseconds. */
    CHECK_STATUS(set_override(policy, "api", "per-app", "app", "x", quota_of(10, UINT64_MAX),
                              error),
                 RATECORE_STATUS_INVALID_OVERRIDE);
    CHECK(strncmp(error, "rule \"api\", limit \"per-app\": override: ", 39) == 0);
    CHECK_OVERRIDES(policy, "api\tper-app\tapp\tbig\t10\t30\n");
    ratecore_policy_free(policy);
}

/* Values are raw bytes: the listing escapes them, and the empty value is a value. */
static void listing_escapes_and_buffers(void) {
    ratecore_policy *policy =
        api_policy("name = \"per-key\"\nkey = [\"api_key\"]\n"
                   "on_missing = \"skip\"\nalgorithm = \"fixed_window\"\n"
                   "limit = 3\nperiod = \"1m\"\n");
    uint8_t out[4096];
    size_t len = SIZE_MAX;
    /* No overrides: the empty text, even with no buffer. */
    REQUIRE_OK(ratecore_policy_overrides(policy, NULL, 0, &len));
    CHECK_EQ_U64(len, 0);

    char error[256];
    static const uint8_t odd[] = {'k', '\t', '1', '\n', '\\', 0xff, 0x00, ' ', '~'};
    ratecore_override_quota q = quota_of(7, 0);
    REQUIRE_OK(ratecore_policy_set_override(policy, rc_bytes("api"), 3, rc_bytes("per-key"), 7,
                                            rc_bytes("api_key"), 7, odd, sizeof odd, &q, error,
                                            sizeof error));
    q = unlimited();
    REQUIRE_OK(ratecore_policy_set_override(policy, rc_bytes("api"), 3, rc_bytes("per-key"), 7,
                                            rc_bytes("api_key"), 7, NULL, 0, &q, error,
                                            sizeof error));
    REQUIRE_OK(set_override(policy, "api", "per-key", "tier", "gold", quota_of(100, 0), error));
    static const char expected[] = "api\tper-key\tapi_key\t\tunlimited\t0\n"
                                   "api\tper-key\tapi_key\tk\\x091\\x0a\\\\\\xff\\x00 ~\t7\t0\n"
                                   "api\tper-key\ttier\tgold\t100\t0\n";
    const size_t n = strlen(expected);
    CHECK_OVERRIDES(policy, expected);

    /* The empty value selects requests whose api_key is present and empty. */
    ratecore_attribute empty[] = {rc_attr("api_key", "")};
    ratecore_http_request re = http(empty, 1);
    ratecore_policy_outcome o;
    REQUIRE_OK(check_at(policy, &re, 0, &o));
    CHECK(o.decision.allowed && !o.limited);
    ratecore_attribute raw[] = {rc_attr("api_key", "")};
    raw[0].value = odd;
    raw[0].value_len = sizeof odd;
    ratecore_http_request rr = http(raw, 1);
    CHECK_EQ_U64(admitted(policy, &rr, 9, 0), 7);

    /* Exactly enough is enough; one byte short, or no buffer, reports the length needed
     * and writes nothing. */
    memset(out, 0x5a, sizeof out);
    REQUIRE_OK(ratecore_policy_overrides(policy, out, n, &len));
    CHECK_EQ_U64(len, n);
    CHECK_TEXT(out, len, expected);
    CHECK_EQ_U64(out[n], 0x5a);
    CHECK_TEXT_BUFFERS(ratecore_policy_overrides, policy, out, n, 1);
    ratecore_policy_free(policy);
}

static void bad_arguments(void) {
    ratecore_policy *policy = NULL;
    char error[64], untouched_error[64];
    REQUIRE_OK(ratecore_policy_from_file("examples/policies/evenergy.toml", error, sizeof error,
                                         &policy));
    memset(error, 0x5a, sizeof error);
    memset(untouched_error, 0x5a, sizeof untouched_error);
    ratecore_override_quota q = quota_of(5000, 0);
    const uint8_t *rule = rc_bytes(CC), *limit = rc_bytes("per-app"), *app = rc_bytes("app"),
                  *value = rc_bytes("v");
    const size_t rule_len = strlen(CC);

#define SET(policy, r, rl, l, ll, a, al, v, vl, quota)                                          \
    ratecore_policy_set_override(policy, r, rl, l, ll, a, al, v, vl, quota, error, sizeof error)
#define CHECK_REJECTED(call, expected)                                \
    do {                                                              \
        CHECK_STATUS(call, expected);                                 \
        CHECK(memcmp(error, untouched_error, sizeof error) == 0);     \
    } while (0)

    CHECK_REJECTED(SET(NULL, rule, rule_len, limit, 7, app, 3, value, 1, &q),
                   RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(SET(policy, NULL, rule_len, limit, 7, app, 3, value, 1, &q),
                   RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(SET(policy, rule, rule_len, NULL, 7, app, 3, value, 1, &q),
                   RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, NULL, 3, value, 1, &q),
                   RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, NULL, 1, &q),
                   RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, value, 1, NULL),
                   RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(SET(policy, rule, SIZE_MAX, limit, 7, app, 3, value, 1, &q),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, value, SIZE_MAX, &q),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_REJECTED(SET(policy, rc_bytes("\xff"), 1, limit, 7, app, 3, value, 1, &q),
                   RATECORE_STATUS_INVALID_UTF8);
    CHECK_REJECTED(SET(policy, rule, rule_len, rc_bytes("per\xfe"), 4, app, 3, value, 1, &q),
                   RATECORE_STATUS_INVALID_UTF8);
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, rc_bytes("ap\xff"), 3, value, 1, &q),
                   RATECORE_STATUS_INVALID_UTF8);
    /* The quota's size, and fields that contradict each other. */
    ratecore_override_quota bad = q;
    bad.size = sizeof bad - 1;
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, value, 1, &bad),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    bad.size = 0;
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, value, 1, &bad),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    bad = unlimited();
    bad.limit = 5;
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, value, 1, &bad),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    bad = unlimited();
    bad.burst = 5;
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, value, 1, &bad),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    /* A byte other than 0 or 1 where the bool is (a caller's memory may hold one). */
    bad = q;
    const unsigned char two = 2;
    memcpy(&bad.unlimited, &two, 1);
    CHECK_REJECTED(SET(policy, rule, rule_len, limit, 7, app, 3, value, 1, &bad),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_OVERRIDES(policy, FLEET_LINE);

    /* A quota from a newer header: its unknown tail is ignored. */
    RC_NEWER(ratecore_override_quota) newer;
    RC_NEWER_INPUT(newer, q);
    REQUIRE_OK(SET(policy, rule, rule_len, limit, 7, app, 3, value, 1, &newer.value));
    CHECK(memcmp(error, untouched_error, sizeof error) == 0);
    /* (NULL, 0) is the empty value. */
    REQUIRE_OK(SET(policy, rule, rule_len, limit, 7, app, 3, NULL, 0, &q));
    CHECK_OVERRIDES(policy, CC "\tper-app\tapp\t\t5000\t0\n" FLEET_LINE
                    CC "\tper-app\tapp\tv\t5000\t0\n");

    bool removed = true;
#define REMOVE(policy, r, rl, l, ll, a, al, v, vl, out) \
    ratecore_policy_remove_override(policy, r, rl, l, ll, a, al, v, vl, out)
    CHECK_STATUS(REMOVE(NULL, rule, rule_len, limit, 7, app, 3, value, 1, &removed),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(REMOVE(policy, rule, rule_len, limit, 7, app, 3, value, 1, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(REMOVE(policy, NULL, 3, limit, 7, app, 3, value, 1, &removed),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(REMOVE(policy, rule, rule_len, limit, 7, app, 3, NULL, 1, &removed),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(REMOVE(policy, rule, rule_len, limit, SIZE_MAX, app, 3, value, 1, &removed),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(REMOVE(policy, rule, rule_len, limit, 7, rc_bytes("\xff"), 1, value, 1,
                        &removed),
                 RATECORE_STATUS_INVALID_UTF8);
    CHECK(removed);
    CHECK_OVERRIDES(policy, CC "\tper-app\tapp\t\t5000\t0\n" FLEET_LINE
                    CC "\tper-app\tapp\tv\t5000\t0\n");
    /* An attribute no override uses, a bad name included: nothing to remove. */
    removed = true;
    REQUIRE_OK(REMOVE(policy, rule, rule_len, limit, 7, rc_bytes("a b"), 3, value, 1, &removed));
    CHECK(!removed);
    REQUIRE_OK(REMOVE(policy, rule, rule_len, limit, 7, app, 3, NULL, 0, &removed));
    CHECK(removed);
    REQUIRE_OK(REMOVE(policy, rule, rule_len, limit, 7, app, 3, value, 1, &removed));
    CHECK(removed);
    CHECK_OVERRIDES(policy, FLEET_LINE);
#undef REMOVE
#undef CHECK_REJECTED
#undef SET
    ratecore_policy_free(policy);
}

/* One limit: 1 request per hour per ip, so every request after a key's first is denied. */
static const char per_ip_toml[] =
    "[[rule]]\nname = \"api\"\n"
    "[[rule.limit]]\nname = \"per-ip\"\nkey = [\"ip\"]\non_missing = \"deny\"\n"
    "algorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1h\"\n";

static unsigned send_ip(const ratecore_policy *policy, const uint8_t *ip, size_t ip_len,
                        unsigned n) {
    ratecore_attribute a[] = {rc_attr("ip", "")};
    a[0].value = ip;
    a[0].value_len = ip_len;
    ratecore_http_request r = http(a, 1);
    return admitted(policy, &r, n, 0);
}

static void repeat_offenders(void) {
    ratecore_policy *policy = rc_policy_toml(per_ip_toml);
    /* Nobody denied yet: the empty report. */
    CHECK_OFFENDERS(policy, "", 0, 0);
    /* 198.51.100.1: 1 admitted, 6 denied. A key with a tab, a newline and a non-ASCII
     * byte: 1 admitted, 3 denied. A 100-byte key: 1 admitted, 2 denied, shown cut at 64
     * bytes. 10.0.0.1, denied once, and 10.0.0.2, never, are not offenders. */
    CHECK_EQ_U64(send_ip(policy, rc_bytes("198.51.100.1"), 12, 7), 1);
    static const uint8_t odd[] = {'e', 'v', 'i', 'l', '\t', 'k', '\n', 0xe9, '\\'};
    CHECK_EQ_U64(send_ip(policy, odd, sizeof odd, 4), 1);
    uint8_t long_key[100];
    memset(long_key, 'u', sizeof long_key);
    CHECK_EQ_U64(send_ip(policy, long_key, sizeof long_key, 3), 1);
    CHECK_EQ_U64(send_ip(policy, rc_bytes("10.0.0.1"), 8, 2), 1);
    CHECK_EQ_U64(send_ip(policy, rc_bytes("10.0.0.2"), 8, 1), 1);
    char expected[512];
    snprintf(expected, sizeof expected,
             "api\tper-ip\t198.51.100.1\t6\t0\n"
             "api\tper-ip\tevil\\x09k\\x0a\\xe9\\\\\t3\t0\n"
             "api\tper-ip\t%.64s\t2\t1\n",
             (const char *)long_key);
    CHECK_OFFENDERS(policy, expected, 0, 0);
    const size_t n = strlen(expected);

    /* Too small, or no buffer: the length needed and the counters, the text not. */
    uint8_t out[512];
    ratecore_offender_stats s;
    size_t len;
    for (int round = 0; round < 2; round++) {
        memset(out, 0x5a, sizeof out);
        memset(&s, 0x5a, sizeof s);
        s.size = sizeof s;
        len = 0;
        CHECK_STATUS(ratecore_policy_offenders(policy, round ? NULL : out, round ? 0 : n - 1,
                                               &len, &s),
                     RATECORE_STATUS_BUFFER_TOO_SMALL);
        CHECK_EQ_U64(len, n);
        CHECK_EQ_U64(s.size, sizeof s);
        CHECK_EQ_U64(s.evicted, 0);
        CHECK_EQ_U64(s.unrecorded, 0);
        CHECK_EQ_U64(out[0], 0x5a);
    }
    /* Exactly enough: nothing written past the text. */
    memset(out, 0x5a, sizeof out);
    REQUIRE_OK(ratecore_policy_offenders(policy, out, n, &len, &s));
    CHECK_TEXT(out, len, expected);
    CHECK_EQ_U64(out[n], 0x5a);

    /* Stats from a newer header: only this library's fields are written. */
    RC_NEWER(ratecore_offender_stats) newer;
    RC_NEWER_OUTPUT(newer);
    REQUIRE_OK(ratecore_policy_offenders(policy, out, sizeof out, &len, &newer.value));
    CHECK_EQ_U64(newer.value.size, sizeof(ratecore_offender_stats));
    CHECK_EQ_U64(newer.value.evicted, 0);
    CHECK_EQ_U64(newer.newer_field, RC_NEWER_POISON);

    /* Bad arguments: nothing written. */
    memset(out, 0x5a, sizeof out);
    memset(&s, 0x5a, sizeof s);
    s.size = sizeof s;
    ratecore_offender_stats untouched = s;
    len = 12345;
    CHECK_STATUS(ratecore_policy_offenders(NULL, out, sizeof out, &len, &s),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_offenders(policy, out, sizeof out, NULL, &s),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_offenders(policy, out, sizeof out, &len, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_offenders(policy, NULL, 8, &len, &s),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_offenders(policy, out, SIZE_MAX, &len, &s),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK(memcmp(&s, &untouched, sizeof s) == 0);
    s.size = sizeof s - 1;
    untouched.size = s.size;
    CHECK_STATUS(ratecore_policy_offenders(policy, out, sizeof out, &len, &s),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK(memcmp(&s, &untouched, sizeof s) == 0);
    CHECK_EQ_U64(len, 12345);
    CHECK_EQ_U64(out[0], 0x5a);

    /* A reload that keeps the limit keeps its offenders, and they go on counting; one
     * that changes the limit drops them. */
    ratecore_reload_report report;
    memset(&report, 0, sizeof report);
    report.size = sizeof report;
    REQUIRE_OK(ratecore_policy_reload_toml(policy, rc_bytes(per_ip_toml), strlen(per_ip_toml),
                                           NULL, 0, NULL, 0, &report));
    CHECK_OFFENDERS(policy, expected, 0, 0);
    CHECK_EQ_U64(send_ip(policy, rc_bytes("10.0.0.1"), 8, 1), 0);
    snprintf(expected, sizeof expected,
             "api\tper-ip\t198.51.100.1\t6\t0\n"
             "api\tper-ip\tevil\\x09k\\x0a\\xe9\\\\\t3\t0\n"
             "api\tper-ip\t10.0.0.1\t2\t0\n"
             "api\tper-ip\t%.64s\t2\t1\n",
             (const char *)long_key);
    CHECK_OFFENDERS(policy, expected, 0, 0);
    static const char per_ip_two[] =
        "[[rule]]\nname = \"api\"\n"
        "[[rule.limit]]\nname = \"per-ip\"\nkey = [\"ip\"]\non_missing = \"deny\"\n"
        "algorithm = \"fixed_window\"\nlimit = 2\nperiod = \"1h\"\n";
    REQUIRE_OK(ratecore_policy_reload_toml(policy, rc_bytes(per_ip_two), strlen(per_ip_two),
                                           NULL, 0, NULL, 0, &report));
    CHECK_OFFENDERS(policy, "", 0, 0);
    ratecore_policy_free(policy);
}

/* More repeat offenders than the report holds: the fewest denials make room. */
static void the_report_is_bounded(void) {
    ratecore_policy *policy = rc_policy_toml(per_ip_toml);
    const unsigned keys = RATECORE_OFFENDERS + 6;
    for (unsigned i = 0; i < keys; i++) {
        char ip[32];
        int n = snprintf(ip, sizeof ip, "10.1.0.%u", i);
        /* Key i is denied 2 + i times: the first 6 keys make room. */
        CHECK_EQ_U64(send_ip(policy, rc_bytes(ip), (size_t)n, 3 + i), 1);
    }
    uint8_t out[8192];
    ratecore_offender_stats s;
    size_t len = offenders(policy, out, &s);
    CHECK_EQ_U64(s.evicted, 6);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) {
        lines += out[i] == '\n';
    }
    CHECK_EQ_U64(lines, RATECORE_OFFENDERS);
    /* Most denials first: the last key, denied 2 + 69 times. */
    char first[64];
    snprintf(first, sizeof first, "api\tper-ip\t10.1.0.%u\t%u\t0\n", keys - 1, keys + 1);
    CHECK(len >= strlen(first) && memcmp(out, first, strlen(first)) == 0);
    ratecore_policy_free(policy);
}

/* Override changes racing checks and listings: every call succeeds, and at a frozen clock
 * the key is never admitted more than the larger of its two quotas. */
#define ATTEMPTS 200

static void race_attempt(rc_race_job *job) {
    ratecore_attribute a[] = {rc_attr("ip", "acme")};
    ratecore_http_request r = http(a, 1);
    uint8_t out[1024];
    ratecore_policy_outcome o;
    if (check_at(job->policy, &r, 0, &o) != RATECORE_STATUS_OK) {
        job->errors++;
    } else if (o.decision.allowed) {
        job->admitted++;
    }
    size_t len = 0;
    ratecore_status status = ratecore_policy_overrides(job->policy, out, sizeof out, &len);
    if (status != RATECORE_STATUS_OK ||
        (len != 0 && (len != strlen("api\tper-ip\tip\tacme\t300\t0\n") ||
                      memcmp(out, "api\tper-ip\tip\tacme\t300\t0\n", len) != 0))) {
        job->errors++;
    }
    ratecore_offender_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    if (ratecore_policy_offenders(job->policy, out, sizeof out, &len, &s) !=
        RATECORE_STATUS_OK) {
        job->errors++;
    }
}

static void changes_race_checks(void) {
    ratecore_policy *policy =
        api_policy("name = \"per-ip\"\nkey = [\"ip\"]\n"
                   "on_missing = \"deny\"\nalgorithm = \"fixed_window\"\n"
                   "limit = 100\nperiod = \"1h\"\n");
    rc_race race;
    rc_race_start(&race, policy, race_attempt, ATTEMPTS);
    unsigned changes = 0, failed = 0;
    char error[256];
    for (; changes < 20 || rc_race_running(&race); changes++) {
        bool removed;
        ratecore_status status =
            changes % 2 ? remove_override(policy, "api", "per-ip", "ip", "acme", &removed)
                        : set_override(policy, "api", "per-ip", "ip", "acme", quota_of(300, 0),
                                       error);
        failed += status != RATECORE_STATUS_OK;
    }
    unsigned total = rc_race_finish(&race);
    CHECK_EQ_U64(failed, 0);
    CHECK(total >= 100 && total <= 300);
    ratecore_policy_free(policy);
}

int main(void) {
    evenergy_app_raised_at_run_time();
    refused_overrides();
    gcra_burst();
    listing_escapes_and_buffers();
    bad_arguments();
    repeat_offenders();
    the_report_is_bounded();
    changes_race_checks();
    return rc_finish("test_policy_overrides");
}
