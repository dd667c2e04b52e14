#include "fingest.h"

#include "clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "freviews.h"
#include "geo.h"
#include "hex.h"
#include "hlc.h"
#include "log.h"
#include "testhook.h"
#include "hex.h"
#include "period.h"
#include "receiver.h"
#include "sbuf.h"

#define FINGEST_KEY_MAX    40
#define FINGEST_MAX_ARG    (256u * 1024 * 1024)
#define FINGEST_PAUSE_JOBS 4
/* A batch that arrives while its connection's previous job is being committed joins the job
 * queued behind it, up to this many snapshots (see fingest__on_batch). */
#define FINGEST_MERGE_SNAPSHOTS 2000
#define FINGEST_DIR_PAGE        64
#define FINGEST_DIR_POLL_MS     5000
/* A snapshot split into parts is assembled here up to this many packed bytes. */
#define FINGEST_PARTS_MAX (64u << 20)
/* The largest value of a cell (its numerator, denominator, contributors, top contributions). */
#define FINGEST_VALUE_MAX ((int64_t)((UINT64_C(1) << 53) - 1))

enum {
    A_MUNI,
    A_PERIOD,
    A_KIND,
    A_REV,
    A_SNAP,
    A_IND,
    A_GRP,
    A_KEY,
    A_NUM,
    A_DEN,
    A_CK,
    A_CON,
    A_NK,
    A_T1,
    A_T2,
    A_N
};

static const char *fingest__sql =
    "SELECT fed_ingest_batch($1::smallint, $2::bytea, $3::bigint, $4::integer[], $5::text[],"
    " $6::smallint[], $7::bigint[], $8::integer[], $9::text[], $10::text[], $11::text[],"
    " $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[],"
    " $18::bigint[])";

typedef struct fconn fconn;

/* One hub batch of a job: acknowledged on its own, with its own refusals. */
typedef struct fseg {
    uint64_t last_seq;
    size_t refusals_end; /* the batch's refusals end here in the job's list */
} fseg;

/* One call of fed_ingest_batch: one hub batch, or several consecutive ones. */
typedef struct fjob {
    struct fjob *next;
    fconn *c;
    uint64_t first_seq, last_seq;
    size_t n_snapshots, n_cells, n_refusals, cap_refusals;
    receiver_refusal *refusals;
    fseg *segs;
    size_t n_segs, cap_segs;
    sbuf a[A_N];
} fjob;

/* The federal state of one hub session (receiver_peer_data of its peer). */
struct fconn {
    fingest *fi;
    receiver_peer *p;
    fconn *next; /* in fi->conns while the peer lives */
    int province;
    int hello_pending; /* the Hello's position is being read */
    fjob *head, *tail; /* head is in flight when inflight */
    int inflight;
    size_t n_jobs;
    uint64_t dir_sent;       /* highest directive serial sent in this session (or acked) */
    int dir_busy, dir_again; /* a page of directives is being read; read again after it */
    /* A snapshot arriving in parts: the packed parts so far (concatenated, they are one
     * RollupSnapshot by protobuf's merge rule), its sequence and the next part expected. */
    sbuf parts;
    uint64_t parts_seq, parts_revision;
    uint32_t parts_next, parts_total, parts_municipality;
};

struct fingest {
    fingest_opts o;
    receiver *rx;
    fconn *conns;
    int stopping, live;
    uv_timer_t dir_timer;
    int dir_poll_busy;
    fingest_metrics m;
};

/* The ingest lives while its directive timer is open, a poll is in flight or a hub session's
 * state exists: live counts them. */
static void fingest__release(fingest *fi)
{
    if (--fi->live == 0)
        free(fi);
}

static int fingest__dead(const fconn *c)
{
    return receiver_peer_dead(c->p);
}

/* The PostgreSQL bytea literal of a hub's incarnation. */
static void fingest__incarnation(const fconn *c, char out[36])
{
    memcpy(out, "\\x", 2);
    hex_encode(receiver_peer_incarnation(c->p), 16, out + 2);
}

static void fingest__job_free(fjob *j)
{
    for (int i = 0; i < A_N; i++)
        sbuf_free(&j->a[i]);
    free(j->refusals);
    free(j->segs);
    free(j);
}

static int fingest__refuse(fjob *j, uint64_t seq, const char *field, const char *reason)
{
    if (sbuf_grow((void **)&j->refusals, &j->cap_refusals, j->n_refusals + 1,
                  sizeof(receiver_refusal)) != 0)
        return REINT_ENOMEM;
    receiver_refusal *f = &j->refusals[j->n_refusals++];
    memset(f, 0, sizeof(*f));
    f->seq = seq;
    receiver_refusal_set(f, field, reason);
    return 0;
}

static int fingest__key_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FINGEST_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-'))
            return 0;
    }
    return 1;
}

static int fingest__dims(const char *grouping)
{
    if (grouping[0] == '\0')
        return 0;
    return strchr(grouping, ',') ? 2 : 1;
}

typedef struct fcellref {
    const Reint__V1__RollupCell *cell;
    char key[2 * FINGEST_KEY_MAX + 2];
} fcellref;

static int fingest__cell_cmp(const void *a, const void *b)
{
    const fcellref *x = a, *y = b;
    int r = strcmp(x->cell->indicator, y->cell->indicator);
    if (r == 0)
        r = strcmp(x->cell->grouping, y->cell->grouping);
    return r ? r : strcmp(x->key, y->key);
}

/* Validates one snapshot; on success appends it to the job's arrays. Returns 0 when
 * stored, 1 when refused (a refusal added), -1 when out of memory. */
/* Appends one element to a text-format array parameter (its "{" is already there). A batch
 * of 2,000 snapshots is about a million elements: no printf here. */
static void fingest__int(sbuf *a, int lead, int64_t v)
{
    if (!lead)
        sbuf_add(a, ",", 1);
    sbuf_i64(a, v);
}

static void fingest__str(sbuf *a, int lead, const char *s)
{
    sbuf_add(a, lead ? "\"" : ",\"", lead ? 1 : 2);
    sbuf_puts(a, s);
    sbuf_add(a, "\"", 1);
}

