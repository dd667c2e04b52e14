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

static void fail_n(limiter *l, const char *addr, const char *prefix, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        limiter_fail(l, addr, prefix, "/v1/x", now);
}

static void test_limiter_blocks_a_pair_after_max_failures(void **state)
{
    (void)state;
    limiter *l = limiter_new(3, 60);
    unsigned ra = 0;
    assert_int_equal(limiter_fail(l, "10.0.0.1", "abcd1234", "/v1/x", 1000), 0);
    assert_int_equal(limiter_fail(l, "10.0.0.1", "abcd1234", "/v1/x", 1000), 0);
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", NULL, "/v1/x", 1000, &ra));
    assert_int_equal(limiter_fail(l, "10.0.0.1", "abcd1234", "/v1/x", 1000), 1);
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", NULL, "/v1/x", 2000, &ra));
    assert_int_equal(ra, 59);
    /* Another prefix from the same address (another user behind the same load balancer)
     * and the same prefix from another address are not blocked. */
    assert_false(limiter_blocked(l, "10.0.0.1", "ffff0000", NULL, "/v1/x", 2000, &ra));
    assert_false(limiter_blocked(l, "10.0.0.2", "abcd1234", NULL, "/v1/x", 2000, &ra));
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", NULL, "/v1/x", 1000 + W, &ra));
    limiter_free(l);
}

static void test_limiter_never_blocks_a_known_valid_token(void **state)
{
    (void)state;
    limiter *l = limiter_new(2, 60);
    uint8_t good[32], other[32], list[2 * 32];
    unsigned ra = 0;
    memset(good, 7, sizeof(good));
    memset(other, 9, sizeof(other));
    fail_n(l, "10.0.0.1", "abcd1234", 2, 1000);
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", other, "/v1/x", 1000, &ra));
    /* Until the token is known valid, its pair's block holds for it too. */
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", good, "/v1/x", 1000, &ra));
    assert_int_equal(limiter_known_add(l, good), 0);
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", good, "/v1/x", 1000, &ra));
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", other, "/v1/x", 1000, &ra));
    /* A replaced list holds exactly its hashes. */
    memcpy(list, other, 32);
    memcpy(list + 32, other, 32);
    assert_int_equal(limiter_known_replace(l, list, 2), 0);
    assert_true(limiter_blocked(l, "10.0.0.1", "abcd1234", good, "/v1/x", 1000, &ra));
    assert_false(limiter_blocked(l, "10.0.0.1", "abcd1234", other, "/v1/x", 1000, &ra));
    limiter_free(l);
}

static void test_limiter_retry_after_grows_and_is_forgotten(void **state)
{
    (void)state;
    limiter *l = limiter_new(2, 60);
    unsigned ra = 0;
    uint64_t t = 1000;
    for (unsigned k = 1; k <= 4; k++) {
        fail_n(l, "10.0.0.1", "p", 2, t);
        assert_true(limiter_blocked(l, "10.0.0.1", "p", NULL, "/v1/x", t, &ra));
        assert_int_equal(ra, 60u << (k - 1)); /* 60, 120, 240, 480 s */
        t += (uint64_t)ra * 1000;
        assert_false(limiter_blocked(l, "10.0.0.1", "p", NULL, "/v1/x", t, &ra));
    }
    /* A day without failures: the next block is the first again. */
    t += (uint64_t)LIMITER_BLOCK_MAX_S * 1000;
    fail_n(l, "10.0.0.1", "p", 2, t);
    assert_true(limiter_blocked(l, "10.0.0.1", "p", NULL, "/v1/x", t, &ra));
    assert_int_equal(ra, 60);
    limiter_free(l);
}

static void test_limiter_drains_counts_in_batches(void **state)
{
    (void)state;
    limiter *l = limiter_new(3, 60);
    limiter_count c[4];
    unsigned ra;
    assert_false(limiter_pending(l));
    fail_n(l, "10.0.0.1", "aaaa", 5, 1000); /* 3 fail, then blocked: 2 more failures */
    assert_true(limiter_blocked(l, "10.0.0.1", "aaaa", NULL, "/v1/gaps", 1500, &ra));
    assert_true(limiter_blocked(l, "10.0.0.1", "aaaa", NULL, "/v1/gaps", 1600, &ra));
    fail_n(l, "10.0.0.2", "none", 1, 2000);
    assert_true(limiter_pending(l));
    size_t n = limiter_drain(l, c, 4);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].addr, "10.0.0.1");
    assert_string_equal(c[0].prefix, "aaaa");
    assert_int_equal(c[0].failed, 5);
    assert_int_equal(c[0].refused, 2);
    assert_int_equal(c[0].first_ms, 1000);
    assert_int_equal(c[0].last_ms, 1600);
    assert_string_equal(c[0].what, "/v1/gaps");
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
        limiter_fail(l, "10.0.0.9", p, "/v1/x", 1000 + (uint64_t)i);
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
    unsigned ra;
    limiter *l = limiter_new(2, 60);
    /* A blocked pair, then three times as many new pairs as there are slots. */
    limiter_fail(l, "10.0.0.1", "victim00", "/v1/x", 1000);
    limiter_fail(l, "10.0.0.1", "victim00", "/v1/x", 1000);
    for (int i = 0; i < 3 * LIMITER_SLOTS; i++) {
        snprintf(p, sizeof(p), "%08x", (unsigned)i);
        limiter_fail(l, "10.0.0.1", p, "/v1/x", 2000 + (uint64_t)i);
    }
    assert_true(limiter_blocked(l, "10.0.0.1", "victim00", NULL, "/v1/x", 9000, &ra));
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
        cmocka_unit_test(test_limiter_never_blocks_a_known_valid_token),
        cmocka_unit_test(test_limiter_retry_after_grows_and_is_forgotten),
        cmocka_unit_test(test_limiter_drains_counts_in_batches),
        cmocka_unit_test(test_limiter_reused_slots_keep_their_counts),
        cmocka_unit_test(test_limiter_blocked_pairs_outlast_a_flood_of_new_ones),
        cmocka_unit_test(test_limiter_prefix_and_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
