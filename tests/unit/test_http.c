/* Unit tests for common/http.c: a real server on 127.0.0.1:0 in the test's own uv loop,
 * driven by a blocking-socket client in a second thread. The client only records what it
 * saw; every assertion runs on the main thread after the loop has finished. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http.h"
#include "testhook.h"
#include "tls.h"

#define GUARD_MS 10000
#define NOUT     8
#define OUT_CAP  32768
#define PIPE_N   100

struct fx;
typedef void (*client_fn)(struct fx *f);

struct fx {
    uv_loop_t loop;
    http_server *srv;
    int port;
    uv_timer_t guard;
    uv_async_t done;
    int timed_out;
    client_fn client;
    tls_ctx *tls;
    const char *ca_file;
    /* filled by the client thread */
    char out[NOUT][OUT_CAP];
    size_t out_len[NOUT];
    int eof[NOUT]; /* the server closed the connection after what is in out[i] */
    double elapsed_ms;
    int kept_fd;
    size_t big_responses, big_bytes;
    size_t pipe_size; /* body size of each /seq answer */
    int seq[PIPE_N];  /* sequence numbers of the pipelined answers, in arrival order */
    int nseq;
    int pipe_later; /* the handler answers each /seq from a timer */
    /* filled by the handler */
    int handled;
    int late_responses;
};

/* ---- handler ----------------------------------------------------------------------------- */

struct delayed {
    uv_timer_t t;
    http_req *r;
    struct fx *f;
    char *body; /* answered instead of "late" when set; freed with the struct */
    size_t body_len;
};

static void delayed_close_cb(uv_handle_t *h)
{
    struct delayed *d = h->data;
    free(d->body);
    free(d);
}

static void delayed_fire(uv_timer_t *t)
{
    struct delayed *d = t->data;
    d->f->late_responses++;
    if (d->body)
        http_respond(d->r, 200, "text/plain", d->body, d->body_len);
    else
        http_respond(d->r, 200, "text/plain", "late", 4);
    uv_close((uv_handle_t *)&d->t, delayed_close_cb);
}

static const char *or_none(const char *s)
{
    return s ? s : "(none)";
}

/* /echo...: echoes what the parser saw. /delay?ms=N: answers after N ms from a timer.
 * /big: 64 KiB of 'b'. /raw: answers with the request body itself. /seq?n=N&size=S[&later]:
 * "seq=N|" padded to S bytes, from a timer with later. /status?code=N: empty answer with that
 * status. */
static void handler(http_req *r, void *ud)
{
    struct fx *f = ud;
    const char *path = http_req_path(r);
    f->handled++;
    if (strcmp(path, "/delay") == 0) {
        struct delayed *d = calloc(1, sizeof *d);
        assert_non_null(d);
        d->r = r;
        d->f = f;
        d->t.data = d;
        uv_timer_init(&f->loop, &d->t);
        const char *ms = http_req_param(r, "ms");
        uv_timer_start(&d->t, delayed_fire, ms ? strtoul(ms, NULL, 10) : 100, 0);
        return;
    }
    if (strcmp(path, "/raw") == 0) {
        size_t bl;
        const char *body = http_req_body(r, &bl);
        http_respond(r, 200, "application/octet-stream", body, bl);
        return;
    }
    if (strcmp(path, "/big") == 0) {
        size_t n = 64 * 1024;
        char *out = malloc(n);
        assert_non_null(out);
        memset(out, 'b', n);
        http_respond(r, 200, "text/plain", out, n);
        free(out);
        return;
    }
    if (strcmp(path, "/seq") == 0) {
        /* "seq=N|" padded with '.' to size bytes, so that pipelined answers can be told apart
         * and are large enough to fill the write backlog. */
        const char *n = http_req_param(r, "n"), *size = http_req_param(r, "size");
        size_t sz = size ? strtoul(size, NULL, 10) : 64;
        char *out = malloc(sz + 32);
        assert_non_null(out);
        int hl = snprintf(out, sz + 32, "seq=%s|", n ? n : "?");
        if ((size_t)hl < sz)
            memset(out + hl, '.', sz - (size_t)hl);
        else
            sz = (size_t)hl;
        if (http_req_param(r, "later")) {
            struct delayed *d = calloc(1, sizeof *d);
            assert_non_null(d);
            d->r = r;
            d->f = f;
            d->body = out;
            d->body_len = sz;
            d->t.data = d;
            uv_timer_init(&f->loop, &d->t);
            uv_timer_start(&d->t, delayed_fire, 0, 0);
            return;
        }
        http_respond(r, 200, "text/plain", out, sz);
        free(out);
        return;
    }
    if (strcmp(path, "/status") == 0) {
        const char *code = http_req_param(r, "code");
        http_respond(r, code ? (int)strtol(code, NULL, 10) : 200, NULL, "", 0);
        return;
    }
    if (strncmp(path, "/echo", 5) == 0) {
        size_t bl;
        const char *body = http_req_body(r, &bl);
        size_t cap = 1024 + bl;
        char *out = malloc(cap);
        assert_non_null(out);
        int n =
            snprintf(out, cap,
                     "method=%s|path=%s|query=%s|a=%s|b=%s|c=%s|x-test=%s|peer=%.10s|"
                     "bodylen=%zu|body=%s",
                     http_req_method(r), path, http_req_query(r), or_none(http_req_param(r, "a")),
                     or_none(http_req_param(r, "b")), or_none(http_req_param(r, "c")),
                     or_none(http_req_header(r, "x-TEST")), http_req_peer(r), bl, body);
        http_add_header(r, "X-Echo", "1");
        if (http_req_param(r, "inject"))
            http_add_header(r, "X-Bad", "a\r\nInjected: yes");
        http_respond(r, 200, "text/plain", out, (size_t)n);
        free(out);
        return;
    }
    http_respond(r, 404, NULL, "{\"error\":\"not found\"}", 21);
}

