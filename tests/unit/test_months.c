/* Tests for municipal-node/months: months_receive refuses a hub's review change whose clock
 * is more than a day ahead of the node's (it would hold the node's position there, so that
 * every later change of the hub sorted below it) and stores nothing of its message; a change
 * of the present is stored. The clocks are built here from the wall clock (HLC: milliseconds
 * shifted by 16). Each test gets a fresh in-memory store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "error.h"
#include "months.h"

#define MUN 10703

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static sqlite3 *store(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(months_init(db), 0);
    return db;
}

/* One change of month BS 2083-05 (closed), clock c. */
static int receive(sqlite3 *db, uint64_t c, uint64_t *through, char *why, size_t whylen)
{
    Reint__V1__MonthReview m = REINT__V1__MONTH_REVIEW__INIT;
    Reint__V1__MonthReview *ms[1] = {&m};
    Reint__V1__Reviews r = REINT__V1__REVIEWS__INIT;
    m.municipality = MUN;
    m.calendar = REINT__V1__CALENDAR__CALENDAR_BS;
    m.month = 208305;
    m.state = REINT__V1__MONTH_STATE__MONTH_STATE_CLOSED;
    m.version = 1;
    m.clock = c;
    r.n_reviews = 1;
    r.reviews = ms;
    return months_receive(db, MUN, &r, through, why, whylen);
}

static void test_a_change_of_the_present_is_stored(void **state)
{
    (void)state;
    sqlite3 *db = store();
    char why[300] = "";
    uint64_t through = 0, pos = 0, c = now_ms() << 16;
    assert_int_equal(receive(db, c, &through, why, sizeof(why)), 0);
    assert_int_equal(through, c);
    assert_int_equal(months_position(db, &pos), 0);
    assert_int_equal(pos, c);
    sqlite3_close(db);
}

static void test_a_change_from_more_than_a_day_ahead_is_refused(void **state)
{
    (void)state;
    sqlite3 *db = store();
    char why[300] = "";
    uint64_t through = 0, pos = 0;
    /* An hour ahead is a clock slightly wrong: taken. */
    uint64_t near = (now_ms() + 3600 * 1000) << 16;
    assert_int_equal(receive(db, near, &through, why, sizeof(why)), 0);
    uint64_t far = (now_ms() + 2 * 86400 * 1000) << 16;
    assert_int_equal(receive(db, far, &through, why, sizeof(why)), REINT_ERANGE);
    assert_non_null(strstr(why, "ahead of this node's clock"));
    assert_int_equal(months_position(db, &pos), 0);
    assert_int_equal(pos, near);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_change_of_the_present_is_stored),
        cmocka_unit_test(test_a_change_from_more_than_a_day_ahead_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
