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
        assert_int_equal(frame_unpack(g.last, g.lens[2], &out), 0);
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
    assert_int_equal(frame_unpack(junk, sizeof(junk), &out), REINT_EMALFORMED);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_rejects_oversize_before_alloc),
        cmocka_unit_test(test_frame_accepts_exactly_max),
        cmocka_unit_test(test_frame_decodes_across_every_split),
        cmocka_unit_test(test_frame_byte_at_a_time),
        cmocka_unit_test(test_frame_buffer_returned_when_nothing_is_half_received),
        cmocka_unit_test(test_frame_unpack_refuses_garbage),
        cmocka_unit_test(test_frame_pack_refuses_above_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
