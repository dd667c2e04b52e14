/* The public role's disclosure control (federal-api/disclosure.c) against expectations worked
 * out by hand from its documented rules (docs/PRIVACY.md), never from the code under test.
 *
 * Counts: a cell key picks column floor(mix(key) * 1848 / 2^32) of the perturbation table,
 * where mix is lowbias32 (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b;
 * x ^= x >> 16); this file works with its inverse (unmix below: the inverses of the two
 * multipliers mod 2^32 and of the shifts, worked out separately), so that a key is chosen by
 * the column it must pick. Value v
 * uses its own row for v = 1..4, each row giving noise by runs of columns, lowest first:
 *
 *   row 1: -1 x1232, +2 x616                         -> 1 shows as 0 or 3
 *   row 2: -2 x616, +1 x1232                         -> 2 shows as 0 or 3
 *   row 3: -3 x462, 0 x616, +1 x385, +2 x231, +3 x154
 *   row 4: -4 x308, -1 x231, 0 x462, +1 x385, +2 x308, +3 x154
 *   5..99: -5..+5, 168 columns each (a result below 3 shows as 0)
 *   100 on: -3..+3, 264 columns each
 *
 * Sums: shown only with at least 3 contributors and a known top contribution; the noise is
 * e * f(n) * (top1 + top2), its sign negative when the mixed key is odd, |e| = 0.2 + 0.8 *
 * (mix(key) >> 1) / 2^31, f(n) = 6 / n kept within [0.2, 1.5]; rounded, at least 1, never
 * below 0.
 * Ratios: both parts perturbed as counts under their own keys; withheld under a perturbed
 * denominator of 10; never above 1. Public sums: province and nation, quarter and longer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "disclosure.h"

#define COLS 1848

/* x ^= x >> k, undone. */
static uint32_t unshift(uint32_t x, unsigned k)
{
    uint32_t y = x;
    for (unsigned i = 0; i < 32 / k + 1; i++)
        y = x ^ (y >> k);
    return y;
}

/* The key whose mix is u. */
static uint32_t unmix(uint32_t u)
{
    u = unshift(u, 16);
    u *= 0x43021123u; /* 0x846ca68b^-1 mod 2^32 */
    u = unshift(u, 15);
    u *= 0x1d69e2a5u; /* 0x7feb352d^-1 mod 2^32 */
    return unshift(u, 16);
}

/* A key of column col: the one whose mix is the column's smallest. */
static uint32_t key_of(unsigned col)
{
    return unmix((uint32_t)((((uint64_t)col << 32) + COLS - 1) / COLS));
}

/* A run of columns [from, to] and what it shows. */
typedef struct band {
    unsigned from, to;
    int64_t shown;
} band;

static const band shown_1[] = {{0, 1231, 0}, {1232, 1847, 3}};
static const band shown_2[] = {{0, 615, 0}, {616, 1847, 3}};
static const band shown_3[] = {
    {0, 461, 0}, {462, 1077, 3}, {1078, 1462, 4}, {1463, 1693, 5}, {1694, 1847, 6}};
static const band shown_4[] = {{0, 307, 0},     {308, 538, 3},   {539, 1000, 4},
                               {1001, 1385, 5}, {1386, 1693, 6}, {1694, 1847, 7}};

static int64_t band_at(const band *b, size_t n, unsigned col)
{
    for (size_t i = 0; i < n; i++)
        if (col >= b[i].from && col <= b[i].to)
            return b[i].shown;
    fail_msg("column %u is in no band", col);
    return -1;
}

#define N(a) (sizeof(a) / sizeof(a[0]))

static int64_t expected_count(int64_t value, unsigned col)
{
    switch (value) {
    case 0:
        return 0;
    case 1:
        return band_at(shown_1, N(shown_1), col);
    case 2:
        return band_at(shown_2, N(shown_2), col);
    case 3:
        return band_at(shown_3, N(shown_3), col);
    case 4:
        return band_at(shown_4, N(shown_4), col);
    default: {
        int64_t out =
            value < 100 ? value + (int64_t)(col / 168) - 5 : value + (int64_t)(col / 264) - 3;
        return out < 3 ? 0 : out;
    }
    }
}

