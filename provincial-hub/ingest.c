#include "ingest.h"

#include "clock.h"

#include <stdlib.h>
#include <string.h>

#include "geo.h"
#include "hubstore.h"
#include "hlc.h"
#include "log.h"
#include "netaddr.h"
#include "record.h"
#include "rid.h"
#include "rollup.h"
#include "store.h"
#include "wire.h"

#define INGEST_PROTOCOL_VERSION 1

enum { Q_NODE_ACK, Q_SWEEP, Q_RESEND_DONE, Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_N };

static const char *ingest__sql[Q_N] = {
    [Q_NODE_ACK] = ("UPDATE nodes SET acked_seq=?2, acked_version=?3, last_sync_ms=?4"
                    " WHERE municipality=?1 AND incarnation=?5"),
    [Q_SWEEP] = "DELETE FROM records WHERE municipality=?1 AND incarnation<>?2",
    [Q_RESEND_DONE] = "UPDATE nodes SET resend_pending=0 WHERE municipality=?1 AND incarnation=?2",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

typedef struct hub_conn hub_conn;

struct hub_conn {
    ingest *in;
    wire *w;
    hub_conn *next;
    uint32_t municipality;
    uint8_t incarnation[16];
    int session;
    int refs;                          /* the wire, plus each pending item */
    int dead;                          /* the wire has closed */
    uint64_t acked_seq, acked_version; /* including batches not yet committed */
    uint64_t accepted_ms;              /* loop time of accept, for the Hello deadline */
};

/* A connection that has not completed TLS and Hello within this time is closed, so that
 * idle or slow peers cannot hold sockets open (slowloris). */
#define INGEST_HELLO_DEADLINE_MS 10000

enum item_type { ITEM_BATCH, ITEM_RESEND_COMPLETE };

typedef struct refusal {
    size_t item; /* index of the pending item whose ack carries it */
    uint8_t id[16];
    uint64_t seq;
    const char *field;
    char reason[160];
} refusal;

typedef struct pending_item {
    hub_conn *c;
    enum item_type type;
    uint64_t acked_seq, acked_version;
    size_t row_begin, row_end;
} pending_item;

typedef struct pending_row {
    uint8_t id[16];
    uint64_t version, seq;
    int kind, deleted;
    size_t off, len; /* body in the arena */
} pending_row;

struct ingest {
    ingest_opts o;
    char listen[128];
    uv_tcp_t server;
    uv_check_t check;
    uv_timer_t sweep; /* closes connections past the Hello deadline */
    hubstore store;
    sqlite3 *db; /* store.db */
    sqlite3_stmt *q[Q_N];
    rollup *roll; /* the rollup engine, on the same connection */
    /* Records committed but not yet noted by the rollup engine. The engine's work (about
     * 20 us a record) is kept off the group commit, which it would slow threefold; a flag
     * in meta, set in every ingest transaction and cleared when the list drains, makes a
     * crash with notes pending rebuild the engine from the records at the next start. */
    uint8_t (*roll_ids)[16];
    uint32_t *roll_mun;
    size_t n_roll, cap_roll, cap_roll_mun;
    uv_timer_t roll_timer;
    uint64_t last_refresh_ms;
    uint64_t last_commit_ms; /* loop time of the last group commit */
    hub_conn *conns;
    int stopping, handles_open, port;
    pending_item *items;
    size_t n_items, cap_items;
    pending_row *rows;
    size_t n_rows, cap_rows;
    refusal *refs;
    size_t n_refs, cap_refs;
    uint8_t *arena;
    size_t arena_len, arena_cap;
    ingest_metrics m;
};

static void conn__unref(hub_conn *c)
{
    if (--c->refs == 0)
        free(c);
}

static int ingest__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *np = realloc(*p, n * elem);
    if (np == NULL)
        return -1;
    *p = np;
    *cap = n;
    return 0;
}

static int ingest__step(ingest *in, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        log_error("hub store: %s", sqlite3_errmsg(in->db));
        return REINT_EDB;
    }
    return 0;
}

