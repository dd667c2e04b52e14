#include "uplink.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dirstore.h"
#include "log.h"
#include "review.h"
#include "reviews.h"
#include "rid.h"
#include "store.h"

/* Coverage is sent at most this often while it changes (and at every session start), unless
 * the configuration says otherwise ([uplink] coverage_seconds). */
#define UPLINK_COVERAGE_MS 10000

struct uplink {
    uplink_opts o;
    sync_client *client;
    uint64_t coverage_gen;     /* the ingest's coverage generation last sent */
    uint64_t coverage_sent_ms; /* monotonic time of that */
    int coverage_due;          /* a session started: send it at once */
    uint8_t incarnation[16];
    char identity[32], expect[16];
    sbuf buf; /* one packed snapshot */
    /* The review log's way up (reviews.h): the federal tier takes it when its HelloReply says
     * so; changes go one Reviews message at a time, each acknowledged once stored. */
    int fed_reviews;       /* this session's federal tier takes Reviews */
    int reviews_inflight;  /* a Reviews message waits for its ReviewAck */
    int recovering;        /* the federal tier holds changes this hub may lack: asked for */
    uint64_t reviews_sent; /* the highest clock sent in this session (or held there) */
    size_t fed_max_frame;  /* the federal tier's frame limit */
};

/* The uplink's own incarnation: made once with the hub store, so that a rebuilt hub is a
 * new sender to the federal tier. */
static int uplink__incarnation(uplink *u)
{
    if (store_meta_get_blob(u->o.db, "uplink_incarnation", u->incarnation, 16) == 0)
        return 0;
    if (rid_random(u->incarnation, 16) != 0)
        return -1;
    return store_meta_set_blob(u->o.db, "uplink_incarnation", u->incarnation, 16);
}

static int src_read(void *src, uint64_t after, size_t max, sync_entry_cb cb, void *ud)
{
    uplink *u = src;
    int n = 0, rc;
    sqlite3_stmt *st = store_prepare(u->o.db, "SELECT seq, municipality, period, revision"
                                              " FROM rollup_outbox WHERE seq > ?1"
                                              " ORDER BY seq LIMIT ?2");
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)after);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0), revision;
        uint32_t mun = (uint32_t)sqlite3_column_int64(st, 1);
        const char *period = (const char *)sqlite3_column_text(st, 2);
        /* The stored bytes go out as they are: no decoding and re-encoding per snapshot. */
        int r = rollup_snapshot_packed(u->o.engine, mun, period, &revision, &u->buf);
        if (r != 0) {
            log_error("uplink: snapshot %u %s cannot be built (%d)", mun, period, r);
            n = -1;
            break;
        }
        if (cb(ud, seq, revision, (const uint8_t *)u->buf.p, u->buf.len) != 0)
            break;
        n++;
    }
    if (n >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error("uplink: reading the outbox: %s", sqlite3_errmsg(u->o.db));
        n = -1;
    }
    sqlite3_finalize(st);
    return n;
}

static int src_resume(void *src, uint64_t seq, uint64_t version, uint64_t *after)
{
    uplink *u = src;
    int64_t mine = 0;
    if (store_meta_get_int_or(u->o.db, "uplink_acked_seq", 0, &mine) != 0)
        return REINT_EDB;
    *after = seq;
    if (seq <= (uint64_t)mine)
        return 0;
    /* As at the node (outbox_resume_point): entries the federal tier cannot hold carry
     * revisions above the newest it holds. */
    sqlite3_stmt *st = store_prepare(u->o.db, "SELECT min(seq) FROM rollup_outbox WHERE"
                                              " seq > ?1 AND seq <= ?2 AND revision > ?3");
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, mine);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    sqlite3_bind_int64(st, 3, (int64_t)version);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *after = (uint64_t)sqlite3_column_int64(st, 0) - 1;
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 0 : REINT_EDB;
}

static int src_acked(void *src, uint64_t seq, const Reint__V1__Refusal *const *refusals, size_t n)
{
    uplink *u = src;
    for (size_t i = 0; i < n; i++)
        log_error("federal tier refused snapshot at sequence %llu: %s: %s",
                  (unsigned long long)refusals[i]->seq, refusals[i]->field, refusals[i]->reason);
    return store_meta_set_int(u->o.db, "uplink_acked_seq", (int64_t)seq);
}

