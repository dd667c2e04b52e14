/* Tests for provincial-hub/rollup: every indicator on hand-built records, with the expected
 * cells worked out by hand in each test. Records go into a temporary hub.db through the
 * ingest's path (provincial-hub/ingest.c): the hub store's upsert (hubstore_put), committed;
 * then, in a transaction of its own, the body the records table now holds, noted
 * (rollup_note_stored, told whether the upsert inserted).
 *
 * Calendar facts used below (data/bikram_sambat.csv: BS 2082 starts 2025-04-14, months of
 * 31, 31, 32, 31, 31, 31, 30, 29, ... days): 2025-07-16 is Asar 32, 2082 (BS2082-03, the
 * last day of FY2081/82); 2025-07-17 is Shrawan 1, 2082 (BS2082-04, FY2082/83-T1);
 * 2025-11-16 is Kartik 30 (BS2082-07, the last day of T1); 2025-11-17 is Mangsir 1
 * (BS2082-08, T2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "bscal.h"
#include "clock.h"
#include "geo.h"
#include "hubstore.h"
#include "record.h"
#include "reviews.h"
#include "rollup.h"
#include "store.h"
#include "testhook.h"

#define MUN 10703

typedef struct fx {
    char dir[64], path[128];
    hubstore hs; /* the hub's own store: its schema and its upsert */
    sqlite3 *db; /* hs.db */
    rollup *r;
    uint64_t version;
} fx;

/* The municipality of the records the helpers below store (MUN unless a test says). */
static uint32_t put_mun = MUN;

static int32_t D(int y, int m, int d)
{
    return bscal_days_from_ad(y, m, d);
}

/* The helpers below take the day of an event, as a clerk would write it, and store what the
 * node sends: its month pair (Gregorian month, BS month). */
static void pair(int32_t day, int32_t *ad, int32_t *bs)
{
    assert_int_equal(bscal_pair_of_day(day, ad, bs), 0);
}

static void idn(uint8_t id[16], int n)
{
    memset(id, 0, 16);
    id[0] = 0x01;
    id[14] = (uint8_t)(n >> 8);
    id[15] = (uint8_t)n;
}

