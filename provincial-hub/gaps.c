#include "gaps.h"

#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bscal.h"
#include "catalogue.h"
#include "dirstore.h"
#include "geo.h"
#include "hlc.h"
#include "log.h"
#include "reintegration.pb-c.h"
#include "period.h"
#include "rollup.h"
#include "sbuf.h"
#include "store.h"
#include "pcache.h"
#include "testhook.h"
#include "utf8.h"

#define GAPS_SILENT_DAYS 30 /* enrolled but no sync for this long: flagged */
/* A node's last contact: its last Hello or its last batch, whichever came later (a session
 * lasts at most a day, so a node in contact says Hello at least daily). */
#define GAPS_CONTACT_SQL "max(last_hello_ms, last_sync_ms)"
#define GAPS_CSV_MAX     (64u << 20) /* the largest CSV built (137 rows need a few KiB) */

int gaps_reader_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    *out = NULL;
    pcache_install(); /* as store_open() does, should this be the process's first connection */
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    /* gaps_indicator's scope is a TEMP table: a read-only connection may still write its
     * own temporary tables, kept in memory here. */
    if (sqlite3_exec(db, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;", NULL, NULL, &msg) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        goto fail;
    }
    if ((rc = rollup_cells_register(db)) != SQLITE_OK) {
        snprintf(err, errlen, "%s: rollup_cells: %s", path, sqlite3_errstr(rc));
        goto fail;
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return REINT_EDB;
}

/* Logs a failed step of st and returns REINT_EDB. */
static int gaps__fail(sqlite3 *db, sqlite3_stmt *st, int step)
{
    log_error("gaps: %s: %s", sqlite3_sql(st),
              sqlite3_errcode(db) == step ? sqlite3_errmsg(db) : sqlite3_errstr(step));
    return REINT_EDB;
}

/* Sets o[key] = v (a new reference, which may be NULL after a failed allocation); a failure
 * sets *oom, so that a row is checked once when complete. */
static void gaps__set(json_t *o, const char *key, json_t *v, int *oom)
{
    if (o == NULL || json_object_set_new(o, key, v) != 0)
        *oom = 1;
}

static void gaps__append(json_t *a, json_t *v, int *oom)
{
    if (a == NULL || json_array_append_new(a, v) != 0)
        *oom = 1;
}

/* The numerator (and denominator: den may be NULL) of one cell of a municipality, 0 when the
 * cell is absent. Returns 0 or REINT_EDB. */
static int gaps__cell(sqlite3 *db, sqlite3_stmt *st, uint32_t mun, const char *period,
                      const char *ind, const char *grouping, const char *key, int64_t *num,
                      int64_t *den)
{
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, grouping, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, key, -1, SQLITE_STATIC);
    *num = 0;
    if (den)
        *den = 0;
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW) {
        *num = sqlite3_column_int64(st, 0);
        if (den)
            *den = sqlite3_column_int64(st, 1);
    } else if (step != SQLITE_DONE) {
        rc = gaps__fail(db, st, step);
    }
    sqlite3_reset(st);
    return rc;
}

/* The cells of one grouping as {key: numerator} for a municipality, into *out (a new
 * reference) and their sum into *total. Returns 0, REINT_ENOMEM or REINT_EDB. */
static int gaps__by_key(sqlite3 *db, sqlite3_stmt *st, uint32_t mun, const char *period,
                        const char *ind, const char *grouping, json_t **out, int64_t *total)
{
    json_t *o = json_object();
    int step, oom = o == NULL, rc = 0;
    *total = 0;
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, grouping, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 1);
        gaps__set(o, (const char *)sqlite3_column_text(st, 0), json_integer(n), &oom);
        *total += n;
    }
    if (step != SQLITE_DONE)
        rc = gaps__fail(db, st, step);
    sqlite3_reset(st);
    if (rc == 0 && oom)
        rc = REINT_ENOMEM;
    if (rc != 0) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    return rc;
}

/* The last BS month that ended before today, as a period string. */
static void gaps__last_month(int32_t today, char *out, size_t len)
{
    int y, m, d;
    if (bscal_bs_from_days(today, &y, &m, &d) != 0) {
        out[0] = '\0';
        return;
    }
    if (--m == 0) {
        m = 12;
        y--;
    }
    snprintf(out, len, "BS%04d-%02d", y, m);
}

/* Directive targets in force for this municipality (scope municipality) with the actual
 * value of their cell, read from the hub's verified directives, into *out (a new reference).
 * Returns 0, REINT_ENOMEM or REINT_EDB. */
