/* rollup_bench: the hub's rollup engine (provincial-hub/rollup*.c, issue 4) on a synthetic
 * province, beside plain SQL GROUP BY in the same run.
 *
 * 1. Loads N records (default 1,000,000) of M municipalities (default 100) over three BS
 *    fiscal years (2023-07-17 .. 2026-07-16) into a fresh hub.db through the hub's own store
 *    (hubstore_open, hubstore_put): 12 availability rows and 36 month closes per
 *    municipality, the rest persons, services (of the same municipality's persons) and
 *    enterprises in the demo generator's proportions (37 / 56 / 7 %, as bench/mix.py); the
 *    batches below draw their kinds in the same proportions; every municipality enrolled.
 * 2. rollup_full(): decodes every record into the engine's shadow and computes every
 *    snapshot (all six period kinds, every grouping of all 15 indicators). Then the compute
 *    alone: every snapshot marked dirty and rollup_refresh().
 * 3. Baseline: plain SQL GROUP BY over the same decoded rows (the records hold protobuf, which
 *    SQL cannot read), with month -> period calendar tables: all 15 indicators (the ratios
 *    with their denominators), every grouping, six period kinds, written from DESIGN.md's
 *    definitions (the loan month, the referral windows and the reporting months, counted
 *    and complete, computed in SQL, not read from the engine's shadow columns). Its values
 *    (numerator and denominator) are compared with the engine's cells, cell by cell (the
 *    keys named from the schema's enumerations), before anything is timed (and after the
 *    batches); then compute alone and the baseline are timed in alternating order. The
 *    store runs with the hub's page cache (256 MiB).
 * 4. Incremental: a batch of 1,000 changes applied the hub's way (provincial-hub/ingest.c):
 *    upserted in one transaction (hubstore_put, committed), then noted in a second (each
 *    record read back from the store and given to rollup_note_stored, committed), then
 *    rollup_refresh(). The figure is the engine's whole work to reflect the batch: the
 *    noting transaction plus the refresh (until 2026-12-06 the refresh alone, after a
 *    rollup_note inside the upserts' transaction, which the hub does not use); each part,
 *    and the upserts' transaction, are printed beside it. The hub's noting also updates the
 *    review states of the months it touched (reviews_note), which this bench leaves out.
 *    (a) one municipality's sync
 *    (600 new records of the current month, 400 corrections of its last three months),
 *    (b) 1,000 corrections scattered over every municipality and all three years.
 *    After the batches, their cells must equal those of a rebuild from the records
 *    (rollup_full), every column: the baseline reads the engine's decoded rows, so a change
 *    the noting lost would leave it behind too.
 *
 * Build and run (after `make build/lib/libhub.a`):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Ibuild/gen -Icommon -Iprovincial-hub -o build/rollup_bench \
 *      bench/rollup_bench.c build/lib/libhub.a build/lib/libcommon.a \
 *      $(pkg-config --libs libprotobuf-c sqlite3 openssl libuv) -lm
 *   build/rollup_bench [--records N] [--municipalities M] [--dir DIR] [--repeat R]
 *                      [--profile B | --profile-scattered B]
 * --profile B: after step 2, B batches of one municipality (4a) only, no baseline, for a
 * profiler (docs/BENCHMARKS.md: perf record -D, past the load, then perf report);
 * --profile-scattered B: the same with B batches of scattered corrections (4b). An unknown
 * option, or one without its value, prints the usage and exits 2.
 * Prints "sample NAME SECONDS", "check NAME 0|1 DETAIL" and "info NAME N" lines for
 * bench/rollup.py, which writes build/bench/rollup.json. Timings are never asserted. */
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

/* Changes in one incremental batch. */
#define BENCH_BATCH 1000