static void ingest__send_ack(ingest *in, size_t index)
{
    pending_item *it = &in->items[index];
    hub_conn *c = it->c;
    if (c->dead || wire_is_closing(c->w))
        return;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Ack ack = REINT__V1__ACK__INIT;
    size_t n = 0;
    for (size_t i = 0; i < in->n_refs; i++)
        n += in->refs[i].item == index;
    Reint__V1__Refusal *rs = n ? calloc(n, sizeof(*rs)) : NULL;
    Reint__V1__Refusal **rp = n ? calloc(n, sizeof(*rp)) : NULL;
    if (n && (rs == NULL || rp == NULL)) {
        free(rs);
        free(rp);
        wire_close(c->w);
        return;
    }
    for (size_t i = 0, k = 0; i < in->n_refs; i++) {
        refusal *f = &in->refs[i];
        if (f->item != index)
            continue;
        reint__v1__refusal__init(&rs[k]);
        rs[k].id.data = f->id;
        rs[k].id.len = 16;
        rs[k].seq = f->seq;
        rs[k].field = (char *)f->field;
        rs[k].reason = f->reason;
        rp[k] = &rs[k];
        k++;
    }
    ack.acked_seq = it->acked_seq;
    ack.acked_version = it->acked_version;
    ack.n_refusals = n;
    ack.refusals = rp;
    env.msg_case = REINT__V1__ENVELOPE__MSG_ACK;
    env.ack = &ack;
    wire_send(c->w, &env);
    free(rs);
    free(rp);
}

static int ingest__add_refusal(ingest *in, size_t item, const uint8_t *id, uint64_t seq,
                               const char *field, const char *reason)
{
    if (ingest__grow((void **)&in->refs, &in->cap_refs, in->n_refs + 1, sizeof(refusal)))
        return -1;
    refusal *f = &in->refs[in->n_refs++];
    f->item = item;
    memset(f->id, 0, 16);
    if (id)
        memcpy(f->id, id, 16);
    f->seq = seq;
    f->field = field;
    snprintf(f->reason, sizeof(f->reason), "%s", reason);
    return 0;
}

static void ingest__queue_roll(ingest *in);

/* Commits every pending item in one transaction, then acknowledges each. On failure nothing
 * is acknowledged and the connections with pending work are closed, so their nodes resend. */
static void ingest__flush(ingest *in)
{
    if (in->n_items == 0)
        return;
    int64_t now = (int64_t)clock_now_ms();
    int failed = ingest__step(in, in->q[Q_BEGIN]) != 0;
    for (size_t i = 0; i < in->n_items && !failed; i++) {
        pending_item *it = &in->items[i];
        hub_conn *c = it->c;
        for (size_t r = it->row_begin; r < it->row_end && !failed; r++) {
            pending_row *row = &in->rows[r];
            hubstore_record rec = {.municipality = c->municipality,
                                   .id = row->id,
                                   .kind = row->kind,
                                   .version = row->version,
                                   .deleted = row->deleted,
                                   .incarnation = c->incarnation,
                                   .body = in->arena + row->off,
                                   .len = row->len};
            if (hubstore_put(&in->store, &rec) != 0) {
                failed = 1;
                break;
            }
        }
        if (failed)
            break;
        if (it->type == ITEM_BATCH) {
            sqlite3_stmt *st = in->q[Q_NODE_ACK];
            sqlite3_bind_int64(st, 1, c->municipality);
            sqlite3_bind_int64(st, 2, (int64_t)it->acked_seq);
            sqlite3_bind_int64(st, 3, (int64_t)it->acked_version);
            sqlite3_bind_int64(st, 4, now);
            sqlite3_bind_blob(st, 5, c->incarnation, 16, SQLITE_STATIC);
            failed = ingest__step(in, st) != 0;
        } else {
            sqlite3_stmt *st = in->q[Q_SWEEP];
            sqlite3_bind_int64(st, 1, c->municipality);
            sqlite3_bind_blob(st, 2, c->incarnation, 16, SQLITE_STATIC);
            failed = ingest__step(in, st) != 0;
            int swept = sqlite3_changes(in->db);
            if (!failed && swept > 0)
                failed = rollup_sweep(in->roll, c->municipality) != 0;
            st = in->q[Q_RESEND_DONE];
            sqlite3_bind_int64(st, 1, c->municipality);
            sqlite3_bind_blob(st, 2, c->incarnation, 16, SQLITE_STATIC);
            failed = failed || ingest__step(in, st) != 0;
            if (!failed) {
                in->m.sweeps++;
                in->m.swept_records += (uint64_t)swept;
                log_info("municipality:%u finished its full resend; %d records of older "
                         "incarnations dropped",
                         c->municipality, swept);
            }
        }
    }
    if (!failed && in->n_rows > 0)
        failed = store_meta_set_int(in->db, "rollup_pending", 1) != 0;
    if (!failed)
        failed = ingest__step(in, in->q[Q_COMMIT]) != 0;
    if (failed) {
        if (!sqlite3_get_autocommit(in->db))
            ingest__step(in, in->q[Q_ROLLBACK]);
        log_error("hub store commit failed; closing %zu pending sessions so that their nodes "
                  "resend",
                  in->n_items);
        for (size_t i = 0; i < in->n_items; i++)
            if (!in->items[i].c->dead)
                wire_close(in->items[i].c->w);
    } else {
        in->m.commits++;
        in->last_commit_ms = uv_now(in->o.loop);
        for (size_t i = 0; i < in->n_items; i++)
            ingest__send_ack(in, i);
        ingest__queue_roll(in);
    }
    for (size_t i = 0; i < in->n_items; i++)
        conn__unref(in->items[i].c);
    in->n_items = in->n_rows = in->n_refs = in->arena_len = 0;
}

