/* Query-parameter validation of the federal API (federal-api/params.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "params.h"

#define ALL                                                                                        \
    (PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_BY |              \
     PARAM_FORMAT | PARAM_EXACT)

static int parse(const char *raw, params_query *q, char *err)
{
    return params_parse(raw, ALL, catalogue_find("participants_registered"), q, err, 700);
}

static void test_params_accept_a_full_query(void **state)
{
    (void)state;
    params_query q;
    char err[700];
    assert_int_equal(parse("period=2026-07&by=age_band,sex&province=1&format=csv", &q, err), 0);
    assert_string_equal(q.period, "2026-07");
    assert_int_equal(q.kind, PERIOD_MONTH);
    assert_string_equal(q.by, "sex,age_band"); /* normalised */
    assert_int_equal(q.province, 1);
    assert_int_equal(q.area_province, 1);
    assert_int_equal(q.csv, 1);
    assert_int_equal(parse("period=FY2083%2F84-T1&municipality=10101", &q, err), 0);
    assert_int_equal(q.kind, PERIOD_FISCAL_TRIMESTER);
    assert_int_equal(q.area_province, 1);
}

static void test_params_refuse_sql_metacharacters(void **state)
{
    (void)state;
    params_query q;
    char err[700];
    const char *bad[] = {
        "period=2026-07%27--",     "period=2026'",   "province=1%3BDROP", "by=sex)%20UNION",
        "municipality=10101%20OR", "format=json%22", "exact=1%3B",        "district=1%00",
        "period=2026&x%27=1",      "by=sex%5C"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &q, err), REINT_EINVAL);
        assert_null(strchr(err, '\''));
    }
}

static void test_params_refuse_long_values_and_repeats(void **state)
{
    (void)state;
    params_query q;
    char err[700], raw[400];
    memset(raw, 0, sizeof(raw));
    memcpy(raw, "period=", 7);
    memset(raw + 7, '9', 100);
    assert_int_equal(parse(raw, &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "longer"));
    assert_int_equal(parse("period=2026&period=2025", &q, err), REINT_EINVAL);
    assert_int_equal(parse("period=2026&province=1&district=1", &q, err), REINT_EINVAL);
    assert_int_equal(parse("by=sex", &q, err), REINT_EINVAL); /* period required */
}

static void test_params_list_allowed_groupings(void **state)
{
    (void)state;
    params_query q;
    char err[700];
    assert_int_equal(parse("period=2026&by=caste_group,sex", &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "allowed"));
    assert_non_null(strstr(err, "category,sex"));
    assert_non_null(strstr(err, "sex,age_band"));
}

static void test_params_check_geography_and_periods(void **state)
{
    (void)state;
    params_query q;
    char err[700];
    assert_int_equal(parse("period=2026-13", &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "is not a period"));
    /* A BS period outside the table is one: the answer says where it falls. */
    assert_int_equal(parse("period=BS1970-01", &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "outside the BS calendar table"));
    assert_int_equal(parse("period=FY2099%2F00", &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "outside the BS calendar table"));
    assert_int_equal(parse("period=2026&province=8", &q, err), REINT_EINVAL);
    assert_int_equal(parse("period=2026&municipality=99999", &q, err), REINT_EINVAL);
    assert_int_equal(parse("period=2026&district=78", &q, err), REINT_EINVAL);
    assert_int_equal(parse("period=2026&district=75", &q, err), 0);
    assert_int_equal(q.area_province, 7);
}

static void test_params_refuse_empty_segments_and_malformed_pairs(void **state)
{
    (void)state;
    params_query q;
    char err[700], raw[PARAMS_MAX_QUERY + 64];
    /* Each of these read, before, as "period=2026&municipality=10101" or less: padding let
     * a reader push the area past what the audit kept. */
    const char *bad[] = {"period=2026&&municipality=10101",
                         "&period=2026",
                         "period=2026&",
                         "period=2026&municipality",
                         "period=2026&=10101",
                         "period=2026&municipality=10101&municipality=10102"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &q, err), REINT_EINVAL);
    memset(raw, 0, sizeof(raw));
    memcpy(raw, "period=2026", 11);
    memset(raw + 11, '&', 600);
    memcpy(raw + 611, "municipality=10101", 18);
    assert_int_equal(parse(raw, &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "empty parameter"));
}