static int gaps__targets(sqlite3 *db, sqlite3_stmt *cell, uint32_t code, int32_t today,
                         json_t **out)
{
    json_t *list = json_array();
    sqlite3_stmt *st = store_prepare(db, "SELECT body FROM directives ORDER BY serial");
    int step = SQLITE_DONE, oom = list == NULL, rc = st == NULL ? REINT_EDB : 0;
    while (rc == 0 && !oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
        Reint__V1__Directive *d = dirstore_decode(st, 0);
        if (d == NULL)
            continue;
        int in_force = d->effective_from_day <= today &&
                       (d->expires_at_day == 0 || d->expires_at_day >= today);
        for (size_t i = 0; rc == 0 && in_force && i < d->n_targets; i++) {
            const Reint__V1__Target *t = d->targets[i];
            if (t->scope != REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY ||
                t->scope_code != code)
                continue;
            char key[256] = "";
            size_t o = 0;
            for (size_t k = 0; k < t->n_key && o < sizeof(key); k++)
                o += (size_t)snprintf(key + o, sizeof(key) - o, "%s%s", k ? "," : "", t->key[k]);
            int64_t actual = 0, den = 0;
            rc = gaps__cell(db, cell, code, t->period, t->indicator, t->grouping ? t->grouping : "",
                            key, &actual, &den);
            if (rc)
                break;
            json_t *j =
                json_pack("{s:I, s:s, s:s, s:s, s:s, s:I}", "directive", (json_int_t)d->serial,
                          "title", d->title ? d->title : "", "indicator", t->indicator, "period",
                          t->period, "key", key, "actual", (json_int_t)actual);
            if (t->share > 0) {
                gaps__set(j, "target_share", json_real(t->share), &oom);
                gaps__set(j, "actual_share",
                          den ? json_real((double)actual / (double)den) : json_null(), &oom);
            } else {
                gaps__set(j, "target", json_integer(t->value), &oom);
            }
            gaps__append(list, j, &oom);
        }
        reint__v1__directive__free_unpacked(d, NULL);
    }
    if (rc == 0 && !oom && step != SQLITE_DONE)
        rc = gaps__fail(db, st, step);
    sqlite3_finalize(st);
    if (rc == 0 && oom)
        rc = REINT_ENOMEM;
    if (rc != 0) {
        json_decref(list);
        list = NULL;
    }
    *out = list;
    return rc;
}

typedef struct gaps_sort {
    const char *field;
    int desc;
} gaps_sort;

static int gaps__cmp(const void *a, const void *b, void *ud)
{
    const gaps_sort *s = ud;
    json_t *x = json_object_get(*(json_t *const *)a, s->field);
    json_t *y = json_object_get(*(json_t *const *)b, s->field);
    int c;
    if (json_is_number(x) && json_is_number(y)) {
        double dx = json_number_value(x), dy = json_number_value(y);
        c = dx < dy ? -1 : dx > dy;
    } else if (json_is_string(x) && json_is_string(y)) {
        c = strcmp(json_string_value(x), json_string_value(y));
    } else if (json_is_boolean(x) && json_is_boolean(y)) {
        c = json_is_true(x) - json_is_true(y);
    } else {
        c = (x == NULL || json_is_null(x)) - (y == NULL || json_is_null(y));
    }
    if (c == 0) {
        json_int_t cx = json_integer_value(json_object_get(*(json_t *const *)a, "code"));
        json_int_t cy = json_integer_value(json_object_get(*(json_t *const *)b, "code"));
        return cx < cy ? -1 : cx > cy;
    }
    return s->desc ? -c : c;
}

static const char *gaps__sortable[] = {"code",
                                       "name",
                                       "district",
                                       "enrolled",
                                       "last_sync_age_days",
                                       "last_contact_age_days",
                                       "participants_registered",
                                       "participants_served",
                                       "persons_served",
                                       "share_served",
                                       "month_closed",
                                       "referrals_pending_total",
                                       "services_unavailable_total",
                                       "calendar",
                                       "dead_letters",
                                       NULL};

/* The enrolled node of a municipality (enrolled 0 when none), its calendar and its dead
 * letters (count, latest reason). */
typedef struct gaps_node {
    int enrolled, calendar;
    int64_t last_ms, contact_ms, dead;
    char reason[256];
} gaps_node;

static int gaps__node(sqlite3 *db, sqlite3_stmt *node, sqlite3_stmt *dead, uint32_t code,
                      gaps_node *n)
{
    memset(n, 0, sizeof(*n));
    sqlite3_bind_int64(node, 1, code);
    int step = sqlite3_step(node);
    if (step == SQLITE_ROW) {
        n->enrolled = 1;
        n->last_ms = sqlite3_column_int64(node, 0);
        n->calendar = sqlite3_column_int(node, 1);
        n->contact_ms = sqlite3_column_int64(node, 2);
    }
    sqlite3_reset(node);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return gaps__fail(db, node, step);
    sqlite3_bind_int64(dead, 1, code);
    step = sqlite3_step(dead);
    if (step == SQLITE_ROW) {
        n->dead = sqlite3_column_int64(dead, 0);
        const unsigned char *reason = sqlite3_column_text(dead, 1);
        /* Scrubbed: a reason stored by an older hub may quote a node's bytes as they came. */
        utf8_scrub(n->reason, sizeof(n->reason), reason ? (const char *)reason : "");
    }
    sqlite3_reset(dead);
    return step == SQLITE_ROW ? 0 : gaps__fail(db, dead, step);
}

/* The gap report's prepared statements. */
typedef struct gaps_q {
    sqlite3_stmt *cell, *bykey, *node, *dead, *served;
    sqlite3_stmt *sweep, *returns; /* NULL on a store without the sweeps tables */
} gaps_q;

/* Security events stay flagged this long. */
#define GAPS_EVENT_DAYS 30

