/* The federal API's token cache (federal-api/ftokcache.h): a token found valid is served from
 * memory only while the tokens table has not changed since its lookup was sent, a connection
 * of the pool listens and no LISTEN was refused, and for FTOKCACHE_TTL_MS at most; what is
 * served is what the lookup said, for that token only. */
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

static const ftokcache_who MINISTRY = {"health-ministry", AUTH_MINISTRY, 0};
static const ftokcache_who PROVINCE = {"koshi", AUTH_PROVINCE, 1};

static void hash_of(int n, uint8_t h[32])
{
    for (int i = 0; i < 32; i++)
        h[i] = (uint8_t)(n * 37 + i);
}

/* A cache whose pool has one connection listening. */
static ftokcache *listening_cache(void)
{
    ftokcache *c = ftokcache_new();
    assert_non_null(c);
    ftokcache_notify(c, NULL, "+");
    return c;
}

static void kept_until_the_tokens_table_changes(void **state)
{
    (void)state;
    ftokcache *c = listening_cache();
    uint8_t h[32];
    ftokcache_who w;
    hash_of(1, h);
    assert_int_equal(ftokcache_get(c, h, 1000, &w), 0);
    ftokcache_put(c, h, ftokcache_clock(c), 1000, &PROVINCE);
    memset(&w, 0, sizeof(w));
    assert_int_equal(ftokcache_get(c, h, 1001, &w), 1);
    assert_string_equal(w.name, "koshi");
    assert_int_equal(w.role, AUTH_PROVINCE);
    assert_int_equal(w.province, 1);
    /* Coverage notifications and other channels change nothing of tokens. */
    ftokcache_notify(c, FCOVCACHE_CHANNEL, "2025-06,BS2082-03");
    ftokcache_notify(c, FCOVCACHE_CHANNEL, "*");
    ftokcache_notify(c, "another", "x");
    assert_int_equal(ftokcache_get(c, h, 1002, &w), 1);
    /* A token created, revoked or deleted anywhere: every kept token goes. */
    ftokcache_notify(c, FCOVCACHE_CHANNEL, FTOKCACHE_PAYLOAD);
    assert_int_equal(ftokcache_get(c, h, 1003, &w), 0);
    ftokcache_metrics m;
    ftokcache_get_metrics(c, &m);
    assert_int_equal(m.hits, 2);
    assert_int_equal(m.misses, 2);
    ftokcache_free(c);
}

static void a_change_during_the_lookup_is_not_missed(void **state)
{
    (void)state;
    ftokcache *c = listening_cache();
    uint8_t h[32];
    ftokcache_who w;
    hash_of(2, h);
    uint64_t since = ftokcache_clock(c);                       /* the lookup is sent */
    ftokcache_notify(c, FCOVCACHE_CHANNEL, FTOKCACHE_PAYLOAD); /* a revoke commits */
    ftokcache_put(c, h, since, 1000, &MINISTRY);               /* the lookup's answer */
    assert_int_equal(ftokcache_get(c, h, 1001, &w), 0);
    /* Looked up again after it: kept. */
    ftokcache_put(c, h, ftokcache_clock(c), 1002, &MINISTRY);
    assert_int_equal(ftokcache_get(c, h, 1003, &w), 1);
    assert_int_equal(w.role, AUTH_MINISTRY);
    ftokcache_free(c);
}

static void only_while_a_connection_listens(void **state)
{
    (void)state;
    ftokcache *c = ftokcache_new();
    uint8_t h[32];
    ftokcache_who w;
    hash_of(3, h);
    /* No connection listens yet: nothing kept. */
    ftokcache_put(c, h, ftokcache_clock(c), 1000, &MINISTRY);
    assert_int_equal(ftokcache_get(c, h, 1001, &w), 0);
    ftokcache_notify(c, NULL, "+");
    ftokcache_put(c, h, ftokcache_clock(c), 1000, &MINISTRY);
    assert_int_equal(ftokcache_get(c, h, 1001, &w), 1);
    /* A second connection begins listening: what it missed is unknown, so all goes. */
    ftokcache_notify(c, NULL, "+");
    assert_int_equal(ftokcache_get(c, h, 1002, &w), 0);
    ftokcache_put(c, h, ftokcache_clock(c), 1002, &MINISTRY);
    assert_int_equal(ftokcache_get(c, h, 1003, &w), 1);
    /* Both break: nothing served. */
    ftokcache_notify(c, NULL, "-");
    assert_int_equal(ftokcache_get(c, h, 1004, &w), 1);
    ftokcache_notify(c, NULL, "-");
    assert_int_equal(ftokcache_get(c, h, 1005, &w), 0);
    /* A refused LISTEN (a standby): never again. */
    ftokcache_notify(c, NULL, "+");
    ftokcache_notify(c, NULL, "!");
    ftokcache_put(c, h, ftokcache_clock(c), 1006, &MINISTRY);
    assert_int_equal(ftokcache_get(c, h, 1007, &w), 0);
    ftokcache_free(c);
}

static void for_that_token_and_a_minute_at_most(void **state)
{
    (void)state;
    ftokcache *c = listening_cache();
    uint8_t h[32], other[32];
    ftokcache_who w;
    hash_of(4, h);
    ftokcache_put(c, h, ftokcache_clock(c), 5000, &MINISTRY);
    /* Another token in the same slot (its first two bytes equal), not the one kept. */
    memcpy(other, h, 32);
    other[31] ^= 1;
    assert_int_equal(ftokcache_get(c, other, 5001, &w), 0);
    assert_int_equal(ftokcache_get(c, h, 5000 + FTOKCACHE_TTL_MS - 1, &w), 1);
    assert_int_equal(ftokcache_get(c, h, 5000 + FTOKCACHE_TTL_MS, &w), 0);
    /* A clock that went back does not stretch it. */
    assert_int_equal(ftokcache_get(c, h, 4999, &w), 0);
    /* The other one kept replaces it in the slot. */
    ftokcache_put(c, other, ftokcache_clock(c), 6000, &PROVINCE);
    assert_int_equal(ftokcache_get(c, h, 6001, &w), 0);
    assert_int_equal(ftokcache_get(c, other, 6001, &w), 1);
    assert_string_equal(w.name, "koshi");
    ftokcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kept_until_the_tokens_table_changes),
        cmocka_unit_test(a_change_during_the_lookup_is_not_missed),
        cmocka_unit_test(only_while_a_connection_listens),
        cmocka_unit_test(for_that_token_and_a_minute_at_most),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
