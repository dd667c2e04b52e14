#include "gaps.h"

#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bscal.h"
#include "catalogue.h"
#include "geo.h"
#include "hlc.h"
#include "reintegration.pb-c.h"
#include "period.h"
#include "store.h"

#define GAPS_SILENT_DAYS 30 /* enrolled but no sync for this long: flagged */

/* numerator (and denominator) of one cell of a municipality, 0 when absent. */
static int64_t gaps__cell(sqlite3_stmt *st, uint32_t mun, const char *period, const char *ind,
                          const char *grouping, const char *key, int64_t *den)
{
    int64_t v = 0;
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, grouping, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, key, -1, SQLITE_STATIC);
    if (den)
        *den = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
        if (den)
            *den = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return v;
}

/* Cells of one grouping as {key: numerator} for a municipality. */
static json_t *gaps__by_key(sqlite3_stmt *st, uint32_t mun, const char *period, const char *ind,
                            const char *grouping, int64_t *total)
{
    json_t *o = json_object();
    *total = 0;
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, grouping, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 1);
        json_object_set_new(o, (const char *)sqlite3_column_text(st, 0), json_integer(n));
        *total += n;
    }
    sqlite3_reset(st);
    return o;
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
 * value of their cell, read from the hub's verified directives. */
static json_t *gaps__targets(sqlite3 *db, sqlite3_stmt *cell, unsigned province, uint32_t code,
                             int32_t today)
{
    json_t *out = json_array();
    sqlite3_stmt *st = store_prepare(db, "SELECT body FROM directives ORDER BY serial");
    (void)province;
    if (st == NULL)
        return out;
    while (sqlite3_step(st) == SQLITE_ROW) {
        Reint__V1__Directive *d = reint__v1__directive__unpack(
            NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
        if (d == NULL)
            continue;
        int in_force = d->effective_from_day <= today &&
                       (d->expires_at_day == 0 || d->expires_at_day >= today);
        for (size_t i = 0; in_force && i < d->n_targets; i++) {
            const Reint__V1__Target *t = d->targets[i];
            if (t->scope != REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY ||
                t->scope_code != code)
                continue;
            char key[256] = "";
            size_t o = 0;
            for (size_t k = 0; k < t->n_key && o < sizeof(key); k++)
                o += (size_t)snprintf(key + o, sizeof(key) - o, "%s%s", k ? "," : "", t->key[k]);
            int64_t den = 0;
            int64_t actual = gaps__cell(cell, code, t->period, t->indicator,
                                        t->grouping ? t->grouping : "", key, &den);
            json_t *j =
                json_pack("{s:I, s:s, s:s, s:s, s:s, s:I}", "directive", (json_int_t)d->serial,
                          "title", d->title ? d->title : "", "indicator", t->indicator, "period",
                          t->period, "key", key, "actual", (json_int_t)actual);
            if (t->share > 0) {
                json_object_set_new(j, "target_share", json_real(t->share));
                json_object_set_new(j, "actual_share",
                                    den ? json_real((double)actual / (double)den) : json_null());
            } else {
                json_object_set_new(j, "target", json_integer(t->value));
            }
            json_array_append_new(out, j);
        }
        reint__v1__directive__free_unpacked(d, NULL);
    }
    sqlite3_finalize(st);
    return out;
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
                                       "participants_registered",
                                       "participants_served",
                                       "persons_served",
                                       "share_served",
                                       "month_closed",
                                       "referrals_pending_total",
                                       "services_unavailable_total",
                                       NULL};

int gaps_report(sqlite3 *db, unsigned province, const char *period, const char *sort, int32_t today,
                json_t **out, char *err, size_t errlen)
{
    char fy[PERIOD_KINDS][PERIOD_MAX], month[PERIOD_MAX];
    enum period_kind kind;
    int32_t first, last;
    gaps_sort so = {"code", 0};
    int rc = REINT_EDB;
    if (period == NULL || *period == '\0') {
        period_of_day(today, fy);
        period = fy[PERIOD_FISCAL_YEAR];
    }
    if (period_parse(period, &kind, &first, &last) != 0) {
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
                     "last_sync_age_days, participants_registered, persons_served, "
                     "share_served, month_closed, referrals_pending_total, "
                     "services_unavailable_total (prefix - for descending)",
                     so.field);
            return REINT_EINVAL;
        }
    }
    gaps__last_month(today, month, sizeof(month));
    sqlite3_stmt *cell = store_prepare(
        db, "SELECT numerator, denominator FROM rollup_cells WHERE municipality=?1 AND period=?2"
            " AND indicator=?3 AND grouping=?4 AND key=?5");
    sqlite3_stmt *bykey = store_prepare(
        db, "SELECT key, numerator FROM rollup_cells WHERE municipality=?1 AND period=?2"
            " AND indicator=?3 AND grouping=?4 ORDER BY key");
    sqlite3_stmt *node = store_prepare(db, "SELECT last_sync_ms FROM nodes WHERE municipality=?1");
    /* status 2 = DELIVERED */
    sqlite3_stmt *served_q = store_prepare(
        db, "SELECT count(*) FROM rollup_person p WHERE p.municipality=?1 AND p.day BETWEEN ?2"
            " AND ?3 AND EXISTS(SELECT 1 FROM rollup_service s WHERE s.person=p.id AND"
            " s.status=2)");
    json_t *rows = json_array();
    if (cell == NULL || bykey == NULL || node == NULL || rows == NULL)
        goto out;
    unsigned n;
    const geo_local_level *all = geo_all(&n);
    for (unsigned i = 0; i < n; i++) {
        const geo_local_level *g = &all[i];
        if (g->province != province)
            continue;
        int enrolled = 0;
        int64_t last_ms = 0;
        sqlite3_bind_int64(node, 1, g->code);
        if (sqlite3_step(node) == SQLITE_ROW) {
            enrolled = 1;
            last_ms = sqlite3_column_int64(node, 0);
        }
        sqlite3_reset(node);
        json_t *r = json_object();
        json_t *flags = json_array();
        json_object_set_new(r, "code", json_integer(g->code));
        json_object_set_new(r, "name", json_string(g->name));
        json_object_set_new(r, "district", json_string(g->district_name));
        json_object_set_new(r, "enrolled", json_boolean(enrolled));
        if (last_ms > 0) {
            char iso[32];
            time_t t = (time_t)(last_ms / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
            json_object_set_new(r, "last_sync", json_string(iso));
            /* Whole days elapsed since the last sync. */
            int64_t age = ((int64_t)clock_now_ms() - last_ms) / 86400000;
            json_object_set_new(r, "last_sync_age_days", json_integer(age < 0 ? 0 : age));
            if (age >= GAPS_SILENT_DAYS)
                json_array_append_new(flags, json_string("enrolled_silent"));
        } else {
            json_object_set_new(r, "last_sync", json_null());
            json_object_set_new(r, "last_sync_age_days", json_null());
            json_array_append_new(flags,
                                  json_string(enrolled ? "enrolled_silent" : "not_enrolled"));
        }
        int64_t den = 0;
        int64_t closed = gaps__cell(cell, g->code, month, "reporting_completeness", "", "", &den);
        int64_t on_time = gaps__cell(cell, g->code, month, "reporting_timeliness", "", "", NULL);
        json_object_set_new(r, "month", json_string(month));
        json_object_set_new(r, "month_closed", json_boolean(closed > 0));
        json_object_set_new(r, "month_on_time", json_boolean(on_time > 0));
        if (enrolled && den > 0 && closed == 0)
            json_array_append_new(flags, json_string("month_not_closed"));
        if (closed > 0 && on_time == 0)
            json_array_append_new(flags, json_string("month_closed_late"));
        int64_t reg = gaps__cell(cell, g->code, period, "participants_registered", "", "", NULL);
        int64_t served = gaps__cell(cell, g->code, period, "persons_served", "", "", NULL);
        /* Of the participants registered in the period, those with at least one delivered
         * service (at any date): the share a provincial officer asks about. */
        int64_t reg_served = 0;
        if (served_q) {
            sqlite3_bind_int64(served_q, 1, g->code);
            sqlite3_bind_int(served_q, 2, first);
            sqlite3_bind_int(served_q, 3, last);
            if (sqlite3_step(served_q) == SQLITE_ROW)
                reg_served = sqlite3_column_int64(served_q, 0);
            sqlite3_reset(served_q);
        }
        json_object_set_new(r, "participants_registered", json_integer(reg));
        json_object_set_new(r, "participants_served", json_integer(reg_served));
        json_object_set_new(r, "persons_served", json_integer(served));
        json_object_set_new(r, "share_served",
                            reg > 0 ? json_real((double)reg_served / (double)reg) : json_null());
        int64_t pending = 0, unavailable = 0;
        json_t *p =
            gaps__by_key(bykey, g->code, period, "referrals_pending", "service_type", &pending);
        json_t *u = gaps__by_key(bykey, g->code, period, "services_unavailable", "service_type",
                                 &unavailable);
        json_object_set_new(r, "referrals_pending_total", json_integer(pending));
        json_object_set_new(r, "referrals_pending", p);
        json_object_set_new(r, "services_unavailable_total", json_integer(unavailable));
        json_object_set_new(r, "services_unavailable", u);
        if (pending > 0)
            json_array_append_new(flags, json_string("referrals_overdue"));
        if (unavailable > 0)
            json_array_append_new(flags, json_string("services_unavailable"));
        json_object_set_new(r, "targets", gaps__targets(db, cell, province, g->code, today));
        json_object_set_new(r, "flags", flags);
        json_array_append_new(rows, r);
    }
    size_t nrows = json_array_size(rows);
    json_t **v = calloc(nrows ? nrows : 1, sizeof(*v));
    if (v == NULL)
        goto out;
    for (size_t i = 0; i < nrows; i++)
        v[i] = json_incref(json_array_get(rows, i));
    qsort_r(v, nrows, sizeof(*v), gaps__cmp, &so);
    json_array_clear(rows);
    for (size_t i = 0; i < nrows; i++)
        json_array_append_new(rows, v[i]);
    free(v);
    char fmt[16];
    bscal_format(today, 1, fmt, sizeof(fmt));
    *out = json_pack("{s:i, s:s, s:s, s:s, s:o}", "province", (int)province, "province_name",
                     geo_province_name(province), "period", period, "as_of_bs", fmt, "rows", rows);
    rows = NULL;
    rc = *out ? 0 : REINT_EDB;
out:
    json_decref(rows);
    sqlite3_finalize(cell);
    sqlite3_finalize(bykey);
    sqlite3_finalize(node);
    sqlite3_finalize(served_q);
    return rc;
}

