/* HTTP/1.1 server on libuv and llhttp.
 *
 * One struct conn per accepted connection. Bytes from the transport (plain uv_tcp or a
 * tls_conn) are appended to conn->pending and fed to llhttp; on_message_complete returns
 * HPE_PAUSED, so llhttp_execute stops right after each request and the rest of the input
 * stays in pending until http_respond resumes the parser. That keeps pipelined requests in
 * order and one at a time. A request handed to the handler is detached from its conn when
 * the conn starts closing (req->conn = NULL); http_respond on such a request only frees it.
 * A conn is freed only when all its handles (transport and idle timer) have closed. */
#include "http.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define HTTP_MAX_HEADER_COUNT  100
#define HTTP_DEFAULT_MAX_CONNS 1024
#define HTTP_IDLE_TIMEOUT_MS   60000
/* After the last response on a closing connection: how long unread input is drained so
 * that closing does not reset the connection before the client read the response. */
#define HTTP_LINGER_MS 2000
#define HTTP_READ_BUF  (64 * 1024)
/* Unparsed input buffered while a request is being handled: reading pauses above the soft
 * limit; a transport that keeps delivering past the hard limit gets the connection closed. */
#define HTTP_PENDING_SOFT           (64 * 1024)
#define HTTP_PENDING_HARD           (1024 * 1024)
#define HTTP_MAX_RESP_HEADERS_BYTES (8 * 1024)
/* Responses queued but not yet taken by the kernel above which parsing stops (a client that
 * pipelines requests without reading the answers). */
#define HTTP_WRITE_BACKLOG (1024 * 1024)

typedef struct conn conn;

/* What differs between plain TCP and TLS; everything else is shared. */
struct transport_ops {
    /* Queues len bytes of buf for sending; takes ownership of buf (malloc'd) in every
     * case. Returns 0 or a negative UV_E* code. */
    int (*write)(conn *c, char *buf, size_t len);
    /* Sends what is queued, then closes; conn_handle_closed follows asynchronously. */
    void (*end)(conn *c);
    /* Closes now; conn_handle_closed follows asynchronously. */
    void (*close)(conn *c);
    void (*read_pause)(conn *c);
    void (*read_resume)(conn *c);
    /* Bytes queued for sending and not yet written to the socket. */
    size_t (*queued)(const conn *c);
};

struct hdr {
    size_t name;  /* offset of the NUL-terminated name in hbuf */
    size_t value; /* offset of the NUL-terminated value in hbuf */
};

enum hstate { HS_NONE, HS_FIELD, HS_VALUE };

struct http_req {
    conn *conn; /* NULL once handed over and the connection went away */
    char method[24];
    char *url;
    size_t url_len, url_cap;
    char *path;        /* decoded path, then NUL, then the raw query, then NUL */
    const char *query; /* points into path */
    char *params;      /* key NUL value NUL ..., decoded */
    size_t params_len;
    char *hbuf;
    size_t hlen, hcap;
    struct hdr hdrs[HTTP_MAX_HEADER_COUNT];
    size_t nhdrs;
    enum hstate hstate;
    size_t cur_name; /* offset of the header name being parsed */
    char *body;
    size_t body_len, body_cap;
    char *resp_hdrs; /* "Name: value\r\n"... */
    size_t resp_hdrs_len, resp_hdrs_cap;
    char peer[64];
    int keep_alive;
    int head;
    int complete;
};

struct conn {
    http_server *srv;
    conn *prev, *next;
    const struct transport_ops *ops;
    uv_tcp_t tcp;  /* plain transport */
    tls_conn *tls; /* TLS transport */
    uv_shutdown_t shutdown_req;
    uv_timer_t timer;
    int has_timer;
    int handles; /* handles still open; the conn is freed when this reaches 0 */
    int closing;
    int reading;
    int eof;
    int lingering;
    int close_after_write;
    int backlogged; /* parsing stopped until the write backlog drains */
    size_t writes_pending;
    llhttp_t parser;
    http_req *req;      /* being parsed */
    http_req *inflight; /* handed to the handler, not yet answered */
    int in_dispatch;
    int err_status;
    char err_msg[96];
    char *pending;
    size_t pending_off, pending_len, pending_cap;
    char peer[64];
};

