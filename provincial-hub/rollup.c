/* The rollup engine's schedule (rollup.h): opening and closing it, refreshing the dirty
 * snapshots in groups and in time slices, and the as-of day. The engine's other parts are
 * listed in rollup_internal.h. */
#include "rollup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "rollup_internal.h"
#include "testhook.h"

const char *const rollup__engine_sql[S_N] = {
    [S_DIRTY_LIST] = "SELECT municipality, period FROM rollup_snapshots WHERE dirty=1",
    [S_DIRTY_COUNT] = "SELECT count(*) FROM rollup_snapshots WHERE dirty=1",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT rollup",
    [S_RELEASE] = "RELEASE rollup",
    [S_ROLLBACK_TO] = "ROLLBACK TO rollup",
};

typedef struct rollup__dirty {
    uint32_t municipality;
    char period[PERIOD_MAX];
    enum period_kind kind;
    int32_t first, last;   /* days */
    int bs;                /* a period of BS months */
    int32_t mfirst, mlast; /* its months, YYYYMM */
    int bad;               /* the period does not parse */
} rollup__dirty;

/* Opens a transaction of the engine's own, or a savepoint inside the caller's: either way the
 * work of one call commits whole or not at all (a refresh that fails half way must not leave
 * some snapshots stored and queued, even when the caller then commits). */
static int rollup__begin(rollup *r, int *own)
{
    *own = sqlite3_get_autocommit(r->db) != 0;
    return rollup__exec(r, r->q[*own ? S_BEGIN : S_SAVEPOINT]);
}

/* Commits (or releases) when rc is 0, rolls back otherwise; returns rc, or REINT_EDB when the
 * commit itself failed. */
static int rollup__end(rollup *r, int own, int rc)
{
    if (rc == 0 && rollup__exec(r, r->q[own ? S_COMMIT : S_RELEASE]) == 0)
        return 0;
    if (!own) {
        rollup__exec(r, r->q[S_ROLLBACK_TO]);
        rollup__exec(r, r->q[S_RELEASE]);
    } else if (!sqlite3_get_autocommit(r->db)) {
        rollup__exec(r, r->q[S_ROLLBACK]);
    }
    return rc ? rc : REINT_EDB;
}

/* --- refresh ------------------------------------------------------------------------------- */

static int rollup__dirty_cmp(const void *a, const void *b)
{
    const rollup__dirty *x = a, *y = b;
    if (x->municipality != y->municipality)
        return x->municipality < y->municipality ? -1 : 1;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return strcmp(x->period, y->period);
}

/* Computes and stores one group of periods. */
static int rollup__refresh_group(rollup *r, rollup__group *g, rollup_stats *stats)
{
    size_t n, a = 0;
    int rc = rollup__compute(r, g, &n);
    for (int pj = 0; rc == 0 && pj < g->n; pj++) {
        size_t b = a;
        while (b < n && r->out[b].pj == pj)
            b++;
        rc = rollup__store_snapshot(r, g->m, g->period[pj], r->out + a, b - a, stats);
        a = b;
    }
    return rc;
}

