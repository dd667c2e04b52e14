/* A small HTTP/1.1 server on libuv and llhttp (compiled from Debian's node-llhttp sources):
 * keep-alive, bounded request line, headers and body, one request at a time per connection
 * (pipelined requests wait their turn). Plain TCP, or HTTPS through tls.h when a tls_ctx in
 * TLS_MODE_HTTPS_SERVER is given.
 *
 * It holds against a hostile network: a request head must be complete within a deadline and
 * a body must keep up a minimum rate; connections are capped per address and in all, and at
 * the global cap the oldest connection still waiting for a request head is closed to admit
 * a new one, so idle or slow connections cannot lock legitimate clients out; a callback sees
 * each request head before its body is read; a load balancer may pass the client's address
 * in a PROXY protocol v2 header. */
#ifndef COMMON_HTTP_H
#define COMMON_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "metrics.h"
#include "tls.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

#define HTTP_MAX_URL           4096
#define HTTP_MAX_HEADERS_BYTES (16 * 1024)
#define HTTP_DEFAULT_MAX_BODY  (1024 * 1024)
/* http_server_opts.max_body for a server that takes no request body at all. */
#define HTTP_MAX_BODY_NONE SIZE_MAX

/* Defaults of the http_server_opts fields left 0 or NULL. */
#define HTTP_DEFAULT_HEAD_TIMEOUT_MS     10000
#define HTTP_DEFAULT_MIN_BODY_RATE       1024 /* bytes per second */
#define HTTP_DEFAULT_BODY_RATE_WINDOW_MS 10000
#define HTTP_DEFAULT_MAX_CONNS           1024
#define HTTP_DEFAULT_MAX_CONNS_PER_ADDR  32

/* Called once per complete request. The handler must eventually call http_respond exactly
 * once (now or later, e.g. after a database answer); the request stays valid until then. */
typedef void (*http_handler)(http_req *req, void *ud);

/* Called when a request's head (request line and headers) is complete, before any of its
 * body is read. The method, path, query, parameters, headers and peer can be read; the body
 * is still empty. Returns 0 to have the body read and the handler run; or answers with
 * http_respond before returning 1, and then the handler does not run and the body is never
 * read: when the request announced one, the connection closes after the answer (a
 * bodyless request keeps its connection alive as usual). Answering later is not supported:
 * a callback that returns 1 without having answered gets the client a 500. */
typedef int (*http_head_cb)(http_req *req, void *ud);

typedef struct http_server_opts {
    const char *host; /* "127.0.0.1" */
    int port;         /* 0 picks a free port; see http_server_port */
    /* 0 means HTTP_DEFAULT_MAX_BODY; larger bodies get 413 (at once when Content-Length
     * announces one, else when the limit is crossed). HTTP_MAX_BODY_NONE takes no body at
     * all: a request announcing a non-empty body (or a chunked one) gets 413 at once. */
    size_t max_body;
    tls_ctx *tls; /* NULL for plain HTTP */
    http_handler handler;
    void *ud;             /* passed to handler and on_head */
    http_head_cb on_head; /* NULL: every body within max_body is read */
    /* A request head (and a PROXY header before it) must be complete within this many ms
     * of the connection's first byte (the first decrypted byte under TLS), or of the end of
     * the previous request on a keep-alive connection; 0 means
     * HTTP_DEFAULT_HEAD_TIMEOUT_MS. A client that sent part of a head gets 408 and the
     * connection closes; an idle keep-alive connection is closed without a word. A
     * connection that has not sent a byte yet (nor finished a TLS handshake) is closed after
     * the idle timeout (http_server_set_idle_timeout) instead. */
    uint64_t head_timeout_ms;
    /* A request body must arrive at min_body_rate bytes per second or more, averaged over
     * each body_rate_window_ms (0 means HTTP_DEFAULT_MIN_BODY_RATE and
     * HTTP_DEFAULT_BODY_RATE_WINDOW_MS: 1 KiB/s over 10 s, which a slow VSAT link keeps
     * up); a slower client gets 408 and the connection closes. */
    size_t min_body_rate;
    uint64_t body_rate_window_ms;
    /* Open connections in all (0 means HTTP_DEFAULT_MAX_CONNS). At the cap a new
     * connection is admitted by closing the connection that has waited longest for a
     * request head (idle, slow, or done and lingering); only when every connection is
     * mid-request (reading a body, being handled, or writing an answer) is the new one
     * refused: accepted and closed at once. */
    size_t max_conns;
    /* Open connections from one IP address (0 means HTTP_DEFAULT_MAX_CONNS_PER_ADDR); one
     * more is accepted and closed at once, never queued. IPv4 and IPv4-mapped IPv6 are one
     * address. */
    size_t max_conns_per_addr;
    /* Comma- or space-separated IPv4/IPv6 addresses exempt from max_conns_per_addr (a load
     * balancer); NULL or "" for none. Copied by http_server_start. */
    const char *trusted;
    /* Comma- or space-separated IPv4/IPv6 addresses (load balancers) whose connections
     * must begin with a PROXY protocol v2 header (before TLS on an HTTPS server); NULL or
     * "" for none. Copied by http_server_start. The source address in the header becomes
     * the request's peer (http_req_peer) and max_conns_per_addr applies to it (unless it is
     * trusted); the balancer's own address is exempt. A malformed header, or none, closes
     * the connection; a LOCAL header (the balancer's health check) or one without an IP
     * address keeps the balancer's address. A plain-HTTP connection from any other address
     * that begins with a PROXY header (v1 or v2) is closed without an answer; under TLS it
     * fails the handshake. */
    const char *proxy_from;
} http_server_opts;