/* Remembers every row of the committed group for the rollup engine. */
static void ingest__queue_roll(ingest *in)
{
    if (ingest__grow((void **)&in->roll_ids, &in->cap_roll, in->n_roll + in->n_rows, 16) ||
        ingest__grow((void **)&in->roll_mun, &in->cap_roll_mun, in->n_roll + in->n_rows,
                     sizeof(uint32_t))) {
        log_error("out of memory for rollup notes; the engine will rebuild at next start");
        return;
    }
    for (size_t i = 0; i < in->n_items; i++) {
        for (size_t r = in->items[i].row_begin; r < in->items[i].row_end; r++) {
            memcpy(in->roll_ids[in->n_roll], in->rows[r].id, 16);
            in->roll_mun[in->n_roll++] = in->items[i].c->municipality;
        }
    }
}

/* Notes up to max committed records into the engine in one transaction: each is read back
 * from the records table (its newest stored state). Returns 0 or -1. */
static int ingest__note_some(ingest *in, size_t max)
{
    size_t n = in->n_roll < max ? in->n_roll : max;
    sqlite3_stmt *st =
        store_prepare(in->db, "SELECT body FROM records WHERE municipality=?2 AND id=?1");
    int failed = st == NULL || ingest__step(in, in->q[Q_BEGIN]) != 0;
    for (size_t i = 0; i < n && !failed; i++) {
        sqlite3_bind_blob(st, 1, in->roll_ids[i], 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, in->roll_mun[i]);
        if (sqlite3_step(st) == SQLITE_ROW)
            failed = rollup_note_stored(in->roll, in->roll_mun[i], in->roll_ids[i],
                                        sqlite3_column_blob(st, 0),
                                        (size_t)sqlite3_column_bytes(st, 0)) != 0;
        sqlite3_reset(st);
    }
    if (!failed && n == in->n_roll)
        failed = store_meta_set_int(in->db, "rollup_pending", 0) != 0;
    if (!failed)
        failed = ingest__step(in, in->q[Q_COMMIT]) != 0;
    if (failed && !sqlite3_get_autocommit(in->db))
        ingest__step(in, in->q[Q_ROLLBACK]);
    sqlite3_finalize(st);
    if (failed)
        return -1;
    memmove(in->roll_ids, in->roll_ids + n, (in->n_roll - n) * 16);
    memmove(in->roll_mun, in->roll_mun + n, (in->n_roll - n) * sizeof(uint32_t));
    in->n_roll -= n;
    return 0;
}

/* Every 100 ms: note a bounded slice of the committed records (about 100 ms of work at
 * most, so sync sessions keep flowing under load), and once they are all noted, recompute
 * a slice of the dirty snapshots (rollup_daily: about 200 ms; every INGEST_REFRESH_MS, or at
 * once while a previous slice left some). */
#define INGEST_REFRESH_MS 500
static void ingest__on_roll(uv_timer_t *t)
{
    ingest *in = t->data;
    uint64_t now = uv_now(in->o.loop);
    /* While nodes are sending, durable ingest comes first: a small slice per tick (10,000
     * notes a second); once they pause, larger slices catch the rollups up. */
    size_t slice = now - in->last_commit_ms < 300 ? 1000 : 5000;
    int rolled = 0;
    if (in->n_roll > 0) {
        rolled = 1;
        if (ingest__note_some(in, slice) != 0)
            log_error("rollup notes failed; retrying at the next tick");
    }
    if (in->n_roll == 0 &&
        (rollup_more(in->roll) || now - in->last_refresh_ms >= INGEST_REFRESH_MS)) {
        in->last_refresh_ms = now;
        rolled = 1;
        if (rollup_daily(in->roll, clock_today_utc(), NULL) != 0)
            log_error("rollup refresh failed; its snapshots stay dirty for the next tick");
    }
    if (rolled && in->o.on_rolled)
        in->o.on_rolled(in->o.ud);
}

