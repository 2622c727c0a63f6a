/*
 * ngx_http_ratecore_module: rate limiting for nginx with ratecore's keyed tables, shared
 * by every worker through nginx shared memory (directives: ffi/nginx/README.md).
 *
 * This file: the module, the PREACCESS handler and $ratecore_status. Per request the
 * handler evaluates each limit's key and cost, checks the enforcing limits and renders
 * their headers in one library call, then checks dry-run limits one by one.
 * - Time: nginx's cached ngx_current_msec (checked at worker start to be
 *   CLOCK_MONOTONIC, else clock_gettime per request) in ns; staleness and truncation
 *   only make waits longer. The wall clock for absolute resets is nginx's cached time.
 * - Library errors never take nginx down and never block traffic: the enforcing limits
 *   are skipped for the request (fail open), logged, and $ratecore_status says ERROR.
 */

#include "ngx_http_ratecore_module.h"


/* A pool cleanup (see ngx_http_ratecore_get_ctx) whose data holds the $ratecore_status
 * code, then the header values: one allocation per request. */
typedef struct {
    ngx_pool_cleanup_t  cln;
    u_char              values[];
} ngx_http_ratecore_ctx_t;

#define ngx_http_ratecore_ctx_status(ctx)  ((ngx_uint_t) (uintptr_t) (ctx)->cln.data)
#define ngx_http_ratecore_ctx_set(ctx, st) (ctx)->cln.data = (void *) (uintptr_t) (st)


static ngx_int_t ngx_http_ratecore_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ratecore_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ratecore_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_ratecore_init_process(ngx_cycle_t *cycle);


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


/* ------------------------------------------------------------------------------------
 * Clocks
 */

/* Whether this worker uses nginx's cached clocks (set by init_process): ngx_current_msec
 * as the monotonic now, ngx_timeofday() as the wall clock. Both come from one
 * ngx_time_update() per event-loop iteration, so a request pays no clock read. */
ngx_uint_t  ngx_http_ratecore_cached_clock;


uint64_t
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
        && (cached > mono ? cached - mono : mono - cached)
           < (cached > real ? cached - real : real - cached);

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

    return (ngx_http_ratecore_ctx_t *) cln;
}


/* The context, linked as ngx_pool_cleanup_add() links one, with size bytes of values. */
static ngx_http_ratecore_ctx_t *
ngx_http_ratecore_create_ctx(ngx_http_request_t *r, size_t size)
{
    ngx_http_ratecore_ctx_t  *ctx;

    ctx = ngx_palloc(r->pool, sizeof(ngx_http_ratecore_ctx_t) + size);
    if (ctx == NULL) {
        return NULL;
    }

    ctx->cln.handler = ngx_http_ratecore_cleanup;
    ctx->cln.data = NULL;
    ctx->cln.next = r->pool->cleanup;
    r->pool->cleanup = &ctx->cln;
    ngx_http_set_ctx(r, ctx, ngx_http_ratecore_module);

    return ctx;
}


/* ------------------------------------------------------------------------------------
 * The handler (NGX_HTTP_PREACCESS_PHASE)
 */

/* The request's cost for limit: the constant, or its variable's value as a whole
 * number (saturating beyond 64 bits: never admissible either); anything else counts 1. */
static ngx_int_t
ngx_http_ratecore_cost(ngx_http_request_t *r, ngx_http_ratecore_limit_t *limit,
    uint64_t *cost)
{
    u_char     *p;
    uint64_t    v;
    ngx_str_t   s;

    if (limit->cost_cv == NULL) {
        *cost = limit->d.cost;
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, limit->cost_cv, &s) != NGX_OK) {
        return NGX_ERROR;
    }

    v = 0;

    for (p = s.data; p < s.data + s.len && *p >= '0' && *p <= '9'; p++) {
        v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t) (*p - '0');
    }

    if (s.len == 0 || p != s.data + s.len) {
        /* info, as nginx logs what a client gets wrong: a client that leaves out or
         * garbles its cost header must not flood the error log at the default level */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ratecore: invalid cost \"%V\" for zone \"%V\" "
                      "(not a non-negative integer): counted as 1",
                      &s, &limit->zone->name);
        v = 1;
    }

    *cost = v;
    return NGX_OK;
}


