/*
 * ngx_http_ratecore_module: rate limiting for nginx with ratecore's lock-free keyed
 * tables, shared by every worker process through an nginx shared memory zone.
 *
 *   ratecore_zone  name=api size=10m algorithm=fixed_window limit=300 period=5m;
 *   ratecore_limit zone=api key=$binary_remote_addr style=uphold;
 *
 * Directives (full reference: ffi/nginx/README.md):
 *   ratecore_zone name= size= (algorithm= limit= period= [burst=] [sub_windows=] |
 *                 quota=<algorithm>:<limit>/<period>[:burst=<n>][:sub_windows=<n>] ...)
 *                 [capacity=<keys>|auto] [when_full=evict|deny|allow];        http
 *   ratecore_limit zone= key= [cost=] [style=] [status=] [dry_run=] [body=]
 *                 ["description=..."] [problem_type=] [problem_title=];       http, server, location
 *   ratecore_limit off;
 *   ratecore_log_level info|notice|warn|error;                                 http, server, location
 *   $ratecore_status: PASSED, REJECTED, REJECTED_DRY_RUN, NO_KEY, ERROR
 *
 * Design notes
 * - One zone = one ratecore table (1 to 4 quotas per key, all of which must admit) in a
 *   caller-provided region inside the zone's shared memory. The master initialises it
 *   (ratecore_table_init_region) before forking; workers inherit the handle (the zone is
 *   mapped at the same address in every process). On reload nginx keeps a zone whose name
 *   and size are unchanged; the new cycle attaches to the same region
 *   (ratecore_table_attach_region), so counts survive. If such a kept zone's quotas,
 *   capacity or when_full changed, the reload is refused with an error: the region cannot
 *   be re-initialised while old workers may still use it (rename the zone or change its
 *   size to start a fresh table).
 * - Time: now_ns is nginx's cached ngx_current_msec (CLOCK_MONOTONIC in milliseconds,
 *   read once per event-loop iteration) times 10^6, checked at worker start to really
 *   be CLOCK_MONOTONIC (else clock_gettime per request). Every worker reads the same
 *   system-wide clock; a worker's copy is at most one loop iteration (plus the
 *   millisecond truncation) behind, which the table treats safely (time may even go
 *   backwards between workers), and which only ever makes waits longer, never shorter.
 *   The wall clock for absolute resets (Uphold, Switch) is nginx's cached time of the
 *   same update (ngx_timeofday()), read only when the style needs it.
 * - Several ratecore_limit directives in one location: a request is admitted only if all
 *   admit, and a denial consumes nothing. With two or more limits that have a key, every
 *   limit is first peeked (ratecore_table_peek, consumes nothing); only if all would admit
 *   are they checked in order, with ratecore_table_check_undoable. If a concurrent request
 *   makes a later check deny after an earlier one consumed, the request is denied and the
 *   earlier charges are given back (ratecore_table_undo): exactly, unless yet another
 *   request touched the same key meanwhile, in which case ratecore gives back only what is
 *   provably safe (never an over-admission; at worst a spurious later denial). Within one
 *   zone the quotas are all-or-nothing in ratecore itself.
 * - Decision reported in headers (as ratecore's composites and policies do): allowed -
 *   the limit with the smallest remaining (ties: the longest reset); denied - the denying
 *   limit with the largest retry_after (the first moment every limit admits).
 * - Library errors never take nginx down and never block traffic: the limit concerned is
 *   skipped (fail open), the error is logged, and $ratecore_status says ERROR.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <time.h>

#include <ratecore.h>

#include "ngx_http_ratecore_render.h"


#define NGX_HTTP_RATECORE_MAX_LIMITS     RATECORE_MAX_QUOTA_REPORTS
#define NGX_HTTP_RATECORE_SH_HEADER      256
#define NGX_HTTP_RATECORE_RENDER_BUF     1024

#if (defined __GNUC__ || defined __clang__)
#define NGX_HTTP_RATECORE_NOINLINE       __attribute__((noinline))
#else
#define NGX_HTTP_RATECORE_NOINLINE
#endif

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


/* the header fits its 256 bytes, which keep the region RATECORE_REGION_ALIGN-aligned */
typedef char ngx_http_ratecore_sh_fits[
    (sizeof(ngx_http_ratecore_sh_t) <= NGX_HTTP_RATECORE_SH_HEADER
     && NGX_HTTP_RATECORE_SH_HEADER % RATECORE_REGION_ALIGN == 0) ? 1 : -1];


typedef struct {
    ngx_str_t                   name;
    size_t                      size;
    ngx_uint_t                  nquotas;
    ratecore_quota              quotas[RATECORE_MAX_TABLE_LIMITS];
    ngx_str_t                   quota_names[RATECORE_MAX_TABLE_LIMITS];
    /* each quota's capacity (a decision's limit) in decimal, rendered once */
    uint64_t                    caps[RATECORE_MAX_TABLE_LIMITS];
    ngx_str_t                   cap_text[RATECORE_MAX_TABLE_LIMITS];
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


/* The request context is the pool cleanup itself (see ngx_http_ratecore_get_ctx):
 * its data pointer holds the $ratecore_status code, so marking a request costs one
 * small allocation. */
typedef ngx_pool_cleanup_t  ngx_http_ratecore_ctx_t;

#define ngx_http_ratecore_ctx_status(ctx)  ((ngx_uint_t) (uintptr_t) (ctx)->data)
#define ngx_http_ratecore_ctx_set(ctx, st) (ctx)->data = (void *) (uintptr_t) (st)


/* One limit's state while a request is decided. */
typedef struct {
    ngx_http_ratecore_limit_t  *limit;
    ngx_str_t                   key;
    uint64_t                    cost;
    ratecore_decision           d;
    ratecore_decision           states[RATECORE_MAX_TABLE_LIMITS];
    unsigned                    has_states:1;
    unsigned                    failed:1;
} ngx_http_ratecore_run_t;


static ngx_int_t ngx_http_ratecore_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ratecore_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ratecore_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_http_ratecore_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ratecore_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ratecore_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ratecore_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ratecore_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ratecore_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ratecore_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_ratecore_init_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_ratecore_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ratecore_commands[] = {

    { ngx_string("ratecore_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ratecore_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ratecore_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ratecore_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ratecore_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ratecore_loc_conf_t, log_level),
      &ngx_http_ratecore_log_levels },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ratecore_module_ctx = {
    ngx_http_ratecore_add_variables,       /* preconfiguration */
    ngx_http_ratecore_init,                /* postconfiguration */

    ngx_http_ratecore_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ratecore_create_loc_conf,     /* create location configuration */
    ngx_http_ratecore_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ratecore_module = {
    NGX_MODULE_V1,
    &ngx_http_ratecore_module_ctx,         /* module context */
    ngx_http_ratecore_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ratecore_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_ratecore_status_names[] = {
    ngx_null_string,
    ngx_string("PASSED"),
    ngx_string("REJECTED"),
    ngx_string("REJECTED_DRY_RUN"),
    ngx_string("NO_KEY"),
    ngx_string("ERROR")
};


static ngx_str_t  ngx_http_ratecore_problem_json =
    ngx_string("application/problem+json");
static ngx_str_t  ngx_http_ratecore_text_plain =
    ngx_string("text/plain; charset=utf-8");


/* ------------------------------------------------------------------------------------
 * Clocks
 */

/* Whether this worker uses nginx's cached clocks (set by init_process): ngx_current_msec
 * as the monotonic now, ngx_timeofday() as the wall clock. Both come from one
 * ngx_time_update() per event-loop iteration, so a request pays no clock read. */
static ngx_uint_t  ngx_http_ratecore_cached_clock;


static uint64_t
ngx_http_ratecore_clock_ns(clockid_t id)
{
    struct timespec  ts;

    if (clock_gettime(id, &ts) != 0 || ts.tv_sec < 0) {
        return 0;
    }

    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}


/* The decision's now: CLOCK_MONOTONIC, to the millisecond, as of the start of this
 * event-loop iteration. Truncation and staleness only make the now earlier than the
 * real time, so a reported wait is never shorter than the real one. */
static ngx_inline uint64_t
ngx_http_ratecore_mono_ns(void)
{
    if (ngx_http_ratecore_cached_clock) {
        return (uint64_t) ngx_current_msec * 1000000;
    }

    return ngx_http_ratecore_clock_ns(CLOCK_MONOTONIC);
}


/* The wall clock of the same moment, for absolute reset times. */
static uint64_t
ngx_http_ratecore_wall_ns(void)
{
    ngx_time_t  *tp;

    if (ngx_http_ratecore_cached_clock) {
        tp = ngx_timeofday();

        if (tp->sec < 0) {
            return 0;
        }

        return (uint64_t) tp->sec * 1000000000 + (uint64_t) tp->msec * 1000000;
    }

    return ngx_http_ratecore_clock_ns(CLOCK_REALTIME);
}


static uint64_t
ngx_http_ratecore_absdiff(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}


/* nginx computes ngx_current_msec from CLOCK_MONOTONIC where it has it (Linux); older
 * or other builds use the epoch. Decide by which clock it is closer to (the two are
 * decades apart, so a stale cached value cannot confuse them), and keep 64 bits. */
static ngx_int_t
ngx_http_ratecore_init_process(ngx_cycle_t *cycle)
{
    uint64_t  cached, mono, real;

    cached = (uint64_t) ngx_current_msec;
    mono = ngx_http_ratecore_clock_ns(CLOCK_MONOTONIC) / 1000000;
    real = ngx_http_ratecore_clock_ns(CLOCK_REALTIME) / 1000000;

    ngx_http_ratecore_cached_clock =
        sizeof(ngx_msec_t) >= sizeof(uint64_t) && mono != 0
        && ngx_http_ratecore_absdiff(cached, mono)
           < ngx_http_ratecore_absdiff(cached, real);

    if (!ngx_http_ratecore_cached_clock) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "ratecore: nginx's cached time is not CLOCK_MONOTONIC "
                      "here: reading the clocks on every limited request");
    }

    return NGX_OK;
}


/* ------------------------------------------------------------------------------------
 * Request context (kept across internal redirects through a pool cleanup, as the realip
 * module does: nginx zeroes module contexts on an internal redirect, and a request must
 * be counted once).
 */

static void
ngx_http_ratecore_cleanup(void *data)
{
    /* nothing to free: the cleanup only marks the context's place in the pool */
}


static ngx_http_ratecore_ctx_t *
ngx_http_ratecore_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_http_get_module_ctx(r, ngx_http_ratecore_module);

    if (cln == NULL && (r->internal || r->filter_finalize)) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_ratecore_cleanup) {
                ngx_http_set_ctx(r, cln, ngx_http_ratecore_module);
                break;
            }
        }
    }

    return cln;
}


