/* The node's store: one row per record, keyed by (kind, local_id), holding its record id,
 * its newest upstream version (tombstones included) at a sequence number that orders the
 * compacted outbox, and the clerk's local fields; the dead letters refused upstream; and
 * the metadata (incarnation, clock, sync position, counts).
 * One SQLite database in WAL mode with synchronous=FULL. */
#ifndef MUNICIPAL_NODE_OUTBOX_H
#define MUNICIPAL_NODE_OUTBOX_H

#include "error.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "hlc.h"
#include "reintegration.pb-c.h"
#include "walckpt.h"

/* Frames of the store's log at which its checkpoint thread copies them back (SQLite's
 * default threshold: 16 MiB of 16 KiB pages), so that no clerk's commit does it. */
#define OUTBOX_CKPT_FRAMES 1000

typedef struct outbox outbox;

/* Creates a new store with a fresh random incarnation. Refuses (REINT_EEXIST) when path
 * exists. Returns 0 or a negative code with a message in err. */
int outbox_create(const char *path, uint32_t municipality, char *err, size_t errlen);
/* Opens the store and starts its checkpoint thread (walckpt.h): the log is copied back on a
 * thread of its own, not inside the commit that crosses OUTBOX_CKPT_FRAMES. */
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

/* What the store holds for (kind, local_id). */
typedef struct outbox_row {
    uint8_t id[16];
    uint64_t version, hash;
    int live; /* 1 a live record, 0 a tombstone */
} outbox_row;

/* The id a new record of (kind, local_id) gets: the first 16 bytes of HMAC-SHA-256 with the
 * store's id key (made at init, kept in the store, so every backup carries it) over the kind
 * byte and the local_id as stored. It carries no creation time. Returns 0 or REINT_ENOMEM. */
int outbox_record_id(outbox *ob, int kind, const char *local_id, uint8_t id[16]);

/* The same computation for another thread (the import's reader computes the ids of its
 * rows on the second core): a copy of the keyed state, used by one thread at a time, freed
 * with outbox_idkey_free. local_id is len bytes. Return 0 or REINT_ENOMEM. */
typedef struct outbox_idkey outbox_idkey;
int outbox_idkey_new(outbox *ob, outbox_idkey **out);
int outbox_idkey_id(outbox_idkey *k, int kind, const char *local_id, size_t len, uint8_t id[16]);
void outbox_idkey_free(outbox_idkey *k);

/* Files the entry at seq as a dead letter with reason (it cannot be sent: alone it is above
 * the hub's frame limit), and gives its record id and kind. Returns 0, REINT_ENOTFOUND or
 * REINT_EDB. */
int outbox_drop(outbox *ob, uint64_t seq, const char *reason, uint8_t id[16], int *kind);

/* Looks (kind, local_id) up: 1 found (row filled in), 0 absent, or a negative code. */
int outbox_find(outbox *ob, int kind, const char *local_id, outbox_row *row);

enum { OUTBOX_UNCHANGED = 0, OUTBOX_INSERTED = 1, OUTBOX_UPDATED = 2 };

typedef struct outbox_put_result {
    uint8_t id[16];   /* the record id: new for a new key, kept for the life of the store */
    uint64_t version; /* the newest version (the old one when unchanged) */
    int change;       /* OUTBOX_UNCHANGED, _INSERTED (new or undeleted), _UPDATED */
} outbox_put_result;

/* Queues a new version of r (body set by the caller; id, municipality and version are
 * filled in here) as the newest entry of (kind, local_id), with the clerk and the local
 * fields (localrow.h). hash summarises everything the clerk entered: when the key's newest
 * entry is live with the same hash nothing is queued. new_id, when not NULL, is the key's id
 * computed beforehand by outbox_idkey_id (used only when the key is new). Returns 0 or a
 * negative code. */
int outbox_put(outbox *ob, int kind, const char *local_id, const uint8_t *new_id,
               Reint__V1__Record *r, uint64_t hash, const char *clerk, const void *fields,
               size_t flen, outbox_put_result *res);

/* Queues a tombstone for (kind, local_id) and forgets its local fields. Returns
 * REINT_ENOTFOUND when the key has no live entry (never created, or already deleted). */
int outbox_delete(outbox *ob, int kind, const char *local_id, const char *clerk);

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
    walckpt_stats ckpt; /* the store's checkpoint thread */
} outbox_stats;
int outbox_stats_get(outbox *ob, outbox_stats *st);

/* Observes a version seen upstream, so that the node's clock issues above it. */
void outbox_observe(outbox *ob, uint64_t version);

#endif
