#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "rid.h"
#include "store.h"

static const char *outbox__schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ids(kind INTEGER NOT NULL, local_id TEXT NOT NULL,"
    " id BLOB NOT NULL UNIQUE, PRIMARY KEY(kind, local_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
    " version INTEGER NOT NULL, live INTEGER NOT NULL, hash INTEGER NOT NULL,"
    " record BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS dead_letters(seq INTEGER NOT NULL, id BLOB NOT NULL,"
    " field TEXT NOT NULL, reason TEXT NOT NULL, at_ms INTEGER NOT NULL,"
    " PRIMARY KEY(seq, id));";

enum {
    ST_ID_GET,
    ST_ID_PUT,
    ST_ENTRY_GET,
    ST_ENTRY_PUT,
    ST_READ,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_N
};

static const char *outbox__sql[ST_N] = {
    [ST_ID_GET] = "SELECT id FROM ids WHERE kind=?1 AND local_id=?2",
    /* A new pair is inserted in one step; a pair that exists (the conflict on the key, and
     * only that one: an id collision stays an error) is left alone and read back. */
    [ST_ID_PUT] = "INSERT INTO ids(kind, local_id, id) VALUES(?1,?2,?3)"
                  " ON CONFLICT(kind, local_id) DO NOTHING",
    [ST_ENTRY_GET] = "SELECT hash, live FROM outbox WHERE id=?1",
    /* Compaction: a record's new entry takes the place of its old one. A sequence number
     * already in use is an error, never a silent replacement. */
    [ST_ENTRY_PUT] = ("INSERT INTO outbox(seq, id, version, live, hash, record)"
                      " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(id) DO UPDATE SET"
                      " seq=excluded.seq, version=excluded.version, live=excluded.live,"
                      " hash=excluded.hash, record=excluded.record"),
    [ST_READ] = "SELECT seq, version, record FROM outbox WHERE seq>?1 ORDER BY seq LIMIT ?2",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

struct outbox {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    uint32_t municipality;
    uint8_t incarnation[16];
    uint64_t next_seq;
    hlc clock;
    size_t buf_cap;
    uint8_t *buf;
    /* The id outbox_id made last, until an entry is queued for it: such an id has no entry
     * yet, so outbox_put need not look for one (a new row's commonest path). */
    uint8_t fresh[16];
    int has_fresh;
};

static int outbox__step_done(outbox *ob, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        log_error("outbox: %s", sqlite3_errmsg(ob->db));
        return STORE_EDB;
    }
    return 0;
}

int outbox_create(const char *path, uint32_t municipality, char *err, size_t errlen)
{
    struct stat sb;
    sqlite3 *db = NULL;
    uint8_t inc[16];
    if (stat(path, &sb) == 0) {
        snprintf(err, errlen, "%s already exists; a node is initialised once", path);
        return OUTBOX_EEXIST;
    }
    if (rid_random(inc, sizeof(inc)) != 0) {
        snprintf(err, errlen, "no randomness for the store incarnation");
        return STORE_EDB;
    }
    if (store_open(path, 1, outbox__schema, &db, err, errlen) != 0)
        return STORE_EDB;
    int rc = 0;
    if (store_exec(db, "BEGIN") || store_meta_set_blob(db, "incarnation", inc, sizeof(inc)) ||
        store_meta_set_int(db, "municipality", municipality) ||
        store_meta_set_int(db, "next_seq", 1) || store_meta_set_int(db, "hlc", 0) ||
        store_meta_set_int(db, "acked_seq", 0) || store_exec(db, "COMMIT")) {
        snprintf(err, errlen, "%s: cannot write the store metadata", path);
        rc = STORE_EDB;
    }
    store_close(db);
    return rc;
}

int outbox_open(const char *path, outbox **out, char *err, size_t errlen)
{
    outbox *ob = calloc(1, sizeof(*ob));
    int64_t v = 0;
    if (ob == NULL)
        return STORE_EDB;
    if (store_open(path, 0, outbox__schema, &ob->db, err, errlen) != 0)
        goto fail;
    if (store_meta_get_blob(ob->db, "incarnation", ob->incarnation, 16) != 0 ||
        store_meta_get_int(ob->db, "municipality", &v) != 0) {
        snprintf(err, errlen, "%s: not a municipal-node store (run `municipal-node init`)", path);
        goto fail;
    }
    ob->municipality = (uint32_t)v;
    for (int i = 0; i < ST_N; i++) {
        ob->st[i] = store_prepare(ob->db, outbox__sql[i]);
        if (ob->st[i] == NULL) {
            snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(ob->db));
            goto fail;
        }
    }
    /* The counters in meta are written at each commit; the outbox itself is the authority
     * if they ever lag (e.g. a store written by an older build). */
    int64_t next = 1, clock = 0;
    store_meta_get_int(ob->db, "next_seq", &next);
    store_meta_get_int(ob->db, "hlc", &clock);
    sqlite3_stmt *st = store_prepare(ob->db, "SELECT max(seq), max(version) FROM outbox");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        int64_t ms = sqlite3_column_int64(st, 0), mv = sqlite3_column_int64(st, 1);
        if (ms + 1 > next)
            next = ms + 1;
        if (mv > clock)
            clock = mv;
    }
    sqlite3_finalize(st);
    ob->next_seq = (uint64_t)next;
    ob->clock.last = (uint64_t)clock;
    *out = ob;
    return 0;
