/* The connection state machine: input buffered and parsed one request at a time, requests
 * handed to the handler, responses written in order, keep-alive, closing and lingering, the
 * idle timer, and the bounds on unparsed input and unsent output. See http_internal.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "log.h"
#include "testhook.h"

/* Unparsed input buffered while a request is being handled: reading pauses above the soft
 * limit; a transport that keeps delivering past the hard limit gets the connection closed. */
#define HTTP_PENDING_SOFT (64 * 1024)
#define HTTP_PENDING_HARD (1024 * 1024)

static void conn_process(http__conn *c);

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

void http_add_header(http_req *r, const char *name, const char *value)
{
    if (!is_token(name) || has_ctl(value)) {
        log_warn("http: dropped response header \"%.64s\": invalid name or CR/LF in value", name);
        return;
    }
    size_t nl = strlen(name), vl = strlen(value);
    if (r->resp_hdrs.len + nl + vl + 4 > HTTP__MAX_RESP_HEADERS_BYTES) {
        log_warn("http: dropped response header \"%.64s\": added headers over %d bytes", name,
                 HTTP__MAX_RESP_HEADERS_BYTES);
        return;
    }
    /* A lost header could change what the answer means (a missing ETag, Location or
     * Content-Disposition), so http_respond answers 500 instead once resp_hdrs failed. */
    if (testhook_fire("http_add_header_nomem"))
        r->resp_hdrs.failed = 1;
    sbuf_add(&r->resp_hdrs, name, nl);
    sbuf_add(&r->resp_hdrs, ": ", 2);
    sbuf_add(&r->resp_hdrs, value, vl);
    if (sbuf_add(&r->resp_hdrs, "\r\n", 2) < 0)
        log_error("http: out of memory adding response header \"%.64s\"", name);
}

/* 1 when the handler added a header of this name (case-insensitive) to the answer. */
static int resp_has_header(const http_req *r, const char *name)
{
    size_t nl = strlen(name);
    const char *p = r->resp_hdrs.p, *end = p ? p + r->resp_hdrs.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return 1;
        p = eol ? eol + 1 : end;
    }
    return 0;
}

static void timer_cb(uv_timer_t *t);

uint64_t http__now(const http_server *s)
{
    return s->loop ? uv_now(s->loop) : 0;
}

void http__conn_timer_start(http__conn *c, uint64_t ms)
{
    if (!c->has_timer || c->closing)
        return;
    /* A connection without its timer could stay open forever; closing it is the safe side. */
    int rc = uv_timer_start(&c->timer, timer_cb, ms, 0);
    if (rc < 0) {
        log_error("http: %s: cannot start the connection's timer: %s", c->peer, uv_strerror(rc));
        http__conn_close(c);
    }
}

/* ms from now until start + span, at least 1 (a timer due now still fires on the next turn
 * of the loop, after the input already waiting there). */
static uint64_t due_in(uint64_t now, uint64_t start, uint64_t span)
{
    return start + span > now ? start + span - now : 1;
}

/* (Re)starts the timer for what the connection waits for: nothing while the handler has the
 * request (the server waits on itself), the idle timeout while the client reads a backlog of
 * answers or has not sent a byte, the body-rate window while a body arrives, the head
 * deadline otherwise. The lingering wait is started by the transport. */
void http__conn_arm(http__conn *c)
{
    if (!c->has_timer || c->closing || c->lingering)
        return;
    http_server *s = c->srv;
    uint64_t now = http__now(s);
    if (c->inflight) {
        (void)uv_timer_stop(&c->timer); /* cannot fail */
        return;
    }
    uint64_t ms;
    if (c->backlogged)
        ms = s->idle_ms;
    else if (c->phase == HTTP__PH_BODY)
        ms = due_in(now, c->win_start, s->rate_window_ms);
    else if (c->head_clock)
        ms = due_in(now, c->head_start, s->head_ms);
    else
        ms = due_in(now, c->accepted_at, s->idle_ms);
    http__conn_timer_start(c, ms);
}

void http__conn_free(http__conn *c)
{
    http__server_unlink(c->srv, c);
    http__req_free(c->req);
    sbuf_free(&c->pending);
    free(c);
}

void http__conn_handle_closed(http__conn *c)
{
    if (--c->handles == 0)
        http__conn_free(c);
}

static void timer_close_cb(uv_handle_t *h)
{
    http__conn_handle_closed(h->data);
}