static void ingest__on_check(uv_check_t *h)
{
    ingest__flush(h->data);
}

static int ingest__queue_item(ingest *in, hub_conn *c, enum item_type type, size_t row_begin)
{
    if (ingest__grow((void **)&in->items, &in->cap_items, in->n_items + 1, sizeof(pending_item)))
        return -1;
    pending_item *it = &in->items[in->n_items++];
    it->c = c;
    it->type = type;
    it->acked_seq = c->acked_seq;
    it->acked_version = c->acked_version;
    it->row_begin = row_begin;
    it->row_end = in->n_rows;
    c->refs++;
    return 0;
}

static void ingest__security(ingest *in, hub_conn *c, const char *what)
{
    in->m.security_events++;
    log_security("%s (%s): %s; connection closed", wire_peer(c->w), wire_addr(c->w), what);
    wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN, what);
}

static void ingest__protocol_error(ingest *in, hub_conn *c, const char *what)
{
    in->m.protocol_errors++;
    log_warn("%s (%s): protocol error: %s", wire_peer(c->w), wire_addr(c->w), what);
    wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_PROTOCOL, what);
}

static int ingest__on_batch(ingest *in, hub_conn *c, const Reint__V1__Batch *b)
{
    char why[200];
    if (b->n_records != b->n_seqs || b->first_seq == 0 || b->first_seq > b->last_seq) {
        ingest__protocol_error(in, c, "batch sequence numbers do not match its records");
        return 1;
    }
    if (b->first_seq > c->acked_seq + 1) {
        snprintf(why, sizeof(why), "batch starts at %llu but the hub holds only through %llu",
                 (unsigned long long)b->first_seq, (unsigned long long)c->acked_seq);
        ingest__protocol_error(in, c, why);
        return 1;
    }
    /* The whole batch is refused when any record claims another municipality. */
    for (size_t i = 0; i < b->n_records; i++) {
        uint64_t prev = i ? b->seqs[i - 1] : b->first_seq - 1;
        if (b->seqs[i] <= prev || b->seqs[i] > b->last_seq) {
            ingest__protocol_error(in, c, "batch sequence numbers out of order");
            return 1;
        }
        if (b->records[i]->municipality != c->municipality) {
            snprintf(why, sizeof(why), "batch holds a record of municipality %u",
                     b->records[i]->municipality);
            ingest__security(in, c, why);
            return 1;
        }
    }
    size_t row_begin = in->n_rows;
    int32_t today = clock_today_utc();
    uint64_t maxv = c->acked_version;
    for (size_t i = 0; i < b->n_records; i++) {
        const Reint__V1__Record *r = b->records[i];
        record_error err;
        if (r->version > maxv)
            maxv = r->version;
        if (record_validate(r, today, &err) != 0) {
            if (ingest__add_refusal(in, in->n_items, r->id.len == 16 ? r->id.data : NULL,
                                    b->seqs[i], err.field, err.reason))
                return -1;
            in->m.records_refused++;
            continue;
        }
        size_t len = reint__v1__record__get_packed_size(r);
        if (ingest__grow((void **)&in->rows, &in->cap_rows, in->n_rows + 1, sizeof(pending_row)) ||
            ingest__grow((void **)&in->arena, &in->arena_cap, in->arena_len + len, 1))
            return -1;
        pending_row *row = &in->rows[in->n_rows++];
        memcpy(row->id, r->id.data, 16);
        row->version = r->version;
        row->seq = b->seqs[i];
        row->kind = record_kind(r);
        row->deleted = r->body_case == REINT__V1__RECORD__BODY_TOMBSTONE;
        row->off = in->arena_len;
        row->len = len;
        reint__v1__record__pack(r, in->arena + in->arena_len);
        in->arena_len += len;
        in->m.records_stored++;
    }
    if (b->last_seq > c->acked_seq)
        c->acked_seq = b->last_seq;
    c->acked_version = maxv;
    in->m.batches++;
    if (ingest__queue_item(in, c, ITEM_BATCH, row_begin) != 0)
        return -1;
    if (in->n_rows >= in->o.commit_rows)
        ingest__flush(in);
    return 0;
}

static hub_conn *ingest__session_of(ingest *in, uint32_t municipality)
{
    for (hub_conn *c = in->conns; c; c = c->next)
        if (c->session && !c->dead && c->municipality == municipality)
            return c;
    return NULL;
}