fail:
    outbox_close(ob);
    return STORE_EDB;
}

void outbox_close(outbox *ob)
{
    if (ob == NULL)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(ob->st[i]);
    store_close(ob->db);
    free(ob->buf);
    free(ob);
}

sqlite3 *outbox_db(outbox *ob)
{
    return ob->db;
}

uint32_t outbox_municipality(const outbox *ob)
{
    return ob->municipality;
}

const uint8_t *outbox_incarnation(const outbox *ob)
{
    return ob->incarnation;
}

uint64_t outbox_last_seq(const outbox *ob)
{
    return ob->next_seq - 1;
}

void outbox_observe(outbox *ob, uint64_t version)
{
    hlc_observe(&ob->clock, version);
}

int outbox_begin(outbox *ob)
{
    int rc = outbox__step_done(ob, ob->st[ST_BEGIN]);
    if (rc != 0)
        return rc;
    /* Other processes (an import while serve runs) may have written since this one last
     * did: under the write lock, take the counters from the store. */
    int64_t next = 1, clock = 0;
    store_meta_get_int(ob->db, "next_seq", &next);
    store_meta_get_int(ob->db, "hlc", &clock);
    if ((uint64_t)next > ob->next_seq)
        ob->next_seq = (uint64_t)next;
    hlc_observe(&ob->clock, (uint64_t)clock);
    return 0;
}

int outbox_commit(outbox *ob)
{
    if (store_meta_set_int(ob->db, "next_seq", (int64_t)ob->next_seq) != 0 ||
        store_meta_set_int(ob->db, "hlc", (int64_t)ob->clock.last) != 0) {
        outbox_rollback(ob);
        return STORE_EDB;
    }
    return outbox__step_done(ob, ob->st[ST_COMMIT]);
}

void outbox_rollback(outbox *ob)
{
    ob->has_fresh = 0;
    if (!sqlite3_get_autocommit(ob->db))
        outbox__step_done(ob, ob->st[ST_ROLLBACK]);
    /* The in-memory counters may have moved; reload them from what is durable. */
    int64_t next = 1;
    if (store_meta_get_int(ob->db, "next_seq", &next) == 0)
        ob->next_seq = (uint64_t)next;
}

int outbox_id(outbox *ob, int kind, const char *local_id, int create, uint8_t id[16], int *created)
{
    sqlite3_stmt *st;
    int rc;
    if (created)
        *created = 0;
    if (create) {
        /* Most calls that may create come from imports of new rows: try the insert first,
         * which costs one statement for a new pair and an extra probe for a known one. */
        uint8_t fresh[16];
        if (rid_new(fresh, hlc_wall_ms()) != 0)
            return STORE_EDB;
        st = ob->st[ST_ID_PUT];
        sqlite3_bind_int(st, 1, kind);
        sqlite3_bind_text(st, 2, local_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, fresh, 16, SQLITE_STATIC);
        if ((rc = outbox__step_done(ob, st)) != 0)
            return rc;
        if (sqlite3_changes(ob->db) == 1) {
            memcpy(id, fresh, 16);
            memcpy(ob->fresh, fresh, 16);
            ob->has_fresh = 1;
            if (created)
                *created = 1;
            return 0;
        }
    }
    st = ob->st[ST_ID_GET];
    rc = OUTBOX_ENOTFOUND;
    sqlite3_bind_int(st, 1, kind);
    sqlite3_bind_text(st, 2, local_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
        memcpy(id, sqlite3_column_blob(st, 0), 16);
        rc = 0;
    }
    sqlite3_reset(st);
    if (rc != 0 && create) {
        log_error("outbox: (%d, %s) is neither insertable nor found", kind, local_id);
        return STORE_EDB;
    }
    return rc;
}

/* Returns 1 when id has an entry (hash and live filled in), 0 when not. */
static int outbox__entry(outbox *ob, const uint8_t id[16], uint64_t *hash, int *live)
{
    sqlite3_stmt *st = ob->st[ST_ENTRY_GET];
    int found = 0;
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *hash = (uint64_t)sqlite3_column_int64(st, 0);
        *live = sqlite3_column_int(st, 1);
        found = 1;
    }
    sqlite3_reset(st);
    return found;
}

