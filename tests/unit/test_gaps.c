/* Tests for provincial-hub/gaps: the officers' gap report on a real hub store (hubstore_open)
 * with the rollup engine's tables: each municipality's calendar and dead letters, in the JSON
 * and in the CSV; a CSV that cannot be built is an error, never a truncated text; a read
 * error fails the report. Expected values come from the rows each test writes. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bscal.h"
#include "gaps.h"
#include "hubstore.h"
#include "rollup.h"
#include "store.h"
#include "testhook.h"

#define PROVINCE 1
#define AD_MUN   10703 /* its node says AD */
#define UNK_MUN  10704 /* its node did not say: counts as BS */
#define NEW_MUN  10705 /* not enrolled */

/* A reason a person reads, with a comma and quotes for the CSV to escape. */
#define REASON_OLD "record of 40 MiB is larger than the frame limit"
#define REASON_NEW "sex \"F?\" is not one of FEMALE, MALE, OTHER"

typedef struct fx {
    char dir[64], path[128];
    hubstore hs;
    rollup *r;
} fx;

static void exec_ok(fx *f, const char *sql)
{
    assert_int_equal(store_exec(f->hs.db, sql), 0);
}

static int setup(void **state)
{
    char err[256];
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_gaps.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    assert_int_equal(hubstore_open(&f->hs, f->path, err, sizeof(err)), 0);
    assert_int_equal(rollup_open(&f->r, f->hs.db, err, sizeof(err)), 0);
    exec_ok(f, "INSERT INTO nodes(municipality, incarnation, acked_seq, acked_version,"
               " resend_pending, first_seen_ms, last_hello_ms, calendar) VALUES"
               " (10703, x'00', 0, 0, 0, 1, 1, 2), (10704, x'00', 0, 0, 0, 1, 1, 0)");
    /* Two dead letters of 10703: the later one's reason is shown. */
    exec_ok(f, "INSERT INTO dead_letters(municipality, id, seq, kind, field, reason, at_ms)"
               " VALUES (10703, x'01', 7, 1, 'sex', '" REASON_NEW "', 2000),"
               " (10703, x'02', 9, 1, 'body', '" REASON_OLD "', 1000)");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[160];
    rollup_close(f->r);
    hubstore_close(&f->hs);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static json_t *report(fx *f, const char *sort)
{
    char err[256];
    json_t *out = NULL;
    assert_int_equal(gaps_report(f->hs.db, PROVINCE, "FY2082/83", sort,
                                 bscal_days_from_ad(2026, 1, 20), &out, err, sizeof(err)),
                     0);
    assert_non_null(out);
    return out;
}

static const json_t *row_of(const json_t *rep, uint32_t code)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(rep, "rows"), i, r)
    {
        if (json_integer_value(json_object_get(r, "code")) == code)
            return r;
    }
    fail_msg("no row for %u", code);
    return NULL;
}

static void test_gaps_rows_show_calendar_and_dead_letters(void **state)
{
    fx *f = *state;
    json_t *rep = report(f, NULL);
    assert_int_equal(json_array_size(json_object_get(rep, "rows")), 137);
    const json_t *ad = row_of(rep, AD_MUN), *unk = row_of(rep, UNK_MUN),
                 *new = row_of(rep, NEW_MUN);
    assert_string_equal(json_string_value(json_object_get(ad, "calendar")), "AD");
    assert_int_equal(json_integer_value(json_object_get(ad, "dead_letters")), 2);
    assert_string_equal(json_string_value(json_object_get(ad, "dead_letters_last_reason")),
                        REASON_NEW);
    assert_string_equal(json_string_value(json_object_get(unk, "calendar")), "BS");
    assert_int_equal(json_integer_value(json_object_get(unk, "dead_letters")), 0);
    assert_true(json_is_null(json_object_get(unk, "dead_letters_last_reason")));
    assert_true(json_is_null(json_object_get(new, "calendar")));
    assert_false(json_is_true(json_object_get(new, "enrolled")));
    json_decref(rep);
    /* Sortable by dead letters. */
    rep = report(f, "-dead_letters");
    const json_t *first = json_array_get(json_object_get(rep, "rows"), 0);
    assert_int_equal(json_integer_value(json_object_get(first, "code")), AD_MUN);
    json_decref(rep);
}

