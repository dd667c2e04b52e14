#include "fingest.h"

#include "clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "fdirectives.h"
#include "geo.h"
#include "hex.h"
#include "hlc.h"
#include "log.h"
#include "netaddr.h"
#include "period.h"
#include "sbuf.h"
#include "wire.h"

#define FINGEST_PROTOCOL_VERSION 1
#define FINGEST_KEY_MAX          40
#define FINGEST_MAX_ARG          (256u * 1024 * 1024)
#define FINGEST_PAUSE_JOBS       4
/* A batch that arrives while its connection's previous job is being committed joins the job
 * queued behind it, up to this many snapshots (see fingest__on_batch). */
#define FINGEST_MERGE_SNAPSHOTS 2000
#define FINGEST_DIR_PAGE        64
#define FINGEST_DIR_POLL_MS     5000

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
    A_N
};

static const char *fingest__sql =
    "SELECT fed_ingest_batch($1::smallint, $2::bytea, $3::bigint, $4::integer[], $5::text[],"
    " $6::smallint[], $7::bigint[], $8::integer[], $9::text[], $10::text[], $11::text[],"
    " $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[])";

typedef struct fconn fconn;

typedef struct frefusal {
    uint64_t seq;
    char field[64];
    char reason[200];
} frefusal;

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
    size_t n_snapshots, n_cells, n_refusals;
    frefusal *refusals;
    fseg *segs;
    size_t n_segs;
    sbuf a[A_N];
} fjob;

struct fconn {
    fingest *fi;
    wire *w;
    fconn *next;
    int province;
    uint8_t incarnation[16];
    int session, hello_pending, dead, refs, paused;
    uint64_t acked_seq;   /* through the last batch queued */
    uint64_t accepted_ms; /* loop time of accept, for the Hello deadline */
    fjob *head, *tail;    /* head is in flight when inflight */
    int inflight;
    size_t n_jobs;
    uint64_t dir_sent;       /* highest directive serial sent in this session (or acked) */
    int dir_busy, dir_again; /* a page of directives is being read; read again after it */
};

struct fingest {
    fingest_opts o;
    char listen[128];
    uv_tcp_t server;
    fconn *conns;
    int stopping, port, live;
    uv_timer_t dir_timer;
    int dir_poll_busy;
    fingest_metrics m;
};

/* The ingest lives while its listener or any connection (with its batches in flight)
 * does: live counts them. */
static void fingest__release(fingest *fi)
{
    if (--fi->live == 0)
        free(fi);
}

static void fingest__unref(fconn *c)
{
    if (--c->refs == 0) {
        fingest *fi = c->fi;
        free(c);
        fingest__release(fi);
    }
}

static void fingest__job_free(fjob *j)
{
    for (int i = 0; i < A_N; i++)
        sbuf_free(&j->a[i]);
    free(j->refusals);
    free(j->segs);
    free(j);
}

static void fingest__security(fingest *fi, fconn *c, const char *what)
{
    fi->m.security_events++;
    log_security("%s (%s): %s; batch refused, connection closed", wire_peer(c->w), wire_addr(c->w),
                 what);
    wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN, what);
}

static void fingest__protocol_error(fingest *fi, fconn *c, const char *what)
{
    fi->m.protocol_errors++;
    log_warn("%s (%s): protocol error: %s", wire_peer(c->w), wire_addr(c->w), what);
    wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_PROTOCOL, what);
}