/* Evaluates a limit's key and cost into an item. NGX_DECLINED: an empty key (not
 * limited). */
static ngx_int_t
ngx_http_ratecore_prepare(ngx_http_request_t *r, ngx_http_ratecore_limit_t *limit,
    ratecore_check_item *item)
{
    ngx_str_t                   key;
    ngx_http_variable_value_t  *vv;

    if (limit->key_index != NGX_ERROR) {
        /* a lone variable: its value as is, without the script engine's copy. As in
         * a complex value, a non-cacheable variable is evaluated afresh (flushed), and
         * a missing value is an empty key. */
        vv = ngx_http_get_flushed_variable(r, limit->key_index);

        if (vv == NULL || vv->not_found) {
            return NGX_DECLINED;
        }

        key.data = vv->data;
        key.len = vv->len;

    } else if (ngx_http_complex_value(r, &limit->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key.len == 0) {
        return NGX_DECLINED;
    }

    item->table = limit->zone->table;
    item->key = key.data;
    item->key_len = key.len;
    item->name = limit->zone->name.data;
    item->name_len = limit->zone->name.len;

    return ngx_http_ratecore_cost(r, limit, &item->cost);
}


/* Adds the headers ratecore_tables_check_headers rendered (rc, out); BUFFER_TOO_SMALL
 * renders them again into the size asked for. NGX_ERROR only when memory runs out; a
 * failed rendering is logged and the headers left out. */
static ngx_inline __attribute__((always_inline)) ngx_int_t
ngx_http_ratecore_add_headers(ngx_http_request_t *r, ngx_uint_t style,
    const ratecore_check_item *items, size_t nitems,
    const ratecore_check_result *result, ratecore_status rc, ratecore_headers *out)
{
    u_char           *buf;
    ngx_uint_t        i, room;
    ngx_table_elt_t  *h;
    ngx_list_t       *list = &r->headers_out.headers;

    if (rc == RATECORE_STATUS_BUFFER_TOO_SMALL && out->len <= NGX_HTTP_RATECORE_MAX_RENDER) {
        buf = ngx_pnalloc(r->pool, out->len);
        if (buf == NULL) {
            return NGX_ERROR;
        }

        rc = ratecore_render_check_headers((uint32_t) style, items, nitems, result,
                                           ngx_http_ratecore_wall_ns(style), buf,
                                           out->len, out);
    }

    if (rc != RATECORE_STATUS_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "rendering the ratecore headers failed: %s (status %uD)",
                      ratecore_status_message(rc), (uint32_t) rc);
        return NGX_OK;
    }

    /* all of them in the list's last part, as a rule: no call then */
    room = list->last->nelts + out->count <= list->nalloc;
    h = (ngx_table_elt_t *) list->last->elts + list->last->nelts;
    list->last->nelts += room ? out->count : 0;

    for (i = 0; i < out->count; i++, h++) {
        if (!room && (h = ngx_list_push(list)) == NULL) {
            return NGX_ERROR;
        }

        /* the name is one of the library's static strings, never written to */
        h->hash = 1;
        h->key.data = (u_char *) out->headers[i].name;
        h->key.len = out->headers[i].name_len;
        h->value.data = (u_char *) out->headers[i].value;
        h->value.len = out->headers[i].value_len;
        h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
    }

    return NGX_OK;
}


static void
ngx_http_ratecore_log_error(ngx_http_request_t *r, const char *what,
    ngx_http_ratecore_zone_t *zone, ratecore_status rc)
{
    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "ratecore: %s failed in zone \"%V\": %s (status %uD); "
                  "the limit is skipped for this request",
                  what, &zone->name, ratecore_status_message(rc), (uint32_t) rc);
}


/* Dry-run limits, once the enforcing ones admitted: each counted as usual, its denial
 * only logged. Returns the $ratecore_status the request gets. */
