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
 *   http_proxy.c      the PROXY protocol v2 header a load balancer sends first: its parser,
 *                     and reading it off the socket before the HTTP or TLS transport starts.
 *   http_server.c     the listener: accepting, the caps on connections (per address and in
 *                     all, with eviction at the global cap), the counters, start and stop.
 *
 * Each connection is in one phase (enum http__phase) that decides its single timer: the
 * idle timeout before its first byte, the head deadline while a request head is awaited
 * or arriving, the body-rate window while a body arrives, none while the handler has the
 * request. Connections awaiting a request head are also on the server's eviction list, in
 * the order they began to wait, so that at the global cap the oldest is found at once.
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
#include <netinet/in.h>
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

enum http__phase {
    HTTP__PH_WAIT,    /* no byte of the next request yet (a fresh or a keep-alive connection) */
    HTTP__PH_HEAD,    /* a request head is arriving */
    HTTP__PH_BODY,    /* the head was accepted; its body is arriving */
    HTTP__PH_HANDLER, /* the request is complete and with on_head or the handler */
};

/* An IP address as the caps count it: IPv4 as IPv4-mapped IPv6. */
typedef struct http__addr {
    uint8_t b[16];
} http__addr;

/* Longest PROXY v2 prefix the server keeps: the fixed part and the largest address block
 * (AF_UNIX); TLVs after it are read and dropped. */
#define HTTP__PROXY_KEEP (16 + 216)

/* What a PROXY v2 header said. */
struct http__proxy {
    int local; /* keep the socket's address: a LOCAL command, or no IP address in it */
    struct sockaddr_storage src; /* the client's address and port, unless local */
    size_t need;                 /* when http__proxy_parse returns 0: bytes it needs to decide */
};

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
    int keep_alive; /* set when the request is complete: 0 while on_head runs */
    int head;
    int complete;
    int head_checked; /* on_head ran for it */
    size_t max_body;  /* the server's max_body, or less (http_req_limit_body) */
    /* uv_hrtime() when handed to on_head or the handler (the answer histogram); 0 before */
    uint64_t dispatched_ns;
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

    /* Deadlines (see enum http__phase). Times are uv_now() milliseconds. */
    enum http__phase phase;
    int head_pause;       /* the parser paused after the head of a request with a body */
    int head_clock;       /* head_start is set: the head deadline runs */
    uint64_t accepted_at; /* the idle timeout runs from here until the first byte */
    uint64_t head_start;
    uint64_t rx_total;          /* bytes received from the transport (decrypted under TLS) */
    uint64_t win_start, win_rx; /* the current body-rate window: start, rx_total then */
    uint64_t nreqs;             /* requests handed to on_head or the handler */
    uint8_t first[12];          /* the connection's first bytes, to recognise a PROXY header */
    size_t nfirst;

    /* The caps (http_server.c). */
    http__conn *evict_prev, *evict_next; /* on the server's eviction list when on_evict */
    int on_evict;
    http__addr addr;  /* the client's address (from the PROXY header when there is one) */
    int addr_known;   /* addr is set */
    int addr_counted; /* counted under the per-address cap */

    /* The PROXY header (http_proxy.c). */
    int proxy_wait;    /* reading it: the transport has not started */
    int proxied;       /* peer and addr came from it */
    int raw_tls;       /* accepted as plain TCP to be handed to TLS (http__tls_adopt) */
    size_t proxy_len;  /* bytes of it in proxy_buf */
    size_t proxy_need; /* bytes to have in proxy_buf before parsing again */
    size_t proxy_skip; /* bytes of it (TLVs) still to read and drop */
    uint8_t proxy_buf[HTTP__PROXY_KEEP];
};

struct http__addr_count {
    struct http__addr_count *next;
    http__addr addr;
    size_t n;
};

#define HTTP__ADDR_BUCKETS 1024