static ngx_http_ratecore_ctx_t *
ngx_http_ratecore_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_ratecore_cleanup;
    ngx_http_ratecore_ctx_set(cln, 0);
    ngx_http_set_ctx(r, cln, ngx_http_ratecore_module);

    return cln;
}


/* ------------------------------------------------------------------------------------
 * Rendering helpers
 */

/* The header names of the seed styles, which the module renders itself (as
 * ratecore_render_headers would, byte for byte: see ngx_http_ratecore_set_headers). The
 * IETF style's lists are rendered by the library. */
typedef struct {
    ngx_str_t                   limit;
    ngx_str_t                   remaining;
    ngx_str_t                   reset;      /* empty: no reset header */
    ngx_uint_t                  reset_iso;  /* ISO 8601 rather than epoch seconds */
    ngx_str_t                   retry_after;
} ngx_http_ratecore_names_t;


static ngx_http_ratecore_names_t  ngx_http_ratecore_names[] = {
    [NGX_HTTP_RATECORE_STYLE_EVENERGY] = {
        ngx_string("x-ratelimit-limit"), ngx_string("x-ratelimit-remaining"),
        ngx_null_string, 0, ngx_string("retry-after") },
    [NGX_HTTP_RATECORE_STYLE_UPHOLD] = {
        ngx_string("X-RateLimit-Limit"), ngx_string("X-RateLimit-Remaining"),
        ngx_string("X-RateLimit-Reset"), 0, ngx_string("Retry-After") },
    [NGX_HTTP_RATECORE_STYLE_SWITCH] = {
        ngx_string("X-Rate-Limit-Limit"), ngx_string("X-Rate-Limit-Remaining"),
        ngx_string("X-Rate-Limit-Reset"), 1, ngx_string("Retry-After") },
};


static ngx_int_t
ngx_http_ratecore_add_header(ngx_http_request_t *r, ngx_str_t *name,
    u_char *value, u_char *end)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value.data = value;
    h->value.len = end - value;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/* Renders the IETF header lines for the combined decision with the library, straight
 * into pool memory (the response headers point into it). */
static ngx_int_t
ngx_http_ratecore_render_ietf(ngx_http_request_t *r, const ratecore_decision *d,
    const ratecore_quota_report *reports, size_t nreports, ngx_str_t *out)
{
    u_char           *buf;
    size_t            size, written;
    uint64_t          wall;
    ratecore_status   rc;

    /* unused by the IETF fields (relative times only), passed for completeness */
    wall = ngx_http_ratecore_wall_ns();
    size = nreports ? NGX_HTTP_RATECORE_RENDER_BUF : 256;

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    written = 0;
    rc = ratecore_render_headers(RATECORE_HEADER_STYLE_IETF, d, reports, nreports,
                                 wall, buf, size, &written);

    if (rc == RATECORE_STATUS_BUFFER_TOO_SMALL && written > size
        && written < 1024 * 1024)
    {
        size = written;
        buf = ngx_pnalloc(r->pool, size);
        if (buf == NULL) {
            return NGX_ERROR;
        }

        rc = ratecore_render_headers(RATECORE_HEADER_STYLE_IETF, d, reports,
                                     nreports, wall, buf, size, &written);
    }

    if (rc != RATECORE_STATUS_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ratecore_render_headers() failed: %s (status %uD)",
                      ratecore_status_message(rc), (uint32_t) rc);
        return NGX_ERROR;
    }

    out->data = buf;
    out->len = written;

    return NGX_OK;
}


