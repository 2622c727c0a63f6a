/*
 * A panic provoked inside the library (the test-only hook ratecore_test_panic, built with
 * the cargo feature test-hooks) comes back to C as RATECORE_STATUS_PANIC: the process
 * neither aborts nor unwinds through C frames, the output is not written, and the library
 * keeps working afterwards, on this thread and others.
 */
#define _POSIX_C_SOURCE 200809L
#define RATECORE_TEST_HOOKS 1
#include "test_util.h"

#include <pthread.h>

static void *panic_on_a_thread(void *arg) {
    ratecore_decision *d = arg;
    *d = rc_poisoned_decision();
    uint32_t status = ratecore_test_panic(d);
    return status == RATECORE_STATUS_PANIC && rc_is_poisoned(d) ? d : NULL;
}

int main(void) {
    fprintf(stderr, "test_panic: the Rust panic messages below are expected\n");
    for (int i = 0; i < 3; i++) {
        ratecore_decision d = rc_poisoned_decision();
        CHECK_STATUS(ratecore_test_panic(&d), RATECORE_STATUS_PANIC);
        CHECK(rc_is_poisoned(&d));
    }
    /* Argument checks still come first. */
    CHECK_STATUS(ratecore_test_panic(NULL), RATECORE_STATUS_NULL_POINTER);

    pthread_t threads[4];
    ratecore_decision results[4];
    for (int t = 0; t < 4; t++) {
        if (pthread_create(&threads[t], NULL, panic_on_a_thread, &results[t]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    for (int t = 0; t < 4; t++) {
        void *ok = NULL;
        pthread_join(threads[t], &ok);
        CHECK(ok == &results[t]);
    }

    /* The library still works. */
    ratecore_quota q = rc_quota(RATECORE_ALGORITHM_GCRA, 1, RC_SECOND);
    ratecore_limiter *l = NULL;
    REQUIRE_OK(ratecore_limiter_new(&q, 1, &l));
    ratecore_decision d;
    REQUIRE_OK(ratecore_limiter_check(l, RC_SECOND, 1, &d));
    CHECK(d.allowed);
    CHECK_STATUS(ratecore_test_panic(&d), RATECORE_STATUS_PANIC);
    REQUIRE_OK(ratecore_limiter_check(l, RC_SECOND, 1, &d));
    CHECK(!d.allowed);
    ratecore_limiter_free(l);
    CHECK(strstr(ratecore_status_message(RATECORE_STATUS_PANIC), "panicked") != NULL);
    return rc_finish("test_panic");
}