/* The municipality's pending sweep (sweeps.h: records set aside, waiting for a hub admin) and
 * whether two store incarnations alternate under its certificate: fields and flags of its
 * row. Returns 0 or REINT_EDB. */
static int gaps__security(sqlite3 *db, const gaps_q *q, uint32_t code, json_t *r, json_t *flags,
                          int *oom)
{
    json_t *sweep = json_null();
    int64_t returns = 0;
    if (q->sweep) {
        sqlite3_bind_int64(q->sweep, 1, code);
        int step = sqlite3_step(q->sweep);
        if (step == SQLITE_ROW) {
            char iso[32];
            time_t t = (time_t)(sqlite3_column_int64(q->sweep, 3) / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
            sweep = json_pack("{s:I, s:I, s:s, s:s, s:s}", "id",
                              (json_int_t)sqlite3_column_int64(q->sweep, 0), "records",
                              (json_int_t)sqlite3_column_int64(q->sweep, 1), "certificate_serial",
                              (const char *)sqlite3_column_text(q->sweep, 2), "address",
                              (const char *)sqlite3_column_text(q->sweep, 4), "at", iso);
        }
        sqlite3_reset(q->sweep);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return gaps__fail(db, q->sweep, step);
        sqlite3_bind_int64(q->returns, 1, code);
        sqlite3_bind_int64(q->returns, 2,
                           (int64_t)clock_now_ms() - (int64_t)GAPS_EVENT_DAYS * 86400000);
        step = sqlite3_step(q->returns);
        if (step == SQLITE_ROW)
            returns = sqlite3_column_int64(q->returns, 0);
        sqlite3_reset(q->returns);
        if (step != SQLITE_ROW)
            return gaps__fail(db, q->returns, step);
    }
    gaps__set(r, "sweep_pending", sweep, oom);
    gaps__set(r, "incarnations_alternating", json_boolean(returns > 0), oom);
    if (!json_is_null(sweep))
        gaps__append(flags, json_string("sweep_pending"), oom);
    if (returns > 0)
        gaps__append(flags, json_string("incarnations_alternating"), oom);
    return 0;
}

/* Sets name (ISO time, UTC) and name_age_days (whole days elapsed) in r from ms since the
 * epoch, both null when ms is 0. Returns the age in days (-1 for none). */
static int64_t gaps__when(json_t *r, const char *name, int64_t ms, int *oom)
{
    char key[48];
    snprintf(key, sizeof(key), "%s_age_days", name);
    if (ms <= 0) {
        gaps__set(r, name, json_null(), oom);
        gaps__set(r, key, json_null(), oom);
        return -1;
    }
    char iso[32];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    gaps__set(r, name, json_string(iso), oom);
    int64_t age = ((int64_t)clock_now_ms() - ms) / 86400000;
    if (age < 0)
        age = 0;
    gaps__set(r, key, json_integer(age), oom);
    return age;
}

int gaps_node_counts(sqlite3 *db, int64_t *silent, int64_t *offline)
{
    int64_t since = (int64_t)clock_now_ms() - (int64_t)GAPS_SILENT_DAYS * 86400000;
    sqlite3_stmt *st = store_prepare(db, "SELECT count(*) FILTER (WHERE last_sync_ms < ?1),"
                                         " count(*) FILTER (WHERE " GAPS_CONTACT_SQL " < ?1)"
                                         " FROM nodes");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, since);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *silent = sqlite3_column_int64(st, 0);
        *offline = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 0 : REINT_EDB;
}

/* One row of the gap report, for local level g, into *out (a new reference). The period's
 * months are first..last (YYYYMM) of the BS calendar when bs, else of the Gregorian one.
 * Returns 0, REINT_ENOMEM or REINT_EDB. */
