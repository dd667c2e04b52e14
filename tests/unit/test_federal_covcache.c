/* The federal answers' coverage cache (federal-api/fcovcache.h): what outdates a kept
 * coverage, and the notifications' payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fcovcache.h"
#include "ftokcache.h"

static const int64_t V1[FCOVCACHE_VALUES] = {1506, 1200, 900, 700, 753, 500};
static const int64_t V2[FCOVCACHE_VALUES] = {1506, 1201, 900, 700, 753, 500};

/* A cache whose pool has one connection listening. */
static fcovcache *listening_cache(void)
{
    fcovcache *c = fcovcache_new();
    assert_non_null(c);
    fcovcache_notify(c, NULL, "+");
    return c;
}

/* The national answer for 2025-06: BS 2082-02 and 2082-03, AD 2025-06. */
#define KEY "0|0|0|2025-06"
static int june_slots(int s[3])
{
    s[0] = fcovcache_slot(1, 208202);
    s[1] = fcovcache_slot(1, 208203);
    s[2] = fcovcache_slot(0, 202506);
    return 3;
}

static void kept_until_a_notification_names_one_of_its_months(void **state)
{
    (void)state;
    fcovcache *c = listening_cache();
    int s[3], n = june_slots(s);
    int64_t out[FCOVCACHE_VALUES];
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V1);
    assert_int_equal(fcovcache_get(c, KEY, out), 1);
    assert_memory_equal(out, V1, sizeof(V1));
    /* Other months, another channel, a change of the tokens table (ftokcache.h): still
     * kept. */
    fcovcache_notify(c, FCOVCACHE_CHANNEL, "2025-07,BS2082-04");
    fcovcache_notify(c, "another", "2025-06");
    fcovcache_notify(c, FCOVCACHE_CHANNEL, FTOKCACHE_PAYLOAD);
    assert_int_equal(fcovcache_get(c, KEY, out), 1);
    /* One of its BS months: outdated. */
    fcovcache_notify(c, FCOVCACHE_CHANNEL, "2024-01,BS2082-03");
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    /* Read again after the notification: kept again, with the new values. */
    fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V2);
    assert_int_equal(fcovcache_get(c, KEY, out), 1);
    assert_memory_equal(out, V2, sizeof(V2));
    /* Its Gregorian month alone. */
    fcovcache_notify(c, FCOVCACHE_CHANNEL, "2025-06");
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_metrics m;
    fcovcache_get_metrics(c, &m);
    assert_int_equal(m.hits, 3);
    assert_int_equal(m.misses, 3);
    assert_int_equal(m.notifications, 3);
    fcovcache_free(c);
}

/* A notification that arrives while the statement runs outdates what it read: it may have
 * read the rows before the commit. */
static void a_notification_during_the_read_is_not_missed(void **state)
{
    (void)state;
    fcovcache *c = listening_cache();
    int s[3], n = june_slots(s);
    int64_t out[FCOVCACHE_VALUES];
    uint64_t since = fcovcache_clock(c);
    fcovcache_notify(c, FCOVCACHE_CHANNEL, "BS2082-02");
    fcovcache_put(c, KEY, since, s, (size_t)n, V1);
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_free(c);
}

/* "*", a payload not understood, and a connection that began listening outdate everything. */
static void everything_outdated(void **state)
{
    (void)state;
    const char *payloads[] = {"*", "2025-6", "", "FY2082/83", "2025-06,,2025-07", NULL};
    for (int i = 0; i <= 5; i++) {
        fcovcache *c = listening_cache();
        int s[3], n = june_slots(s);
        int64_t out[FCOVCACHE_VALUES];
        fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V1);
        fcovcache_put(c, "7|0|0|2026", fcovcache_clock(c), s, 1, V2);
        assert_int_equal(fcovcache_get(c, KEY, out), 1);
        if (i == 5)
            fcovcache_notify(c, NULL, "+"); /* another connection began listening */
        else
            fcovcache_notify(c, FCOVCACHE_CHANNEL, payloads[i]);
        assert_int_equal(fcovcache_get(c, KEY, out), 0);
        assert_int_equal(fcovcache_get(c, "7|0|0|2026", out), 0);
        fcovcache_free(c);
    }
}

/* Nothing is kept or served while no connection listens (all down, or a hot standby that
 * refuses LISTEN): commits would go unheard. */
static void only_while_a_connection_listens(void **state)
{
    (void)state;
    fcovcache *c = fcovcache_new();
    int s[3], n = june_slots(s);
    int64_t out[FCOVCACHE_VALUES];
    fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V1);
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_notify(c, NULL, "+");
    fcovcache_notify(c, NULL, "+");
    fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V1);
    assert_int_equal(fcovcache_get(c, KEY, out), 1);
    fcovcache_notify(c, NULL, "-"); /* one of two broke: the other still hears */
    assert_int_equal(fcovcache_get(c, KEY, out), 1);
    fcovcache_notify(c, NULL, "-"); /* none listens */
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_notify(c, NULL, "+"); /* back: what was kept before is outdated */
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V1);
    assert_int_equal(fcovcache_get(c, KEY, out), 1);
    /* Another connection's LISTEN refused (it reached a standby): never again. */
    fcovcache_notify(c, NULL, "!");
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_notify(c, NULL, "+");
    fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V1);
    assert_int_equal(fcovcache_get(c, KEY, out), 0);
    fcovcache_free(c);
}

