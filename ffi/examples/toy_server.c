/*
 * toy_server: a request loop limited by ratecore, printing every decision.
 *
 * Three clients send requests to a toy server over 3 simulated seconds; "mallory" floods.
 * Each request is checked against
 *   - a per-client table: 5 per second (GCRA, bursts of 5) AND 12 per 10 s (strict
 *     sliding window), and
 *   - a server-wide limiter: 20 per second (fixed window),
 * and answered 200 or 429 with the decision's fields (HTTP header rendering comes with the
 * policy API; until then we print the numbers a server would put in them).
 *
 * Time is simulated so the output is reproducible; a real server passes
 * clock_gettime(CLOCK_MONOTONIC) as nanoseconds (see monotonic_ns below).
 *
 * Build: make -C ffi/examples (or see ffi/README.md for the cc line).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ratecore.h"

#define SECOND UINT64_C(1000000000)
#define MS (SECOND / 1000)

/* What a real server would pass as now_ns. */
static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SECOND + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, ratecore_status status) {
    fprintf(stderr, "toy_server: %s: %s\n", what, ratecore_status_message(status));
    exit(1);
}

static double seconds(uint64_t ns) {
    return ns == RATECORE_NEVER ? -1.0 : (double)ns / (double)SECOND;
}

struct client {
    const char *name;
    uint64_t every_ms; /* one request every this many ms */
    unsigned admitted, denied;
};

int main(void) {
    printf("ratecore %s (header %s); CLOCK_MONOTONIC now %" PRIu64 " ns (unused: time is simulated)\n",
           ratecore_version(), RATECORE_VERSION, monotonic_ns());
    if (strcmp(ratecore_version(), RATECORE_VERSION) != 0) {
        fprintf(stderr, "toy_server: header and library versions differ\n");
        return 1;
    }

    ratecore_quota per_client[2];
    memset(per_client, 0, sizeof per_client);
    per_client[0].algorithm = RATECORE_ALGORITHM_GCRA;
    per_client[0].limit = 5;
    per_client[0].period_ns = SECOND;
    per_client[1].algorithm = RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT;
    per_client[1].limit = 12;
    per_client[1].period_ns = 10 * SECOND;
    per_client[1].sub_windows = 10;
    ratecore_table *clients = NULL;
    ratecore_status status =
        ratecore_table_new(per_client, 2, 1024, RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST, &clients);
    if (status != RATECORE_STATUS_OK) die("ratecore_table_new", status);

    ratecore_quota global;
    memset(&global, 0, sizeof global);
    global.algorithm = RATECORE_ALGORITHM_FIXED_WINDOW;
    global.limit = 20;
    global.period_ns = SECOND;
    ratecore_limiter *server = NULL;
    status = ratecore_limiter_new(&global, 1, &server);
    if (status != RATECORE_STATUS_OK) die("ratecore_limiter_new", status);

    struct client people[] = {{"alice", 400, 0, 0}, {"bob", 250, 0, 0}, {"mallory", 50, 0, 0}};
    const size_t n = sizeof people / sizeof people[0];
    const uint64_t start = 1000 * SECOND; /* any monotonic origin */

    for (uint64_t t = 0; t < 3000; t += 50) { /* 3 simulated seconds, 50 ms ticks */
        uint64_t now = start + t * MS;
        for (size_t i = 0; i < n; i++) {
            struct client *c = &people[i];
            if (t % c->every_ms != 0) continue;
            ratecore_decision per_key[2], d;
            status = ratecore_table_check_each(clients, (const uint8_t *)c->name, strlen(c->name),
                                               now, 1, per_key, 2, &d);
            if (status != RATECORE_STATUS_OK) die("ratecore_table_check_each", status);
            const char *who = "client";
            if (d.allowed) {
                /* Admitted per client: now the server-wide limit. (A denial here leaves
                 * the client's charge in place: it did reach the server.) */
                status = ratecore_limiter_check(server, now, 1, &d);
                if (status != RATECORE_STATUS_OK) die("ratecore_limiter_check", status);
                who = "server";
            }
            if (d.allowed) {
                c->admitted++;
                printf("t=%5.3fs %-8s 200 limit=%" PRIu64 " remaining=%" PRIu64 " reset_after=%.3fs"
                       " (per second: %" PRIu64 " left, per 10 s: %" PRIu64 " left)\n",
                       seconds(t * MS), c->name, d.limit, d.remaining, seconds(d.reset_after_ns),
                       per_key[0].remaining, per_key[1].remaining);
            } else {
                c->denied++;
                /* Retry-After is whole seconds, rounded up. */
                uint64_t retry_s = (d.retry_after_ns + SECOND - 1) / SECOND;
                printf("t=%5.3fs %-8s 429 (%s limit) limit=%" PRIu64 " remaining=%" PRIu64
                       " retry_after=%.3fs -> Retry-After: %" PRIu64 "\n",
                       seconds(t * MS), c->name, who, d.limit, d.remaining,
                       seconds(d.retry_after_ns), retry_s);
            }
        }
    }

    printf("\n");
    for (size_t i = 0; i < n; i++) {
        printf("%-8s admitted %2u, denied %2u\n", people[i].name, people[i].admitted, people[i].denied);
    }
    ratecore_table_stats stats;
    status = ratecore_table_get_stats(clients, &stats);
    if (status != RATECORE_STATUS_OK) die("ratecore_table_get_stats", status);
    printf("table: %" PRIu64 " slots occupied, %" PRIu64 " new keys, %" PRIu64 " evictions\n",
           stats.occupied, stats.new_keys, stats.evictions);

    ratecore_limiter_free(server);
    ratecore_table_free(clients);

    /* The flood is limited, the polite clients are not. */
    int ok = people[0].denied == 0 && people[1].denied == 0 && people[2].denied > 0 &&
             people[2].admitted <= 12;
    return ok ? 0 : 1;
}