static int gaps__row(sqlite3 *db, const gaps_q *q, const geo_local_level *g, const char *period,
                     int bs, int32_t first, int32_t last, const char *month, int32_t today,
                     json_t **out)
{
    gaps_node nd;
    int rc = gaps__node(db, q->node, q->dead, g->code, &nd), oom = 0;
    json_t *r = json_object(), *flags = json_array(), *p = NULL, *u = NULL, *targets = NULL;
    if (rc)
        goto fail;
    if (r == NULL || flags == NULL) {
        rc = REINT_ENOMEM;
        goto fail;
    }
    gaps__set(r, "code", json_integer(g->code), &oom);
    gaps__set(r, "name", json_string(g->name), &oom);
    gaps__set(r, "district", json_string(g->district_name), &oom);
    gaps__set(r, "enrolled", json_boolean(nd.enrolled), &oom);
    /* The calendar its months are due in: AD, or BS (a node that did not say counts as BS). */
    gaps__set(r, "calendar",
              !nd.enrolled
                  ? json_null()
                  : json_string(nd.calendar == REINT__V1__CALENDAR__CALENDAR_AD ? "AD" : "BS"),
              &oom);
    gaps__set(r, "dead_letters", json_integer(nd.dead), &oom);
    gaps__set(r, "dead_letters_last_reason", nd.dead ? json_string(nd.reason) : json_null(), &oom);
    if ((rc = gaps__security(db, q, g->code, r, flags, &oom)) != 0)
        goto fail;
    /* The last record and the last contact apart: a node that says Hello every day with
     * nothing new is online with no data entered (enrolled_silent alone), one not heard of at
     * all is offline too (enrolled_offline): the officer calls about the data or about the
     * connection. */
    int64_t age = gaps__when(r, "last_sync", nd.last_ms, &oom);
    if (nd.last_ms > 0 ? age >= GAPS_SILENT_DAYS : nd.enrolled)
        gaps__append(flags, json_string("enrolled_silent"), &oom);
    else if (!nd.enrolled)
        gaps__append(flags, json_string("not_enrolled"), &oom);
    age = gaps__when(r, "last_contact", nd.contact_ms, &oom);
    if (nd.enrolled && (nd.contact_ms <= 0 || age >= GAPS_SILENT_DAYS))
        gaps__append(flags, json_string("enrolled_offline"), &oom);
    int64_t den = 0, closed = 0, on_time = 0, reg = 0, served = 0, reg_served = 0;
    if ((rc = gaps__cell(db, q->cell, g->code, month, "reporting_completeness", "", "", &closed,
                         &den)) != 0 ||
        (rc = gaps__cell(db, q->cell, g->code, month, "reporting_timeliness", "", "", &on_time,
                         NULL)) != 0 ||
        (rc = gaps__cell(db, q->cell, g->code, period, "participants_registered", "", "", &reg,
                         NULL)) != 0 ||
        (rc = gaps__cell(db, q->cell, g->code, period, "persons_served", "", "", &served, NULL)) !=
            0)
        goto fail;
    gaps__set(r, "month", json_string(month), &oom);
    gaps__set(r, "month_closed", json_boolean(closed > 0), &oom);
    gaps__set(r, "month_on_time", json_boolean(on_time > 0), &oom);
    if (nd.enrolled && den > 0 && closed == 0)
        gaps__append(flags, json_string("month_not_closed"), &oom);
    if (closed > 0 && on_time == 0)
        gaps__append(flags, json_string("month_closed_late"), &oom);
    /* Of the participants registered in the period, those with at least one delivered
     * service (at any date): the share a provincial officer asks about. */
    sqlite3_bind_int64(q->served, 1, g->code);
    sqlite3_bind_int(q->served, 2, first);
    sqlite3_bind_int(q->served, 3, last);
    sqlite3_bind_int(q->served, 4, bs);
    int step = sqlite3_step(q->served);
    if (step == SQLITE_ROW)
        reg_served = sqlite3_column_int64(q->served, 0);
    sqlite3_reset(q->served);
    if (step != SQLITE_ROW) {
        rc = gaps__fail(db, q->served, step);
        goto fail;
    }
    gaps__set(r, "participants_registered", json_integer(reg), &oom);
    gaps__set(r, "participants_served", json_integer(reg_served), &oom);
    gaps__set(r, "persons_served", json_integer(served), &oom);
    gaps__set(r, "share_served",
              reg > 0 ? json_real((double)reg_served / (double)reg) : json_null(), &oom);
    int64_t pending = 0, unavailable = 0;
    if ((rc = gaps__by_key(db, q->bykey, g->code, period, "referrals_pending", "service_type", &p,
                           &pending)) != 0 ||
        (rc = gaps__by_key(db, q->bykey, g->code, period, "services_unavailable", "service_type",
                           &u, &unavailable)) != 0 ||
        (rc = gaps__targets(db, q->cell, g->code, today, &targets)) != 0)
        goto fail;
    gaps__set(r, "referrals_pending_total", json_integer(pending), &oom);
    gaps__set(r, "referrals_pending", p, &oom);
    gaps__set(r, "services_unavailable_total", json_integer(unavailable), &oom);
    gaps__set(r, "services_unavailable", u, &oom);
    p = u = NULL;
    if (pending > 0)
        gaps__append(flags, json_string("referrals_overdue"), &oom);
    if (unavailable > 0)
        gaps__append(flags, json_string("services_unavailable"), &oom);
    gaps__set(r, "targets", targets, &oom);
    gaps__set(r, "flags", flags, &oom);
    targets = flags = NULL;
    if (oom) {
        rc = REINT_ENOMEM;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    json_decref(r);
    json_decref(flags);
    json_decref(p);
    json_decref(u);
    json_decref(targets);
    *out = NULL;
    return rc ? rc : REINT_ENOMEM;
}

int gaps_report(sqlite3 *db, unsigned province, const char *period, const char *sort, int32_t today,
                json_t **out, char *err, size_t errlen)
{
    char fy[PERIOD_KINDS][PERIOD_MAX], month[PERIOD_MAX];
    enum period_kind kind;
    int32_t first, last;
    int bs = 0;
    gaps_sort so = {"code", 0};
    int rc = REINT_EDB;
    *out = NULL;
    if (period == NULL || *period == '\0') {
        period_of_day(today, fy);
        period = fy[PERIOD_FISCAL_YEAR];
    }
    if (period_months(period, &kind, &bs, &first, &last) != 0) {
        snprintf(err, errlen,
                 "period \"%.20s\" is not a period (2026, 2026-Q3, 2026-07, "
                 "BS2083-04, FY2083/84-T1, FY2083/84)",
                 period);
        return REINT_EINVAL;
    }
    if (sort && *sort) {
        so.desc = sort[0] == '-';
        so.field = sort + so.desc;
        int ok = 0;
        for (int i = 0; gaps__sortable[i]; i++)
            ok |= strcmp(gaps__sortable[i], so.field) == 0;
        if (!ok) {
            snprintf(err, errlen,
                     "sort \"%.40s\" is not one of code, name, district, enrolled, "
                     "last_sync_age_days, last_contact_age_days, participants_registered, "
                     "participants_served, "
                     "persons_served, share_served, month_closed, referrals_pending_total, "
                     "services_unavailable_total, calendar, dead_letters (prefix - for "
                     "descending)",
                     so.field);
            return REINT_EINVAL;
        }
    }
    gaps__last_month(today, month, sizeof(month));
    gaps_q q = {
        .cell = store_prepare(
            db, "SELECT numerator, denominator FROM rollup_cells WHERE municipality=?1 AND"
                " period=?2 AND indicator=?3 AND grouping=?4 AND key=?5"),
        .bykey = store_prepare(
            db, "SELECT key, numerator FROM rollup_cells WHERE municipality=?1 AND period=?2"
                " AND indicator=?3 AND grouping=?4 ORDER BY key"),
        .node = store_prepare(db, "SELECT last_sync_ms, calendar, " GAPS_CONTACT_SQL
                                  " FROM nodes WHERE municipality=?1"),
        .dead = store_prepare(
            db, "SELECT count(*), (SELECT reason FROM dead_letters WHERE municipality=?1"
                " ORDER BY at_ms DESC, seq DESC LIMIT 1) FROM dead_letters WHERE municipality=?1"),
        /* status 2 = DELIVERED; a service's person is of its own municipality; a person is
         * in the period by the month of its registration in the period's calendar */
        .served =
            store_prepare(db, "SELECT count(*) FROM rollup_person p WHERE p.municipality=?1 AND"
                              " (CASE ?4 WHEN 1 THEN p.bs ELSE p.ad END) BETWEEN ?2 AND ?3"
                              " AND EXISTS(SELECT 1 FROM rollup_service s WHERE"
                              " s.municipality=p.municipality AND s.person=p.id AND s.status=2)"),
    };
    /* A store the ingest has not opened since sweeps came has none to show. */
    if (sqlite3_prepare_v2(db,
                           "SELECT id, records, serial, swept_ms, address FROM sweeps"
                           " WHERE municipality=?1 AND state='pending' ORDER BY id DESC LIMIT 1",
                           -1, &q.sweep, NULL) != SQLITE_OK)
        q.sweep = NULL;
    q.returns = q.sweep ? store_prepare(db, "SELECT count(*) FROM incarnation_events WHERE"
                                            " municipality=?1 AND at_ms>=?2 AND (what LIKE"
                                            " 'an incarnation seen before%' OR what LIKE"
                                            " 'the incarnation that sweep%')")
                        : NULL;
    if (q.returns == NULL) {
        sqlite3_finalize(q.sweep);
        q.sweep = NULL;
    }
    json_t *rows = json_array();
    json_t **v = NULL;
    size_t nrows = 0;
    if (q.cell == NULL || q.bykey == NULL || q.node == NULL || q.dead == NULL || q.served == NULL)
        goto out;
    rc = rows == NULL ? REINT_ENOMEM : 0;
    unsigned n;
    const geo_local_level *all = geo_all(&n);
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        if (all[i].province != province)
            continue;
        json_t *r = NULL;
        if ((rc = gaps__row(db, &q, &all[i], period, bs, first, last, month, today, &r)) == 0 &&
            json_array_append_new(rows, r) != 0)
            rc = REINT_ENOMEM;
    }
    if (rc)
        goto out;
    nrows = json_array_size(rows);
    if ((v = calloc(nrows ? nrows : 1, sizeof(*v))) == NULL) {
        rc = REINT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nrows; i++)
        v[i] = json_incref(json_array_get(rows, i));
    qsort_r(v, nrows, sizeof(*v), gaps__cmp, &so);
    json_array_clear(rows);
    for (size_t i = 0; i < nrows; i++) {
        json_t *row = v[i];
        v[i] = NULL;
        if (json_array_append_new(rows, row) != 0) {
            rc = REINT_ENOMEM;
            goto out;
        }
    }
    char fmt[16];
    bscal_format(today, 1, fmt, sizeof(fmt));
    *out = json_pack("{s:i, s:s, s:s, s:s, s:o}", "province", (int)province, "province_name",
                     geo_province_name(province), "period", period, "as_of_bs", fmt, "rows", rows);
    rows = NULL; /* json_pack's "o" took the reference, even on failure */
    rc = *out ? 0 : REINT_ENOMEM;
out:
    for (size_t i = 0; v != NULL && i < nrows; i++)
        json_decref(v[i]);
    free(v);
    json_decref(rows);
    sqlite3_finalize(q.cell);
    sqlite3_finalize(q.bykey);
    sqlite3_finalize(q.node);
    sqlite3_finalize(q.dead);
    sqlite3_finalize(q.served);
    sqlite3_finalize(q.sweep);
    sqlite3_finalize(q.returns);
    return rc;
}

