#include "sweeps.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hex.h"
#include "log.h"
#include "store.h"

static const char *sweeps__schema =
    "CREATE TABLE IF NOT EXISTS sweeps(id INTEGER PRIMARY KEY, municipality INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK(state IN ('resending','pending','confirmed','undone')),"
    " old_incarnation BLOB, old_acked_seq INTEGER NOT NULL DEFAULT 0,"
    " old_acked_version INTEGER NOT NULL DEFAULT 0, new_incarnation BLOB NOT NULL,"
    " serial TEXT NOT NULL, address TEXT NOT NULL, started_ms INTEGER NOT NULL,"
    " swept_ms INTEGER, records INTEGER NOT NULL DEFAULT 0, decided_by TEXT,"
    " decided_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS sweeps_municipality ON sweeps(municipality, state);"
    "CREATE TABLE IF NOT EXISTS swept_records(sweep INTEGER NOT NULL,"
    " municipality INTEGER NOT NULL, id BLOB NOT NULL, kind INTEGER NOT NULL,"
    " version INTEGER NOT NULL, deleted INTEGER NOT NULL, incarnation BLOB NOT NULL,"
    " body BLOB NOT NULL, PRIMARY KEY(sweep, id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS incarnation_events(at_ms INTEGER NOT NULL,"
    " municipality INTEGER NOT NULL, incarnation BLOB NOT NULL, serial TEXT NOT NULL,"
    " address TEXT NOT NULL, what TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS incarnation_events_municipality"
    " ON incarnation_events(municipality, at_ms);";

int sweeps_init(sqlite3 *db)
{
    return store_exec(db, sweeps__schema) == 0 ? 0 : REINT_EDB;
}

/* Runs sql with ?1 = a, ?2 = b (integers) and ?3 = blob (16 bytes), those it has. */
static int sweeps__exec(sqlite3 *db, const char *sql, int64_t a, int64_t b, const uint8_t *blob)
{
    sqlite3_stmt *st = store_prepare(db, sql);
    if (st == NULL)
        return REINT_EDB;
    int n = sqlite3_bind_parameter_count(st);
    sqlite3_bind_int64(st, 1, a);
    if (n >= 2)
        sqlite3_bind_int64(st, 2, b);
    if (n >= 3 && blob)
        sqlite3_bind_blob(st, 3, blob, 16, SQLITE_STATIC);
    int rc = store_step_done(db, st);
    sqlite3_finalize(st);
    return rc == 0 ? 0 : REINT_EDB;
}

/* Records a security event and logs it. */
static int sweeps__event(sqlite3 *db, const sweeps_peer *p, int64_t now, const char *what)
{
    char inc[33];
    hex_encode(p->incarnation, 16, inc);
    log_security("municipality:%u (certificate serial %s, %s, store incarnation %.8s): %s",
                 p->municipality, p->serial, p->addr, inc, what);
    sqlite3_stmt *st = store_prepare(db, "INSERT INTO incarnation_events(at_ms, municipality,"
                                         " incarnation, serial, address, what)"
                                         " VALUES(?1,?2,?3,?4,?5,?6)");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, p->municipality);
    sqlite3_bind_blob(st, 3, p->incarnation, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, what, -1, SQLITE_STATIC);
    int rc = store_step_done(db, st);
    sqlite3_finalize(st);
    return rc == 0 ? 0 : REINT_EDB;
}

/* Puts a sweep's kept records back (the newest version of each id wins, as in every upsert),
 * tells cb about each, and forgets them. */
static int sweeps__restore(sqlite3 *db, int64_t id, sweeps_restored_cb cb, void *ud, int64_t *n)
{
    *n = 0;
    sqlite3_stmt *st =
        store_prepare(db, "SELECT municipality, id FROM swept_records WHERE sweep=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, id);
    int step, rc = 0;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) == 16 && cb)
            rc = cb(ud, (uint32_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1));
        (*n)++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = REINT_EDB;
    sqlite3_finalize(st);
    if (rc != 0)
        return rc;
    rc = sweeps__exec(
        db,
        "INSERT INTO records(municipality, id, kind, version, deleted, incarnation, body)"
        " SELECT municipality, id, kind, version, deleted, incarnation, body FROM swept_records"
        " WHERE sweep=?1 ON CONFLICT(municipality, id) DO UPDATE SET"
        " kind=iif(excluded.version>version, excluded.kind, kind),"
        " deleted=iif(excluded.version>version, excluded.deleted, deleted),"
        " body=iif(excluded.version>version, excluded.body, body),"
        " incarnation=iif(excluded.version>version, excluded.incarnation, incarnation),"
        " version=max(version, excluded.version)",
        id, 0, NULL);
    return rc ? rc : sweeps__exec(db, "DELETE FROM swept_records WHERE sweep=?1", id, 0, NULL);
}

