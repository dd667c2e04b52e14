/* The DHIS2 module: ids of DHIS2's shape that never change, DHIS2 period strings, and a
 * metadata export that parses and names what dataValueSets uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "dhis2.h"

static int uid_shaped(const char *s)
{
    if (strlen(s) != DHIS2_UID_LEN)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (int i = 1; i < DHIS2_UID_LEN; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* The ids are a function of the code alone: pinned here, a change of derivation (which would
 * orphan every DHIS2 instance's imported data) fails this test. */
static void test_dhis2_uid_is_stable_and_shaped(void **state)
{
    (void)state;
    char a[DHIS2_UID_LEN + 1], b[DHIS2_UID_LEN + 1];
    dhis2_uid("ou", "10703", a);
    dhis2_uid("ou", "10703", b);
    assert_string_equal(a, b);
    assert_true(uid_shaped(a));
    assert_string_equal(a, "ikHB1W3BprF" /* also computed by hand in Python */);
    dhis2_uid("de", "10703", b);
    assert_string_not_equal(a, b); /* the kind is part of the id */
    for (int i = 0; i < 2000; i++) {
        char code[16];
        snprintf(code, sizeof(code), "x%d", i);
        dhis2_uid("coc", code, a);
        assert_true(uid_shaped(a));
    }
}

static void test_dhis2_periods(void **state)
{
    (void)state;
    char p[32];
    static const char *cases[][3] = {
        {"2026", "2026", "2026-01-01/P1Y"},      {"2026-Q3", "2026Q3", "2026-07-01/P3M"},
        {"2026-07", "202607", "2026-07-01/P1M"}, {"BS2083-04", "208304", NULL},
        {"FY2083/84", "2083April", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(dhis2_period(cases[i][0], p, sizeof(p)), 0);
        assert_string_equal(p, cases[i][1]);
        assert_int_equal(dhis2_adx_period(cases[i][0], p, sizeof(p)), 0);
        if (cases[i][2])
            assert_string_equal(p, cases[i][2]);
    }
    /* A BS month starts mid-month in the Gregorian calendar and lasts its own days. */
    assert_int_equal(dhis2_adx_period("BS2083-04", p, sizeof(p)), 0);
    assert_non_null(strstr(p, "-07-"));
    assert_non_null(strstr(p, "/P3"));
    assert_int_equal(dhis2_period("FY2083/84-T1", p, sizeof(p)), REINT_EINVAL);
    assert_int_equal(dhis2_period("2026-13", p, sizeof(p)), REINT_EINVAL);
}

static void test_dhis2_metadata_ids_are_unique_and_org_units_complete(void **state)
{
    (void)state;
    sbuf b;
    sbuf_init(&b, 64 * 1024 * 1024);
    assert_int_equal(dhis2_metadata(&b), 0);
    json_error_t e;
    json_t *j = json_loadb(b.p, b.len, 0, &e);
    assert_non_null(j);
    json_t *ous = json_object_get(j, "organisationUnits");
    assert_int_equal(json_array_size(ous), 1 + 7 + 77 + 753);
    static const char *sections[] = {"dataElements",     "indicators",     "categoryOptions",
                                     "categories",       "categoryCombos", "categoryOptionCombos",
                                     "organisationUnits"};
    json_t *seen = json_object();
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        json_t *arr = json_object_get(j, sections[s]), *o;
        size_t i;
        assert_true(json_array_size(arr) > 0);
        json_array_foreach(arr, i, o)
        {
            const char *id = json_string_value(json_object_get(o, "id"));
            assert_non_null(id);
            assert_true(uid_shaped(id));
            assert_null(json_object_get(seen, id)); /* no two objects share an id */
            json_object_set_new(seen, id, json_true());
            const char *code = json_string_value(json_object_get(o, "code"));
            assert_non_null(code);
            assert_true(strlen(code) <= 50);
        }
    }
    json_decref(seen);
    json_decref(j);
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dhis2_uid_is_stable_and_shaped),
        cmocka_unit_test(test_dhis2_periods),
        cmocka_unit_test(test_dhis2_metadata_ids_are_unique_and_org_units_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
