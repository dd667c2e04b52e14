/* The receiving side of the sync protocol, one implementation for both receivers: the hub
 * (municipal nodes' records) and the federal tier (hubs' rollup snapshots). It listens,
 * accepts mutual-TLS connections, takes each peer's identity from its certificate (never from
 * a message), closes peers that do not say Hello within the deadline, checks the protocol
 * version (a v2 receiver serves v1 senders; any other version gets ERROR_CODE_VERSION at
 * Hello), keeps one session per identity (a new Hello replaces the old session), checks the
 * sequence structure of every batch, sends acks and errors, and frees each peer once the
 * connection has closed and the work it queued is done. What the records mean, where they
 * are stored and when a batch is durable is the tier's: it supplies the receiver_ops below.
 *
 * Everything runs on the caller's libuv loop. */
#ifndef COMMON_RECEIVER_H
#define COMMON_RECEIVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "error.h"
#include "reintegration.pb-c.h"
#include "tls.h"

/* The protocol versions this build speaks. */
#define RECEIVER_PROTOCOL_MIN 1
#define RECEIVER_PROTOCOL_MAX 2
/* A peer that has not completed TLS and Hello within this time is closed. */
#define RECEIVER_HELLO_DEADLINE_MS 10000
/* Frames accepted before Hello: a Hello needs a few hundred bytes. */
#define RECEIVER_PRE_HELLO_MAX 4096
/* Sequence numbers a peer may announce stay below this (2^53), so that no counter can wrap
 * and every value survives a JSON or PostgreSQL round trip. */
#define RECEIVER_SEQ_LIMIT (UINT64_C(1) << 53)
/* The smallest max_frame a Hello may announce (0: the default), as the senders' own
 * configurations allow (CONFIG_FRAME_MIN): a smaller one is refused with an error. */
#define RECEIVER_FRAME_MIN 512u
/* A batch may end past the last_seq its sender announced in Hello (entries made during the
 * session) by at most this much beyond the receiver's position. */
#define RECEIVER_SEQ_STEP (UINT64_C(1) << 32)

typedef struct receiver receiver;
typedef struct receiver_peer receiver_peer;

/* One refused item of a batch, filed in its ack. */
typedef struct receiver_refusal {
    uint8_t id[16];
    int has_id;
    uint64_t seq;
    char field[64];
    char reason[200];
} receiver_refusal;

/* Sets a refusal's field and reason, scrubbed to well-formed UTF-8 (utf8_scrub): a reason
 * often quotes the sender's bytes, and an Ack whose strings are not UTF-8 is not protobuf. */
void receiver_refusal_set(receiver_refusal *r, const char *field, const char *reason);

typedef struct receiver_ops {
    /* The peer's certificate identity (e.g. "municipality:10703", "province:1"): returns 0
     * with *scope set (a municipality code, a province), or REINT_EFORBIDDEN with why (the
     * receiver logs a security event and closes). Required. */
    int (*identify)(void *ud, const char *identity, uint32_t *scope, char *why, size_t whylen);
    /* A Hello opening a session (version checked, incarnation 16 bytes, an older session of
     * the same scope already closed). The tier reads its position for the peer and answers
     * with receiver_welcome(), at once or later (the peer holds a reference meanwhile if the
     * tier takes one). Returns 0, or a negative code (the peer then gets an internal error).
     * Required. */
    int (*hello)(void *ud, receiver_peer *p, const Reint__V1__Hello *h);
    /* Any other message of a session (a batch, ResendComplete, DirectiveAck, Coverage...).
     * Returns 0 to go on, 1 when the tier closed the peer (receiver_fail and the like), or a
     * negative code (internal error: the peer is failed and closed). Required. */
    int (*message)(void *ud, receiver_peer *p, const Reint__V1__Envelope *env);
    /* The connection closed (the peer is dead; work holding a reference may still finish).
     * May be NULL. */
    void (*closed)(void *ud, receiver_peer *p);
    /* The peer is being freed: release the tier's data attached to it. May be NULL. */
    void (*release)(void *ud, receiver_peer *p);
} receiver_ops;

typedef struct receiver_opts {
    uv_loop_t *loop;
    tls_ctx *tls;       /* TLS_MODE_MUTUAL_SERVER; not owned */
    const char *listen; /* "127.0.0.1:7401"; copied */
    size_t max_frame;   /* frames accepted from peers (0: FRAME_DEFAULT_MAX) */
    const char *what;   /* the peers' kind for logs: "node", "hub" */
    const char *self;   /* this receiver for messages: "hub", "federal tier" */
    /* Versions and clocks a peer may send ahead of this receiver's clock (0: one day). */
    uint64_t max_ahead_ms;
    /* Open connections in all (0: 4096); past it a new connection is closed at once. */
    size_t max_conns;
    /* A session is closed after this long, so that its peer handshakes again against the
     * current CRL (0: 24 hours). */
    uint64_t max_session_ms;
    receiver_ops ops;
    void *ud;
} receiver_opts;

typedef struct receiver_metrics {
    uint64_t connections, sessions, protocol_errors, security_events, version_refusals;
    uint64_t clock_refusals, conns_refused, sessions_aged, revoked_closed;
    uint64_t sessions_replaced;  /* a newer session of the same identity took over */
    uint64_t handshakes_refused; /* a certificate refused (revoked, of another CA, expired) */
    int connected;
} receiver_metrics;

/* Binds and listens. Returns 0, or a negative code with err set. */
int receiver_start(receiver **out, const receiver_opts *opts, char *err, size_t errlen);
/* Closes the listener and every connection; the receiver is freed once its handles have
 * closed and every peer was released. ops are not called for new events after this. */