static int setup(void **state)
{
    char err[256];
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_rollup.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    assert_int_equal(hubstore_open(&f->hs, f->path, err, sizeof(err)), 0);
    f->db = f->hs.db;
    assert_int_equal(rollup_open(&f->r, f->db, err, sizeof(err)), 0);
    assert_int_equal(rollup_set_today(f->r, D(2026, 6, 30)), 0);
    f->version = 1;
    put_mun = MUN;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[160];
    rollup_close(f->r);
    hubstore_close(&f->hs);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Set to store records without refreshing after each. */
static int put_no_refresh;

/* Stores one record as the ingest does, then refreshes. */
static void put(fx *f, Reint__V1__Record *rec)
{
    static const uint8_t inc[16] = {7};
    rec->version = f->version++;
    if (rec->municipality == 0)
        rec->municipality = put_mun;
    size_t len = reint__v1__record__get_packed_size(rec);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    reint__v1__record__pack(rec, buf);
    hubstore_record hr = {.municipality = rec->municipality,
                          .id = rec->id.data,
                          .kind = record_kind(rec),
                          .version = rec->version,
                          .deleted = rec->body_case == REINT__V1__RECORD__BODY_TOMBSTONE,
                          .incarnation = inc,
                          .body = buf,
                          .len = len};
    int inserted = -1;
    assert_int_equal(store_exec(f->db, "BEGIN IMMEDIATE"), 0);
    assert_int_equal(hubstore_put(&f->hs, &hr, &inserted), 0);
    assert_int_equal(store_exec(f->db, "COMMIT"), 0);
    assert_true(inserted == 0 || inserted == 1);
    free(buf);
    /* The hub's noting: what the records table holds now (a stale replay leaves the newer
     * body), in a transaction of its own. */
    sqlite3_stmt *st =
        store_prepare(f->db, "SELECT body FROM records WHERE municipality=?1 AND id=?2");
    assert_non_null(st);
    sqlite3_bind_int64(st, 1, rec->municipality);
    sqlite3_bind_blob(st, 2, rec->id.data, 16, SQLITE_STATIC);
    assert_int_equal(store_exec(f->db, "BEGIN IMMEDIATE"), 0);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(rollup_note_stored(f->r, rec->municipality, rec->id.data,
                                        sqlite3_column_blob(st, 0),
                                        (size_t)sqlite3_column_bytes(st, 0), inserted),
                     0);
    sqlite3_finalize(st);
    assert_int_equal(store_exec(f->db, "COMMIT"), 0);
    if (!put_no_refresh)
        assert_int_equal(rollup_refresh(f->r, NULL), 0);
}

static void person(fx *f, int n, int32_t day, int category, int sex, int age_band)
{
    uint8_t id[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    idn(id, n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.body_case = REINT__V1__RECORD__BODY_PERSON;
    rec.person = &p;
    p.category = category;
    p.sex = sex;
    p.age_band = age_band;
    pair(day, &p.registered_month, &p.registered_bs_month);
    p.years_abroad = -1;
    put(f, &rec);
}

/* A person of another municipality (sex and day only). */
static void person_of(fx *f, int n, uint32_t municipality, int32_t day, int sex)
{
    uint8_t id[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    idn(id, n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.municipality = municipality;
    rec.body_case = REINT__V1__RECORD__BODY_PERSON;
    rec.person = &p;
    p.sex = sex;
    pair(day, &p.registered_month, &p.registered_bs_month);
    put(f, &rec);
}

static void returnee(fx *f, int n, int32_t day, int sex, const char *country, int intention)
{
    uint8_t id[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    idn(id, n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.body_case = REINT__V1__RECORD__BODY_PERSON;
    rec.person = &p;
    p.category = REINT__V1__CATEGORY__CATEGORY_RETURNEE;
    p.sex = sex;
    p.age_band = REINT__V1__AGE_BAND__AGE_BAND_25_39;
    pair(day, &p.registered_month, &p.registered_bs_month);
    p.years_abroad = 3;
    p.destination_country = (char *)country;
    p.remigration_intention = intention;
    put(f, &rec);
}

static void service(fx *f, int n, int person_n, int type, int status, int32_t day, int programme,
                    int64_t amount)
{
    uint8_t id[16], pid[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Service s = REINT__V1__SERVICE__INIT;
    idn(id, n);
    idn(pid, person_n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.body_case = REINT__V1__RECORD__BODY_SERVICE;
    rec.service = &s;
    s.person_id.data = pid;
    s.person_id.len = 16;
    s.type = type;
    s.status = status;
    pair(day, &s.month, &s.bs_month);
    s.provider = REINT__V1__PROVIDER__PROVIDER_MRC;
    s.programme = programme;
    s.amount_npr = amount;
    put(f, &rec);
}

static void delivered(fx *f, int n, int person_n, int type, int32_t day)
{
    service(f, n, person_n, type, REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED, day,
            REINT__V1__PROGRAMME__PROGRAMME_M4SD, -1);
}

static void referred(fx *f, int n, int person_n, int type, int32_t day)
{
    service(f, n, person_n, type, REINT__V1__SERVICE_STATUS__SERVICE_STATUS_REFERRED, day,
            REINT__V1__PROGRAMME__PROGRAMME_M4SD, -1);
}

static void enterprise(fx *f, int n, int owner_n, int sector, int32_t day, int employees,
                       int status)
{
    uint8_t id[16], oid[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Enterprise e = REINT__V1__ENTERPRISE__INIT;
    idn(id, n);
    idn(oid, owner_n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.body_case = REINT__V1__RECORD__BODY_ENTERPRISE;
    rec.enterprise = &e;
    e.owner_id.data = oid;
    e.owner_id.len = 16;
    e.action = REINT__V1__ENTERPRISE_ACTION__ENTERPRISE_ACTION_STARTED;
    e.sector = sector;
    pair(day, &e.month, &e.bs_month);
    e.employees = employees;
    e.status = status;
    put(f, &rec);
}

static void availability(fx *f, int n, int svc, int provider, int available, int32_t as_of)
{
    uint8_t id[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Availability a = REINT__V1__AVAILABILITY__INIT;
    idn(id, n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.body_case = REINT__V1__RECORD__BODY_AVAILABILITY;
    rec.availability = &a;
    a.service = svc;
    a.provider = provider;
    a.available = available;
    a.as_of_day = as_of;
    put(f, &rec);
}

static void month_close(fx *f, int n, int bs, int year, int month, int32_t closed)
{
    uint8_t id[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__MonthClose c = REINT__V1__MONTH_CLOSE__INIT;
    idn(id, n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.body_case = REINT__V1__RECORD__BODY_MONTH_CLOSE;
    rec.month_close = &c;
    c.bikram_sambat = bs;
    c.year = year;
    c.month = month;
    c.closed_day = closed;
    put(f, &rec);
}

static void tombstone(fx *f, int n, int kind)
{
    uint8_t id[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Tombstone t = REINT__V1__TOMBSTONE__INIT;
    idn(id, n);
    rec.id.data = id;
    rec.id.len = 16;
    rec.body_case = REINT__V1__RECORD__BODY_TOMBSTONE;
    rec.tombstone = &t;
    t.kind = kind;
    put(f, &rec);
}

typedef struct cellv {
    int found;
    int64_t num, den, contributors, top1, top2;
    uint32_t ckey, nkey;
} cellv;

static cellv cell_in(fx *f, uint32_t municipality, const char *period, const char *ind,
                     const char *grouping, const char *key)
{
    cellv c = {0, 0, 0, 0, 0, 0, 0, 0};
    sqlite3_stmt *st = store_prepare(f->db, "SELECT numerator, denominator, contributors,"
                                            " cell_key, top1, top2, numerator_key FROM rollup_cells"
                                            " WHERE municipality=?1"
                                            " AND period=?2 AND indicator=?3 AND grouping=?4"
                                            " AND key=?5");
    assert_non_null(st);
    sqlite3_bind_int64(st, 1, municipality);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, grouping, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        c.found = 1;
        c.num = sqlite3_column_int64(st, 0);
        c.den = sqlite3_column_int64(st, 1);
        c.contributors = sqlite3_column_int64(st, 2);
        c.ckey = (uint32_t)sqlite3_column_int64(st, 3);
        c.top1 = sqlite3_column_int64(st, 4);
        c.top2 = sqlite3_column_int64(st, 5);
        c.nkey = (uint32_t)sqlite3_column_int64(st, 6);
    }
    sqlite3_finalize(st);
    return c;
}

static cellv cell(fx *f, const char *period, const char *ind, const char *grouping, const char *key)
{
    return cell_in(f, MUN, period, ind, grouping, key);
}

/* The key of a contribution of person or owner n to a sum, computed here: SHA-256 of the id
 * followed by the amount (8 bytes, big-endian). */
static uint32_t contribution_key(int n, int64_t amount)
{
    uint8_t b[24], h[SHA256_DIGEST_LENGTH];
    idn(b, n);
    for (int i = 0; i < 8; i++)
        b[16 + i] = (uint8_t)((uint64_t)amount >> (56 - 8 * i));
    SHA256(b, sizeof(b), h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* The numerator of a cell; 0 when the cell is absent (zero cells are omitted). */
static int64_t num(fx *f, const char *period, const char *ind, const char *grouping,
                   const char *key)
{
    return cell(f, period, ind, grouping, key).num;
}

#define FEMALE    REINT__V1__SEX__SEX_FEMALE
#define MALE      REINT__V1__SEX__SEX_MALE
#define RETURNEE  REINT__V1__CATEGORY__CATEGORY_RETURNEE
#define FAMILY    REINT__V1__CATEGORY__CATEGORY_MIGRANT_FAMILY
#define AGE_15_24 REINT__V1__AGE_BAND__AGE_BAND_15_24
#define AGE_25_39 REINT__V1__AGE_BAND__AGE_BAND_25_39
#define SEED      REINT__V1__SERVICE_TYPE__SERVICE_TYPE_SEED_FUNDING
#define LOAN      REINT__V1__SERVICE_TYPE__SERVICE_TYPE_LOAN
#define BANK      REINT__V1__SERVICE_TYPE__SERVICE_TYPE_BANK_ACCOUNT
#define COUNSEL   REINT__V1__SERVICE_TYPE__SERVICE_TYPE_RETURN_COUNSELLING
#define PSYCHO    REINT__V1__SERVICE_TYPE__SERVICE_TYPE_PSYCHOSOCIAL_SUPPORT
#define LEGAL     REINT__V1__SERVICE_TYPE__SERVICE_TYPE_LEGAL_AID
#define ACTIVE    REINT__V1__ENTERPRISE_STATUS__ENTERPRISE_STATUS_ACTIVE
#define CLOSED    REINT__V1__ENTERPRISE_STATUS__ENTERPRISE_STATUS_CLOSED
#define RETAIL    REINT__V1__SECTOR__SECTOR_RETAIL
#define LIVESTOCK REINT__V1__SECTOR__SECTOR_LIVESTOCK
#define DEL       REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED
#define RERP      REINT__V1__PROGRAMME__PROGRAMME_RERP
#define K_PERSON  REINT__V1__RECORD_KIND__RECORD_KIND_PERSON
#define K_SERVICE REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE

static void test_rollup_participants_by_each_declared_grouping(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 5), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 20), FAMILY, FEMALE, AGE_15_24);
    person(f, 3, D(2026, 1, 31), RETURNEE, MALE, AGE_25_39);
    const char *P = "participants_registered";
    assert_int_equal(num(f, "2026-01", P, "", ""), 3);
    assert_int_equal(num(f, "2026-01", P, "sex", "FEMALE"), 2);
    assert_int_equal(num(f, "2026-01", P, "sex", "MALE"), 1);
    assert_int_equal(num(f, "2026-01", P, "category", "RETURNEE"), 2);
    assert_int_equal(num(f, "2026-01", P, "age_band", "25_39"), 2);
    assert_int_equal(num(f, "2026-01", P, "sex,age_band", "FEMALE,25_39"), 1);
    assert_int_equal(num(f, "2026-01", P, "sex,age_band", "MALE,25_39"), 1);
    assert_int_equal(num(f, "2026-01", P, "category,sex", "MIGRANT_FAMILY,FEMALE"), 1);
    assert_int_equal(num(f, "2026-01", P, "caste_group", "UNKNOWN"), 3);
    assert_int_equal(num(f, "2026-01", P, "disability", "UNKNOWN"), 3);
    /* Zero cells are omitted: nobody is 15_24 and male. */
    assert_false(cell(f, "2026-01", P, "sex,age_band", "MALE,15_24").found);
    assert_int_equal(num(f, "2026-Q1", P, "", ""), 3);
    assert_int_equal(num(f, "2026", P, "", ""), 3);
    /* 2026-01-05..31 is Poush 21 .. Magh 17, 2082: two BS months, one trimester (T2). */
    assert_int_equal(num(f, "BS2082-09", P, "", "") + num(f, "BS2082-10", P, "", ""), 3);
    assert_int_equal(num(f, "FY2082/83-T2", P, "", ""), 3);
    assert_int_equal(num(f, "FY2082/83", P, "", ""), 3);
    assert_false(cell(f, "2026-02", P, "", "").found);
}

static void test_rollup_age_bands_as_carried_at_boundaries(void **state)
{
    fx *f = *state;
    /* The node computes the band from the exact birth date; the hub keeps what it carries:
     * a person who turned 15 on the registration day carries 15_24, one a day short 0_14. */
    person(f, 1, D(2026, 3, 1), RETURNEE, MALE, REINT__V1__AGE_BAND__AGE_BAND_0_14);
    person(f, 2, D(2026, 3, 1), RETURNEE, MALE, AGE_15_24);
    person(f, 3, D(2026, 3, 1), RETURNEE, MALE, REINT__V1__AGE_BAND__AGE_BAND_60_PLUS);
    person(f, 4, D(2026, 3, 1), RETURNEE, MALE, REINT__V1__AGE_BAND__AGE_BAND_UNKNOWN);
    person(f, 5, D(2026, 3, 1), RETURNEE, MALE, 42); /* a band a newer node may send */
    const char *P = "participants_registered";
    assert_int_equal(num(f, "2026-03", P, "age_band", "0_14"), 1);
    assert_int_equal(num(f, "2026-03", P, "age_band", "15_24"), 1);
    assert_int_equal(num(f, "2026-03", P, "age_band", "60_PLUS"), 1);
    assert_int_equal(num(f, "2026-03", P, "age_band", "UNKNOWN"), 2);
    assert_int_equal(num(f, "2026-03", P, "sex,age_band", "MALE,UNKNOWN"), 2);
}

static void test_rollup_shrawan_1_starts_a_fiscal_year_and_trimester(void **state)
{
    fx *f = *state;
    const char *P = "participants_registered";
    person(f, 1, D(2025, 7, 16), RETURNEE, FEMALE, AGE_25_39);  /* Asar 32, 2082 */
    person(f, 2, D(2025, 7, 17), RETURNEE, FEMALE, AGE_25_39);  /* Shrawan 1, 2082 */
    person(f, 3, D(2025, 11, 16), RETURNEE, FEMALE, AGE_25_39); /* Kartik 30 */
    person(f, 4, D(2025, 11, 17), RETURNEE, FEMALE, AGE_25_39); /* Mangsir 1 */
    assert_int_equal(num(f, "BS2082-03", P, "", ""), 1);
    assert_int_equal(num(f, "BS2082-04", P, "", ""), 1);
    assert_int_equal(num(f, "BS2082-07", P, "", ""), 1);
    assert_int_equal(num(f, "BS2082-08", P, "", ""), 1);
    assert_int_equal(num(f, "FY2081/82-T3", P, "", ""), 1);
    assert_int_equal(num(f, "FY2081/82", P, "", ""), 1);
    assert_int_equal(num(f, "FY2082/83-T1", P, "", ""), 2);
    assert_int_equal(num(f, "FY2082/83-T2", P, "", ""), 1);
    assert_int_equal(num(f, "FY2082/83", P, "", ""), 3);
    /* The Gregorian calendar puts the first two in one month. */
    assert_int_equal(num(f, "2025-07", P, "", ""), 2);
    assert_int_equal(num(f, "2025-Q3", P, "", ""), 2);
    assert_int_equal(num(f, "2025", P, "", ""), 4);
}

static void test_rollup_distinct_persons_do_not_add_across_months_or_groups(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 2), RETURNEE, MALE, AGE_25_39);
    delivered(f, 10, 1, COUNSEL, D(2026, 1, 10));
    delivered(f, 11, 1, PSYCHO, D(2026, 2, 10));
    delivered(f, 12, 1, COUNSEL, D(2026, 2, 11));
    delivered(f, 13, 2, COUNSEL, D(2026, 2, 12));
    const char *S = "persons_served";
    assert_int_equal(num(f, "2026-01", S, "", ""), 1);
    assert_int_equal(num(f, "2026-02", S, "", ""), 2);
    /* Person 1 is served in both months and in two types: once in the quarter. */
    assert_int_equal(num(f, "2026-Q1", S, "", ""), 2);
    assert_int_equal(num(f, "2026-Q1", S, "service_type", "RETURN_COUNSELLING"), 2);
    assert_int_equal(num(f, "2026-Q1", S, "service_type", "PSYCHOSOCIAL_SUPPORT"), 1);
    assert_int_equal(num(f, "2026-Q1", S, "sex", "FEMALE"), 1);
    assert_int_equal(num(f, "2026-Q1", S, "service_type,sex", "RETURN_COUNSELLING,FEMALE"), 1);
    assert_int_equal(num(f, "2026-02", S, "service_type", "RETURN_COUNSELLING"), 2);
    assert_int_equal(num(f, "2026-Q1", S, "programme", "M4SD"), 2);
    assert_int_equal(num(f, "2026-Q1", "services_delivered", "", ""), 4);
    assert_int_equal(num(f, "2026-Q1", "services_delivered", "sex", "FEMALE"), 3);
    assert_int_equal(num(f, "2026-Q1", "services_delivered", "provider", "MRC"), 4);
    assert_int_equal(cell(f, "2026-Q1", S, "", "").contributors, 2);
}

static void test_rollup_correction_moves_counts_in_every_dependent_cell(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    delivered(f, 10, 1, COUNSEL, D(2026, 5, 10));
    assert_int_equal(num(f, "2026-01", "participants_registered", "sex", "FEMALE"), 1);
    assert_int_equal(num(f, "2026-05", "persons_served", "sex", "FEMALE"), 1);
    /* The clerk corrects the sex and the registration day (moving it to February). */
    person(f, 1, D(2026, 2, 3), RETURNEE, MALE, AGE_25_39);
    assert_false(cell(f, "2026-01", "participants_registered", "", "").found);
    assert_int_equal(num(f, "2026-02", "participants_registered", "sex", "MALE"), 1);
    assert_int_equal(num(f, "2026-Q1", "participants_registered", "", ""), 1);
    assert_false(cell(f, "2026-05", "persons_served", "sex", "FEMALE").found);
    assert_int_equal(num(f, "2026-05", "persons_served", "sex", "MALE"), 1);
    /* A service moved to another month leaves the first. */
    delivered(f, 10, 1, COUNSEL, D(2026, 6, 1));
    assert_false(cell(f, "2026-05", "services_delivered", "", "").found);
    assert_int_equal(num(f, "2026-06", "services_delivered", "", ""), 1);
    assert_int_equal(num(f, "2026-Q2", "services_delivered", "", ""), 1);
}

static void test_rollup_tombstone_removes_and_orphans_count_as_unknown(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    delivered(f, 10, 1, COUNSEL, D(2026, 1, 10));
    delivered(f, 11, 99, COUNSEL, D(2026, 1, 11)); /* person 99 never arrived */
    assert_int_equal(num(f, "2026-01", "persons_served", "sex", "FEMALE"), 1);
    assert_int_equal(num(f, "2026-01", "persons_served", "sex", "UNKNOWN"), 1);
    tombstone(f, 1, K_PERSON);
    assert_false(cell(f, "2026-01", "participants_registered", "", "").found);
    assert_int_equal(num(f, "2026-01", "persons_served", "", ""), 2);
    assert_int_equal(num(f, "2026-01", "persons_served", "sex", "UNKNOWN"), 2);
    assert_false(cell(f, "2026-01", "persons_served", "sex", "FEMALE").found);
    tombstone(f, 10, K_SERVICE);
    assert_int_equal(num(f, "2026-01", "services_delivered", "", ""), 1);
    /* A replayed older version does not bring the person back. */
    uint8_t id[16];
    idn(id, 1);
    f->version = 2; /* older than the tombstone */
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    assert_false(cell(f, "2026-01", "participants_registered", "", "").found);
    f->version = 1000;
}

static void test_rollup_returnees_and_remigration_ratio(void **state)
{
    fx *f = *state;
    const int NONE = REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_NONE;
    returnee(f, 1, D(2026, 4, 1), FEMALE, "QA", NONE);
    returnee(f, 2, D(2026, 4, 2), FEMALE, "MY",
             REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_UNDECIDED);
    returnee(f, 3, D(2026, 4, 3), MALE, "QA",
             REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_PLANNING);
    returnee(f, 4, D(2026, 4, 4), MALE, "", 0); /* intention unknown: out of the ratio */
    returnee(f, 5, D(2026, 4, 5), MALE, "AE", NONE);
    person(f, 6, D(2026, 4, 6), FAMILY, MALE, AGE_25_39); /* not a returnee */
    const char *R = "returnees_registered";
    assert_int_equal(num(f, "2026-04", R, "", ""), 5);
    assert_int_equal(num(f, "2026-04", R, "destination_country", "QA"), 2);
    assert_int_equal(num(f, "2026-04", R, "destination_country", "UNKNOWN"), 1);
    assert_int_equal(num(f, "2026-04", R, "sex,age_band", "MALE,25_39"), 3);
    cellv c = cell(f, "2026-04", "no_remigration_intention", "", "");
    assert_int_equal(c.num, 2);
    assert_int_equal(c.den, 4);
    c = cell(f, "2026-04", "no_remigration_intention", "sex", "FEMALE");
    assert_int_equal(c.num, 1);
    assert_int_equal(c.den, 2);
    /* A ratio with a zero numerator is kept: 0 of 1. */
    returnee(f, 7, D(2026, 5, 1), MALE, "QA",
             REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_PLANNING);
    c = cell(f, "2026-05", "no_remigration_intention", "", "");
    assert_true(c.found);
    assert_int_equal(c.num, 0);
    assert_int_equal(c.den, 1);
}

static void test_rollup_enterprise_ratios_and_jobs(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 2), RETURNEE, MALE, AGE_25_39);
    enterprise(f, 20, 1, RETAIL, D(2026, 1, 15), 3, ACTIVE);
    enterprise(f, 21, 2, RETAIL, D(2026, 1, 16), -1, CLOSED); /* employees unknown */
    enterprise(f, 22, 2, LIVESTOCK, D(2026, 2, 1), 2, ACTIVE);
    /* Person 1's loan is delivered in March: after January's end, before Q1's. */
    delivered(f, 30, 1, LOAN, D(2026, 3, 10));
    cellv c = cell(f, "2026-01", "enterprises_active", "", "");
    assert_int_equal(c.num, 1);
    assert_int_equal(c.den, 2);
    c = cell(f, "2026-Q1", "enterprises_active", "sector", "RETAIL");
    assert_int_equal(c.num, 1);
    assert_int_equal(c.den, 2);
    c = cell(f, "2026-01", "enterprises_with_loan", "", "");
    assert_true(c.found);
    assert_int_equal(c.num, 0);
    assert_int_equal(c.den, 2);
    c = cell(f, "2026-Q1", "enterprises_with_loan", "", "");
    assert_int_equal(c.num, 1);
    assert_int_equal(c.den, 3);
    assert_int_equal(num(f, "2026-Q1", "enterprises_supported", "", ""), 3);
    assert_int_equal(num(f, "2026-Q1", "enterprises_supported", "owner_sex", "MALE"), 2);
    assert_int_equal(
        num(f, "2026-Q1", "enterprises_supported", "owner_sex,owner_category", "FEMALE,RETURNEE"),
        1);
    assert_int_equal(num(f, "2026-Q1", "enterprises_supported", "action", "STARTED"), 3);
    c = cell(f, "2026-Q1", "jobs_created", "", "");
    assert_int_equal(c.num, 5);
    assert_int_equal(c.contributors, 2); /* the enterprise of unknown size is left out */
    assert_int_equal(num(f, "2026-01", "jobs_created", "sector", "RETAIL"), 3);
    /* The loan moved into January: January's ratio follows. */
    delivered(f, 30, 1, LOAN, D(2026, 1, 20));
    assert_int_equal(cell(f, "2026-01", "enterprises_with_loan", "", "").num, 1);
    /* An enterprise closes: its status now, since records carry no status history. */
    enterprise(f, 20, 1, RETAIL, D(2026, 1, 15), 3, CLOSED);
    c = cell(f, "2026-01", "enterprises_active", "", "");
    assert_int_equal(c.num, 0);
    assert_int_equal(c.den, 2);
}

/* Persons 1 (female) and 2 (male), returnees registered on 2026-01-02. */
static void two_persons(fx *f)
{
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 2), RETURNEE, MALE, AGE_25_39);
}

/* A sum's cell: its value, contributors, two largest contributions and key. */
static void assert_sum_cell(cellv c, int64_t num, int64_t contributors, int64_t top1, int64_t top2,
                            uint32_t ckey)
{
    assert_int_equal(c.num, num);
    assert_int_equal(c.contributors, contributors);
    assert_int_equal(c.top1, top1);
    assert_int_equal(c.top2, top2);
    assert_int_equal(c.ckey, ckey);
}

static void test_rollup_seed_funding_sums_with_person_contributors(void **state)
{
    fx *f = *state;
    two_persons(f);
    service(f, 10, 1, SEED, DEL, D(2026, 2, 1), RERP, 10000);
    service(f, 11, 1, SEED, DEL, D(2026, 2, 2), RERP, 5000);
    service(f, 12, 2, SEED, DEL, D(2026, 2, 3), RERP, 20000);
    service(f, 13, 2, SEED, DEL, D(2026, 2, 4), RERP, -1); /* amount unknown */
    service(f, 14, 2, SEED, REINT__V1__SERVICE_STATUS__SERVICE_STATUS_REFERRED, D(2026, 2, 4), RERP,
            7000); /* only referred */
    cellv c = cell(f, "2026-02", "seed_funding_npr", "", "");
    /* A contribution is all a person adds to the cell; the key is of the contributions. */
    assert_sum_cell(c, 35000, 2, 20000, 15000,
                    (uint32_t)(contribution_key(1, 15000) + contribution_key(2, 20000)));
    /* A corrected amount changes the cell's key, not only its value. */
    service(f, 12, 2, SEED, DEL, D(2026, 2, 3), RERP, 21000);
    c = cell(f, "2026-02", "seed_funding_npr", "", "");
    assert_int_equal(c.num, 36000);
    assert_int_equal(c.ckey, (uint32_t)(contribution_key(1, 15000) + contribution_key(2, 21000)));
    service(f, 12, 2, SEED, DEL, D(2026, 2, 3), RERP, 20000);
    assert_int_equal(num(f, "2026-02", "seed_funding_npr", "sex", "FEMALE"), 15000);
    assert_int_equal(num(f, "2026-02", "seed_funding_npr", "programme", "RERP"), 35000);
    assert_int_equal(num(f, "2026-02", "seed_funding_npr", "category", "RETURNEE"), 35000);
    assert_int_equal(num(f, "2026-02", "services_delivered", "service_type", "SEED_FUNDING"), 4);
}

/* jobs_created counts owners: one owner of two enterprises is one contributor adding both;
 * an owner whose enterprises employ nobody adds nothing and is no contributor. A ratio's cell
 * carries the key of its numerator's contributors beside its denominator's. */
static void test_rollup_jobs_by_owner_and_ratio_numerator_key(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 2), RETURNEE, MALE, AGE_25_39);
    person(f, 3, D(2026, 1, 2), RETURNEE, MALE, AGE_25_39);
    enterprise(f, 20, 1, RETAIL, D(2026, 1, 15), 3, ACTIVE);
    enterprise(f, 21, 1, LIVESTOCK, D(2026, 1, 16), 4, CLOSED);
    enterprise(f, 22, 2, LIVESTOCK, D(2026, 1, 17), 5, ACTIVE);
    enterprise(f, 23, 3, RETAIL, D(2026, 1, 18), 0, ACTIVE);
    cellv c = cell(f, "2026-01", "jobs_created", "", "");
    assert_sum_cell(c, 12, 2, 7, 5, (uint32_t)(contribution_key(1, 7) + contribution_key(2, 5)));
    c = cell(f, "2026-01", "jobs_created", "sector", "LIVESTOCK");
    assert_int_equal(c.num, 9);
    assert_int_equal(c.contributors, 2);
    assert_int_equal(c.top1, 5);
    assert_int_equal(c.top2, 4);
    c = cell(f, "2026-01", "jobs_created", "sector", "RETAIL");
    assert_int_equal(c.contributors, 1);
    assert_int_equal(c.top1, 3);
    assert_int_equal(c.top2, 0);
    /* Enterprises still count enterprises, and their key is the enterprises'. */
    uint8_t e[4][16];
    for (int i = 0; i < 4; i++)
        idn(e[i], 20 + i);
    c = cell(f, "2026-01", "enterprises_active", "", "");
    assert_int_equal(c.num, 3);
    assert_int_equal(c.den, 4);
    uint32_t all = rollup_contributor_key(e[0]) + rollup_contributor_key(e[1]) +
                   rollup_contributor_key(e[2]) + rollup_contributor_key(e[3]);
    assert_int_equal(c.ckey, all);
    assert_int_equal(c.nkey, all - rollup_contributor_key(e[1]));
    assert_int_equal(cell(f, "2026-01", "enterprises_supported", "", "").ckey, all);
    assert_int_equal(cell(f, "2026-01", "enterprises_with_loan", "", "").nkey, 0);
}

/* The records of two persons interleave in time (the engine reads a period's services and
 * enterprises grouped by person and owner, whatever their days): each person still counts
 * once per cell, and each sum's contribution is all that person adds to the cell. */
/* 1 when the snapshot of MUN for period waits to be recomputed, 0 when not, -1 when absent. */
static int dirty_of(fx *f, const char *period)
{
    sqlite3_stmt *st = store_prepare(
        f->db, "SELECT dirty FROM rollup_snapshots WHERE municipality=?1 AND period=?2");
    assert_non_null(st);
    sqlite3_bind_int64(st, 1, MUN);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    int d = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return d;
}

/* A delivered loan changes enterprises_with_loan only in the periods of the owner's
 * enterprises whose last month is the loan's month or later: those are marked even where the
 * loan's own periods do not hold them, and an old enterprise whose periods all ended before
 * the loan is not recomputed (every enterprise of the owner was, before). */
static void test_rollup_loan_marks_only_the_enterprise_periods_it_changes(void **state)
{
    fx *f = *state;
    person(f, 1, D(2024, 1, 5), RETURNEE, FEMALE, AGE_25_39);
    enterprise(f, 20, 1, RETAIL, D(2024, 3, 10), 2, ACTIVE); /* 2024-03, Falgun 2080 */
    enterprise(f, 21, 1, RETAIL, D(2026, 3, 15), 1, ACTIVE); /* 2026-03, BS2082-12 */
    assert_int_equal(cell(f, "2026-03", "enterprises_with_loan", "", "").num, 0);
    put_no_refresh = 1;
    delivered(f, 30, 1, LOAN, D(2026, 1, 20)); /* 2026-01, BS2082-10 */
    put_no_refresh = 0;
    static const char *const old[] = {"2024",      "2024-Q1",      "2024-03",
                                      "BS2080-11", "FY2080/81-T2", "FY2080/81"};
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++)
        assert_int_equal(dirty_of(f, old[i]), 0);
    assert_int_equal(dirty_of(f, "2026-03"), 1);
    assert_int_equal(dirty_of(f, "BS2082-12"), 1);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    assert_int_equal(cell(f, "2026-03", "enterprises_with_loan", "", "").num, 1);
    assert_int_equal(cell(f, "BS2082-12", "enterprises_with_loan", "", "").num, 1);
    cellv c = cell(f, "2024-03", "enterprises_with_loan", "", "");
    assert_int_equal(c.num, 0);
    assert_int_equal(c.den, 1);
    /* An earlier loan, February 2024: now the old enterprise's March counts one too, and
     * the later enterprise, counted with either loan, is not recomputed. */
    put_no_refresh = 1;
    delivered(f, 31, 1, LOAN, D(2024, 2, 10));
    put_no_refresh = 0;
    assert_int_equal(dirty_of(f, "2024-03"), 1);
    assert_int_equal(dirty_of(f, "2026-03"), 0);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    assert_int_equal(cell(f, "2024-03", "enterprises_with_loan", "", "").num, 1);
    assert_int_equal(cell(f, "2024", "enterprises_with_loan", "", "").num, 1);
    assert_int_equal(cell(f, "2026-03", "enterprises_with_loan", "", "").num, 1);
    /* Corrected to referrals: the first loan is January 2026's again, then none. */
    referred(f, 31, 1, LOAN, D(2024, 2, 10));
    assert_int_equal(cell(f, "2024-03", "enterprises_with_loan", "", "").num, 0);
    assert_int_equal(cell(f, "2026-03", "enterprises_with_loan", "", "").num, 1);
    referred(f, 30, 1, LOAN, D(2026, 1, 20));
    assert_int_equal(cell(f, "2026-03", "enterprises_with_loan", "", "").num, 0);
}

static void test_rollup_interleaved_contributors_count_once(void **state)
{
    fx *f = *state;
    two_persons(f);
    delivered(f, 10, 2, COUNSEL, D(2026, 1, 5));
    delivered(f, 11, 1, COUNSEL, D(2026, 1, 6));
    service(f, 12, 2, SEED, DEL, D(2026, 1, 7), RERP, 5000);
    service(f, 13, 1, SEED, DEL, D(2026, 1, 8), RERP, 3000);
    service(f, 14, 2, SEED, DEL, D(2026, 2, 9), RERP, 1000);
    delivered(f, 15, 1, BANK, D(2026, 1, 10));
    delivered(f, 16, 2, BANK, D(2026, 1, 11));
    delivered(f, 17, 1, BANK, D(2026, 2, 12));
    enterprise(f, 20, 2, RETAIL, D(2026, 1, 13), 2, ACTIVE);
    enterprise(f, 21, 1, RETAIL, D(2026, 1, 14), 3, ACTIVE);
    enterprise(f, 22, 2, RETAIL, D(2026, 2, 15), 4, ACTIVE);
    const char *S = "persons_served";
    assert_int_equal(num(f, "2026-01", S, "", ""), 2);
    assert_int_equal(num(f, "2026-Q1", S, "", ""), 2);
    assert_int_equal(num(f, "2026-Q1", S, "service_type", "SEED_FUNDING"), 2);
    assert_int_equal(num(f, "2026-Q1", S, "sex", "MALE"), 1);
    assert_int_equal(num(f, "2026-Q1", "bank_accounts_opened", "", ""), 2);
    assert_sum_cell(cell(f, "2026-Q1", "seed_funding_npr", "", ""), 9000, 2, 6000, 3000,
                    (uint32_t)(contribution_key(1, 3000) + contribution_key(2, 6000)));
    assert_sum_cell(cell(f, "2026-Q1", "jobs_created", "", ""), 9, 2, 6, 3,
                    (uint32_t)(contribution_key(1, 3) + contribution_key(2, 6)));
    cellv c = cell(f, "2026-01", "jobs_created", "", "");
    assert_int_equal(c.num, 5);
    assert_int_equal(c.contributors, 2);
}

static void test_rollup_bank_accounts_count_persons_once(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    delivered(f, 10, 1, BANK, D(2026, 1, 5));
    delivered(f, 11, 1, BANK, D(2026, 1, 6));
    referred(f, 12, 1, BANK, D(2026, 1, 7));
    assert_int_equal(num(f, "2026-01", "bank_accounts_opened", "", ""), 1);
    assert_int_equal(num(f, "2026-01", "bank_accounts_opened", "sex", "FEMALE"), 1);
    assert_int_equal(num(f, "2026-01", "services_delivered", "", ""), 2);
}

/* 2026-01-10 is BS 2082-09-26, in Poush (2025-12-16 .. 2026-01-14); the three full BS months
 * after Poush end with Chaitra on 2026-04-13, and Baisakh 2083 begins on 2026-04-14: a referral
 * of Poush is pending from that day on (a day in Nepal) unless delivered by then. */
static void test_rollup_referrals_wait_three_full_bs_months_as_the_clock_moves(void **state)
{
    fx *f = *state;
    int32_t d = D(2026, 1, 10), end = D(2026, 4, 13), next = D(2026, 4, 14);
    const char *R = "referrals_pending";
    assert_int_equal(rollup_daily(f->r, d, NULL), 0);
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    referred(f, 10, 1, PSYCHO, d);
    referred(f, 11, 1, LEGAL, d);
    assert_int_equal(rollup_daily(f->r, end, NULL), 0);
    assert_false(cell(f, "2026-01", R, "", "").found);
    assert_int_equal(rollup_daily(f->r, next, NULL), 0);
    assert_int_equal(num(f, "2026-01", R, "", ""), 2);
    assert_int_equal(num(f, "2026-01", R, "service_type", "LEGAL_AID"), 1);
    assert_int_equal(num(f, "BS2082-09", R, "", ""), 2);
    assert_int_equal(num(f, "FY2082/83-T2", R, "", ""), 2);
    /* A delivery in Baisakh is too late; one on the last day of Chaitra fulfils the referral,
     * and so does one earlier in the referral's own month (months, not days, count). */
    delivered(f, 12, 1, PSYCHO, next);
    assert_int_equal(num(f, "2026-01", R, "service_type", "PSYCHOSOCIAL_SUPPORT"), 1);
    delivered(f, 13, 1, PSYCHO, end);
    assert_false(cell(f, "2026-01", R, "service_type", "PSYCHOSOCIAL_SUPPORT").found);
    referred(f, 15, 1, BANK, d);
    assert_int_equal(num(f, "2026-01", R, "service_type", "BANK_ACCOUNT"), 1);
    delivered(f, 16, 1, BANK, D(2025, 12, 16));
    assert_false(cell(f, "2026-01", R, "service_type", "BANK_ACCOUNT").found);
    /* The referral corrected to DELIVERED is no longer pending. */
    delivered(f, 11, 1, LEGAL, d);
    assert_false(cell(f, "2026-01", R, "", "").found);
    /* The clock moving back reopens nothing that was not pending before. */
    referred(f, 14, 1, COUNSEL, d);
    assert_int_equal(num(f, "2026-01", R, "", ""), 1);
    assert_int_equal(rollup_daily(f->r, d + 50, NULL), 0);
    assert_false(cell(f, "2026-01", R, "", "").found);
    uint8_t sid[16];
    idn(sid, 14);
    assert_int_equal(rollup_daily(f->r, d + 200, NULL), 0);
    assert_int_equal(cell(f, "2026-01", R, "", "").ckey, rollup_contributor_key(sid));
}

static void test_rollup_services_unavailable_uses_latest_availability(void **state)
{
    fx *f = *state;
    const char *U = "services_unavailable";
    const int NGO = REINT__V1__PROVIDER__PROVIDER_NGO;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    referred(f, 10, 1, LEGAL, D(2026, 2, 1));
    referred(f, 11, 1, PSYCHO, D(2026, 2, 2));
    referred(f, 12, 1, PSYCHO, D(2026, 3, 2));
    assert_int_equal(num(f, "2026-02", U, "", ""), 2);
    assert_int_equal(num(f, "2026-Q1", U, "", ""), 2); /* service types, not referrals */
    availability(f, 50, LEGAL, NGO, 1, D(2026, 1, 1));
    assert_int_equal(num(f, "2026-02", U, "", ""), 1);
    assert_int_equal(num(f, "2026-02", U, "service_type", "PSYCHOSOCIAL_SUPPORT"), 1);
    assert_false(cell(f, "2026-02", U, "service_type", "LEGAL_AID").found);
    /* A later row for the same service and provider says it stopped. */
    availability(f, 51, LEGAL, NGO, 0, D(2026, 2, 15));
    assert_int_equal(num(f, "2026-02", U, "service_type", "LEGAL_AID"), 1);
    availability(f, 52, PSYCHO, REINT__V1__PROVIDER__PROVIDER_HEALTH_FACILITY, 1, D(2026, 2, 1));
    assert_false(cell(f, "2026-03", U, "", "").found);
    assert_int_equal(num(f, "2026-02", U, "", ""), 1);
}

/* Enrols municipality mun as the ingest does: first seen an hour into first_day, and the
 * calendar of its node's Hello (0 unknown, 1 BS, 2 AD). */
static void enrol(fx *f, uint32_t mun, int32_t first_day, int calendar)
{
    sqlite3_stmt *st = store_prepare(
        f->db, "INSERT INTO nodes(municipality, incarnation, acked_seq, acked_version,"
               " resend_pending, first_seen_ms, last_hello_ms, calendar)"
               " VALUES(?1, x'00', 0, 0, 0, ?2, ?2, ?3) ON CONFLICT(municipality) DO UPDATE SET"
               " first_seen_ms=excluded.first_seen_ms, calendar=excluded.calendar");
    assert_non_null(st);
    sqlite3_bind_int64(st, 1, mun);
    sqlite3_bind_int64(st, 2, (int64_t)first_day * 86400000 + 3600000);
    sqlite3_bind_int(st, 3, calendar);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* Checks reporting_completeness and reporting_timeliness of (mun, period): complete / den and
 * timely / den, or no cell at all when den is 0. */
static void expect_reporting(fx *f, uint32_t mun, const char *period, int64_t complete,
                             int64_t timely, int64_t den)
{
    cellv c = cell_in(f, mun, period, "reporting_completeness", "", "");
    cellv t = cell_in(f, mun, period, "reporting_timeliness", "", "");
    if (c.found != (den > 0) || t.found != (den > 0) || c.num != complete || c.den != den ||
        t.num != timely || t.den != den) {
        print_error("%u %s: completeness %lld/%lld (found %d), timeliness %lld/%lld (found %d);"
                    " expected %lld/%lld and %lld/%lld\n",
                    mun, period, (long long)c.num, (long long)c.den, c.found, (long long)t.num,
                    (long long)t.den, t.found, (long long)complete, (long long)den,
                    (long long)timely, (long long)den);
        fail();
    }
}

/* Calendar facts for the reporting tests, from data/bikram_sambat.csv's row
 * "2082,31,31,32,31,31,31,30,29,30,29,30,30,365,2025-04-14" (BS 2082 starts on 2025-04-14,
 * months of 31, 31, 32, 31, 31, 31, 30, 29, 30, 29, 30, 30 days), each month's Gregorian days
 * added up by hand:
 *   BS2082-03 Asar     2025-06-15 .. 2025-07-16     BS2082-07 Kartik  2025-10-18 .. 2025-11-16
 *   BS2082-04 Shrawan  2025-07-17 .. 2025-08-16     BS2082-08 Mangsir 2025-11-17 .. 2025-12-15
 *   BS2082-05 Bhadra   2025-08-17 .. 2025-09-16     BS2082-09 Poush   2025-12-16 .. 2026-01-14
 *   BS2082-06 Asoj     2025-09-17 .. 2025-10-17     BS2082-10 Magh    2026-01-15 .. 2026-02-12
 * FY2081/82 ends with BS2082-03; FY2082/83-T1 is BS2082-04..07, T2 BS2082-08..11.
 *
 * The province has a BS node (10703), an AD node (10704) and a node of unknown calendar
 * (10705, counted as BS), all first seen on 2025-07-17; today is 2026-01-20. */
#define BS_NODE      10703
#define AD_NODE      10704
#define UNKNOWN_NODE 10705

static void reporting_province(fx *f)
{
    assert_int_equal(rollup_set_today(f->r, D(2026, 1, 20)), 0);
    enrol(f, BS_NODE, D(2025, 7, 17), REINT__V1__CALENDAR__CALENDAR_BS);
    enrol(f, AD_NODE, D(2025, 7, 17), REINT__V1__CALENDAR__CALENDAR_AD);
    enrol(f, UNKNOWN_NODE, D(2025, 7, 17), REINT__V1__CALENDAR__CALENDAR_UNKNOWN);
    /* The BS node (and the same from the node of unknown calendar) closes BS months. */
    for (uint32_t m = BS_NODE; m <= UNKNOWN_NODE; m += UNKNOWN_NODE - BS_NODE) {
        put_mun = m;
        month_close(f, 60, 1, 2082, 3, D(2025, 7, 20));  /* end + 4: on time */
        month_close(f, 61, 1, 2082, 4, D(2025, 8, 20));  /* end + 4: on time */
        month_close(f, 62, 1, 2082, 5, D(2025, 9, 30));  /* end + 14: on time */
        month_close(f, 63, 1, 2082, 6, D(2025, 11, 10)); /* end + 24: late */
        month_close(f, 64, 1, 2082, 8, D(2025, 12, 30)); /* end + 15: on time, the last day */
        /* A Gregorian close is not of its calendar: it counts nowhere. */
        month_close(f, 65, 0, 2025, 10, D(2025, 11, 1));
    }
    /* The AD node closes Gregorian months. */
    put_mun = AD_NODE;
    month_close(f, 60, 0, 2025, 7, D(2025, 8, 5));    /* end + 5: on time */
    month_close(f, 61, 0, 2025, 8, D(2025, 9, 16));   /* end + 16: late */
    month_close(f, 62, 0, 2025, 9, D(2025, 10, 10));  /* end + 10: on time */
    month_close(f, 63, 0, 2025, 10, D(2025, 11, 15)); /* end + 15: on time */
    month_close(f, 64, 0, 2025, 12, D(2026, 1, 5));   /* end + 5: on time */
    month_close(f, 65, 1, 2082, 7, D(2025, 11, 20));  /* BS: not its calendar */
    put_mun = MUN;
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
}

/* A month of the node's own calendar is due when it ended before today and on or after the
 * first-seen day, complete when closed, timely when first closed by its end + 15 days; a
 * month of the other calendar stands as every own-calendar month overlapping it does; longer
 * periods count their unit months (Gregorian months in Gregorian quarters and years, BS months
 * in fiscal trimesters and years). */
static void test_rollup_reporting_of_a_bs_node_in_every_period_kind(void **state)
{
    fx *f = *state;
    reporting_province(f);
    for (uint32_t m = BS_NODE; m <= UNKNOWN_NODE; m += UNKNOWN_NODE - BS_NODE) {
        /* BS months: 03 was closed though it ended before the node was first seen (a closed
         * month counts); 07 and 09 are due and open; 10 has not ended. */
        expect_reporting(f, m, "BS2082-02", 0, 0, 0);
        expect_reporting(f, m, "BS2082-03", 1, 1, 1);
        expect_reporting(f, m, "BS2082-04", 1, 1, 1);
        expect_reporting(f, m, "BS2082-05", 1, 1, 1);
        expect_reporting(f, m, "BS2082-06", 1, 0, 1);
        expect_reporting(f, m, "BS2082-07", 0, 0, 1);
        expect_reporting(f, m, "BS2082-08", 1, 1, 1);
        expect_reporting(f, m, "BS2082-09", 0, 0, 1);
        expect_reporting(f, m, "BS2082-10", 0, 0, 0);
        /* Fiscal periods: T1 = 04..07 (3 closed, 2 on time), T2 = 08, 09 due of 08..11. */
        expect_reporting(f, m, "FY2081/82", 1, 1, 1);
        expect_reporting(f, m, "FY2082/83-T1", 3, 2, 4);
        expect_reporting(f, m, "FY2082/83-T2", 1, 1, 2);
        expect_reporting(f, m, "FY2082/83-T3", 0, 0, 0);
        expect_reporting(f, m, "FY2082/83", 4, 3, 6);
        /* Gregorian months stand as their BS months: July = 03 + 04, August = 04 + 05,
         * September = 05 + 06 (06 late), October = 06 + 07 (07 open; the Gregorian close of
         * October does not count), November = 07 + 08, December = 08 + 09 (09 open); January
         * = 09 + 10 is not due (10 has not ended); June = 02 + 03 is not (02 ended before the
         * node was first seen). */
        expect_reporting(f, m, "2025-06", 0, 0, 0);
        expect_reporting(f, m, "2025-07", 1, 1, 1);
        expect_reporting(f, m, "2025-08", 1, 1, 1);
        expect_reporting(f, m, "2025-09", 1, 0, 1);
        expect_reporting(f, m, "2025-10", 0, 0, 1);
        expect_reporting(f, m, "2025-11", 0, 0, 1);
        expect_reporting(f, m, "2025-12", 0, 0, 1);
        expect_reporting(f, m, "2026-01", 0, 0, 0);
        /* Quarters and years count those Gregorian months. */
        expect_reporting(f, m, "2025-Q2", 0, 0, 0);
        expect_reporting(f, m, "2025-Q3", 3, 2, 3);
        expect_reporting(f, m, "2025-Q4", 0, 0, 3);
        expect_reporting(f, m, "2025", 3, 2, 6);
        expect_reporting(f, m, "2026", 0, 0, 0);
    }
}

static void test_rollup_reporting_of_an_ad_node_in_every_period_kind(void **state)
{
    fx *f = *state;
    reporting_province(f);
    const uint32_t m = AD_NODE;
    /* Gregorian months: July ended after the first-seen day, so it is due; November is open;
     * January has not ended; June ended before the node was first seen. */
    expect_reporting(f, m, "2025-06", 0, 0, 0);
    expect_reporting(f, m, "2025-07", 1, 1, 1);
    expect_reporting(f, m, "2025-08", 1, 0, 1);
    expect_reporting(f, m, "2025-09", 1, 1, 1);
    expect_reporting(f, m, "2025-10", 1, 1, 1);
    expect_reporting(f, m, "2025-11", 0, 0, 1);
    expect_reporting(f, m, "2025-12", 1, 1, 1);
    expect_reporting(f, m, "2026-01", 0, 0, 0);
    expect_reporting(f, m, "2025-Q3", 3, 2, 3);
    expect_reporting(f, m, "2025-Q4", 2, 2, 3);
    expect_reporting(f, m, "2025", 5, 4, 6);
    expect_reporting(f, m, "2026-Q1", 0, 0, 0);
    /* BS months stand as their Gregorian months: 03 = June + July (June never due), 04 =
     * July + August (August late), 05 = August + September, 06 = September + October, 07 =
     * October + November (its own BS close does not count), 08 = November + December, 09 =
     * December + January (January not due). */
    expect_reporting(f, m, "BS2082-03", 0, 0, 0);
    expect_reporting(f, m, "BS2082-04", 1, 0, 1);
    expect_reporting(f, m, "BS2082-05", 1, 0, 1);
    expect_reporting(f, m, "BS2082-06", 1, 1, 1);
    expect_reporting(f, m, "BS2082-07", 0, 0, 1);
    expect_reporting(f, m, "BS2082-08", 0, 0, 1);
    expect_reporting(f, m, "BS2082-09", 0, 0, 0);
    expect_reporting(f, m, "FY2081/82", 0, 0, 0);
    expect_reporting(f, m, "FY2082/83-T1", 3, 1, 4);
    expect_reporting(f, m, "FY2082/83-T2", 0, 0, 1);
    expect_reporting(f, m, "FY2082/83", 3, 1, 5);
    /* Only enrolled municipalities report. */
    expect_reporting(f, MUN + 10, "2025-08", 0, 0, 0);
}

/* What changes the standing of a month marks every snapshot it reaches, of every period kind:
 * the as-of day passing a month's end, a close, a node's calendar. */
static void test_rollup_reporting_follows_today_closes_and_calendar(void **state)
{
    fx *f = *state;
    reporting_province(f);
    /* Today passes the end of January (2026-01-31) and of BS2082-10 (2026-02-12). */
    assert_int_equal(rollup_daily(f->r, D(2026, 2, 20), NULL), 0);
    expect_reporting(f, BS_NODE, "BS2082-10", 0, 0, 1);
    expect_reporting(f, BS_NODE, "FY2082/83-T2", 1, 1, 3);
    expect_reporting(f, BS_NODE, "FY2082/83", 4, 3, 7);
    expect_reporting(f, BS_NODE, "2026-01", 0, 0, 1); /* 09 + 10, both due now */
    expect_reporting(f, BS_NODE, "2026-Q1", 0, 0, 1);
    expect_reporting(f, BS_NODE, "2026", 0, 0, 1);
    expect_reporting(f, AD_NODE, "2026-01", 0, 0, 1);
    expect_reporting(f, AD_NODE, "BS2082-09", 0, 0, 1);    /* December + January */
    expect_reporting(f, AD_NODE, "FY2082/83-T2", 0, 0, 2); /* 08, 09; 10 ends in February */
    /* The BS node closes 07 and 09, late: Gregorian months, quarters and years follow. */
    put_mun = BS_NODE;
    month_close(f, 66, 1, 2082, 7, D(2026, 2, 20));
    month_close(f, 67, 1, 2082, 9, D(2026, 2, 20));
    put_mun = MUN;
    expect_reporting(f, BS_NODE, "BS2082-09", 1, 0, 1);
    expect_reporting(f, BS_NODE, "2025-10", 1, 0, 1);
    expect_reporting(f, BS_NODE, "2025-12", 1, 0, 1);
    expect_reporting(f, BS_NODE, "2025-Q4", 3, 0, 3);
    expect_reporting(f, BS_NODE, "2025", 6, 2, 6);
    expect_reporting(f, BS_NODE, "2026-01", 0, 0, 1); /* 10 is still open */
    expect_reporting(f, BS_NODE, "FY2082/83", 6, 3, 7);
    /* The AD node's node now says BS: its Gregorian closes stop counting and its BS close of
     * 07 (on 2025-11-20, end + 4) counts; every BS month 04..10 is due. */
    enrol(f, AD_NODE, D(2025, 7, 17), REINT__V1__CALENDAR__CALENDAR_BS);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, AD_NODE, "BS2082-07", 1, 1, 1);
    expect_reporting(f, AD_NODE, "BS2082-04", 0, 0, 1);
    expect_reporting(f, AD_NODE, "FY2082/83", 1, 1, 7);
    expect_reporting(f, AD_NODE, "2025-07", 0, 0, 0); /* 03 + 04: 03 never due */
    expect_reporting(f, AD_NODE, "2025-08", 0, 0, 1);
    expect_reporting(f, AD_NODE, "2025", 0, 0, 5);
    /* And back: the same cells as before the change. */
    enrol(f, AD_NODE, D(2025, 7, 17), REINT__V1__CALENDAR__CALENDAR_AD);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, AD_NODE, "2025-07", 1, 1, 1);
    expect_reporting(f, AD_NODE, "FY2082/83-T1", 3, 1, 4);
    /* Incremental marks and a rebuild agree. */
    rollup_stats st;
    assert_int_equal(rollup_full(f->r, &st), 0);
    assert_int_equal(st.changed, 0);
}

static void test_rollup_cell_key_is_sha256_prefix_sum(void **state)
{
    fx *f = *state;
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)i;
    /* sha256(00 01 .. 0f) = be45cb26...; worked out with Python's hashlib. */
    assert_int_equal(rollup_contributor_key(id), 0xbe45cb26u);
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 3), RETURNEE, FEMALE, AGE_25_39);
    uint8_t a[16], b[16];
    idn(a, 1);
    idn(b, 2);
    cellv c = cell(f, "2026-01", "participants_registered", "", "");
    assert_int_equal(c.ckey, (uint32_t)(rollup_contributor_key(a) + rollup_contributor_key(b)));
    assert_int_equal(c.contributors, 2);
}

static int64_t count(fx *f, const char *sql)
{
    sqlite3_stmt *st = store_prepare(f->db, sql);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void test_rollup_snapshot_message_revisions_and_outbox(void **state)
{
    fx *f = *state;
    char err[256];
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    Reint__V1__RollupSnapshot *s = NULL;
    assert_int_equal(rollup_snapshot(f->r, MUN, "2026-01", &s), 0);
    assert_int_equal(s->municipality, MUN);
    assert_string_equal(s->period, "2026-01");
    uint64_t rev1 = s->revision;
    assert_true(rev1 > 0);
    int saw_pair = 0;
    for (size_t i = 0; i < s->n_cells; i++) {
        Reint__V1__RollupCell *c = s->cells[i];
        if (i > 0)
            assert_true(strcmp(s->cells[i - 1]->indicator, c->indicator) <= 0);
        if (strcmp(c->indicator, "participants_registered") == 0 &&
            strcmp(c->grouping, "sex,age_band") == 0) {
            assert_int_equal(c->n_key, 2);
            assert_string_equal(c->key[0], "FEMALE");
            assert_string_equal(c->key[1], "25_39");
            assert_int_equal(c->numerator, 1);
            saw_pair = 1;
        }
        if (c->grouping[0] == '\0')
            assert_int_equal(c->n_key, 0);
    }
    assert_true(saw_pair);
    reint__v1__rollup_snapshot__free_unpacked(s, NULL);
    assert_int_equal(rollup_snapshot(f->r, MUN, "2030-01", &s), REINT_ENOTFOUND);
    /* Six periods, one outbox entry each. */
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_outbox"), 6);
    person(f, 2, D(2026, 1, 3), RETURNEE, MALE, AGE_25_39);
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_outbox"), 6);
    assert_int_equal(rollup_snapshot(f->r, MUN, "2026-01", &s), 0);
    uint64_t rev2 = s->revision;
    assert_true(rev2 > rev1);
    reint__v1__rollup_snapshot__free_unpacked(s, NULL);
    assert_int_equal(count(f, "SELECT max(revision) = (SELECT revision FROM rollup_snapshots"
                              " WHERE period='2026-01') FROM rollup_outbox WHERE"
                              " period='2026-01'"),
                     1);
    /* A record that changes nothing (same content) keeps the revision and the outbox. */
    int64_t seq = count(f, "SELECT max(seq) FROM rollup_outbox");
    person(f, 2, D(2026, 1, 3), RETURNEE, MALE, AGE_25_39);
    assert_int_equal(count(f, "SELECT max(seq) FROM rollup_outbox"), seq);
    /* Both persons deleted: the snapshot stays, empty, with a newer revision. */
    tombstone(f, 1, K_PERSON);
    tombstone(f, 2, K_PERSON);
    assert_int_equal(rollup_snapshot(f->r, MUN, "2026-01", &s), 0);
    assert_int_equal(s->n_cells, 0);
    uint64_t rev3 = s->revision;
    assert_true(rev3 > rev2);
    reint__v1__rollup_snapshot__free_unpacked(s, NULL);
    /* A restarted engine issues revisions above its old ones, even with a clock behind. */
    rollup_close(f->r);
    assert_int_equal(rollup_open(&f->r, f->db, err, sizeof(err)), 0);
    assert_int_equal(store_exec(f->db, "UPDATE meta SET value=0 WHERE key='rollup_hlc'"), 0);
    rollup_close(f->r);
    assert_int_equal(rollup_open(&f->r, f->db, err, sizeof(err)), 0);
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    assert_int_equal(rollup_snapshot(f->r, MUN, "2026-01", &s), 0);
    assert_true(s->revision > rev3);
    reint__v1__rollup_snapshot__free_unpacked(s, NULL);
}

static void test_rollup_sweep_drops_older_incarnations(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 3), RETURNEE, FEMALE, AGE_25_39);
    assert_int_equal(num(f, "2026-01", "participants_registered", "", ""), 2);
    assert_int_equal(store_exec(f->db, "BEGIN"), 0);
    assert_int_equal(store_exec(f->db, "DELETE FROM records WHERE id=x'0100000000000000"
                                       "0000000000000001'"),
                     0);
    assert_int_equal(rollup_sweep(f->r, MUN), 0);
    assert_int_equal(store_exec(f->db, "COMMIT"), 0);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    assert_int_equal(num(f, "2026-01", "participants_registered", "", ""), 1);
}

