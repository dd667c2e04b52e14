/* The renderings of the federal API's answers (federal-api/frender.c): the exact and the
 * perturbed value of each cell, the CSV and DHIS2 shapes, and a buffer that overflows
 * never giving a shortened answer. Perturbed expectations come from the perturbation
 * table by hand (see test_federal_disclosure.c): under a key whose top byte is 0xAB a 1
 * shows as 3; under 0x00 a 2 shows as 0; under 0xF0 a 5 shows as 7. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "frender.h"
#include "params.h"

#define ALL                                                                                        \
    (PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_BY |              \
     PARAM_FORMAT | PARAM_EXACT)

static params_query query(const char *code, const char *raw)
{
    params_query q;
    char err[700];
    if (params_parse(raw, ALL, catalogue_find(code), &q, err, sizeof(err)) != 0)
        fail_msg("%s: %s", raw, err);
    return q;
}

/* participants_registered by sex: total 8 (1 + 2 + 5), FEMALE 1, MALE 2, OTHER 5. */
static findicators_cell participants[] = {
    {"participants_registered", "", "", 8, 0, 8, 0x80000000u},
    {"participants_registered", "sex", "FEMALE", 1, 0, 1, 0xAB000000u},
    {"participants_registered", "sex", "MALE", 2, 0, 2, 0x00000000u},
    {"participants_registered", "sex", "OTHER", 5, 0, 5, 0xF0000000u},
};

static findicators_result result_of(findicators_cell *cells, size_t n)
{
    findicators_result r;
    memset(&r, 0, sizeof(r));
    r.cells = cells;
    r.n = n;
    r.as_of[1] = "2026-08-01T10:00:00.000Z";
    return r;
}

static json_t *parse_json(const sbuf *b)
{
    json_error_t je;
    json_t *j = json_loadb(b->p, b->len, 0, &je);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", je.text, b->p);
    return j;
}

static json_t *row_of(json_t *answer, const char *dim, const char *value)
{
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(answer, "rows"), i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, dim)), value) == 0)
            return row;
    }
    fail_msg("no row %s=%s", dim, value);
    return NULL;
}

static void test_render_indicator_json_exact(void **state)
{
    (void)state;
    params_query q = query("participants_registered", "period=2026-07&by=sex");
    findicators_result r = result_of(participants, 4);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(
        frender_indicator_json(&b, catalogue_find("participants_registered"), &q, &r, 0), 0);
    json_t *j = parse_json(&b);
    assert_string_equal(json_string_value(json_object_get(j, "disclosure")), "exact");
    assert_string_equal(json_string_value(json_object_get(j, "period_kind")), "month");
    json_t *total = json_object_get(j, "total");
    assert_int_equal(json_integer_value(json_object_get(total, "value")), 8);
    assert_int_equal(json_integer_value(json_object_get(total, "contributors")), 8);
    assert_int_equal(json_array_size(json_object_get(j, "rows")), 3);
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "FEMALE"), "value")), 1);
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "MALE"), "value")), 2);
    json_t *as_of = json_object_get(j, "as_of");
    assert_string_equal(json_string_value(json_object_get(as_of, "1")), "2026-08-01T10:00:00.000Z");
    assert_true(json_is_null(json_object_get(as_of, "7")));
    json_decref(j);
    sbuf_free(&b);
}

static void test_render_indicator_json_perturbed_hides_exact_counts(void **state)
{
    (void)state;
    params_query q = query("participants_registered", "period=2026-07&by=sex");
    findicators_result r = result_of(participants, 4);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(
        frender_indicator_json(&b, catalogue_find("participants_registered"), &q, &r, 1), 0);
    json_t *j = parse_json(&b);
    assert_string_equal(json_string_value(json_object_get(j, "disclosure")), "cell-key perturbed");
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "FEMALE"), "value")), 3);
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "MALE"), "value")), 0);
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "OTHER"), "value")), 7);
    /* The total is a cell of its own: 8 under column 0x80 stays 8. */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "value")), 8);
    assert_null(strstr(b.p, "contributors"));
    assert_null(strstr(b.p, "numerator"));
    json_decref(j);
    sbuf_free(&b);
}

