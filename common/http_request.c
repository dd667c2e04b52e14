/* Request parsing: the llhttp callbacks that build an http_req (method, target, headers,
 * body) within the server's bounds, the request-target and query parsing with
 * percent-decoding, and the accessors handlers read requests with. See http_internal.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "http_internal.h"
#include "utf8.h"

static int ascii_lower(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch + ('a' - 'A') : ch;
}

static int ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = ascii_lower((unsigned char)*a), y = ascii_lower((unsigned char)*b);
        if (x != y || x == 0)
            return x - y;
    }
}

/* Percent-decodes src[0..n) into dst (at least n bytes). With plus, '+' becomes a space.
 * Returns the decoded length, or -1 for an invalid escape or %00. */
static long pct_decode(char *dst, const char *src, size_t n, int plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            if (n - i < 3)
                return -1;
            int hi = hex_digit((unsigned char)src[i + 1]),
                lo = hex_digit((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && ch == '+') {
            dst[o++] = ' ';
        } else {
            dst[o++] = ch;
        }
    }
    return (long)o;
}

/* The longest prefix of valid UTF-8 text s that fits in max bytes and ends on a character
 * boundary, so that a name quoted in an error message stays valid UTF-8. */
static int utf8_prefix(const char *s, int max)
{
    size_t n = strlen(s);
    if (n <= (size_t)max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

void http__req_free(http_req *r)
{
    if (!r)
        return;
    sbuf_free(&r->url);
    free(r->path);
    free(r->params);
    sbuf_free(&r->hbuf);
    sbuf_free(&r->body);
    sbuf_free(&r->resp_hdrs);
    free(r);
}

const char *http_req_method(const http_req *r)
{
    return r->method;
}

const char *http_req_path(const http_req *r)
{
    return r->path ? r->path : "/";
}

const char *http_req_query(const http_req *r)
{
    return r->query ? r->query : "";
}

const char *http_req_param(const http_req *r, const char *name)
{
    size_t i = 0;
    while (r->params && i < r->params_len) {
        const char *k = r->params + i;
        const char *v = k + strlen(k) + 1;
        if (strcmp(k, name) == 0)
            return v;
        i = (size_t)(v - r->params) + strlen(v) + 1;
    }
    return NULL;
}

const char *http_req_header(const http_req *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++)
        if (ascii_casecmp(r->hbuf.p + r->hdrs[i].name, name) == 0)
            return r->hbuf.p + r->hdrs[i].value;
    return NULL;
}

const char *http_req_body(const http_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.p ? r->body.p : "";
}

const char *http_req_peer(const http_req *r)
{
    return r->peer;
}

void http_req_limit_body(http_req *r, size_t max)
{
    if (max < r->max_body)
        r->max_body = max;
}

/* Splits and decodes the request target. Returns 0, or -1 with c->err_msg set. */
static int req_parse_url(http__conn *c, http_req *r)
{
    const char *u = r->url.p ? r->url.p : "";
    size_t n = r->url.len;
    const char *hash = memchr(u, '#', n);
    if (hash)
        n = (size_t)(hash - u);
    const char *q = memchr(u, '?', n);
    size_t plen = q ? (size_t)(q - u) : n;
    const char *qs = q ? q + 1 : u + n;
    size_t qlen = q ? n - plen - 1 : 0;
    const char *p = u;
    if (plen == 0) {
        snprintf(c->err_msg, sizeof c->err_msg, "empty request target");
        return -1;
    }
    if (p[0] != '/' && !(plen == 1 && p[0] == '*')) {
        /* absolute-form (http://host/path): keep only the path */
        const char *scheme_end = NULL;
        for (size_t i = 0; i + 2 < plen; i++) {
            if (p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/') {
                scheme_end = p + i + 3;
                break;
            }
        }
        if (scheme_end) {
            const char *slash = memchr(scheme_end, '/', plen - (size_t)(scheme_end - p));
            if (slash) {
                plen -= (size_t)(slash - p);
                p = slash;
            } else {
                p = "/";
                plen = 1;
            }
        }
    }
    r->path = malloc(plen + 1 + qlen + 1);
    if (!r->path) {
        c->err_status = 503;
        snprintf(c->err_msg, sizeof c->err_msg, "out of memory");
        return -1;
    }
    long dl = pct_decode(r->path, p, plen, 0);
    if (dl < 0) {
        snprintf(c->err_msg, sizeof c->err_msg,
                 "request path has an invalid percent-escape or %%00");
        return -1;
    }
    r->path[dl] = '\0';
    /* Handlers pass what they read on to jansson and SQLite, which need UTF-8 text; refusing
     * here names the culprit, where a handler could only fail with a bare 500. */
    if (!utf8_valid(r->path, (size_t)dl)) {
        snprintf(c->err_msg, sizeof c->err_msg,
                 "request path is not valid UTF-8 after percent-decoding");
        return -1;
    }
    if (!utf8_valid(qs, qlen)) {
        snprintf(c->err_msg, sizeof c->err_msg, "request query string is not valid UTF-8");
        return -1;
    }
    char *qdst = r->path + dl + 1;
    memcpy(qdst, qs, qlen);
    qdst[qlen] = '\0';
    r->query = qdst;

    if (qlen == 0)
        return 0;
    /* Each pair "k=v" decodes to at most "k\0v\0": at most its length plus 2 bytes. */
    r->params = malloc(2 * qlen + 2);
    if (!r->params) {
        c->err_status = 503;
        snprintf(c->err_msg, sizeof c->err_msg, "out of memory");
        return -1;
    }
    size_t o = 0, nparam = 0;
    const char *s = qs, *end = qs + qlen;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        if (pe > s) {
            const char *eq = memchr(s, '=', (size_t)(pe - s));
            const char *ke = eq ? eq : pe;
            const char *key = r->params + o;
            nparam++;
            long kl = pct_decode(r->params + o, s, (size_t)(ke - s), 1);
            if (kl < 0)
                goto bad_query;
            if (!utf8_valid(key, (size_t)kl)) {
                snprintf(c->err_msg, sizeof c->err_msg,
                         "the name of query parameter %zu is not valid UTF-8 after "
                         "percent-decoding",
                         nparam);
                return -1;
            }
            o += (size_t)kl;
            r->params[o++] = '\0';
            if (eq) {
                long vl = pct_decode(r->params + o, eq + 1, (size_t)(pe - eq - 1), 1);
                if (vl < 0)
                    goto bad_query;
                if (!utf8_valid(r->params + o, (size_t)vl)) {
                    snprintf(c->err_msg, sizeof c->err_msg,
                             "query parameter \"%.*s\" is not valid UTF-8 after percent-decoding",
                             utf8_prefix(key, 48), key);
                    return -1;
                }
                o += (size_t)vl;
            }
            r->params[o++] = '\0';
        }
        s = pe + (amp ? 1 : 0);
    }
    r->params_len = o;
    return 0;
bad_query:
    snprintf(c->err_msg, sizeof c->err_msg, "query string has an invalid percent-escape or %%00");
    return -1;
}

