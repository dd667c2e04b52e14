#include "months.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bscal.h"
#include "clock.h"
#include "log.h"
#include "review.h"
#include "store.h"
#include "utf8.h"

#define ST_OPEN     REINT__V1__MONTH_STATE__MONTH_STATE_OPEN
#define ST_CLOSED   REINT__V1__MONTH_STATE__MONTH_STATE_CLOSED
#define ST_RETURNED REINT__V1__MONTH_STATE__MONTH_STATE_RETURNED
/* Months listed at most (a node closes twelve a year). */
#define MONTHS_MAX 2400

static const char *months__schema =
    "CREATE TABLE IF NOT EXISTS month_reviews(bs INTEGER NOT NULL, ym INTEGER NOT NULL,"
    " state INTEGER NOT NULL, clock INTEGER NOT NULL, version INTEGER NOT NULL,"
    " decision INTEGER NOT NULL, decided_by TEXT NOT NULL, decided_at INTEGER NOT NULL,"
    " comment TEXT NOT NULL, PRIMARY KEY(bs, ym)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS month_review_log(clock INTEGER PRIMARY KEY, bs INTEGER NOT NULL,"
    " ym INTEGER NOT NULL, state INTEGER NOT NULL, version INTEGER NOT NULL,"
    " decision INTEGER NOT NULL, decided_by TEXT NOT NULL, decided_at INTEGER NOT NULL,"
    " comment TEXT NOT NULL);";

int months_init(sqlite3 *db)
{
    return store_exec(db, months__schema);
}

int months_position(sqlite3 *db, uint64_t *through)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT coalesce(max(clock), 0) FROM month_review_log");
    if (st == NULL)
        return REINT_EDB;
    int step = sqlite3_step(st);
    *through = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 0 : REINT_EDB;
}

/* Binds the change c as (clock, bs, ym, state, version, decision, decided_by, decided_at,
 * comment), ?1..?9. */
static void months__bind(sqlite3_stmt *st, const Reint__V1__MonthReview *c)
{
    sqlite3_bind_int64(st, 1, (int64_t)c->clock);
    sqlite3_bind_int(st, 2, c->calendar == REINT__V1__CALENDAR__CALENDAR_BS);
    sqlite3_bind_int(st, 3, c->month);
    sqlite3_bind_int(st, 4, (int)c->state);
    sqlite3_bind_int64(st, 5, (int64_t)c->version);
    sqlite3_bind_int(st, 6, c->decision != 0);
    sqlite3_bind_text(st, 7, c->decided_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (int64_t)c->decided_at);
    sqlite3_bind_text(st, 9, c->comment, -1, SQLITE_STATIC);
}

int months_receive(sqlite3 *db, uint32_t municipality, const Reint__V1__Reviews *r,
                   uint64_t *through, char *why, size_t whylen)
{
    *through = 0;
    for (size_t i = 0; i < r->n_reviews; i++) {
        const Reint__V1__MonthReview *c = r->reviews[i];
        if (review_check(c, why, whylen) != 0)
            return REINT_EINVAL;
        if (c->municipality != municipality) {
            snprintf(why, whylen, "a change of municipality %u sent to municipality %u",
                     c->municipality, municipality);
            return REINT_EFORBIDDEN;
        }
        if ((c->clock >> 16) > clock_now_ms() + REVIEW_AHEAD_MS) {
            snprintf(why, whylen,
                     "a change with clock %llu, more than %llu s ahead of this node's clock: "
                     "check the hub's clock",
                     (unsigned long long)c->clock, (unsigned long long)(REVIEW_AHEAD_MS / 1000));
            return REINT_ERANGE;
        }
        if (c->clock > *through)
            *through = c->clock;
    }
    sqlite3_stmt *log = store_prepare(
        db, "INSERT OR IGNORE INTO month_review_log(clock, bs, ym, state, version, decision,"
            " decided_by, decided_at, comment) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
    sqlite3_stmt *cur = store_prepare(
        db, "INSERT INTO month_reviews(clock, bs, ym, state, version, decision, decided_by,"
            " decided_at, comment) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)"
            " ON CONFLICT(bs, ym) DO UPDATE SET clock=excluded.clock, state=excluded.state,"
            " version=excluded.version, decision=excluded.decision, decided_by=excluded.decided_by,"
            " decided_at=excluded.decided_at, comment=excluded.comment"
            " WHERE excluded.clock > month_reviews.clock");
    int rc = log && cur ? store_exec(db, "BEGIN IMMEDIATE") : REINT_EDB;
    int in_txn = rc == 0;
    for (size_t i = 0; rc == 0 && i < r->n_reviews; i++) {
        months__bind(log, r->reviews[i]);
        months__bind(cur, r->reviews[i]);
        if ((rc = store_step_done(db, log)) == 0)
            rc = store_step_done(db, cur);
    }
    if (rc == 0)
        rc = store_exec(db, "COMMIT");
    if (rc != 0 && in_txn && !sqlite3_get_autocommit(db))
        store_exec(db, "ROLLBACK");
    sqlite3_finalize(log);
    sqlite3_finalize(cur);
    if (rc != 0) {
        snprintf(why, whylen, "the store could not keep them");
        return REINT_EDB;
    }
    return 0;
}

int months_return_clock(sqlite3 *db, int bs, int32_t ym, uint64_t *clock)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT coalesce(max(clock), 0) FROM month_review_log"
                                         " WHERE bs=?1 AND ym=?2 AND decision=1 AND state=?3");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int(st, 1, bs != 0);
    sqlite3_bind_int(st, 2, ym);
    sqlite3_bind_int(st, 3, ST_RETURNED);
    int step = sqlite3_step(st);
    *clock = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 0 : REINT_EDB;
}

