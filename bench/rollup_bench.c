/* rollup_bench: the hub's rollup engine (provincial-hub/rollup*.c, issue 4) on a synthetic
 * province, beside plain SQL GROUP BY in the same run.
 *
 * 1. Loads N records (default 1,000,000) of M municipalities (default 100) over three BS
 *    fiscal years (2023-07-17 .. 2026-07-16) into a fresh hub.db through the hub's own store
 *    (hubstore_open, hubstore_put): 40% persons, 45% services (of the same municipality's persons),
 * the rest enterprises, 12 availability rows and 36 month closes per municipality; every
 *    municipality enrolled.
 * 2. rollup_full(): decodes every record into the engine's shadow and computes every
 *    snapshot (all six period kinds, every grouping of all 15 indicators). Then the compute
 *    alone: every snapshot marked dirty and rollup_refresh().
 * 3. Baseline: plain SQL GROUP BY over the same decoded rows (the records hold protobuf, which
 *    SQL cannot read), with a day -> periods calendar table: participants_registered,
 *    persons_served (COUNT DISTINCT), services_delivered and seed_funding_npr, every grouping,
 *    six period kinds.
 * 4. Incremental: a batch of 1,000 changes applied in one transaction (rollup_note +
 *    hubstore_put, committed), then rollup_refresh() timed: (a) one municipality's sync
 *    (600 new records of the current month, 400 corrections of its last three months),
 *    (b) 1,000 corrections scattered over every municipality and all three years.
 *
 * Build and run (after `make build/lib/libhub.a`):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Ibuild/gen -Icommon -Iprovincial-hub -o build/rollup_bench \
 *      bench/rollup_bench.c build/lib/libhub.a build/lib/libcommon.a \
 *      $(pkg-config --libs libprotobuf-c sqlite3 openssl libuv) -lm
 *   build/rollup_bench [--records N] [--municipalities M] [--dir DIR] [--repeat R]
 * Prints a Markdown table. Timings are reported, never asserted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bscal.h"
#include "hubstore.h"
#include "period.h"
#include "record.h"
#include "rollup.h"
#include "store.h"

typedef struct bench {
    hubstore hs; /* the hub's own store: its schema and its upsert (hubstore_put) */
    sqlite3 *db; /* hs.db */
    rollup *r;
    uint64_t rng, version;
    int32_t lo, hi;
    uint32_t n_mun;
    uint64_t per_mun, persons, services, enterprises;
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(bench *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng;
}

static int pick(bench *b, int n)
{
    return (int)(rnd(b) % (uint64_t)n);
}

static uint32_t mun_code(uint32_t i)
{
    return 10000 + i;
}

/* Record ids: kind, municipality and index, big-endian, so that each is found again. */
static void make_id(uint8_t id[16], int kind, uint32_t mun, uint64_t index)
{
    memset(id, 0, 16);
    id[0] = 0x01;
    id[1] = (uint8_t)kind;
    id[2] = (uint8_t)(mun >> 8);
    id[3] = (uint8_t)mun;
    for (int i = 0; i < 8; i++)
        id[8 + i] = (uint8_t)(index >> (56 - 8 * i));
}

static int32_t random_day(bench *b, int32_t lo, int32_t hi)
{
    return lo + pick(b, hi - lo + 1);
}

/* Records are made in time order, as a municipality makes them: record index of n falls on
 * the matching day of [lo, hi], give or take a week. */
static int32_t day_of_index(bench *b, uint64_t index, uint64_t n, int32_t lo, int32_t hi)
{
    int32_t d = lo + (int32_t)((double)index / (double)(n ? n : 1) * (hi - lo)) + pick(b, 15) - 7;
    return d < lo ? lo : d > hi ? hi : d;
}

/* A person registered up to three months before the given position (of n). */
static uint64_t recent_person(bench *b, uint64_t index, uint64_t n)
{
    uint64_t pos = (uint64_t)((double)index / (double)(n ? n : 1) * (double)b->persons);
    uint64_t window = b->persons / 12 + 1;
    uint64_t lo = pos > window ? pos - window : 0;
    return lo + rnd(b) % (pos - lo + 1 < b->persons - lo ? pos - lo + 1 : b->persons - lo);
}

/* Builds record (kind, municipality, index) with random content dated in [lo, hi] and
 * stores it; with note, the ingest's way (rollup_note first). */
