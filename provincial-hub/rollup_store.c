/* The rollup engine's stored snapshots (rollup_internal.h): one row per (municipality,
 * period) in rollup_snapshots with its revision from the hub's hybrid logical clock, its cells
 * as one blob in rollup_blobs (the packed cells field of a RollupSnapshot, so that the uplink
 * sends them without decoding), and the compacted rollup_outbox the uplink reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "rollup_internal.h"

const char *const rollup__store_sql[S_N] = {
    [S_SNAP_GET] = "SELECT revision, digest, ncells FROM rollup_snapshots"
                   " WHERE municipality=?1 AND period=?2",
    [S_SNAP_DEL] = "DELETE FROM rollup_snapshots WHERE municipality=?1 AND period=?2",
    [S_SNAP_CLEAN] = "UPDATE rollup_snapshots SET dirty=0 WHERE municipality=?1 AND period=?2",
    [S_SNAP_SET] = "UPDATE rollup_snapshots SET revision=?3, digest=?4, ncells=?5, dirty=0"
                   " WHERE municipality=?1 AND period=?2",
    [S_BLOB_DEL] = "DELETE FROM rollup_blobs WHERE municipality=?1 AND period=?2",
    [S_BLOB_PUT] = "INSERT INTO rollup_blobs(municipality, period, cells) VALUES(?1,?2,?3)"
                   " ON CONFLICT(municipality, period) DO UPDATE SET cells=excluded.cells",
    [S_BLOB_GET] = "SELECT cells FROM rollup_blobs WHERE municipality=?1 AND period=?2",
    [S_OUT_DEL] = "DELETE FROM rollup_outbox WHERE municipality=?1 AND period=?2",
    [S_OUT_PUT] = "INSERT INTO rollup_outbox(municipality, period, revision) VALUES(?1,?2,?3)",
    [S_MAXREV] = "SELECT max(revision) FROM rollup_snapshots",
};

/* --- the revision clock -------------------------------------------------------------------- */

int rollup__clock_load(rollup *r)
{
    int64_t v;
    int rc = rollup__meta_get(r, "rollup_hlc", &v);
    if (rc == 0)
        hlc_observe(&r->clock, (uint64_t)v);
    else if (rc != REINT_ENOTFOUND)
        return rc;
    /* The highest stored revision too: a store whose clock setting was lost or rewound still
     * issues revisions above the ones it sent. */
    sqlite3_stmt *st = r->q[S_MAXREV];
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        hlc_observe(&r->clock, (uint64_t)sqlite3_column_int64(st, 0));
    sqlite3_reset(st);
    return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : rollup__fail(r, "latest revision");
}

int rollup__clock_save(rollup *r)
{
    return rollup__meta_set(r, "rollup_hlc", (int64_t)r->clock.last);
}

/* --- protobuf wire encoding ------------------------------------------------------------------ */

/* Enough for RollupSnapshot and RollupCell (proto/reintegration.proto): varints and
 * length-delimited fields; proto3 scalars and strings equal to their default are left out,
 * as protobuf-c's packer does. */
static void rollup__pb_varint(sbuf *b, uint64_t v)
{
    char t[10];
    size_t n = 0;
    do {
        t[n] = (char)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] = (char)(t[n] | 0x80);
        n++;
    } while (v);
    sbuf_add(b, t, n);
}

static void rollup__pb_bytes(sbuf *b, unsigned field, const char *p, size_t n)
{
    rollup__pb_varint(b, (uint64_t)field << 3 | 2);
    rollup__pb_varint(b, n);
    sbuf_add(b, p, n);
}

static void rollup__pb_uint(sbuf *b, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    rollup__pb_varint(b, (uint64_t)field << 3);
    rollup__pb_varint(b, v);
}

/* Appends one cell as field 4 (cells) of a RollupSnapshot: the stored form of a snapshot is
 * the concatenation of its cells, so that the uplink sends it after a three-field header
 * without decoding it (rollup_snapshot_packed). */
