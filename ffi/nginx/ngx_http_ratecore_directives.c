/*
 * ngx_http_ratecore_module's directives: ratecore_limit, ratecore_log_level, the
 * parameter parsing every directive shares, and the configuration's merge and checks
 * (ratecore_zone and the shared zones: ngx_http_ratecore_zone.c).
 * - Every "key=value" parameter with a plain value goes through one parser
 *   (ngx_http_ratecore_value), so every bad value reads alike:
 *   "<directive>: invalid <key>="<value>" (expected <what>)".
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
ngx_int_t
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
ngx_int_t
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
ngx_int_t
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
ngx_int_t
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
ngx_int_t
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
