/* Property tests for provincial-hub/rollup. For random sequences (fixed seeds) of inserts,
 * corrections, stale replays, deletions, rolled-back batches, enrolments (and changes of a
 * node's calendar) and clock moves:
 *   1. the incremental result equals rollup_full() cell for cell (and rollup_full() finds
 *      no snapshot to change), with records noted before their upsert (rollup_note, even
 *      seeds) or after it as the hub's ingest does (rollup_note_stored, told whether the
 *      upsert inserted, odd seeds);
 *   2. rollup_full() equals a straightforward computation written here, with its own
 *      Gregorian and Bikram Sambat calendars (the BS table read from data/), its own
 *      enumeration names and its own SHA-256 cell keys, for participants_registered
 *      ("" and sex,age_band), persons_served ("" and service_type), services_delivered,
 *      the sums seed_funding_npr and jobs_created (contributions by person and by owner, their
 *      keys and top two) and enterprises_active (a ratio, with its numerator's key).
 * Each id is used by a record of each of the two municipalities (see idn()). */
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

#include "hubstore.h"
#include "record.h"
#include "rollup.h"
#include "store.h"

#define MUN_A   10703
#define MUN_B   10704
#define SEEDS   8
#define BATCHES 60
#define N_IDS   64

/* --- an independent calendar ------------------------------------------------------------ */

/* Days since 1970-01-01 of a Gregorian date, and back (H. Hinnant's civil algorithms). */
static int32_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp + (mp < 10 ? 3 : -9);
    *y = yoe + era * 400 + (*m <= 2);
}

typedef struct bs_year {
    int year, len[12];
    int32_t start;
} bs_year;

static bs_year bs_table[120];
static int n_bs;

static void load_bs_table(void)
{
    FILE *fp = fopen("../../data/bikram_sambat.csv", "r");
    char line[256];
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof(line), fp)); /* header */
    while (fgets(line, sizeof(line), fp) && n_bs < 120) {
        bs_year *b = &bs_table[n_bs];
        int days, y, m, d;
        if (sscanf(line, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d-%d-%d", &b->year, &b->len[0],
                   &b->len[1], &b->len[2], &b->len[3], &b->len[4], &b->len[5], &b->len[6],
                   &b->len[7], &b->len[8], &b->len[9], &b->len[10], &b->len[11], &days, &y, &m,
                   &d) == 17) {
            b->start = days_from_civil(y, m, d);
            n_bs++;
        }
    }
    fclose(fp);
}

/* The six period strings of a day, computed without the product's period module. */
static void periods_of(int32_t day, char out[6][16])
{
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(out[0], 16, "%04d", y);
    snprintf(out[1], 16, "%04d-Q%d", y, (m - 1) / 3 + 1);
    snprintf(out[2], 16, "%04d-%02d", y, m);
    int i = 0;
    while (i + 1 < n_bs && bs_table[i + 1].start <= day)
        i++;
    int32_t rest = day - bs_table[i].start;
    int bm = 0;
    while (rest >= bs_table[i].len[bm])
        rest -= bs_table[i].len[bm++];
    bm++;
    int fy = bm >= 4 ? bs_table[i].year : bs_table[i].year - 1;
    int tri = bm >= 4 && bm <= 7 ? 1 : bm >= 8 && bm <= 11 ? 2 : 3;
    snprintf(out[3], 16, "BS%04d-%02d", bs_table[i].year, bm);
    snprintf(out[4], 16, "FY%04d/%02d-T%d", fy, (fy + 1) % 100, tri);
    snprintf(out[5], 16, "FY%04d/%02d", fy, (fy + 1) % 100);
}

/* The month pair a node sends for an event of day (Gregorian YYYYMM, BS YYYYMM), from the
 * periods above: its month and its BS month. */
