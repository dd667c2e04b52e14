#include "hubstore.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "store.h"

/* Tables of format 2. The rollup engine's tables are created by rollup_open(). */
static const char *hubstore__schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS nodes(municipality INTEGER PRIMARY KEY,"
    " incarnation BLOB NOT NULL, acked_seq INTEGER NOT NULL, acked_version INTEGER NOT NULL,"
    " resend_pending INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL,"
    " last_hello_ms INTEGER NOT NULL, last_sync_ms INTEGER NOT NULL DEFAULT 0,"
    " calendar INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS records(municipality INTEGER NOT NULL, id BLOB NOT NULL,"
    " kind INTEGER NOT NULL, version INTEGER NOT NULL, deleted INTEGER NOT NULL,"
    " incarnation BLOB NOT NULL, body BLOB NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS records_key ON records(municipality, id);"
    "CREATE TABLE IF NOT EXISTS dead_letters(municipality INTEGER NOT NULL, id BLOB NOT NULL,"
    " seq INTEGER NOT NULL, kind INTEGER NOT NULL, field TEXT NOT NULL, reason TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL, PRIMARY KEY(municipality, id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS directives(serial INTEGER PRIMARY KEY, key_id TEXT NOT NULL,"
    " body BLOB NOT NULL, signature BLOB NOT NULL, received_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS node_directives(municipality INTEGER PRIMARY KEY,"
    " serial INTEGER NOT NULL);";

/* Format 1 -> 2, in one transaction with the format number. */
static const char *hubstore__v1_to_v2 =
    "CREATE TABLE records_v2(municipality INTEGER NOT NULL, id BLOB NOT NULL,"
    " kind INTEGER NOT NULL, version INTEGER NOT NULL, deleted INTEGER NOT NULL,"
    " incarnation BLOB NOT NULL, body BLOB NOT NULL);"
    "INSERT INTO records_v2(municipality, id, kind, version, deleted, incarnation, body)"
    " SELECT municipality, id, kind, version, deleted, incarnation, body FROM records"
    " ORDER BY municipality, id;"
    "DROP INDEX IF EXISTS records_municipality;"
    "DROP TABLE records;"
    "ALTER TABLE records_v2 RENAME TO records;"
    "CREATE UNIQUE INDEX records_key ON records(municipality, id);"
    "ALTER TABLE nodes ADD COLUMN calendar INTEGER NOT NULL DEFAULT 0;";

static const char *hubstore__upsert_sql =
    "INSERT INTO records(municipality, id, kind, version, deleted, incarnation, body)"
    " VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(municipality, id) DO UPDATE SET"
    " kind=iif(excluded.version>version, excluded.kind, kind),"
    " deleted=iif(excluded.version>version, excluded.deleted, deleted),"
    " body=iif(excluded.version>version, excluded.body, body),"
    " version=max(version, excluded.version), incarnation=excluded.incarnation";

/* 1 when the database already holds a table named name, 0 when not, or REINT_EDB. */
static int hubstore__has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT 1 FROM sqlite_master WHERE type='table'"
                                         " AND name=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step == SQLITE_ROW)
        return 1;
    return step == SQLITE_DONE ? 0 : REINT_EDB;
}

/* The format of the store as found: 0 for a new database, 1 for a protocol-1 store. */
static int hubstore__format(sqlite3 *db, int64_t *format)
{
    int meta = hubstore__has_table(db, "meta");
    if (meta < 0)
        return meta;
    int rc = meta ? store_meta_get_int(db, "hub_format", format) : REINT_ENOTFOUND;
    if (rc != REINT_ENOTFOUND)
        return rc;
    int records = hubstore__has_table(db, "records");
    if (records < 0)
        return records;
    *format = records ? 1 : 0;
    return 0;
}

int hubstore_open(hubstore *hs, const char *path, char *err, size_t errlen)
{
    int64_t format = 0;
    memset(hs, 0, sizeof(*hs));
    if (store_open(path, 1, NULL, &hs->db, err, errlen) != 0)
        return REINT_EDB;
    if (hubstore__format(hs->db, &format) != 0) {
        snprintf(err, errlen, "%s: cannot read the store format", path);
        goto fail;
    }
    if (format > HUBSTORE_FORMAT) {
        snprintf(err, errlen,
                 "%s: store format %lld is newer than this hub's %d; run the newer hub, or "
                 "restore a backup made by this version",
                 path, (long long)format, HUBSTORE_FORMAT);
        hubstore_close(hs);
        return REINT_EINVAL;
    }
    if (format < HUBSTORE_FORMAT) {
        if (format == 1)
            log_warn("%s: store format 1 (protocol version 1): migrating to format %d; the "
                     "records table is rewritten once",
                     path, HUBSTORE_FORMAT);
        if (store_exec(hs->db, "BEGIN IMMEDIATE") != 0 ||
            (format == 1 && store_exec(hs->db, hubstore__v1_to_v2) != 0) ||
            store_exec(hs->db, hubstore__schema) != 0 ||
            store_meta_set_int(hs->db, "hub_format", HUBSTORE_FORMAT) != 0 ||
            store_exec(hs->db, "COMMIT") != 0) {
            snprintf(err, errlen, "%s: cannot bring the store to format %d: %s", path,
                     HUBSTORE_FORMAT, sqlite3_errmsg(hs->db));
            goto fail;
        }
    }
    /* Record ids arrive in no order: each commit dirties index pages all over its
     * municipalities' part of the index. A larger WAL between checkpoints (64 MiB) copies a
     * page back once for several commits instead of once per commit. */
    if (store_exec(hs->db, "PRAGMA wal_autocheckpoint=16384") != 0) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(hs->db));
        goto fail;
    }
    if ((hs->upsert = store_prepare(hs->db, hubstore__upsert_sql)) == NULL) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(hs->db));
        goto fail;
    }
    return 0;
fail:
    hubstore_close(hs);
    return REINT_EDB;
}

int hubstore_set_cache(hubstore *hs, long mib)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%ld", mib * 1024);
    return store_exec(hs->db, sql);
}

void hubstore_close(hubstore *hs)
{
    sqlite3_finalize(hs->upsert);
    store_close(hs->db);
    memset(hs, 0, sizeof(*hs));
}

int hubstore_put(hubstore *hs, const hubstore_record *rec)
{
    sqlite3_stmt *st = hs->upsert;
    sqlite3_bind_int64(st, 1, rec->municipality);
    sqlite3_bind_blob(st, 2, rec->id, 16, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, rec->kind);
    sqlite3_bind_int64(st, 4, (int64_t)rec->version);
    sqlite3_bind_int(st, 5, rec->deleted);
    sqlite3_bind_blob(st, 6, rec->incarnation, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, rec->body, (int)rec->len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_DONE) {
        log_error("hub store: upsert: %s", sqlite3_errmsg(hs->db));
        return REINT_EDB;
    }
    return 0;
}
