/*
 * Policies checked on requests with named attributes through the C ABI: ev.energy's and
 * Switch's published policies (examples/policies/), shadow limits, per-limit metrics,
 * and bad arguments (nothing written, nothing counted). Reloads and the metrics text
 * export: test_policy_reload.c.
 */
#include "test_util.h"

static uint8_t headers[1024], body[1024];

/* An outcome filled with a pattern, to prove it was not written. */
RC_POISONED_TYPE(ratecore_policy_outcome, poisoned_outcome, outcome_untouched)

static ratecore_status check_at(const ratecore_policy *policy, const ratecore_http_request *r,
                                uint64_t now, ratecore_policy_outcome *o) {
    *o = poisoned_outcome();
    return ratecore_policy_check_http(policy, r, now, 1, RC_WALL_AT_ZERO + now, headers,
                                      sizeof headers, body, sizeof body, o);
}

/* A GET /v2/users/ with `attributes` at `now` is the first request of its key in ev.energy's
 * policy: admitted, 999 of 1000 left. */
static void check_first_of_key(const ratecore_policy *policy, const ratecore_attribute *attributes,
                               size_t count, uint64_t now, int line) {
    ratecore_http_request r = rc_http("GET", "/v2/users/", attributes, count);
    ratecore_policy_outcome o;
    REQUIRE_OK(check_at(policy, &r, now, &o));
    if (!o.decision.allowed || o.decision.remaining != 999) {
        fprintf(stderr, "%s:%d: allowed=%d remaining=%" PRIu64 ", expected a first request\n",
                __FILE__, line, o.decision.allowed, o.decision.remaining);
        rc_failures++;
    }
}
#define CHECK_FIRST_OF_KEY(policy, attributes, now) \
    check_first_of_key(policy, attributes, sizeof attributes / sizeof attributes[0], now, __LINE__)

static int same_text(const uint8_t *s, size_t len, const char *expected) {
    return len == strlen(expected) && memcmp(s, expected, len) == 0;
}

typedef struct {
    uint64_t allowed, denied, shadow_denied, skipped;
} counts;

/* Checks limit `index`'s names (copied into a caller buffer: rule, then limit) and
 * counters. */
static void check_metrics(const ratecore_policy *policy, size_t index, const char *rule,
                          const char *name, bool shadow, counts want, int line) {
    ratecore_limit_metrics m;
    uint8_t text[128];
    memset(&m, 0, sizeof m);
    memset(text, 0, sizeof text);
    m.size = sizeof m;
    REQUIRE_OK(ratecore_policy_limit_metrics(policy, index, text, sizeof text, &m));
    if (m.size != sizeof m || m.rule_len + m.name_len > sizeof text ||
        !same_text(text, m.rule_len, rule) || !same_text(text + m.rule_len, m.name_len, name) ||
        m.shadow != shadow || m.allowed != want.allowed || m.denied != want.denied ||
        m.shadow_denied != want.shadow_denied || m.skipped != want.skipped) {
        int rule_len = (int)(m.rule_len < sizeof text ? m.rule_len : sizeof text);
        fprintf(stderr,
                "%s:%d: limit %zu is %.*s/%.*s shadow=%d allowed=%" PRIu64 " denied=%" PRIu64
                " shadow_denied=%" PRIu64 " skipped=%" PRIu64 ", expected %s/%s shadow=%d "
                "allowed=%" PRIu64 " denied=%" PRIu64 " shadow_denied=%" PRIu64
                " skipped=%" PRIu64 "\n",
                __FILE__, line, index, rule_len, (const char *)text,
                (int)(m.rule_len + m.name_len <= sizeof text ? m.name_len : 0),
                (const char *)text + rule_len, m.shadow, m.allowed, m.denied, m.shadow_denied,
                m.skipped, rule, name, shadow, want.allowed, want.denied, want.shadow_denied,
                want.skipped);
        rc_failures++;
    }
}

#define CHECK_METRICS(policy, index, rule, name, shadow, ...) \
    check_metrics(policy, index, rule, name, shadow, (counts){__VA_ARGS__}, __LINE__)

static const char problem_json_42[] =
    "{\n    \"type\": \"https://api.ev.energy/v2/problems/rate-limit-exceeded/\",\n"
    "    \"status\": 429,\n    \"title\": \"Too many requests\",\n"
    "    \"detail\": \"Request was rate limited. Try again in 42 seconds\"\n}\n";

