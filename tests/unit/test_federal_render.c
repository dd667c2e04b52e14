/* The renderings of the federal API's answers (federal-api/frender.c): the exact and the
 * perturbed value of each cell, the whole category space of a grouping, the CSV and DHIS2
 * shapes, and a buffer that overflows never giving a shortened answer. Perturbed expectations
 * come from the perturbation table by hand (see test_federal_disclosure.c; a key's column is
 * floor(mix(key) * 1848 / 2^32), mix being lowbias32): under a key mixed to 0xAB000000
 * (column 1234) a 1 shows as 3; under 0 a 2 shows as 0; under one mixed to 0xF0000000
 * (column 1732) a 5 shows as 10; under one mixed to 0x80000000 (column 924) an 8 stays 8.
 * The keys below are those mixes undone (worked out separately, in Python). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "dhis2.h"
#include "frender.h"
#include "params.h"

#define K924  0xE8D54490u /* mixed: 0x80000000, column 924 */
#define K1234 0x1C68078Bu /* mixed: 0xAB000000, column 1234 */
#define K1732 0xCBD86232u /* mixed: 0xF0000000, column 1732 */
#define KLAST 0xD5F9EFC4u /* mixed: 0xFFFFFFFF, column 1847 */

#define ALL                                                                                        \
    (PARAM_PERIOD | PARAM_PROVINCE | PARAM_DISTRICT | PARAM_MUNICIPALITY | PARAM_BY |              \
     PARAM_FORMAT | PARAM_EXACT | PARAM_ID_SCHEME)

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
    {"participants_registered", "", "", 8, 0, 8, K924, 0, 0, 0, 0, NULL},
    {"participants_registered", "sex", "FEMALE", 1, 0, 1, K1234, 0, 0, 0, 0, NULL},
    {"participants_registered", "sex", "MALE", 2, 0, 2, 0x00000000u, 0, 0, 0, 0, NULL},
    {"participants_registered", "sex", "OTHER", 5, 0, 5, K1732, 0, 0, 0, 0, NULL},
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
    /* Every sex, UNKNOWN included (last), whether the store holds it or not. */
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 3), "sex")),
                        "UNKNOWN");
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "FEMALE"), "value")), 1);
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "MALE"), "value")), 2);
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "UNKNOWN"), "value")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(row_of(j, "sex", "UNKNOWN"), "contributors")), 0);
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
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "OTHER"), "value")), 10);
    assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "UNKNOWN"), "value")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "rows")), 4);
    /* The total is a cell of its own: 8 under column 0x80 stays 8. */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "value")), 8);
    assert_null(strstr(b.p, "contributors"));
    assert_null(strstr(b.p, "numerator"));
    json_decref(j);
    sbuf_free(&b);
}

/* Sums for the public: shown from 3 contributors, perturbed by the top two contributions
 * (0x80000000: up by 0.6 * f(5) = 1.2 * (30000 + 25000) = 39600), withheld below; empty cells
 * are withheld the same way; and nothing of a month or of an area below a province. */
static void test_render_sums_with_few_contributors_are_suppressed_for_the_public(void **state)
{
    (void)state;
    findicators_cell cells[] = {
        {"seed_funding_npr", "sex", "FEMALE", 100000, 0, 2, KLAST, 0, 60000, 40000, 0, NULL},
        {"seed_funding_npr", "sex", "MALE", 100000, 0, 5, K924, 0, 30000, 25000, 0, NULL},
    };
    findicators_result r = result_of(cells, 2);
    const catalogue_indicator *ind = catalogue_find("seed_funding_npr");
    sbuf b;
    sbuf_init(&b, 1 << 20);
    params_query q = query("seed_funding_npr", "period=2026-Q3&by=sex");
    assert_int_equal(frender_indicator_json(&b, ind, &q, &r, 1), 0);
    json_t *j = parse_json(&b);
    json_t *male = row_of(j, "sex", "MALE");
    assert_int_equal(json_integer_value(json_object_get(male, "value")), 139600);
    assert_null(json_object_get(male, "suppressed"));
    static const char *const withheld[] = {"FEMALE", "OTHER", "UNKNOWN"};
    for (int i = 0; i < 3; i++) {
        json_t *row = row_of(j, "sex", withheld[i]);
        assert_true(json_is_null(json_object_get(row, "value")));
        assert_true(json_is_true(json_object_get(row, "suppressed")));
    }
    json_t *total = json_object_get(j, "total"); /* none held: withheld like the rest */
    assert_true(json_is_true(json_object_get(total, "suppressed")));
    json_decref(j);
    static const char *const fine[] = {"period=2026-07&by=sex", "period=BS2083-04&by=sex",
                                       "period=2026-Q3&by=sex&district=1",
                                       "period=2026&by=sex&municipality=10101"};
    for (int i = 0; i < 4; i++) {
        sbuf_reset(&b);
        q = query("seed_funding_npr", fine[i]);
        assert_int_equal(frender_indicator_json(&b, ind, &q, &r, 1), 0);
        j = parse_json(&b);
        assert_true(json_is_true(json_object_get(row_of(j, "sex", "MALE"), "suppressed")));
        json_decref(j);
        /* Exact roles see every level. */
        sbuf_reset(&b);
        assert_int_equal(frender_indicator_json(&b, ind, &q, &r, 0), 0);
        j = parse_json(&b);
        assert_int_equal(json_integer_value(json_object_get(row_of(j, "sex", "MALE"), "value")),
                         100000);
        json_decref(j);
    }
    sbuf_free(&b);
}

