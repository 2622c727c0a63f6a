/*
 * ngx_http_ratecore_module: what its C files share. The module is nginx glue on
 * ratecore's C ABI (include/ratecore.h):
 *   ngx_http_ratecore_module.c      the module, the PREACCESS handler (and the
 *                                   rate-limit headers it adds), $ratecore_status
 *   ngx_http_ratecore_directives.c  ratecore_limit, ratecore_log_level, parameter parsing
 *   ngx_http_ratecore_zone.c        ratecore_zone and the tables in shared memory
 *   ngx_http_ratecore_body.c        the 429 body
 * Deciding (all or nothing over several zones, which quota decides) and rendering
 * (numbers, dates, the IETF lists) are the library's: ratecore_tables_check_headers
 * (ratecore_render_check_headers for long IETF lists). Directives: ffi/nginx/README.md.
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
/* room for the library's messages about a directive */
#define NGX_HTTP_RATECORE_ERR_LEN        1024
/* the most bytes a rendering (headers, body) may ask for */
#define NGX_HTTP_RATECORE_MAX_RENDER     (1024 * 1024)

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
    ratecore_zone_directive     d;          /* parsed and sized by the library */
    ngx_str_t                   name;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_ratecore_sh_t     *sh;
    ratecore_table             *table;
} ngx_http_ratecore_zone_t;


typedef struct {
    ngx_array_t                 zones;      /* ngx_http_ratecore_zone_t * */
    ngx_array_t                 levels;     /* ngx_array_t * of limits, each once */
} ngx_http_ratecore_main_conf_t;


typedef struct {
    ratecore_limit_directive    d;          /* parsed by the library */
    ngx_http_ratecore_zone_t   *zone;       /* resolved at postconfiguration */
    ngx_str_t                   file;       /* where the directive is, for errors */
    ngx_uint_t                  line;       /*   found at postconfiguration */
    ngx_int_t                   key_index;  /* a lone $variable; else NGX_ERROR */
    ngx_http_complex_value_t    key;
    ngx_http_complex_value_t   *cost_cv;    /* NULL: the constant cost */
} ngx_http_ratecore_limit_t;


typedef struct {
    ngx_array_t                *limits;     /* UNSET_PTR: inherit; NULL: off */
    ngx_uint_t                  log_level;
    ngx_uint_t                  style;      /* the limits' (one per level) */
    size_t                      values;     /* bytes for its header values */
} ngx_http_ratecore_loc_conf_t;


extern ngx_module_t     ngx_http_ratecore_module;
extern ngx_command_t    ngx_http_ratecore_commands[];

void *ngx_http_ratecore_create_main_conf(ngx_conf_t *cf);
void *ngx_http_ratecore_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_ratecore_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
ngx_int_t ngx_http_ratecore_resolve_zones(ngx_conf_t *cf);
char *ngx_http_ratecore_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_http_ratecore_zone_t *ngx_http_ratecore_find_zone(
    ngx_http_ratecore_main_conf_t *rmcf, u_char *name, size_t len);
ngx_int_t ngx_http_ratecore_parsed(ngx_conf_t *cf, ratecore_status rc, u_char *err);

/* a directive's arguments after its name, as the library reads them */
#define ngx_http_ratecore_args(cf)                                                     \
    ((const ratecore_text *) ((ngx_str_t *) (cf)->args->elts + 1))

extern ngx_uint_t  ngx_http_ratecore_cached_clock;
uint64_t ngx_http_ratecore_clock_ns(clockid_t id);


/* The wall clock (nanoseconds since the epoch) of the moment the monotonic now comes
 * from, for a style's absolute reset times (0 for the others, which never read it):
 * nginx's cached time when the cached clocks are used. */
static ngx_inline uint64_t
ngx_http_ratecore_wall_ns(ngx_uint_t style)
{
    ngx_time_t  *tp;

    if (style != RATECORE_HEADER_STYLE_UPHOLD && style != RATECORE_HEADER_STYLE_SWITCH) {
        return 0;
    }

    if (!ngx_http_ratecore_cached_clock) {
        return ngx_http_ratecore_clock_ns(CLOCK_REALTIME);
    }

    tp = ngx_timeofday();

    return tp->sec < 0 ? 0
                       : (uint64_t) tp->sec * 1000000000 + (uint64_t) tp->msec * 1000000;
}

ngx_int_t ngx_http_ratecore_send_denial(ngx_http_request_t *r,
    ngx_http_ratecore_limit_t *limit, const ratecore_check_result *result);

#endif /* NGX_HTTP_RATECORE_MODULE_H */
