/*
 * Replacing a policy in place through the C ABI: unchanged limits keep their state and
 * counters, changed ones start afresh (and so does the state of an unchanged limit sharing
 * their table), a reload drops the overrides set at run time, a bad configuration leaves
 * the version in force answering; the report as a caller built against the first header
 * sees it; limit names copied into caller memory; the Prometheus text export; reloads
 * racing checks and metrics reads on other threads; bad arguments (nothing written,
 * nothing changed).
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

/* One limit: 5 per minute per user. Line 8 is the limit. */
#define API_RULE(limit)                                                                 \
    "[[rule]]\nname = \"api\"\n"                                                        \
    "[[rule.limit]]\nname = \"per-user\"\nkey = [\"user\"]\non_missing = \"deny\"\n"   \
    "algorithm = \"fixed_window\"\nlimit = " limit "\nperiod = \"1m\"\n"
#define SEARCH_RULE                                                                     \
    "[[rule]]\nname = \"search\"\nroute = \"GET /search\"\n"                            \
    "[[rule.limit]]\nname = \"per-ip\"\nkey = [\"client_ip\"]\non_missing = \"deny\"\n" \
    "algorithm = \"gcra\"\nlimit = 2\nperiod = \"1s\"\n"

static const char base_toml[] = API_RULE("5");
static const char with_search_toml[] = API_RULE("5") SEARCH_RULE;

RC_POISONED_TYPE(ratecore_reload_report, poisoned_report, report_untouched)

/* Reloads from text with a 256-byte error buffer, into `error`. */
static ratecore_status reload(const ratecore_policy *policy, const char *toml, const char *origin,
                              char *error, ratecore_reload_report *report) {
    *report = poisoned_report();
    return ratecore_policy_reload_toml(policy, rc_bytes(toml), strlen(toml),
                                       origin ? rc_bytes(origin) : NULL,
                                       origin ? strlen(origin) : 0, error, 256, report);
}

/* kept: limits whose table (their keys' state) was handed over; fresh: limits that start
 * with no state; dropped: old limits with no identical new one; o: overrides dropped. */
#define CHECK_REPORT(report, k, f, d, o)                  \
    do {                                                  \
        CHECK_EQ_U64((report).size, sizeof(report));      \
        CHECK_EQ_U64((report).kept, k);                   \
        CHECK_EQ_U64((report).fresh, f);                  \
        CHECK_EQ_U64((report).dropped, d);                \
        CHECK_EQ_U64((report).overrides_dropped, o);      \
    } while (0)

/* Checks `n` requests by `user` on GET /things at `now`; returns how many were admitted. */
static unsigned admitted(const ratecore_policy *policy, const char *user, unsigned n,
                         uint64_t now) {
    ratecore_attribute a;
    memset(&a, 0, sizeof a);
    a.name = rc_bytes("user");
    a.name_len = 4;
    a.value = rc_bytes(user);
    a.value_len = strlen(user);
    ratecore_http_request r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    r.method = rc_bytes("GET");
    r.method_len = 3;
    r.path = rc_bytes("/things");
    r.path_len = 7;
    r.attributes = &a;
    r.attribute_count = 1;
    unsigned count = 0;
    for (unsigned i = 0; i < n; i++) {
        ratecore_policy_outcome o;
        memset(&o, 0, sizeof o);
        o.size = sizeof o;
        if (ratecore_policy_check_http(policy, &r, now, 1, 0, NULL, 0, NULL, 0, &o) !=
            RATECORE_STATUS_OK) {
            fprintf(stderr, "check failed\n");
            rc_failures++;
        } else if (o.decision.allowed) {
            count++;
        }
    }
    return count;
}

/* Reads limit `index` with a 128-byte text buffer: its status, counters, names. */
typedef struct {
    ratecore_status status;
    ratecore_limit_metrics m;
    char rule[128], name[128];
} limit_view;