/* Ratios for the public: perturbed numerator (its own key) over perturbed denominator,
 * withheld under 10 and for an empty cell alike. 30 under column 1732 shows 35, 40 under
 * column 924 stays 40. */
static void test_render_ratios_for_the_public_are_perturbed_and_withheld_under_ten(void **state)
{
    (void)state;
    findicators_cell cells[] = {
        {"enterprises_active", "", "", 30, 40, 40, K924, K1732, 0, 0, 0, NULL},
        {"enterprises_active", "sector", "RETAIL", 3, 4, 4, K924, K924, 0, 0, 0, NULL},
    };
    findicators_result r = result_of(cells, 2);
    params_query q = query("enterprises_active", "period=2026-07&by=sector");
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(frender_indicator_json(&b, catalogue_find("enterprises_active"), &q, &r, 1),
                     0);
    assert_non_null(strstr(b.p, "\"total\":{\"value\":0.8750}"));
    json_t *j = parse_json(&b);
    assert_true(json_is_true(json_object_get(row_of(j, "sector", "RETAIL"), "suppressed")));
    assert_true(json_is_true(json_object_get(row_of(j, "sector", "HANDICRAFT"), "suppressed")));
    assert_int_equal(json_array_size(json_object_get(j, "rows")), 10);
    json_decref(j);
    sbuf_free(&b);
}

/* A grouping lists the whole category space: a pair grouping its product, countries every
 * two-letter code; a key outside the space (a value this build does not know) comes after. */
static void test_render_lists_the_whole_category_space(void **state)
{
    (void)state;
    findicators_cell cells[] = {
        {"returnees_registered", "destination_country", "QA", 7, 0, 7, K924, 0, 0, 0, 0, NULL},
        {"returnees_registered", "destination_country", "UNKNOWN", 1, 0, 1, 0, 0, 0, 0, 0, NULL},
        {"participants_registered", "sex,age_band", "FEMALE,25_39", 4, 0, 4, K924, 0, 0, 0, 0,
         NULL},
        {"participants_registered", "sex,age_band", "MARTIAN,25_39", 1, 0, 1, 0, 0, 0, 0, 0, NULL},
    };
    sbuf b;
    sbuf_init(&b, 1 << 20);
    findicators_result r = result_of(cells, 2);
    params_query q = query("returnees_registered", "period=2026&by=destination_country");
    assert_int_equal(frender_indicator_json(&b, catalogue_find("returnees_registered"), &q, &r, 1),
                     0);
    json_t *j = parse_json(&b);
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 26 * 26 + 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rows, 0), "destination_country")), "AA");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rows, 26 * 26), "destination_country")),
        "UNKNOWN");
    assert_int_equal(
        json_integer_value(json_object_get(row_of(j, "destination_country", "QA"), "value")), 7);
    json_decref(j);
    r = result_of(cells + 2, 2);
    q = query("participants_registered", "period=2026&by=sex,age_band");
    for (int perturbed = 0; perturbed < 2; perturbed++) {
        sbuf_reset(&b);
        assert_int_equal(frender_indicator_json(&b, catalogue_find("participants_registered"), &q,
                                                &r, perturbed),
                         0);
        j = parse_json(&b);
        rows = json_object_get(j, "rows");
        assert_int_equal(json_array_size(rows), 4 * 6 + 1);
        json_t *first = json_array_get(rows, 0), *last = json_array_get(rows, 4 * 6);
        assert_string_equal(json_string_value(json_object_get(first, "sex")), "FEMALE");
        assert_string_equal(json_string_value(json_object_get(first, "age_band")), "0_14");
        assert_string_equal(json_string_value(json_object_get(last, "sex")), "MARTIAN");
        json_decref(j);
    }
    sbuf_reset(&b);
    assert_int_equal(
        frender_indicator_csv(&b, catalogue_find("participants_registered"), &q, &r, 1), 0);
    assert_non_null(strstr(b.p, "participants_registered,2026,national,FEMALE,25_39,4\n"));
    assert_non_null(strstr(b.p, "participants_registered,2026,national,UNKNOWN,UNKNOWN,0\n"));
    assert_non_null(strstr(b.p, "participants_registered,2026,national,TOTAL,TOTAL,0\n"));
    sbuf_free(&b);
}

