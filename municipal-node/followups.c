#include "followups.h"

#include "log.h"
#include "record.h"
#include "store.h"

/* local_field(fields, i): value i of a local row (localrow.c); ?1 = the service's provider
 * column, ?2 and ?3 = the person's full_name and phone columns. */
static const char *followups__sql =
    "SELECT s.person_local_id, s.day, s.service, s.local_id,"
    " local_field(r.fields, ?1), p.local_id,"
    " local_field(p.fields, ?2), local_field(p.fields, ?3)"
    " FROM local_services s"
    " JOIN records r ON r.kind = 2 AND r.local_id = s.local_id AND r.live = 1"
    " JOIN records p ON p.kind = 1 AND p.local_id = s.person_local_id AND p.live = 1"
    " WHERE s.status = 1 AND NOT EXISTS (SELECT 1 FROM local_services d"
    "  WHERE d.person_local_id = s.person_local_id AND d.service = s.service"
    "  AND d.status = 2 AND d.day >= s.day)"
    " ORDER BY s.day, s.person_local_id, s.local_id";

static json_t *followups__jtext(const unsigned char *s)
{
    return s ? json_string((const char *)s) : json_null();
}

int followups_json(intake *in, int32_t today, json_t **out)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    int bs = intake_calendar_bs(in);
    char d[16];
    int rc;
    if (today == 0)
        today = intake_today(in);
    sqlite3_stmt *st = store_prepare(db, followups__sql);
    json_t *root = json_object(), *persons = json_array(), *index = json_object();
    if (st == NULL || root == NULL || persons == NULL || index == NULL)
        goto fail;
    sqlite3_bind_int(st, 1, FIELD_SERVICE_PROVIDER);
    sqlite3_bind_int(st, 2, FIELD_PERSON_FULL_NAME);
    sqlite3_bind_int(st, 3, FIELD_PERSON_PHONE);
    field_format_day(bs, today, d);
    json_object_set_new(root, "today", json_string(d));
    json_object_set(root, "persons", persons);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *pkey = (const char *)sqlite3_column_text(st, 0);
        if (pkey == NULL)
            continue;
        int32_t day = sqlite3_column_int(st, 1);
        json_t *p = json_object_get(index, pkey);
        if (p == NULL) {
            p = json_object();
            if (p == NULL)
                goto fail;
            json_object_set_new(p, "local_id", followups__jtext(sqlite3_column_text(st, 5)));
            json_object_set_new(p, "full_name", followups__jtext(sqlite3_column_text(st, 6)));
            json_object_set_new(p, "phone", followups__jtext(sqlite3_column_text(st, 7)));
            json_object_set_new(p, "days_waiting", json_integer(today - day));
            json_object_set_new(p, "referrals", json_array());
            json_array_append_new(persons, p);
            json_object_set(index, pkey, p);
        }
        json_t *ref = json_object();
        if (ref == NULL)
            goto fail;
        field_format_day(bs, day, d);
        json_object_set_new(ref, "local_id", followups__jtext(sqlite3_column_text(st, 3)));
        json_object_set_new(ref, "service",
                            json_string(record_enum_name(&reint__v1__service_type__descriptor,
                                                         sqlite3_column_int(st, 2))));
        json_object_set_new(ref, "date", json_string(d));
        json_object_set_new(ref, "days_waiting", json_integer(today - day));
        json_object_set_new(ref, "provider", followups__jtext(sqlite3_column_text(st, 4)));
        json_array_append_new(json_object_get(p, "referrals"), ref);
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    json_decref(index);
    json_decref(persons);
    *out = root;
    return 0;
fail:
    log_error("intake followups: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    json_decref(index);
    json_decref(persons);
    json_decref(root);
    return REINT_EDB;
}

int followups_print(intake *in, int32_t today, FILE *f)
{
    json_t *root = NULL;
    int rc = followups_json(in, today, &root);
    if (rc != 0)
        return rc;
    json_t *persons = json_object_get(root, "persons");
    size_t np = json_array_size(persons), nr = 0, i, j;
    json_t *p, *ref;
    json_array_foreach(persons, i, p) nr += json_array_size(json_object_get(p, "referrals"));
    if (np == 0) {
        fprintf(f, "No pending referrals on %s.\n",
                json_string_value(json_object_get(root, "today")));
        json_decref(root);
        return 0;
    }
    fprintf(f, "Pending referrals on %s: %zu for %zu persons, longest waiting first.\n\n",
            json_string_value(json_object_get(root, "today")), nr, np);
    json_array_foreach(persons, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "full_name"));
        const char *phone = json_string_value(json_object_get(p, "phone"));
        fprintf(f, "%s  %s  %s  (waiting %lld days)\n",
                json_string_value(json_object_get(p, "local_id")), name ? name : "(no name)",
                phone ? phone : "(no phone)",
                (long long)json_integer_value(json_object_get(p, "days_waiting")));
        json_array_foreach(json_object_get(p, "referrals"), j, ref)
        {
            const char *prov = json_string_value(json_object_get(ref, "provider"));
            fprintf(f, "    %-12s %-27s referred %s  %4lld days  %s\n",
                    json_string_value(json_object_get(ref, "local_id")),
                    json_string_value(json_object_get(ref, "service")),
                    json_string_value(json_object_get(ref, "date")),
                    (long long)json_integer_value(json_object_get(ref, "days_waiting")),
                    prov ? prov : "");
        }
    }
    json_decref(root);
    return ferror(f) ? REINT_EIO : 0;
}
