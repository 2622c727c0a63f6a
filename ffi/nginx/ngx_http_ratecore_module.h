/*
 * ngx_http_ratecore_module: what its C files share. The module is nginx glue on
 * ratecore's C ABI (include/ratecore.h):
 *   ngx_http_ratecore_module.c      the module, the PREACCESS handler, $ratecore_status
 *   ngx_http_ratecore_directives.c  ratecore_limit, ratecore_log_level, parameter parsing
 *   ngx_http_ratecore_zone.c        ratecore_zone and the tables in shared memory
 *   ngx_http_ratecore_headers.c     the rate-limit headers and the 429 body
 * Deciding (all or nothing over several zones, which quota decides) and rendering
 * (numbers, dates, the IETF lists) are the library's: ratecore_tables_check and
 * ratecore_render_check_headers. Directive reference: ffi/nginx/README.md.
 */

#ifndef NGX_HTTP_RATECORE_MODULE_H
#define NGX_HTTP_RATECORE_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ratecore.h>

#include <time.h>


/* the most ratecore_limit items one request checks (and quotas, all zones together) */
#define NGX_HTTP_RATECORE_MAX_LIMITS     RATECORE_MAX_CHECK_ITEMS
#define NGX_HTTP_RATECORE_SH_HEADER      256

#define NGX_HTTP_RATECORE_STYLE_EVENERGY RATECORE_HEADER_STYLE_EVENERGY
#define NGX_HTTP_RATECORE_STYLE_UPHOLD   RATECORE_HEADER_STYLE_UPHOLD
#define NGX_HTTP_RATECORE_STYLE_SWITCH   RATECORE_HEADER_STYLE_SWITCH
#define NGX_HTTP_RATECORE_STYLE_IETF     RATECORE_HEADER_STYLE_IETF
/* the module's own: no rate-limit headers at all, as limit_req (not a library style) */
#define NGX_HTTP_RATECORE_STYLE_NONE     255

#define NGX_HTTP_RATECORE_BODY_UNSET     0
#define NGX_HTTP_RATECORE_BODY_PROBLEM   1
#define NGX_HTTP_RATECORE_BODY_TEXT      2
#define NGX_HTTP_RATECORE_BODY_NONE      3
#define NGX_HTTP_RATECORE_BODY_NGINX     4

#define NGX_HTTP_RATECORE_PASSED         1
#define NGX_HTTP_RATECORE_REJECTED       2
#define NGX_HTTP_RATECORE_REJECTED_DRY   3
#define NGX_HTTP_RATECORE_NO_KEY         4
#define NGX_HTTP_RATECORE_ERROR          5


/* The zone's header in shared memory, just before the region (padded to 256 bytes so
 * the region stays RATECORE_REGION_ALIGN-aligned). Only the master reads it, at init. */
typedef struct {
    u_char                      magic[8];
    uint64_t                    region_len;
    uint64_t                    capacity;
    uint32_t                    full_policy;
    uint32_t                    nquotas;
    ratecore_quota              quotas[RATECORE_MAX_TABLE_LIMITS];
} ngx_http_ratecore_sh_t;


typedef struct {
    ngx_str_t                   name;
    size_t                      size;
    ngx_uint_t                  nquotas;
    ratecore_quota              quotas[RATECORE_MAX_TABLE_LIMITS];
    uint64_t                    capacity;
    uint32_t                    full_policy;
    size_t                      region_size;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_ratecore_sh_t     *sh;
    ratecore_table             *table;
} ngx_http_ratecore_zone_t;


typedef struct {
    ngx_array_t                 zones;      /* ngx_http_ratecore_zone_t * */
    ngx_array_t                 levels;     /* ngx_array_t * of limits, each once */
} ngx_http_ratecore_main_conf_t;


typedef struct {
    ngx_http_ratecore_zone_t   *zone;       /* resolved at postconfiguration */
    ngx_str_t                   zone_name;
    ngx_str_t                   file;       /* where the directive is, for errors */
    ngx_uint_t                  line;       /*   found at postconfiguration */
    ngx_int_t                   key_index;  /* a lone $variable; else NGX_ERROR */
    ngx_http_complex_value_t    key;
    ngx_http_complex_value_t   *cost_cv;    /* NULL: the constant cost */
    uint64_t                    cost;
    ngx_uint_t                  status;
    ngx_uint_t                  style;
    ngx_uint_t                  body;
    ngx_uint_t                  dry_run;
    ngx_str_t                   description;
    ngx_str_t                   problem_type;
    ngx_str_t                   problem_title;
} ngx_http_ratecore_limit_t;


