/* Unit tests for the sync protocol's state machines, sender (common/sync.c) against receiver
 * (common/receiver.c), in one process over loopback mutual TLS with certificates made by
 * deploy/pki.sh: resume from the receiver's position, the window, acks and refusals reaching
 * the source, a full resend ending in one ResendComplete, batches kept below the receiver's
 * frame limit, an oversized record dropped (not sent, not resent), a snapshot split into parts
 * that reassemble to the original, and the version error leaving "upgrade needed". The
 * receiver's side here is a test tier that records what it got and acknowledges at once.
 * Runs from tests/unit; every loop is bounded by a timer that fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "receiver.h"
#include "sync.h"
#include "tls.h"

#define PKI        "../../deploy/pki.sh"
#define TIMEOUT_MS 10000
#define MAX_ITEMS  4096

static char g_dir[64];

/* ---- the sender's source: an in-memory outbox --------------------------------------------- */

typedef struct item {
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
} item;

typedef struct src {
    item items[MAX_ITEMS];
    size_t n;
    uint64_t acked;    /* the last acked() position */
    uint64_t acks[64]; /* every acked() position, in order */
    size_t n_acks;
    uint64_t refused_seq[16]; /* refusals filed */
    size_t n_refused;
    uint64_t dropped_seq[16]; /* entries filed by oversized() */
    size_t n_dropped;
    uint8_t incarnation[16];
} src;

static int src_read(void *sp, uint64_t after, size_t max, sync_entry_cb cb, void *ud)
{
    src *s = sp;
    int n = 0;
    for (size_t i = 0; i < s->n && (size_t)n < max; i++) {
        if (s->items[i].seq <= after)
            continue;
        if (cb(ud, s->items[i].seq, s->items[i].seq, s->items[i].bytes, s->items[i].len) != 0)
            break;
        n++;
    }
    return n;
}

static int src_resume(void *sp, uint64_t seq, uint64_t version, uint64_t *after)
{
    (void)sp;
    (void)version;
    *after = seq;
    return 0;
}

static int src_acked(void *sp, uint64_t seq, const Reint__V1__Refusal *const *r, size_t n)
{
    src *s = sp;
    s->acked = seq;
    if (s->n_acks < 64)
        s->acks[s->n_acks++] = seq;
    for (size_t i = 0; i < n && s->n_refused < 16; i++)
        s->refused_seq[s->n_refused++] = r[i]->seq;
    return 0;
}

static uint64_t src_last_seq(void *sp)
{
    src *s = sp;
    return s->n ? s->items[s->n - 1].seq : 0;
}

static const uint8_t *src_incarnation(void *sp)
{
    return ((src *)sp)->incarnation;
}

static int src_oversized(void *sp, uint64_t seq, const uint8_t *it, size_t len, const char *why,
                         uint8_t id[16], int *kind)
{
    (void)it;
    (void)len;
    (void)why;
    src *s = sp;
    s->dropped_seq[s->n_dropped++] = seq;
    memset(id, 0xab, 16);
    *kind = 1;
    return 0;
}

/* ---- the receiver's side: a test tier ------------------------------------------------------ */

typedef struct tier {
    uint64_t hello_acked;    /* the position the HelloReply gives */
    int resend;              /* HelloReply.resend_requested */
    int refuse_version;      /* answer Hello with the version error */
    uint64_t refuse_seq;     /* refuse the item of this sequence (0: none) */
    uint64_t got[MAX_ITEMS]; /* sequences of the records received, in order */
    size_t n_got;
    uint64_t dropped[16];
    size_t n_dropped;
    int resend_completes, batches, hellos;
    size_t parts_bytes; /* the concatenated parts of a split snapshot */
    uint8_t parts[1 << 20];
    uint32_t parts_seen;
    uint64_t part_ack[64]; /* the ack of each part's batch */
    size_t n_part_acks;
    uint32_t version; /* the sender's protocol version */
    uint32_t calendar;
} tier;

static int tier_identify(void *ud, const char *identity, uint32_t *scope, char *why, size_t n)
{
    (void)ud;
    if (strcmp(identity, "municipality:10703") != 0) {
        snprintf(why, n, "not the test node");
        return REINT_EFORBIDDEN;
    }
    *scope = 10703;
    return 0;
}

