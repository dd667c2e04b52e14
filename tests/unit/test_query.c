/* The strict query parser (common/query.c): one spelling per query, malformed ones
 * refused, the normalised spelling the audit records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "query.h"

static void test_query_parses_and_normalises(void **state)
{
    (void)state;
    query_pairs q;
    char err[256], norm[QUERY_NORM_MAX];
    assert_int_equal(
        query_parse("period=FY2083%2F84&%62y=sex%2Cage_band&by2=", &q, err, sizeof(err)), 0);
    assert_int_equal(q.n, 3);
    assert_string_equal(query_get(&q, "period"), "FY2083/84");
    assert_string_equal(query_get(&q, "by"), "sex,age_band");
    assert_string_equal(query_get(&q, "by2"), "");
    assert_null(query_get(&q, "format"));
    assert_int_equal(query_format(&q, norm, sizeof(norm)), 0);
    assert_string_equal(norm, "period=FY2083/84&by=sex,age_band&by2=");
    assert_int_equal(query_parse("", &q, err, sizeof(err)), 0);
    assert_int_equal(q.n, 0);
    assert_int_equal(query_format(&q, norm, sizeof(norm)), 0);
    assert_string_equal(norm, "");
}

static void test_query_refuses_empty_segments(void **state)
{
    (void)state;
    query_pairs q;
    char err[256];
    const char *bad[] = {"&period=2026",
                         "period=2026&",
                         "period=2026&&by=sex",
                         "&",
                         "&&&&",
                         "period=2026&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&"
                         "&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&municipality=10101"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(query_parse(bad[i], &q, err, sizeof(err)), REINT_EINVAL);
        assert_non_null(strstr(err, "empty parameter"));
    }
}

static void test_query_refuses_malformed_pairs(void **state)
{
    (void)state;
    query_pairs q;
    char err[256];
    const char *bad[] = {"period",         "=2026",       "period=2026&period=2025",
                         "period=2026+07", "period=20%2", "period=20%zz",
                         "by=sex%3Bdrop",  "period=a=b",  "x%27=1",
                         "period=2026%00", "p%20q=1",     "period=%C3%A9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(query_parse(bad[i], &q, err, sizeof(err)), REINT_EINVAL);
        assert_null(strchr(err, '\''));
        assert_null(strchr(err, ';'));
    }
    assert_int_equal(query_parse("period=2026&period=2025", &q, err, sizeof(err)), REINT_EINVAL);
    assert_non_null(strstr(err, "more than once"));
    assert_int_equal(query_parse("period", &q, err, sizeof(err)), REINT_EINVAL);
    assert_non_null(strstr(err, "period=VALUE"));
}

static void test_query_bounds(void **state)
{
    (void)state;
    query_pairs q;
    char err[256], raw[QUERY_MAX + 2], norm[QUERY_NORM_MAX];
    /* A value of 64 bytes is taken, 65 refused. */
    memset(raw, 0, sizeof(raw));
    memcpy(raw, "v=", 2);
    memset(raw + 2, 'a', QUERY_MAX_VALUE);
    assert_int_equal(query_parse(raw, &q, err, sizeof(err)), 0);
    raw[2 + QUERY_MAX_VALUE] = 'a';
    assert_int_equal(query_parse(raw, &q, err, sizeof(err)), REINT_EINVAL);
    assert_non_null(strstr(err, "longer than 64"));
    /* QUERY_MAX bytes are read; one more is refused before anything else. */
    /* 16 pairs "nXX=" + value joined by '&': 16 * 4 + 15 bytes, the values the rest. */
    memset(raw, 0, sizeof(raw));
    size_t o = 0, values = QUERY_MAX - (16 * 4 + 15);
    for (int i = 0; i < QUERY_MAX_PARAMS; i++) {
        size_t len = values / 16 + ((size_t)i < values % 16);
        o += (size_t)snprintf(raw + o, sizeof(raw) - o, "%sn%02d=", i ? "&" : "", i);
        memset(raw + o, 'b', len);
        o += len;
    }
    assert_int_equal(strlen(raw), QUERY_MAX);
    assert_int_equal(query_parse(raw, &q, err, sizeof(err)), 0);
    assert_int_equal(q.n, QUERY_MAX_PARAMS);
    assert_int_equal(query_format(&q, norm, sizeof(norm)), 0);
    assert_int_equal(strlen(norm), QUERY_MAX); /* nothing to decode: the same text */
    memset(raw, 'c', QUERY_MAX + 1);
    raw[QUERY_MAX + 1] = '\0';
    raw[0] = 'x';
    raw[1] = '=';
    assert_int_equal(query_parse(raw, &q, err, sizeof(err)), REINT_EINVAL);
    assert_non_null(strstr(err, "longer than 1024 bytes"));
    /* More pairs than QUERY_MAX_PARAMS are refused. */
    o = 0;
    for (int i = 0; i <= QUERY_MAX_PARAMS; i++)
        o += (size_t)snprintf(raw + o, sizeof(raw) - o, "%sn%d=1", i ? "&" : "", i);
    assert_int_equal(query_parse(raw, &q, err, sizeof(err)), REINT_EINVAL);
    assert_non_null(strstr(err, "more than 16"));
    /* The normalised spelling refuses a short buffer rather than cutting it. */
    assert_int_equal(query_parse("period=2026-07&by=sex", &q, err, sizeof(err)), 0);
    assert_int_equal(query_format(&q, norm, 10), REINT_ETOOBIG);
    assert_string_equal(norm, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_parses_and_normalises),
        cmocka_unit_test(test_query_refuses_empty_segments),
        cmocka_unit_test(test_query_refuses_malformed_pairs),
        cmocka_unit_test(test_query_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