/* Records why a callback refused the request; conn_process answers with it. */
static int fail_cb(http__conn *c, int status, const char *fmt, long limit)
{
    c->err_status = status;
    snprintf(c->err_msg, sizeof c->err_msg, fmt, limit);
    llhttp_set_error_reason(&c->parser, "refused by a bounds check");
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    http__conn *c = p->data;
    http__req_free(c->req);
    http_req *r = calloc(1, sizeof *r);
    c->req = r;
    c->phase = HTTP__PH_HEAD;
    if (!r) {
        c->err_status = 503;
        snprintf(c->err_msg, sizeof c->err_msg, "out of memory");
        return -1;
    }
    /* Each maximum counts the terminating NUL that sbuf keeps after the bytes. */
    sbuf_init(&r->url, HTTP_MAX_URL + 1);
    sbuf_init(&r->hbuf, HTTP_MAX_HEADERS_BYTES + 1);
    r->max_body = c->srv->max_body;
    sbuf_init(&r->body, c->srv->max_body + 1);
    sbuf_init(&r->resp_hdrs, HTTP__MAX_RESP_HEADERS_BYTES + 1);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    http__conn *c = p->data;
    http_req *r = c->req;
    if (len > HTTP_MAX_URL - r->url.len)
        return fail_cb(c, 414, "request URL longer than %ld bytes", HTTP_MAX_URL);
    if (sbuf_add(&r->url, at, len) < 0)
        return fail_cb(c, 503, "out of memory", 0);
    return 0;
}

static int hdr_append(http__conn *c, const char *at, size_t len)
{
    http_req *r = c->req;
    if (len > HTTP_MAX_HEADERS_BYTES - r->hbuf.len)
        return fail_cb(c, 431, "request headers larger than %ld bytes", HTTP_MAX_HEADERS_BYTES);
    if (sbuf_add(&r->hbuf, at, len) < 0)
        return fail_cb(c, 503, "out of memory", 0);
    return 0;
}

/* Ends the header line being parsed (if any) so that an empty value, for which llhttp may
 * not call on_header_value at all, still yields a well-formed entry. */
