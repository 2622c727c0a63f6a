/*
 * ngx_http_ratecore_module's directives: ratecore_zone, ratecore_limit,
 * ratecore_log_level, and the zones' shared memory.
 * - One zone = one ratecore table (1 to 4 quotas per key, all of which must admit) in a
 *   caller-provided region inside the zone's shared memory. The master initialises it
 *   (ratecore_table_init_region) before forking; workers inherit the handle (the zone is
 *   mapped at the same address in every process). On reload nginx keeps a zone whose name
 *   and size are unchanged; the new cycle attaches to the same region
 *   (ratecore_table_attach_region), so counts survive. If such a kept zone's quotas,
 *   capacity or when_full changed, the reload is refused with an error: the region cannot
 *   be re-initialised while old workers may still use it (rename the zone or change its
 *   size to start a fresh table).
 * - Every "key=value" parameter with a plain value goes through one parser
 *   (ngx_http_ratecore_value), so every bad value reads alike:
 *   "<directive>: invalid <key>="<value>" (expected <what>)".
 */

#include "ngx_http_ratecore_module.h"


/* the header fits its 256 bytes, which keep the region RATECORE_REGION_ALIGN-aligned */
typedef char ngx_http_ratecore_sh_fits[
    (sizeof(ngx_http_ratecore_sh_t) <= NGX_HTTP_RATECORE_SH_HEADER
     && NGX_HTTP_RATECORE_SH_HEADER % RATECORE_REGION_ALIGN == 0) ? 1 : -1];


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


static char *ngx_http_ratecore_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_ratecore_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_conf_enum_t  ngx_http_ratecore_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