int gaps_indicator(sqlite3 *db, unsigned province, const char *code, const char *period,
                   const char *by, uint32_t municipality, unsigned district, json_t **out,
                   char *err, size_t errlen)
{
    const catalogue_indicator *ind = catalogue_find(code);
    char grouping[64];
    enum period_kind kind;
    int32_t first, last;
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
    if (!catalogue_grouping(ind, by ? by : "", grouping, sizeof(grouping))) {
        size_t o = (size_t)snprintf(
            err, errlen, "by=\"%.40s\" is not declared for %s; allowed:", by ? by : "", code);
        for (int i = 0; ind->groupings[i] && o < errlen; i++)
            o += (size_t)snprintf(err + o, errlen - o, " \"%s\"", ind->groupings[i]);
        return REINT_EINVAL;
    }
    if (municipality) {
        const geo_local_level *g = geo_find(municipality);
        if (g == NULL || g->province != province) {
            snprintf(err, errlen, "municipality %u is not in province %u", municipality, province);
            return REINT_EINVAL;
        }
    }
    /* Municipalities in scope go to a temporary table so that the sum is one statement. */
    if (store_exec(db, "CREATE TEMP TABLE IF NOT EXISTS gaps_scope(code INTEGER PRIMARY KEY);"
                       "DELETE FROM gaps_scope;") != 0)
        return REINT_EDB;
    sqlite3_stmt *ins = store_prepare(db, "INSERT INTO gaps_scope(code) VALUES(?1)");
    unsigned n;
    const geo_local_level *all = geo_all(&n);
    int found_district = district == 0;
    for (unsigned i = 0; ins && i < n; i++) {
        const geo_local_level *g = &all[i];
        if (g->province != province || (municipality && g->code != municipality) ||
            (district && g->district != district))
            continue;
        found_district = 1;
        sqlite3_bind_int64(ins, 1, g->code);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (!found_district) {
        snprintf(err, errlen, "district %u is not in province %u", district, province);
        return REINT_EINVAL;
    }
    sqlite3_stmt *st = store_prepare(
        db, "SELECT key, sum(numerator), sum(denominator), count(*) FROM rollup_cells"
            " WHERE period=?1 AND indicator=?2 AND grouping=?3"
            " AND municipality IN (SELECT code FROM gaps_scope) GROUP BY key ORDER BY key");
    if (st == NULL)
        return REINT_EDB;
    json_t *cells = json_array();
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, grouping, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *c = json_object();
        int64_t num = sqlite3_column_int64(st, 1), den = sqlite3_column_int64(st, 2);
        const char *key = (const char *)sqlite3_column_text(st, 0);
        /* key is the grouping's values joined by ','; split it back per dimension. */
        char kbuf[256], gbuf[64];
        snprintf(kbuf, sizeof(kbuf), "%s", key);
        snprintf(gbuf, sizeof(gbuf), "%s", grouping);
        char *ks = NULL, *gs = NULL;
        char *k = strtok_r(kbuf, ",", &ks), *d = strtok_r(gbuf, ",", &gs);
        while (k && d) {
            json_object_set_new(c, d, json_string(k));
            k = strtok_r(NULL, ",", &ks);
            d = strtok_r(NULL, ",", &gs);
        }
        json_object_set_new(c, "value", json_integer(num));
        if (ind->agg == CATALOGUE_RATIO) {
            json_object_set_new(c, "denominator", json_integer(den));
            json_object_set_new(c, "ratio",
                                den ? json_real((double)num / (double)den) : json_null());
        }
        json_array_append_new(cells, c);
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:s, s:s, s:s, s:i, s:o}", "indicator", code, "period", period, "by",
                     grouping, "province", (int)province, "cells", cells);
    return *out ? 0 : REINT_EDB;
}