static int fingest__snapshot(fingest *fi, fjob *j, const Reint__V1__RollupSnapshot *s, size_t index,
                             uint64_t seq)
{
    char field[64], why[200];
    enum period_kind kind;
    int32_t first, last;
    fcellref *refs = NULL;
    size_t bad_cell = SIZE_MAX;
    int rc = 1;
    if (strlen(s->period) >= PERIOD_MAX || period_parse(s->period, &kind, &first, &last) != 0) {
        snprintf(field, sizeof(field), "snapshots[%zu].period", index);
        snprintf(why, sizeof(why), "municipality %u: period \"%.20s\" is not a period",
                 s->municipality, s->period);
        goto refuse;
    }
    if (s->revision == 0 || s->revision > (uint64_t)INT64_MAX) {
        snprintf(field, sizeof(field), "snapshots[%zu].revision", index);
        snprintf(why, sizeof(why), "municipality %u period %s: revision must be 1..2^63-1",
                 s->municipality, s->period);
        goto refuse;
    }
    if (s->n_cells > fi->o.max_cells) {
        snprintf(field, sizeof(field), "snapshots[%zu].cells", index);
        snprintf(why, sizeof(why), "municipality %u period %s: %zu cells, more than %zu",
                 s->municipality, s->period, s->n_cells, fi->o.max_cells);
        goto refuse;
    }
    /* Test hook: a snapshot refused, as one of a catalogue this tier does not know is. */
    if (testhook_fire("ingest_refuse_snapshot")) {
        snprintf(field, sizeof(field), "snapshots[%zu]", index);
        snprintf(why, sizeof(why), "municipality %u period %s: refused by a test fault",
                 s->municipality, s->period);
        goto refuse;
    }
    refs = s->n_cells ? calloc(s->n_cells, sizeof(*refs)) : NULL;
    if (s->n_cells && refs == NULL)
        return -1;
    size_t kept = 0;
    for (size_t i = 0; i < s->n_cells; i++) {
        const Reint__V1__RollupCell *cell = s->cells[i];
        const catalogue_indicator *ind = catalogue_find(cell->indicator);
        char norm[64];
        bad_cell = i; /* the field of a refusal below, formatted there */
        if (ind == NULL) {
            snprintf(why, sizeof(why),
                     "municipality %u period %s: indicator \"%.64s\" is not "
                     "in the catalogue",
                     s->municipality, s->period, cell->indicator);
            goto refuse;
        }
        if (strlen(cell->grouping) >= sizeof(norm) ||
            !catalogue_grouping(ind, cell->grouping, norm, sizeof(norm)) ||
            strcmp(norm, cell->grouping) != 0) {
            snprintf(why, sizeof(why),
                     "municipality %u period %s: grouping \"%.64s\" is not a "
                     "declared grouping of %s in normal order",
                     s->municipality, s->period, cell->grouping, ind->code);
            goto refuse;
        }
        if (cell->n_key != (size_t)fingest__dims(cell->grouping)) {
            snprintf(why, sizeof(why),
                     "municipality %u period %s: %s by \"%s\" needs %d key "
                     "values, not %zu",
                     s->municipality, s->period, ind->code, cell->grouping,
                     fingest__dims(cell->grouping), cell->n_key);
            goto refuse;
        }
        refs[kept].cell = cell;
        for (size_t k = 0; k < cell->n_key; k++) {
            if (!fingest__key_ok(cell->key[k])) {
                snprintf(why, sizeof(why),
                         "municipality %u period %s: key value %zu is empty, "
                         "longer than %d or not A-Z a-z 0-9 _ + -",
                         s->municipality, s->period, k, FINGEST_KEY_MAX);
                goto refuse;
            }
            /* Fits: at most 2 values of FINGEST_KEY_MAX (fingest__dims, fingest__key_ok). */
            size_t o = strlen(refs[kept].key), n = strlen(cell->key[k]);
            if (k)
                refs[kept].key[o++] = ',';
            memcpy(refs[kept].key + o, cell->key[k], n + 1);
        }
        if (cell->numerator < 0 || cell->denominator < 0 || cell->contributors < 0) {
            snprintf(why, sizeof(why),
                     "municipality %u period %s: negative numerator, "
                     "denominator or contributors",
                     s->municipality, s->period);
            goto refuse;
        }
        /* A value above 2^53 - 1 is no municipality's count or sum of rupees, and the sums of a
         * province's municipalities would leave PostgreSQL's bigint (the batch then failed to
         * store and the hub sent it again, forever) and JSON's exact integers. */
        if (cell->numerator > FINGEST_VALUE_MAX || cell->denominator > FINGEST_VALUE_MAX ||
            cell->contributors > FINGEST_VALUE_MAX || cell->top1 > FINGEST_VALUE_MAX ||
            cell->top2 > FINGEST_VALUE_MAX) {
            snprintf(why, sizeof(why),
                     "municipality %u period %s: %s: numerator, denominator, contributors and "
                     "top contributions must be at most 2^53-1",
                     s->municipality, s->period, ind->code);
            goto refuse;
        }
        /* A sum's two largest contributions come from distinct contributors of the sum. */
        if (cell->top1 < 0 || cell->top2 < 0 || cell->top2 > cell->top1 ||
            (ind->agg == CATALOGUE_SUM && cell->top1 > cell->numerator - cell->top2) ||
            (ind->agg != CATALOGUE_SUM && (cell->top1 || cell->top2))) {
            snprintf(why, sizeof(why),
                     "municipality %u period %s: %s: top contributions must be those of a sum: "
                     "0 <= top2 <= top1, top1 + top2 <= numerator",
                     s->municipality, s->period, ind->code);
            goto refuse;
        }
        /* Zero cells are omitted by the hub; one sent anyway is simply not stored. */
        if (cell->numerator == 0 && cell->denominator == 0 && cell->contributors == 0)
            continue;
        kept++;
    }
    bad_cell = SIZE_MAX;
    if (kept > 1) {
        qsort(refs, kept, sizeof(*refs), fingest__cell_cmp);
        for (size_t i = 1; i < kept; i++) {
            if (fingest__cell_cmp(&refs[i - 1], &refs[i]) == 0) {
                snprintf(field, sizeof(field), "snapshots[%zu].cells", index);
                snprintf(why, sizeof(why),
                         "municipality %u period %s: cell %s by \"%s\" key "
                         "\"%s\" appears twice",
                         s->municipality, s->period, refs[i].cell->indicator,
                         refs[i].cell->grouping, refs[i].key);
                goto refuse;
            }
        }
    }
    /* Every value below passed the checks above, so double quotes delimit them safely. */
    int lead = j->n_snapshots == 0;
    fingest__int(&j->a[A_MUNI], lead, s->municipality);
    fingest__str(&j->a[A_PERIOD], lead, s->period);
    fingest__int(&j->a[A_KIND], lead, (int64_t)kind);
    fingest__int(&j->a[A_REV], lead, (int64_t)s->revision); /* at most 2^63-1, checked */
    for (size_t i = 0; i < kept; i++) {
        const Reint__V1__RollupCell *cell = refs[i].cell;
        lead = j->n_cells == 0;
        fingest__int(&j->a[A_SNAP], lead, (int64_t)j->n_snapshots + 1);
        fingest__str(&j->a[A_IND], lead, cell->indicator);
        fingest__str(&j->a[A_GRP], lead, cell->grouping);
        fingest__str(&j->a[A_KEY], lead, refs[i].key);
        fingest__int(&j->a[A_NUM], lead, cell->numerator);
        fingest__int(&j->a[A_DEN], lead, cell->denominator);
        fingest__int(&j->a[A_CK], lead, cell->cell_key);
        fingest__int(&j->a[A_CON], lead, cell->contributors);
        fingest__int(&j->a[A_NK], lead, cell->numerator_key);
        fingest__int(&j->a[A_T1], lead, cell->top1);
        fingest__int(&j->a[A_T2], lead, cell->top2);
        j->n_cells++;
    }
    j->n_snapshots++;
    fi->m.cells_received += kept;
    free(refs);
    return 0;
refuse:
    if (bad_cell != SIZE_MAX)
        snprintf(field, sizeof(field), "snapshots[%zu].cells[%zu]", index, bad_cell);
    free(refs);
    fi->m.snapshots_refused++;
    log_warn("province:%d: snapshot refused: %s: %s", j->c->province, field, why);
    if (fingest__refuse(j, seq, field, why) != 0)
        rc = -1;
    return rc;
}

