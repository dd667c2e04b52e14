/* The machine's speed, measured on a fixed piece of work (issue 17): benchlib runs this at the
 * start and at the end of every benchmark, and between the national bench's resyncs, so that a
 * figure that moved can be told apart from a machine that did (this machine has visibly fast
 * and slow modes: raw SQLite at 175,433 rows/s one morning and 237,956 that afternoon).
 *
 * The work is the kind the benchmarks do, on one thread: 100,000 rows with random keys
 * inserted into an in-memory SQLite table with an index (B-tree code, page splits, malloc),
 * then read back in index order. The same rows every time (a fixed xorshift seed), and no
 * file, so that the disk does not enter it. Runs the work 5 times and prints the median in
 * milliseconds, wall clock and CPU time of the process, e.g.
 *
 *   calibrate wall_ms 412.3 cpu_ms 411.9
 *
 * Exit 1 when SQLite fails or the read-back does not find every row. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CAL_ROWS 100000
#define CAL_RUNS 5

static double cal_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cal_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "calibrate: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* One run of the work: 0, or -1 when SQLite failed or a row is missing. */
static int cal_run(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *sum = NULL;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned char blob[64];
    int rc = -1;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        cal_exec(db, "PRAGMA page_size=4096; CREATE TABLE t(k INTEGER PRIMARY KEY, g INTEGER, "
                     "v BLOB); CREATE INDEX t_g ON t(g); BEGIN") != 0 ||
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO t VALUES (?, ?, ?)", -1, &ins, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT count(*), sum(g) FROM t INDEXED BY t_g WHERE g >= 0", -1,
                           &sum, NULL) != SQLITE_OK)
        goto done;
    int64_t want_sum = 0;
    for (int i = 0; i < CAL_ROWS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (size_t j = 0; j < sizeof(blob); j++)
            blob[j] = (unsigned char)(x >> (j % 8 * 8));
        /* Keys unique by construction (i in the low bits), in random order. */
        int64_t key = (int64_t)((x >> 20) << 18 | (uint64_t)i);
        int64_t g = (int64_t)(x % 1000003);
        want_sum += g;
        sqlite3_bind_int64(ins, 1, key);
        sqlite3_bind_int64(ins, 2, g);
        sqlite3_bind_blob(ins, 3, blob, sizeof(blob), SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto done;
        sqlite3_reset(ins);
    }
    if (cal_exec(db, "COMMIT") != 0 || sqlite3_step(sum) != SQLITE_ROW)
        goto done;
    if (sqlite3_column_int64(sum, 0) != CAL_ROWS || sqlite3_column_int64(sum, 1) != want_sum) {
        fprintf(stderr, "calibrate: read back %lld rows, not %d\n",
                (long long)sqlite3_column_int64(sum, 0), CAL_ROWS);
        goto done;
    }
    rc = 0;
done:
    if (rc != 0 && db != NULL)
        fprintf(stderr, "calibrate: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(ins);
    sqlite3_finalize(sum);
    sqlite3_close(db);
    return rc;
}

static int cal_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    double wall[CAL_RUNS], cpu[CAL_RUNS];
    for (int i = 0; i < CAL_RUNS; i++) {
        double w0 = cal_ms(CLOCK_MONOTONIC), c0 = cal_ms(CLOCK_PROCESS_CPUTIME_ID);
        if (cal_run() != 0)
            return 1;
        wall[i] = cal_ms(CLOCK_MONOTONIC) - w0;
        cpu[i] = cal_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    qsort(wall, CAL_RUNS, sizeof(double), cal_cmp);
    qsort(cpu, CAL_RUNS, sizeof(double), cal_cmp);
    printf("calibrate wall_ms %.1f cpu_ms %.1f\n", wall[CAL_RUNS / 2], cpu[CAL_RUNS / 2]);
    return 0;
}
