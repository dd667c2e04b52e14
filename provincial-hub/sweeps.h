/* Sweeps that cannot destroy data. A node that presents a new store incarnation (a
 * re-initialised machine, a restore, or a stolen key) re-sends its whole outbox and ends
 * with ResendComplete; the records of older incarnations it did not send again must stop
 * counting then, or they would be counted twice. They are moved out of the records table
 * into swept_records, not deleted: recoverable until a hub admin confirms the sweep.
 *
 * A sweep is undone (its records put back) by a hub admin, or automatically when the
 * incarnation it displaced connects again: a stolen key's sweep is cancelled as soon as the
 * real node comes back, and one repeated while it is away destroys nothing. Each sweep and
 * each return of an incarnation seen before (two incarnations alternating) is a security
 * event: a log line naming the certificate serial, counted in /metrics, shown in /v1/gaps.
 *
 * Tables (in the hub store, beside records):
 *   sweeps          one row per incarnation change of a municipality: 'resending' from the
 *                   new incarnation's Hello to its ResendComplete, then 'pending' (records
 *                   were swept), 'confirmed' (by an admin, or nothing was swept) or 'undone';
 *                   the displaced incarnation and its position, so that it can resume.
 *   swept_records   the rows a pending sweep took out of records, as they were.
 *   incarnation_events  the security events, for /v1/gaps and the audit of what happened.
 *
 * Every function runs in the caller's open transaction unless it says otherwise. */
#ifndef PROVINCIAL_HUB_SWEEPS_H
#define PROVINCIAL_HUB_SWEEPS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Who acted: the municipality, its store incarnation, and its session's certificate serial
 * and address (for the security events). */
typedef struct sweeps_peer {
    uint32_t municipality;
    const uint8_t *incarnation; /* 16 bytes */
    const char *serial, *addr;
} sweeps_peer;

/* Called for each record put back into records by an undo (so that the rollups note it). */
typedef int (*sweeps_restored_cb)(void *ud, uint32_t municipality, const uint8_t id[16]);

/* Creates the tables if missing. Returns 0 or REINT_EDB. */
int sweeps_init(sqlite3 *db);

enum sweeps_hello_outcome {
    SWEEPS_FRESH = 1, /* a new incarnation: ask it for a full resend, as before */
    SWEEPS_RETURN = 2 /* the incarnation a sweep displaced is back: resume it at *seq, *ver */
};

/* A Hello from an incarnation other than the one the hub holds for the municipality (cur:
 * the held one, with its position; NULL when the municipality is new). Records the change
 * ('resending'), or, when the incarnation is the one a resending or pending sweep displaced,
 * undoes that sweep (its records restored through cb) and returns SWEEPS_RETURN with the
 * position to resume at. *returned is 1 when the incarnation had been seen before (a
 * security event is logged and recorded). Returns the outcome or a negative REINT_E* code. */
int sweeps_hello(sqlite3 *db, const sweeps_peer *p, const uint8_t *cur, uint64_t cur_seq,
                 uint64_t cur_version, int64_t now_ms, sweeps_restored_cb cb, void *ud,
                 uint64_t *seq, uint64_t *version, int *returned);

/* ResendComplete: moves the municipality's records of other incarnations into swept_records
 * under the incarnation's sweep (made now if its Hello recorded none) and marks it 'pending',
 * or 'confirmed' when nothing was swept. With no sweep recorded at Hello and no record of
 * another incarnation (a first enrolment), no sweep is made: *sweep_id stays 0. *swept: rows
 * moved; *sweep_id: the sweep. Returns 0 or REINT_EDB. */
int sweeps_resend_complete(sqlite3 *db, const sweeps_peer *p, int64_t now_ms, int64_t *swept,
                           int64_t *sweep_id);

/* An admin's decision on a pending sweep: confirm drops its kept records for good; undo puts
 * them back (cb for each). who names the admin (its token name). Each opens and commits its
 * own transaction. Returns 0 with *municipality set, REINT_ENOTFOUND (no such sweep),
 * REINT_ESTALE (not pending: already decided), or REINT_EDB. */
int sweeps_confirm(sqlite3 *db, int64_t id, const char *who, int64_t now_ms,
                   uint32_t *municipality);
int sweeps_undo(sqlite3 *db, int64_t id, const char *who, int64_t now_ms, sweeps_restored_cb cb,
                void *ud, uint32_t *municipality);

/* {"sweeps": [...]}: the newest limit sweeps, every state, for a hub admin. Returns 0,
 * REINT_ENOMEM or REINT_EDB. */
int sweeps_list(sqlite3 *db, long limit, json_t **out);

typedef struct sweeps_counts {
    int64_t pending;      /* sweeps waiting for an admin */
    int64_t kept_records; /* rows they hold */
    int64_t events;       /* security events recorded */
} sweeps_counts;
int sweeps_count(sqlite3 *db, sweeps_counts *c);

#endif
