/* The listener: binding, accepting connections under the cap, and stopping. A stopped
 * server frees itself once its listener and every connection have closed. See
 * http_internal.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"

#define HTTP_DEFAULT_MAX_CONNS 1024
#define HTTP_IDLE_TIMEOUT_MS   60000

/* Frees a stopped server once nothing of it is open any more. */
static void server_maybe_free(http_server *s)
{
    if (s->stopping && s->listener_closed && s->nconns == 0 && !s->spare_busy)
        free(s);
}

void http__server_link(http_server *s, http__conn *c)
{
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
}

void http__server_unlink(http_server *s, http__conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    server_maybe_free(s);
}

static void reject_close_cb(uv_handle_t *h)
{
    free(h);
}

static void spare_close_cb(uv_handle_t *h)
{
    http_server *s = h->data;
    s->spare_busy = 0;
    server_maybe_free(s);
}

/* Accepts the pending connection, if it is still pending, only to close it. libuv stops
 * watching a listener whose connection callback left a connection pending, so a refusal
 * that skipped this would stop the server from accepting anything again. */
static void reject_pending(http_server *s, uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof *t);
    uv_close_cb done = reject_close_cb;
    if (!t && !s->spare_busy) {
        t = &s->spare;
        done = spare_close_cb;
    }
    if (!t) {
        log_error("http: out of memory refusing a connection; the listener on port %d stops "
                  "accepting until a connection is accepted again",
                  s->port);
        return;
    }
    if (uv_tcp_init(s->loop, t) < 0) {
        if (t != &s->spare)
            free(t);
        log_error("http: cannot refuse a connection; the listener on port %d stops accepting",
                  s->port);
        return;
    }
    t->data = s;
    if (t == &s->spare)
        s->spare_busy = 1;
    /* UV_EAGAIN when the transport had already taken the connection: nothing to refuse. */
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, done);
}

static void on_connection(uv_stream_t *server, int status)
{
    http_server *s = server->data;
    if (status < 0) {
        log_warn("http: accepting on port %d: %s", s->port, uv_strerror(status));
        return;
    }
    if (s->stopping) {
        reject_pending(s, server);
        return;
    }
    if (s->nconns >= s->max_conns) {
        log_warn("http: %zu connections open, refusing a new one", s->nconns);
        reject_pending(s, server);
        return;
    }
    http__conn *c = calloc(1, sizeof *c);
    if (!c || uv_timer_init(s->loop, &c->timer) < 0) {
        log_error("http: out of memory accepting a connection on port %d", s->port);
        free(c);
        reject_pending(s, server);
        return;
    }
    c->timer.data = c;
    c->has_timer = 1;
    c->handles = 1;
    http__conn_init(c, s);
    int rc = s->tls ? http__tls_accept(c, server) : http__tcp_accept(c, server);
    if (rc < 0) {
        log_warn("http: accepting a connection on port %d: %s", s->port, uv_strerror(rc));
        http__conn_close(c);
        reject_pending(s, server);
        return;
    }
    http__conn_timer_start(c, s->idle_ms);
}

static void listener_close_cb(uv_handle_t *h)
{
    http_server *s = h->data;
    s->listener_closed = 1;
    server_maybe_free(s);
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
    http__request_settings(&s->settings);
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
    for (http__conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        http__conn_close(c);
    }
}