static void test_disclosure_column_is_the_mixed_keys_share_of_the_table(void **state)
{
    (void)state;
    /* Known answers of lowbias32, worked out separately (Python). */
    assert_int_equal(disclosure_mix(0), 0);
    assert_int_equal(disclosure_mix(1), 0x688990c0u);
    assert_int_equal(disclosure_mix(0x80000000u), 0xcc4b4124u);
    assert_int_equal(disclosure_column(unmix(0)), 0);
    assert_int_equal(disclosure_column(unmix(UINT32_MAX)), COLS - 1);
    assert_int_equal(disclosure_column(unmix(0x80000000u)), COLS / 2);
    for (unsigned col = 0; col < COLS; col++) {
        assert_int_equal(disclosure_mix(key_of(col)),
                         (uint32_t)((((uint64_t)col << 32) + COLS - 1) / COLS));
        assert_int_equal(disclosure_column(key_of(col)), col);
        if (col > 0)
            assert_int_equal(disclosure_column(unmix(disclosure_mix(key_of(col)) - 1)), col - 1);
    }
}

/* The noises of a total and its two parts, whose keys add up: before the mix the column was
 * the key's share, and (J_total - J_a - J_b) mod 11 was 0 or 1 for every pair (J = noise + 5
 * of a count of 5..99), so "a total minus its other row" gave a small cell back (an attack on
 * the demo). Through the mix it is spread over the 11 values: 2/11 for {0, 1}. */
static void test_disclosure_noises_of_a_total_and_its_parts_do_not_add_up(void **state)
{
    (void)state;
    unsigned near = 0, n = 20000;
    uint32_t a = 0x12345678u, b = 0x9abcdef1u;
    for (unsigned i = 0; i < n; i++) {
        a = a * 1664525u + 1013904223u;
        b = b * 22695477u + 1u;
        int ja = disclosure_noise(50, a) + 5, jb = disclosure_noise(50, b) + 5;
        int jt = disclosure_noise(50, a + b) + 5;
        int r = ((jt - ja - jb) % 11 + 11) % 11;
        near += r <= 1;
    }
    assert_true(near < n * 3 / 11); /* about 2/11 */
}

static void test_disclosure_matches_the_table_in_every_column(void **state)
{
    (void)state;
    static const int64_t values[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 50, 99, 100, 101, 1000, 123456};
    for (size_t i = 0; i < N(values); i++) {
        for (unsigned col = 0; col < COLS; col++) {
            int64_t got = disclosure_count(values[i], key_of(col));
            if (got != expected_count(values[i], col))
                fail_msg("value %lld column %u: %lld, expected %lld", (long long)values[i], col,
                         (long long)got, (long long)expected_count(values[i], col));
        }
    }
}

static void test_disclosure_keeps_zero_zero_and_never_shows_one_or_two(void **state)
{
    (void)state;
    for (unsigned col = 0; col < COLS; col++) {
        assert_int_equal(disclosure_count(0, key_of(col)), 0);
        assert_int_equal(disclosure_count(-3, key_of(col)), 0);
        for (int64_t v = 1; v <= 120; v++) {
            int64_t out = disclosure_count(v, key_of(col));
            assert_true(out != 1 && out != 2 && out >= 0);
        }
    }
}

/* Small counts keep a real chance of being shown as 0 (otherwise a 0 would certify an empty
 * cell), their rows keep their means, and larger counts move by at most 5 (3 from 100). */
static void test_disclosure_small_counts_can_show_zero_and_rows_are_unbiased(void **state)
{
    (void)state;
    static const unsigned zeros[5] = {0, 1232, 616, 462, 308};
    for (int64_t v = 1; v <= 7; v++) {
        unsigned z = 0;
        int64_t sum = 0;
        for (unsigned col = 0; col < COLS; col++) {
            int64_t out = disclosure_count(v, key_of(col));
            z += out == 0;
            sum += out;
        }
        if (v <= 4) {
            assert_int_equal(z, zeros[v]);
            assert_true(z * 6 >= COLS); /* at least 1 in 6 */
            /* The mean stays within 0.05 of the value. */
            assert_true(llabs(sum - v * COLS) * 20 <= COLS);
        } else {
            assert_int_equal(z, (unsigned)(168 * (8 - v))); /* 5 -> 3 runs, 6 -> 2, 7 -> 1 */
        }
    }
    for (unsigned col = 0; col < COLS; col++) {
        assert_true(llabs(disclosure_count(50, key_of(col)) - 50) <= 5);
        assert_true(llabs(disclosure_count(100, key_of(col)) - 100) <= 3);
    }
}

