/* The hub's uplink to the federal tier: pushes the rollup engine's changed snapshots
 * (rollup_outbox: durable, compacted, one entry per (municipality, period)) over mutual TLS
 * with the same hello/resume/window/ack discipline as the node -> hub link (common/sync.c),
 * and hands the directives the federal tier relays to the ingest, which verifies, stores
 * and passes them on to the nodes. */
#ifndef PROVINCIAL_HUB_UPLINK_H
#define PROVINCIAL_HUB_UPLINK_H

#include <sqlite3.h>
#include <stddef.h>
#include <uv.h>

#include "ingest.h"
#include "rollup.h"
#include "sync.h"
#include "tls.h"

typedef struct uplink uplink;

typedef struct uplink_opts {
    uv_loop_t *loop;
    sqlite3 *db;         /* the hub store (rollup_outbox lives there); not owned */
    rollup *engine;      /* not owned */
    ingest *in;          /* receives relayed directives; not owned */
    tls_ctx *tls;        /* TLS_MODE_MUTUAL_CLIENT with this hub's certificate; not owned */
    const char *federal; /* "127.0.0.1:7500" */
    unsigned province;
    int window, batch_snapshots;
    long backoff_base_ms, backoff_cap_ms;
    long coverage_ms; /* Coverage at most this often while it changes (0: 10 s) */
} uplink_opts;

/* Starts pushing (and reconnecting as needed). Returns 0 or a negative code with err. */
int uplink_start(uplink **out, const uplink_opts *opts, char *err, size_t errlen);
void uplink_stop(uplink *u);
/* New snapshots may be waiting: send them now if the session has room. */
void uplink_kick(uplink *u);
void uplink_get_state(const uplink *u, sync_state *st);
/* Entries of rollup_outbox not yet acknowledged by the federal tier (-1: unknown). */
int64_t uplink_backlog(uplink *u);

#endif