/* ---- blocking client --------------------------------------------------------------------- */

static int cl_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 8};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void cl_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void cl_sends(int fd, const char *s)
{
    cl_send(fd, s, strlen(s));
}

/* A client connection to the fixture's server: plain, or TLS verified against f->ca_file
 * when the server serves HTTPS. */
struct cl {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static int cl_open(struct fx *f, struct cl *c)
{
    c->ctx = NULL;
    c->ssl = NULL;
    c->fd = cl_connect(f->port);
    if (c->fd < 0 || !f->ca_file)
        return c->fd < 0 ? -1 : 0;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || SSL_CTX_load_verify_locations(c->ctx, f->ca_file, NULL) != 1)
        return -1;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1)
        return -1;
    return 0;
}

static int cl_send_all(struct cl *c, const char *s, size_t n)
{
    if (!c->ssl) {
        cl_send(c->fd, s, n);
        return 0;
    }
    return n == 0 || SSL_write(c->ssl, s, (int)n) > 0 ? 0 : -1;
}

static int cl_write_all(struct cl *c, const char *s)
{
    return cl_send_all(c, s, strlen(s));
}

/* Bytes read (> 0), or 0 at the end of the stream, a timeout or an error. */
static ssize_t cl_recv(struct cl *c, char *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t r = recv(c->fd, buf, n, 0);
        return r > 0 ? r : 0;
    }
    int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return r > 0 ? r : 0;
}

static void cl_close(struct cl *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
}

/* Length of the first complete response in buf, or 0 if it is not complete yet. */
static size_t response_len(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hl = (size_t)(end - buf) + 4;
    size_t cl = 0;
    const char *p = memmem(buf, hl, "Content-Length: ", 16);
    if (p)
        cl = strtoul(p + 16, NULL, 10);
    return len >= hl + cl ? hl + cl : 0;
}

/* Reads into f->out[slot] until n complete responses arrived (n > 0) or, with n == 0,
 * until the server closes. */