static int fingest__refuse(fjob *j, uint64_t seq, const char *field, const char *reason)
{
    frefusal *nr = realloc(j->refusals, (j->n_refusals + 1) * sizeof(*nr));
    if (nr == NULL)
        return -1;
    j->refusals = nr;
    frefusal *f = &nr[j->n_refusals++];
    f->seq = seq;
    snprintf(f->field, sizeof(f->field), "%s", field);
    snprintf(f->reason, sizeof(f->reason), "%s", reason);
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
static int fingest__snapshot(fingest *fi, fjob *j, const Reint__V1__RollupSnapshot *s, size_t index,
                             uint64_t seq)
{
    char field[64], why[200];
    enum period_kind kind;
    int32_t first, last;
    fcellref *refs = NULL;
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
    refs = s->n_cells ? calloc(s->n_cells, sizeof(*refs)) : NULL;
    if (s->n_cells && refs == NULL)
        return -1;
    size_t kept = 0;
    for (size_t i = 0; i < s->n_cells; i++) {
        const Reint__V1__RollupCell *cell = s->cells[i];
        const catalogue_indicator *ind = catalogue_find(cell->indicator);
        char norm[64];
        snprintf(field, sizeof(field), "snapshots[%zu].cells[%zu]", index, i);
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
            size_t o = strlen(refs[kept].key);
            snprintf(refs[kept].key + o, sizeof(refs[kept].key) - o, "%s%s", k ? "," : "",
                     cell->key[k]);
        }
        if (cell->numerator < 0 || cell->denominator < 0 || cell->contributors < 0) {
            snprintf(why, sizeof(why),
                     "municipality %u period %s: negative numerator, "
                     "denominator or contributors",
                     s->municipality, s->period);
            goto refuse;
        }
        /* Zero cells are omitted by the hub; one sent anyway is simply not stored. */
        if (cell->numerator == 0 && cell->denominator == 0 && cell->contributors == 0)
            continue;
        kept++;
    }
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
    const char *sep = j->n_snapshots ? "," : "";
    sbuf_printf(&j->a[A_MUNI], "%s%u", sep, s->municipality);
    sbuf_printf(&j->a[A_PERIOD], "%s\"%s\"", sep, s->period);
    sbuf_printf(&j->a[A_KIND], "%s%d", sep, (int)kind);
    sbuf_printf(&j->a[A_REV], "%s%" PRIu64, sep, s->revision);
    for (size_t i = 0; i < kept; i++) {
        const Reint__V1__RollupCell *cell = refs[i].cell;
        const char *cs = j->n_cells ? "," : "";
        sbuf_printf(&j->a[A_SNAP], "%s%zu", cs, j->n_snapshots + 1);
        sbuf_printf(&j->a[A_IND], "%s\"%s\"", cs, cell->indicator);
        sbuf_printf(&j->a[A_GRP], "%s\"%s\"", cs, cell->grouping);
        sbuf_printf(&j->a[A_KEY], "%s\"%s\"", cs, refs[i].key);
        sbuf_printf(&j->a[A_NUM], "%s%" PRId64, cs, cell->numerator);
        sbuf_printf(&j->a[A_DEN], "%s%" PRId64, cs, cell->denominator);
        sbuf_printf(&j->a[A_CK], "%s%" PRIu32, cs, cell->cell_key);
        sbuf_printf(&j->a[A_CON], "%s%" PRId64, cs, cell->contributors);
        j->n_cells++;
    }
    j->n_snapshots++;
    fi->m.cells_received += kept;
    free(refs);
    return 0;
refuse:
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
    Reint__V1__Refusal *rs = NULL, **rp = NULL;
    if (j->n_refusals) {
        rs = calloc(j->n_refusals, sizeof(*rs));
        rp = calloc(j->n_refusals, sizeof(*rp));
        if (rs == NULL || rp == NULL) {
            free(rs);
            free(rp);
            wire_close(c->w);
            return;
        }
    }
    for (size_t i = 0; i < j->n_refusals; i++) {
        reint__v1__refusal__init(&rs[i]);
        rs[i].seq = j->refusals[i].seq;
        rs[i].field = j->refusals[i].field;
        rs[i].reason = j->refusals[i].reason;
        rp[i] = &rs[i];
    }
    size_t from = 0;
    for (size_t k = 0; k < j->n_segs; k++) {
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        Reint__V1__Ack ack = REINT__V1__ACK__INIT;
        ack.acked_seq = j->segs[k].last_seq;
        ack.n_refusals = j->segs[k].refusals_end - from;
        ack.refusals = ack.n_refusals ? rp + from : NULL;
        from = j->segs[k].refusals_end;
        env.msg_case = REINT__V1__ENVELOPE__MSG_ACK;
        env.ack = &ack;
        wire_send(c->w, &env);
    }
    free(rs);
    free(rp);
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
        if (!c->dead)
            wire_close(c->w);
    } else if (!c->dead) {
        long applied = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        fi->m.batches_committed++;
        fi->m.snapshots_applied += (uint64_t)applied;
        log_debug("province:%d: batch %" PRIu64 "..%" PRIu64 " committed: %zu snapshots, "
                  "%ld newer, %zu cells",
                  c->province, j->first_seq, j->last_seq, j->n_snapshots, applied, j->n_cells);
        fingest__send_ack(c, j);
        if (c->paused && c->n_jobs < 2) {
            c->paused = 0;
            wire_resume(c->w);
        }
    }
    fingest__job_free(j);
    if (!c->dead && !err)
        fingest__submit(c);
    fingest__unref(c);
}

