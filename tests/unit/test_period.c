/* Tests for common/period: every period kind parses to its kind and its first and last day,
 * malformed strings and periods outside the Bikram Sambat table are refused, and a day maps
 * to the six periods that contain it.
 *
 * Every expected day is a literal worked out by hand, never computed by the product: the
 * Gregorian ones as days since 1970-01-01, the Bikram Sambat ones from the rows of
 * data/bikram_sambat.csv quoted beside them, e.g.
 *   2080: 31,32,31,32,31,30,30,30,29,29,30,30 (365 days), Baisakh 1 = 2023-04-14
 *   2081: 31,32,31,32,31,30,30,30,29,30,29,31 (366 days), Baisakh 1 = 2024-04-13
 *   2099: 31,31,32,32,31,30,30,29,30,29,30,30 (365 days), Baisakh 1 = 2042-04-14
 *   2000: 30,32,31,32,31,30,30,30,29,30,29,31 (365 days), Baisakh 1 = 1943-04-14 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bscal.h"
#include "error.h"
#include "period.h"
#include "review.h"

/* Parses s, which must be accepted as kind, spanning first..last. */
static void expect_period(const char *s, enum period_kind kind, int32_t first, int32_t last)
{
    enum period_kind k = PERIOD_FISCAL_YEAR;
    int32_t f = 0, l = 0;
    if (period_parse(s, &k, &f, &l) != 0)
        fail_msg("\"%s\" was refused", s);
    if ((int)k != (int)kind)
        fail_msg("\"%s\": kind %d, expected %d", s, (int)k, (int)kind);
    if (f != first || l != last)
        fail_msg("\"%s\": days %d..%d, expected %d..%d", s, (int)f, (int)l, (int)first, (int)last);
}

static void expect_refused(const char *s)
{
    enum period_kind k;
    int32_t f, l;
    int rc = period_parse(s, &k, &f, &l);
    if (rc != REINT_EINVAL)
        fail_msg("\"%s\": returned %d, expected REINT_EINVAL", s, rc);
}

static void test_gregorian_year_is_january_first_to_december_thirty_first(void **state)
{
    (void)state;
    expect_period("2026", PERIOD_YEAR, 20454, 20818); /* 2026-01-01 .. 2026-12-31 */
    expect_period("2024", PERIOD_YEAR, 19723, 20088); /* leap year: 366 days */
    expect_period("1970", PERIOD_YEAR, 0, 364);       /* the epoch itself */
    expect_period("1969", PERIOD_YEAR, -365, -1);     /* before the epoch */
}

static void test_quarter_is_three_whole_months(void **state)
{
    (void)state;
    expect_period("2026-Q1", PERIOD_QUARTER, 20454, 20543); /* 01-01 .. 03-31 */
    expect_period("2026-Q3", PERIOD_QUARTER, 20635, 20726); /* 07-01 .. 09-30 */
    expect_period("2026-Q4", PERIOD_QUARTER, 20727, 20818); /* 10-01 .. 12-31 */
    expect_period("2024-Q1", PERIOD_QUARTER, 19723, 19813); /* 01-01 .. 03-31, 29 Feb */
}

static void test_month_has_its_gregorian_length(void **state)
{
    (void)state;
    expect_period("2026-07", PERIOD_MONTH, 20635, 20665); /* 31 days */
    expect_period("2026-01", PERIOD_MONTH, 20454, 20484);
    expect_period("2026-12", PERIOD_MONTH, 20788, 20818);
    expect_period("2024-02", PERIOD_MONTH, 19754, 19782); /* 29 days: divisible by 4 */
    expect_period("2100-02", PERIOD_MONTH, 47513, 47540); /* 28 days: a century */
    expect_period("2000-02", PERIOD_MONTH, 10988, 11016); /* 29 days: divisible by 400 */
}