/* Adds "Name: value\r\n" lines (in pool memory) to the response headers. */
static ngx_int_t
ngx_http_ratecore_push_headers(ngx_http_request_t *r, ngx_str_t *lines)
{
    u_char     *p, *end, *eol, *colon, *value, *vend;
    ngx_str_t   name;

    p = lines->data;
    end = lines->data + lines->len;

    while (p < end) {
        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        colon = memchr(p, ':', eol - p);

        if (colon != NULL && colon > p) {
            value = colon + 1;
            while (value < eol && *value == ' ') {
                value++;
            }

            vend = eol;
            if (vend > value && vend[-1] == '\r') {
                vend--;
            }

            name.data = p;
            name.len = colon - p;

            if (ngx_http_ratecore_add_header(r, &name, value, vend) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        p = eol + 1;
    }

    return NGX_OK;
}


/* Adds the style's rate-limit headers for the combined decision. Returns NGX_ERROR
 * only when memory runs out; a failed rendering is logged and the headers left out.
 *
 * The seed styles are written here rather than by ratecore_render_headers, straight
 * into headers_out: one small allocation, no line parsing, no FFI call, and the wall
 * clock only for a style with an absolute reset. The bytes are the library's:
 * decimal numbers, seconds rounded up, the reset at ceil((wall + reset_after) / 1 s)
 * with a saturating sum, Retry-After only on a denial (tests/nginx compare them). */
static ngx_int_t
ngx_http_ratecore_set_headers(ngx_http_request_t *r, ngx_http_ratecore_run_t *run,
    const ratecore_quota_report *reports, size_t nreports)
{
    u_char                     *p, *v;
    uint64_t                    wall, reset;
    ngx_str_t                   lines;
    ngx_uint_t                  q, style;
    ngx_http_ratecore_zone_t   *zone;
    ngx_http_ratecore_names_t  *names;
    const ratecore_decision    *d;

    style = run->limit->style;
    zone = run->limit->zone;
    d = &run->d;

    if (style == NGX_HTTP_RATECORE_STYLE_NONE) {
        return NGX_OK;
    }

    if (style >= sizeof(ngx_http_ratecore_names) / sizeof(ngx_http_ratecore_names[0])
        || ngx_http_ratecore_names[style].limit.len == 0)
    {
        if (ngx_http_ratecore_render_ietf(r, d, reports, nreports, &lines)
            != NGX_OK)
        {
            return NGX_OK;
        }

        return ngx_http_ratecore_push_headers(r, &lines);
    }

    names = &ngx_http_ratecore_names[style];

    /* four decimal u64 at most (20 digits each; an ISO date of u64 seconds is 21) */
    p = ngx_pnalloc(r->pool, 4 * NGX_HTTP_RATECORE_U64_LEN + 8);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* the limit is a quota's capacity, rendered at configuration time */
    for (q = 0; q < zone->nquotas && zone->caps[q] != d->limit; q++) {
        /* void */
    }

    if (q < zone->nquotas) {
        v = zone->cap_text[q].data;
        if (ngx_http_ratecore_add_header(r, &names->limit, v,
                                         v + zone->cap_text[q].len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        v = p;
        p = ngx_http_ratecore_u64(p, d->limit);
        if (ngx_http_ratecore_add_header(r, &names->limit, v, p) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    v = p;
    p = ngx_http_ratecore_u64(p, d->remaining);
    if (ngx_http_ratecore_add_header(r, &names->remaining, v, p) != NGX_OK) {
        return NGX_ERROR;
    }

    if (names->reset.len) {
        wall = ngx_http_ratecore_wall_ns();
        reset = ngx_http_ratecore_reset_s(wall, d->reset_after_ns);

        v = p;
        p = names->reset_iso ? ngx_http_ratecore_iso8601(p, reset)
                             : ngx_http_ratecore_u64(p, reset);
        if (ngx_http_ratecore_add_header(r, &names->reset, v, p) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (!d->allowed) {
        v = p;
        p = ngx_http_ratecore_u64(p, ngx_http_ratecore_ceil_s(d->retry_after_ns));
        if (ngx_http_ratecore_add_header(r, &names->retry_after, v, p)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* The most a quota admits at once: its limit, or its burst for a GCRA quota that sets
 * one (as the library measures cost; burst 0 means the limit). */
static uint64_t
ngx_http_ratecore_quota_cap(const ratecore_quota *quota)
{
    if (quota->algorithm == RATECORE_ALGORITHM_GCRA && quota->burst != 0) {
        return quota->burst;
    }

    return quota->limit;
}


/* The period of the quota that produced a zone's combined decision (for the text body:
 * "... requests per 1m"). Exact when the per-quota states are known; otherwise the quota
 * whose capacity equals the decision's limit (the shortest such period that still covers
 * the wait, else the longest). */
static uint64_t
ngx_http_ratecore_deciding_period(ngx_http_ratecore_run_t *run)
{
    uint64_t                   cap, best;
    ngx_uint_t                 i;
    ratecore_decision         *s;
    ngx_http_ratecore_zone_t  *zone;

    zone = run->limit->zone;

    if (zone->nquotas == 1) {
        return zone->quotas[0].period_ns;
    }

    if (run->has_states) {
        for (i = 0; i < zone->nquotas; i++) {
            s = &run->states[i];
            if (s->allowed == run->d.allowed && s->limit == run->d.limit
                && s->remaining == run->d.remaining
                && s->reset_after_ns == run->d.reset_after_ns
                && s->retry_after_ns == run->d.retry_after_ns)
            {
                return zone->quotas[i].period_ns;
            }
        }
    }

    best = 0;

    for (i = 0; i < zone->nquotas; i++) {
        cap = ngx_http_ratecore_quota_cap(&zone->quotas[i]);

        if (cap != run->d.limit) {
            continue;
        }

        if (zone->quotas[i].period_ns >= run->d.retry_after_ns) {
            if (best == 0 || best < run->d.retry_after_ns
                || zone->quotas[i].period_ns < best)
            {
                best = zone->quotas[i].period_ns;
            }

        } else if (best == 0 || (best < run->d.retry_after_ns
                                 && zone->quotas[i].period_ns > best))
        {
            best = zone->quotas[i].period_ns;
        }
    }

    return best ? best : zone->quotas[0].period_ns;
}


/* IETF reports for every quota of every enforcing limit. After a denial nothing was
 * consumed, so each quota's current state is reported (cost 0: a pure report). */
static size_t
ngx_http_ratecore_reports(ngx_http_request_t *r, ngx_http_ratecore_run_t *runs,
    ngx_uint_t nruns, ngx_uint_t denied, uint64_t now,
    ratecore_quota_report *reports)
{
    size_t                     n;
    ngx_uint_t                 i, q;
    ratecore_status            rc;
    ratecore_decision          d, states[RATECORE_MAX_TABLE_LIMITS];
    ngx_http_ratecore_run_t   *run;
    ngx_http_ratecore_zone_t  *zone;

    n = 0;

    for (i = 0; i < nruns; i++) {
        run = &runs[i];

        if (run->failed || run->limit->dry_run) {
            continue;
        }

        zone = run->limit->zone;

        if (denied) {
            if (zone->nquotas == 1) {
                rc = ratecore_table_peek(zone->table, run->key.data,
                                         run->key.len, now, 0, &d);
                states[0] = d;

            } else {
                /* A cost-0 check only reports the state: ratecore's all-or-nothing
                 * protocol returns after peeking every quota when the cost is 0, so it
                 * consumes nothing and claims no slot. (The C ABI has no
                 * ratecore_table_peek_each.) */
                rc = ratecore_table_check_each(zone->table, run->key.data,
                                               run->key.len, now, 0, states,
                                               RATECORE_MAX_TABLE_LIMITS, &d);
            }

            if (rc != RATECORE_STATUS_OK) {
                continue;
            }

        } else if (zone->nquotas == 1) {
            states[0] = run->d;

        } else if (run->has_states) {
            ngx_memcpy(states, run->states, sizeof(states));

        } else {
            continue;
        }

        for (q = 0; q < zone->nquotas && n < RATECORE_MAX_QUOTA_REPORTS; q++) {
            reports[n].name = zone->quota_names[q].data;
            reports[n].name_len = zone->quota_names[q].len;
            reports[n].period_ns = zone->quotas[q].period_ns;
            reports[n].decision = states[q];
            n++;
        }
    }

    return n;
}


/* ------------------------------------------------------------------------------------
 * Denial response
 */

/* Renders the denial body into pool memory (retrying once with the size the renderer
 * asks for). */
static ratecore_status
ngx_http_ratecore_render_body(ngx_http_request_t *r, ngx_http_ratecore_run_t *run,
    u_char **body, size_t *written)
{
    size_t                      size;
    u_char                     *buf;
    uint64_t                    period;
    ngx_uint_t                  attempt;
    ratecore_status             st;
    ngx_http_ratecore_limit_t  *limit;

    limit = run->limit;
    period = ngx_http_ratecore_deciding_period(run);
    size = 512;
    st = RATECORE_STATUS_OK;

    for (attempt = 0; attempt < 2; attempt++) {
        buf = ngx_pnalloc(r->pool, size);
        if (buf == NULL) {
            return RATECORE_STATUS_OUT_OF_MEMORY;
        }

        *written = 0;

        if (limit->body == NGX_HTTP_RATECORE_BODY_PROBLEM) {
            st = ratecore_render_problem_json(&run->d, limit->problem_type.data,
                                              limit->problem_type.len,
                                              limit->problem_title.data,
                                              limit->problem_title.len, buf,
                                              size, written);
        } else {
            st = ratecore_render_text_body(&run->d, limit->description.data,
                                           limit->description.len, period, buf,
                                           size, written);
        }

        if (st != RATECORE_STATUS_BUFFER_TOO_SMALL || *written <= size
            || *written > 1024 * 1024)
        {
            break;
        }

        size = *written;
    }

    *body = buf;

    return st;
}


static ngx_int_t
ngx_http_ratecore_send_denial(ngx_http_request_t *r,
    ngx_http_ratecore_run_t *run)
{
    size_t                      written;
    u_char                     *body;
    ngx_int_t                   rc;
    ngx_buf_t                  *b;
    ngx_str_t                  *ct;
    ngx_chain_t                 out;
    ratecore_status             st;
    ngx_http_ratecore_limit_t  *limit;

    limit = run->limit;

    written = 0;
    body = NULL;
    ct = NULL;

    if (limit->body == NGX_HTTP_RATECORE_BODY_PROBLEM
        || limit->body == NGX_HTTP_RATECORE_BODY_TEXT)
    {
        ct = limit->body == NGX_HTTP_RATECORE_BODY_PROBLEM
             ? &ngx_http_ratecore_problem_json : &ngx_http_ratecore_text_plain;

        st = ngx_http_ratecore_render_body(r, run, &body, &written);

        if (st != RATECORE_STATUS_OK) {
            /* the strings were checked at configuration time: not bad input */
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "ratecore: rendering the denial body failed: %s "
                          "(status %uD)", ratecore_status_message(st),
                          (uint32_t) st);
            return limit->status;
        }
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = limit->status;
    r->headers_out.content_length_n = written;

    if (ct != NULL) {
        r->headers_out.content_type_len = ct->len;
        r->headers_out.content_type = *ct;
        r->headers_out.content_type_lowcase = NULL;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* as ngx_http_send_response() does, for an empty body too */
    b->pos = written ? body : NULL;
    b->last = written ? body + written : NULL;
    b->memory = written ? 1 : 0;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


/* ------------------------------------------------------------------------------------
 * The handler (NGX_HTTP_PREACCESS_PHASE)
 */

static ngx_int_t
ngx_http_ratecore_cost(ngx_http_request_t *r, ngx_http_ratecore_limit_t *limit,
    uint64_t *cost)
{
    u_char     *p, *end;
    uint64_t    v;
    ngx_str_t   s;

    if (limit->cost_cv == NULL) {
        *cost = limit->cost;
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, limit->cost_cv, &s) != NGX_OK) {
        return NGX_ERROR;
    }

    v = 0;
    p = s.data;
    end = s.data + s.len;

    if (s.len == 0) {
        goto invalid;
    }

    for ( /* void */ ; p < end; p++) {
        if (*p < '0' || *p > '9') {
            goto invalid;
        }

        /* a cost beyond 64 bits saturates: it can never be admitted either */
        if (v > (UINT64_MAX - 9) / 10) {
            v = UINT64_MAX;
            continue;
        }

        v = v * 10 + (uint64_t) (*p - '0');
    }

    *cost = v;
    return NGX_OK;

invalid:

    /* info, as nginx logs what a client gets wrong: a client that leaves out or garbles
     * its cost header must not flood the error log at the default level. */
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ratecore: invalid cost \"%V\" for zone \"%V\" "
                  "(not a non-negative integer): counted as 1",
                  &s, &limit->zone->name);
    *cost = 1;
    return NGX_OK;
}


static void
ngx_http_ratecore_log_error(ngx_http_request_t *r, const char *what,
    ngx_http_ratecore_zone_t *zone, ratecore_status rc)
{
    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "ratecore: %s failed in zone \"%V\": %s (status %uD); "
                  "the limit is skipped for this request",
                  what, &zone->name, ratecore_status_message(rc),
                  (uint32_t) rc);
}


/* Runs ratecore_table_check (or _check_each for zones with several quotas); with a
 * charge, ratecore_table_check_undoable instead, keeping what it consumed in *charge for
 * ngx_http_ratecore_undo (a location with several limits). */
static ratecore_status
ngx_http_ratecore_check(ngx_http_ratecore_run_t *run, uint64_t now,
    ratecore_table_charge *charge)
{
    ratecore_status            rc;
    ngx_http_ratecore_zone_t  *zone;

    zone = run->limit->zone;

    if (zone->nquotas == 1) {
        if (charge == NULL) {
            return ratecore_table_check(zone->table, run->key.data, run->key.len,
                                        now, run->cost, &run->d);
        }

        return ratecore_table_check_undoable(zone->table, run->key.data,
                                             run->key.len, now, run->cost, NULL, 0,
                                             &run->d, charge);
    }

    if (charge == NULL) {
        rc = ratecore_table_check_each(zone->table, run->key.data, run->key.len,
                                       now, run->cost, run->states,
                                       RATECORE_MAX_TABLE_LIMITS, &run->d);
    } else {
        rc = ratecore_table_check_undoable(zone->table, run->key.data,
                                           run->key.len, now, run->cost, run->states,
                                           RATECORE_MAX_TABLE_LIMITS, &run->d, charge);
    }

    if (rc == RATECORE_STATUS_OK) {
        run->has_states = 1;
    }

    return rc;
}


/* Gives back the charges of runs[0 .. n) that consumed (a later limit denied), newest
 * first as ratecore's composites do, then re-reads each such run's state with a cost-0
 * peek, so the denial's headers show the zones as the request left them: untouched. */
static void
ngx_http_ratecore_undo(ngx_http_request_t *r, ngx_http_ratecore_run_t *runs,
    ratecore_table_charge *charges, ngx_uint_t n, uint64_t now)
{
    ngx_uint_t                 i;
    ratecore_status            rc;
    ngx_http_ratecore_run_t   *run;
    ngx_http_ratecore_zone_t  *zone;

    for (i = n; i-- > 0; /* void */) {
        run = &runs[i];
        if (run->failed || !run->d.allowed) {
            continue;
        }

        zone = run->limit->zone;

        rc = ratecore_table_undo(zone->table, &charges[i]);
        if (rc != RATECORE_STATUS_OK) {
            ngx_http_ratecore_log_error(r, "ratecore_table_undo()", zone, rc);
            continue;
        }

        if (zone->nquotas == 1) {
            rc = ratecore_table_peek(zone->table, run->key.data, run->key.len, now, 0,
                                     &run->d);
        } else {
            rc = ratecore_table_peek_each(zone->table, run->key.data, run->key.len,
                                          now, 0, run->states,
                                          RATECORE_MAX_TABLE_LIMITS, &run->d);
        }

        if (rc != RATECORE_STATUS_OK) {
            ngx_http_ratecore_log_error(r, "ratecore_table_peek()", zone, rc);
            run->failed = 1;
        }
    }
}


/* Evaluates a limit's key and cost into run. NGX_DECLINED: an empty key (not limited). */
static ngx_int_t
ngx_http_ratecore_prepare(ngx_http_request_t *r, ngx_http_ratecore_limit_t *limit,
    ngx_http_ratecore_run_t *run)
{
    ngx_http_variable_value_t  *vv;

    if (limit->key_index != NGX_ERROR) {
        /* a lone variable: its value as is, without the script engine's copy. As in
         * a complex value, a non-cacheable variable is evaluated afresh (flushed), and
         * a missing value is an empty key. */
        vv = ngx_http_get_flushed_variable(r, limit->key_index);

        if (vv == NULL || vv->not_found) {
            return NGX_DECLINED;
        }

        run->key.data = vv->data;
        run->key.len = vv->len;

    } else if (ngx_http_complex_value(r, &limit->key, &run->key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (run->key.len == 0) {
        return NGX_DECLINED;
    }

    run->limit = limit;
    run->has_states = 0;
    run->failed = 0;

    return ngx_http_ratecore_cost(r, limit, &run->cost);
}


/* The IETF headers: every enforcing quota's report, rendered by the library. Kept out
 * of line: its report array would otherwise sit in its callers' frames, and their
 * stack-protector and frame set-up are paid on every request of every style. */
static NGX_HTTP_RATECORE_NOINLINE ngx_int_t
ngx_http_ratecore_ietf_headers(ngx_http_request_t *r, ngx_http_ratecore_run_t *runs,
    ngx_uint_t nenforce, ngx_http_ratecore_run_t *deciding, ngx_uint_t denied,
    uint64_t now)
{
    size_t                  nreports;
    ratecore_quota_report   reports[RATECORE_MAX_QUOTA_REPORTS];

    nreports = ngx_http_ratecore_reports(r, runs, nenforce, denied, now, reports);

    return ngx_http_ratecore_set_headers(r, deciding, reports, nreports);
}


/* The style's headers for deciding, one of the nenforce enforcing runs. */
static ngx_int_t
ngx_http_ratecore_headers(ngx_http_request_t *r, ngx_http_ratecore_run_t *runs,
    ngx_uint_t nenforce, ngx_http_ratecore_run_t *deciding, ngx_uint_t denied,
    uint64_t now)
{
    if (deciding->limit->style == NGX_HTTP_RATECORE_STYLE_IETF) {
        return ngx_http_ratecore_ietf_headers(r, runs, nenforce, deciding, denied,
                                              now);
    }

    return ngx_http_ratecore_set_headers(r, deciding, NULL, 0);
}


/* A cost no quota of the deciding zone can ever admit: rejected, and logged as an
 * error (it is a configuration or client problem, not a rate). */
static ngx_int_t
ngx_http_ratecore_reject_impossible(ngx_http_request_t *r,
    ngx_http_ratecore_ctx_t *ctx, ngx_http_ratecore_run_t *deciding)
{
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ratecore: cost %uL exceeds what zone \"%V\" can ever "
                  "admit: request rejected", deciding->cost,
                  &deciding->limit->zone->name);
    ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_REJECTED);

    return deciding->limit->status;
}


/* A denial by deciding, one of the nenforce enforcing runs: marks and logs the request,
 * then answers with the style's headers and the limit's body. Returns the handler's
 * result. */
static ngx_int_t
ngx_http_ratecore_deny(ngx_http_request_t *r, ngx_http_ratecore_loc_conf_t *rlcf,
    ngx_http_ratecore_ctx_t *ctx, ngx_http_ratecore_run_t *runs,
    ngx_uint_t nenforce, ngx_http_ratecore_run_t *deciding, uint64_t now)
{
    ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_REJECTED);

    ngx_log_error(rlcf->log_level, r->connection->log, 0,
                  "limiting request by ratecore zone \"%V\": limit %uL, "
                  "retry after %uL ms", &deciding->limit->zone->name,
                  deciding->d.limit,
                  deciding->d.retry_after_ns == RATECORE_NEVER
                  ? (uint64_t) -1 : deciding->d.retry_after_ns / 1000000);

    if (ngx_http_ratecore_headers(r, runs, nenforce, deciding, 1, now) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (deciding->limit->body == NGX_HTTP_RATECORE_BODY_NGINX) {
        /* nginx's own error page (or the error_page set for the status) */
        return deciding->limit->status;
    }

    ngx_http_finalize_request(r, ngx_http_ratecore_send_denial(r, deciding));
    return NGX_DONE;
}


/* An admission: the style's headers for deciding, one of the nenforce enforcing runs
 * (the one with the least room left). Returns the handler's result. */
static ngx_int_t
ngx_http_ratecore_admit(ngx_http_request_t *r, ngx_http_ratecore_run_t *runs,
    ngx_uint_t nenforce, ngx_http_ratecore_run_t *deciding, uint64_t now)
{
    if (deciding->limit->style == NGX_HTTP_RATECORE_STYLE_NONE) {
        return NGX_DECLINED;
    }

    if (ngx_http_ratecore_headers(r, runs, nenforce, deciding, 0, now) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/* The common case, a location with one enforcing limit: what the general path's two
 * collection passes, peek round and combining loop come to for a single run, without
 * them (about 120 instructions per request less under callgrind). Same answers, same
 * log lines, same $ratecore_status. */
static ngx_int_t
ngx_http_ratecore_handle_one(ngx_http_request_t *r,
    ngx_http_ratecore_loc_conf_t *rlcf, ngx_http_ratecore_limit_t *limit,
    ngx_http_ratecore_ctx_t *ctx)
{
    uint64_t                  now;
    ngx_int_t                 rc_prepare;
    ratecore_status           rc;
    ngx_http_ratecore_run_t   run;

    rc_prepare = ngx_http_ratecore_prepare(r, limit, &run);

    if (rc_prepare == NGX_DECLINED) {
        ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_NO_KEY);
        return NGX_DECLINED;
    }

    if (rc_prepare != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    now = ngx_http_ratecore_mono_ns();
    rc = ngx_http_ratecore_check(&run, now, NULL);

    if (rc == RATECORE_STATUS_OK) {
        if (!run.d.allowed) {
            return ngx_http_ratecore_deny(r, rlcf, ctx, &run, 1, &run, now);
        }

        ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_PASSED);
        return ngx_http_ratecore_admit(r, &run, 1, &run, now);
    }

    if (rc == RATECORE_STATUS_COST_EXCEEDS_LIMIT) {
        return ngx_http_ratecore_reject_impossible(r, ctx, &run);
    }

    /* as the general path: the limit is skipped, and nothing is reported */
    ngx_http_ratecore_log_error(r, "ratecore_table_check()", limit->zone, rc);
    ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_ERROR);

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ratecore_handler(ngx_http_request_t *r)
{
    uint64_t                       now;
    ngx_int_t                      rc_prepare;
    ngx_uint_t                     i, n, pass, nenforce, denied, impossible;
    ngx_uint_t                     failed, nlimits, status;
    ratecore_status                rc;
    ngx_http_ratecore_ctx_t       *ctx;
    ngx_http_ratecore_run_t        runs[NGX_HTTP_RATECORE_MAX_LIMITS], *run;
    ngx_http_ratecore_run_t       *deciding;
    ngx_http_ratecore_limit_t     *limits;
    ngx_http_ratecore_loc_conf_t  *rlcf;
    ratecore_table_charge          charges[NGX_HTTP_RATECORE_MAX_LIMITS];

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_ratecore_module);

    /* merge_loc_conf turns "inherit nothing" into NULL */
    if (rlcf->limits == NULL) {
        return NGX_DECLINED;
    }

    /* The main request is decided once; subrequests and internal redirects pass. */
    if (r != r->main || ngx_http_ratecore_get_ctx(r) != NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_ratecore_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    limits = rlcf->limits->elts;
    nlimits = rlcf->limits->nelts;

    if (nlimits == 1 && !limits[0].dry_run) {
        return ngx_http_ratecore_handle_one(r, rlcf, &limits[0], ctx);
    }

    n = 0;
    nenforce = 0;

    /* enforcing limits first (in configuration order), then dry-run ones */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < nlimits && n < NGX_HTTP_RATECORE_MAX_LIMITS; i++) {
            if ((ngx_uint_t) limits[i].dry_run != pass) {
                continue;
            }

            rc_prepare = ngx_http_ratecore_prepare(r, &limits[i], &runs[n]);

            if (rc_prepare == NGX_DECLINED) {
                continue;
            }

            if (rc_prepare != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            n++;
        }

        if (pass == 0) {
            nenforce = n;
        }
    }

    if (n == 0) {
        ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_NO_KEY);
        return NGX_DECLINED;
    }

    now = ngx_http_ratecore_mono_ns();
    deciding = NULL;
    denied = 0;
    impossible = 0;
    failed = 0;

    /* 1. Several enforcing limits: peek them all; any denial denies with nothing
     *    consumed. */
    if (nenforce > 1) {
        for (i = 0; i < nenforce; i++) {
            run = &runs[i];
            rc = ratecore_table_peek(run->limit->zone->table, run->key.data,
                                     run->key.len, now, run->cost, &run->d);

            if (rc == RATECORE_STATUS_COST_EXCEEDS_LIMIT) {
                impossible = 1;
                deciding = run;
                break;
            }

            if (rc != RATECORE_STATUS_OK) {
                ngx_http_ratecore_log_error(r, "ratecore_table_peek()",
                                            run->limit->zone, rc);
                run->failed = 1;
                failed = 1;
                continue;
            }

            if (!run->d.allowed) {
                denied = 1;
            }
        }
    }

    /* 2. All would admit: check (consume) in order. With several limits each charge is
     *    kept, and given back if a later limit denies after all (a concurrent request
     *    changed it since the peek): a denial consumes nothing. */
    if (!denied && !impossible) {
        for (i = 0; i < nenforce; i++) {
            run = &runs[i];
            if (run->failed) {
                continue;
            }

            rc = ngx_http_ratecore_check(run, now,
                                         nenforce > 1 ? &charges[i] : NULL);

            if (rc == RATECORE_STATUS_COST_EXCEEDS_LIMIT) {
                impossible = 1;
                deciding = run;
                break;
            }

            if (rc != RATECORE_STATUS_OK) {
                ngx_http_ratecore_log_error(r, "ratecore_table_check()",
                                            run->limit->zone, rc);
                run->failed = 1;
                failed = 1;
                continue;
            }

            if (!run->d.allowed) {
                denied = 1;
                break;
            }
        }

        if (denied || impossible) {
            ngx_http_ratecore_undo(r, runs, charges, i, now);
        }
    }

    if (impossible) {
        return ngx_http_ratecore_reject_impossible(r, ctx, deciding);
    }

    /* 3. The combined decision. */
    deciding = NULL;

    for (i = 0; i < nenforce; i++) {
        run = &runs[i];
        if (run->failed) {
            continue;
        }

        if (denied) {
            if (run->d.allowed) {
                continue;
            }

            if (deciding == NULL
                || run->d.retry_after_ns > deciding->d.retry_after_ns)
            {
                deciding = run;
            }

        } else if (deciding == NULL
                   || run->d.remaining < deciding->d.remaining
                   || (run->d.remaining == deciding->d.remaining
                       && run->d.reset_after_ns > deciding->d.reset_after_ns))
        {
            deciding = run;
        }
    }

    if (denied && deciding != NULL) {
        return ngx_http_ratecore_deny(r, rlcf, ctx, runs, nenforce, deciding, now);
    }

    /* 4. Admitted by every enforcing limit: dry-run limits are counted as usual, and
     *    their denials only logged. */
    status = failed ? NGX_HTTP_RATECORE_ERROR : NGX_HTTP_RATECORE_PASSED;

    for (i = nenforce; i < n; i++) {
        run = &runs[i];
        rc = ngx_http_ratecore_check(run, now, NULL);

        if (rc == RATECORE_STATUS_OK && run->d.allowed) {
            continue;
        }

        if (rc == RATECORE_STATUS_OK) {
            ngx_log_error(rlcf->log_level, r->connection->log, 0,
                          "limiting request, dry run, by ratecore zone "
                          "\"%V\": limit %uL, retry after %uL ms",
                          &run->limit->zone->name, run->d.limit,
                          run->d.retry_after_ns == RATECORE_NEVER
                          ? (uint64_t) -1 : run->d.retry_after_ns / 1000000);
            if (status == NGX_HTTP_RATECORE_PASSED) {
                status = NGX_HTTP_RATECORE_REJECTED_DRY;
            }
            continue;
        }

        if (rc == RATECORE_STATUS_COST_EXCEEDS_LIMIT) {
            /* The C ABI leaves the decision unwritten on an error, so nothing of
             * run->d may be read here. */
            ngx_log_error(rlcf->log_level, r->connection->log, 0,
                          "limiting request, dry run, by ratecore zone "
                          "\"%V\": cost %uL exceeds what it can ever admit",
                          &run->limit->zone->name, run->cost);
            if (status == NGX_HTTP_RATECORE_PASSED) {
                status = NGX_HTTP_RATECORE_REJECTED_DRY;
            }
            continue;
        }

        ngx_http_ratecore_log_error(r, "ratecore_table_check()",
                                    run->limit->zone, rc);
        status = NGX_HTTP_RATECORE_ERROR;
    }

    ngx_http_ratecore_ctx_set(ctx, status);

    if (deciding == NULL) {
        /* no enforcing limit answered: nothing to report */
        return NGX_DECLINED;
    }

    return ngx_http_ratecore_admit(r, runs, nenforce, deciding, now);
}


static ngx_int_t
ngx_http_ratecore_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                status;
    ngx_http_ratecore_ctx_t  *ctx;

    ctx = ngx_http_ratecore_get_ctx(r->main);
    status = ctx ? ngx_http_ratecore_ctx_status(ctx) : 0;

    if (status == 0 || status > NGX_HTTP_RATECORE_ERROR) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_ratecore_status_names[status].len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ngx_http_ratecore_status_names[status].data;

    return NGX_OK;
}


/* ------------------------------------------------------------------------------------
 * Shared memory zone
 */

static void
ngx_http_ratecore_sh_fill(ngx_http_ratecore_zone_t *zone,
    ngx_http_ratecore_sh_t *sh)
{
    ngx_uint_t  i;

    ngx_memzero(sh, sizeof(ngx_http_ratecore_sh_t));
    ngx_memcpy(sh->magic, "RCNGXZN1", 8);
    sh->region_len = zone->region_size;
    sh->capacity = zone->capacity;
    sh->full_policy = zone->full_policy;
    sh->nquotas = (uint32_t) zone->nquotas;

    for (i = 0; i < zone->nquotas; i++) {
        sh->quotas[i] = zone->quotas[i];
    }
}


static ngx_int_t
ngx_http_ratecore_sh_same(ngx_http_ratecore_sh_t *a, ngx_http_ratecore_sh_t *b)
{
    ngx_uint_t  i;

    if (ngx_memcmp(a->magic, b->magic, 8) != 0
        || a->region_len != b->region_len || a->capacity != b->capacity
        || a->full_policy != b->full_policy || a->nquotas != b->nquotas
        || a->nquotas > RATECORE_MAX_TABLE_LIMITS)
    {
        return 0;
    }

    for (i = 0; i < a->nquotas; i++) {
        if (a->quotas[i].limit != b->quotas[i].limit
            || a->quotas[i].period_ns != b->quotas[i].period_ns
            || a->quotas[i].burst != b->quotas[i].burst
            || a->quotas[i].algorithm != b->quotas[i].algorithm
            || a->quotas[i].sub_windows != b->quotas[i].sub_windows)
        {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_ratecore_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ratecore_zone_t  *ozone = data;

    u_char                    *region;
    ratecore_status            rc;
    ngx_slab_pool_t           *shpool;
    ngx_http_ratecore_sh_t    *sh, want;
    ngx_http_ratecore_zone_t  *zone;

    zone = shm_zone->data;
    ngx_http_ratecore_sh_fill(zone, &want);

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ozone != NULL || shm_zone->shm.exists) {

        /* the zone is kept over a reload: attach to the running table */

        sh = ozone ? ozone->sh : shpool->data;

        if (sh == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ratecore_zone \"%V\": the kept shared memory holds "
                          "no table", &zone->name);
            return NGX_ERROR;
        }

        if (!ngx_http_ratecore_sh_same(sh, &want)) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ratecore_zone \"%V\" changed its quotas, capacity or "
                          "when_full, but nginx keeps a zone of the same name "
                          "and size over a reload, and the running table "
                          "cannot be replaced while old workers may still use "
                          "it: give the zone a new name= or a different size= "
                          "to start a fresh table, or restart nginx",
                          &zone->name);
            return NGX_ERROR;
        }

        region = (u_char *) sh + NGX_HTTP_RATECORE_SH_HEADER;

        rc = ratecore_table_attach_region(region, zone->region_size,
                                          &zone->table);
        if (rc != RATECORE_STATUS_OK) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ratecore_zone \"%V\": attaching to the kept table "
                          "failed: %s (status %uD)", &zone->name,
                          ratecore_status_message(rc), (uint32_t) rc);
            zone->table = NULL;
            return NGX_ERROR;
        }

        zone->sh = sh;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, NGX_HTTP_RATECORE_SH_HEADER + zone->region_size);

    if (sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ratecore_zone \"%V\": size=%uz is too small for a "
                      "table of %uz bytes", &zone->name, zone->size,
                      zone->region_size);
        return NGX_ERROR;
    }

    region = (u_char *) sh + NGX_HTTP_RATECORE_SH_HEADER;

    if ((uintptr_t) region % RATECORE_REGION_ALIGN != 0) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ratecore_zone \"%V\": shared memory at %p is not "
                      "%d-byte aligned", &zone->name, region,
                      RATECORE_REGION_ALIGN);
        return NGX_ERROR;
    }

    ngx_memcpy(sh, &want, sizeof(ngx_http_ratecore_sh_t));

    rc = ratecore_table_init_region(region, zone->region_size, zone->quotas,
                                    zone->nquotas, zone->capacity,
                                    zone->full_policy, &zone->table);
    if (rc != RATECORE_STATUS_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ratecore_zone \"%V\": initialising the table failed: "
                      "%s (status %uD)", &zone->name,
                      ratecore_status_message(rc), (uint32_t) rc);
        zone->table = NULL;
        return NGX_ERROR;
    }

    zone->sh = sh;
    shpool->data = sh;

    ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                  "ratecore_zone \"%V\": %uL keys per quota, %ui quota%s, "
                  "%uz-byte table in a %uz-byte zone", &zone->name,
                  zone->capacity, zone->nquotas, zone->nquotas == 1 ? "" : "s",
                  zone->region_size, zone->size);

    return NGX_OK;
}


