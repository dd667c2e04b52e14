/* Tests for common/pcache: SQLite's default page cache wrapped so that a commit's truncation
 * above every page is skipped, where pcache1 walks the whole cache after a B-tree balance
 * parked a page at the lock-byte page's number. The wrapper's calls are tested one by one
 * (what a truncation must drop is dropped, parked pages included; what has nothing to drop is
 * skipped, after a swap too), then a real database through the wrapper: random inserts into
 * an index (balances that swap page numbers), a rollback that shrinks the database, and
 * SQLite's integrity check and row counts after each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pcache.h"
#include "store.h"

#define LOCK_PAGE_4K (0x40000000u / 4096 + 1) /* the lock-byte page at 4 KiB pages */

/* The methods SQLite was configured with (the wrapper's), read before it initialised. */
static sqlite3_pcache_methods2 methods;

static sqlite3_pcache_page *fetch(sqlite3_pcache *c, unsigned key)
{
    sqlite3_pcache_page *pg = methods.xFetch(c, key, 2);
    assert_non_null(pg);
    return pg;
}

static int present(sqlite3_pcache *c, unsigned key)
{
    sqlite3_pcache_page *pg = methods.xFetch(c, key, 0);
    if (pg != NULL)
        methods.xUnpin(c, pg, 0);
    return pg != NULL;
}

static void truncate_counted(sqlite3_pcache *c, unsigned limit, int want_skipped)
{
    pcache_counts a, b;
    pcache_get_counts(&a);
    methods.xTruncate(c, limit);
    pcache_get_counts(&b);
    assert_int_equal(b.skipped - a.skipped, want_skipped ? 1 : 0);
    assert_int_equal(b.passed - a.passed, want_skipped ? 0 : 1);
}

static void test_installed_before_sqlite_starts(void **state)
{
    (void)state;
    assert_int_equal(pcache_install(), 1);
    assert_ptr_not_equal(methods.xTruncate, NULL);
}

static void test_truncation_drops_what_it_must_and_skips_the_rest(void **state)
{
    (void)state;
    sqlite3_pcache *c = methods.xCreate(4096, 64, 1);
    assert_non_null(c);
    methods.xCachesize(c, 1000);
    for (unsigned k = 1; k <= 10; k++)
        methods.xUnpin(c, fetch(c, k), 0);
    assert_int_equal(methods.xPagecount(c), 10);

    truncate_counted(c, 11, 1); /* nothing at 11 or above */
    truncate_counted(c, 6, 0);  /* 6 .. 10 go */
    assert_false(present(c, 6));
    assert_false(present(c, 10));
    assert_true(present(c, 5));
    assert_int_equal(methods.xPagecount(c), 5);

    /* A balance's swap of pages 2 and 3 through the lock-byte page, as btree.c does it:
     * afterwards no page is above 5, and a truncation at 6 has nothing to drop (pcache1
     * alone would now take the lock-byte page for its largest key and walk every page). */
    sqlite3_pcache_page *a = fetch(c, 2), *b = fetch(c, 3);
    methods.xRekey(c, a, 2, LOCK_PAGE_4K);
    methods.xRekey(c, b, 3, 2);
    methods.xRekey(c, a, LOCK_PAGE_4K, 3);
    methods.xUnpin(c, a, 0);
    methods.xUnpin(c, b, 0);
    truncate_counted(c, 6, 1);
    assert_true(present(c, 2) && present(c, 3) && present(c, 5));

    /* A page parked at the lock-byte page is dropped by a truncation below it, even above
     * every other page. */
    sqlite3_pcache_page *p = fetch(c, 4);
    methods.xRekey(c, p, 4, LOCK_PAGE_4K);
    methods.xUnpin(c, p, 0);
    truncate_counted(c, 100, 0);
    assert_false(present(c, LOCK_PAGE_4K));
    assert_true(present(c, 5));

    /* A page moved above the bound (autovacuum's relocation) raises it. */
    p = fetch(c, 5);
    methods.xRekey(c, p, 5, 40);
    methods.xUnpin(c, p, 0);
    truncate_counted(c, 41, 1);
    truncate_counted(c, 30, 0);
    assert_false(present(c, 40));

    /* The cache cleared (the pager's truncation to 0 asks for 1 and above). */
    truncate_counted(c, 1, 0);
    assert_int_equal(methods.xPagecount(c), 0);
    truncate_counted(c, 1, 1);
    methods.xDestroy(c);
}

