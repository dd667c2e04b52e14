#include "directives.h"

#include <string.h>

#include "bscal.h"
#include "log.h"
#include "intake.h"
#include "store.h"

int directives_open(sqlite3 *db)
{
    return store_exec(db, "CREATE TABLE IF NOT EXISTS directives(serial INTEGER PRIMARY KEY,"
                          " key_id TEXT NOT NULL, body BLOB NOT NULL, signature BLOB NOT NULL,"
                          " received_ms INTEGER NOT NULL)");
}

uint64_t directives_last_serial(sqlite3 *db)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT coalesce(max(serial), 0) FROM directives");
    uint64_t v = 0;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        v = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* 1 when serial is held with exactly these body bytes. */
static int directives__held(sqlite3 *db, const Reint__V1__SignedDirective *sd, uint64_t *serial)
{
    Reint__V1__Directive *d = reint__v1__directive__unpack(NULL, sd->body.len, sd->body.data);
    int held = 0;
    if (d == NULL)
        return 0;
    sqlite3_stmt *st = store_prepare(db, "SELECT body FROM directives WHERE serial=?1");
    if (st) {
        sqlite3_bind_int64(st, 1, (int64_t)d->serial);
        if (sqlite3_step(st) == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) == sd->body.len &&
            memcmp(sqlite3_column_blob(st, 0), sd->body.data, sd->body.len) == 0) {
            held = 1;
            *serial = d->serial;
        }
    }
    sqlite3_finalize(st);
    reint__v1__directive__free_unpacked(d, NULL);
    return held;
}

int directives_receive(sqlite3 *db, const directive_keyring *keys,
                       const Reint__V1__SignedDirective *sd, uint64_t *serial, char *err,
                       size_t errlen)
{
    Reint__V1__Directive *d = NULL;
    int rc = directive_verify(keys, sd, directives_last_serial(db), &d, err, errlen);
    if (rc == REINT_EREPLAY && directives__held(db, sd, serial))
        return 0;
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = store_prepare(db, "INSERT INTO directives(serial, key_id, body, signature,"
                                         " received_ms) VALUES(?1,?2,?3,?4,"
                                         " CAST(strftime('%s','now') AS INTEGER)*1000)");
    if (st == NULL) {
        reint__v1__directive__free_unpacked(d, NULL);
        return REINT_EDB;
    }
    sqlite3_bind_int64(st, 1, (int64_t)d->serial);
    sqlite3_bind_text(st, 2, sd->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, sd->body.data, (int)sd->body.len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, sd->signature.data, (int)sd->signature.len, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : REINT_EDB;
    sqlite3_finalize(st);
    if (rc == 0) {
        *serial = d->serial;
        log_info("directive %llu stored: %s", (unsigned long long)d->serial,
                 d->title ? d->title : "");
    }
    reint__v1__directive__free_unpacked(d, NULL);
    return rc;
}

int directives_print(sqlite3 *db, int32_t today, FILE *f)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT body FROM directives ORDER BY serial");
    int shown = 0;
    if (st == NULL)
        return REINT_EDB;
    /* Live persons: their upstream record (coarse attributes) and local name. */
    sqlite3_stmt *ps =
        store_prepare(db, "SELECT record, local_id, local_field(fields, ?1) FROM records"
                          " WHERE kind = 1 AND live = 1 ORDER BY local_id");
    if (ps)
        sqlite3_bind_int(ps, 1, intake_column_index(INTAKE_PERSON, "full_name"));
    while (sqlite3_step(st) == SQLITE_ROW) {
        Reint__V1__Directive *d = reint__v1__directive__unpack(
            NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
        if (d == NULL)
            continue;
        if (d->effective_from_day > today || (d->expires_at_day && d->expires_at_day < today)) {
            reint__v1__directive__free_unpacked(d, NULL);
            continue;
        }
        char from[16] = "", to[16] = "open";
        bscal_format(d->effective_from_day, 1, from, sizeof(from));
        if (d->expires_at_day)
            bscal_format(d->expires_at_day, 1, to, sizeof(to));
        fprintf(f, "directive %llu (key %s): %s\n  in force BS %s .. %s\n  %s\n",
                (unsigned long long)d->serial, d->key_id, d->title ? d->title : "", from, to,
                d->text ? d->text : "");
        long eligible = 0;
        if (ps) {
            while (sqlite3_step(ps) == SQLITE_ROW) {
                Reint__V1__Record *r = reint__v1__record__unpack(
                    NULL, (size_t)sqlite3_column_bytes(ps, 0), sqlite3_column_blob(ps, 0));
                if (r && r->body_case == REINT__V1__RECORD__BODY_PERSON &&
                    directive_eligible(d, r->person)) {
                    if (eligible < 50)
                        fprintf(f, "    eligible: %s %s\n", sqlite3_column_text(ps, 1),
                                sqlite3_column_text(ps, 2)
                                    ? (const char *)sqlite3_column_text(ps, 2)
                                    : "");
                    eligible++;
                }
                if (r)
                    reint__v1__record__free_unpacked(r, NULL);
            }
            sqlite3_reset(ps);
        }
        fprintf(f, "  %ld participant%s eligible%s\n", eligible, eligible == 1 ? "" : "s",
                eligible > 50 ? " (first 50 listed)" : "");
        shown++;
        reint__v1__directive__free_unpacked(d, NULL);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ps);
    if (shown == 0)
        fprintf(f, "no directives in force\n");
    return 0;
}