int outbox_is_live(outbox *ob, const uint8_t id[16])
{
    uint64_t h;
    int live = 0;
    return outbox__entry(ob, id, &h, &live) && live;
}

static int outbox__queue(outbox *ob, Reint__V1__Record *r, uint64_t hash, int live)
{
    r->municipality = ob->municipality;
    r->version = hlc_next(&ob->clock, hlc_wall_ms());
    size_t n = reint__v1__record__get_packed_size(r);
    if (n > ob->buf_cap) {
        uint8_t *nb = realloc(ob->buf, n);
        if (nb == NULL)
            return STORE_EDB;
        ob->buf = nb;
        ob->buf_cap = n;
    }
    reint__v1__record__pack(r, ob->buf);
    sqlite3_stmt *st = ob->st[ST_ENTRY_PUT];
    if (ob->has_fresh && memcmp(ob->fresh, r->id.data, 16) == 0)
        ob->has_fresh = 0;
    sqlite3_bind_int64(st, 1, (int64_t)ob->next_seq);
    sqlite3_bind_blob(st, 2, r->id.data, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)r->version);
    sqlite3_bind_int(st, 4, live);
    sqlite3_bind_int64(st, 5, (int64_t)hash);
    sqlite3_bind_blob(st, 6, ob->buf, (int)n, SQLITE_STATIC);
    int rc = outbox__step_done(ob, st);
    if (rc == 0)
        ob->next_seq++;
    return rc;
}

int outbox_put(outbox *ob, Reint__V1__Record *r, uint64_t hash, int *changed)
{
    uint64_t old = 0;
    int live = 0;
    *changed = 0;
    if (r->id.len != 16)
        return STORE_EDB;
    int fresh = ob->has_fresh && memcmp(ob->fresh, r->id.data, 16) == 0;
    if (!fresh && outbox__entry(ob, r->id.data, &old, &live) && live && old == hash)
        return 0;
    int rc = outbox__queue(ob, r, hash, 1);
    if (rc == 0)
        *changed = 1;
    return rc;
}

int outbox_delete(outbox *ob, const uint8_t id[16], int kind)
{
    uint64_t old = 0;
    int live = 0;
    if (!outbox__entry(ob, id, &old, &live) || !live)
        return OUTBOX_ENOTFOUND;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    Reint__V1__Tombstone t = REINT__V1__TOMBSTONE__INIT;
    t.kind = (Reint__V1__RecordKind)kind;
    r.id.data = (uint8_t *)id;
    r.id.len = 16;
    r.body_case = REINT__V1__RECORD__BODY_TOMBSTONE;
    r.tombstone = &t;
    return outbox__queue(ob, &r, 0, 0);
}

int outbox_read(outbox *ob, uint64_t after_seq, size_t max, outbox_entry_cb cb, void *ud)
{
    sqlite3_stmt *st = ob->st[ST_READ];
    int n = 0, rc;
    sqlite3_bind_int64(st, 1, (int64_t)after_seq);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *rec = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        if (cb(ud, (uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
               rec, len) != 0)
            break;
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error("outbox read: %s", sqlite3_errmsg(ob->db));
        return STORE_EDB;
    }
    return n;
}

int outbox_resume_point(outbox *ob, uint64_t hub_seq, uint64_t hub_version, uint64_t *after)
{
    int64_t mine = 0, next = 1;
    store_meta_get_int(ob->db, "acked_seq", &mine);
    /* Never again issue a sequence number the hub has already counted: a store restored from
     * an older copy would otherwise number new entries below the hub's position, where a
     * session in progress would skip them. */
    store_meta_get_int(ob->db, "next_seq", &next);
    if (hub_seq >= (uint64_t)next && hub_seq >= ob->next_seq) {
        ob->next_seq = hub_seq + 1;
        if (store_meta_set_int(ob->db, "next_seq", (int64_t)ob->next_seq) != 0)
            return STORE_EDB;
    }
    /* The hub lost its store or sees a new incarnation: start from where it stands. */
    if (hub_seq <= (uint64_t)mine) {
        *after = hub_seq;
        return 0;
    }
    /* The hub acknowledged more than this store remembers: a lost ack, or this store was
     * restored from an older copy and has since made entries with sequence numbers the hub
     * already counted. Entries of that range that the hub cannot hold carry versions above
     * the newest it holds (versions rise with sequence numbers within a lineage). */
    sqlite3_stmt *st = store_prepare(
        ob->db, "SELECT min(seq) FROM outbox WHERE seq>?1 AND seq<=?2 AND version>?3");
    if (st == NULL)
        return STORE_EDB;
    sqlite3_bind_int64(st, 1, mine);
    sqlite3_bind_int64(st, 2, (int64_t)hub_seq);
    sqlite3_bind_int64(st, 3, (int64_t)hub_version);
    *after = hub_seq;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *after = (uint64_t)sqlite3_column_int64(st, 0) - 1;
    sqlite3_finalize(st);
    return 0;
}