static void test_bs_month_follows_the_table(void **state)
{
    (void)state;
    /* BS2080-05 (Bhadra) starts 31+32+31+32 = 126 days after 2023-04-14: 2023-08-18, and
     * has 31 days: to 2023-09-17. */
    expect_period("BS2080-05", PERIOD_BS_MONTH, 19587, 19617);
    /* BS2080-01 is 2023-04-14 .. 2023-05-14 (31 days). */
    expect_period("BS2080-01", PERIOD_BS_MONTH, 19461, 19491);
    /* BS2081-12 (Chaitra) is the 31 days before BS2082-01-01 = 2024-04-13 + 366 =
     * 2025-04-14: 2025-03-14 .. 2025-04-13. */
    expect_period("BS2081-12", PERIOD_BS_MONTH, 20161, 20191);
}

static void test_fiscal_trimesters_split_shrawan_to_asar(void **state)
{
    (void)state;
    /* T1, Shrawan..Kartik 2080 (months 4-7, 32+31+30+30 = 123 days): BS2080-04-01 =
     * 2023-04-14 + 94 = 2023-07-17, to 2023-11-16. */
    expect_period("FY2080/81-T1", PERIOD_FISCAL_TRIMESTER, 19555, 19677);
    /* T2, Mangsir..Falgun 2080 (months 8-11, 30+29+29+30 = 118 days): 2023-11-17 ..
     * 2024-03-13. */
    expect_period("FY2080/81-T2", PERIOD_FISCAL_TRIMESTER, 19678, 19795);
    /* T3, Chaitra 2080 (30 days) and Baisakh..Asar 2081 (31+32+31): 2024-03-14 ..
     * 2024-07-15, across the BS new year. */
    expect_period("FY2080/81-T3", PERIOD_FISCAL_TRIMESTER, 19796, 19919);
}

static void test_fiscal_year_is_shrawan_first_to_asar_end(void **state)
{
    (void)state;
    /* BS2080-04-01 = 2023-07-17 to the day before BS2081-04-01 = 2024-04-13 + 94 =
     * 2024-07-16. */
    expect_period("FY2080/81", PERIOD_FISCAL_YEAR, 19555, 19919);
    /* FY2081/82: BS2081-04-01 = 2024-04-13 + 94 = 2024-07-16, then the rest of 2081
     * (32+31+30+30+30+29+30+29+31 = 272 days) and Baisakh..Asar 2082 (31+31+32 = 94): 366
     * days, to 2025-07-16. */
    expect_period("FY2081/82", PERIOD_FISCAL_YEAR, 19920, 20285);
}

static void test_bs_periods_at_the_edges_of_the_table(void **state)
{
    (void)state;
    /* The table's first month, BS2000-01: 1943-04-14 .. 1943-05-13 (30 days). */
    expect_period("BS2000-01", PERIOD_BS_MONTH, -9759, -9730);
    /* Its last month, BS2099-12 (30 days), ends on BS2099's 365th day, 2042-04-14 + 364 =
     * 2043-04-13. */
    expect_period("BS2099-12", PERIOD_BS_MONTH, 26736, 26765);
    /* FY2099/00-T1 lies wholly inside BS 2099: 2042-04-14 + 94 = 2042-07-17, 123 days. */
    expect_period("FY2099/00-T1", PERIOD_FISCAL_TRIMESTER, 26495, 26617);
}

/* A period of the BS kinds whose years are outside the table: REINT_ERANGE, so that an answer
 * can say so rather than "not a period". */
static void expect_outside(const char *s)
{
    enum period_kind k;
    int32_t f, l;
    int rc = period_parse(s, &k, &f, &l);
    if (rc != REINT_ERANGE)
        fail_msg("\"%s\": returned %d, expected REINT_ERANGE", s, rc);
}

static void test_bs_periods_outside_the_table_are_refused(void **state)
{
    (void)state;
    expect_outside("BS1999-12");
    expect_outside("BS2100-01");
    expect_outside("BS1970-01");
    expect_outside("FY1999/00");
    expect_outside("FY1999/00-T3");
    /* Both end in BS 2100, which the table lacks. */
    expect_outside("FY2099/00");
    expect_outside("FY2099/00-T3");
}

static void test_gregorian_years_one_to_9999_are_accepted_and_zero_refused(void **state)
{
    (void)state;
    expect_period("0001", PERIOD_YEAR, -719162, -718798); /* 0001-01-01 .. 0001-12-31 */
    expect_period("9999", PERIOD_YEAR, 2932532, 2932896); /* 9999-01-01 .. 9999-12-31 */
    expect_refused("0000");
    expect_refused("0000-Q1");
    expect_refused("0000-01");
}

