/* Tests for common/bscal: the compiled-in table against data/bikram_sambat.csv, every day of
 * the range both ways, known dates, refusals, and fiscal-period edges. Run from tests/unit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bscal.h"

#define BS_CSV "../../data/bikram_sambat.csv"

static int32_t ad(int y, int m, int d)
{
    return bscal_days_from_ad(y, m, d);
}

static int32_t first_day(void)
{
    return ad(1943, 4, 14);
}

static int32_t last_day(void)
{
    return ad(2043, 4, 13);
}

static void test_year_starts_and_lengths_match_the_csv(void **state)
{
    (void)state;
    FILE *f = fopen(BS_CSV, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof(line), f)); /* header */
    int rows = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        int y, m[12], days, ay, am, ad_;
        int n = sscanf(line, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d-%d-%d", &y, &m[0], &m[1],
                       &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8], &m[9], &m[10], &m[11],
                       &days, &ay, &am, &ad_);
        assert_int_equal(n, 17);
        int32_t got;
        assert_int_equal(bscal_days_from_bs(y, 1, 1, &got), 0);
        assert_int_equal(got, ad(ay, am, ad_));
        int by, bm, bd;
        assert_int_equal(bscal_bs_from_days(ad(ay, am, ad_), &by, &bm, &bd), 0);
        assert_int_equal(by, y);
        assert_int_equal(bm, 1);
        assert_int_equal(bd, 1);
        for (int i = 0; i < 12; i++)
            assert_int_equal(bscal_bs_month_days(y, i + 1), m[i]);
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, BSCAL_LAST_YEAR - BSCAL_FIRST_YEAR + 1);
}

static void test_every_day_round_trips_from_days(void **state)
{
    (void)state;
    int py = 0, pm = 0, pd = 0;
    for (int32_t n = first_day(); n <= last_day(); n++) {
        int y, m, d;
        assert_int_equal(bscal_bs_from_days(n, &y, &m, &d), 0);
        int32_t back;
        assert_int_equal(bscal_days_from_bs(y, m, d, &back), 0);
        assert_int_equal(back, n);
        /* Consecutive days are consecutive BS dates. */
        if (n > first_day()) {
            if (d == 1) {
                assert_int_equal(pd, bscal_bs_month_days(py, pm));
                assert_true((m == pm + 1 && y == py) || (m == 1 && pm == 12 && y == py + 1));
            } else {
                assert_int_equal(y, py);
                assert_int_equal(m, pm);
                assert_int_equal(d, pd + 1);
            }
        }
        py = y;
        pm = m;
        pd = d;
    }
    assert_int_equal(py, 2099);
    assert_int_equal(pm, 12);
    assert_int_equal(pd, 30);
}

static void test_every_bs_date_round_trips_from_bs(void **state)
{
    (void)state;
    int32_t expect = first_day();
    for (int y = BSCAL_FIRST_YEAR; y <= BSCAL_LAST_YEAR; y++) {
        for (int m = 1; m <= 12; m++) {
            int len = bscal_bs_month_days(y, m);
            assert_in_range(len, 29, 32);
            for (int d = 1; d <= len; d++) {
                int32_t n;
                assert_int_equal(bscal_days_from_bs(y, m, d, &n), 0);
                assert_int_equal(n, expect);
                int by, bm, bd;
                assert_int_equal(bscal_bs_from_days(n, &by, &bm, &bd), 0);
                assert_int_equal(by, y);
                assert_int_equal(bm, m);
                assert_int_equal(bd, d);
                expect++;
            }
        }
    }
    assert_int_equal(expect, last_day() + 1);
}

static void test_gregorian_days_round_trip(void **state)
{
    (void)state;
    assert_int_equal(ad(1970, 1, 1), 0);
    assert_int_equal(ad(1969, 12, 31), -1);
    assert_int_equal(ad(2000, 3, 1), 11017);
    for (int32_t n = ad(1, 1, 1); n <= ad(9999, 12, 31); n += 7) {
        int y, m, d;
        bscal_ad_from_days(n, &y, &m, &d);
        assert_int_equal(bscal_ad_valid(y, m, d), 0);
        assert_int_equal(ad(y, m, d), n);
    }
    assert_int_equal(bscal_ad_valid(2024, 2, 29), 0);
    assert_int_equal(bscal_ad_valid(2023, 2, 29), REINT_EINVAL);
    assert_int_equal(bscal_ad_valid(1900, 2, 29), REINT_EINVAL);
    assert_int_equal(bscal_ad_valid(2000, 2, 29), 0);
    assert_int_equal(bscal_ad_valid(2023, 13, 1), REINT_EINVAL);
    assert_int_equal(bscal_ad_valid(2023, 4, 31), REINT_EINVAL);
}

static void assert_bs_is_ad(const char *bs, const char *ad_date)
{
    int32_t a, b;
    assert_int_equal(bscal_parse(bs, 1, &b), 0);
    assert_int_equal(bscal_parse(ad_date, 0, &a), 0);
    assert_int_equal(a, b);
    char out[11];
    assert_int_equal(bscal_format(a, 1, out, sizeof(out)), 0);
    assert_string_equal(out, bs);
    assert_int_equal(bscal_format(b, 0, out, sizeof(out)), 0);
    assert_string_equal(out, ad_date);
}

static void test_known_dates(void **state)
{
    (void)state;
    assert_bs_is_ad("2000-01-01", "1943-04-14");
    assert_bs_is_ad("2080-04-01", "2023-07-17");
    assert_bs_is_ad("2083-01-01", "2026-04-14");
    assert_bs_is_ad("2099-12-30", "2043-04-13");
    assert_bs_is_ad("2081-01-01", "2024-04-13");
    assert_bs_is_ad("2062-01-05", "2005-04-18");
}