int outbox_acked(outbox *ob, uint64_t acked_seq, const Reint__V1__Refusal *const *refusals,
                 size_t n_refusals)
{
    int64_t now = (int64_t)hlc_wall_ms();
    if (outbox_begin(ob) != 0)
        return STORE_EDB;
    if (store_meta_set_int(ob->db, "acked_seq", (int64_t)acked_seq) != 0 ||
        store_meta_set_int(ob->db, "last_sync_ms", now) != 0)
        goto fail;
    if (n_refusals > 0) {
        sqlite3_stmt *st = store_prepare(ob->db, "INSERT OR REPLACE INTO dead_letters"
                                                 "(seq, id, field, reason, at_ms)"
                                                 " VALUES(?1,?2,?3,?4,?5)");
        if (st == NULL)
            goto fail;
        for (size_t i = 0; i < n_refusals; i++) {
            const Reint__V1__Refusal *f = refusals[i];
            sqlite3_bind_int64(st, 1, (int64_t)f->seq);
            sqlite3_bind_blob(st, 2, f->id.data, (int)f->id.len, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, f->field ? f->field : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, f->reason ? f->reason : "", -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, now);
            if (outbox__step_done(ob, st) != 0) {
                sqlite3_finalize(st);
                goto fail;
            }
        }
        sqlite3_finalize(st);
    }
    return outbox_commit(ob);
fail:
    outbox_rollback(ob);
    return STORE_EDB;
}

int outbox_note_sync(outbox *ob, int64_t last_sync_ms, int64_t last_hello_ms, int64_t skew_ms,
                     const char *last_error)
{
    int rc = 0;
    if (store_exec(ob->db, "BEGIN") != 0)
        return STORE_EDB;
    if (last_sync_ms)
        rc |= store_meta_set_int(ob->db, "last_sync_ms", last_sync_ms);
    if (last_hello_ms) {
        rc |= store_meta_set_int(ob->db, "last_hello_ms", last_hello_ms);
        rc |= store_meta_set_int(ob->db, "skew_ms", skew_ms);
    }
    if (last_error) {
        sqlite3_stmt *st = store_prepare(ob->db, "INSERT OR REPLACE INTO meta(key,value)"
                                                 " VALUES('last_error', ?1)");
        if (st) {
            sqlite3_bind_text(st, 1, last_error, -1, SQLITE_STATIC);
            rc |= outbox__step_done(ob, st);
            sqlite3_finalize(st);
        }
    }
    if (rc != 0) {
        store_exec(ob->db, "ROLLBACK");
        return STORE_EDB;
    }
    return store_exec(ob->db, "COMMIT");
}

static int64_t outbox__scalar(outbox *ob, const char *sql, int64_t arg)
{
    int64_t v = 0;
    sqlite3_stmt *st = store_prepare(ob->db, sql);
    if (st == NULL)
        return 0;
    if (strchr(sql, '?'))
        sqlite3_bind_int64(st, 1, arg);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int outbox_stats_get(outbox *ob, outbox_stats *s)
{
    int64_t acked = 0;
    memset(s, 0, sizeof(*s));
    store_meta_get_int(ob->db, "acked_seq", &acked);
    store_meta_get_int(ob->db, "last_sync_ms", &s->last_sync_ms);
    store_meta_get_int(ob->db, "last_hello_ms", &s->last_hello_ms);
    store_meta_get_int(ob->db, "skew_ms", &s->skew_ms);
    s->acked_seq = (uint64_t)acked;
    s->last_seq = outbox_last_seq(ob);
    s->backlog = outbox__scalar(ob, "SELECT count(*) FROM outbox WHERE seq>?1", acked);
    s->oldest_unsynced_ms = outbox__scalar(
        ob, "SELECT version>>16 FROM outbox WHERE seq>?1 ORDER BY seq LIMIT 1", acked);
    s->records = outbox__scalar(ob, "SELECT count(*) FROM outbox WHERE live=1", 0);
    s->tombstones = outbox__scalar(ob, "SELECT count(*) FROM outbox WHERE live=0", 0);
    s->dead_letters = outbox__scalar(ob, "SELECT count(*) FROM dead_letters", 0);
    sqlite3_stmt *st = store_prepare(ob->db, "SELECT value FROM meta WHERE key='last_error'");
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(s->last_error, sizeof(s->last_error), "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return 0;
}