/* Acknowledges each hub batch of a committed job, in order, with its own refusals (the hub
 * expects one ack per batch). */
static void fingest__send_ack(fconn *c, fjob *j)
{
    size_t from = 0;
    for (size_t k = 0; k < j->n_segs; k++) {
        size_t to = j->segs[k].refusals_end;
        receiver_ack(c->p, j->segs[k].last_seq, 0, j->refusals + from, to - from);
        from = to;
    }
}

static void fingest__submit(fconn *c);

static void fingest__on_committed(void *ud, const PGresult *res, const char *err)
{
    fjob *j = ud;
    fconn *c = j->c;
    fingest *fi = c->fi;
    c->head = j->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->inflight = 0;
    c->n_jobs--;
    if (err) {
        fi->m.db_errors++;
        log_error("province:%d: batch %" PRIu64 "..%" PRIu64 " not stored: %s; closing the "
                  "connection so that the hub resends",
                  c->province, j->first_seq, j->last_seq, err);
        /* The hub hears why before the connection closes (it sends the batch again). */
        receiver_internal_error(c->p, "a batch could not be stored; send it again");
    } else if (!fingest__dead(c)) {
        long applied = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        fi->m.batches_committed++;
        fi->m.snapshots_applied += (uint64_t)applied;
        log_debug("province:%d: batch %" PRIu64 "..%" PRIu64 " committed: %zu snapshots, "
                  "%ld newer, %zu cells",
                  c->province, j->first_seq, j->last_seq, j->n_snapshots, applied, j->n_cells);
        fingest__send_ack(c, j);
        if (c->n_jobs < 2)
            receiver_peer_release(c->p, RECEIVER_HOLD_PEER);
    }
    fingest__job_free(j);
    if (!fingest__dead(c) && !err)
        fingest__submit(c);
    receiver_peer_unref(c->p);
}

static void fingest__submit(fconn *c)
{
    if (c->inflight || c->head == NULL || fingest__dead(c))
        return;
    fjob *j = c->head;
    char prov[8], inc[36], last[24];
    snprintf(prov, sizeof(prov), "%d", c->province);
    fingest__incarnation(c, inc);
    snprintf(last, sizeof(last), "%" PRIu64, j->last_seq);
    for (int i = 0; i < A_N; i++)
        sbuf_puts(&j->a[i], "}");
    const char *v[3 + A_N] = {prov, inc, last};
    for (int i = 0; i < A_N; i++) {
        if (j->a[i].failed) {
            receiver_internal_error(c->p, "batch too large to store");
            return;
        }
        v[3 + i] = j->a[i].p;
    }
    c->inflight = 1;
    receiver_peer_ref(c->p);
    if (db_query_bulk(c->fi->o.db, fingest__sql, 3 + A_N, v, fingest__on_committed, j) != 0) {
        c->inflight = 0;
        receiver_peer_unref(c->p);
        c->fi->m.db_errors++;
        receiver_internal_error(c->p, "federal store busy");
    }
}

/* Adds a batch's acknowledgement, through last_seq, to job j (after its other batches). */
static int fingest__segment(fjob *j, uint64_t last_seq)
{
    if (sbuf_grow((void **)&j->segs, &j->cap_segs, j->n_segs + 1, sizeof(fseg)) != 0)
        return REINT_ENOMEM;
    j->segs[j->n_segs++] = (fseg){.last_seq = last_seq, .refusals_end = j->n_refusals};
    return 0;
}

/* A new job of the connection, starting at first_seq. NULL when out of memory. */
static fjob *fingest__job_new(fconn *c, uint64_t first_seq)
{
    fjob *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->c = c;
    j->first_seq = first_seq;
    for (int i = 0; i < A_N; i++) {
        sbuf_init(&j->a[i], FINGEST_MAX_ARG);
        sbuf_puts(&j->a[i], "{");
    }
    return j;
}

static void fingest__parts_reset(fconn *c)
{
    sbuf_reset(&c->parts);
    c->parts_next = c->parts_total = 0;
}

/* Takes one part of a split snapshot (the batch's only item). Returns 0 with *whole set to
 * the assembled snapshot after its last part (free it with
 * reint__v1__rollup_snapshot__free_unpacked), 0 with *whole NULL before, 1 when the peer was
 * failed, or REINT_ENOMEM. */