static void rollup__pack_cell(sbuf *b, const rollup__out *o)
{
    char body[3 * 80 + ROLLUP_KEY_MAX + 96];
    sbuf c = {body, 0, sizeof(body), sizeof(body), 0};
    size_t li = strlen(o->indicator), lg = strlen(o->grouping);
    if (li)
        rollup__pb_bytes(&c, 1, o->indicator, li);
    if (lg)
        rollup__pb_bytes(&c, 2, o->grouping, lg);
    /* key: the grouping's values joined by ','; one repeated string each ("" for the total:
     * none) */
    if (o->key[0] != '\0') {
        for (const char *k = o->key;;) {
            const char *comma = strchr(k, ',');
            size_t len = comma ? (size_t)(comma - k) : strlen(k);
            rollup__pb_bytes(&c, 3, k, len);
            if (comma == NULL)
                break;
            k = comma + 1;
        }
    }
    rollup__pb_uint(&c, 4, (uint64_t)o->num);
    rollup__pb_uint(&c, 5, (uint64_t)o->den);
    rollup__pb_uint(&c, 6, o->ckey);
    rollup__pb_uint(&c, 7, (uint64_t)o->contributors);
    rollup__pb_uint(&c, 8, (uint64_t)o->top1);
    rollup__pb_uint(&c, 9, (uint64_t)o->top2);
    rollup__pb_uint(&c, 10, o->nkey);
    if (c.failed) {
        b->failed = 1; /* cannot happen: the body's size is bounded above */
        return;
    }
    rollup__pb_bytes(b, 4, c.p, c.len);
}

/* --- storing snapshots ---------------------------------------------------------------------- */

int rollup__store_snapshot(rollup *r, uint32_t m, const char *period, const rollup__out *cells,
                           size_t n, rollup_stats *stats)
{
    uint64_t digest = rollup__digest(cells, n);
    sqlite3_stmt *st = r->q[S_SNAP_GET];
    uint64_t revision = 0, old_digest = 0;
    int64_t old_n = 0;
    int rc;
    rollup__bind_mp(st, m, period);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        revision = (uint64_t)sqlite3_column_int64(st, 0);
        old_digest = (uint64_t)sqlite3_column_int64(st, 1);
        old_n = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return rollup__step_fail(r, st, s);
    stats->recomputed++;
    if (revision == 0 && n == 0) {
        /* Never sent and still empty: nothing exists upstream to replace. */
        st = r->q[S_SNAP_DEL];
        rollup__bind_mp(st, m, period);
        return rollup__exec(r, st);
    }
    if (revision != 0 && old_digest == digest && (size_t)old_n == n) {
        st = r->q[S_SNAP_CLEAN];
        rollup__bind_mp(st, m, period);
        return rollup__exec(r, st);
    }
    /* The cells are stored as one blob: the packed cells field of a RollupSnapshot. */
    sbuf_reset(&r->blob);
    for (size_t i = 0; i < n; i++)
        rollup__pack_cell(&r->blob, &cells[i]);
    if (r->blob.failed)
        return REINT_ENOMEM;
    st = r->q[n ? S_BLOB_PUT : S_BLOB_DEL];
    rollup__bind_mp(st, m, period);
    if (n)
        sqlite3_bind_blob(st, 3, r->blob.p, (int)r->blob.len, SQLITE_STATIC);
    if ((rc = rollup__exec(r, st)) != 0)
        return rc;
    revision = hlc_next(&r->clock, clock_now_ms());
    st = r->q[S_SNAP_SET];
    rollup__bind_mp(st, m, period);
    sqlite3_bind_int64(st, 3, (int64_t)revision);
    sqlite3_bind_int64(st, 4, (int64_t)digest);
    sqlite3_bind_int64(st, 5, (int64_t)n);
    if ((rc = rollup__exec(r, st)) != 0)
        return rc;
    if ((rc = rollup__grow((void **)&r->queued, &r->cap_queued, r->n_queued + 1,
                           sizeof(*r->queued))) != 0)
        return rc;
    rollup__queued *q = &r->queued[r->n_queued++];
    q->municipality = m;
    snprintf(q->period, sizeof(q->period), "%s", period);
    q->revision = revision;
    stats->changed++;
    stats->cells += n;
    return 0;
}

int rollup__drop_snapshot(rollup *r, uint32_t m, const char *period)
{
    int rc = 0;
    static const int del[2] = {S_SNAP_DEL, S_BLOB_DEL};
    for (int i = 0; rc == 0 && i < 2; i++) {
        rollup__bind_mp(r->q[del[i]], m, period);
        rc = rollup__exec(r, r->q[del[i]]);
    }
    return rc;
}