static ngx_uint_t
ngx_http_ratecore_dry_runs(ngx_http_request_t *r, ngx_http_ratecore_loc_conf_t *rlcf,
    ratecore_check_item *items, ngx_http_ratecore_limit_t **limits, ngx_uint_t n,
    uint64_t now, ngx_uint_t status)
{
    ngx_uint_t         i;
    ratecore_status    rc;
    ratecore_decision  d;

    for (i = 0; i < n; i++) {
        rc = ratecore_table_check(items[i].table, items[i].key, items[i].key_len, now,
                                  items[i].cost, &d);

        if (rc == RATECORE_STATUS_OK && d.allowed) {
            continue;
        }

        if (rc == RATECORE_STATUS_OK) {
            ngx_log_error(rlcf->log_level, r->connection->log, 0,
                          "limiting request, dry run, by ratecore zone "
                          "\"%V\": limit %uL, retry after %uL ms",
                          &limits[i]->zone->name, d.limit,
                          d.retry_after_ns == RATECORE_NEVER
                          ? (uint64_t) -1 : d.retry_after_ns / 1000000);

        } else if (rc == RATECORE_STATUS_COST_EXCEEDS_LIMIT) {
            /* the C ABI leaves the decision unwritten on an error */
            ngx_log_error(rlcf->log_level, r->connection->log, 0,
                          "limiting request, dry run, by ratecore zone "
                          "\"%V\": cost %uL exceeds what it can ever admit",
                          &limits[i]->zone->name, items[i].cost);

        } else {
            ngx_http_ratecore_log_error(r, "ratecore_table_check()", limits[i]->zone,
                                        rc);
            status = NGX_HTTP_RATECORE_ERROR;
            continue;
        }

        if (status == NGX_HTTP_RATECORE_PASSED) {
            status = NGX_HTTP_RATECORE_REJECTED_DRY;
        }
    }

    return status;
}


/* A denial by limit (the deciding one): marks and logs the request, then answers with
 * the style's headers and the limit's body. Returns the handler's result. */
static ngx_int_t
ngx_http_ratecore_deny(ngx_http_request_t *r, ngx_http_ratecore_loc_conf_t *rlcf,
    ngx_http_ratecore_ctx_t *ctx, ngx_http_ratecore_limit_t *limit,
    const ratecore_check_item *items, ngx_uint_t n, const ratecore_check_result *result,
    ratecore_status rc, ratecore_headers *out)
{
    ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_REJECTED);

    ngx_log_error(rlcf->log_level, r->connection->log, 0,
                  "limiting request by ratecore zone \"%V\": limit %uL, "
                  "retry after %uL ms", &limit->zone->name, result->decision.limit,
                  result->decision.retry_after_ns == RATECORE_NEVER
                  ? (uint64_t) -1 : result->decision.retry_after_ns / 1000000);

    if (ngx_http_ratecore_add_headers(r, limit->d.style, items, n, result, rc, out) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (limit->d.body == RATECORE_LIMIT_BODY_SERVER) {
        /* nginx's own error page (or the error_page set for the status) */
        return limit->d.status;
    }

    ngx_http_finalize_request(r, ngx_http_ratecore_send_denial(r, limit, result));
    return NGX_DONE;
}


/* The handler's work once a request is to be limited: out of line, so that the phase's
 * other visits (internal redirects) skip its large frame. */