static void test_rollup_full_changes_nothing_after_incremental(void **state)
{
    fx *f = *state;
    rollup_stats st;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    delivered(f, 10, 1, SEED, D(2026, 1, 9));
    enterprise(f, 20, 1, RETAIL, D(2026, 1, 15), 3, ACTIVE);
    referred(f, 11, 1, PSYCHO, D(2025, 12, 1));
    assert_int_equal(rollup_full(f->r, &st), 0);
    assert_true(st.recomputed > 0);
    assert_int_equal(st.changed, 0);
    assert_int_equal(rollup_dirty_count(f->r), 0);
}

/* The hub's timer refreshes in slices (a deadline in the past: one municipality per call):
 * each slice makes progress, the rest stays dirty, and the slices together compute what one
 * full recompute does. */
static void test_rollup_refresh_in_slices_ends_where_one_refresh_does(void **state)
{
    fx *f = *state;
    rollup_stats st;
    put_no_refresh = 1;
    for (int m = 0; m < 4; m++)
        for (int k = 0; k < 3; k++)
            person_of(f, 100 + m * 10 + k, MUN + (uint32_t)m, D(2026, 1 + m, 2 + k),
                      k == 0 ? MALE : FEMALE);
    put_no_refresh = 0;
    int64_t dirty = rollup_dirty_count(f->r), calls = 0;
    assert_true(dirty > 4);
    do {
        assert_int_equal(rollup_refresh_slice(f->r, 1, &st), 0);
        int64_t now_dirty = rollup_dirty_count(f->r);
        assert_true(now_dirty < dirty);
        assert_int_equal(rollup_more(f->r), now_dirty > 0);
        dirty = now_dirty;
        calls++;
    } while (dirty > 0 && calls < 100);
    assert_int_equal(dirty, 0);
    assert_true(calls >= 4); /* at least one slice per municipality */
    assert_int_equal(num(f, "2026-01", "participants_registered", "sex", "FEMALE"), 2);
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_cells WHERE municipality=10704 AND"
                              " period='2026-02' AND indicator='participants_registered' AND"
                              " grouping='sex' AND key='FEMALE' AND numerator=2"),
                     1);
    assert_int_equal(rollup_full(f->r, &st), 0);
    assert_int_equal(st.changed, 0);
}