static void fingest__submit(fconn *c)
{
    if (c->inflight || c->head == NULL || c->dead)
        return;
    fjob *j = c->head;
    char prov[8], inc[40], last[24];
    snprintf(prov, sizeof(prov), "%d", c->province);
    memcpy(inc, "\\x", 2);
    for (int i = 0; i < 16; i++)
        snprintf(inc + 2 + 2 * i, 3, "%02x", c->incarnation[i]);
    snprintf(last, sizeof(last), "%" PRIu64, j->last_seq);
    for (int i = 0; i < A_N; i++)
        sbuf_puts(&j->a[i], "}");
    const char *v[3 + A_N] = {prov, inc, last};
    for (int i = 0; i < A_N; i++) {
        if (j->a[i].failed) {
            log_error("province:%d: batch too large to store", c->province);
            wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "batch too large");
            return;
        }
        v[3 + i] = j->a[i].p;
    }
    c->inflight = 1;
    c->refs++;
    if (db_query(c->fi->o.db, fingest__sql, 3 + A_N, v, fingest__on_committed, j) != 0) {
        c->inflight = 0;
        c->refs--;
        c->fi->m.db_errors++;
        wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "federal store busy");
    }
}

static int fingest__on_batch(fingest *fi, fconn *c, const Reint__V1__RollupBatch *b)
{
    char why[200];
    if (b->first_seq == 0 || b->first_seq > b->last_seq) {
        fingest__protocol_error(fi, c, "rollup batch sequence numbers are not first <= last");
        return 1;
    }
    if (b->first_seq > c->acked_seq + 1) {
        snprintf(why, sizeof(why),
                 "batch starts at %" PRIu64 " but the federal store holds "
                 "only through %" PRIu64,
                 b->first_seq, c->acked_seq);
        fingest__protocol_error(fi, c, why);
        return 1;
    }
    /* One snapshot of another province's municipality refuses the whole batch. */
    for (size_t i = 0; i < b->n_snapshots; i++) {
        const geo_local_level *g = geo_find(b->snapshots[i]->municipality);
        if (g == NULL || g->province != c->province) {
            snprintf(why, sizeof(why),
                     "rollup batch %" PRIu64 "..%" PRIu64 " holds a snapshot "
                     "of municipality %u, which is %s province %d",
                     b->first_seq, b->last_seq, b->snapshots[i]->municipality,
                     g ? "not in" : "unknown, not in", c->province);
            fingest__security(fi, c, why);
            return 1;
        }
    }
    /* A batch arriving while the previous job is in PostgreSQL joins the job queued behind
     * it: under load, consecutive batches become one call, whose province aggregates move
     * once per cell key for all of them (and one transaction commits them); idle, each batch
     * is a call of its own at once. Each batch is still acknowledged by itself. */
    fjob *j = c->tail;
    int joined = j != NULL && !(c->inflight && j == c->head) &&
                 j->n_snapshots + b->n_snapshots <= FINGEST_MERGE_SNAPSHOTS;
    if (!joined) {
        if ((j = calloc(1, sizeof(*j))) == NULL)
            return -1;
        j->c = c;
        j->first_seq = b->first_seq;
        for (int i = 0; i < A_N; i++) {
            sbuf_init(&j->a[i], FINGEST_MAX_ARG);
            sbuf_puts(&j->a[i], "{");
        }
    }
    fseg *ns = realloc(j->segs, (j->n_segs + 1) * sizeof(*ns));
    if (ns == NULL) {
        if (!joined)
            fingest__job_free(j);
        return -1;
    }
    j->segs = ns;
    j->n_segs++;
    j->last_seq = b->last_seq;
    fi->m.batches++;
    for (size_t i = 0; i < b->n_snapshots; i++) {
        /* seqs[i] names each snapshot's outbox sequence (the hub's outbox is compacted, so
         * a batch may have gaps); older senders without seqs number them from first_seq. */
        uint64_t span = b->last_seq - b->first_seq;
        uint64_t seq = b->n_seqs == b->n_snapshots ? b->seqs[i]
                       : i <= span                 ? b->first_seq + i
                                                   : b->last_seq;
        fi->m.snapshots_received++;
        if (fingest__snapshot(fi, j, b->snapshots[i], i, seq) < 0) {
            /* The connection closes; a joined job is queued and freed with it. */
            if (!joined)
                fingest__job_free(j);
            return -1;
        }
    }
    j->segs[j->n_segs - 1] = (fseg){.last_seq = b->last_seq, .refusals_end = j->n_refusals};
    if (b->last_seq > c->acked_seq)
        c->acked_seq = b->last_seq;
    if (joined)
        return 0; /* submitted when the job ahead of it commits */
    if (c->tail)
        c->tail->next = j;
    else
        c->head = j;
    c->tail = j;
    c->n_jobs++;
    if (c->n_jobs >= FINGEST_PAUSE_JOBS && !c->paused) {
        c->paused = 1;
        wire_pause(c->w);
    }
    fingest__submit(c);
    return 0;
}