static void cl_read(struct fx *f, int fd, int slot, int n)
{
    char *buf = f->out[slot];
    size_t len = f->out_len[slot];
    for (;;) {
        if (n > 0) {
            size_t off = 0;
            int got = 0;
            size_t rl;
            while ((rl = response_len(buf + off, len - off)) > 0) {
                off += rl;
                got++;
            }
            if (got >= n)
                break;
        }
        if (len + 1 >= OUT_CAP)
            break;
        ssize_t r = recv(fd, buf + len, OUT_CAP - 1 - len, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            f->eof[slot] = 1;
            break;
        }
        if (r < 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    f->out_len[slot] = len;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- fixture ----------------------------------------------------------------------------- */

static void guard_fire(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->timed_out = 1;
    uv_stop(&f->loop);
}

static void done_cb(uv_async_t *a)
{
    struct fx *f = a->data;
    http_server_stop(f->srv);
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_close((uv_handle_t *)&f->done, NULL);
}

static void *client_main(void *arg)
{
    struct fx *f = arg;
    f->client(f);
    uv_async_send(&f->done);
    return NULL;
}

/* Starts a server in a fresh loop; with tls it serves HTTPS and owns the context. */
static struct fx *fx_start(size_t max_body, tls_ctx *tls)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->tls = tls;
    http_server_opts o = {.host = "127.0.0.1",
                          .port = 0,
                          .max_body = max_body,
                          .tls = tls,
                          .handler = handler,
                          .ud = f};
    assert_int_equal(http_server_start(&f->srv, &f->loop, &o), 0);
    f->port = http_server_port(f->srv);
    assert_true(f->port > 0);
    return f;
}

static struct fx *fx_new(size_t max_body)
{
    return fx_start(max_body, NULL);
}

/* Runs the loop while the client thread runs, stops the server when it is done, and
 * checks that every handle was closed (the server freed itself). */
static void fx_run(struct fx *f, client_fn fn)
{
    f->client = fn;
    uv_timer_init(&f->loop, &f->guard);
    f->guard.data = f;
    uv_timer_start(&f->guard, guard_fire, GUARD_MS, 0);
    uv_async_init(&f->loop, &f->done, done_cb);
    f->done.data = f;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (f->timed_out)
        fail_msg("test did not finish within %d ms", GUARD_MS);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void fx_free(struct fx *f)
{
    if (f->tls)
        tls_ctx_free(f->tls);
    free(f);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void c_get_query(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo/a%20b%2Fc?a=x+y%26z&b=%C3%A9&c&inject HTTP/1.1\r\nHost: t\r\n"
                 "X-Test:   Hi there  \r\n\r\n");
    cl_read(f, fd, 0, 1);
    close(fd);
}

static void test_http_get_query_params_and_percent_decoding(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_get_query);
    const char *o = f->out[0];
    assert_true(strncmp(o, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(o, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(o, "X-Echo: 1\r\n"));
    assert_null(strstr(o, "Injected"));
    assert_non_null(strstr(o, "Connection: keep-alive\r\n\r\n"));
    assert_non_null(strstr(o, "method=GET|path=/echo/a b/c|query=a=x+y%26z&b=%C3%A9&c&inject|"
                              "a=x y&z|b=\xC3\xA9|c=|x-test=Hi there|peer=127.0.0.1"));
    fx_free(f);
}

static void c_post(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Content-Length: 15\r\n\r\n{\"name\":\"Sita\"}");
    cl_read(f, fd, 0, 1);
    close(fd);
}

static void test_http_post_body_reaches_handler(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_post);
    assert_non_null(strstr(f->out[0], "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(f->out[0], "method=POST|"));
    assert_non_null(strstr(f->out[0], "bodylen=15|body={\"name\":\"Sita\"}"));
    fx_free(f);
}

static void c_raw_echo(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "PUT /raw HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
    cl_read(f, fd, 0, 1);
    close(fd);
}

/* The response body may point into the request that http_respond releases. */
static void test_http_respond_with_the_request_body_itself(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_raw_echo);
    assert_non_null(strstr(f->out[0], "Content-Length: 11\r\n"));
    assert_non_null(strstr(f->out[0], "\r\n\r\nhello world"));
    fx_free(f);
}

static void c_chunked(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    cl_read(f, fd, 0, 1);
    close(fd);
}

static void test_http_chunked_body_is_reassembled(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_chunked);
    assert_non_null(strstr(f->out[0], "bodylen=11|body=hello world"));
    fx_free(f);
}

static void c_keep_alive(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo?a=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 0, 1);
    cl_sends(fd, "GET /echo?a=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 1, 1);
    close(fd);
}

static void test_http_keep_alive_serves_two_requests_on_one_connection(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_keep_alive);
    assert_non_null(strstr(f->out[0], "|a=1|"));
    assert_non_null(strstr(f->out[0], "Connection: keep-alive"));
    assert_non_null(strstr(f->out[1], "|a=2|"));
    assert_int_equal(f->eof[1], 0);
    fx_free(f);
}

static void c_pipelined(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /delay?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /echo?a=2 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /echo?a=3 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
                 "GET /echo?a=4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cl_read(f, fd, 0, 0);
    close(fd);
}

static void test_http_pipelined_requests_answered_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_pipelined);
    const char *o = f->out[0];
    const char *late = strstr(o, "\r\n\r\nlate");
    const char *a2 = strstr(o, "|a=2|");
    const char *a3 = strstr(o, "|a=3|");
    const char *a4 = strstr(o, "|a=4|");
    assert_non_null(late);
    assert_non_null(a2);
    assert_non_null(a3);
    assert_non_null(a4);
    assert_true(late < a2 && a2 < a3 && a3 < a4);
    assert_non_null(strstr(a3, "body=xyz"));
    assert_int_equal(count(o, "HTTP/1.1 200 OK"), 4);
    assert_int_equal(f->eof[0], 1);
    fx_free(f);
}

#define BURST 200

