#include "reviews.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bscal.h"
#include "clock.h"
#include "geo.h"
#include "hlc.h"
#include "log.h"
#include "period.h"
#include "sbuf.h"
#include "store.h"

#define ST_OPEN     REINT__V1__MONTH_STATE__MONTH_STATE_OPEN
#define ST_CLOSED   REINT__V1__MONTH_STATE__MONTH_STATE_CLOSED
#define ST_APPROVED REINT__V1__MONTH_STATE__MONTH_STATE_APPROVED
#define ST_RETURNED REINT__V1__MONTH_STATE__MONTH_STATE_RETURNED
#define ST_CHANGED  REINT__V1__MONTH_STATE__MONTH_STATE_CHANGED

static const char *reviews__schema =
    "CREATE TABLE IF NOT EXISTS review_months(municipality INTEGER NOT NULL,"
    " bs INTEGER NOT NULL, ym INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
    " state INTEGER NOT NULL DEFAULT 1, clock INTEGER NOT NULL DEFAULT 0,"
    " decision INTEGER NOT NULL DEFAULT 0, seen_version INTEGER NOT NULL DEFAULT 0,"
    " decided_by TEXT NOT NULL DEFAULT '', decided_at INTEGER NOT NULL DEFAULT 0,"
    " comment TEXT NOT NULL DEFAULT '', decision_clock INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(municipality, bs, ym)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS review_log(clock INTEGER PRIMARY KEY,"
    " municipality INTEGER NOT NULL, bs INTEGER NOT NULL, ym INTEGER NOT NULL,"
    " state INTEGER NOT NULL, version INTEGER NOT NULL, decision INTEGER NOT NULL,"
    " decided_by TEXT NOT NULL, decided_at INTEGER NOT NULL,"
    " comment TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS review_log_municipality ON review_log(municipality, clock);"
    "CREATE TABLE IF NOT EXISTS review_nodes(municipality INTEGER PRIMARY KEY,"
    " acked INTEGER NOT NULL);";

enum { Q_GET, Q_CLOSE, Q_VERSION, Q_PUT, Q_LOG, Q_LOG_KEEP, Q_N };