static limit_view read_limit(const ratecore_policy *policy, size_t index) {
    limit_view v;
    uint8_t text[128];
    memset(&v, 0, sizeof v);
    v.m.size = sizeof v.m;
    v.status = ratecore_policy_limit_metrics(policy, index, text, sizeof text, &v.m);
    if (v.status == RATECORE_STATUS_OK && v.m.rule_len + v.m.name_len <= sizeof text) {
        memcpy(v.rule, text, v.m.rule_len);
        memcpy(v.name, text + v.m.rule_len, v.m.name_len);
    }
    return v;
}

static void check_limit(const ratecore_policy *policy, size_t index, const char *rule,
                        const char *name, uint64_t allowed, uint64_t denied, int line) {
    limit_view v = read_limit(policy, index);
    if (v.status != RATECORE_STATUS_OK || strcmp(v.rule, rule) != 0 ||
        strcmp(v.name, name) != 0 || v.m.allowed != allowed || v.m.denied != denied) {
        fprintf(stderr,
                "%s:%d: limit %zu: status %u, %s/%s allowed=%" PRIu64 " denied=%" PRIu64
                "; expected %s/%s allowed=%" PRIu64 " denied=%" PRIu64 "\n",
                __FILE__, line, index, (unsigned)v.status, v.rule, v.name, v.m.allowed,
                v.m.denied, rule, name, allowed, denied);
        rc_failures++;
    }
}
#define CHECK_LIMIT(policy, index, rule, name, allowed, denied) \
    check_limit(policy, index, rule, name, allowed, denied, __LINE__)

static size_t limit_count(const ratecore_policy *policy) {
    size_t count = 0;
    REQUIRE_OK(ratecore_policy_limit_count(policy, &count));
    return count;
}

static void unchanged_limits_keep_their_state(void) {
    ratecore_policy *policy = rc_policy_toml(base_toml);
    char error[256];
    ratecore_reload_report report;
    CHECK_EQ_U64(admitted(policy, "alice", 3, 0), 3);

    /* Same limit plus a new rule: per-user is kept, so alice has 2 requests left. */
    REQUIRE_OK(reload(policy, with_search_toml, "next.toml", error, &report));
    CHECK_REPORT(report, 1, 1, 0, 0);
    CHECK_EQ_U64(limit_count(policy), 2);
    CHECK_EQ_U64(admitted(policy, "alice", 5, 0), 2);
    CHECK_EQ_U64(admitted(policy, "bob", 6, 0), 5);
    CHECK_LIMIT(policy, 0, "api", "per-user", 10, 4);
    CHECK_LIMIT(policy, 1, "search", "per-ip", 0, 0);

    /* Back: search is dropped, per-user still kept. */
    REQUIRE_OK(reload(policy, base_toml, NULL, error, &report));
    CHECK_REPORT(report, 1, 0, 1, 0);
    CHECK_EQ_U64(limit_count(policy), 1);
    CHECK_EQ_U64(admitted(policy, "alice", 1, 0), 0);
    CHECK_LIMIT(policy, 0, "api", "per-user", 10, 5);
    CHECK_STATUS(read_limit(policy, 1).status, RATECORE_STATUS_INVALID_ARGUMENT);

    /* A changed quota is a new limit: state and counters start afresh. */
    static const char seven[] = API_RULE("7");
    REQUIRE_OK(reload(policy, seven, NULL, error, &report));
    CHECK_REPORT(report, 0, 1, 1, 0);
    CHECK_EQ_U64(admitted(policy, "alice", 8, 0), 7);
    CHECK_LIMIT(policy, 0, "api", "per-user", 7, 1);

    /* The empty policy limits nothing. */
    report = poisoned_report();
    REQUIRE_OK(ratecore_policy_reload_toml(policy, NULL, 0, NULL, 0, NULL, 0, &report));
    CHECK_REPORT(report, 0, 0, 1, 0);
    CHECK_EQ_U64(limit_count(policy), 0);
    CHECK_EQ_U64(admitted(policy, "alice", 3, 0), 3);
    ratecore_policy_free(policy);
}

