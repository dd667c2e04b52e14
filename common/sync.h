/* The sending side of the sync protocol, shared by node -> hub (records) and hub ->
 * federal (rollup snapshots): connect over mutual TLS, say Hello, resume from the
 * receiver's position, keep a window of batches in flight, hand refusals back to the
 * source, finish a full resend with ResendComplete, and reconnect after failures with
 * full-jitter exponential backoff. Runs on the caller's libuv loop. What is sent comes
 * from a sync_source: a durable, compacted outbox keyed by sequence numbers. */
#ifndef COMMON_SYNC_H
#define COMMON_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "reintegration.pb-c.h"
#include "tls.h"

/* The protocol version this build speaks as a sender. */
#define SYNC_PROTOCOL_VERSION 2

typedef struct sync_client sync_client;

/* One outbox entry: its sequence, its version and its packed item (a Record, or a
 * RollupSnapshot), valid during the call. Non-zero return stops the read. */
typedef int (*sync_entry_cb)(void *ud, uint64_t seq, uint64_t version, const uint8_t *item,
                             size_t len);

typedef struct sync_source {
    void *src;
    /* Entries after after_seq, oldest first, at most max. Returns the count or < 0. */
    int (*read)(void *src, uint64_t after_seq, size_t max, sync_entry_cb cb, void *ud);
    /* Where to resume given the receiver's position and newest version (see outbox.h). */
    int (*resume_point)(void *src, uint64_t seq, uint64_t version, uint64_t *after);
    /* Everything through acked_seq is durable upstream; refusals are filed durably. */
    int (*acked)(void *src, uint64_t acked_seq, const Reint__V1__Refusal *const *refusals,
                 size_t n);
    /* Bookkeeping for status (0 / NULL: leave unchanged). May be NULL. */
    int (*note)(void *src, int64_t last_sync_ms, int64_t last_hello_ms, int64_t skew_ms,
                const char *last_error);
    void (*observe)(void *src, uint64_t version); /* may be NULL */
    uint64_t (*last_seq)(void *src);
    const uint8_t *(*incarnation)(void *src); /* 16 bytes */
    /* Records only: the entry at seq (its packed item, len bytes) is alone larger than the
     * receiver's frame limit. The source files it durably as a dead letter with reason and
     * fills *id (16 bytes) and *kind (a RecordKind); the sender then tells the receiver in
     * the batch (Batch.dropped) and goes on. Returns 0 or a negative code (the session
     * closes and retries). Snapshots are never dropped: they are split into parts. May be
     * NULL (an oversized record then stops the session with an error). */
    int (*oversized)(void *src, uint64_t seq, const uint8_t *item, size_t len, const char *reason,
                     uint8_t id[16], int *kind);
} sync_source;

/* Which batch message carries the items: Envelope.batch (records) or
 * Envelope.rollup_batch (snapshots); both have first_seq = 1, last_seq = 2, items = 3,
 * seqs = 4 (and Batch.dropped = 5). A snapshot too large for the receiver's frames is sent as
 * parts (RollupSnapshot.part, parts), each the only item of its batch. */
enum sync_payload { SYNC_RECORDS = 3, SYNC_SNAPSHOTS = 5 };

typedef struct sync_opts {
    uv_loop_t *loop;
    sync_source source; /* copied; its src is not owned */
    enum sync_payload payload;
    const char *identity;    /* for Hello, e.g. "municipality:10703" (informational) */
    tls_ctx *tls;            /* not owned; TLS_MODE_MUTUAL_CLIENT */
    const char *hub;         /* the receiver, "127.0.0.1:7401" */
    const char *expect_peer; /* the receiver's certificate identity, e.g. "province:1" */
    /* Called with each signed directive the receiver relays (in HelloReply or pushed).
     * Returning 0 with *ack_serial set makes the client acknowledge that serial, so the
     * receiver stops offering it. May be NULL. */
    int (*on_directive)(void *ud, const Reint__V1__SignedDirective *sd, uint64_t *ack_serial);
    /* Fills out with up to max directive serials this side lacks below its newest (a gap a
     * relay left) and returns how many; they are asked for in a DirectiveAck at each session
     * start and when a new gap appears. May be NULL. */
    size_t (*directive_gaps)(void *ud, uint64_t *out, size_t max);
    /* Called when a session has started, with its HelloReply (valid during the call). May be
     * NULL. */
    void (*on_session)(void *ud, const Reint__V1__HelloReply *r);
    /* Fills the fields of the Hello this side adds (reviews, reviews_through) before it is
     * sent. May be NULL. */
    void (*fill_hello)(void *ud, Reint__V1__Hello *h);
    /* Called with each message of a session that is not the sync protocol's own (Reviews,
     * ReviewAck...); it may answer with sync_send(s, ...). Returns 0 to go on, or a negative
     * code to close the connection (the session starts again later). May be NULL: such a
     * message then closes the connection. */
    int (*on_message)(void *ud, sync_client *s, const Reint__V1__Envelope *env);
    /* With once: 1 when the embedder has nothing left to receive in this session (e.g. every
     * review the receiver offered is stored), so that the run may finish; a change is
     * announced with sync_kick. May be NULL (always 1). */
    int (*settled)(void *ud);
    int window;           /* batches in flight (default 8) */
    int batch_records;    /* records per batch (default 2000); batches are also kept below
                           * the receiver's frame limit, announced in its HelloReply */
    int calendar;         /* a node's Calendar for Hello (0 for a hub) */
    long backoff_base_ms; /* default 250 */
    long backoff_cap_ms;  /* default 30000 */
    size_t max_frame;
    /* When set, stop once everything is acknowledged (the `sync` command) and call on_done
     * with 0, or with a negative code after give_up_ms without a session (0: never). */
    int once;
    long give_up_ms;
    /* A session that waits for the receiver and hears nothing from it, while nothing it sent
     * moves towards it either, this long is dropped and made again (0: 180 s). */
    long heard_wait_ms;
    void (*on_done)(void *ud, int status);
    void *ud;
} sync_opts;

int sync_start(sync_client **out, const sync_opts *opts);
/* New entries were committed: send them if connected. */
void sync_kick(sync_client *s);
/* Sends an envelope outside the batches (e.g. Coverage) when a session is up. Returns 0,
 * UV_ENOTCONN without a session, or a negative code. */
int sync_send(sync_client *s, const Reint__V1__Envelope *env);
/* Refuses what the peer sent: an Error of code with message (scrubbed to UTF-8), then the
 * connection closes (the session starts again later), so that the peer can log why. */
void sync_fail(sync_client *s, Reint__V1__ErrorCode code, const char *message);
/* Closes the connection and the timers; on_done is not called. The client is freed once
 * its handles have closed. */
void sync_stop(sync_client *s);

typedef struct sync_state {
    int connected;      /* a session is established */
    int upgrade_needed; /* the receiver refused this protocol version: nothing is sent */
    int clock_ahead;    /* the receiver found versions from this machine's future */
    int crl_expired;    /* the CRL is past its next update: no record is sent */
    int cert_refused;   /* the receiver refused this machine's certificate at the handshake
                           (revoked, expired, of an unknown CA): nothing moves until it is
                           replaced (SIGHUP takes a new one) */
    int64_t last_sync_ms;
    int64_t skew_ms;
    uint64_t batches_acked, records_sent, refusals, dropped, parts_sent;
    char last_error[256];
} sync_state;
void sync_get_state(const sync_client *s, sync_state *st);

#endif