static void test_malformed_strings_are_refused(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",           "202",           "20266",        " 2026",        "2026 ",
        "+026",       "-026",          "2026-",        "2026-13",      "2026-00",
        "2026-7",     "2026/07",       "2026-07-01",   "2026-Q0",      "2026-Q5",
        "2026-q3",    "2026-3Q",       "Q3-2026",      "BS2080-13",    "BS2080-00",
        "BS2080-5",   "bs2080-05",     "BS2080/05",    "B2080-05",     "FY2080/82",
        "FY2080/8",   "FY2080-81",     "FY2080/81-T0", "FY2080/81-T4", "FY2080/81-t1",
        "FY2080/81-", "FY2080/81-T1x", "FY2080/81T1",  "FY2080/81xT1", "FY2080/81 T1",
        "fy2080/81",  "FY20801/82",    "FY2080/81-Q1", "2026-Q3x",     "2026\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(bad[i]);
}

/* The six periods period_of_day writes for day, against literals. */
static void expect_periods_of(int32_t day, const char *const want[PERIOD_KINDS], int want_rc)
{
    char out[PERIOD_KINDS][PERIOD_MAX];
    memset(out, 'x', sizeof(out));
    assert_int_equal(period_of_day(day, out), want_rc);
    for (int k = 0; k < PERIOD_KINDS; k++)
        if (strcmp(out[k], want[k]) != 0)
            fail_msg("day %d, kind %d: \"%s\", expected \"%s\"", (int)day, k, out[k], want[k]);
}

static void test_a_day_belongs_to_one_period_of_each_kind(void **state)
{
    (void)state;
    /* 2023-08-18 is BS2080-05-01, in Shrawan..Kartik. */
    static const char *const bhadra[PERIOD_KINDS] = {"2023",      "2023-Q3",      "2023-08",
                                                     "BS2080-05", "FY2080/81-T1", "FY2080/81"};
    expect_periods_of(19587, bhadra, 0);
    /* 2023-12-31 is 261 days after 2023-04-14: BS2080-09-15 (months 1-8 hold 247 days),
     * in Mangsir..Falgun; the last day of a quarter. */
    static const char *const poush[PERIOD_KINDS] = {"2023",      "2023-Q4",      "2023-12",
                                                    "BS2080-09", "FY2080/81-T2", "FY2080/81"};
    expect_periods_of(19722, poush, 0);
    /* 2024-04-13 is BS2081-01-01: a new BS year, still the fiscal year begun in 2080. */
    static const char *const new_year[PERIOD_KINDS] = {"2024",      "2024-Q2",      "2024-04",
                                                       "BS2081-01", "FY2080/81-T3", "FY2080/81"};
    expect_periods_of(19826, new_year, 0);
    /* 2024-07-16 is BS2081-04-01, the first day of FY2081/82. */
    static const char *const shrawan[PERIOD_KINDS] = {"2024",      "2024-Q3",      "2024-07",
                                                      "BS2081-04", "FY2081/82-T1", "FY2081/82"};
    expect_periods_of(19920, shrawan, 0);
}

static void test_a_day_before_the_table_has_only_gregorian_periods(void **state)
{
    (void)state;
    /* 1943-04-13, the day before BS2000-01-01. */
    static const char *const before[PERIOD_KINDS] = {"1943", "1943-Q2", "1943-04", "", "", ""};
    expect_periods_of(-9760, before, REINT_EINVAL);
}

/* An event placed by its month pair lands in the same six periods as its day did, for every
 * day of the BS table; the pair's months overlap, and the overlap holds the day. */