/* ---- directives ---------------------------------------------------------------------------- */

/* One page of published directives decoded from rows whose columns col..col+3 are serial,
 * key_id, hex body and hex signature; key_id points into the result. */
typedef struct fdirs {
    size_t n;
    uint64_t last;
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
        ds->p[ds->n++] = sd;
        ds->last = serial;
    }
}

static void fingest__dir_catchup(fconn *c);

static void fingest__on_dir_page(void *ud, const PGresult *res, const char *err)
{
    fconn *c = ud;
    fingest *fi = c->fi;
    c->dir_busy = 0;
    if (err) {
        fi->m.db_errors++;
        log_warn("province:%d: cannot read directives to send: %s; retrying later", c->province,
                 err);
    } else if (!c->dead && !wire_is_closing(c->w)) {
        fdirs ds;
        fingest__dirs_load(&ds, res, 0);
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        env.msg_case = REINT__V1__ENVELOPE__MSG_DIRECTIVE;
        for (size_t i = 0; i < ds.n; i++) {
            env.directive = ds.p[i];
            wire_send(c->w, &env);
        }
        if (ds.n) {
            log_info("province:%d: sent directives %" PRIu64 "..%" PRIu64, c->province,
                     c->dir_sent + 1, ds.last);
            c->dir_sent = ds.last;
            fi->m.directives_sent += ds.n;
        }
        if (ds.n == FINGEST_DIR_PAGE)
            c->dir_again = 1;
        fingest__dirs_free(&ds);
        if (c->dir_again)
            fingest__dir_catchup(c);
    }
    fingest__unref(c);
}

