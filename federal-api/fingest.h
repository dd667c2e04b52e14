/* The federal side of the hub uplink: accepts provincial hubs over mutual TLS 1.3, takes
 * each hub's province from its certificate ("province:<p>", never from a message), refuses
 * a whole RollupBatch holding a snapshot of another province's municipality (a security
 * event: Error FORBIDDEN, logged, connection closed), validates every snapshot (period,
 * indicators, groupings, keys), commits each batch in PostgreSQL in one statement
 * (fed_ingest_batch, migrations/0001) and acknowledges it only after the commit. A hub's
 * batches are applied one at a time, in order. */
#ifndef FEDERAL_API_FINGEST_H
#define FEDERAL_API_FINGEST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "db.h"
#include "tls.h"

typedef struct fingest fingest;

typedef struct fingest_opts {
    uv_loop_t *loop;
    tls_ctx *tls;       /* TLS_MODE_MUTUAL_SERVER; not owned */
    db_pool *db;        /* not owned */
    const char *listen; /* "127.0.0.1:7500"; copied */
    size_t max_frame;
    size_t max_cells; /* per snapshot (default 20000) */
} fingest_opts;

int fingest_start(fingest **out, const fingest_opts *opts, char *err, size_t errlen);
/* Closes the listener and every connection; batches in flight are not acknowledged (their
 * hubs resend). Frees the ingest once its handles have closed. */
void fingest_stop(fingest *fi);
int fingest_port(const fingest *fi);

typedef struct fingest_metrics {
    uint64_t connections, sessions, batches, batches_committed, snapshots_received;
    uint64_t snapshots_applied, snapshots_refused, cells_received, security_events;
    uint64_t protocol_errors, db_errors;
    int connected;
} fingest_metrics;
void fingest_get_metrics(const fingest *fi, fingest_metrics *m);

#endif