/* Slices take the municipalities in turn: one that was just refreshed and is dirty again
 * waits until the others with older dirt have had theirs (the next slice starts past the
 * municipality where the last one stopped, and wraps around). */
static void test_rollup_slices_take_municipalities_in_turn(void **state)
{
    fx *f = *state;
    rollup_stats st;
    put_no_refresh = 1;
    for (int m = 0; m < 3; m++)
        person_of(f, 300 + m, MUN + (uint32_t)m, D(2026, 1, 2), FEMALE);
    put_no_refresh = 0;
    const char *dirty_of = "SELECT count(*) FROM rollup_snapshots WHERE dirty = 1 AND "
                           "municipality = %d";
    char q[160];
#define DIRTY(m) (snprintf(q, sizeof(q), dirty_of, (m)), count(f, q))
    assert_true(DIRTY(MUN) > 0 && DIRTY(MUN + 1) > 0 && DIRTY(MUN + 2) > 0);
    /* A deadline in the past: one municipality per slice. */
    assert_int_equal(rollup_refresh_slice(f->r, 1, &st), 0);
    assert_int_equal(DIRTY(MUN), 0);
    assert_true(DIRTY(MUN + 1) > 0);
    /* New dirt in the lowest code does not jump the queue. */
    put_no_refresh = 1;
    person_of(f, 310, MUN, D(2026, 1, 3), MALE);
    put_no_refresh = 0;
    assert_true(DIRTY(MUN) > 0);
    assert_int_equal(rollup_refresh_slice(f->r, 1, &st), 0);
    assert_int_equal(DIRTY(MUN + 1), 0);
    assert_true(DIRTY(MUN) > 0 && DIRTY(MUN + 2) > 0);
    assert_int_equal(rollup_refresh_slice(f->r, 1, &st), 0);
    assert_int_equal(DIRTY(MUN + 2), 0);
    assert_true(DIRTY(MUN) > 0);
    /* Then it wraps around. */
    assert_int_equal(rollup_refresh_slice(f->r, 1, &st), 0);
    assert_int_equal(rollup_dirty_count(f->r), 0);
    assert_int_equal(rollup_more(f->r), 0);
#undef DIRTY
    assert_int_equal(num(f, "2026-01", "participants_registered", "", ""), 2);
    assert_int_equal(rollup_full(f->r, &st), 0);
    assert_int_equal(st.changed, 0);
}

