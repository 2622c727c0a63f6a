/*
 * Several processes share one table in a MAP_SHARED file mapping. The parent sizes and
 * initialises the region; two forked children map the same file again (at another
 * address) and attach; all three hammer the same keys at once with a frozen clock.
 * Total admissions per key must be exact, and the stats every process sees are shared.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 2
#define PROCS (CHILDREN + 1)
#define KEYS 8
#define LIMIT 4000
#define ATTEMPTS 6000 /* per key and process: 18000 tries for 4000 admissions */
#define ROUND 500 /* attempts per key between barriers: all take part, and race at the limit */
#define NOW (3 * RC_SECOND)

struct shared {
    atomic_uint arrived; /* a reusable barrier across processes */
    atomic_uint generation;
    uint64_t admitted[PROCS][KEYS];
    uint32_t errors[PROCS];
    uintptr_t address[PROCS];
};

/* Waits until all PROCS processes arrive (lock-free atomics work across processes). */
static void barrier(struct shared *sh) {
    unsigned generation = atomic_load(&sh->generation);
    if (atomic_fetch_add(&sh->arrived, 1) == PROCS - 1) {
        atomic_store(&sh->arrived, 0);
        atomic_fetch_add(&sh->generation, 1);
    } else {
        while (atomic_load(&sh->generation) == generation) sched_yield();
    }
}

/* Rounds of ROUND attempts per key, all processes in step, so that every process admits
 * requests concurrently with the others however the scheduler runs them. */
static void hammer(const ratecore_table *t, struct shared *sh, int me) {
    char key[32];
    for (int round = 0; round < ATTEMPTS / ROUND; round++) {
        barrier(sh);
        for (int i = 0; i < ROUND; i++) {
            for (int k = 0; k < KEYS; k++) {
                int len = snprintf(key, sizeof key, "tenant-%d", k);
                ratecore_decision d;
                if (ratecore_table_check(t, rc_bytes(key), (size_t)len, NOW, 1, &d) != RATECORE_STATUS_OK) {
                    sh->errors[me]++;
                } else if (d.allowed) {
                    sh->admitted[me][k]++;
                }
            }
        }
    }
}

/* A child: map the file again, attach, hammer, detach. Exit status = failures. */
static int child(int fd, size_t size, struct shared *sh, int me) {
    unsigned char *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (region == MAP_FAILED) {
        perror("child mmap");
        return 10;
    }
    sh->address[me] = (uintptr_t)region;
    ratecore_table *t = NULL;
    uint32_t status = ratecore_table_attach_region(region, size, &t);
    if (status != RATECORE_STATUS_OK) {
        fprintf(stderr, "child %d: attach failed: %s\n", me, ratecore_status_message(status));
        return 11;
    }
    hammer(t, sh, me);
    ratecore_table_free(t);
    munmap(region, size);
    return 0;
}

static void run(const ratecore_quota *quota) {
    size_t size = 0;
    REQUIRE_OK(ratecore_table_region_size(quota, 1, 256, RATECORE_FULL_POLICY_DENY, &size));

    char path[] = "/tmp/ratecore-fork-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || unlink(path) != 0 || ftruncate(fd, (off_t)size) != 0) {
        perror("region file");
        exit(1);
    }
    unsigned char *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED || sh == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(sh, 0, sizeof *sh);
    ratecore_table *t = NULL;
    REQUIRE_OK(ratecore_table_init_region(region, size, quota, 1, 256, RATECORE_FULL_POLICY_DENY, &t));
    sh->address[0] = (uintptr_t)region;

    pid_t pids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        fflush(NULL);
        pids[c] = fork();
        if (pids[c] < 0) {
            perror("fork");
            exit(1);
        }
        if (pids[c] == 0) {
            /* The child does not use the parent's handle; it attaches its own. exit()
             * rather than _exit(): LeakSanitizer checks the child too. */
            exit(child(fd, size, sh, c + 1));
        }
    }
    hammer(t, sh, 0);
    for (int c = 0; c < CHILDREN; c++) {
        int status = 0;
        while (waitpid(pids[c], &status, 0) < 0 && errno == EINTR) {
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    for (int p = 0; p < PROCS; p++) {
        CHECK_EQ_U64(sh->errors[p], 0);
        /* Each child mapped the file anew while the inherited mapping was still there. */
        if (p > 0) CHECK(sh->address[p] != sh->address[0]);
    }
    uint64_t grand = 0;
    for (int k = 0; k < KEYS; k++) {
        uint64_t total = 0;
        for (int p = 0; p < PROCS; p++) total += sh->admitted[p][k];
        if (total != LIMIT) {
            fprintf(stderr, "algorithm %" PRIu32 " key %d: %" PRIu64 " admitted across processes, expected %d\n",
                    quota->algorithm, k, total, LIMIT);
            rc_failures++;
        }
        grand += total;
    }
    ratecore_table_stats s;
    REQUIRE_OK(ratecore_table_get_stats(t, &s));
    CHECK_EQ_U64(s.new_keys, KEYS);
    CHECK_EQ_U64(s.occupied, KEYS);
    CHECK_EQ_U64(s.contended + s.full_denied + s.evictions + s.stale_claims, 0);
    uint64_t by_process[PROCS] = {0};
    for (int p = 0; p < PROCS; p++) {
        for (int k = 0; k < KEYS; k++) by_process[p] += sh->admitted[p][k];
    }
    for (int p = 0; p < PROCS; p++) CHECK(by_process[p] > 0);
    printf("algorithm %" PRIu32 ": %" PRIu64 " admissions (%d keys x %d), by process: parent %" PRIu64
           ", children %" PRIu64 " and %" PRIu64 "\n",
           quota->algorithm, grand, KEYS, LIMIT, by_process[0], by_process[1], by_process[2]);

    ratecore_table_free(t);
    munmap(region, size);
    munmap(sh, sizeof *sh);
    close(fd);
}

int main(void) {
    ratecore_quota quotas[RC_ALGORITHMS];
    rc_each_algorithm(quotas, LIMIT, RC_HOUR, 60);
    for (int i = 0; i < RC_ALGORITHMS; i++) run(&quotas[i]);
    return rc_finish("test_fork");
}