static void put(bench *b, int kind, uint32_t mun, uint64_t index, int32_t lo, int32_t hi, int note)
{
    static const uint8_t inc[16] = {9};
    uint8_t id[16], ref[16], buf[256];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    Reint__V1__Service s = REINT__V1__SERVICE__INIT;
    Reint__V1__Enterprise e = REINT__V1__ENTERPRISE__INIT;
    Reint__V1__Availability a = REINT__V1__AVAILABILITY__INIT;
    Reint__V1__MonthClose c = REINT__V1__MONTH_CLOSE__INIT;
    static const char *countries[] = {"QA", "MY", "AE", "SA", "KW", ""};
    make_id(id, kind, mun, index);
    rec.id.data = id;
    rec.id.len = 16;
    rec.municipality = mun;
    rec.version = ++b->version;
    switch (kind) {
    case 1:
        rec.body_case = REINT__V1__RECORD__BODY_PERSON;
        rec.person = &p;
        p.category = 1 + pick(b, 5);
        p.sex = 1 + pick(b, 3);
        p.age_band = 1 + pick(b, 5);
        p.caste_group = pick(b, 8);
        p.disability = pick(b, 3);
        bscal_pair_of_day(lo == b->lo ? day_of_index(b, index, b->persons, lo, hi)
                                      : random_day(b, lo, hi),
                          &p.registered_month, &p.registered_bs_month);
        p.years_abroad = -1;
        p.destination_country = (char *)countries[pick(b, 6)];
        p.remigration_intention = pick(b, 4);
        break;
    case 2:
        rec.body_case = REINT__V1__RECORD__BODY_SERVICE;
        rec.service = &s;
        make_id(ref, 1, mun, recent_person(b, index % b->services, b->services));
        s.person_id.data = ref;
        s.person_id.len = 16;
        s.type = 1 + pick(b, 12);
        s.status = 1 + (pick(b, 4) != 0);
        bscal_pair_of_day(lo == b->lo ? day_of_index(b, index, b->services, lo, hi)
                                      : random_day(b, lo, hi),
                          &s.month, &s.bs_month);
        s.provider = 1 + pick(b, 8);
        s.programme = 1 + pick(b, 6);
        s.amount_npr = s.type == 7 || s.type == 8 ? 1000 * (1 + pick(b, 100)) : -1;
        break;
    case 3:
        rec.body_case = REINT__V1__RECORD__BODY_ENTERPRISE;
        rec.enterprise = &e;
        make_id(ref, 1, mun, recent_person(b, index % b->enterprises, b->enterprises));
        e.owner_id.data = ref;
        e.owner_id.len = 16;
        e.action = 1 + pick(b, 2);
        e.sector = 1 + pick(b, 9);
        bscal_pair_of_day(lo == b->lo ? day_of_index(b, index, b->enterprises, lo, hi)
                                      : random_day(b, lo, hi),
                          &e.month, &e.bs_month);
        e.employees = pick(b, 10) - 1;
        e.status = 1 + (pick(b, 5) == 0);
        break;
    case 4:
        rec.body_case = REINT__V1__RECORD__BODY_AVAILABILITY;
        rec.availability = &a;
        a.service = 1 + (int)(index % 12);
        a.provider = 1 + pick(b, 8);
        a.available = pick(b, 3) != 0;
        a.as_of_day = random_day(b, lo, hi);
        break;
    default: {
        /* The nodes are enrolled with the default calendar (BS): they close BS months. */
        int y, m, d;
        int32_t day28 = 0;
        if (bscal_bs_from_days(b->lo + (int32_t)index * 30, &y, &m, &d) != 0 ||
            bscal_days_from_bs(y, m, 28, &day28) != 0)
            exit(1);
        rec.body_case = REINT__V1__RECORD__BODY_MONTH_CLOSE;
        rec.month_close = &c;
        c.bikram_sambat = 1;
        c.year = y;
        c.month = m;
        c.closed_day = day28 + pick(b, 30);
        break;
    }
    }
    size_t len = reint__v1__record__get_packed_size(&rec);
    reint__v1__record__pack(&rec, buf);
    if (note && rollup_note(b->r, mun, id, rec.version, buf, len) != 0) {
        fprintf(stderr, "rollup_note failed\n");
        exit(1);
    }
    hubstore_record hr = {.municipality = mun,
                          .id = id,
                          .kind = record_kind(&rec),
                          .version = rec.version,
                          .deleted = 0,
                          .incarnation = inc,
                          .body = buf,
                          .len = len};
    if (hubstore_put(&b->hs, &hr) != 0)
        exit(1);
}