static int64_t count_rows(sqlite3 *db)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT count(*) FROM t");
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st = store_prepare(db, "PRAGMA integrity_check");
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

static void insert_random(sqlite3 *db, int n, uint64_t *rng)
{
    sqlite3_stmt *st = store_prepare(db, "INSERT INTO t(k, v) VALUES (?1, zeroblob(120))");
    assert_non_null(st);
    for (int i = 0; i < n; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        uint8_t key[16];
        memcpy(key, rng, 8);
        memcpy(key + 8, &i, sizeof(i));
        memset(key + 8 + sizeof(i), 0, 8 - sizeof(i));
        sqlite3_bind_blob(st, 1, key, 16, SQLITE_TRANSIENT);
        assert_int_equal(store_step_done(db, st), 0);
    }
    sqlite3_finalize(st);
}

static void test_a_database_through_the_wrapper(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_pcache.XXXXXX", path[64], err[256], cmd[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(store_open_paged(path, 1, 4096,
                                      "CREATE TABLE t(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;",
                                      &db, err, sizeof(err)),
                     0);
    assert_int_equal(store_exec(db, "PRAGMA cache_size=-65536"), 0);
    uint64_t rng = 42;
    pcache_counts a, b;
    pcache_get_counts(&a);
    /* Random keys split and rebalance the index's pages in every transaction; each commit's
     * truncation above the database has nothing to drop, and none reaches pcache1. */
    for (int txn = 0; txn < 30; txn++) {
        assert_int_equal(store_exec(db, "BEGIN"), 0);
        insert_random(db, 400, &rng);
        assert_int_equal(store_exec(db, "COMMIT"), 0);
    }
    pcache_get_counts(&b);
    assert_true(b.skipped - a.skipped >= 30);
    assert_int_equal(b.passed - a.passed, 0);
    assert_int_equal(count_rows(db), 30 * 400);
    integrity_ok(db);
    /* A transaction that grows the database, rolled back: the pages it added are dropped
     * (the truncation goes to pcache1), and the database reads and grows as before. */
    assert_int_equal(store_exec(db, "BEGIN"), 0);
    insert_random(db, 5000, &rng);
    assert_int_equal(store_exec(db, "ROLLBACK"), 0);
    pcache_get_counts(&a);
    assert_true(a.passed - b.passed >= 1);
    assert_int_equal(count_rows(db), 30 * 400);
    integrity_ok(db);
    assert_int_equal(store_exec(db, "BEGIN"), 0);
    insert_random(db, 3000, &rng);
    assert_int_equal(store_exec(db, "COMMIT"), 0);
    assert_int_equal(count_rows(db), 30 * 400 + 3000);
    integrity_ok(db);
    store_close(db);
    /* A fresh connection reads the same. */
    assert_int_equal(store_open(path, 0, NULL, &db, err, sizeof(err)), 0);
    assert_int_equal(count_rows(db), 30 * 400 + 3000);
    integrity_ok(db);
    store_close(db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    /* Installed, and its methods read, before anything initialises SQLite. */
    if (pcache_install() != 1 || sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &methods) != SQLITE_OK ||
        sqlite3_initialize() != SQLITE_OK) {
        fprintf(stderr, "test_pcache: the wrapper could not be installed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_installed_before_sqlite_starts),
        cmocka_unit_test(test_truncation_drops_what_it_must_and_skips_the_rest),
        cmocka_unit_test(test_a_database_through_the_wrapper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