static void test_gaps_csv_has_calendar_and_dead_letter_columns(void **state)
{
    fx *f = *state;
    json_t *rep = report(f, NULL);
    char *csv = NULL;
    size_t len = 0;
    assert_int_equal(gaps_csv(rep, "rows", &csv, &len), 0);
    assert_non_null(csv);
    assert_int_equal(strlen(csv), len);
    /* The header names the fields in the JSON's order. */
    const char *eol = strstr(csv, "\r\n");
    assert_non_null(eol);
    char header[1024];
    snprintf(header, sizeof(header), "%.*s", (int)(eol - csv), csv);
    assert_non_null(strstr(header, "enrolled,calendar,dead_letters,dead_letters_last_reason,"));
    /* 10703's line: AD, 2, and the reason quoted, its quotes doubled. */
    const char *line = strstr(csv, "\r\n10703,");
    assert_non_null(line);
    assert_non_null(strstr(line, ",true,AD,2,\"sex \"\"F?\"\" is not one of FEMALE, MALE,"
                                 " OTHER\","));
    line = strstr(csv, "\r\n10704,");
    assert_non_null(line);
    assert_non_null(strstr(line, ",true,BS,0,,"));
    line = strstr(csv, "\r\n10705,");
    assert_non_null(line);
    assert_non_null(strstr(line, ",false,,0,,"));
    /* A header and one line per local level of the province. */
    size_t lines = 0;
    for (const char *p = csv; (p = strstr(p, "\r\n")) != NULL; p += 2)
        lines++;
    assert_int_equal(lines, 1 + 137);
    free(csv);
    json_decref(rep);
}

/* Running out of memory while building the CSV (the test fault gaps_csv) is an error with
 * nothing to send, which the hub answers with a 500, not a truncated 200. */
static void test_gaps_csv_out_of_memory_is_an_error(void **state)
{
    fx *f = *state;
    json_t *rep = report(f, NULL);
    char *csv = (char *)"untouched";
    size_t len = 1;
    testhook_enable("test_gaps");
    assert_int_equal(testhook_arm("gaps_csv"), 0);
    assert_int_equal(gaps_csv(rep, "rows", &csv, &len), REINT_ENOMEM);
    assert_null(csv);
    assert_int_equal(len, 0);
    /* The fault struck once: the next one is whole. */
    assert_int_equal(gaps_csv(rep, "rows", &csv, &len), 0);
    assert_true(len > 137 * 10);
    free(csv);
    assert_int_equal(gaps_csv(rep, "cells", &csv, &len), REINT_EINVAL);
    json_decref(rep);
}

/* A read that fails half way fails the report: no rows computed from part of the data. */
static void test_gaps_read_error_fails_the_report(void **state)
{
    fx *f = *state;
    char err[256];
    json_t *out = NULL;
    /* directives becomes a view whose body fails to evaluate (malformed JSON) at each step. */
    exec_ok(f, "ALTER TABLE directives RENAME TO directives_saved;"
               " CREATE VIEW directives(serial, body) AS SELECT 1, json('x')");
    assert_int_equal(gaps_report(f->hs.db, PROVINCE, "FY2082/83", NULL,
                                 bscal_days_from_ad(2026, 1, 20), &out, err, sizeof(err)),
                     REINT_EDB);
    assert_null(out);
    exec_ok(f, "DROP VIEW directives; ALTER TABLE directives_saved RENAME TO directives");
    out = report(f, NULL);
    json_decref(out);
}

/* Stores directive serial with this title, in force on the report's day, with one target of
 * AD_MUN, straight into the hub's table (as a hub before the text check stored it). */
