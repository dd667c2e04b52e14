/* The hub's store (DATA_DIR/hub.db): its format and migrations, the municipal nodes' session
 * positions, the newest version of each record, and the records refused or dropped per
 * municipality (dead letters). One SQLite database in WAL mode with synchronous=FULL; the
 * rollup engine (rollup.h) keeps its tables in the same database and transactions.
 *
 * Records live in a rowid table, appended in arrival order, with a unique index on
 * (municipality, id): record ids are keyed hashes since protocol version 2 and arrive in no
 * time order, so only the small index entries land at random places (within the pages of
 * the municipalities that sent them), not whole rows. Measured against a table keyed by
 * (municipality, id) itself, this took a 4 x 200,000-record ingest from 0.47 to 0.87 of the
 * protocol-1 hub's rate (bench/keyed_ids.py; docs/BENCHMARKS.md).
 *
 * Formats: 1 is the store of protocol version 1 (records keyed by id, no format number in
 * meta); 2 indexes records by (municipality, id), adds nodes.calendar and dead_letters; 3
 * holds no day of a person's event: the bodies of persons, services and enterprises carry
 * month pairs (protocol version 2 as it was completed), no body keeps an unknown field, and
 * the rollup engine's shadow is rebuilt from them. hubstore_open() migrates an older store in
 * place, in one transaction, then VACUUMs it and empties its write-ahead log, so that no
 * page of the file keeps an old body (backups made before still do: docs/OPERATIONS.md). */
#ifndef PROVINCIAL_HUB_HUBSTORE_H
#define PROVINCIAL_HUB_HUBSTORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "walckpt.h"

#define HUBSTORE_FORMAT 3
/* Frames (pages) of write-ahead log between checkpoints: 64 MiB of 4 KiB pages. */
#define HUBSTORE_CKPT_FRAMES 16384

typedef struct hubstore {
    sqlite3 *db;
    sqlite3_stmt *upsert;
    walckpt *ckpt; /* the log's checkpoints, off db's thread */
} hubstore;

/* Opens (creating it when absent) the store at path and brings it to HUBSTORE_FORMAT, and
 * starts its checkpoint thread (walckpt.h: the log's checkpoints never run in a commit of
 * hs->db, which must then stay on one thread). A store of a newer format is refused. Returns 0, or
 * REINT_EDB / REINT_EINVAL with err set. */
int hubstore_open(hubstore *hs, const char *path, char *err, size_t errlen);
/* Sets the page cache to mib MiB (the store's random index inserts stay in memory until
 * their commit). Returns 0 or REINT_EDB. */
int hubstore_set_cache(hubstore *hs, long mib);
/* Finalizes the statements and closes the database. Safe on a zeroed hubstore. */
void hubstore_close(hubstore *hs);

/* One record as stored: body is the packed Record (len bytes), read during the call only. */
typedef struct hubstore_record {
    uint32_t municipality;
    const uint8_t *id; /* 16 bytes */
    int kind;          /* RecordKind; for a tombstone, the kind of the deleted record */
    uint64_t version;
    int deleted;
    const uint8_t *incarnation; /* 16 bytes: the store incarnation that sent it */
    const uint8_t *body;
    size_t len;
} hubstore_record;

/* Upserts rec in the caller's transaction: the newest version of (municipality, id) wins; an
 * older or equal version changes nothing but the incarnation that last sent it. *inserted
 * (may be NULL) is set to 1 when the store held no record of (municipality, id) before, 0
 * when it did. Returns 0 or REINT_EDB (logged). */
int hubstore_put(hubstore *hs, const hubstore_record *rec, int *inserted);

#endif