static void
ngx_http_ratecore_zone_cleanup(void *data)
{
    ngx_http_ratecore_zone_t  *zone = data;

    /* frees the handle only; the region lives in the shared zone */
    ratecore_table_free(zone->table);
    zone->table = NULL;
}


/* ------------------------------------------------------------------------------------
 * Configuration
 */

static void *
ngx_http_ratecore_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ratecore_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ratecore_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rmcf->zones, cf->pool, 4,
                       sizeof(ngx_http_ratecore_zone_t *))
        != NGX_OK
        || ngx_array_init(&rmcf->levels, cf->pool, 4, sizeof(ngx_array_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


static void *
ngx_http_ratecore_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ratecore_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ratecore_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->limits = NGX_CONF_UNSET_PTR;
    conf->log_level = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_ratecore_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ratecore_loc_conf_t *prev = parent;
    ngx_http_ratecore_loc_conf_t *conf = child;

    if (conf->limits == NGX_CONF_UNSET_PTR) {
        conf->limits = prev->limits;
    }

    if (conf->limits == NGX_CONF_UNSET_PTR) {
        conf->limits = NULL;
    }

    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_ERR);

    return NGX_CONF_OK;
}


/* ------------------------------------------------------------------------------------
 * Directive parameters ("name=value")
 */