/* rollup_daily's pace: a slice that leaves dirt makes the next call wait as long again (the
 * hub's loop serves sessions meanwhile), unless the hub has set it eager (no node sending),
 * which also lifts a pause already set. The fault rollup_slice_spent makes a slice stop after
 * one municipality as if it had taken ten seconds. */
static void test_rollup_daily_pauses_after_a_slice_unless_eager(void **state)
{
    fx *f = *state;
    rollup_stats st;
    put_no_refresh = 1;
    for (int m = 0; m < 4; m++)
        person_of(f, 200 + m, MUN + (uint32_t)m, D(2026, 1 + m, 2), FEMALE);
    put_no_refresh = 0;
    int32_t today = D(2026, 6, 1);
    int64_t dirty = rollup_dirty_count(f->r);
    testhook_enable("test_rollup");

    assert_int_equal(testhook_arm("rollup_slice_spent"), 0);
    assert_int_equal(rollup_daily(f->r, today, &st), 0);
    assert_true(st.recomputed > 0);
    assert_int_equal(rollup_more(f->r), 1);
    int64_t left = rollup_dirty_count(f->r);
    assert_true(left > 0 && left < dirty);
    /* Paced: the next call within the pause does nothing. */
    assert_int_equal(rollup_daily(f->r, today, &st), 0);
    assert_int_equal(st.recomputed, 0);
    assert_int_equal(rollup_dirty_count(f->r), left);

    /* Eager: the pause is lifted, and a slice that leaves dirt sets none. */
    rollup_set_eager(f->r, 1);
    assert_int_equal(testhook_arm("rollup_slice_spent"), 0);
    assert_int_equal(rollup_daily(f->r, today, &st), 0);
    assert_true(st.recomputed > 0);
    int64_t left2 = rollup_dirty_count(f->r);
    assert_true(left2 < left);
    assert_int_equal(rollup_more(f->r), left2 > 0);
    assert_int_equal(rollup_daily(f->r, today, &st), 0);
    assert_true(left2 == 0 || st.recomputed > 0);
    assert_int_equal(rollup_dirty_count(f->r), 0);
    assert_int_equal(rollup_more(f->r), 0);
    rollup_set_eager(f->r, 0);
    assert_int_equal(num(f, "2026-01", "participants_registered", "sex", "FEMALE"), 1);
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_cells WHERE municipality=10706 AND"
                              " period='2026-04' AND indicator='participants_registered' AND"
                              " grouping='sex' AND key='FEMALE' AND numerator=1"),
                     1);
}