/* Two limits of one rule on one key: they share a table. */
#define PAIR(b)                                                                           \
    "[[rule]]\nname = \"r\"\n"                                                            \
    "[[rule.limit]]\nname = \"a\"\nkey = [\"user\"]\non_missing = \"skip\"\n"               \
    "algorithm = \"fixed_window\"\nlimit = 10\nperiod = \"1h\"\n"                          \
    "[[rule.limit]]\nname = \"b\"\nkey = [\"user\"]\non_missing = \"skip\"\n"               \
    "algorithm = \"fixed_window\"\nlimit = " b "\nperiod = \"1h\"\n"

/* When b changes, the table a shares with it starts afresh: a's state is lost (alice
 * gets her 10 again) but not its counters, and the report counts both as fresh, not a as
 * kept; the old b is dropped. */
static void a_changed_limit_restarts_its_table(void) {
    ratecore_policy *policy = rc_policy_toml(PAIR("20"));
    char error[256];
    ratecore_reload_report report;
    CHECK_EQ_U64(admitted(policy, "alice", 3, 0), 3);
    REQUIRE_OK(reload(policy, PAIR("20"), NULL, error, &report));
    CHECK_REPORT(report, 2, 0, 0, 0);
    CHECK_EQ_U64(admitted(policy, "alice", 1, 0), 1);

    REQUIRE_OK(reload(policy, PAIR("30"), NULL, error, &report));
    CHECK_REPORT(report, 0, 2, 1, 0);
    CHECK_EQ_U64(limit_count(policy), 2);
    CHECK_EQ_U64(admitted(policy, "alice", 20, 0), 10);
    /* a: 4 before and 10 after admitted, 10 denied; b (new) said yes to all 20. */
    CHECK_LIMIT(policy, 0, "r", "a", 14, 10);
    CHECK_LIMIT(policy, 1, "r", "b", 20, 0);

    /* Back to 20: b changes again, and again a's table starts afresh. */
    REQUIRE_OK(reload(policy, PAIR("20"), NULL, error, &report));
    CHECK_REPORT(report, 0, 2, 1, 0);
    CHECK_EQ_U64(admitted(policy, "alice", 11, 0), 10);
    /* Dropping b leaves a alone on its key: a new table for it. */
    static const char only_a[] =
        "[[rule]]\nname = \"r\"\n"
        "[[rule.limit]]\nname = \"a\"\nkey = [\"user\"]\non_missing = \"skip\"\n"
        "algorithm = \"fixed_window\"\nlimit = 10\nperiod = \"1h\"\n";
    REQUIRE_OK(reload(policy, only_a, NULL, error, &report));
    CHECK_REPORT(report, 0, 1, 1, 0);
    CHECK_LIMIT(policy, 0, "r", "a", 24, 11);
    ratecore_policy_free(policy);
}

/* A reload replaces the overrides with the configuration's: those set at run time, and
 * those removed from the file, are counted as dropped. */