/* One month as the clerk sees it. */
typedef struct months__row {
    int32_t ym;
    int state, hub_state, decision;
    uint64_t close_version, version, clock, decided_at;
    char decided_by[REVIEW_WHO_MAX + 1];
    char comment[REVIEW_COMMENT_MAX + 1];
} months__row;

static months__row *months__find(months__row *rows, size_t n, int32_t ym)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].ym == ym)
            return &rows[i];
    return NULL;
}

/* The state shown: the hub's, but a month closed again after a return is closed (until the
 * hub has seen it), and a month the hub holds no change for is open or closed as here. */
static int months__shown(const months__row *m)
{
    if (m->hub_state == ST_RETURNED)
        return m->close_version > m->version ? ST_CLOSED : ST_RETURNED;
    if (m->hub_state > ST_OPEN)
        return m->hub_state;
    return m->close_version ? ST_CLOSED : ST_OPEN;
}

static int months__cmp(const void *a, const void *b)
{
    const months__row *x = a, *y = b;
    int rx = x->state == ST_RETURNED, ry = y->state == ST_RETURNED;
    if (rx != ry)
        return ry - rx;
    return x->ym < y->ym ? 1 : x->ym > y->ym ? -1 : 0;
}

/* Every month of calendar bs: the live closes here and the hub's changes, sorted. */
static int months__load(sqlite3 *db, int bs, months__row **out, size_t *n)
{
    months__row *rows = calloc(MONTHS_MAX, sizeof(*rows));
    sqlite3_stmt *cl = store_prepare(db, "SELECT local_id, version FROM records"
                                         " WHERE kind=5 AND live=1");
    sqlite3_stmt *hub = store_prepare(db, "SELECT ym, state, version, clock, decision,"
                                          " decided_by, decided_at, comment"
                                          " FROM month_reviews WHERE bs=?1");
    int rc = 0, step = SQLITE_DONE;
    *n = 0;
    if (rows == NULL || cl == NULL || hub == NULL) {
        rc = rows == NULL ? REINT_ENOMEM : REINT_EDB;
        goto out;
    }
    while ((step = sqlite3_step(cl)) == SQLITE_ROW && *n < MONTHS_MAX) {
        int y = 0, m = 0;
        char extra;
        const char *lid = (const char *)sqlite3_column_text(cl, 0);
        if (lid == NULL || sscanf(lid, "%4d-%2d%c", &y, &m, &extra) != 2)
            continue;
        months__row *r = &rows[(*n)++];
        r->ym = y * 100 + m;
        r->close_version = (uint64_t)sqlite3_column_int64(cl, 1);
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW) {
        rc = REINT_EDB;
        goto out;
    }
    sqlite3_bind_int(hub, 1, bs != 0);
    while ((step = sqlite3_step(hub)) == SQLITE_ROW) {
        int32_t ym = sqlite3_column_int(hub, 0);
        months__row *r = months__find(rows, *n, ym);
        if (r == NULL) {
            if (*n == MONTHS_MAX)
                continue;
            r = &rows[(*n)++];
            r->ym = ym;
        }
        r->hub_state = sqlite3_column_int(hub, 1);
        r->version = (uint64_t)sqlite3_column_int64(hub, 2);
        r->clock = (uint64_t)sqlite3_column_int64(hub, 3);
        r->decision = sqlite3_column_int(hub, 4);
        snprintf(r->decided_by, sizeof(r->decided_by), "%s",
                 sqlite3_column_text(hub, 5) ? (const char *)sqlite3_column_text(hub, 5) : "");
        r->decided_at = (uint64_t)sqlite3_column_int64(hub, 6);
        snprintf(r->comment, sizeof(r->comment), "%s",
                 sqlite3_column_text(hub, 7) ? (const char *)sqlite3_column_text(hub, 7) : "");
    }
    if (step != SQLITE_DONE)
        rc = REINT_EDB;
out:
    if (rc == REINT_EDB)
        log_error("months: the store could not be read: %s", sqlite3_errmsg(db));
    sqlite3_finalize(cl);
    sqlite3_finalize(hub);
    if (rc != 0) {
        free(rows);
        *n = 0;
        return rc;
    }
    for (size_t i = 0; i < *n; i++)
        rows[i].state = months__shown(&rows[i]);
    qsort(rows, *n, sizeof(*rows), months__cmp);
    *out = rows;
    return 0;
}

