#include "directives.h"

#include <string.h>

#include "bscal.h"
#include "log.h"
#include "intake.h"
#include "store.h"

int directives_print(sqlite3 *db, int bs, int32_t today, FILE *f)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT body FROM directives ORDER BY serial");
    int shown = 0;
    if (st == NULL)
        return REINT_EDB;
    /* Live persons: their upstream record (coarse attributes), local name and registration
     * date. */
    sqlite3_stmt *ps = store_prepare(
        db, "SELECT record, local_id, local_field(fields, ?1), local_field(fields, ?2)"
            " FROM records WHERE kind = 1 AND live = 1 ORDER BY local_id");
    if (ps == NULL) {
        sqlite3_finalize(st);
        return REINT_EDB;
    }
    sqlite3_bind_int(ps, 1, intake_column_index(INTAKE_PERSON, "full_name"));
    sqlite3_bind_int(ps, 2, intake_column_index(INTAKE_PERSON, "registered_on"));
    int step, pstep = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
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
        {
            while ((pstep = sqlite3_step(ps)) == SQLITE_ROW) {
                Reint__V1__Record *r = reint__v1__record__unpack(
                    NULL, (size_t)sqlite3_column_bytes(ps, 0), sqlite3_column_blob(ps, 0));
                /* A date the node's calendar does not read (it was changed since) is day 0:
                 * eligible only under directives with no registration rule. */
                const char *on = (const char *)sqlite3_column_text(ps, 3);
                int32_t day = 0;
                if (on == NULL || bscal_parse(on, bs, &day) != 0)
                    day = 0;
                if (r && r->body_case == REINT__V1__RECORD__BODY_PERSON &&
                    directive_eligible(d, r->person, day)) {
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
        reint__v1__directive__free_unpacked(d, NULL);
        if (pstep != SQLITE_DONE)
            break;
        fprintf(f, "  %ld participant%s eligible%s\n", eligible, eligible == 1 ? "" : "s",
                eligible > 50 ? " (first 50 listed)" : "");
        shown++;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ps);
    if ((step != SQLITE_DONE && step != SQLITE_ROW) || pstep != SQLITE_DONE) {
        log_error("directives: the store could not be read: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    if (shown == 0)
        fprintf(f, "no directives in force\n");
    return fflush(f) == 0 && !ferror(f) ? 0 : REINT_EIO;
}