ngx_command_t  ngx_http_ratecore_commands[] = {

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


/* ratecore_zone's plain parameters, in the order of the targets in ngx_http_ratecore_zone;
 * name=, quota= and capacity= have their own checks there */
static ngx_http_ratecore_param_t  ngx_http_ratecore_zone_params[] = {
    { "size=", NGX_HTTP_RATECORE_SIZE, NULL, "e.g. 64k, 10m, 1g" },
    { "algorithm=", NGX_HTTP_RATECORE_ENUM32, ngx_http_ratecore_algorithms,
      "gcra, fixed_window, sliding_window or sliding_window_strict" },
    { "limit=", NGX_HTTP_RATECORE_U64, NULL, "a whole number" },
    { "period=", NGX_HTTP_RATECORE_TIME, NULL,
      "an nginx time such as 500ms, 10s, 5m, 1h or 1d" },
    { "burst=", NGX_HTTP_RATECORE_U64, NULL, "a whole number" },
    { "sub_windows=", NGX_HTTP_RATECORE_U32, NULL, "a whole number" },
    { "when_full=", NGX_HTTP_RATECORE_ENUM32, ngx_http_ratecore_full_policies,
      "evict, deny or allow" },
    { NULL, 0, NULL, NULL }
};

/* ratecore_limit's, likewise; key= and cost= have their own */
static ngx_http_ratecore_param_t  ngx_http_ratecore_limit_params[] = {
    { "zone=", NGX_HTTP_RATECORE_STR, NULL, NULL },
    { "style=", NGX_HTTP_RATECORE_ENUM, ngx_http_ratecore_styles,
      "evenergy, uphold, switch or ietf" },
    { "status=", NGX_HTTP_RATECORE_STATUS, NULL, "400 to 599" },
    { "dry_run=", NGX_HTTP_RATECORE_ENUM, ngx_http_ratecore_on_off, "on or off" },
    { "body=", NGX_HTTP_RATECORE_ENUM, ngx_http_ratecore_bodies,
      "text, problem+json, none or nginx" },
    { "description=", NGX_HTTP_RATECORE_STR, NULL, NULL },
    { "problem_type=", NGX_HTTP_RATECORE_STR, NULL, NULL },
    { "problem_title=", NGX_HTTP_RATECORE_STR, NULL, NULL },
    { NULL, 0, NULL, NULL }
};


/* The value of one of e's names. */
static ngx_int_t
ngx_http_ratecore_enum(ngx_conf_enum_t *e, u_char *p, size_t len, ngx_uint_t *out)
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


/* A decimal integer without sign, 0 to UINT64_MAX. */
static ngx_int_t
ngx_http_ratecore_parse_u64(u_char *p, size_t len, uint64_t *out)
{
    uint64_t  v, digit;

    if (len == 0) {
        return NGX_ERROR;
    }

    for (v = 0; len--; p++) {
        digit = (uint64_t) (*p - '0');

        if (*p < '0' || *p > '9' || v > (UINT64_MAX - digit) / 10) {
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
    ms = len ? ngx_parse_time(&s, 0) : NGX_ERROR;

    if (ms == NGX_ERROR || ms <= 0 || (uint64_t) ms > UINT64_MAX / 1000000) {
        return NGX_ERROR;
    }

    *ns = (uint64_t) ms * 1000000;
    return NGX_OK;
}


/* Parses the plain parameter arg against params: NGX_DECLINED if it is none of them;
 * otherwise stores the value in targets[i] (the matching one), sets seen[i], and returns
 * NGX_OK, or logs the uniform message and returns NGX_ERROR. */
static ngx_int_t
ngx_http_ratecore_value(ngx_conf_t *cf, const char *directive, ngx_str_t *arg,
    ngx_http_ratecore_param_t *params, void **targets, ngx_flag_t *seen)
{
    uint64_t     v;
    ngx_int_t    rc;
    ngx_str_t    s;
    ngx_uint_t   i, e;

    for (i = 0; params[i].key; i++) {
        if (ngx_http_ratecore_param(arg, params[i].key, &s)) {
            break;
        }
    }

    if (params[i].key == NULL) {
        return NGX_DECLINED;
    }

    seen[i] = 1;
    v = 0;
    e = 0;

    switch (params[i].kind) {

    case NGX_HTTP_RATECORE_U64:
        rc = ngx_http_ratecore_parse_u64(s.data, s.len, targets[i]);
        break;

    case NGX_HTTP_RATECORE_U32:
        rc = ngx_http_ratecore_parse_u64(s.data, s.len, &v);
        rc = rc == NGX_OK && v <= UINT32_MAX ? NGX_OK : NGX_ERROR;
        *(uint32_t *) targets[i] = (uint32_t) v;
        break;

    case NGX_HTTP_RATECORE_TIME:
        rc = ngx_http_ratecore_parse_duration(s.data, s.len, targets[i]);
        break;

    case NGX_HTTP_RATECORE_SIZE:
        *(ssize_t *) targets[i] = ngx_parse_size(&s);
        rc = *(ssize_t *) targets[i] > 0 ? NGX_OK : NGX_ERROR;
        break;

    case NGX_HTTP_RATECORE_ENUM:
        rc = ngx_http_ratecore_enum(params[i].names, s.data, s.len, targets[i]);
        break;

    case NGX_HTTP_RATECORE_ENUM32:
        rc = ngx_http_ratecore_enum(params[i].names, s.data, s.len, &e);
        *(uint32_t *) targets[i] = (uint32_t) e;
        break;

    case NGX_HTTP_RATECORE_STATUS:
        v = (uint64_t) ngx_atoi(s.data, s.len);
        rc = v >= 400 && v <= 599 ? NGX_OK : NGX_ERROR;
        *(ngx_uint_t *) targets[i] = (ngx_uint_t) v;
        break;

    default: /* NGX_HTTP_RATECORE_STR */
        *(ngx_str_t *) targets[i] = s;
        rc = NGX_OK;
    }

    if (rc != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s: invalid %*s\"%V\" (expected %s)",
                           directive, (size_t) (s.data - arg->data), arg->data, &s,
                           params[i].expected);
        return NGX_ERROR;
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


/* ------------------------------------------------------------------------------------
 * Shared memory zone
 */

static ngx_int_t
ngx_http_ratecore_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ratecore_zone_t  *ozone = data;

    u_char                    *region;
    ngx_uint_t                 i;
    ratecore_status            rc;
    ngx_slab_pool_t           *shpool;
    ngx_http_ratecore_sh_t    *sh, want;
    ngx_http_ratecore_zone_t  *zone;

    zone = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* what the zone's header holds (zeroed first: compared byte for byte) */
    ngx_memzero(&want, sizeof(ngx_http_ratecore_sh_t));
    ngx_memcpy(want.magic, "RCNGXZN1", 8);
    want.region_len = zone->region_size;
    want.capacity = zone->capacity;
    want.full_policy = zone->full_policy;
    want.nquotas = (uint32_t) zone->nquotas;

    for (i = 0; i < zone->nquotas; i++) {
        want.quotas[i] = zone->quotas[i];
    }

    if (ozone != NULL || shm_zone->shm.exists) {

        /* the zone is kept over a reload: attach to the running table */

        sh = ozone ? ozone->sh : shpool->data;

        if (sh == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ratecore_zone \"%V\": the kept shared memory holds "
                          "no table", &zone->name);
            return NGX_ERROR;
        }

        if (ngx_memcmp(sh, &want, sizeof(ngx_http_ratecore_sh_t)) != 0) {
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
        rc = ratecore_table_attach_region(region, zone->region_size, &zone->table);

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
                      "%d-byte aligned", &zone->name, region, RATECORE_REGION_ALIGN);
        return NGX_ERROR;
    }

    ngx_memcpy(sh, &want, sizeof(ngx_http_ratecore_sh_t));

    rc = ratecore_table_init_region(region, zone->region_size, zone->quotas,
                                    zone->nquotas, zone->capacity, zone->full_policy,
                                    &zone->table);
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


/* The shared memory a zone needs for a region of region_size bytes: nginx puts a slab
 * allocator at the start of every zone (pool header, per-size-class slots and stats, one
 * page descriptor per page, page alignment); the region and its 256-byte header take
 * whole pages. */
static size_t
ngx_http_ratecore_zone_needed(size_t region_size)
{
    size_t  pages, needed;

    pages = (NGX_HTTP_RATECORE_SH_HEADER + region_size + ngx_pagesize - 1)
            / ngx_pagesize;

    /* ngx_pagesize_shift slots: more than the size classes nginx uses */
    needed = sizeof(ngx_slab_pool_t)
             + ngx_pagesize_shift * (sizeof(ngx_slab_page_t) + sizeof(ngx_slab_stat_t))
             + ngx_pagesize                                  /* alignment */
             + (pages + 1) * (ngx_pagesize + sizeof(ngx_slab_page_t));

    return ngx_max(ngx_align(needed, ngx_pagesize), 8 * ngx_pagesize);
}


/* ------------------------------------------------------------------------------------
 * ratecore_zone
 */

/* Applies the options a quota's algorithm allows; sets the strict window's default
 * number of sub-windows (60). */
static char *
ngx_http_ratecore_finish_quota(ngx_conf_t *cf, ngx_str_t *zone, ngx_uint_t index,
    ratecore_quota *q, ngx_flag_t have_burst, ngx_flag_t have_sub_windows)
{
    ngx_flag_t  strict;

    strict = q->algorithm == RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT;

    if (have_burst && q->algorithm != RATECORE_ALGORITHM_GCRA) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": quota %ui: "
                           "burst= applies only to algorithm gcra", zone, index);
        return NGX_CONF_ERROR;
    }

    if (have_sub_windows && !strict) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": quota %ui: "
                           "sub_windows= applies only to algorithm "
                           "sliding_window_strict", zone, index);
        return NGX_CONF_ERROR;
    }

    if (strict && !have_sub_windows) {
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

    if (ngx_http_ratecore_enum(ngx_http_ratecore_algorithms, p, colon - p, &algorithm)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": quota=\"%V\": "
                           "unknown algorithm \"%*s\" (expected gcra, fixed_window, "
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
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": quota=\"%V\": "
                           "invalid limit \"%*s\" (expected a whole number)",
                           zone, text, (size_t) (slash - p), p);
        return NGX_CONF_ERROR;
    }

    p = slash + 1;
    next = ngx_strlchr(p, end, ':');
    next = next ? next : end;

    if (ngx_http_ratecore_parse_duration(p, next - p, &q->period_ns) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": quota=\"%V\": "
                           "invalid period \"%*s\" (expected an nginx time such as "
                           "500ms, 10s, 5m, 1h or 1d)", zone, text,
                           (size_t) (next - p), p);
        return NGX_CONF_ERROR;
    }

    while (next < end) {
        p = next + 1;
        next = ngx_strlchr(p, end, ':');
        next = next ? next : end;

        if (next - p > 6 && ngx_strncmp(p, "burst=", 6) == 0
            && ngx_http_ratecore_parse_u64(p + 6, next - p - 6, &q->burst) == NGX_OK)
        {
            have_burst = 1;

        } else if (next - p > 12 && ngx_strncmp(p, "sub_windows=", 12) == 0
                   && ngx_http_ratecore_parse_u64(p + 12, next - p - 12, &v) == NGX_OK
                   && v <= UINT32_MAX)
        {
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


/* Sizes the zone's table: capacity=auto (0) takes the largest power of two that fits
 * size=; an explicit capacity must fit it. */
static char *
ngx_http_ratecore_size_table(ngx_conf_t *cf, ngx_http_ratecore_zone_t *zone,
    uint64_t capacity)
{
    size_t           region, needed, best_region;
    uint64_t         best;
    ratecore_status  rc;

    if (capacity != 0) {
        rc = ratecore_table_region_size(zone->quotas, zone->nquotas, capacity,
                                        zone->full_policy, &region);
        if (rc != RATECORE_STATUS_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": "
                               "capacity=%uL is invalid: %s", &zone->name, capacity,
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
                               &zone->name, zone->size, capacity, region, needed,
                               (needed + 1023) / 1024);
            return NGX_CONF_ERROR;
        }

        zone->capacity = capacity;
        zone->region_size = region;
        return NGX_CONF_OK;
    }

    best = 0;
    best_region = 0;
    rc = RATECORE_STATUS_OK;

    for (capacity = 8; capacity <= RATECORE_MAX_TABLE_CAPACITY; capacity *= 2) {
        rc = ratecore_table_region_size(zone->quotas, zone->nquotas, capacity,
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
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": its quotas "
                           "together cannot make a table: %s", &zone->name,
                           ratecore_status_message(rc));
        return NGX_CONF_ERROR;
    }

    if (best == 0) {
        needed = ngx_http_ratecore_zone_needed(best_region);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_zone \"%V\": size=%z is too small: "
                           "the smallest table (8 keys) needs %uz bytes "
                           "of shared memory, use size=%uzk or more",
                           &zone->name, zone->size, needed, (needed + 1023) / 1024);
        return NGX_CONF_ERROR;
    }

    zone->capacity = best;
    zone->region_size = best_region;
    return NGX_CONF_OK;
}


