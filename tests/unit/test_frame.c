#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

typedef struct got {
    int n;
    size_t lens[16];
    uint8_t last[64];
} got;

static int on_frame(void *ud, const uint8_t *p, size_t len)
{
    got *g = ud;
    g->lens[g->n++] = len;
    memcpy(g->last, p, len < sizeof(g->last) ? len : sizeof(g->last));
    return 0;
}

static void test_frame_rejects_oversize_before_alloc(void **state)
{
    (void)state;
    frame_reader r;
    got g = {0};
    frame_reader_init(&r, 1024);
    uint8_t hdr[4] = {0x40, 0, 0, 0}; /* 1 GiB announced */
    assert_int_equal(frame_reader_feed(&r, hdr, 4, on_frame, &g), REINT_ETOOBIG);
    assert_null(r.buf); /* nothing of that size (or any size) was allocated */
    assert_int_equal(g.n, 0);
    frame_reader_free(&r);
}

static void test_frame_accepts_exactly_max(void **state)
{
    (void)state;
    frame_reader r;
    got g = {0};
    uint8_t buf[4 + 100];
    frame_reader_init(&r, 100);
    memset(buf, 7, sizeof(buf));
    buf[0] = buf[1] = buf[2] = 0;
    buf[3] = 100;
    assert_int_equal(frame_reader_feed(&r, buf, sizeof(buf), on_frame, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.lens[0], 100);
    frame_reader_free(&r);
}

static void test_frame_decodes_across_every_split(void **state)
{
    (void)state;
    /* Three envelopes back to back, fed in every possible two-piece split. */
    Reint__V1__Envelope e = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Ack ack = REINT__V1__ACK__INIT;
    e.msg_case = REINT__V1__ENVELOPE__MSG_ACK;
    e.ack = &ack;
    uint8_t stream[256];
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        uint8_t *p;
        size_t n;
        ack.acked_seq = (uint64_t)(1000 * (i + 1));
        assert_int_equal(frame_pack(&e, 0, &p, &n), 0);
        memcpy(stream + total, p, n);
        total += n;
        free(p);
    }
    for (size_t cut = 0; cut <= total; cut++) {
        frame_reader r;
        got g = {0};
        frame_reader_init(&r, 0);
        assert_int_equal(frame_reader_feed(&r, stream, cut, on_frame, &g), 0);
        assert_int_equal(frame_reader_feed(&r, stream + cut, total - cut, on_frame, &g), 0);
        assert_int_equal(g.n, 3);
        Reint__V1__Envelope *out = NULL;
        assert_int_equal(frame_unpack(g.last, g.lens[2], &out, NULL, NULL, 0), 0);
        assert_int_equal(out->msg_case, REINT__V1__ENVELOPE__MSG_ACK);
        assert_int_equal(out->ack->acked_seq, 3000);
        reint__v1__envelope__free_unpacked(out, NULL);
        frame_reader_free(&r);
    }
}

static void test_frame_byte_at_a_time(void **state)
{
    (void)state;
    uint8_t msg[4 + 5] = {0, 0, 0, 5, 1, 2, 3, 4, 5};
    frame_reader r;
    got g = {0};
    frame_reader_init(&r, 0);
    for (size_t i = 0; i < sizeof(msg); i++)
        assert_int_equal(frame_reader_feed(&r, msg + i, 1, on_frame, &g), 0);
    assert_int_equal(g.n, 1);
    assert_memory_equal(g.last, msg + 4, 5);
    frame_reader_free(&r);
}

static size_t put_frame(uint8_t *out, size_t len, uint8_t fill)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    memset(out + 4, fill, len);
    return 4 + len;
}

/* An idle connection holds at most FRAME_KEEP_MAX for its frames: a big frame's buffer goes
 * back once it is through, but not while a frame is still arriving. */
static void test_frame_buffer_returned_when_nothing_is_half_received(void **state)
{
    (void)state;
    static uint8_t s[3 * (4 + 40000)];
    size_t a = put_frame(s, 40000, 1);
    size_t b = put_frame(s + a, 40000, 2);
    put_frame(s + a + b, 100, 3);
    frame_reader r;
    got g = {0};
    frame_reader_init(&r, 0);

    /* Half of a big frame: kept. */
    assert_int_equal(frame_reader_feed(&r, s, 20000, on_frame, &g), 0);
    assert_int_equal(g.n, 0);
    assert_true(r.cap >= 20000 - 4);
    /* Its end and half of the next: the buffer serves the next frame. */
    assert_int_equal(frame_reader_feed(&r, s + 20000, a - 20000 + 30000, on_frame, &g), 0);
    assert_int_equal(g.n, 1);
    assert_true(r.cap >= 30000 - 4);
    /* The rest of it, then the header of a small one: released. */
    assert_int_equal(frame_reader_feed(&r, s + a + 30000, b - 30000 + 2, on_frame, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.lens[1], 40000);
    assert_int_equal(g.last[0], 2);
    assert_int_equal(r.cap, 0);
    assert_null(r.buf);
    /* A small frame keeps a small buffer, and it still arrives whole. */
    assert_int_equal(frame_reader_feed(&r, s + a + b + 2, 102, on_frame, &g), 0);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.lens[2], 100);
    assert_int_equal(g.last[63], 3);
    assert_true(r.cap <= FRAME_KEEP_MAX);
    frame_reader_free(&r);
}