typedef struct bench {
    hubstore hs; /* the hub's own store: its schema and its upsert (hubstore_put) */
    sqlite3 *db; /* hs.db */
    rollup *r;
    uint64_t rng, version;
    int32_t lo, hi;
    uint32_t n_mun;
    uint64_t per_mun, persons, services, enterprises;
    /* The batch's records to note, as the hub's ingest keeps them after its commit: id,
     * municipality, and whether the upsert inserted it (rollup_note_stored's fresh). */
    uint8_t pend_id[BENCH_BATCH][16];
    uint32_t pend_mun[BENCH_BATCH];
    uint8_t pend_fresh[BENCH_BATCH];
    int n_pend; /* -1: put() notes nothing (the load) */
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

/* A record kind in the demo generator's proportions (tools/caseload.py's defaults: 400
 * persons, 600 services, 80 enterprises, i.e. 10 : 15 : 2 of every 27), for r in [0, 27). */
#define BENCH_MIX 27
static int mix_kind(int r)
{
    return r < 10 ? 1 : r < 25 ? 2 : 3;
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
 * upserts it (hubstore_put); inside a batch (n_pend >= 0) it is also queued, with whether the
 * upsert inserted, for the noting the hub does after the upserts' commit. */
static void put(bench *b, int kind, uint32_t mun, uint64_t index, int32_t lo, int32_t hi)
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
    hubstore_record hr = {.municipality = mun,
                          .id = id,
                          .kind = record_kind(&rec),
                          .version = rec.version,
                          .deleted = 0,
                          .incarnation = inc,
                          .body = buf,
                          .len = len};
    int inserted = 0;
    if (hubstore_put(&b->hs, &hr, &inserted) != 0)
        exit(1);
    if (b->n_pend >= 0) {
        if (b->n_pend == BENCH_BATCH)
            exit(1);
        memcpy(b->pend_id[b->n_pend], id, 16);
        b->pend_mun[b->n_pend] = mun;
        b->pend_fresh[b->n_pend++] = (uint8_t)inserted;
    }
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
            put(b, 1, mun, i, b->lo, b->hi);
        for (uint64_t i = 0; i < b->services; i++, rows++)
            put(b, 2, mun, i, b->lo, b->hi);
        for (uint64_t i = 0; i < b->enterprises; i++, rows++)
            put(b, 3, mun, i, b->lo, b->hi);
        for (uint64_t i = 0; i < 12; i++, rows++)
            put(b, 4, mun, i, b->lo, b->hi);
        for (uint64_t i = 0; i < 36; i++, rows++)
            put(b, 5, mun, i, b->lo, b->hi);
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

/* The baseline's indicators (all 15 of the catalogue), their groupings in the catalogue's
 * names, and the SQL of each: formatted with the calendar's period column, the grouping's
 * columns, the calendar table (gcal for the Gregorian kinds, bcal for the BS kinds), the
 * record's month column that joins it (ad or bs) and the grouping's columns again; a query
 * that needs them in another order numbers them (%1$s ... %4$s). Each row ends with the
 * numerator, and a ratio's (ratio 1) with its numerator and its denominator. */
static const struct {
    const char *indicator;
    int ratio;
    const char *sql;
    const char *groupings[9];
    const char *names[9];
} bench__q[] = {
    {"participants_registered",
     0,
     "SELECT p.municipality, c.%s%s, count(*) FROM rollup_person p JOIN %s c ON c.month=p.%s"
     " GROUP BY 1, 2%s",
     {"", ", p.category", ", p.sex", ", p.age_band", ", p.caste_group", ", p.disability",
      ", p.category, p.sex", ", p.sex, p.age_band", NULL},
     {"", "category", "sex", "age_band", "caste_group", "disability", "category,sex",
      "sex,age_band", NULL}},
    {"persons_served",
     0,
     "SELECT s.municipality, c.%s%s, count(DISTINCT s.person) FROM rollup_service s"
     " JOIN %s c ON c.month=s.%s LEFT JOIN rollup_person p ON p.id=s.person"
     " AND p.municipality=s.municipality WHERE s.status=2 GROUP BY 1, 2%s",
     {"", ", s.type", ", coalesce(p.sex, 0)", ", coalesce(p.category, 0)", ", s.programme",
      ", s.type, coalesce(p.sex, 0)", NULL},
     {"", "service_type", "sex", "category", "programme", "service_type,sex", NULL}},
    {"services_delivered",
     0,
     "SELECT s.municipality, c.%s%s, count(*) FROM rollup_service s JOIN %s c ON"
     " c.month=s.%s LEFT JOIN rollup_person p ON p.id=s.person"
     " AND p.municipality=s.municipality WHERE s.status=2 GROUP BY 1, 2%s",
     {"", ", s.type", ", coalesce(p.sex, 0)", ", s.programme", ", s.provider", NULL},
     {"", "service_type", "sex", "programme", "provider", NULL}},
    {"seed_funding_npr",
     0,
     "SELECT s.municipality, c.%s%s, sum(s.amount) FROM"
     " rollup_service s JOIN %s c ON c.month=s.%s LEFT JOIN rollup_person p ON"
     " p.id=s.person AND p.municipality=s.municipality WHERE s.status=2 AND s.type=7"
     " AND s.amount>=0 GROUP BY 1, 2%s",
     {"", ", coalesce(p.sex, 0)", ", coalesce(p.category, 0)", ", s.programme", NULL},
     {"", "sex", "category", "programme", NULL}},
    {"returnees_registered",
     0,
     "SELECT p.municipality, c.%s%s, count(*) FROM rollup_person p JOIN %s c ON c.month=p.%s"
     " WHERE p.category=1 GROUP BY 1, 2%s",
     {"", ", p.sex", ", p.age_band", ", p.country", ", p.sex, p.age_band", NULL},
     {"", "sex", "age_band", "destination_country", "sex,age_band", NULL}},
    /* A ratio: returnees whose intention is NONE (1) over those with any stated intention
     * (NONE, UNDECIDED or PLANNING: 1 to 3; unknown, 0, excluded). */
    {"no_remigration_intention",
     1,
     "SELECT p.municipality, c.%s%s, sum(p.intention=1), count(*) FROM rollup_person p"
     " JOIN %s c ON c.month=p.%s WHERE p.category=1 AND p.intention BETWEEN 1 AND 3"
     " GROUP BY 1, 2%s",
     {"", ", p.sex", NULL},
     {"", "sex", NULL}},
    {"bank_accounts_opened",
     0,
     "SELECT s.municipality, c.%s%s, count(DISTINCT s.person) FROM rollup_service s"
     " JOIN %s c ON c.month=s.%s LEFT JOIN rollup_person p ON p.id=s.person"
     " AND p.municipality=s.municipality WHERE s.status=2 AND s.type=9 GROUP BY 1, 2%s",
     {"", ", coalesce(p.sex, 0)", NULL},
     {"", "sex", NULL}},
    {"enterprises_supported",
     0,
     "SELECT e.municipality, c.%s%s, count(*) FROM rollup_enterprise e JOIN %s c"
     " ON c.month=e.%s LEFT JOIN rollup_person p ON p.id=e.owner"
     " AND p.municipality=e.municipality GROUP BY 1, 2%s",
     {"", ", e.action", ", e.sector", ", coalesce(p.sex, 0)", ", coalesce(p.category, 0)",
      ", coalesce(p.sex, 0), coalesce(p.category, 0)", NULL},
     {"", "action", "sector", "owner_sex", "owner_category", "owner_sex,owner_category", NULL}},
    {"jobs_created",
     0,
     "SELECT e.municipality, c.%s%s, sum(e.employees) FROM rollup_enterprise e JOIN %s c"
     " ON c.month=e.%s LEFT JOIN rollup_person p ON p.id=e.owner"
     " AND p.municipality=e.municipality WHERE e.employees>=0 GROUP BY 1, 2%s",
     {"", ", e.sector", ", coalesce(p.sex, 0)", NULL},
     {"", "sector", "owner_sex", NULL}},
    /* A ratio: the enterprises whose owner has a delivered loan (type 8, status 2) in the
     * period's last month or before (in the period's calendar), over the supported
     * enterprises. Positional conversions: the kind's column (1), the grouping (2), the
     * calendar (3), its month column (4). The loan's month is found from the services, not
     * the engine's shadow. */
    {"enterprises_with_loan",
     1,
     "SELECT e.municipality, c.%1$s%2$s, sum(coalesce(l.lm<=c.%1$s_last, 0)), count(*)"
     " FROM rollup_enterprise e JOIN %3$s c ON c.month=e.%4$s LEFT JOIN (SELECT"
     " municipality, person, min(%4$s) AS lm FROM rollup_service WHERE type=8 AND status=2"
     " GROUP BY 1, 2) l ON l.municipality=e.municipality AND l.person=e.owner"
     " GROUP BY 1, 2%2$s",
     {"", ", e.sector", NULL},
     {"", "sector", NULL}},
    /* Referrals (status 1) whose window, their BS month through the third BS month after
     * it (due, computed here from the month), ended before the as-of day's BS month (asof,
     * the day after the data: the engine's today) with no delivery (status 2) of that type
     * for the person in a BS month of the window. */
    {"referrals_pending",
     0,
     "SELECT s.municipality, c.%s%s, count(*) FROM rollup_service s JOIN %s c ON c.month=s.%s"
     " WHERE s.status=1 AND ((s.bs/100*12+s.bs%%100+2)/12*100+(s.bs/100*12+s.bs%%100+2)%%12+1)"
     "<(SELECT bs FROM asof) AND NOT EXISTS(SELECT 1 FROM rollup_service d WHERE"
     " d.municipality=s.municipality AND d.person=s.person AND d.type=s.type AND d.status=2"
     " AND d.bs BETWEEN s.bs AND"
     " ((s.bs/100*12+s.bs%%100+2)/12*100+(s.bs/100*12+s.bs%%100+2)%%12+1)) GROUP BY 1, 2%s",
     {"", ", s.type", NULL},
     {"", "service_type", NULL}},
    /* Service types (1..31) referred in the period that no (service, provider) offers whose
     * latest availability row (the highest as-of day, then the highest id) says available. */
    {"services_unavailable",
     0,
     "WITH latest AS (SELECT a.municipality, a.service, a.available FROM rollup_availability a"
     " WHERE NOT EXISTS(SELECT 1 FROM rollup_availability b WHERE"
     " b.municipality=a.municipality AND b.service=a.service AND b.provider=a.provider AND"
     " (b.as_of_day>a.as_of_day OR (b.as_of_day=a.as_of_day AND b.id>a.id))))"
     " SELECT s.municipality, c.%s%s, count(DISTINCT s.type) FROM rollup_service s JOIN %s c"
     " ON c.month=s.%s WHERE s.status=1 AND s.type BETWEEN 1 AND 31 AND NOT EXISTS(SELECT 1"
     " FROM latest l WHERE l.municipality=s.municipality AND l.service=s.type AND"
     " l.available<>0) GROUP BY 1, 2%s",
     {"", ", s.type", NULL},
     {"", "service_type", NULL}},
    /* Ratios: the complete (timely) unit months of the period over its counted ones
     * (Gregorian months for the Gregorian kinds, BS months for the BS kinds; positional
     * conversions as for enterprises_with_loan; the views: calendars()). */
    {"reporting_completeness",
     1,
     "SELECT u.municipality, c.%1$s%2$s, sum(u.complete), count(*) FROM unit_%4$s u"
     " JOIN %3$s c ON c.month=u.month GROUP BY 1, 2%2$s",
     {"", NULL},
     {"", NULL}},
    {"reporting_timeliness",
     1,
     "SELECT u.municipality, c.%1$s%2$s, sum(u.timely), count(*) FROM unit_%4$s u"
     " JOIN %3$s c ON c.month=u.month GROUP BY 1, 2%2$s",
     {"", NULL},
     {"", NULL}},
    /* A ratio: the supported enterprises whose status is ACTIVE (1) over all of them. */
    {"enterprises_active",
     1,
     "SELECT e.municipality, c.%s%s, sum(e.status=1), count(*) FROM rollup_enterprise e"
     " JOIN %s c ON c.month=e.%s GROUP BY 1, 2%s",
     {"", ", e.sector", NULL},
     {"", "sector", NULL}},
};

/* Month -> period calendars of the loaded range: gcal for the Gregorian kinds (year,
 * quarter, month) keyed by YYYYMM, bcal for the BS kinds keyed by the BS YYYYMM. */
static void calendars(bench *b)
{
    exec(b, "DROP TABLE IF EXISTS gcal; DROP TABLE IF EXISTS bcal;"
            " CREATE TABLE gcal(month INTEGER PRIMARY KEY, y, q, m, y_last, q_last, m_last);"
            " DROP TABLE IF EXISTS asof; CREATE TABLE asof(bs, day);"
            " DROP TABLE IF EXISTS days; CREATE TABLE days(day INTEGER PRIMARY KEY, ad, bs);"
            " CREATE INDEX IF NOT EXISTS days_bs ON days(bs);"
            " CREATE TABLE bcal(month INTEGER PRIMARY KEY, bsm, fyt, fy, bsm_last, fyt_last,"
            " fy_last);");
    sqlite3_stmt *g =
        store_prepare(b->db, "INSERT OR IGNORE INTO gcal(month, y, q, m) VALUES(?1,?2,?3,?4)");
    sqlite3_stmt *s =
        store_prepare(b->db, "INSERT OR IGNORE INTO bcal(month, bsm, fyt, fy) VALUES(?1,?2,?3,?4)");
    sqlite3_stmt *dy = store_prepare(b->db, "INSERT INTO days VALUES(?1,?2,?3)");
    if (g == NULL || s == NULL || dy == NULL)
        exit(1);
    exec(b, "BEGIN");
    for (int32_t d = b->lo - 400; d <= b->hi + 400; d++) {
        char p[PERIOD_KINDS][PERIOD_MAX];
        int32_t ad = 0, bs = 0;
        if (period_of_day(d, p) != 0 || bscal_pair_of_day(d, &ad, &bs) != 0)
            continue;
        sqlite3_bind_int(g, 1, ad);
        sqlite3_bind_int(s, 1, bs);
        for (int k = 0; k < 3; k++) {
            sqlite3_bind_text(g, 2 + k, p[k], -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2 + k, p[3 + k], -1, SQLITE_TRANSIENT);
        }
        sqlite3_bind_int(dy, 1, d);
        sqlite3_bind_int(dy, 2, ad);
        sqlite3_bind_int(dy, 3, bs);
        int sg = sqlite3_step(g), ss = sqlite3_step(s), sd = sqlite3_step(dy);
        sqlite3_reset(g);
        sqlite3_reset(s);
        sqlite3_reset(dy);
        if (sg != SQLITE_DONE || ss != SQLITE_DONE || sd != SQLITE_DONE) {
            fprintf(stderr, "calendar: %s\n", sqlite3_errmsg(b->db));
            exit(1);
        }
    }
    sqlite3_finalize(g);
    sqlite3_finalize(s);
    sqlite3_finalize(dy);
    /* Reporting (for municipalities that close BS months, as all of this bench's do): a BS
     * month is complete when closed (and not returned), timely when its last close came
     * within 15 days of its last day, and counted (in the denominator) when closed or due:
     * it ended before the as-of day and on or after the day the municipality was enrolled
     * (first_day, its node's first hello). A Gregorian month is counted (complete, timely)
     * when every BS month overlapping it is. The unit views hold the counted months only.
     * Views: their work is done inside the timed queries. */
    exec(b, "DROP VIEW IF EXISTS unit_ad; DROP VIEW IF EXISTS unit_bs;"
            " DROP VIEW IF EXISTS own_bs; DROP VIEW IF EXISTS closes_bs;"
            " CREATE VIEW closes_bs AS SELECT c.municipality, c.year*100+c.month AS ym,"
            " max(c.closed_day)<=(SELECT max(day) FROM days WHERE days.bs=c.year*100+c.month)+15"
            " AS timely FROM rollup_close c JOIN rollup_enrolled e ON"
            " e.municipality=c.municipality AND e.bs=1 WHERE c.bs=1 AND NOT EXISTS(SELECT 1 FROM"
            " rollup_returned x WHERE x.municipality=c.municipality AND x.bs=1 AND"
            " x.year=c.year AND x.month=c.month) GROUP BY c.municipality, c.year, c.month;"
            " CREATE VIEW own_bs AS SELECT e.municipality, m.ym, cl.ym IS NOT NULL AS complete,"
            " coalesce(cl.timely, 0) AS timely, cl.ym IS NOT NULL OR (m.last<(SELECT day FROM"
            " asof) AND m.last>=e.first_day) AS counted FROM rollup_enrolled e JOIN (SELECT bs"
            " AS ym, max(day) AS last FROM days GROUP BY bs) m LEFT JOIN closes_bs cl ON"
            " cl.municipality=e.municipality AND cl.ym=m.ym WHERE e.bs=1;"
            " CREATE VIEW unit_bs AS SELECT municipality, ym AS month, complete, timely"
            " FROM own_bs WHERE counted;"
            " CREATE VIEW unit_ad AS WITH o AS MATERIALIZED (SELECT * FROM own_bs)"
            " SELECT o.municipality, d.ad AS month, min(o.complete) AS complete,"
            " min(o.timely) AS timely FROM (SELECT DISTINCT ad, bs FROM days) d"
            " JOIN o ON o.ym=d.bs GROUP BY 1, 2 HAVING min(o.counted)");
    /* The as-of day's BS month: the engine's today is the day after the data. */
    int32_t asof_ad = 0, asof_bs = 0;
    char asof[64];
    if (bscal_pair_of_day(b->hi + 1, &asof_ad, &asof_bs) != 0)
        exit(1);
    snprintf(asof, sizeof(asof), "INSERT INTO asof VALUES(%d, %d)", (int)asof_bs, (int)(b->hi + 1));
    exec(b, asof);
    /* Each period's last month (in its calendar), for enterprises_with_loan. The range runs
     * 400 days past the data, so every period of the data is whole here. */
    exec(b, "UPDATE gcal SET y_last=(SELECT max(month) FROM gcal x WHERE x.y=gcal.y),"
            " q_last=(SELECT max(month) FROM gcal x WHERE x.q=gcal.q),"
            " m_last=(SELECT max(month) FROM gcal x WHERE x.m=gcal.m);"
            " UPDATE bcal SET bsm_last=(SELECT max(month) FROM bcal x WHERE x.bsm=bcal.bsm),"
            " fyt_last=(SELECT max(month) FROM bcal x WHERE x.fyt=bcal.fyt),"
            " fy_last=(SELECT max(month) FROM bcal x WHERE x.fy=bcal.fy)");
    exec(b, "COMMIT");
}

/* The groupings' dimensions, as the schema names their values (the engine's cells are keyed
 * by these names; the baseline groups by the stored numbers): an enumeration's value name
 * without its prefix, a destination country's two letters, UNKNOWN for none. */
static const struct {
    const char *name;
    const ProtobufCEnumDescriptor *desc;
} bench__dims[] = {
    {"category", &reint__v1__category__descriptor},
    {"sex", &reint__v1__sex__descriptor},
    {"age_band", &reint__v1__age_band__descriptor},
    {"caste_group", &reint__v1__caste_group__descriptor},
    {"disability", &reint__v1__flag__descriptor},
    {"destination_country", NULL},
    {"service_type", &reint__v1__service_type__descriptor},
    {"programme", &reint__v1__programme__descriptor},
    {"provider", &reint__v1__provider__descriptor},
    {"action", &reint__v1__enterprise_action__descriptor},
    {"sector", &reint__v1__sector__descriptor},
    {"owner_sex", &reint__v1__sex__descriptor},
    {"owner_category", &reint__v1__category__descriptor},
};

/* The key of a baseline row: the names of its grouping columns (2 .. end - 1), joined by
 * commas, for the grouping named names ("category,sex"). */
static void bench_key(sqlite3_stmt *s, int end, const char *names, char *key, size_t size)
{
    size_t len = 0;
    key[0] = '\0';
    for (int c = 2; c < end; c++) {
        size_t n = strcspn(names, ",");
        const char *name = NULL;
        int v = sqlite3_column_int(s, c);
        char cc[3] = {(char)(v >> 8), (char)(v & 0xff), '\0'};
        for (size_t d = 0; d < sizeof(bench__dims) / sizeof(bench__dims[0]); d++)
            if (strlen(bench__dims[d].name) == n && strncmp(bench__dims[d].name, names, n) == 0)
                name = bench__dims[d].desc ? record_enum_name(bench__dims[d].desc, v)
                       : v                 ? cc
                                           : "UNKNOWN";
        if (name == NULL) {
            fprintf(stderr, "baseline: no dimension for grouping %s\n", names);
            exit(1);
        }
        len += (size_t)snprintf(key + len, size - len, "%s%s", c > 2 ? "," : "", name);
        if (len >= size)
            exit(1);
        names += n + (names[n] == ',');
    }
}

/* The baseline: GROUP BY queries over the decoded rows and the calendars. With keep, every
 * result row's values are kept in base_cells(municipality, period, indicator, grouping, key,
 * numerator, denominator: 0 but for the ratios) for the comparison with the engine's cells
 * (outside the timer of the timed runs). */
static double baseline(bench *b, long long *cells, int keep)
{
    static const char *kinds[6] = {"y", "q", "m", "bsm", "fyt", "fy"};
    if (keep)
        exec(b, "DROP TABLE IF EXISTS base_cells; CREATE TABLE base_cells(municipality,"
                " period, indicator, grouping, key, numerator, denominator)");
    sqlite3_stmt *ins =
        keep ? store_prepare(b->db, "INSERT INTO base_cells VALUES(?1,?2,?3,?4,?5,?6,?7)") : NULL;
    /* The kept rows go in one transaction (not one commit each); only the untimed
     * comparison run keeps them. */
    if (keep)
        exec(b, "BEGIN");
    double t0 = now_s();
    *cells = 0;
    for (size_t i = 0; i < sizeof(bench__q) / sizeof(bench__q[0]); i++) {
        for (int g = 0; bench__q[i].groupings[g]; g++) {
            for (int k = 0; k < 6; k++) {
                char sql[1024];
                snprintf(sql, sizeof(sql), bench__q[i].sql, kinds[k], bench__q[i].groupings[g],
                         k < 3 ? "gcal" : "bcal", k < 3 ? "ad" : "bs", bench__q[i].groupings[g]);
                sqlite3_stmt *s = store_prepare(b->db, sql);
                if (s == NULL)
                    exit(1);
                int step;
                int ncol = 0;
                while ((step = sqlite3_step(s)) == SQLITE_ROW) {
                    (*cells)++;
                    if (ins == NULL)
                        continue;
                    ncol = sqlite3_column_count(s);
                    int v = ncol - 1 - bench__q[i].ratio; /* the numerator's column */
                    sqlite3_bind_int64(ins, 1, sqlite3_column_int64(s, 0));
                    sqlite3_bind_text(ins, 2, (const char *)sqlite3_column_text(s, 1), -1,
                                      SQLITE_TRANSIENT);
                    sqlite3_bind_text(ins, 3, bench__q[i].indicator, -1, SQLITE_STATIC);
                    sqlite3_bind_text(ins, 4, bench__q[i].names[g], -1, SQLITE_STATIC);
                    char key[256];
                    bench_key(s, v, bench__q[i].names[g], key, sizeof(key));
                    sqlite3_bind_text(ins, 5, key, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_int64(ins, 6, sqlite3_column_int64(s, v));
                    sqlite3_bind_int64(ins, 7,
                                       bench__q[i].ratio ? sqlite3_column_int64(s, v + 1) : 0);
                    int st = sqlite3_step(ins);
                    sqlite3_reset(ins);
                    if (st != SQLITE_DONE)
                        exit(1);
                }
                if (step != SQLITE_DONE) {
                    fprintf(stderr, "baseline: %s\n", sqlite3_errmsg(b->db));
                    exit(1);
                }
                sqlite3_finalize(s);
            }
        }
    }
    double t = now_s() - t0;
    sqlite3_finalize(ins);
    if (keep)
        exec(b, "COMMIT");
    return t;
}

/* Compares the baseline's values with every cell of the engine (the baseline has every
 * indicator: one added to the catalogue without a query here makes the bench fail), cell by
 * cell: (municipality, period, indicator, grouping, key, numerator, denominator), a cell of
 * zeros being no cell on either side. Returns the number of cells that differ, *groups the
 * baseline's cells. */
static long long compare(bench *b, long long *groups)
{
    static const char *sql =
        "WITH e AS (SELECT municipality, period, indicator, grouping, key, numerator,"
        " denominator FROM rollup_cells WHERE numerator <> 0 OR denominator <> 0),"
        " bb AS (SELECT municipality, period, indicator, grouping, key, numerator, denominator"
        " FROM base_cells WHERE numerator <> 0 OR denominator <> 0)"
        " SELECT (SELECT count(*) FROM (SELECT * FROM e EXCEPT SELECT * FROM bb)) +"
        " (SELECT count(*) FROM (SELECT * FROM bb EXCEPT SELECT * FROM e)), (SELECT count(*)"
        " FROM bb)";
    sqlite3_stmt *st = store_prepare(b->db, sql);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW)
        exit(1);
    long long diff = sqlite3_column_int64(st, 0);
    *groups = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return diff;
}

/* What one batch cost: the engine's work to reflect it (the noting transaction, then the
 * refresh) and, before it, the transaction that upserted the records. */
typedef struct batch_times {
    double note_s, refresh_s, ingest_s;
} batch_times;

/* Applies a batch of changes the hub's ingest's way (upserts, then notes), then refreshes the
 * snapshots. */
static batch_times batch(bench *b, int scattered, uint32_t mun_index, rollup_stats *st)
{
    batch_times t;
    b->n_pend = 0;
    double t0 = now_s();
    exec(b, "BEGIN IMMEDIATE");
    if (scattered) {
        for (int i = 0; i < BENCH_BATCH; i++) {
            uint32_t mun = mun_code((uint32_t)pick(b, (int)b->n_mun));
            int kind = mix_kind(pick(b, BENCH_MIX));
            uint64_t n = kind == 1 ? b->persons : kind == 2 ? b->services : b->enterprises;
            put(b, kind, mun, (uint64_t)pick(b, (int)n), b->lo, b->hi);
        }
    } else {
        uint32_t mun = mun_code(mun_index);
        int32_t month0 = b->hi - 29, recent = b->hi - 90;
        static uint64_t fresh = 1u << 30;
        for (int i = 0; i < 600; i++) {
            int kind = mix_kind(i % BENCH_MIX);
            put(b, kind, mun, fresh++, month0, b->hi);
        }
        for (int i = 0; i < BENCH_BATCH - 600; i++) {
            int kind = mix_kind(pick(b, BENCH_MIX));
            uint64_t n = kind == 1 ? b->persons : kind == 2 ? b->services : b->enterprises;
            put(b, kind, mun, n - 1 - (uint64_t)pick(b, (int)(n / 12)), recent, b->hi);
        }
    }
    if (store_meta_set_int(b->db, "rollup_pending", 1) != 0)
        exit(1);
    exec(b, "COMMIT");
    t.ingest_s = now_s() - t0;
    /* The noting, as the hub's ingest does it after that commit (ingest__note_some): each
     * record read back from the store and noted (rollup_note_stored), in one transaction. */
    t0 = now_s();
    sqlite3_stmt *q =
        store_prepare(b->db, "SELECT body FROM records WHERE municipality=?2 AND id=?1");
    if (q == NULL)
        exit(1);
    exec(b, "BEGIN IMMEDIATE");
    for (int i = 0; i < b->n_pend; i++) {
        sqlite3_bind_blob(q, 1, b->pend_id[i], 16, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, b->pend_mun[i]);
        if (sqlite3_step(q) != SQLITE_ROW ||
            rollup_note_stored(b->r, b->pend_mun[i], b->pend_id[i], sqlite3_column_blob(q, 0),
                               (size_t)sqlite3_column_bytes(q, 0), b->pend_fresh[i]) != 0) {
            fprintf(stderr, "noting a stored record failed\n");
            exit(1);
        }
        sqlite3_reset(q);
    }
    if (store_meta_set_int(b->db, "rollup_pending", 0) != 0)
        exit(1);
    exec(b, "COMMIT");
    sqlite3_finalize(q);
    t.note_s = now_s() - t0;
    b->n_pend = -1;
    t0 = now_s();
    if (rollup_refresh(b->r, st) != 0)
        exit(1);
    t.refresh_s = now_s() - t0;
    return t;
}

/* Prints a batch's samples under its figure's name: the engine's whole work (noting and
 * refresh, the figure judged against the goal) and its parts. */
static void print_batch(const char *name, batch_times t)
{
    printf("sample %s_ms %.6f\n", name, (t.note_s + t.refresh_s) * 1e3);
    printf("sample %s_note_ms %.6f\n", name, t.note_s * 1e3);
    printf("sample %s_refresh_ms %.6f\n", name, t.refresh_s * 1e3);
    printf("sample %s_ingest_ms %.6f\n", name, t.ingest_s * 1e3);
}

int main(int argc, char **argv)
{
    uint64_t records = 1000000;
    int repeat = 5, profile = 0, profile_kind = 0;
    char dir[256] = "", path[300], err[256];
    bench b;
    memset(&b, 0, sizeof(b));
    b.n_mun = 100;
    b.n_pend = -1;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 == argc) /* an option without its value: the usage below */
            i = 0;
        else if (strcmp(argv[i], "--records") == 0)
            records = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--municipalities") == 0)
            b.n_mun = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0)
            snprintf(dir, sizeof(dir), "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--profile") == 0)
            profile = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--profile-scattered") == 0) {
            profile = (int)strtol(argv[i + 1], NULL, 10);
            profile_kind = 1;
        } else
            i = 0;
        if (i == 0) {
            fprintf(stderr, "usage: rollup_bench [--records N] [--municipalities M] [--dir DIR]"
                            " [--repeat R] [--profile B | --profile-scattered B]\n");
            return 2;
        }
    }
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/var/tmp/rollup_bench.XXXXXX");
        if (mkdtemp(dir) == NULL)
            return 1;
    }
    if (repeat < 1 || repeat > 50 || profile < 0 || b.n_mun < 1 || records < b.n_mun * 200)
        return 2;
    snprintf(path, sizeof(path), "%s/hub.db", dir);
    unlink(path);
    b.rng = 0x2545f4914f6cdd1dull;
    b.lo = bscal_days_from_ad(2023, 7, 17);
    b.hi = bscal_days_from_ad(2026, 7, 16);
    b.per_mun = records / b.n_mun;
    /* The demo's proportions after each municipality's 12 availability rows and 36 closes. */
    b.persons = (b.per_mun - 48) * 10 / BENCH_MIX;
    b.services = (b.per_mun - 48) * 15 / BENCH_MIX;
    b.enterprises = b.per_mun - 48 - b.persons - b.services;
    if (hubstore_open(&b.hs, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    b.db = b.hs.db;
    /* The hub's page cache (provincial-hub's ingest sets 256 MiB unless configured). */
    if (hubstore_set_cache(&b.hs, 256) != 0)
        return 1;
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
    if (profile > 0) {
        fprintf(stderr, "profile: %d batches of %s from here\n", profile,
                profile_kind ? "scattered corrections" : "one municipality");
        for (int i = 0; i < profile; i++)
            print_batch(profile_kind ? "scattered" : "one_mun",
                        batch(&b, profile_kind, (uint32_t)(i * 7) % b.n_mun, &st));
        rollup_close(b.r);
        hubstore_close(&b.hs);
        fprintf(stderr, "database left in %s\n", dir);
        return 0;
    }
    /* Engine and baseline compute the same indicators from the same rows; their outputs are
     * compared before anything of the baseline is timed. */
    calendars(&b);
    long long base_cells = 0, groups = 0;
    baseline(&b, &base_cells, 1);
    long long diff = compare(&b, &groups);
    printf("check engine_equals_baseline %d %lld of %lld cells differ\n", diff == 0, diff, groups);
    printf("check engine_cells %d %lld cells\n", n_cells > 0 && groups > 0, n_cells);
    printf("sample load_s %.6f\nsample full_s %.6f\n", t_load, t_full);
    printf("info snapshots %llu\ninfo cells %lld\ninfo base_rows %lld\n",
           (unsigned long long)st_full.recomputed, n_cells, base_cells);
    /* Compute alone (every snapshot dirty, rollup_refresh) and the baseline, alternating. */
    for (int i = 0; i < 2 * repeat; i++) {
        int engine = (i % 4 == 0 || i % 4 == 3);
        if (engine) {
            exec(&b, "UPDATE rollup_snapshots SET dirty=1");
            t0 = now_s();
            if (rollup_refresh(b.r, &st) != 0)
                return 1;
            printf("sample compute_s %.6f\n", now_s() - t0);
            printf("check compute_all_%d %d %llu of %llu snapshots recomputed\n", i,
                   st.recomputed == st_full.recomputed, (unsigned long long)st.recomputed,
                   (unsigned long long)st_full.recomputed);
        } else {
            long long rows = 0;
            printf("sample baseline_s %.6f\n", baseline(&b, &rows, 0));
            printf("check baseline_rows_%d %d %lld rows\n", i, rows == base_cells, rows);
        }
    }
    rollup_stats st_inc = {0, 0, 0}, st_sc = {0, 0, 0};
    for (int i = 0; i < repeat; i++) {
        print_batch("one_mun", batch(&b, 0, (uint32_t)(i * 7) % b.n_mun, &st_inc));
        printf("check one_mun_%d %d %llu snapshots recomputed\n", i, st_inc.recomputed > 0,
               (unsigned long long)st_inc.recomputed);
    }
    for (int i = 0; i < repeat; i++) {
        print_batch("scattered", batch(&b, 1, 0, &st_sc));
        printf("check scattered_%d %d %llu snapshots recomputed\n", i, st_sc.recomputed > 0,
               (unsigned long long)st_sc.recomputed);
    }
    /* After the batches: nothing left dirty, and the baseline still agrees with the engine. */
    q = store_prepare(b.db, "SELECT count(*) FROM rollup_snapshots WHERE dirty=1");
    if (q == NULL || sqlite3_step(q) != SQLITE_ROW)
        return 1;
    printf("check nothing_dirty %d %lld dirty\n", sqlite3_column_int64(q, 0) == 0,
           (long long)sqlite3_column_int64(q, 0));
    sqlite3_finalize(q);
    /* The baseline reads the engine's decoded rows (SQL cannot read the records' protobuf):
     * a change the batches' noting lost would leave both behind alike. So the cells the
     * batches left (noted, then refreshed) must equal, every column of every cell, those of a
     * rebuild from the records themselves (rollup_full decodes every record again). */
    exec(&b,
         "DROP TABLE IF EXISTS inc_cells; CREATE TABLE inc_cells AS SELECT * FROM rollup_cells");
    if (rollup_full(b.r, &st) != 0)
        return 1;
    q = store_prepare(b.db, "SELECT (SELECT count(*) FROM (SELECT * FROM inc_cells EXCEPT"
                            " SELECT * FROM rollup_cells)) + (SELECT count(*) FROM (SELECT * FROM"
                            " rollup_cells EXCEPT SELECT * FROM inc_cells)), (SELECT count(*) FROM"
                            " inc_cells)");
    if (q == NULL || sqlite3_step(q) != SQLITE_ROW)
        return 1;
    printf("check batches_equal_rebuild_from_records %d %lld of %lld cells differ\n",
           sqlite3_column_int64(q, 0) == 0 && sqlite3_column_int64(q, 1) > 0,
           (long long)sqlite3_column_int64(q, 0), (long long)sqlite3_column_int64(q, 1));
    sqlite3_finalize(q);
    baseline(&b, &base_cells, 1);
    diff = compare(&b, &groups);
    printf("check engine_equals_baseline_after_batches %d %lld of %lld cells differ\n", diff == 0,
           diff, groups);
    rollup_close(b.r);
    hubstore_close(&b.hs);
    fprintf(stderr, "database left in %s\n", dir);
    return 0;
}