static ngx_int_t __attribute__((noinline))
ngx_http_ratecore_limit(ngx_http_request_t *r, ngx_http_ratecore_loc_conf_t *rlcf)
{
    ngx_int_t                      rc_prepare;
    ngx_uint_t                     i, n, ndry, nlimits, status, style;
    ratecore_status                rc, rendered;
    ngx_http_ratecore_ctx_t       *ctx;
    ngx_http_ratecore_limit_t     *limits, *limit;
    ratecore_check_item            items[NGX_HTTP_RATECORE_MAX_LIMITS];
    ratecore_check_item            dry[NGX_HTTP_RATECORE_MAX_LIMITS];
    ngx_http_ratecore_limit_t     *owners[NGX_HTTP_RATECORE_MAX_LIMITS];
    ngx_http_ratecore_limit_t     *dry_owners[NGX_HTTP_RATECORE_MAX_LIMITS];
    ratecore_check_result          result;
    ratecore_headers               out;
    uint64_t                       now;

    limits = rlcf->limits->elts;
    nlimits = rlcf->limits->nelts;
    style = rlcf->style;

    ctx = ngx_http_ratecore_create_ctx(r, rlcf->values);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;
    ndry = 0;

    /* enforcing limits in configuration order, dry-run ones aside (at most
     * NGX_HTTP_RATECORE_MAX_LIMITS quotas per level: checked at configuration) */
    for (i = 0; i < nlimits; i++) {
        limit = &limits[i];
        rc_prepare = ngx_http_ratecore_prepare(r, limit,
                                               limit->d.dry_run ? &dry[ndry] : &items[n]);

        if (rc_prepare == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc_prepare == NGX_OK && limit->d.dry_run) {
            dry_owners[ndry++] = limit;

        } else if (rc_prepare == NGX_OK) {
            owners[n++] = limit;
        }
    }

    if (n + ndry == 0) {
        ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_NO_KEY);
        return NGX_DECLINED;
    }

    now = ngx_http_ratecore_mono_ns();
    status = NGX_HTTP_RATECORE_PASSED;
    rc = RATECORE_STATUS_OK;
    rendered = RATECORE_STATUS_OK;
    out.count = 0;      /* style=none: no headers */

    if (n) {
        rendered = style == RATECORE_LIMIT_STYLE_NONE
            ? ratecore_tables_check(items, n, now, RATECORE_CHECK_MODE_CHARGE, &result)
            : ratecore_tables_check_headers(items, n, now, RATECORE_CHECK_MODE_CHARGE,
                                            style, ngx_http_ratecore_wall_ns(style),
                                            ctx->values, rlcf->values, &result, &out);

        /* BUFFER_TOO_SMALL: checked, the headers left to render again */
        rc = rendered == RATECORE_STATUS_BUFFER_TOO_SMALL ? RATECORE_STATUS_OK : rendered;

        if (rc == RATECORE_STATUS_OK && !result.decision.allowed) {
            return ngx_http_ratecore_deny(r, rlcf, ctx, owners[result.item], items, n,
                                          &result, rendered, &out);
        }

        if (rc == RATECORE_STATUS_COST_EXCEEDS_LIMIT) {
            /* a cost no quota of that zone can ever admit: a configuration or client
             * problem, not a rate */
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ratecore: cost %uL exceeds what zone \"%V\" can ever "
                          "admit: request rejected", items[result.item].cost,
                          &owners[result.item]->zone->name);
            ngx_http_ratecore_ctx_set(ctx, NGX_HTTP_RATECORE_REJECTED);
            return owners[result.item]->d.status;
        }

        if (rc != RATECORE_STATUS_OK) {
            ngx_http_ratecore_log_error(r, "ratecore_tables_check()", owners[0]->zone,
                                        rc);
            status = NGX_HTTP_RATECORE_ERROR;
        }
    }

    if (ndry) {
        status = ngx_http_ratecore_dry_runs(r, rlcf, dry, dry_owners, ndry, now, status);
    }

    ngx_http_ratecore_ctx_set(ctx, status);

    /* admitted: the enforcing limits' headers (a dry-run limit adds none) */
    if (n == 0 || rc != RATECORE_STATUS_OK) {
        return NGX_DECLINED;
    }

    return ngx_http_ratecore_add_headers(r, style, items, n, &result, rendered, &out)
           == NGX_OK ? NGX_DECLINED : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_http_ratecore_handler(ngx_http_request_t *r)
{
    ngx_http_ratecore_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_ratecore_module);

    /* merge_loc_conf turns "inherit nothing" into NULL. The main request is decided
     * once; subrequests and internal redirects pass. */
    if (rlcf->limits == NULL || r != r->main || ngx_http_ratecore_get_ctx(r) != NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_ratecore_limit(r, rlcf);
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
