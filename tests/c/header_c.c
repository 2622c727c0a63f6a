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
_Static_assert(RATECORE_MAX_REQUEST_ATTRIBUTES == 64, "request attribute limit");
_Static_assert(RATECORE_NO_LIMIT == UINT32_MAX, "no-limit index");
/* Structs that may grow start with their size. */
_Static_assert(offsetof(ratecore_http_request, size) == 0, "ratecore_http_request layout");
_Static_assert(offsetof(ratecore_policy_outcome, size) == 0, "ratecore_policy_outcome layout");
_Static_assert(offsetof(ratecore_limit_metrics, size) == 0, "ratecore_limit_metrics layout");
#if SIZE_MAX == UINT64_MAX && UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(ratecore_attribute) == 32, "ratecore_attribute layout");
_Static_assert(offsetof(ratecore_attribute, value) == 16, "ratecore_attribute layout");
_Static_assert(sizeof(ratecore_http_request) == 56, "ratecore_http_request layout");
_Static_assert(offsetof(ratecore_http_request, attributes) == 40, "ratecore_http_request layout");
_Static_assert(sizeof(ratecore_policy_outcome) == 96, "ratecore_policy_outcome layout");
_Static_assert(offsetof(ratecore_policy_outcome, decision) == 8, "ratecore_policy_outcome layout");
_Static_assert(offsetof(ratecore_policy_outcome, status) == 50, "ratecore_policy_outcome layout");
_Static_assert(offsetof(ratecore_policy_outcome, deciding_limit) == 80, "ratecore_policy_outcome layout");
_Static_assert(offsetof(ratecore_policy_outcome, shadow_denied_limit) == 88, "ratecore_policy_outcome layout");
_Static_assert(offsetof(ratecore_policy_outcome, exempted) == 92, "ratecore_policy_outcome layout");
_Static_assert(sizeof(ratecore_limit_metrics) == 80, "ratecore_limit_metrics layout");
_Static_assert(offsetof(ratecore_limit_metrics, shadow) == 40, "ratecore_limit_metrics layout");
_Static_assert(offsetof(ratecore_limit_metrics, skipped) == 72, "ratecore_limit_metrics layout");
#endif
_Static_assert(RATECORE_VERSION_MAJOR >= 0 && RATECORE_VERSION_MINOR >= 0 &&
               RATECORE_VERSION_PATCH >= 0, "version macros");

/* Declarations have the types the documentation promises. */
typedef ratecore_status (*limiter_new_fn)(const ratecore_quota *, size_t, ratecore_limiter **);
typedef ratecore_status (*table_check_fn)(const ratecore_table *, const uint8_t *, size_t,
                                          uint64_t, uint64_t, ratecore_decision *);
typedef ratecore_status (*attach_fn)(void *, size_t, ratecore_table **);
typedef const char *(*message_fn)(uint32_t);
typedef ratecore_status (*policy_check_http_fn)(const ratecore_policy *,
                                                const ratecore_http_request *, uint64_t,
                                                uint64_t, uint64_t, uint8_t *, size_t,
                                                uint8_t *, size_t, ratecore_policy_outcome *);
typedef ratecore_status (*policy_limit_count_fn)(const ratecore_policy *, size_t *);
typedef ratecore_status (*policy_limit_metrics_fn)(const ratecore_policy *, size_t,
                                                   ratecore_limit_metrics *);

const limiter_new_fn header_c_limiter_new = ratecore_limiter_new;
const table_check_fn header_c_table_check = ratecore_table_check;
const attach_fn header_c_attach = ratecore_table_attach_region;
const message_fn header_c_message = ratecore_status_message;
const policy_check_http_fn header_c_policy_check_http = ratecore_policy_check_http;
const policy_check_http_fn header_c_policy_peek_http = ratecore_policy_peek_http;
const policy_limit_count_fn header_c_policy_limit_count = ratecore_policy_limit_count;
const policy_limit_metrics_fn header_c_policy_limit_metrics = ratecore_policy_limit_metrics;
const policy_limit_count_fn header_c_policy_memory_bytes = ratecore_policy_memory_bytes;
