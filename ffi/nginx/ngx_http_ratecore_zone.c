/*
 * ngx_http_ratecore_module's zones: the ratecore_zone directive and the table each zone
 * holds in nginx shared memory (1 to 4 quotas per key, all of which must admit), in a
 * region the master initialises before forking; workers inherit the handle. On reload
 * nginx keeps a zone whose name and size are unchanged and the new cycle attaches to the
 * same region, so counts survive. A kept zone whose quotas, capacity or when_full
 * changed is refused: the region cannot be re-initialised while old workers may still
 * use it (a new name or size starts a fresh table).
 */

#include "ngx_http_ratecore_module.h"


/* the header fits its 256 bytes, which keep the region RATECORE_REGION_ALIGN-aligned */
typedef char ngx_http_ratecore_sh_fits[
    (sizeof(ngx_http_ratecore_sh_t) <= NGX_HTTP_RATECORE_SH_HEADER
     && NGX_HTTP_RATECORE_SH_HEADER % RATECORE_REGION_ALIGN == 0) ? 1 : -1];


/* ------------------------------------------------------------------------------------
 * Shared memory zone
 */

/* Logs a failed table call on a zone's region ("<what> failed: <status>") and leaves the
 * zone without a table. */
static ngx_int_t
ngx_http_ratecore_table_failed(ngx_shm_zone_t *shm_zone, ngx_http_ratecore_zone_t *zone,
    const char *what, ratecore_status rc)
{
    ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                  "ratecore_zone \"%V\": %s failed: %s (status %uD)", &zone->name, what,
                  ratecore_status_message(rc), (uint32_t) rc);
    zone->table = NULL;
    return NGX_ERROR;
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
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* what the zone's header holds (zeroed first: compared byte for byte) */
    ngx_memzero(&want, sizeof(ngx_http_ratecore_sh_t));
    ngx_memcpy(want.magic, "RCNGXZN1", 8);
    want.region_len = zone->d.region_size;
    want.capacity = zone->d.capacity;
    want.full_policy = zone->d.full_policy;
    want.nquotas = (uint32_t) zone->d.quota_count;
    ngx_memcpy(want.quotas, zone->d.quotas, sizeof(want.quotas));

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
        rc = ratecore_table_attach_region(region, zone->d.region_size, &zone->table);

        if (rc != RATECORE_STATUS_OK) {
            return ngx_http_ratecore_table_failed(shm_zone, zone,
                                                  "attaching to the kept table", rc);
        }

        zone->sh = sh;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, NGX_HTTP_RATECORE_SH_HEADER + zone->d.region_size);

    if (sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ratecore_zone \"%V\": size=%uz is too small for a "
                      "table of %uz bytes", &zone->name, zone->d.size,
                      zone->d.region_size);
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

    rc = ratecore_table_init_region(region, zone->d.region_size, zone->d.quotas,
                                    zone->d.quota_count, zone->d.capacity, zone->d.full_policy,
                                    &zone->table);
    if (rc != RATECORE_STATUS_OK) {
        return ngx_http_ratecore_table_failed(shm_zone, zone, "initialising the table", rc);
    }

    zone->sh = sh;
    shpool->data = sh;

    ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                  "ratecore_zone \"%V\": %uL keys per quota, %ui quota%s, "
                  "%uz-byte table in a %uz-byte zone", &zone->name,
                  zone->d.capacity, zone->d.quota_count, zone->d.quota_count == 1 ? "" : "s",
                  zone->d.region_size, zone->d.size);

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


ngx_http_ratecore_zone_t *
ngx_http_ratecore_find_zone(ngx_http_ratecore_main_conf_t *rmcf, u_char *name,
    size_t len)
{
    ngx_uint_t                  i;
    ngx_http_ratecore_zone_t  **zp;

    zp = rmcf->zones.elts;

    for (i = 0; i < rmcf->zones.nelts; i++) {
        if (zp[i]->name.len == len && ngx_strncmp(zp[i]->name.data, name, len) == 0) {
            return zp[i];
        }
    }

    return NULL;
}


/* ------------------------------------------------------------------------------------
 * ratecore_zone
 */

char *
ngx_http_ratecore_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ratecore_main_conf_t  *rmcf = conf;

    u_char                      err[NGX_HTTP_RATECORE_ERR_LEN];
    ratecore_status             rc;
    ngx_pool_cleanup_t         *cln;
    ngx_shm_zone_t             *shm_zone;
    ratecore_shm_layout         layout;
    ngx_http_ratecore_zone_t   *zone, **zp;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ratecore_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    /* nginx puts a slab allocator at the start of every zone: pool header, slots and
     * stats per size class (ngx_pagesize_shift of them: more than nginx uses), page
     * alignment, and one descriptor per page; the region and its header take whole
     * pages */
    layout.header = NGX_HTTP_RATECORE_SH_HEADER;
    layout.page_size = ngx_pagesize;
    layout.fixed = sizeof(ngx_slab_pool_t) + ngx_pagesize
                   + ngx_pagesize_shift * (sizeof(ngx_slab_page_t)
                                           + sizeof(ngx_slab_stat_t));
    layout.per_page = sizeof(ngx_slab_page_t);
    layout.min_pages = 8;
    err[0] = '\0';

    rc = ratecore_zone_directive_parse(ngx_http_ratecore_args(cf), cf->args->nelts - 1,
                                       &layout, &zone->d, (char *) err, sizeof(err));
    if (ngx_http_ratecore_parsed(cf, rc, err) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    zone->name.data = (u_char *) zone->d.name.data;
    zone->name.len = zone->d.name.len;

    if (ngx_http_ratecore_find_zone(rmcf, zone->name.data, zone->name.len) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate ratecore_zone \"%V\"",
                           &zone->name);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &zone->name, zone->d.size,
                                     &ngx_http_ratecore_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate ratecore_zone \"%V\"",
                           &zone->name);
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