static int32_t digits_at(const char *s, int n)
{
    int32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static void pair_of(int32_t day, int32_t *ad, int32_t *bs)
{
    char p[6][16];
    periods_of(day, p);
    *ad = digits_at(p[2], 4) * 100 + digits_at(p[2] + 5, 2);     /* "2025-07" */
    *bs = digits_at(p[3] + 2, 4) * 100 + digits_at(p[3] + 7, 2); /* "BS2082-04" */
}

/* --- the model: the live state of every id, newest version wins ------------------------- */

enum kind { K_NONE, K_PERSON, K_SERVICE, K_ENTERPRISE, K_AVAIL, K_CLOSE };

typedef struct rstate {
    int kind; /* K_NONE: never stored */
    int deleted;
    uint64_t version;
    uint32_t municipality;
    int32_t day;
    int sex, age_band, category;
    int type, status, person;
    int64_t amount;
    int employees, ent_status, sector;
    int avail_service, available;
    int close_bs, close_year, close_month;
} rstate;

typedef struct world {
    char dir[64], path[128];
    hubstore hs; /* the hub's own store: its schema and its upsert */
    sqlite3 *db; /* hs.db */
    rollup *r;
    uint64_t version;
    uint64_t rng;
    rstate st[N_IDS];
    rstate pending[N_IDS]; /* the batch being written; applied to st on commit */
    int32_t lo, hi;
    /* 1: records are upserted first and noted as the hub's ingest notes them
     * (rollup_note_stored, told whether the upsert inserted); 0: noted before (rollup_note). */
    int stored_path;
    int fresh_notes; /* notes that skipped the lookup of an old state (stored_path) */
} world;

static uint64_t rnd(world *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static int pick(world *w, int n)
{
    return (int)(rnd(w) % (uint64_t)n);
}

/* The 16 bytes of record number n: numbers 2k (of MUN_A) and 2k + 1 (of MUN_B) share them,
 * since the hub keys records by (municipality, id) and the same id in two municipalities is
 * two records (a service's person is looked up in its own municipality). */
static void idn(uint8_t id[16], int n)
{
    memset(id, 0, 16);
    id[0] = 0x01;
    id[7] = 0x70;
    id[15] = (uint8_t)(n / 2);
}

/* Numbers 0..19 persons, 20..47 services, 48..55 enterprises, 56..59 availability, 60..63
 * month closes; odd numbers belong to MUN_B. */
static int kind_of(int n)
{
    return n < 20   ? K_PERSON
           : n < 48 ? K_SERVICE
           : n < 56 ? K_ENTERPRISE
           : n < 60 ? K_AVAIL
                    : K_CLOSE;
}

static uint32_t mun_of(int n)
{
    return n % 2 ? MUN_B : MUN_A;
}

static const int service_types[4] = {2, 7, 8, 9}; /* counselling, seed, loan, bank account */

static void random_state(world *w, int n, rstate *s)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind_of(n);
    s->municipality = mun_of(n);
    s->day = w->lo + pick(w, w->hi - w->lo + 1);
    switch (s->kind) {
    case K_PERSON:
        s->sex = pick(w, 5); /* 4 is a value this build does not know */
        s->age_band = pick(w, 6);
        s->category = pick(w, 6);
        break;
    case K_SERVICE:
        s->type = service_types[pick(w, 4)];
        s->status = 1 + pick(w, 2);
        s->person = 2 * pick(w, 11) + (n % 2); /* same municipality; 20, 21 never exist */
        s->amount = pick(w, 4) == 0 ? -1 : 1000 * pick(w, 50);
        break;
    case K_ENTERPRISE:
        s->person = 2 * pick(w, 10) + (n % 2);
        s->employees = pick(w, 5) - 1;
        s->ent_status = pick(w, 3);
        s->sector = pick(w, 4);
        break;
    case K_AVAIL:
        s->avail_service = service_types[pick(w, 4)];
        s->available = pick(w, 2);
        break;
    default:
        s->close_bs = pick(w, 2);
        s->close_year = s->close_bs ? 2082 : 2025;
        s->close_month = 1 + pick(w, 12);
        break;
    }
}

static void pack_and_store(world *w, int n, const rstate *s, uint64_t version, int tomb)
{
    static const uint8_t inc[16] = {7};
    uint8_t id[16], ref[16];
    Reint__V1__Record rec = REINT__V1__RECORD__INIT;
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    Reint__V1__Service sv = REINT__V1__SERVICE__INIT;
    Reint__V1__Enterprise e = REINT__V1__ENTERPRISE__INIT;
    Reint__V1__Availability a = REINT__V1__AVAILABILITY__INIT;
    Reint__V1__MonthClose c = REINT__V1__MONTH_CLOSE__INIT;
    Reint__V1__Tombstone t = REINT__V1__TOMBSTONE__INIT;
    idn(id, n);
    idn(ref, s->person);
    rec.id.data = id;
    rec.id.len = 16;
    rec.municipality = s->municipality;
    rec.version = version;
    if (tomb) {
        rec.body_case = REINT__V1__RECORD__BODY_TOMBSTONE;
        rec.tombstone = &t;
        t.kind = s->kind;
    } else if (s->kind == K_PERSON) {
        rec.body_case = REINT__V1__RECORD__BODY_PERSON;
        rec.person = &p;
        p.sex = s->sex;
        p.age_band = s->age_band;
        p.category = s->category;
        pair_of(s->day, &p.registered_month, &p.registered_bs_month);
        p.years_abroad = -1;
    } else if (s->kind == K_SERVICE) {
        rec.body_case = REINT__V1__RECORD__BODY_SERVICE;
        rec.service = &sv;
        sv.person_id.data = ref;
        sv.person_id.len = 16;
        sv.type = s->type;
        sv.status = s->status;
        pair_of(s->day, &sv.month, &sv.bs_month);
        sv.amount_npr = s->amount;
    } else if (s->kind == K_ENTERPRISE) {
        rec.body_case = REINT__V1__RECORD__BODY_ENTERPRISE;
        rec.enterprise = &e;
        e.owner_id.data = ref;
        e.owner_id.len = 16;
        pair_of(s->day, &e.month, &e.bs_month);
        e.employees = s->employees;
        e.status = s->ent_status;
        e.sector = s->sector;
        e.action = 1;
    } else if (s->kind == K_AVAIL) {
        rec.body_case = REINT__V1__RECORD__BODY_AVAILABILITY;
        rec.availability = &a;
        a.service = s->avail_service;
        a.provider = 1;
        a.available = s->available;
        a.as_of_day = s->day;
    } else {
        rec.body_case = REINT__V1__RECORD__BODY_MONTH_CLOSE;
        rec.month_close = &c;
        c.bikram_sambat = s->close_bs;
        c.year = s->close_year;
        c.month = s->close_month;
        c.closed_day = s->day;
    }
    size_t len = reint__v1__record__get_packed_size(&rec);
    uint8_t buf[256];
    assert_true(len <= sizeof(buf));
    reint__v1__record__pack(&rec, buf);
    if (!w->stored_path)
        assert_int_equal(rollup_note(w->r, rec.municipality, id, version, buf, len), 0);
    hubstore_record hr = {.municipality = rec.municipality,
                          .id = id,
                          .kind = record_kind(&rec),
                          .version = version,
                          .deleted = tomb,
                          .incarnation = inc,
                          .body = buf,
                          .len = len};
    int inserted = -1;
    assert_int_equal(hubstore_put(&w->hs, &hr, &inserted), 0);
    assert_true(inserted == 0 || inserted == 1);
    if (!w->stored_path)
        return;
    /* The hub's way: the body the records table now holds (a stale replay leaves the newer
     * one), noted after the upsert. */
    sqlite3_stmt *st =
        store_prepare(w->db, "SELECT body FROM records WHERE municipality=?1 AND id=?2");
    assert_non_null(st);
    sqlite3_bind_int64(st, 1, rec.municipality);
    sqlite3_bind_blob(st, 2, id, 16, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(rollup_note_stored(w->r, rec.municipality, id, sqlite3_column_blob(st, 0),
                                        (size_t)sqlite3_column_bytes(st, 0), inserted),
                     0);
    sqlite3_finalize(st);
    w->fresh_notes += inserted;
}

/* One random change inside the open batch. */
static void random_change(world *w)
{
    int n = pick(w, N_IDS), what = pick(w, 10);
    rstate *cur = &w->pending[n];
    if (what < 6 || cur->kind == K_NONE) { /* insert or correction */
        rstate s;
        random_state(w, n, &s);
        s.version = ++w->version;
        pack_and_store(w, n, &s, s.version, 0);
        *cur = s;
    } else if (what < 8) { /* deletion */
        cur->version = ++w->version;
        pack_and_store(w, n, cur, cur->version, 1);
        cur->deleted = 1;
    } else if (cur->version > 1) { /* a stale replay of an older version: no effect */
        rstate s;
        random_state(w, n, &s);
        pack_and_store(w, n, &s, cur->version - 1, 0);
    }
}

/* Enrols (or re-enrols) m, first seen on day, with the calendar of its node's Hello (0
 * unknown, 1 BS, 2 AD): a change of either moves what is due. */
static void enrol(world *w, uint32_t m, int32_t day, int calendar)
{
    sqlite3_stmt *st = store_prepare(
        w->db, "INSERT OR REPLACE INTO nodes(municipality, incarnation, acked_seq, acked_version,"
               " resend_pending, first_seen_ms, last_hello_ms, calendar)"
               " VALUES(?1, x'00', 0, 0, 0, ?2, ?2, ?3)");
    assert_non_null(st);
    sqlite3_bind_int64(st, 1, m);
    sqlite3_bind_int64(st, 2, (int64_t)day * 86400000);
    sqlite3_bind_int(st, 3, calendar);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* --- comparisons ------------------------------------------------------------------------- */

typedef struct lines {
    char **v;
    size_t n, cap;
} lines;

static void lines_add(lines *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(char *));
        assert_non_null(l->v);
    }
    l->v[l->n] = strdup(s);
    assert_non_null(l->v[l->n]);
    l->n++;
}

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int lines_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void assert_same(lines *a, lines *b, const char *what, unsigned seed)
{
    qsort(a->v, a->n, sizeof(char *), lines_cmp);
    qsort(b->v, b->n, sizeof(char *), lines_cmp);
    for (size_t i = 0; i < a->n || i < b->n; i++) {
        const char *x = i < a->n ? a->v[i] : "(none)", *y = i < b->n ? b->v[i] : "(none)";
        if (strcmp(x, y) != 0) {
            print_error("seed %u: %s differ at line %zu:\n  %s\n  %s\n", seed, what, i, x, y);
            fail();
        }
    }
}

/* The engine's cells, one line each; only those of the listed indicator/grouping pairs when
 * subset is non-zero. */
static void dump(world *w, lines *out, int subset)
{
    sqlite3_stmt *st = store_prepare(
        w->db, "SELECT municipality, period, indicator, grouping, key, numerator, denominator,"
               " cell_key, contributors, top1, top2, numerator_key FROM rollup_cells"
               " WHERE ?1=0 OR (indicator, grouping) IN"
               " (VALUES('participants_registered',''), ('participants_registered','sex,age_band'),"
               " ('persons_served',''), ('persons_served','service_type'),"
               " ('services_delivered',''), ('seed_funding_npr',''), ('jobs_created',''),"
               " ('enterprises_active',''))");
    assert_non_null(st);
    sqlite3_bind_int(st, 1, subset);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char line[256];
        snprintf(line, sizeof(line), "%lld|%s|%s|%s|%s|%lld|%lld|%lld|%lld|%lld|%lld|%lld",
                 (long long)sqlite3_column_int64(st, 0), sqlite3_column_text(st, 1),
                 sqlite3_column_text(st, 2), sqlite3_column_text(st, 3), sqlite3_column_text(st, 4),
                 (long long)sqlite3_column_int64(st, 5), (long long)sqlite3_column_int64(st, 6),
                 (long long)sqlite3_column_int64(st, 7), (long long)sqlite3_column_int64(st, 8),
                 (long long)sqlite3_column_int64(st, 9), (long long)sqlite3_column_int64(st, 10),
                 (long long)sqlite3_column_int64(st, 11));
        lines_add(out, line);
    }
    sqlite3_finalize(st);
}

