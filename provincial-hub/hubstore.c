#include "hubstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "record.h"
#include "sbuf.h"
#include "store.h"

#define HUBSTORE_STR_(x) #x
#define HUBSTORE_STR(x)  HUBSTORE_STR_(x)

/* Tables of format 2 and 3 (3 changed the record bodies, not the tables). The rollup engine's
 * tables are created by rollup_open(). */
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

/* Format 2 -> 3, after the bodies are rewritten: the rollup engine's shadow of persons,
 * services and enterprises held their days; it is dropped and rollup_open() rebuilds it from
 * the rewritten bodies (its shape changed too). Dead letters of a refused day named the day
 * in their reason. */
static const char *hubstore__v2_to_v3 =
    "DROP TABLE IF EXISTS rollup_person; DROP TABLE IF EXISTS rollup_service;"
    "DROP TABLE IF EXISTS rollup_enterprise;"
    "DELETE FROM meta WHERE key='rollup_built';"
    "UPDATE dead_letters SET reason='a day outside the accepted range (protocol 1; the day is"
    " no longer kept)' WHERE field IN ('person.registered_day', 'service.day',"
    " 'enterprise.day');";

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

/* Format 2 -> 3, in the caller's transaction: every stored body is rewritten as protocol
 * version 2 has it. The day of a Person, Service or Enterprise (a protocol-1 field, unknown to
 * this build) becomes the month pair of its event, and every other unknown field is dropped
 * (a hub of format 2 stored them as received). A body that does not decode is left as it is,
 * and counted; one whose day cannot be turned into a pair (outside the BS table) loses the
 * day. */
static int hubstore__bodies_to_v3(sqlite3 *db, const char *path)
{
    sqlite3_stmt *rd = store_prepare(db, "SELECT rowid, body FROM records");
    sqlite3_stmt *wr = store_prepare(db, "UPDATE records SET body=?2 WHERE rowid=?1");
    long long rewritten = 0, opaque = 0, dayless = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = rd && wr ? 0 : REINT_EDB, s = SQLITE_DONE;
    while (rc == 0 && (s = sqlite3_step(rd)) == SQLITE_ROW) {
        const uint8_t *body = sqlite3_column_blob(rd, 1);
        size_t len = (size_t)sqlite3_column_bytes(rd, 1);
        Reint__V1__Record *r = reint__v1__record__unpack(NULL, len, body);
        record_upgraded up;
        record_error re;
        if (r == NULL) {
            opaque++;
            continue;
        }
        if (record_upgrade(r, RECORD_V1_DAYS | RECORD_STRIP_UNKNOWN, &up, &re) != 0) {
            dayless++;
            if (record_upgrade(r, RECORD_STRIP_UNKNOWN, &up, &re) != 0)
                rc = REINT_EINVAL; /* strip alone never refuses */
        }
        size_t n = rc == 0 ? reint__v1__record__get_packed_size(&up.rec) : 0;
        if (rc == 0 && sbuf_grow((void **)&buf, &cap, n + 1, 1) != 0)
            rc = REINT_ENOMEM;
        if (rc == 0) {
            reint__v1__record__pack(&up.rec, buf);
            if (n != len || memcmp(buf, body, n) != 0) {
                sqlite3_bind_int64(wr, 1, sqlite3_column_int64(rd, 0));
                sqlite3_bind_blob(wr, 2, buf, (int)n, SQLITE_STATIC);
                rc = store_step_done(db, wr);
                rewritten++;
            }
        }
        reint__v1__record__free_unpacked(r, NULL);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = REINT_EDB;
    free(buf);
    sqlite3_finalize(rd);
    sqlite3_finalize(wr);
    if (rc == 0)
        log_warn("%s: format 3: %lld record bodies rewritten (month pairs instead of days, no "
                 "unknown fields); %lld bodies do not decode and were left as they are; %lld "
                 "days outside the BS table were dropped",
                 path, rewritten, opaque, dayless);
    return rc;
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
        else if (format == 2)
            log_warn("%s: store format 2: migrating to format %d (days of persons, services "
                     "and enterprises become month pairs); backups made before this still "
                     "hold those days",
                     path, HUBSTORE_FORMAT);
        if (store_exec(hs->db, "BEGIN IMMEDIATE") != 0 ||
            (format == 1 && store_exec(hs->db, hubstore__v1_to_v2) != 0) ||
            store_exec(hs->db, hubstore__schema) != 0 ||
            (format >= 1 && (hubstore__bodies_to_v3(hs->db, path) != 0 ||
                             store_exec(hs->db, hubstore__v2_to_v3) != 0)) ||
            store_meta_set_int(hs->db, "hub_format", HUBSTORE_FORMAT) != 0 ||
            store_exec(hs->db, "COMMIT") != 0) {
            snprintf(err, errlen, "%s: cannot bring the store to format %d: %s", path,
                     HUBSTORE_FORMAT, sqlite3_errmsg(hs->db));
            if (!sqlite3_get_autocommit(hs->db))
                store_exec(hs->db, "ROLLBACK");
            goto fail;
        }
        /* The old bodies and shadow rows are now free pages, and older page images may sit
         * in the write-ahead log: VACUUM rewrites the file from the live rows only, and the
         * checkpoint empties the log, so that no day of a person's event stays in either. */
        if (format >= 1 && (store_exec(hs->db, "VACUUM") != 0 ||
                            store_exec(hs->db, "PRAGMA wal_checkpoint(TRUNCATE)") != 0)) {
            snprintf(err, errlen, "%s: format %d: VACUUM failed: %s", path, HUBSTORE_FORMAT,
                     sqlite3_errmsg(hs->db));
            goto fail;
        }
    }
    /* Record ids arrive in no order: each commit dirties index pages all over its
     * municipalities' part of the index. A larger WAL between checkpoints (64 MiB) copies a
     * page back once for several commits instead of once per commit. */
    if (store_exec(hs->db, "PRAGMA wal_autocheckpoint=" HUBSTORE_STR(HUBSTORE_CKPT_FRAMES)) != 0) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(hs->db));
        goto fail;
    }
    /* The checkpoint that copies those pages back (about a tenth of a second) runs on a
     * thread of its own, not in the commit of the event loop that crosses the threshold. */
    if (walckpt_start(&hs->ckpt, hs->db, path, HUBSTORE_CKPT_FRAMES, err, errlen) != 0)
        goto fail;
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
    walckpt_stop(hs->ckpt);
    sqlite3_finalize(hs->upsert);
    store_close(hs->db);
    memset(hs, 0, sizeof(*hs));
}

int hubstore_put(hubstore *hs, const hubstore_record *rec, int *inserted)
{
    sqlite3_stmt *st = hs->upsert;
    /* An insert sets the last insert rowid (records is a rowid table, rowids from 1); the
     * upsert's DO UPDATE leaves it as it was (test_hubstore pins this). */
    sqlite3_set_last_insert_rowid(hs->db, 0);
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
    if (inserted)
        *inserted = sqlite3_last_insert_rowid(hs->db) != 0;
    return 0;
}
