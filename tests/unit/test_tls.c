/* Unit tests for common/tls.c: real handshakes over loopback on one uv loop, with
 * certificates made at run time by deploy/pki.sh in a temporary directory. Runs from
 * tests/unit. Every loop is bounded by a 10 s timer that fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"

#define PKI             "../../deploy/pki.sh"
#define TEST_TIMEOUT_MS 10000
#define MIB             ((size_t)1 << 20)

static char g_dir[64]; /* the temporary PKI directory */

/* ---- fixtures ------------------------------------------------------------------------ */

static int run_pki(const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s %s >>%s/pki.log 2>&1", PKI, args, g_dir);
    return system(cmd);
}

static int setup_pki(void **state)
{
    char args[256];
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_tls.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(args, sizeof(args), "init %s", g_dir);
    if (run_pki(args) != 0)
        return -1;
    snprintf(args, sizeof(args),
             "issue %s federal province 1 municipality 10703 municipality 10402", g_dir);
    if (run_pki(args) != 0)
        return -1;
    snprintf(args, sizeof(args), "foreign %s", g_dir);
    return run_pki(args) == 0 ? 0 : -1;
}

static int teardown_pki(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

/* A context for stem (e.g. "province-1" or "foreign/municipality-10703"), trusting our CA,
 * checking our CRL when with_crl is set. */
static tls_ctx *make_ctx(enum tls_mode mode, const char *stem, int with_crl)
{
    char ca[128], crt[128], key[128], crl[128], err[256];
    tls_ctx *ctx = NULL;
    path_of(ca, sizeof(ca), "ca.crt");
    path_of(crl, sizeof(crl), "crl.pem");
    snprintf(crt, sizeof(crt), "%s/%s.crt", g_dir, stem);
    snprintf(key, sizeof(key), "%s/%s.key", g_dir, stem);
    tls_ctx_opts o = {.mode = mode,
                      .ca_file = ca,
                      .cert_file = crt,
                      .key_file = key,
                      .crl_file = with_crl ? crl : NULL};
    int r = tls_ctx_new(&ctx, &o, err, sizeof(err));
    if (r != 0)
        print_error("tls_ctx_new(%s): %s\n", stem, err);
    assert_int_equal(r, 0);
    return ctx;
}

/* ---- harness: one listener, one server conn, one client conn, one timeout ------------- */

typedef struct harness harness;

typedef struct side {
    harness *h;
    tls_conn *conn;
    int ready;
    int closed;
    int status;
    int drains;
    char peer[32];
    char serial[48]; /* the peer certificate's, hex */
    char err[160];
    size_t rx;
    int rx_bad;           /* a received byte did not match the pattern */
    int echo;             /* write back whatever arrives */
    int pause_on_ready;   /* tls_conn_pause in on_ready, tls_conn_resume 300 ms later */
    size_t close_at_rx;   /* close once this many bytes arrived (0: never) */
    int close_on_ready;   /* close right after on_ready */
    size_t send_on_ready; /* pattern bytes to write in on_ready */
    tls_limits limits;    /* applied in on_ready when non-zero */
    int write_rc;         /* result of the on_ready write */
    int idle_close;       /* at close_at_rx: wait TLS_IDLE_TRIM_MS and more, then close */
    size_t peer_busy;     /* the other side's tls_conn_buffered when close_at_rx was reached */
    size_t peer_buffered; /* and when it closed */
} side;

struct harness {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t timeout;
    uv_timer_t resume; /* resumes the server after pause_on_ready */
    tls_ctx *sctx;
    side srv, cli;
    int port;
    int want_closed;
    int n_closed;
    int timed_out;
    int finished;
};

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131u + (i >> 9));
}

static void fill_pattern(uint8_t *buf, size_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(off + i);
}

static void harness_finish(harness *h)
{
    if (h->finished)
        return;
    h->finished = 1;
    uv_close((uv_handle_t *)&h->listener, NULL);
    uv_close((uv_handle_t *)&h->timeout, NULL);
    uv_close((uv_handle_t *)&h->resume, NULL);
}