/* Limits in policy order: 0 authorization-code/per-app-user, 1 client-credentials/per-app. */
static void evenergy(void) {
    ratecore_policy *policy = rc_policy_file("examples/policies/evenergy.toml");
    size_t count = 0;
    REQUIRE_OK(ratecore_policy_limit_count(policy, &count));
    CHECK_EQ_U64(count, 2);
    size_t memory = 0;
    REQUIRE_OK(ratecore_policy_memory_bytes(policy, &memory));
    CHECK(memory > 0);

    /* A client-credentials app (no user): one limit per app. */
    ratecore_attribute cc[] = {rc_attr("auth", "client_credentials"), rc_attr("app", "app-cc")};
    ratecore_http_request r = rc_http("GET", "/v2/users/", cc, 2);
    ratecore_policy_outcome o;
    uint64_t t0 = 59 * RC_MINUTE;
    for (int i = 0; i < 1000; i++) {
        REQUIRE_OK(check_at(policy, &r, t0, &o));
        if (!o.decision.allowed || o.status != 200 || !o.limited || o.deciding_limit != 1 ||
            o.missing_key || o.exempted || o.shadow_denied_limit != RATECORE_NO_LIMIT ||
            o.content_type != NULL || o.body_len != 0 || o.size != sizeof o) {
            fprintf(stderr, "client-credentials request %d: unexpected outcome\n", i + 1);
            rc_failures++;
            break;
        }
        if (i == 0) {
            CHECK_TEXT(headers, o.headers_len,
                       "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 999\r\n");
        }
    }
    /* A peek counts nothing and consumes nothing: the metrics below prove it. */
    o = poisoned_outcome();
    REQUIRE_OK(ratecore_policy_peek_http(policy, &r, t0, 1, RC_WALL_AT_ZERO + t0, headers,
                                         sizeof headers, body, sizeof body, &o));
    CHECK(!o.decision.allowed);
    /* The 1,001st request in the (rolling) hour. */
    uint64_t at = t0 + RC_HOUR - 42 * RC_SECOND;
    REQUIRE_OK(check_at(policy, &r, at, &o));
    CHECK(!o.decision.allowed);
    CHECK(o.limited);
    CHECK_EQ_U64(o.status, 429);
    CHECK_EQ_U64(o.deciding_limit, 1);
    CHECK(!o.missing_key);
    CHECK(!o.exempted);
    CHECK_TEXT(headers, o.headers_len,
               "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 42\r\n");
    CHECK_TEXT(body, o.body_len, problem_json_42);
    CHECK(o.content_type != NULL && strcmp(o.content_type, "application/problem+json") == 0);
    /* Another app has its own limit. */
    ratecore_attribute cc2[] = {rc_attr("auth", "client_credentials"), rc_attr("app", "app-cc2")};
    CHECK_FIRST_OF_KEY(policy, cc2, at);

    /* Authorization-code requests: one limit per (app, user). */
    ratecore_attribute alice[] = {rc_attr("auth", "authorization_code"), rc_attr("app", "app-1"),
                                  rc_attr("user", "alice")};
    ratecore_http_request ra = rc_http("GET", "/v2/users/", alice, 3);
    for (int i = 0; i < 1000; i++) {
        REQUIRE_OK(check_at(policy, &ra, t0, &o));
        if (!o.decision.allowed || o.deciding_limit != 0) {
            fprintf(stderr, "authorization-code request %d: unexpected outcome\n", i + 1);
            rc_failures++;
            break;
        }
    }
    REQUIRE_OK(check_at(policy, &ra, at, &o));
    CHECK(!o.decision.allowed);
    CHECK_EQ_U64(o.deciding_limit, 0);
    CHECK(!o.missing_key);
    CHECK_TEXT(headers, o.headers_len,
               "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 42\r\n");
    CHECK_TEXT(body, o.body_len, problem_json_42);
    /* The same user of another app, and another user of the same app, are not limited by
     * alice's requests; attribute order does not matter. */
    ratecore_attribute alice_app2[] = {rc_attr("user", "alice"), rc_attr("app", "app-2"),
                                       rc_attr("auth", "authorization_code")};
    CHECK_FIRST_OF_KEY(policy, alice_app2, at);
    ratecore_attribute bob[] = {rc_attr("auth", "authorization_code"), rc_attr("app", "app-1"),
                                rc_attr("user", "bob")};
    CHECK_FIRST_OF_KEY(policy, bob, at);

    /* An authorization-code request without a user is refused (on_missing = "deny"),
     * for the limit's whole period. */
    ratecore_attribute no_user[] = {rc_attr("auth", "authorization_code"), rc_attr("app", "app-1")};
    ratecore_http_request rn = rc_http("GET", "/v2/users/", no_user, 2);
    REQUIRE_OK(check_at(policy, &rn, at, &o));
    CHECK(!o.decision.allowed);
    CHECK(o.missing_key);
    CHECK(o.limited);
    CHECK_EQ_U64(o.status, 429);
    CHECK_EQ_U64(o.deciding_limit, 0);
    CHECK_EQ_U64(o.decision.retry_after_ns, RC_HOUR);
    CHECK_TEXT(headers, o.headers_len,
               "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 3600\r\n");
    CHECK(strcmp(o.content_type, "application/problem+json") == 0);

    /* No auth attribute: no rule applies. */
    ratecore_attribute anonymous[] = {rc_attr("app", "app-1")};
    ratecore_http_request rx = rc_http("GET", "/v2/users/", anonymous, 1);
    REQUIRE_OK(check_at(policy, &rx, at, &o));
    CHECK(o.decision.allowed);
    CHECK(!o.limited);
    CHECK(!o.exempted);
    CHECK_EQ_U64(o.deciding_limit, RATECORE_NO_LIMIT);
    CHECK_EQ_U64(o.headers_len, 0);

    /* Counted: 1000 + 2 + 1 + 1 authorization-code checks (1 + 1 denied), 1000 + 1 + 1
     * client-credentials checks (1 denied); the peek is not counted. */
    CHECK_METRICS(policy, 0, "authorization-code", "per-app-user", false, 1002, 2, 0, 0);
    CHECK_METRICS(policy, 1, "client-credentials", "per-app", false, 1001, 1, 0, 0);
    size_t memory_after = 0;
    REQUIRE_OK(ratecore_policy_memory_bytes(policy, &memory_after));
    CHECK_EQ_U64(memory_after, memory);
    ratecore_policy_free(policy);
}

