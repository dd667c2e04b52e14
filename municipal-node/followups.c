#include "followups.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "record.h"
#include "store.h"

/* local_field(fields, i): value i of a local row (localrow.c); ?1 = the service's provider
 * column, ?2 and ?3 = the person's full_name and phone columns, ?4 = the service's programme
 * column. */
static const char *followups__sql =
    "SELECT s.person_local_id, s.day, s.service, s.local_id,"
    " local_field(r.fields, ?1), p.local_id,"
    " local_field(p.fields, ?2), local_field(p.fields, ?3), local_field(r.fields, ?4)"
    " FROM local_services s"
    " JOIN records r ON r.kind = 2 AND r.local_id = s.local_id AND r.live = 1"
    " JOIN records p ON p.kind = 1 AND p.local_id = s.person_local_id AND p.live = 1"
    " WHERE s.status = 1 AND NOT EXISTS (SELECT 1 FROM local_services d"
    "  WHERE d.person_local_id = s.person_local_id AND d.service = s.service"
    "  AND d.status = 2 AND d.day >= s.day)"
    " ORDER BY s.day, s.person_local_id, s.local_id";

/* Text column i as a JSON string, JSON null for an SQL NULL; NULL when out of memory (the
 * values were checked as UTF-8 at intake, so json_string fails on memory only). SQLite's
 * advice for telling its own out-of-memory NULL from an SQL NULL is to ask sqlite3_errcode
 * at once. */
static json_t *followups__text(sqlite3 *db, sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    if (s == NULL)
        return sqlite3_errcode(db) == SQLITE_NOMEM ? NULL : json_null();
    return json_string((const char *)s);
}

/* Sets key of o to v, taking v's reference; 0, or -1 when v is NULL or the set failed. */
static int followups__set(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

/* Adds the referral of the current row to its person's entry (made here for the person's
 * first referral). Returns 0 or REINT_ENOMEM. */
static int followups__row(sqlite3 *db, sqlite3_stmt *st, int bs, int32_t today, json_t *persons,
                          json_t *index)
{
    char d[16];
    const char *pkey = (const char *)sqlite3_column_text(st, 0);
    if (pkey == NULL) /* the column is NOT NULL: this is SQLite out of memory */
        return REINT_ENOMEM;
    int32_t day = sqlite3_column_int(st, 1);
    json_t *p = json_object_get(index, pkey);
    if (p == NULL) {
        p = json_object();
        if (p == NULL || json_array_append_new(persons, p) != 0)
            return REINT_ENOMEM;
        if (followups__set(p, "local_id", followups__text(db, st, 5)) != 0 ||
            followups__set(p, "full_name", followups__text(db, st, 6)) != 0 ||
            followups__set(p, "phone", followups__text(db, st, 7)) != 0 ||
            followups__set(p, "days_waiting", json_integer(today - day)) != 0 ||
            followups__set(p, "referrals", json_array()) != 0 ||
            json_object_set(index, pkey, p) != 0)
            return REINT_ENOMEM;
    }
    json_t *ref = json_object();
    if (ref == NULL || json_array_append_new(json_object_get(p, "referrals"), ref) != 0)
        return REINT_ENOMEM;
    field_format_day(bs, day, d);
    if (followups__set(ref, "local_id", followups__text(db, st, 3)) != 0 ||
        followups__set(ref, "service",
                       json_string(record_enum_name(&reint__v1__service_type__descriptor,
                                                    sqlite3_column_int(st, 2)))) != 0 ||
        followups__set(ref, "date", json_string(d)) != 0 ||
        followups__set(ref, "days_waiting", json_integer(today - day)) != 0 ||
        followups__set(ref, "provider", followups__text(db, st, 4)) != 0 ||
        followups__set(ref, "programme", followups__text(db, st, 8)) != 0)
        return REINT_ENOMEM;
    return 0;
}

int followups_json(intake *in, int32_t today, json_t **out)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    int bs = intake_calendar_bs(in);
    sqlite3_stmt *st = NULL;
    json_t *root = NULL, *persons = NULL, *index = NULL;
    char d[16];
    int rc = REINT_EDB, src;
    *out = NULL;
    if (today == 0)
        today = intake_today(in);
    st = store_prepare(db, followups__sql);
    if (st == NULL)
        goto fail;
    if (sqlite3_bind_int(st, 1, FIELD_SERVICE_PROVIDER) != SQLITE_OK ||
        sqlite3_bind_int(st, 2, FIELD_PERSON_FULL_NAME) != SQLITE_OK ||
        sqlite3_bind_int(st, 3, FIELD_PERSON_PHONE) != SQLITE_OK ||
        sqlite3_bind_int(st, 4, FIELD_SERVICE_PROGRAMME) != SQLITE_OK)
        goto fail;
    rc = REINT_ENOMEM;
    /* index maps a person's local_id to its entry in persons, which is in the order of the
     * first referral, the longest waiting first. */
    root = json_object();
    persons = json_array();
    index = json_object();
    if (root == NULL || persons == NULL || index == NULL)
        goto fail;
    field_format_day(bs, today, d);
    if (followups__set(root, "today", json_string(d)) != 0 ||
        json_object_set(root, "persons", persons) != 0)
        goto fail;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = followups__row(db, st, bs, today, persons, index)) != 0)
            goto fail;
    }
    if (src != SQLITE_DONE) {
        rc = REINT_EDB;
        goto fail;
    }
    sqlite3_finalize(st);
    json_decref(index);
    json_decref(persons);
    *out = root;
    return 0;
fail:
    if (rc == REINT_EDB)
        log_error("followups: the store failed: %s", sqlite3_errmsg(db));
    else
        log_error("followups: out of memory");
    sqlite3_finalize(st);
    json_decref(index);
    json_decref(persons);
    json_decref(root);
    return rc;
}

/* A string member of o, or dflt when it is null or absent. */
static const char *followups__str(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

int followups_print(intake *in, int32_t today, FILE *f)
{
    json_t *root = NULL;
    int rc = followups_json(in, today, &root);
    if (rc != 0)
        return rc;
    json_t *persons = json_object_get(root, "persons");
    const char *day = followups__str(root, "today", "");
    size_t np = json_array_size(persons), nr = 0, i, j;
    json_t *p, *ref;
    json_array_foreach(persons, i, p) nr += json_array_size(json_object_get(p, "referrals"));
    if (np == 0) {
        fprintf(f, "No pending referrals on %s.\n", day);
    } else {
        fprintf(f, "Pending referrals on %s: %zu for %zu persons, longest waiting first.\n\n", day,
                nr, np);
    }
    json_array_foreach(persons, i, p)
    {
        fprintf(f, "%s  %s  %s  (waiting %lld days)\n", followups__str(p, "local_id", ""),
                followups__str(p, "full_name", "(no name)"),
                followups__str(p, "phone", "(no phone)"),
                (long long)json_integer_value(json_object_get(p, "days_waiting")));
        json_array_foreach(json_object_get(p, "referrals"), j, ref)
        {
            fprintf(f, "    %-12s %-27s referred %s  %4lld days  %s\n",
                    followups__str(ref, "local_id", ""), followups__str(ref, "service", ""),
                    followups__str(ref, "date", ""),
                    (long long)json_integer_value(json_object_get(ref, "days_waiting")),
                    followups__str(ref, "provider", ""));
        }
    }
    json_decref(root);
    if (fflush(f) != 0 || ferror(f)) {
        log_error("followups: cannot write the list: %s", strerror(errno));
        return REINT_EIO;
    }
    return 0;
}