static void exec(bench *b, const char *sql)
{
    if (store_exec(b->db, sql) != 0)
        exit(1);
}

static void load(bench *b)
{
    uint64_t rows = 0;
    exec(b, "BEGIN");
    for (uint32_t m = 0; m < b->n_mun; m++) {
        uint32_t mun = mun_code(m);
        for (uint64_t i = 0; i < b->persons; i++, rows++)
            put(b, 1, mun, i, b->lo, b->hi, 0);
        for (uint64_t i = 0; i < b->services; i++, rows++)
            put(b, 2, mun, i, b->lo, b->hi, 0);
        for (uint64_t i = 0; i < b->enterprises; i++, rows++)
            put(b, 3, mun, i, b->lo, b->hi, 0);
        for (uint64_t i = 0; i < 12; i++, rows++)
            put(b, 4, mun, i, b->lo, b->hi, 0);
        for (uint64_t i = 0; i < 36; i++, rows++)
            put(b, 5, mun, i, b->lo, b->hi, 0);
        if (m % 10 == 9) {
            exec(b, "COMMIT");
            exec(b, "BEGIN");
        }
    }
    sqlite3_stmt *st = store_prepare(
        b->db, "INSERT OR REPLACE INTO nodes(municipality, incarnation, acked_seq, acked_version,"
               " resend_pending, first_seen_ms, last_hello_ms) VALUES(?1, x'00', 0, 0, 0, ?2, ?2)");
    for (uint32_t m = 0; st != NULL && m < b->n_mun; m++) {
        sqlite3_bind_int64(st, 1, mun_code(m));
        sqlite3_bind_int64(st, 2, (int64_t)b->lo * 86400000);
        int step = sqlite3_step(st);
        sqlite3_reset(st);
        if (step != SQLITE_DONE) {
            fprintf(stderr, "nodes: %s\n", sqlite3_errmsg(b->db));
            exit(1);
        }
    }
    if (st == NULL)
        exit(1);
    sqlite3_finalize(st);
    exec(b, "COMMIT");
    fprintf(stderr, "loaded %llu records\n", (unsigned long long)rows);
}

/* The baseline: GROUP BY queries over the decoded rows and a calendar table. */
static double baseline(bench *b, long long *cells)
{
    static const char *kinds[6] = {"y", "q", "m", "bsm", "fyt", "fy"};
    static const struct {
        const char *sql; /* %s: the period column; %s: the grouping columns (with a comma) */
        const char *groupings[9];
    } q[] = {
        {"SELECT p.municipality, c.%s%s, count(*) FROM rollup_person p JOIN cal c ON"
         " c.day=p.day GROUP BY 1, 2%s",
         {"", ", p.category", ", p.sex", ", p.age_band", ", p.caste_group", ", p.disability",
          ", p.category, p.sex", ", p.sex, p.age_band", NULL}},
        {"SELECT s.municipality, c.%s%s, count(DISTINCT s.person) FROM rollup_service s"
         " JOIN cal c ON c.day=s.day LEFT JOIN rollup_person p ON p.id=s.person"
         " AND p.municipality=s.municipality WHERE s.status=2 GROUP BY 1, 2%s",
         {"", ", s.type", ", p.sex", ", p.category", ", s.programme", ", s.type, p.sex", NULL}},
        {"SELECT s.municipality, c.%s%s, count(*) FROM rollup_service s JOIN cal c ON"
         " c.day=s.day LEFT JOIN rollup_person p ON p.id=s.person"
         " AND p.municipality=s.municipality WHERE s.status=2 GROUP BY 1, 2%s",
         {"", ", s.type", ", p.sex", ", s.programme", ", s.provider", NULL}},
        {"SELECT s.municipality, c.%s%s, sum(s.amount), count(DISTINCT s.person) FROM"
         " rollup_service s JOIN cal c ON c.day=s.day LEFT JOIN rollup_person p ON"
         " p.id=s.person AND p.municipality=s.municipality WHERE s.status=2 AND s.type=7"
         " AND s.amount>=0 GROUP BY 1, 2%s",
         {"", ", p.sex", ", p.category", ", s.programme", NULL}},
    };
    exec(b, "DROP TABLE IF EXISTS cal; CREATE TABLE cal(day INTEGER PRIMARY KEY, y, q, m, bsm,"
            " fyt, fy)");
    sqlite3_stmt *st = store_prepare(b->db, "INSERT INTO cal VALUES(?1,?2,?3,?4,?5,?6,?7)");
    if (st == NULL)
        exit(1);
    exec(b, "BEGIN");
    for (int32_t d = b->lo; d <= b->hi; d++) {
        char p[PERIOD_KINDS][PERIOD_MAX];
        period_of_day(d, p);
        sqlite3_bind_int(st, 1, d);
        for (int k = 0; k < 6; k++)
            sqlite3_bind_text(st, 2 + k, p[k], -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        sqlite3_reset(st);
        if (step != SQLITE_DONE) {
            fprintf(stderr, "cal: %s\n", sqlite3_errmsg(b->db));
            exit(1);
        }
    }
    sqlite3_finalize(st);
    exec(b, "COMMIT");
    double t0 = now_s();
    *cells = 0;
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        for (int g = 0; q[i].groupings[g]; g++) {
            for (int k = 0; k < 6; k++) {
                char sql[1024];
                snprintf(sql, sizeof(sql), q[i].sql, kinds[k], q[i].groupings[g],
                         q[i].groupings[g]);
                sqlite3_stmt *s = store_prepare(b->db, sql);
                if (s == NULL)
                    exit(1);
                int step;
                while ((step = sqlite3_step(s)) == SQLITE_ROW)
                    (*cells)++;
                if (step != SQLITE_DONE) {
                    fprintf(stderr, "baseline: %s\n", sqlite3_errmsg(b->db));
                    exit(1);
                }
                sqlite3_finalize(s);
            }
        }
    }
    return now_s() - t0;
}