typedef struct mcell {
    char name[128];
    int64_t num, den;
    int ids[N_IDS];     /* distinct contributors (id numbers) */
    int64_t amt[N_IDS]; /* sums: what each of them adds */
    int n_ids;
    uint32_t nkey; /* ratios: the keys of the numerator's contributors */
} mcell;

typedef struct model {
    mcell *c;
    size_t n, cap;
} model;

static uint32_t model_key(int n)
{
    uint8_t id[16], h[SHA256_DIGEST_LENGTH];
    idn(id, n);
    SHA256(id, 16, h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* The key of a contribution to a sum: SHA-256 of the id followed by the amount (8 bytes,
 * big-endian). */
static uint32_t model_contribution_key(int n, int64_t amount)
{
    uint8_t b[24], h[SHA256_DIGEST_LENGTH];
    idn(b, n);
    for (int i = 0; i < 8; i++)
        b[16 + i] = (uint8_t)((uint64_t)amount >> (56 - 8 * i));
    SHA256(b, sizeof(b), h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

static void model_add(model *md, const char *name, int contributor, int64_t num, int64_t den)
{
    size_t i = 0;
    while (i < md->n && strcmp(md->c[i].name, name) != 0)
        i++;
    if (i == md->n) {
        if (md->n == md->cap) {
            md->cap = md->cap ? md->cap * 2 : 256;
            md->c = realloc(md->c, md->cap * sizeof(mcell));
            assert_non_null(md->c);
        }
        memset(&md->c[i], 0, sizeof(mcell));
        snprintf(md->c[i].name, sizeof(md->c[i].name), "%s", name);
        md->n++;
    }
    mcell *c = &md->c[i];
    c->num += num;
    c->den += den;
    if (den && num)
        c->nkey += model_key(contributor);
    for (int k = 0; k < c->n_ids; k++) {
        if (c->ids[k] == contributor) {
            c->amt[k] += num;
            return;
        }
    }
    c->amt[c->n_ids] = num;
    c->ids[c->n_ids++] = contributor;
}

static const char *sex_name(int v)
{
    static const char *n[] = {"UNKNOWN", "FEMALE", "MALE", "OTHER"};
    return v >= 0 && v < 4 ? n[v] : "UNKNOWN";
}

static const char *age_name(int v)
{
    static const char *n[] = {"UNKNOWN", "0_14", "15_24", "25_39", "40_59", "60_PLUS"};
    return v >= 0 && v < 6 ? n[v] : "UNKNOWN";
}

static const char *type_name(int v)
{
    switch (v) {
    case 2:
        return "RETURN_COUNSELLING";
    case 7:
        return "SEED_FUNDING";
    case 8:
        return "LOAN";
    default:
        return "BANK_ACCOUNT";
    }
}

/* The straightforward computation: every live record, into each of its six periods. */
static void model_compute(world *w, lines *out)
{
    model md = {NULL, 0, 0};
    char name[128];
    for (int n = 0; n < N_IDS; n++) {
        const rstate *s = &w->st[n];
        if (s->kind == K_NONE || s->deleted)
            continue;
        char p[6][16];
        periods_of(s->day, p);
        for (int k = 0; k < 6; k++) {
            unsigned m = s->municipality;
            if (s->kind == K_PERSON) {
                snprintf(name, sizeof(name), "%u|%s|participants_registered||", m, p[k]);
                model_add(&md, name, n, 1, 0);
                snprintf(name, sizeof(name), "%u|%s|participants_registered|sex,age_band|%s,%s", m,
                         p[k], sex_name(s->sex), age_name(s->age_band));
                model_add(&md, name, n, 1, 0);
            } else if (s->kind == K_SERVICE && s->status == 2) {
                snprintf(name, sizeof(name), "%u|%s|persons_served||", m, p[k]);
                model_add(&md, name, 100 + s->person, 1, 0);
                snprintf(name, sizeof(name), "%u|%s|persons_served|service_type|%s", m, p[k],
                         type_name(s->type));
                model_add(&md, name, 100 + s->person, 1, 0);
                snprintf(name, sizeof(name), "%u|%s|services_delivered||", m, p[k]);
                model_add(&md, name, n, 1, 0);
                if (s->type == 7 && s->amount >= 0) {
                    snprintf(name, sizeof(name), "%u|%s|seed_funding_npr||", m, p[k]);
                    model_add(&md, name, 100 + s->person, s->amount, 0);
                }
            } else if (s->kind == K_ENTERPRISE) {
                snprintf(name, sizeof(name), "%u|%s|enterprises_active||", m, p[k]);
                model_add(&md, name, n, s->ent_status == 1, 1);
                if (s->employees >= 0) {
                    snprintf(name, sizeof(name), "%u|%s|jobs_created||", m, p[k]);
                    model_add(&md, name, 100 + s->person, s->employees, 0);
                }
            }
        }
    }
    for (size_t i = 0; i < md.n; i++) {
        mcell *c = &md.c[i];
        int distinct =
            strstr(c->name, "|participants_registered|") || strstr(c->name, "|persons_served|");
        int sum = strstr(c->name, "|seed_funding_npr|") || strstr(c->name, "|jobs_created|");
        int64_t value = distinct ? c->n_ids : c->num;
        if (value == 0 && c->den == 0)
            continue;
        uint32_t key = 0;
        int64_t top[2] = {0, 0};
        int contributors = 0;
        for (int k = 0; k < c->n_ids; k++) {
            int id = c->ids[k] >= 100 ? c->ids[k] - 100 : c->ids[k];
            if (!sum) {
                key += model_key(id);
                contributors++;
                continue;
            }
            /* A sum's contributors are those that add something; its key changes with it. */
            if (c->amt[k] <= 0)
                continue;
            key += model_contribution_key(id, c->amt[k]);
            contributors++;
            if (c->amt[k] > top[0]) {
                top[1] = top[0];
                top[0] = c->amt[k];
            } else if (c->amt[k] > top[1]) {
                top[1] = c->amt[k];
            }
        }
        char line[256];
        snprintf(line, sizeof(line), "%s|%lld|%lld|%lld|%d|%lld|%lld|%lld", c->name,
                 (long long)value, (long long)c->den, (long long)key, contributors,
                 (long long)top[0], (long long)top[1], (long long)c->nkey);
        lines_add(out, line);
    }
    free(md.c);
}

static void check(world *w, unsigned seed)
{
    lines inc = {NULL, 0, 0}, full = {NULL, 0, 0}, mine = {NULL, 0, 0}, sub = {NULL, 0, 0};
    rollup_stats st;
    dump(w, &inc, 0);
    assert_int_equal(rollup_full(w->r, &st), 0);
    if (st.changed != 0)
        print_error("seed %u: rollup_full changed %llu snapshots\n", seed,
                    (unsigned long long)st.changed);
    dump(w, &full, 0);
    assert_same(&inc, &full, "incremental and full cells", seed);
    assert_int_equal(st.changed, 0);
    dump(w, &sub, 1);
    model_compute(w, &mine);
    assert_same(&sub, &mine, "full cells and the independent computation", seed);
    lines_free(&inc);
    lines_free(&full);
    lines_free(&mine);
    lines_free(&sub);
}

static void run_seed(unsigned seed)
{
    char err[256], cmd[160];
    world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->rng = 0x9e3779b97f4a7c15ull * (seed + 1);
    w->stored_path = (int)(seed % 2);
    w->lo = days_from_civil(2025, 6, 1); /* spans Shrawan 1, Mangsir 1 and a new year */
    w->hi = days_from_civil(2026, 1, 31);
    snprintf(w->dir, sizeof(w->dir), "/tmp/test_rollup_prop.XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->path, sizeof(w->path), "%s/hub.db", w->dir);
    assert_int_equal(hubstore_open(&w->hs, w->path, err, sizeof(err)), 0);
    w->db = w->hs.db;
    assert_int_equal(rollup_open(&w->r, w->db, err, sizeof(err)), 0);
    assert_int_equal(rollup_set_today(w->r, w->lo), 0);
    for (int b = 0; b < BATCHES; b++) {
        int what = pick(w, 10);
        if (what == 0) {
            assert_int_equal(rollup_set_today(w->r, w->lo + pick(w, 400)), 0);
        } else if (what == 1) {
            enrol(w, pick(w, 2) ? MUN_A : MUN_B, w->lo + pick(w, 200), pick(w, 3));
        } else {
            /* A rolled-back batch is followed at once, with no refresh between, by the same
             * changes committed: marks the rollback undid must not be taken as made. */
            for (int rollback = what == 2; rollback >= 0; rollback--) {
                uint64_t rng = w->rng, version = w->version;
                memcpy(w->pending, w->st, sizeof(w->st));
                assert_int_equal(store_exec(w->db, "BEGIN IMMEDIATE"), 0);
                for (int i = 1 + pick(w, 12); i > 0; i--)
                    random_change(w);
                assert_int_equal(store_exec(w->db, rollback ? "ROLLBACK" : "COMMIT"), 0);
                if (rollback) {
                    w->rng = rng;
                    w->version = version;
                } else {
                    memcpy(w->st, w->pending, sizeof(w->st));
                }
            }
        }
        if (pick(w, 3) != 0) /* marks also accumulate over several batches */
            assert_int_equal(rollup_refresh(w->r, NULL), 0);
        if (b % 20 == 19) {
            assert_int_equal(rollup_refresh(w->r, NULL), 0);
            check(w, seed);
        }
    }
    if (w->stored_path)
        assert_true(w->fresh_notes > 0); /* new records were noted without the lookup */
    rollup_close(w->r);
    hubstore_close(&w->hs);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w);
}

static void test_rollup_incremental_equals_full_equals_independent(void **state)
{
    (void)state;
    load_bs_table();
    assert_true(n_bs > 80);
    for (unsigned seed = 0; seed < SEEDS; seed++)
        run_seed(seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollup_incremental_equals_full_equals_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
