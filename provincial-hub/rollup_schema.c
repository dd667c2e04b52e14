/* The rollup engine's tables in hub.db, the version of their shape, the prepared statements
 * and the engine's settings in meta (rollup_internal.h). */
#include <stdio.h>

#include "log.h"
#include "rollup_internal.h"
#include "store.h"
#include "testhook.h"

/* Bumped whenever the shadow tables change shape: the engine then drops and rebuilds them. */
/* 3: a snapshot's cells are one blob (rollup_blobs) instead of one row each (rollup_cells,
 * now a virtual table over the blobs).
 * 4: shadow rows are keyed by (municipality, id), as the hub's records are since protocol
 * version 2: the same id in two municipalities is two records, and a record id (a keyed
 * hash) is random, so no index is keyed by the id alone.
 * 5: rollup_enrolled carries the calendar a municipality's months are due in (bs).
 * 6: persons, services and enterprises are placed by their month pair (ad, bs: Gregorian and
 * BS YYYYMM) instead of a day, as protocol version 2 carries them; a service carries the last
 * BS month of its follow-up window (due), an enterprise its owner's first loan months.
 * 7: the shadow is unchanged, but the cells carry what the federal tier's disclosure control
 * needs (a sum's top contributions and keys of its contributions, jobs_created by owner, a
 * ratio's numerator key): the rebuild computes and sends every snapshot again. */
#define ROLLUP_SCHEMA_VERSION 7

static const char *rollup__drop_shadow =
    "DROP TABLE IF EXISTS rollup_person; DROP TABLE IF EXISTS rollup_service;"
    "DROP TABLE IF EXISTS rollup_enterprise; DROP TABLE IF EXISTS rollup_availability;"
    "DROP TABLE IF EXISTS rollup_close; DROP TABLE IF EXISTS rollup_cells;"
    "DROP TABLE IF EXISTS rollup_enrolled;"
    "DELETE FROM meta WHERE key='rollup_built';";

/* After a shadow of another shape was dropped: every snapshot is written again by the
 * rebuild (a digest of 0 matches nothing), so that cells stored in an older shape are
 * replaced; each then goes out with a new revision. */
static const char *rollup__rewrite_all = "UPDATE rollup_snapshots SET digest=0";

/* The shadow tables are clustered by (municipality, Gregorian month, BS month), so that
 * computing a period is one sequential range scan; a service and an enterprise also carry
 * their person's sex and category (and an enterprise its owner's earliest delivered loan
 * months), kept up to date when the person or the loan changes, so that the scan needs no
 * join. No day of a person's event is kept: months are YYYYMM integers. */
