/* Internal to the HTTP server (common/http_*.c): the structures that its files share and the
 * http__ functions through which they call one another. Users include http.h only; the fuzz
 * target includes this header to drive a connection without sockets.
 *
 * The files and their one job each:
 *   http_request.c    turns bytes into requests: llhttp callbacks, header accumulation and its
 *                     bounds, request-target and query parsing, percent-decoding; the
 *                     http_req_* accessors.
 *   http_conn.c       the connection state machine: one request at a time, keep-alive,
 *                     pipelined input waiting its turn, responses, idle and linger timers.
 *   http_transport.c  how bytes move: plain TCP on libuv, or TLS through tls.h.
 *   http_server.c     the listener: accepting, the cap on connections, start and stop.
 *
 * One http__conn per accepted connection. Bytes from the transport are appended to
 * conn->pending and fed to llhttp; on_message_complete returns HPE_PAUSED, so llhttp_execute
 * stops right after each request and the rest of the input stays in pending until
 * http_respond resumes the parser. That keeps pipelined requests in order and one at a time.
 * A request handed to the handler is detached from its conn when the conn starts closing
 * (req->conn = NULL); http_respond on such a request only frees it. A conn is freed only
 * when all its handles (transport and idle timer) have closed. */
#ifndef COMMON_HTTP_INTERNAL_H
#define COMMON_HTTP_INTERNAL_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "sbuf.h"
#include "tls.h"

#define HTTP__MAX_HEADER_COUNT       100
#define HTTP__READ_BUF               (64 * 1024)
#define HTTP__MAX_RESP_HEADERS_BYTES (8 * 1024)
/* Responses queued but not yet taken by the kernel above which parsing stops (a client that
 * pipelines requests without reading the answers). */
#define HTTP__WRITE_BACKLOG (1024 * 1024)

typedef struct http__conn http__conn;

/* What differs between plain TCP and TLS; everything else is shared. */
struct http__transport {
    /* Queues len bytes of buf for sending; takes ownership of buf (malloc'd) in every
     * case. Returns 0 or a negative UV_E* code. */
    int (*write)(http__conn *c, char *buf, size_t len);
    /* Sends what is queued, then closes; http__conn_handle_closed follows asynchronously. */
    void (*end)(http__conn *c);
    /* Closes now; http__conn_handle_closed follows asynchronously. */
    void (*close)(http__conn *c);
    void (*read_pause)(http__conn *c);
    void (*read_resume)(http__conn *c);
    /* Bytes queued for sending and not yet written to the socket. */
    size_t (*queued)(const http__conn *c);
};

struct http__hdr {
    size_t name;  /* offset of the NUL-terminated name in hbuf */
    size_t value; /* offset of the NUL-terminated value in hbuf */
};

enum http__hstate { HTTP__HS_NONE, HTTP__HS_FIELD, HTTP__HS_VALUE };

struct http_req {
    http__conn *conn; /* NULL once handed over and the connection went away */
    char method[24];
    sbuf url;          /* the request target as received */
    char *path;        /* decoded path, then NUL, then the raw query, then NUL */
    const char *query; /* points into path */
    char *params;      /* key NUL value NUL ..., decoded */
    size_t params_len;
    sbuf hbuf; /* header names and values, each NUL-terminated */
    struct http__hdr hdrs[HTTP__MAX_HEADER_COUNT];
    size_t nhdrs;
    enum http__hstate hstate;
    size_t cur_name; /* offset of the header name being parsed */
    sbuf body;
    sbuf resp_hdrs; /* "Name: value\r\n"...; failed means a header was lost */
    char peer[64];
    int keep_alive;
    int head;
    int complete;
};

struct http__conn {
    http_server *srv;
    http__conn *prev, *next;
    const struct http__transport *ops;
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
    char err_msg[160];
    sbuf pending; /* input not yet parsed starts at pending_off */
    size_t pending_off;
    char peer[64];
};

struct http_server {
    uv_loop_t *loop; /* NULL under the fuzz target (no sockets, no timers) */
    uv_tcp_t listener;
    http_handler handler;
    void *ud;
    tls_ctx *tls;
    size_t max_body;
    uint64_t idle_ms;
    size_t max_conns, nconns;
    http__conn *conns;
    int port;
    int stopping;
    int listener_closed;
    /* Refusing a connection still has to accept it (libuv stops watching a listener whose
     * callback left a connection pending); this handle does that when malloc cannot. */
    uv_tcp_t spare;
    int spare_busy;
    llhttp_settings_t settings;
    int rbuf_busy;
    char rbuf[HTTP__READ_BUF];
};

/* In http_request.c. */

/* Fills the llhttp callbacks that build requests on the http__conn in parser->data. */
void http__request_settings(llhttp_settings_t *settings);
void http__req_free(http_req *r);

/* In http_conn.c. */

/* Links a zeroed conn into the server and readies its parser; the caller sets ops, peer,
 * handles and the timer. */
void http__conn_init(http__conn *c, http_server *s);
/* Unlinks and frees the conn (and the server, once stopped and empty). */
void http__conn_free(http__conn *c);
/* One of the conn's handles closed; the conn is freed with the last. */
void http__conn_handle_closed(http__conn *c);
/* Starts closing the connection now; a request being handled is detached. */
void http__conn_close(http__conn *c);
void http__conn_timer_start(http__conn *c, uint64_t ms);
/* Queues a copy of s[0..n); closes the conn when that fails. */
void http__conn_write_raw(http__conn *c, const char *s, size_t n);
/* Input from the transport; valid only during the call. */
void http__conn_on_data(http__conn *c, const char *data, size_t len);
void http__conn_on_eof(http__conn *c);
/* The transport's write backlog went down: parse what waited for it. */
void http__conn_drained(http__conn *c);

/* In http_server.c. */

/* Adds a conn to the server's list; unlinking the last conn of a stopped server frees the
 * server once its listener has closed. */
void http__server_link(http_server *s, http__conn *c);
void http__server_unlink(http_server *s, http__conn *c);

/* In http_transport.c. */

/* Accepts the pending connection on server as plain TCP or TLS, counting the transport's
 * handle in c->handles, and starts reading. Returns 0 or a negative UV_E* code; on failure
 * the caller closes the conn with http__conn_close. */
int http__tcp_accept(http__conn *c, uv_stream_t *server);
int http__tls_accept(http__conn *c, uv_stream_t *server);

#endif