/* Directives the node has not acknowledged yet, for its HelloReply (owned by the reply
 * until ingest__free_directives). */
static void ingest__pending_directives(ingest *in, uint32_t municipality, Reint__V1__HelloReply *r)
{
    sqlite3_stmt *st = store_prepare(
        in->db, "SELECT key_id, body, signature FROM directives WHERE serial >"
                " coalesce((SELECT serial FROM node_directives WHERE municipality=?1), 0)"
                " ORDER BY serial LIMIT 64");
    if (st == NULL)
        return;
    sqlite3_bind_int64(st, 1, municipality);
    while (sqlite3_step(st) == SQLITE_ROW) {
        Reint__V1__SignedDirective **nd =
            realloc(r->directives, (r->n_directives + 1) * sizeof(*nd));
        Reint__V1__SignedDirective *sd = calloc(1, sizeof(*sd));
        if (nd == NULL || sd == NULL) {
            free(sd);
            if (nd)
                r->directives = nd;
            break;
        }
        r->directives = nd;
        reint__v1__signed_directive__init(sd);
        sd->key_id = strdup((const char *)sqlite3_column_text(st, 0));
        sd->body.len = (size_t)sqlite3_column_bytes(st, 1);
        sd->body.data = malloc(sd->body.len ? sd->body.len : 1);
        sd->signature.len = (size_t)sqlite3_column_bytes(st, 2);
        sd->signature.data = malloc(sd->signature.len ? sd->signature.len : 1);
        if (sd->body.data)
            memcpy(sd->body.data, sqlite3_column_blob(st, 1), sd->body.len);
        if (sd->signature.data)
            memcpy(sd->signature.data, sqlite3_column_blob(st, 2), sd->signature.len);
        r->directives[r->n_directives++] = sd;
    }
    sqlite3_finalize(st);
}

static void ingest__free_directives(Reint__V1__HelloReply *r)
{
    for (size_t i = 0; i < r->n_directives; i++) {
        free(r->directives[i]->key_id);
        free(r->directives[i]->body.data);
        free(r->directives[i]->signature.data);
        free(r->directives[i]);
    }
    free(r->directives);
    r->directives = NULL;
    r->n_directives = 0;
}

static int ingest__directive_acked(ingest *in, hub_conn *c, uint64_t serial)
{
    sqlite3_stmt *st = store_prepare(
        in->db, "INSERT INTO node_directives(municipality, serial) SELECT ?1, ?2"
                " WHERE ?2 <= (SELECT coalesce(max(serial), 0) FROM directives)"
                " ON CONFLICT(municipality) DO UPDATE SET serial=max(serial, excluded.serial)");
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, c->municipality);
    sqlite3_bind_int64(st, 2, (int64_t)serial);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* 1 when sd is a directive the hub holds with exactly these body bytes (serial set). */
static int ingest__directive_held(ingest *in, const Reint__V1__SignedDirective *sd,
                                  uint64_t *serial)
{
    int held = 0;
    sqlite3_stmt *st = store_prepare(in->db, "SELECT serial FROM directives WHERE body=?1");
    if (st == NULL)
        return 0;
    sqlite3_bind_blob(st, 1, sd->body.data, (int)sd->body.len, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *serial = (uint64_t)sqlite3_column_int64(st, 0);
        held = 1;
    }
    sqlite3_finalize(st);
    return held;
}

int ingest_directive(ingest *in, const Reint__V1__SignedDirective *sd, uint64_t *serial, char *err,
                     size_t errlen)
{
    Reint__V1__Directive *d = NULL;
    uint64_t last = 0;
    sqlite3_stmt *st = store_prepare(in->db, "SELECT coalesce(max(serial), 0) FROM directives");
    if (st && sqlite3_step(st) == SQLITE_ROW)
        last = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    int rc = directive_verify(in->o.directive_keys, sd, last, &d, err, errlen);
    if (rc == REINT_EREPLAY && ingest__directive_held(in, sd, serial))
        return 0; /* relayed again after a lost ack: acknowledge, change nothing */
    if (rc != 0) {
        in->m.security_events++;
        log_security("directive refused: %s", err);
        return rc;
    }
    *serial = d->serial;
    reint__v1__directive__free_unpacked(d, NULL);
    st = store_prepare(in->db, "INSERT INTO directives(serial, key_id, body, signature,"
                               " received_ms) VALUES(?1,?2,?3,?4,?5)");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, (int64_t)*serial);
    sqlite3_bind_text(st, 2, sd->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, sd->body.data, (int)sd->body.len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, sd->signature.data, (int)sd->signature.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)clock_now_ms());
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : REINT_EDB;
    sqlite3_finalize(st);
    if (rc != 0) {
        snprintf(err, errlen, "cannot store directive: %s", sqlite3_errmsg(in->db));
        return rc;
    }
    log_info("directive %llu stored; relaying to connected nodes", (unsigned long long)*serial);
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    env.msg_case = REINT__V1__ENVELOPE__MSG_DIRECTIVE;
    env.directive = (Reint__V1__SignedDirective *)sd;
    for (hub_conn *c = in->conns; c; c = c->next)
        if (c->session && !c->dead && !wire_is_closing(c->w))
            wire_send(c->w, &env);
    return 0;
}