static ngx_conf_enum_t  ngx_http_ratecore_algorithms[] = {
    { ngx_string("gcra"), RATECORE_ALGORITHM_GCRA },
    { ngx_string("fixed_window"), RATECORE_ALGORITHM_FIXED_WINDOW },
    { ngx_string("sliding_window"), RATECORE_ALGORITHM_SLIDING_WINDOW },
    { ngx_string("sliding_window_strict"), RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ratecore_full_policies[] = {
    { ngx_string("evict"), RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST },
    { ngx_string("deny"), RATECORE_FULL_POLICY_DENY },
    { ngx_string("allow"), RATECORE_FULL_POLICY_ALLOW },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ratecore_styles[] = {
    { ngx_string("evenergy"), NGX_HTTP_RATECORE_STYLE_EVENERGY },
    { ngx_string("uphold"), NGX_HTTP_RATECORE_STYLE_UPHOLD },
    { ngx_string("switch"), NGX_HTTP_RATECORE_STYLE_SWITCH },
    { ngx_string("ietf"), NGX_HTTP_RATECORE_STYLE_IETF },
    { ngx_string("none"), NGX_HTTP_RATECORE_STYLE_NONE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ratecore_on_off[] = {
    { ngx_string("on"), 1 },
    { ngx_string("off"), 0 },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ratecore_bodies[] = {
    { ngx_string("text"), NGX_HTTP_RATECORE_BODY_TEXT },
    { ngx_string("problem+json"), NGX_HTTP_RATECORE_BODY_PROBLEM },
    { ngx_string("none"), NGX_HTTP_RATECORE_BODY_NONE },
    { ngx_string("nginx"), NGX_HTTP_RATECORE_BODY_NGINX },
    { ngx_null_string, 0 }
};


/* The value of one of e's names. */
static ngx_int_t
ngx_http_ratecore_enum(ngx_conf_enum_t *e, u_char *p, size_t len,
    ngx_uint_t *out)
{
    for ( /* void */ ; e->name.len; e++) {
        if (e->name.len == len && ngx_strncmp(e->name.data, p, len) == 0) {
            *out = e->value;
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


/* "key=value": when arg starts with the key, sets *value and returns 1. */
static ngx_int_t
ngx_http_ratecore_param(ngx_str_t *arg, const char *key, ngx_str_t *value)
{
    size_t  len;

    len = ngx_strlen(key);

    if (arg->len < len || ngx_strncmp(arg->data, key, len) != 0) {
        return 0;
    }

    value->data = arg->data + len;
    value->len = arg->len - len;

    return 1;
}


/* Logs "<directive>: invalid <key>="<value>" (expected <expected>)" for the parameter
 * arg whose value is value; every directive's bad values read alike. */
static char *
ngx_http_ratecore_invalid(ngx_conf_t *cf, const char *directive, ngx_str_t *arg,
    ngx_str_t *value, const char *expected)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "%s: invalid %*s\"%V\" (expected %s)", directive,
                       (size_t) (value->data - arg->data), arg->data, value,
                       expected);
    return NGX_CONF_ERROR;
}


/* A decimal integer without sign, 0 to UINT64_MAX. */
static ngx_int_t
ngx_http_ratecore_parse_u64(u_char *p, size_t len, uint64_t *out)
{
    uint64_t  v, digit;

    if (len == 0) {
        return NGX_ERROR;
    }

    v = 0;

    while (len--) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        digit = (uint64_t) (*p++ - '0');

        if (v > (UINT64_MAX - digit) / 10) {
            return NGX_ERROR;
        }

        v = v * 10 + digit;
    }

    *out = v;

    return NGX_OK;
}


/* An nginx time ("500ms", "10s", "5m", "1h", "1d", "1h30m"; a bare number is seconds)
 * in nanoseconds. */
static ngx_int_t
ngx_http_ratecore_parse_duration(u_char *p, size_t len, uint64_t *ns)
{
    ngx_str_t  s;
    ngx_int_t  ms;

    s.data = p;
    s.len = len;

    if (len == 0) {
        return NGX_ERROR;
    }

    ms = ngx_parse_time(&s, 0);

    if (ms == NGX_ERROR || ms <= 0
        || (uint64_t) ms > UINT64_MAX / 1000000)
    {
        return NGX_ERROR;
    }

    *ns = (uint64_t) ms * 1000000;

    return NGX_OK;
}


/* the name an enum table gives value (for messages) */
static ngx_str_t *
ngx_http_ratecore_enum_name(ngx_conf_enum_t *e, ngx_uint_t value)
{
    static ngx_str_t  unknown = ngx_string("unknown");

    for ( /* void */ ; e->name.len; e++) {
        if (e->value == value) {
            return &e->name;
        }
    }

    return &unknown;
}


/* Applies the options a quota's algorithm allows; sets the strict window's default
 * number of sub-windows (60). */
static char *
ngx_http_ratecore_finish_quota(ngx_conf_t *cf, ngx_str_t *zone,
    ngx_uint_t index, ratecore_quota *q, ngx_flag_t have_burst,
    ngx_flag_t have_sub_windows)
{
    if (have_burst && q->algorithm != RATECORE_ALGORITHM_GCRA) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone \"%V\": quota %ui: burst= applies "
                           "only to algorithm gcra", zone, index);
        return NGX_CONF_ERROR;
    }

    if (have_sub_windows
        && q->algorithm != RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone \"%V\": quota %ui: sub_windows= "
                           "applies only to algorithm sliding_window_strict",
                           zone, index);
        return NGX_CONF_ERROR;
    }

    if (q->algorithm == RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT
        && !have_sub_windows)
    {
        q->sub_windows = 60;
    }

    return NGX_CONF_OK;
}


/* quota=<algorithm>:<limit>/<period>[:burst=<n>][:sub_windows=<n>] */
static char *
ngx_http_ratecore_parse_quota(ngx_conf_t *cf, ngx_str_t *zone, ngx_uint_t index,
    ngx_str_t *text, ratecore_quota *q)
{
    u_char      *p, *end, *colon, *slash, *next;
    uint64_t     v;
    ngx_str_t    opt;
    ngx_uint_t   algorithm;
    ngx_flag_t   have_burst, have_sub_windows;

    ngx_memzero(q, sizeof(ratecore_quota));
    have_burst = 0;
    have_sub_windows = 0;

    p = text->data;
    end = text->data + text->len;

    colon = ngx_strlchr(p, end, ':');
    if (colon == NULL) {
        goto invalid;
    }

    if (ngx_http_ratecore_enum(ngx_http_ratecore_algorithms, p, colon - p,
                               &algorithm)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone \"%V\": quota=\"%V\": unknown "
                           "algorithm \"%*s\" (expected gcra, fixed_window, "
                           "sliding_window or sliding_window_strict)",
                           zone, text, (size_t) (colon - p), p);
        return NGX_CONF_ERROR;
    }

    q->algorithm = (uint32_t) algorithm;

    p = colon + 1;
    slash = ngx_strlchr(p, end, '/');
    if (slash == NULL) {
        goto invalid;
    }

    if (ngx_http_ratecore_parse_u64(p, slash - p, &q->limit) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone \"%V\": quota=\"%V\": invalid limit "
                           "\"%*s\" (expected a whole number)",
                           zone, text, (size_t) (slash - p), p);
        return NGX_CONF_ERROR;
    }

    p = slash + 1;
    next = ngx_strlchr(p, end, ':');
    if (next == NULL) {
        next = end;
    }

    if (ngx_http_ratecore_parse_duration(p, next - p, &q->period_ns) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone \"%V\": quota=\"%V\": invalid period "
                           "\"%*s\" (expected an nginx time such as 500ms, 10s, "
                           "5m, 1h or 1d)", zone, text, (size_t) (next - p), p);
        return NGX_CONF_ERROR;
    }

    while (next < end) {
        p = next + 1;
        next = ngx_strlchr(p, end, ':');
        if (next == NULL) {
            next = end;
        }

        opt.data = p;
        opt.len = next - p;

        if (opt.len > 6 && ngx_strncmp(p, "burst=", 6) == 0) {
            if (ngx_http_ratecore_parse_u64(p + 6, opt.len - 6, &v) != NGX_OK) {
                goto invalid;
            }
            q->burst = v;
            have_burst = 1;

        } else if (opt.len > 12 && ngx_strncmp(p, "sub_windows=", 12) == 0) {
            if (ngx_http_ratecore_parse_u64(p + 12, opt.len - 12, &v) != NGX_OK
                || v > UINT32_MAX)
            {
                goto invalid;
            }
            q->sub_windows = (uint32_t) v;
            have_sub_windows = 1;

        } else {
            goto invalid;
        }
    }

    return ngx_http_ratecore_finish_quota(cf, zone, index, q, have_burst,
                                          have_sub_windows);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ratecore_zone \"%V\": invalid quota=\"%V\" (expected "
                       "quota=<algorithm>:<limit>/<period>[:burst=<n>]"
                       "[:sub_windows=<n>], e.g. quota=fixed_window:20/1m)",
                       zone, text);
    return NGX_CONF_ERROR;
}