/* Limits in policy order: 0 save-readings/per-second, 1 save-readings/per-minute. */
static void switch_api(void) {
    ratecore_policy *policy = rc_policy_file("examples/policies/switch.toml");
    size_t count = 0;
    REQUIRE_OK(ratecore_policy_limit_count(policy, &count));
    CHECK_EQ_U64(count, 2);
    ratecore_policy_outcome o;
    uint64_t t = 60 * RC_MINUTE; /* 12:00:00 */

    /* Personal access tokens are unlimited. */
    ratecore_attribute personal[] = {rc_attr("auth", "personal_token"), rc_attr("client", "client-a")};
    ratecore_http_request rp = rc_http("POST", "/api/readings", personal, 2);
    for (int i = 0; i < 50; i++) {
        REQUIRE_OK(check_at(policy, &rp, t, &o));
        if (!o.decision.allowed || o.limited || !o.exempted || o.status != 200 ||
            o.deciding_limit != RATECORE_NO_LIMIT || o.headers_len != 0) {
            fprintf(stderr, "personal-token request %d: unexpected outcome\n", i + 1);
            rc_failures++;
            break;
        }
    }

    /* Client credentials on POST /api/readings: 5 per second and 20 per minute. */
    ratecore_attribute cc[] = {rc_attr("auth", "client_credentials"), rc_attr("client", "client-a")};
    ratecore_http_request r = rc_http("POST", "/api/readings", cc, 2);
    for (int second = 0; second < 4; second++) {
        for (int i = 0; i < 5; i++) {
            REQUIRE_OK(check_at(policy, &r, t + (uint64_t)second * RC_SECOND, &o));
            CHECK(o.decision.allowed);
            CHECK(o.limited);
            CHECK(!o.exempted);
        }
        if (second < 3) {
            /* The sixth request in a second: the per-second limit denies, the per-minute
             * one would admit. */
            REQUIRE_OK(check_at(policy, &r, t + (uint64_t)second * RC_SECOND, &o));
            CHECK(!o.decision.allowed);
            CHECK_EQ_U64(o.deciding_limit, 0);
            CHECK_EQ_U64(o.decision.limit, 5);
        }
    }
    uint64_t at = t + 19 * RC_SECOND;
    REQUIRE_OK(check_at(policy, &r, at, &o));
    CHECK(!o.decision.allowed);
    CHECK_EQ_U64(o.status, 429);
    CHECK_EQ_U64(o.deciding_limit, 1);
    CHECK_SWITCH_DENIAL(headers, o.headers_len, body, o.body_len, o.content_type);

    /* A client-credentials request without a client is refused; an empty client is a
     * client (`(NULL, 0)` is the empty value). */
    ratecore_attribute no_client[] = {rc_attr("auth", "client_credentials")};
    ratecore_http_request rn = rc_http("POST", "/api/readings", no_client, 1);
    REQUIRE_OK(check_at(policy, &rn, at, &o));
    CHECK(!o.decision.allowed);
    CHECK(o.missing_key);
    ratecore_attribute empty_client[] = {rc_attr("auth", "client_credentials"), rc_attr("client", "")};
    empty_client[1].value = NULL;
    ratecore_http_request re = rc_http("POST", "/api/readings", empty_client, 2);
    REQUIRE_OK(check_at(policy, &re, at, &o));
    CHECK(o.decision.allowed);
    CHECK(o.limited);
    CHECK(!o.missing_key);
    CHECK_EQ_U64(o.decision.remaining, 4);

    /* Other endpoints are never limited. */
    ratecore_http_request other = rc_http("GET", "/api/meters", cc, 2);
    REQUIRE_OK(check_at(policy, &other, at, &o));
    CHECK(o.decision.allowed);
    CHECK(!o.limited);
    CHECK(!o.exempted);
    CHECK_EQ_U64(o.headers_len, 0);

    /* When a name is listed twice, the first occurrence counts: client-b is fresh. */
    ratecore_attribute twice[] = {rc_attr("client", "client-b"), rc_attr("auth", "client_credentials"),
                                  rc_attr("client", "client-a")};
    ratecore_http_request rt = rc_http("POST", "/api/readings", twice, 3);
    REQUIRE_OK(check_at(policy, &rt, at, &o));
    CHECK(o.decision.allowed);
    CHECK_EQ_U64(o.decision.remaining, 4);

    /* Each limit counts what it said, whatever the other said. per-second: 20 + 1 (the
     * per-minute denial) + 2 (empty client, client-b) admitted, 3 + 1 (no client) denied;
     * per-minute: 20 + 3 (the per-second denials) + 2 admitted, 1 + 1 (no client) denied. */
    CHECK_METRICS(policy, 0, "save-readings", "per-second", false, 23, 4, 0, 0);
    CHECK_METRICS(policy, 1, "save-readings", "per-minute", false, 25, 2, 0, 0);
    ratecore_policy_free(policy);
}

