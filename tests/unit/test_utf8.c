/* Tests for common/utf8: utf8_chars, which length limits given to people count, and
 * utf8_scrub, which makes text quoting a peer's bytes one line of
 * well-formed UTF-8 before it goes into a protobuf string, a log line or a JSON answer. The
 * expected outputs are written out here byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void scrubs(const char *in, size_t room, const char *want)
{
    char out[64];
    assert_true(room <= sizeof(out));
    memset(out, 'X', sizeof(out));
    size_t n = utf8_scrub(out, room, in);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_true(utf8_valid(out, n));
}

static void test_well_formed_text_is_kept(void **state)
{
    (void)state;
    scrubs("destination_country \"QA\"", 64, "destination_country \"QA\"");
    /* Devanagari (three bytes a letter) and a four-byte sequence. */
    scrubs("\xe0\xa4\xa8\xe0\xa5\x87\xe0\xa4\xaa\xe0\xa4\xbe\xe0\xa4\xb2 \xf0\x9f\x98\x80", 64,
           "\xe0\xa4\xa8\xe0\xa5\x87\xe0\xa4\xaa\xe0\xa4\xbe\xe0\xa4\xb2 \xf0\x9f\x98\x80");
    scrubs("", 64, "");
}

static void test_bytes_that_start_no_sequence_become_question_marks(void **state)
{
    (void)state;
    scrubs("country \"\xff\xfe\"", 64, "country \"??\"");
    /* An overlong '/', a surrogate, a lone continuation byte, a sequence cut short. */
    scrubs("a\xc0\xaf"
           "b",
           64, "a??b");
    scrubs("\xed\xa0\x80", 64, "???");
    scrubs("\x80z", 64, "?z");
    scrubs("\xe0\xa4"
           "z",
           64, "??z");
}

static void test_control_characters_become_question_marks(void **state)
{
    (void)state;
    scrubs("line\nbreak\r\tand \x1b[31mred\x7f", 64, "line?break??and ?[31mred?");
}

static void test_a_sequence_that_does_not_fit_is_left_out(void **state)
{
    (void)state;
    /* Room for 4 bytes and the terminator: the second three-byte letter does not fit whole. */
    scrubs("ab\xe0\xa4\xa8\xe0\xa4\xa8", 6, "ab\xe0\xa4\xa8");
    scrubs("abcdef", 4, "abc");
    scrubs("abc", 1, "");
}

static void test_characters_are_counted_not_bytes(void **state)
{
    (void)state;
    /* "र" is three bytes, "é" two, U+1F600 four: each is one character. */
    assert_int_equal(utf8_chars("", 0), 0);
    assert_int_equal(utf8_chars("abc", 3), 3);
    assert_int_equal(utf8_chars("\xe0\xa4\xb0\xe0\xa4\xb0", 6), 2);
    assert_int_equal(utf8_chars("a\xc3\xa9\xf0\x9f\x98\x80z", 8), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_text_is_kept),
        cmocka_unit_test(test_bytes_that_start_no_sequence_become_question_marks),
        cmocka_unit_test(test_control_characters_become_question_marks),
        cmocka_unit_test(test_a_sequence_that_does_not_fit_is_left_out),
        cmocka_unit_test(test_characters_are_counted_not_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