static void note_closed(harness *h)
{
    if (++h->n_closed >= h->want_closed)
        harness_finish(h);
}

static void on_timeout(uv_timer_t *t)
{
    harness *h = t->data;
    h->timed_out = 1;
    if (h->srv.conn && !h->srv.closed)
        tls_conn_close(h->srv.conn);
    if (h->cli.conn && !h->cli.closed)
        tls_conn_close(h->cli.conn);
    harness_finish(h);
}

static void resume_server(uv_timer_t *t)
{
    harness *h = t->data;
    /* Nothing may have been delivered while paused. */
    assert_int_equal(h->srv.rx, 0);
    if (h->srv.conn)
        tls_conn_resume(h->srv.conn);
}

/* A quiet while after close_at_rx: what the other side's BIOs hold now, then close. */
static void idle_close(uv_timer_t *t)
{
    side *s = t->data;
    t->data = s->h;
    side *other = s == &s->h->cli ? &s->h->srv : &s->h->cli;
    s->peer_buffered = other->conn ? tls_conn_buffered(other->conn) : SIZE_MAX;
    if (s->conn)
        tls_conn_close(s->conn);
}

static void side_ready(tls_conn *c, void *ud)
{
    side *s = ud;
    const char *p = tls_conn_peer(c);
    const char *serial = tls_conn_peer_serial(c);
    s->ready = 1;
    snprintf(s->peer, sizeof(s->peer), "%s", p ? p : "");
    snprintf(s->serial, sizeof(s->serial), "%s", serial ? serial : "");
    if (s->limits.high_water)
        tls_conn_set_limits(c, &s->limits);
    if (s->pause_on_ready) {
        tls_conn_pause(c);
        uv_timer_start(&s->h->resume, resume_server, 300, 0);
    }
    if (s->send_on_ready) {
        uint8_t *buf = malloc(s->send_on_ready);
        assert_non_null(buf);
        fill_pattern(buf, 0, s->send_on_ready);
        s->write_rc = tls_conn_write(c, buf, s->send_on_ready);
        free(buf);
    }
    if (s->close_on_ready)
        tls_conn_close(c);
}

static void side_data(tls_conn *c, const uint8_t *buf, size_t len, void *ud)
{
    side *s = ud;
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern(s->rx + i))
            s->rx_bad = 1;
    s->rx += len;
    if (s->echo)
        assert_int_equal(tls_conn_write(c, buf, len), 0);
    if (s->close_at_rx && s->rx >= s->close_at_rx && !s->peer_busy) {
        side *other = s == &s->h->cli ? &s->h->srv : &s->h->cli;
        s->peer_busy = other->conn ? tls_conn_buffered(other->conn) : SIZE_MAX;
        if (s->idle_close) {
            s->h->resume.data = s;
            uv_timer_start(&s->h->resume, idle_close, TLS_IDLE_TRIM_MS + 300, 0);
        } else {
            tls_conn_close(c);
        }
    }
}

static void side_drain(tls_conn *c, void *ud)
{
    side *s = ud;
    (void)c;
    s->drains++;
}

static void side_close(tls_conn *c, int status, void *ud)
{
    side *s = ud;
    assert_int_equal(s->closed, 0);
    s->closed = 1;
    s->status = status;
    snprintf(s->err, sizeof(s->err), "%s", tls_conn_error(c));
    s->conn = NULL;
    note_closed(s->h);
}

static const tls_conn_cb side_cb = {side_ready, side_data, side_drain, side_close};

static void on_connection(uv_stream_t *server, int status)
{
    harness *h = server->data;
    assert_int_equal(status, 0);
    if (h->srv.conn || h->srv.closed) {
        /* One server conn per harness run; later arrivals are a test bug. */
        fail_msg("unexpected second connection");
    }
    assert_int_equal(tls_conn_accept(&h->srv.conn, h->sctx, server, &side_cb, &h->srv), 0);
}

