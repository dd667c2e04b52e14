/* Properties of the cell-key perturbation table (federal-api/disclosure.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "disclosure.h"

/* One cell key per column of the table, plus keys that differ only in low bits. */
static uint32_t key_of(unsigned col, unsigned low)
{
    return (uint32_t)col << 24 | (low * 2654435761u) >> 8;
}

static void test_disclosure_keeps_zero_zero(void **state)
{
    (void)state;
    for (unsigned col = 0; col < 256; col++)
        assert_int_equal(disclosure_count(0, key_of(col, 1)), 0);
}

static void test_disclosure_never_shows_one_or_two(void **state)
{
    (void)state;
    for (int64_t v = 0; v <= 1000; v++)
        for (unsigned col = 0; col < 256; col++) {
            int64_t out = disclosure_count(v, key_of(col, 3));
            assert_true(out == 0 || out >= 3);
        }
}

static void test_disclosure_same_cell_same_noise(void **state)
{
    (void)state;
    for (unsigned col = 0; col < 256; col++)
        for (int64_t v = 1; v < 50; v++)
            assert_int_equal(disclosure_count(v, key_of(col, 7)),
                             disclosure_count(v, key_of(col, 7)));
}

static void test_disclosure_noise_is_small_and_unbiased(void **state)
{
    (void)state;
    for (int64_t v = 1; v <= 200; v++) {
        long sum = 0;
        for (unsigned col = 0; col < 256; col++) {
            int n = disclosure_noise(v, key_of(col, 0));
            assert_true(n >= -DISCLOSURE_MAX_NOISE && n <= DISCLOSURE_MAX_NOISE);
            if (v >= 5)
                assert_true(n >= -2 && n <= 2);
            sum += n;
        }
        /* Mean noise within 0.1 of zero for every value. */
        assert_true(labs(sum) * 10 <= 256);
    }
}

static void test_disclosure_noise_uses_the_whole_table(void **state)
{
    (void)state;
    int seen[5] = {0};
    for (unsigned col = 0; col < 256; col++)
        seen[disclosure_noise(10, key_of(col, 0)) + 2] = 1;
    for (int i = 0; i < 5; i++)
        assert_true(seen[i]);
}

static void test_disclosure_sums_need_five_contributors(void **state)
{
    (void)state;
    int64_t out = -1;
    assert_int_equal(disclosure_sum(100000, 4, 12345, &out), 0);
    assert_int_equal(out, -1);
    assert_int_equal(disclosure_sum(100000, 5, 12345, &out), 1);
    assert_true(out >= 98000 && out <= 102000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disclosure_keeps_zero_zero),
        cmocka_unit_test(test_disclosure_never_shows_one_or_two),
        cmocka_unit_test(test_disclosure_same_cell_same_noise),
        cmocka_unit_test(test_disclosure_noise_is_small_and_unbiased),
        cmocka_unit_test(test_disclosure_noise_uses_the_whole_table),
        cmocka_unit_test(test_disclosure_sums_need_five_contributors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