static void shadow_limits(void) {
    static const char toml[] =
        "[[rule]]\nname = \"api\"\n"
        "[[rule.limit]]\nname = \"per-user\"\nkey = [\"user\"]\non_missing = \"skip\"\n"
        "algorithm = \"fixed_window\"\nlimit = 3\nperiod = \"1m\"\n"
        "[[rule.limit]]\nname = \"per-user-tight\"\nkey = [\"user\"]\non_missing = \"skip\"\n"
        "algorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1m\"\nshadow = true\n";
    ratecore_policy *policy = rc_policy_toml(toml);
    ratecore_attribute alice[] = {rc_attr("user", "alice")};
    ratecore_http_request r = rc_http("GET", "/", alice, 1);
    ratecore_policy_outcome o;
    REQUIRE_OK(check_at(policy, &r, 0, &o));
    CHECK(o.decision.allowed);
    CHECK_EQ_U64(o.deciding_limit, 0);
    CHECK_EQ_U64(o.shadow_denied_limit, RATECORE_NO_LIMIT);
    for (int i = 0; i < 2; i++) {
        REQUIRE_OK(check_at(policy, &r, 0, &o));
        CHECK(o.decision.allowed);
        CHECK_EQ_U64(o.shadow_denied_limit, 1);
    }
    REQUIRE_OK(check_at(policy, &r, 0, &o));
    CHECK(!o.decision.allowed);
    CHECK_EQ_U64(o.deciding_limit, 0);
    CHECK_EQ_U64(o.shadow_denied_limit, 1);
    /* Without a user both limits skip the request: nothing applies. */
    ratecore_http_request anonymous = rc_http("GET", "/", NULL, 0);
    REQUIRE_OK(check_at(policy, &anonymous, 0, &o));
    CHECK(o.decision.allowed);
    CHECK(!o.limited);
    CHECK_EQ_U64(o.deciding_limit, RATECORE_NO_LIMIT);
    CHECK_EQ_U64(o.shadow_denied_limit, RATECORE_NO_LIMIT);
    CHECK_METRICS(policy, 0, "api", "per-user", false, 3, 1, 0, 1);
    CHECK_METRICS(policy, 1, "api", "per-user-tight", true, 1, 0, 3, 1);
    ratecore_policy_free(policy);
}