static int fingest__part(fconn *c, const Reint__V1__RollupSnapshot *s, uint64_t seq,
                         Reint__V1__RollupSnapshot **whole)
{
    char why[200];
    *whole = NULL;
    if (s->part == 0) {
        fingest__parts_reset(c);
        c->parts_seq = seq;
        c->parts_revision = s->revision;
        c->parts_total = s->parts;
        c->parts_municipality = s->municipality;
    } else if (s->part != c->parts_next || seq != c->parts_seq || s->parts != c->parts_total ||
               s->revision != c->parts_revision || s->municipality != c->parts_municipality) {
        snprintf(why, sizeof(why),
                 "part %u of %u of the snapshot at sequence %" PRIu64 " arrived out of order "
                 "(expected part %u)",
                 s->part, s->parts, seq, c->parts_next);
        fingest__parts_reset(c);
        receiver_protocol_error(c->p, why);
        return 1;
    }
    size_t len = reint__v1__rollup_snapshot__get_packed_size(s);
    uint8_t *at = sbuf_extend(&c->parts, len);
    if (at == NULL) {
        fingest__parts_reset(c);
        receiver_protocol_error(c->p, "a split snapshot above 64 MiB");
        return 1;
    }
    reint__v1__rollup_snapshot__pack(s, at);
    c->parts_next = s->part + 1;
    if (c->parts_next < c->parts_total)
        return 0;
    /* Concatenated messages merge: the cells of every part, the header of the last. */
    *whole = reint__v1__rollup_snapshot__unpack(NULL, c->parts.len, (const uint8_t *)c->parts.p);
    fingest__parts_reset(c);
    if (*whole == NULL) {
        receiver_protocol_error(c->p, "the parts of a split snapshot do not decode together");
        return 1;
    }
    return 0;
}

static int fingest__on_batch(fingest *fi, fconn *c, const Reint__V1__RollupBatch *b)
{
    char why[200];
    receiver_peer *p = c->p;
    if (receiver_check_batch(p, b->first_seq, b->last_seq, b->seqs, b->n_seqs, b->n_snapshots))
        return 1;
    /* A revision from the future would win over every later one: the batch is refused whole
     * until the hub's clock is right. */
    for (size_t i = 0; i < b->n_snapshots; i++) {
        if (receiver_too_far_ahead(p, b->snapshots[i]->revision)) {
            snprintf(why, sizeof(why), "snapshot revision %" PRIu64 " (sequence %" PRIu64 ")",
                     b->snapshots[i]->revision, b->seqs[i]);
            receiver_clock_ahead(p, why);
            return 1;
        }
    }
    /* One snapshot of another province's municipality refuses the whole batch. */
    for (size_t i = 0; i < b->n_snapshots; i++) {
        const geo_local_level *g = geo_find(b->snapshots[i]->municipality);
        if (g == NULL || g->province != (unsigned)c->province) {
            snprintf(why, sizeof(why),
                     "rollup batch %" PRIu64 "..%" PRIu64 " holds a snapshot "
                     "of municipality %u, which is %s province %d; batch refused",
                     b->first_seq, b->last_seq, b->snapshots[i]->municipality,
                     g ? "not in" : "unknown, not in", c->province);
            receiver_security(p, why);
            return 1;
        }
        if (b->snapshots[i]->parts > 1 &&
            (b->n_snapshots != 1 || b->snapshots[i]->part >= b->snapshots[i]->parts)) {
            receiver_protocol_error(p, "a snapshot part must be the only item of its batch, "
                                       "numbered below its parts");
            return 1;
        }
    }
    Reint__V1__RollupSnapshot *whole = NULL;
    if (b->n_snapshots == 1 && b->snapshots[0]->parts > 1) {
        int rc = fingest__part(c, b->snapshots[0], b->seqs[0], &whole);
        if (rc != 0)
            return rc;
        if (whole == NULL) {
            /* Not the last part: nothing to store yet, and the position stays before it, so
             * that an interruption resends the snapshot from its first part. */
            fi->m.batches++;
            uint64_t at = receiver_peer_position(p);
            if (c->tail)
                return fingest__segment(c->tail, at);
            return receiver_ack(p, at, 0, NULL, 0) == 0 ? 0 : 1;
        }
    } else if (c->parts_total) {
        fingest__parts_reset(c);
        receiver_protocol_error(p, "a split snapshot was interrupted by another batch");
        return 1;
    }
    /* A batch arriving while the previous job is in PostgreSQL joins the job queued behind
     * it: under load, consecutive batches become one call, whose province aggregates move
     * once per cell key for all of them (and one transaction commits them); idle, each batch
     * is a call of its own at once. Each batch is still acknowledged by itself. */
    fjob *j = c->tail;
    int joined = j != NULL && !(c->inflight && j == c->head) &&
                 j->n_snapshots + b->n_snapshots <= FINGEST_MERGE_SNAPSHOTS;
    int rc = 0;
    if (!joined && (j = fingest__job_new(c, b->first_seq)) == NULL)
        rc = REINT_ENOMEM;
    fi->m.batches++;
    for (size_t i = 0; rc == 0 && i < b->n_snapshots; i++) {
        fi->m.snapshots_received++;
        if (fingest__snapshot(fi, j, whole ? whole : b->snapshots[i], i, b->seqs[i]) < 0)
            rc = REINT_ENOMEM;
    }
    if (rc == 0)
        rc = fingest__segment(j, b->last_seq);
    if (whole)
        reint__v1__rollup_snapshot__free_unpacked(whole, NULL);
    if (rc != 0) {
        /* The connection closes; a joined job is queued and freed with it. */
        if (j && !joined)
            fingest__job_free(j);
        return rc;
    }
    j->last_seq = b->last_seq;
    receiver_peer_advance(p, b->last_seq);
    if (joined)
        return 0; /* submitted when the job ahead of it commits */
    if (c->tail)
        c->tail->next = j;
    else
        c->head = j;
    c->tail = j;
    c->n_jobs++;
    if (c->n_jobs >= FINGEST_PAUSE_JOBS)
        receiver_peer_hold(p, RECEIVER_HOLD_PEER);
    fingest__submit(c);
    return 0;
}

/* ---- coverage ------------------------------------------------------------------------------ */