typedef struct {
    ngx_array_t                *limits;     /* UNSET_PTR: inherit; NULL: off */
    ngx_uint_t                  log_level;
} ngx_http_ratecore_loc_conf_t;


/* the kinds of plain parameter values */
#define NGX_HTTP_RATECORE_U64     0     /* uint64_t, a whole number */
#define NGX_HTTP_RATECORE_U32     1     /* uint32_t, a whole number */
#define NGX_HTTP_RATECORE_TIME    2     /* uint64_t ns, an nginx time above 0 */
#define NGX_HTTP_RATECORE_SIZE    3     /* ssize_t, an nginx size above 0 */
#define NGX_HTTP_RATECORE_ENUM    4     /* ngx_uint_t, one of an enum's names */
#define NGX_HTTP_RATECORE_ENUM32  5     /* uint32_t, one of an enum's names */
#define NGX_HTTP_RATECORE_STATUS  6     /* ngx_uint_t, 400 to 599 */
#define NGX_HTTP_RATECORE_STR     7     /* ngx_str_t, as is */


typedef struct {
    const char                 *key;        /* "size=" */
    ngx_uint_t                  kind;
    ngx_conf_enum_t            *names;      /* the enums' */
    const char                 *expected;
} ngx_http_ratecore_param_t;


extern ngx_module_t     ngx_http_ratecore_module;
extern ngx_command_t    ngx_http_ratecore_commands[];

void *ngx_http_ratecore_create_main_conf(ngx_conf_t *cf);
void *ngx_http_ratecore_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_ratecore_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
ngx_int_t ngx_http_ratecore_resolve_zones(ngx_conf_t *cf);
char *ngx_http_ratecore_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_http_ratecore_zone_t *ngx_http_ratecore_find_zone(
    ngx_http_ratecore_main_conf_t *rmcf, ngx_str_t *name);
uint64_t ngx_http_ratecore_quota_cap(const ratecore_quota *quota);
ngx_int_t ngx_http_ratecore_enum(ngx_conf_enum_t *e, u_char *p, size_t len,
    ngx_uint_t *out);
ngx_int_t ngx_http_ratecore_param(ngx_str_t *arg, const char *key, ngx_str_t *value);
ngx_int_t ngx_http_ratecore_parse_u64(u_char *p, size_t len, uint64_t *out);
ngx_int_t ngx_http_ratecore_parse_duration(u_char *p, size_t len, uint64_t *ns);
ngx_int_t ngx_http_ratecore_value(ngx_conf_t *cf, const char *directive,
    ngx_str_t *arg, ngx_http_ratecore_param_t *params, void **targets,
    ngx_flag_t *seen);

extern ngx_uint_t  ngx_http_ratecore_cached_clock;
uint64_t ngx_http_ratecore_clock_ns(clockid_t id);


/* The wall clock (nanoseconds since the epoch) of the moment the monotonic now comes
 * from, for absolute reset times: nginx's cached time when the cached clocks are used. */
static ngx_inline uint64_t
ngx_http_ratecore_wall_ns(void)
{
    ngx_time_t  *tp;

    if (!ngx_http_ratecore_cached_clock) {
        return ngx_http_ratecore_clock_ns(CLOCK_REALTIME);
    }

    tp = ngx_timeofday();

    return tp->sec < 0 ? 0
                       : (uint64_t) tp->sec * 1000000000 + (uint64_t) tp->msec * 1000000;
}

ngx_int_t ngx_http_ratecore_set_headers(ngx_http_request_t *r, ngx_uint_t style,
    const ratecore_check_item *items, size_t nitems,
    const ratecore_check_result *result);
ngx_int_t ngx_http_ratecore_send_denial(ngx_http_request_t *r,
    ngx_http_ratecore_limit_t *limit, const ratecore_check_result *result);

#endif /* NGX_HTTP_RATECORE_MODULE_H */