/* Sends this session every directive above the last one it was sent, a page at a time. */
static void fingest__dir_catchup(fconn *c)
{
    if (c->dead || !c->session || wire_is_closing(c->w))
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
    c->refs++;
    if (db_query(c->fi->o.db,
                 "SELECT serial, key_id, encode(body, 'hex'), encode(signature, 'hex')"
                 " FROM directives WHERE serial > $1::bigint ORDER BY serial LIMIT 64",
                 1, v, fingest__on_dir_page, c) != 0) {
        /* The next poll or publication tries again. */
        c->dir_busy = 0;
        c->refs--;
        c->fi->m.db_errors++;
    }
}

void fingest_directives_published(fingest *fi)
{
    if (fi == NULL || fi->stopping)
        return;
    for (fconn *c = fi->conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (c->session)
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
            if (c->session && !c->dead && c->dir_sent < max)
                fingest__dir_catchup(c);
    }
    fingest__release(fi);
}

/* Directives published by another federal-api process reach this one's hubs here. */
static void fingest__on_dir_poll(uv_timer_t *t)
{
    fingest *fi = t->data;
    int any = 0;
    /* A peer that has not said Hello within 10 s is closed (slowloris), as at the hub. */
    uint64_t now = uv_now(fi->o.loop);
    for (fconn *c = fi->conns; c; c = c->next) {
        if (!c->session && !c->hello_pending && !c->dead && !wire_is_closing(c->w) &&
            now - c->accepted_ms > 10000) {
            log_warn("%s: no Hello within 10 s; closing", wire_addr(c->w));
            wire_close(c->w);
        }
    }
    if (fi->stopping || fi->dir_poll_busy)
        return;
    for (fconn *c = fi->conns; c; c = c->next)
        any |= c->session && !c->dead;
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
    fingest__unref(c);
}