static int sweeps__decide(sqlite3 *db, int64_t id, const char *state, const char *who, int64_t now)
{
    sqlite3_stmt *st =
        store_prepare(db, "UPDATE sweeps SET state=?2, decided_by=?3, decided_ms=?4 WHERE id=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, who, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    int rc = store_step_done(db, st);
    sqlite3_finalize(st);
    return rc == 0 ? 0 : REINT_EDB;
}

int sweeps_hello(sqlite3 *db, const sweeps_peer *p, const uint8_t *cur, uint64_t cur_seq,
                 uint64_t cur_version, int64_t now, sweeps_restored_cb cb, void *ud, uint64_t *seq,
                 uint64_t *version, int *returned)
{
    *seq = *version = 0;
    *returned = 0;
    /* Has this incarnation been displaced before, or displaced another? */
    sqlite3_stmt *st =
        store_prepare(db, "SELECT 1 FROM sweeps WHERE municipality=?1 AND (old_incarnation=?2"
                          " OR new_incarnation=?2) LIMIT 1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, p->municipality);
    sqlite3_bind_blob(st, 2, p->incarnation, 16, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return REINT_EDB;
    *returned = step == SQLITE_ROW;
    /* The newest open sweep that displaced it. */
    st = store_prepare(db, "SELECT id, state, old_acked_seq, old_acked_version, records"
                           " FROM sweeps WHERE municipality=?1 AND old_incarnation=?2"
                           " AND state IN ('resending','pending') ORDER BY id DESC LIMIT 1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, p->municipality);
    sqlite3_bind_blob(st, 2, p->incarnation, 16, SQLITE_STATIC);
    step = sqlite3_step(st);
    int64_t id = 0;
    int pending = 0;
    if (step == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        pending = strcmp((const char *)sqlite3_column_text(st, 1), "pending") == 0;
        *seq = (uint64_t)sqlite3_column_int64(st, 2);
        *version = (uint64_t)sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return REINT_EDB;
    char what[256];
    int rc;
    if (id) {
        int64_t n = 0;
        if (pending && (rc = sweeps__restore(db, id, cb, ud, &n)) != 0)
            return rc;
        if ((rc = sweeps__decide(db, id, "undone", "its displaced incarnation reconnected", now)) !=
            0)
            return rc;
        /* Every other open change of the municipality ends with it: it holds the position. */
        if ((rc = sweeps__exec(db,
                               "UPDATE sweeps SET state='undone', decided_by='an older"
                               " incarnation reconnected', decided_ms=?2 WHERE municipality=?1"
                               " AND state='resending'",
                               p->municipality, now, NULL)) != 0)
            return rc;
        snprintf(what, sizeof(what),
                 "the incarnation that sweep #%lld displaced reconnected: the sweep is undone "
                 "(%lld records restored) and it resumes where it was",
                 (long long)id, (long long)n);
        rc = sweeps__event(db, p, now, what);
        return rc ? rc : SWEEPS_RETURN;
    }
    if (*returned) {
        snprintf(what, sizeof(what),
                 "an incarnation seen before is back: two stores are alternating under one "
                 "municipality's certificate");
        if ((rc = sweeps__event(db, p, now, what)) != 0)
            return rc;
    }
    if (cur == NULL)
        return SWEEPS_FRESH; /* the municipality's first store: nothing to displace */
    /* One open change per municipality: a newer incarnation takes over a resend that never
     * finished, and keeps the position of the store that was complete before it. */
    st = store_prepare(db, "UPDATE sweeps SET new_incarnation=?2, serial=?3, address=?4,"
                           " started_ms=?5 WHERE municipality=?1 AND state='resending'");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, p->municipality);
    sqlite3_bind_blob(st, 2, p->incarnation, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    rc = store_step_done(db, st);
    sqlite3_finalize(st);
    if (rc != 0)
        return REINT_EDB;
    if (sqlite3_changes(db) > 0)
        return SWEEPS_FRESH;
    st = store_prepare(db, "INSERT INTO sweeps(municipality, state, old_incarnation,"
                           " old_acked_seq, old_acked_version, new_incarnation, serial, address,"
                           " started_ms) VALUES(?1,'resending',?2,?3,?4,?5,?6,?7,?8)");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, p->municipality);
    sqlite3_bind_blob(st, 2, cur, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)cur_seq);
    sqlite3_bind_int64(st, 4, (int64_t)cur_version);
    sqlite3_bind_blob(st, 5, p->incarnation, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, p->addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now);
    rc = store_step_done(db, st);
    sqlite3_finalize(st);
    return rc == 0 ? SWEEPS_FRESH : REINT_EDB;
}

int sweeps_resend_complete(sqlite3 *db, const sweeps_peer *p, int64_t now, int64_t *swept,
                           int64_t *sweep_id)
{
    *swept = 0;
    *sweep_id = 0;
    sqlite3_stmt *st = store_prepare(db, "SELECT id FROM sweeps WHERE municipality=?1"
                                         " AND new_incarnation=?2 AND state='resending'"
                                         " ORDER BY id DESC LIMIT 1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, p->municipality);
    sqlite3_bind_blob(st, 2, p->incarnation, 16, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *sweep_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return REINT_EDB;
    if (*sweep_id == 0) {
        /* No change recorded at Hello (a store older than sweeps, or the municipality's first
         * store): one is made now, displacing nothing that could resume, unless there is
         * nothing to set aside (a first enrolment listed a sweep of 0 records as "confirmed",
         * noise for an admin told that sweeps are security matters). */
        st = store_prepare(db, "SELECT EXISTS(SELECT 1 FROM records WHERE municipality=?1"
                               " AND incarnation<>?2)");
        if (st == NULL)
            return REINT_EDB;
        sqlite3_bind_int64(st, 1, p->municipality);
        sqlite3_bind_blob(st, 2, p->incarnation, 16, SQLITE_STATIC);
        step = sqlite3_step(st);
        int older = step == SQLITE_ROW && sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (step != SQLITE_ROW)
            return REINT_EDB;
        if (!older)
            return 0;
        st = store_prepare(db, "INSERT INTO sweeps(municipality, state, new_incarnation, serial,"
                               " address, started_ms) VALUES(?1,'resending',?2,?3,?4,?5)");
        if (st == NULL)
            return REINT_EDB;
        sqlite3_bind_int64(st, 1, p->municipality);
        sqlite3_bind_blob(st, 2, p->incarnation, 16, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, p->serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, p->addr, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, now);
        int rc = store_step_done(db, st);
        sqlite3_finalize(st);
        if (rc != 0)
            return REINT_EDB;
        *sweep_id = sqlite3_last_insert_rowid(db);
    }
    int rc = sweeps__exec(db,
                          "INSERT INTO swept_records(sweep, municipality, id, kind, version,"
                          " deleted, incarnation, body) SELECT ?2, municipality, id, kind,"
                          " version, deleted, incarnation, body FROM records"
                          " WHERE municipality=?1 AND incarnation<>?3",
                          p->municipality, *sweep_id, p->incarnation);
    if (rc != 0)
        return rc;
    *swept = sqlite3_changes(db);
    if (*swept > 0 && (rc = sweeps__exec(db,
                                         "DELETE FROM records WHERE municipality=?1"
                                         " AND incarnation<>?3",
                                         p->municipality, 0, p->incarnation)) != 0)
        return rc;
    st = store_prepare(db, "UPDATE sweeps SET state=?2, swept_ms=?3, records=?4,"
                           " decided_by=iif(?4=0, 'nothing was swept', NULL),"
                           " decided_ms=iif(?4=0, ?3, NULL) WHERE id=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, *sweep_id);
    sqlite3_bind_text(st, 2, *swept > 0 ? "pending" : "confirmed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, *swept);
    rc = store_step_done(db, st);
    sqlite3_finalize(st);
    if (rc != 0)
        return REINT_EDB;
    if (*swept > 0) {
        char what[256];
        snprintf(what, sizeof(what),
                 "full resend complete: %lld records of older incarnations no longer count; they "
                 "are kept until a hub admin confirms sweep #%lld, and come back if it is undone "
                 "or the older incarnation reconnects",
                 (long long)*swept, (long long)*sweep_id);
        return sweeps__event(db, p, now, what);
    }
    return 0;
}

/* The state and municipality of sweep id: 0, REINT_ENOTFOUND, REINT_ESTALE (not pending). */
static int sweeps__pending(sqlite3 *db, int64_t id, uint32_t *municipality)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT municipality, state FROM sweeps WHERE id=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW) {
        *municipality = (uint32_t)sqlite3_column_int64(st, 0);
        rc = strcmp((const char *)sqlite3_column_text(st, 1), "pending") == 0 ? 0 : REINT_ESTALE;
    } else {
        rc = step == SQLITE_DONE ? REINT_ENOTFOUND : REINT_EDB;
    }
    sqlite3_finalize(st);
    return rc;
}

static int sweeps__admin(sqlite3 *db, int64_t id, const char *who, int64_t now, int undo,
                         sweeps_restored_cb cb, void *ud, uint32_t *municipality)
{
    if (store_exec(db, "BEGIN IMMEDIATE") != 0)
        return REINT_EDB;
    int64_t n = 0;
    int rc = sweeps__pending(db, id, municipality);
    if (rc == 0)
        rc = undo ? sweeps__restore(db, id, cb, ud, &n)
                  : sweeps__exec(db, "DELETE FROM swept_records WHERE sweep=?1", id, 0, NULL);
    if (rc == 0)
        rc = sweeps__decide(db, id, undo ? "undone" : "confirmed", who, now);
    if (rc == 0 && store_exec(db, "COMMIT") != 0)
        rc = REINT_EDB;
    if (rc != 0) {
        store_exec(db, "ROLLBACK");
        return rc;
    }
    log_security("sweep #%lld of municipality:%u %s by %s%s", (long long)id, *municipality,
                 undo ? "undone" : "confirmed", who,
                 undo ? ": its records count again" : ": its kept records are dropped");
    return 0;
}

int sweeps_confirm(sqlite3 *db, int64_t id, const char *who, int64_t now, uint32_t *municipality)
{
    return sweeps__admin(db, id, who, now, 0, NULL, NULL, municipality);
}

int sweeps_undo(sqlite3 *db, int64_t id, const char *who, int64_t now, sweeps_restored_cb cb,
                void *ud, uint32_t *municipality)
{
    return sweeps__admin(db, id, who, now, 1, cb, ud, municipality);
}

int sweeps_count(sqlite3 *db, sweeps_counts *c)
{
    memset(c, 0, sizeof(*c));
    sqlite3_stmt *st = store_prepare(
        db, "SELECT (SELECT count(*) FROM sweeps WHERE state='pending'),"
            " (SELECT count(*) FROM swept_records), (SELECT count(*) FROM incarnation_events)");
    if (st == NULL)
        return REINT_EDB;
    int rc = REINT_EDB;
    if (sqlite3_step(st) == SQLITE_ROW) {
        c->pending = sqlite3_column_int64(st, 0);
        c->kept_records = sqlite3_column_int64(st, 1);
        c->events = sqlite3_column_int64(st, 2);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int sweeps_list(sqlite3 *db, long limit, json_t **out)
{
    *out = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, municipality, state, records, serial, address, started_ms,"
                           " swept_ms, decided_by, decided_ms, hex(old_incarnation),"
                           " hex(new_incarnation) FROM sweeps ORDER BY id DESC LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        /* A store the ingest has not opened since sweeps came has none. */
        *out = json_pack("{s:[]}", "sweeps");
        return *out ? 0 : REINT_ENOMEM;
    }
    sqlite3_bind_int64(st, 1, limit);
    json_t *list = json_array();
    int step, oom = list == NULL;
    while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_pack(
            "{s:I, s:I, s:s, s:I, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:s}", "id",
            (json_int_t)sqlite3_column_int64(st, 0), "municipality",
            (json_int_t)sqlite3_column_int64(st, 1), "state",
            (const char *)sqlite3_column_text(st, 2), "records",
            (json_int_t)sqlite3_column_int64(st, 3), "certificate_serial",
            (const char *)sqlite3_column_text(st, 4), "address",
            (const char *)sqlite3_column_text(st, 5), "started_ms",
            (json_int_t)sqlite3_column_int64(st, 6), "swept_ms",
            sqlite3_column_type(st, 7) == SQLITE_NULL ? json_null()
                                                      : json_integer(sqlite3_column_int64(st, 7)),
            "decided_by",
            sqlite3_column_type(st, 8) == SQLITE_NULL
                ? json_null()
                : json_string((const char *)sqlite3_column_text(st, 8)),
            "decided_ms",
            sqlite3_column_type(st, 9) == SQLITE_NULL ? json_null()
                                                      : json_integer(sqlite3_column_int64(st, 9)),
            "old_incarnation",
            sqlite3_column_bytes(st, 10) ? json_string((const char *)sqlite3_column_text(st, 10))
                                         : json_null(),
            "new_incarnation", (const char *)sqlite3_column_text(st, 11));
        oom = o == NULL || json_array_append_new(list, o) != 0;
    }
    int failed = !oom && step != SQLITE_DONE;
    sqlite3_finalize(st);
    if (oom || failed) {
        json_decref(list);
        return oom ? REINT_ENOMEM : REINT_EDB;
    }
    *out = json_pack("{s:o}", "sweeps", list);
    return *out ? 0 : REINT_ENOMEM;
}