static void test_frame_unpack_refuses_garbage(void **state)
{
    (void)state;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    Reint__V1__Envelope *out = NULL;
    assert_int_equal(frame_unpack(junk, sizeof(junk), &out, NULL, NULL, 0), REINT_EMALFORMED);
    assert_null(out);
}

static void test_frame_pack_refuses_above_max(void **state)
{
    (void)state;
    Reint__V1__Envelope e = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Error err = REINT__V1__ERROR__INIT;
    char msg[200];
    memset(msg, 'a', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    err.message = msg;
    e.msg_case = REINT__V1__ENVELOPE__MSG_ERROR;
    e.error = &err;
    uint8_t *p = NULL;
    size_t n = 0;
    assert_int_equal(frame_pack(&e, 100, &p, &n), REINT_ETOOBIG);
    assert_null(p);
}

/* Packs a Batch of one Person record going to country, a RollupBatch of one snapshot with
 * one cell keyed key, or a Reviews message of one month with comment: the envelope's bytes,
 * for patching. */
static uint8_t *pack_env(const Reint__V1__Envelope *e, size_t *n)
{
    *n = reint__v1__envelope__get_packed_size(e);
    uint8_t *buf = malloc(*n);
    assert_non_null(buf);
    reint__v1__envelope__pack(e, buf);
    return buf;
}

static uint8_t *pack_batch(const char *const *countries, size_t k, size_t *n)
{
    Reint__V1__Envelope e = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Batch b = REINT__V1__BATCH__INIT;
    Reint__V1__Record r[4], *rs[4];
    Reint__V1__Person p[4];
    uint8_t id[4][16] = {{1}, {2}, {3}, {4}};
    uint64_t seqs[4] = {7, 8, 9, 10};
    assert_true(k <= 4);
    for (size_t i = 0; i < k; i++) {
        reint__v1__record__init(&r[i]);
        reint__v1__person__init(&p[i]);
        p[i].destination_country = (char *)countries[i];
        r[i].id.data = id[i];
        r[i].id.len = sizeof(id[i]);
        r[i].municipality = 10703;
        r[i].version = 1;
        r[i].body_case = REINT__V1__RECORD__BODY_PERSON;
        r[i].person = &p[i];
        rs[i] = &r[i];
    }
    b.first_seq = seqs[0];
    b.last_seq = seqs[k - 1];
    b.n_records = k;
    b.records = rs;
    b.n_seqs = k;
    b.seqs = seqs;
    e.msg_case = REINT__V1__ENVELOPE__MSG_BATCH;
    e.batch = &b;
    return pack_env(&e, n);
}

static uint8_t *pack_rollup(const char *key, size_t *n)
{
    Reint__V1__Envelope e = REINT__V1__ENVELOPE__INIT;
    Reint__V1__RollupBatch b = REINT__V1__ROLLUP_BATCH__INIT;
    Reint__V1__RollupSnapshot sn = REINT__V1__ROLLUP_SNAPSHOT__INIT, *sns[1] = {&sn};
    Reint__V1__RollupCell c = REINT__V1__ROLLUP_CELL__INIT, *cs[1] = {&c};
    char *keys[1] = {(char *)key};
    uint64_t seq = 3;
    c.indicator = "returnees_registered";
    c.grouping = "sex";
    c.n_key = 1;
    c.key = keys;
    c.numerator = 5;
    sn.municipality = 10703;
    sn.period = "BS2083-04";
    sn.revision = 1;
    sn.n_cells = 1;
    sn.cells = cs;
    b.first_seq = b.last_seq = seq;
    b.n_snapshots = 1;
    b.snapshots = sns;
    b.n_seqs = 1;
    b.seqs = &seq;
    e.msg_case = REINT__V1__ENVELOPE__MSG_ROLLUP_BATCH;
    e.rollup_batch = &b;
    return pack_env(&e, n);
}

static uint8_t *pack_review(const char *comment, size_t *n)
{
    Reint__V1__Envelope e = REINT__V1__ENVELOPE__INIT;
    Reint__V1__Reviews rv = REINT__V1__REVIEWS__INIT;
    Reint__V1__MonthReview m = REINT__V1__MONTH_REVIEW__INIT, *ms[1] = {&m};
    m.municipality = 10703;
    m.month = 208304;
    m.comment = (char *)comment;
    rv.n_reviews = 1;
    rv.reviews = ms;
    e.msg_case = REINT__V1__ENVELOPE__MSG_REVIEWS;
    e.reviews = &rv;
    return pack_env(&e, n);
}

/* frame_unpack of the bytes of a then those of b, as one payload (and the bad records listed
 * from it, which a refusal leaves unread). */
static int unpack_both(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, char *why,
                       size_t whylen)
{
    Reint__V1__Envelope *out = NULL;
    frame_bad_records bad = {0};
    uint8_t *both = malloc(na + nb);
    assert_non_null(both);
    memcpy(both, a, na);
    memcpy(both + na, b, nb);
    int rc = frame_unpack(both, na + nb, &out, &bad, why, whylen);
    if (rc == 0)
        reint__v1__envelope__free_unpacked(out, NULL);
    frame_bad_records_free(&bad);
    free(both);
    return rc;
}

/* Finds the one occurrence of the len bytes of needle in buf and sets its byte k to to. */
static void patch(uint8_t *buf, size_t n, const char *needle, size_t len, size_t k, uint8_t to)
{
    uint8_t *p = memmem(buf, n, needle, len);
    assert_non_null(p);
    assert_null(memmem(p + 1, n - (size_t)(p + 1 - buf), needle, len));
    p[k] = to;
}

/* protobuf-c hands strings on as C strings: a NUL inside one cut it silently, and bytes
 * that are not UTF-8 went through. Both are refused, naming the field (never the value), at
 * any depth; UTF-8 beyond ASCII is kept. */
static void test_frame_unpack_refuses_strings_with_nul_or_not_utf8(void **state)
{
    (void)state;
    Reint__V1__Envelope *out = NULL;
    char why[160];
    size_t n = 0;
    uint8_t *b = pack_review("\xe0\xa4\xa0\xe0\xa5\x80\xe0\xa4\x95 ok", &n); /* ठीक ok */
    assert_int_equal(frame_unpack(b, n, &out, NULL, why, sizeof(why)), 0);
    assert_string_equal(out->reviews->reviews[0]->comment,
                        "\xe0\xa4\xa0\xe0\xa5\x80\xe0\xa4\x95 ok");
    reint__v1__envelope__free_unpacked(out, NULL);
    out = NULL;
    patch(b, n, " ok", 3, 2, 0x00); /* "ठीक o\0" */
    assert_int_equal(frame_unpack(b, n, &out, NULL, why, sizeof(why)), REINT_EMALFORMED);
    assert_null(out);
    assert_non_null(strstr(why, "MonthReview.comment"));
    free(b);
    b = pack_review("\xe0\xa4\xa0 ok", &n);
    patch(b, n, "\xe0\xa4\xa0", 3, 2, 0x20); /* E0 A4 20: a sequence cut short */
    assert_int_equal(frame_unpack(b, n, &out, NULL, why, sizeof(why)), REINT_EMALFORMED);
    assert_non_null(strstr(why, "MonthReview.comment"));
    free(b);
    /* Three messages deep: Envelope, RollupBatch, RollupSnapshot, RollupCell. */
    b = pack_rollup("female", &n);
    assert_int_equal(frame_unpack(b, n, &out, NULL, why, sizeof(why)), 0);
    assert_string_equal(out->rollup_batch->snapshots[0]->cells[0]->key[0], "female");
    reint__v1__envelope__free_unpacked(out, NULL);
    out = NULL;
    patch(b, n, "female", 6, 3, 0x00);
    assert_int_equal(frame_unpack(b, n, &out, NULL, why, sizeof(why)), REINT_EMALFORMED);
    assert_non_null(strstr(why, "RollupCell.key"));
    patch(b, n, "fem\0le", 6, 3, 0xc0); /* C0 6C: an overlong form's lead byte */
    assert_int_equal(frame_unpack(b, n, &out, NULL, why, sizeof(why)), REINT_EMALFORMED);
    assert_non_null(strstr(why, "RollupCell.key"));
    assert_null(out);
    free(b);
}

/* A record's string with a NUL reached its validation cut ("QA\0Ram..." as "QA", which passed)
 * and one not UTF-8 as it was. The frame is not refused for them: frame_unpack lists those
 * records, by place and field, for the receiver to refuse alone and store the rest. */
static void test_frame_unpack_lists_records_with_bad_strings(void **state)
{
    (void)state;
    const char *countries[] = {"NP", "QAxRam Bahadur", "QQ", "IN"};
    Reint__V1__Envelope *out = NULL;
    frame_bad_records bad = {0};
    char why[160];
    size_t n = 0;
    uint8_t *b = pack_batch(countries, 4, &n);
    patch(b, n, "QAxRam", 6, 2, 0x00);
    patch(b, n, "QQ", 2, 1, 0xff);
    assert_int_equal(frame_unpack(b, n, &out, &bad, why, sizeof(why)), 0);
    assert_string_equal(out->batch->records[1]->person->destination_country, "QA");
    assert_int_equal(bad.n, 2);
    assert_null(frame_bad_record_field(&bad, 0));
    assert_string_equal(frame_bad_record_field(&bad, 1), "person.destination_country");
    assert_string_equal(frame_bad_record_field(&bad, 2), "person.destination_country");
    assert_null(frame_bad_record_field(&bad, 3));
    reint__v1__envelope__free_unpacked(out, NULL);
    /* Without a list the records are not looked at (a directive's body has none). */
    assert_int_equal(frame_unpack(b, n, &out, NULL, why, sizeof(why)), 0);
    reint__v1__envelope__free_unpacked(out, NULL);
    free(b);
    /* The list is emptied by the next unpack. */
    b = pack_batch(countries, 2, &n);
    assert_int_equal(frame_unpack(b, n, &out, &bad, why, sizeof(why)), 0);
    assert_int_equal(bad.n, 0);
    assert_null(frame_bad_record_field(&bad, 1));
    reint__v1__envelope__free_unpacked(out, NULL);
    free(b);
    /* A Batch sent twice: protobuf-c keeps the second, so places listed from the first would
     * name its records (a bad record at 0 of the second went unlisted, and "QA\0Ram" was
     * stored as "QA"). A singular message twice is refused. */
    const char *one[] = {"NP", "QQ", "IN"}, *two[] = {"QAxRam"};
    size_t n1, n2;
    uint8_t *b1 = pack_batch(one, 3, &n1), *b2 = pack_batch(two, 1, &n2);
    patch(b1, n1, "QQ", 2, 1, 0xff);
    patch(b2, n2, "QAxRam", 6, 2, 0x00);
    assert_int_equal(unpack_both(b1, n1, b2, n2, why, sizeof(why)), REINT_EMALFORMED);
    assert_non_null(strstr(why, "Envelope.batch appears more than once"));
    /* Nor a Batch then another member of the oneof (a fuzzer's): protobuf-c kept the
     * review, with the batch's bad record listed. */
    size_t nr;
    uint8_t *rv = pack_review("ok", &nr);
    assert_int_equal(unpack_both(b1, n1, rv, nr, why, sizeof(why)), REINT_EMALFORMED);
    assert_non_null(strstr(why, "Envelope.batch and Envelope.reviews are members of one oneof"));
    free(rv);
    free(b1);
    free(b2);
    /* And a Record with two bodies: kept as the second, named by the first's string. */
    Reint__V1__Record r1 = REINT__V1__RECORD__INIT, r2 = REINT__V1__RECORD__INIT;
    Reint__V1__Person person = REINT__V1__PERSON__INIT;
    Reint__V1__Service service = REINT__V1__SERVICE__INIT;
    r1.body_case = REINT__V1__RECORD__BODY_PERSON;
    r1.person = &person;
    r2.body_case = REINT__V1__RECORD__BODY_SERVICE;
    r2.service = &service;
    size_t l1 = reint__v1__record__get_packed_size(&r1),
           l2 = reint__v1__record__get_packed_size(&r2);
    uint8_t *rec = malloc(l1 + l2);
    assert_non_null(rec);
    reint__v1__record__pack(&r1, rec);
    reint__v1__record__pack(&r2, rec + l1);
    assert_int_equal(
        frame_check_strings(&reint__v1__record__descriptor, rec, l1 + l2, why, sizeof(why)),
        REINT_EMALFORMED);
    assert_non_null(strstr(why, "Record.person and Record.service are members of one oneof"));
    free(rec);
    /* A bad string outside a record still refuses the whole frame. */
    b = pack_review("ok", &n);
    patch(b, n, "ok", 2, 1, 0x00);
    assert_int_equal(frame_unpack(b, n, &out, &bad, why, sizeof(why)), REINT_EMALFORMED);
    assert_non_null(strstr(why, "MonthReview.comment"));
    free(b);
    frame_bad_records_free(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_rejects_oversize_before_alloc),
        cmocka_unit_test(test_frame_accepts_exactly_max),
        cmocka_unit_test(test_frame_decodes_across_every_split),
        cmocka_unit_test(test_frame_byte_at_a_time),
        cmocka_unit_test(test_frame_buffer_returned_when_nothing_is_half_received),
        cmocka_unit_test(test_frame_unpack_refuses_garbage),
        cmocka_unit_test(test_frame_unpack_refuses_strings_with_nul_or_not_utf8),
        cmocka_unit_test(test_frame_unpack_lists_records_with_bad_strings),
        cmocka_unit_test(test_frame_pack_refuses_above_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