static void test_the_pair_of_a_day_gives_the_periods_of_the_day(void **state)
{
    (void)state;
    int32_t first = 0, last = 0;
    assert_int_equal(bscal_days_from_bs(2000, 1, 1, &first), 0);
    assert_int_equal(bscal_days_from_bs(2099, 12, 30, &last), 0);
    for (int32_t d = first; d <= last; d++) {
        int32_t ad, bs, lo, hi;
        char a[PERIOD_KINDS][PERIOD_MAX], b[PERIOD_KINDS][PERIOD_MAX];
        if (bscal_pair_of_day(d, &ad, &bs) != 0 || period_of_day(d, a) != 0 ||
            period_of_pair(ad, bs, b) != 0)
            fail_msg("day %d has no pair or periods", (int)d);
        for (int k = 0; k < PERIOD_KINDS; k++)
            if (strcmp(a[k], b[k]) != 0)
                fail_msg("day %d: %s by the day, %s by the pair", (int)d, a[k], b[k]);
        if (bscal_pair_span(ad, bs, &lo, &hi) != 0 || d < lo || d > hi || hi - lo > 31)
            fail_msg("day %d: pair %d/%d spans %d..%d", (int)d, (int)ad, (int)bs, (int)lo, (int)hi);
    }
    int32_t ad, bs;
    assert_int_equal(bscal_pair_of_day(first - 1, &ad, &bs), REINT_ERANGE);
}

/* Worked out from the table: Shrawan 2080 (BS month 4) began on 2023-07-17 and Asar 2081
 * (month 3) ended on 2024-07-15. */
static void test_a_period_is_a_range_of_months_of_its_calendar(void **state)
{
    (void)state;
    enum period_kind k;
    int bs = -1;
    int32_t f = 0, l = 0;
    assert_int_equal(period_months("FY2080/81", &k, &bs, &f, &l), 0);
    assert_int_equal(k, PERIOD_FISCAL_YEAR);
    assert_true(bs && f == 208004 && l == 208103);
    assert_int_equal(period_months("FY2080/81-T3", &k, &bs, &f, &l), 0);
    assert_true(bs && f == 208012 && l == 208103);
    assert_int_equal(period_months("BS2081-06", &k, &bs, &f, &l), 0);
    assert_true(bs && f == 208106 && l == 208106);
    assert_int_equal(period_months("2024-Q3", &k, &bs, &f, &l), 0);
    assert_true(!bs && f == 202407 && l == 202409);
    assert_int_equal(period_months("2024", &k, &bs, &f, &l), 0);
    assert_true(!bs && f == 202401 && l == 202412);
    assert_int_equal(period_months("FY2080/82", &k, &bs, &f, &l), REINT_EINVAL);
    /* The pair (2024-07, BS 2081-03) is in 2024, 2024-Q3, 2024-07, BS2081-03, FY2080/81-T3
     * and FY2080/81. */
    char p[PERIOD_KINDS][PERIOD_MAX];
    assert_int_equal(period_of_pair(202407, 208103, p), 0);
    assert_string_equal(p[PERIOD_QUARTER], "2024-Q3");
    assert_string_equal(p[PERIOD_FISCAL_TRIMESTER], "FY2080/81-T3");
    assert_string_equal(p[PERIOD_FISCAL_YEAR], "FY2080/81");
    assert_int_equal(period_of_pair(202407, 0, p), REINT_EINVAL);
    assert_string_equal(p[PERIOD_MONTH], "2024-07");
    assert_string_equal(p[PERIOD_BS_MONTH], "");
    /* Month arithmetic across years, both ways. */
    assert_int_equal(bscal_month_add(208012, 3), 208103);
    assert_int_equal(bscal_month_add(208101, -1), 208012);
    assert_int_equal(bscal_month_add(208106, -30), 207812);
    int32_t lo, hi;
    assert_int_equal(bscal_pair_span(202407, 208103, &lo, &hi), 0);
    assert_int_equal(lo, bscal_days_from_ad(2024, 7, 1));
    assert_int_equal(hi, bscal_days_from_ad(2024, 7, 15));
    assert_int_equal(bscal_pair_span(202408, 208103, &lo, &hi), REINT_ENOTFOUND);
}

/* A decision's period is one month; a BS month outside the table is told apart from a string
 * that is no month (the hub's officers get a message for each). */
