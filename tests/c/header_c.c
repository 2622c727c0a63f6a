/*
 * The header alone compiles as C (gcc -std=c11 -Wall -Wextra -Wpedantic -Werror; the
 * driver also tries c99 and c17), twice over (include guard), and its ABI-visible sizes and
 * values are what the library was built with.
 */
#include "ratecore.h"
#include "ratecore.h"

#include <stddef.h>

_Static_assert(sizeof(ratecore_quota) == 32, "ratecore_quota layout");
_Static_assert(offsetof(ratecore_quota, algorithm) == 24, "ratecore_quota layout");
_Static_assert(sizeof(ratecore_decision) == 40, "ratecore_decision layout");
_Static_assert(offsetof(ratecore_decision, limit) == 8, "ratecore_decision layout");
_Static_assert(sizeof(ratecore_table_stats) == 80, "ratecore_table_stats layout");
_Static_assert(sizeof(ratecore_table_charge) == 8 * RATECORE_TABLE_CHARGE_WORDS, "ratecore_table_charge layout");
_Static_assert(RATECORE_TABLE_CHARGE_WORDS == 27, "ratecore_table_charge size");
_Static_assert(sizeof(ratecore_status) == 4, "ratecore_status is a uint32_t");
_Static_assert(RATECORE_STATUS_OK == 0, "OK is 0");
_Static_assert(RATECORE_STATUS_PANIC == 4, "status values never change");
_Static_assert(RATECORE_STATUS_COST_EXCEEDS_LIMIT == 201, "status values never change");
_Static_assert(RATECORE_STATUS_HASH_MISMATCH == 309, "status values never change");
_Static_assert(RATECORE_ALGORITHM_GCRA == 1 && RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT == 4,
               "algorithm codes");
_Static_assert(RATECORE_REGION_ALIGN == 64, "region alignment");
_Static_assert(RATECORE_VERSION_MAJOR >= 0 && RATECORE_VERSION_MINOR >= 0 &&
               RATECORE_VERSION_PATCH >= 0, "version macros");

/* Declarations have the types the documentation promises. */
typedef ratecore_status (*limiter_new_fn)(const ratecore_quota *, size_t, ratecore_limiter **);
typedef ratecore_status (*table_check_fn)(const ratecore_table *, const uint8_t *, size_t,
                                          uint64_t, uint64_t, ratecore_decision *);
typedef ratecore_status (*attach_fn)(void *, size_t, ratecore_table **);
typedef const char *(*message_fn)(uint32_t);

const limiter_new_fn header_c_limiter_new = ratecore_limiter_new;
const table_check_fn header_c_table_check = ratecore_table_check;
const attach_fn header_c_attach = ratecore_table_attach_region;
const message_fn header_c_message = ratecore_status_message;