struct http_server {
    uv_loop_t *loop; /* NULL for the fuzzing entry point (no sockets, no timers) */
    uv_tcp_t listener;
    http_handler handler;
    void *ud;
    tls_ctx *tls;
    size_t max_body;
    uint64_t idle_ms;
    size_t max_conns, nconns;
    conn *conns;
    int port;
    int stopping;
    int listener_closed;
    llhttp_settings_t settings;
    int rbuf_busy;
    char rbuf[HTTP_READ_BUF];
};

struct write_req {
    uv_write_t req;
    conn *c;
    char *buf;
};

static void conn_close(conn *c);
static void conn_process(conn *c);
static void conn_drained(conn *c);

/* ---- small helpers ---------------------------------------------------------------------- */

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

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Appends n bytes to a growable buffer that may never hold more than max bytes (plus a
 * spare byte for a terminating NUL). Returns 0, UV_E2BIG past max, UV_ENOMEM. */
static int buf_append(char **buf, size_t *len, size_t *cap, const char *at, size_t n, size_t max)
{
    if (n > max || *len > max - n)
        return UV_E2BIG;
    if (*len + n + 1 > *cap) {
        size_t want = *cap ? *cap * 2 : 256;
        if (want < *len + n + 1)
            want = *len + n + 1;
        if (want > max + 1)
            want = max + 1;
        char *p = realloc(*buf, want);
        if (!p)
            return UV_ENOMEM;
        *buf = p;
        *cap = want;
    }
    if (n)
        memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
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
            int hi = hexval((unsigned char)src[i + 1]), lo = hexval((unsigned char)src[i + 2]);
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

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 1;
    return 0;
}

static int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return 0;
    }
    return 1;
}

/* ---- requests --------------------------------------------------------------------------- */

static void req_free(http_req *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->path);
    free(r->params);
    free(r->hbuf);
    free(r->body);
    free(r->resp_hdrs);
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
        if (ascii_casecmp(r->hbuf + r->hdrs[i].name, name) == 0)
            return r->hbuf + r->hdrs[i].value;
    return NULL;
}

