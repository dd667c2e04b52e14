#include "ingest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dirstore.h"
#include "geo.h"
#include "gaps.h"
#include "haudit.h"
#include "hubstore.h"
#include "log.h"
#include "receiver.h"
#include "record.h"
#include "rid.h"
#include "review.h"
#include "reviews.h"
#include "rollup.h"
#include "sbuf.h"
#include "store.h"
#include "sweeps.h"
#include "testhook.h"
#include "utf8.h"

enum { Q_NODE_ACK, Q_RESEND_DONE, Q_DEAD_PUT, Q_DEAD_CLEAR, Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_N };

static const char *ingest__sql[Q_N] = {
    [Q_NODE_ACK] = ("UPDATE nodes SET acked_seq=?2, acked_version=?3, last_sync_ms=?4"
                    " WHERE municipality=?1 AND incarnation=?5"),
    [Q_RESEND_DONE] = "UPDATE nodes SET resend_pending=0 WHERE municipality=?1 AND incarnation=?2",
    [Q_DEAD_PUT] = "INSERT OR REPLACE INTO dead_letters(municipality, id, seq, kind, field, reason,"
                   " at_ms) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [Q_DEAD_CLEAR] = "DELETE FROM dead_letters WHERE municipality=?1 AND id=?2",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

#define INGEST_DIRECTIVES_PER_HELLO 64
#define INGEST_ROLL_QUEUE_DEFAULT   2000000
/* While nodes are sending, a small slice of rollup notes per tick keeps the group commit
 * first (10,000 notes a second); once they pause, larger slices catch the rollups up. */
#define INGEST_NOTE_SLICE_BUSY 1000
/* Once they pause, slices of at most this long follow one another with one turn of the
 * loop between them (sessions, uplink and officers' pages), so that the second half of a
 * bulk load is rolled up at the pace of the CPU, not of a timer. */
#define INGEST_NOTE_IDLE_MS 100
#define INGEST_REFRESH_MS   500

/* The ingest's state of one node session (receiver_peer_data). */
typedef struct hub_node {
    uint64_t acked_version; /* including batches not yet committed */
    int64_t dead_letters;   /* held for this municipality: stored records then clear theirs */
    int reviews;            /* the node takes Reviews (it said so in Hello) */
    int reviews_inflight;   /* a Reviews message waits for its ReviewAck */
    uint64_t reviews_sent;  /* the highest change clock sent in this session (or held) */
} hub_node;

enum item_type { ITEM_BATCH, ITEM_RESEND_COMPLETE };

/* A batch (or ResendComplete) waiting for the group commit; holds a peer reference. */
typedef struct pending_item {
    receiver_peer *p;
    enum item_type type;
    uint64_t acked_seq, acked_version;
    size_t row_begin, row_end;
    int cut; /* acknowledged only up to the refusals one ack can list: close after the ack */
} pending_item;

typedef struct pending_row {
    uint8_t id[16];
    uint64_t version;
    int kind, deleted;
    int inserted;    /* the upsert inserted it (hubstore_put) */
    size_t off, len; /* body in the arena */
} pending_row;

/* A record refused by validation (returned in its batch's ack) or dropped by its node as too
 * large (already a dead letter there): both are filed as the municipality's dead letters. */
typedef struct pending_dead {
    size_t item;
    int in_ack;
    int kind;
    receiver_refusal r;
} pending_dead;

struct ingest {
    ingest_opts o;
    hubstore store;
    sqlite3 *db; /* store.db */
    sqlite3_stmt *q[Q_N];
    receiver *rx;
    rollup *roll; /* the rollup engine, on the same connection */
    reviews *rv;  /* the monthly review, on the same connection */
    /* Records committed but not yet noted by the rollup engine. The engine's work (about
     * 20 us a record) is kept off the group commit, which it would slow threefold; a flag
     * in meta, set in every ingest transaction and cleared when the list drains, makes a
     * crash with notes pending rebuild the engine from the records at the next start. The
     * list is bounded: past roll_queue_max every node is held (not read) until it drains. */
    uint8_t (*roll_ids)[16];
    uint32_t *roll_mun;
    uint8_t *roll_fresh; /* 1: inserted by its commit (rollup_note_stored's fresh) */
    size_t n_roll, cap_roll, cap_roll_mun, cap_roll_fresh;
    int roll_held;
    uv_check_t check;
    uv_timer_t roll_timer;
    uint64_t last_refresh_ms;
    int noted;               /* records noted since the last refresh: refresh at this tick */
    uint64_t last_commit_ms; /* loop time of the last group commit */
    uint64_t coverage_gen;
    int stopping, handles_open;
    pending_item *items;
    size_t n_items, cap_items;
    pending_row *rows;
    size_t n_rows, cap_rows;
    pending_dead *dead;
    size_t n_dead, cap_dead;
    sbuf arena;
    int restoring; /* an undone sweep has put records back in this transaction */
    ingest_metrics m;
};

static int ingest__add_dead(ingest *in, size_t item, int in_ack, int kind, const uint8_t *id,
                            uint64_t seq, const char *field, const char *reason)
{
    if (sbuf_grow((void **)&in->dead, &in->cap_dead, in->n_dead + 1, sizeof(pending_dead)) != 0)
        return REINT_ENOMEM;
    pending_dead *d = &in->dead[in->n_dead++];
    memset(d, 0, sizeof(*d));
    d->item = item;
    d->in_ack = in_ack;
    d->kind = kind;
    d->r.has_id = id != NULL;
    if (id)
        memcpy(d->r.id, id, 16);
    d->r.seq = seq;
    receiver_refusal_set(&d->r, field, reason);
    return 0;
}

/* Acknowledges item index with the refusals it carries. */
static void ingest__send_ack(ingest *in, size_t index)
{
    pending_item *it = &in->items[index];
    receiver_refusal *rs = NULL;
    size_t n = 0;
    for (size_t i = 0; i < in->n_dead; i++)
        n += in->dead[i].item == index && in->dead[i].in_ack;
    if (n && (rs = calloc(n, sizeof(*rs))) == NULL) {
        receiver_internal_error(it->p, "out of memory for an acknowledgement");
        return;
    }
    for (size_t i = 0, k = 0; i < in->n_dead; i++)
        if (in->dead[i].item == index && in->dead[i].in_ack)
            rs[k++] = in->dead[i].r;
    receiver_ack(it->p, it->acked_seq, it->acked_version, rs, n);
    free(rs);
}

/* Files the dead letters of the group (refused or dropped records) in the open transaction.
 * A record refused without a valid id is filed under its sequence number. */
static int ingest__file_dead(ingest *in, int64_t now)
{
    sqlite3_stmt *st = in->q[Q_DEAD_PUT];
    for (size_t i = 0; i < in->n_dead; i++) {
        pending_dead *d = &in->dead[i];
        receiver_peer *p = in->items[d->item].p;
        uint8_t key[16] = {0};
        if (d->r.has_id) {
            memcpy(key, d->r.id, 16);
        } else {
            for (int b = 0; b < 8; b++)
                key[8 + b] = (uint8_t)(d->r.seq >> (56 - 8 * b));
        }
        sqlite3_bind_int64(st, 1, receiver_peer_scope(p));
        sqlite3_bind_blob(st, 2, key, 16, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, (int64_t)d->r.seq);
        sqlite3_bind_int(st, 4, d->kind);
        sqlite3_bind_text(st, 5, d->r.field, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, d->r.reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, now);
        if (store_step_done(in->db, st) != 0)
            return REINT_EDB;
        hub_node *hn = receiver_peer_data(p);
        if (hn)
            hn->dead_letters++;
    }
    return 0;
}

/* Writes one item's rows, then its position or its sweep, in the open transaction. */
static int ingest__write_item(ingest *in, pending_item *it, int64_t now)
{
    receiver_peer *p = it->p;
    uint32_t mun = receiver_peer_scope(p);
    const uint8_t *inc = receiver_peer_incarnation(p);
    hub_node *hn = receiver_peer_data(p);
    for (size_t r = it->row_begin; r < it->row_end; r++) {
        pending_row *row = &in->rows[r];
        hubstore_record rec = {.municipality = mun,
                               .id = row->id,
                               .kind = row->kind,
                               .version = row->version,
                               .deleted = row->deleted,
                               .incarnation = inc,
                               .body = (const uint8_t *)in->arena.p + row->off,
                               .len = row->len};
        if (hubstore_put(&in->store, &rec, &row->inserted) != 0)
            return REINT_EDB;
        if (hn && hn->dead_letters > 0) {
            sqlite3_stmt *st = in->q[Q_DEAD_CLEAR];
            sqlite3_bind_int64(st, 1, mun);
            sqlite3_bind_blob(st, 2, row->id, 16, SQLITE_STATIC);
            if (store_step_done(in->db, st) != 0)
                return REINT_EDB;
            hn->dead_letters -= sqlite3_changes(in->db);
        }
    }
    if (it->type == ITEM_BATCH) {
        sqlite3_stmt *st = in->q[Q_NODE_ACK];
        sqlite3_bind_int64(st, 1, mun);
        sqlite3_bind_int64(st, 2, (int64_t)it->acked_seq);
        sqlite3_bind_int64(st, 3, (int64_t)it->acked_version);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_blob(st, 5, inc, 16, SQLITE_STATIC);
        return store_step_done(in->db, st);
    }
    /* The records of older incarnations stop counting, but are kept until a hub admin
     * confirms the sweep (sweeps.h). */
    sweeps_peer sp = {mun, inc, receiver_peer_serial(p), receiver_peer_addr(p)};
    int64_t swept = 0, sweep_id = 0;
    if (sweeps_resend_complete(in->db, &sp, now, &swept, &sweep_id) != 0)
        return REINT_EDB;
    if (swept > 0 && rollup_sweep(in->roll, mun) != 0)
        return REINT_EDB;
    sqlite3_stmt *st = in->q[Q_RESEND_DONE];
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_blob(st, 2, inc, 16, SQLITE_STATIC);
    if (store_step_done(in->db, st) != 0)
        return REINT_EDB;
    if (sweep_id == 0) { /* its first store: nothing older to set aside, no sweep */
        log_info("municipality:%u finished its full resend", mun);
        return 0;
    }
    in->m.sweeps++;
    in->m.swept_records += (uint64_t)swept;
    log_info("municipality:%u finished its full resend; %lld records of older incarnations set "
             "aside (sweep #%lld)",
             mun, (long long)swept, (long long)sweep_id);
    return 0;
}

static void ingest__hold_check(ingest *in);
static void ingest__push_all(ingest *in);

/* Memory a large batch (or a long rollup queue) took is given back once it is done, so that a
 * peer cannot pin it by sending one big batch. */
#define INGEST_KEEP_ROWS  16384
#define INGEST_KEEP_BYTES (4u << 20)
static void ingest__trim(ingest *in)
{
    if (in->n_rows == 0 && in->cap_rows > INGEST_KEEP_ROWS) {
        free(in->rows);
        in->rows = NULL;
        in->cap_rows = 0;
    }
    if (in->n_dead == 0 && in->cap_dead > INGEST_KEEP_ROWS / 16) {
        free(in->dead);
        in->dead = NULL;
        in->cap_dead = 0;
    }
    if (in->n_items == 0 && in->cap_items > 1024) {
        free(in->items);
        in->items = NULL;
        in->cap_items = 0;
    }
    if (in->arena.len == 0 && in->arena.cap > INGEST_KEEP_BYTES) {
        size_t max = in->arena.max;
        sbuf_free(&in->arena);
        sbuf_init(&in->arena, max);
    }
    if (in->n_roll == 0 && in->cap_roll > 4 * INGEST_KEEP_ROWS) {
        free(in->roll_ids);
        free(in->roll_mun);
        free(in->roll_fresh);
        in->roll_ids = NULL;
        in->roll_mun = NULL;
        in->roll_fresh = NULL;
        in->cap_roll = in->cap_roll_mun = in->cap_roll_fresh = 0;
    }
}

/* Room for need rollup notes. Returns 0 or REINT_ENOMEM. */
static int ingest__grow_notes(ingest *in, size_t need)
{
    if (sbuf_grow((void **)&in->roll_ids, &in->cap_roll, need, 16) != 0 ||
        sbuf_grow((void **)&in->roll_mun, &in->cap_roll_mun, need, sizeof(uint32_t)) != 0 ||
        sbuf_grow((void **)&in->roll_fresh, &in->cap_roll_fresh, need, 1) != 0)
        return REINT_ENOMEM;
    return 0;
}

/* Commits every pending item in one transaction, then acknowledges each. On failure nothing
 * is acknowledged and the connections with pending work are closed, so their nodes resend.
 * The rollup notes of the group are reserved before the commit, so that a record once
 * committed is always noted. */
static void ingest__flush(ingest *in)
{
    if (in->n_items == 0)
        return;
    int64_t now = (int64_t)clock_now_ms();
    size_t need = in->n_roll + in->n_rows;
    int failed = ingest__grow_notes(in, need) != 0;
    if (failed)
        log_error("out of memory for the rollup notes of a group commit");
    failed = failed || store_step_done(in->db, in->q[Q_BEGIN]) != 0;
    for (size_t i = 0; i < in->n_items && !failed; i++)
        failed = ingest__write_item(in, &in->items[i], now) != 0;
    if (!failed && in->n_dead > 0)
        failed = ingest__file_dead(in, now) != 0;
    if (!failed && in->n_rows > 0)
        failed = store_meta_set_int(in->db, "rollup_pending", 1) != 0;
    if (!failed)
        failed = store_step_done(in->db, in->q[Q_COMMIT]) != 0;
    if (failed) {
        if (!sqlite3_get_autocommit(in->db))
            store_step_done(in->db, in->q[Q_ROLLBACK]);
        log_error("hub store commit failed; closing %zu pending sessions so that their nodes "
                  "resend",
                  in->n_items);
        for (size_t i = 0; i < in->n_items; i++)
            receiver_close(in->items[i].p);
    } else {
        in->m.commits++;
        in->last_commit_ms = uv_now(in->o.loop);
        if (in->n_rows > 0 || in->n_dead > 0)
            in->coverage_gen++;
        for (size_t i = 0; i < in->n_items; i++) {
            for (size_t r = in->items[i].row_begin; r < in->items[i].row_end; r++) {
                memcpy(in->roll_ids[in->n_roll], in->rows[r].id, 16);
                in->roll_fresh[in->n_roll] = (uint8_t)in->rows[r].inserted;
                in->roll_mun[in->n_roll++] = receiver_peer_scope(in->items[i].p);
            }
            ingest__send_ack(in, i);
            if (in->items[i].cut)
                receiver_close(in->items[i].p);
        }
        if (in->n_roll > in->m.roll_queue_peak)
            in->m.roll_queue_peak = in->n_roll;
    }
    for (size_t i = 0; i < in->n_items; i++)
        receiver_peer_unref(in->items[i].p);
    in->n_items = in->n_rows = in->n_dead = 0;
    sbuf_reset(&in->arena);
    ingest__trim(in);
    ingest__hold_check(in);
}

/* Holds every node while the rollup notes are at their bound, releases them at half. */
static void ingest__hold_check(ingest *in)
{
    if (!in->roll_held && in->n_roll + in->n_rows >= in->o.roll_queue_max) {
        in->roll_held = 1;
        in->m.roll_queue_holds++;
        log_info("rollup notes at their bound (%zu): nodes are not read until the engine "
                 "catches up",
                 in->n_roll);
        receiver_hold_all(in->rx, RECEIVER_HOLD_SHARED);
    } else if (in->roll_held && in->n_roll + in->n_rows < in->o.roll_queue_max / 2) {
        in->roll_held = 0;
        receiver_release_all(in->rx, RECEIVER_HOLD_SHARED);
    }
}

/* Notes up to max committed records in the rollup engine, in one transaction. A record no
 * longer in the store was swept meanwhile: nothing to note. Any other failure leaves every
 * note queued for the next tick. */
static int ingest__note_some(ingest *in, size_t max, uint64_t deadline_ms)
{
    size_t n = in->n_roll < max ? in->n_roll : max;
    sqlite3_stmt *st =
        store_prepare(in->db, "SELECT body FROM records WHERE municipality=?2 AND id=?1");
    int failed = st == NULL || store_step_done(in->db, in->q[Q_BEGIN]) != 0;
    for (size_t i = 0; i < n && !failed; i++) {
        if (deadline_ms && i > 0 && i % 256 == 0 && clock_mono_ms() >= deadline_ms) {
            n = i; /* the rest waits for the next slice */
            break;
        }
        sqlite3_bind_blob(st, 1, in->roll_ids[i], 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, in->roll_mun[i]);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            failed = rollup_note_stored(
                         in->roll, in->roll_mun[i], in->roll_ids[i], sqlite3_column_blob(st, 0),
                         (size_t)sqlite3_column_bytes(st, 0), in->roll_fresh[i]) != 0;
        else if (step != SQLITE_DONE) {
            log_error("hub store: reading a record to roll up: %s", sqlite3_errmsg(in->db));
            failed = 1;
        }
        sqlite3_reset(st);
    }
    /* The months the notes touched move their versions, and states, in the same commit. */
    if (!failed)
        failed = reviews_note(in->rv) != 0;
    if (!failed && n == in->n_roll)
        failed = store_meta_set_int(in->db, "rollup_pending", 0) != 0;
    if (!failed)
        failed = store_step_done(in->db, in->q[Q_COMMIT]) != 0;
    if (failed && !sqlite3_get_autocommit(in->db))
        store_step_done(in->db, in->q[Q_ROLLBACK]);
    sqlite3_finalize(st);
    if (failed) {
        reviews_take_changes(in->rv); /* rolled back with the notes */
        return REINT_EDB;
    }
    if (reviews_take_changes(in->rv) > 0)
        ingest__push_all(in);
    memmove(in->roll_ids, in->roll_ids + n, (in->n_roll - n) * 16);
    memmove(in->roll_mun, in->roll_mun + n, (in->n_roll - n) * sizeof(uint32_t));
    memmove(in->roll_fresh, in->roll_fresh + n, in->n_roll - n);
    in->n_roll -= n;
    in->noted |= n > 0;
    ingest__trim(in);
    ingest__hold_check(in);
    return 0;
}

/* Every 100 ms: note a bounded slice of the committed records (a small one while nodes
 * send, so that their group commits come first), and once they are all noted, recompute a
 * slice of the dirty snapshots (rollup_daily: about 200 ms) at once, so that a clerk's
 * commit reaches the federal tier within a tick or two; with nothing noted, every
 * INGEST_REFRESH_MS (the day's dues), or at once while a previous slice left some. While no
 * node sends, the work conserves: each slice runs until its deadline and the next follows
 * after one turn of the loop, instead of at the next tick (or, for the refresh, after as
 * long again). */
static void ingest__on_roll(uv_timer_t *t)
{
    ingest *in = t->data;
    uint64_t now = uv_now(in->o.loop);
    int busy = now - in->last_commit_ms < 300;
    int rolled = 0, progress = 0;
    if (in->n_roll > 0) {
        rolled = 1;
        if (ingest__note_some(in, busy ? INGEST_NOTE_SLICE_BUSY : SIZE_MAX,
                              busy ? 0 : clock_mono_ms() + INGEST_NOTE_IDLE_MS) != 0)
            log_error("rollup notes failed; retrying at the next tick");
        else
            progress = 1;
    }
    rollup_set_eager(in->roll, !busy);
    if (in->n_roll == 0 &&
        (in->noted || rollup_more(in->roll) || now - in->last_refresh_ms >= INGEST_REFRESH_MS)) {
        rollup_stats st;
        in->last_refresh_ms = now;
        in->noted = 0;
        rolled = 1;
        /* The hub decides what is due (referrals, months) on Nepal's day. */
        if (rollup_daily(in->roll, clock_today_nepal(), &st) != 0)
            log_error("rollup refresh failed; its snapshots stay dirty for the next tick");
        else
            progress |= st.recomputed > 0;
    }
    if (rolled && in->o.on_rolled)
        in->o.on_rolled(in->o.ud);
    /* 1 ms, not 0: a timer restarted at 0 in its own callback would run again before the
     * loop polls for I/O. Only after a slice that did work: a failure (or a refresh still
     * waiting after one) is retried at the next tick, not every millisecond. */
    if (!busy && progress && (in->n_roll > 0 || rollup_more(in->roll)))
        uv_timer_start(&in->roll_timer, ingest__on_roll, 1, 100);
}

static void ingest__on_check(uv_check_t *h)
{
    ingest__flush(h->data);
}

/* Queues an item that acknowledges acked_seq and acked_version once the rows from row_begin
 * are committed. The caller advances the peer only after this succeeded. */
static int ingest__queue_item(ingest *in, receiver_peer *p, enum item_type type, size_t row_begin,
                              uint64_t acked_seq, uint64_t acked_version)
{
    if (testhook_fire("ingest_queue_nomem") ||
        sbuf_grow((void **)&in->items, &in->cap_items, in->n_items + 1, sizeof(pending_item)))
        return REINT_ENOMEM;
    pending_item *it = &in->items[in->n_items++];
    it->p = p;
    it->type = type;
    it->acked_seq = acked_seq;
    it->acked_version = acked_version;
    it->row_begin = row_begin;
    it->row_end = in->n_rows;
    receiver_peer_ref(p);
    return 0;
}

static int ingest__on_batch(ingest *in, receiver_peer *p, const Reint__V1__Batch *b)
{
    char why[200];
    uint32_t mun = receiver_peer_scope(p);
    hub_node *hn = receiver_peer_data(p);
    if (receiver_check_batch(p, b->first_seq, b->last_seq, b->seqs, b->n_seqs, b->n_records))
        return 1;
    /* The whole batch is refused when any record claims another municipality. */
    for (size_t i = 0; i < b->n_records; i++) {
        if (b->records[i]->municipality != mun) {
            snprintf(why, sizeof(why), "batch holds a record of municipality %u",
                     b->records[i]->municipality);
            receiver_security(p, why);
            return 1;
        }
    }
    for (size_t i = 0; i < b->n_dropped; i++) {
        const Reint__V1__Dropped *d = b->dropped[i];
        if (d->seq < b->first_seq || d->seq > b->last_seq) {
            receiver_protocol_error(p, "a dropped entry's sequence is outside its batch");
            return 1;
        }
    }
    /* A version from the future would win over every later correction: the whole batch is
     * refused (an error, not dead letters) until the node's clock is right. */
    for (size_t i = 0; i < b->n_records; i++) {
        if (receiver_too_far_ahead(p, b->records[i]->version)) {
            snprintf(why, sizeof(why), "record version %llu (sequence %llu)",
                     (unsigned long long)b->records[i]->version, (unsigned long long)b->seqs[i]);
            receiver_clock_ahead(p, why);
            return 1;
        }
    }
    /* What this batch adds to the pending rows and dead letters is taken back whole when it
     * fails: left there, it would be filed and acknowledged with the next item, another
     * municipality's perhaps. */
    size_t row_begin = in->n_rows, item = in->n_items, dead_begin = in->n_dead;
    size_t arena_begin = in->arena.len;
    uint64_t stored_begin = in->m.records_stored, refused_begin = in->m.records_refused;
    uint64_t dropped_begin = in->m.records_dropped;
    size_t budget = receiver_refusals_per_ack(p), refused = 0;
    uint64_t through = b->last_seq;
    int32_t today = clock_today_utc();
    uint64_t maxv = hn->acked_version;
    int v1 = receiver_peer_version(p) < 2;
    for (size_t i = 0; i < b->n_records; i++) {
        const Reint__V1__Record *r = b->records[i];
        record_error err;
        if (refused == budget) {
            /* No more refusals fit one ack: this batch is acknowledged up to here, the session
             * closed after that ack, and the node sends the rest again. */
            through = b->seqs[i] - 1;
            break;
        }
        record_upgraded up;
        if (r->version > maxv)
            maxv = r->version;
        /* A string that held a NUL reached here cut at it, and would validate as the
         * shorter value: the wire named it. A v1 node's days become month pairs here and are
         * never stored. Under v2 a record carrying a field the hub does not know is refused
         * alone (record_validate). */
        const char *cut = receiver_peer_bad_record(p, i);
        int bad = cut != NULL;
        if (cut) {
            err.field = cut;
            snprintf(err.reason, sizeof(err.reason), "holds a NUL or is not UTF-8");
        } else if (v1 && record_upgrade(r, RECORD_V1_DAYS, &up, &err) != 0)
            bad = 1;
        else if (v1)
            r = &up.rec;
        if (bad || record_validate(r, today, &err) != 0) {
            refused++;
            if (ingest__add_dead(in, item, 1, record_kind(r), r->id.len == 16 ? r->id.data : NULL,
                                 b->seqs[i], err.field, err.reason) != 0)
                goto nomem;
            in->m.records_refused++;
            continue;
        }
        size_t len = reint__v1__record__get_packed_size(r);
        uint8_t *body;
        if (sbuf_grow((void **)&in->rows, &in->cap_rows, in->n_rows + 1, sizeof(pending_row)) ||
            (body = sbuf_extend(&in->arena, len)) == NULL)
            goto nomem;
        pending_row *row = &in->rows[in->n_rows++];
        memcpy(row->id, r->id.data, 16);
        row->version = r->version;
        row->kind = record_kind(r);
        row->deleted = r->body_case == REINT__V1__RECORD__BODY_TOMBSTONE;
        row->off = (size_t)(body - (uint8_t *)in->arena.p);
        row->len = len;
        reint__v1__record__pack(r, body);
        in->m.records_stored++;
    }
    /* A batch cut above files the records the node dropped up to the cut: the node filed
     * them itself and resumes after it, so they are never sent again. */
    for (size_t i = 0; i < b->n_dropped; i++) {
        const Reint__V1__Dropped *d = b->dropped[i];
        if (d->seq > through)
            continue;
        /* Scrubbed here, not only in the refusal: snprintf would cut a character in two, and
         * the log line would carry a node's control characters. */
        char reason[sizeof(((receiver_refusal *)0)->reason)];
        utf8_scrub(reason, sizeof(reason),
                   d->reason && d->reason[0] ? d->reason : "too large for one frame");
        if (ingest__add_dead(in, item, 0, (int)d->kind, d->id.len == 16 ? d->id.data : NULL, d->seq,
                             "record", reason) != 0)
            goto nomem;
        in->m.records_dropped++;
        log_warn("municipality:%u could not send record at sequence %llu (%llu bytes): %s", mun,
                 (unsigned long long)d->seq, (unsigned long long)d->size, reason);
    }
    /* Queued first, the peer advanced after: a queue that cannot grow leaves the peer's
     * position and version where the last committed batch put them. */
    uint64_t position = receiver_peer_position(p);
    if (ingest__queue_item(in, p, ITEM_BATCH, row_begin, through > position ? through : position,
                           maxv) != 0)
        goto nomem;
    receiver_peer_advance(p, through);
    hn->acked_version = maxv;
    in->m.batches++;
    in->items[in->n_items - 1].cut = through != b->last_seq;
    if (through != b->last_seq) {
        /* Nothing after the cut is read: the session ends with that ack. */
        receiver_peer_hold(p, RECEIVER_HOLD_PEER);
        ingest__flush(in);
        return 0;
    }
    if (in->n_rows >= in->o.commit_rows)
        ingest__flush(in);
    else
        ingest__hold_check(in);
    return 0;
nomem:
    in->n_rows = row_begin;
    in->n_dead = dead_begin;
    in->arena.len = arena_begin;
    in->m.records_stored = stored_begin;
    in->m.records_refused = refused_begin;
    in->m.records_dropped = dropped_begin;
    return REINT_ENOMEM;
}

/* A node asked for directives it lacks (a gap another relay left, or a lost message): each
 * one this hub holds is sent again, at most INGEST_DIRECTIVES_PER_HELLO. */
static int ingest__directives_missing(ingest *in, receiver_peer *p, const uint64_t *missing,
                                      size_t n)
{
    size_t sent = 0;
    for (size_t i = 0; i < n && i < INGEST_DIRECTIVES_PER_HELLO; i++) {
        Reint__V1__SignedDirective **list = NULL;
        size_t got = 0;
        if (missing[i] == 0 || dirstore_load_after(in->db, missing[i] - 1, 1, &list, &got) != 0)
            continue;
        Reint__V1__Directive *d =
            got ? reint__v1__directive__unpack(NULL, list[0]->body.len, list[0]->body.data) : NULL;
        if (d && d->serial == missing[i]) {
            Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
            env.msg_case = REINT__V1__ENVELOPE__MSG_DIRECTIVE;
            env.directive = list[0];
            sent += receiver_send(p, &env) == 0;
        }
        reint__v1__directive__free_unpacked(d, NULL);
        dirstore_free_list(list, got);
    }
    log_info("municipality:%u asked for %zu missing directive%s; %zu sent", receiver_peer_scope(p),
             n, n == 1 ? "" : "s", sent);
    return 0;
}

static int ingest__directive_acked(ingest *in, receiver_peer *p, uint64_t serial)
{
    if (serial == 0)
        return 0;
    sqlite3_stmt *st = store_prepare(
        in->db, "INSERT INTO node_directives(municipality, serial) SELECT ?1, ?2"
                " WHERE ?2 <= (SELECT coalesce(max(serial), 0) FROM directives)"
                " ON CONFLICT(municipality) DO UPDATE SET serial=max(serial, excluded.serial)");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, receiver_peer_scope(p));
    sqlite3_bind_int64(st, 2, (int64_t)serial);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : REINT_EDB;
    sqlite3_finalize(st);
    return rc;
}

