/* The hub's side of the sync protocol: what municipal nodes' records mean at the hub. The
 * common receiver (common/receiver.h) accepts the nodes and runs the sessions; the ingest
 * checks that each is a municipality of this province (from its certificate, never from the
 * message), validates every record, upserts the newest version of each in batched
 * transactions (group commit, synchronous=FULL, hubstore.h), files refused and dropped
 * records as the municipality's dead letters, acknowledges only after the commit, and feeds
 * the rollup engine. Runs on one libuv loop for many nodes. */
#ifndef PROVINCIAL_HUB_INGEST_H
#define PROVINCIAL_HUB_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "directive.h"
#include "error.h"
#include "receiver.h"
#include "haudit.h"
#include "reviews.h"
#include "tls.h"
#include "walckpt.h"

typedef struct ingest ingest;

typedef struct ingest_opts {
    uv_loop_t *loop;
    tls_ctx *tls; /* TLS_MODE_MUTUAL_SERVER; not owned */
    unsigned province;
    const char *listen; /* "127.0.0.1:7401" */
    const char *db_path;
    size_t max_frame;
    size_t commit_rows; /* commit at once when this many rows wait (default 50000) */
    /* Records committed but not yet noted by the rollup engine: above this many, nodes are
     * no longer read until the engine has caught up with half of them (default 2,000,000:
     * 40 MB, a province's full resend). */
    size_t roll_queue_max;
    long cache_mib;                          /* the store's page cache (default 256 MiB) */
    const directive_keyring *directive_keys; /* federal keys; NULL refuses directives */
    /* Called on the loop after a tick that rolled records up (snapshots may be new): the
     * uplink sends them at once rather than at its next poll. May be NULL. */
    void (*on_rolled)(void *ud);
    void *ud;
} ingest_opts;

int ingest_start(ingest **out, const ingest_opts *opts, char *err, size_t errlen);
/* Closes the listener and every connection, commits what is pending, and frees the ingest
 * once its handles have closed. */
void ingest_stop(ingest *in);
int ingest_port(const ingest *in);

typedef struct ingest_metrics {
    receiver_metrics rx; /* connections, sessions, protocol and security events */
    uint64_t records_stored, records_refused, records_dropped;
    uint64_t batches, commits, security_events; /* directive refusals, added to rx's */
    uint64_t sweeps, swept_records, roll_queue_holds;
    uint64_t sweeps_undone, incarnation_returns; /* undone sweeps; incarnations seen again */
    int64_t sweeps_pending, swept_kept;          /* sweeps awaiting an admin; rows they keep */
    int64_t directive_gaps; /* directives missing below the newest held (asked for upstream) */
    int64_t nodes_silent, nodes_offline; /* no record, no contact for 30 days (gaps.h) */
    size_t roll_queue, roll_queue_max, roll_queue_peak;
    int store_synchronous, store_wal; /* PRAGMA values of the hub store's connection */
    walckpt_stats ckpt;               /* the store's checkpoint thread */
} ingest_metrics;
void ingest_get_metrics(const ingest *in, ingest_metrics *m);

/* A directive from the federal tier: verified against the federal keyring (known key,
 * signature over the exact bytes, serial above the last held), stored durably, then relayed
 * to every connected node; nodes that connect later get it in their HelloReply until they
 * acknowledge it. Returns 0 with *serial set, or a REINT_E* code with err; nothing is stored
 * or relayed then. */
int ingest_directive(ingest *in, const Reint__V1__SignedDirective *sd, uint64_t *serial, char *err,
                     size_t errlen);

/* A hub admin's decision on a pending sweep (sweeps.h): undo puts its records back (the
 * rollups note them), confirm drops them for good. who: the admin's token name. Returns 0 with
 * *municipality set, REINT_ENOTFOUND, REINT_ESTALE (already decided) or REINT_EDB. */
int ingest_sweep_decide(ingest *in, int64_t id, int undo, const char *who, uint32_t *municipality);

/* A reviewer's decision on a month (reviews.h), on the loop: as reviews_decide, in a
 * transaction of its own that also writes audit (the request's row, status 200: haudit.h)
 * when the decision is taken; the node of the municipality, when connected, and the federal
 * tier (through on_rolled) are sent the change. REINT_ERANGE: the municipality closes months
 * in the other calendar (out->bs says which). */
int ingest_review_decide(ingest *in, uint32_t municipality, int bs, int32_t ym, int approve,
                         const reviews_seen *seen, const char *who, const char *comment,
                         const haudit_row *audit, reviews_month *out);

/* Review changes the federal tier sent back (reviews_recover), in a transaction of their own;
 * states they move go to the connected nodes. Returns 0, REINT_EFORBIDDEN or REINT_EINVAL
 * (why set; nothing applied) or REINT_EDB. */
int ingest_reviews_recovered(ingest *in, const Reint__V1__Reviews *r, char *why, size_t whylen);

/* The monthly review the ingest keeps (reviews.h); owned by the ingest. */
struct reviews *ingest_reviews(ingest *in);

/* The store's connection (shared with modules that keep tables beside the records). */
struct sqlite3 *ingest_db(ingest *in);

/* The rollup engine the ingest feeds (provincial-hub/rollup.h); owned by the ingest. */
struct rollup *ingest_rollup(ingest *in);

/* Bumped at every commit that changed what the federal coverage reports (records, dead
 * letters, calendars): the uplink sends the coverage again when it moves. */
uint64_t ingest_coverage_generation(const ingest *in);

#endif
