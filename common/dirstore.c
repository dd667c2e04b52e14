#include "dirstore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "store.h"

/* A gap wider than this is recorded by its newest serials only (the issuer's serials are
 * consecutive: a wide gap is a relay that withheld many, and the newest matter most). */
#define DIRSTORE_GAP_MAX 1000

int dirstore_open(sqlite3 *db)
{
    return store_exec(db, "CREATE TABLE IF NOT EXISTS directives(serial INTEGER PRIMARY KEY,"
                          " key_id TEXT NOT NULL, body BLOB NOT NULL, signature BLOB NOT NULL,"
                          " received_ms INTEGER NOT NULL);"
                          "CREATE TABLE IF NOT EXISTS directive_gaps(serial INTEGER PRIMARY KEY,"
                          " seen_ms INTEGER NOT NULL)");
}

/* The serial inside sd's body, or 0 when it does not decode. */
static uint64_t dirstore__serial_of(const Reint__V1__SignedDirective *sd)
{
    Reint__V1__Directive *d = reint__v1__directive__unpack(NULL, sd->body.len, sd->body.data);
    uint64_t serial = d ? d->serial : 0;
    reint__v1__directive__free_unpacked(d, NULL);
    return serial;
}

/* 1 when serial is a recorded gap, 0 when not, or REINT_EDB. */
static int dirstore__is_gap(sqlite3 *db, uint64_t serial)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT 1 FROM directive_gaps WHERE serial=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, (int64_t)serial);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : REINT_EDB;
}

/* Records the serials between last and serial (exclusive) as missing, or forgets serial as
 * one (it has arrived). Returns 0 or REINT_EDB. */