/* The area object of an answer: {"level", "code", "name", "province"} (and "district" for a
 * local level), so that a row of a table by area names its area by itself. */
static json_t *gaps__area(unsigned province, unsigned district, const geo_local_level *mun)
{
    if (mun)
        return json_pack("{s:s, s:I, s:s, s:I, s:s, s:I}", "level", "municipality", "code",
                         (json_int_t)mun->code, "name", mun->name, "district",
                         (json_int_t)mun->district, "district_name", mun->district_name, "province",
                         (json_int_t)province);
    if (district) {
        unsigned n;
        const geo_local_level *all = geo_all(&n);
        for (unsigned i = 0; i < n; i++)
            if (all[i].district == district)
                return json_pack("{s:s, s:I, s:s, s:I}", "level", "district", "code",
                                 (json_int_t)district, "name", all[i].district_name, "province",
                                 (json_int_t)province);
    }
    return json_pack("{s:s, s:I, s:s, s:I}", "level", "province", "code", (json_int_t)province,
                     "name", geo_province_name(province), "province", (json_int_t)province);
}

/* Fills gaps_scope with the province's local levels, of one municipality or district when
 * given. Returns 0, REINT_EINVAL (a district not in the province, err set) or REINT_EDB. */
static int gaps__scope(sqlite3 *db, unsigned province, uint32_t municipality, unsigned district,
                       char *err, size_t errlen)
{
    /* Municipalities in scope go to a temporary table so that the sum is one statement. */
    if (store_exec(db, "CREATE TEMP TABLE IF NOT EXISTS gaps_scope(code INTEGER PRIMARY KEY);"
                       "DELETE FROM gaps_scope;") != 0)
        return REINT_EDB;
    sqlite3_stmt *ins = store_prepare(db, "INSERT INTO gaps_scope(code) VALUES(?1)");
    if (ins == NULL)
        return REINT_EDB;
    unsigned n;
    const geo_local_level *all = geo_all(&n);
    int found_district = district == 0, step, rc = 0;
    for (unsigned i = 0; i < n; i++) {
        const geo_local_level *g = &all[i];
        if (g->province != province || (municipality && g->code != municipality) ||
            (district && g->district != district))
            continue;
        found_district = 1;
        sqlite3_bind_int64(ins, 1, g->code);
        step = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (step != SQLITE_DONE) {
            rc = gaps__fail(db, ins, step);
            break;
        }
    }
    sqlite3_finalize(ins);
    if (rc)
        return rc;
    if (!found_district) {
        snprintf(err, errlen, "district %u is not in province %u", district, province);
        return REINT_EINVAL;
    }
    return 0;
}