/* Starts closing the connection now; a request being handled is detached. */
void http__conn_close(http__conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->srv->nclosing++;
    http__server_conn_closing(c->srv, c);
    if (c->inflight) {
        c->inflight->conn = NULL;
        c->inflight = NULL;
    }
    if (c->has_timer)
        uv_close((uv_handle_t *)&c->timer, timer_close_cb);
    if (c->ops)
        c->ops->close(c);
}

/* Closes once everything queued has been written. */
static void conn_finish(http__conn *c)
{
    if (c->closing)
        return;
    c->close_after_write = 1;
    /* Done with requests: at the global cap it may go before one still waiting for a head. */
    http__server_evictable(c->srv, c, 1);
    if (c->writes_pending == 0)
        c->ops->end(c);
}

void http__conn_write_raw(http__conn *c, const char *s, size_t n)
{
    if (c->closing)
        return;
    char *b = malloc(n);
    if (!b) {
        http__conn_close(c);
        return;
    }
    memcpy(b, s, n);
    if (c->ops->write(c, b, n) < 0)
        http__conn_close(c);
}

#define HTTP_FRAME_HEADERS    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
#define HTTP_DEFAULT_CSP      "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
#define HTTP_REFERRER         "Referrer-Policy: no-referrer\r\n"
#define HTTP_DEFAULT_CACHE    "Cache-Control: no-store\r\n"
#define HTTP_SECURITY_HEADERS HTTP_FRAME_HEADERS HTTP_DEFAULT_CSP HTTP_REFERRER HTTP_DEFAULT_CACHE
#define HTTP_HSTS_HEADER      "Strict-Transport-Security: max-age=31536000\r\n"

/* Answers with {"error": msg} and closes: for a request that could not be parsed, or an
 * answer that could not be built. Without memory even for that, it only closes. */
static void conn_fail(http__conn *c, int status, const char *msg)
{
    log_debug("http: %s: %d %s", c->peer, status, msg);
    http__req_free(c->req);
    c->req = NULL;
    sbuf body, out;
    sbuf_init(&body, 2048);
    sbuf_init(&out, 4096);
    sbuf_puts(&body, "{\"error\":");
    sbuf_json_str(&body, msg);
    sbuf_puts(&body, "}");
    sbuf_printf(&out,
                "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                "%s%sConnection: close\r\n\r\n",
                status, reason_phrase(status), body.len, HTTP_SECURITY_HEADERS,
                c->srv->tls ? HTTP_HSTS_HEADER : "");
    sbuf_add(&out, body.p, body.len);
    int failed = body.failed || out.failed;
    sbuf_free(&body);
    if (failed) {
        sbuf_free(&out);
        http__conn_close(c);
        return;
    }
    /* The transport takes ownership of the buffer. */
    if (c->ops->write(c, out.p, out.len) < 0) {
        http__conn_close(c);
        return;
    }
    conn_finish(c);
}

/* Closes a connection that missed a deadline: with 408 when a request had begun and nothing
 * is waiting to be written before it, without a word otherwise. */
static void conn_timeout(http__conn *c, const char *msg)
{
    int begun = c->phase == HTTP__PH_HEAD || c->phase == HTTP__PH_BODY;
    if (begun && !c->close_after_write && c->writes_pending == 0 && c->ops->queued(c) == 0) {
        c->pending_off = 0;
        sbuf_reset(&c->pending);
        conn_fail(c, 408, msg);
    } else {
        http__conn_close(c);
    }
}

static const char on_head_broken[] = "{\"error\":\"internal error\"}";

/* Hands the parsed request to on_head (when it did not see it yet) and the handler. The
 * request is the conn's inflight one during both, so that http_respond works from either. */
static void conn_dispatch(http__conn *c)
{
    http_server *s = c->srv;
    http_req *r = c->req;
    c->req = NULL;
    r->conn = c;
    memcpy(r->peer, c->peer, sizeof r->peer);
    c->inflight = r;
    c->phase = HTTP__PH_HANDLER;
    c->head_clock = 0;
    r->dispatched_ns = uv_hrtime();
    c->nreqs++;
    http__server_evictable(s, c, 0);
    http__conn_arm(c);
    c->in_dispatch = 1;
    if (s->on_head && !r->head_checked) {
        r->head_checked = 1;
        int rc = s->on_head(r, s->ud);
        if (c->inflight != r) {
            c->in_dispatch = 0; /* answered */
            return;
        }
        if (rc != 0) {
            log_error("http: %s: on_head returned %d without answering; answering 500", c->peer,
                      rc);
            http_respond(r, 500, NULL, on_head_broken, sizeof on_head_broken - 1);
            c->in_dispatch = 0;
            return;
        }
    }
    s->handler(r, s->ud);
    c->in_dispatch = 0;
}

