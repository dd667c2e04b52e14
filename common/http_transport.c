/* The two transports under a connection: plain TCP on libuv, and TLS through tls.h. Each
 * supplies the http__transport operations and feeds input, end of input and drained output
 * back to the connection state machine. See http_internal.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"

/* After the last response on a closing connection: how long unread input is drained so
 * that closing does not reset the connection before the client read the response. */
#define HTTP_LINGER_MS 2000

struct write_req {
    uv_write_t req;
    http__conn *c;
    char *buf;
};

static void tcp_close_cb(uv_handle_t *h)
{
    http__conn_handle_closed(h->data);
}

static void tcp_write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    http__conn *c = w->c;
    free(w->buf);
    free(w);
    c->writes_pending--;
    if (c->closing)
        return;
    if (status < 0) {
        http__conn_close(c);
        return;
    }
    if (c->close_after_write && c->writes_pending == 0)
        c->ops->end(c);
    else if (c->backlogged)
        http__conn_drained(c);
}

static int tcp_write(http__conn *c, char *buf, size_t len)
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

static size_t tcp_queued(const http__conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

static void tcp_shutdown_cb(uv_shutdown_t *req, int status)
{
    http__conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0)
        http__conn_close(c);
}

static void tcp_close(http__conn *c)
{
    uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
}

static void tcp_read_pause(http__conn *c)
{
    if (c->reading) {
        (void)uv_read_stop((uv_stream_t *)&c->tcp); /* fails only for a closing handle */
        c->reading = 0;
    }
}

static void tcp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http__conn *c = h->data;
    http_server *s = c->srv;
    (void)suggested;
    if (!s->rbuf_busy) {
        s->rbuf_busy = 1;
        *buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
        return;
    }
    char *p = malloc(HTTP__READ_BUF);
    *buf = uv_buf_init(p, p ? HTTP__READ_BUF : 0);
}

static void tcp_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http__conn *c = st->data;
    http_server *s = c->srv;
    if (nread > 0)
        http__conn_on_data(c, buf->base, (size_t)nread);
    else if (nread == UV_EOF) {
        c->reading = 0;
        http__conn_on_eof(c);
    } else if (nread < 0) {
        c->reading = 0;
        http__conn_close(c);
    }
    if (buf->base == s->rbuf)
        s->rbuf_busy = 0;
    else
        free(buf->base);
}

static void tcp_read_resume(http__conn *c)
{
    if (!c->reading && !c->eof && !c->closing) {
        if (uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc_cb, tcp_read_cb) == 0)
            c->reading = 1;
        else
            http__conn_close(c);
    }
}

/* Half-closes our side and drains input for a short while, so the client reads the last
 * response instead of a reset caused by unread data. */
static void tcp_end(http__conn *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->eof) {
        http__conn_close(c);
        return;
    }
    c->lingering = 1;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, tcp_shutdown_cb) < 0) {
        http__conn_close(c);
        return;
    }
    tcp_read_resume(c);
    http__conn_timer_start(c, HTTP_LINGER_MS);
}

static const struct http__transport tcp_ops = {
    .write = tcp_write,
    .end = tcp_end,
    .close = tcp_close,
    .read_pause = tcp_read_pause,
    .read_resume = tcp_read_resume,
    .queued = tcp_queued,
};

void http__format_peer(char *out, size_t cap, const struct sockaddr *ss)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (uv_ip4_name(a, ip, sizeof ip) != 0)
            snprintf(ip, sizeof ip, "?");
        snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (ss->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (uv_ip6_name(a, ip, sizeof ip) != 0)
            snprintf(ip, sizeof ip, "?");
        snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}

int http__tcp_accept(http__conn *c, uv_stream_t *server)
{
    int rc = uv_tcp_init(c->srv->loop, &c->tcp);
    if (rc < 0)
        return rc;
    c->tcp.data = c;
    c->ops = &tcp_ops;
    c->handles++;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc < 0)
        return rc;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        http__format_peer(c->peer, sizeof c->peer, (const struct sockaddr *)&ss);
        c->addr_known = http__addr_from_sockaddr((const struct sockaddr *)&ss, &c->addr) == 0;
    } else {
        snprintf(c->peer, sizeof c->peer, "?");
    }
    /* Without TCP_NODELAY answers may wait for a delayed ACK; slower, still correct. */
    if (uv_tcp_nodelay(&c->tcp, 1) < 0)
        log_debug("http: %s: could not set TCP_NODELAY", c->peer);
    return 0;
}

static int tls_t_write(http__conn *c, char *buf, size_t len)
{
    int rc = c->tls ? tls_conn_write(c->tls, (const uint8_t *)buf, len) : UV_ENOTCONN;
    free(buf);
    return rc;
}

static void tls_t_close(http__conn *c)
{
    if (c->tls)
        tls_conn_close(c->tls);
}