static json_t *months__time(uint64_t ms)
{
    char iso[40];
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    if (ms == 0 || gmtime_r(&t, &tm) == NULL)
        return json_null();
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(iso);
}

struct months_states {
    months__row *rows;
    size_t n;
};

int months_states_load(sqlite3 *db, int bs, months_states **out)
{
    months_states *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (s == NULL)
        return REINT_ENOMEM;
    int rc = months__load(db, bs, &s->rows, &s->n);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int months_states_of(const months_states *s, int32_t ym)
{
    const months__row *m = s ? months__find(s->rows, s->n, ym) : NULL;
    return m ? m->state : ST_OPEN;
}

void months_states_free(months_states *s)
{
    if (s) {
        free(s->rows);
        free(s);
    }
}

int months_json(sqlite3 *db, int bs, int returned_only, json_t **out)
{
    months__row *rows = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = months__load(db, bs, &rows, &n);
    if (rc != 0)
        return rc;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        const months__row *m = &rows[i];
        char p[16];
        if ((returned_only && m->state != ST_RETURNED) || review_period(bs, m->ym, p, sizeof(p)))
            continue;
        int decided = m->decision || m->decided_at;
        json_t *o =
            json_pack("{s:s, s:s, s:b, s:o, s:o, s:o, s:o, s:o}", "period", p, "state",
                      review_state_name(m->state), "closed", m->close_version != 0, "hub_state",
                      m->hub_state ? json_string(review_state_name(m->hub_state)) : json_null(),
                      "decided_by", decided ? json_string(m->decided_by) : json_null(),
                      "decided_at", months__time(decided ? m->decided_at : 0), "comment",
                      decided ? json_string(m->comment) : json_null(), "clock",
                      m->clock ? json_integer((json_int_t)m->clock) : json_null());
        if (o == NULL || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    free(rows);
    if (list == NULL)
        return REINT_ENOMEM;
    *out = json_pack("{s:s, s:o}", "calendar", bs ? "BS" : "AD", "months", list);
    return *out ? 0 : REINT_ENOMEM;
}

int months_print(sqlite3 *db, int bs, FILE *f)
{
    months__row *rows = NULL;
    size_t n = 0;
    int rc = months__load(db, bs, &rows, &n);
    if (rc != 0)
        return rc;
    if (n == 0)
        fprintf(f, "no month closed yet (municipal-node close-month YYYY-MM)\n");
    for (size_t i = 0; i < n; i++) {
        const months__row *m = &rows[i];
        char p[16];
        if (review_period(bs, m->ym, p, sizeof(p)) != 0)
            continue;
        /* One line of the terminal each: a comment's line breaks, and any control or mark
         * that reorders text a hub stored before d903c69, are shown as '?'. */
        char comment[sizeof(m->comment)];
        utf8_scrub(comment, sizeof(comment), m->comment);
        fprintf(f, "%-10s %-9s", p, review_state_name(m->state));
        if (m->state == ST_RETURNED)
            fprintf(f, " by %s: %s", m->decided_by, comment);
        else if (m->decision && m->state != ST_CLOSED)
            fprintf(f, " by %s", m->decided_by);
        else if (m->state == ST_CLOSED && m->hub_state == ST_RETURNED)
            fprintf(f, " again, after it was returned (\"%s\")", comment);
        fputc('\n', f);
    }
    free(rows);
    return fflush(f) == 0 && !ferror(f) ? 0 : REINT_EIO;
}