/* The head of a request with a body is complete and the parser paused: lets on_head refuse
 * it before a byte of the body is read, else starts reading the body. Returns 0 to go on
 * parsing, -1 when on_head answered (the connection then closes after the answer: the body
 * that follows is never read). */
static int conn_head(http__conn *c)
{
    http_server *s = c->srv;
    http_req *r = c->req;
    r->head_checked = 1;
    if (s->on_head) {
        c->req = NULL;
        r->conn = c;
        memcpy(r->peer, c->peer, sizeof r->peer);
        c->inflight = r;
        c->in_dispatch = 1;
        r->dispatched_ns = uv_hrtime(); /* an answer from on_head is timed from here */
        int rc = s->on_head(r, s->ud);
        c->in_dispatch = 0;
        /* http_respond keeps no connection alive here: keep_alive is set only once the
         * request is complete, so an answer given now ends the connection. */
        if (c->inflight != r)
            return -1;
        if (rc != 0) {
            log_error("http: %s: on_head returned %d without answering; answering 500", c->peer,
                      rc);
            http_respond(r, 500, NULL, on_head_broken, sizeof on_head_broken - 1);
            return -1;
        }
        c->inflight = NULL;
        r->conn = NULL;
        c->req = r;
    }
    if ((c->parser.flags & F_CONTENT_LENGTH) && c->parser.content_length > r->max_body) {
        char msg[64];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", r->max_body);
        conn_fail(c, 413, msg);
        return -1;
    }
    c->phase = HTTP__PH_BODY;
    c->win_start = http__now(s);
    c->win_rx = c->rx_total;
    http__server_evictable(s, c, 0);
    http__conn_arm(c);
    const char *expect = http_req_header(r, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && c->parser.http_major == 1 &&
        c->parser.http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        http__conn_write_raw(c, cont, sizeof cont - 1);
    }
    return c->closing ? -1 : 0;
}

/* Parses buffered input until it runs out, a request is handed to the handler, or an error
 * ends the connection. Never re-entered: http_respond inside the handler only resumes. */
static void conn_process(http__conn *c)
{
    while (!c->closing && !c->inflight && !c->close_after_write &&
           c->pending_off < c->pending.len) {
        if (c->ops->queued(c) > HTTP__WRITE_BACKLOG) {
            c->backlogged = 1;
            c->ops->read_pause(c);
            http__conn_arm(c);
            return;
        }
        const char *p = c->pending.p + c->pending_off;
        size_t n = c->pending.len - c->pending_off;
        llhttp_errno_t e = llhttp_execute(&c->parser, p, n);
        if (c->closing)
            return;
        if (e == HPE_OK) {
            c->pending_off = c->pending.len;
        } else if (e == HPE_PAUSED && c->req && c->req->complete) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            size_t used = (pos && pos >= p && pos <= p + n) ? (size_t)(pos - p) : n;
            c->pending_off += used;
            conn_dispatch(c);
        } else if (e == HPE_PAUSED && c->head_pause && c->req) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            size_t used = (pos && pos >= p && pos <= p + n) ? (size_t)(pos - p) : n;
            c->pending_off += used;
            c->head_pause = 0;
            if (conn_head(c) < 0)
                return;
            llhttp_resume(&c->parser);
        } else if (c->nreqs == 0 && http__proxy_looks_like(c->first, c->nfirst)) {
            /* A PROXY header from an address that may not send one: no answer, as its
             * sender is no HTTP client. */
            c->srv->stats.proxy_refused++;
            http__server_note(c->srv);
            log_debug("http: %s: PROXY protocol header from an address not in proxy_from; "
                      "closing",
                      c->peer);
            http__conn_close(c);
            return;
        } else {
            int status = c->err_status ? c->err_status : 400;
            char msg[160];
            if (c->err_msg[0])
                snprintf(msg, sizeof msg, "%s", c->err_msg);
            else if (e == HPE_PAUSED_UPGRADE)
                snprintf(msg, sizeof msg, "malformed HTTP request: protocol upgrade not supported");
            else
                snprintf(msg, sizeof msg, "malformed HTTP request: %s",
                         llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser)
                                                             : llhttp_errno_name(e));
            c->pending_off = 0;
            sbuf_reset(&c->pending);
            conn_fail(c, status, msg);
            return;
        }
    }
    if (c->closing)
        return;
    if (c->pending_off == c->pending.len) {
        c->pending_off = 0;
        sbuf_reset(&c->pending);
    }
    if (c->eof) {
        if (!c->inflight && (c->pending.len == 0 || c->close_after_write))
            conn_finish(c);
        return;
    }
    if (c->pending.len - c->pending_off >= HTTP_PENDING_SOFT)
        c->ops->read_pause(c);
    else
        c->ops->read_resume(c);
}