static int fingest__on_directive_ack(fingest *fi, fconn *c, const Reint__V1__DirectiveAck *a)
{
    if (a->serial == 0 || a->serial > c->dir_sent) {
        log_warn("province:%d acknowledged directive %" PRIu64 ", which this session did not "
                 "send; ignored",
                 c->province, a->serial);
        return 0;
    }
    char prov[8], inc[40], serial[24];
    snprintf(prov, sizeof(prov), "%d", c->province);
    memcpy(inc, "\\x", 2);
    for (int i = 0; i < 16; i++)
        snprintf(inc + 2 + 2 * i, 3, "%02x", c->incarnation[i]);
    snprintf(serial, sizeof(serial), "%" PRIu64, a->serial);
    const char *v[3] = {prov, inc, serial};
    fi->m.directive_acks++;
    c->refs++;
    if (db_query(fi->o.db,
                 "INSERT INTO directive_delivery(province, incarnation, acked_serial, acked_at)"
                 " VALUES ($1::smallint, $2::bytea, $3::bigint, now())"
                 " ON CONFLICT (province, incarnation) DO UPDATE"
                 " SET acked_serial = greatest(directive_delivery.acked_serial,"
                 " excluded.acked_serial), acked_at = excluded.acked_at",
                 3, v, fingest__on_dir_acked, c) != 0) {
        c->refs--;
        fi->m.db_errors++;
        log_warn("province:%d: directive %" PRIu64 " acknowledgement dropped: store busy",
                 c->province, a->serial);
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
    " d.serial, d.key_id, encode(d.body, 'hex'), encode(d.signature, 'hex')"
    " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT serial, key_id, body, signature"
    " FROM directives WHERE serial > coalesce((SELECT acked_serial FROM directive_delivery"
    " WHERE province = $1::smallint AND incarnation = $2::bytea), 0)"
    " ORDER BY serial LIMIT 64) d ON true ORDER BY d.serial";

static void fingest__on_position(void *ud, const PGresult *res, const char *err)
{
    fconn *c = ud;
    c->hello_pending = 0;
    if (c->dead) {
        fingest__unref(c);
        return;
    }
    if (err) {
        c->fi->m.db_errors++;
        log_error("province:%d: cannot read the hub position: %s", c->province, err);
        wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
                  "federal store unavailable; retry later");
        fingest__unref(c);
        return;
    }
    int rows = PQntuples(res);
    c->acked_seq = rows ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    uint64_t dir_acked = rows ? strtoull(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    fdirs ds;
    fingest__dirs_load(&ds, res, 2);
    c->dir_sent = ds.n ? ds.last : dir_acked;
    c->session = 1;
    c->fi->m.sessions++;
    c->fi->m.directives_sent += ds.n;
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__HelloReply r = REINT__V1__HELLO_REPLY__INIT;
    r.acked_seq = c->acked_seq;
    r.clock = clock_now_ms();
    r.n_directives = ds.n;
    r.directives = ds.p;
    env.msg_case = REINT__V1__ENVELOPE__MSG_HELLO_REPLY;
    env.hello_reply = &r;
    log_info("province:%d session from %s: federal store holds through %" PRIu64
             "; %zu directive%s above %" PRIu64 " sent",
             c->province, wire_addr(c->w), c->acked_seq, ds.n, ds.n == 1 ? "" : "s", dir_acked);
    wire_send(c->w, &env);
    if (ds.n == FINGEST_DIR_PAGE)
        c->dir_again = 1;
    fingest__dirs_free(&ds);
    if (c->dir_again)
        fingest__dir_catchup(c);
    fingest__unref(c);
}

static int fingest__on_hello(fingest *fi, fconn *c, const Reint__V1__Hello *h)
{
    if (h->protocol_version != FINGEST_PROTOCOL_VERSION) {
        wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_VERSION,
                  "protocol version not supported (the federal API speaks 1)");
        return 1;
    }
    if (h->incarnation.len != 16) {
        fingest__protocol_error(fi, c, "hello incarnation must be 16 bytes");
        return 1;
    }
    for (fconn *o = fi->conns; o; o = o->next) {
        if (o != c && !o->dead && (o->session || o->hello_pending) && o->province == c->province) {
            log_info("province:%d reconnected; closing its previous session", c->province);
            wire_close(o->w);
        }
    }
    memcpy(c->incarnation, h->incarnation.data, 16);
    char prov[8], inc[40];
    snprintf(prov, sizeof(prov), "%d", c->province);
    memcpy(inc, "\\x", 2);
    for (int i = 0; i < 16; i++)
        snprintf(inc + 2 + 2 * i, 3, "%02x", c->incarnation[i]);
    const char *v[2] = {prov, inc};
    c->hello_pending = 1;
    c->refs++;
    if (db_query(fi->o.db, fingest__sql_hello, 2, v, fingest__on_position, c) != 0) {
        c->refs--;
        c->hello_pending = 0;
        wire_fail(c->w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "federal store busy");
        return 1;
    }
    return 0;
}

static int fingest__on_envelope(wire *w, const Reint__V1__Envelope *env, void *ud)
{
    fconn *c = ud;
    fingest *fi = c->fi;
    int rc;
    if (c->province == 0)
        return 1;
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_HELLO) {
        if (c->session || c->hello_pending) {
            fingest__protocol_error(fi, c, "Hello sent twice");
            return 1;
        }
        rc = fingest__on_hello(fi, c, env->hello);
    } else if (!c->session) {
        fingest__protocol_error(fi, c, "the session must start with Hello and wait for its reply");
        return 1;
    } else if (env->msg_case == REINT__V1__ENVELOPE__MSG_ROLLUP_BATCH) {
        rc = fingest__on_batch(fi, c, env->rollup_batch);
    } else if (env->msg_case == REINT__V1__ENVELOPE__MSG_DIRECTIVE_ACK) {
        rc = fingest__on_directive_ack(fi, c, env->directive_ack);
    } else {
        fingest__protocol_error(fi, c,
                                "unexpected message (a hub sends Hello, RollupBatch and "
                                "DirectiveAck)");
        return 1;
    }
    if (rc < 0) {
        wire_fail(w, REINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "federal internal error");
        return 1;
    }
    return rc != 0 || wire_is_closing(w);
}

