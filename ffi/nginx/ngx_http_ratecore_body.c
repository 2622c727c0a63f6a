/*
 * The denial's body, rendered by ratecore into pool memory; nginx only links it into
 * the response.
 */

#include "ngx_http_ratecore_module.h"


static ngx_str_t  ngx_http_ratecore_problem_json =
    ngx_string("application/problem+json");
static ngx_str_t  ngx_http_ratecore_text_plain =
    ngx_string("text/plain; charset=utf-8");


/* Renders the denial body into pool memory (retrying once with the size the renderer
 * asks for). */
static ratecore_status
ngx_http_ratecore_render_body(ngx_http_request_t *r, ngx_http_ratecore_limit_t *limit,
    const ratecore_check_result *result, u_char **body, size_t *written)
{
    size_t           size;
    u_char          *buf;
    ngx_uint_t       attempt;
    ratecore_status  st;

    size = 512;
    st = RATECORE_STATUS_OK;
    buf = NULL;

    for (attempt = 0; attempt < 2; attempt++) {
        buf = ngx_pnalloc(r->pool, size);
        if (buf == NULL) {
            return RATECORE_STATUS_OUT_OF_MEMORY;
        }

        *written = 0;

        if (limit->d.body == RATECORE_LIMIT_BODY_PROBLEM_JSON) {
            st = ratecore_render_problem_json(&result->decision,
                                              limit->d.problem_type.data,
                                              limit->d.problem_type.len,
                                              limit->d.problem_title.data,
                                              limit->d.problem_title.len, buf,
                                              size, written);
        } else {
            /* the deciding quota's period: "... requests per 1h" */
            st = ratecore_render_text_body(&result->decision, limit->d.description.data,
                                           limit->d.description.len, result->period_ns,
                                           buf, size, written);
        }

        if (st != RATECORE_STATUS_BUFFER_TOO_SMALL || *written <= size
            || *written > NGX_HTTP_RATECORE_MAX_RENDER)
        {
            break;
        }

        size = *written;
    }

    *body = buf;

    return st;
}


/* Sends the denial: limit's status, its body (with its Content-Type) or none. */
ngx_int_t
ngx_http_ratecore_send_denial(ngx_http_request_t *r, ngx_http_ratecore_limit_t *limit,
    const ratecore_check_result *result)
{
    size_t            written;
    u_char           *body;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_str_t        *ct;
    ngx_chain_t       out;
    ratecore_status   st;

    written = 0;
    body = NULL;
    ct = NULL;

    if (limit->d.body == RATECORE_LIMIT_BODY_PROBLEM_JSON
        || limit->d.body == RATECORE_LIMIT_BODY_TEXT)
    {
        ct = limit->d.body == RATECORE_LIMIT_BODY_PROBLEM_JSON
             ? &ngx_http_ratecore_problem_json : &ngx_http_ratecore_text_plain;

        st = ngx_http_ratecore_render_body(r, limit, result, &body, &written);

        if (st != RATECORE_STATUS_OK) {
            /* the strings were checked at configuration time: not bad input */
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "ratecore: rendering the denial body failed: %s "
                          "(status %uD)", ratecore_status_message(st),
                          (uint32_t) st);
            return limit->d.status;
        }
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = limit->d.status;
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