static int rollup__refresh_in_txn(rollup *r, rollup_stats *stats)
{
    rollup__dirty *list = NULL;
    size_t n = 0, cap = 0;
    rollup__group g;
    int rc = rollup__sync_enrolment(r), s = SQLITE_DONE;
    memset(&g, 0, sizeof(g));
    sqlite3_stmt *st = r->q[S_DIRTY_LIST];
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = rollup__grow((void **)&list, &cap, n + 1, sizeof(*list))) != 0)
            break;
        rollup__dirty *d = &list[n];
        d->municipality = (uint32_t)sqlite3_column_int64(st, 0);
        snprintf(d->period, PERIOD_MAX, "%s", (const char *)sqlite3_column_text(st, 1));
        d->bad = period_parse(d->period, &d->kind, &d->first, &d->last) != 0 ||
                 period_months(d->period, &d->kind, &d->bs, &d->mfirst, &d->mlast) != 0;
        n++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_reset(st);
    /* A row whose period does not parse is dropped, so that it stops being dirty. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!list[i].bad)
            continue;
        log_error("rollup: snapshot of municipality %u has a bad period \"%s\"; dropped",
                  list[i].municipality, list[i].period);
        rc = rollup__drop_snapshot(r, list[i].municipality, list[i].period);
    }
    /* Periods of one municipality are grouped while they overlap or nearly touch, so that
     * each record row is read once for all of them. */
    if (n > 1)
        qsort(list, n, sizeof(*list), rollup__dirty_cmp);
    /* Round robin: a slice starts with the first municipality past the one where the last
     * slice stopped, so that under a steady load no municipality waits behind the lower
     * codes' new dirt. */
    size_t start = 0;
    while (start < n && list[start].municipality <= r->resume_after)
        start++;
    if (start == n)
        start = 0;
    r->resume_after = 0;
    uint64_t before = r->clock.last;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const rollup__dirty *d = &list[(start + k) % n];
        if (d->bad)
            continue;
        if (g.n > 0 &&
            (g.n == ROLLUP_GROUP_MAX || d->municipality != g.m || d->first > g.hi + 31)) {
            rc = rollup__refresh_group(r, &g, stats);
            g.n = 0;
            if (rc)
                break;
            /* Past the deadline the rest stays dirty for the next call. */
            if (r->deadline_ms && clock_mono_ms() >= r->deadline_ms) {
                r->more = 1;
                r->resume_after = g.m;
                break;
            }
        }
        if (g.n == 0) {
            g.m = d->municipality;
            g.lo = d->first;
            g.hi = d->last;
        }
        g.period[g.n] = d->period;
        g.kind[g.n] = d->kind;
        g.first[g.n] = d->first;
        g.last[g.n] = d->last;
        g.bs[g.n] = d->bs;
        g.mfirst[g.n] = d->mfirst;
        g.mlast[g.n] = d->mlast;
        if (d->last > g.hi)
            g.hi = d->last;
        g.n++;
    }
    if (rc == 0 && g.n > 0)
        rc = rollup__refresh_group(r, &g, stats);
    if (rc == 0)
        rc = rollup__flush_queued(r);
    r->n_queued = 0;
    if (rc == 0 && r->clock.last != before)
        rc = rollup__clock_save(r);
    free(g.masks);
    free(list);
    return rc;
}

int rollup_refresh_slice(rollup *r, uint64_t deadline_ms, rollup_stats *stats)
{
    r->deadline_ms = deadline_ms;
    int rc = rollup_refresh(r, stats);
    r->deadline_ms = 0;
    return rc;
}

int rollup_refresh(rollup *r, rollup_stats *stats)
{
    rollup_stats local;
    r->more = 0;
    int own, rc = rollup__begin(r, &own);
    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (rc == 0)
        rc = rollup__refresh_in_txn(r, stats);
    rc = rollup__end(r, own, rc);
    /* Marks are cleared in the database now (or rolled back): forget the cached ones. */
    rollup__forget_marks(r);
    if (rc != 0) {
        /* Rolled back: nothing was stored or queued, and every snapshot stays dirty. */
        memset(stats, 0, sizeof(*stats));
        r->more = 0;
    }
    return rc;
}

int rollup_full(rollup *r, rollup_stats *stats)
{
    rollup_stats local;
    int own, rc = rollup__begin(r, &own);
    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (rc == 0)
        rc = rollup__rebuild(r);
    if (rc == 0)
        rc = rollup__refresh_in_txn(r, stats);
    rc = rollup__end(r, own, rc);
    rollup__forget_marks(r);
    if (rc != 0)
        memset(stats, 0, sizeof(*stats));
    return rc;
}

int64_t rollup_dirty_count(rollup *r)
{
    sqlite3_stmt *st = r->q[S_DIRTY_COUNT];
    int64_t n = -1;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        rollup__step_fail(r, st, s);
    sqlite3_reset(st);
    return n;
}

/* --- the as-of day and the daily schedule ---------------------------------------------------- */

int rollup_set_today(rollup *r, int32_t today)
{
    if (today < ROLLUP_MIN_TODAY || today > ROLLUP_MAX_TODAY)
        return REINT_EINVAL;
    int32_t t0 = r->today;
    if (today == t0)
        return 0;
    int own, rc = rollup__begin(r, &own);
    int32_t lo = t0 < today ? t0 : today, hi = t0 < today ? today : t0;
    if (rc == 0)
        rc = rollup__mark_today_move(r, lo, hi);
    if (rc == 0)
        rc = rollup__meta_set(r, "rollup_today", today);
    rc = rollup__end(r, own, rc);
    if (rc == 0)
        r->today = today;
    else
        rollup__forget_marks(r);
    return rc;
}

int32_t rollup_today(const rollup *r)
{
    return r->today;
}