static int tier_hello(void *ud, receiver_peer *p, const Reint__V1__Hello *h)
{
    tier *t = ud;
    t->hellos++;
    t->version = h->protocol_version;
    t->calendar = (uint32_t)h->calendar;
    if (t->refuse_version) {
        Reint__V1__Envelope env = REINT__V1__ENVELOPE__INIT;
        Reint__V1__Error err = REINT__V1__ERROR__INIT;
        err.code = REINT__V1__ERROR_CODE__ERROR_CODE_VERSION;
        err.message = "protocol version not supported (test)";
        env.msg_case = REINT__V1__ENVELOPE__MSG_ERROR;
        env.error = &err;
        receiver_send(p, &env);
        receiver_close(p);
        return 1;
    }
    Reint__V1__HelloReply r = REINT__V1__HELLO_REPLY__INIT;
    r.acked_seq = t->hello_acked;
    r.resend_requested = t->resend;
    return receiver_welcome(p, &r);
}

static int tier_message(void *ud, receiver_peer *p, const Reint__V1__Envelope *env)
{
    tier *t = ud;
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_RESEND_COMPLETE) {
        t->resend_completes++;
        return receiver_ack(p, receiver_peer_position(p), 0, NULL, 0);
    }
    if (env->msg_case == REINT__V1__ENVELOPE__MSG_ROLLUP_BATCH) {
        const Reint__V1__RollupBatch *b = env->rollup_batch;
        if (receiver_check_batch(p, b->first_seq, b->last_seq, b->seqs, b->n_seqs, b->n_snapshots))
            return 1;
        t->batches++;
        const Reint__V1__RollupSnapshot *s = b->n_snapshots == 1 ? b->snapshots[0] : NULL;
        if (s && s->parts > 1) {
            size_t n = reint__v1__rollup_snapshot__get_packed_size(s);
            assert_true(t->parts_bytes + n <= sizeof(t->parts));
            assert_int_equal(s->part, t->parts_seen);
            reint__v1__rollup_snapshot__pack(s, t->parts + t->parts_bytes);
            t->parts_bytes += n;
            t->parts_seen++;
            if (s->part + 1 < s->parts) {
                t->part_ack[t->n_part_acks++] = receiver_peer_position(p);
                return receiver_ack(p, receiver_peer_position(p), 0, NULL, 0);
            }
        }
        for (size_t i = 0; i < b->n_seqs; i++)
            t->got[t->n_got++] = b->seqs[i];
        receiver_peer_advance(p, b->last_seq);
        t->part_ack[t->n_part_acks++] = b->last_seq;
        return receiver_ack(p, b->last_seq, 0, NULL, 0);
    }
    assert_int_equal(env->msg_case, REINT__V1__ENVELOPE__MSG_BATCH);
    const Reint__V1__Batch *b = env->batch;
    if (receiver_check_batch(p, b->first_seq, b->last_seq, b->seqs, b->n_seqs, b->n_records))
        return 1;
    t->batches++;
    receiver_refusal ref;
    size_t n_ref = 0;
    for (size_t i = 0; i < b->n_seqs; i++) {
        t->got[t->n_got++] = b->seqs[i];
        if (b->seqs[i] == t->refuse_seq) {
            memset(&ref, 0, sizeof(ref));
            ref.seq = b->seqs[i];
            snprintf(ref.field, sizeof(ref.field), "test");
            snprintf(ref.reason, sizeof(ref.reason), "refused by the test");
            n_ref = 1;
        }
    }
    for (size_t i = 0; i < b->n_dropped; i++)
        t->dropped[t->n_dropped++] = b->dropped[i]->seq;
    receiver_peer_advance(p, b->last_seq);
    return receiver_ack(p, b->last_seq, 0, n_ref ? &ref : NULL, n_ref);
}

/* ---- one run: a receiver and a sender in "once" mode on one loop ----------------------------- */

typedef struct run {
    uv_loop_t loop;
    uv_timer_t timeout;
    receiver *rx;
    sync_client *sc;
    int done, status, timed_out;
    sync_state st;
} run;

