/* The cell-key perturbation (federal-api/disclosure.c) against expectations worked out by
 * hand from its documented rule, never from the code under test: a cell key's top byte is
 * the column (0..255) of the perturbation table; value v uses row v for v = 1..4 and row 5
 * for every v >= 5; each row gives noise by columns, in weight order:
 *
 *   row 1: -1 x171, +2 x85                    -> 1 shows as 0 or 3
 *   row 2: -2 x85, +1 x171                    -> 2 shows as 0 or 3
 *   row 3: -3 x36, 0 x140, +1 x60, +2 x20
 *   row 4: -4 x4, -1 x60, 0 x128, +1 x52, +2 x12
 *   row 5: -2 x16, -1 x48, 0 x128, +1 x48, +2 x16
 *
 * Sums (seed funding, jobs) are shown only with at least 5 contributors, moved by row 5's
 * noise read as a percentage, rounded half away from zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "disclosure.h"

/* A key whose top byte is col, with arbitrary lower bits. */
static uint32_t key_of(unsigned col, unsigned low)
{
    return (uint32_t)col << 24 | ((low * 2654435761u) >> 8);
}

/* The shown value for columns [from, to] of one value, as worked out from the table: the
 * cumulative weights give the column boundaries. */
typedef struct band {
    unsigned from, to;
    int64_t shown;
} band;

/* Values 1..4: each row's outputs (value + noise, where nothing lands on 1 or 2). */
static const band shown_1[] = {{0, 170, 0}, {171, 255, 3}};
static const band shown_2[] = {{0, 84, 0}, {85, 255, 3}};
static const band shown_3[] = {{0, 35, 0}, {36, 175, 3}, {176, 235, 4}, {236, 255, 5}};
static const band shown_4[] = {{0, 3, 0}, {4, 63, 3}, {64, 191, 4}, {192, 243, 5}, {244, 255, 6}};
/* Values from 5 up: the noise of row 5 (shown = value + noise). */
static const band noise_5[] = {
    {0, 15, -2}, {16, 63, -1}, {64, 191, 0}, {192, 239, 1}, {240, 255, 2}};

static int64_t band_at(const band *b, size_t n, unsigned col)
{
    for (size_t i = 0; i < n; i++)
        if (col >= b[i].from && col <= b[i].to)
            return b[i].shown;
    fail_msg("column %u is in no band", col);
    return -1;
}

#define N(a) (sizeof(a) / sizeof(a[0]))

/* The expected shown count of value under column col, from the bands above. */
static int64_t expected_count(int64_t value, unsigned col)
{
    switch (value) {
    case 1:
        return band_at(shown_1, N(shown_1), col);
    case 2:
        return band_at(shown_2, N(shown_2), col);
    case 3:
        return band_at(shown_3, N(shown_3), col);
    case 4:
        return band_at(shown_4, N(shown_4), col);
    default:
        return value + band_at(noise_5, N(noise_5), col);
    }
}

static void test_disclosure_bands_cover_every_column_once(void **state)
{
    (void)state;
    /* The hand-made bands themselves: contiguous from 0 to 255, widths = the weights. */
    const struct {
        const band *b;
        size_t n;
        unsigned widths[5];
    } rows[] = {{shown_1, N(shown_1), {171, 85}},
                {shown_2, N(shown_2), {85, 171}},
                {shown_3, N(shown_3), {36, 140, 60, 20}},
                {shown_4, N(shown_4), {4, 60, 128, 52, 12}},
                {noise_5, N(noise_5), {16, 48, 128, 48, 16}}};
    for (size_t r = 0; r < N(rows); r++) {
        unsigned next = 0;
        for (size_t i = 0; i < rows[r].n; i++) {
            assert_int_equal(rows[r].b[i].from, next);
            assert_int_equal(rows[r].b[i].to - rows[r].b[i].from + 1, rows[r].widths[i]);
            next = rows[r].b[i].to + 1;
        }
        assert_int_equal(next, 256);
    }
}

static void test_disclosure_keeps_zero_zero(void **state)
{
    (void)state;
    for (unsigned col = 0; col < 256; col++) {
        assert_int_equal(disclosure_count(0, key_of(col, col)), 0);
        assert_int_equal(disclosure_noise(0, key_of(col, col)), 0);
        assert_int_equal(disclosure_count(-3, key_of(col, 1)), 0);
    }
}

static void test_disclosure_never_shows_one_or_two(void **state)
{
    (void)state;
    for (int64_t v = 0; v <= 1000; v++)
        for (unsigned col = 0; col < 256; col++) {
            int64_t out = disclosure_count(v, key_of(col, (unsigned)v));
            if (out == 1 || out == 2)
                fail_msg("value %lld under column %u shows as %lld", (long long)v, col,
                         (long long)out);
        }
}

static void test_disclosure_matches_the_table_in_every_column(void **state)
{
    (void)state;
    const int64_t values[] = {1, 2, 3, 4, 5, 6, 7, 10, 57, 1000, 123456789};
    for (size_t i = 0; i < N(values); i++)
        for (unsigned col = 0; col < 256; col++)
            for (unsigned low = 0; low < 3; low++) {
                int64_t want = expected_count(values[i], col);
                int64_t got = disclosure_count(values[i], key_of(col, low * 7919u + col));
                if (got != want)
                    fail_msg("value %lld, column %u: shows %lld, the table says %lld",
                             (long long)values[i], col, (long long)got, (long long)want);
            }
}

