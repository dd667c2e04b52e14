/* sqlite_upsert: the raw SQLite baseline beside the hub ingest benchmark (bench/hub_ingest.py).
 *
 * Reads the records of one or more municipal-node stores (outbox bytes, ids, versions, the
 * store's incarnation), then upserts them into a fresh database that has the hub's records
 * table, pragmas (WAL, synchronous=FULL) and upsert statement, in transactions of a fixed
 * number of rows, with the hub's checkpoints: common/walckpt.c's thread at the hub's
 * threshold (HUBSTORE_CKPT_FRAMES), so that neither side copies its write-ahead log back
 * inside its timed commits (until 2026-12-06 the baseline checkpointed inline). Only the
 * upserts and commits are timed; no TLS, framing, decoding or validation, which is exactly
 * what the hub adds on top.
 *
 * The rows are interleaved the way concurrent nodes deliver them: CHUNK rows of the first
 * store, CHUNK of the second, and so on round-robin, each store in outbox sequence order.
 *
 * Output: one line of key=value pairs on stdout, for the driver to parse. */
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "hubstore.h"
#include "pcache.h"
#include "walckpt.h"

/* The baseline keeps its own SQL, since it is the baseline: it runs on SQLite alone (compiled
 * with -lsqlite3 only) to show what the hub adds on top. Its table definition and statement
 * are provincial-hub/hubstore.c's (records keyed by (municipality, id), the one upsert of
 * hubstore_put), copied here word for word; the driver checks that they still match the hub
 * (the schema from the hub's own database, the statement from hubstore.c). */
static const char *bench__schema =
    "CREATE TABLE IF NOT EXISTS records(municipality INTEGER NOT NULL, id BLOB NOT NULL,"
    " kind INTEGER NOT NULL, version INTEGER NOT NULL, deleted INTEGER NOT NULL,"
    " incarnation BLOB NOT NULL, body BLOB NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS records_key ON records(municipality, id);";

static const char *bench__upsert =
    "INSERT INTO records(municipality, id, kind, version, deleted, incarnation, body)"
    " VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(municipality, id) DO UPDATE SET"
    " kind=iif(excluded.version>version, excluded.kind, kind),"
    " deleted=iif(excluded.version>version, excluded.deleted, deleted),"
    " body=iif(excluded.version>version, excluded.body, body),"
    " version=max(version, excluded.version), incarnation=excluded.incarnation";

/* Same as common/store.c, then what hubstore_open() and the hub's start add: the WAL
 * checkpointed every 16,384 pages (main() then moves the checkpoints to walckpt's thread, as
 * hubstore_open does) and the page cache of [hub] cache_mb (default 256 MiB). */
static const char *bench__pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                    "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
                                    "PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=16384;"
                                    "PRAGMA cache_size=-262144;";

#define BENCH_MAX_STORES 256

typedef struct bench_row {
    uint8_t id[16];
    int64_t version;
    int kind, deleted;
    size_t off, len; /* body in the store's arena */
} bench_row;

typedef struct bench_store {
    int64_t municipality;
    uint8_t incarnation[16];
    bench_row *rows;
    size_t n_rows, cap_rows;
    uint8_t *arena;
    size_t arena_len, arena_cap;
} bench_store;

static double bench__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench__cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int bench__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    void *np = realloc(*p, n * elem);
    if (np == NULL)
        return -1;
    *p = np;
    *cap = n;
    return 0;
}

static int bench__parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Loads every outbox entry of the node store at path into st, in sequence order. */
static int bench__load(const char *path, bench_store *st)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite_upsert: %s: %s\n", path, sqlite3_errmsg(db));
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT key, value FROM meta WHERE key IN ('municipality',"
                           " 'incarnation')",
                           -1, &q, NULL) != SQLITE_OK)
        goto db_error;
    int have = 0, step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(q, 0);
        if (strcmp(key, "municipality") == 0) {
            st->municipality = sqlite3_column_int64(q, 1);
            have |= 1;
        } else if (sqlite3_column_bytes(q, 1) == 16) {
            memcpy(st->incarnation, sqlite3_column_blob(q, 1), 16);
            have |= 2;
        }
    }
    if (step != SQLITE_DONE)
        goto db_error;
    sqlite3_finalize(q);
    q = NULL;
    if (have != 3) {
        fprintf(stderr, "sqlite_upsert: %s: meta lacks municipality or incarnation\n", path);
        goto out;
    }
    if (sqlite3_prepare_v2(db, "SELECT id, version, live, record, kind FROM records ORDER BY seq",
                           -1, &q, NULL) != SQLITE_OK)
        goto db_error;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(q, 3);
        if (sqlite3_column_bytes(q, 0) != 16) {
            fprintf(stderr, "sqlite_upsert: %s: an outbox id is not 16 bytes\n", path);
            goto out;
        }
        if (bench__grow((void **)&st->rows, &st->cap_rows, st->n_rows + 1, sizeof(bench_row)) ||
            bench__grow((void **)&st->arena, &st->arena_cap, st->arena_len + len, 1)) {
            fprintf(stderr, "sqlite_upsert: out of memory loading %s\n", path);
            goto out;
        }
        bench_row *r = &st->rows[st->n_rows++];
        memcpy(r->id, sqlite3_column_blob(q, 0), 16);
        r->version = sqlite3_column_int64(q, 1);
        r->deleted = sqlite3_column_int(q, 2) == 0;
        r->kind = sqlite3_column_int(q, 4);
        r->off = st->arena_len;
        r->len = len;
        if (len)
            memcpy(st->arena + st->arena_len, sqlite3_column_blob(q, 3), len);
        st->arena_len += len;
    }
    if (step != SQLITE_DONE)
        goto db_error;
    rc = 0;
    goto out;
