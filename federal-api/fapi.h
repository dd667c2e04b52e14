/* The federal HTTPS API: the catalogue, indicator queries (JSON or CSV), DHIS2-shaped
 * dataValueSets, the audit log for admins, national directives (POST /v1/directives for
 * admins: validated, numbered, signed, stored, pushed to connected hubs; GET for every role),
 * the CRL, /healthz and /metrics. Every /v1 request
 * carries a bearer token, looked up by its SHA-256 in PostgreSQL; failed attempts are
 * limited per (client address, token prefix) once the token is read (common/limiter.h: a
 * valid token is never limited) and written to the audit in batches; every authenticated
 * request is written to the audit table (a successful read in the same statement as its
 * data). Query parameters are validated
 * (params.h) before any SQL, which only ever binds them.
 * The same HTTPS port serves the national dashboard's pages (fweb.h); its requests carry a
 * session cookie instead of a token (fsession.h: POST /v1/session signs a ministry token in,
 * GET says whose session it is, DELETE ends it), and the open-data page's anonymous reads go
 * to GET /open/v1/indicators[/<code>], answered as the public role, limited per client
 * address (open_max_reads per open_window_s) and counted per route and day in open_reads
 * instead of audited one by one.
 * This module routes and authenticates; each route's work is elsewhere: findicators.h (the
 * indicator statements) with frender.h (JSON, CSV, dataValueSets), faudit.h (the audit log),
 * fpublish.h (directives), fmetrics.h (/metrics); freq.h is the request they share. */
#ifndef FEDERAL_API_FAPI_H
#define FEDERAL_API_FAPI_H

#include <stddef.h>
#include <uv.h>

#include "db.h"
#include "fcovcache.h"
#include "ftokcache.h"
#include "fingest.h"
#include "loopwatch.h"
#include "tls.h"

typedef struct fapi fapi;

typedef struct fapi_opts {
    uv_loop_t *loop;
    db_pool *db;                /* not owned */
    tls_ctx *https_tls;         /* TLS_MODE_HTTPS_SERVER; not owned */
    tls_ctx *sync_tls;          /* for the CRL expiry in /metrics; may be NULL */
    fingest *ingest;            /* for /metrics; may be NULL */
    fcovcache *covcache;        /* fed by the pool's notifications (fcovcache.h); may be NULL */
    ftokcache *tokcache;        /* the same, for tokens (ftokcache.h); may be NULL */
    const loopwatch *loopwatch; /* the loop's busy turns, for /metrics; may be NULL */
    const char *https_listen;   /* "127.0.0.1:8443" */
    const char *http_listen;    /* plain /healthz, /metrics, /crl; "" for none */
    const char *crl_file;       /* served at GET /crl; "" for none */
    const char *proxy_from;     /* load balancers sending PROXY v2 to the HTTPS port; "" none */
    unsigned auth_max_failures, auth_window_s;
    /* Anonymous reads (/open/v1/...) per client address per window before 429; 0: 600, 60. */
    unsigned open_max_reads, open_window_s;
    /* Signing of POST /v1/directives: the key id named in each directive and the Ed25519
     * private key PEM (read at each publication). Either "" or NULL: publishing answers 503. */
    const char *directive_key_id;
    const char *directive_key;
} fapi_opts;

int fapi_start(fapi **out, const fapi_opts *opts, char *err, size_t errlen);
/* Stops both servers; requests waiting for the database are answered when it fails them. */
void fapi_stop(fapi *a);
int fapi_https_port(const fapi *a);
int fapi_http_port(const fapi *a);

#endif