const char *http_req_body(const http_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

const char *http_req_peer(const http_req *r)
{
    return r->peer;
}

void http_add_header(http_req *r, const char *name, const char *value)
{
    if (!is_token(name) || has_ctl(value)) {
        log_warn("http: dropped response header \"%.64s\": invalid name or CR/LF in value", name);
        return;
    }
    size_t nl = strlen(name), vl = strlen(value);
    if (r->resp_hdrs_len + nl + vl + 4 > HTTP_MAX_RESP_HEADERS_BYTES) {
        log_warn("http: dropped response header \"%.64s\": added headers over %d bytes", name,
                 HTTP_MAX_RESP_HEADERS_BYTES);
        return;
    }
    if (buf_append(&r->resp_hdrs, &r->resp_hdrs_len, &r->resp_hdrs_cap, name, nl,
                   HTTP_MAX_RESP_HEADERS_BYTES) < 0 ||
        buf_append(&r->resp_hdrs, &r->resp_hdrs_len, &r->resp_hdrs_cap, ": ", 2,
                   HTTP_MAX_RESP_HEADERS_BYTES) < 0 ||
        buf_append(&r->resp_hdrs, &r->resp_hdrs_len, &r->resp_hdrs_cap, value, vl,
                   HTTP_MAX_RESP_HEADERS_BYTES) < 0 ||
        buf_append(&r->resp_hdrs, &r->resp_hdrs_len, &r->resp_hdrs_cap, "\r\n", 2,
                   HTTP_MAX_RESP_HEADERS_BYTES) < 0)
        log_warn("http: out of memory adding response header \"%.64s\"", name);
}

/* Splits and decodes the request target. Returns 0, or -1 with c->err_msg set. */
static int req_parse_url(conn *c, http_req *r)
{
    const char *u = r->url ? r->url : "";
    size_t n = r->url_len;
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
    size_t o = 0;
    const char *s = qs, *end = qs + qlen;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        if (pe > s) {
            const char *eq = memchr(s, '=', (size_t)(pe - s));
            const char *ke = eq ? eq : pe;
            long kl = pct_decode(r->params + o, s, (size_t)(ke - s), 1);
            if (kl < 0)
                goto bad_query;
            o += (size_t)kl;
            r->params[o++] = '\0';
            if (eq) {
                long vl = pct_decode(r->params + o, eq + 1, (size_t)(pe - eq - 1), 1);
                if (vl < 0)
                    goto bad_query;
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

/* ---- llhttp callbacks -------------------------------------------------------------------- */

/* Records why a callback refused the request; conn_process answers with it. */
static int fail_cb(conn *c, int status, const char *fmt, long limit)
{
    c->err_status = status;
    snprintf(c->err_msg, sizeof c->err_msg, fmt, limit);
    llhttp_set_error_reason(&c->parser, "refused by a bounds check");
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    conn *c = p->data;
    req_free(c->req);
    c->req = calloc(1, sizeof *c->req);
    if (!c->req) {
        c->err_status = 503;
        snprintf(c->err_msg, sizeof c->err_msg, "out of memory");
        return -1;
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    http_req *r = c->req;
    if (r->url_len + len > HTTP_MAX_URL)
        return fail_cb(c, 414, "request URL longer than %ld bytes", HTTP_MAX_URL);
    if (buf_append(&r->url, &r->url_len, &r->url_cap, at, len, HTTP_MAX_URL) < 0)
        return fail_cb(c, 503, "out of memory", 0);
    return 0;
}

static int hdr_append(conn *c, const char *at, size_t len)
{
    http_req *r = c->req;
    int rc = buf_append(&r->hbuf, &r->hlen, &r->hcap, at, len, HTTP_MAX_HEADERS_BYTES);
    if (rc == UV_E2BIG)
        return fail_cb(c, 431, "request headers larger than %ld bytes", HTTP_MAX_HEADERS_BYTES);
    if (rc < 0)
        return fail_cb(c, 503, "out of memory", 0);
    return 0;
}

/* Ends the header line being parsed (if any) so that an empty value, for which llhttp may
 * not call on_header_value at all, still yields a well-formed entry. */
static int hdr_finish(conn *c)
{
    http_req *r = c->req;
    if (r->hstate == HS_NONE)
        return 0;
    if (r->hstate == HS_FIELD) {
        int rc = hdr_append(c, "", 1);
        if (rc)
            return rc;
        r->hdrs[r->nhdrs].value = r->hlen;
    }
    /* trim trailing whitespace from the value */
    size_t v = r->hdrs[r->nhdrs].value;
    while (r->hlen > v && (r->hbuf[r->hlen - 1] == ' ' || r->hbuf[r->hlen - 1] == '\t'))
        r->hbuf[--r->hlen] = '\0';
    int rc = hdr_append(c, "", 1); /* keeps the NUL as part of the stored bytes */
    if (rc)
        return rc;
    r->hdrs[r->nhdrs].name = r->cur_name;
    r->nhdrs++;
    r->hstate = HS_NONE;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    http_req *r = c->req;
    if (r->hstate != HS_FIELD) {
        int rc = hdr_finish(c);
        if (rc)
            return rc;
        if (r->nhdrs >= HTTP_MAX_HEADER_COUNT)
            return fail_cb(c, 431, "more than %ld request header fields", HTTP_MAX_HEADER_COUNT);
        r->cur_name = r->hlen;
        r->hstate = HS_FIELD;
    }
    return hdr_append(c, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    http_req *r = c->req;
    if (r->hstate == HS_NONE)
        return 0; /* cannot happen with llhttp; ignore rather than misattribute */
    if (r->hstate == HS_FIELD) {
        int rc = hdr_append(c, "", 1);
        if (rc)
            return rc;
        r->hdrs[r->nhdrs].value = r->hlen;
        r->hstate = HS_VALUE;
    }
    return hdr_append(c, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    conn *c = p->data;
    return hdr_finish(c);
}

static void conn_write_raw(conn *c, const char *s, size_t n);

static int on_headers_complete(llhttp_t *p)
{
    conn *c = p->data;
    http_req *r = c->req;
    if (hdr_finish(c))
        return -1;
    const char *m = llhttp_method_name((llhttp_method_t)p->method);
    snprintf(r->method, sizeof r->method, "%s", m ? m : "");
    r->head = p->method == HTTP_HEAD;
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
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
        r->body_cap = (size_t)p->content_length + 1;
        r->body = malloc(r->body_cap);
        if (!r->body) {
            c->err_status = 503;
            snprintf(c->err_msg, sizeof c->err_msg, "out of memory");
            return -1;
        }
    }
    const char *expect = http_req_header(r, "Expect");
    if (expect && ascii_casecmp(expect, "100-continue") == 0 && p->http_major == 1 &&
        p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write_raw(c, cont, sizeof cont - 1);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    http_req *r = c->req;
    int rc = buf_append(&r->body, &r->body_len, &r->body_cap, at, len, c->srv->max_body);
    if (rc == UV_E2BIG)
        return fail_cb(c, 413, "request body larger than %ld bytes", (long)c->srv->max_body);
    if (rc < 0)
        return fail_cb(c, 503, "out of memory", 0);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    conn *c = p->data;
    http_req *r = c->req;
    if (hdr_finish(c))
        return -1;
    r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    r->complete = 1;
    return HPE_PAUSED;
}

/* ---- connections ------------------------------------------------------------------------- */

static void timer_cb(uv_timer_t *t);

static void conn_timer_start(conn *c, uint64_t ms)
{
    if (c->has_timer && !c->closing)
        (void)uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static void conn_free(conn *c)
{
    http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    req_free(c->req);
    free(c->pending);
    free(c);
    if (s->stopping && s->listener_closed && s->nconns == 0)
        free(s);
}

static void conn_handle_closed(conn *c)
{
    if (--c->handles == 0)
        conn_free(c);
}

static void timer_close_cb(uv_handle_t *h)
{
    conn_handle_closed(h->data);
}

/* Starts closing the connection now; a request being handled is detached. */
static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->inflight) {
        c->inflight->conn = NULL;
        c->inflight = NULL;
    }
    if (c->has_timer)
        uv_close((uv_handle_t *)&c->timer, timer_close_cb);
    c->ops->close(c);
}

/* Closes once everything queued has been written. */
static void conn_finish(conn *c)
{
    if (c->closing)
        return;
    c->close_after_write = 1;
    if (c->writes_pending == 0)
        c->ops->end(c);
}

static void conn_write_raw(conn *c, const char *s, size_t n)
{
    if (c->closing)
        return;
    char *b = malloc(n);
    if (!b) {
        conn_close(c);
        return;
    }
    memcpy(b, s, n);
    if (c->ops->write(c, b, n) < 0)
        conn_close(c);
}

static void json_escape(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src && o + 7 < cap; src++) {
        unsigned char ch = (unsigned char)*src;
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    dst[o] = '\0';
}

/* Answers a request that could not be parsed, then closes. */
#define HTTP_SECURITY_HEADERS                                                                      \
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"                                 \
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"                      \
    "Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n"
#define HTTP_HSTS_HEADER "Strict-Transport-Security: max-age=31536000\r\n"

static void conn_fail(conn *c, int status, const char *msg)
{
    char esc[256], body[300], head[640];
    json_escape(esc, sizeof esc, msg);
    int bl = snprintf(body, sizeof body, "{\"error\":\"%s\"}", esc);
    if (bl < 0)
        bl = 0;
    if ((size_t)bl >= sizeof body)
        bl = (int)sizeof body - 1;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n%s%sConnection: close\r\n\r\n",
                      status, reason_phrase(status), bl, HTTP_SECURITY_HEADERS,
                      c->srv->tls ? HTTP_HSTS_HEADER : "");
    if (hl < 0 || (size_t)hl >= sizeof head)
        hl = 0;
    log_debug("http: %s: %d %s", c->peer, status, msg);
    req_free(c->req);
    c->req = NULL;
    size_t n = (size_t)hl + (size_t)bl;
    char *b = malloc(n);
    if (!b) {
        conn_close(c);
        return;
    }
    memcpy(b, head, (size_t)hl);
    memcpy(b + hl, body, (size_t)bl);
    if (c->ops->write(c, b, n) < 0) {
        conn_close(c);
        return;
    }
    conn_finish(c);
}

static void conn_dispatch(conn *c)
{
    http_req *r = c->req;
    c->req = NULL;
    r->conn = c;
    memcpy(r->peer, c->peer, sizeof r->peer);
    c->inflight = r;
    if (c->has_timer)
        uv_timer_stop(&c->timer);
    c->in_dispatch = 1;
    c->srv->handler(r, c->srv->ud);
    c->in_dispatch = 0;
}

/* Parses buffered input until it runs out, a request is handed to the handler, or an error
 * ends the connection. Never re-entered: http_respond inside the handler only resumes. */
static void conn_process(conn *c)
{
    while (!c->closing && !c->inflight && !c->close_after_write &&
           c->pending_off < c->pending_len) {
        if (c->ops->queued(c) > HTTP_WRITE_BACKLOG) {
            c->backlogged = 1;
            c->ops->read_pause(c);
            return;
        }
        const char *p = c->pending + c->pending_off;
        size_t n = c->pending_len - c->pending_off;
        llhttp_errno_t e = llhttp_execute(&c->parser, p, n);
        if (c->closing)
            return;
        if (e == HPE_OK) {
            c->pending_off = c->pending_len;
        } else if (e == HPE_PAUSED && c->req && c->req->complete) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            size_t used = (pos && pos >= p && pos <= p + n) ? (size_t)(pos - p) : n;
            c->pending_off += used;
            conn_dispatch(c);
        } else {
            int status = c->err_status ? c->err_status : 400;
            char msg[160];
            if (c->err_msg[0])
                snprintf(msg, sizeof msg, "%s", c->err_msg);
            else
                snprintf(msg, sizeof msg, "malformed HTTP request: %s",
                         e == HPE_PAUSED_UPGRADE ? "protocol upgrade not supported"
                                                 : llhttp_get_error_reason(&c->parser));
            c->pending_off = c->pending_len = 0;
            conn_fail(c, status, msg);
            return;
        }
    }
    if (c->closing)
        return;
    if (c->pending_off == c->pending_len)
        c->pending_off = c->pending_len = 0;
    if (c->eof) {
        if (!c->inflight && (c->pending_len == 0 || c->close_after_write))
            conn_finish(c);
        return;
    }
    if (c->pending_len - c->pending_off >= HTTP_PENDING_SOFT)
        c->ops->read_pause(c);
    else
        c->ops->read_resume(c);
}

/* Input from the transport; valid only during the call. */
static void conn_on_data(conn *c, const char *data, size_t len)
{
    if (c->closing || c->lingering || c->close_after_write || len == 0)
        return;
    if (!c->inflight)
        conn_timer_start(c, c->srv->idle_ms);
    if (c->pending_off > 0 && c->pending_off == c->pending_len)
        c->pending_off = c->pending_len = 0;
    if (c->pending_len + len > c->pending_cap && c->pending_off > 0) {
        memmove(c->pending, c->pending + c->pending_off, c->pending_len - c->pending_off);
        c->pending_len -= c->pending_off;
        c->pending_off = 0;
    }
    if (buf_append(&c->pending, &c->pending_len, &c->pending_cap, data, len, HTTP_PENDING_HARD) <
        0) {
        log_warn("http: %s: more than %d bytes of unprocessed input, closing", c->peer,
                 HTTP_PENDING_HARD);
        conn_close(c);
        return;
    }
    if (!c->inflight)
        conn_process(c);
    else if (c->pending_len - c->pending_off >= HTTP_PENDING_SOFT)
        c->ops->read_pause(c);
}

static void conn_on_eof(conn *c)
{
    if (c->closing)
        return;
    c->eof = 1;
    if (c->lingering)
        conn_close(c);
    else if (!c->inflight)
        conn_finish(c);
    /* otherwise a half-closed client still gets its answer; conn_process closes after */
}

/* The write backlog went down: parse what waited for it. */
static void conn_drained(conn *c)
{
    if (c->closing || !c->backlogged || c->ops->queued(c) > HTTP_WRITE_BACKLOG / 2)
        return;
    c->backlogged = 0;
    if (!c->inflight)
        conn_process(c);
}

static void timer_cb(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->closing)
        return;
    conn_close(c);
}

void http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len)
{
    conn *c = r->conn;
    if (!c) {
        req_free(r);
        return;
    }
    c->inflight = NULL;
    r->conn = NULL;
    if (c->closing) {
        req_free(r);
        return;
    }
    if (status < 100 || status > 999)
        status = 500;
    if (!content_type || has_ctl(content_type))
        content_type = "application/json";
    if (!body)
        len = 0;
    int keep = r->keep_alive && !c->srv->stopping && !(c->eof && c->pending_off == c->pending_len);
    int no_body = status == 204 || status == 304 || status < 200;
    size_t send_len = (no_body || r->head) ? 0 : len;
    char clen[48] = "";
    if (!no_body)
        snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len);
    /* APIs, not pages: nothing may be framed, sniffed, cached or given a referrer; over
     * HTTPS browsers must keep using HTTPS. */
    const char *sec = c->srv->tls ? HTTP_SECURITY_HEADERS HTTP_HSTS_HEADER : HTTP_SECURITY_HEADERS;
    size_t cap =
        128 + strlen(sec) + strlen(content_type) + strlen(clen) + r->resp_hdrs_len + send_len;
    char *b = malloc(cap);
    if (!b) {
        req_free(r);
        conn_close(c);
        return;
    }
    int hl =
        snprintf(b, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%.*sConnection: %s\r\n\r\n",
                 status, reason_phrase(status), content_type, clen, sec, (int)r->resp_hdrs_len,
                 r->resp_hdrs ? r->resp_hdrs : "", keep ? "keep-alive" : "close");
    if (hl < 0 || (size_t)hl + send_len > cap) {
        req_free(r);
        free(b);
        conn_close(c);
        return;
    }
    /* body may point into the request (an echo), so copy it before freeing the request */
    if (send_len)
        memcpy(b + hl, body, send_len);
    req_free(r);
    if (c->ops->write(c, b, (size_t)hl + send_len) < 0) {
        conn_close(c);
        return;
    }
    if (!keep) {
        conn_finish(c);
        return;
    }
    llhttp_resume(&c->parser);
    conn_timer_start(c, c->srv->idle_ms);
    if (!c->in_dispatch)
        conn_process(c);
}

/* ---- plain TCP transport ----------------------------------------------------------------- */

static void tcp_close_cb(uv_handle_t *h)
{
    conn_handle_closed(h->data);
}

static void tcp_write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    conn *c = w->c;
    free(w->buf);
    free(w);
    c->writes_pending--;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after_write && c->writes_pending == 0)
        c->ops->end(c);
    else if (c->backlogged)
        conn_drained(c);
}

