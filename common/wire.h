/* A framed protobuf session on one mutual-TLS connection: envelopes in, envelopes out.
 * Both tiers' sync code sits on this; it knows nothing of records or acks. A frame above
 * the maximum or a payload that is not an Envelope gets an Error frame and a close. */
#ifndef COMMON_WIRE_H
#define COMMON_WIRE_H

#include <stddef.h>
#include <uv.h>

#include "frame.h"
#include "tls.h"

typedef struct wire wire;

typedef struct wire_cb {
    void (*on_ready)(wire *w, void *ud); /* handshake done, tls peer identity known */
    /* One decoded envelope, owned by the wire and freed after the call. Return 0 to go on,
     * non-zero when the callback closed the wire. */
    int (*on_envelope)(wire *w, const Reint__V1__Envelope *env, void *ud);
    void (*on_drain)(wire *w, void *ud);             /* may be NULL */
    void (*on_close)(wire *w, int status, void *ud); /* once; the wire is freed after it */
} wire_cb;

int wire_accept(wire **out, tls_ctx *ctx, uv_stream_t *server, size_t max_frame, const wire_cb *cb,
                void *ud);
int wire_connect(wire **out, tls_ctx *ctx, uv_loop_t *loop, const struct sockaddr *addr,
                 const char *expect_peer, size_t max_frame, const wire_cb *cb, void *ud);

/* The largest frame wire_send may send: the peer's announced limit (default: the limit this
 * wire reads). An envelope that packs larger is not sent (REINT_ETOOBIG). */
void wire_set_send_max(wire *w, size_t max);
/* The largest frame accepted from the peer from now on (e.g. small until Hello). */
void wire_set_read_max(wire *w, size_t max);
/* Packs and queues env. Returns 0 or a negative code (the wire is then being closed). */
int wire_send(wire *w, const Reint__V1__Envelope *env);
/* Queues an already framed buffer (4-byte length + payload); the bytes are copied. */
int wire_send_raw(wire *w, const uint8_t *buf, size_t len);
/* Sends an Error envelope, then closes. */
void wire_fail(wire *w, Reint__V1__ErrorCode code, const char *message);
void wire_close(wire *w);

/* During on_envelope: the field of the bad string of the index'th record of its Batch
 * (frame_bad_record_field: valid until the next call), or NULL. */
const char *wire_bad_record(wire *w, size_t index);

const char *wire_peer(const wire *w);        /* certificate identity, e.g. "municipality:10703" */
const char *wire_peer_serial(const wire *w); /* its certificate's serial, hex */
/* Verifies the peer's certificate again against ctx's current CRL: 0, or UV_EPERM with the
 * reason in wire_tls_error. */
int wire_verify_again(wire *w, tls_ctx *ctx);
const char *wire_tls_error(const wire *w);
/* 1 when the peer's certificate was refused as superseded (a rotation: tls_conn_superseded). */
int wire_superseded(const wire *w);
const char *wire_addr(const wire *w);
size_t wire_queued(const wire *w);
/* What has been sent on w and has not reached the peer yet (tls_conn_unacked). */
size_t wire_unacked(const wire *w);
int wire_is_closing(const wire *w);
void wire_pause(wire *w);
void wire_resume(wire *w);

#endif