void receiver_stop(receiver *rx);
int receiver_port(const receiver *rx);
void receiver_get_metrics(const receiver *rx, receiver_metrics *m);

/* Calls fn for every peer with a session (a HelloReply sent) that is not closing. */
void receiver_each_session(receiver *rx, void (*fn)(receiver_peer *p, void *arg), void *arg);

/* Peers. A peer is valid while its connection is open, and after that for as long as the
 * tier holds references (receiver_peer_ref); it is freed at the last unref. */
void receiver_peer_ref(receiver_peer *p);
void receiver_peer_unref(receiver_peer *p);
int receiver_peer_dead(const receiver_peer *p);    /* the connection has closed or is closing */
int receiver_peer_session(const receiver_peer *p); /* a HelloReply was sent */
uint32_t receiver_peer_scope(const receiver_peer *p);
const uint8_t *receiver_peer_incarnation(const receiver_peer *p); /* 16 bytes from Hello */
uint32_t receiver_peer_version(const receiver_peer *p);           /* its protocol version */
size_t receiver_peer_max_frame(const receiver_peer *p);           /* largest frame it accepts */
const char *receiver_peer_addr(const receiver_peer *p);
/* The serial of the peer's certificate (hex): security events name the key that acted. */
const char *receiver_peer_serial(const receiver_peer *p);
/* While a Batch is handled: the field of the index'th record's string that is not UTF-8 or
 * holds a NUL (wire_bad_record), or NULL. Such a record is refused alone. */
const char *receiver_peer_bad_record(receiver_peer *p, size_t index);
void *receiver_peer_data(const receiver_peer *p);
void receiver_peer_set_data(receiver_peer *p, void *data);

/* The highest sequence the receiver counts as received from the peer in this session:
 * set by receiver_welcome, moved by receiver_peer_advance. Batches must start at or below
 * it + 1 (a gap is a protocol error). */
uint64_t receiver_peer_position(const receiver_peer *p);
void receiver_peer_advance(receiver_peer *p, uint64_t seq);

/* Checks a batch's sequence structure against the peer's position: first_seq <= position + 1,
 * last_seq < 2^53 and within the Hello's last_seq or RECEIVER_SEQ_STEP of the position (a
 * session outlives its Hello; a sender restored from an older copy may send again below the
 * position, with newer versions), n_seqs == n_items, seqs strictly
 * increasing within first_seq..last_seq (gaps left by compaction are legal). Returns 0, or
 * fails the peer with a protocol error and returns 1. */
int receiver_check_batch(receiver_peer *p, uint64_t first_seq, uint64_t last_seq,
                         const uint64_t *seqs, size_t n_seqs, size_t n_items);

/* 1 when version (a hybrid logical clock value, ms << 16 | counter) is further ahead of this
 * receiver's clock than it accepts; the tier then calls receiver_clock_ahead. */
int receiver_too_far_ahead(const receiver_peer *p, uint64_t version);
/* Refuses the peer's batch whole for a version or clock too far ahead (Error
 * CLOCK_AHEAD naming what, then close): nothing of it is stored, nothing is a dead letter. */
void receiver_clock_ahead(receiver_peer *p, const char *what);

/* The number of refusals that fit one ack to the peer (its frame limit), at least 1. A tier
 * that holds more for a batch acknowledges only up to the first it cannot list, and closes
 * the session after that ack (receiver_close): the sender resends the rest. */
size_t receiver_refusals_per_ack(const receiver_peer *p);

/* Answers the peer's Hello: sets r->clock (when 0) and r->max_frame, sends r, sets the
 * peer's position to r->acked_seq and opens the session. A reply too large for the peer's
 * frames goes with fewer directives (r->n_directives is lowered to those sent, halving: the
 * caller sends the rest later) and, when even none would leave room for it, without the CRL.
 * Returns 0, REINT_ETOOBIG (it does not fit even so) or another negative code. */
int receiver_welcome(receiver_peer *p, Reint__V1__HelloReply *r);
/* Acknowledges one batch with its refusals (copied into the frame). Returns 0 or a negative
 * code (the peer is then closed). Does nothing on a dead peer. */
int receiver_ack(receiver_peer *p, uint64_t acked_seq, uint64_t acked_version,
                 const receiver_refusal *refusals, size_t n);
/* Sends any envelope. Returns 0 or a negative code. */
int receiver_send(receiver_peer *p, const Reint__V1__Envelope *env);

/* Closes the peer after an Error frame, counting and logging it: a protocol error, a
 * security event (an identity or a record that does not belong to the peer) or an internal
 * error of this receiver. */
void receiver_protocol_error(receiver_peer *p, const char *what);
void receiver_security(receiver_peer *p, const char *what);
void receiver_internal_error(receiver_peer *p, const char *what);
void receiver_close(receiver_peer *p);

/* Backpressure: while any hold is set on a peer, no more of its frames are read. Holds are
 * bits, so that several reasons (a queue of its own, a full shared queue) combine. */
enum { RECEIVER_HOLD_PEER = 1, RECEIVER_HOLD_SHARED = 2 };
void receiver_peer_hold(receiver_peer *p, int reason);
void receiver_peer_release(receiver_peer *p, int reason);
/* The same for every open peer. */
void receiver_hold_all(receiver *rx, int reason);
void receiver_release_all(receiver *rx, int reason);

/* Checks every open session's certificate against the TLS context's current CRL and closes
 * those now revoked (a security event each). Called after every CRL reload. Returns the
 * number closed. */
int receiver_recheck(receiver *rx);

#endif
