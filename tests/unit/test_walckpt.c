/* Tests for common/walckpt: the checkpoints of a WAL database run on their own thread, not in
 * the writer's commits. A writer whose commits pass the threshold leaves the log to the
 * thread, which copies it back into the database file; the writer's own automatic checkpoint
 * is off meanwhile and back after walckpt_stop; when a reader keeps the thread's checkpoints
 * from finishing and the log reaches four times the threshold, the writer's commit
 * checkpoints itself; and every row committed is in the database after all of it, from a
 * fresh connection. Also run under ThreadSanitizer (make unit-tsan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hubstore.h"
#include "store.h"
#include "walckpt.h"

#define FRAMES 64 /* pages of log between checkpoints in these tests */

typedef struct fx {
    char dir[64], path[128];
    sqlite3 *db;
    walckpt *c;
    int rows;
} fx;

static int setup(void **state)
{
    char err[256];
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_walckpt.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/w.db", f->dir);
    assert_int_equal(store_open(f->path, 1, "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);",
                                &f->db, err, sizeof(err)),
                     0);
    assert_int_equal(walckpt_start(&f->c, f->db, f->path, FRAMES, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    walckpt_stop(f->c);
    store_close(f->db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* One transaction of n rows of 3,000 bytes: a 4 KiB page each, so about n frames of log. */
static void commit_rows(fx *f, int n)
{
    sqlite3_stmt *st = store_prepare(f->db, "INSERT INTO t(k, v) VALUES(?1, randomblob(3000))");
    assert_non_null(st);
    assert_int_equal(store_exec(f->db, "BEGIN IMMEDIATE"), 0);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int(st, 1, ++f->rows);
        assert_int_equal(store_step_done(f->db, st), 0);
    }
    assert_int_equal(store_exec(f->db, "COMMIT"), 0);
    sqlite3_finalize(st);
}

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = store_prepare(db, sql);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Waits (5 s at most) until the thread has finished at least n checkpoints. */
static void wait_runs(fx *f, uint64_t n, walckpt_stats *s)
{
    for (int i = 0; i < 500; i++) {
        walckpt_get_stats(f->c, s);
        if (s->runs >= n)
            return;
        usleep(10000);
    }
    fail_msg("the checkpoint thread ran %llu checkpoints, not %llu", (unsigned long long)s->runs,
             (unsigned long long)n);
}

/* The rows a fresh connection finds, the database's integrity checked. */
static int64_t rows_on_reopen(fx *f)
{
    char err[256];
    sqlite3 *db = NULL;
    assert_int_equal(store_open(f->path, 0, NULL, &db, err, sizeof(err)), 0);
    int64_t n = pragma_int(db, "SELECT count(*) FROM t");
    sqlite3_stmt *st = store_prepare(db, "PRAGMA integrity_check");
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    store_close(db);
    return n;
}

static void test_walckpt_checkpoints_on_its_thread(void **state)
{
    fx *f = *state;
    walckpt_stats s;
    /* The writer's automatic checkpoint is off (SQLite reports 0 once another hook is set). */
    assert_int_equal(pragma_int(f->db, "PRAGMA wal_autocheckpoint"), 0);
    /* Below the threshold: nothing to do. */
    commit_rows(f, 8);
    usleep(50000);
    walckpt_get_stats(f->c, &s);
    assert_int_equal(s.runs, 0);
    /* Past it: the thread copies the whole log back; the writer did none of it. */
    commit_rows(f, 2 * FRAMES);
    wait_runs(f, 1, &s);
    assert_true(s.last_log >= FRAMES);
    assert_int_equal(s.last_done, s.last_log);
    assert_int_equal(s.inline_runs, 0);
    assert_int_equal(s.failures, 0);
    /* Fully copied back each time, the log starts again at the next commit: it stays at
     * about one commit's frames instead of growing by each. */
    for (int i = 0; i < 20; i++) {
        commit_rows(f, FRAMES);
        wait_runs(f, s.runs + 1, &s);
    }
    assert_int_equal(s.inline_runs, 0);
    assert_true(s.last_log < 2 * FRAMES);
    assert_int_equal(s.last_done, s.last_log);
    /* Stopped: the writer's automatic checkpoint is back at the same threshold. */
    walckpt_stop(f->c);
    f->c = NULL;
    assert_int_equal(pragma_int(f->db, "PRAGMA wal_autocheckpoint"), FRAMES);
    store_close(f->db);
    f->db = NULL;
    assert_int_equal(rows_on_reopen(f), f->rows);
}

static void test_walckpt_writer_bounds_the_log_when_the_thread_cannot(void **state)
{
    fx *f = *state;
    char err[256];
    walckpt_stats s;
    commit_rows(f, 4);
    /* A reader in a transaction pins the log: no checkpoint can copy past its snapshot. */
    sqlite3 *rd = NULL;
    assert_int_equal(store_open(f->path, 0, NULL, &rd, err, sizeof(err)), 0);
    assert_int_equal(store_exec(rd, "BEGIN"), 0);
    assert_int_equal(pragma_int(rd, "SELECT count(*) FROM t"), 4);
    for (int i = 0; i < 12; i++)
        commit_rows(f, FRAMES);
    walckpt_get_stats(f->c, &s);
    assert_true(s.inline_runs >= 1);
    assert_int_equal(store_exec(rd, "COMMIT"), 0);
    store_close(rd);
    /* The reader gone, the writer's next commit (the log still past the bound) copies it all
     * back; the log then starts again, and the thread takes over. */
    uint64_t inline_before = s.inline_runs, before = s.runs;
    commit_rows(f, FRAMES);
    walckpt_get_stats(f->c, &s);
    assert_int_equal(s.inline_runs, inline_before + 1);
    commit_rows(f, FRAMES);
    wait_runs(f, before + 1, &s);
    assert_true(s.last_log < 2 * FRAMES);
    assert_int_equal(s.last_done, s.last_log);
    walckpt_stop(f->c);
    f->c = NULL;
    store_close(f->db);
    f->db = NULL;
    assert_int_equal(rows_on_reopen(f), f->rows);
}

static void test_walckpt_is_what_a_hub_store_runs(void **state)
{
    (void)state;
    char dir[64] = "/tmp/test_walckpt_hub.XXXXXX", path[128], err[256], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/hub.db", dir);
    hubstore hs;
    assert_int_equal(hubstore_open(&hs, path, err, sizeof(err)), 0);
    assert_non_null(hs.ckpt);
    assert_int_equal(pragma_int(hs.db, "PRAGMA wal_autocheckpoint"), 0);
    hubstore_close(&hs);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_walckpt_refuses_what_it_cannot_run(void **state)
{
    fx *f = *state;
    char err[256];
    walckpt *c = (walckpt *)1;
    assert_int_equal(walckpt_start(&c, f->db, f->path, 0, err, sizeof(err)), REINT_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "frames"));
    /* Its own connection cannot open the file: refused, nothing to stop. */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none/w.db", f->dir);
    c = (walckpt *)1;
    assert_int_equal(walckpt_start(&c, f->db, missing, FRAMES, err, sizeof(err)), REINT_EDB);
    assert_null(c);
    assert_non_null(strstr(err, "none"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_walckpt_checkpoints_on_its_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walckpt_writer_bounds_the_log_when_the_thread_cannot,
                                        setup, teardown),
        cmocka_unit_test(test_walckpt_is_what_a_hub_store_runs),
        cmocka_unit_test_setup_teardown(test_walckpt_refuses_what_it_cannot_run, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