/* Literal cases at the band edges, worked out by hand. */
static const struct {
    int64_t value;
    uint32_t key;
    int64_t shown;
} literal[] = {
    {1, 0x00000000u, 0},       {1, 0xAAFFFFFFu, 0},       {1, 0xAB000000u, 3},
    {1, 0xFFFFFFFFu, 3},       {2, 0x54FFFFFFu, 0},       {2, 0x55000000u, 3},
    {3, 0x23FFFFFFu, 0},       {3, 0x24000000u, 3},       {3, 0xAFFFFFFFu, 3},
    {3, 0xB0000000u, 4},       {3, 0xEBFFFFFFu, 4},       {3, 0xEC000000u, 5},
    {4, 0x03FFFFFFu, 0},       {4, 0x04000000u, 3},       {4, 0x3FFFFFFFu, 3},
    {4, 0x40000000u, 4},       {4, 0xBFFFFFFFu, 4},       {4, 0xC0000000u, 5},
    {4, 0xF3FFFFFFu, 5},       {4, 0xF4000000u, 6},       {5, 0x0FFFFFFFu, 3},
    {5, 0x10000000u, 4},       {5, 0x3FFFFFFFu, 4},       {5, 0x40000000u, 5},
    {5, 0xBFFFFFFFu, 5},       {5, 0xC0000000u, 6},       {5, 0xEFFFFFFFu, 6},
    {5, 0xF0000000u, 7},       {1000, 0x00ABCDEFu, 998},  {1000, 0x12345678u, 999},
    {1000, 0x80000000u, 1000}, {1000, 0xC8000000u, 1001}, {1000, 0xFFFFFFFFu, 1002},
};

static void test_disclosure_literal_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(literal); i++) {
        int64_t got = disclosure_count(literal[i].value, literal[i].key);
        if (got != literal[i].shown)
            fail_msg("disclosure_count(%lld, 0x%08x) = %lld, expected %lld",
                     (long long)literal[i].value, literal[i].key, (long long)got,
                     (long long)literal[i].shown);
    }
}

/* The same (value, cell key) gives the same output whenever it is asked, whatever was
 * asked in between: forwards, backwards, and interleaved with other cells, thousands of
 * times (so that hidden state, such as a counter or a random draw, would show). */
static void test_disclosure_same_cell_same_output_in_any_order(void **state)
{
    (void)state;
    for (int pass = 0; pass < 300; pass++)
        for (size_t k = 0; k < N(literal); k++) {
            size_t i = pass % 3 == 1 ? N(literal) - 1 - k : k;
            if (pass % 3 == 2)
                (void)disclosure_count(literal[(i * 7) % N(literal)].value + 11,
                                       literal[(i * 5) % N(literal)].key ^ 0x5A5A5A5Au);
            assert_int_equal(disclosure_count(literal[i].value, literal[i].key), literal[i].shown);
        }
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

/* Sums: shown from 5 contributors, value + round(value * noise / 100) with row 5's noise,
 * half away from zero. */
static void test_disclosure_sum_literal_cases(void **state)
{
    (void)state;
    const struct {
        int64_t value, contributors;
        uint32_t key;
        int64_t shown;
    } cases[] = {
        {100000, 5, 0x00000000u, 98000},  /* -2%: 2000 less */
        {100000, 5, 0xFFFFFFFFu, 102000}, /* +2% */
        {100000, 6, 0x80000000u, 100000}, /* 0% */
        {1234, 7, 0xC8000000u, 1246},     /* +1%: 12.34 rounds to 12 */
        {150, 9, 0x10000000u, 148},       /* -1%: 1.5 rounds away from zero to 2 */
        {50, 5, 0xC0000000u, 51},         /* +1%: 0.5 rounds to 1 */
        {49, 5, 0xC0000000u, 49},         /* +1%: 0.49 rounds to 0 */
        {0, 12, 0xFFFFFFFFu, 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        int64_t out = -1;
        assert_int_equal(disclosure_sum(cases[i].value, cases[i].contributors, cases[i].key, &out),
                         1);
        if (out != cases[i].shown)
            fail_msg("disclosure_sum(%lld, %lld, 0x%08x) = %lld, expected %lld",
                     (long long)cases[i].value, (long long)cases[i].contributors, cases[i].key,
                     (long long)out, (long long)cases[i].shown);
    }
}

static void test_disclosure_sums_need_five_contributors(void **state)
{
    (void)state;
    int64_t out = -1;
    for (int64_t c = 0; c < DISCLOSURE_MIN_CONTRIBUTORS; c++) {
        assert_int_equal(disclosure_sum(100000, c, 0xFFFFFFFFu, &out), 0);
        assert_int_equal(out, -1); /* left untouched */
    }
    assert_int_equal(DISCLOSURE_MIN_CONTRIBUTORS, 5);
    assert_int_equal(disclosure_sum(100000, 5, 0xFFFFFFFFu, &out), 1);
    assert_int_equal(out, 102000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disclosure_bands_cover_every_column_once),
        cmocka_unit_test(test_disclosure_keeps_zero_zero),
        cmocka_unit_test(test_disclosure_never_shows_one_or_two),
        cmocka_unit_test(test_disclosure_matches_the_table_in_every_column),
        cmocka_unit_test(test_disclosure_literal_cases),
        cmocka_unit_test(test_disclosure_same_cell_same_output_in_any_order),
        cmocka_unit_test(test_disclosure_noise_is_small_and_unbiased),
        cmocka_unit_test(test_disclosure_sum_literal_cases),
        cmocka_unit_test(test_disclosure_sums_need_five_contributors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