static void c_burst_slow_reader(struct fx *f)
{
    int fd = cl_connect(f->port);
    char req[BURST * 40];
    size_t n = 0;
    for (int i = 0; i < BURST; i++)
        n += (size_t)snprintf(req + n, sizeof req - n, "GET /big HTTP/1.1\r\nHost: t\r\n%s\r\n",
                              i == BURST - 1 ? "Connection: close\r\n" : "");
    cl_send(fd, req, n);
    usleep(300 * 1000);                      /* let the server fill the socket and its backlog */
    size_t cap = BURST * (64 * 1024 + 1024); /* body + headers (security headers included) */
    char *buf = malloc(cap);
    size_t len = 0;
    ssize_t r;
    while (buf && len < cap && (r = recv(fd, buf + len, cap - len, 0)) > 0)
        len += (size_t)r;
    for (size_t off = 0, rl; buf && (rl = response_len(buf + off, len - off)) > 0; off += rl)
        f->big_responses++;
    f->big_bytes = len;
    free(buf);
    close(fd);
}

/* A client that pipelines many requests and reads late gets every answer, in full. */
static void test_http_pipelined_burst_with_slow_reader(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_burst_slow_reader);
    assert_int_equal(f->big_responses, BURST);
    assert_int_equal(f->handled, BURST);
    fx_free(f);
}

static void c_oversize_body(struct fx *f)
{
    int fd = cl_connect(f->port);
    char body[2000];
    memset(body, 'x', sizeof body);
    cl_sends(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    cl_send(fd, body, sizeof body);
    cl_read(f, fd, 0, 0);
    close(fd);
}

static void test_http_body_over_limit_gets_413_and_close(void **state)
{
    (void)state;
    struct fx *f = fx_new(1024);
    fx_run(f, c_oversize_body);
    assert_true(strncmp(f->out[0], "HTTP/1.1 413 ", 13) == 0);
    assert_non_null(strstr(f->out[0], "Connection: close\r\n"));
    assert_non_null(strstr(f->out[0], "{\"error\":\"request body larger than 1024 bytes\"}"));
    assert_int_equal(f->eof[0], 1);
    assert_int_equal(f->handled, 0);
    fx_free(f);
}

static void c_oversize_chunked(struct fx *f)
{
    int fd = cl_connect(f->port);
    char chunk[700];
    memset(chunk, 'y', sizeof chunk);
    cl_sends(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 2; i++) {
        cl_sends(fd, "2bc\r\n");
        cl_send(fd, chunk, sizeof chunk);
        cl_sends(fd, "\r\n");
    }
    cl_read(f, fd, 0, 0);
    close(fd);
}

static void test_http_chunked_body_over_limit_gets_413(void **state)
{
    (void)state;
    struct fx *f = fx_new(1024);
    fx_run(f, c_oversize_chunked);
    assert_true(strncmp(f->out[0], "HTTP/1.1 413 ", 13) == 0);
    assert_int_equal(f->eof[0], 1);
    assert_int_equal(f->handled, 0);
    fx_free(f);
}

static void c_long_url(struct fx *f)
{
    int fd = cl_connect(f->port);
    char url[HTTP_MAX_URL + 100];
    memset(url, 'a', sizeof url);
    url[0] = '/';
    cl_sends(fd, "GET ");
    cl_send(fd, url, sizeof url);
    cl_sends(fd, " HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 0, 0);
    close(fd);
}

static void test_http_long_url_gets_414(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_long_url);
    assert_true(strncmp(f->out[0], "HTTP/1.1 414 URI Too Long\r\n", 27) == 0);
    assert_int_equal(f->eof[0], 1);
    fx_free(f);
}

static void c_big_headers(struct fx *f)
{
    int fd = cl_connect(f->port);
    char v[1000];
    memset(v, 'v', sizeof v);
    cl_sends(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 20; i++) {
        cl_sends(fd, "X-Filler: ");
        cl_send(fd, v, sizeof v);
        cl_sends(fd, "\r\n");
    }
    cl_sends(fd, "\r\n");
    cl_read(f, fd, 0, 0);
    close(fd);
}

static void test_http_headers_over_limit_get_431(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_big_headers);
    assert_true(strncmp(f->out[0], "HTTP/1.1 431 ", 13) == 0);
    assert_int_equal(f->eof[0], 1);
    fx_free(f);
}

static void c_garbage(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "\x01\x02garbage here\r\n\r\n");
    cl_read(f, fd, 0, 0);
    close(fd);
    fd = cl_connect(f->port);
    cl_sends(fd, "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 1, 0);
    close(fd);
    fd = cl_connect(f->port);
    cl_sends(fd, "GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 2, 0);
    close(fd);
    fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo?a=%4 HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 3, 0);
    close(fd);
}

