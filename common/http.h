/* A small HTTP/1.1 server on libuv and llhttp (compiled from Debian's node-llhttp sources):
 * keep-alive, bounded request line, headers and body, one request at a time per connection
 * (pipelined requests wait their turn). Plain TCP, or HTTPS through tls.h when a tls_ctx in
 * TLS_MODE_HTTPS_SERVER is given. */
#ifndef COMMON_HTTP_H
#define COMMON_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tls.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

#define HTTP_MAX_URL           4096
#define HTTP_MAX_HEADERS_BYTES (16 * 1024)
#define HTTP_DEFAULT_MAX_BODY  (1024 * 1024)

/* Called once per complete request. The handler must eventually call http_respond exactly
 * once (now or later, e.g. after a database answer); the request stays valid until then. */
typedef void (*http_handler)(http_req *req, void *ud);

typedef struct http_server_opts {
    const char *host; /* "127.0.0.1" */
    int port;         /* 0 picks a free port; see http_server_port */
    size_t max_body;  /* 0 means HTTP_DEFAULT_MAX_BODY; larger bodies get 413 */
    tls_ctx *tls;     /* NULL for plain HTTP */
    http_handler handler;
    void *ud;
} http_server_opts;

/* Binds and listens. Returns 0 or a negative UV_E* code. */
int http_server_start(http_server **out, uv_loop_t *loop, const http_server_opts *opts);
int http_server_port(const http_server *s);
/* Stops listening and closes every connection; the server is freed once all handles have
 * closed (the loop must keep running until then). */
void http_server_stop(http_server *s);
/* Overrides the idle timeout (default 60 000 ms) after which a connection with no request
 * being handled is closed; 0 restores the default. Applies to timers armed afterwards. */
void http_server_set_idle_timeout(http_server *s, uint64_t ms);
/* Overrides the cap on open connections (default 1024; 0 restores it); connections past
 * the cap are accepted and closed at once. */
void http_server_set_max_conns(http_server *s, size_t n);

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
const char *http_req_peer(const http_req *r);              /* "127.0.0.1:port" */

/* Sends the response (body copied) and releases the request. content_type may be NULL for
 * "application/json". Safe when the connection already went away (the response is
 * dropped). When memory runs out building it, or a header added by http_add_header was
 * lost for want of memory, the client gets 500 (or a closed connection), never a partial
 * answer. */
void http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len);
/* Adds a response header before http_respond (name and value copied). */
void http_add_header(http_req *r, const char *name, const char *value);

#endif
