/* Loops of ratecore C ABI calls, compiled as C: what benches/ffi.rs times as "a C
 * caller". Each loop makes `calls` calls through the header's declarations (a direct
 * call into the static library: no inlining across the boundary is possible) and reads
 * each decision's `allowed` field, as a caller acting on the decision does. The count
 * of admitted calls is returned so that no call can be optimised away. */

#include <stddef.h>
#include <stdint.h>

#include "ratecore.h"

uint64_t ratecore_bench_c_limiter_checks(const ratecore_limiter *limiter, uint64_t now_ns,
                                         uint64_t calls);
uint64_t ratecore_bench_c_table_checks(const ratecore_table *table,
                                       const uint8_t *const *keys, const size_t *key_lens,
                                       const uint32_t *order, size_t order_mask,
                                       size_t start, uint64_t now_ns, uint64_t calls);

uint64_t
ratecore_bench_c_limiter_checks(const ratecore_limiter *limiter, uint64_t now_ns,
                                uint64_t calls)
{
    ratecore_decision decision;
    uint64_t          admitted = 0;

    for (uint64_t i = 0; i < calls; i++) {
        if (ratecore_limiter_check(limiter, now_ns, 1, &decision) == RATECORE_STATUS_OK
            && decision.allowed)
        {
            admitted++;
        }
    }

    return admitted;
}

/* Call i checks keys[order[(start + i) & order_mask]]. */
uint64_t
ratecore_bench_c_table_checks(const ratecore_table *table, const uint8_t *const *keys,
                              const size_t *key_lens, const uint32_t *order,
                              size_t order_mask, size_t start, uint64_t now_ns,
                              uint64_t calls)
{
    ratecore_decision decision;
    uint64_t          admitted = 0;

    for (uint64_t i = 0; i < calls; i++) {
        uint32_t k = order[(start + (size_t) i) & order_mask];

        if (ratecore_table_check(table, keys[k], key_lens[k], now_ns, 1, &decision)
                == RATECORE_STATUS_OK
            && decision.allowed)
        {
            admitted++;
        }
    }

    return admitted;
}
