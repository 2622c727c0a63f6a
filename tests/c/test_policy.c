/*
 * Policies and header rendering through the C ABI: the seed policies' responses byte for
 * byte, too-small buffers, malformed configs, and bad arguments.
 */
#include "test_util.h"

static ratecore_request request(const char *method, const char *path) {
    ratecore_request r;
    memset(&r, 0, sizeof r);
    rc_set_str(&r.method, &r.method_len, method);
    rc_set_str(&r.path, &r.path_len, path);
    return r;
}

/* Switch's POST /api/readings limits keyed on the `client` identity alone, which
 * `ratecore_request` carries (examples/policies/switch.toml also conditions on `auth`, which
 * needs `ratecore_http_request`: tests/c/test_policy_attributes.c). */
static const char switch_toml[] =
    "[response]\nheaders = \"switch\"\nbody = \"text\"\nstatus = 429\n"
    "[table]\ncapacity = 64\nwhen_full = \"evict\"\n"
    "[[rule]]\nname = \"save-readings\"\nroute = \"POST /api/readings\"\n"
    "description = \"Save readings API interface\"\n"
    "[[rule.limit]]\nname = \"per-second\"\nkey = \"client\"\nalgorithm = \"fixed_window\"\n"
    "limit = 5\nperiod = \"1s\"\n"
    "[[rule.limit]]\nname = \"per-minute\"\nkey = \"client\"\nalgorithm = \"fixed_window\"\n"
    "limit = 20\nperiod = \"1m\"\n";