sqlite3 *ingest_db(ingest *in)
{
    return in->db;
}

rollup *ingest_rollup(ingest *in)
{
    return in->roll;
}

static int ingest__on_hello(ingest *in, hub_conn *c, const Reint__V1__Hello *h)
{
    if (h->protocol_version != INGEST_PROTOCOL_VERSION) {
        wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_VERSION,
                  "protocol version not supported (this hub speaks 1)");
        return 1;
    }
    if (h->incarnation.len != 16) {
        ingest__protocol_error(in, c, "hello incarnation must be 16 bytes");
        return 1;
    }
    /* One session per municipality: a new one replaces a stale one. */
    hub_conn *old = ingest__session_of(in, c->municipality);
    if (old && old != c) {
        log_info("municipality:%u reconnected; closing its previous session", c->municipality);
        wire_close(old->w);
    }
    /* Pending work of any session must be durable before positions are read. */
    ingest__flush(in);
    int64_t now = (int64_t)clock_now_ms();
    int known = 0, resend = 0;
    uint8_t inc[16];
    sqlite3_stmt *st = store_prepare(in->db, "SELECT incarnation, acked_seq, acked_version,"
                                             " resend_pending FROM nodes WHERE municipality=?1");
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, c->municipality);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
        memcpy(inc, sqlite3_column_blob(st, 0), 16);
        known = memcmp(inc, h->incarnation.data, 16) == 0;
        c->acked_seq = (uint64_t)sqlite3_column_int64(st, 1);
        c->acked_version = (uint64_t)sqlite3_column_int64(st, 2);
        resend = sqlite3_column_int(st, 3);
    }
    sqlite3_finalize(st);
    memcpy(c->incarnation, h->incarnation.data, 16);
    const char *sql;
    if (!known) {
        /* A new store: take its whole outbox, then drop what older incarnations left. */
        c->acked_seq = c->acked_version = 0;
        resend = 1;
        sql =
            "INSERT INTO nodes(municipality, incarnation, acked_seq, acked_version,"
            " resend_pending, first_seen_ms, last_hello_ms) VALUES(?1,?2,0,0,1,?3,?3)"
            " ON CONFLICT(municipality) DO UPDATE SET incarnation=excluded.incarnation,"
            " acked_seq=0, acked_version=0, resend_pending=1, last_hello_ms=excluded.last_hello_ms";
        log_info("municipality:%u presents a new store incarnation; asking for a full resend",
                 c->municipality);
        /* A new store holds no directives yet: offer every one again. */
        sqlite3_stmt *nd =
            store_prepare(in->db, "DELETE FROM node_directives WHERE municipality=?1");
        if (nd) {
            sqlite3_bind_int64(nd, 1, c->municipality);
            sqlite3_step(nd);
            sqlite3_finalize(nd);
        }
    } else {
        sql = "UPDATE nodes SET last_hello_ms=?3 WHERE municipality=?1 AND incarnation=?2";
    }
    st = store_prepare(in->db, sql);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, c->municipality);
    sqlite3_bind_blob(st, 2, c->incarnation, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_error("hub store: %s", sqlite3_errmsg(in->db));
        return -1;
    }
    c->session = 1;
    in->m.sessions++;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__HelloReply r = REINT__V1__HELLO_REPLY__INIT;
    r.acked_seq = c->acked_seq;
    r.acked_version = c->acked_version;
    r.clock = (uint64_t)now;
    r.resend_requested = resend != 0;
    ingest__pending_directives(in, c->municipality, &r);
    env.msg_case = REINT__V1__ENVELOPE__MSG_HELLO_REPLY;
    env.hello_reply = &r;
    log_info("municipality:%u session from %s: holds through %llu, node has %llu", c->municipality,
             wire_addr(c->w), (unsigned long long)c->acked_seq, (unsigned long long)h->last_seq);
    wire_send(c->w, &env);
    ingest__free_directives(&r);
    return 0;
}

