#include "store.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "pcache.h"

int store_open(const char *path, int create, const char *schema, sqlite3 **out, char *err,
               size_t errlen)
{
    return store_open_paged(path, create, 0, schema, out, err, errlen);
}

int store_open_paged(const char *path, int create, int page_size, const char *schema, sqlite3 **out,
                     char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    pcache_install(); /* before SQLite's first connection initialises it (pcache.h) */
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    if (page_size > 0) {
        /* Only takes effect on a database with no page yet (before WAL writes the header). */
        char ps[48];
        snprintf(ps, sizeof(ps), "PRAGMA page_size=%d", page_size);
        if (sqlite3_exec(db, ps, NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
            goto fail;
        }
    }
    static const char *pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                 "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
                                 "PRAGMA cache_size=-32768;";
    char *msg = NULL;
    if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        (schema && sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK)) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        goto fail;
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return REINT_EDB;
}

void store_close(sqlite3 *db)
{
    sqlite3_close(db);
}

int store_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("sqlite: %s: %s", msg ? msg : sqlite3_errmsg(db), sql);
        sqlite3_free(msg);
        return REINT_EDB;
    }
    return 0;
}

int store_step_done(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        log_error("sqlite: %s: %s", sqlite3_errmsg(db), sqlite3_sql(st));
        return REINT_EDB;
    }
    return 0;
}

sqlite3_stmt *store_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s: %s", sqlite3_errmsg(db), sql);
        return NULL;
    }
    return st;
}

int store_meta_get_int(sqlite3 *db, const char *key, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?1", -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite: meta %s: %s", key, sqlite3_errmsg(db));
        return REINT_EDB;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = REINT_ENOTFOUND;
    if (step == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (step != SQLITE_DONE) {
        log_error("sqlite: meta %s: %s", key, sqlite3_errmsg(db));
        rc = REINT_EDB;
    }
    sqlite3_finalize(st);
    return rc;
}

int store_meta_get_int_or(sqlite3 *db, const char *key, int64_t dflt, int64_t *out)
{
    int rc = store_meta_get_int(db, key, out);
    if (rc == REINT_ENOTFOUND) {
        *out = dflt;
        return 0;
    }
    return rc;
}

int store_meta_set_int(sqlite3 *db, const char *key, int64_t v)
{
    sqlite3_stmt *st = NULL;
    int rc = REINT_EDB;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO meta(key,value) VALUES(?1,?2) "
                           "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                           -1, &st, NULL) != SQLITE_OK)
        return REINT_EDB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

int store_meta_get_blob(sqlite3 *db, const char *key, uint8_t *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?1", -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite: meta %s: %s", key, sqlite3_errmsg(db));
        return REINT_EDB;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = REINT_ENOTFOUND;
    if (step == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) == len) {
        memcpy(buf, sqlite3_column_blob(st, 0), len);
        rc = 0;
    } else if (step == SQLITE_ROW) {
        rc = REINT_EMALFORMED;
    } else if (step != SQLITE_DONE) {
        log_error("sqlite: meta %s: %s", key, sqlite3_errmsg(db));
        rc = REINT_EDB;
    }
    sqlite3_finalize(st);
    return rc;
}

int store_meta_set_blob(sqlite3 *db, const char *key, const uint8_t *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = REINT_EDB;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO meta(key,value) VALUES(?1,?2) "
                           "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                           -1, &st, NULL) != SQLITE_OK)
        return REINT_EDB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

int store_durability(sqlite3 *db, int *synchronous, int *wal)
{
    sqlite3_stmt *st = NULL;
    *synchronous = -1;
    *wal = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) != SQLITE_OK)
        return REINT_EDB;
    if (sqlite3_step(st) == SQLITE_ROW)
        *synchronous = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) != SQLITE_OK)
        return REINT_EDB;
    if (sqlite3_step(st) == SQLITE_ROW)
        *wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    return 0;
}