static void a_reload_drops_run_time_overrides(void) {
    static const char with_vip[] =
        API_RULE("5") "[[rule.limit.override]]\nattribute = \"user\"\nvalue = \"vip\"\n"
                      "limit = 8\n";
    ratecore_policy *policy = rc_policy_toml(with_vip);
    char error[256];
    ratecore_reload_report report;
    ratecore_override_quota q;
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.limit = 7;
    REQUIRE_OK(ratecore_policy_set_override(policy, rc_bytes("api"), 3, rc_bytes("per-user"), 8,
                                            rc_bytes("user"), 4, rc_bytes("bob"), 3, &q, error,
                                            sizeof error));
    q.limit = 0;
    q.unlimited = true;
    REQUIRE_OK(ratecore_policy_set_override(policy, rc_bytes("api"), 3, rc_bytes("per-user"), 8,
                                            rc_bytes("user"), 4, rc_bytes("carol"), 5, &q, error,
                                            sizeof error));
    CHECK_EQ_U64(admitted(policy, "bob", 3, 0), 3);
    CHECK_EQ_U64(admitted(policy, "vip", 6, 0), 6);

    /* The same file: the limit is kept, with its state; bob and carol's overrides go. */
    REQUIRE_OK(reload(policy, with_vip, NULL, error, &report));
    CHECK_REPORT(report, 1, 0, 0, 2);
    uint8_t text[256];
    size_t len = 0;
    REQUIRE_OK(ratecore_policy_overrides(policy, text, sizeof text, &len));
    static const char vip_line[] = "api\tper-user\tuser\tvip\t8\t0\n";
    CHECK(len == strlen(vip_line) && memcmp(text, vip_line, len) == 0);
    CHECK_EQ_U64(admitted(policy, "bob", 5, 0), 2);
    CHECK_EQ_U64(admitted(policy, "carol", 6, 0), 5);
    CHECK_EQ_U64(admitted(policy, "vip", 5, 0), 2);

    /* Without the file's override: vip's is dropped, the limit still kept. */
    REQUIRE_OK(reload(policy, base_toml, NULL, error, &report));
    CHECK_REPORT(report, 1, 0, 0, 1);
    REQUIRE_OK(ratecore_policy_overrides(policy, text, sizeof text, &len));
    CHECK_EQ_U64(len, 0);
    CHECK_EQ_U64(admitted(policy, "vip", 1, 0), 0);
    ratecore_policy_free(policy);
}

/* A caller built against the first header passes the report's first version (up to
 * `dropped`): it gets exactly that, and its size says so. */
static void a_first_version_report(void) {
    ratecore_policy *policy = rc_policy_toml(base_toml);
    const size_t first = offsetof(ratecore_reload_report, overrides_dropped);
    for (size_t extra = 0; extra < sizeof(size_t); extra += 4) {
        ratecore_reload_report report = poisoned_report();
        report.size = first + extra;
        REQUIRE_OK(ratecore_policy_reload_toml(policy, rc_bytes(with_search_toml),
                                               strlen(with_search_toml), NULL, 0, NULL, 0,
                                               &report));
        CHECK_EQ_U64(report.size, first);
        /* The search rule is new the first time round, kept the second. */
        CHECK_EQ_U64(report.kept, extra ? 2 : 1);
        CHECK_EQ_U64(report.fresh, extra ? 0 : 1);
        CHECK_EQ_U64(report.dropped, 0);
        CHECK_EQ_U64(report.overrides_dropped, poisoned_report().overrides_dropped);
    }
    ratecore_policy_free(policy);
}