/* The single answer of the municipalities in gaps_scope for one period: {"indicator",
 * "period", "by", "province", "area" (takes area), "cells"}. Returns 0, REINT_ENOMEM or
 * REINT_EDB. */
static int gaps__answer(sqlite3 *db, const catalogue_indicator *ind, unsigned province,
                        const char *period, const char *grouping, json_t *area, json_t **out)
{
    int step = SQLITE_DONE, rc = 0;
    *out = NULL;
    sqlite3_stmt *st = store_prepare(
        db, "SELECT key, sum(numerator), sum(denominator), count(*) FROM rollup_cells"
            " WHERE period=?1 AND indicator=?2 AND grouping=?3"
            " AND municipality IN (SELECT code FROM gaps_scope) GROUP BY key ORDER BY key");
    if (st == NULL) {
        json_decref(area);
        return REINT_EDB;
    }
    json_t *cells = json_array();
    int oom = cells == NULL || area == NULL;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ind->code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, grouping, -1, SQLITE_STATIC);
    while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *c = json_object();
        int64_t num = sqlite3_column_int64(st, 1), den = sqlite3_column_int64(st, 2);
        const char *key = (const char *)sqlite3_column_text(st, 0);
        /* key is the grouping's values joined by ','; split it back per dimension. */
        char kbuf[256], gbuf[64];
        snprintf(kbuf, sizeof(kbuf), "%s", key ? key : "");
        snprintf(gbuf, sizeof(gbuf), "%s", grouping);
        char *ks = NULL, *gs = NULL;
        char *k = strtok_r(kbuf, ",", &ks), *d = strtok_r(gbuf, ",", &gs);
        while (k && d) {
            gaps__set(c, d, json_string(k), &oom);
            k = strtok_r(NULL, ",", &ks);
            d = strtok_r(NULL, ",", &gs);
        }
        gaps__set(c, "value", json_integer(num), &oom);
        if (ind->agg == CATALOGUE_RATIO) {
            gaps__set(c, "denominator", json_integer(den), &oom);
            gaps__set(c, "ratio", den ? json_real((double)num / (double)den) : json_null(), &oom);
        }
        gaps__append(cells, c, &oom);
    }
    if (!oom && step != SQLITE_DONE)
        rc = gaps__fail(db, st, step);
    sqlite3_finalize(st);
    if (rc == 0 && oom)
        rc = REINT_ENOMEM;
    if (rc != 0) {
        json_decref(cells);
        json_decref(area);
        return rc;
    }
    *out = json_pack("{s:s, s:s, s:s, s:i, s:o, s:o}", "indicator", ind->code, "period", period,
                     "by", grouping, "province", (int)province, "area", area, "cells", cells);
    return *out ? 0 : REINT_ENOMEM;
}

