/*
 * ngx_http_ratecore_module's zones: the ratecore_zone directive and the table each zone
 * holds in nginx shared memory.
 * - One zone = one ratecore table (1 to 4 quotas per key, all of which must admit) in a
 *   caller-provided region inside the zone's shared memory. The master initialises it
 *   (ratecore_table_init_region) before forking; workers inherit the handle (the zone is
 *   mapped at the same address in every process). On reload nginx keeps a zone whose name
 *   and size are unchanged; the new cycle attaches to the same region
 *   (ratecore_table_attach_region), so counts survive. If such a kept zone's quotas,
 *   capacity or when_full changed, the reload is refused with an error: the region cannot
 *   be re-initialised while old workers may still use it (rename the zone or change its
 *   size to start a fresh table).
 */

#include "ngx_http_ratecore_module.h"


/* the header fits its 256 bytes, which keep the region RATECORE_REGION_ALIGN-aligned */
typedef char ngx_http_ratecore_sh_fits[
    (sizeof(ngx_http_ratecore_sh_t) <= NGX_HTTP_RATECORE_SH_HEADER
     && NGX_HTTP_RATECORE_SH_HEADER % RATECORE_REGION_ALIGN == 0) ? 1 : -1];


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

/* The most a quota admits at once: its limit, or its burst for a GCRA quota that sets
 * one (as the library measures cost; burst 0 means the limit). */
uint64_t
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


ngx_http_ratecore_zone_t *
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


char *
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
