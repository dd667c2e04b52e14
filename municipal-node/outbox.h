/* The node's store: the (kind, local_id) -> record id map, the compacted outbox (one entry
 * per record, its newest version, tombstones included, keyed by a sequence number), the
 * dead letters refused upstream, and the metadata (incarnation, clock, sync position).
 * One SQLite database in WAL mode with synchronous=FULL. */
#ifndef MUNICIPAL_NODE_OUTBOX_H
#define MUNICIPAL_NODE_OUTBOX_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "hlc.h"
#include "reintegration.pb-c.h"

typedef struct outbox outbox;

#define OUTBOX_ENOTFOUND (-6001)
#define OUTBOX_EEXIST    (-6002)

/* Creates a new store with a fresh random incarnation. Refuses (OUTBOX_EEXIST) when path
 * exists. Returns 0 or a negative code with a message in err. */
int outbox_create(const char *path, uint32_t municipality, char *err, size_t errlen);
int outbox_open(const char *path, outbox **out, char *err, size_t errlen);
void outbox_close(outbox *ob);

/* The database, for modules that keep their own tables in the same store and the same
 * transactions (intake's local personal data). Owned by the outbox. */
sqlite3 *outbox_db(outbox *ob);
uint32_t outbox_municipality(const outbox *ob);
const uint8_t *outbox_incarnation(const outbox *ob);
uint64_t outbox_last_seq(const outbox *ob);

/* Transactions: every put happens inside one. Commit also persists the sequence counter and
 * the clock. */
int outbox_begin(outbox *ob);
int outbox_commit(outbox *ob);
void outbox_rollback(outbox *ob);

/* Finds the record id of (kind, local_id). With create non-zero a new time-ordered id is
 * made and kept for the life of the store (*created set to 1). Returns 0 or
 * OUTBOX_ENOTFOUND. */
int outbox_id(outbox *ob, int kind, const char *local_id, int create, uint8_t id[16], int *created);

/* Queues a new version of r (r->id and the body set by the caller; municipality and version
 * are filled in here). hash summarises everything the clerk entered (local fields included):
 * when the record's newest entry has the same hash nothing is queued and *changed is 0.
 * Returns 0 or a negative code. */
int outbox_put(outbox *ob, Reint__V1__Record *r, uint64_t hash, int *changed);

/* Queues a tombstone for id (kind of the deleted record). Returns OUTBOX_ENOTFOUND when id
 * has no live entry (never created, or already deleted). */
int outbox_delete(outbox *ob, const uint8_t id[16], int kind);

/* Whether the newest entry of id is a live record (1), a tombstone or absent (0). */
int outbox_is_live(outbox *ob, const uint8_t id[16]);

/* Entries after after_seq, oldest first, at most max: calls cb for each with the packed
 * Record. Returns the number of entries read or a negative code. */
typedef int (*outbox_entry_cb)(void *ud, uint64_t seq, uint64_t version, const uint8_t *rec,
                               size_t len);
int outbox_read(outbox *ob, uint64_t after_seq, size_t max, outbox_entry_cb cb, void *ud);

/* The sequence after which to resume, given the hub's Hello reply (see DESIGN.md: the hub's
 * position and the newest version it holds). A node restored from an older copy, or whose
 * hub lost its store, resumes early enough that nothing is skipped. */
int outbox_resume_point(outbox *ob, uint64_t hub_seq, uint64_t hub_version, uint64_t *after);

/* Records that the hub durably holds everything up to acked_seq, and files refusals as dead
 * letters, in one transaction. */
int outbox_acked(outbox *ob, uint64_t acked_seq, const Reint__V1__Refusal *const *refusals,
                 size_t n_refusals);

/* Sync bookkeeping kept in the store for `status` (ms since the epoch; skew in ms). */
int outbox_note_sync(outbox *ob, int64_t last_sync_ms, int64_t last_hello_ms, int64_t skew_ms,
                     const char *last_error);

typedef struct outbox_stats {
    uint64_t last_seq, acked_seq;
    int64_t backlog;            /* entries after acked_seq */
    int64_t oldest_unsynced_ms; /* version time of the oldest of them, 0 when none */
    int64_t records, tombstones;
    int64_t dead_letters;
    int64_t last_sync_ms, last_hello_ms, skew_ms;
    char last_error[256];
} outbox_stats;
int outbox_stats_get(outbox *ob, outbox_stats *st);

/* Observes a version seen upstream, so that the node's clock issues above it. */
void outbox_observe(outbox *ob, uint64_t version);

#endif