struct http_server {
    uv_loop_t *loop; /* NULL under the fuzz target (no sockets, no timers) */
    uv_tcp_t listener;
    http_handler handler;
    void *ud;
    tls_ctx *tls;
    size_t max_body; /* 0: no body at all */
    http_head_cb on_head;
    uint64_t idle_ms;
    uint64_t head_ms;
    size_t min_body_rate;
    uint64_t rate_window_ms;
    size_t max_conns, nconns;
    size_t nclosing; /* of nconns, those closing (their handles not closed yet) */
    size_t max_per_addr;
    http__addr *trusted, *proxy_from;
    size_t ntrusted, nproxy_from;
    http__conn *conns;
    /* Connections waiting for a request head, oldest first. */
    http__conn *evict_head, *evict_tail;
    struct http__addr_count *addr_tab[HTTP__ADDR_BUCKETS];
    uint32_t addr_seed;
    http_server_stats stats;
    int noted; /* noted_at is set */
    uint64_t noted_at;
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

/* Fills the llhttp callbacks that build requests on the http__conn in parser->data. The
 * head of a request with a body pauses the parser (c->head_pause) so that on_head runs
 * before the body is read. */
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
/* Starts the connection's timer for ms (the linger wait); see http__conn_arm. */
void http__conn_timer_start(http__conn *c, uint64_t ms);
/* (Re)starts the connection's timer for what its phase waits for. */
void http__conn_arm(http__conn *c);
/* The loop's time in ms (0 without a loop, under the fuzz target). */
uint64_t http__now(const http_server *s);
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
/* An event was counted in the stats: logs a summary of them at most once a minute. */
void http__server_note(http_server *s);
/* Puts the conn on the eviction list (at its end: it starts waiting now) or takes it off. */
void http__server_evictable(http_server *s, http__conn *c, int on);
/* The conn started closing: it no longer counts against the caps. */
void http__server_conn_closing(http_server *s, http__conn *c);
/* Counts the conn (whose addr is known) under the per-address cap unless its address is
 * trusted. Returns 0, or -1 when the address is at its cap (counted in the stats; the
 * caller closes the conn). */
int http__server_count_addr(http_server *s, http__conn *c);
/* Sets *out from a socket address; returns 0 or -1 for another family. */
int http__addr_from_sockaddr(const struct sockaddr *sa, http__addr *out);
/* Sets *out from an IPv4 or IPv6 address in text; returns 0 or -1. */
int http__addr_from_text(const char *ip, http__addr *out);

/* In http_transport.c. */

/* Accepts the pending connection on server as plain TCP (reading nothing yet) or TLS
 * (starting the handshake), counting the transport's handle in c->handles and setting
 * c->peer and c->addr. Returns 0 or a negative UV_E* code; on failure the caller closes
 * the conn with http__conn_close. */
int http__tcp_accept(http__conn *c, uv_stream_t *server);
int http__tls_accept(http__conn *c, uv_stream_t *server);
/* Starts the transport of a conn accepted by http__tcp_accept: reads HTTP from it, or
 * (c->raw_tls) hands its socket to TLS. Returns 0 or a negative UV_E* code; on failure the
 * caller closes the conn. */
int http__transport_start(http__conn *c);
/* Formats "ip:port" or "[ip]:port". */
void http__format_peer(char *out, size_t cap, const struct sockaddr *sa);

/* In http_proxy.c. */

/* Parses a PROXY protocol v2 header at the start of buf[0..n). Returns its total length
 * (fixed part, address block and TLVs; the caller consumes that many bytes, which may be
 * more than n) with *out filled; 0 when the first n bytes are a valid beginning but more
 * are needed to decide (out->need says how many in all); REINT_EMALFORMED when they are not
 * the beginning of a valid v2 header for a stream connection. */
long http__proxy_parse(const uint8_t *buf, size_t n, struct http__proxy *out);
/* Reads the PROXY header off the conn's socket (accepted by http__tcp_accept), then starts
 * its transport; closes the conn when the header is malformed. Returns 0 or a negative
 * UV_E* code; on failure the caller closes the conn. */
int http__proxy_start(http__conn *c);
/* 1 when the first n bytes of a connection look like a PROXY header (v1 or v2). */
int http__proxy_looks_like(const uint8_t *buf, size_t n);

#endif