/* The shared memory a zone needs for a region of region_size bytes: nginx puts a slab
 * allocator at the start of every zone (pool header, per-size-class slots and stats, one
 * page descriptor per page, page alignment); the region and its 256-byte header take
 * whole pages. */
static size_t
ngx_http_ratecore_zone_needed(size_t region_size)
{
    size_t  pages, needed, shift_slots;

    pages = (NGX_HTTP_RATECORE_SH_HEADER + region_size + ngx_pagesize - 1)
            / ngx_pagesize;

    shift_slots = ngx_pagesize_shift;   /* more than the size classes nginx uses */

    needed = sizeof(ngx_slab_pool_t)
             + shift_slots * (sizeof(ngx_slab_page_t) + sizeof(ngx_slab_stat_t))
             + ngx_pagesize                                  /* alignment */
             + (pages + 1) * (ngx_pagesize + sizeof(ngx_slab_page_t));

    needed = ngx_align(needed, ngx_pagesize);

    if (needed < 8 * ngx_pagesize) {
        needed = 8 * ngx_pagesize;
    }

    return needed;
}

static ngx_http_ratecore_zone_t *
ngx_http_ratecore_find_zone(ngx_http_ratecore_main_conf_t *rmcf, ngx_str_t *name)
{
    ngx_uint_t                  i;
    ngx_http_ratecore_zone_t  **zp;

    zp = rmcf->zones.elts;

    for (i = 0; i < rmcf->zones.nelts; i++) {
        if (zp[i]->name.len == name->len
            && ngx_strncmp(zp[i]->name.data, name->data, name->len) == 0)
        {
            return zp[i];
        }
    }

    return NULL;
}