static void fingest__on_coverage_stored(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    fconn *c = ud;
    if (err) {
        c->fi->m.db_errors++;
        /* The hub sends its coverage again only when it changes or at a new session: end
         * this one, or the federal view could stay stale for a day in a quiet province. */
        log_warn("province:%d: coverage not stored: %s", c->province, err);
        if (!receiver_peer_dead(c->p))
            receiver_internal_error(c->p, "the hub's coverage could not be stored");
    }
    receiver_peer_unref(c->p);
}

/* Coverage: the hub's view of each municipality's delivery, stored as the latest word. */
static int fingest__on_coverage(fingest *fi, fconn *c, const Reint__V1__Coverage *cv)
{
    sbuf a[5];
    for (int i = 0; i < 5; i++) {
        sbuf_init(&a[i], 1 << 20);
        sbuf_puts(&a[i], "{");
    }
    for (size_t i = 0; i < cv->n_municipalities; i++) {
        const Reint__V1__MunicipalityCoverage *m = cv->municipalities[i];
        const geo_local_level *g = geo_find(m->municipality);
        if (g == NULL || g->province != (unsigned)c->province) {
            char why[160];
            snprintf(why, sizeof(why), "coverage names municipality %u, not of province %d",
                     m->municipality, c->province);
            for (int k = 0; k < 5; k++)
                sbuf_free(&a[k]);
            receiver_security(c->p, why);
            return 1;
        }
        const char *sep = i ? "," : "";
        sbuf_printf(&a[0], "%s%u", sep, m->municipality);
        sbuf_printf(&a[1], "%s%" PRIu64, sep, m->records > INT64_MAX ? INT64_MAX : m->records);
        sbuf_printf(&a[2], "%s%" PRIu64, sep,
                    m->dead_letters > INT64_MAX ? INT64_MAX : m->dead_letters);
        sbuf_printf(&a[3], "%s%" PRIu64, sep,
                    m->last_sync_ms > INT64_MAX ? INT64_MAX : m->last_sync_ms);
        sbuf_printf(&a[4], "%s%d", sep, (int)m->calendar);
    }
    int failed = 0;
    for (int i = 0; i < 5; i++)
        failed |= sbuf_puts(&a[i], "}") != 0;
    char prov[8];
    snprintf(prov, sizeof(prov), "%d", c->province);
    const char *v[6] = {prov, a[0].p, a[1].p, a[2].p, a[3].p, a[4].p};
    int rc = 0;
    if (!failed) {
        receiver_peer_ref(c->p);
        if (db_query(
                fi->o.db,
                /* A calendar change is announced by the table's trigger (migration 12). */
                "INSERT INTO coverage AS c (municipality, province, records, dead_letters,"
                " last_sync_ms, calendar, updated_at)"
                " SELECT m, $1::smallint, r, d, l, k, now() FROM unnest($2::integer[],"
                " $3::bigint[], $4::bigint[], $5::bigint[], $6::smallint[]) AS t(m, r, d, l, k)"
                " ON CONFLICT (municipality) DO UPDATE SET records = excluded.records,"
                " dead_letters = excluded.dead_letters, last_sync_ms = excluded.last_sync_ms,"
                " calendar = excluded.calendar, updated_at = excluded.updated_at",
                6, v, fingest__on_coverage_stored, c) != 0) {
            receiver_peer_unref(c->p);
            fi->m.db_errors++;
            receiver_internal_error(c->p, "the hub's coverage could not be queued for the store");
            rc = 1;
        }
    } else {
        rc = REINT_ENOMEM;
    }
    for (int i = 0; i < 5; i++)
        sbuf_free(&a[i]);
    fi->m.coverage_updates++;
    return rc;
}

/* ---- directives ---------------------------------------------------------------------------- */

/* One page of published directives decoded from rows whose columns col..col+3 are serial,
 * key_id, hex body and hex signature; key_id points into the result. */
typedef struct fdirs {
    size_t n;
    uint64_t last;
    uint64_t serial[FINGEST_DIR_PAGE];
    Reint__V1__SignedDirective sd[FINGEST_DIR_PAGE];
    Reint__V1__SignedDirective *p[FINGEST_DIR_PAGE];
} fdirs;

static void fingest__dirs_free(fdirs *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        free(ds->sd[i].body.data);
        free(ds->sd[i].signature.data);
    }
    ds->n = 0;
}

/* Stops at the first row it cannot decode, so that what is sent stays gap-free. */
static void fingest__dirs_load(fdirs *ds, const PGresult *res, int col)
{
    ds->n = 0;
    ds->last = 0;
    for (int i = 0; i < PQntuples(res) && ds->n < FINGEST_DIR_PAGE; i++) {
        if (PQgetisnull(res, i, col))
            continue;
        Reint__V1__SignedDirective *sd = &ds->sd[ds->n];
        reint__v1__signed_directive__init(sd);
        uint64_t serial = strtoull(PQgetvalue(res, i, col), NULL, 10);
        sd->key_id = PQgetvalue(res, i, col + 1);
        const char *body = PQgetvalue(res, i, col + 2), *sig = PQgetvalue(res, i, col + 3);
        if (hex_decode_alloc(body, strlen(body), &sd->body.data, &sd->body.len) != 0)
            break;
        if (hex_decode_alloc(sig, strlen(sig), &sd->signature.data, &sd->signature.len) != 0) {
            free(sd->body.data);
            break;
        }
        ds->serial[ds->n] = serial;
        ds->p[ds->n++] = sd;
        ds->last = serial;
    }
}

static void fingest__dir_catchup(fconn *c);

/* Sends c the directives of a page (serial, key_id, body hex, signature hex); fills *ds
 * (the caller frees it with fingest__dirs_free). */
static void fingest__send_dirs(fconn *c, const PGresult *res, fdirs *ds)
{
    fingest__dirs_load(ds, res, 0);
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    env.msg_case = REINT__V1__ENVELOPE__MSG_DIRECTIVE;
    for (size_t i = 0; i < ds->n; i++) {
        env.directive = ds->p[i];
        receiver_send(c->p, &env);
    }
    c->fi->m.directives_sent += ds->n;
}

