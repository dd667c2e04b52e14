/* The failed-attempt limiter (common/limiter.c): per (address, token prefix), a valid token
 * never limited, a Retry-After that grows, counts drained in batches for the audit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "limiter.h"

#define W 60000 /* the window used below, in ms */

static unsigned ra; /* the Retry-After of the last verdict */

static enum limiter_verdict count_fail(limiter *l, const char *addr, const char *prefix,
                                       const uint8_t *hash, uint64_t now)
{
    return limiter_fail(l, addr, prefix, hash, "GET /v1/x", now, &ra);
}

static void fail_n(limiter *l, const char *addr, const char *prefix, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        count_fail(l, addr, prefix, NULL, now);
}

static void test_limiter_blocks_a_pair_after_max_failures(void **state)
{
    (void)state;
    limiter *l = limiter_new(3, 60);
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", NULL, 1000), LIMITER_FAILED);
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", NULL, 1000), LIMITER_FAILED);
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", NULL, "GET /v1/x", 1000, &ra));
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", NULL, 1000), LIMITER_TRIPPED);
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", NULL, "GET /v1/x", 2000, &ra));
    assert_int_equal(ra, 59);
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", NULL, 3000), LIMITER_BLOCKED);
    assert_int_equal(ra, 58);
    /* Another prefix from the same address (another user behind the same load balancer)
     * and the same prefix from another address are not blocked. */
    assert_false(limiter_blocked(l, "10.0.0.1", "ffff0000", NULL, "GET /v1/x", 2000, &ra));
    assert_int_equal(count_fail(l, "10.0.0.1", "ffff0000", NULL, 2000), LIMITER_FAILED);
    assert_false(limiter_blocked(l, "10.0.0.2", "abcd1234", NULL, "GET /v1/x", 2000, &ra));
    /* The block ends with its window. */
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", NULL, "GET /v1/x", 1000 + W, &ra));
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", NULL, 1000 + W), LIMITER_FAILED);
    limiter_free(l);
}

static void test_limiter_never_refuses_a_token_before_its_look_up(void **state)
{
    (void)state;
    limiter *l = limiter_new(2, 60);
    uint8_t bad[32], good[32], other[32];
    memset(bad, 7, sizeof(bad));
    memset(good, 8, sizeof(good));
    memset(other, 9, sizeof(other));
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", bad, 1000), LIMITER_FAILED);
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", bad, 1000), LIMITER_TRIPPED);
    /* The token that failed, and no token, are refused at once; any other token of the
     * pair (a valid one with the same prefix) is looked up first. */
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", bad, "GET /v1/x", 1000, &ra));
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", NULL, "GET /v1/x", 1000, &ra));
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", good, "GET /v1/x", 1000, &ra));
    /* Another bad token of the pair fails its look-up: 429, and refused at once after. */
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", other, "GET /v1/x", 1000, &ra));
    assert_int_equal(count_fail(l, "10.0.0.1", "abcd1234", other, 1000), LIMITER_BLOCKED);
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", other, "GET /v1/x", 1000, &ra));
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", good, "GET /v1/x", 1000, &ra));
    limiter_free(l);
}

static void test_limiter_retry_after_grows_and_is_forgotten(void **state)
{
    (void)state;
    limiter *l = limiter_new(2, 60);
    uint64_t t = 1000;
    for (unsigned k = 1; k <= 4; k++) {
        fail_n(l, "10.0.0.1", "p", 2, t);
        assert_true(limiter_blocked(l, "10.0.0.1", "p", NULL, "GET /v1/x", t, &ra));
        assert_int_equal(ra, 60u << (k - 1)); /* 60, 120, 240, 480 s */
        /* Attempts during the block do not lengthen it. */
        fail_n(l, "10.0.0.1", "p", 5, t + 1000);
        assert_int_equal(ra, (60u << (k - 1)) - 1);
        t += (uint64_t)(60u << (k - 1)) * 1000;
        assert_false(limiter_blocked(l, "10.0.0.1", "p", NULL, "GET /v1/x", t, &ra));
    }
    /* A day without failures: the next block is the first again. */
    t += (uint64_t)LIMITER_BLOCK_MAX_S * 1000;
    fail_n(l, "10.0.0.1", "p", 2, t);
    assert_true(limiter_blocked(l, "10.0.0.1", "p", NULL, "GET /v1/x", t, &ra));
    assert_int_equal(ra, 60);
    limiter_free(l);
}