static char *
ngx_http_ratecore_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ratecore_main_conf_t  *rmcf = conf;

    u_char                     *p;
    size_t                      region, needed, best_region;
    ssize_t                     size;
    uint64_t                    v, capacity, best;
    ngx_str_t                  *value, s, name;
    ngx_uint_t                  i, nq, e;
    ngx_flag_t                  have_alg, have_limit, have_period, have_burst;
    ngx_flag_t                  have_sub;
    ngx_str_t                   quota_text[RATECORE_MAX_TABLE_LIMITS];
    ratecore_quota              single;
    ratecore_status             rc;
    ngx_pool_cleanup_t         *cln;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_ratecore_zone_t   *zone, **zp;

    value = cf->args->elts;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ratecore_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    size = 0;
    ngx_str_null(&name);
    ngx_memzero(&single, sizeof(ratecore_quota));
    have_alg = 0;
    have_limit = 0;
    have_period = 0;
    have_burst = 0;
    have_sub = 0;
    capacity = 0;                               /* auto */
    nq = 0;
    zone->full_policy = RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_ratecore_param(&value[i], "name=", &s)) {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ratecore_zone: name= must not be empty");
                return NGX_CONF_ERROR;
            }

            /* the name is quoted in IETF headers and logs: keep it plain */
            for (p = s.data; p < s.data + s.len; p++) {
                if (*p <= ' ' || *p == '"' || *p == '\\' || *p > '~') {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "ratecore_zone: name=\"%V\" may hold "
                                       "only printable characters without "
                                       "spaces, quotes or backslashes", &s);
                    return NGX_CONF_ERROR;
                }
            }

            name = s;

        } else if (ngx_http_ratecore_param(&value[i], "size=", &s)) {
            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size <= 0) {
                return ngx_http_ratecore_invalid(cf, "ratecore_zone", &value[i],
                                                 &s, "e.g. 64k, 10m, 1g");
            }

        } else if (ngx_http_ratecore_param(&value[i], "algorithm=", &s)) {
            if (ngx_http_ratecore_enum(ngx_http_ratecore_algorithms, s.data,
                                       s.len, &e)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_zone", &value[i],
                           &s, "gcra, fixed_window, sliding_window or "
                               "sliding_window_strict");
            }
            single.algorithm = (uint32_t) e;
            have_alg = 1;

        } else if (ngx_http_ratecore_param(&value[i], "limit=", &s)) {
            if (ngx_http_ratecore_parse_u64(s.data, s.len, &single.limit)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_zone", &value[i],
                                                 &s, "a whole number");
            }
            have_limit = 1;

        } else if (ngx_http_ratecore_param(&value[i], "period=", &s)) {
            if (ngx_http_ratecore_parse_duration(s.data, s.len,
                                                 &single.period_ns)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_zone", &value[i],
                           &s, "an nginx time such as 500ms, 10s, 5m, 1h or 1d");
            }
            have_period = 1;

        } else if (ngx_http_ratecore_param(&value[i], "burst=", &s)) {
            if (ngx_http_ratecore_parse_u64(s.data, s.len, &single.burst)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_zone", &value[i],
                                                 &s, "a whole number");
            }
            have_burst = 1;

        } else if (ngx_http_ratecore_param(&value[i], "sub_windows=", &s)) {
            if (ngx_http_ratecore_parse_u64(s.data, s.len, &v) != NGX_OK
                || v > UINT32_MAX)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_zone", &value[i],
                                                 &s, "a whole number");
            }
            single.sub_windows = (uint32_t) v;
            have_sub = 1;

        } else if (ngx_http_ratecore_param(&value[i], "quota=", &s)) {
            if (nq == RATECORE_MAX_TABLE_LIMITS) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ratecore_zone: at most %d quota= per zone",
                                   RATECORE_MAX_TABLE_LIMITS);
                return NGX_CONF_ERROR;
            }

            /* parsed once name= is known (it may come later), for messages
             * that name the zone */
            quota_text[nq++] = s;

        } else if (ngx_http_ratecore_param(&value[i], "capacity=", &s)) {
            if (s.len == 4 && ngx_strncmp(s.data, "auto", 4) == 0) {
                capacity = 0;

            } else if (ngx_http_ratecore_parse_u64(s.data, s.len, &capacity)
                       != NGX_OK
                       || capacity == 0
                       || capacity > RATECORE_MAX_TABLE_CAPACITY)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ratecore_zone: invalid capacity=\"%V\" "
                                   "(expected auto or 1 to %uL keys)", &s,
                                   (uint64_t) RATECORE_MAX_TABLE_CAPACITY);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_ratecore_param(&value[i], "when_full=", &s)) {
            if (ngx_http_ratecore_enum(ngx_http_ratecore_full_policies, s.data,
                                       s.len, &e)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_zone", &value[i],
                                                 &s, "evict, deny or allow");
            }
            zone->full_policy = (uint32_t) e;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone: unknown parameter \"%V\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone: name= is required");
        return NGX_CONF_ERROR;
    }

    if (size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone \"%V\": size= is required "
                           "(e.g. size=10m)", &name);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < nq; i++) {
        if (ngx_http_ratecore_parse_quota(cf, &name, i + 1, &quota_text[i],
                                          &zone->quotas[i])
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (nq) {
        if (have_alg || have_limit || have_period || have_burst || have_sub) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": use either quota= "
                               "(one or more) or algorithm= limit= period=, "
                               "not both", &name);
            return NGX_CONF_ERROR;
        }

    } else {
        if (!have_alg || !have_limit || !have_period) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": algorithm=, limit= and "
                               "period= are required (or one or more "
                               "quota=<algorithm>:<limit>/<period>)", &name);
            return NGX_CONF_ERROR;
        }

        zone->quotas[0] = single;
        nq = 1;

        if (ngx_http_ratecore_finish_quota(cf, &name, 1, &zone->quotas[0],
                                           have_burst, have_sub)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    zone->name = name;
    zone->size = (size_t) size;
    zone->nquotas = nq;

    /* every quota on its own first, for a message that names it */
    for (i = 0; i < nq; i++) {
        rc = ratecore_table_region_size(&zone->quotas[i], 1, 8,
                                        zone->full_policy, &region);
        if (rc != RATECORE_STATUS_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": quota %ui (%V, limit "
                               "%uL per %uL ms) is invalid: %s", &name, i + 1,
                               ngx_http_ratecore_enum_name(
                                   ngx_http_ratecore_algorithms,
                                   zone->quotas[i].algorithm),
                               zone->quotas[i].limit,
                               zone->quotas[i].period_ns / 1000000,
                               ratecore_status_message(rc));
            return NGX_CONF_ERROR;
        }
    }

    if (capacity == 0) {
        /* capacity=auto: the largest power of two that fits size= */
        best = 0;
        best_region = 0;

        for (capacity = 8; capacity <= RATECORE_MAX_TABLE_CAPACITY;
             capacity *= 2)
        {
            rc = ratecore_table_region_size(zone->quotas, nq, capacity,
                                            zone->full_policy, &region);
            if (rc != RATECORE_STATUS_OK
                || ngx_http_ratecore_zone_needed(region) > zone->size)
            {
                if (best == 0 && rc == RATECORE_STATUS_OK) {
                    best_region = region;
                }
                break;
            }

            best = capacity;
            best_region = region;
        }

        if (best == 0 && best_region == 0) {
            /* even the smallest table of all the quotas together is invalid */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": its quotas together "
                               "cannot make a table: %s", &name,
                               ratecore_status_message(rc));
            return NGX_CONF_ERROR;
        }

        if (best == 0) {
            needed = ngx_http_ratecore_zone_needed(best_region);
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": size=%z is too small: "
                               "the smallest table (8 keys) needs %uz bytes "
                               "of shared memory, use size=%uzk or more",
                               &name, size, needed,
                               (needed + 1023) / 1024);
            return NGX_CONF_ERROR;
        }

        capacity = best;
        region = best_region;

    } else {
        rc = ratecore_table_region_size(zone->quotas, nq, capacity,
                                        zone->full_policy, &region);
        if (rc != RATECORE_STATUS_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": capacity=%uL is "
                               "invalid: %s", &name, capacity,
                               ratecore_status_message(rc));
            return NGX_CONF_ERROR;
        }

        needed = ngx_http_ratecore_zone_needed(region);

        if (needed > zone->size) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": size=%z is too small: "
                               "capacity=%uL needs a %uz-byte table and %uz "
                               "bytes of shared memory in all, use size=%uzk "
                               "or more (or a smaller capacity=, or "
                               "capacity=auto to fit the size)",
                               &name, size, capacity, region, needed,
                               (needed + 1023) / 1024);
            return NGX_CONF_ERROR;
        }
    }

    zone->capacity = capacity;
    zone->region_size = region;

    /* each quota's capacity as the headers show it: the limit, GCRA's burst */
    for (i = 0; i < nq; i++) {
        zone->caps[i] = ngx_http_ratecore_quota_cap(&zone->quotas[i]);

        p = ngx_pnalloc(cf->pool, NGX_HTTP_RATECORE_U64_LEN);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        zone->cap_text[i].data = p;
        zone->cap_text[i].len = ngx_http_ratecore_u64(p, zone->caps[i]) - p;
    }

    /* IETF names: the zone's name, or name/1, name/2, ... for several quotas */
    for (i = 0; i < nq; i++) {
        if (nq == 1) {
            zone->quota_names[i] = name;
            continue;
        }

        p = ngx_pnalloc(cf->pool, name.len + 1 + NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        zone->quota_names[i].data = p;
        zone->quota_names[i].len = ngx_sprintf(p, "%V/%ui", &name, i + 1) - p;
    }

    if (ngx_http_ratecore_find_zone(rmcf, &name) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate ratecore_zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, zone->size,
                                     &ngx_http_ratecore_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate ratecore_zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ratecore_init_zone;
    shm_zone->data = zone;
    zone->shm_zone = shm_zone;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_ratecore_zone_cleanup;
    cln->data = zone;

    zp = ngx_array_push(&rmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ratecore_check_utf8(ngx_str_t *s)
{
    u_char  *p, *end;

    p = s->data;
    end = s->data + s->len;

    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        if (ngx_utf8_decode(&p, end - p) > 0x10ffff) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}

/* key=: a lone variable ("$binary_remote_addr", not a capture like "$1") is read by
 * index at run time, without the script engine's length pass and copy; anything else
 * is a complex value. */
static char *
ngx_http_ratecore_limit_key(ngx_conf_t *cf, ngx_http_ratecore_limit_t *limit,
    ngx_str_t *s)
{
    u_char                            *p;
    ngx_str_t                          name;
    ngx_http_compile_complex_value_t   ccv;

    name.data = s->data + 1;
    name.len = s->len - 1;

    for (p = name.data; p < name.data + name.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'
              || (p > name.data && *p >= '0' && *p <= '9')))
        {
            break;
        }
    }

    if (s->data[0] == '$' && name.len > 0 && p == name.data + name.len) {
        limit->key_index = ngx_http_get_variable_index(cf, &name);
        return limit->key_index == NGX_ERROR ? NGX_CONF_ERROR : NGX_CONF_OK;
    }

    limit->key_index = NGX_ERROR;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = s;
    ccv.complex_value = &limit->key;

    return ngx_http_compile_complex_value(&ccv) == NGX_OK ? NGX_CONF_OK
                                                          : NGX_CONF_ERROR;
}


static char *
ngx_http_ratecore_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ratecore_loc_conf_t  *rlcf = conf;

    ngx_str_t                          *value, s;
    ngx_int_t                           status;
    ngx_uint_t                          i;
    ngx_flag_t                          have_key, have_style;
    ngx_array_t                       **level;
    ngx_http_ratecore_limit_t          *limit, *first;
    ngx_http_ratecore_main_conf_t      *rmcf;
    ngx_http_compile_complex_value_t    ccv;

    value = cf->args->elts;

    if (cf->args->nelts == 2 && value[1].len == 3
        && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        if (rlcf->limits != NGX_CONF_UNSET_PTR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ratecore_limit off\" cannot be combined "
                               "with other ratecore_limit directives at the "
                               "same level");
            return NGX_CONF_ERROR;
        }
        rlcf->limits = NULL;
        return NGX_CONF_OK;
    }

    if (rlcf->limits == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ratecore_limit off\" cannot be combined with "
                           "other ratecore_limit directives at the same level");
        return NGX_CONF_ERROR;
    }

    if (rlcf->limits == NGX_CONF_UNSET_PTR) {
        rlcf->limits = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_ratecore_limit_t));
        if (rlcf->limits == NULL) {
            return NGX_CONF_ERROR;
        }

        /* zones are resolved at postconfiguration, once per level */
        rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ratecore_module);

        level = ngx_array_push(&rmcf->levels);
        if (level == NULL) {
            return NGX_CONF_ERROR;
        }

        *level = rlcf->limits;
    }

    limit = ngx_array_push(rlcf->limits);
    if (limit == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(limit, sizeof(ngx_http_ratecore_limit_t));
    limit->file = cf->conf_file->file.name;
    limit->line = cf->conf_file->line;
    limit->key_index = NGX_ERROR;
    limit->cost = 1;
    limit->status = 429;
    limit->style = NGX_HTTP_RATECORE_STYLE_IETF;
    limit->body = NGX_HTTP_RATECORE_BODY_UNSET;
    limit->dry_run = 0;
    ngx_str_set(&limit->description, "API");
    ngx_str_set(&limit->problem_type, "about:blank");
    ngx_str_set(&limit->problem_title, "Too Many Requests");

    have_key = 0;
    have_style = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_ratecore_param(&value[i], "zone=", &s)) {
            limit->zone_name = s;

        } else if (ngx_http_ratecore_param(&value[i], "key=", &s)) {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ratecore_limit: key= must not be empty "
                                   "(e.g. key=$binary_remote_addr)");
                return NGX_CONF_ERROR;
            }

            if (ngx_http_ratecore_limit_key(cf, limit, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }
            have_key = 1;

        } else if (ngx_http_ratecore_param(&value[i], "cost=", &s)) {
            if (ngx_strlchr(s.data, s.data + s.len, '$') != NULL) {
                limit->cost_cv = ngx_palloc(cf->pool,
                                            sizeof(ngx_http_complex_value_t));
                if (limit->cost_cv == NULL) {
                    return NGX_CONF_ERROR;
                }

                ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
                ccv.cf = cf;
                ccv.value = &s;
                ccv.complex_value = limit->cost_cv;

                if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                    return NGX_CONF_ERROR;
                }

            } else if (ngx_http_ratecore_parse_u64(s.data, s.len, &limit->cost)
                       != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_limit",
                           &value[i], &s, "a whole number or a variable");
            }

        } else if (ngx_http_ratecore_param(&value[i], "style=", &s)) {
            if (ngx_http_ratecore_enum(ngx_http_ratecore_styles, s.data, s.len,
                                       &limit->style)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_limit",
                           &value[i], &s, "evenergy, uphold, switch or ietf");
            }
            have_style = 1;

        } else if (ngx_http_ratecore_param(&value[i], "status=", &s)) {
            status = ngx_atoi(s.data, s.len);
            if (status == NGX_ERROR || status < 400 || status > 599) {
                return ngx_http_ratecore_invalid(cf, "ratecore_limit",
                                                 &value[i], &s, "400 to 599");
            }
            limit->status = (ngx_uint_t) status;

        } else if (ngx_http_ratecore_param(&value[i], "dry_run=", &s)) {
            if (ngx_http_ratecore_enum(ngx_http_ratecore_on_off, s.data, s.len,
                                       &limit->dry_run)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_limit",
                                                 &value[i], &s, "on or off");
            }

        } else if (ngx_http_ratecore_param(&value[i], "body=", &s)) {
            if (ngx_http_ratecore_enum(ngx_http_ratecore_bodies, s.data, s.len,
                                       &limit->body)
                != NGX_OK)
            {
                return ngx_http_ratecore_invalid(cf, "ratecore_limit",
                           &value[i], &s, "text, problem+json, none or nginx");
            }

        } else if (ngx_http_ratecore_param(&value[i], "description=", &s)) {
            limit->description = s;

        } else if (ngx_http_ratecore_param(&value[i], "problem_type=", &s)) {
            limit->problem_type = s;

        } else if (ngx_http_ratecore_param(&value[i], "problem_title=", &s)) {
            limit->problem_title = s;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_limit: unknown parameter \"%V\"%s",
                               &value[i],
                               ngx_strlchr(value[i].data,
                                           value[i].data + value[i].len, '=')
                               ? "" : " (a description with spaces is written "
                                      "\"description=...\", quoted whole)");
            return NGX_CONF_ERROR;
        }
    }

    if (limit->zone_name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_limit: zone= is required");
        return NGX_CONF_ERROR;
    }

    if (!have_key) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_limit: key= is required "
                           "(e.g. key=$binary_remote_addr)");
        return NGX_CONF_ERROR;
    }

    if (limit->body == NGX_HTTP_RATECORE_BODY_UNSET) {
        limit->body = limit->style == NGX_HTTP_RATECORE_STYLE_SWITCH
                      ? NGX_HTTP_RATECORE_BODY_TEXT
                      : limit->style == NGX_HTTP_RATECORE_STYLE_NONE
                      ? NGX_HTTP_RATECORE_BODY_NGINX
                      : NGX_HTTP_RATECORE_BODY_PROBLEM;
    }

    if (ngx_http_ratecore_check_utf8(&limit->description) != NGX_OK
        || ngx_http_ratecore_check_utf8(&limit->problem_type) != NGX_OK
        || ngx_http_ratecore_check_utf8(&limit->problem_title) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_limit: description=, problem_type= and "
                           "problem_title= must be UTF-8");
        return NGX_CONF_ERROR;
    }

    first = rlcf->limits->elts;

    if (rlcf->limits->nelts > 1 && first->style != limit->style) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_limit: every ratecore_limit at one level "
                           "must use the same style= (one set of rate-limit "
                           "headers per response)%s",
                           have_style ? "" : "; the default style is ietf");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* A fixed cost= that some quota of the zone can never admit would reject every
 * request at run time: refused at configuration instead (a cost from a variable is
 * checked per request). */