static const char *const reviews__sql[Q_N] = {
    [Q_GET] = "SELECT version, state, clock, decision, seen_version, decided_by, decided_at,"
              " comment, decision_clock FROM review_months"
              " WHERE municipality=?1 AND bs=?2 AND ym=?3",
    /* The live closes of the month (the rollup engine's shadow of the close records, with
     * their versions from the records): one, unless a node changed its store's ids. */
    [Q_CLOSE] = "SELECT count(*), max(c.closed_day), max(r.version) FROM rollup_close c"
                " JOIN records r ON r.municipality=c.municipality AND r.id=c.id"
                " WHERE c.municipality=?1 AND c.bs=?2 AND c.year=?3 AND c.month=?4",
    [Q_VERSION] = "INSERT INTO review_months(municipality, bs, ym, version) VALUES(?1,?2,?3,?4)"
                  " ON CONFLICT(municipality, bs, ym) DO UPDATE"
                  " SET version=max(version, excluded.version)",
    [Q_PUT] = "INSERT OR REPLACE INTO review_months(municipality, bs, ym, version, state, clock,"
              " decision, seen_version, decided_by, decided_at, comment, decision_clock)"
              " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
    [Q_LOG] = "INSERT INTO review_log(clock, municipality, bs, ym, state, version, decision,"
              " decided_by, decided_at, comment) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [Q_LOG_KEEP] = "INSERT OR IGNORE INTO review_log(clock, municipality, bs, ym, state, version,"
                   " decision, decided_by, decided_at, comment)"
                   " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
};

struct reviews {
    sqlite3 *db;
    rollup *roll;
    sqlite3_stmt *q[Q_N];
    hlc clock;
    uint64_t changes; /* logged since reviews_take_changes */
};

/* ---- reading a month ------------------------------------------------------------------------ */

static void reviews__text(char *dst, size_t dstlen, const unsigned char *src)
{
    snprintf(dst, dstlen, "%s", src ? (const char *)src : "");
}

/* Fills m from its row (get) and its closes (close), both bound and reset here. */
static int reviews__read(sqlite3 *db, sqlite3_stmt *get, sqlite3_stmt *close, uint32_t mun, int bs,
                         int32_t ym, reviews_month *m)
{
    memset(m, 0, sizeof(*m));
    m->municipality = mun;
    m->bs = bs != 0;
    m->ym = ym;
    m->state = ST_OPEN;
    sqlite3_bind_int64(get, 1, mun);
    sqlite3_bind_int(get, 2, m->bs);
    sqlite3_bind_int(get, 3, ym);
    int step = sqlite3_step(get);
    if (step == SQLITE_ROW) {
        m->version = (uint64_t)sqlite3_column_int64(get, 0);
        m->state = sqlite3_column_int(get, 1);
        m->clock = (uint64_t)sqlite3_column_int64(get, 2);
        m->decision = sqlite3_column_int(get, 3);
        m->seen_version = (uint64_t)sqlite3_column_int64(get, 4);
        reviews__text(m->decided_by, sizeof(m->decided_by), sqlite3_column_text(get, 5));
        m->decided_at = (uint64_t)sqlite3_column_int64(get, 6);
        reviews__text(m->comment, sizeof(m->comment), sqlite3_column_text(get, 7));
        m->decision_clock = (uint64_t)sqlite3_column_int64(get, 8);
    }
    sqlite3_reset(get);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_error("reviews: reading a month: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    sqlite3_bind_int64(close, 1, mun);
    sqlite3_bind_int(close, 2, m->bs);
    sqlite3_bind_int(close, 3, ym / 100);
    sqlite3_bind_int(close, 4, ym % 100);
    step = sqlite3_step(close);
    if (step == SQLITE_ROW) {
        m->closed = sqlite3_column_int64(close, 0) > 0;
        m->closed_day = sqlite3_column_int(close, 1);
        m->close_version = (uint64_t)sqlite3_column_int64(close, 2);
    }
    sqlite3_reset(close);
    if (step != SQLITE_ROW) {
        log_error("reviews: reading a month's closes: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    return 0;
}

int reviews_get(sqlite3 *db, uint32_t municipality, int bs, int32_t ym, reviews_month *out)
{
    sqlite3_stmt *get = store_prepare(db, reviews__sql[Q_GET]);
    sqlite3_stmt *close = store_prepare(db, reviews__sql[Q_CLOSE]);
    int rc = get && close ? reviews__read(db, get, close, municipality, bs, ym, out) : REINT_EDB;
    sqlite3_finalize(get);
    sqlite3_finalize(close);
    return rc;
}

/* The state the month is in, from its decision, its version and its closes. */
static int reviews__state(const reviews_month *m)
{
    if (m->decision == ST_APPROVED)
        return m->version > m->seen_version ? ST_CHANGED : ST_APPROVED;
    /* A returned month is open at the node until its clerk closes it again: a close newer
     * than what the reviewer saw. */
    if (m->decision == ST_RETURNED && !(m->closed && m->close_version > m->seen_version))
        return ST_RETURNED;
    return m->closed ? ST_CLOSED : ST_OPEN;
}

/* ---- writing a month ------------------------------------------------------------------------ */

static int reviews__step(reviews *rv, sqlite3_stmt *st)
{
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_DONE) {
        log_error("reviews: %s", sqlite3_errmsg(rv->db));
        return REINT_EDB;
    }
    return 0;
}

static int reviews__put(reviews *rv, const reviews_month *m)
{
    sqlite3_stmt *st = rv->q[Q_PUT];
    sqlite3_bind_int64(st, 1, m->municipality);
    sqlite3_bind_int(st, 2, m->bs);
    sqlite3_bind_int(st, 3, m->ym);
    sqlite3_bind_int64(st, 4, (int64_t)m->version);
    sqlite3_bind_int(st, 5, m->state);
    sqlite3_bind_int64(st, 6, (int64_t)m->clock);
    sqlite3_bind_int(st, 7, m->decision);
    sqlite3_bind_int64(st, 8, (int64_t)m->seen_version);
    sqlite3_bind_text(st, 9, m->decided_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (int64_t)m->decided_at);
    sqlite3_bind_text(st, 11, m->comment, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 12, (int64_t)m->decision_clock);
    return reviews__step(rv, st);
}

/* Writes one change of the log as it travels. */
static int reviews__log(reviews *rv, sqlite3_stmt *st, uint64_t clock, uint32_t mun, int bs,
                        int32_t ym, int state, uint64_t version, int decision, const char *by,
                        uint64_t at, const char *comment)
{
    sqlite3_bind_int64(st, 1, (int64_t)clock);
    sqlite3_bind_int64(st, 2, mun);
    sqlite3_bind_int(st, 3, bs);
    sqlite3_bind_int(st, 4, ym);
    sqlite3_bind_int(st, 5, state);
    sqlite3_bind_int64(st, 6, (int64_t)version);
    sqlite3_bind_int(st, 7, decision);
    sqlite3_bind_text(st, 8, by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, (int64_t)at);
    sqlite3_bind_text(st, 10, comment, -1, SQLITE_STATIC);
    return reviews__step(rv, st);
}

/* The next clock of the log, persisted in the open transaction. */
static int reviews__next_clock(reviews *rv, uint64_t *clock)
{
    *clock = hlc_next(&rv->clock, clock_now_ms());
    return store_meta_set_int(rv->db, "review_hlc", (int64_t)rv->clock.last);
}

/* Stores m with the state it is now in. When that state differs from the one held, or when
 * decision is set (m carries a new decision), the change gets the next clock and is logged;
 * entering or leaving RETURNED tells the rollup engine (completeness counts a returned month
 * as not closed). */
static int reviews__settle(reviews *rv, reviews_month *m, int decision)
{
    int was = m->state, now = reviews__state(m), rc;
    if (now == was && !decision)
        return reviews__put(rv, m);
    uint64_t clock;
    if ((rc = reviews__next_clock(rv, &clock)) != 0)
        return rc;
    m->state = now;
    m->clock = clock;
    if (decision)
        m->decision_clock = clock;
    if ((was == ST_RETURNED) != (now == ST_RETURNED) &&
        (rc = rollup_set_returned(rv->roll, m->municipality, m->bs, m->ym / 100, m->ym % 100,
                                  now == ST_RETURNED)) != 0)
        return rc;
    if ((rc = reviews__put(rv, m)) != 0 ||
        (rc = reviews__log(rv, rv->q[Q_LOG], clock, m->municipality, m->bs, m->ym, now,
                           decision ? m->seen_version : m->version, decision, m->decided_by,
                           m->decided_at, m->comment)) != 0)
        return rc;
    rv->changes++;
    char p[PERIOD_MAX];
    review_period(m->bs, m->ym, p, sizeof(p));
    log_info("review: municipality:%u %s is %s (clock %llu%s%s)", m->municipality, p,
             review_state_name(now), (unsigned long long)clock, decision ? ", decided by " : "",
             decision ? m->decided_by : "");
    return 0;
}

/* ---- open -------------------------------------------------------------------------------- */

int reviews_last_clock(sqlite3 *db, uint32_t municipality, uint64_t *out)
{
    sqlite3_stmt *st =
        store_prepare(db, municipality ? "SELECT max(clock) FROM review_log WHERE municipality=?1"
                                       : "SELECT max(clock) FROM review_log");
    if (st == NULL)
        return REINT_EDB;
    if (municipality)
        sqlite3_bind_int64(st, 1, municipality);
    int step = sqlite3_step(st);
    *out = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 0 : REINT_EDB;
}

int reviews_open(reviews **out, sqlite3 *db, rollup *roll, char *err, size_t errlen)
{
    reviews *rv = calloc(1, sizeof(*rv));
    int64_t saved = 0;
    uint64_t last = 0;
    if (rv == NULL) {
        snprintf(err, errlen, "reviews: out of memory");
        return REINT_ENOMEM;
    }
    rv->db = db;
    rv->roll = roll;
    if (store_exec(db, reviews__schema) != 0)
        goto fail;
    for (int i = 0; i < Q_N; i++)
        if ((rv->q[i] = store_prepare(db, reviews__sql[i])) == NULL)
            goto fail;
    /* Above every clock issued before (persisted) and every clock the log holds (a change
     * recovered from the federal tier may be newer than this store's last). */
    if (store_meta_get_int_or(db, "review_hlc", 0, &saved) != 0 ||
        reviews_last_clock(db, 0, &last) != 0)
        goto fail;
    hlc_observe(&rv->clock, (uint64_t)saved);
    hlc_observe(&rv->clock, last);
    rollup_track_months(roll, 1);
    *out = rv;
    return 0;
fail:
    snprintf(err, errlen, "reviews: cannot open the review tables: %s", sqlite3_errmsg(db));
    reviews_close(rv);
    return REINT_EDB;
}

void reviews_close(reviews *rv)
{
    if (rv == NULL)
        return;
    for (int i = 0; i < Q_N; i++)
        sqlite3_finalize(rv->q[i]);
    free(rv);
}

void reviews_observe(reviews *rv, uint64_t clock)
{
    if (clock <= REVIEW_CLOCK_MAX)
        hlc_observe(&rv->clock, clock);
}

uint64_t reviews_take_changes(reviews *rv)
{
    uint64_t n = rv->changes;
    rv->changes = 0;
    return n;
}

/* ---- the records' side ---------------------------------------------------------------------- */

static int reviews__touched(void *ud, uint32_t municipality, int bs, int32_t ym, uint64_t version)
{
    reviews *rv = ud;
    reviews_month m;
    sqlite3_stmt *st = rv->q[Q_VERSION];
    if (version > REVIEW_CLOCK_MAX)
        version = REVIEW_CLOCK_MAX;
    sqlite3_bind_int64(st, 1, municipality);
    sqlite3_bind_int(st, 2, bs);
    sqlite3_bind_int(st, 3, ym);
    sqlite3_bind_int64(st, 4, (int64_t)version);
    int rc = reviews__step(rv, st);
    if (rc == 0)
        rc = reviews__read(rv->db, rv->q[Q_GET], rv->q[Q_CLOSE], municipality, bs, ym, &m);
    if (rc == 0 && reviews__state(&m) != m.state)
        rc = reviews__settle(rv, &m, 0);
    return rc;
}

int reviews_note(reviews *rv)
{
    return rollup_touched_months(rv->roll, reviews__touched, rv);
}

/* ---- decisions --------------------------------------------------------------------------------
 */

int reviews_decide(reviews *rv, uint32_t municipality, int bs, int32_t ym, int approve,
                   const reviews_seen *seen, const char *who, const char *comment,
                   reviews_month *out)
{
    int rc = reviews__read(rv->db, rv->q[Q_GET], rv->q[Q_CLOSE], municipality, bs, ym, out);
    if (rc != 0)
        return rc;
    if (out->state == ST_OPEN || out->state == ST_RETURNED)
        return REINT_EINVAL;
    if (seen->version != out->version || (seen->clock && seen->clock != out->clock))
        return REINT_ESTALE;
    /* A month approved at the version the reviewer saw may have been approved since: two
     * reviewers on the same queue, both seeing it closed, would otherwise have the second's
     * return undo the first's approval unseen. Returning an approved month takes the clock
     * of the approval, which only a reviewer who saw it has. */
    if (out->state == ST_APPROVED && (approve || seen->clock == 0))
        return REINT_EEXIST;
    reviews_month m = *out;
    m.decision = approve ? ST_APPROVED : ST_RETURNED;
    m.seen_version = seen->version;
    m.decided_at = clock_now_ms();
    snprintf(m.decided_by, sizeof(m.decided_by), "%s", who);
    snprintf(m.comment, sizeof(m.comment), "%s", comment ? comment : "");
    if ((rc = reviews__settle(rv, &m, 1)) != 0)
        return rc;
    *out = m;
    return 0;
}

/* ---- recovery from the federal tier ---------------------------------------------------------- */

int reviews_recover(reviews *rv, const Reint__V1__Reviews *r, unsigned province, char *why,
                    size_t whylen)
{
    for (size_t i = 0; i < r->n_reviews; i++) {
        const Reint__V1__MonthReview *c = r->reviews[i];
        if (review_check(c, why, whylen) != 0)
            return REINT_EINVAL;
        const geo_local_level *g = geo_find(c->municipality);
        if (g == NULL || g->province != province) {
            snprintf(why, whylen, "a change of municipality %u, which is not of province %u",
                     c->municipality, province);
            return REINT_EFORBIDDEN;
        }
    }
    for (size_t i = 0; i < r->n_reviews; i++) {
        const Reint__V1__MonthReview *c = r->reviews[i];
        int bs = c->calendar == REINT__V1__CALENDAR__CALENDAR_BS, rc;
        reviews_observe(rv, c->clock);
        if ((rc = reviews__log(rv, rv->q[Q_LOG_KEEP], c->clock, c->municipality, bs, c->month,
                               (int)c->state, c->version, c->decision != 0, c->decided_by,
                               c->decided_at, c->comment)) != 0)
            return rc;
        if (!c->decision)
            continue;
        reviews_month m;
        if ((rc = reviews__read(rv->db, rv->q[Q_GET], rv->q[Q_CLOSE], c->municipality, bs, c->month,
                                &m)) != 0)
            return rc;
        if (c->clock <= m.decision_clock)
            continue;
        m.decision = (int)c->state;
        m.seen_version = c->version;
        m.decided_at = c->decided_at;
        m.decision_clock = c->clock;
        snprintf(m.decided_by, sizeof(m.decided_by), "%s", c->decided_by);
        snprintf(m.comment, sizeof(m.comment), "%s", c->comment);
        if ((rc = reviews__settle(rv, &m, 0)) != 0)
            return rc;
    }
    return 0;
}

int reviews_node_acked(reviews *rv, uint32_t municipality, uint64_t through)
{
    sqlite3_stmt *st = store_prepare(rv->db, "INSERT INTO review_nodes(municipality, acked)"
                                             " VALUES(?1,?2) ON CONFLICT(municipality) DO UPDATE"
                                             " SET acked=max(acked, excluded.acked)");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, municipality);
    sqlite3_bind_int64(st, 2, (int64_t)(through > REVIEW_CLOCK_MAX ? REVIEW_CLOCK_MAX : through));
    int rc = reviews__step(rv, st);
    sqlite3_finalize(st);
    return rc;
}

/* ---- loading changes for delivery ------------------------------------------------------------ */

void reviews_free(Reint__V1__Reviews *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_reviews; i++) {
        free(r->reviews[i]->decided_by);
        free(r->reviews[i]->comment);
        free(r->reviews[i]);
    }
    free(r->reviews);
    free(r);
}

static char *reviews__dup(const unsigned char *s)
{
    return strdup(s ? (const char *)s : "");
}

int reviews_load(sqlite3 *db, uint32_t municipality, uint64_t after, size_t max_bytes,
                 Reint__V1__Reviews **out)
{
    static const char *cols = "SELECT clock, municipality, bs, ym, state, version, decision,"
                              " decided_by, decided_at, comment FROM review_log";
    char sql[400];
    snprintf(sql, sizeof(sql), "%s WHERE %s clock > ?2 ORDER BY clock LIMIT %d", cols,
             municipality ? "municipality=?1 AND" : "?1=0 AND", REVIEW_PAGE);
    Reint__V1__Reviews *r = calloc(1, sizeof(*r));
    sqlite3_stmt *st = store_prepare(db, sql);
    int rc = 0, step = SQLITE_DONE;
    size_t total = 0;
    *out = NULL;
    if (r != NULL) {
        reint__v1__reviews__init(r);
        r->reviews = calloc(REVIEW_PAGE, sizeof(*r->reviews));
    }
    if (r == NULL || st == NULL || r->reviews == NULL) {
        rc = st == NULL ? REINT_EDB : REINT_ENOMEM;
        goto out;
    }
    sqlite3_bind_int64(st, 1, municipality);
    sqlite3_bind_int64(st, 2, (int64_t)(after > REVIEW_CLOCK_MAX ? REVIEW_CLOCK_MAX : after));
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        Reint__V1__MonthReview *m = calloc(1, sizeof(*m));
        if (m == NULL) {
            rc = REINT_ENOMEM;
            break;
        }
        reint__v1__month_review__init(m);
        m->clock = (uint64_t)sqlite3_column_int64(st, 0);
        m->municipality = (uint32_t)sqlite3_column_int64(st, 1);
        m->calendar = sqlite3_column_int(st, 2) ? REINT__V1__CALENDAR__CALENDAR_BS
                                                : REINT__V1__CALENDAR__CALENDAR_AD;
        m->month = sqlite3_column_int(st, 3);
        m->state = (Reint__V1__MonthState)sqlite3_column_int(st, 4);
        m->version = (uint64_t)sqlite3_column_int64(st, 5);
        m->decision = sqlite3_column_int(st, 6) != 0;
        m->decided_by = reviews__dup(sqlite3_column_text(st, 7));
        m->decided_at = (uint64_t)sqlite3_column_int64(st, 8);
        m->comment = reviews__dup(sqlite3_column_text(st, 9));
        if (m->decided_by == NULL || m->comment == NULL) {
            free(m->decided_by);
            free(m->comment);
            free(m);
            rc = REINT_ENOMEM;
            break;
        }
        /* Each change takes its packed size, a tag and a length in the message. */
        size_t n = reint__v1__month_review__get_packed_size(m) + 6;
        if (r->n_reviews > 0 && total + n > max_bytes) {
            free(m->decided_by);
            free(m->comment);
            free(m);
            break;
        }
        total += n;
        r->reviews[r->n_reviews++] = m;
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW) {
        log_error("reviews: reading the log: %s", sqlite3_errmsg(db));
        rc = REINT_EDB;
    }
out:
    sqlite3_finalize(st);
    if (rc != 0) {
        reviews_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static json_t *reviews__iso_ms(uint64_t ms)
{
    char iso[40];
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    if (ms == 0 || gmtime_r(&t, &tm) == NULL)
        return json_null();
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(iso);
}

static json_t *reviews__day(int32_t day, int bs)
{
    char d[16];
    if (day == 0 || bscal_format(day, bs, d, sizeof(d)) != 0)
        return json_null();
    return json_string(d);
}

json_t *reviews_month_json(const reviews_month *m)
{
    char p[PERIOD_MAX];
    review_period(m->bs, m->ym, p, sizeof(p));
    const geo_local_level *g = geo_find(m->municipality);
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int decided = m->decision != 0;
    /* The version again as a decimal string: a node's versions are above 2^53, where the
     * numbers of JavaScript (the review page) lose their last digits, and a seen_version so
     * rounded was refused as stale at every try. */
    char vtext[24], ctext[24];
    snprintf(vtext, sizeof(vtext), "%" PRIu64, m->version);
    snprintf(ctext, sizeof(ctext), "%" PRIu64, m->clock);
    int bad =
        json_object_set_new(o, "municipality", json_integer(m->municipality)) ||
        json_object_set_new(o, "name", json_string(g ? g->name : "")) ||
        json_object_set_new(o, "period", json_string(p)) ||
        json_object_set_new(o, "calendar", json_string(m->bs ? "BS" : "AD")) ||
        json_object_set_new(o, "state", json_string(review_state_name(m->state))) ||
        json_object_set_new(o, "version", json_integer((json_int_t)m->version)) ||
        json_object_set_new(o, "version_text", json_string(vtext)) ||
        json_object_set_new(o, "closed", json_boolean(m->closed)) ||
        json_object_set_new(o, "closed_on", reviews__day(m->closed ? m->closed_day : 0, 0)) ||
        json_object_set_new(o, "closed_on_bs", reviews__day(m->closed ? m->closed_day : 0, 1)) ||
        json_object_set_new(o, "decision",
                            decided ? json_string(review_state_name(m->decision)) : json_null()) ||
        json_object_set_new(o, "decided_by", decided ? json_string(m->decided_by) : json_null()) ||
        json_object_set_new(o, "decided_at", reviews__iso_ms(decided ? m->decided_at : 0)) ||
        /* The decision's day in Nepal, in both calendars, as the pages show it. */
        json_object_set_new(o, "decided_on",
                            reviews__day(decided ? clock_day_nepal(m->decided_at) : 0, 0)) ||
        json_object_set_new(o, "decided_on_bs",
                            reviews__day(decided ? clock_day_nepal(m->decided_at) : 0, 1)) ||
        json_object_set_new(o, "seen_version",
                            decided ? json_integer((json_int_t)m->seen_version) : json_null()) ||
        json_object_set_new(o, "comment", decided ? json_string(m->comment) : json_null()) ||
        json_object_set_new(o, "clock", json_integer((json_int_t)m->clock)) ||
        json_object_set_new(o, "clock_text", json_string(ctext));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- GET /v1/reviews ------------------------------------------------------------------------- */

/* Persons, services and enterprises the hub holds of month ym (calendar bs) for mun. */
static int reviews__records(sqlite3 *db, sqlite3_stmt *st, uint32_t mun, int32_t ym, int64_t *n)
{
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_int(st, 2, ym);
    int step = sqlite3_step(st);
    *n = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (step != SQLITE_ROW) {
        log_error("reviews: counting records: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    return 0;
}

static int reviews__cell(sqlite3 *db, sqlite3_stmt *st, uint32_t mun, const char *period,
                         const char *ind, int64_t *n)
{
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ind, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    *n = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_error("reviews: reading a cell: %s", sqlite3_errmsg(db));
        return REINT_EDB;
    }
    return 0;
}

int reviews_report(sqlite3 *db, unsigned province, const char *period, json_t **out, char *err,
                   size_t errlen)
{
    int bs = 0, rc = 0;
    int32_t ym = 0;
    *out = NULL;
    if ((rc = review_parse_month(period, &bs, &ym)) == REINT_ERANGE) {
        snprintf(err, errlen, "%s is outside the BS calendar table (BS2000-01..BS2099-12)", period);
        return REINT_EINVAL;
    }
    if (rc != 0) {
        snprintf(err, errlen,
                 "period must be one month: a BS month (BS2083-04) for municipalities that "
                 "close BS months, or a Gregorian month (2026-07) for those that close AD ones");
        return REINT_EINVAL;
    }
    char col[8];
    snprintf(col, sizeof(col), "%s", bs ? "bs" : "ad");
    char sql[600];
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM rollup_person WHERE municipality=?1 AND %s=?2)"
             " + (SELECT count(*) FROM rollup_service WHERE municipality=?1 AND %s=?2)"
             " + (SELECT count(*) FROM rollup_enterprise WHERE municipality=?1 AND %s=?2)",
             col, col, col);
    sqlite3_stmt *recs = store_prepare(db, sql);
    sqlite3_stmt *cell = store_prepare(db, "SELECT numerator FROM rollup_cells WHERE"
                                           " municipality=?1 AND period=?2 AND indicator=?3"
                                           " AND grouping='' AND key=''");
    sqlite3_stmt *node = store_prepare(
        db, "SELECT n.calendar, (SELECT acked FROM review_nodes r WHERE r.municipality=?1)"
            " FROM nodes n WHERE n.municipality=?1");
    sqlite3_stmt *get = store_prepare(db, reviews__sql[Q_GET]);
    sqlite3_stmt *close = store_prepare(db, reviews__sql[Q_CLOSE]);
    json_t *rows = json_array(), *report = NULL;
    if (recs == NULL || cell == NULL || node == NULL || get == NULL || close == NULL) {
        rc = REINT_EDB;
        goto out;
    }
    if (rows == NULL) {
        rc = REINT_ENOMEM;
        goto out;
    }
    unsigned n_geo = 0;
    const geo_local_level *all = geo_all(&n_geo);
    for (unsigned i = 0; rc == 0 && i < n_geo; i++) {
        const geo_local_level *g = &all[i];
        if (g->province != province)
            continue;
        int enrolled = 0, calendar = 0;
        uint64_t acked = 0;
        sqlite3_bind_int64(node, 1, g->code);
        int step = sqlite3_step(node);
        if (step == SQLITE_ROW) {
            enrolled = 1;
            calendar = sqlite3_column_int(node, 0);
            acked = (uint64_t)sqlite3_column_int64(node, 1);
        }
        sqlite3_reset(node);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            rc = REINT_EDB;
            break;
        }
        /* A node that did not say its calendar closes BS months (rollup.h). */
        int own_bs = calendar != REINT__V1__CALENDAR__CALENDAR_AD;
        reviews_month m;
        int64_t records = 0, before = 0, pending = 0, unavailable = 0;
        if ((rc = reviews__read(db, get, close, g->code, bs, ym, &m)) != 0 ||
            (rc = reviews__records(db, recs, g->code, ym, &records)) != 0 ||
            (rc = reviews__records(db, recs, g->code, bscal_month_add(ym, -1), &before)) != 0 ||
            (rc = reviews__cell(db, cell, g->code, period, "referrals_pending", &pending)) != 0 ||
            (rc = reviews__cell(db, cell, g->code, period, "services_unavailable", &unavailable)) !=
                0)
            break;
        json_t *row = reviews_month_json(&m);
        if (row == NULL) {
            rc = REINT_ENOMEM;
            break;
        }
        /* A municipality that closes months in the other calendar is not reviewed for this
         * month: its months are (GET /v1/reviews with a period of its calendar). */
        if (own_bs != bs)
            json_object_set_new(row, "state", json_string("other_calendar"));
        int bad = json_object_set_new(row, "district", json_string(g->district_name)) ||
                  json_object_set_new(row, "enrolled", json_boolean(enrolled)) ||
                  json_object_set_new(row, "node_calendar",
                                      enrolled ? json_string(own_bs ? "BS" : "AD") : json_null()) ||
                  json_object_set_new(row, "delivered_to_node",
                                      json_boolean(m.clock && acked >= m.clock)) ||
                  json_object_set_new(row, "records", json_integer(records)) ||
                  json_object_set_new(row, "records_month_before", json_integer(before)) ||
                  json_object_set_new(row, "records_change", json_integer(records - before)) ||
                  json_object_set_new(row, "referrals_pending", json_integer(pending)) ||
                  json_object_set_new(row, "services_unavailable", json_integer(unavailable)) ||
                  json_array_append_new(rows, row);
        if (bad)
            rc = REINT_ENOMEM;
    }
    if (rc == 0) {
        report = json_pack("{s:s, s:I, s:o}", "period", period, "province", (json_int_t)province,
                           "rows", rows);
        rows = NULL;
        if (report == NULL)
            rc = REINT_ENOMEM;
    }
out:
    json_decref(rows);
    sqlite3_finalize(recs);
    sqlite3_finalize(cell);
    sqlite3_finalize(node);
    sqlite3_finalize(get);
    sqlite3_finalize(close);
    *out = report;
    return rc;
}
