/* The node's side of the sync protocol: connect to the hub over mutual TLS, say Hello,
 * resume from the hub's position, keep a window of batches in flight, file the hub's
 * refusals as dead letters, finish a full resend with ResendComplete, and reconnect after
 * failures with full-jitter exponential backoff. Runs on the caller's libuv loop. */
#ifndef MUNICIPAL_NODE_SYNC_H
#define MUNICIPAL_NODE_SYNC_H

#include <stdint.h>
#include <uv.h>

#include "outbox.h"
#include "tls.h"

typedef struct sync_client sync_client;

typedef struct sync_opts {
    uv_loop_t *loop;
    outbox *ob;          /* not owned */
    tls_ctx *tls;        /* not owned; TLS_MODE_MUTUAL_CLIENT */
    const char *hub;     /* "127.0.0.1:7401" */
    unsigned province;   /* the hub's certificate must say province:<province> */
    int window;          /* batches in flight (default 8) */
    int batch_records;   /* records per batch (default 2000) */
    long backoff_base_ms; /* default 250 */
    long backoff_cap_ms;  /* default 30000 */
    size_t max_frame;
    /* When set, stop once everything is acknowledged (the `sync` command) and call on_done
     * with 0, or with a negative code after give_up_ms without a session (0: never). */
    int once;
    long give_up_ms;
    void (*on_done)(void *ud, int status);
    void *ud;
} sync_opts;

int sync_start(sync_client **out, const sync_opts *opts);
/* New entries were committed: send them if connected. */
void sync_kick(sync_client *s);
/* Closes the connection and the timers; on_done is not called. The client is freed once
 * its handles have closed. */
void sync_stop(sync_client *s);

typedef struct sync_state {
    int connected; /* a session is established */
    int64_t last_sync_ms;
    int64_t skew_ms;
    uint64_t batches_acked, records_sent, refusals;
    char last_error[256];
} sync_state;
void sync_get_state(const sync_client *s, sync_state *st);

#endif