static int hdr_finish(http__conn *c)
{
    http_req *r = c->req;
    if (r->hstate == HTTP__HS_NONE)
        return 0;
    if (r->hstate == HTTP__HS_FIELD) {
        int rc = hdr_append(c, "", 1);
        if (rc)
            return rc;
        r->hdrs[r->nhdrs].value = r->hbuf.len;
    }
    /* trim trailing whitespace from the value */
    size_t v = r->hdrs[r->nhdrs].value;
    while (r->hbuf.len > v &&
           (r->hbuf.p[r->hbuf.len - 1] == ' ' || r->hbuf.p[r->hbuf.len - 1] == '\t'))
        r->hbuf.p[--r->hbuf.len] = '\0';
    int rc = hdr_append(c, "", 1); /* keeps the NUL as part of the stored bytes */
    if (rc)
        return rc;
    r->hdrs[r->nhdrs].name = r->cur_name;
    r->nhdrs++;
    r->hstate = HTTP__HS_NONE;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    http__conn *c = p->data;
    http_req *r = c->req;
    if (r->hstate != HTTP__HS_FIELD) {
        int rc = hdr_finish(c);
        if (rc)
            return rc;
        if (r->nhdrs >= HTTP__MAX_HEADER_COUNT)
            return fail_cb(c, 431, "more than %ld request header fields", HTTP__MAX_HEADER_COUNT);
        r->cur_name = r->hbuf.len;
        r->hstate = HTTP__HS_FIELD;
    }
    return hdr_append(c, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    http__conn *c = p->data;
    http_req *r = c->req;
    if (r->hstate == HTTP__HS_NONE)
        return 0; /* cannot happen with llhttp; ignore rather than misattribute */
    if (r->hstate == HTTP__HS_FIELD) {
        int rc = hdr_append(c, "", 1);
        if (rc)
            return rc;
        r->hdrs[r->nhdrs].value = r->hbuf.len;
        r->hstate = HTTP__HS_VALUE;
    }
    return hdr_append(c, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    http__conn *c = p->data;
    return hdr_finish(c);
}

/* Header fields that hold one value: given twice, which one counts would depend on who reads
 * them (this server took the first; a proxy in front may take the last). */
static const char *const http__single_headers[] = {"Authorization", "Host", "Content-Type",
                                                   "Cookie"};

/* The first of http__single_headers that r carries twice, or NULL. */
static const char *hdr_repeated(const http_req *r)
{
    for (size_t k = 0; k < sizeof(http__single_headers) / sizeof(*http__single_headers); k++) {
        int seen = 0;
        for (size_t i = 0; i < r->nhdrs; i++)
            if (ascii_casecmp(r->hbuf.p + r->hdrs[i].name, http__single_headers[k]) == 0 && seen++)
                return http__single_headers[k];
    }
    return NULL;
}

static int on_headers_complete(llhttp_t *p)
{
    http__conn *c = p->data;
    http_req *r = c->req;
    if (hdr_finish(c))
        return -1;
    const char *twice = hdr_repeated(r);
    if (twice) {
        c->err_status = 400;
        snprintf(c->err_msg, sizeof c->err_msg, "header %s given more than once", twice);
        return -1;
    }
    const char *m = llhttp_method_name((llhttp_method_t)p->method);
    snprintf(r->method, sizeof r->method, "%s", m ? m : "");
    r->head = p->method == HTTP_HEAD;
    int has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if (c->srv->max_body == 0 && has_body) {
        c->err_status = 413;
        snprintf(c->err_msg, sizeof c->err_msg, "this server takes no request body");
        return -1;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->max_body) {
        c->err_status = 413;
        snprintf(c->err_msg, sizeof c->err_msg, "request body larger than %zu bytes",
                 c->srv->max_body);
        return -1;
    }
    if (req_parse_url(c, r) < 0) {
        if (!c->err_status)
            c->err_status = 400;
        return -1;
    }
    /* A body is read only after on_head accepted the head (conn_head, after this pause);
     * it also sends 100 Continue then, so that a refused client never sends its body. A
     * request without a body goes to on_head with the handler (conn_dispatch). */
    if (has_body) {
        c->head_pause = 1;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    http__conn *c = p->data;
    http_req *r = c->req;
    if (len > r->max_body - r->body.len)
        return fail_cb(c, 413, "request body larger than %ld bytes", (long)r->max_body);
    if (sbuf_add(&r->body, at, len) < 0)
        return fail_cb(c, 503, "out of memory", 0);
    return 0;
}

/* A chunk announced past what the body may still take is refused at its size line: waiting
 * for its bytes would hold the connection until the read timeout for nothing. */
static int on_chunk_header(llhttp_t *p)
{
    http__conn *c = p->data;
    http_req *r = c->req;
    if (p->content_length > r->max_body - r->body.len)
        return fail_cb(c, 413, "request body larger than %ld bytes", (long)r->max_body);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    http__conn *c = p->data;
    http_req *r = c->req;
    if (hdr_finish(c))
        return -1;
    r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    r->complete = 1;
    return HPE_PAUSED;
}

void http__request_settings(llhttp_settings_t *settings)
{
    llhttp_settings_init(settings);
    settings->on_message_begin = on_message_begin;
    settings->on_url = on_url;
    settings->on_header_field = on_header_field;
    settings->on_header_value = on_header_value;
    settings->on_header_value_complete = on_header_value_complete;
    settings->on_headers_complete = on_headers_complete;
    settings->on_body = on_body;
    settings->on_chunk_header = on_chunk_header;
    settings->on_message_complete = on_message_complete;
}