static void ingest__relay(receiver_peer *p, void *arg)
{
    receiver_send(p, arg);
}

/* Sends the node its municipality's next changes of the review log (one Reviews message at a
 * time: the next goes when it acknowledges this one). */
static void ingest__push_reviews(ingest *in, receiver_peer *p)
{
    hub_node *hn = receiver_peer_data(p);
    if (hn == NULL || !hn->reviews || hn->reviews_inflight || receiver_peer_dead(p) ||
        !receiver_peer_session(p))
        return;
    Reint__V1__Reviews *r = NULL;
    size_t room = receiver_peer_max_frame(p) > 256 ? receiver_peer_max_frame(p) - 128 : 128;
    if (reviews_load(in->db, receiver_peer_scope(p), hn->reviews_sent, room, &r) != 0) {
        log_error("municipality:%u: review changes not sent (store error); sent again at its "
                  "next session",
                  receiver_peer_scope(p));
        return;
    }
    if (r->n_reviews > 0) {
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        env.msg_case = REINT__V1__ENVELOPE__MSG_REVIEWS;
        env.reviews = r;
        if (receiver_send(p, &env) == 0) {
            hn->reviews_sent = r->reviews[r->n_reviews - 1]->clock;
            hn->reviews_inflight = 1;
        }
    }
    reviews_free(r);
}