static char *
ngx_http_ratecore_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ratecore_main_conf_t  *rmcf = conf;

    u_char                     *p;
    size_t                      region;
    ssize_t                     size;
    uint64_t                    capacity;
    ngx_str_t                  *value, s, name, quota_text[RATECORE_MAX_TABLE_LIMITS];
    ngx_uint_t                  i, nq;
    ngx_int_t                   rc;
    ngx_flag_t                  seen[8];
    ratecore_quota              single;
    ratecore_status             st;
    ngx_pool_cleanup_t         *cln;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_ratecore_zone_t   *zone, **zp;
    void                       *targets[7];

    value = cf->args->elts;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ratecore_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    size = 0;
    ngx_str_null(&name);
    ngx_memzero(&single, sizeof(ratecore_quota));
    ngx_memzero(seen, sizeof(seen));
    capacity = 0;                               /* auto */
    nq = 0;
    zone->full_policy = RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST;

    /* as ngx_http_ratecore_zone_params */
    targets[0] = &size;
    targets[1] = &single.algorithm;
    targets[2] = &single.limit;
    targets[3] = &single.period_ns;
    targets[4] = &single.burst;
    targets[5] = &single.sub_windows;
    targets[6] = &zone->full_policy;

    for (i = 1; i < cf->args->nelts; i++) {

        rc = ngx_http_ratecore_value(cf, "ratecore_zone", &value[i],
                                     ngx_http_ratecore_zone_params, targets, seen);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

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

        } else if (ngx_http_ratecore_param(&value[i], "quota=", &s)) {
            if (nq == RATECORE_MAX_TABLE_LIMITS) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ratecore_zone: at most %d quota= per zone",
                                   RATECORE_MAX_TABLE_LIMITS);
                return NGX_CONF_ERROR;
            }

            /* parsed once name= is known (it may come later), for messages that name
             * the zone */
            quota_text[nq++] = s;

        } else if (ngx_http_ratecore_param(&value[i], "capacity=", &s)) {
            if (s.len == 4 && ngx_strncmp(s.data, "auto", 4) == 0) {
                capacity = 0;

            } else if (ngx_http_ratecore_parse_u64(s.data, s.len, &capacity) != NGX_OK
                       || capacity == 0 || capacity > RATECORE_MAX_TABLE_CAPACITY)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ratecore_zone: invalid capacity=\"%V\" "
                                   "(expected auto or 1 to %uL keys)", &s,
                                   (uint64_t) RATECORE_MAX_TABLE_CAPACITY);
                return NGX_CONF_ERROR;
            }

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone: unknown parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone: name= is required");
        return NGX_CONF_ERROR;
    }

    if (size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": size= is "
                           "required (e.g. size=10m)", &name);
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

    /* seen[1 .. 5]: algorithm=, limit=, period=, burst=, sub_windows= */
    if (nq && (seen[1] || seen[2] || seen[3] || seen[4] || seen[5])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_zone \"%V\": use either "
                           "quota= (one or more) or algorithm= limit= period=, "
                           "not both", &name);
        return NGX_CONF_ERROR;
    }

    if (nq == 0) {
        if (!seen[1] || !seen[2] || !seen[3]) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": algorithm=, limit= and "
                               "period= are required (or one or more "
                               "quota=<algorithm>:<limit>/<period>)", &name);
            return NGX_CONF_ERROR;
        }

        zone->quotas[0] = single;
        nq = 1;

        if (ngx_http_ratecore_finish_quota(cf, &name, 1, &zone->quotas[0], seen[4],
                                           seen[5])
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
        st = ratecore_table_region_size(&zone->quotas[i], 1, 8, zone->full_policy,
                                        &region);
        if (st != RATECORE_STATUS_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_zone \"%V\": quota %ui (%V, limit "
                               "%uL per %uL ms) is invalid: %s", &name, i + 1,
                               &ngx_http_ratecore_algorithms[
                                   zone->quotas[i].algorithm - 1].name,
                               zone->quotas[i].limit,
                               zone->quotas[i].period_ns / 1000000,
                               ratecore_status_message(st));
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_ratecore_size_table(cf, zone, capacity) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ratecore_find_zone(rmcf, &name) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate ratecore_zone \"%V\"",
                           &name);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, zone->size, &ngx_http_ratecore_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate ratecore_zone \"%V\"",
                           &name);
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


