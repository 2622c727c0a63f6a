/*
 * Four pthreads hammer one limiter, then one table, with a frozen clock: admissions must be
 * exact (never one more or one less than the quota), and a table must neither contend past
 * its retry bound nor lose keys.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define THREADS 4
#define NOW (5 * RC_SECOND) /* the frozen clock */

struct job {
    const ratecore_limiter *limiter;
    const ratecore_table *table;
    pthread_barrier_t *start;
    size_t attempts; /* per thread (per key for tables) */
    size_t keys;
    uint64_t admitted[64]; /* per key (index 0 for a limiter) */
    uint32_t errors;
};

static void *run_limiter(void *arg) {
    struct job *job = arg;
    pthread_barrier_wait(job->start);
    for (size_t i = 0; i < job->attempts; i++) {
        ratecore_decision d;
        /* Interleave peeks, which must never consume. */
        if (ratecore_limiter_peek(job->limiter, NOW, 1, &d) != RATECORE_STATUS_OK) job->errors++;
        if (ratecore_limiter_check(job->limiter, NOW, 1, &d) != RATECORE_STATUS_OK) job->errors++;
        else if (d.allowed) job->admitted[0]++;
    }
    return NULL;
}

static void *run_table(void *arg) {
    struct job *job = arg;
    pthread_barrier_wait(job->start);
    char key[32];
    for (size_t i = 0; i < job->attempts; i++) {
        for (size_t k = 0; k < job->keys; k++) {
            int len = snprintf(key, sizeof key, "client-%zu", k);
            ratecore_decision d;
            if (ratecore_table_check(job->table, rc_bytes(key), (size_t)len, NOW, 1, &d) !=
                RATECORE_STATUS_OK) {
                job->errors++;
            } else if (d.allowed) {
                job->admitted[k]++;
            }
        }
    }
    return NULL;
}

/* Runs THREADS jobs, returns total admissions per key in totals[]. */
static void run_threads(void *(*body)(void *), const ratecore_limiter *limiter,
                        const ratecore_table *table, size_t attempts, size_t keys,
                        uint64_t totals[64]) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    struct job jobs[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].limiter = limiter;
        jobs[t].table = table;
        jobs[t].start = &start;
        jobs[t].attempts = attempts;
        jobs[t].keys = keys;
        if (pthread_create(&threads[t], NULL, body, &jobs[t]) != 0) {
            perror("pthread_create");
            exit(1);
        }
    }
    memset(totals, 0, 64 * sizeof totals[0]);
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK_EQ_U64(jobs[t].errors, 0);
        for (size_t k = 0; k < keys; k++) totals[k] += jobs[t].admitted[k];
    }
    pthread_barrier_destroy(&start);
}

static void test_limiters(void) {
    const uint64_t limit = 1000;
    ratecore_quota quotas[RC_ALGORITHMS];
    rc_each_algorithm(quotas, limit, RC_HOUR, 60);
    for (size_t i = 0; i < RC_ALGORITHMS; i++) {
        ratecore_limiter *l = NULL;
        REQUIRE_OK(ratecore_limiter_new(&quotas[i], 1, &l));
        uint64_t totals[64];
        run_threads(run_limiter, l, NULL, 600, 1, totals); /* 2400 attempts for 1000 */
        if (totals[0] != limit) {
            fprintf(stderr, "limiter algorithm %" PRIu32 ": admitted %" PRIu64 ", expected %" PRIu64 "\n",
                    quotas[i].algorithm, totals[0], limit);
            rc_failures++;
        }
        ratecore_limiter_free(l);
    }

    /* A composite of two windows: contention may deny spuriously (a reservation briefly
     * held, then given back) but never over-admits, and every give-back is exact, so a
     * sequential top-up afterwards reaches the tighter limit exactly. */
    const ratecore_quota pair[2] = {
        rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 700, RC_HOUR),
        rc_strict(1000, RC_HOUR, 30),
    };
    ratecore_limiter *l = NULL;
    REQUIRE_OK(ratecore_limiter_new(pair, 2, &l));
    uint64_t totals[64];
    run_threads(run_limiter, l, NULL, 400, 1, totals);
    CHECK(totals[0] <= 700);
    uint64_t topped = totals[0];
    for (int i = 0; i < 2000; i++) {
        ratecore_decision d;
        REQUIRE_OK(ratecore_limiter_check(l, NOW, 1, &d));
        topped += d.allowed;
    }
    CHECK_EQ_U64(topped, 700);
    printf("composite under contention: %" PRIu64 " of 700 admitted concurrently\n", totals[0]);
    ratecore_limiter_free(l);
}

static void test_tables(void) {
    const size_t keys = 16;
    const uint64_t limit = 50;
    ratecore_quota quotas[RC_ALGORITHMS];
    rc_each_algorithm(quotas, limit, RC_HOUR, 60);
    for (size_t i = 0; i < RC_ALGORITHMS; i++) {
        ratecore_table *t = NULL;
        REQUIRE_OK(ratecore_table_new(&quotas[i], 1, 1024, RATECORE_FULL_POLICY_DENY, &t));
        uint64_t totals[64];
        run_threads(run_table, NULL, t, 40, keys, totals); /* 160 attempts per key for 50 */
        for (size_t k = 0; k < keys; k++) {
            if (totals[k] != limit) {
                fprintf(stderr, "table algorithm %" PRIu32 " key %zu: admitted %" PRIu64 "\n",
                        quotas[i].algorithm, k, totals[k]);
                rc_failures++;
            }
        }
        ratecore_table_stats s;
        REQUIRE_OK(ratecore_table_get_stats(t, &s));
        CHECK_EQ_U64(s.new_keys, keys);
        CHECK_EQ_U64(s.occupied, keys);
        CHECK_EQ_U64(s.contended + s.full_denied + s.evictions + s.stale_claims, 0);
        ratecore_table_free(t);
    }
}

int main(void) {
    test_limiters();
    test_tables();
    return rc_finish("test_threads");
}