/* Input from the transport; valid only during the call. */
void http__conn_on_data(http__conn *c, const char *data, size_t len)
{
    if (c->closing || c->lingering || c->close_after_write || len == 0)
        return;
    c->rx_total += len;
    if (c->nfirst < sizeof c->first) {
        size_t k = sizeof c->first - c->nfirst < len ? sizeof c->first - c->nfirst : len;
        memcpy(c->first + c->nfirst, data, k);
        c->nfirst += k;
    }
    /* The head deadline runs from the first byte; later bytes do not extend it (each byte
     * restarting a timer let one byte a minute hold a connection for ever). */
    if (!c->head_clock && c->phase == HTTP__PH_WAIT) {
        c->head_clock = 1;
        c->head_start = http__now(c->srv);
        http__conn_arm(c);
    }
    /* Parsed input is dropped before appending, so the bound counts only unparsed bytes. */
    if (c->pending_off > 0) {
        size_t left = c->pending.len - c->pending_off;
        memmove(c->pending.p, c->pending.p + c->pending_off, left);
        c->pending.len = left;
        c->pending.p[left] = '\0';
        c->pending_off = 0;
    }
    if (len > HTTP_PENDING_HARD - c->pending.len) {
        log_warn("http: %s: more than %d bytes of unprocessed input, closing", c->peer,
                 HTTP_PENDING_HARD);
        http__conn_close(c);
        return;
    }
    if (sbuf_add(&c->pending, data, len) < 0) {
        log_error("http: %s: out of memory buffering input, closing", c->peer);
        http__conn_close(c);
        return;
    }
    if (!c->inflight)
        conn_process(c);
    else if (c->pending.len - c->pending_off >= HTTP_PENDING_SOFT)
        c->ops->read_pause(c);
}

void http__conn_on_eof(http__conn *c)
{
    if (c->closing)
        return;
    c->eof = 1;
    if (c->lingering)
        http__conn_close(c);
    else if (!c->inflight)
        conn_finish(c);
    /* otherwise a half-closed client still gets its answer; conn_process closes after */
}

/* The write backlog went down: parse what waited for it. */
void http__conn_drained(http__conn *c)
{
    if (c->closing || !c->backlogged || c->ops->queued(c) > HTTP__WRITE_BACKLOG / 2)
        return;
    c->backlogged = 0;
    /* The wait was the client's reading of our answers, not its sending: the deadlines
     * start afresh. */
    uint64_t now = http__now(c->srv);
    if (c->head_clock)
        c->head_start = now;
    c->win_start = now;
    c->win_rx = c->rx_total;
    http__conn_arm(c);
    if (!c->inflight)
        conn_process(c);
}

static void timer_cb(uv_timer_t *t)
{
    http__conn *c = t->data;
    http_server *s = c->srv;
    if (c->closing)
        return;
    if (c->lingering || c->backlogged || c->inflight || c->proxy_wait) {
        if (c->proxy_wait && c->proxy_len + c->proxy_skip > 0) {
            s->stats.head_timeouts++;
            http__server_note(s);
        }
        http__conn_close(c);
        return;
    }
    char msg[160];
    if (c->phase == HTTP__PH_BODY) {
        uint64_t now = http__now(s), got = c->rx_total - c->win_rx;
        uint64_t need = (uint64_t)s->min_body_rate * (now - c->win_start) / 1000;
        if (got >= need) {
            c->win_start = now;
            c->win_rx = c->rx_total;
            http__conn_arm(c);
            return;
        }
        s->stats.body_too_slow++;
        snprintf(msg, sizeof msg,
                 "request body arrived at %llu bytes in %llu ms, below %zu bytes per second",
                 (unsigned long long)got, (unsigned long long)(now - c->win_start),
                 s->min_body_rate);
        http__server_note(s);
        log_debug("http: %s: %s; closing", c->peer, msg);
        conn_timeout(c, msg);
        return;
    }
    if (c->phase == HTTP__PH_HEAD) {
        s->stats.head_timeouts++;
        snprintf(msg, sizeof msg, "request head not complete within %llu ms",
                 (unsigned long long)s->head_ms);
        http__server_note(s);
        log_debug("http: %s: %s; closing", c->peer, msg);
        conn_timeout(c, msg);
        return;
    }
    http__conn_close(c); /* idle: no byte of a request */
}

