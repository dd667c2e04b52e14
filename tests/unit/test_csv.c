/* Tests for common/csv: one behaviour of the reader (or writer) per test, over in-memory
 * files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csv.h"

/* A reader over a copy of text (len bytes, so NULs and the lack of a final newline are
 * possible); both are released by close_mem. */
typedef struct mem_csv {
    FILE *f;
    char *buf;
    csv_reader *r;
} mem_csv;

static mem_csv open_mem(const char *text, size_t len)
{
    mem_csv m;
    m.buf = malloc(len + 1);
    assert_non_null(m.buf);
    memcpy(m.buf, text, len);
    m.f = fmemopen(m.buf, len, "r");
    assert_non_null(m.f);
    m.r = csv_open(m.f);
    assert_non_null(m.r);
    return m;
}

static mem_csv open_str(const char *text)
{
    return open_mem(text, strlen(text));
}

static void close_mem(mem_csv *m)
{
    csv_close(m->r);
    fclose(m->f);
    free(m->buf);
}

/* Reads one record and checks its line and fields (a NULL-terminated list). */
static void expect_record(csv_reader *r, long line, ...)
{
    char **fields;
    size_t n;
    assert_int_equal(csv_next(r, &fields, &n), 1);
    assert_int_equal(csv_line(r), line);
    va_list ap;
    va_start(ap, line);
    size_t i = 0;
    for (const char *want = va_arg(ap, const char *); want != NULL;
         want = va_arg(ap, const char *), i++) {
        assert_true(i < n);
        assert_string_equal(fields[i], want);
    }
    va_end(ap);
    assert_int_equal(n, i);
}

static void expect_end(csv_reader *r)
{
    char **fields;
    size_t n;
    assert_int_equal(csv_next(r, &fields, &n), 0);
    assert_int_equal(csv_next(r, &fields, &n), 0);
}

/* A BOM at the start is skipped, and so is every one after it: a file saved again by a
 * program that adds one without looking starts with two. */
static void test_utf8_bom_is_skipped(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "\xEF\xBB\xBFid,name\n1,Sita\n",
        "\xEF\xBB\xBF\xEF\xBB\xBF\xEF\xBB\xBFid,name\n1,Sita\n",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        mem_csv m = open_str(texts[i]);
        expect_record(m.r, 1, "id", "name", NULL);
        expect_record(m.r, 2, "1", "Sita", NULL);
        expect_end(m.r);
        close_mem(&m);
    }
}