static int tcp_write(conn *c, char *buf, size_t len)
{
    if (len > UINT32_MAX) {
        free(buf);
        return UV_E2BIG;
    }
    struct write_req *w = malloc(sizeof *w);
    if (!w) {
        free(buf);
        return UV_ENOMEM;
    }
    w->c = c;
    w->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned int)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tcp_write_cb);
    if (rc < 0) {
        free(buf);
        free(w);
        return rc;
    }
    c->writes_pending++;
    return 0;
}

static size_t tcp_queued(const conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

static void tcp_shutdown_cb(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0)
        conn_close(c);
}

static void tcp_close(conn *c)
{
    uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
}

static void tcp_read_pause(conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void tcp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    http_server *s = c->srv;
    (void)suggested;
    if (!s->rbuf_busy) {
        s->rbuf_busy = 1;
        *buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
        return;
    }
    char *p = malloc(HTTP_READ_BUF);
    *buf = uv_buf_init(p, p ? HTTP_READ_BUF : 0);
}

static void tcp_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = st->data;
    http_server *s = c->srv;
    if (nread > 0)
        conn_on_data(c, buf->base, (size_t)nread);
    else if (nread == UV_EOF) {
        c->reading = 0;
        conn_on_eof(c);
    } else if (nread < 0) {
        c->reading = 0;
        conn_close(c);
    }
    if (buf->base == s->rbuf)
        s->rbuf_busy = 0;
    else
        free(buf->base);
}

