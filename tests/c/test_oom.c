/*
 * A table larger than the system will give is refused with RATECORE_STATUS_OUT_OF_MEMORY
 * instead of aborting the process. Run with ASAN_OPTIONS=...:allocator_may_return_null=1
 * (ffi/run-c-tests.sh does), since ASan otherwise aborts on any impossible allocation,
 * as a precaution, before the library can see it fail.
 */
#include "test_util.h"

int main(void) {
    ratecore_quota q = rc_strict(10, RC_HOUR, RATECORE_MAX_SUB_WINDOWS);
    ratecore_quota quotas[4] = {q, q, q, q};
    size_t size = 0;
    REQUIRE_OK(ratecore_table_region_size(quotas, 4, RATECORE_MAX_TABLE_CAPACITY, 0, &size));
    printf("test_oom: asking for a %zu-byte table\n", size);
    ratecore_table *sentinel = (ratecore_table *)&q;
    ratecore_table *t = sentinel;
    CHECK_STATUS(ratecore_table_new(quotas, 4, RATECORE_MAX_TABLE_CAPACITY, 0, &t),
                 RATECORE_STATUS_OUT_OF_MEMORY);
    CHECK(t == sentinel);
    /* And the library is fine afterwards. */
    REQUIRE_OK(ratecore_table_new(quotas, 1, 8, 0, &t));
    ratecore_decision d;
    REQUIRE_OK(ratecore_table_check(t, NULL, 0, RC_SECOND, 1, &d));
    CHECK(d.allowed);
    ratecore_table_free(t);
    return rc_finish("test_oom");
}