static void test_render_sums_with_few_contributors_are_suppressed_for_the_public(void **state)
{
    (void)state;
    findicators_cell cells[] = {
        {"seed_funding_npr", "sex", "FEMALE", 100000, 0, 4, 0xFFFFFFFFu},
        {"seed_funding_npr", "sex", "MALE", 100000, 0, 5, 0xFFFFFFFFu},
    };
    params_query q = query("seed_funding_npr", "period=2026-07&by=sex");
    findicators_result r = result_of(cells, 2);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(frender_indicator_json(&b, catalogue_find("seed_funding_npr"), &q, &r, 1), 0);
    json_t *j = parse_json(&b);
    json_t *female = row_of(j, "sex", "FEMALE"), *male = row_of(j, "sex", "MALE");
    assert_true(json_is_null(json_object_get(female, "value")));
    assert_true(json_is_true(json_object_get(female, "suppressed")));
    assert_int_equal(json_integer_value(json_object_get(male, "value")), 102000); /* +2% */
    assert_null(json_object_get(male, "suppressed"));
    json_decref(j);
    sbuf_free(&b);
}

static void test_render_ratios_divide_at_read_time(void **state)
{
    (void)state;
    findicators_cell cells[] = {{"enterprises_active", "", "", 3, 4, 4, 0x80000000u}};
    params_query q = query("enterprises_active", "period=2026-07");
    findicators_result r = result_of(cells, 1);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(frender_indicator_json(&b, catalogue_find("enterprises_active"), &q, &r, 0),
                     0);
    assert_non_null(strstr(b.p, "\"total\":{\"value\":0.7500,\"numerator\":3,\"denominator\":4"));
    sbuf_reset(&b);
    cells[0].de = 0;
    assert_int_equal(frender_indicator_json(&b, catalogue_find("enterprises_active"), &q, &r, 0),
                     0);
    assert_non_null(strstr(b.p, "\"total\":{\"value\":null,"));
    sbuf_free(&b);
}

static void test_render_csv_has_rows_then_the_total(void **state)
{
    (void)state;
    params_query q = query("participants_registered", "period=2026-07&by=sex&province=1");
    findicators_result r = result_of(participants, 4);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(
        frender_indicator_csv(&b, catalogue_find("participants_registered"), &q, &r, 0), 0);
    assert_string_equal(b.p, "indicator,period,area,sex,value,numerator,denominator,contributors\n"
                             "participants_registered,2026-07,province:1,FEMALE,1,1,0,1\n"
                             "participants_registered,2026-07,province:1,MALE,2,2,0,2\n"
                             "participants_registered,2026-07,province:1,OTHER,5,5,0,5\n"
                             "participants_registered,2026-07,province:1,TOTAL,8,8,0,8\n");
    sbuf_reset(&b);
    assert_int_equal(
        frender_indicator_csv(&b, catalogue_find("participants_registered"), &q, &r, 1), 0);
    assert_string_equal(b.p, "indicator,period,area,sex,value\n"
                             "participants_registered,2026-07,province:1,FEMALE,3\n"
                             "participants_registered,2026-07,province:1,MALE,0\n"
                             "participants_registered,2026-07,province:1,OTHER,7\n"
                             "participants_registered,2026-07,province:1,TOTAL,8\n");
    sbuf_free(&b);
}

static void test_render_as_of_header_names_each_province_of_the_area(void **state)
{
    (void)state;
    findicators_result r = result_of(participants, 4);
    char h[512];
    params_query q = query("participants_registered", "period=2026-07");
    frender_as_of_header(&q, &r, h, sizeof(h));
    assert_string_equal(h, "1=2026-08-01T10:00:00.000Z; 2=none; 3=none; 4=none; 5=none; "
                           "6=none; 7=none");
    q = query("participants_registered", "period=2026-07&municipality=10101");
    frender_as_of_header(&q, &r, h, sizeof(h));
    assert_string_equal(h, "1=2026-08-01T10:00:00.000Z");
}