static void tcp_read_resume(conn *c)
{
    if (!c->reading && !c->eof && !c->closing) {
        if (uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc_cb, tcp_read_cb) == 0)
            c->reading = 1;
        else
            conn_close(c);
    }
}

/* Half-closes our side and drains input for a short while, so the client reads the last
 * response instead of a reset caused by unread data. */
static void tcp_end(conn *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->eof) {
        conn_close(c);
        return;
    }
    c->lingering = 1;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, tcp_shutdown_cb) < 0) {
        conn_close(c);
        return;
    }
    tcp_read_resume(c);
    conn_timer_start(c, HTTP_LINGER_MS);
}

static const struct transport_ops tcp_ops = {
    .write = tcp_write,
    .end = tcp_end,
    .close = tcp_close,
    .read_pause = tcp_read_pause,
    .read_resume = tcp_read_resume,
    .queued = tcp_queued,
};

/* ---- TLS transport ----------------------------------------------------------------------- */

static int tls_t_write(conn *c, char *buf, size_t len)
{
    int rc = c->tls ? tls_conn_write(c->tls, (const uint8_t *)buf, len) : UV_ENOTCONN;
    free(buf);
    return rc;
}

static void tls_t_close(conn *c)
{
    if (c->tls)
        tls_conn_close(c->tls);
}

