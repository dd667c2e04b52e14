/* Tests for municipal-node/personkey: the keys by which the node's search and its check for
 * persons registered twice compare names, phones and citizenship numbers. The expected keys
 * are written out here, Devanagari by its code points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "personkey.h"

static void keys(int which, const char *in, const char *want)
{
    char out[128];
    size_t n = personkey(which, in, strlen(in), out, sizeof(out));
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_a_name_without_dots_case_joiners_or_extra_blanks(void **state)
{
    (void)state;
    keys(PERSONKEY_NAME, "  Ram  Bahadur\tK.C. ", "ram bahadur kc");
    /* श्‍याम with a zero-width joiner (U+200D), and with a non-joiner (U+200C). */
    keys(PERSONKEY_NAME, "\xE0\xA4\xB6\xE0\xA5\x8D\xE2\x80\x8D\xE0\xA4\xAF\xE0\xA4\xBE\xE0\xA4\xAE",
         "\xE0\xA4\xB6\xE0\xA5\x8D\xE0\xA4\xAF\xE0\xA4\xBE\xE0\xA4\xAE");
    keys(PERSONKEY_NAME, "\xE0\xA4\xB6\xE0\xA5\x8D\xE2\x80\x8C\xE0\xA4\xAF",
         "\xE0\xA4\xB6\xE0\xA5\x8D\xE0\xA4\xAF");
    keys(PERSONKEY_NAME, "", "");
    keys(PERSONKEY_NAME, " . ", "");
}

static void test_a_letter_with_a_nukta_is_the_letter_and_the_nukta(void **state)
{
    (void)state;
    /* ड़ (U+095C) is ड U+0921 and the nukta U+093C; फ़ (U+095E) is फ U+092B and the nukta;
     * ऩ (U+0929) is न U+0928 and the nukta. */
    keys(PERSONKEY_NAME, "\xE0\xA5\x9C", "\xE0\xA4\xA1\xE0\xA4\xBC");
    keys(PERSONKEY_NAME, "\xE0\xA4\xA1\xE0\xA4\xBC", "\xE0\xA4\xA1\xE0\xA4\xBC");
    keys(PERSONKEY_NAME, "\xE0\xA5\x9E", "\xE0\xA4\xAB\xE0\xA4\xBC");
    keys(PERSONKEY_NAME, "\xE0\xA4\xA9", "\xE0\xA4\xA8\xE0\xA4\xBC");
    /* क U+0915 alone stays. */
    keys(PERSONKEY_NAME, "\xE0\xA4\x95", "\xE0\xA4\x95");
}

static void test_a_phone_is_its_digits_without_977(void **state)
{
    (void)state;
    keys(PERSONKEY_PHONE, "+977-984.100(0111)", "9841000111");
    keys(PERSONKEY_PHONE, "984 100 0111", "9841000111");
    /* Devanagari digits: ९८४१०००१११. */
    keys(PERSONKEY_PHONE,
         "\xE0\xA5\xAF\xE0\xA5\xAE\xE0\xA5\xAA\xE0\xA5\xA7\xE0\xA5\xA6\xE0\xA5\xA6\xE0\xA5\xA6"
         "\xE0\xA5\xA7\xE0\xA5\xA7\xE0\xA5\xA7",
         "9841000111");
    /* A number of 10 digits or fewer keeps a leading 977. */
    keys(PERSONKEY_PHONE, "9771234567", "9771234567");
    keys(PERSONKEY_PHONE, "none", "");
}

static void test_a_citizenship_number_is_its_letters_and_digits(void **state)
{
    (void)state;
    keys(PERSONKEY_CITIZENSHIP, "27-01-75/4242",
         "270175"
         "4242");
    keys(PERSONKEY_CITIZENSHIP, "ka 27.01", "KA2701");
    /* २७-०१ */
    keys(PERSONKEY_CITIZENSHIP, "\xE0\xA5\xA8\xE0\xA5\xAD-\xE0\xA5\xA6\xE0\xA5\xA7", "2701");
}

static void test_a_small_buffer_cuts_between_characters(void **state)
{
    (void)state;
    char out[5];
    /* ड़ needs 6 bytes: it is left out whole, not cut. */
    size_t n = personkey(PERSONKEY_NAME, "ab\xE0\xA5\x9C", 5, out, sizeof(out));
    assert_string_equal(out, "ab");
    assert_int_equal(n, 2);
    n = personkey(PERSONKEY_PHONE, "123456789", 9, out, sizeof(out));
    assert_string_equal(out, "1234");
    assert_int_equal(n, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_name_without_dots_case_joiners_or_extra_blanks),
        cmocka_unit_test(test_a_letter_with_a_nukta_is_the_letter_and_the_nukta),
        cmocka_unit_test(test_a_phone_is_its_digits_without_977),
        cmocka_unit_test(test_a_citizenship_number_is_its_letters_and_digits),
        cmocka_unit_test(test_a_small_buffer_cuts_between_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