/* Record ids are keyed hashes per municipality: the same id in two municipalities names two
 * independent records, each counted in its own municipality, and a service's person is the
 * person of that id in the service's own municipality. */
static void test_rollup_same_id_in_another_municipality_is_a_record_of_its_own(void **state)
{
    fx *f = *state;
    const uint32_t OTHER = 10704;
    const char *P = "participants_registered", *S = "persons_served";
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    delivered(f, 10, 1, COUNSEL, D(2026, 1, 10));
    put_mun = OTHER;
    person(f, 1, D(2026, 2, 3), FAMILY, MALE, AGE_15_24);
    delivered(f, 10, 1, COUNSEL, D(2026, 2, 10));
    put_mun = MUN;
    /* Both count, each in its own municipality and months. */
    assert_int_equal(num(f, "2026-01", P, "sex", "FEMALE"), 1);
    assert_false(cell(f, "2026-02", P, "", "").found);
    assert_int_equal(cell_in(f, OTHER, "2026-02", P, "sex", "MALE").num, 1);
    assert_false(cell_in(f, OTHER, "2026-01", P, "", "").found);
    /* Each service takes the sex of the person of its own municipality. */
    assert_int_equal(num(f, "2026-01", S, "sex", "FEMALE"), 1);
    assert_int_equal(cell_in(f, OTHER, "2026-02", S, "sex", "MALE").num, 1);
    assert_false(cell_in(f, OTHER, "2026-02", S, "sex", "FEMALE").found);
    /* A correction in one changes nothing in the other. */
    person(f, 1, D(2026, 1, 2), RETURNEE, REINT__V1__SEX__SEX_OTHER, AGE_25_39);
    assert_int_equal(num(f, "2026-01", S, "sex", "OTHER"), 1);
    assert_int_equal(cell_in(f, OTHER, "2026-02", P, "sex", "MALE").num, 1);
    assert_int_equal(cell_in(f, OTHER, "2026-02", S, "sex", "MALE").num, 1);
    /* A deletion in the other leaves this one whole. */
    put_mun = OTHER;
    tombstone(f, 1, K_PERSON);
    tombstone(f, 10, K_SERVICE);
    put_mun = MUN;
    assert_false(cell_in(f, OTHER, "2026-02", P, "", "").found);
    assert_false(cell_in(f, OTHER, "2026-02", S, "", "").found);
    assert_int_equal(num(f, "2026-01", P, "", ""), 1);
    assert_int_equal(num(f, "2026-01", S, "sex", "OTHER"), 1);
    assert_int_equal(num(f, "2026-01", "services_delivered", "", ""), 1);
    /* The shadow and a rebuild agree. */
    rollup_stats st;
    assert_int_equal(rollup_full(f->r, &st), 0);
    assert_int_equal(st.changed, 0);
}