static void tls_t_read_pause(conn *c)
{
    if (c->tls && c->reading) {
        tls_conn_pause(c->tls);
        c->reading = 0;
    }
}

static void tls_t_read_resume(conn *c)
{
    if (c->tls && !c->reading && !c->closing) {
        c->reading = 1; /* before the call: tls_conn_resume may deliver data right away */
        tls_conn_resume(c->tls);
    }
}

/* tls_conn_close sends what is queued and close_notify before closing the socket. */
static void tls_t_end(conn *c)
{
    conn_close(c);
}

static size_t tls_t_queued(const conn *c)
{
    return c->tls ? tls_conn_queued(c->tls) : 0;
}

static const struct transport_ops tls_ops = {
    .write = tls_t_write,
    .end = tls_t_end,
    .close = tls_t_close,
    .read_pause = tls_t_read_pause,
    .read_resume = tls_t_read_resume,
    .queued = tls_t_queued,
};

static void tls_on_ready(tls_conn *t, void *ud)
{
    conn *c = ud;
    const char *a = tls_conn_addr(t);
    if (a)
        snprintf(c->peer, sizeof c->peer, "%s", a);
}

static void tls_on_data(tls_conn *t, const uint8_t *buf, size_t len, void *ud)
{
    (void)t;
    conn_on_data(ud, (const char *)buf, len);
}