static void ingest__push_each(receiver_peer *p, void *arg)
{
    ingest__push_reviews(arg, p);
}

/* New changes were logged: every node session takes its municipality's. */
static void ingest__push_all(ingest *in)
{
    receiver_each_session(in->rx, ingest__push_each, in);
}

/* A node stored the changes it was sent through clock `through`. */
static int ingest__review_acked(ingest *in, receiver_peer *p, uint64_t through)
{
    hub_node *hn = receiver_peer_data(p);
    if (hn == NULL || !hn->reviews || !hn->reviews_inflight || through != hn->reviews_sent) {
        receiver_protocol_error(p, "ReviewAck for changes this session did not send");
        return 1;
    }
    hn->reviews_inflight = 0;
    if (reviews_node_acked(in->rv, receiver_peer_scope(p), through) != 0)
        log_warn("municipality:%u: its acknowledgement of review changes was not recorded",
                 receiver_peer_scope(p));
    ingest__push_reviews(in, p);
    return 0;
}

int ingest_directive(ingest *in, const Reint__V1__SignedDirective *sd, uint64_t *serial, char *err,
                     size_t errlen)
{
    int fresh = 0;
    int rc = dirstore_receive(in->db, in->o.directive_keys, sd, serial, &fresh, err, errlen);
    if (rc == REINT_EDB) {
        log_error("directive not stored: %s", err);
        return rc;
    }
    if (rc != 0) {
        in->m.security_events++;
        log_security("directive refused: %s", err);
        return rc;
    }
    if (!fresh)
        return 0; /* relayed again after a lost ack: acknowledge, change nothing */
    log_info("directive %llu stored; relaying to connected nodes", (unsigned long long)*serial);
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    env.msg_case = REINT__V1__ENVELOPE__MSG_DIRECTIVE;
    env.directive = (Reint__V1__SignedDirective *)sd;
    receiver_each_session(in->rx, ingest__relay, &env);
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

uint64_t ingest_coverage_generation(const ingest *in)
{
    return in->coverage_gen;
}

/* The node's row in nodes for this Hello: a new incarnation restarts its position and asks
 * for a full resend. Fills *known, *resend and the positions. */
static int ingest__position(ingest *in, receiver_peer *p, hub_node *hn, uint64_t *acked_seq,
                            int *resend, int *known, int *calendar, uint8_t cur[16], int *had)
{
    uint32_t mun = receiver_peer_scope(p);
    sqlite3_stmt *st = store_prepare(
        in->db, "SELECT incarnation, acked_seq, acked_version, resend_pending, calendar,"
                " (SELECT count(*) FROM dead_letters d WHERE d.municipality=nodes.municipality)"
                " FROM nodes WHERE municipality=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, mun);
    int step = sqlite3_step(st);
    *known = 0;
    *resend = 0;
    *calendar = -1;
    *acked_seq = 0;
    hn->acked_version = 0;
    *had = 0;
    if (step == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
        *had = 1;
        memcpy(cur, sqlite3_column_blob(st, 0), 16);
        *known = memcmp(cur, receiver_peer_incarnation(p), 16) == 0;
        *acked_seq = (uint64_t)sqlite3_column_int64(st, 1);
        hn->acked_version = (uint64_t)sqlite3_column_int64(st, 2);
        *resend = sqlite3_column_int(st, 3);
        *calendar = sqlite3_column_int(st, 4);
        hn->dead_letters = sqlite3_column_int64(st, 5);
    } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_error("hub store: %s", sqlite3_errmsg(in->db));
        sqlite3_finalize(st);
        return REINT_EDB;
    }
    sqlite3_finalize(st);
    return 0;
}

static int ingest__exec_bound(ingest *in, const char *sql, uint32_t mun, const uint8_t *inc,
                              int64_t now, int calendar)
{
    sqlite3_stmt *st = store_prepare(in->db, sql);
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_blob(st, 2, inc, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int(st, 4, calendar);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : REINT_EDB;
    if (rc != 0)
        log_error("hub store: %s", sqlite3_errmsg(in->db));
    sqlite3_finalize(st);
    return rc;
}

/* A committed record put back by an undone sweep: noted by the rollups like a stored one
 * (the first one in a transaction also marks the notes pending, as every ingest commit does). */
static int ingest__restored(void *ud, uint32_t municipality, const uint8_t id[16])
{
    ingest *in = ud;
    if (ingest__grow_notes(in, in->n_roll + 1) != 0)
        return REINT_ENOMEM;
    if (!in->restoring) {
        in->restoring = 1;
        if (store_meta_set_int(in->db, "rollup_pending", 1) != 0)
            return REINT_EDB;
    }
    memcpy(in->roll_ids[in->n_roll], id, 16);
    in->roll_fresh[in->n_roll] = 0; /* not known to be new to the shadow: look */
    in->roll_mun[in->n_roll++] = municipality;
    return 0;
}

/* A Hello from a store incarnation other than the one held: a new store is asked for a full
 * resend (its ResendComplete then sets the older records aside, sweeps.h); the incarnation a
 * sweep displaced gets its records back and resumes where it was. One transaction. */
static int ingest__new_incarnation(ingest *in, receiver_peer *p, hub_node *hn, const uint8_t *cur,
                                   uint64_t *acked_seq, int *resend, int64_t now, int announced)
{
    uint32_t mun = receiver_peer_scope(p);
    const uint8_t *inc = receiver_peer_incarnation(p);
    sweeps_peer sp = {mun, inc, receiver_peer_serial(p), receiver_peer_addr(p)};
    uint64_t seq = 0, version = 0;
    int returned = 0;
    size_t roll_before = in->n_roll;
    if (store_step_done(in->db, in->q[Q_BEGIN]) != 0)
        return REINT_EDB;
    in->restoring = 0;
    int rc = sweeps_hello(in->db, &sp, cur, *acked_seq, hn->acked_version, now, ingest__restored,
                          in, &seq, &version, &returned);
    if (rc == SWEEPS_RETURN) {
        *acked_seq = seq;
        hn->acked_version = version;
        *resend = 0;
        rc = ingest__exec_bound(in,
                                "UPDATE nodes SET incarnation=?2, acked_seq=0, acked_version=0,"
                                " resend_pending=0, last_hello_ms=?3, calendar=?4"
                                " WHERE municipality=?1",
                                mun, inc, now, announced);
        if (rc == 0) {
            sqlite3_stmt *st = in->q[Q_NODE_ACK];
            sqlite3_bind_int64(st, 1, mun);
            sqlite3_bind_int64(st, 2, (int64_t)seq);
            sqlite3_bind_int64(st, 3, (int64_t)version);
            sqlite3_bind_int64(st, 4, now);
            sqlite3_bind_blob(st, 5, inc, 16, SQLITE_STATIC);
            rc = store_step_done(in->db, st);
        }
    } else if (rc == SWEEPS_FRESH) {
        /* A new store: take its whole outbox, then set aside what older incarnations left. */
        *acked_seq = hn->acked_version = 0;
        *resend = 1;
        log_info("municipality:%u presents a new store incarnation; asking for a full resend", mun);
        rc = ingest__exec_bound(
            in,
            "INSERT INTO nodes(municipality, incarnation, acked_seq, acked_version,"
            " resend_pending, first_seen_ms, last_hello_ms, calendar)"
            " VALUES(?1,?2,0,0,1,?3,?3,?4) ON CONFLICT(municipality) DO UPDATE SET"
            " incarnation=excluded.incarnation, acked_seq=0, acked_version=0, resend_pending=1,"
            " last_hello_ms=excluded.last_hello_ms, calendar=excluded.calendar",
            mun, inc, now, announced);
        /* A new store holds no directives yet: offer every one again. */
        if (rc == 0)
            rc = ingest__exec_bound(in, "DELETE FROM node_directives WHERE municipality=?1", mun,
                                    inc, now, 0);
    }
    if (rc == 0)
        rc = store_step_done(in->db, in->q[Q_COMMIT]);
    if (rc != 0) {
        if (!sqlite3_get_autocommit(in->db))
            store_step_done(in->db, in->q[Q_ROLLBACK]);
        in->n_roll = roll_before; /* nothing was restored */
        return rc < 0 ? rc : REINT_EDB;
    }
    if (returned)
        in->m.incarnation_returns++;
    if (in->n_roll > roll_before) {
        in->m.sweeps_undone++;
        in->coverage_gen++;
        ingest__hold_check(in);
    }
    return 0;
}

static int ingest__hello(void *ud, receiver_peer *p, const Reint__V1__Hello *h)
{
    ingest *in = ud;
    uint32_t mun = receiver_peer_scope(p);
    const uint8_t *inc = receiver_peer_incarnation(p);
    hub_node *hn = calloc(1, sizeof(*hn));
    if (hn == NULL)
        return REINT_ENOMEM;
    receiver_peer_set_data(p, hn);
    /* Pending work of any session must be durable before positions are read. */
    ingest__flush(in);
    uint64_t acked_seq = 0;
    uint8_t cur[16];
    int known, resend, calendar, had;
    int rc = ingest__position(in, p, hn, &acked_seq, &resend, &known, &calendar, cur, &had);
    if (rc != 0)
        return rc;
    int64_t now = (int64_t)clock_now_ms();
    /* A v1 node does not say its calendar: what the hub knew stays (unknown counts as BS). */
    int announced = h->protocol_version >= 2 ? (int)h->calendar : (calendar < 0 ? 0 : calendar);
    if (!known) {
        rc = ingest__new_incarnation(in, p, hn, had ? cur : NULL, &acked_seq, &resend, now,
                                     announced);
    } else {
        rc = ingest__exec_bound(in,
                                "UPDATE nodes SET last_hello_ms=?3, calendar=?4"
                                " WHERE municipality=?1 AND incarnation=?2",
                                mun, inc, now, announced);
    }
    if (rc != 0)
        return rc;
    if (announced != calendar) {
        /* Completeness is judged in the calendar the node closes months in. */
        if (calendar >= 0)
            log_info("municipality:%u now closes months in %s", mun,
                     announced == REINT__V1__CALENDAR__CALENDAR_AD ? "AD" : "BS");
        if (rollup_mark(in->roll, mun) != 0)
            return REINT_EDB;
        in->coverage_gen++;
    }
    Reint__V1__HelloReply r = REINT__V1__HELLO_REPLY__INIT;
    r.acked_seq = acked_seq;
    r.acked_version = hn->acked_version;
    r.resend_requested = resend != 0;
    /* A node that keeps decisions says how far it holds its municipality's changes: it gets
     * those above, and this hub's clock moves past what it holds (a rebuilt hub's new changes
     * must sort after the old ones). */
    if (h->protocol_version >= 2 && h->reviews) {
        hn->reviews = 1;
        hn->reviews_sent = h->reviews_through;
        if (receiver_too_far_ahead(p, h->reviews_through))
            log_warn("municipality:%u holds review changes up to clock %llu, ahead of this "
                     "hub's clock; not adopted",
                     mun, (unsigned long long)h->reviews_through);
        else
            reviews_observe(in->rv, h->reviews_through);
        if (reviews_last_clock(in->db, mun, &r.reviews_through) != 0)
            return REINT_EDB;
    }
    uint64_t after = 0;
    sqlite3_stmt *st =
        store_prepare(in->db, "SELECT serial FROM node_directives WHERE municipality=?1");
    if (st) {
        sqlite3_bind_int64(st, 1, mun);
        if (sqlite3_step(st) == SQLITE_ROW)
            after = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (dirstore_load_after(in->db, after, INGEST_DIRECTIVES_PER_HELLO, &r.directives,
                            &r.n_directives) != 0)
        log_warn("municipality:%u: directives not offered in this HelloReply (store error)", mun);
    log_info("municipality:%u session from %s (protocol %u): holds through %llu, node has %llu",
             mun, receiver_peer_addr(p), h->protocol_version, (unsigned long long)acked_seq,
             (unsigned long long)h->last_seq);
    /* receiver_welcome offers fewer directives if the reply does not fit the node's frames
     * (the rest come with a later Hello, once these are acknowledged). */
    size_t offered = r.n_directives;
    rc = receiver_welcome(p, &r);
    dirstore_free_list(r.directives, offered);
    if (rc == REINT_ETOOBIG)
        receiver_internal_error(p, "the HelloReply does not fit the node's frame limit");
    if (rc == 0)
        ingest__push_reviews(in, p);
    return 0; /* a failed send has closed the peer already */
}

static int ingest__message(void *ud, receiver_peer *p, const Reint__V1__Envelope *env)
{
    ingest *in = ud;
    switch (env->msg_case) {
    case REINT__V1__ENVELOPE__MSG_BATCH:
        return ingest__on_batch(in, p, env->batch);
    case REINT__V1__ENVELOPE__MSG_RESEND_COMPLETE:
        if (env->resend_complete->incarnation.len != 16 ||
            memcmp(env->resend_complete->incarnation.data, receiver_peer_incarnation(p), 16) != 0) {
            receiver_protocol_error(p, "ResendComplete for another incarnation");
            return 1;
        }
        return ingest__queue_item(in, p, ITEM_RESEND_COMPLETE, in->n_rows,
                                  receiver_peer_position(p),
                                  ((hub_node *)receiver_peer_data(p))->acked_version);
    case REINT__V1__ENVELOPE__MSG_DIRECTIVE_ACK:
        if (env->directive_ack->n_missing)
            ingest__directives_missing(in, p, env->directive_ack->missing,
                                       env->directive_ack->n_missing);
        return ingest__directive_acked(in, p, env->directive_ack->serial);
    case REINT__V1__ENVELOPE__MSG_REVIEW_ACK:
        return ingest__review_acked(in, p, env->review_ack->through);
    default:
        receiver_protocol_error(p, "unexpected message (a node sends Hello, Batch, "
                                   "ResendComplete, DirectiveAck and ReviewAck)");
        return 1;
    }
}

static int ingest__identify(void *ud, const char *identity, uint32_t *scope, char *why,
                            size_t whylen)
{
    ingest *in = ud;
    unsigned long code = 0;
    char *end = NULL;
    if (strncmp(identity, "municipality:", 13) == 0)
        code = strtoul(identity + 13, &end, 10);
    const geo_local_level *g = code && code <= UINT32_MAX ? geo_find((uint32_t)code) : NULL;
    if (g == NULL || end == NULL || *end != '\0') {
        snprintf(why, whylen, "certificate does not name a known municipality");
        return REINT_EFORBIDDEN;
    }
    if (g->province != in->o.province) {
        snprintf(why, whylen, "municipality %lu (%s) is in province %u, not %u", code, g->name,
                 g->province, in->o.province);
        return REINT_EFORBIDDEN;
    }
    *scope = (uint32_t)code;
    return 0;
}

static void ingest__release(void *ud, receiver_peer *p)
{
    (void)ud;
    free(receiver_peer_data(p));
}

int ingest_start(ingest **out, const ingest_opts *opts, char *err, size_t errlen)
{
    ingest *in = calloc(1, sizeof(*in));
    if (in == NULL)
        return REINT_ENOMEM;
    in->o = *opts;
    if (in->o.commit_rows == 0)
        in->o.commit_rows = 50000;
    if (in->o.roll_queue_max == 0)
        in->o.roll_queue_max = INGEST_ROLL_QUEUE_DEFAULT;
    sbuf_init(&in->arena, (size_t)1 << 31);
    if (hubstore_open(&in->store, opts->db_path, err, errlen) != 0)
        goto fail;
    in->db = in->store.db;
    if (hubstore_set_cache(&in->store, in->o.cache_mib ? in->o.cache_mib : 256) != 0) {
        snprintf(err, errlen, "%s: cannot set the page cache", opts->db_path);
        goto fail;
    }
    if (sweeps_init(in->db) != 0) {
        snprintf(err, errlen, "%s: cannot create the sweeps tables", opts->db_path);
        goto fail;
    }
    if (dirstore_open(in->db) != 0) {
        snprintf(err, errlen, "%s: cannot create the directives table", opts->db_path);
        goto fail;
    }
    for (int i = 0; i < Q_N; i++) {
        if ((in->q[i] = store_prepare(in->db, ingest__sql[i])) == NULL) {
            snprintf(err, errlen, "%s: %s", opts->db_path, sqlite3_errmsg(in->db));
            goto fail;
        }
    }
    if (rollup_open(&in->roll, in->db, err, errlen) != 0)
        goto fail;
    if (reviews_open(&in->rv, in->db, in->roll, err, errlen) != 0)
        goto fail;
    int64_t pending = 0;
    if (store_meta_get_int_or(in->db, "rollup_pending", 0, &pending) != 0) {
        snprintf(err, errlen, "%s: cannot read the store's metadata", opts->db_path);
        goto fail;
    }
    if (pending) {
        log_warn("records were committed but not rolled up before the last stop; rebuilding "
                 "the rollups from the records");
        /* The months of the records not noted move their review versions in the same
         * transaction as the rebuild. */
        if (store_step_done(in->db, in->q[Q_BEGIN]) != 0 || rollup_full(in->roll, NULL) != 0 ||
            reviews_note(in->rv) != 0 || store_meta_set_int(in->db, "rollup_pending", 0) != 0 ||
            store_step_done(in->db, in->q[Q_COMMIT]) != 0) {
            if (!sqlite3_get_autocommit(in->db))
                store_step_done(in->db, in->q[Q_ROLLBACK]);
            snprintf(err, errlen, "%s: cannot rebuild the rollups", opts->db_path);
            goto fail;
        }
        reviews_take_changes(in->rv);
    }
    receiver_opts ro = {.loop = opts->loop,
                        .tls = opts->tls,
                        .listen = opts->listen,
                        .max_frame = opts->max_frame,
                        .what = "node",
                        .self = "hub",
                        .ops = {.identify = ingest__identify,
                                .hello = ingest__hello,
                                .message = ingest__message,
                                .release = ingest__release},
                        .ud = in};
    int rc = receiver_start(&in->rx, &ro, err, errlen);
    if (rc != 0)
        goto fail;
    uv_check_init(opts->loop, &in->check);
    in->check.data = in;
    in->handles_open++;
    uv_check_start(&in->check, ingest__on_check);
    uv_unref((uv_handle_t *)&in->check);
    uv_timer_init(opts->loop, &in->roll_timer);
    in->roll_timer.data = in;
    in->handles_open++;
    uv_timer_start(&in->roll_timer, ingest__on_roll, 100, 100);
    uv_unref((uv_handle_t *)&in->roll_timer);
    *out = in;
    return 0;
fail:
    for (int i = 0; i < Q_N; i++)
        sqlite3_finalize(in->q[i]);
    reviews_close(in->rv);
    rollup_close(in->roll);
    hubstore_close(&in->store);
    sbuf_free(&in->arena);
    free(in);
    return REINT_EINVAL;
}

int ingest_port(const ingest *in)
{
    return receiver_port(in->rx);
}

static void ingest__on_handle_close(uv_handle_t *h)
{
    ingest *in = h->data;
    if (--in->handles_open > 0)
        return;
    for (int i = 0; i < Q_N; i++)
        sqlite3_finalize(in->q[i]);
    reviews_close(in->rv);
    rollup_close(in->roll);
    hubstore_close(&in->store);
    free(in->items);
    free(in->rows);
    free(in->dead);
    sbuf_free(&in->arena);
    free(in->roll_ids);
    free(in->roll_mun);
    free(in->roll_fresh);
    free(in);
}

void ingest_stop(ingest *in)
{
    if (in == NULL || in->stopping)
        return;
    in->stopping = 1;
    ingest__flush(in);
    receiver_stop(in->rx);
    uv_close((uv_handle_t *)&in->check, ingest__on_handle_close);
    uv_close((uv_handle_t *)&in->roll_timer, ingest__on_handle_close);
}

void ingest_get_metrics(const ingest *in, ingest_metrics *m)
{
    *m = in->m;
    receiver_get_metrics(in->rx, &m->rx);
    m->security_events += m->rx.security_events;
    m->roll_queue = in->n_roll;
    int64_t gaps = 0;
    if (dirstore_gap_count(in->db, &gaps) == 0)
        m->directive_gaps = gaps;
    (void)gaps_node_counts(in->db, &m->nodes_silent, &m->nodes_offline);
    sweeps_counts sc;
    if (sweeps_count(in->db, &sc) == 0) {
        m->sweeps_pending = sc.pending;
        m->swept_kept = sc.kept_records;
    }
    m->roll_queue_max = in->o.roll_queue_max;
    store_durability(in->db, &m->store_synchronous, &m->store_wal);
    walckpt_get_stats(in->store.ckpt, &m->ckpt);
}

/* A restored record of an admin's undo: as at a Hello, then the same bookkeeping. */
int ingest_sweep_decide(ingest *in, int64_t id, int undo, const char *who, uint32_t *municipality)
{
    ingest__flush(in); /* the sweep's transaction must not hold a group commit's rows */
    size_t roll_before = in->n_roll;
    in->restoring = 0;
    int64_t now = (int64_t)clock_now_ms();
    int rc = undo ? sweeps_undo(in->db, id, who, now, ingest__restored, in, municipality)
                  : sweeps_confirm(in->db, id, who, now, municipality);
    if (rc != 0) {
        in->n_roll = roll_before;
        return rc;
    }
    if (undo) {
        in->m.sweeps_undone++;
        in->coverage_gen++;
    }
    ingest__hold_check(in);
    return 0;
}

struct reviews *ingest_reviews(ingest *in)
{
    return in->rv;
}

/* The calendar municipality closes months in: 1 BS (also for a node that did not say), 0 AD;
 * -1 when it is not enrolled. */
static int ingest__calendar_bs(ingest *in, uint32_t municipality, int *bs)
{
    sqlite3_stmt *st = store_prepare(in->db, "SELECT calendar FROM nodes WHERE municipality=?1");
    if (st == NULL)
        return REINT_EDB;
    sqlite3_bind_int64(st, 1, municipality);
    int step = sqlite3_step(st);
    *bs = step == SQLITE_ROW ? sqlite3_column_int(st, 0) != REINT__V1__CALENDAR__CALENDAR_AD : -1;
    sqlite3_finalize(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : REINT_EDB;
}

/* The node of municipality, when it has a session: pushes it its changes. */
typedef struct ingest__push_one {
    ingest *in;
    uint32_t municipality;
} ingest__push_one;

static void ingest__push_if(receiver_peer *p, void *arg)
{
    ingest__push_one *o = arg;
    if (receiver_peer_scope(p) == o->municipality)
        ingest__push_reviews(o->in, p);
}

int ingest_review_decide(ingest *in, uint32_t municipality, int bs, int32_t ym, int approve,
                         const reviews_seen *seen, const char *who, const char *comment,
                         const haudit_row *audit, reviews_month *out)
{
    int own_bs = -1;
    /* The decision's transaction must not hold a group commit's rows. */
    ingest__flush(in);
    int rc = ingest__calendar_bs(in, municipality, &own_bs);
    if (rc != 0)
        return rc;
    if (own_bs >= 0 && own_bs != (bs != 0)) {
        memset(out, 0, sizeof(*out));
        out->municipality = municipality;
        out->bs = own_bs;
        return REINT_ERANGE;
    }
    if (store_step_done(in->db, in->q[Q_BEGIN]) != 0)
        return REINT_EDB;
    rc = reviews_decide(in->rv, municipality, bs, ym, approve, seen, who, comment, out);
    if (rc == 0 && audit)
        rc = haudit_insert(in->db, audit, 1);
    if (rc == 0 && store_step_done(in->db, in->q[Q_COMMIT]) != 0)
        rc = REINT_EDB;
    if (rc != 0) {
        if (!sqlite3_get_autocommit(in->db))
            store_step_done(in->db, in->q[Q_ROLLBACK]);
        reviews_take_changes(in->rv);
        return rc;
    }
    reviews_take_changes(in->rv);
    /* A test fault stands for a crash between the decision's commit and anything sent: the
     * node and the federal tier get it from the log at their next session. */
    if (testhook_fire("review_decided_kill")) {
        log_warn("test fault review_decided_kill: killed after committing a decision");
        raise(SIGKILL);
    }
    ingest__push_one o = {in, municipality};
    receiver_each_session(in->rx, ingest__push_if, &o);
    if (in->o.on_rolled)
        in->o.on_rolled(in->o.ud); /* the uplink takes the change to the federal tier */
    return 0;
}

int ingest_reviews_recovered(ingest *in, const Reint__V1__Reviews *r, char *why, size_t whylen)
{
    ingest__flush(in);
    if (store_step_done(in->db, in->q[Q_BEGIN]) != 0)
        return REINT_EDB;
    int rc = reviews_recover(in->rv, r, in->o.province, why, whylen);
    if (rc == 0 && store_step_done(in->db, in->q[Q_COMMIT]) != 0)
        rc = REINT_EDB;
    if (rc != 0) {
        if (!sqlite3_get_autocommit(in->db))
            store_step_done(in->db, in->q[Q_ROLLBACK]);
        reviews_take_changes(in->rv);
        return rc;
    }
    /* Recovered changes below a node's position are not sent again; states they moved are. */
    reviews_take_changes(in->rv);
    ingest__push_all(in);
    return 0;
}