static void test_render_ratios_divide_at_read_time(void **state)
{
    (void)state;
    findicators_cell cells[] = {{"enterprises_active", "", "", 3, 4, 4, K924, 0, 0, 0, 0, NULL}};
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
                             "participants_registered,2026-07,province:1,UNKNOWN,0,0,0,0\n"
                             "participants_registered,2026-07,province:1,TOTAL,8,8,0,8\n");
    sbuf_reset(&b);
    assert_int_equal(
        frender_indicator_csv(&b, catalogue_find("participants_registered"), &q, &r, 1), 0);
    assert_string_equal(b.p, "indicator,period,area,sex,value\n"
                             "participants_registered,2026-07,province:1,FEMALE,3\n"
                             "participants_registered,2026-07,province:1,MALE,0\n"
                             "participants_registered,2026-07,province:1,OTHER,10\n"
                             "participants_registered,2026-07,province:1,UNKNOWN,0\n"
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
        {"participants_registered", "", "", 8, 0, 8, K924, 0, 0, 0, 0, NULL},
        {"participants_registered", "sex", "MALE", 2, 0, 2, 0x00000000u, 0, 0, 0, 0, NULL},
        {"seed_funding_npr", "sex", "FEMALE", 100000, 0, 4, KLAST, 0, 0, 0, 0, NULL},
    };
    params_query q = query("participants_registered", "period=2026-07&province=3&idScheme=CODE");
    findicators_result r = result_of(cells, 3);
    sbuf b;
    sbuf_init(&b, 1 << 20);
    assert_int_equal(dhis2_dvs(&b, &q, &r, 0), 0);
    json_t *j = parse_json(&b);
    assert_string_equal(json_string_value(json_object_get(j, "orgUnit")), "P3");
    json_t *dv = json_object_get(j, "dataValues");
    assert_int_equal(json_array_size(dv), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(dv, 0), "categoryOptionCombo")),
        "default");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(dv, 1), "categoryOptionCombo")),
        "sex/MALE");
    assert_string_equal(json_string_value(json_object_get(json_array_get(dv, 1), "value")), "2");
    json_decref(j);
    /* For the public the withheld sum is left out, and so is the count shown as 0, as an
     * empty cell is: no zero is sent. */
    sbuf_reset(&b);
    assert_int_equal(dhis2_dvs(&b, &q, &r, 1), 0);
    j = parse_json(&b);
    dv = json_object_get(j, "dataValues");
    assert_int_equal(json_array_size(dv), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dv, 0), "value")), "8");
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
        assert_int_equal(dhis2_dvs(&b, &q, &r, 0), REINT_ETOOBIG);
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
        cmocka_unit_test(test_render_ratios_for_the_public_are_perturbed_and_withheld_under_ten),
        cmocka_unit_test(test_render_lists_the_whole_category_space),
        cmocka_unit_test(test_render_csv_has_rows_then_the_total),
        cmocka_unit_test(test_render_as_of_header_names_each_province_of_the_area),
        cmocka_unit_test(test_render_data_value_sets),
        cmocka_unit_test(test_render_catalogue_lists_every_indicator),
        cmocka_unit_test(test_render_overflow_is_an_error_never_a_short_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