static void tls_on_drain(tls_conn *t, void *ud)
{
    (void)t;
    conn_drained(ud);
}

static void tls_on_close(tls_conn *t, int status, void *ud)
{
    conn *c = ud;
    (void)t;
    (void)status;
    c->tls = NULL;
    if (!c->closing)
        conn_close(c);
    conn_handle_closed(c);
}

/* ---- server ------------------------------------------------------------------------------ */

static void reject_close_cb(uv_handle_t *h)
{
    free(h);
}

static void conn_init_common(conn *c, http_server *s)
{
    c->srv = s;
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
}

static void format_peer(char *out, size_t cap, const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    http_server *s = server->data;
    if (status < 0 || s->stopping)
        return;
    if (s->nconns >= s->max_conns) {
        uv_tcp_t *t = malloc(sizeof *t);
        if (!t)
            return;
        uv_tcp_init(s->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            log_warn("http: %zu connections open, refusing a new one", s->nconns);
        uv_close((uv_handle_t *)t, reject_close_cb);
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    if (s->tls) {
        static const tls_conn_cb cbs = {
            .on_ready = tls_on_ready,
            .on_data = tls_on_data,
            .on_drain = tls_on_drain,
            .on_close = tls_on_close,
        };
        if (tls_conn_accept(&c->tls, s->tls, server, &cbs, c) < 0) {
            free(c);
            return;
        }
        c->ops = &tls_ops;
        c->reading = 1;
        const char *a = tls_conn_addr(c->tls);
        snprintf(c->peer, sizeof c->peer, "%s", a ? a : "?");
    } else {
        uv_tcp_init(s->loop, &c->tcp);
        c->tcp.data = c;
        c->ops = &tcp_ops;
    }
    conn_init_common(c, s);
    c->handles = 2;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->has_timer = 1;
    if (!s->tls) {
        if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
            conn_close(c);
            return;
        }
        uv_tcp_nodelay(&c->tcp, 1);
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
            format_peer(c->peer, sizeof c->peer, &ss);
        else
            snprintf(c->peer, sizeof c->peer, "?");
        tcp_read_resume(c);
    }
    conn_timer_start(c, s->idle_ms);
}

static void server_init_settings(http_server *s)
{
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_header_value_complete = on_header_value_complete;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
}

static void listener_close_cb(uv_handle_t *h)
{
    http_server *s = h->data;
    s->listener_closed = 1;
    if (s->nconns == 0)
        free(s);
}

int http_server_start(http_server **out, uv_loop_t *loop, const http_server_opts *opts)
{
    *out = NULL;
    if (!opts->handler || opts->port < 0 || opts->port > 65535)
        return UV_EINVAL;
    const char *host = opts->host ? opts->host : "127.0.0.1";
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, opts->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)&addr) != 0)
        return UV_EINVAL;
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return UV_ENOMEM;
    s->loop = loop;
    s->handler = opts->handler;
    s->ud = opts->ud;
    s->tls = opts->tls;
    s->max_body = opts->max_body ? opts->max_body : HTTP_DEFAULT_MAX_BODY;
    s->idle_ms = HTTP_IDLE_TIMEOUT_MS;
    s->max_conns = HTTP_DEFAULT_MAX_CONNS;
    server_init_settings(s);
    int rc = uv_tcp_init(loop, &s->listener);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &bl);
    if (rc < 0)
        goto fail;
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *out = s;
    return 0;