static ngx_int_t
ngx_http_ratecore_check_fixed_cost(ngx_conf_t *cf,
    ngx_http_ratecore_limit_t *limit)
{
    uint64_t                   cap;
    ngx_uint_t                 q;
    ngx_http_ratecore_zone_t  *zone;

    if (limit->cost_cv != NULL) {
        return NGX_OK;
    }

    zone = limit->zone;

    for (q = 0; q < zone->nquotas; q++) {
        cap = ngx_http_ratecore_quota_cap(&zone->quotas[q]);

        if (limit->cost > cap) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "ratecore_limit: cost=%uL exceeds what zone \"%V\" "
                          "can ever admit (its quota %uL per %uL ms takes at "
                          "most %uL at once) in %V:%ui", limit->cost,
                          &zone->name, zone->quotas[q].limit,
                          zone->quotas[q].period_ns / 1000000, cap,
                          &limit->file, limit->line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* Resolves every ratecore_limit's zone= (postconfiguration: a zone may be declared
 * after its first use, anywhere in the http block) and bounds the quotas per level. */
static ngx_int_t
ngx_http_ratecore_resolve_zones(ngx_conf_t *cf)
{
    ngx_uint_t                      i, k, nquotas;
    ngx_array_t                   **levels;
    ngx_http_ratecore_limit_t      *limit;
    ngx_http_ratecore_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ratecore_module);
    levels = rmcf->levels.elts;

    for (i = 0; i < rmcf->levels.nelts; i++) {
        limit = levels[i]->elts;
        nquotas = 0;

        for (k = 0; k < levels[i]->nelts; k++) {
            limit[k].zone = ngx_http_ratecore_find_zone(rmcf,
                                                        &limit[k].zone_name);

            /* as ngx_conf_log_error() writes it, with the directive's place */
            if (limit[k].zone == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "ratecore_limit: unknown ratecore_zone \"%V\" "
                              "(declare it with ratecore_zone in the http "
                              "block) in %V:%ui", &limit[k].zone_name,
                              &limit[k].file, limit[k].line);
                return NGX_ERROR;
            }

            if (ngx_http_ratecore_check_fixed_cost(cf, &limit[k]) != NGX_OK) {
                return NGX_ERROR;
            }

            nquotas += limit[k].zone->nquotas;

            if (nquotas > NGX_HTTP_RATECORE_MAX_LIMITS) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "ratecore_limit: too many limits at one level: "
                              "at most %d quotas in all (a zone with several "
                              "quotas counts each) in %V:%ui",
                              NGX_HTTP_RATECORE_MAX_LIMITS, &limit[k].file,
                              limit[k].line);
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}

static ngx_int_t
ngx_http_ratecore_add_variables(ngx_conf_t *cf)
{
    ngx_str_t             name = ngx_string("ratecore_status");
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_ratecore_status_variable;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ratecore_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_strcmp(ratecore_version(), RATECORE_VERSION) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ngx_http_ratecore_module: ratecore library %s "
                           "does not match its header %s",
                           ratecore_version(), RATECORE_VERSION);
        return NGX_ERROR;
    }

    if (ngx_http_ratecore_resolve_zones(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ratecore_handler;

    return NGX_OK;
}