/* The periods of a series over period into out (at most 12, PERIOD_MAX each): the BS months
 * or the trimesters of a fiscal year, the months of a Gregorian year. Returns their number,
 * or -1 with err when the series does not fit the period. */
static int gaps__series(const char *series, const char *period, char out[12][PERIOD_MAX], char *err,
                        size_t errlen)
{
    enum period_kind kind;
    int bs = 0;
    int32_t first = 0, last = 0;
    if (period_months(period, &kind, &bs, &first, &last) != 0)
        return -1;
    if (strcmp(series, "bs_month") == 0 && kind == PERIOD_FISCAL_YEAR) {
        int32_t ym = first;
        for (int i = 0; i < 12; i++) {
            snprintf(out[i], PERIOD_MAX, "BS%04d-%02d", ym / 100, ym % 100);
            ym = ym % 100 == 12 ? (ym / 100 + 1) * 100 + 1 : ym + 1;
        }
        return 12;
    }
    if (strcmp(series, "trimester") == 0 && kind == PERIOD_FISCAL_YEAR) {
        for (int i = 0; i < 3; i++)
            snprintf(out[i], PERIOD_MAX, "%.9s-T%d", period, i + 1);
        return 3;
    }
    if (strcmp(series, "month") == 0 && kind == PERIOD_YEAR) {
        for (int i = 0; i < 12; i++)
            snprintf(out[i], PERIOD_MAX, "%04d-%02d", first / 100, i + 1);
        return 12;
    }
    snprintf(err, errlen,
             "series=\"%.20s\" does not fit period %s: series=bs_month or series=trimester over "
             "a fiscal year (FY2083/84), series=month over a Gregorian year (2026)",
             series, period);
    return -1;
}

int gaps_indicator(sqlite3 *db, unsigned province, const char *code, const char *period,
                   const char *by, const char *series, uint32_t municipality, unsigned district,
                   json_t **out, char *err, size_t errlen)
{
    const catalogue_indicator *ind = catalogue_find(code);
    char grouping[64], periods[12][PERIOD_MAX];
    enum period_kind kind;
    int32_t first, last;
    int rc = 0, np = 1;
    *out = NULL;
    if (ind == NULL) {
        snprintf(err, errlen, "no indicator \"%.60s\" (GET /v1/indicators lists them)", code);
        return REINT_EINVAL;
    }
    if (period == NULL || period_parse(period, &kind, &first, &last) != 0) {
        snprintf(err, errlen,
                 "period is required: 2026, 2026-Q3, 2026-07, BS2083-04, "
                 "FY2083/84-T1 or FY2083/84");
        return REINT_EINVAL;
    }
    /* by= may start with the level of the areas the answer is split into (district or
     * municipality), followed by at most the one declared grouping. */
    const char *rest = by ? by : "";
    int level = 0; /* 0: one area; 1: by district; 2: by municipality */
    if (strncmp(rest, "district", 8) == 0 && (rest[8] == '\0' || rest[8] == ',')) {
        level = 1;
        rest += rest[8] ? 9 : 8;
    } else if (strncmp(rest, "municipality", 12) == 0 && (rest[12] == '\0' || rest[12] == ',')) {
        level = 2;
        rest += rest[12] ? 13 : 12;
    }
    if (!catalogue_grouping(ind, rest, grouping, sizeof(grouping)) ||
        (level && strchr(grouping, ',') != NULL)) {
        size_t o = (size_t)snprintf(err, errlen,
                                    "by=\"%.40s\" is not declared for %s; allowed: district or "
                                    "municipality, alone or with one of",
                                    by ? by : "", code);
        for (int i = 0; ind->groupings[i] && o < errlen; i++)
            o += (size_t)snprintf(err + o, errlen - o, " \"%s\"", ind->groupings[i]);
        return REINT_EINVAL;
    }
    if (series && (np = gaps__series(series, period, periods, err, errlen)) < 0)
        return REINT_EINVAL;
    if (series == NULL)
        snprintf(periods[0], PERIOD_MAX, "%s", period);
    const geo_local_level *mg = NULL;
    if (municipality) {
        mg = geo_find(municipality);
        if (mg == NULL || mg->province != province) {
            snprintf(err, errlen, "municipality %u is not in province %u", municipality, province);
            return REINT_EINVAL;
        }
    }
    if (level == 0 && series == NULL) {
        if ((rc = gaps__scope(db, province, municipality, district, err, errlen)) != 0)
            return rc;
        return gaps__answer(db, ind, province, period, grouping, gaps__area(province, district, mg),
                            out);
    }
    /* One answer per area and period, each the single answer of that area and period: the
     * same scope and statement, so that a row of a table can never differ from its area's
     * own answer. Areas in code order (district codes, then local level codes). */
    if (level == 0 && (rc = gaps__scope(db, province, municipality, district, err, errlen)) != 0)
        return rc;
    json_t *answers = json_array();
    unsigned n, last_district = 0;
    const geo_local_level *all = geo_all(&n);
    int found = level == 0, oom = answers == NULL;
    for (unsigned i = 0; rc == 0 && !oom && i < (level ? n : 1); i++) {
        const geo_local_level *g = level ? &all[i] : NULL;
        unsigned area_district = district;
        const geo_local_level *area_mun = mg;
        if (level) {
            if (g->province != province || (municipality && g->code != municipality) ||
                (district && g->district != district))
                continue;
            found = 1;
            if (level == 1) {
                /* geo_all is ordered by code, so a district's local levels are together. */
                if (g->district == last_district)
                    continue;
                last_district = area_district = g->district;
                area_mun = NULL;
                rc = gaps__scope(db, province, 0, g->district, err, errlen);
            } else {
                area_mun = g;
                area_district = 0;
                rc = gaps__scope(db, province, g->code, 0, err, errlen);
            }
        }
        for (int p = 0; rc == 0 && !oom && p < np; p++) {
            json_t *a = NULL;
            rc = gaps__answer(db, ind, province, periods[p], grouping,
                              gaps__area(province, area_district, area_mun), &a);
            if (rc == 0)
                gaps__append(answers, a, &oom);
        }
    }
    if (rc == 0 && oom)
        rc = REINT_ENOMEM;
    if (rc == 0 && !found) {
        snprintf(err, errlen, "district %u is not in province %u", district, province);
        rc = REINT_EINVAL;
    }
    if (rc != 0) {
        json_decref(answers);
        return rc;
    }
    char norm[96];
    snprintf(norm, sizeof(norm), "%s%s%s",
             level == 1   ? "district"
             : level == 2 ? "municipality"
                          : "",
             level && grouping[0] ? "," : "", grouping);
    *out = json_pack("{s:s, s:s, s:s?, s:s, s:i, s:o}", "indicator", code, "by", norm, "series",
                     series, "period", period, "province", (int)province, "answers", answers);
    return *out ? 0 : REINT_ENOMEM;
}