void http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len)
{
    http__conn *c = r->conn;
    if (!c) {
        http__req_free(r);
        return;
    }
    c->inflight = NULL;
    r->conn = NULL;
    if (c->closing) {
        http__req_free(r);
        return;
    }
    if (r->resp_hdrs.failed) {
        http__req_free(r);
        log_error("http: %s: a response header was lost for want of memory; answering 500",
                  c->peer);
        conn_fail(c, 500, "out of memory building the response");
        return;
    }
    if (r->dispatched_ns != 0)
        metrics_hist_observe(&c->srv->stats.answer, (uv_hrtime() - r->dispatched_ns) / 1000);
    if (status < 100 || status > 999)
        status = 500;
    if (!content_type || has_ctl(content_type))
        content_type = "application/json";
    if (!body)
        len = 0;
    int keep = r->keep_alive && !c->srv->stopping && !(c->eof && c->pending_off == c->pending.len);
    int no_body = status == 204 || status == 304 || status < 200;
    size_t send_len = (no_body || r->head) ? 0 : len;
    char clen[48] = "";
    if (!no_body)
        snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len);
    /* Nothing may be framed, sniffed or given a referrer; over HTTPS browsers must keep
     * using HTTPS. An answer is neither cached nor allowed any content unless its handler set
     * its own Content-Security-Policy or Cache-Control (a page and its assets). */
    const char *csp = resp_has_header(r, "Content-Security-Policy") ? "" : HTTP_DEFAULT_CSP;
    const char *cache = resp_has_header(r, "Cache-Control") ? "" : HTTP_DEFAULT_CACHE;
    const char *hsts = c->srv->tls ? HTTP_HSTS_HEADER : "";
    char sec[sizeof(HTTP_SECURITY_HEADERS HTTP_HSTS_HEADER)];
    snprintf(sec, sizeof sec, "%s%s%s%s%s", HTTP_FRAME_HEADERS, csp, HTTP_REFERRER, cache, hsts);
    /* 128 bytes cover the status line, the Content-Type and Connection lines and the NUL. */
    size_t head_cap = 128 + strlen(sec) + strlen(content_type) + strlen(clen) + r->resp_hdrs.len;
    char *b = NULL;
    if (send_len <= SIZE_MAX - head_cap && !testhook_fire("http_respond_nomem"))
        b = malloc(head_cap + send_len);
    int hl = -1;
    if (b)
        hl = snprintf(b, head_cap,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%.*sConnection: %s\r\n\r\n",
                      status, reason_phrase(status), content_type, clen, sec, (int)r->resp_hdrs.len,
                      r->resp_hdrs.p ? r->resp_hdrs.p : "", keep ? "keep-alive" : "close");
    if (hl < 0 || (size_t)hl >= head_cap) {
        /* Never a truncated answer: the client gets a 500 or, without even that much
         * memory, a closed connection. */
        log_error("http: %s: out of memory building a %d answer of %zu bytes; answering 500",
                  c->peer, status, send_len);
        free(b);
        http__req_free(r);
        conn_fail(c, 500, "out of memory building the response");
        return;
    }
    /* body may point into the request (an echo), so copy it before freeing the request */
    if (send_len)
        memcpy(b + hl, body, send_len);
    http__req_free(r);
    if (c->ops->write(c, b, (size_t)hl + send_len) < 0) {
        http__conn_close(c);
        return;
    }
    if (!keep) {
        conn_finish(c);
        return;
    }
    llhttp_resume(&c->parser);
    /* The next head is due within the head deadline from now (the end of this request). */
    c->phase = HTTP__PH_WAIT;
    c->head_clock = 1;
    c->head_start = http__now(c->srv);
    http__server_evictable(c->srv, c, 1);
    http__conn_arm(c);
    if (!c->in_dispatch)
        conn_process(c);
}

void http__conn_init(http__conn *c, http_server *s)
{
    c->srv = s;
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    sbuf_init(&c->pending, HTTP_PENDING_HARD + 1);
    c->parser.data = c;
    http__server_link(s, c);
}