static void gaps__csv_field(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t need = strlen(s) * 2 + 4;
    if (*len + need >= *cap) {
        size_t nc = (*cap + need) * 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL)
            return;
        *buf = nb;
        *cap = nc;
    }
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        (*buf)[(*len)++] = '"';
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            (*buf)[(*len)++] = '"';
        (*buf)[(*len)++] = *p;
    }
    if (quote)
        (*buf)[(*len)++] = '"';
    (*buf)[*len] = '\0';
}

static void gaps__raw(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 >= *cap) {
        size_t nc = (*cap + n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL)
            return;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

char *gaps_csv(const json_t *report, const char *array)
{
    const json_t *rows = json_object_get(report, array);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (buf == NULL || !json_is_array(rows))
        return buf;
    buf[0] = '\0';
    const json_t *first = json_array_get(rows, 0);
    const char *key;
    json_t *val;
    int col = 0;
    json_object_foreach((json_t *)first, key, val)
    {
        if (col++)
            gaps__raw(&buf, &len, &cap, ",");
        gaps__csv_field(&buf, &len, &cap, key);
    }
    gaps__raw(&buf, &len, &cap, "\r\n");
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        col = 0;
        json_object_foreach((json_t *)first, key, val)
        {
            json_t *v = json_object_get(row, key);
            char tmp[64];
            char *dumped = NULL;
            const char *s = "";
            if (col++)
                gaps__raw(&buf, &len, &cap, ",");
            if (json_is_string(v))
                s = json_string_value(v);
            else if (json_is_integer(v))
                s = (snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v)), tmp);
            else if (json_is_real(v))
                s = (snprintf(tmp, sizeof(tmp), "%.4f", json_real_value(v)), tmp);
            else if (json_is_boolean(v))
                s = json_is_true(v) ? "true" : "false";
            else if (json_is_object(v) || json_is_array(v))
                s = dumped = json_dumps(v, JSON_COMPACT);
            gaps__csv_field(&buf, &len, &cap, s ? s : "");
            free(dumped);
        }
        gaps__raw(&buf, &len, &cap, "\r\n");
    }
    return buf;
}