static void store_directive(fx *f, uint64_t serial, const char *title)
{
    Reint__V1__Directive d = REINT__V1__DIRECTIVE__INIT;
    Reint__V1__Target t = REINT__V1__TARGET__INIT, *ts[1] = {&t};
    d.serial = serial;
    d.key_id = "k1";
    d.title = (char *)title;
    d.text = "text";
    d.effective_from_day = bscal_days_from_ad(2025, 7, 17);
    t.scope = REINT__V1__TARGET_SCOPE__TARGET_SCOPE_MUNICIPALITY;
    t.scope_code = AD_MUN;
    t.indicator = "returnees_registered";
    t.grouping = "";
    t.period = "FY2082/83";
    t.value = 10;
    d.n_targets = 1;
    d.targets = ts;
    uint8_t body[512];
    size_t n = reint__v1__directive__get_packed_size(&d);
    assert_true(n <= sizeof(body));
    reint__v1__directive__pack(&d, body);
    sqlite3_stmt *st = store_prepare(f->hs.db, "INSERT INTO directives(serial, key_id, body,"
                                               " signature, received_ms) VALUES (?1, 'k1', ?2,"
                                               " x'00', 1)");
    assert_non_null(st);
    sqlite3_bind_int64(st, 1, (int64_t)serial);
    sqlite3_bind_blob(st, 2, body, (int)n, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* A directive stored before the tiers checked its text where it arrives (289529f): one not
 * UTF-8 failed the whole report (jansson refuses the title), one with an escape sequence went
 * into it. Both are left out; the good one's target is shown. */
static void test_gaps_leave_out_directives_with_text_now_refused(void **state)
{
    fx *f = *state;
    store_directive(f, 1, "Seed grants");
    store_directive(f, 2, "Clear \x1b[2J");
    store_directive(f, 3, "Not \xff UTF-8");
    /* The log, to count its warnings: each report reads the directives once a row. */
    char logpath[160];
    snprintf(logpath, sizeof(logpath), "%s/stderr", f->dir);
    fflush(stderr);
    int saved = dup(2), fd = open(logpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    json_t *rep = report(f, NULL);
    json_decref(report(f, NULL));
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(fd);
    close(saved);
    const json_t *targets = json_object_get(row_of(rep, AD_MUN), "targets");
    assert_int_equal(json_array_size(targets), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(targets, 0), "directive")),
                     1);
    json_decref(rep);
    /* One warning for each of the two, not one a row and a report. */
    char text[8192];
    FILE *lf = fopen(logpath, "r");
    assert_non_null(lf);
    size_t got = fread(text, 1, sizeof(text) - 1, lf);
    fclose(lf);
    text[got] = '\0';
    int warned[4] = {0};
    for (const char *at = text; (at = strstr(at, "directive ")) != NULL; at++)
        if (strncmp(at + 11, " is held with text", 18) == 0 && at[10] >= '1' && at[10] <= '3')
            warned[at[10] - '0']++;
    assert_int_equal(warned[1], 0);
    assert_int_equal(warned[2], 1);
    assert_int_equal(warned[3], 1);
}

/* The reports run on a read-only connection of their own (a worker thread's): the same
 * answers as on the store's connection, rollup_cells included, and no write gets through. */
static void test_gaps_reader_connection_answers_the_same(void **state)
{
    fx *f = *state;
    char err[256];
    sqlite3 *ro = NULL;
    json_t *a = report(f, "-dead_letters"), *b = NULL, *ia = NULL, *ib = NULL;
    assert_int_equal(gaps_reader_open(f->path, &ro, err, sizeof(err)), 0);
    assert_int_equal(gaps_report(ro, PROVINCE, "FY2082/83", "-dead_letters",
                                 bscal_days_from_ad(2026, 1, 20), &b, err, sizeof(err)),
                     0);
    assert_true(json_equal(a, b));
    assert_int_equal(gaps_indicator(f->hs.db, PROVINCE, "reporting_completeness", "2025", NULL,
                                    NULL, 0, 0, &ia, err, sizeof(err)),
                     0);
    assert_int_equal(gaps_indicator(ro, PROVINCE, "reporting_completeness", "2025", NULL, NULL, 0,
                                    0, &ib, err, sizeof(err)),
                     0);
    assert_true(json_equal(ia, ib));
    assert_int_not_equal(sqlite3_exec(ro, "DELETE FROM dead_letters", NULL, NULL, NULL), SQLITE_OK);
    json_decref(a);
    json_decref(b);
    json_decref(ia);
    json_decref(ib);
    store_close(ro);
    json_t *c = report(f, NULL);
    assert_int_equal(json_integer_value(json_object_get(row_of(c, AD_MUN), "dead_letters")), 2);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gaps_rows_show_calendar_and_dead_letters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gaps_csv_has_calendar_and_dead_letter_columns, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gaps_csv_out_of_memory_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaps_reader_connection_answers_the_same, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gaps_read_error_fails_the_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaps_leave_out_directives_with_text_now_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