/* Starts a loop with a listener on 127.0.0.1 (ephemeral port) using sctx. */
static void harness_init(harness *h, tls_ctx *sctx)
{
    struct sockaddr_in a;
    struct sockaddr_storage bound;
    int len = (int)sizeof(bound);

    memset(h, 0, sizeof(*h));
    h->sctx = sctx;
    h->srv.h = h;
    h->cli.h = h;
    h->want_closed = 2;
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_tcp_init(&h->loop, &h->listener), 0);
    h->listener.data = h;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_bind(&h->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&h->listener, 16, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len), 0);
    h->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    assert_int_equal(uv_timer_init(&h->loop, &h->timeout), 0);
    h->timeout.data = h;
    assert_int_equal(uv_timer_start(&h->timeout, on_timeout, TEST_TIMEOUT_MS, 0), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->resume), 0);
    h->resume.data = h;
}

static void harness_connect(harness *h, tls_ctx *cctx, const char *expect_peer)
{
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", h->port, &a), 0);
    assert_int_equal(tls_conn_connect(&h->cli.conn, cctx, &h->loop, (const struct sockaddr *)&a,
                                      expect_peer, &side_cb, &h->cli),
                     0);
}

/* Runs until want_closed conns have closed (or the timeout fired) and closes the loop. */
static void harness_run(harness *h)
{
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    assert_false(h->timed_out);
}

/* ---- mutual TLS ---------------------------------------------------------------------- */

static void test_tls_mutual_echo_1mib_with_identities(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    harness h;
    harness_init(&h, sctx);
    h.srv.echo = 1;
    h.cli.send_on_ready = MIB;
    h.cli.close_at_rx = MIB;
    h.cli.idle_close = 1;
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);

    assert_true(h.srv.ready && h.cli.ready);
    assert_string_equal(h.srv.peer, "municipality:10703");
    assert_string_equal(h.cli.peer, "province:1");
    assert_int_equal(h.cli.write_rc, 0);
    assert_int_equal(h.srv.rx, MIB);
    assert_int_equal(h.cli.rx, MIB);
    assert_false(h.srv.rx_bad);
    assert_false(h.cli.rx_bad);
    assert_int_equal(h.cli.status, 0);
    assert_int_equal(h.srv.status, 0);
    /* When the client had everything back, the server's memory BIOs still held the buffers
     * of its 64 KiB reads; once the connection had been quiet, they were given back. */
    assert_true(h.cli.peer_busy > 2 * TLS_BIO_KEEP);
    assert_true(h.cli.peer_buffered <= 2 * TLS_BIO_KEEP);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_refuses_client_cert_from_foreign_ca(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "foreign/municipality-10703", 0);
    harness h;
    harness_init(&h, sctx);
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);

    assert_false(h.srv.ready);
    assert_int_not_equal(h.srv.status, 0);
    assert_non_null(strstr(h.srv.err, "unable to get local issuer certificate"));
    assert_int_not_equal(h.cli.status, 0);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_refuses_cert_revoked_after_crl_reload(void **state)
{
    char args[128], err[256];
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10402", 1);
    int64_t before = tls_ctx_crl_next_update(sctx);
    assert_true(before > (int64_t)time(NULL));

    harness h;
    harness_init(&h, sctx);
    h.cli.close_on_ready = 1;
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);
    assert_true(h.srv.ready);
    assert_int_equal(h.srv.status, 0);

    snprintf(args, sizeof(args), "revoke %s municipality-10402", g_dir);
    assert_int_equal(run_pki(args), 0);
    assert_int_equal(tls_ctx_reload_crl(sctx, err, sizeof(err)), 0);
    assert_true(tls_ctx_crl_next_update(sctx) >= before);

    harness_init(&h, sctx);
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);
    assert_false(h.srv.ready);
    assert_int_not_equal(h.srv.status, 0);
    /* Naming the certificate offered, which the session never took. */
    assert_non_null(strstr(h.srv.err, "certificate revoked (municipality:10402, serial "));
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_crl_reload_keeps_old_store_on_bad_file(void **state)
{
    char err[256], crl[128], saved[160], cmd[512];
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    int64_t before = tls_ctx_crl_next_update(sctx);
    path_of(crl, sizeof(crl), "crl.pem");
    snprintf(saved, sizeof(saved), "%s.saved", crl);
    /* The foreign CA's CRL is well-formed but signed by the wrong key. */
    snprintf(cmd, sizeof(cmd), "cp %s %s && cp %s/foreign/crl.pem %s", crl, saved, g_dir, crl);
    assert_int_equal(system(cmd), 0);
    int r = tls_ctx_reload_crl(sctx, err, sizeof(err));
    snprintf(cmd, sizeof(cmd), "mv %s %s", saved, crl);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(r, UV_EINVAL);
    assert_non_null(strstr(err, "not signed by a CA"));
    assert_true(tls_ctx_crl_next_update(sctx) == before);
    tls_ctx_free(sctx);
}