static void test_bom_only_after_the_start_is_data(void **state)
{
    (void)state;
    mem_csv m = open_str("a\n\xEF\xBB\xBF"
                         "b\n");
    expect_record(m.r, 1, "a", NULL);
    expect_record(m.r, 2,
                  "\xEF\xBB\xBF"
                  "b",
                  NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_crlf_and_lf_both_end_records(void **state)
{
    (void)state;
    mem_csv m = open_str("a,b\r\nc,d\ne,f\r\n");
    expect_record(m.r, 1, "a", "b", NULL);
    expect_record(m.r, 2, "c", "d", NULL);
    expect_record(m.r, 3, "e", "f", NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_quoted_commas_and_newlines_keep_line_numbers(void **state)
{
    (void)state;
    mem_csv m = open_str("id,remarks\n"
                         "1,\"Doha, Qatar\"\n"
                         "2,\"first line\nsecond line\r\nthird\"\n"
                         "3,after\n");
    expect_record(m.r, 1, "id", "remarks", NULL);
    expect_record(m.r, 2, "1", "Doha, Qatar", NULL);
    expect_record(m.r, 3, "2", "first line\nsecond line\r\nthird", NULL);
    expect_record(m.r, 6, "3", "after", NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_doubled_quotes_are_one_quote(void **state)
{
    (void)state;
    mem_csv m = open_str("\"he said \"\"ok\"\"\",\"\"\"\",\"\"\n");
    expect_record(m.r, 1, "he said \"ok\"", "\"", "", NULL);
    expect_end(m.r);
    close_mem(&m);
}

/* Fields are C strings: a NUL byte cuts one where it stands. The reader says which field of
 * a record held the first one, quoted or not, so that the record can be refused. */
static void test_a_nul_byte_is_told_with_its_field(void **state)
{
    (void)state;
    static const char text[] = "a,QA\0Ram,c\n\"x\0y\",z\nok,fine\n";
    mem_csv m = open_mem(text, sizeof(text) - 1);
    expect_record(m.r, 1, "a", "QA", "c", NULL);
    assert_int_equal(csv_nul_field(m.r), 1);
    expect_record(m.r, 2, "x", "z", NULL);
    assert_int_equal(csv_nul_field(m.r), 0);
    expect_record(m.r, 3, "ok", "fine", NULL);
    assert_int_equal(csv_nul_field(m.r), -1);
    expect_end(m.r);
    close_mem(&m);
}

static void test_empty_fields_are_kept(void **state)
{
    (void)state;
    mem_csv m = open_str(",a,,\n,\n");
    expect_record(m.r, 1, "", "a", "", "", NULL);
    expect_record(m.r, 2, "", "", NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_blank_lines_are_skipped(void **state)
{
    (void)state;
    mem_csv m = open_str("\n\r\na\n\n\nb\r\n\r\n");
    expect_record(m.r, 3, "a", NULL);
    expect_record(m.r, 6, "b", NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_last_line_without_newline_is_read(void **state)
{
    (void)state;
    mem_csv m = open_str("a,b\nc,\"d\"");
    expect_record(m.r, 1, "a", "b", NULL);
    expect_record(m.r, 2, "c", "d", NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_too_many_fields_then_the_next_record_reads(void **state)
{
    (void)state;
    char text[1024];
    size_t len = 0;
    for (int i = 0; i < CSV_MAX_FIELDS; i++)
        text[len++] = ','; /* CSV_MAX_FIELDS + 1 fields */
    text[len++] = '\n';
    memcpy(text + len, "ok,1\n", 5);
    len += 5;
    mem_csv m = open_mem(text, len);
    char **fields;
    size_t n;
    assert_int_equal(csv_next(m.r, &fields, &n), REINT_ETOOLONG);
    assert_int_equal(csv_line(m.r), 1);
    expect_record(m.r, 2, "ok", "1", NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_exactly_max_fields_is_accepted(void **state)
{
    (void)state;
    char text[1024];
    size_t len = 0;
    for (int i = 0; i < CSV_MAX_FIELDS - 1; i++)
        text[len++] = ',';
    text[len++] = '\n';
    mem_csv m = open_mem(text, len);
    char **fields;
    size_t n;
    assert_int_equal(csv_next(m.r, &fields, &n), 1);
    assert_int_equal(n, CSV_MAX_FIELDS);
    close_mem(&m);
}

static void test_too_long_record_then_the_next_record_reads(void **state)
{
    (void)state;
    size_t big = CSV_MAX_RECORD + 10;
    char *text = malloc(big + 64);
    assert_non_null(text);
    size_t len = 0;
    memcpy(text, "a,b\n\"", 5);
    len = 5;
    memset(text + len, 'x', big);
    len += big;
    memcpy(text + len, "\nstill quoted\",y\nok,2\n", 22);
    len += 22;
    mem_csv m = open_mem(text, len);
    free(text);
    char **fields;
    size_t n;
    expect_record(m.r, 1, "a", "b", NULL);
    assert_int_equal(csv_next(m.r, &fields, &n), REINT_ETOOLONG);
    assert_int_equal(csv_line(m.r), 2);
    expect_record(m.r, 4, "ok", "2", NULL);
    expect_end(m.r);
    close_mem(&m);
}

static void test_record_of_exactly_max_bytes_is_accepted(void **state)
{
    (void)state;
    char *text = malloc(CSV_MAX_RECORD + 1);
    assert_non_null(text);
    memset(text, 'x', CSV_MAX_RECORD);
    text[CSV_MAX_RECORD - 2] = ',';
    text[CSV_MAX_RECORD] = '\n';
    mem_csv m = open_mem(text, CSV_MAX_RECORD + 1);
    free(text);
    char **fields;
    size_t n;
    assert_int_equal(csv_next(m.r, &fields, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(strlen(fields[0]), CSV_MAX_RECORD - 2);
    assert_string_equal(fields[1], "x");
    expect_end(m.r);
    close_mem(&m);
}

static void test_unterminated_quote_at_end_is_an_error(void **state)
{
    (void)state;
    mem_csv m = open_str("a,b\n1,\"never closed\n2,3\n");
    char **fields;
    size_t n;
    expect_record(m.r, 1, "a", "b", NULL);
    assert_int_equal(csv_next(m.r, &fields, &n), REINT_EQUOTE);
    assert_int_equal(csv_line(m.r), 2);
    expect_end(m.r);
    close_mem(&m);
}

static void test_offset_counts_bytes_consumed(void **state)
{
    (void)state;
    mem_csv m = open_str("\xEF\xBB\xBF"
                         "ab,c\nd\n");
    assert_int_equal(csv_offset(m.r), 0);
    expect_record(m.r, 1, "ab", "c", NULL);
    assert_int_equal(csv_offset(m.r), 8);
    expect_record(m.r, 2, "d", NULL);
    assert_int_equal(csv_offset(m.r), 10);
    close_mem(&m);
}

/* values[0 .. nv) written as one record with csv_write_field, ending in a newline;
 * malloc'd, *len bytes. */
static char *write_record(const char *const *values, size_t nv, size_t *len)
{
    char *buf = NULL;
    FILE *w = open_memstream(&buf, len);
    assert_non_null(w);
    for (size_t i = 0; i < nv; i++) {
        if (i > 0)
            putc(',', w);
        csv_write_field(w, values[i]);
    }
    putc('\n', w);
    fclose(w);
    return buf;
}

/* Reads buf (len bytes, freed here) as one record of values[0 .. nv), each field without the
 * writer's apostrophe when unguard is set, and then the end. */
static void expect_read_back(char *buf, size_t len, const char *const *values, size_t nv,
                             int unguard)
{
    mem_csv m = open_mem(buf, len);
    free(buf);
    char **fields;
    size_t n;
    assert_int_equal(csv_next(m.r, &fields, &n), 1);
    assert_int_equal(n, nv);
    for (size_t i = 0; i < nv; i++)
        assert_string_equal(unguard ? csv_formula_unguard(fields[i]) : fields[i], values[i]);
    expect_end(m.r);
    close_mem(&m);
}

static void test_written_fields_read_back_unchanged(void **state)
{
    (void)state;
    static const char *const values[] = {
        "plain", "Doha, Qatar", "he said \"ok\"", "two\nlines", "cr\r\nlf", "\"", "x,\"y\"", "",
    };
    const size_t nv = sizeof(values) / sizeof(values[0]);
    size_t len = 0;
    char *buf = write_record(values, nv, &len);
    assert_non_null(strstr(buf, "plain,\"Doha, Qatar\",\"he said \"\"ok\"\"\""));

    expect_read_back(buf, len, values, nv, 0);
}

/* A spreadsheet runs a cell that starts with = + - @ (or a tab or CR) as a formula: the writer
 * puts an apostrophe before it, and the reader's caller takes exactly that one off again. */
static void test_formula_like_text_is_written_after_an_apostrophe_and_read_back(void **state)
{
    (void)state;
    static const char *const values[] = {
        "=1+1",
        "+9779812345678",
        "-x",
        "@SUM(A1)",
        "=HYPERLINK(\"http://x\",\"y\")",
        "'=1",
        "''+2",
        "'plain",
        "it's",
        "a=b",
        "",
        "\tx",
        "  -3+3",
        "\xEF\xBC\x9D"
        "1+1", /* U+FF1D, full-width = */
        "\xEF\xBC\xA0"
        "SUM",          /* U+FF20, full-width @ */
        "\xEF\xBC\xA1", /* U+FF21, full-width A: not guarded */
        " plain",
        "\xC2\xA0=1", /* U+00A0, no-break space */
        "\xE3\x80\x80\xEF\xBC\x9D"
        "1", /* U+3000, ideographic space, then full-width = */
        "\xE2\x80\x8B\xEF\xBB\xBF"
        "+1",            /* U+200B zero-width space, U+FEFF BOM */
        "\xC2\xA0plain", /* not guarded */
        "\xE0\xA4\xB0=", /* a letter before =: not guarded */
    };
    static const char *const written =
        "'=1+1,'+9779812345678,'-x,'@SUM(A1),\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\","
        "''=1,'''+2,'plain,it's,a=b,,'\tx,'  -3+3,'\xEF\xBC\x9D"
        "1+1,'\xEF\xBC\xA0"
        "SUM,"
        "\xEF\xBC\xA1, plain,'\xC2\xA0=1,'\xE3\x80\x80\xEF\xBC\x9D"
        "1,"
        "'\xE2\x80\x8B\xEF\xBB\xBF"
        "+1,\xC2\xA0plain,\xE0\xA4\xB0=\n";
    const size_t nv = sizeof(values) / sizeof(values[0]);
    size_t len = 0;
    char *buf = write_record(values, nv, &len);
    assert_string_equal(buf, written);
    expect_read_back(buf, len, values, nv, 1);
    /* Text a writer never guarded keeps its apostrophe. */
    assert_string_equal(csv_formula_unguard("'plain"), "'plain");
    assert_string_equal(csv_formula_unguard("'"), "'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_bom_is_skipped),
        cmocka_unit_test(test_bom_only_after_the_start_is_data),
        cmocka_unit_test(test_crlf_and_lf_both_end_records),
        cmocka_unit_test(test_quoted_commas_and_newlines_keep_line_numbers),
        cmocka_unit_test(test_doubled_quotes_are_one_quote),
        cmocka_unit_test(test_a_nul_byte_is_told_with_its_field),
        cmocka_unit_test(test_empty_fields_are_kept),
        cmocka_unit_test(test_blank_lines_are_skipped),
        cmocka_unit_test(test_last_line_without_newline_is_read),
        cmocka_unit_test(test_too_many_fields_then_the_next_record_reads),
        cmocka_unit_test(test_exactly_max_fields_is_accepted),
        cmocka_unit_test(test_too_long_record_then_the_next_record_reads),
        cmocka_unit_test(test_record_of_exactly_max_bytes_is_accepted),
        cmocka_unit_test(test_unterminated_quote_at_end_is_an_error),
        cmocka_unit_test(test_offset_counts_bytes_consumed),
        cmocka_unit_test(test_written_fields_read_back_unchanged),
        cmocka_unit_test(test_formula_like_text_is_written_after_an_apostrophe_and_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