/* Applies a batch of changes the ingest's way; returns the refresh time. */
static double batch(bench *b, int scattered, uint32_t mun_index, double *ingest_s, rollup_stats *st)
{
    double t0 = now_s();
    exec(b, "BEGIN IMMEDIATE");
    if (scattered) {
        for (int i = 0; i < 1000; i++) {
            uint32_t mun = mun_code((uint32_t)pick(b, (int)b->n_mun));
            int kind = 1 + pick(b, 3);
            uint64_t n = kind == 1 ? b->persons : kind == 2 ? b->services : b->enterprises;
            put(b, kind, mun, (uint64_t)pick(b, (int)n), b->lo, b->hi, 1);
        }
    } else {
        uint32_t mun = mun_code(mun_index);
        int32_t month0 = b->hi - 29, recent = b->hi - 90;
        static uint64_t fresh = 1u << 30;
        for (int i = 0; i < 600; i++) {
            int kind = i % 10 < 4 ? 1 : i % 10 < 9 ? 2 : 3;
            put(b, kind, mun, fresh++, month0, b->hi, 1);
        }
        for (int i = 0; i < 400; i++) {
            int kind = 1 + pick(b, 3);
            uint64_t n = kind == 1 ? b->persons : kind == 2 ? b->services : b->enterprises;
            put(b, kind, mun, n - 1 - (uint64_t)pick(b, (int)(n / 12)), recent, b->hi, 1);
        }
    }
    exec(b, "COMMIT");
    *ingest_s = now_s() - t0;
    t0 = now_s();
    if (rollup_refresh(b->r, st) != 0)
        exit(1);
    return now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint64_t records = 1000000;
    int repeat = 5;
    char dir[256] = "", path[300], err[256];
    bench b;
    memset(&b, 0, sizeof(b));
    b.n_mun = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--records") == 0)
            records = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--municipalities") == 0)
            b.n_mun = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0)
            snprintf(dir, sizeof(dir), "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/var/tmp/rollup_bench.XXXXXX");
        if (mkdtemp(dir) == NULL)
            return 1;
    }
    if (repeat < 1 || repeat > 50 || b.n_mun < 1 || records < b.n_mun * 200)
        return 2;
    snprintf(path, sizeof(path), "%s/hub.db", dir);
    unlink(path);
    b.rng = 0x2545f4914f6cdd1dull;
    b.lo = bscal_days_from_ad(2023, 7, 17);
    b.hi = bscal_days_from_ad(2026, 7, 16);
    b.per_mun = records / b.n_mun;
    b.persons = b.per_mun * 40 / 100;
    b.services = b.per_mun * 45 / 100;
    b.enterprises = b.per_mun - b.persons - b.services - 48;
    if (hubstore_open(&b.hs, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    b.db = b.hs.db;
    /* The engine opens on the empty store; the load then bypasses it, and rollup_full()
     * below builds everything from the records. */
    if (rollup_open(&b.r, b.db, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (rollup_set_today(b.r, b.hi + 1) != 0)
        return 1;
    double t0 = now_s();
    load(&b);
    double t_load = now_s() - t0;
    rollup_stats st;
    t0 = now_s();
    if (rollup_full(b.r, &st) != 0)
        return 1;
    double t_full = now_s() - t0;
    rollup_stats st_full = st;
    long long n_cells = 0;
    sqlite3_stmt *q = store_prepare(b.db, "SELECT count(*) FROM rollup_cells");
    if (q == NULL || sqlite3_step(q) != SQLITE_ROW)
        return 1;
    n_cells = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    exec(&b, "UPDATE rollup_snapshots SET dirty=1");
    t0 = now_s();
    if (rollup_refresh(b.r, &st) != 0)
        return 1;
    double t_compute = now_s() - t0;
    long long base_cells;
    double t_base = baseline(&b, &base_cells);
    double inc[50], inc_ingest[50], sc[50], sc_ingest[50];
    rollup_stats st_inc = {0, 0, 0}, st_sc = {0, 0, 0};
    for (int i = 0; i < repeat; i++)
        inc[i] = batch(&b, 0, (uint32_t)(i * 7) % b.n_mun, &inc_ingest[i], &st_inc);
    for (int i = 0; i < repeat; i++)
        sc[i] = batch(&b, 1, 0, &sc_ingest[i], &st_sc);
    qsort(inc, (size_t)repeat, sizeof(double), cmp_double);
    qsort(inc_ingest, (size_t)repeat, sizeof(double), cmp_double);
    qsort(sc, (size_t)repeat, sizeof(double), cmp_double);
    qsort(sc_ingest, (size_t)repeat, sizeof(double), cmp_double);
    printf("| measure | result |\n| --- | --- |\n");
    printf("| load (records upserted, no engine) | %llu records of %u municipalities in %.1f s |\n",
           (unsigned long long)(b.per_mun * b.n_mun), b.n_mun, t_load);
    printf("| rollup_full (decode into the shadow + every snapshot) | **%.1f s**: %llu snapshots, "
           "%lld cells |\n",
           t_full, (unsigned long long)st_full.recomputed, n_cells);
    printf("| compute alone (every snapshot dirty, rollup_refresh) | **%.1f s** (%llu snapshots, "
           "%llu changed) |\n",
           t_compute, (unsigned long long)st.recomputed, (unsigned long long)st.changed);
    printf("| baseline: plain SQL GROUP BY, 4 of the 15 indicators (23 groupings x 6 period "
           "kinds = 138 queries) | **%.1f s** (%lld result rows) |\n",
           t_base, base_cells);
    printf("| incremental, one municipality's batch of 1,000 (600 new, 400 corrections), "
           "rollup_refresh | **%.1f ms** median (min %.1f, max %.1f; last: %llu snapshots "
           "recomputed, %llu changed) |\n",
           inc[repeat / 2] * 1e3, inc[0] * 1e3, inc[repeat - 1] * 1e3,
           (unsigned long long)st_inc.recomputed, (unsigned long long)st_inc.changed);
    printf(
        "| the same batch's ingest transaction (rollup_note + upsert, commit) | %.1f ms median |\n",
        inc_ingest[repeat / 2] * 1e3);
    printf("| incremental, 1,000 corrections scattered over all municipalities and years, "
           "rollup_refresh | **%.1f ms** median (min %.1f, max %.1f; last: %llu snapshots "
           "recomputed) |\n",
           sc[repeat / 2] * 1e3, sc[0] * 1e3, sc[repeat - 1] * 1e3,
           (unsigned long long)st_sc.recomputed);
    printf("| the scattered batch's ingest transaction | %.1f ms median |\n",
           sc_ingest[repeat / 2] * 1e3);
    rollup_close(b.r);
    hubstore_close(&b.hs);
    fprintf(stderr, "database left in %s\n", dir);
    return 0;
}