/* The sender in once mode frees itself after this call: its state is taken here. */
static void on_done(void *ud, int status)
{
    run *r = ud;
    r->done = 1;
    r->status = status;
    sync_get_state(r->sc, &r->st);
    receiver_stop(r->rx);
    uv_close((uv_handle_t *)&r->timeout, NULL);
}

static void on_timeout(uv_timer_t *t)
{
    run *r = t->data;
    r->timed_out = 1;
    sync_stop(r->sc);
    receiver_stop(r->rx);
    uv_close((uv_handle_t *)&r->timeout, NULL);
}

static tls_ctx *ctx_of(enum tls_mode mode, const char *stem)
{
    char ca[128], crt[128], key[128], err[256];
    snprintf(ca, sizeof(ca), "%s/ca.crt", g_dir);
    snprintf(crt, sizeof(crt), "%s/%s.crt", g_dir, stem);
    snprintf(key, sizeof(key), "%s/%s.key", g_dir, stem);
    tls_ctx_opts o = {mode, ca, crt, key, NULL};
    tls_ctx *c = NULL;
    if (tls_ctx_new(&c, &o, err, sizeof(err)) != 0)
        fail_msg("tls_ctx_new %s: %s", stem, err);
    return c;
}

/* Runs a sender of s's entries against tier t with the receiver's frame limit max_frame (0:
 * default) until the sender is done (or the give-up time passes). Returns the sender's state. */