/* Keys are told apart, a month outside the slots or too many months are not kept. */
static void keys_and_limits(void **state)
{
    (void)state;
    fcovcache *c = listening_cache();
    int s[3], n = june_slots(s);
    int64_t out[FCOVCACHE_VALUES];
    fcovcache_put(c, KEY, fcovcache_clock(c), s, (size_t)n, V1);
    assert_int_equal(fcovcache_get(c, "1|0|0|2025-06", out), 0);
    int bad[2] = {s[0], fcovcache_slot(0, 210001)};
    assert_int_equal(bad[1], -1);
    fcovcache_put(c, "1|0|0|2025-06", fcovcache_clock(c), bad, 2, V1);
    assert_int_equal(fcovcache_get(c, "1|0|0|2025-06", out), 0);
    int many[FCOVCACHE_MONTHS + 1];
    for (int i = 0; i <= FCOVCACHE_MONTHS; i++)
        many[i] = i;
    fcovcache_put(c, "2|0|0|2025", fcovcache_clock(c), many, FCOVCACHE_MONTHS + 1, V1);
    assert_int_equal(fcovcache_get(c, "2|0|0|2025", out), 0);
    fcovcache_put(c, "2|0|0|2025", fcovcache_clock(c), many, FCOVCACHE_MONTHS, V1);
    assert_int_equal(fcovcache_get(c, "2|0|0|2025", out), 1);
    fcovcache_free(c);
}

/* The answers a dashboard asks for together are kept together: the national and province 1
 * answers of 120 months (direct-mapped, pairs of keys evicted each other). */
static void many_answers_kept_together(void **state)
{
    (void)state;
    fcovcache *c = listening_cache();
    int64_t out[FCOVCACHE_VALUES];
    char key[FCOVCACHE_KEY];
    for (int pass = 0; pass < 2; pass++) {
        for (int area = 0; area <= 1; area++) {
            for (int i = 0; i < 120; i++) {
                int ym = (2016 + i / 12) * 100 + i % 12 + 1;
                int slot = fcovcache_slot(0, ym);
                snprintf(key, sizeof(key), "%d|0|0|%04d-%02d", area, ym / 100, ym % 100);
                if (pass == 0) {
                    fcovcache_put(c, key, fcovcache_clock(c), &slot, 1, V1);
                } else {
                    assert_int_equal(fcovcache_get(c, key, out), 1);
                }
            }
        }
    }
    fcovcache_free(c);
}

/* Slots and period texts, both ways, and the payload the writers send. */
static void slots_and_payloads(void **state)
{
    (void)state;
    assert_int_equal(fcovcache_slot_of_period("2025-06"), fcovcache_slot(0, 202506));
    assert_int_equal(fcovcache_slot_of_period("BS2082-03"), fcovcache_slot(1, 208203));
    assert_true(fcovcache_slot(1, 208203) != fcovcache_slot(0, 208203));
    assert_int_equal(fcovcache_slot_of_period("2025"), -1);
    assert_int_equal(fcovcache_slot_of_period("2025-Q2"), -1);
    assert_int_equal(fcovcache_slot_of_period("2025-13"), -1);
    char p[12];
    fcovcache_slot_period(fcovcache_slot(1, 208203), p);
    assert_string_equal(p, "BS2082-03");
    fcovcache_slot_period(fcovcache_slot(0, 202506), p);
    assert_string_equal(p, "2025-06");

    uint8_t bits[(FCOVCACHE_SLOTS + 7) / 8];
    memset(bits, 0, sizeof(bits));
    char out[FCOVCACHE_PAYLOAD];
    fcovcache_mark(bits, -1); /* a month no answer kept can hold */
    assert_int_equal(fcovcache_payload(bits, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    int a = fcovcache_slot(0, 202506), b = fcovcache_slot(1, 208203);
    fcovcache_mark(bits, a);
    fcovcache_mark(bits, b);
    fcovcache_payload(bits, out, sizeof(out));
    assert_string_equal(out, "2025-06,BS2082-03");
    /* What does not fit becomes "*". */
    assert_int_equal(fcovcache_payload(bits, out, 12), 1);
    assert_string_equal(out, "*");
    /* Every month of ten years in both calendars fits one notification. */
    memset(bits, 0, sizeof(bits));
    for (int ym = 201601; ym <= 202612; ym += (ym % 100 == 12 ? 89 : 1)) {
        int x = fcovcache_slot(0, ym), y = fcovcache_slot(1, ym + 5700);
        fcovcache_mark(bits, x);
        fcovcache_mark(bits, y);
    }
    fcovcache_payload(bits, out, sizeof(out));
    assert_true(strcmp(out, "*") != 0);
    assert_non_null(strstr(out, "2016-01,"));
    assert_non_null(strstr(out, ",BS2083-12"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kept_until_a_notification_names_one_of_its_months),
        cmocka_unit_test(a_notification_during_the_read_is_not_missed),
        cmocka_unit_test(everything_outdated),
        cmocka_unit_test(only_while_a_connection_listens),
        cmocka_unit_test(keys_and_limits),
        cmocka_unit_test(many_answers_kept_together),
        cmocka_unit_test(slots_and_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