static int ingest__on_envelope(wire *w, const Reint__V1__Envelope *env, void *ud)
{
    hub_conn *c = ud;
    ingest *in = c->in;
    int rc;
    if (!c->session && env->msg_case != REINT__V1__ENVELOPE__MSG_HELLO) {
        ingest__protocol_error(in, c, "the session must start with Hello");
        return 1;
    }
    switch (env->msg_case) {
    case REINT__V1__ENVELOPE__MSG_HELLO:
        if (c->session) {
            ingest__protocol_error(in, c, "Hello sent twice");
            return 1;
        }
        rc = ingest__on_hello(in, c, env->hello);
        break;
    case REINT__V1__ENVELOPE__MSG_BATCH:
        rc = ingest__on_batch(in, c, env->batch);
        break;
    case REINT__V1__ENVELOPE__MSG_RESEND_COMPLETE:
        if (env->resend_complete->incarnation.len != 16 ||
            memcmp(env->resend_complete->incarnation.data, c->incarnation, 16) != 0) {
            ingest__protocol_error(in, c, "ResendComplete for another incarnation");
            return 1;
        }
        rc = ingest__queue_item(in, c, ITEM_RESEND_COMPLETE, in->n_rows);
        break;
    case REINT__V1__ENVELOPE__MSG_DIRECTIVE_ACK:
        rc = ingest__directive_acked(in, c, env->directive_ack->serial);
        break;
    default:
        ingest__protocol_error(in, c, "unexpected message");
        return 1;
    }
    if (rc < 0) {
        wire_fail(w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "hub internal error");
        return 1;
    }
    return rc != 0 || wire_is_closing(w);
}

static void ingest__on_ready(wire *w, void *ud)
{
    hub_conn *c = ud;
    ingest *in = c->in;
    const char *peer = wire_peer(w);
    unsigned long code = 0;
    char *end = NULL;
    if (strncmp(peer, "municipality:", 13) == 0)
        code = strtoul(peer + 13, &end, 10);
    const geo_local_level *g = code ? geo_find((uint32_t)code) : NULL;
    if (g == NULL || end == NULL || *end != '\0') {
        ingest__security(in, c, "certificate does not name a known municipality");
        return;
    }
    if (g->province != in->o.province) {
        char why[160];
        snprintf(why, sizeof(why), "municipality %lu (%s) is in province %u, not %u", code, g->name,
                 g->province, in->o.province);
        ingest__security(in, c, why);
        return;
    }
    c->municipality = (uint32_t)code;
}