static uint64_t src_last_seq(void *src)
{
    uplink *u = src;
    int64_t v = 0;
    /* A read error answers 0 ("nothing issued"): the session then sends what it reads, and a
     * failing read closes it (src_read). */
    sqlite3_stmt *st = store_prepare(u->o.db, "SELECT coalesce(max(seq), 0) FROM rollup_outbox");
    if (st && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        log_error("uplink: outbox position not read: %s", sqlite3_errmsg(u->o.db));
    sqlite3_finalize(st);
    return (uint64_t)v;
}

static const uint8_t *src_incarnation(void *src)
{
    return ((uplink *)src)->incarnation;
}

static int on_directive(void *ud, const Reint__V1__SignedDirective *sd, uint64_t *ack)
{
    uplink *u = ud;
    char err[256];
    return ingest_directive(u->o.in, sd, ack, err, sizeof(err));
}

static size_t directive_gaps(void *ud, uint64_t *out, size_t max)
{
    uplink *u = ud;
    size_t n = 0;
    return dirstore_gaps(u->o.db, out, max, &n) == 0 ? n : 0;
}

/* Sends the hub's Coverage: per node, live records, dead letters, last sync and calendar. */
static void uplink__coverage(uplink *u)
{
    sqlite3_stmt *st = store_prepare(
        u->o.db, "SELECT n.municipality, n.calendar, n.last_sync_ms,"
                 " (SELECT count(*) FROM records r WHERE r.municipality=n.municipality"
                 "  AND r.deleted=0),"
                 " (SELECT count(*) FROM dead_letters d WHERE d.municipality=n.municipality)"
                 " FROM nodes n ORDER BY n.municipality");
    if (st == NULL)
        return;
    uint64_t gen = ingest_coverage_generation(u->o.in);
    Reint__V1__MunicipalityCoverage *mc = NULL, **mp = NULL;
    size_t n = 0, cap = 0, cap2 = 0;
    int step, failed = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sbuf_grow((void **)&mc, &cap, n + 1, sizeof(*mc)) != 0 ||
            sbuf_grow((void **)&mp, &cap2, n + 1, sizeof(*mp)) != 0) {
            failed = 1;
            break;
        }
        Reint__V1__MunicipalityCoverage *m = &mc[n++];
        reint__v1__municipality_coverage__init(m);
        m->municipality = (uint32_t)sqlite3_column_int64(st, 0);
        m->calendar = (Reint__V1__Calendar)sqlite3_column_int(st, 1);
        m->last_sync_ms = (uint64_t)sqlite3_column_int64(st, 2);
        m->records = (uint64_t)sqlite3_column_int64(st, 3);
        m->dead_letters = (uint64_t)sqlite3_column_int64(st, 4);
    }
    if (!failed && step != SQLITE_DONE) {
        log_error("uplink: coverage not read: %s", sqlite3_errmsg(u->o.db));
        failed = 1;
    }
    sqlite3_finalize(st);
    if (!failed) {
        for (size_t i = 0; i < n; i++)
            mp[i] = &mc[i];
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        Reint__V1__Coverage cv = REINT__V1__COVERAGE__INIT;
        cv.n_municipalities = n;
        cv.municipalities = mp;
        env.msg_case = REINT__V1__ENVELOPE__MSG_COVERAGE;
        env.coverage = &cv;
        int rc = sync_send(u->client, &env);
        if (rc == 0) {
            u->coverage_gen = gen;
            u->coverage_sent_ms = clock_mono_ms();
            u->coverage_due = 0;
        } else if (rc != UV_ENOTCONN) {
            log_error("uplink: coverage of %zu municipalities not sent: %s", n, reint_strerror(rc));
            u->coverage_due = 0;
        }
    }
    free(mc);
    free(mp);
}