static int dirstore__note_gaps(sqlite3 *db, uint64_t last, uint64_t serial)
{
    sqlite3_stmt *st = store_prepare(db, "DELETE FROM directive_gaps WHERE serial=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, (int64_t)serial);
    int rc = store_step_done(db, st);
    sqlite3_finalize(st);
    if (rc != 0 || serial <= last + 1)
        return rc ? REINT_EDB : 0;
    uint64_t from = serial - last - 1 > DIRSTORE_GAP_MAX ? serial - DIRSTORE_GAP_MAX : last + 1;
    log_warn("directive %llu arrived while the newest held is %llu: directives %llu..%llu are "
             "missing; they are asked for until they arrive",
             (unsigned long long)serial, (unsigned long long)last, (unsigned long long)(last + 1),
             (unsigned long long)(serial - 1));
    st = store_prepare(db, "INSERT OR IGNORE INTO directive_gaps(serial, seen_ms) VALUES(?1,?2)");
    if (st == NULL)
        return REINT_EDB;
    for (uint64_t s = from; rc == 0 && s < serial; s++) {
        sqlite3_bind_int64(st, 1, (int64_t)s);
        sqlite3_bind_int64(st, 2, (int64_t)clock_now_ms());
        rc = store_step_done(db, st);
    }
    sqlite3_finalize(st);
    return rc ? REINT_EDB : 0;
}

int dirstore_gaps(sqlite3 *db, uint64_t *out, size_t max, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st =
        store_prepare(db, "SELECT serial FROM directive_gaps ORDER BY serial LIMIT ?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, (int64_t)max);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        out[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : REINT_EDB;
}

int dirstore_gap_count(sqlite3 *db, int64_t *n)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT count(*) FROM directive_gaps");
    if (st == NULL)
        return REINT_EDB;
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : REINT_EDB;
    *n = rc == 0 ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc;
}

int dirstore_last_serial(sqlite3 *db, uint64_t *serial)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT coalesce(max(serial), 0) FROM directives");
    if (st == NULL)
        return REINT_EDB;
    int rc = REINT_EDB;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *serial = (uint64_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        log_error("directives: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

/* 1 when the directive of d's serial is held with exactly these body bytes, 0 when not, or
 * REINT_EDB. */
static int dirstore__held(sqlite3 *db, const Reint__V1__SignedDirective *sd, uint64_t *serial)
{
    Reint__V1__Directive *d = reint__v1__directive__unpack(NULL, sd->body.len, sd->body.data);
    if (d == NULL)
        return 0;
    int held = REINT_EDB;
    sqlite3_stmt *st = store_prepare(db, "SELECT body FROM directives WHERE serial=?1");
    if (st) {
        sqlite3_bind_int64(st, 1, (int64_t)d->serial);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            held = (size_t)sqlite3_column_bytes(st, 0) == sd->body.len &&
                   memcmp(sqlite3_column_blob(st, 0), sd->body.data, sd->body.len) == 0;
            if (held)
                *serial = d->serial;
        } else if (step == SQLITE_DONE) {
            held = 0;
        }
    }
    sqlite3_finalize(st);
    reint__v1__directive__free_unpacked(d, NULL);
    return held;
}

int dirstore_receive(sqlite3 *db, const directive_keyring *keys,
                     const Reint__V1__SignedDirective *sd, uint64_t *serial, int *fresh, char *err,
                     size_t errlen)
{
    Reint__V1__Directive *d = NULL;
    uint64_t last = 0;
    if (fresh)
        *fresh = 0;
    if (dirstore_last_serial(db, &last) != 0) {
        snprintf(err, errlen, "cannot read the directives held");
        return REINT_EDB;
    }
    /* A serial that was missing is taken below the newest held (checked like any other). */
    uint64_t wanted = dirstore__serial_of(sd);
    int gap = wanted && wanted < last ? dirstore__is_gap(db, wanted) : 0;
    if (gap < 0) {
        snprintf(err, errlen, "cannot read the directives held");
        return REINT_EDB;
    }
    uint64_t newest = last;
    int rc = directive_verify(keys, sd, gap ? wanted - 1 : last, &d, err, errlen);
    if (rc == REINT_EREPLAY) {
        int held = dirstore__held(db, sd, serial);
        if (held == 1)
            return 0;
        if (held < 0) {
            snprintf(err, errlen, "cannot read the directives held");
            return REINT_EDB;
        }
    }
    if (rc != 0)
        return rc;
    /* The directive and the serials it shows missing are stored together, or neither: held
     * without its gaps, the missing ones would be refused as replays when they came, and never
     * asked for. A savepoint, so that it holds inside a caller's transaction too. */
    if (store_exec(db, "SAVEPOINT dirstore_receive") != 0) {
        reint__v1__directive__free_unpacked(d, NULL);
        snprintf(err, errlen, "cannot store the directive: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    sqlite3_stmt *st = store_prepare(db, "INSERT INTO directives(serial, key_id, body, signature,"
                                         " received_ms) VALUES(?1,?2,?3,?4,?5)");
    if (st == NULL) {
        snprintf(err, errlen, "cannot store the directive: %s", sqlite3_errmsg(db));
        store_exec(db, "ROLLBACK TO dirstore_receive");
        store_exec(db, "RELEASE dirstore_receive");
        reint__v1__directive__free_unpacked(d, NULL);
        return REINT_EDB;
    }
    sqlite3_bind_int64(st, 1, (int64_t)d->serial);
    sqlite3_bind_text(st, 2, sd->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, sd->body.data, (int)sd->body.len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, sd->signature.data, (int)sd->signature.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)clock_now_ms());
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : REINT_EDB;
    sqlite3_finalize(st);
    if (rc == 0)
        rc = dirstore__note_gaps(db, newest, d->serial);
    if (rc == 0 && store_exec(db, "RELEASE dirstore_receive") != 0)
        rc = REINT_EDB;
    if (rc == 0) {
        *serial = d->serial;
        if (fresh)
            *fresh = 1;
        log_info("directive %llu stored: %s", (unsigned long long)d->serial,
                 d->title ? d->title : "");
    } else {
        snprintf(err, errlen, "cannot store the directive: %s", sqlite3_errmsg(db));
        store_exec(db, "ROLLBACK TO dirstore_receive");
        store_exec(db, "RELEASE dirstore_receive");
    }
    reint__v1__directive__free_unpacked(d, NULL);
    return rc;
}

void dirstore_free_list(Reint__V1__SignedDirective **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i]->key_id);
        free(list[i]->body.data);
        free(list[i]->signature.data);
        free(list[i]);
    }
    free(list);
}