/* What the server refused or closed to stay available, since it started. */
typedef struct http_server_stats {
    uint64_t head_timeouts;    /* request head (or PROXY header) not complete in time */
    uint64_t body_too_slow;    /* request body below the minimum rate */
    uint64_t refused_per_addr; /* connections refused at the per-address cap */
    uint64_t evicted_at_cap;   /* waiting connections closed to admit one at the global cap */
    uint64_t refused_at_cap;   /* connections refused at the global cap (all mid-request) */
    uint64_t proxy_refused;    /* PROXY headers malformed, missing, or from another address */
    uint64_t conns_open;       /* connections open now (a gauge) */
    metrics_hist answer;       /* from a request handed to its handler to http_respond */
} http_server_stats;

/* Binds and listens. Returns 0 or a negative UV_E* code (UV_EINVAL for an address in
 * trusted or proxy_from that is not an IPv4 or IPv6 address; the entry is logged). */
int http_server_start(http_server **out, uv_loop_t *loop, const http_server_opts *opts);
int http_server_port(const http_server *s);
/* Stops listening and closes every connection; the server is freed once all handles have
 * closed (the loop must keep running until then). */
void http_server_stop(http_server *s);
/* Overrides the idle timeout (default 60 000 ms): how long a connection may stay open
 * before its first byte (under TLS its first decrypted byte, so the handshake counts), and
 * while its client does not read the answers it asked for; the head deadline and the body
 * rate govern the rest. 0 restores the default. Applies to timers armed afterwards. */
void http_server_set_idle_timeout(http_server *s, uint64_t ms);
/* Overrides the cap on open connections (opts.max_conns, whose rules apply; 0 restores the
 * default). */
void http_server_set_max_conns(http_server *s, size_t n);
/* Copies the server's counters into *out. */
void http_server_get_stats(const http_server *s, http_server_stats *out);

/* Request accessors; strings are NUL-terminated and owned by the request. The path, the
 * query and every parameter name and value are valid UTF-8: a request where they are not
 * gets 400 before any handler runs. */
const char *http_req_method(const http_req *r); /* "GET", "POST", ... */
const char *http_req_path(const http_req *r);   /* path without the query, percent-decoded */
const char *http_req_query(const http_req *r);  /* raw query after '?', "" if none */
/* Value of a query parameter (percent-decoded), or NULL. */
const char *http_req_param(const http_req *r, const char *name);
/* Value of a header (case-insensitive name), or NULL. */
const char *http_req_header(const http_req *r, const char *name);
const char *http_req_body(const http_req *r, size_t *len); /* NUL-terminated too */
/* "127.0.0.1:port" or "[::1]:port": the client's address, from the PROXY header when a
 * load balancer sent one. */
const char *http_req_peer(const http_req *r);

/* From an on_head callback: lowers the largest body this request may have to max (it never
 * rises above the server's max_body). A request whose Content-Length announces more gets 413
 * once on_head returns, and one that sends more (chunked) gets 413 when it crosses max; the
 * connection closes either way. */
void http_req_limit_body(http_req *r, size_t max);

/* Sends the response (body copied) and releases the request. content_type may be NULL for
 * "application/json". Safe when the connection already went away (the response is
 * dropped). When memory runs out building it, or a header added by http_add_header was
 * lost for want of memory, the client gets 500 (or a closed connection), never a partial
 * answer. */
void http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len);
/* Adds a response header before http_respond (name and value copied). */
void http_add_header(http_req *r, const char *name, const char *value);

#endif