static void fingest__on_dir_page(void *ud, const PGresult *res, const char *err)
{
    fconn *c = ud;
    fingest *fi = c->fi;
    c->dir_busy = 0;
    if (err) {
        fi->m.db_errors++;
        log_warn("province:%d: cannot read directives to send: %s; retrying later", c->province,
                 err);
    } else if (!fingest__dead(c)) {
        fdirs ds;
        fingest__send_dirs(c, res, &ds);
        if (ds.n) {
            log_info("province:%d: sent directives %" PRIu64 "..%" PRIu64, c->province,
                     c->dir_sent + 1, ds.last);
            c->dir_sent = ds.last;
        }
        if (ds.n == FINGEST_DIR_PAGE)
            c->dir_again = 1;
        fingest__dirs_free(&ds);
        if (c->dir_again)
            fingest__dir_catchup(c);
    }
    receiver_peer_unref(c->p);
}

/* Sends this session every directive above the last one it was sent, a page at a time. */
static void fingest__dir_catchup(fconn *c)
{
    if (fingest__dead(c) || !receiver_peer_session(c->p))
        return;
    if (c->dir_busy) {
        c->dir_again = 1;
        return;
    }
    char after[24];
    snprintf(after, sizeof(after), "%" PRIu64, c->dir_sent);
    const char *v[1] = {after};
    c->dir_busy = 1;
    c->dir_again = 0;
    receiver_peer_ref(c->p);
    if (db_query(c->fi->o.db,
                 "SELECT serial, key_id, encode(body, 'hex'), encode(signature, 'hex')"
                 " FROM directives WHERE serial > $1::bigint ORDER BY serial LIMIT 64",
                 1, v, fingest__on_dir_page, c) != 0) {
        /* The next poll or publication tries again. */
        c->dir_busy = 0;
        receiver_peer_unref(c->p);
        c->fi->m.db_errors++;
    }
}

void fingest_directives_published(fingest *fi)
{
    if (fi == NULL || fi->stopping)
        return;
    for (fconn *c = fi->conns; c; c = c->next) {
        if (fingest__dead(c))
            continue;
        if (receiver_peer_session(c->p))
            fingest__dir_catchup(c);
        else if (c->hello_pending)
            c->dir_again = 1;
    }
}

static void fingest__on_dir_max(void *ud, const PGresult *res, const char *err)
{
    fingest *fi = ud;
    fi->dir_poll_busy = 0;
    if (err == NULL && !fi->stopping && PQntuples(res) == 1) {
        uint64_t max = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        for (fconn *c = fi->conns; c; c = c->next)
            if (receiver_peer_session(c->p) && !fingest__dead(c) && c->dir_sent < max)
                fingest__dir_catchup(c);
    }
    fingest__release(fi);
}

/* Directives published by another federal-api process reach this one's hubs here. */
static void fingest__on_dir_poll(uv_timer_t *t)
{
    fingest *fi = t->data;
    int any = 0;
    if (fi->stopping || fi->dir_poll_busy)
        return;
    for (fconn *c = fi->conns; c; c = c->next)
        any |= receiver_peer_session(c->p) && !fingest__dead(c);
    if (!any)
        return;
    fi->dir_poll_busy = 1;
    fi->live++;
    if (db_query(fi->o.db, "SELECT coalesce(max(serial), 0) FROM directives", 0, NULL,
                 fingest__on_dir_max, fi) != 0) {
        fi->dir_poll_busy = 0;
        fi->live--;
    }
}

static void fingest__on_dir_acked(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    fconn *c = ud;
    if (err) {
        c->fi->m.db_errors++;
        log_warn("province:%d: directive acknowledgement not recorded: %s (the directive is "
                 "sent again at its next session)",
                 c->province, err);
    }
    receiver_peer_unref(c->p);
}

static void fingest__on_missing_page(void *ud, const PGresult *res, const char *err)
{
    fconn *c = ud;
    fingest *fi = c->fi;
    if (err) {
        fi->m.db_errors++;
        log_warn("province:%d: cannot read the directives it asked for: %s", c->province, err);
    } else if (!fingest__dead(c)) {
        fdirs ds;
        fingest__send_dirs(c, res, &ds);
        log_info("province:%d asked for missing directives; %zu sent", c->province, ds.n);
        fingest__dirs_free(&ds);
    }
    receiver_peer_unref(c->p);
}

/* The hub lacks these serials (a gap): each one published is sent again. */
static void fingest__send_missing(fingest *fi, fconn *c, const uint64_t *missing, size_t n)
{
    char list[FINGEST_DIR_PAGE * 21 + 3];
    size_t off = 0;
    list[off++] = '{';
    for (size_t i = 0; i < n && i < FINGEST_DIR_PAGE; i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%" PRIu64, i ? "," : "",
                                missing[i]);
    snprintf(list + off, sizeof(list) - off, "}");
    const char *v[1] = {list};
    receiver_peer_ref(c->p);
    if (db_query(fi->o.db,
                 "SELECT serial, key_id, encode(body, 'hex'), encode(signature, 'hex')"
                 " FROM directives WHERE serial = ANY($1::bigint[]) ORDER BY serial",
                 1, v, fingest__on_missing_page, c) != 0) {
        receiver_peer_unref(c->p);
        fi->m.db_errors++;
    }
}

static int fingest__on_directive_ack(fingest *fi, fconn *c, const Reint__V1__DirectiveAck *a)
{
    if (a->n_missing)
        fingest__send_missing(fi, c, a->missing, a->n_missing);
    if (a->serial == 0)
        return 0;
    if (a->serial > c->dir_sent) {
        log_warn("province:%d acknowledged directive %" PRIu64 ", which this session did not "
                 "send; ignored",
                 c->province, a->serial);
        return 0;
    }
    char prov[8], inc[36], serial[24];
    snprintf(prov, sizeof(prov), "%d", c->province);
    fingest__incarnation(c, inc);
    snprintf(serial, sizeof(serial), "%" PRIu64, a->serial);
    const char *v[3] = {prov, inc, serial};
    fi->m.directive_acks++;
    receiver_peer_ref(c->p);
    if (db_query(fi->o.db,
                 "INSERT INTO directive_delivery(province, incarnation, acked_serial, acked_at)"
                 " VALUES ($1::smallint, $2::bytea, $3::bigint, now())"
                 " ON CONFLICT (province, incarnation) DO UPDATE"
                 " SET acked_serial = greatest(directive_delivery.acked_serial,"
                 " excluded.acked_serial), acked_at = excluded.acked_at",
                 3, v, fingest__on_dir_acked, c) != 0) {
        receiver_peer_unref(c->p);
        fi->m.db_errors++;
        log_warn("province:%d: directive %" PRIu64 " acknowledgement dropped: store busy",
                 c->province, a->serial);
    }
    return 0;
}