static void tls_t_read_pause(http__conn *c)
{
    if (c->tls && c->reading) {
        tls_conn_pause(c->tls);
        c->reading = 0;
    }
}

static void tls_t_read_resume(http__conn *c)
{
    if (c->tls && !c->reading && !c->closing) {
        c->reading = 1; /* before the call: tls_conn_resume may deliver data right away */
        tls_conn_resume(c->tls);
    }
}

/* tls_conn_close sends what is queued and close_notify before closing the socket. */
static void tls_t_end(http__conn *c)
{
    http__conn_close(c);
}

static size_t tls_t_queued(const http__conn *c)
{
    return c->tls ? tls_conn_queued(c->tls) : 0;
}

static const struct http__transport tls_ops = {
    .write = tls_t_write,
    .end = tls_t_end,
    .close = tls_t_close,
    .read_pause = tls_t_read_pause,
    .read_resume = tls_t_read_resume,
    .queued = tls_t_queued,
};

static void tls_on_ready(tls_conn *t, void *ud)
{
    http__conn *c = ud;
    const char *a = tls_conn_addr(t);
    if (a && !c->proxied)
        snprintf(c->peer, sizeof c->peer, "%s", a);
}

static void tls_on_data(tls_conn *t, const uint8_t *buf, size_t len, void *ud)
{
    (void)t;
    http__conn_on_data(ud, (const char *)buf, len);
}

static void tls_on_drain(tls_conn *t, void *ud)
{
    (void)t;
    http__conn_drained(ud);
}

static void tls_on_close(tls_conn *t, int status, void *ud)
{
    http__conn *c = ud;
    (void)t;
    (void)status;
    c->tls = NULL;
    if (!c->closing)
        http__conn_close(c);
    http__conn_handle_closed(c);
}

static const tls_conn_cb tls_cbs = {
    .on_ready = tls_on_ready,
    .on_data = tls_on_data,
    .on_drain = tls_on_drain,
    .on_close = tls_on_close,
};

/* Sets c->addr from tls_conn_addr's "ip:port" or "[ip]:port". */
static void addr_from_tls(http__conn *c, const char *a)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *start = a, *end;
    if (a[0] == '[') {
        start = a + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(a, ':');
    }
    size_t len = end ? (size_t)(end - start) : 0;
    if (len == 0 || len >= sizeof ip)
        return;
    memcpy(ip, start, len);
    ip[len] = '\0';
    c->addr_known = http__addr_from_text(ip, &c->addr) == 0;
}

/* The TLS connection is set up: bound the write backlog to the HTTP side's. */
static void tls_started(http__conn *c)
{
    c->handles++;
    c->reading = 1;
    /* The connection stops parsing while more than HTTP__WRITE_BACKLOG bytes wait to be sent
     * and resumes from on_drain, which tls.c calls only after its own high-water mark was
     * crossed. With tls.c's default mark (8 MiB) pipelined requests whose answers filled
     * 1 MiB stopped for good; the same mark on both sides makes every pause end in on_drain
     * (tls.c calls it below half the mark, where http__conn_drained resumes). */
    tls_limits lim = {.high_water = HTTP__WRITE_BACKLOG};
    tls_conn_set_limits(c->tls, &lim);
}

int http__tls_accept(http__conn *c, uv_stream_t *server)
{
    c->ops = &tls_ops;
    int rc = tls_conn_accept(&c->tls, c->srv->tls, server, &tls_cbs, c);
    if (rc < 0)
        return rc;
    tls_started(c);
    const char *a = tls_conn_addr(c->tls);
    snprintf(c->peer, sizeof c->peer, "%s", a ? a : "?");
    if (a)
        addr_from_tls(c, a);
    return 0;
}

/* Hands the socket of a conn accepted as plain TCP (after its PROXY header, if any) to TLS.
 * libuv has no way to move a socket between handles, so TLS gets a duplicate of it and the
 * TCP handle closes; nothing was read past the PROXY header, so the handshake starts at the
 * first byte TLS reads. */
static int tls_adopt(http__conn *c)
{
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)&c->tcp, &fd);
    if (rc < 0)
        return rc;
    tcp_read_pause(c);
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return uv_translate_sys_error(errno);
    rc = tls_conn_accept_sock(&c->tls, c->srv->tls, c->srv->loop, dup_fd, &tls_cbs, c);
    if (rc < 0)
        return rc; /* dup_fd was closed; the caller closes the conn and its TCP handle */
    tls_started(c);
    c->ops = &tls_ops;
    uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
    if (!c->proxied) {
        const char *a = tls_conn_addr(c->tls);
        snprintf(c->peer, sizeof c->peer, "%s", a ? a : "?");
    }
    return 0;
}

int http__transport_start(http__conn *c)
{
    if (c->raw_tls)
        return tls_adopt(c);
    tcp_read_resume(c);
    return c->closing ? UV_EIO : 0;
}
