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
_Static_assert(RATECORE_STATUS_CONFIG_UNREADABLE == 402, "status values never change");
_Static_assert(RATECORE_STATUS_UNKNOWN_LIMIT == 403, "status values never change");
_Static_assert(RATECORE_STATUS_INVALID_OVERRIDE == 404, "status values never change");
_Static_assert(RATECORE_ALGORITHM_GCRA == 1 && RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT == 4,
               "algorithm codes");
_Static_assert(RATECORE_REGION_ALIGN == 64, "region alignment");
_Static_assert(RATECORE_MAX_REQUEST_ATTRIBUTES == 64, "request attribute limit");
_Static_assert(RATECORE_NO_LIMIT == UINT32_MAX, "no-limit index");
_Static_assert(RATECORE_OFFENDERS == 64 && RATECORE_OFFENDER_KEY_BYTES == 64, "offender report bounds");
/* Structs that may grow start with their size. */
_Static_assert(offsetof(ratecore_http_request, size) == 0, "ratecore_http_request layout");
_Static_assert(offsetof(ratecore_policy_outcome, size) == 0, "ratecore_policy_outcome layout");
_Static_assert(offsetof(ratecore_limit_metrics, size) == 0, "ratecore_limit_metrics layout");
_Static_assert(offsetof(ratecore_reload_report, size) == 0, "ratecore_reload_report layout");
_Static_assert(offsetof(ratecore_override_quota, size) == 0, "ratecore_override_quota layout");
_Static_assert(offsetof(ratecore_offender_stats, size) == 0, "ratecore_offender_stats layout");
/* A grown struct keeps its earlier versions' fields where they were. */
_Static_assert(offsetof(ratecore_reload_report, overrides_dropped) ==
                   offsetof(ratecore_reload_report, dropped) + sizeof(size_t),
               "ratecore_reload_report: overrides_dropped appended");
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
_Static_assert(sizeof(ratecore_limit_metrics) == 64, "ratecore_limit_metrics layout");
_Static_assert(offsetof(ratecore_limit_metrics, name_len) == 16, "ratecore_limit_metrics layout");
_Static_assert(offsetof(ratecore_limit_metrics, shadow) == 24, "ratecore_limit_metrics layout");
_Static_assert(offsetof(ratecore_limit_metrics, skipped) == 56, "ratecore_limit_metrics layout");
_Static_assert(sizeof(ratecore_reload_report) == 40, "ratecore_reload_report layout");
_Static_assert(offsetof(ratecore_reload_report, dropped) == 24, "ratecore_reload_report layout");
_Static_assert(offsetof(ratecore_reload_report, overrides_dropped) == 32, "ratecore_reload_report layout");
_Static_assert(sizeof(ratecore_override_quota) == 32, "ratecore_override_quota layout");
_Static_assert(offsetof(ratecore_override_quota, unlimited) == 8, "ratecore_override_quota layout");
_Static_assert(offsetof(ratecore_override_quota, limit) == 16, "ratecore_override_quota layout");
_Static_assert(offsetof(ratecore_override_quota, burst) == 24, "ratecore_override_quota layout");
_Static_assert(sizeof(ratecore_offender_stats) == 24, "ratecore_offender_stats layout");
_Static_assert(offsetof(ratecore_offender_stats, evicted) == 8, "ratecore_offender_stats layout");
_Static_assert(offsetof(ratecore_offender_stats, unrecorded) == 16, "ratecore_offender_stats layout");
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
typedef ratecore_status (*policy_limit_metrics_fn)(const ratecore_policy *, size_t, uint8_t *,
                                                   size_t, ratecore_limit_metrics *);
typedef ratecore_status (*policy_render_metrics_fn)(const ratecore_policy *, uint8_t *, size_t,
                                                    size_t *);
typedef ratecore_status (*policy_reload_toml_fn)(const ratecore_policy *, const uint8_t *, size_t,
                                                 const uint8_t *, size_t, char *, size_t,
                                                 ratecore_reload_report *);
typedef ratecore_status (*policy_reload_file_fn)(const ratecore_policy *, const char *, char *,
                                                 size_t, ratecore_reload_report *);
typedef ratecore_status (*policy_set_override_fn)(const ratecore_policy *, const uint8_t *,
                                                  size_t, const uint8_t *, size_t,
                                                  const uint8_t *, size_t, const uint8_t *,
                                                  size_t, const ratecore_override_quota *,
                                                  char *, size_t);
typedef ratecore_status (*policy_remove_override_fn)(const ratecore_policy *, const uint8_t *,
                                                     size_t, const uint8_t *, size_t,
                                                     const uint8_t *, size_t, const uint8_t *,
                                                     size_t, bool *);
typedef ratecore_status (*policy_offenders_fn)(const ratecore_policy *, uint8_t *, size_t,
                                               size_t *, ratecore_offender_stats *);

const limiter_new_fn header_c_limiter_new = ratecore_limiter_new;
const table_check_fn header_c_table_check = ratecore_table_check;
const attach_fn header_c_attach = ratecore_table_attach_region;
const message_fn header_c_message = ratecore_status_message;
const policy_check_http_fn header_c_policy_check_http = ratecore_policy_check_http;
const policy_check_http_fn header_c_policy_peek_http = ratecore_policy_peek_http;
const policy_limit_count_fn header_c_policy_limit_count = ratecore_policy_limit_count;
const policy_limit_metrics_fn header_c_policy_limit_metrics = ratecore_policy_limit_metrics;
const policy_limit_count_fn header_c_policy_memory_bytes = ratecore_policy_memory_bytes;
const policy_render_metrics_fn header_c_policy_render_metrics = ratecore_policy_render_metrics;
const policy_reload_toml_fn header_c_policy_reload_toml = ratecore_policy_reload_toml;
const policy_reload_file_fn header_c_policy_reload_file = ratecore_policy_reload_file;
const policy_set_override_fn header_c_policy_set_override = ratecore_policy_set_override;
const policy_remove_override_fn header_c_policy_remove_override = ratecore_policy_remove_override;
const policy_render_metrics_fn header_c_policy_overrides = ratecore_policy_overrides;
const policy_offenders_fn header_c_policy_offenders = ratecore_policy_offenders;