static sync_state run_once(src *s, tier *t, size_t max_frame, enum sync_payload payload, int window,
                           int batch)
{
    run r;
    char err[256], addr[64];
    memset(&r, 0, sizeof(r));
    uv_loop_init(&r.loop);
    tls_ctx *sctx = ctx_of(TLS_MODE_MUTUAL_SERVER, "province-1");
    tls_ctx *cctx = ctx_of(TLS_MODE_MUTUAL_CLIENT, "municipality-10703");
    receiver_opts ro = {
        .loop = &r.loop,
        .tls = sctx,
        .listen = "127.0.0.1:0",
        .max_frame = max_frame,
        .what = "node",
        .self = "test tier",
        .ops = {.identify = tier_identify, .hello = tier_hello, .message = tier_message},
        .ud = t};
    assert_int_equal(receiver_start(&r.rx, &ro, err, sizeof(err)), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", receiver_port(r.rx));
    sync_opts so = {.loop = &r.loop,
                    .source = {.src = s,
                               .read = src_read,
                               .resume_point = src_resume,
                               .acked = src_acked,
                               .last_seq = src_last_seq,
                               .incarnation = src_incarnation,
                               .oversized = src_oversized},
                    .payload = payload,
                    .identity = "municipality:10703",
                    .calendar = REINT__V1__CALENDAR__CALENDAR_AD,
                    .tls = cctx,
                    .hub = addr,
                    .expect_peer = "province:1",
                    .window = window,
                    .batch_records = batch,
                    .backoff_base_ms = 10,
                    .backoff_cap_ms = 50,
                    .once = 1,
                    .give_up_ms = 2000,
                    .on_done = on_done,
                    .ud = &r};
    assert_int_equal(sync_start(&r.sc, &so), 0);
    uv_timer_init(&r.loop, &r.timeout);
    r.timeout.data = &r;
    uv_timer_start(&r.timeout, on_timeout, TIMEOUT_MS, 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_false(r.timed_out);
    sync_state st = r.st;
    st.connected = r.status; /* the once-mode status, for the caller */
    assert_int_equal(uv_loop_close(&r.loop), 0);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
    return st;
}

static void fill(src *s, size_t n, size_t len)
{
    memset(s, 0, sizeof(*s));
    memset(s->incarnation, 7, 16);
    for (size_t i = 0; i < n; i++) {
        s->items[i].seq = i + 1;
        s->items[i].len = len;
        s->items[i].bytes = calloc(1, len);
        /* A Record with only its version field (3), so that the receiver decodes it. */
        s->items[i].bytes[0] = 0x18;
        s->items[i].bytes[1] = (uint8_t)(i % 100 + 1);
        if (len > 3) { /* then an unknown field 99 filling the rest */
            s->items[i].bytes[2] = 0x9a;
            s->items[i].bytes[3] = 0x06;
            size_t rest = len - 5;
            assert_true(rest < 128);
            s->items[i].bytes[4] = (uint8_t)rest;
        }
    }
    s->n = n;
}

static void drop(src *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].bytes);
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void test_sync_sends_every_entry_once_in_order_and_the_source_sees_the_acks(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    fill(&s, 100, 2);
    sync_state st = run_once(&s, &t, 0, SYNC_RECORDS, 2, 10);
    assert_int_equal(st.connected, 0); /* once-mode status: done */
    assert_int_equal(t.n_got, 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(t.got[i], i + 1);
    assert_int_equal(t.batches, 10);
    assert_int_equal(s.acked, 100);
    assert_int_equal(t.version, SYNC_PROTOCOL_VERSION);
    assert_int_equal(t.calendar, REINT__V1__CALENDAR__CALENDAR_AD);
    drop(&s);
}

static void test_sync_resumes_after_the_receivers_position(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    t.hello_acked = 40;
    fill(&s, 100, 2);
    run_once(&s, &t, 0, SYNC_RECORDS, 4, 25);
    assert_int_equal(t.n_got, 60);
    assert_int_equal(t.got[0], 41);
    assert_int_equal(s.acked, 100);
    drop(&s);
}

static void test_sync_full_resend_ends_with_one_resend_complete(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    t.resend = 1;
    fill(&s, 30, 2);
    run_once(&s, &t, 0, SYNC_RECORDS, 8, 7);
    assert_int_equal(t.n_got, 30);
    assert_int_equal(t.resend_completes, 1);
    drop(&s);
}

static void test_sync_refusals_reach_the_source(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    t.refuse_seq = 17;
    fill(&s, 40, 2);
    sync_state st = run_once(&s, &t, 0, SYNC_RECORDS, 3, 10);
    assert_int_equal(s.n_refused, 1);
    assert_int_equal(s.refused_seq[0], 17);
    assert_int_equal(st.refusals, 1);
    drop(&s);
}

static void test_sync_batches_stay_below_the_receivers_frame_limit(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    /* 100 entries of 100 bytes, at most 2000 a batch by count: the receiver's 1024-byte
     * frames would refuse every batch built by count alone (and close the session). */
    fill(&s, 100, 100);
    run_once(&s, &t, 1024, SYNC_RECORDS, 4, 2000);
    assert_int_equal(t.n_got, 100);
    assert_true(t.batches >= 10);
    assert_int_equal(s.acked, 100);
    drop(&s);
}

static void test_sync_record_above_the_frame_limit_is_dropped_not_resent(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    fill(&s, 20, 2);
    /* Entry 7 alone is larger than the receiver's frames. */
    free(s.items[6].bytes);
    s.items[6].len = 3000;
    s.items[6].bytes = calloc(1, 3000);
    s.items[6].bytes[0] = 0x18;
    s.items[6].bytes[1] = 0x07;
    run_once(&s, &t, 1024, SYNC_RECORDS, 4, 2000);
    assert_int_equal(t.n_got, 19);
    for (size_t i = 0; i < t.n_got; i++)
        assert_int_not_equal(t.got[i], 7);
    assert_int_equal(s.n_dropped, 1);
    assert_int_equal(s.dropped_seq[0], 7);
    assert_int_equal(t.n_dropped, 1);
    assert_int_equal(t.dropped[0], 7);
    assert_int_equal(s.acked, 20);
    drop(&s);
}

/* A packed RollupSnapshot of n cells. */
static uint8_t *snapshot(size_t n, size_t *len)
{
    Reint__V1__RollupSnapshot snap = REINT__V1__ROLLUP_SNAPSHOT__INIT;
    Reint__V1__RollupCell *cells = calloc(n, sizeof(*cells));
    Reint__V1__RollupCell **cp = calloc(n, sizeof(*cp));
    char(*keys)[16] = calloc(n, 16);
    char **kp = calloc(n, sizeof(char *));
    snap.municipality = 10703;
    snap.period = "2026";
    snap.revision = 99;
    for (size_t i = 0; i < n; i++) {
        reint__v1__rollup_cell__init(&cells[i]);
        cells[i].indicator = "participants_registered";
        cells[i].grouping = "sex";
        snprintf(keys[i], 16, "K%zu", i);
        kp[i] = keys[i];
        cells[i].key = &kp[i];
        cells[i].n_key = 1;
        cells[i].numerator = (int64_t)i + 1;
        cp[i] = &cells[i];
    }
    snap.cells = cp;
    snap.n_cells = n;
    *len = reint__v1__rollup_snapshot__get_packed_size(&snap);
    uint8_t *out = malloc(*len);
    reint__v1__rollup_snapshot__pack(&snap, out);
    free(cells);
    free(cp);
    free(keys);
    free(kp);
    return out;
}

static void test_sync_snapshot_above_the_frame_limit_goes_in_parts_that_reassemble(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    memset(&s, 0, sizeof(s));
    memset(s.incarnation, 9, 16);
    s.items[0].seq = 5; /* a compacted outbox: sequences 1..4 are gone */
    s.items[0].bytes = snapshot(300, &s.items[0].len);
    s.n = 1;
    assert_true(s.items[0].len > 4 * 1024);
    run_once(&s, &t, 1024, SYNC_SNAPSHOTS, 4, 200);
    assert_true(t.parts_seen >= 5);
    /* Every part's batch before the last acknowledged only what precedes the snapshot. */
    for (size_t i = 0; i + 1 < t.n_part_acks; i++)
        assert_int_equal(t.part_ack[i], 0);
    assert_int_equal(t.part_ack[t.n_part_acks - 1], 5);
    assert_int_equal(s.acked, 5);
    /* The source hears that the snapshot is through only once its last part is acked. */
    assert_int_equal(s.n_acks, t.parts_seen);
    for (size_t i = 0; i + 1 < s.n_acks; i++)
        assert_int_equal(s.acks[i], 0);
    Reint__V1__RollupSnapshot *whole =
        reint__v1__rollup_snapshot__unpack(NULL, t.parts_bytes, t.parts);
    assert_non_null(whole);
    assert_int_equal(whole->n_cells, 300);
    for (size_t i = 0; i < 300; i++) {
        char k[16];
        snprintf(k, sizeof(k), "K%zu", i);
        assert_string_equal(whole->cells[i]->key[0], k);
        assert_int_equal(whole->cells[i]->numerator, (int64_t)i + 1);
    }
    assert_int_equal(whole->revision, 99);
    reint__v1__rollup_snapshot__free_unpacked(whole, NULL);
    drop(&s);
}

static void test_sync_version_error_means_upgrade_needed_and_nothing_sent(void **state)
{
    (void)state;
    static src s;
    static tier t;
    memset(&t, 0, sizeof(t));
    t.refuse_version = 1;
    fill(&s, 10, 2);
    sync_state st = run_once(&s, &t, 0, SYNC_RECORDS, 4, 10);
    assert_int_not_equal(st.connected, 0); /* gave up: not done */
    assert_true(st.upgrade_needed);
    assert_non_null(strstr(st.last_error, "upgrade needed"));
    assert_int_equal(t.n_got, 0);
    assert_int_equal(s.acked, 0);
    assert_int_equal(s.n_dropped, 0);
    drop(&s);
}

static int setup(void **state)
{
    char cmd[512];
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_sync.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(cmd, sizeof(cmd),
             "%s init %s >%s/pki.log 2>&1 && %s issue %s province 1 municipality 10703 "
             ">>%s/pki.log 2>&1",
             PKI, g_dir, g_dir, PKI, g_dir, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "deploy/pki.sh could not make the test certificates (see %s/pki.log)\n",
                g_dir);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_sends_every_entry_once_in_order_and_the_source_sees_the_acks),
        cmocka_unit_test(test_sync_resumes_after_the_receivers_position),
        cmocka_unit_test(test_sync_full_resend_ends_with_one_resend_complete),
        cmocka_unit_test(test_sync_refusals_reach_the_source),
        cmocka_unit_test(test_sync_batches_stay_below_the_receivers_frame_limit),
        cmocka_unit_test(test_sync_record_above_the_frame_limit_is_dropped_not_resent),
        cmocka_unit_test(test_sync_snapshot_above_the_frame_limit_goes_in_parts_that_reassemble),
        cmocka_unit_test(test_sync_version_error_means_upgrade_needed_and_nothing_sent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