/* ------------------------------------------------------------------------------------
 * ratecore_limit
 */

static ngx_int_t
ngx_http_ratecore_check_utf8(ngx_str_t *s)
{
    u_char  *p, *end;

    p = s->data;
    end = s->data + s->len;

    while (p < end) {
        if (*p < 0x80) {
            p++;

        } else if (ngx_utf8_decode(&p, end - p) > 0x10ffff) {
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


/* cost=: a whole number, or a string with variables evaluated per request. */
static char *
ngx_http_ratecore_limit_cost(ngx_conf_t *cf, ngx_http_ratecore_limit_t *limit,
    ngx_str_t *s)
{
    ngx_http_compile_complex_value_t  ccv;

    if (ngx_strlchr(s->data, s->data + s->len, '$') == NULL) {
        if (ngx_http_ratecore_parse_u64(s->data, s->len, &limit->cost) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_limit: invalid "
                               "cost=\"%V\" (expected a whole number or a variable)",
                               s);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    limit->cost_cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (limit->cost_cv == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = s;
    ccv.complex_value = limit->cost_cv;

    return ngx_http_compile_complex_value(&ccv) == NGX_OK ? NGX_CONF_OK
                                                          : NGX_CONF_ERROR;
}


static char *
ngx_http_ratecore_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ratecore_loc_conf_t  *rlcf = conf;

    ngx_str_t                      *value, s;
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    ngx_flag_t                      have_key, seen[8];
    ngx_array_t                   **level;
    ngx_http_ratecore_limit_t      *limit, *first;
    ngx_http_ratecore_main_conf_t  *rmcf;
    void                           *targets[8];

    value = cf->args->elts;

    if (cf->args->nelts == 2 && value[1].len == 3
        && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        if (rlcf->limits != NGX_CONF_UNSET_PTR) {
            goto off_mixed;
        }

        rlcf->limits = NULL;
        return NGX_CONF_OK;
    }

    if (rlcf->limits == NULL) {
        goto off_mixed;
    }

    if (rlcf->limits == NGX_CONF_UNSET_PTR) {
        rlcf->limits = ngx_array_create(cf->pool, 2, sizeof(ngx_http_ratecore_limit_t));
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
    ngx_str_set(&limit->description, "API");
    ngx_str_set(&limit->problem_type, "about:blank");
    ngx_str_set(&limit->problem_title, "Too Many Requests");

    /* as ngx_http_ratecore_limit_params */
    targets[0] = &limit->zone_name;
    targets[1] = &limit->style;
    targets[2] = &limit->status;
    targets[3] = &limit->dry_run;
    targets[4] = &limit->body;
    targets[5] = &limit->description;
    targets[6] = &limit->problem_type;
    targets[7] = &limit->problem_title;
    ngx_memzero(seen, sizeof(seen));
    have_key = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        rc = ngx_http_ratecore_value(cf, "ratecore_limit", &value[i],
                                     ngx_http_ratecore_limit_params, targets, seen);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (ngx_http_ratecore_param(&value[i], "key=", &s)) {
            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_limit: key= must "
                                   "not be empty (e.g. key=$binary_remote_addr)");
                return NGX_CONF_ERROR;
            }

            if (ngx_http_ratecore_limit_key(cf, limit, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            have_key = 1;

        } else if (ngx_http_ratecore_param(&value[i], "cost=", &s)) {
            if (ngx_http_ratecore_limit_cost(cf, limit, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ratecore_limit: unknown parameter \"%V\"%s", &value[i],
                               ngx_strlchr(value[i].data, value[i].data + value[i].len,
                                           '=')
                               ? "" : " (a description with spaces is written "
                                      "\"description=...\", quoted whole)");
            return NGX_CONF_ERROR;
        }
    }

    if (limit->zone_name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_limit: zone= is required");
        return NGX_CONF_ERROR;
    }

    if (!have_key) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_limit: key= is required "
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
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ratecore_limit: description=, "
                           "problem_type= and problem_title= must be UTF-8");
        return NGX_CONF_ERROR;
    }

    first = rlcf->limits->elts;

    if (rlcf->limits->nelts > 1 && first->style != limit->style) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ratecore_limit: every ratecore_limit at one level "
                           "must use the same style= (one set of rate-limit "
                           "headers per response)%s",
                           seen[1] ? "" : "; the default style is ietf");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

off_mixed:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"ratecore_limit off\" cannot be "
                       "combined with other ratecore_limit directives at the same "
                       "level");
    return NGX_CONF_ERROR;
}


/* ------------------------------------------------------------------------------------
 * Configuration
 */

void *
ngx_http_ratecore_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ratecore_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ratecore_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rmcf->zones, cf->pool, 4, sizeof(ngx_http_ratecore_zone_t *))
        != NGX_OK
        || ngx_array_init(&rmcf->levels, cf->pool, 4, sizeof(ngx_array_t *)) != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


void *
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


char *
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


/* A fixed cost= that some quota of the zone can never admit would reject every
 * request at run time: refused at configuration instead (a cost from a variable is
 * checked per request). */
static ngx_int_t
ngx_http_ratecore_check_fixed_cost(ngx_conf_t *cf, ngx_http_ratecore_limit_t *limit)
{
    uint64_t                   cap;
    ngx_uint_t                 q;
    ngx_http_ratecore_zone_t  *zone;

    zone = limit->zone;

    for (q = 0; limit->cost_cv == NULL && q < zone->nquotas; q++) {
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
ngx_int_t
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
            limit[k].zone = ngx_http_ratecore_find_zone(rmcf, &limit[k].zone_name);

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
