#include "directives.h"

#include <stdlib.h>
#include <string.h>

#include "bscal.h"
#include "dirstore.h"
#include "log.h"
#include "intake.h"
#include "store.h"

/* What each directive in force is told: the directive, then each eligible participant (its
 * local id and name, the name NULL when unknown), then the end with the count. */
typedef struct directives__visit {
    void (*directive)(void *ud, const Reint__V1__Directive *d);
    int (*eligible)(void *ud, long n, const char *local_id, const char *name);
    int (*end)(void *ud, const Reint__V1__Directive *d, long eligible);
    void *ud;
} directives__visit;

/* Walks the directives in force on today with the live participants eligible under each.
 * Returns 0, a callback's non-zero code, or REINT_EDB. */
static int directives__each(sqlite3 *db, int bs, int32_t today, const directives__visit *v)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT body FROM directives ORDER BY serial");
    int rc = 0;
    if (st == NULL)
        return REINT_EDB;
    /* Live persons: their upstream record (coarse attributes), local name, registration date
     * and year of birth. */
    sqlite3_stmt *ps = store_prepare(
        db, "SELECT record, local_id, local_field(fields, ?1), local_field(fields, ?2),"
            " local_field(fields, ?3) FROM records WHERE kind = 1 AND live = 1 ORDER BY local_id");
    if (ps == NULL) {
        sqlite3_finalize(st);
        return REINT_EDB;
    }
    sqlite3_bind_int(ps, 1, intake_column_index(INTAKE_PERSON, "full_name"));
    sqlite3_bind_int(ps, 2, intake_column_index(INTAKE_PERSON, "registered_on"));
    sqlite3_bind_int(ps, 3, intake_column_index(INTAKE_PERSON, "birth_year"));
    /* Ages are this year of the node's calendar less the year of birth, as a clerk counts them
     * (the day of birth is not kept). */
    int year = 0, m, dd;
    if (!bs)
        bscal_ad_from_days(today, &year, &m, &dd);
    else if (bscal_bs_from_days(today, &year, &m, &dd) != 0)
        year = 0;
    int step, pstep = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        Reint__V1__Directive *d = dirstore_decode(st, 0);
        if (d == NULL)
            continue;
        if (d->effective_from_day > today || (d->expires_at_day && d->expires_at_day < today)) {
            reint__v1__directive__free_unpacked(d, NULL);
            continue;
        }
        v->directive(v->ud, d);
        long eligible = 0;
        while (rc == 0 && (pstep = sqlite3_step(ps)) == SQLITE_ROW) {
            Reint__V1__Record *r = reint__v1__record__unpack(
                NULL, (size_t)sqlite3_column_bytes(ps, 0), sqlite3_column_blob(ps, 0));
            /* A date the node's calendar does not read (it was changed since) is day 0:
             * eligible only under directives with no registration rule. */
            const char *on = (const char *)sqlite3_column_text(ps, 3);
            int32_t day = 0;
            if (on == NULL || bscal_parse(on, bs, &day) != 0)
                day = 0;
            int age = -1;
            if (year && sqlite3_column_type(ps, 4) != SQLITE_NULL) {
                const char *by = (const char *)sqlite3_column_text(ps, 4);
                char *end = NULL;
                long born = by ? strtol(by, &end, 10) : 0;
                if (by && end != by && *end == '\0' && born > 0 && born <= year)
                    age = year - (int)born;
            }
            if (r && r->body_case == REINT__V1__RECORD__BODY_PERSON &&
                directive_eligible(d, r->person, day, age)) {
                rc = v->eligible(v->ud, eligible, (const char *)sqlite3_column_text(ps, 1),
                                 (const char *)sqlite3_column_text(ps, 2));
                eligible++;
            }
            if (r)
                reint__v1__record__free_unpacked(r, NULL);
        }
        sqlite3_reset(ps);
        if (rc == 0 && pstep == SQLITE_DONE)
            rc = v->end(v->ud, d, eligible);
        reint__v1__directive__free_unpacked(d, NULL);
        if (pstep != SQLITE_DONE && pstep != SQLITE_ROW)
            break;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ps);
    if (rc != 0)
        return rc;
    if ((step != SQLITE_DONE && step != SQLITE_ROW) || pstep != SQLITE_DONE) {
        log_error("directives: the store could not be read: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    return 0;
}

/* ---- text ------------------------------------------------------------------------------- */

typedef struct directives__text {
    FILE *f;
    int shown;
} directives__text;

static void directives__text_directive(void *ud, const Reint__V1__Directive *d)
{
    directives__text *t = ud;
    char from[16] = "", to[16] = "open";
    bscal_format(d->effective_from_day, 1, from, sizeof(from));
    if (d->expires_at_day)
        bscal_format(d->expires_at_day, 1, to, sizeof(to));
    fprintf(t->f, "directive %llu (key %s): %s\n  in force BS %s .. %s\n  %s\n",
            (unsigned long long)d->serial, d->key_id, d->title ? d->title : "", from, to,
            d->text ? d->text : "");
    for (size_t i = 0; d->eligibility && i < d->eligibility->n_priority_rules; i++)
        fprintf(t->f, "  priority: %s\n", d->eligibility->priority_rules[i]);
}

static int directives__text_eligible(void *ud, long n, const char *local_id, const char *name)
{
    directives__text *t = ud;
    if (n < 50)
        fprintf(t->f, "    eligible: %s %s\n", local_id ? local_id : "", name ? name : "");
    return 0;
}

static int directives__text_end(void *ud, const Reint__V1__Directive *d, long eligible)
{
    directives__text *t = ud;
    (void)d;
    fprintf(t->f, "  %ld participant%s eligible%s\n", eligible, eligible == 1 ? "" : "s",
            eligible > 50 ? " (first 50 listed)" : "");
    t->shown++;
    return 0;
}

int directives_print(sqlite3 *db, int bs, int32_t today, FILE *f)
{
    directives__text t = {f, 0};
    directives__visit v = {directives__text_directive, directives__text_eligible,
                           directives__text_end, &t};
    int rc = directives__each(db, bs, today, &v);
    if (rc != 0)
        return rc;
    if (t.shown == 0)
        fprintf(f, "no directives in force\n");
    return fflush(f) == 0 && !ferror(f) ? 0 : REINT_EIO;
}

/* ---- JSON ------------------------------------------------------------------------------- */

typedef struct directives__json {
    int bs;
    json_t *list;    /* the answer's array */
    json_t *current; /* the directive being filled */
} directives__json;

static void directives__json_directive(void *ud, const Reint__V1__Directive *d)
{
    directives__json *j = ud;
    char from[16] = "", to[16] = "";
    bscal_format(d->effective_from_day, j->bs, from, sizeof(from));
    if (d->expires_at_day)
        bscal_format(d->expires_at_day, j->bs, to, sizeof(to));
    j->current = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s?,s:[],s:[]}", "serial", (json_int_t)d->serial,
                           "key_id", d->key_id ? d->key_id : "", "title", d->title ? d->title : "",
                           "text", d->text ? d->text : "", "from", from, "to",
                           d->expires_at_day ? to : NULL, "eligible", "priority_rules");
    json_t *rules = json_object_get(j->current, "priority_rules");
    for (size_t i = 0; rules && d->eligibility && i < d->eligibility->n_priority_rules; i++)
        if (json_array_append_new(rules, json_string(d->eligibility->priority_rules[i])) != 0) {
            json_decref(j->current); /* directives__json_eligible answers REINT_ENOMEM */
            j->current = NULL;
            break;
        }
}