static void test_params_normalise_what_was_read(void **state)
{
    (void)state;
    params_query q;
    char err[700];
    assert_int_equal(parse("%70eriod=FY2083%2f84-T1&by=age_band%2Csex&municipality=10101", &q, err),
                     0);
    assert_string_equal(q.normalised, "period=FY2083/84-T1&by=age_band,sex&municipality=10101");
    assert_int_equal(parse("period=2026", &q, err), 0);
    assert_string_equal(q.normalised, "period=2026");
    assert_int_equal(params_parse("", PARAM_LIMIT, NULL, &q, err, sizeof(err)), 0);
    assert_string_equal(q.normalised, "");
}

static int parse_series(const char *raw, params_query *q, char *err)
{
    return params_parse(raw, ALL | PARAM_SERIES, catalogue_find("participants_registered"), q, err,
                        700);
}

/* Series and areas (fbreakdown.h): the periods a series lists, written here by hand. */
static void test_params_series_and_areas(void **state)
{
    (void)state;
    params_query q;
    char err[700], p[PARAMS_MAX_SERIES][PERIOD_MAX];
    assert_int_equal(parse_series("period=FY2080%2F81&series=bs_month&by=district,sex", &q, err),
                     0);
    assert_int_equal(q.by_area, PARAMS_AREA_DISTRICT);
    assert_string_equal(q.by, "sex");
    assert_int_equal(params_series(&q, p, PARAMS_MAX_SERIES), 12);
    assert_string_equal(p[0], "BS2080-04");
    assert_string_equal(p[8], "BS2080-12");
    assert_string_equal(p[9], "BS2081-01");
    assert_string_equal(p[11], "BS2081-03");
    assert_int_equal(parse_series("period=FY2080%2F81&series=trimester", &q, err), 0);
    assert_int_equal(params_series(&q, p, PARAMS_MAX_SERIES), 3);
    assert_string_equal(p[2], "FY2080/81-T3");
    assert_int_equal(parse_series("period=2024&series=quarter&by=province", &q, err), 0);
    assert_int_equal(q.by_area, PARAMS_AREA_PROVINCE);
    assert_int_equal(params_series(&q, p, PARAMS_MAX_SERIES), 4);
    assert_string_equal(p[3], "2024-Q4");
    assert_int_equal(parse_series("period=2023..2026&series=year", &q, err), 0);
    assert_int_equal(params_series(&q, p, PARAMS_MAX_SERIES), 4);
    assert_string_equal(p[0], "2023");
    assert_string_equal(p[3], "2026");
    assert_int_equal(parse_series("period=FY2080%2F81..FY2083%2F84&series=year", &q, err), 0);
    assert_int_equal(params_series(&q, p, PARAMS_MAX_SERIES), 4);
    assert_string_equal(p[1], "FY2081/82");
    assert_string_equal(p[3], "FY2083/84");
    /* Refused, each naming why. */
    assert_int_equal(parse_series("period=2024&series=bs_month", &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "does not divide"));
    assert_int_equal(parse_series("period=2024-03&series=year", &q, err), REINT_EINVAL);
    assert_int_equal(parse_series("period=2023..2026", &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "needs series"));
    assert_int_equal(parse_series("period=2026..2023&series=year", &q, err), REINT_EINVAL);
    assert_int_equal(parse_series("period=2024-01..2024-03&series=month", &q, err), REINT_EINVAL);
    assert_int_equal(parse_series("period=1700..2026&series=year", &q, err), REINT_EINVAL);
    assert_non_null(strstr(err, "more than"));
    assert_int_equal(parse_series("period=2024&by=province&district=7", &q, err), REINT_EINVAL);
    assert_int_equal(parse("period=2023..2026&series=year", &q, err), REINT_EINVAL);
}

static void test_params_code_shape(void **state)
{
    (void)state;
    assert_true(params_code_ok("participants_registered"));
    assert_false(params_code_ok("x';--"));
    assert_false(params_code_ok(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_accept_a_full_query),
        cmocka_unit_test(test_params_refuse_sql_metacharacters),
        cmocka_unit_test(test_params_refuse_long_values_and_repeats),
        cmocka_unit_test(test_params_list_allowed_groupings),
        cmocka_unit_test(test_params_check_geography_and_periods),
        cmocka_unit_test(test_params_refuse_empty_segments_and_malformed_pairs),
        cmocka_unit_test(test_params_normalise_what_was_read),
        cmocka_unit_test(test_params_code_shape),
        cmocka_unit_test(test_params_series_and_areas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