static void test_a_review_month_out_of_the_table_is_told_apart(void **state)
{
    (void)state;
    int bs = -1;
    int32_t ym = 0;
    assert_int_equal(review_parse_month("BS2083-04", &bs, &ym), 0);
    assert_int_equal(bs, 1);
    assert_int_equal(ym, 208304);
    assert_int_equal(review_parse_month("2026-07", &bs, &ym), 0);
    assert_int_equal(bs, 0);
    assert_int_equal(ym, 202607);
    assert_int_equal(review_parse_month("BS2000-01", &bs, &ym), 0);
    assert_int_equal(review_parse_month("BS2099-12", &bs, &ym), 0);
    static const char *const far[] = {"BS1970-01", "BS1999-12", "BS2100-01", "BS9999-12"};
    for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++)
        if (review_parse_month(far[i], &bs, &ym) != REINT_ERANGE)
            fail_msg("\"%s\" is not told as out of the table", far[i]);
    static const char *const bad[] = {"BS2083-13", "BS2083-00", "BS2083-4",  "BS83-04",
                                      "2026",      "2026-Q3",   "FY2083/84", "BS2083-04x",
                                      "bs2083-04", "",          "BS20a3-04", "2026-13"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (review_parse_month(bad[i], &bs, &ym) != REINT_EINVAL)
            fail_msg("\"%s\" is not refused as no month", bad[i]);
    assert_int_equal(review_parse_month(NULL, &bs, &ym), REINT_EINVAL);
}

/* A review change names a month of its calendar: a Gregorian month with no day in the BS
 * table is refused (a fake hub's 0001-01, 1900-01 and 9999-12 were stored at the federal tier
 * and could never be read); the table's first and last Gregorian months are kept. */
static void test_a_review_of_a_gregorian_month_outside_the_table_is_refused(void **state)
{
    (void)state;
    Reint__V1__MonthReview m = REINT__V1__MONTH_REVIEW__INIT;
    char why[200];
    m.municipality = 10101;
    m.state = REINT__V1__MONTH_STATE__MONTH_STATE_CLOSED;
    m.clock = 1;
    m.decided_by = "";
    m.comment = "";
    m.calendar = REINT__V1__CALENDAR__CALENDAR_BS;
    m.month = 208304;
    assert_int_equal(review_check(&m, why, sizeof(why)), 0);
    m.calendar = REINT__V1__CALENDAR__CALENDAR_AD;
    static const int32_t kept[] = {202607, 194304, 204304}; /* BS 2000-01-01 is 1943-04-14 */
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        m.month = kept[i];
        if (review_check(&m, why, sizeof(why)) != 0)
            fail_msg("%d refused: %s", kept[i], why);
    }
    static const int32_t far[] = {101, 100001, 190001, 194303, 204305, 999912};
    for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
        m.month = far[i];
        if (review_check(&m, why, sizeof(why)) != REINT_EINVAL)
            fail_msg("%d kept", far[i]);
        if (strstr(why, "no day in the BS calendar table") == NULL)
            fail_msg("%d: %s", far[i], why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gregorian_year_is_january_first_to_december_thirty_first),
        cmocka_unit_test(test_quarter_is_three_whole_months),
        cmocka_unit_test(test_month_has_its_gregorian_length),
        cmocka_unit_test(test_bs_month_follows_the_table),
        cmocka_unit_test(test_fiscal_trimesters_split_shrawan_to_asar),
        cmocka_unit_test(test_fiscal_year_is_shrawan_first_to_asar_end),
        cmocka_unit_test(test_bs_periods_at_the_edges_of_the_table),
        cmocka_unit_test(test_bs_periods_outside_the_table_are_refused),
        cmocka_unit_test(test_gregorian_years_one_to_9999_are_accepted_and_zero_refused),
        cmocka_unit_test(test_malformed_strings_are_refused),
        cmocka_unit_test(test_a_day_belongs_to_one_period_of_each_kind),
        cmocka_unit_test(test_a_day_before_the_table_has_only_gregorian_periods),
        cmocka_unit_test(test_the_pair_of_a_day_gives_the_periods_of_the_day),
        cmocka_unit_test(test_a_period_is_a_range_of_months_of_its_calendar),
        cmocka_unit_test(test_a_review_month_out_of_the_table_is_told_apart),
        cmocka_unit_test(test_a_review_of_a_gregorian_month_outside_the_table_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