/* ---- the monthly review ------------------------------------------------------------------- */

/* A hub's review changes, acknowledged once committed. */
typedef struct freview_job {
    fconn *c;
    uint64_t through;
} freview_job;

static void fingest__on_reviews_stored(void *ud, const PGresult *res, const char *err)
{
    freview_job *rj = ud;
    fconn *c = rj->c;
    (void)res;
    if (err) {
        c->fi->m.db_errors++;
        log_error("province:%d: review changes not stored: %s; closing so that the hub sends "
                  "them again",
                  c->province, err);
        receiver_internal_error(c->p, "review changes could not be stored; send them again");
    } else if (!fingest__dead(c)) {
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        Reint__V1__ReviewAck ack = REINT__V1__REVIEW_ACK__INIT;
        ack.through = rj->through;
        env.msg_case = REINT__V1__ENVELOPE__MSG_REVIEW_ACK;
        env.review_ack = &ack;
        receiver_send(c->p, &env);
    }
    receiver_peer_unref(c->p);
    free(rj);
}

static int fingest__on_reviews(fingest *fi, fconn *c, const Reint__V1__Reviews *r)
{
    char why[300];
    /* A change from the future would hold the province's review clock there (every later
     * decision of its hub would sort below it, and the hub sends none while the federal tier
     * holds a clock ahead of its own): the message is refused whole, as a snapshot revision. */
    for (size_t i = 0; i < r->n_reviews; i++) {
        if (receiver_too_far_ahead(c->p, r->reviews[i]->clock)) {
            snprintf(why, sizeof(why), "review change clock %" PRIu64 " (municipality %u)",
                     r->reviews[i]->clock, r->reviews[i]->municipality);
            receiver_clock_ahead(c->p, why);
            return 1;
        }
    }
    freview_job *rj = calloc(1, sizeof(*rj));
    if (rj == NULL)
        return REINT_ENOMEM;
    rj->c = c;
    receiver_peer_ref(c->p);
    int rc = freviews_apply(fi->o.db, c->province, r, &rj->through, fingest__on_reviews_stored, rj,
                            why, sizeof(why));
    if (rc == 0) {
        fi->m.review_changes += r->n_reviews;
        return 0;
    }
    receiver_peer_unref(c->p);
    free(rj);
    if (rc == REINT_EFORBIDDEN) {
        receiver_security(c->p, why);
        return 1;
    }
    if (rc == REINT_EINVAL) {
        receiver_protocol_error(c->p, why);
        return 1;
    }
    fi->m.db_errors++;
    receiver_internal_error(c->p, "federal store busy");
    return 1;
}

static void fingest__on_reviews_read(void *ud, const PGresult *res, const char *err)
{
    fconn *c = ud;
    Reint__V1__Reviews *r = NULL;
    if (err) {
        c->fi->m.db_errors++;
        log_error("province:%d: review changes not read: %s", c->province, err);
        receiver_close(c->p);
    } else if (!fingest__dead(c)) {
        if (freviews_decode(res, &r) != 0) {
            log_error("province:%d: review changes could not be decoded", c->province);
            receiver_internal_error(c->p, "review changes could not be read");
        } else {
            Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
            env.msg_case = REINT__V1__ENVELOPE__MSG_REVIEWS;
            env.reviews = r;
            receiver_send(c->p, &env);
            log_info("province:%d: %zu review changes sent back to its hub", c->province,
                     r->n_reviews);
        }
    }
    freviews_free(r);
    receiver_peer_unref(c->p);
}

/* A hub asks for its province's changes above after (it lost its store). */
static int fingest__on_review_request(fingest *fi, fconn *c, uint64_t after)
{
    receiver_peer_ref(c->p);
    if (freviews_load(fi->o.db, c->province, after, fingest__on_reviews_read, c) != 0) {
        receiver_peer_unref(c->p);
        fi->m.db_errors++;
        receiver_internal_error(c->p, "federal store busy");
        return 1;
    }
    return 0;
}

/* ---- sessions ------------------------------------------------------------------------------ */

/* The hub's position, its directive position and the first page of directives it has not
 * acknowledged, in one statement (one row even when there are none). */
static const char *fingest__sql_hello =
    "SELECT (SELECT acked_seq FROM hub_positions WHERE province = $1::smallint"
    " AND incarnation = $2::bytea),"
    " (SELECT acked_serial FROM directive_delivery WHERE province = $1::smallint"
    " AND incarnation = $2::bytea),"
    " d.serial, d.key_id, encode(d.body, 'hex'), encode(d.signature, 'hex'),"
    " " FREVIEWS_THROUGH_SQL
    " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT serial, key_id, body, signature"
    " FROM directives WHERE serial > coalesce((SELECT acked_serial FROM directive_delivery"
    " WHERE province = $1::smallint AND incarnation = $2::bytea), 0)"
    " ORDER BY serial LIMIT 64) d ON true ORDER BY d.serial";

