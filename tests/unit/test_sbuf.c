/* The growable buffer (common/sbuf.c): decimal appends equal to printf's, a buffer that fails
 * at its maximum stays failed, CSV text that a spreadsheet would run is guarded. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sbuf.h"

static void test_sbuf_decimal_appends_equal_printf(void **state)
{
    (void)state;
    static const int64_t cases[] = {0,   1,          -1,         9,         10,        -10,  99,
                                    100, 4294967295, 4294967296, INT64_MAX, INT64_MIN, -4096};
    sbuf a, b;
    sbuf_init(&a, 1 << 16);
    sbuf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(sbuf_i64(&a, cases[i]), 0);
        sbuf_add(&a, ",", 1);
        sbuf_printf(&b, "%" PRId64 ",", cases[i]);
    }
    assert_int_equal(sbuf_u64(&a, UINT64_MAX), 0);
    sbuf_printf(&b, "%" PRIu64, UINT64_MAX);
    /* A pseudo-random spread of magnitudes. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 1000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t v = x >> (i % 64);
        sbuf_add(&a, ",", 1);
        sbuf_u64(&a, v);
        sbuf_printf(&b, ",%" PRIu64, v);
    }
    assert_false(a.failed);
    assert_int_equal(a.len, b.len);
    assert_string_equal(a.p, b.p);
    sbuf_free(&a);
    sbuf_free(&b);
}

static void test_sbuf_decimal_append_past_max_fails_the_buffer(void **state)
{
    (void)state;
    sbuf a;
    sbuf_init(&a, 8);
    assert_int_equal(sbuf_u64(&a, 1234567), 0);
    assert_int_equal(sbuf_u64(&a, 89), -1);
    assert_true(a.failed);
    assert_int_equal(sbuf_u64(&a, 1), -1); /* stays failed */
    sbuf_free(&a);
}

/* Text a spreadsheet would run (the hub's gap report quotes a node's reason) gets an
 * apostrophe before it, after which it is quoted as any field. */
static void test_sbuf_csv_text_like_a_formula_gets_an_apostrophe(void **state)
{
    (void)state;
    sbuf a;
    sbuf_init(&a, 1 << 10);
    static const char *const in[] = {
        "=HYPERLINK(\"http://x\")", "-1", "+977", "@a", "a=b", "Doha, Qatar", "'x"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        sbuf_csv_str(&a, in[i]);
        sbuf_add(&a, ";", 1);
    }
    assert_false(a.failed);
    assert_string_equal(a.p, "\"'=HYPERLINK(\"\"http://x\"\")\";'-1;'+977;'@a;a=b;"
                             "\"Doha, Qatar\";'x;");
    sbuf_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sbuf_decimal_appends_equal_printf),
        cmocka_unit_test(test_sbuf_decimal_append_past_max_fails_the_buffer),
        cmocka_unit_test(test_sbuf_csv_text_like_a_formula_gets_an_apostrophe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