static void test_render_data_value_sets(void **state)
{
    (void)state;
    findicators_cell cells[] = {
        {"participants_registered", "", "", 8, 0, 8, 0x80000000u},
        {"participants_registered", "sex", "MALE", 2, 0, 2, 0x00000000u},
        {"seed_funding_npr", "sex", "FEMALE", 100000, 0, 4, 0xFFFFFFFFu},
    };
    params_query q = query("participants_registered", "period=2026-07&province=3");
    findicators_result r = result_of(cells, 3);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(frender_dvs(&b, &q, &r, 0), 0);
    json_t *j = parse_json(&b);
    assert_string_equal(json_string_value(json_object_get(j, "orgUnit")), "P3");
    json_t *dv = json_object_get(j, "dataValues");
    assert_int_equal(json_array_size(dv), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(dv, 0), "categoryOptionCombo")),
        "default");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(dv, 1), "categoryOptionCombo")),
        "sex:MALE");
    assert_string_equal(json_string_value(json_object_get(json_array_get(dv, 1), "value")), "2");
    json_decref(j);
    /* For the public the suppressed sum is left out. */
    sbuf_reset(&b);
    assert_int_equal(frender_dvs(&b, &q, &r, 1), 0);
    j = parse_json(&b);
    dv = json_object_get(j, "dataValues");
    assert_int_equal(json_array_size(dv), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dv, 1), "value")), "0");
    json_decref(j);
    sbuf_free(&b);
}

static void test_render_catalogue_lists_every_indicator(void **state)
{
    (void)state;
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(frender_catalogue(&b), 0);
    json_t *j = parse_json(&b);
    json_t *inds = json_object_get(j, "indicators");
    assert_int_equal(json_array_size(inds), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(inds, i), "code")),
                            all[i].code);
    json_decref(j);
    sbuf_free(&b);
}

/* A buffer that cannot hold the answer makes each renderer fail, so that the caller
 * answers 500 instead of a shortened 200. */
static void test_render_overflow_is_an_error_never_a_short_answer(void **state)
{
    (void)state;
    params_query q = query("participants_registered", "period=2026-07&by=sex");
    findicators_result r = result_of(participants, 4);
    const catalogue_indicator *ind = catalogue_find("participants_registered");
    for (size_t max = 1; max < 200; max += 23) {
        sbuf b;
        sbuf_init(&b, max);
        assert_int_equal(frender_indicator_json(&b, ind, &q, &r, 0), REINT_ETOOBIG);
        sbuf_free(&b);
        sbuf_init(&b, max);
        assert_int_equal(frender_indicator_csv(&b, ind, &q, &r, 0), REINT_ETOOBIG);
        sbuf_free(&b);
        sbuf_init(&b, max);
        assert_int_equal(frender_dvs(&b, &q, &r, 0), REINT_ETOOBIG);
        sbuf_free(&b);
        sbuf_init(&b, max);
        assert_int_equal(frender_catalogue(&b), REINT_ETOOBIG);
        sbuf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_indicator_json_exact),
        cmocka_unit_test(test_render_indicator_json_perturbed_hides_exact_counts),
        cmocka_unit_test(test_render_sums_with_few_contributors_are_suppressed_for_the_public),
        cmocka_unit_test(test_render_ratios_divide_at_read_time),
        cmocka_unit_test(test_render_csv_has_rows_then_the_total),
        cmocka_unit_test(test_render_as_of_header_names_each_province_of_the_area),
        cmocka_unit_test(test_render_data_value_sets),
        cmocka_unit_test(test_render_catalogue_lists_every_indicator),
        cmocka_unit_test(test_render_overflow_is_an_error_never_a_short_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
