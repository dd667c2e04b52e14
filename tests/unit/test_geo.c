/* Tests for common/geo against data/nepal_local_levels.csv, read at test time (cwd is
 * tests/unit) so that the compiled-in table is checked against the file, not against itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "geo.h"

#define GEO_CSV "../../data/nepal_local_levels.csv"

/* One row of the CSV (which has no quoted fields); returns the number of fields. */
static int split_row(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    f[n++] = line;
    for (char *p = line; *p != '\0' && n < max; p++) {
        if (*p == ',') {
            *p = '\0';
            f[n++] = p + 1;
        }
    }
    return n;
}

static long number(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    assert_true(end != s && *end == '\0');
    return v;
}

static void test_there_are_753_local_levels_in_code_order(void **state)
{
    (void)state;
    unsigned n = 0;
    const geo_local_level *all = geo_all(&n);
    assert_non_null(all);
    assert_int_equal(n, 753);
    for (unsigned i = 1; i < n; i++)
        assert_true(all[i - 1].code < all[i].code);
}

static void test_seven_provinces_are_named(void **state)
{
    (void)state;
    static const char *const names[] = {"Koshi",   "Madhesh", "Bagmati",      "Gandaki",
                                        "Lumbini", "Karnali", "Sudurpashchim"};
    for (unsigned p = 1; p <= 7; p++)
        assert_string_equal(geo_province_name(p), names[p - 1]);
    assert_null(geo_province_name(0));
    assert_null(geo_province_name(8));
}

static void test_there_are_77_distinct_districts(void **state)
{
    (void)state;
    unsigned n;
    const geo_local_level *all = geo_all(&n);
    int seen[256] = {0};
    int distinct = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!seen[all[i].district]++)
            distinct++;
    }
    assert_int_equal(distinct, 77);
}

static void test_dhankuta_municipality_is_10703_in_koshi(void **state)
{
    (void)state;
    const geo_local_level *l = geo_find(10703);
    assert_non_null(l);
    assert_int_equal(l->code, 10703);
    assert_string_equal(l->name, "Dhankuta Municipality");
    assert_string_equal(l->district_name, "Dhankuta");
    assert_int_equal(l->district, 7);
    assert_int_equal(l->province, 1);
    assert_string_equal(l->province_name, "Koshi");
    assert_string_equal(l->type, "Municipality");
}

static void test_arjundhara_is_10401(void **state)
{
    (void)state;
    const geo_local_level *l = geo_find(10401);
    assert_non_null(l);
    assert_string_equal(l->name, "Arjundhara Municipality");
    assert_string_equal(l->district_name, "Jhapa");
}

static void test_unknown_codes_are_not_found(void **state)
{
    (void)state;
    assert_null(geo_find(10799));
    assert_null(geo_find(99999));
    assert_null(geo_find(0));
    assert_null(geo_find(10100));
    assert_null(geo_find(UINT32_MAX));
}

static void test_every_row_of_the_csv_is_found_as_written(void **state)
{
    (void)state;
    FILE *f = fopen(GEO_CSV, "r");
    assert_non_null(f);
    char line[512];
    char *fl[8];
    assert_non_null(fgets(line, sizeof(line), f)); /* header */
    unsigned rows = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        assert_int_equal(split_row(line, fl, 8), 7);
        const geo_local_level *l = geo_find((uint32_t)number(fl[4]));
        assert_non_null(l);
        assert_int_equal(l->province, number(fl[0]));
        assert_string_equal(l->province_name, fl[1]);
        assert_int_equal(l->district, number(fl[2]));
        assert_string_equal(l->district_name, fl[3]);
        assert_string_equal(l->name, fl[5]);
        assert_string_equal(l->type, fl[6]);
        rows++;
    }
    fclose(f);
    unsigned n;
    geo_all(&n);
    assert_int_equal(rows, n);
}

static void test_each_province_has_as_many_local_levels_as_the_csv(void **state)
{
    (void)state;
    FILE *f = fopen(GEO_CSV, "r");
    assert_non_null(f);
    char line[512];
    char *fl[8];
    long expected[8] = {0};
    assert_non_null(fgets(line, sizeof(line), f)); /* header */
    while (fgets(line, sizeof(line), f) != NULL) {
        assert_int_equal(split_row(line, fl, 8), 7);
        long p = number(fl[0]);
        assert_in_range(p, 1, 7);
        expected[p]++;
    }
    fclose(f);

    unsigned n;
    long counted[8] = {0};
    const geo_local_level *all = geo_all(&n);
    for (unsigned i = 0; i < n; i++) {
        assert_in_range(all[i].province, 1, 7);
        counted[all[i].province]++;
    }
    for (int p = 1; p <= 7; p++)
        assert_int_equal(counted[p], expected[p]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_there_are_753_local_levels_in_code_order),
        cmocka_unit_test(test_seven_provinces_are_named),
        cmocka_unit_test(test_there_are_77_distinct_districts),
        cmocka_unit_test(test_dhankuta_municipality_is_10703_in_koshi),
        cmocka_unit_test(test_arjundhara_is_10401),
        cmocka_unit_test(test_unknown_codes_are_not_found),
        cmocka_unit_test(test_every_row_of_the_csv_is_found_as_written),
        cmocka_unit_test(test_each_province_has_as_many_local_levels_as_the_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