static const char *rollup__schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rollup_person(id BLOB NOT NULL, municipality INTEGER NOT NULL,"
    " ad INTEGER NOT NULL, bs INTEGER NOT NULL, category INTEGER NOT NULL,"
    " sex INTEGER NOT NULL, age_band INTEGER NOT NULL, caste_group INTEGER NOT NULL,"
    " disability INTEGER NOT NULL, country INTEGER NOT NULL, intention INTEGER NOT NULL,"
    " ckey INTEGER NOT NULL, PRIMARY KEY(municipality, ad, bs, id)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS rollup_person_id ON rollup_person(municipality, id);"
    "CREATE TABLE IF NOT EXISTS rollup_service(id BLOB NOT NULL, municipality INTEGER NOT NULL,"
    " person BLOB NOT NULL, ad INTEGER NOT NULL, bs INTEGER NOT NULL, due INTEGER NOT NULL,"
    " type INTEGER NOT NULL, status INTEGER NOT NULL, provider INTEGER NOT NULL,"
    " programme INTEGER NOT NULL, amount INTEGER NOT NULL, ckey INTEGER NOT NULL,"
    " pkey INTEGER NOT NULL, psex INTEGER NOT NULL, pcategory INTEGER NOT NULL,"
    " PRIMARY KEY(municipality, ad, bs, id)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS rollup_service_id ON rollup_service(municipality, id);"
    "CREATE INDEX IF NOT EXISTS rollup_service_person ON"
    " rollup_service(municipality, person, type, bs);"
    "CREATE INDEX IF NOT EXISTS rollup_service_referred ON rollup_service(due) WHERE status=1;"
    "CREATE TABLE IF NOT EXISTS rollup_enterprise(id BLOB NOT NULL,"
    " municipality INTEGER NOT NULL, owner BLOB NOT NULL, ad INTEGER NOT NULL,"
    " bs INTEGER NOT NULL, action INTEGER NOT NULL, sector INTEGER NOT NULL,"
    " employees INTEGER NOT NULL, status INTEGER NOT NULL, ckey INTEGER NOT NULL,"
    " osex INTEGER NOT NULL, ocategory INTEGER NOT NULL, loan_ad INTEGER, loan_bs INTEGER,"
    " PRIMARY KEY(municipality, ad, bs, id)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS rollup_enterprise_id ON"
    " rollup_enterprise(municipality, id);"
    "CREATE INDEX IF NOT EXISTS rollup_enterprise_owner ON rollup_enterprise(municipality, owner);"
    "CREATE TABLE IF NOT EXISTS rollup_availability(municipality INTEGER NOT NULL,"
    " id BLOB NOT NULL, service INTEGER NOT NULL, provider INTEGER NOT NULL,"
    " available INTEGER NOT NULL, as_of_day INTEGER NOT NULL, PRIMARY KEY(municipality, id))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rollup_close(municipality INTEGER NOT NULL, id BLOB NOT NULL,"
    " bs INTEGER NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL,"
    " closed_day INTEGER NOT NULL, PRIMARY KEY(municipality, id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollup_close_month ON rollup_close(municipality, bs, year, month);"
    "CREATE TABLE IF NOT EXISTS rollup_enrolled(municipality INTEGER PRIMARY KEY,"
    " first_day INTEGER NOT NULL, bs INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rollup_snapshots(municipality INTEGER NOT NULL,"
    " period TEXT NOT NULL, revision INTEGER NOT NULL, dirty INTEGER NOT NULL,"
    " digest INTEGER NOT NULL, ncells INTEGER NOT NULL, PRIMARY KEY(municipality, period))"
    " WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollup_snapshots_dirty ON rollup_snapshots(dirty) WHERE dirty=1;"
    "CREATE TABLE IF NOT EXISTS rollup_blobs(municipality INTEGER NOT NULL, period TEXT NOT NULL,"
    " cells BLOB NOT NULL, PRIMARY KEY(municipality, period));"
    "CREATE TABLE IF NOT EXISTS rollup_outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " municipality INTEGER NOT NULL, period TEXT NOT NULL, revision INTEGER NOT NULL,"
    " UNIQUE(municipality, period));"
    /* Months a reviewer returned (rollup_set_returned): an input of the engine like the
     * records, not a shadow, so a rebuild keeps it. */
    "CREATE TABLE IF NOT EXISTS rollup_returned(municipality INTEGER NOT NULL,"
    " bs INTEGER NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL,"
    " PRIMARY KEY(municipality, bs, year, month)) WITHOUT ROWID;";

const char *const rollup__schema_sql[S_N] = {
    [S_META_GET] = "SELECT value FROM meta WHERE key=?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1,?2)"
                   " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
};

int rollup__schema_open(sqlite3 *db, char *err, size_t errlen)
{
    char *msg = NULL;
    int64_t v = 0;
    /* A shadow of another shape is dropped and rebuilt; snapshots, cells and the outbox keep
     * their shape, so revisions carry on. */
    int stale = 0, rc = 0;
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID",
                     NULL, NULL, &msg) == SQLITE_OK) {
        /* Only an absent or other version is stale: a read error is not taken for one, since
         * dropping the shadow of a store that could not be read is no cure. */
        rc = store_meta_get_int(db, "rollup_schema", &v);
        if (rc != 0 && rc != REINT_ENOTFOUND) {
            snprintf(err, errlen, "rollup schema: cannot read its version: %s", sqlite3_errmsg(db));
            return REINT_EDB;
        }
        stale = rc == REINT_ENOTFOUND || v != ROLLUP_SCHEMA_VERSION;
        if (stale && rc == 0)
            log_warn("rollup: shadow tables of version %lld, this hub's are %d: rebuilding them",
                     rc == 0 ? (long long)v : 0LL, ROLLUP_SCHEMA_VERSION);
    }
    /* The shape change is one savepoint: a failure half way leaves the old shape and its
     * version, not a dropped shadow under a new version number. */
    if (msg != NULL || sqlite3_exec(db, "SAVEPOINT rollup_schema", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    if ((stale && (sqlite3_exec(db, rollup__drop_shadow, NULL, NULL, &msg) != SQLITE_OK ||
                   store_meta_set_int(db, "rollup_schema", ROLLUP_SCHEMA_VERSION) != 0)) ||
        sqlite3_exec(db, rollup__schema, NULL, NULL, &msg) != SQLITE_OK ||
        (stale && sqlite3_exec(db, rollup__rewrite_all, NULL, NULL, &msg) != SQLITE_OK) ||
        sqlite3_exec(db, "RELEASE rollup_schema", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "rollup schema: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK TO rollup_schema; RELEASE rollup_schema", NULL, NULL, NULL);
        return REINT_EDB;
    }
    if (rollup_cells_register(db) != SQLITE_OK) {
        snprintf(err, errlen, "rollup schema: rollup_cells: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    return 0;
fail:
    snprintf(err, errlen, "rollup schema: %s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return REINT_EDB;
}

int rollup__prepare(rollup *r, const char *const sql[S_N], char *err, size_t errlen)
{
    for (int i = 0; i < S_N; i++) {
        if (sql[i] == NULL)
            continue;
        if (sqlite3_prepare_v3(r->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->q[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "rollup: %s: %s", sqlite3_errmsg(r->db), sql[i]);
            return REINT_EDB;
        }
    }
    return 0;
}

int rollup__fail(rollup *r, const char *what)
{
    log_error("rollup: %s: %s", what, sqlite3_errmsg(r->db));
    return REINT_EDB;
}

int rollup__exec(rollup *r, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return rollup__fail(r, sqlite3_sql(st));
    return 0;
}

int rollup__scan_step(sqlite3_stmt *st)
{
    if (testhook_fire("rollup_scan"))
        return SQLITE_IOERR;
    return sqlite3_step(st);
}

int rollup__step_fail(rollup *r, sqlite3_stmt *st, int step)
{
    /* The step's own code names the failure: a fault injected by rollup__scan_step() leaves no
     * message on the connection. */
    if (sqlite3_errcode(r->db) == step)
        log_error("rollup: %s: %s", sqlite3_sql(st), sqlite3_errmsg(r->db));
    else
        log_error("rollup: %s: %s", sqlite3_sql(st), sqlite3_errstr(step));
    return REINT_EDB;
}

void rollup__bind_mp(sqlite3_stmt *st, uint32_t municipality, const char *period)
{
    sqlite3_bind_int64(st, 1, municipality);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
}

int rollup__meta_get(rollup *r, const char *key, int64_t *v)
{
    sqlite3_stmt *st = r->q[S_META_GET];
    int rc = REINT_ENOTFOUND;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        rc = rollup__fail(r, key);
    }
    sqlite3_reset(st);
    return rc;
}

int rollup__meta_set(rollup *r, const char *key, int64_t v)
{
    sqlite3_stmt *st = r->q[S_META_SET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return rollup__exec(r, st);
}
