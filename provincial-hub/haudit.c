#include "haudit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"

static const char haudit__schema[] =
    "CREATE TABLE IF NOT EXISTS officer_audit(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,"
    " first_ms INTEGER, who TEXT NOT NULL, role TEXT NOT NULL, peer TEXT NOT NULL,"
    " method TEXT NOT NULL, target TEXT NOT NULL, status INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 1), token_prefix TEXT);"
    "CREATE INDEX IF NOT EXISTS officer_audit_at ON officer_audit(at_ms);";

int haudit_open(sqlite3 *db, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, haudit__schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "officer_audit: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return REINT_EDB;
    }
    return 0;
}

static void haudit__text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

int haudit_insert(sqlite3 *db, const haudit_row *rows, size_t n)
{
    int rc = REINT_EDB;
    sqlite3_stmt *st =
        store_prepare(db, "INSERT INTO officer_audit(at_ms, first_ms, who, role, peer, method,"
                          " target, status, attempts, token_prefix)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (st == NULL)
        return REINT_EDB;
    for (size_t i = 0; i < n; i++) {
        const haudit_row *r = &rows[i];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->at_ms);
        if (r->first_ms)
            sqlite3_bind_int64(st, 2, (sqlite3_int64)r->first_ms);
        else
            sqlite3_bind_null(st, 2);
        haudit__text(st, 3, r->who);
        haudit__text(st, 4, r->role);
        haudit__text(st, 5, r->peer);
        haudit__text(st, 6, r->method);
        haudit__text(st, 7, r->target);
        sqlite3_bind_int(st, 8, r->status);
        sqlite3_bind_int64(st, 9, r->attempts ? r->attempts : 1);
        haudit__text(st, 10, r->token_prefix);
        if (store_step_done(db, st) != 0)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

int haudit_write(sqlite3 *db, const haudit_row *rows, size_t n)
{
    if (store_exec(db, "BEGIN IMMEDIATE") != 0)
        return REINT_EDB;
    int rc = haudit_insert(db, rows, n);
    if (rc == 0)
        rc = store_exec(db, "COMMIT");
    if (rc != 0 && !sqlite3_get_autocommit(db))
        store_exec(db, "ROLLBACK");
    return rc;
}

/* ms since the epoch as ISO 8601 UTC with milliseconds. */
static json_t *haudit__iso(int64_t ms)
{
    char iso[40];
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    if (gmtime_r(&t, &tm) == NULL)
        return json_null();
    size_t o = strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(iso + o, sizeof(iso) - o, ".%03dZ", (int)(ms % 1000));
    return json_string(iso);
}

static json_t *haudit__col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? json_string((const char *)s) : json_null();
}

int haudit_list(sqlite3 *db, long limit, json_t **out)
{
    int step = SQLITE_DONE, rc = 0, oom = 0;
    json_t *list = json_array();
    *out = NULL;
    sqlite3_stmt *st = store_prepare(db, "SELECT id, at_ms, who, role, peer, method, target,"
                                         " status, attempts, first_ms, token_prefix"
                                         " FROM officer_audit ORDER BY id DESC LIMIT ?1");
    if (st == NULL || list == NULL) {
        rc = st == NULL ? REINT_EDB : REINT_ENOMEM;
        goto out;
    }
    sqlite3_bind_int64(st, 1, limit < 1 ? 1 : limit > HAUDIT_LIST_MAX ? HAUDIT_LIST_MAX : limit);
    while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *first = sqlite3_column_type(st, 9) == SQLITE_NULL
                            ? json_null()
                            : haudit__iso(sqlite3_column_int64(st, 9));
        json_t *row = json_pack(
            "{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:I, s:o, s:o}", "id",
            (json_int_t)sqlite3_column_int64(st, 0), "at", haudit__iso(sqlite3_column_int64(st, 1)),
            "who", haudit__col_text(st, 2), "role", haudit__col_text(st, 3), "peer",
            haudit__col_text(st, 4), "method", haudit__col_text(st, 5), "target",
            haudit__col_text(st, 6), "status", sqlite3_column_int(st, 7), "attempts",
            (json_int_t)sqlite3_column_int64(st, 8), "first_at", first, "token_prefix",
            haudit__col_text(st, 10));
        if (row == NULL || json_array_append_new(list, row) != 0)
            oom = 1;
    }
    if (oom) {
        rc = REINT_ENOMEM;
    } else if (step != SQLITE_DONE) {
        log_error("officer_audit: %s", sqlite3_errmsg(db));
        rc = REINT_EDB;
    }
out:
    sqlite3_finalize(st);
    if (rc == 0) {
        *out = json_pack("{s:o}", "audit", list);
        return *out ? 0 : REINT_ENOMEM;
    }
    json_decref(list);
    return rc;
}