static void test_tls_client_refuses_unexpected_server_identity(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    harness h;
    harness_init(&h, sctx);
    harness_connect(&h, cctx, "province:2");
    harness_run(&h);

    assert_false(h.cli.ready);
    assert_int_equal(h.cli.status, UV_EPERM);
    assert_string_equal(h.cli.err, "peer is province:1, expected province:2");
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_write_before_handshake_is_refused(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    harness h;
    harness_init(&h, sctx);
    h.cli.close_on_ready = 1;
    harness_connect(&h, cctx, "province:1");
    const uint8_t b[4] = {1, 2, 3, 4};
    assert_int_equal(tls_conn_write(h.cli.conn, b, sizeof(b)), UV_ENOTCONN);
    harness_run(&h);
    assert_true(h.cli.ready);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_write_past_hard_limit_is_refused(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    harness h;
    harness_init(&h, sctx);
    h.cli.limits = (tls_limits){.high_water = 16 * 1024, .hard_limit = 64 * 1024};
    h.cli.send_on_ready = 128 * 1024;
    h.cli.close_on_ready = 1;
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);
    assert_int_equal(h.cli.write_rc, UV_ENOBUFS);
    assert_int_equal(h.srv.rx, 0);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_pause_holds_data_until_resume(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    harness h;
    harness_init(&h, sctx);
    h.srv.pause_on_ready = 1;
    h.srv.close_at_rx = 256 * 1024;
    h.cli.send_on_ready = 256 * 1024;
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);
    assert_int_equal(h.srv.rx, 256 * 1024);
    assert_false(h.srv.rx_bad);
    assert_int_equal(h.cli.status, 0);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_high_water_drains_and_calls_on_drain(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    harness h;
    harness_init(&h, sctx);
    /* The server does not read for 300 ms, so the client's queue backs up past the mark. */
    h.srv.pause_on_ready = 1;
    h.srv.close_at_rx = 32 * MIB;
    h.cli.limits = (tls_limits){.high_water = 256 * 1024, .hard_limit = 64 * MIB};
    h.cli.send_on_ready = 32 * MIB;
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);
    assert_int_equal(h.cli.write_rc, 0);
    assert_int_equal(h.srv.rx, 32 * MIB);
    assert_false(h.srv.rx_bad);
    assert_true(h.cli.drains >= 1);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_tls_clean_close_delivers_queued_data(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    harness h;
    harness_init(&h, sctx);
    /* The server reads nothing for 300 ms, so most of the data is still queued when the
     * client closes right after writing it. */
    h.srv.pause_on_ready = 1;
    h.cli.send_on_ready = 16 * MIB;
    h.cli.close_on_ready = 1;
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);
    assert_int_equal(h.cli.write_rc, 0);
    assert_int_equal(h.srv.rx, 16 * MIB);
    assert_false(h.srv.rx_bad);
    assert_int_equal(h.srv.status, 0);
    assert_int_equal(h.cli.status, 0);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

/* ---- garbage instead of a ClientHello ------------------------------------------------ */

typedef struct raw_client {
    harness *h;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    char garbage[4096];
    int got_eof;
} raw_client;

static void raw_alloc(uv_handle_t *hd, size_t n, uv_buf_t *buf)
{
    static char b[4096];
    (void)hd;
    (void)n;
    *buf = uv_buf_init(b, sizeof(b));
}

static void raw_closed(uv_handle_t *hd)
{
    raw_client *rc = hd->data;
    note_closed(rc->h);
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    raw_client *rc = s->data;
    (void)buf;
    if (n < 0) {
        rc->got_eof = 1;
        uv_close((uv_handle_t *)s, raw_closed);
    }
}

static void raw_connected(uv_connect_t *req, int status)
{
    raw_client *rc = req->data;
    assert_int_equal(status, 0);
    for (size_t i = 0; i < sizeof(rc->garbage); i++)
        rc->garbage[i] = (char)(i * 7 + 3);
    uv_buf_t b = uv_buf_init(rc->garbage, sizeof(rc->garbage));
    assert_int_equal(uv_write(&rc->wreq, (uv_stream_t *)&rc->tcp, &b, 1, NULL), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&rc->tcp, raw_alloc, raw_read), 0);
}

static void test_tls_server_closes_client_sending_garbage(void **state)
{
    (void)state;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 1);
    harness h;
    raw_client rc = {.h = &h};
    struct sockaddr_in a;
    harness_init(&h, sctx);
    uv_tcp_init(&h.loop, &rc.tcp);
    rc.tcp.data = &rc;
    rc.creq.data = &rc;
    uv_ip4_addr("127.0.0.1", h.port, &a);
    assert_int_equal(uv_tcp_connect(&rc.creq, &rc.tcp, (const struct sockaddr *)&a, raw_connected),
                     0);
    harness_run(&h);
    assert_false(h.srv.ready);
    assert_true(h.srv.closed);
    assert_int_equal(h.srv.status, UV_EPROTO);
    assert_true(h.srv.err[0] != '\0');
    assert_true(rc.got_eof);
    tls_ctx_free(sctx);
}