fail:
    s->stopping = 1;
    uv_close((uv_handle_t *)&s->listener, listener_close_cb);
    return rc;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

void http_server_set_idle_timeout(http_server *s, uint64_t ms)
{
    s->idle_ms = ms ? ms : HTTP_IDLE_TIMEOUT_MS;
}

void http_server_set_max_conns(http_server *s, size_t n)
{
    s->max_conns = n ? n : HTTP_DEFAULT_MAX_CONNS;
}

void http_server_stop(http_server *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = 1;
    uv_close((uv_handle_t *)&s->listener, listener_close_cb);
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

/* ---- fuzzing entry point ----------------------------------------------------------------- */

static int null_write(conn *c, char *buf, size_t len)
{
    (void)c;
    (void)len;
    free(buf);
    return 0;
}

static void null_end(conn *c)
{
    conn_close(c);
}

static void null_noop(conn *c)
{
    (void)c;
}

static size_t null_queued(const conn *c)
{
    (void)c;
    return 0;
}

static const struct transport_ops null_ops = {
    .write = null_write,
    .end = null_end,
    .close = null_noop,
    .read_pause = null_noop,
    .read_resume = null_noop,
    .queued = null_queued,
};

static http_req *fuzz_held;
static int fuzz_async;

static void fuzz_handler(http_req *r, void *ud)
{
    (void)ud;
    size_t bl;
    const char *b = http_req_body(r, &bl);
    const char *v = http_req_param(r, "q");
    const char *h = http_req_header(r, "content-type");
    size_t sum = strlen(http_req_method(r)) + strlen(http_req_path(r)) + strlen(http_req_query(r)) +
                 strlen(http_req_peer(r)) + (v ? strlen(v) : 0) + (h ? strlen(h) : 0) +
                 (bl ? (unsigned char)b[bl - 1] : 0) + strlen(b);
    http_add_header(r, "X-Sum", sum % 2 ? "odd" : "even");
    if (fuzz_async) {
        fuzz_held = r;
        return;
    }
    http_respond(r, 200, NULL, b, bl);
}

int http_parse_feed_for_fuzz(const uint8_t *data, size_t len)
{
    http_server *s = calloc(1, sizeof *s);
    conn *c = calloc(1, sizeof *c);
    if (!s || !c) {
        free(s);
        free(c);
        return UV_ENOMEM;
    }
    s->handler = fuzz_handler;
    s->max_body = 4096;
    server_init_settings(s);
    conn_init_common(c, s);
    c->ops = &null_ops;
    snprintf(c->peer, sizeof c->peer, "fuzz");
    /* The input length picks the mode so that seeds stay plain HTTP. */
    fuzz_async = (int)(len % 2);
    size_t step = len % 7 == 0 ? len : len % 7 * 3;
    if (step == 0)
        step = 1;
    fuzz_held = NULL;
    for (size_t off = 0; off < len && !c->closing; off += step) {
        size_t n = len - off < step ? len - off : step;
        conn_on_data(c, (const char *)data + off, n);
        while (fuzz_held) {
            http_req *r = fuzz_held;
            fuzz_held = NULL;
            if (len % 3 == 0)
                conn_close(c);
            http_respond(r, len % 5 ? 200 : 204, "text/plain", "ok", 2);
        }
    }
    if (!c->closing)
        conn_on_eof(c);
    conn_close(c);
    conn_free(c);
    free(s);
    return 0;
}