/* Sends the federal tier the province's next changes of the review log. */
static void uplink__push_reviews(uplink *u)
{
    if (!u->fed_reviews || u->recovering || u->reviews_inflight)
        return;
    Reint__V1__Reviews *r = NULL;
    if (reviews_load(u->o.db, 0, u->reviews_sent, u->fed_max_frame - 128, &r) != 0) {
        log_error("uplink: review changes not read; sent at the next session");
        return;
    }
    if (r->n_reviews > 0) {
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        env.msg_case = REINT__V1__ENVELOPE__MSG_REVIEWS;
        env.reviews = r;
        if (sync_send(u->client, &env) == 0) {
            u->reviews_sent = r->reviews[r->n_reviews - 1]->clock;
            u->reviews_inflight = 1;
        }
    }
    reviews_free(r);
}

/* Asks the federal tier for the province's changes above after (a hub that lost its store
 * recovers its decisions). */
static int uplink__request_reviews(uplink *u, uint64_t after)
{
    Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
    Reint__V1__ReviewRequest rq = REINT__V1__REVIEW_REQUEST__INIT;
    rq.after = after;
    env.msg_case = REINT__V1__ENVELOPE__MSG_REVIEW_REQUEST;
    env.review_request = &rq;
    return sync_send(u->client, &env);
}

static void uplink__on_session(void *ud, const Reint__V1__HelloReply *r)
{
    uplink *u = ud;
    u->coverage_due = 1;
    uplink__coverage(u);
    u->fed_reviews = r->reviews;
    u->reviews_inflight = u->recovering = 0;
    u->fed_max_frame = r->max_frame > 4096 ? r->max_frame : 4u << 20;
    if (!u->fed_reviews)
        return; /* a federal tier that does not keep decisions yet: nothing goes up */
    int64_t acked = 0;
    /* Without the position, nothing goes up this session: pushing from the last session's
     * reviews_sent could skip the changes between it and what the federal tier holds. */
    u->reviews_sent = r->reviews_through;
    if (store_meta_get_int_or(u->o.db, "review_federal_acked", 0, &acked) != 0) {
        log_error("uplink: the review position is not read; no review change goes up this "
                  "session");
        u->fed_reviews = 0;
        return;
    }
    if (r->reviews_through > REVIEW_CLOCK_MAX ||
        (r->reviews_through >> 16) > clock_now_ms() + REVIEW_AHEAD_MS) {
        log_warn("uplink: the federal tier holds review changes up to clock %llu, ahead of this "
                 "hub's clock; none sent this session",
                 (unsigned long long)r->reviews_through);
        u->fed_reviews = 0;
        return;
    }
    reviews_observe(ingest_reviews(u->o.in), r->reviews_through);
    /* The federal tier holds changes this hub never had acknowledged: a hub rebuilt or restored
     * from an older copy takes them back before it sends anything. */
    if (r->reviews_through > (uint64_t)acked) {
        log_info("uplink: the federal tier holds review changes up to clock %llu, this hub "
                 "through %lld; recovering them",
                 (unsigned long long)r->reviews_through, (long long)acked);
        if (uplink__request_reviews(u, (uint64_t)acked) == 0)
            u->recovering = 1;
        return;
    }
    uplink__push_reviews(u);
}

/* Reviews (the federal tier's answer to a ReviewRequest) and ReviewAck. */
static int uplink__on_message(void *ud, sync_client *s, const Reint__V1__Envelope *env)
{
    uplink *u = ud;
    char why[300];
    (void)s;
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_REVIEW_ACK) {
        if (!u->reviews_inflight || env->review_ack->through != u->reviews_sent) {
            log_warn("uplink: a ReviewAck for changes this session did not send; closing");
            return -1;
        }
        u->reviews_inflight = 0;
        if (store_meta_set_int(u->o.db, "review_federal_acked", (int64_t)u->reviews_sent) != 0)
            return -1;
        uplink__push_reviews(u);
        return 0;
    }
    if (env->msg_case != REINT__V1__ENVELOPE__MSG_REVIEWS || !u->recovering) {
        log_warn("uplink: unexpected message %d from the federal tier; closing",
                 (int)env->msg_case);
        return -1;
    }
    const Reint__V1__Reviews *r = env->reviews;
    int rc = ingest_reviews_recovered(u->o.in, r, why, sizeof(why));
    if (rc == REINT_EFORBIDDEN || rc == REINT_EINVAL) {
        log_security("uplink: the federal tier sent review changes that were refused: %s", why);
        return -1;
    }
    if (rc != 0)
        return -1;
    if (r->n_reviews == REVIEW_PAGE)
        return uplink__request_reviews(u, r->reviews[r->n_reviews - 1]->clock) == 0 ? 0 : -1;
    /* Everything the federal tier holds is here now. */
    log_info("uplink: review changes recovered from the federal tier through clock %llu",
             (unsigned long long)u->reviews_sent);
    if (store_meta_set_int(u->o.db, "review_federal_acked", (int64_t)u->reviews_sent) != 0)
        return -1;
    u->recovering = 0;
    uplink__push_reviews(u);
    return 0;
}