static int rollup__queued_cmp(const void *a, const void *b)
{
    const rollup__queued *x = a, *y = b;
    int c = strcmp(x->period, y->period);
    if (c != 0)
        return c;
    return x->municipality < y->municipality ? -1 : x->municipality > y->municipality;
}

/* Entries are ordered by period and then municipality rather than in the order they were
 * computed (each municipality's periods together): the uplink sends consecutive entries in
 * one batch, and the federal tier moves its province aggregates once per (period, cell) of a
 * batch, so a batch holding the same period of many municipalities costs it one update per
 * cell instead of one per municipality and cell. */
int rollup__flush_queued(rollup *r)
{
    int rc = 0;
    if (r->n_queued > 1)
        qsort(r->queued, r->n_queued, sizeof(*r->queued), rollup__queued_cmp);
    for (size_t i = 0; rc == 0 && i < r->n_queued; i++) {
        const rollup__queued *q = &r->queued[i];
        sqlite3_stmt *st = r->q[S_OUT_DEL];
        rollup__bind_mp(st, q->municipality, q->period);
        if ((rc = rollup__exec(r, st)) != 0)
            break;
        st = r->q[S_OUT_PUT];
        rollup__bind_mp(st, q->municipality, q->period);
        sqlite3_bind_int64(st, 3, (int64_t)q->revision);
        rc = rollup__exec(r, st);
    }
    r->n_queued = 0;
    return rc;
}

/* --- snapshots for the uplink ---------------------------------------------------------------- */

int rollup_snapshot_packed(rollup *r, uint32_t municipality, const char *period, uint64_t *revision,
                           sbuf *out)
{
    sqlite3_stmt *st = r->q[S_SNAP_GET];
    int64_t ncells = 0;
    int rc = 0;
    *revision = 0;
    rollup__bind_mp(st, municipality, period);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *revision = (uint64_t)sqlite3_column_int64(st, 0);
        ncells = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return rollup__step_fail(r, st, s);
    if (*revision == 0)
        return REINT_ENOTFOUND;
    /* Fields 1-3, then the stored cells (field 4): the bytes protobuf-c packs for the whole
     * message, fields in number order. */
    sbuf_reset(out);
    rollup__pb_uint(out, 1, municipality);
    if (period[0] != '\0')
        rollup__pb_bytes(out, 2, period, strlen(period));
    rollup__pb_uint(out, 3, *revision);
    size_t header = out->len;
    st = r->q[S_BLOB_GET];
    rollup__bind_mp(st, municipality, period);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        sbuf_add(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else if (s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_reset(st);
    if (rc == 0 && out->failed)
        rc = REINT_ENOMEM;
    /* The blob must hold exactly the header's number of cells, each a whole field 4. */
    int64_t k = 0;
    for (size_t i = header; rc == 0 && i < out->len; k++) {
        uint64_t len = 0;
        unsigned shift = 0;
        if ((uint8_t)out->p[i++] != (4 << 3 | 2)) {
            rc = REINT_EDB;
            break;
        }
        while (i < out->len && shift < 64) {
            uint8_t c = (uint8_t)out->p[i++];
            len |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
            if (!(c & 0x80))
                break;
        }
        if (len > out->len - i)
            rc = REINT_EDB;
        i += (size_t)len;
    }
    if (rc == 0 && k != ncells)
        rc = REINT_EDB; /* the cells disagree with their header */
    return rc;
}

int rollup_snapshot(rollup *r, uint32_t municipality, const char *period,
                    Reint__V1__RollupSnapshot **out)
{
    sbuf b;
    uint64_t revision;
    sbuf_init(&b, ROLLUP_SNAPSHOT_MAX);
    *out = NULL;
    int rc = rollup_snapshot_packed(r, municipality, period, &revision, &b);
    if (rc == 0 && (*out = reint__v1__rollup_snapshot__unpack(NULL, b.len, (uint8_t *)b.p)) == NULL)
        rc = REINT_ENOMEM;
    sbuf_free(&b);
    return rc;
}
