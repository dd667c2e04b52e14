/* The federal side of the hub uplink: accepts provincial hubs over mutual TLS 1.3, takes
 * each hub's province from its certificate ("province:<p>", never from a message), refuses
 * a whole RollupBatch holding a snapshot of another province's municipality (a security
 * event: Error FORBIDDEN, logged, connection closed), validates every snapshot (period,
 * indicators, groupings, keys), commits each batch in PostgreSQL in one statement
 * (fed_ingest_batch, migrations/0001, rewritten in 0003) and acknowledges it only after the
 * commit. A hub's batches are applied one at a time, in order.
 * Directives go the other way: the HelloReply carries the published directives above the
 * serial that hub store (province and incarnation) has acknowledged, in order, at most 64
 * (the rest follow as pushed Envelope.directive); each DirectiveAck raises that serial
 * (migrations/0002); directives published while a hub is connected are pushed to it. */
#ifndef FEDERAL_API_FINGEST_H
#define FEDERAL_API_FINGEST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "db.h"
#include "receiver.h"
#include "tls.h"

typedef struct fingest fingest;

typedef struct fingest_opts {
    uv_loop_t *loop;
    tls_ctx *tls;       /* TLS_MODE_MUTUAL_SERVER; not owned */
    db_pool *db;        /* not owned */
    const char *listen; /* "127.0.0.1:7500"; copied */
    size_t max_frame;
    size_t max_cells; /* per snapshot (default 20000) */
    /* How often connected hubs are checked for directives another federal-api process
     * published (default 5000 ms); this process's own publications are pushed at once. */
    uint64_t directive_poll_ms;
} fingest_opts;

int fingest_start(fingest **out, const fingest_opts *opts, char *err, size_t errlen);
/* Closes the listener and every connection; batches in flight are not acknowledged (their
 * hubs resend). Frees the ingest once its handles have closed. */
void fingest_stop(fingest *fi);
int fingest_port(const fingest *fi);

/* Tells the ingest that a directive was just committed: every hub session is sent, in serial
 * order, each directive above the last one it was sent (a session whose Hello is still being
 * answered gets them right after its HelloReply). Safe with fi NULL. */
void fingest_directives_published(fingest *fi);

typedef struct fingest_metrics {
    receiver_metrics rx; /* connections, sessions, protocol and security events */
    uint64_t batches, batches_committed, snapshots_received;
    uint64_t snapshots_applied, snapshots_refused, cells_received;
    uint64_t db_errors, directives_sent, directive_acks, coverage_updates;
    uint64_t review_changes; /* review changes received from hubs (duplicates included) */
} fingest_metrics;
void fingest_get_metrics(const fingest *fi, fingest_metrics *m);

#endif