static void uplink__fill_hello(void *ud, Reint__V1__Hello *h)
{
    (void)ud;
    h->reviews = 1; /* this hub takes its province's changes back (recovery) */
}

int uplink_start(uplink **out, const uplink_opts *opts, char *err, size_t errlen)
{
    uplink *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return UV_ENOMEM;
    sbuf_init(&u->buf, ROLLUP_SNAPSHOT_MAX);
    u->o = *opts;
    if (u->o.coverage_ms <= 0)
        u->o.coverage_ms = UPLINK_COVERAGE_MS;
    if (uplink__incarnation(u) != 0) {
        snprintf(err, errlen, "cannot record the uplink incarnation in the hub store");
        free(u);
        return -1;
    }
    snprintf(u->identity, sizeof(u->identity), "province:%u", opts->province);
    snprintf(u->expect, sizeof(u->expect), "federal");
    sync_opts so = {.loop = opts->loop,
                    .source = {.src = u,
                               .read = src_read,
                               .resume_point = src_resume,
                               .acked = src_acked,
                               .last_seq = src_last_seq,
                               .incarnation = src_incarnation},
                    .payload = SYNC_SNAPSHOTS,
                    .identity = u->identity,
                    .tls = opts->tls,
                    .hub = opts->federal,
                    .expect_peer = u->expect,
                    .on_directive = on_directive,
                    .directive_gaps = directive_gaps,
                    .on_session = uplink__on_session,
                    .on_message = uplink__on_message,
                    .fill_hello = uplink__fill_hello,
                    .window = opts->window,
                    .batch_records = opts->batch_snapshots,
                    .backoff_base_ms = opts->backoff_base_ms,
                    .backoff_cap_ms = opts->backoff_cap_ms,
                    /* The federal tier acks up to 2,000 snapshots at one PostgreSQL commit,
                     * which a fresh database's first load may slow (docs/OPERATIONS.md). */
                    .heard_wait_ms = 600 * 1000,
                    .ud = u};
    int rc = sync_start(&u->client, &so);
    if (rc != 0) {
        snprintf(err, errlen, "uplink to %s: %s", opts->federal, uv_strerror(rc));
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

void uplink_stop(uplink *u)
{
    if (u == NULL)
        return;
    sync_stop(u->client);
    sbuf_free(&u->buf);
    free(u);
}

void uplink_kick(uplink *u)
{
    if (u == NULL)
        return;
    /* Review changes first: a change since approval goes up before the new figures it
     * follows from (the federal tier's approved-only answers drop the month at once). */
    uplink__push_reviews(u);
    sync_kick(u->client);
    if (u->coverage_due || (ingest_coverage_generation(u->o.in) != u->coverage_gen &&
                            clock_mono_ms() - u->coverage_sent_ms >= (uint64_t)u->o.coverage_ms))
        uplink__coverage(u);
}

void uplink_get_state(const uplink *u, sync_state *st)
{
    sync_get_state(u->client, st);
}

int64_t uplink_backlog(uplink *u)
{
    int64_t acked = 0, n = -1;
    if (store_meta_get_int_or(u->o.db, "uplink_acked_seq", 0, &acked) != 0)
        return -1;
    sqlite3_stmt *st = store_prepare(u->o.db, "SELECT count(*) FROM rollup_outbox WHERE seq > ?1");
    if (st) {
        sqlite3_bind_int64(st, 1, acked);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n; /* -1: unknown (a read error, logged) */
}