static void bad_configurations_leave_the_policy_in_force(void) {
    ratecore_policy *policy = rc_policy_toml(base_toml);
    char error[256];
    ratecore_reload_report report;
    CHECK_EQ_U64(admitted(policy, "alice", 2, 0), 2);

    static const char zero[] = API_RULE("0");
    CHECK_STATUS(reload(policy, zero, "reload.toml", error, &report),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(error, "reload.toml:8:9: rule[0].limit[0].limit: limit must be at least 1") == 0);
    CHECK(report_untouched(&report));
    CHECK_STATUS(reload(policy, "[[rule]\n", "reload.toml", error, &report),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(error, "reload.toml:1:8: unclosed array table, expected `]`") == 0);
    CHECK(report_untouched(&report));
    static const char twice[] = API_RULE("5") API_RULE("5");
    CHECK_STATUS(reload(policy, twice, NULL, error, &report), RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(error, "<string>:11:8: rule[1].name: duplicate rule name \"api\"") == 0);
    CHECK(report_untouched(&report));
    /* A short error buffer gets a truncated, NUL-terminated message; none at all is fine. */
    char small[7];
    report = poisoned_report();
    CHECK_STATUS(ratecore_policy_reload_toml(policy, rc_bytes(zero), strlen(zero),
                                             rc_bytes("reload.toml"), 11, small, sizeof small,
                                             &report),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strcmp(small, "reload") == 0);
    CHECK_STATUS(ratecore_policy_reload_toml(policy, rc_bytes(zero), strlen(zero), NULL, 0, NULL,
                                             0, &report),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(report_untouched(&report));

    /* Files: a missing one is unreadable; a TOML file that is not a policy is invalid. */
    CHECK_STATUS(ratecore_policy_reload_file(policy, "tests/c/no-such-policy.toml", error,
                                             sizeof error, &report),
                 RATECORE_STATUS_CONFIG_UNREADABLE);
    static const char unreadable[] = "tests/c/no-such-policy.toml:0:0: cannot read: ";
    CHECK(strncmp(error, unreadable, strlen(unreadable)) == 0);
    CHECK(report_untouched(&report));
    CHECK_STATUS(ratecore_policy_reload_file(policy, "ffi/cbindgen.toml", error, sizeof error,
                                             &report),
                 RATECORE_STATUS_INVALID_CONFIG);
    CHECK(strncmp(error, "ffi/cbindgen.toml:", strlen("ffi/cbindgen.toml:")) == 0);
    CHECK(report_untouched(&report));

    /* The version in force answers as before: alice has 3 requests left. */
    CHECK_EQ_U64(limit_count(policy), 1);
    CHECK_EQ_U64(admitted(policy, "alice", 4, 0), 3);
    CHECK_LIMIT(policy, 0, "api", "per-user", 5, 1);
    ratecore_policy_free(policy);
}

static void reload_from_a_file_renames_the_limits(void) {
    ratecore_policy *policy = rc_policy_toml(with_search_toml);
    CHECK_EQ_U64(admitted(policy, "alice", 2, 0), 2);
    char error[256] = "untouched";
    ratecore_reload_report report = poisoned_report();
    REQUIRE_OK(ratecore_policy_reload_file(policy, "examples/policies/switch.toml", error,
                                           sizeof error, &report));
    CHECK(strcmp(error, "untouched") == 0);
    CHECK_REPORT(report, 0, 2, 2, 0);
    /* The names are the new version's, copied: none of the old ones is left. */
    size_t count = limit_count(policy);
    CHECK_EQ_U64(count, 2);
    CHECK_LIMIT(policy, 0, "save-readings", "per-second", 0, 0);
    CHECK_LIMIT(policy, 1, "save-readings", "per-minute", 0, 0);
    for (size_t i = 0; i < count; i++) {
        limit_view v = read_limit(policy, i);
        CHECK(strcmp(v.rule, "api") != 0 && strcmp(v.rule, "search") != 0);
        CHECK(strcmp(v.name, "per-user") != 0 && strcmp(v.name, "per-ip") != 0);
    }
    /* Names read before a reload stay the caller's: freeing the old version frees
     * nothing the caller holds. */
    limit_view before = read_limit(policy, 1);
    REQUIRE_OK(reload(policy, base_toml, NULL, error, &report));
    CHECK_REPORT(report, 0, 1, 2, 0);
    CHECK(strcmp(before.rule, "save-readings") == 0 && strcmp(before.name, "per-minute") == 0);
    CHECK_LIMIT(policy, 0, "api", "per-user", 0, 0);
    ratecore_policy_free(policy);
}

static void metrics_text_buffer(void) {
    ratecore_policy *policy = rc_policy_toml(base_toml);
    CHECK_EQ_U64(admitted(policy, "alice", 6, 0), 5);
    const size_t needed = strlen("api") + strlen("per-user");
    uint8_t text[32];
    ratecore_limit_metrics m;

    /* One byte short, and no buffer at all: BUFFER_TOO_SMALL, the lengths and counters
     * written, the text not. */
    for (int round = 0; round < 2; round++) {
        memset(text, 0x5a, sizeof text);
        memset(&m, 0x5a, sizeof m);
        m.size = sizeof m;
        CHECK_STATUS(ratecore_policy_limit_metrics(policy, 0, round ? NULL : text,
                                                   round ? 0 : needed - 1, &m),
                     RATECORE_STATUS_BUFFER_TOO_SMALL);
        CHECK_EQ_U64(m.size, sizeof m);
        CHECK_EQ_U64(m.rule_len, 3);
        CHECK_EQ_U64(m.name_len, 8);
        CHECK(!m.shadow);
        CHECK_EQ_U64(m.allowed, 5);
        CHECK_EQ_U64(m.denied, 1);
        CHECK_EQ_U64(m.shadow_denied, 0);
        CHECK_EQ_U64(m.skipped, 0);
        for (size_t i = 0; i < sizeof text; i++) {
            if (text[i] != 0x5a) {
                fprintf(stderr, "text byte %zu written on BUFFER_TOO_SMALL\n", i);
                rc_failures++;
                break;
            }
        }
    }

    /* Exactly enough: the rule name, then the limit name, and nothing after. */
    memset(text, 0x5a, sizeof text);
    REQUIRE_OK(ratecore_policy_limit_metrics(policy, 0, text, needed, &m));
    CHECK(memcmp(text, "apiper-user", needed) == 0);
    CHECK_EQ_U64(text[needed], 0x5a);

    /* A struct from a newer header: only this library's fields are written. */
    RC_NEWER(ratecore_limit_metrics) newer;
    RC_NEWER_OUTPUT(newer);
    REQUIRE_OK(ratecore_policy_limit_metrics(policy, 0, text, sizeof text, &newer.value));
    CHECK_EQ_U64(newer.value.size, sizeof(ratecore_limit_metrics));
    CHECK_EQ_U64(newer.value.allowed, 5);
    CHECK_EQ_U64(newer.newer_field, RC_NEWER_POISON);
    ratecore_policy_free(policy);
}

static void render_metrics(void) {
    /* A rule name with a backslash and a limit name with quotes: label values escaped. */
    static const char toml[] =
        "[[rule]]\nname = \"api\\\\v1\"\n"
        "[[rule.limit]]\nname = \"per-user\"\nkey = [\"user\"]\non_missing = \"skip\"\n"
        "algorithm = \"fixed_window\"\nlimit = 2\nperiod = \"1m\"\n"
        "[[rule.limit]]\nname = \"audit \\\"q\\\"\"\nkey = [\"user\"]\non_missing = \"skip\"\n"
        "algorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1m\"\nshadow = true\n";
    static const char expected[] =
        "# HELP ratecore_policy_requests_total Requests each policy limit applied to, by what "
        "the limit did.\n"
        "# TYPE ratecore_policy_requests_total counter\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"per-user\",shadow=\"false\","
        "outcome=\"allowed\"} 2\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"per-user\",shadow=\"false\","
        "outcome=\"denied\"} 1\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"per-user\",shadow=\"false\","
        "outcome=\"shadow_denied\"} 0\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"per-user\",shadow=\"false\","
        "outcome=\"skipped\"} 0\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"audit \\\"q\\\"\","
        "shadow=\"true\",outcome=\"allowed\"} 1\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"audit \\\"q\\\"\","
        "shadow=\"true\",outcome=\"denied\"} 0\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"audit \\\"q\\\"\","
        "shadow=\"true\",outcome=\"shadow_denied\"} 2\n"
        "ratecore_policy_requests_total{rule=\"api\\\\v1\",limit=\"audit \\\"q\\\"\","
        "shadow=\"true\",outcome=\"skipped\"} 0\n";
    ratecore_policy *policy = rc_policy_toml(toml);
    CHECK_EQ_U64(admitted(policy, "alice", 3, 0), 2);
    const size_t len = strlen(expected);
    uint8_t out[2048];
    size_t written = 0;
    memset(out, 0x5a, sizeof out);
    REQUIRE_OK(ratecore_policy_render_metrics(policy, out, sizeof out, &written));
    CHECK_EQ_U64(written, len);
    if (written != len || memcmp(out, expected, len) != 0) {
        fprintf(stderr, "got:\n%.*s\nexpected:\n%s\n", (int)(written < sizeof out ? written : 0),
                (const char *)out, expected);
        rc_failures++;
    }
    /* Exactly enough is enough; one byte short, or no buffer, reports the length needed;
     * bad arguments report nothing. */
    written = 0;
    REQUIRE_OK(ratecore_policy_render_metrics(policy, out, len, &written));
    CHECK_EQ_U64(written, len);
    CHECK_TEXT_BUFFERS(ratecore_policy_render_metrics, policy, out, len, 0);
    ratecore_policy_free(policy);
}

static void bad_arguments(void) {
    ratecore_policy *policy = rc_policy_toml(base_toml);
    CHECK_EQ_U64(admitted(policy, "alice", 1, 0), 1);
    char error[64], untouched_error[64];
    memset(error, 0x5a, sizeof error);
    memset(untouched_error, 0x5a, sizeof untouched_error);
    ratecore_reload_report report = poisoned_report();
    const uint8_t *t = rc_bytes(with_search_toml);
    const size_t n = strlen(with_search_toml);

#define CHECK_REJECTED(call, expected)                                   \
    do {                                                                 \
        CHECK_STATUS(call, expected);                                    \
        CHECK(report_untouched(&report));                                \
        CHECK(memcmp(error, untouched_error, sizeof error) == 0);        \
    } while (0)
#define RELOAD(policy, toml, len, origin, origin_len, out) \
    ratecore_policy_reload_toml(policy, toml, len, origin, origin_len, error, sizeof error, out)

    CHECK_REJECTED(RELOAD(NULL, t, n, NULL, 0, &report), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(RELOAD(policy, t, n, NULL, 0, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(RELOAD(policy, NULL, n, NULL, 0, &report), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(RELOAD(policy, t, n, NULL, 4, &report), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(RELOAD(policy, t, SIZE_MAX, NULL, 0, &report),
                   RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_REJECTED(RELOAD(policy, rc_bytes("name = \"\xff\"\n"), 11, NULL, 0, &report),
                   RATECORE_STATUS_INVALID_UTF8);
    CHECK_REJECTED(RELOAD(policy, t, n, rc_bytes("\xfe"), 1, &report),
                   RATECORE_STATUS_INVALID_UTF8);
    /* A malformed text with a bad report pointer: the pointer is refused first. */
    CHECK_REJECTED(RELOAD(policy, rc_bytes("[[rule]\n"), 8, NULL, 0, NULL),
                   RATECORE_STATUS_NULL_POINTER);
    /* Below the first version of the report (which ended with `dropped`). */
    report.size = offsetof(ratecore_reload_report, overrides_dropped) - 1;
    CHECK_STATUS(RELOAD(policy, t, n, NULL, 0, &report), RATECORE_STATUS_INVALID_ARGUMENT);
    report.size = 0;
    CHECK_STATUS(RELOAD(policy, t, n, NULL, 0, &report), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_EQ_U64(report.size, 0);
    report = poisoned_report();

#define RELOAD_FILE(policy, path, out) \
    ratecore_policy_reload_file(policy, path, error, sizeof error, out)
    const char *file = "examples/policies/switch.toml";
    CHECK_REJECTED(RELOAD_FILE(NULL, file, &report), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(RELOAD_FILE(policy, NULL, &report), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(RELOAD_FILE(policy, file, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_REJECTED(RELOAD_FILE(policy, "examples/\xff.toml", &report),
                   RATECORE_STATUS_INVALID_UTF8);
    report.size = 8;
    CHECK_STATUS(RELOAD_FILE(policy, file, &report), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_EQ_U64(report.size, 8);
    report = poisoned_report();
#undef RELOAD_FILE
#undef RELOAD
#undef CHECK_REJECTED

    /* Nothing changed: the same single limit, alice's one request still counted. */
    CHECK_EQ_U64(limit_count(policy), 1);
    CHECK_LIMIT(policy, 0, "api", "per-user", 1, 0);
    CHECK_EQ_U64(admitted(policy, "alice", 5, 0), 4);

    /* A report from a newer header: only this library's fields are written. */
    RC_NEWER(ratecore_reload_report) newer;
    RC_NEWER_OUTPUT(newer);
    REQUIRE_OK(ratecore_policy_reload_toml(policy, t, n, NULL, 0, NULL, 0, &newer.value));
    CHECK_REPORT(newer.value, 1, 1, 0, 0);
    CHECK_EQ_U64(newer.newer_field, RC_NEWER_POISON);
    ratecore_policy_free(policy);
}

/* Reloads racing checks and metrics reads. The per-user limit (100 a minute) is in both
 * versions the main thread alternates between, so its state carries over every reload
 * and exactly 100 of the threads' requests are admitted at a frozen clock. */
#define ATTEMPTS 100
#define RACE_TOML API_RULE("100")

static void race_attempt(rc_race_job *job) {
    uint8_t out[2048];
    job->admitted += admitted(job->policy, "alice", 1, 0);
    limit_view v = read_limit(job->policy, 0);
    if (v.status != RATECORE_STATUS_OK || strcmp(v.rule, "api") != 0 ||
        strcmp(v.name, "per-user") != 0) {
        job->errors++;
    }
    /* Index 1 is search/per-ip, or absent, depending on the version in force. */
    v = read_limit(job->policy, 1);
    if (v.status == RATECORE_STATUS_OK
            ? strcmp(v.rule, "search") != 0 || strcmp(v.name, "per-ip") != 0
            : v.status != RATECORE_STATUS_INVALID_ARGUMENT) {
        job->errors++;
    }
    size_t written = 0;
    if (ratecore_policy_render_metrics(job->policy, out, sizeof out, &written) !=
            RATECORE_STATUS_OK ||
        written < 100) {
        job->errors++;
    }
}

static void reloads_race_checks(void) {
    ratecore_policy *policy = rc_policy_toml(RACE_TOML);
    rc_race race;
    rc_race_start(&race, policy, race_attempt, ATTEMPTS);
    /* Reload for as long as the threads run (and at least 20 times). */
    static const char with_search[] = RACE_TOML SEARCH_RULE;
    char error[256];
    unsigned reloads = 0, reloads_ok = 0;
    for (; reloads < 20 || rc_race_running(&race); reloads++) {
        ratecore_reload_report report;
        bool back = reloads % 2;
        if (reload(policy, back ? RACE_TOML : with_search, NULL, error, &report) ==
                RATECORE_STATUS_OK &&
            report.kept == 1 && report.fresh == (back ? 0u : 1u) &&
            report.dropped == (back ? 1u : 0u)) {
            reloads_ok++;
        }
    }
    unsigned total = rc_race_finish(&race);
    CHECK_EQ_U64(reloads_ok, reloads);
    CHECK_EQ_U64(total, 100);
    CHECK_LIMIT(policy, 0, "api", "per-user", 100, RC_RACE_THREADS * ATTEMPTS - 100);
    ratecore_policy_free(policy);
}

int main(void) {
    unchanged_limits_keep_their_state();
    a_changed_limit_restarts_its_table();
    a_reload_drops_run_time_overrides();
    a_first_version_report();
    bad_configurations_leave_the_policy_in_force();
    reload_from_a_file_renames_the_limits();
    metrics_text_buffer();
    render_metrics();
    bad_arguments();
    reloads_race_checks();
    return rc_finish("test_policy_reload");
}