/* ---- a plain blocking OpenSSL peer in a thread --------------------------------------- */

typedef struct ossl_client {
    int port;
    int version; /* the only protocol version offered */
    const char *ciphers;
    const char *cert; /* stem of a client certificate to present, or NULL */
    int connected;
    int negotiated_version;
    int chain_len; /* certificates the server sent */
    char cipher[64];
    char reply[8];
} ossl_client;

/* Loads certificate and key stem (e.g. "province-1") of the test PKI into ctx. */
static void use_cert(SSL_CTX *ctx, const char *stem)
{
    char crt[128], key[128];
    snprintf(crt, sizeof(crt), "%s/%s.crt", g_dir, stem);
    snprintf(key, sizeof(key), "%s/%s.key", g_dir, stem);
    SSL_CTX_use_certificate_chain_file(ctx, crt);
    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM);
}

static void *ossl_client_run(void *arg)
{
    ossl_client *oc = arg;
    char ca[128];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)oc->port)};
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return NULL;
    }
    path_of(ca, sizeof(ca), "ca.crt");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, oc->version);
    SSL_CTX_set_max_proto_version(ctx, oc->version);
    SSL_CTX_set_cipher_list(ctx, oc->ciphers);
    SSL_CTX_load_verify_locations(ctx, ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (oc->cert)
        use_cert(ctx, oc->cert);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
        oc->connected = 1;
        oc->negotiated_version = SSL_version(ssl);
        /* On a client the chain begins with the server's own certificate. */
        oc->chain_len = sk_X509_num(SSL_get_peer_cert_chain(ssl));
        snprintf(oc->cipher, sizeof(oc->cipher), "%s", SSL_get_cipher_name(ssl));
        if (SSL_write(ssl, "ping", 4) == 4) {
            int n = SSL_read(ssl, oc->reply, (int)sizeof(oc->reply) - 1);
            if (n > 0)
                oc->reply[n] = '\0';
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    close(fd);
    return NULL;
}

/* Runs one blocking client against an HTTPS_SERVER until the server conn closes. */
static void https_probe(harness *h, ossl_client *oc)
{
    pthread_t t;
    tls_ctx *sctx = make_ctx(TLS_MODE_HTTPS_SERVER, "federal", 0);
    harness_init(h, sctx);
    h->want_closed = 1;
    h->srv.echo = 1;
    oc->port = h->port;
    assert_int_equal(pthread_create(&t, NULL, ossl_client_run, oc), 0);
    harness_run(h);
    pthread_join(t, NULL);
    tls_ctx_free(sctx);
}

/* A plain OpenSSL server that accepts one mutual TLS connection and notes what the client
 * sent. */
typedef struct ossl_server {
    int fd; /* listening, bound to 127.0.0.1 */
    int port;
    int accepted;
    int extra_certs; /* certificates the client sent beyond its own */
    char subject[128];
} ossl_server;

static void *ossl_server_run(void *arg)
{
    ossl_server *os = arg;
    char ca[128], buf[64];
    struct timeval tv = {.tv_sec = 10};
    int fd = accept(os->fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    path_of(ca, sizeof(ca), "ca.crt");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_load_verify_locations(ctx, ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    use_cert(ctx, "province-1");
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        os->accepted = 1;
        /* On a server the chain leaves out the client's own certificate. */
        os->extra_certs = sk_X509_num(SSL_get_peer_cert_chain(ssl));
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (peer)
            X509_NAME_oneline(X509_get_subject_name(peer), os->subject, sizeof(os->subject));
        X509_free(peer);
        while (SSL_read(ssl, buf, sizeof(buf)) > 0)
            ;
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    close(fd);
    return NULL;
}

/* Between tiers each side sends its certificate alone, not a chain OpenSSL builds from the
 * CA file: a hub would keep a parsed copy of the CA in every session. */
static void test_tls_mutual_server_sends_its_certificate_alone(void **state)
{
    (void)state;
    harness h;
    pthread_t t;
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 0);
    ossl_client oc = {
        .version = TLS1_3_VERSION, .ciphers = "DEFAULT", .cert = "municipality-10703"};
    harness_init(&h, sctx);
    h.want_closed = 1;
    h.srv.echo = 1;
    oc.port = h.port;
    assert_int_equal(pthread_create(&t, NULL, ossl_client_run, &oc), 0);
    harness_run(&h);
    pthread_join(t, NULL);
    tls_ctx_free(sctx);
    assert_true(oc.connected);
    assert_string_equal(h.srv.peer, "municipality:10703");
    assert_string_equal(oc.reply, "ping");
    assert_int_equal(oc.chain_len, 1);
}

static void test_tls_mutual_client_sends_its_certificate_alone(void **state)
{
    (void)state;
    harness h;
    pthread_t t;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    ossl_server os = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    assert_true(os.fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(os.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(os.fd, 1), 0);
    assert_int_equal(getsockname(os.fd, (struct sockaddr *)&a, &alen), 0);
    assert_int_equal(pthread_create(&t, NULL, ossl_server_run, &os), 0);

    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "province-1", 0);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 0);
    harness_init(&h, sctx); /* its listener stays unused */
    h.want_closed = 1;
    h.cli.close_on_ready = 1;
    assert_int_equal(tls_conn_connect(&h.cli.conn, cctx, &h.loop, (const struct sockaddr *)&a,
                                      "province:1", &side_cb, &h.cli),
                     0);
    harness_run(&h);
    pthread_join(t, NULL);
    close(os.fd);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
    assert_true(h.cli.ready);
    assert_true(os.accepted);
    assert_non_null(strstr(os.subject, "10703"));
    assert_int_equal(os.extra_certs, 0);
}

static void test_tls_https_refuses_tls11_client(void **state)
{
    (void)state;
    harness h;
    /* OpenSSL 3 offers TLS 1.1 only at security level 0. */
    ossl_client oc = {.version = TLS1_1_VERSION, .ciphers = "DEFAULT:@SECLEVEL=0"};
    https_probe(&h, &oc);
    assert_false(oc.connected);
    assert_false(h.srv.ready);
    assert_int_equal(h.srv.status, UV_EPROTO);
    assert_string_equal(h.srv.err, "unsupported protocol");
}

static void test_tls_https_accepts_tls12_ecdhe_aead(void **state)
{
    (void)state;
    harness h;
    ossl_client oc = {.version = TLS1_2_VERSION, .ciphers = "DEFAULT"};
    https_probe(&h, &oc);
    assert_true(oc.connected);
    assert_int_equal(oc.negotiated_version, TLS1_2_VERSION);
    assert_non_null(strstr(oc.cipher, "ECDHE-ECDSA-"));
    assert_true(strstr(oc.cipher, "GCM") || strstr(oc.cipher, "CHACHA20-POLY1305"));
    assert_string_equal(oc.reply, "ping");
    assert_true(h.srv.ready);
    assert_string_equal(h.srv.peer, "");
    assert_int_equal(h.srv.status, 0);
}

static void test_tls_https_refuses_tls12_cbc_suite(void **state)
{
    (void)state;
    harness h;
    ossl_client oc = {.version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-SHA256"};
    https_probe(&h, &oc);
    assert_false(oc.connected);
    assert_false(h.srv.ready);
    assert_int_equal(h.srv.status, UV_EPROTO);
}

/* cp FROM.crt/.key over TO.crt/.key in the PKI directory (whole stems, or one of the two). */
static void copy_pki(const char *from, const char *to, const char *ext)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp %s/%s.%s %s/%s.%s", g_dir, from, ext, g_dir, to, ext);
    assert_int_equal(system(cmd), 0);
}

/* The serial of the certificate sctx presents now, as a client without a CRL sees it. */
static void served_serial(tls_ctx *sctx, tls_ctx *cctx, char *out, size_t len)
{
    harness h;
    harness_init(&h, sctx);
    h.srv.echo = 1;
    h.cli.send_on_ready = 100;
    h.cli.close_at_rx = 100;
    harness_connect(&h, cctx, "province:1");
    harness_run(&h);
    assert_true(h.cli.ready);
    snprintf(out, len, "%s", h.cli.serial);
}

/* Certificate rotation: a reload takes a new certificate of the same identity; a key that
 * does not match (a copy half done), another identity, another CA's certificate or a revoked
 * one leave the context presenting what it did. Last in the list: it re-issues province 1,
 * revoking the certificate the other tests use. */
static void test_tls_reload_cert_takes_a_rotation_and_keeps_the_old_on_a_bad_pair(void **state)
{
    (void)state;
    char serial[48], first[48], seen[48], err[600], args[256];
    copy_pki("province-1", "rot", "crt");
    copy_pki("province-1", "rot", "key");
    copy_pki("province-1", "old", "crt");
    copy_pki("province-1", "old", "key");
    tls_ctx *sctx = make_ctx(TLS_MODE_MUTUAL_SERVER, "rot", 1);
    tls_ctx *plain = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 0);
    assert_int_equal(tls_ctx_reload_cert(sctx, first, sizeof(first), err, sizeof(err)), 0);
    /* The rotation: the old certificate revoked, the CRL loaded. */
    snprintf(args, sizeof(args), "issue --force %s province 1", g_dir);
    assert_int_equal(run_pki(args), 0);
    assert_int_equal(tls_ctx_reload_crl(sctx, err, sizeof(err)), 0);
    /* The new certificate copied first: its key is still the old one's. */
    copy_pki("province-1", "rot", "crt");
    assert_int_not_equal(tls_ctx_reload_cert(sctx, serial, sizeof(serial), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "rot.key: key does not match certificate"));
    /* Another identity with its own key. */
    copy_pki("municipality-10703", "rot", "crt");
    copy_pki("municipality-10703", "rot", "key");
    assert_int_not_equal(tls_ctx_reload_cert(sctx, serial, sizeof(serial), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "names municipality:10703, but this process serves as "
                                "province:1"));
    /* The same identity from another CA. */
    snprintf(args, sizeof(args), "init %s/other", g_dir);
    assert_int_equal(run_pki(args), 0);
    snprintf(args, sizeof(args), "issue %s/other province 1", g_dir);
    assert_int_equal(run_pki(args), 0);
    copy_pki("other/province-1", "rot", "crt");
    copy_pki("other/province-1", "rot", "key");
    assert_int_not_equal(tls_ctx_reload_cert(sctx, serial, sizeof(serial), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "unable to get local issuer certificate"));
    /* The old pair back (a backup restored): revoked by the CRL in use. */
    copy_pki("old", "rot", "crt");
    copy_pki("old", "rot", "key");
    assert_int_not_equal(tls_ctx_reload_cert(sctx, serial, sizeof(serial), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "certificate revoked"));
    /* An empty certificate file (a copy begun): named as what it is not. */
    char empty[160];
    snprintf(empty, sizeof(empty), ": > %s/rot.crt", g_dir);
    assert_int_equal(system(empty), 0);
    assert_int_not_equal(tls_ctx_reload_cert(sctx, serial, sizeof(serial), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "rot.crt: not a PEM certificate"));
    /* Through all that, the certificate presented is the first. */
    served_serial(sctx, plain, seen, sizeof(seen));
    assert_string_equal(seen, first);
    /* The whole new pair: taken, presented, and a client holding the CRL accepts it. */
    copy_pki("province-1", "rot", "crt");
    copy_pki("province-1", "rot", "key");
    assert_int_equal(tls_ctx_reload_cert(sctx, serial, sizeof(serial), err, sizeof(err)), 0);
    assert_string_not_equal(serial, first);
    served_serial(sctx, plain, seen, sizeof(seen));
    assert_string_equal(seen, serial);
    tls_ctx *cctx = make_ctx(TLS_MODE_MUTUAL_CLIENT, "municipality-10703", 1);
    served_serial(sctx, cctx, seen, sizeof(seen));
    assert_string_equal(seen, serial);
    tls_ctx_free(sctx);
    tls_ctx_free(plain);
    tls_ctx_free(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_mutual_echo_1mib_with_identities),
        cmocka_unit_test(test_tls_refuses_client_cert_from_foreign_ca),
        cmocka_unit_test(test_tls_refuses_cert_revoked_after_crl_reload),
        cmocka_unit_test(test_tls_crl_reload_keeps_old_store_on_bad_file),
        cmocka_unit_test(test_tls_client_refuses_unexpected_server_identity),
        cmocka_unit_test(test_tls_write_before_handshake_is_refused),
        cmocka_unit_test(test_tls_write_past_hard_limit_is_refused),
        cmocka_unit_test(test_tls_pause_holds_data_until_resume),
        cmocka_unit_test(test_tls_high_water_drains_and_calls_on_drain),
        cmocka_unit_test(test_tls_clean_close_delivers_queued_data),
        cmocka_unit_test(test_tls_server_closes_client_sending_garbage),
        cmocka_unit_test(test_tls_mutual_server_sends_its_certificate_alone),
        cmocka_unit_test(test_tls_mutual_client_sends_its_certificate_alone),
        cmocka_unit_test(test_tls_https_refuses_tls11_client),
        cmocka_unit_test(test_tls_https_accepts_tls12_ecdhe_aead),
        cmocka_unit_test(test_tls_https_refuses_tls12_cbc_suite),
        cmocka_unit_test(test_tls_reload_cert_takes_a_rotation_and_keeps_the_old_on_a_bad_pair),
    };
    /* A peer that vanishes mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