static void test_http_garbage_and_bad_escapes_get_400(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_garbage);
    for (int i = 0; i < 4; i++) {
        assert_true(strncmp(f->out[i], "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
        assert_non_null(strstr(f->out[i], "Content-Type: application/json\r\n"));
        assert_non_null(strstr(f->out[i], "\r\n\r\n{\"error\":\""));
        assert_int_equal(f->eof[i], 1);
    }
    assert_non_null(strstr(f->out[1], "percent-escape"));
    assert_int_equal(f->handled, 0);
    fx_free(f);
}

/* Each target on its own connection, since a refused request closes it. */
static const char *const utf8_targets[NOUT] = {
    "/echo?name=%FF",                   /* a lone byte that starts nothing */
    "/caf%C3",                          /* a sequence cut short, in the path */
    "/echo?a=ok&%FF%FE=1",              /* in the second parameter's name */
    "/echo?v=%C0%AF",                   /* overlong '/' */
    "/echo?v=%ED%A0%80",                /* a surrogate */
    "/echo?v=%F4%90%80%80",             /* above U+10FFFF */
    "/echo?v=\xC3%A9",                  /* raw lead byte, escaped continuation */
    "/echo?a=%F0%9F%98%80&b=%E0%A4%A8", /* valid: four and three bytes */
};

static void c_bad_utf8(struct fx *f)
{
    for (int i = 0; i < NOUT; i++) {
        int fd = cl_connect(f->port);
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 utf8_targets[i]);
        cl_sends(fd, req);
        cl_read(f, fd, i, 0);
        close(fd);
    }
}

