/* The PROXY protocol v2 header (HAProxy's proxy-protocol specification, section 2.2) that a
 * load balancer sends before the client's bytes: its parser, and reading it off a socket
 * accepted as plain TCP before the HTTP or TLS transport starts. The header is read in
 * reads sized to what is still missing, so nothing after it is taken from the socket: a TLS
 * handshake that follows finds its first byte where TLS expects it. See http_internal.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "http_internal.h"
#include "log.h"

static const uint8_t proxy_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Bytes of the fixed part: the signature, version and command, family and protocol, and
 * the length of what follows. */
#define PROXY_FIXED 16

long http__proxy_parse(const uint8_t *buf, size_t n, struct http__proxy *out)
{
    memset(out, 0, sizeof *out);
    size_t m = n < sizeof proxy_sig ? n : sizeof proxy_sig;
    if (memcmp(buf, proxy_sig, m) != 0)
        return REINT_EMALFORMED;
    if (n < PROXY_FIXED) {
        out->need = PROXY_FIXED;
        return 0;
    }
    unsigned version = buf[12] >> 4, command = buf[12] & 0x0Fu;
    size_t len = ((size_t)buf[14] << 8) | buf[15];
    long total = (long)(PROXY_FIXED + len);
    if (version != 2 || command > 1)
        return REINT_EMALFORMED;
    if (command == 0) {
        /* LOCAL: the balancer's own connection (a health check); the specification has the
         * receiver use the real endpoints and ignore the family and the address block. */
        out->local = 1;
        return total;
    }
    /* Only the combinations the specification defines for a stream: UNSPEC, TCP over IPv4
     * or IPv6, and UNIX stream. Datagram ones cannot describe this connection, and every
     * other value must be rejected. */
    size_t alen;
    switch (buf[13]) {
    case 0x00:
        alen = 0;
        break;
    case 0x11:
        alen = 12;
        break;
    case 0x21:
        alen = 36;
        break;
    case 0x31:
        alen = 216;
        break;
    default:
        return REINT_EMALFORMED;
    }
    if (len < alen)
        return REINT_EMALFORMED;
    if (buf[13] == 0x00 || buf[13] == 0x31) {
        /* No IP address to take: the real endpoints stay, as for LOCAL. */
        out->local = 1;
        return total;
    }
    if (n < PROXY_FIXED + alen) {
        out->need = PROXY_FIXED + alen;
        return 0;
    }
    const uint8_t *a = buf + PROXY_FIXED;
    if (buf[13] == 0x11) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        memcpy(&s4->sin_port, a + 8, 2);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        memcpy(&s6->sin6_port, a + 32, 2);
    }
    return total;
}

int http__proxy_looks_like(const uint8_t *buf, size_t n)
{
    /* Five bytes of the v2 signature reach its NUL, which no HTTP request has; v1 starts
     * with "PROXY", which is no HTTP method. */
    if (n >= 5 && memcmp(buf, proxy_sig, n < sizeof proxy_sig ? n : sizeof proxy_sig) == 0)
        return 1;
    return n >= 5 && memcmp(buf, "PROXY", 5) == 0;
}

static void proxy_refuse(http__conn *c, const char *why)
{
    c->srv->stats.proxy_refused++;
    http__server_note(c->srv);
    log_warn("http: %s: %s; closing", c->peer, why);
    http__conn_close(c);
}

/* The header was read (its address, if any, is in peer and addr): apply the per-address cap
 * to the client's address and start the transport. */
static void proxy_finish(http__conn *c)
{
    (void)uv_read_stop((uv_stream_t *)&c->tcp); /* fails only for a closing handle */
    c->reading = 0;
    c->proxy_wait = 0;
    if (c->proxied && http__server_count_addr(c->srv, c) < 0) {
        http__conn_close(c);
        return;
    }
    int rc = http__transport_start(c);
    if (rc < 0) {
        log_warn("http: %s: starting the connection after its PROXY header: %s", c->peer,
                 uv_strerror(rc));
        http__conn_close(c);
    }
}

static void proxy_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http__conn *c = h->data;
    (void)suggested;
    /* TLVs past what is kept are read into the same buffer and dropped; the buffer's
     * content is no longer needed by then. */
    if (c->proxy_skip > 0) {
        size_t n = c->proxy_skip < sizeof c->proxy_buf ? c->proxy_skip : sizeof c->proxy_buf;
        *buf = uv_buf_init((char *)c->proxy_buf, (unsigned)n);
        return;
    }
    *buf =
        uv_buf_init((char *)c->proxy_buf + c->proxy_len, (unsigned)(c->proxy_need - c->proxy_len));
}

static void proxy_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http__conn *c = st->data;
    (void)buf;
    if (c->closing || !c->proxy_wait)
        return;
    if (nread < 0) {
        c->reading = 0;
        if (nread == UV_EOF && c->proxy_len > 0)
            proxy_refuse(c, "the connection ended inside its PROXY header");
        else
            http__conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (!c->head_clock) {
        c->head_clock = 1;
        c->head_start = http__now(c->srv);
        http__conn_arm(c);
    }
    if (c->proxy_skip > 0) {
        c->proxy_skip -= (size_t)nread;
    } else {
        c->proxy_len += (size_t)nread;
        if (c->proxy_len < c->proxy_need)
            return;
        struct http__proxy p;
        long rc = http__proxy_parse(c->proxy_buf, c->proxy_len, &p);
        if (rc < 0) {
            proxy_refuse(c, "malformed PROXY protocol v2 header from a balancer");
            return;
        }
        if (rc == 0) {
            c->proxy_need = p.need;
            return;
        }
        if (!p.local) {
            http__format_peer(c->peer, sizeof c->peer, (const struct sockaddr *)&p.src);
            c->addr_known =
                http__addr_from_sockaddr((const struct sockaddr *)&p.src, &c->addr) == 0;
            c->proxied = 1;
        }
        c->proxy_skip = (size_t)rc - c->proxy_len;
    }
    if (c->proxy_skip == 0)
        proxy_finish(c);
}

int http__proxy_start(http__conn *c)
{
    c->proxy_len = 0;
    c->proxy_need = PROXY_FIXED;
    c->proxy_skip = 0;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, proxy_alloc_cb, proxy_read_cb);
    if (rc == 0)
        c->reading = 1;
    return rc;
}