static void test_limiter_drains_counts_in_batches(void **state)
{
    (void)state;
    limiter *l = limiter_new(3, 60);
    limiter_count c[4];
    assert_false(limiter_pending(l));
    fail_n(l, "10.0.0.1", "aaaa", 5, 1000); /* 3 fail, then blocked: 2 refused */
    assert_true(limiter_blocked(l, "10.0.0.1", "aaaa", NULL, "GET /v1/gaps", 1500, &ra));
    assert_true(limiter_blocked(l, "10.0.0.1", "aaaa", NULL, "GET /v1/gaps", 1600, &ra));
    fail_n(l, "10.0.0.2", "none", 1, 2000);
    assert_true(limiter_pending(l));
    size_t n = limiter_drain(l, c, 4);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].addr, "10.0.0.1");
    assert_string_equal(c[0].prefix, "aaaa");
    assert_int_equal(c[0].failed, 3);
    assert_int_equal(c[0].refused, 4);
    assert_int_equal(c[0].first_ms, 1000);
    assert_int_equal(c[0].last_ms, 1600);
    assert_string_equal(c[0].what, "GET /v1/gaps");
    assert_string_equal(c[1].prefix, "none");
    assert_int_equal(c[1].failed, 1);
    assert_false(limiter_pending(l));
    assert_int_equal(limiter_drain(l, c, 4), 0);
    limiter_free(l);
}

static void test_limiter_reused_slots_keep_their_counts(void **state)
{
    (void)state;
    limiter *l = limiter_new(100, 60);
    limiter_count c[8];
    char p[16];
    for (int i = 0; i < LIMITER_SLOTS + 5; i++) {
        snprintf(p, sizeof(p), "%08x", (unsigned)i);
        count_fail(l, "10.0.0.9", p, NULL, 1000 + (uint64_t)i);
    }
    unsigned total = 0;
    size_t n;
    while ((n = limiter_drain(l, c, 8)) > 0)
        for (size_t i = 0; i < n; i++)
            total += c[i].failed;
    assert_int_equal(total, LIMITER_SLOTS + 5);
    limiter_free(l);
}

static void test_limiter_blocked_pairs_outlast_a_flood_of_new_ones(void **state)
{
    (void)state;
    char p[16];
    limiter *l = limiter_new(2, 60);
    /* A blocked pair, then three times as many new pairs as there are slots. */
    fail_n(l, "10.0.0.1", "victim00", 2, 1000);
    for (int i = 0; i < 3 * LIMITER_SLOTS; i++) {
        snprintf(p, sizeof(p), "%08x", (unsigned)i);
        count_fail(l, "10.0.0.1", p, NULL, 2000 + (uint64_t)i);
    }
    assert_true(limiter_blocked(l, "10.0.0.1", "victim00", NULL, "GET /v1/x", 9000, &ra));
    limiter_free(l);
}

static void test_limiter_prefix_and_address(void **state)
{
    (void)state;
    char p[LIMITER_PREFIX_MAX], a[LIMITER_ADDR_MAX];
    limiter_prefix("Bearer fed_0123456789abcdef", "fed_", p);
    assert_string_equal(p, "01234567");
    limiter_prefix("bearer   0123", NULL, p);
    assert_string_equal(p, "0123");
    limiter_prefix("Bearer a'b;c\"d--ef", NULL, p);
    assert_string_equal(p, "a?b?c?d-");
    limiter_prefix(NULL, NULL, p);
    assert_string_equal(p, "none");
    limiter_prefix("Basic dXNlcjpwYXNz", NULL, p);
    assert_string_equal(p, "none");
    limiter_prefix("Bearer ", NULL, p);
    assert_string_equal(p, "none");
    limiter_addr("10.1.2.3:4567", a);
    assert_string_equal(a, "10.1.2.3");
    limiter_addr("[::1]:80", a);
    assert_string_equal(a, "[::1]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limiter_blocks_a_pair_after_max_failures),
        cmocka_unit_test(test_limiter_never_refuses_a_token_before_its_look_up),
        cmocka_unit_test(test_limiter_retry_after_grows_and_is_forgotten),
        cmocka_unit_test(test_limiter_drains_counts_in_batches),
        cmocka_unit_test(test_limiter_reused_slots_keep_their_counts),
        cmocka_unit_test(test_limiter_blocked_pairs_outlast_a_flood_of_new_ones),
        cmocka_unit_test(test_limiter_prefix_and_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
