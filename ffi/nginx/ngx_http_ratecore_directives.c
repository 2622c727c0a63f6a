/*
 * ngx_http_ratecore_module's directives: ratecore_limit, ratecore_log_level, and the
 * configuration's merge and checks (ratecore_zone and the shared zones:
 * ngx_http_ratecore_zone.c). The library parses every directive's parameters
 * (ratecore_limit_directive_parse, ratecore_zone_directive_parse) and words its errors;
 * the module compiles the variables and checks what needs the whole configuration.
 */

#include "ngx_http_ratecore_module.h"


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


/* ratecore_text is laid out as ngx_str_t: directive arguments go to the library as
 * they are */
typedef char ngx_http_ratecore_text_fits[
    (sizeof(ngx_str_t) == sizeof(ratecore_text)
     && offsetof(ngx_str_t, len) == offsetof(ratecore_text, len)
     && offsetof(ngx_str_t, data) == offsetof(ratecore_text, data)) ? 1 : -1];


/* A library parse's status: INVALID_CONFIG comes with the message nginx prints as it
 * is; any other failure is the library's and says so. */
ngx_int_t
ngx_http_ratecore_parsed(ngx_conf_t *cf, ratecore_status rc, u_char *err)
{
    if (rc == RATECORE_STATUS_OK) {
        return NGX_OK;
    }

    if (rc == RATECORE_STATUS_INVALID_CONFIG) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": parsing failed: %s (status %uD)",
                           cf->args->elts, ratecore_status_message(rc), (uint32_t) rc);
    }

    return NGX_ERROR;
}


/* ------------------------------------------------------------------------------------
 * ratecore_limit
 */

/* key=: a lone variable ("$binary_remote_addr") is read by index at run time, without
 * the script engine's length pass and copy; anything else is a complex value. */
static char *
ngx_http_ratecore_limit_key(ngx_conf_t *cf, ngx_http_ratecore_limit_t *limit,
    ngx_str_t *s)
{
    ngx_str_t                          name;
    ngx_http_compile_complex_value_t   ccv;

    if (limit->d.key_variable.len) {
        name.data = (u_char *) limit->d.key_variable.data;
        name.len = limit->d.key_variable.len;
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


/* cost= with variables, evaluated per request (a constant is the library's). */
static char *
ngx_http_ratecore_limit_cost(ngx_conf_t *cf, ngx_http_ratecore_limit_t *limit,
    ngx_str_t *s)
{
    ngx_http_compile_complex_value_t  ccv;

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

    u_char                          err[NGX_HTTP_RATECORE_ERR_LEN];
    uint32_t                        level_style;
    ngx_str_t                      *value, s;
    ngx_array_t                   **level;
    ratecore_status                 rc;
    ngx_http_ratecore_limit_t      *limit;
    ngx_http_ratecore_main_conf_t  *rmcf;

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

    /* one set of rate-limit headers per response: the level's first limit sets it */
    level_style = rlcf->limits->nelts
                  ? ((ngx_http_ratecore_limit_t *) rlcf->limits->elts)->d.style : 0;

    limit = ngx_array_push(rlcf->limits);
    if (limit == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(limit, sizeof(ngx_http_ratecore_limit_t));
    limit->file = cf->conf_file->file.name;
    limit->line = cf->conf_file->line;
    err[0] = '\0';

    rc = ratecore_limit_directive_parse(ngx_http_ratecore_args(cf), cf->args->nelts - 1,
                                        level_style, &limit->d, (char *) err,
                                        sizeof(err));
    if (ngx_http_ratecore_parsed(cf, rc, err) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    s.data = (u_char *) limit->d.key.data;
    s.len = limit->d.key.len;

    if (ngx_http_ratecore_limit_key(cf, limit, &s) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (limit->d.cost_text.len == 0) {
        return NGX_CONF_OK;
    }

    s.data = (u_char *) limit->d.cost_text.data;
    s.len = limit->d.cost_text.len;

    return ngx_http_ratecore_limit_cost(cf, limit, &s);

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

    /* the IETF lists may grow past their first buffer; the others' values fit theirs */
    conf->style = conf->limits ? ((ngx_http_ratecore_limit_t *) conf->limits->elts)->d.style
                               : RATECORE_LIMIT_STYLE_NONE;
    conf->values = conf->style == RATECORE_LIMIT_STYLE_NONE ? 0
                   : conf->style == RATECORE_HEADER_STYLE_IETF ? 1024
                   : RATECORE_MAX_HEADERS * 24;

    return NGX_CONF_OK;
}


/* Resolves every ratecore_limit's zone= (postconfiguration: a zone may be declared
 * after its first use, anywhere in the http block) and bounds the quotas per level. */
ngx_int_t
ngx_http_ratecore_resolve_zones(ngx_conf_t *cf)
{
    u_char                          err[NGX_HTTP_RATECORE_ERR_LEN];
    ratecore_status                 rc;
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
            limit[k].zone = ngx_http_ratecore_find_zone(rmcf, (u_char *) limit[k].d.zone.data,
                                                         limit[k].d.zone.len);

            /* as ngx_conf_log_error() writes it, with the directive's place */
            if (limit[k].zone == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "ratecore_limit: unknown ratecore_zone \"%*s\" "
                              "(declare it with ratecore_zone in the http "
                              "block) in %V:%ui", limit[k].d.zone.len,
                              limit[k].d.zone.data,
                              &limit[k].file, limit[k].line);
                return NGX_ERROR;
            }

            /* a constant cost the zone can never admit */
            err[0] = '\0';
            rc = ratecore_limit_directive_check_zone(&limit[k].d, &limit[k].zone->d,
                                                     (char *) err, sizeof(err));
            if (rc != RATECORE_STATUS_OK) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%s in %V:%ui",
                              rc == RATECORE_STATUS_INVALID_CONFIG
                              ? (char *) err : ratecore_status_message(rc),
                              &limit[k].file, limit[k].line);
                return NGX_ERROR;
            }

            nquotas += limit[k].zone->d.quota_count;

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
