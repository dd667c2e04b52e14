/* Decoding the rows of the federal indicator statement (federal-api/findicators.c): cells
 * and each province's "as of", and a row that does not have the statement's shape refused
 * rather than read as zeros. The rows are built with libpq's own result constructors, as
 * PostgreSQL would send them in text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "findicators.h"

/* A result of ncols text columns holding rows[r][c] (NULL for SQL NULL). */
static PGresult *make_result(int ncols, int nrows, const char *const rows[][11])
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(res);
    PGresAttDesc att[11];
    static char *names[11] = {"k",  "indicator", "grouping", "key", "nu", "de",
                              "ck", "co",        "nk",       "t1",  "t2"};
    memset(att, 0, sizeof(att));
    for (int c = 0; c < ncols; c++) {
        att[c].name = names[c];
        att[c].typid = 25; /* text */
        att[c].typlen = -1;
        att[c].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, ncols, att), 1);
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            const char *v = rows[r][c];
            assert_int_equal(PQsetvalue(res, r, c, (char *)v, v ? (int)strlen(v) : -1), 1);
        }
    return res;
}

static void test_indicators_decode_cells_and_as_of(void **state)
{
    (void)state;
    const char *const rows[][11] = {
        {"0", "participants_registered", "", "", "12", "0", "4294967295", "12", "0", "0", "0"},
        {"0", "seed_funding_npr", "sex", "FEMALE", "7", "0", "0", "7", "0", "5", "1"},
        {"0", "enterprises_active", "", "", "-3", "9223372036854775807", "17", "4", "4294967295",
         "0", "0"},
        {"1", "3", "2026-08-01T10:00:00.000Z", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    };
    PGresult *res = make_result(11, 4, rows);
    findicators_result r;
    assert_int_equal(findicators_decode(res, &r), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.cells[0].indicator, "participants_registered");
    assert_string_equal(r.cells[0].grouping, "");
    assert_int_equal(r.cells[0].nu, 12);
    assert_int_equal(r.cells[0].ck, UINT32_MAX);
    assert_string_equal(r.cells[1].key, "FEMALE");
    assert_int_equal(r.cells[1].co, 7);
    assert_int_equal(r.cells[1].t1, 5);
    assert_int_equal(r.cells[1].t2, 1);
    assert_int_equal(r.cells[2].nk, UINT32_MAX);
    assert_int_equal(r.cells[2].nu, -3);
    assert_int_equal(r.cells[2].de, INT64_MAX);
    assert_int_equal(r.cells[2].ck, 17);
    assert_string_equal(r.as_of[3], "2026-08-01T10:00:00.000Z");
    for (int p = 1; p <= 7; p++)
        if (p != 3)
            assert_null(r.as_of[p]);
    findicators_result_free(&r);
    assert_null(r.cells);
    PQclear(res);
}

static void test_indicators_decode_an_empty_answer(void **state)
{
    (void)state;
    PGresult *res = make_result(11, 0, NULL);
    findicators_result r;
    assert_int_equal(findicators_decode(res, &r), 0);
    assert_int_equal(r.n, 0);
    findicators_result_free(&r);
    PQclear(res);
}

/* Each row differs from a good one in one field. */
static void test_indicators_decode_refuses_rows_of_another_shape(void **state)
{
    (void)state;
    const char *const bad[][11] = {
#define P "participants_registered"
        {"0", P, "", "", "12x", "0", "1", "12", "0", "0", "0"},         /* trailing text */
        {"0", P, "", "", "", "0", "1", "12", "0", "0", "0"},            /* empty number */
        {"0", P, "", "", "12", "0", "4294967296", "12", "0", "0", "0"}, /* key > 2^32-1 */
        {"0", P, "", "", "12", "0", "-1", "12", "0", "0", "0"},         /* negative key */
        {"0", P, "", "", "99999999999999999999", "0", "1", "12", "0", "0", "0"},
        {"0", P, "", "", "12", "0", "1", NULL, "0", "0", "0"},          /* NULL contributors */
        {"0", P, "", "", "12", "0", "1", "12", "4294967296", "0", "0"}, /* numerator key */
        {"0", P, "", "", "12", "0", "1", "12", "0", "-1", "0"},         /* negative top */
        {"0", P, "", "", "12", "0", "1", "12", "0", "0", NULL},         /* NULL top */
        {"2", P, "", "", "12", "0", "1", "12", "0", "0", "0"},          /* unknown row kind */
        {"1", "8", "2026-08-01T10:00:00.000Z", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL}, /* province 8 */
        {"1", "", "2026-08-01T10:00:00.000Z", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL}, /* no province */
#undef P
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const rows[][11] = {
            {"0", "participants_registered", "sex", "MALE", "1", "0", "5", "1", "0", "0", "0"},
            {bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5], bad[i][6], bad[i][7],
             bad[i][8], bad[i][9], bad[i][10]},
        };
        PGresult *res = make_result(11, 2, rows);
        findicators_result r;
        int rc = findicators_decode(res, &r);
        if (rc != REINT_EMALFORMED)
            fail_msg("bad row %zu decoded (rc %d)", i, rc);
        assert_null(r.cells);
        PQclear(res);
    }
    const char *const eight[][11] = {{"0", "x", "", "", "1", "0", "1", "1"}};
    PGresult *res = make_result(8, 1, eight); /* the shape before numerator keys and tops */
    findicators_result r;
    assert_int_equal(findicators_decode(res, &r), REINT_EMALFORMED);
    PQclear(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indicators_decode_cells_and_as_of),
        cmocka_unit_test(test_indicators_decode_an_empty_answer),
        cmocka_unit_test(test_indicators_decode_refuses_rows_of_another_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