static void switch_policy(void) {
    ratecore_policy *policy = NULL;
    char error[256];
    REQUIRE_OK(ratecore_policy_from_toml(rc_bytes(switch_toml), strlen(switch_toml),
                                         rc_bytes("switch"), 6, error, sizeof error, &policy));
    ratecore_request r = request("POST", "/api/readings");
    r.client = rc_bytes("client-a");
    r.client_len = 8;
    uint8_t headers[1024], body[1024];
    ratecore_policy_result result;
    uint64_t t = 60 * RC_MINUTE; /* 12:00:00 */
    for (int second = 0; second < 4; second++) {
        for (int i = 0; i < 5; i++) {
            REQUIRE_OK(ratecore_policy_check(policy, &r, t + (uint64_t)second * RC_SECOND, 1,
                                             RC_WALL_AT_ZERO + t, headers, sizeof headers, body,
                                             sizeof body, &result));
            CHECK(result.decision.allowed);
            CHECK_EQ_U64(result.status, 200);
            CHECK(result.content_type == NULL);
        }
    }
    uint64_t at = t + 19 * RC_SECOND;
    REQUIRE_OK(ratecore_policy_check(policy, &r, at, 1, RC_WALL_AT_ZERO + at, headers, sizeof headers,
                                     body, sizeof body, &result));
    CHECK(!result.decision.allowed);
    CHECK(result.limited);
    CHECK_EQ_U64(result.status, 429);
    CHECK_SWITCH_DENIAL(headers, result.headers_len, body, result.body_len, result.content_type);

    /* Too-small buffers: the decision is still made; the lengths say what is needed. */
    uint8_t tiny[4];
    REQUIRE_OK(ratecore_policy_peek(policy, &r, at, 1, RC_WALL_AT_ZERO + at, tiny, sizeof tiny, NULL,
                                    0, &result));
    CHECK(!result.decision.allowed);
    CHECK(result.headers_len > sizeof tiny);
    CHECK(result.body_len > 0);

    /* Other endpoints: unlimited, no headers. */
    ratecore_request other = request("GET", "/api/meters");
    other.client = r.client;
    other.client_len = r.client_len;
    REQUIRE_OK(ratecore_policy_check(policy, &other, at, 1, RC_WALL_AT_ZERO + at, headers,
                                     sizeof headers, body, sizeof body, &result));
    CHECK(result.decision.allowed);
    CHECK(!result.limited);
    CHECK_EQ_U64(result.headers_len, 0);

    /* A request without the identity is skipped by limits keyed on it. */
    ratecore_request anonymous = request("POST", "/api/readings");
    REQUIRE_OK(ratecore_policy_check(policy, &anonymous, at, 1, RC_WALL_AT_ZERO + at, headers,
                                     sizeof headers, body, sizeof body, &result));
    CHECK(result.decision.allowed);
    CHECK(!result.limited);

    /* Bad arguments. */
    CHECK_STATUS(ratecore_policy_check(NULL, &r, at, 1, 0, NULL, 0, NULL, 0, &result),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_check(policy, NULL, at, 1, 0, NULL, 0, NULL, 0, &result),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_check(policy, &r, at, 1, 0, NULL, 0, NULL, 0, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_check(policy, &r, at, 1, 0, NULL, 5, NULL, 0, &result),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_check(policy, &r, at, 21, 0, NULL, 0, NULL, 0, &result),
                 RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    ratecore_request bad = r;
    bad.path = rc_bytes("\xff\xfe");
    bad.path_len = 2;
    CHECK_STATUS(ratecore_policy_check(policy, &bad, at, 1, 0, NULL, 0, NULL, 0, &result),
                 RATECORE_STATUS_INVALID_UTF8);
    ratecore_policy_free(policy);
    ratecore_policy_free(NULL);
}

static void evenergy_policy_from_string(void) {
    static const char toml[] =
        "[response]\nheaders = \"evenergy\"\nbody = \"problem+json\"\n"
        "problem_type = \"https://api.ev.energy/v2/problems/rate-limit-exceeded/\"\n"
        "problem_title = \"Too many requests\"\n"
        "[table]\ncapacity = 64\n"
        "[[rule]]\nname = \"api\"\n[[rule.limit]]\nkey = \"app_user\"\n"
        "algorithm = \"sliding_window_strict\"\nlimit = 1000\nperiod = \"1h\"\n";
    ratecore_policy *policy = rc_policy_toml(toml);
    ratecore_request r = request("GET", "/v2/users/");
    r.app = rc_bytes("app-1");
    r.app_len = 5;
    r.user = rc_bytes("alice");
    r.user_len = 5;
    uint8_t headers[512], body[512];
    ratecore_policy_result result;
    uint64_t t0 = 59 * RC_MINUTE;
    for (int i = 0; i < 1000; i++) {
        REQUIRE_OK(ratecore_policy_check(policy, &r, t0, 1, RC_WALL_AT_ZERO + t0, headers,
                                         sizeof headers, body, sizeof body, &result));
        CHECK(result.decision.allowed);
    }
    uint64_t at = t0 + RC_HOUR - 42 * RC_SECOND;
    REQUIRE_OK(ratecore_policy_check(policy, &r, at, 1, RC_WALL_AT_ZERO + at, headers, sizeof headers,
                                     body, sizeof body, &result));
    CHECK_TEXT(headers, result.headers_len,
               "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 42\r\n");
    CHECK_TEXT(body, result.body_len,
               "{\n    \"type\": \"https://api.ev.energy/v2/problems/rate-limit-exceeded/\",\n"
               "    \"status\": 429,\n    \"title\": \"Too many requests\",\n"
               "    \"detail\": \"Request was rate limited. Try again in 42 seconds\"\n}\n");
    CHECK(strcmp(result.content_type, "application/problem+json") == 0);
    ratecore_policy_free(policy);
}

static void malformed_configs(void) {
    static const char zero_limit[] =
        "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 0\nperiod = \"1s\"\n";
    ratecore_policy *policy = (ratecore_policy *)0x1;
    char error[200];
    CHECK_STATUS(ratecore_policy_from_toml(rc_bytes(zero_limit), strlen(zero_limit),
                                           rc_bytes("bad.toml"), 8, error, sizeof error, &policy),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(error, "bad.toml:5:9: rule[0].limit[0].limit: limit must be at least 1") == 0);
    CHECK(policy == (ratecore_policy *)0x1);
    /* A short error buffer gets a truncated, NUL-terminated message. */
    char small[9];
    CHECK_STATUS(ratecore_policy_from_toml(rc_bytes(zero_limit), strlen(zero_limit),
                                           rc_bytes("bad.toml"), 8, small, sizeof small, &policy),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(small, "bad.toml") == 0);
    CHECK_STATUS(ratecore_policy_from_file("examples/policies/missing.toml", NULL, 0, &policy),
                 RATECORE_STATUS_CONFIG_UNREADABLE);
    CHECK_STATUS(ratecore_policy_from_file(NULL, NULL, 0, &policy), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_from_toml(rc_bytes("\xff"), 1, NULL, 0, NULL, 0, &policy),
                 RATECORE_STATUS_INVALID_UTF8);
    CHECK_STATUS(ratecore_policy_from_toml(NULL, 3, NULL, 0, NULL, 0, &policy),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_policy_from_toml(rc_bytes(zero_limit), strlen(zero_limit), NULL, 0, NULL,
                                           0, NULL),
                 RATECORE_STATUS_NULL_POINTER);
}

static void render_functions(void) {
    ratecore_decision d = {false, 300, 0, 85 * RC_SECOND, 85 * RC_SECOND};
    uint8_t buf[256];
    size_t n = 0;
    REQUIRE_OK(ratecore_render_headers(RATECORE_HEADER_STYLE_UPHOLD, &d, NULL, 0,
                                       (UINT64_C(1422288284) - 85) * RC_SECOND, buf, sizeof buf, &n));
    CHECK_TEXT(buf, n,
               "X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 0\r\n"
               "X-RateLimit-Reset: 1422288284\r\nRetry-After: 85\r\n");
    /* Too small: BUFFER_TOO_SMALL and the exact length needed. */
    size_t needed = 0;
    CHECK_STATUS(ratecore_render_headers(RATECORE_HEADER_STYLE_UPHOLD, &d, NULL, 0,
                                         (UINT64_C(1422288284) - 85) * RC_SECOND, buf, 10, &needed),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ_U64(needed, n);
    CHECK_STATUS(ratecore_render_headers(RATECORE_HEADER_STYLE_UPHOLD, &d, NULL, 0, 0, NULL, 0,
                                         &needed),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ_U64(needed, strlen("X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 85\r\nRetry-After: 85\r\n"));
    ratecore_quota_report reports[2] = {
        {rc_bytes("burst"), 5, RC_SECOND, {false, 5, 0, RC_SECOND, RC_SECOND / 2}},
        {rc_bytes("minute"), 6, RC_MINUTE, {true, 20, 14, RC_MINUTE, 0}},
    };
    ratecore_decision burst = reports[0].decision;
    REQUIRE_OK(ratecore_render_headers(RATECORE_HEADER_STYLE_IETF, &burst, reports, 2, 0, buf,
                                       sizeof buf, &n));
    CHECK_TEXT(buf, n,
               "RateLimit-Policy: \"burst\";q=5;w=1, \"minute\";q=20;w=60\r\n"
               "RateLimit: \"burst\";r=0;t=1, \"minute\";r=14;t=60\r\nRetry-After: 1\r\n");
    CHECK_STATUS(ratecore_render_headers(99, &d, NULL, 0, 0, buf, sizeof buf, &n),
                 RATECORE_STATUS_UNKNOWN_HEADER_STYLE);
    CHECK_STATUS(ratecore_render_headers(RATECORE_HEADER_STYLE_IETF, &d, reports, 17, 0, buf,
                                         sizeof buf, &n),
                 RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_render_headers(RATECORE_HEADER_STYLE_IETF, NULL, NULL, 0, 0, buf,
                                         sizeof buf, &n),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_render_headers(RATECORE_HEADER_STYLE_IETF, &d, NULL, 0, 0, buf,
                                         sizeof buf, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    ratecore_decision switch_d = {false, 20, 0, 41 * RC_SECOND, 41 * RC_SECOND};
    static const char subject[] = "Save readings API interface";
    REQUIRE_OK(ratecore_render_text_body(&switch_d, rc_bytes(subject), strlen(subject), RC_MINUTE,
                                         buf, sizeof buf, &n));
    CHECK_TEXT(buf, n,
               "Save readings API interface quota exceeded. Maximum allowed is 20 requests per "
               "1m. Please try again in 41 second.");
    static const char title[] = "Too many requests";
    REQUIRE_OK(ratecore_render_problem_json(&switch_d, NULL, 0, rc_bytes(title), strlen(title), buf,
                                            sizeof buf, &n));
    CHECK_TEXT(buf, n,
               "{\n    \"type\": \"\",\n    \"status\": 429,\n    \"title\": \"Too many requests\",\n"
               "    \"detail\": \"Request was rate limited. Try again in 41 seconds\"\n}\n");
    CHECK_STATUS(ratecore_render_problem_json(&switch_d, rc_bytes("\xc3"), 1, NULL, 0, buf,
                                              sizeof buf, &n),
                 RATECORE_STATUS_INVALID_UTF8);
}

int main(void) {
    switch_policy();
    evenergy_policy_from_string();
    malformed_configs();
    render_functions();
    return rc_finish("test_policy");
}
