/* libFuzzer target for the HTTP request parser: the input is the byte stream of one
 * connection, fed through the same llhttp callbacks, bounds checks, URL/query/percent
 * decoding, on_head and one-at-a-time dispatch as the server. It drives an http__conn
 * directly through the server's internal header with a null transport, so that nothing of
 * it is linked into the daemons. The input's length picks the variations (chunk size,
 * whether the handler answers at once or later, whether the connection goes away first,
 * whether an on_head callback runs, whether the server takes bodies) so that the seeds stay
 * plain HTTP. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

static int null_write(http__conn *c, char *buf, size_t len)
{
    (void)c;
    (void)len;
    free(buf);
    return 0;
}

static void null_end(http__conn *c)
{
    http__conn_close(c);
}

static void null_noop(http__conn *c)
{
    (void)c;
}

static size_t null_queued(const http__conn *c)
{
    (void)c;
    return 0;
}

static const struct http__transport null_ops = {
    .write = null_write,
    .end = null_end,
    .close = null_noop,
    .read_pause = null_noop,
    .read_resume = null_noop,
    .queued = null_queued,
};

/* An oracle written apart from the server's: 1 when s is well-formed UTF-8 (RFC 3629). */
static int valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned cp, n;
        if (s[0] < 0x80) {
            s++;
            continue;
        } else if ((s[0] & 0xE0) == 0xC0) {
            cp = s[0] & 0x1Fu, n = 1;
        } else if ((s[0] & 0xF0) == 0xE0) {
            cp = s[0] & 0x0Fu, n = 2;
        } else if ((s[0] & 0xF8) == 0xF0) {
            cp = s[0] & 0x07u, n = 3;
        } else {
            return 0;
        }
        for (unsigned i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3Fu);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

static http_req *fuzz_held;
static int fuzz_async;

static void fuzz_handler(http_req *r, void *ud)
{
    (void)ud;
    size_t bl;
    const char *b = http_req_body(r, &bl);
    const char *v = http_req_param(r, "q");
    const char *h = http_req_header(r, "content-type");
    /* The server refuses what handlers could not pass on as text. */
    if (!valid_utf8(http_req_path(r)) || !valid_utf8(http_req_query(r)) || (v && !valid_utf8(v)))
        abort();
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

/* Refuses a request with an X-Deny header (answering 403), returns 1 without answering for
 * X-Broken (the server must answer 500 itself), lets the rest through. It must never see a
 * body. */
static int fuzz_on_head(http_req *r, void *ud)
{
    (void)ud;
    size_t bl;
    (void)http_req_body(r, &bl);
    if (bl != 0)
        abort();
    if (http_req_header(r, "x-deny")) {
        http_respond(r, 403, NULL, "{}", 2);
        return 1;
    }
    return http_req_header(r, "x-broken") ? 1 : 0;
}

/* Feeds data as the byte stream of one connection through the same parsing, bounds checks
 * and dispatch as the server, with the handler above and no sockets. Everything allocated is
 * freed before it returns. */
static void feed(const uint8_t *data, size_t len)
{
    http_server *s = calloc(1, sizeof *s);
    http__conn *c = calloc(1, sizeof *c);
    if (!s || !c) {
        free(s);
        free(c);
        return;
    }
    s->handler = fuzz_handler;
    s->on_head = len % 4 == 1 ? NULL : fuzz_on_head;
    s->max_body = len % 13 == 5 ? 0 : 4096;
    http__request_settings(&s->settings);
    http__conn_init(c, s);
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
        http__conn_on_data(c, (const char *)data + off, n);
        while (fuzz_held) {
            http_req *r = fuzz_held;
            fuzz_held = NULL;
            if (len % 3 == 0)
                http__conn_close(c);
            http_respond(r, len % 5 ? 200 : 204, "text/plain", "ok", 2);
        }
    }
    if (!c->closing)
        http__conn_on_eof(c);
    http__conn_close(c);
    http__conn_free(c);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    feed(data, size);
    return 0;
}