/* The error body of a response in out, or "" when there is none. */
static const char *body_of(const char *out)
{
    const char *b = strstr(out, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* jansson refuses such strings, so a handler could only answer 500; the server refuses them
 * first with 400 and says which parameter. */
static void test_http_invalid_utf8_in_path_or_query_gets_400_naming_it(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_bad_utf8);
    static const char *const want[NOUT - 1] = {
        "{\"error\":\"query parameter \\\"name\\\" is not valid UTF-8 after percent-decoding\"}",
        "{\"error\":\"request path is not valid UTF-8 after percent-decoding\"}",
        "{\"error\":\"the name of query parameter 2 is not valid UTF-8 after percent-decoding\"}",
        "{\"error\":\"query parameter \\\"v\\\" is not valid UTF-8 after percent-decoding\"}",
        "{\"error\":\"query parameter \\\"v\\\" is not valid UTF-8 after percent-decoding\"}",
        "{\"error\":\"query parameter \\\"v\\\" is not valid UTF-8 after percent-decoding\"}",
        "{\"error\":\"request query string is not valid UTF-8\"}",
    };
    for (int i = 0; i < NOUT - 1; i++) {
        const char *o = f->out[i];
        if (strncmp(o, "HTTP/1.1 400 Bad Request\r\n", 26) != 0)
            fail_msg("%s: expected 400, got: %.60s", utf8_targets[i], o);
        assert_non_null(strstr(o, "Content-Type: application/json\r\n"));
        assert_string_equal(body_of(o), want[i]);
        assert_int_equal(f->eof[i], 1);
    }
    assert_true(strncmp(f->out[NOUT - 1], "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(f->out[NOUT - 1], "|a=\xF0\x9F\x98\x80|b=\xE0\xA4\xA8|"));
    assert_int_equal(f->handled, 1);
    fx_free(f);
}

/* The first request meets the armed fault; a second connection shows the server still
 * serves. */
static void c_echo_twice(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo?a=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 0, 0);
    close(fd);
    fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo?a=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 1, 1);
    close(fd);
}

static void assert_500_out_of_memory_then_served(struct fx *f)
{
    const char *o = f->out[0];
    if (strncmp(o, "HTTP/1.1 500 Internal Server Error\r\n", 36) != 0)
        fail_msg("expected 500, got: %.80s", o);
    assert_null(strstr(o, "200 OK"));
    assert_null(strstr(o, "|a=1|"));
    assert_non_null(strstr(o, "Connection: close\r\n"));
    assert_string_equal(body_of(o), "{\"error\":\"out of memory building the response\"}");
    assert_int_equal(f->eof[0], 1);
    assert_true(strncmp(f->out[1], "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(f->out[1], "X-Echo: 1\r\n"));
}

/* A header the handler added but that was lost for want of memory turns the answer into a
 * 500, never a 200 without it. */
static void test_http_header_lost_to_memory_answers_500(void **state)
{
    (void)state;
    testhook_enable("test_http");
    assert_int_equal(testhook_arm("http_add_header_nomem"), 0);
    struct fx *f = fx_new(0);
    fx_run(f, c_echo_twice);
    assert_500_out_of_memory_then_served(f);
    fx_free(f);
}

static void test_http_response_without_memory_answers_500(void **state)
{
    (void)state;
    testhook_enable("test_http");
    assert_int_equal(testhook_arm("http_respond_nomem"), 0);
    struct fx *f = fx_new(0);
    fx_run(f, c_echo_twice);
    assert_500_out_of_memory_then_served(f);
    fx_free(f);
}

static void c_delayed(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /delay?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 0, 1);
    cl_sends(fd, "GET /echo?a=after HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd, 1, 1);
    close(fd);
}

static void test_http_handler_may_respond_later(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_delayed);
    assert_true(strncmp(f->out[0], "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(f->out[0], "Content-Length: 4\r\n"));
    assert_non_null(strstr(f->out[0], "\r\n\r\nlate"));
    assert_non_null(strstr(f->out[1], "|a=after|"));
    assert_int_equal(f->late_responses, 1);
    fx_free(f);
}

static void c_reset_before_response(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /delay?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(50 * 1000);
    /* An abortive close (RST) makes the server see a read error while the request is still
     * being handled, so the connection goes away before the response. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    usleep(500 * 1000);
}

static void test_http_client_gone_before_delayed_response(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_reset_before_response);
    assert_int_equal(f->handled, 1);
    assert_int_equal(f->late_responses, 1);
    fx_free(f);
}

static void c_leave_request_pending(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /delay?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(50 * 1000);
    /* The server is stopped once this returns, with the request still being handled; the
     * socket stays open until then and is closed by the test afterwards. */
    f->kept_fd = fd;
}

static void test_http_stop_with_request_in_flight(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    f->kept_fd = -1;
    fx_run(f, c_leave_request_pending);
    if (f->kept_fd >= 0)
        close(f->kept_fd);
    assert_int_equal(f->late_responses, 1);
    fx_free(f);
}

static void c_conn_close(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cl_read(f, fd, 0, 0);
    close(fd);
    fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo?a=10 HTTP/1.0\r\n\r\n");
    cl_read(f, fd, 1, 0);
    close(fd);
    fd = cl_connect(f->port);
    cl_sends(fd, "GET /echo?a=11 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cl_read(f, fd, 2, 1);
    cl_sends(fd, "GET /echo?a=12 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cl_read(f, fd, 3, 1);
    close(fd);
}

static void test_http_connection_close_and_http10_rules(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_conn_close);
    assert_non_null(strstr(f->out[0], "Connection: close\r\n\r\n"));
    assert_int_equal(f->eof[0], 1);
    assert_non_null(strstr(f->out[1], "|a=10|"));
    assert_non_null(strstr(f->out[1], "Connection: close\r\n\r\n"));
    assert_int_equal(f->eof[1], 1);
    assert_non_null(strstr(f->out[2], "Connection: keep-alive\r\n\r\n"));
    assert_non_null(strstr(f->out[3], "|a=12|"));
    assert_int_equal(f->eof[3], 0);
    fx_free(f);
}

static void c_status_and_head(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_sends(fd, "GET /status?code=204 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /status?code=422 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cl_read(f, fd, 0, 0);
    close(fd);
}

static void test_http_204_and_head_have_no_body(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    fx_run(f, c_status_and_head);
    const char *o = f->out[0];
    static const char first[] =
        "HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
        "Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n"
        "Connection: keep-alive\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert_true(strncmp(o, first, sizeof first - 1) == 0);
    const char *head = o + sizeof first - 1;
    assert_non_null(strstr(head, "Content-Length: "));
    const char *head_end = strstr(head, "\r\n\r\n");
    assert_non_null(head_end);
    assert_true(strncmp(head_end + 4, "HTTP/1.1 422 Unprocessable Content\r\n", 36) == 0);
    assert_int_equal(f->eof[0], 1);
    fx_free(f);
}

static void c_idle(struct fx *f)
{
    int fd = cl_connect(f->port);
    double t0 = now_ms();
    cl_read(f, fd, 0, 0);
    f->elapsed_ms = now_ms() - t0;
    close(fd);
}

static void test_http_idle_connection_is_closed(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    http_server_set_idle_timeout(f->srv, 200);
    fx_run(f, c_idle);
    assert_int_equal(f->eof[0], 1);
    assert_int_equal(f->out_len[0], 0);
    assert_true(f->elapsed_ms >= 150 && f->elapsed_ms < 5000);
    fx_free(f);
}

static void c_cap(struct fx *f)
{
    int fd1 = cl_connect(f->port);
    cl_sends(fd1, "GET /echo?a=first HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd1, 0, 1);
    int fd2 = cl_connect(f->port);
    cl_sends(fd2, "GET /echo?a=second HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_read(f, fd2, 1, 0);
    close(fd2);
    close(fd1);
}

static void test_http_connections_past_the_cap_are_closed(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    http_server_set_max_conns(f->srv, 1);
    fx_run(f, c_cap);
    assert_non_null(strstr(f->out[0], "|a=first|"));
    assert_int_equal(f->eof[1], 1);
    assert_int_equal(f->out_len[1], 0);
    fx_free(f);
}

/* ---- HTTPS ------------------------------------------------------------------------------- */

/* One PKI for every HTTPS test, made by deploy/pki.sh on first use and removed at exit. When
 * the script fails the test fails: an HTTPS test that could not run must never count as a
 * pass. */
#define PKI_SCRIPT "../../deploy/pki.sh"

static char pki_dir[] = "/tmp/test_http_pki.XXXXXX";
static int pki_state; /* 0 not tried, 1 made, -1 failed */
static char pki_ca[256], pki_crt[256], pki_key[256];

static void pki_need(void)
{
    if (pki_state == 0) {
        pki_state = -1;
        if (!mkdtemp(pki_dir))
            fail_msg("mkdtemp %s: %s", pki_dir, strerror(errno));
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 PKI_SCRIPT " init %s >/dev/null 2>&1 && " PKI_SCRIPT
                            " issue %s federal >/dev/null 2>&1",
                 pki_dir, pki_dir);
        int rc = system(cmd);
        if (rc != 0)
            fail_msg("%s could not make a CA and a federal certificate in %s (%s %d)", PKI_SCRIPT,
                     pki_dir, WIFEXITED(rc) ? "exit status" : "wait status",
                     WIFEXITED(rc) ? WEXITSTATUS(rc) : rc);
        snprintf(pki_ca, sizeof pki_ca, "%s/ca.crt", pki_dir);
        snprintf(pki_crt, sizeof pki_crt, "%s/federal.crt", pki_dir);
        snprintf(pki_key, sizeof pki_key, "%s/federal.key", pki_dir);
        pki_state = 1;
    }
    if (pki_state < 0)
        fail_msg("%s failed earlier; cannot test HTTPS", PKI_SCRIPT);
}

static void pki_cleanup(void)
{
    if (pki_dir[sizeof pki_dir - 2] == 'X')
        return; /* never made */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", pki_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", pki_dir);
}

static struct fx *fx_new_tls(void)
{
    pki_need();
    char err[256];
    tls_ctx_opts to = {.mode = TLS_MODE_HTTPS_SERVER,
                       .ca_file = pki_ca,
                       .cert_file = pki_crt,
                       .key_file = pki_key};
    tls_ctx *tls = NULL;
    if (tls_ctx_new(&tls, &to, err, sizeof err) != 0)
        fail_msg("tls_ctx_new: %s", err);
    struct fx *f = fx_start(0, tls);
    f->ca_file = pki_ca;
    return f;
}

static void c_tls(struct fx *f)
{
    struct cl c = {.fd = -1};
    if (cl_open(f, &c) == 0) {
        cl_write_all(&c, "GET /echo?a=tls HTTP/1.1\r\nHost: t\r\n\r\n"
                         "POST /echo?a=tls2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                         "Connection: close\r\n\r\nok");
        size_t len = 0;
        ssize_t r;
        while (len + 1 < OUT_CAP && (r = cl_recv(&c, f->out[0] + len, OUT_CAP - 1 - len)) > 0)
            len += (size_t)r;
        f->eof[0] = 1;
        f->out[0][len] = '\0';
        f->out_len[0] = len;
    }
    cl_close(&c);
}

static void test_https_serves_requests_through_tls(void **state)
{
    (void)state;
    struct fx *f = fx_new_tls();
    fx_run(f, c_tls);
    assert_true(strncmp(f->out[0], "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(f->out[0], "|a=tls|"));
    assert_non_null(strstr(f->out[0], "|a=tls2|"));
    assert_non_null(strstr(f->out[0], "body=ok"));
    /* HTTPS answers tell browsers to stay on HTTPS; plain HTTP ones do not. */
    assert_non_null(strstr(f->out[0], "Strict-Transport-Security: max-age="));
    assert_non_null(strstr(f->out[0], "X-Content-Type-Options: nosniff"));
    assert_int_equal(f->eof[0], 1);
    fx_free(f);
}

/* ---- pipelining -------------------------------------------------------------------------- */

/* Sends PIPE_N requests in one write, then reads until PIPE_N answers arrived or the
 * connection ends, recording the sequence number each answer carries. */
static void c_pipeline(struct fx *f)
{
    struct cl c = {.fd = -1};
    char *req = malloc(PIPE_N * 64);
    size_t cap = PIPE_N * (f->pipe_size + 1024), len = 0, off = 0;
    char *buf = malloc(cap + 1);
    if (!req || !buf || cl_open(f, &c) != 0)
        goto out;
    size_t n = 0;
    for (int i = 0; i < PIPE_N; i++)
        n += (size_t)snprintf(req + n, PIPE_N * 64 - n,
                              "GET /seq?n=%d&size=%zu%s HTTP/1.1\r\nHost: t\r\n\r\n", i,
                              f->pipe_size, f->pipe_later ? "&later" : "");
    if (cl_send_all(&c, req, n) != 0)
        goto out;
    while (f->nseq < PIPE_N && len < cap) {
        ssize_t r = cl_recv(&c, buf + len, cap - len);
        if (r <= 0) {
            f->eof[0] = 1;
            break;
        }
        len += (size_t)r;
        buf[len] = '\0';
        size_t rl;
        while (f->nseq < PIPE_N && (rl = response_len(buf + off, len - off)) > 0) {
            const char *ok = "HTTP/1.1 200 OK\r\n";
            const char *body = memmem(buf + off, rl, "\r\n\r\nseq=", 8);
            f->seq[f->nseq++] = strncmp(buf + off, ok, strlen(ok)) == 0 && body
                                    ? (int)strtol(body + 8, NULL, 10)
                                    : -1;
            off += rl;
        }
    }
out:
    cl_close(&c);
    free(req);
    free(buf);
}

static void assert_pipeline_in_order(struct fx *f)
{
    assert_int_equal(f->nseq, PIPE_N);
    for (int i = 0; i < PIPE_N; i++)
        assert_int_equal(f->seq[i], i);
    assert_int_equal(f->handled, PIPE_N);
}

/* Small answers: everything fits in the socket at once. */
static void test_http_100_pipelined_gets_answered_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    f->pipe_size = 64;
    fx_run(f, c_pipeline);
    assert_pipeline_in_order(f);
    fx_free(f);
}

/* Large answers (6.4 MB in all): the write backlog fills, parsing stops and must resume as
 * it drains. */
static void test_http_100_pipelined_large_answers_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    f->pipe_size = 64 * 1024;
    fx_run(f, c_pipeline);
    assert_pipeline_in_order(f);
    fx_free(f);
}

static void test_https_100_pipelined_gets_answered_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new_tls();
    f->pipe_size = 64;
    fx_run(f, c_pipeline);
    assert_pipeline_in_order(f);
    fx_free(f);
}

static void test_https_100_pipelined_large_answers_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new_tls();
    f->pipe_size = 64 * 1024;
    fx_run(f, c_pipeline);
    assert_pipeline_in_order(f);
    fx_free(f);
}

/* The same with every answer given later, from a timer: parsing resumes from http_respond
 * as well as from the drained backlog. */
static void test_https_100_pipelined_answers_given_later_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new_tls();
    f->pipe_size = 60000;
    f->pipe_later = 1;
    fx_run(f, c_pipeline);
    assert_pipeline_in_order(f);
    assert_int_equal(f->late_responses, PIPE_N);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_get_query_params_and_percent_decoding),
        cmocka_unit_test(test_http_post_body_reaches_handler),
        cmocka_unit_test(test_http_respond_with_the_request_body_itself),
        cmocka_unit_test(test_http_chunked_body_is_reassembled),
        cmocka_unit_test(test_http_keep_alive_serves_two_requests_on_one_connection),
        cmocka_unit_test(test_http_pipelined_requests_answered_in_order),
        cmocka_unit_test(test_http_pipelined_burst_with_slow_reader),
        cmocka_unit_test(test_http_body_over_limit_gets_413_and_close),
        cmocka_unit_test(test_http_chunked_body_over_limit_gets_413),
        cmocka_unit_test(test_http_long_url_gets_414),
        cmocka_unit_test(test_http_headers_over_limit_get_431),
        cmocka_unit_test(test_http_garbage_and_bad_escapes_get_400),
        cmocka_unit_test(test_http_invalid_utf8_in_path_or_query_gets_400_naming_it),
        cmocka_unit_test(test_http_header_lost_to_memory_answers_500),
        cmocka_unit_test(test_http_response_without_memory_answers_500),
        cmocka_unit_test(test_http_handler_may_respond_later),
        cmocka_unit_test(test_http_client_gone_before_delayed_response),
        cmocka_unit_test(test_http_stop_with_request_in_flight),
        cmocka_unit_test(test_http_connection_close_and_http10_rules),
        cmocka_unit_test(test_http_204_and_head_have_no_body),
        cmocka_unit_test(test_http_idle_connection_is_closed),
        cmocka_unit_test(test_http_connections_past_the_cap_are_closed),
        cmocka_unit_test(test_https_serves_requests_through_tls),
        cmocka_unit_test(test_http_100_pipelined_gets_answered_in_order),
        cmocka_unit_test(test_http_100_pipelined_large_answers_in_order),
        cmocka_unit_test(test_https_100_pipelined_gets_answered_in_order),
        cmocka_unit_test(test_https_100_pipelined_large_answers_in_order),
        cmocka_unit_test(test_https_100_pipelined_answers_given_later_in_order),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    pki_cleanup();
    return failed;
}
