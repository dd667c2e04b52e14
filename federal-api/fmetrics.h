/* The federal API's request counters and its GET /metrics answer (Prometheus text format):
 * the HTTPS API's answers by status, the audit rows and directives written, the PostgreSQL
 * pool's and the hub ingest's counters, and the CRL's expiry. */
#ifndef FEDERAL_API_FMETRICS_H
#define FEDERAL_API_FMETRICS_H

#include <stdint.h>

#include "db.h"
#include "fcovcache.h"
#include "ftokcache.h"
#include "fingest.h"
#include "http.h"
#include "loopwatch.h"
#include "tls.h"

/* Counters of one API server; single-threaded (the loop's thread). */
typedef struct fmetrics {
    uint64_t requests, ok, bad_request, unauthorized, forbidden, not_found, rate_limited,
        unavailable, audit_rows, directives_published;
    /* The dashboard's sign-ins, and the open-data routes' anonymous reads: answered, and
     * refused 429 because their address read too much. */
    uint64_t sessions_created, open_reads, open_limited;
} fmetrics;

/* Counts one answer under its status (200/201 ok, 400/422, 401, 403, 404, 429, 5xx). */
void fmetrics_count_status(fmetrics *m, int status);

/* What /metrics shows besides the API's own counters. Every pointer but db may be NULL. */
typedef struct fmetrics_sources {
    const db_pool *db;
    const fingest *ingest;
    const fcovcache *covcache;
    const ftokcache *tokcache;
    const tls_ctx *sync_tls;               /* its CRL's expiry */
    const http_server_stats *https, *http; /* the HTTPS and plain HTTP servers */
    const loopwatch *loop;                 /* the event loop's busy turns */
} fmetrics_sources;

/* Answers r with the counters of m and of src: 200 with the exposition, or 500 when it cannot
 * be built. */
void fmetrics_respond(http_req *r, const fmetrics *m, const fmetrics_sources *src);

#endif
