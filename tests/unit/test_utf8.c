/* Tests for common/utf8: utf8_chars, which length limits given to people count, and
 * utf8_scrub, which makes text quoting a peer's bytes one line of
 * well-formed UTF-8 before it goes into a protobuf string, a log line or a JSON answer. The
 * expected outputs are written out here byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
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

static void test_c1_controls_and_reordering_marks_become_question_marks(void **state)
{
    (void)state;
    scrubs("a\xc2\x9b"
           "2J\xe2\x80\xaez",
           64, "a?2J?z");
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

static void test_controls_and_reordering_marks_are_found(void **state)
{
    (void)state;
    assert_int_equal(utf8_unsafe_at("plain \xe0\xa4\xb0", 9, ""), -1);
    assert_int_equal(utf8_unsafe_at("a\tb", 3, ""), 1);
    assert_int_equal(utf8_unsafe_at("a\tb\nc", 5, "\n\t"), -1);
    assert_int_equal(utf8_unsafe_at("a\tb\rc", 5, "\n\t"), 3);
    assert_int_equal(utf8_unsafe_at("ab\xc2\x9b"
                                    "2J",
                                    6, "\n"),
                     2); /* U+009B CSI */
    assert_int_equal(utf8_unsafe_at("x\xe2\x80\xae"
                                    "cba",
                                    7, ""),
                     1);                                           /* U+202E */
    assert_int_equal(utf8_unsafe_at("x\xe2\x81\xa6y", 5, ""), 1);  /* U+2066 */
    assert_int_equal(utf8_unsafe_at("x\xe2\x80\xa8y", 5, ""), 1);  /* U+2028 */
    assert_int_equal(utf8_unsafe_at("x\xe2\x80\x8dy", 5, ""), -1); /* ZWJ is kept */
    assert_int_equal(utf8_unsafe_at("x\xff", 2, ""), 1);           /* not UTF-8 */
    assert_int_equal(utf8_unsafe_at("x\x7f", 2, "\x7f"), 1);       /* only C0 allowed */
}

static void test_texts_that_show_nothing_are_blank(void **state)
{
    (void)state;
    assert_true(utf8_blank("", 0));
    assert_true(utf8_blank(" \t\r\n", 4));
    assert_true(utf8_blank("\xc2\xa0\xe3\x80\x80\xe2\x80\x8b\xef\xbb\xbf",
                           11));                    /* NBSP, U+3000, ZWSP, BOM */
    assert_true(utf8_blank("\xe2\x80\xae", 3));     /* U+202E alone */
    assert_true(utf8_blank("\xf3\xa0\x81\x81", 4)); /* a tag character */
    assert_false(utf8_blank(" a ", 3));
    assert_false(utf8_blank("\xe0\xa4\xb0", 3));
    assert_true(utf8_invisible(0x061C) && utf8_invisible(0x1680) && utf8_invisible(0x2800) &&
                utf8_invisible(0xFE0F) && utf8_invisible(0x200D));
    assert_false(utf8_invisible(' ') || utf8_invisible('a') || utf8_invisible(0x0930) ||
                 utf8_invisible(0x0410));
}

/* A log line longer than its buffer (2048 bytes) is cut between two characters: the letter
 * the buffer split is left out whole, where it was shown as '?' (an attack on the demo saw
 * log lines cut in the middle of Devanagari characters). */
static void test_a_long_log_line_is_cut_between_characters(void **state)
{
    (void)state;
    char *text = malloc(3 * 1000 + 1), path[] = "/tmp/test_utf8_log.XXXXXX", got[4096];
    assert_non_null(text);
    for (int i = 0; i < 1000; i++)
        memcpy(text + 3 * i, "\xE0\xA4\xB0", 3); /* र */
    text[3000] = '\0';
    int fd = mkstemp(path), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    for (int shift = 0; shift < 3; shift++) {
        fflush(stderr);
        assert_int_equal(ftruncate(fd, 0), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        dup2(fd, 2);
        log_msg(LOG_WARN, "%.*s%s", shift, "ab", text); /* the cut falls at each byte of a letter */
        fflush(stderr);
        dup2(saved, 2);
        ssize_t n = pread(fd, got, sizeof(got) - 1, 0);
        assert_true(n > 2000);
        got[n] = '\0';
        assert_int_equal(got[n - 1], '\n');
        assert_null(strchr(got, '?'));
        assert_true(utf8_valid(got, (size_t)n));
        assert_true(n >= 2040);
    }
    close(saved);
    close(fd);
    unlink(path);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_text_is_kept),
        cmocka_unit_test(test_bytes_that_start_no_sequence_become_question_marks),
        cmocka_unit_test(test_control_characters_become_question_marks),
        cmocka_unit_test(test_c1_controls_and_reordering_marks_become_question_marks),
        cmocka_unit_test(test_a_sequence_that_does_not_fit_is_left_out),
        cmocka_unit_test(test_characters_are_counted_not_bytes),
        cmocka_unit_test(test_controls_and_reordering_marks_are_found),
        cmocka_unit_test(test_texts_that_show_nothing_are_blank),
        cmocka_unit_test(test_a_long_log_line_is_cut_between_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