static int directives__json_eligible(void *ud, long n, const char *local_id, const char *name)
{
    directives__json *j = ud;
    if (j->current == NULL)
        return REINT_ENOMEM;
    if (n >= 50)
        return 0;
    json_t *p = json_pack("{s:s,s:s?}", "local_id", local_id ? local_id : "", "full_name", name);
    if (p == NULL || json_array_append_new(json_object_get(j->current, "eligible"), p) != 0)
        return REINT_ENOMEM;
    return 0;
}

static int directives__json_end(void *ud, const Reint__V1__Directive *d, long eligible)
{
    directives__json *j = ud;
    (void)d;
    json_t *cur = j->current;
    j->current = NULL;
    if (cur == NULL || json_object_set_new(cur, "eligible_count", json_integer(eligible)) != 0 ||
        json_array_append_new(j->list, cur) != 0)
        return REINT_ENOMEM;
    return 0;
}

int directives_json(sqlite3 *db, int bs, int32_t today, json_t **out)
{
    directives__json j = {bs, json_array(), NULL};
    directives__visit v = {directives__json_directive, directives__json_eligible,
                           directives__json_end, &j};
    *out = NULL;
    int rc = j.list ? directives__each(db, bs, today, &v) : REINT_ENOMEM;
    json_decref(j.current);
    if (rc == 0 && (*out = json_pack("{s:O}", "directives", j.list)) == NULL)
        rc = REINT_ENOMEM;
    json_decref(j.list);
    return rc;
}
