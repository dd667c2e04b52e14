#include "fiscal.h"

#include <stdio.h>
#include <string.h>

#include "bscal.h"
#include "log.h"
#include "store.h"

/* Records dated in a month: persons by registered_on, services and enterprises by date, all
 * written as the clerk typed them (YYYY-MM-DD of the node's calendar), so that the month is
 * their first seven characters. */
static const char *fiscal__records_sql =
    "SELECT count(*) FROM records WHERE live = 1 AND"
    " ((kind = 1 AND substr(local_field(fields, ?1), 1, 7) = ?4)"
    " OR (kind = 2 AND substr(local_field(fields, ?2), 1, 7) = ?4)"
    " OR (kind = 3 AND substr(local_field(fields, ?3), 1, 7) = ?4))";

/* Referrals dated in [?1, ?2] without a later delivery of the same service to the same
 * person: the rule of followups.h. */
static const char *fiscal__pending_sql =
    "SELECT count(*) FROM local_services s"
    " JOIN records r ON r.kind = 2 AND r.local_id = s.local_id AND r.live = 1"
    " JOIN records p ON p.kind = 1 AND p.local_id = s.person_local_id AND p.live = 1"
    " WHERE s.status = 1 AND s.day BETWEEN ?1 AND ?2 AND NOT EXISTS (SELECT 1 FROM"
    " local_services d WHERE d.person_local_id = s.person_local_id AND d.service = s.service"
    " AND d.status = 2 AND d.day >= s.day)";

static const char *fiscal__closed_sql =
    "SELECT clerk, updated_ms FROM records WHERE kind = 5 AND local_id = ?1 AND live = 1";

/* Runs a count statement; -1 on failure. */
static long long fiscal__count(sqlite3_stmt *st)
{
    long long n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

/* The first and last day of month (y, m) of the calendar. */
static int fiscal__span(int bs, int y, int m, int32_t *first, int32_t *last)
{
    return bscal_month_span(bs, y * 100 + m, first, last);
}

int fiscal_year_json(intake *in, int fy, json_t **out)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    int bs = intake_calendar_bs(in), start_month = bs ? 4 : 7;
    int32_t today = intake_today(in);
    sqlite3_stmt *rec = NULL, *pend = NULL, *clo = NULL;
    json_t *months = NULL, *root = NULL;
    char t[16], label[16];
    int rc = REINT_EDB;
    *out = NULL;
    if (fy == 0) {
        int y = 0, m = 0, d = 0;
        if (bs) {
            if (bscal_bs_from_days(today, &y, &m, &d) != 0)
                return REINT_ERANGE;
        } else {
            bscal_ad_from_days(today, &y, &m, &d);
        }
        fy = m >= start_month ? y : y - 1;
    }
    rec = store_prepare(db, fiscal__records_sql);
    pend = store_prepare(db, fiscal__pending_sql);
    clo = store_prepare(db, fiscal__closed_sql);
    if (rec == NULL || pend == NULL || clo == NULL)
        goto out;
    if (sqlite3_bind_int(rec, 1, FIELD_PERSON_REGISTERED_ON) != SQLITE_OK ||
        sqlite3_bind_int(rec, 2, FIELD_SERVICE_DATE) != SQLITE_OK ||
        sqlite3_bind_int(rec, 3, FIELD_ENTERPRISE_DATE) != SQLITE_OK)
        goto out;
    rc = REINT_ENOMEM;
    months = json_array();
    if (months == NULL)
        goto out;
    for (int i = 0; i < 12; i++) {
        int y = fy + (start_month + i > 12), m = (start_month + i - 1) % 12 + 1;
        int32_t first, last;
        char f[16], l[16], by[80] = "";
        long long closed_ms = 0;
        int closed = 0, step;
        if (fiscal__span(bs, y, m, &first, &last) != 0) {
            rc = REINT_ERANGE;
            goto out;
        }
        snprintf(label, sizeof(label), "%04d-%02d", y, m);
        field_format_day(bs, first, f);
        field_format_day(bs, last, l);
        if (sqlite3_bind_text(rec, 4, label, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_bind_int(pend, 1, first) != SQLITE_OK ||
            sqlite3_bind_int(pend, 2, last) != SQLITE_OK ||
            sqlite3_bind_text(clo, 1, label, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
            rc = REINT_EDB;
            goto out;
        }
        long long nrec = fiscal__count(rec), npend = fiscal__count(pend);
        step = sqlite3_step(clo);
        if (step == SQLITE_ROW) {
            const unsigned char *c = sqlite3_column_text(clo, 0);
            snprintf(by, sizeof(by), "%s", c ? (const char *)c : "");
            closed_ms = sqlite3_column_int64(clo, 1);
            closed = 1;
        }
        sqlite3_reset(clo);
        if (nrec < 0 || npend < 0 || (step != SQLITE_ROW && step != SQLITE_DONE)) {
            rc = REINT_EDB;
            goto out;
        }
        json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:b,s:b,s:s?,s:I,s:I,s:I}", "month", label, "first",
                              f, "last", l, "ended", today > last, "current",
                              today >= first && today <= last, "closed", closed, "closed_by",
                              closed ? by : NULL, "closed_ms", (json_int_t)closed_ms, "records",
                              (json_int_t)nrec, "referrals_pending", (json_int_t)npend);
        if (o == NULL || json_array_append_new(months, o) != 0)
            goto out;
    }
    field_format_day(bs, today, t);
    snprintf(label, sizeof(label), "%04d/%02d", fy, (fy + 1) % 100);
    root = json_pack("{s:s,s:s,s:i,s:s,s:O}", "calendar", bs ? "BS" : "AD", "fiscal_year", label,
                     "year", fy, "today", t, "months", months);
    if (root == NULL)
        goto out;
    *out = root;
    rc = 0;
out:
    if (rc == REINT_EDB)
        log_error("fiscal: the store failed: %s", sqlite3_errmsg(db));
    else if (rc == REINT_ENOMEM)
        log_error("fiscal: out of memory");
    json_decref(months);
    sqlite3_finalize(rec);
    sqlite3_finalize(pend);
    sqlite3_finalize(clo);
    return rc;
}