static void bad_arguments(void) {
    ratecore_policy *policy = rc_policy_file("examples/policies/switch.toml");
    ratecore_attribute cc[] = {rc_attr("auth", "client_credentials"), rc_attr("client", "client-z")};
    ratecore_http_request r = rc_http("POST", "/api/readings", cc, 2);
    ratecore_policy_outcome o = poisoned_outcome();
    uint64_t now = RC_HOUR;

#define CHECK_REJECTED(call, expected)  \
    do {                                \
        o = poisoned_outcome();         \
        CHECK_STATUS(call, expected);   \
        CHECK(outcome_untouched(&o));   \
    } while (0)
#define HTTP(policy, request, cost, outcome)                                             \
    ratecore_policy_check_http(policy, request, now, cost, RC_WALL_AT_ZERO + now, headers, \
                               sizeof headers, body, sizeof body, outcome)

    CHECK_REJECTED(HTTP(NULL, &r, 1, &o), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(HTTP(policy, NULL, 1, &o), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(HTTP(policy, &r, 1, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_peek_http(policy, &r, now, 1, 0, NULL, 0, NULL, 0, NULL),
                 RATECORE_STATUS_NULL_POINTER);

    /* Sizes below the structs'. */
    ratecore_http_request small = r;
    small.size = sizeof small - 1;
    CHECK_REJECTED(HTTP(policy, &small, 1, &o), RATECORE_STATUS_INVALID_ARGUMENT);
    small.size = 0;
    CHECK_REJECTED(HTTP(policy, &small, 1, &o), RATECORE_STATUS_INVALID_ARGUMENT);
    o = poisoned_outcome();
    o.size = sizeof o - 1;
    CHECK_STATUS(HTTP(policy, &r, 1, &o), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_EQ_U64(o.size, sizeof o - 1);
    o.size = sizeof o;
    CHECK(outcome_untouched(&o));

    /* Attributes. */
    ratecore_attribute bad[2] = {rc_attr("auth", "client_credentials"), rc_attr("client", "client-z")};
    ratecore_http_request rb = rc_http("POST", "/api/readings", bad, 2);
    bad[1].name = NULL;
    CHECK_REJECTED(HTTP(policy, &rb, 1, &o), RATECORE_STATUS_NULL_POINTER);
    bad[1].name_len = 0;
    CHECK_REJECTED(HTTP(policy, &rb, 1, &o), RATECORE_STATUS_NULL_POINTER);
    bad[1] = rc_attr("cli\xff", "client-z");
    CHECK_REJECTED(HTTP(policy, &rb, 1, &o), RATECORE_STATUS_INVALID_UTF8);
    bad[1] = rc_attr("client", "client-z");
    bad[1].value = NULL;
    CHECK_REJECTED(HTTP(policy, &rb, 1, &o), RATECORE_STATUS_NULL_POINTER);
    bad[1] = rc_attr("client", "client-z");
    rb.attributes = NULL;
    CHECK_REJECTED(HTTP(policy, &rb, 1, &o), RATECORE_STATUS_NULL_POINTER);
    rb.attributes = bad;
    rb.attribute_count = SIZE_MAX;
    CHECK_REJECTED(HTTP(policy, &rb, 1, &o), RATECORE_STATUS_INVALID_ARGUMENT);

    /* At most RATECORE_MAX_REQUEST_ATTRIBUTES attributes. */
    ratecore_attribute many[RATECORE_MAX_REQUEST_ATTRIBUTES + 1];
    many[0] = rc_attr("auth", "client_credentials");
    many[1] = rc_attr("client", "client-z");
    for (size_t i = 2; i < RATECORE_MAX_REQUEST_ATTRIBUTES + 1; i++) {
        many[i] = rc_attr("x-header", "value");
    }
    ratecore_http_request rm = rc_http("POST", "/api/readings", many, RATECORE_MAX_REQUEST_ATTRIBUTES + 1);
    CHECK_REJECTED(HTTP(policy, &rm, 1, &o), RATECORE_STATUS_INVALID_ARGUMENT);

    /* Strings and buffers. */
    ratecore_http_request rs = r;
    rs.path = rc_bytes("\xff\xfe");
    rs.path_len = 2;
    CHECK_REJECTED(HTTP(policy, &rs, 1, &o), RATECORE_STATUS_INVALID_UTF8);
    rs = r;
    rs.method = NULL;
    CHECK_REJECTED(HTTP(policy, &rs, 1, &o), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(ratecore_policy_check_http(policy, &r, now, 1, 0, NULL, 5, NULL, 0, &o),
                   RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(HTTP(policy, &r, 21, &o), RATECORE_STATUS_COST_EXCEEDS_LIMIT);

    /* None of the rejected calls was counted or consumed anything. */
    CHECK_METRICS(policy, 0, "save-readings", "per-second", false, 0, 0, 0, 0);
    CHECK_METRICS(policy, 1, "save-readings", "per-minute", false, 0, 0, 0, 0);

    /* Exactly RATECORE_MAX_REQUEST_ATTRIBUTES attributes are fine. */
    rm.attribute_count = RATECORE_MAX_REQUEST_ATTRIBUTES;
    o = poisoned_outcome();
    REQUIRE_OK(HTTP(policy, &rm, 1, &o));
    CHECK(o.decision.allowed);
    CHECK_EQ_U64(o.decision.remaining, 4);

    /* Structs from a newer header: the request's unknown tail is ignored; only this
     * library's outcome is written, and its size says how much. */
    RC_NEWER(ratecore_http_request) newer_request;
    RC_NEWER_INPUT(newer_request, r);
    RC_NEWER(ratecore_policy_outcome) newer_outcome;
    RC_NEWER_OUTPUT(newer_outcome);
    REQUIRE_OK(HTTP(policy, &newer_request.value, 1, &newer_outcome.value));
    CHECK_EQ_U64(newer_outcome.value.size, sizeof(ratecore_policy_outcome));
    CHECK(newer_outcome.value.decision.allowed);
    CHECK_EQ_U64(newer_outcome.value.decision.remaining, 3);
    CHECK_EQ_U64(newer_outcome.newer_field, RC_NEWER_POISON);
    CHECK_METRICS(policy, 0, "save-readings", "per-second", false, 2, 0, 0, 0);

    /* Metrics and memory. */
    size_t count = 12345;
    CHECK_STATUS(ratecore_policy_limit_count(NULL, &count), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_limit_count(policy, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_EQ_U64(count, 12345);
    ratecore_limit_metrics m, untouched;
    uint8_t text[64], text_untouched[64];
    memset(&m, 0x5a, sizeof m);
    memset(text, 0x5a, sizeof text);
    memset(text_untouched, 0x5a, sizeof text_untouched);
    m.size = sizeof m;
    untouched = m;
#define METRICS(policy, index, text_out, text_cap, out) \
    ratecore_policy_limit_metrics(policy, index, text_out, text_cap, out)
    CHECK_STATUS(METRICS(NULL, 0, text, sizeof text, &m), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(METRICS(policy, 0, text, sizeof text, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(METRICS(policy, 0, NULL, sizeof text, &m), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(METRICS(policy, 0, text, SIZE_MAX, &m), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(METRICS(policy, 2, text, sizeof text, &m), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(METRICS(policy, SIZE_MAX, text, sizeof text, &m),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK(memcmp(&m, &untouched, sizeof m) == 0);
    m.size = sizeof m - 1;
    untouched.size = m.size;
    CHECK_STATUS(METRICS(policy, 0, text, sizeof text, &m), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK(memcmp(&m, &untouched, sizeof m) == 0);
    CHECK(memcmp(text, text_untouched, sizeof text) == 0);
#undef METRICS
    size_t memory = 12345;
    CHECK_STATUS(ratecore_policy_memory_bytes(NULL, &memory), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_memory_bytes(policy, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_EQ_U64(memory, 12345);
#undef HTTP
#undef CHECK_REJECTED
    ratecore_policy_free(policy);
}

int main(void) {
    evenergy();
    switch_api();
    shadow_limits();
    bad_arguments();
    return rc_finish("test_policy_attributes");
}