static void ingest__on_close(wire *w, int status, void *ud)
{
    (void)w;
    hub_conn *c = ud;
    ingest *in = c->in;
    if (status != 0 && status != UV_EOF)
        log_info("%s: connection closed: %s", c->municipality ? "node" : "peer",
                 uv_strerror(status));
    c->dead = 1;
    for (hub_conn **p = &in->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    in->m.connected--;
    conn__unref(c);
}

static const wire_cb ingest__wire_cb = {
    .on_ready = ingest__on_ready,
    .on_envelope = ingest__on_envelope,
    .on_close = ingest__on_close,
};

static void ingest__on_connection(uv_stream_t *server, int status)
{
    ingest *in = server->data;
    if (status < 0 || in->stopping)
        return;
    hub_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->in = in;
    c->refs = 1;
    c->accepted_ms = uv_now(in->o.loop);
    if (wire_accept(&c->w, in->o.tls, server, in->o.max_frame, &ingest__wire_cb, c) != 0) {
        free(c);
        return;
    }
    c->next = in->conns;
    in->conns = c;
    in->m.connections++;
    in->m.connected++;
}

static void ingest__on_sweep(uv_timer_t *t)
{
    ingest *in = t->data;
    uint64_t now = uv_now(in->o.loop);
    for (hub_conn *c = in->conns; c; c = c->next) {
        if (!c->session && !c->dead && !wire_is_closing(c->w) &&
            now - c->accepted_ms > INGEST_HELLO_DEADLINE_MS) {
            log_warn("%s: no Hello within %d s; closing", wire_addr(c->w),
                     INGEST_HELLO_DEADLINE_MS / 1000);
            in->m.protocol_errors++;
            wire_close(c->w);
        }
    }
}

int ingest_start(ingest **out, const ingest_opts *opts, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    ingest *in = calloc(1, sizeof(*in));
    if (in == NULL)
        return UV_ENOMEM;
    in->o = *opts;
    if (in->o.commit_rows == 0)
        in->o.commit_rows = 50000;
    snprintf(in->listen, sizeof(in->listen), "%s", opts->listen);
    in->o.listen = in->listen;
    if (netaddr_parse(opts->listen, &sa) != 0) {
        snprintf(err, errlen, "sync listen address \"%s\" is not HOST:PORT", opts->listen);
        goto fail;
    }
    if (hubstore_open(&in->store, opts->db_path, err, errlen) != 0)
        goto fail;
    in->db = in->store.db;
    for (int i = 0; i < Q_N; i++) {
        if ((in->q[i] = store_prepare(in->db, ingest__sql[i])) == NULL) {
            snprintf(err, errlen, "%s: %s", opts->db_path, sqlite3_errmsg(in->db));
            goto fail;
        }
    }
    if (rollup_open(&in->roll, in->db, err, errlen) != 0)
        goto fail;
    int64_t pending = 0;
    if (store_meta_get_int(in->db, "rollup_pending", &pending) == 0 && pending) {
        log_warn("records were committed but not rolled up before the last stop; rebuilding "
                 "the rollups from the records");
        if (rollup_full(in->roll, NULL) != 0 ||
            store_meta_set_int(in->db, "rollup_pending", 0) != 0) {
            snprintf(err, errlen, "%s: cannot rebuild the rollups", opts->db_path);
            goto fail;
        }
    }
    uv_tcp_init(opts->loop, &in->server);
    in->server.data = in;
    in->handles_open++;
    int rc = uv_tcp_bind(&in->server, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&in->server, 511, ingest__on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", opts->listen, uv_strerror(rc));
        goto fail_handles;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&in->server, (struct sockaddr *)&bound, &blen);
    in->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_check_init(opts->loop, &in->check);
    in->check.data = in;
    in->handles_open++;
    uv_check_start(&in->check, ingest__on_check);
    uv_unref((uv_handle_t *)&in->check);
    uv_timer_init(opts->loop, &in->sweep);
    in->sweep.data = in;
    in->handles_open++;
    uv_timer_start(&in->sweep, ingest__on_sweep, 2000, 2000);
    uv_unref((uv_handle_t *)&in->sweep);
    uv_timer_init(opts->loop, &in->roll_timer);
    in->roll_timer.data = in;
    in->handles_open++;
    uv_timer_start(&in->roll_timer, ingest__on_roll, 100, 100);
    uv_unref((uv_handle_t *)&in->roll_timer);
    *out = in;
    return 0;
fail_handles:
    in->stopping = 1;
    uv_close((uv_handle_t *)&in->server, NULL);
    /* The ingest is leaked on purpose here: the caller exits on this error. */
    return UV_EADDRINUSE;
fail:
    for (int i = 0; i < Q_N; i++)
        sqlite3_finalize(in->q[i]);
    rollup_close(in->roll);
    hubstore_close(&in->store);
    free(in);
    return UV_EINVAL;
}

int ingest_port(const ingest *in)
{
    return in->port;
}

static void ingest__on_handle_close(uv_handle_t *h)
{
    ingest *in = h->data;
    if (--in->handles_open > 0)
        return;
    for (int i = 0; i < Q_N; i++)
        sqlite3_finalize(in->q[i]);
    rollup_close(in->roll);
    hubstore_close(&in->store);
    free(in->items);
    free(in->rows);
    free(in->refs);
    free(in->arena);
    free(in->roll_ids);
    free(in->roll_mun);
    free(in);
}

void ingest_stop(ingest *in)
{
    if (in == NULL || in->stopping)
        return;
    in->stopping = 1;
    ingest__flush(in);
    for (hub_conn *c = in->conns; c; c = c->next)
        wire_close(c->w);
    uv_close((uv_handle_t *)&in->server, ingest__on_handle_close);
    uv_close((uv_handle_t *)&in->check, ingest__on_handle_close);
    uv_close((uv_handle_t *)&in->sweep, ingest__on_handle_close);
    uv_close((uv_handle_t *)&in->roll_timer, ingest__on_handle_close);
}

void ingest_get_metrics(const ingest *in, ingest_metrics *m)
{
    *m = in->m;
    store_durability(in->db, &m->store_synchronous, &m->store_wal);
}