static void fingest__on_ready(wire *w, void *ud)
{
    fconn *c = ud;
    const char *peer = wire_peer(w);
    if (strncmp(peer, "province:", 9) != 0 || peer[9] < '1' || peer[9] > '7' || peer[10]) {
        c->fi->m.security_events++;
        log_security("%s (%s): certificate does not name a province; connection closed", peer,
                     wire_addr(w));
        wire_fail(w, REINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN,
                  "certificate does not name a province");
        return;
    }
    c->province = peer[9] - '0';
}

static void fingest__on_close(wire *w, int status, void *ud)
{
    (void)w;
    fconn *c = ud;
    fingest *fi = c->fi;
    if (status != 0 && status != UV_EOF)
        log_info("province:%d: connection closed: %s", c->province, uv_strerror(status));
    c->dead = 1;
    /* Queued batches are dropped unacknowledged; the one in flight finishes on its own. */
    fjob *j = c->inflight && c->head ? c->head->next : c->head;
    if (c->inflight && c->head)
        c->head->next = NULL;
    else
        c->head = NULL;
    while (j) {
        fjob *n = j->next;
        fingest__job_free(j);
        j = n;
    }
    for (fconn **p = &fi->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    fi->m.connected--;
    fingest__unref(c);
}

static const wire_cb fingest__wire_cb = {
    .on_ready = fingest__on_ready,
    .on_envelope = fingest__on_envelope,
    .on_close = fingest__on_close,
};

static void fingest__on_connection(uv_stream_t *server, int status)
{
    fingest *fi = server->data;
    if (status < 0 || fi->stopping)
        return;
    fconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->fi = fi;
    c->refs = 1;
    c->accepted_ms = uv_now(fi->o.loop);
    if (wire_accept(&c->w, fi->o.tls, server, fi->o.max_frame, &fingest__wire_cb, c) != 0) {
        free(c);
        return;
    }
    fi->live++;
    c->next = fi->conns;
    fi->conns = c;
    fi->m.connections++;
    fi->m.connected++;
}

int fingest_start(fingest **out, const fingest_opts *opts, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    fingest *fi = calloc(1, sizeof(*fi));
    if (fi == NULL)
        return UV_ENOMEM;
    fi->o = *opts;
    if (fi->o.max_cells == 0)
        fi->o.max_cells = 20000;
    snprintf(fi->listen, sizeof(fi->listen), "%s", opts->listen);
    fi->o.listen = fi->listen;
    if (netaddr_parse(fi->listen, &sa) != 0) {
        snprintf(err, errlen, "sync_listen \"%s\" is not HOST:PORT", opts->listen);
        free(fi);
        return UV_EINVAL;
    }
    int rc = 0;
    uv_tcp_init(opts->loop, &fi->server);
    fi->server.data = fi;
    if (rc == 0)
        rc = uv_tcp_bind(&fi->server, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&fi->server, 128, fingest__on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", opts->listen, uv_strerror(rc));
        fi->stopping = 1;
        uv_close((uv_handle_t *)&fi->server, NULL);
        return rc; /* leaked on purpose: the caller exits */
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&fi->server, (struct sockaddr *)&bound, &blen);
    fi->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    fi->live = 2; /* the listener and the directive poll timer */
    uv_timer_init(opts->loop, &fi->dir_timer);
    fi->dir_timer.data = fi;
    uint64_t poll = opts->directive_poll_ms ? opts->directive_poll_ms : FINGEST_DIR_POLL_MS;
    uv_timer_start(&fi->dir_timer, fingest__on_dir_poll, poll, poll);
    *out = fi;
    return 0;
}

int fingest_port(const fingest *fi)
{
    return fi->port;
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
    for (fconn *c = fi->conns; c; c = c->next)
        wire_close(c->w);
    uv_timer_stop(&fi->dir_timer);
    uv_close((uv_handle_t *)&fi->dir_timer, fingest__on_handle_closed);
    uv_close((uv_handle_t *)&fi->server, fingest__on_handle_closed);
}

void fingest_get_metrics(const fingest *fi, fingest_metrics *m)
{
    *m = fi->m;
}