static void test_out_of_range_is_refused(void **state)
{
    (void)state;
    int32_t n;
    int y, m, d;
    char out[11];
    assert_int_equal(bscal_parse("1999-12-30", 1, &n), REINT_ERANGE);
    assert_int_equal(bscal_parse("2100-01-01", 1, &n), REINT_ERANGE);
    assert_int_equal(bscal_parse("1943-04-13", 0, &n), REINT_ERANGE);
    assert_int_equal(bscal_parse("2043-04-14", 0, &n), REINT_ERANGE);
    assert_int_equal(bscal_days_from_bs(1999, 12, 30, &n), REINT_ERANGE);
    assert_int_equal(bscal_days_from_bs(2100, 1, 1, &n), REINT_ERANGE);
    assert_int_equal(bscal_bs_from_days(first_day() - 1, &y, &m, &d), REINT_ERANGE);
    assert_int_equal(bscal_bs_from_days(last_day() + 1, &y, &m, &d), REINT_ERANGE);
    assert_int_equal(bscal_bs_from_days(INT32_MIN, &y, &m, &d), REINT_ERANGE);
    assert_int_equal(bscal_bs_from_days(INT32_MAX, &y, &m, &d), REINT_ERANGE);
    assert_int_equal(bscal_format(last_day() + 1, 1, out, sizeof(out)), REINT_ERANGE);
    assert_int_equal(bscal_fiscal(first_day() - 1, &y, &m), REINT_ERANGE);
    assert_int_equal(bscal_bs_month_days(2100, 1), REINT_ERANGE);
}

static void test_invalid_text_and_days_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",           "2080-4-1",    "2080-04-1",   "2080/04/01",
        "20800401",   "2080-04-01 ", " 2080-04-01", "2080-04-01x",
        "2080-0a-01", "+080-04-01",  "2080-13-01",  "2080-00-01",
        "2080-04-00", "2080-04-33",  "2080--4-01",  "2080-06-31", /* Asoj 2080 has 30 days */
    };
    int32_t n;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bscal_parse(bad[i], 1, &n), REINT_EINVAL);
        assert_int_equal(bscal_parse(bad[i], 0, &n), REINT_EINVAL);
    }
    assert_int_equal(bscal_parse(NULL, 1, &n), REINT_EINVAL);
    assert_int_equal(bscal_parse("2023-02-29", 0, &n), REINT_EINVAL);
    assert_int_equal(bscal_parse("2099-12-31", 1, &n), REINT_EINVAL);
    assert_int_equal(bscal_days_from_bs(2080, 0, 1, &n), REINT_EINVAL);
    assert_int_equal(bscal_days_from_bs(2080, 13, 1, &n), REINT_EINVAL);
    assert_int_equal(bscal_days_from_bs(2080, 4, 0, &n), REINT_EINVAL);
    assert_int_equal(bscal_days_from_bs(2080, 6, 31, &n), REINT_EINVAL);
    assert_int_equal(bscal_bs_month_days(2080, 13), REINT_EINVAL);
    char small[10];
    assert_int_equal(bscal_format(0, 0, small, sizeof(small)), REINT_EINVAL);
}

static void assert_fiscal(const char *bs, int fy, int tri)
{
    int32_t n;
    int got_fy, got_tri;
    assert_int_equal(bscal_parse(bs, 1, &n), 0);
    assert_int_equal(bscal_fiscal(n, &got_fy, &got_tri), 0);
    assert_int_equal(got_fy, fy);
    assert_int_equal(got_tri, tri);
}

static void test_shrawan_1_starts_t1_of_a_new_fiscal_year(void **state)
{
    (void)state;
    assert_fiscal("2080-04-01", 2080, 1);
    assert_fiscal("2080-07-30", 2080, 1); /* Kartik 2080 has 30 days */
}

static void test_asar_last_day_is_t3_of_the_previous_fiscal_year(void **state)
{
    (void)state;
    int len = bscal_bs_month_days(2081, 3);
    char s[11];
    snprintf(s, sizeof(s), "2081-03-%02d", len);
    assert_fiscal(s, 2080, 3);
    assert_fiscal("2081-01-01", 2080, 3);
    assert_fiscal("2000-01-01", 1999, 3);
}

static void test_mangsir_1_starts_t2(void **state)
{
    (void)state;
    assert_fiscal("2080-08-01", 2080, 2);
    assert_fiscal("2080-11-01", 2080, 2);
}

static void test_chaitra_1_starts_t3(void **state)
{
    (void)state;
    assert_fiscal("2080-12-01", 2080, 3);
    assert_fiscal("2099-12-30", 2099, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_year_starts_and_lengths_match_the_csv),
        cmocka_unit_test(test_every_day_round_trips_from_days),
        cmocka_unit_test(test_every_bs_date_round_trips_from_bs),
        cmocka_unit_test(test_gregorian_days_round_trip),
        cmocka_unit_test(test_known_dates),
        cmocka_unit_test(test_out_of_range_is_refused),
        cmocka_unit_test(test_invalid_text_and_days_are_refused),
        cmocka_unit_test(test_shrawan_1_starts_t1_of_a_new_fiscal_year),
        cmocka_unit_test(test_asar_last_day_is_t3_of_the_previous_fiscal_year),
        cmocka_unit_test(test_mangsir_1_starts_t2),
        cmocka_unit_test(test_chaitra_1_starts_t3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