static void test_disclosure_literal_counts(void **state)
{
    (void)state;
    assert_int_equal(disclosure_count(1, 0), 0);
    assert_int_equal(disclosure_count(1, unmix(UINT32_MAX)), 3);
    assert_int_equal(disclosure_count(2, unmix(0x80000000u)), 3); /* column 924 */
    assert_int_equal(disclosure_count(3, unmix(0x80000000u)), 3); /* column 924: 0 */
    assert_int_equal(disclosure_count(4, unmix(0x80000000u)), 4); /* column 924: 0 */
    /* column 924: 924/168 = 5 -> 0 */
    assert_int_equal(disclosure_count(40, unmix(0x80000000u)), 40);
    assert_int_equal(disclosure_count(40, 0), 35);
    assert_int_equal(disclosure_count(40, unmix(UINT32_MAX)), 45);
    assert_int_equal(disclosure_count(5, 0), 0);
    assert_int_equal(disclosure_count(250, 0), 247);
    assert_int_equal(disclosure_count(250, unmix(UINT32_MAX)), 253);
}

/* The sum's noise by hand: a key mixed to 0x80000000 is even (noise up) with (mix >> 1) / 2^31
 * = 0.5, so |e| = 0.6; one mixed to 0x80000001 the same, down. */
static void test_disclosure_sum_literal_cases(void **state)
{
    (void)state;
    int64_t out = -1;
    /* 3 contributors: f = min(1.5, 6/3) = 1.5; 0.6 * 1.5 * (100 + 50) = 135. */
    assert_int_equal(disclosure_sum(300, 3, 100, 50, unmix(0x80000000u), &out), 1);
    assert_int_equal(out, 435);
    assert_int_equal(disclosure_sum(300, 3, 100, 50, unmix(0x80000001u), &out), 1);
    assert_int_equal(out, 165);
    /* 12 contributors: f = 0.5 -> 45; 30 and more: f = 0.2 -> 18. */
    assert_int_equal(disclosure_sum(2000, 12, 100, 50, unmix(0x80000000u), &out), 1);
    assert_int_equal(out, 2045);
    assert_int_equal(disclosure_sum(5000, 30, 100, 50, unmix(0x80000001u), &out), 1);
    assert_int_equal(out, 4982);
    assert_int_equal(disclosure_sum(5000, 400, 100, 50, unmix(0x80000001u), &out), 1);
    assert_int_equal(out, 4982);
    /* Key 0 (mixed to 0): |e| = 0.2, up: 0.2 * 0.2 * 3 = 0.12 rounds to 0, moved by 1 anyway. */
    assert_int_equal(disclosure_sum(40, 40, 2, 1, 0, &out), 1);
    assert_int_equal(out, 41);
    /* Never below 0: 10 - round(~1 * 1.5 * (8 + 1)). */
    assert_int_equal(disclosure_sum(10, 3, 8, 1, unmix(UINT32_MAX), &out), 1);
    assert_int_equal(out, 0);
}

static void test_disclosure_sums_need_three_contributors_and_their_tops(void **state)
{
    (void)state;
    int64_t out = 12345;
    assert_int_equal(disclosure_sum(100000, 2, 60000, 40000, unmix(0x80000000u), &out), 0);
    assert_int_equal(disclosure_sum(100000, 0, 0, 0, unmix(0x80000000u), &out), 0);
    /* A sender that carries no tops (before they were added): withheld, not shown bare. */
    assert_int_equal(disclosure_sum(100000, 5, 0, 0, unmix(0x80000000u), &out), 0);
    assert_int_equal(out, 12345);
    assert_int_equal(disclosure_sum(100000, 3, 50000, 30000, unmix(0x80000000u), &out), 1);
}

