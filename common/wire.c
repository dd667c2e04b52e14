#include "wire.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "utf8.h"

struct wire {
    tls_conn *conn;
    frame_reader reader;
    size_t max_frame; /* frames read */
    size_t send_max;  /* frames sent */
    wire_cb cb;
    void *ud;
    int closing;
    frame_bad_records bad; /* of the envelope being handled */
};

static int wire__on_frame(void *ud, const uint8_t *payload, size_t len)
{
    wire *w = ud;
    Reint__V1__Envelope *env = NULL;
    char why[160], msg[200];
    int rc = frame_unpack(payload, len, &env, &w->bad, why, sizeof(why));
    if (rc == REINT_ENOMEM) {
        wire_fail(w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
        return -1;
    }
    if (rc != 0) {
        log_warn("%s (%s): malformed envelope of %zu bytes: %s", wire_peer(w), wire_addr(w), len,
                 why);
        snprintf(msg, sizeof(msg), "malformed envelope: %s", why);
        wire_fail(w, REINT__V1__ERROR_CODE__ERROR_CODE_MALFORMED, msg);
        return -1;
    }
    rc = w->cb.on_envelope(w, env, w->ud);
    reint__v1__envelope__free_unpacked(env, NULL);
    frame_bad_records_free(&w->bad); /* rare: an idle connection keeps none */
    return rc != 0 || w->closing ? -1 : 0;
}

static void wire__on_ready(tls_conn *c, void *ud)
{
    (void)c;
    wire *w = ud;
    if (w->cb.on_ready)
        w->cb.on_ready(w, w->ud);
}

static void wire__on_data(tls_conn *c, const uint8_t *buf, size_t len, void *ud)
{
    (void)c;
    wire *w = ud;
    if (w->closing)
        return;
    int rc = frame_reader_feed(&w->reader, buf, len, wire__on_frame, w);
    if (rc == REINT_ETOOBIG) {
        log_warn("%s (%s): frame above the %zu-byte maximum refused", wire_peer(w), wire_addr(w),
                 w->max_frame);
        wire_fail(w, REINT__V1__ERROR_CODE__ERROR_CODE_FRAME_TOO_LARGE,
                  "frame above the maximum size");
    } else if (rc == REINT_ENOMEM) {
        wire_fail(w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
    }
}

static void wire__on_drain(tls_conn *c, void *ud)
{
    (void)c;
    wire *w = ud;
    if (!w->closing && w->cb.on_drain)
        w->cb.on_drain(w, w->ud);
}

static void wire__on_close(tls_conn *c, int status, void *ud)
{
    (void)c;
    wire *w = ud;
    w->closing = 1;
    w->cb.on_close(w, status, w->ud);
    frame_reader_free(&w->reader);
    frame_bad_records_free(&w->bad);
    free(w);
}

static const tls_conn_cb wire__tls_cb = {
    .on_ready = wire__on_ready,
    .on_data = wire__on_data,
    .on_drain = wire__on_drain,
    .on_close = wire__on_close,
};

static wire *wire__new(size_t max_frame, const wire_cb *cb, void *ud)
{
    wire *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->max_frame = max_frame ? max_frame : FRAME_DEFAULT_MAX;
    w->send_max = w->max_frame;
    frame_reader_init(&w->reader, w->max_frame);
    w->cb = *cb;
    w->ud = ud;
    return w;
}

int wire_accept(wire **out, tls_ctx *ctx, uv_stream_t *server, size_t max_frame, const wire_cb *cb,
                void *ud)
{
    wire *w = wire__new(max_frame, cb, ud);
    if (w == NULL)
        return UV_ENOMEM;
    int rc = tls_conn_accept(&w->conn, ctx, server, &wire__tls_cb, w);
    if (rc != 0) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int wire_connect(wire **out, tls_ctx *ctx, uv_loop_t *loop, const struct sockaddr *addr,
                 const char *expect_peer, size_t max_frame, const wire_cb *cb, void *ud)
{
    wire *w = wire__new(max_frame, cb, ud);
    if (w == NULL)
        return UV_ENOMEM;
    int rc = tls_conn_connect(&w->conn, ctx, loop, addr, expect_peer, &wire__tls_cb, w);
    if (rc != 0) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int wire_send_raw(wire *w, const uint8_t *buf, size_t len)
{
    if (w->closing)
        return UV_ENOTCONN;
    int rc = tls_conn_write(w->conn, buf, len);
    if (rc != 0) {
        log_warn("%s (%s): write failed: %s", wire_peer(w), wire_addr(w), uv_strerror(rc));
        wire_close(w);
    }
    return rc;
}

int wire_send(wire *w, const Reint__V1__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = frame_pack(env, w->send_max, &buf, &len);
    if (rc != 0) {
        log_error("%s: cannot frame an envelope (%d)", wire_peer(w), rc);
        return rc;
    }
    rc = wire_send_raw(w, buf, len);
    free(buf);
    return rc;
}

void wire_set_read_max(wire *w, size_t max)
{
    w->max_frame = max ? max : FRAME_DEFAULT_MAX;
    frame_reader_set_max(&w->reader, w->max_frame);
}

void wire_set_send_max(wire *w, size_t max)
{
    w->send_max = max ? max : FRAME_DEFAULT_MAX;
}

void wire_fail(wire *w, Reint__V1__ErrorCode code, const char *message)
{
    if (w->closing)
        return;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Error err = REINT__V1__ERROR__INIT;
    char text[512]; /* the message may quote the peer's bytes: a protobuf string is UTF-8 */
    utf8_scrub(text, sizeof(text), message);
    err.code = (uint32_t)code;
    err.message = text;
    err.clock = clock_now_ms();
    env.msg_case = REINT__V1__ENVELOPE__MSG_ERROR;
    env.error = &err;
    wire_send(w, &env);
    wire_close(w);
}

void wire_close(wire *w)
{
    if (w->closing)
        return;
    w->closing = 1;
    tls_conn_close(w->conn);
}

const char *wire_peer_serial(const wire *w)
{
    return tls_conn_peer_serial(w->conn);
}

const char *wire_bad_record(wire *w, size_t index)
{
    return frame_bad_record_field(&w->bad, index);
}

const char *wire_peer(const wire *w)
{
    const char *p = tls_conn_peer(w->conn);
    return p ? p : "(unauthenticated)";
}

int wire_verify_again(wire *w, tls_ctx *ctx)
{
    return tls_conn_verify_again(w->conn, ctx);
}

const char *wire_tls_error(const wire *w)
{
    return tls_conn_error(w->conn);
}

int wire_superseded(const wire *w)
{
    return tls_conn_superseded(w->conn);
}

const char *wire_addr(const wire *w)
{
    return tls_conn_addr(w->conn);
}

size_t wire_queued(const wire *w)
{
    return tls_conn_queued(w->conn);
}

size_t wire_unacked(const wire *w)
{
    return tls_conn_unacked(w->conn);
}

int wire_is_closing(const wire *w)
{
    return w->closing;
}

void wire_pause(wire *w)
{
    tls_conn_pause(w->conn);
}

void wire_resume(wire *w)
{
    tls_conn_resume(w->conn);
}