static void fingest__on_position(void *ud, const PGresult *res, const char *err)
{
    fconn *c = ud;
    c->hello_pending = 0;
    if (fingest__dead(c)) {
        receiver_peer_unref(c->p);
        return;
    }
    if (err) {
        c->fi->m.db_errors++;
        log_error("province:%d: cannot read the hub position: %s", c->province, err);
        receiver_internal_error(c->p, "federal store unavailable; retry later");
        receiver_peer_unref(c->p);
        return;
    }
    int rows = PQntuples(res);
    uint64_t acked = rows ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    uint64_t dir_acked = rows ? strtoull(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    fdirs ds;
    fingest__dirs_load(&ds, res, 2);
    Reint__V1__HelloReply r = REINT__V1__HELLO_REPLY__INIT;
    r.acked_seq = acked;
    r.n_directives = ds.n;
    r.directives = ds.p;
    /* This tier keeps the province's review changes: the hub sends those above what it holds,
     * or takes them back when it lost them. */
    r.reviews = 1;
    r.reviews_through = rows ? strtoull(PQgetvalue(res, 0, 6), NULL, 10) : 0;
    log_info("province:%d session from %s (protocol %u): federal store holds through %" PRIu64
             "; %zu directive%s above %" PRIu64 " sent",
             c->province, receiver_peer_addr(c->p), receiver_peer_version(c->p), acked, ds.n,
             ds.n == 1 ? "" : "s", dir_acked);
    /* receiver_welcome offers fewer directives if the reply does not fit the hub's frames;
     * the rest follow it as a catch-up, as a full page's do. */
    if (receiver_welcome(c->p, &r) == REINT_ETOOBIG)
        receiver_internal_error(c->p, "the HelloReply does not fit the hub's frame limit");
    c->dir_sent = r.n_directives ? ds.serial[r.n_directives - 1] : dir_acked;
    c->fi->m.directives_sent += r.n_directives;
    if (ds.n == FINGEST_DIR_PAGE || r.n_directives < ds.n)
        c->dir_again = 1;
    fingest__dirs_free(&ds);
    if (c->dir_again)
        fingest__dir_catchup(c);
    receiver_peer_unref(c->p);
}

static int fingest__hello(void *ud, receiver_peer *p, const Reint__V1__Hello *h)
{
    (void)h;
    fingest *fi = ud;
    fconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return REINT_ENOMEM;
    c->fi = fi;
    c->p = p;
    c->province = (int)receiver_peer_scope(p);
    sbuf_init(&c->parts, FINGEST_PARTS_MAX);
    receiver_peer_set_data(p, c);
    c->next = fi->conns;
    fi->conns = c;
    fi->live++; /* released with the peer */
    char prov[8], inc[36];
    snprintf(prov, sizeof(prov), "%d", c->province);
    fingest__incarnation(c, inc);
    const char *v[2] = {prov, inc};
    c->hello_pending = 1;
    receiver_peer_ref(p);
    if (db_query(fi->o.db, fingest__sql_hello, 2, v, fingest__on_position, c) != 0) {
        receiver_peer_unref(p);
        c->hello_pending = 0;
        receiver_internal_error(p, "federal store busy");
        return 1;
    }
    return 0;
}

static int fingest__message(void *ud, receiver_peer *p, const Reint__V1__Envelope *env)
{
    fingest *fi = ud;
    fconn *c = receiver_peer_data(p);
    switch (env->msg_case) {
    case REINT__V1__ENVELOPE__MSG_ROLLUP_BATCH:
        return fingest__on_batch(fi, c, env->rollup_batch);
    case REINT__V1__ENVELOPE__MSG_DIRECTIVE_ACK:
        return fingest__on_directive_ack(fi, c, env->directive_ack);
    case REINT__V1__ENVELOPE__MSG_COVERAGE:
        return fingest__on_coverage(fi, c, env->coverage);
    case REINT__V1__ENVELOPE__MSG_REVIEWS:
        return fingest__on_reviews(fi, c, env->reviews);
    case REINT__V1__ENVELOPE__MSG_REVIEW_REQUEST:
        return fingest__on_review_request(fi, c, env->review_request->after);
    default:
        receiver_protocol_error(p, "unexpected message (a hub sends Hello, RollupBatch, "
                                   "DirectiveAck, Coverage, Reviews and ReviewRequest)");
        return 1;
    }
}

static int fingest__identify(void *ud, const char *identity, uint32_t *scope, char *why,
                             size_t whylen)
{
    (void)ud;
    if (strncmp(identity, "province:", 9) != 0 || identity[9] < '1' || identity[9] > '7' ||
        identity[10]) {
        snprintf(why, whylen, "certificate does not name a province");
        return REINT_EFORBIDDEN;
    }
    *scope = (uint32_t)(identity[9] - '0');
    return 0;
}

/* The connection closed: queued batches are dropped unacknowledged (the hub resends them);
 * the one in flight finishes on its own and frees itself. */
static void fingest__closed(void *ud, receiver_peer *p)
{
    (void)ud;
    fconn *c = receiver_peer_data(p);
    if (c == NULL)
        return;
    fjob *j = c->inflight && c->head ? c->head->next : c->head;
    if (c->inflight && c->head) {
        c->head->next = NULL;
        c->tail = c->head;
    } else {
        c->head = c->tail = NULL;
    }
    while (j) {
        fjob *n = j->next;
        fingest__job_free(j);
        j = n;
    }
    fingest__parts_reset(c);
}

static void fingest__release_peer(void *ud, receiver_peer *p)
{
    fingest *fi = ud;
    fconn *c = receiver_peer_data(p);
    if (c == NULL)
        return;
    for (fconn **pp = &fi->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    sbuf_free(&c->parts);
    free(c);
    fingest__release(fi);
}

int fingest_start(fingest **out, const fingest_opts *opts, char *err, size_t errlen)
{
    fingest *fi = calloc(1, sizeof(*fi));
    if (fi == NULL)
        return REINT_ENOMEM;
    fi->o = *opts;
    if (fi->o.max_cells == 0)
        fi->o.max_cells = 20000;
    receiver_opts ro = {.loop = opts->loop,
                        .tls = opts->tls,
                        .listen = opts->listen,
                        .max_frame = opts->max_frame,
                        .what = "hub",
                        .self = "federal tier",
                        .ops = {.identify = fingest__identify,
                                .hello = fingest__hello,
                                .message = fingest__message,
                                .closed = fingest__closed,
                                .release = fingest__release_peer},
                        .ud = fi};
    int rc = receiver_start(&fi->rx, &ro, err, errlen);
    if (rc != 0) {
        free(fi);
        return rc;
    }
    fi->live = 1; /* the directive poll timer */
    uv_timer_init(opts->loop, &fi->dir_timer);
    fi->dir_timer.data = fi;
    uint64_t poll = opts->directive_poll_ms ? opts->directive_poll_ms : FINGEST_DIR_POLL_MS;
    uv_timer_start(&fi->dir_timer, fingest__on_dir_poll, poll, poll);
    *out = fi;
    return 0;
}

int fingest_port(const fingest *fi)
{
    return receiver_port(fi->rx);
}

static void fingest__on_handle_closed(uv_handle_t *h)
{
    fingest__release(h->data);
}

void fingest_stop(fingest *fi)
{
    if (fi == NULL || fi->stopping)
        return;
    fi->stopping = 1;
    receiver_stop(fi->rx);
    uv_timer_stop(&fi->dir_timer);
    uv_close((uv_handle_t *)&fi->dir_timer, fingest__on_handle_closed);
}

void fingest_get_metrics(const fingest *fi, fingest_metrics *m)
{
    *m = fi->m;
    receiver_get_metrics(fi->rx, &m->rx);
}