static void test_rollup_outbox_orders_a_refresh_by_period(void **state)
{
    fx *f = *state;
    /* Two municipalities' persons of the same days, refreshed together: the outbox lists
     * each period of both municipalities side by side (the uplink's batches then carry the
     * same period of many municipalities, which the federal tier sums once). */
    put_no_refresh = 1;
    for (int n = 1; n <= 4; n++)
        person_of(f, n, n % 2 ? MUN : 10704, n <= 2 ? D(2026, 1, 2) : D(2025, 6, 1), FEMALE);
    put_no_refresh = 0;
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_outbox"), 24);
    assert_int_equal(count(f, "SELECT count(DISTINCT municipality) FROM rollup_outbox"), 2);
    assert_int_equal(count(f, "SELECT count(*) FROM (SELECT row_number() OVER (ORDER BY seq) a,"
                              " row_number() OVER (ORDER BY period, municipality) b"
                              " FROM rollup_outbox) WHERE a <> b"),
                     0);
    assert_int_equal(num(f, "2026-01", "participants_registered", "", ""), 1);
}

static void test_rollup_stored_cells_are_the_packed_snapshot(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    person(f, 2, D(2026, 1, 9), FAMILY, MALE, AGE_15_24);
    /* The uplink's bytes (header + stored cells) are what protobuf-c packs for the message. */
    sbuf b;
    sbuf_init(&b, ROLLUP_SNAPSHOT_MAX);
    uint64_t rev = 0;
    assert_int_equal(rollup_snapshot_packed(f->r, MUN, "2026-01", &rev, &b), 0);
    Reint__V1__RollupSnapshot *s = NULL;
    assert_int_equal(rollup_snapshot(f->r, MUN, "2026-01", &s), 0);
    assert_int_equal(s->revision, rev);
    assert_true(s->n_cells > 10);
    size_t len = reint__v1__rollup_snapshot__get_packed_size(s);
    uint8_t *again = malloc(len);
    assert_non_null(again);
    reint__v1__rollup_snapshot__pack(s, again);
    assert_int_equal(len, b.len);
    assert_memory_equal(again, b.p, len);
    free(again);
    /* In the engine's one order (the digest's): indicator, grouping, key, each by strcmp, every
     * cell once. Many indicators and groupings, so that the order is not the catalogue's. */
    for (size_t i = 1; i < s->n_cells; i++) {
        const Reint__V1__RollupCell *x = s->cells[i - 1], *y = s->cells[i];
        char kx[160] = "", ky[160] = "";
        for (size_t k = 0; k < x->n_key; k++)
            snprintf(kx + strlen(kx), sizeof(kx) - strlen(kx), "%s%s", k ? "," : "", x->key[k]);
        for (size_t k = 0; k < y->n_key; k++)
            snprintf(ky + strlen(ky), sizeof(ky) - strlen(ky), "%s%s", k ? "," : "", y->key[k]);
        int c = strcmp(x->indicator, y->indicator);
        if (c == 0)
            c = strcmp(x->grouping, y->grouping);
        if (c == 0)
            c = strcmp(kx, ky);
        if (c >= 0)
            fail_msg("cell %zu (%s by %s: %s) is not before cell %zu (%s by %s: %s)", i - 1,
                     x->indicator, x->grouping, kx, i, y->indicator, y->grouping, ky);
    }
    /* Read back as rows, each cell once, keys joined by ','. */
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_cells WHERE municipality=10703"
                              " AND period='2026-01'"),
                     (int64_t)s->n_cells);
    assert_int_equal(num(f, "2026-01", "participants_registered", "sex,age_band", "MALE,15_24"), 1);
    reint__v1__rollup_snapshot__free_unpacked(s, NULL);
    /* A blob cut short, or holding another number of cells than its header, is an error. */
    assert_int_equal(store_exec(f->db, "UPDATE rollup_blobs SET cells=substr(cells, 1,"
                                       " length(cells) - 1) WHERE period='2026-01'"),
                     0);
    assert_int_equal(rollup_snapshot_packed(f->r, MUN, "2026-01", &rev, &b), REINT_EDB);
    assert_int_equal(store_exec(f->db, "UPDATE rollup_blobs SET cells=x'' WHERE period='2026-01'"),
                     0);
    assert_int_equal(rollup_snapshot_packed(f->r, MUN, "2026-01", &rev, &b), REINT_EDB);
    assert_int_equal(rollup_snapshot_packed(f->r, MUN, "2030-01", &rev, &b), REINT_ENOTFOUND);
    sbuf_free(&b);
}

static void test_rollup_store_of_schema_2_is_rewritten(void **state)
{
    fx *f = *state;
    char err[256];
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    Reint__V1__RollupSnapshot *s = NULL;
    assert_int_equal(rollup_snapshot(f->r, MUN, "2026-01", &s), 0);
    uint64_t rev = s->revision;
    size_t n = s->n_cells;
    reint__v1__rollup_snapshot__free_unpacked(s, NULL);
    /* The shape before version 3: one row per cell in a table rollup_cells, no blobs. */
    rollup_close(f->r);
    f->r = NULL;
    assert_int_equal(store_exec(f->db, "DELETE FROM rollup_blobs;"
                                       " CREATE TABLE rollup_cells(municipality, period, x);"
                                       " INSERT INTO rollup_cells VALUES(10703, '2026-01', 1);"
                                       " UPDATE meta SET value=2 WHERE key='rollup_schema'"),
                     0);
    assert_int_equal(rollup_open(&f->r, f->db, err, sizeof(err)), 0);
    /* The old table is gone, every snapshot was written again with a newer revision. */
    assert_int_equal(count(f, "SELECT count(*) FROM sqlite_schema WHERE name='rollup_cells'"), 0);
    assert_int_equal(rollup_snapshot(f->r, MUN, "2026-01", &s), 0);
    assert_true(s->revision > rev);
    assert_int_equal(s->n_cells, n);
    reint__v1__rollup_snapshot__free_unpacked(s, NULL);
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_outbox WHERE period='2026-01' AND"
                              " revision > 0"),
                     1);
    assert_int_equal(num(f, "2026-01", "participants_registered", "sex", "FEMALE"), 1);
}

/* A read error on the schema version is not an absent version: rollup_open fails and the
 * shadow stays, rather than being dropped and rebuilt on a store that cannot be read. */
static void test_rollup_meta_read_error_fails_open_and_keeps_the_shadow(void **state)
{
    fx *f = *state;
    char err[256];
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_person"), 1);
    rollup_close(f->r);
    f->r = NULL;
    /* meta becomes a view whose rollup_schema value fails to evaluate (malformed JSON). */
    assert_int_equal(store_exec(f->db, "ALTER TABLE meta RENAME TO meta_saved;"
                                       " CREATE VIEW meta(key, value) AS SELECT key,"
                                       " CASE key WHEN 'rollup_schema' THEN json('x') ELSE value"
                                       " END FROM meta_saved"),
                     0);
    assert_int_equal(rollup_open(&f->r, f->db, err, sizeof(err)), REINT_EDB);
    assert_null(f->r);
    assert_non_null(strstr(err, "version"));
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_person"), 1);
    /* Readable again: the engine opens on the same shadow, without a rebuild. */
    assert_int_equal(store_exec(f->db, "DROP VIEW meta; ALTER TABLE meta_saved RENAME TO meta"), 0);
    assert_int_equal(rollup_open(&f->r, f->db, err, sizeof(err)), 0);
    assert_int_equal(num(f, "2026-01", "participants_registered", "", ""), 1);
    assert_int_equal(rollup_dirty_count(f->r), 0);
}

/* The outbox and every snapshot's revision and digest, as one string. */
static char *shipped(fx *f)
{
    sqlite3_stmt *st = store_prepare(
        f->db, "SELECT (SELECT group_concat(seq || ':' || municipality || ':' || period || ':' ||"
               " revision, ' ') FROM rollup_outbox) || ' | ' || (SELECT group_concat(municipality"
               " || ':' || period || ':' || revision || ':' || digest, ' ') FROM rollup_snapshots"
               " WHERE revision > 0)");
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *s = strdup((const char *)sqlite3_column_text(st, 0));
    assert_non_null(s);
    sqlite3_finalize(st);
    return s;
}

/* A refresh that fails in the middle of a person's services (the fault strikes on the step
 * after that person's first service) leaves nothing of that person behind: the next refresh
 * counts the person in every cell the services reach. */
static void test_rollup_scan_failed_mid_person_leaves_no_trace(void **state)
{
    fx *f = *state;
    put_no_refresh = 1;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    delivered(f, 10, 1, COUNSEL, D(2026, 1, 5));
    delivered(f, 11, 1, COUNSEL, D(2026, 1, 6));
    put_no_refresh = 0;
    testhook_enable("test_rollup");
    /* Steps: the person, the end of the persons, the first service, then the fault. */
    assert_int_equal(testhook_arm("rollup_scan:4"), 0);
    rollup_stats st;
    assert_int_equal(rollup_refresh(f->r, &st), REINT_EDB);
    assert_int_equal(rollup_refresh(f->r, &st), 0);
    const char *S = "persons_served";
    assert_int_equal(num(f, "2026-01", S, "", ""), 1);
    assert_int_equal(num(f, "2026-01", S, "service_type", "RETURN_COUNSELLING"), 1);
    assert_int_equal(num(f, "2026-Q1", S, "sex", "FEMALE"), 1);
    assert_int_equal(cell(f, "2026-01", S, "", "").contributors, 1);
}

/* A scan that fails during a refresh (the test fault rollup_scan, a failed sqlite3_step) after
 * one municipality's snapshots were computed and stored: the refresh rolls back whole, so no
 * snapshot of it is shipped, and the next refresh ships the right ones. */
static void test_rollup_failed_scan_ships_no_partial_refresh(void **state)
{
    fx *f = *state;
    person(f, 1, D(2026, 1, 2), RETURNEE, FEMALE, AGE_25_39);
    put_no_refresh = 1;
    person(f, 2, D(2026, 1, 3), RETURNEE, MALE, AGE_25_39);
    /* 10704's rows come after 10703's group: the fault strikes in 10704's person scan, once
     * 10703's snapshots are stored in the refresh's transaction. */
    for (int n = 0; n < 30; n++)
        person_of(f, 100 + n, 10704, D(2026, 1, 4), FEMALE);
    put_no_refresh = 0;
    int64_t dirty = rollup_dirty_count(f->r);
    assert_true(dirty >= 12);
    char *before = shipped(f);
    testhook_enable("test_rollup");
    assert_int_equal(testhook_arm("rollup_scan:15"), 0);
    rollup_stats st;
    assert_int_equal(rollup_refresh(f->r, &st), REINT_EDB);
    assert_int_equal(st.changed, 0);
    char *after = shipped(f);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(rollup_dirty_count(f->r), dirty);
    assert_int_equal(num(f, "2026-01", "participants_registered", "", ""), 1);
    /* The fault struck once: the next refresh ships both municipalities, right. */
    assert_int_equal(rollup_refresh(f->r, &st), 0);
    assert_int_equal(st.changed, 12);
    assert_int_equal(rollup_dirty_count(f->r), 0);
    assert_int_equal(num(f, "2026-01", "participants_registered", "", ""), 2);
    assert_int_equal(cell_in(f, 10704, "2026-01", "participants_registered", "", "").num, 30);
    assert_int_equal(count(f, "SELECT count(*) FROM rollup_outbox"), 12);
    after = shipped(f);
    assert_string_not_equal(after, before);
    free(after);
    free(before);
}