/* A malloc'd copy of column col (at least one byte, so that an empty value is not NULL). */
static uint8_t *dirstore__copy(sqlite3_stmt *st, int col, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(st, col);
    uint8_t *p = malloc(*len ? *len : 1);
    if (p && *len)
        memcpy(p, sqlite3_column_blob(st, col), *len);
    return p;
}

/* Whether to log that the directive serial is held with text now refused: once per serial
 * in ten minutes, as a hub's gap report reads every directive once per municipality row. */
static int dirstore__warn_due(uint64_t serial)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        uint64_t serial;
        int64_t at_ms;
    } warned[16];
    int64_t now = (int64_t)clock_mono_ms();
    size_t oldest = 0;
    int due = 1;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < sizeof(warned) / sizeof(warned[0]); i++) {
        if (warned[i].serial == serial && warned[i].at_ms > 0) {
            due = now - warned[i].at_ms >= 10 * 60 * 1000;
            oldest = i;
            break;
        }
        if (warned[i].at_ms < warned[oldest].at_ms)
            oldest = i;
    }
    if (due) {
        warned[oldest].serial = serial;
        warned[oldest].at_ms = now > 0 ? now : 1;
    }
    pthread_mutex_unlock(&mu);
    return due;
}

Reint__V1__Directive *dirstore_decode(sqlite3_stmt *st, int col)
{
    const uint8_t *body = sqlite3_column_blob(st, col);
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    Reint__V1__Directive *d = reint__v1__directive__unpack(NULL, len, body);
    char why[160];
    if (d == NULL || directive_body_check(d, body, len, why, sizeof(why)) == 0)
        return d;
    if (dirstore__warn_due(d->serial))
        log_warn("directive %llu is held with text the tiers now refuse (%s); it is not shown: "
                 "ask the federal office to issue it again",
                 (unsigned long long)d->serial, why);
    reint__v1__directive__free_unpacked(d, NULL);
    return NULL;
}

int dirstore_load_after(sqlite3 *db, uint64_t after, size_t max, Reint__V1__SignedDirective ***out,
                        size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_prepare(db, "SELECT key_id, body, signature FROM directives"
                                         " WHERE serial > ?1 ORDER BY serial LIMIT ?2");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, (int64_t)after);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    Reint__V1__SignedDirective **list = calloc(max ? max : 1, sizeof(*list));
    int rc = list ? 0 : REINT_ENOMEM, step = SQLITE_DONE;
    size_t k = 0;
    while (rc == 0 && k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
        Reint__V1__SignedDirective *sd = calloc(1, sizeof(*sd));
        if (sd == NULL) {
            rc = REINT_ENOMEM;
            break;
        }
        reint__v1__signed_directive__init(sd);
        list[k++] = sd;
        sd->key_id = strdup((const char *)sqlite3_column_text(st, 0));
        sd->body.data = dirstore__copy(st, 1, &sd->body.len);
        sd->signature.data = dirstore__copy(st, 2, &sd->signature.len);
        if (sd->key_id == NULL || sd->body.data == NULL || sd->signature.data == NULL)
            rc = REINT_ENOMEM;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) {
        log_error("directives: %s", sqlite3_errmsg(db));
        rc = REINT_EDB;
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        if (list)
            dirstore_free_list(list, k);
        return rc;
    }
    *out = list;
    *n = k;
    return 0;
}