db_error:
    fprintf(stderr, "sqlite_upsert: %s: %s\n", path, sqlite3_errmsg(db));
out:
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

static int bench__exec(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "sqlite_upsert: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sqlite_upsert OUT.db TXN_ROWS CHUNK_ROWS NODE.db...\n"
               "       sqlite_upsert --print-sql\n"
               "Upserts the outbox records of the node stores into a fresh OUT.db with the\n"
               "hub's schema, pragmas and statement, TXN_ROWS per transaction, interleaving\n"
               "CHUNK_ROWS of each store round-robin. Prints one key=value line.\n");
}

int main(int argc, char **argv)
{
    static bench_store stores[BENCH_MAX_STORES];
    sqlite3 *db = NULL;
    walckpt *ckpt = NULL;
    char err[256];
    sqlite3_stmt *q_begin = NULL, *q_commit = NULL, *q_upsert = NULL;
    char *msg = NULL;
    long txn = 0, chunk = 0;
    int rc = 1;
    if (argc == 2 && strcmp(argv[1], "--print-sql") == 0) {
        printf("%s\n%s\n", bench__schema, bench__upsert);
        return 0;
    }
    if (argc < 5) {
        usage(stderr);
        return 2;
    }
    if (bench__parse_long(argv[2], 1, 100000000, &txn) ||
        bench__parse_long(argv[3], 1, 100000000, &chunk)) {
        fprintf(stderr, "sqlite_upsert: TXN_ROWS and CHUNK_ROWS must be positive integers\n");
        return 2;
    }
    /* The hub's page cache (common/pcache.h: SQLite's, without the walk at commit that a
     * B-tree balance can leave behind), installed as store_open() does in the hub: the same
     * cache on both sides. */
    pcache_install();
    int n_stores = argc - 4;
    if (n_stores > BENCH_MAX_STORES) {
        fprintf(stderr, "sqlite_upsert: at most %d node stores\n", BENCH_MAX_STORES);
        return 2;
    }
    size_t total = 0, bytes = 0;
    for (int i = 0; i < n_stores; i++) {
        if (bench__load(argv[4 + i], &stores[i]) != 0)
            goto out;
        total += stores[i].n_rows;
        bytes += stores[i].arena_len;
    }
    if (sqlite3_open_v2(argv[1], &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(db, bench__pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, bench__schema, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlite_upsert: %s: %s\n", argv[1], msg ? msg : sqlite3_errmsg(db));
        goto out;
    }
    if (walckpt_start(&ckpt, db, argv[1], HUBSTORE_CKPT_FRAMES, err, sizeof(err)) != 0) {
        fprintf(stderr, "sqlite_upsert: %s\n", err);
        goto out;
    }
    if (sqlite3_prepare_v3(db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &q_begin, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &q_commit, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db, bench__upsert, -1, SQLITE_PREPARE_PERSISTENT, &q_upsert, NULL) !=
            SQLITE_OK) {
        fprintf(stderr, "sqlite_upsert: prepare: %s\n", sqlite3_errmsg(db));
        goto out;
    }
    size_t pos[BENCH_MAX_STORES] = {0};
    size_t done = 0, in_txn = 0, commits = 0, unchanged = 0;
    double cpu0 = bench__cpu(), t0 = bench__now();
    while (done < total) {
        for (int s = 0; s < n_stores; s++) {
            bench_store *st = &stores[s];
            for (long k = 0; k < chunk && pos[s] < st->n_rows; k++) {
                const bench_row *r = &st->rows[pos[s]++];
                if (in_txn == 0 && bench__exec(db, q_begin) != 0)
                    goto out;
                sqlite3_bind_int64(q_upsert, 1, st->municipality);
                sqlite3_bind_blob(q_upsert, 2, r->id, 16, SQLITE_STATIC);
                sqlite3_bind_int(q_upsert, 3, r->kind);
                sqlite3_bind_int64(q_upsert, 4, r->version);
                sqlite3_bind_int(q_upsert, 5, r->deleted);
                sqlite3_bind_blob(q_upsert, 6, st->incarnation, 16, SQLITE_STATIC);
                sqlite3_bind_blob(q_upsert, 7, st->arena + r->off, (int)r->len, SQLITE_STATIC);
                if (bench__exec(db, q_upsert) != 0)
                    goto out;
                unchanged += sqlite3_changes(db) == 0;
                done++;
                if (++in_txn == (size_t)txn) {
                    if (bench__exec(db, q_commit) != 0)
                        goto out;
                    commits++;
                    in_txn = 0;
                }
            }
        }
    }
    if (in_txn) {
        if (bench__exec(db, q_commit) != 0)
            goto out;
        commits++;
    }
    double secs = bench__now() - t0, cpu = bench__cpu() - cpu0;
    walckpt_stats ck;
    walckpt_get_stats(ckpt, &ck);
    printf("rows=%zu bytes=%zu stores=%d txn_rows=%ld chunk_rows=%ld commits=%zu unchanged=%zu "
           "seconds=%.3f cpu_seconds=%.3f rows_per_s=%.0f ckpt_runs=%llu ckpt_inline=%llu\n",
           total, bytes, n_stores, txn, chunk, commits, unchanged, secs, cpu,
           secs > 0 ? (double)total / secs : 0.0, (unsigned long long)ck.runs,
           (unsigned long long)ck.inline_runs);
    rc = 0;
out:
    sqlite3_free(msg);
    sqlite3_finalize(q_begin);
    sqlite3_finalize(q_commit);
    sqlite3_finalize(q_upsert);
    walckpt_stop(ckpt);
    sqlite3_close(db);
    for (int i = 0; i < n_stores; i++) {
        free(stores[i].rows);
        free(stores[i].arena);
    }
    return rc;
}