/* BS_NODE closes BS month (year, month) on day closed (record n). */
static void close_bs_node(fx *f, int n, int year, int month, int32_t closed)
{
    put_mun = BS_NODE;
    month_close(f, n, 1, year, month, closed);
    put_mun = MUN;
}

/* Marks BS_NODE's BS month (year, month) returned by a reviewer (or no longer), as the
 * hub's reviews do, in a transaction of its own. */
static void set_returned(fx *f, int year, int month, int returned)
{
    assert_int_equal(store_exec(f->db, "BEGIN IMMEDIATE"), 0);
    assert_int_equal(rollup_set_returned(f->r, BS_NODE, 1, year, month, returned), 0);
    assert_int_equal(store_exec(f->db, "COMMIT"), 0);
}

/* A month a reviewer returned counts as not closed (counted, but not complete) until its
 * clerk closes it again; timeliness then takes the last close. So does a month that ended
 * before the node was first seen, which counts only once closed: returned, it fell out of
 * the denominator, and its completeness read 1.0 (or nothing) where it was 0 of 1 (an attack
 * on the demo, whose nodes are first seen the day it starts, found completeness always
 * 100 %). */
static void test_rollup_returned_month_is_not_closed_until_closed_again(void **state)
{
    fx *f = *state;
    assert_int_equal(rollup_set_today(f->r, D(2026, 1, 20)), 0);
    enrol(f, BS_NODE, D(2025, 7, 17), REINT__V1__CALENDAR__CALENDAR_BS);
    close_bs_node(f, 61, 2082, 4, D(2025, 8, 20)); /* end + 4: on time */
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, BS_NODE, "BS2082-04", 1, 1, 1);
    set_returned(f, 2082, 4, 1);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, BS_NODE, "BS2082-04", 0, 0, 1);
    expect_reporting(f, BS_NODE, "FY2082/83-T1", 0, 0, 4); /* 04..07 are due */
    /* BS2082-02 ended before the node was first seen: counted once closed, and still owed
     * once returned. */
    close_bs_node(f, 62, 2082, 2, D(2025, 8, 21));
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, BS_NODE, "BS2082-02", 1, 0, 1);
    set_returned(f, 2082, 2, 1);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, BS_NODE, "BS2082-02", 0, 0, 1);
    /* Closed again, late: complete, and late by its last close. */
    close_bs_node(f, 61, 2082, 4, D(2025, 10, 1));
    set_returned(f, 2082, 4, 0);
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, BS_NODE, "BS2082-04", 1, 0, 1);
}

typedef struct touched {
    int n;
    uint32_t m[16];
    int bs[16];
    int32_t ym[16];
    uint64_t v[16];
} touched;

static int collect_touched(void *ud, uint32_t m, int bs, int32_t ym, uint64_t version)
{
    touched *t = ud;
    assert_true(t->n < 16);
    t->m[t->n] = m, t->bs[t->n] = bs, t->ym[t->n] = ym, t->v[t->n] = version;
    t->n++;
    return 0;
}

static uint64_t touched_version(const touched *t, int bs, int32_t ym)
{
    for (int i = 0; i < t->n; i++)
        if (t->bs[i] == bs && t->ym[i] == ym)
            return t->v[i];
    return 0;
}

/* With tracking on, a noted record leaves the months of both calendars it can change, each at
 * the highest version noted; a change that moves a record leaves its old months too; a walk
 * forgets what it walked. */
static void test_rollup_touched_months_follow_the_notes(void **state)
{
    fx *f = *state;
    touched t = {0};
    rollup_track_months(f->r, 1);
    person(f, 1, D(2025, 8, 20), 1, 1, 3); /* 2025-08, BS2082-05 */
    uint64_t v1 = f->version - 1;
    person(f, 2, D(2025, 8, 21), 1, 1, 3);
    uint64_t v2 = f->version - 1;
    assert_int_equal(rollup_touched_months(f->r, collect_touched, &t), 0);
    assert_int_equal(t.n, 2);
    assert_true(v2 > v1);
    assert_int_equal(touched_version(&t, 0, 202508), v2);
    assert_int_equal(touched_version(&t, 1, 208205), v2);
    memset(&t, 0, sizeof(t));
    assert_int_equal(rollup_touched_months(f->r, collect_touched, &t), 0);
    assert_int_equal(t.n, 0);
    /* Person 1 moves to October: its old months change too. */
    person(f, 1, D(2025, 10, 20), 1, 1, 3); /* 2025-10, BS2082-07 */
    uint64_t v3 = f->version - 1;
    assert_int_equal(rollup_touched_months(f->r, collect_touched, &t), 0);
    assert_int_equal(touched_version(&t, 0, 202508), v3);
    assert_int_equal(touched_version(&t, 1, 208205), v3);
    assert_int_equal(touched_version(&t, 0, 202510), v3);
    assert_int_equal(touched_version(&t, 1, 208207), v3);
    /* A close leaves its own month. */
    memset(&t, 0, sizeof(t));
    month_close(f, 61, 1, 2082, 4, D(2025, 8, 20));
    assert_int_equal(rollup_touched_months(f->r, collect_touched, &t), 0);
    assert_int_equal(touched_version(&t, 1, 208204), f->version - 1);
    rollup_track_months(f->r, 0);
}

/* A recovered decision of the federal tier, as the hub's recovery takes it (reviews_recover). */
static Reint__V1__MonthReview recovered(uint64_t clock, int state, uint64_t version, char *by,
                                        char *comment)
{
    Reint__V1__MonthReview c = REINT__V1__MONTH_REVIEW__INIT;
    c.clock = clock;
    c.municipality = BS_NODE;
    c.calendar = REINT__V1__CALENDAR__CALENDAR_BS;
    c.month = 208204;
    c.state = (Reint__V1__MonthState)state;
    c.version = version;
    c.decision = 1;
    c.decided_by = by;
    c.decided_at = clock >> 16;
    c.comment = comment;
    return c;
}

static int64_t count_of(fx *f, const char *sql)
{
    sqlite3_stmt *st = store_prepare(f->db, sql);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A hub rebuilt from nothing recovers a month that was returned, then closed again and
 * approved: the month ends approved by the later decision (its clock kept as the decision's),
 * counts as closed again, and the recovered decisions are not decided a second time: the log
 * holds them under their own clocks only (nodes and the federal tier would otherwise receive
 * each decision twice). A resend of the same page changes nothing. */
static void test_reviews_recover_keeps_the_latest_decision(void **state)
{
    fx *f = *state;
    char err[200], why[200];
    reviews *rv = NULL;
    assert_int_equal(rollup_set_today(f->r, D(2026, 1, 20)), 0);
    enrol(f, BS_NODE, D(2025, 7, 17), REINT__V1__CALENDAR__CALENDAR_BS);
    assert_int_equal(reviews_open(&rv, f->db, f->r, err, sizeof(err)), 0);
    put_mun = BS_NODE;
    month_close(f, 61, 1, 2082, 4, D(2025, 10, 1)); /* the second close, late */
    uint64_t v = f->version - 1;
    put_mun = MUN;
    assert_int_equal(store_exec(f->db, "BEGIN IMMEDIATE"), 0);
    assert_int_equal(reviews_note(rv), 0);
    assert_int_equal(store_exec(f->db, "COMMIT"), 0);
    reviews_month m;
    assert_int_equal(reviews_get(f->db, BS_NODE, 1, 208204, &m), 0);
    assert_int_equal(m.state, REINT__V1__MONTH_STATE__MONTH_STATE_CLOSED);
    assert_int_equal(m.version, v);
    /* Decided an hour ago by the hub before it was lost: below any clock it issues now. */
    uint64_t t = (clock_now_ms() - 3600000) << 16;
    Reint__V1__MonthReview ret = recovered(t + 1, REINT__V1__MONTH_STATE__MONTH_STATE_RETURNED,
                                           v - 1, "rev1", "0 services, 40 referrals?");
    Reint__V1__MonthReview app =
        recovered(t + 2, REINT__V1__MONTH_STATE__MONTH_STATE_APPROVED, v, "rev2", "corrected");
    Reint__V1__MonthReview *page[] = {&ret, &app};
    Reint__V1__Reviews r = REINT__V1__REVIEWS__INIT;
    r.n_reviews = 2;
    r.reviews = page;
    unsigned province = geo_find(BS_NODE)->province;
    char own[160];
    snprintf(own, sizeof(own),
             "SELECT count(*) FROM review_log WHERE decision=1 AND clock IN"
             " (%llu, %llu)",
             (unsigned long long)(t + 1), (unsigned long long)(t + 2));
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(store_exec(f->db, "BEGIN IMMEDIATE"), 0);
        assert_int_equal(reviews_recover(rv, &r, province, why, sizeof(why)), 0);
        assert_int_equal(store_exec(f->db, "COMMIT"), 0);
        assert_int_equal(reviews_get(f->db, BS_NODE, 1, 208204, &m), 0);
        assert_int_equal(m.state, REINT__V1__MONTH_STATE__MONTH_STATE_APPROVED);
        assert_int_equal(m.decision, REINT__V1__MONTH_STATE__MONTH_STATE_APPROVED);
        assert_int_equal(m.decision_clock, t + 2);
        assert_int_equal(m.seen_version, v);
        assert_string_equal(m.decided_by, "rev2");
        assert_string_equal(m.comment, "corrected");
        /* The two decisions under their own clocks, and no decision under any other. */
        assert_int_equal(count_of(f, "SELECT count(*) FROM review_log WHERE decision=1"), 2);
        assert_int_equal(count_of(f, own), 2);
        /* The close and the move to approved, each logged once under a new clock. */
        assert_int_equal(count_of(f, "SELECT count(*) FROM review_log WHERE decision=0"), 2);
    }
    assert_int_equal(rollup_refresh(f->r, NULL), 0);
    expect_reporting(f, BS_NODE, "BS2082-04", 1, 0, 1);
    reviews_close(rv);
    rollup_track_months(f->r, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollup_participants_by_each_declared_grouping, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_age_bands_as_carried_at_boundaries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_shrawan_1_starts_a_fiscal_year_and_trimester,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rollup_distinct_persons_do_not_add_across_months_or_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_correction_moves_counts_in_every_dependent_cell,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_tombstone_removes_and_orphans_count_as_unknown,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_returnees_and_remigration_ratio, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_enterprise_ratios_and_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rollup_loan_marks_only_the_enterprise_periods_it_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_interleaved_contributors_count_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_seed_funding_sums_with_person_contributors,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_jobs_by_owner_and_ratio_numerator_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_bank_accounts_count_persons_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_rollup_referrals_wait_three_full_bs_months_as_the_clock_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_services_unavailable_uses_latest_availability,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_reporting_of_a_bs_node_in_every_period_kind,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_reporting_of_an_ad_node_in_every_period_kind,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_reporting_follows_today_closes_and_calendar,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_cell_key_is_sha256_prefix_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_snapshot_message_revisions_and_outbox, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_sweep_drops_older_incarnations, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_full_changes_nothing_after_incremental, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_refresh_in_slices_ends_where_one_refresh_does,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_slices_take_municipalities_in_turn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_daily_pauses_after_a_slice_unless_eager, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_stored_cells_are_the_packed_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_store_of_schema_2_is_rewritten, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_outbox_orders_a_refresh_by_period, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_rollup_same_id_in_another_municipality_is_a_record_of_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_meta_read_error_fails_open_and_keeps_the_shadow,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_scan_failed_mid_person_leaves_no_trace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_failed_scan_ships_no_partial_refresh, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollup_returned_month_is_not_closed_until_closed_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_touched_months_follow_the_notes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reviews_recover_keeps_the_latest_decision, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