/* Never zero noise for a non-empty cell, whatever the key; the same cell gets the same value. */
static void test_disclosure_sum_is_never_exact_and_always_the_same(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 20000; i++) {
        uint32_t key = i * 2654435761u;
        int64_t a, b;
        assert_int_equal(disclosure_sum(4000, 25, 300, 200, key, &a), 1);
        assert_int_equal(disclosure_sum(4000, 25, 300, 200, key, &b), 1);
        assert_true(a != 4000);
        assert_int_equal(a, b);
        /* |noise| within [0.2, 1] * f(25) * 500 = [24, 120], give or take the rounding. */
        assert_true(llabs(a - 4000) >= 24 && llabs(a - 4000) <= 120);
    }
}

static void test_disclosure_ratios_are_withheld_under_ten(void **state)
{
    (void)state;
    int64_t nu = -1, de = -1;
    /* Denominator 12 under column 0 shows 7: withheld. */
    assert_int_equal(disclosure_ratio(6, key_of(924), 12, key_of(0), &nu, &de), 0);
    /* Denominator 9 under the last column shows 14: shown, numerator 6 under column 924. */
    assert_int_equal(disclosure_ratio(6, key_of(924), 9, key_of(COLS - 1), &nu, &de), 1);
    assert_int_equal(nu, 6);
    assert_int_equal(de, 14);
    /* Denominator 10 under column 924 stays 10: shown. */
    assert_int_equal(disclosure_ratio(0, 0, 10, key_of(924), &nu, &de), 1);
    assert_int_equal(nu, 0);
    assert_int_equal(de, 10);
    /* A numerator pushed above its denominator is held at it. */
    assert_int_equal(disclosure_ratio(20, key_of(COLS - 1), 20, key_of(0), &nu, &de), 1);
    assert_int_equal(nu, 15);
    assert_int_equal(de, 15);
    assert_int_equal(disclosure_ratio(0, 0, 0, 0, &nu, &de), 0);
}

static void test_disclosure_public_sums_only_for_coarse_areas_and_periods(void **state)
{
    (void)state;
    static const enum period_kind coarse[] = {PERIOD_QUARTER, PERIOD_YEAR, PERIOD_FISCAL_TRIMESTER,
                                              PERIOD_FISCAL_YEAR};
    static const enum period_kind fine[] = {PERIOD_MONTH, PERIOD_BS_MONTH};
    for (size_t i = 0; i < N(coarse); i++) {
        assert_int_equal(disclosure_sum_level(DISCLOSURE_NATION, coarse[i]), 1);
        assert_int_equal(disclosure_sum_level(DISCLOSURE_PROVINCE, coarse[i]), 1);
        assert_int_equal(disclosure_sum_level(DISCLOSURE_DISTRICT, coarse[i]), 0);
        assert_int_equal(disclosure_sum_level(DISCLOSURE_MUNICIPALITY, coarse[i]), 0);
    }
    for (size_t i = 0; i < N(fine); i++)
        for (int a = DISCLOSURE_NATION; a <= DISCLOSURE_MUNICIPALITY; a++)
            assert_int_equal(disclosure_sum_level((enum disclosure_area)a, fine[i]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disclosure_column_is_the_mixed_keys_share_of_the_table),
        cmocka_unit_test(test_disclosure_noises_of_a_total_and_its_parts_do_not_add_up),
        cmocka_unit_test(test_disclosure_matches_the_table_in_every_column),
        cmocka_unit_test(test_disclosure_keeps_zero_zero_and_never_shows_one_or_two),
        cmocka_unit_test(test_disclosure_small_counts_can_show_zero_and_rows_are_unbiased),
        cmocka_unit_test(test_disclosure_literal_counts),
        cmocka_unit_test(test_disclosure_sum_literal_cases),
        cmocka_unit_test(test_disclosure_sums_need_three_contributors_and_their_tops),
        cmocka_unit_test(test_disclosure_sum_is_never_exact_and_always_the_same),
        cmocka_unit_test(test_disclosure_ratios_are_withheld_under_ten),
        cmocka_unit_test(test_disclosure_public_sums_only_for_coarse_areas_and_periods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