int rollup_daily(rollup *r, int32_t today, rollup_stats *stats)
{
    uint64_t now = clock_mono_ms();
    if (today == r->today && now < r->next_refresh_ms) {
        if (stats)
            memset(stats, 0, sizeof(*stats));
        return 0;
    }
    int rc = rollup_set_today(r, today);
    /* A bounded slice of recomputing per call, so that sessions keep flowing on the loop
     * while a bulk resend's periods are refreshed; when dirt remains, the next slice waits
     * as long again (refreshing takes at most half of the loop). A refresh that finishes
     * sets no wait: the next change is refreshed at the caller's next tick. (A wait of ten
     * times the last refresh, before, left the first change after a bulk load waiting up to
     * two minutes.) */
    /* The test fault rollup_slice_spent: this slice stops after its first municipality as
     * if it had taken ten seconds. */
    int spent = testhook_fire("rollup_slice_spent");
    if (rc == 0)
        rc = rollup_refresh_slice(r, spent ? now : now + ROLLUP_REFRESH_BUDGET, stats);
    uint64_t end = clock_mono_ms();
    uint64_t took = spent ? 10000 : end - now;
    /* Dirt left behind, by the deadline or by a failure, waits as long again: a store that
     * keeps failing is retried at half the loop's time, not at every tick. While eager, dirt
     * left by the deadline does not wait. */
    r->paced = r->more && rc == 0;
    r->next_refresh_ms = (r->paced && !r->eager) || rc != 0 ? end + took : 0;
    return rc;
}

void rollup_set_eager(rollup *r, int eager)
{
    if (eager && r->paced)
        r->next_refresh_ms = 0; /* the pause the last slice set no longer applies */
    r->eager = eager;
}

int rollup_more(const rollup *r)
{
    return r->more;
}

/* --- open and close ----------------------------------------------------------------------- */

int rollup_open(rollup **out, sqlite3 *db, char *err, size_t errlen)
{
    static const char *const *const sql[] = {rollup__schema_sql, rollup__shadow_sql,
                                             rollup__indicator_sql, rollup__store_sql,
                                             rollup__engine_sql};
    rollup *r = calloc(1, sizeof(*r));
    int64_t v;
    int rc = REINT_EDB;
    if (r == NULL || (r->pair_cache = calloc(ROLLUP_PAIR_CACHE, sizeof(uint64_t))) == NULL) {
        snprintf(err, errlen, "rollup: out of memory");
        free(r);
        return REINT_ENOMEM;
    }
    r->db = db;
    sbuf_init(&r->blob, ROLLUP_SNAPSHOT_MAX);
    r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    r->sha_ctx = EVP_MD_CTX_new();
    if (rollup__schema_open(db, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
        if (rollup__prepare(r, sql[i], err, errlen) != 0)
            goto fail;
    for (int i = 0; i < S_N; i++) {
        if (r->q[i] == NULL) {
            snprintf(err, errlen, "rollup: statement %d has no SQL", i);
            goto fail;
        }
    }
    /* Enrolments: a store of format 1 has no calendar (every node counts as BS), and one
     * without a nodes table (unit tests of other modules) has no enrolment at all. */
    if (sqlite3_prepare_v3(db, "SELECT municipality, first_seen_ms, calendar FROM nodes", -1,
                           SQLITE_PREPARE_PERSISTENT, &r->nodes, NULL) != SQLITE_OK &&
        sqlite3_prepare_v3(db, "SELECT municipality, first_seen_ms, 0 FROM nodes", -1,
                           SQLITE_PREPARE_PERSISTENT, &r->nodes, NULL) != SQLITE_OK)
        r->nodes = NULL;
    rollup__load_catalogue(r);
    r->today = clock_today_nepal();
    if ((rc = rollup__meta_get(r, "rollup_today", &v)) == 0 && v >= ROLLUP_MIN_TODAY &&
        v <= ROLLUP_MAX_TODAY)
        r->today = (int32_t)v;
    if ((rc != 0 && rc != REINT_ENOTFOUND) || (rc = rollup__clock_load(r)) != 0) {
        snprintf(err, errlen, "rollup: cannot read its settings: %s", sqlite3_errmsg(db));
        goto fail;
    }
    sqlite3_rollback_hook(db, rollup__on_rollback, r);
    rc = rollup__meta_get(r, "rollup_built", &v);
    if (rc == REINT_ENOTFOUND)
        rc = rollup_full(r, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "rollup: first build failed: %s", sqlite3_errmsg(db));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    rollup_close(r);
    return rc ? rc : REINT_EDB;
}

void rollup_close(rollup *r)
{
    if (r == NULL)
        return;
    sqlite3_rollback_hook(r->db, NULL, NULL);
    for (int i = 0; i < S_N; i++)
        sqlite3_finalize(r->q[i]);
    sqlite3_finalize(r->nodes);
    EVP_MD_CTX_free(r->sha_ctx);
    EVP_MD_free(r->sha256);
    free(r->pair_cache);
    free(r->acc);
    free(r->acc_slots);
    free(r->reach);
    free(r->reach_slots);
    free(r->out);
    free(r->queued);
    free(r->closes);
    free(r->touched);
    sbuf_free(&r->blob);
    free(r);
}