json_t *gaps_answers_rows(const json_t *report)
{
    json_t *rows = json_array();
    const json_t *answers = json_object_get(report, "answers"), *a;
    size_t i;
    int oom = rows == NULL;
    json_array_foreach(answers, i, a)
    {
        const json_t *area = json_object_get(a, "area"), *c;
        size_t k;
        json_array_foreach(json_object_get(a, "cells"), k, c)
        {
            json_t *r =
                json_pack("{s:O, s:O, s:O, s:O}", "level", json_object_get(area, "level"), "code",
                          json_object_get(area, "code"), "name", json_object_get(area, "name"),
                          "period", json_object_get(a, "period"));
            if (r == NULL || json_object_update(r, (json_t *)c) != 0)
                oom = 1;
            gaps__append(rows, r, &oom);
        }
    }
    if (oom) {
        json_decref(rows);
        return NULL;
    }
    return rows;
}

/* Appends one JSON value as a CSV field: strings as they are, numbers and booleans as
 * text, objects and arrays as compact JSON, null as an empty field. */
static void gaps__csv_value(sbuf *b, const json_t *v)
{
    char tmp[64];
    if (json_is_string(v)) {
        sbuf_csv_str(b, json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
        sbuf_puts(b, tmp); /* a number, never a formula nor quoted */
    } else if (json_is_real(v)) {
        snprintf(tmp, sizeof(tmp), "%.4f", json_real_value(v));
        sbuf_puts(b, tmp);
    } else if (json_is_boolean(v)) {
        sbuf_csv_str(b, json_is_true(v) ? "true" : "false");
    } else if (json_is_object(v) || json_is_array(v)) {
        char *dumped = json_dumps(v, JSON_COMPACT);
        if (dumped == NULL)
            b->failed = 1;
        else
            sbuf_csv_str(b, dumped);
        free(dumped);
    }
}

int gaps_csv(const json_t *report, const char *array, char **out, size_t *len)
{
    const json_t *rows = json_object_get(report, array);
    const json_t *first = json_array_get(rows, 0);
    const char *key;
    json_t *val;
    sbuf b;
    *out = NULL;
    *len = 0;
    if (!json_is_array(rows))
        return REINT_EINVAL;
    sbuf_init(&b, GAPS_CSV_MAX);
    /* The header names the first row's fields; every row is written in that order. */
    int col = 0;
    json_object_foreach((json_t *)first, key, val)
    {
        if (col++)
            sbuf_add(&b, ",", 1);
        sbuf_csv_str(&b, key);
    }
    sbuf_add(&b, "\r\n", 2);
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        col = 0;
        json_object_foreach((json_t *)first, key, val)
        {
            if (col++)
                sbuf_add(&b, ",", 1);
            gaps__csv_value(&b, json_object_get(row, key));
        }
        sbuf_add(&b, "\r\n", 2);
        if (b.failed)
            break;
    }
    /* A test fault stands for running out of memory half way, as a report past GAPS_CSV_MAX
     * would: the caller must answer an error, never the truncated text. */
    if (testhook_fire("gaps_csv"))
        b.failed = 1;
    if (b.failed) {
        log_error("gaps: the CSV of %zu %s does not fit in memory (%zu bytes built)",
                  json_array_size(rows), array, b.len);
        sbuf_free(&b);
        return REINT_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
