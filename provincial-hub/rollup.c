#include "rollup.h"

#include "clock.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "hlc.h"
#include "log.h"
#include "period.h"
#include "record.h"
#include "sbuf.h"
#include "store.h"

#define ROLLUP_WINDOW_DAYS    90    /* a referral's follow-up window */
#define ROLLUP_ON_TIME_DAYS   15    /* a month closed within this many days of its end is on time */
#define ROLLUP_DAY_CACHE      65536 /* (municipality, day) marks remembered per transaction */
#define ROLLUP_REFRESH_BUDGET 200   /* ms of recomputing per rollup_daily() call */
#define ROLLUP_KEY_MAX        64    /* "MIGRANT_FAMILY,PRE_DEPARTURE_ORIENTATION" and the like */

/* Dimensions the engine can group by, named as in the catalogue. */
enum rollup__dim {
    D_CATEGORY,
    D_SEX,
    D_AGE_BAND,
    D_CASTE,
    D_DISABILITY,
    D_COUNTRY,
    D_SERVICE_TYPE,
    D_PROGRAMME,
    D_PROVIDER,
    D_ACTION,
    D_SECTOR,
    D_OWNER_SEX,
    D_OWNER_CATEGORY,
    D_N
};

static const struct {
    const char *name;
    const ProtobufCEnumDescriptor *desc; /* NULL: a country code */
} rollup__dims[D_N] = {
    [D_CATEGORY] = {"category", &reint__v1__category__descriptor},
    [D_SEX] = {"sex", &reint__v1__sex__descriptor},
    [D_AGE_BAND] = {"age_band", &reint__v1__age_band__descriptor},
    [D_CASTE] = {"caste_group", &reint__v1__caste_group__descriptor},
    [D_DISABILITY] = {"disability", &reint__v1__flag__descriptor},
    [D_COUNTRY] = {"destination_country", NULL},
    [D_SERVICE_TYPE] = {"service_type", &reint__v1__service_type__descriptor},
    [D_PROGRAMME] = {"programme", &reint__v1__programme__descriptor},
    [D_PROVIDER] = {"provider", &reint__v1__provider__descriptor},
    [D_ACTION] = {"action", &reint__v1__enterprise_action__descriptor},
    [D_SECTOR] = {"sector", &reint__v1__sector__descriptor},
    [D_OWNER_SEX] = {"owner_sex", &reint__v1__sex__descriptor},
    [D_OWNER_CATEGORY] = {"owner_category", &reint__v1__category__descriptor},
};

/* Indicators the engine computes. Their aggregation and groupings come from the catalogue;
 * an indicator the catalogue does not (yet) list uses the fallback below. */
enum rollup__ind {
    I_PARTICIPANTS,
    I_RETURNEES,
    I_PERSONS_SERVED,
    I_SERVICES_DELIVERED,
    I_ENT_SUPPORTED,
    I_JOBS,
    I_ENT_ACTIVE,
    I_SEED,
    I_ENT_LOAN,
    I_BANK,
    I_NO_REMIGRATION,
    I_REFERRALS_PENDING,
    I_SERVICES_UNAVAILABLE,
    I_COMPLETENESS,
    I_TIMELINESS,
    I_N
};

static const char *const rollup__codes[I_N] = {
    [I_PARTICIPANTS] = "participants_registered",
    [I_RETURNEES] = "returnees_registered",
    [I_PERSONS_SERVED] = "persons_served",
    [I_SERVICES_DELIVERED] = "services_delivered",
    [I_ENT_SUPPORTED] = "enterprises_supported",
    [I_JOBS] = "jobs_created",
    [I_ENT_ACTIVE] = "enterprises_active",
    [I_SEED] = "seed_funding_npr",
    [I_ENT_LOAN] = "enterprises_with_loan",
    [I_BANK] = "bank_accounts_opened",
    [I_NO_REMIGRATION] = "no_remigration_intention",
    [I_REFERRALS_PENDING] = "referrals_pending",
    [I_SERVICES_UNAVAILABLE] = "services_unavailable",
    [I_COMPLETENESS] = "reporting_completeness",
    [I_TIMELINESS] = "reporting_timeliness",
};

typedef struct rollup__grouping {
    const char *name; /* normalised, as in the catalogue */
    int n;            /* dimensions: 0..2 */
    int d[2];
} rollup__grouping;

typedef struct rollup__indicator {
    const char *code;
    enum catalogue_agg agg;
    int dedupe; /* a contributor can contribute twice to one cell (a person's services) */
    int n_groupings;
    rollup__grouping g[CATALOGUE_MAX_GROUPINGS];
} rollup__indicator;

/* One cell being aggregated; its identity is packed into k (indicator, grouping, values). */
typedef struct rollup__acc {
    uint64_t k;
    int64_t sum, den, contributors;
    uint32_t ckey;
} rollup__acc;

/* Hash slots carry the generation of the computation that filled them, so that starting a
 * computation empties every table without touching it. */
typedef struct rollup__slot {
    uint32_t gen, index;
} rollup__slot;

typedef struct rollup__member {
    uint32_t gen, cell;
    uint8_t id[16];
} rollup__member;

typedef struct rollup__out {
    int pj; /* the period slot of its group */
    const char *indicator, *grouping;
    char key[ROLLUP_KEY_MAX];
    int64_t num, den, contributors;
    uint32_t ckey;
} rollup__out;

typedef struct rollup__dirty {
    uint32_t municipality;
    char period[PERIOD_MAX];
    enum period_kind kind;
    int32_t first, last;
    int bad; /* the period does not parse */
} rollup__dirty;

enum {
    S_REC_GET,
    S_MARK,
    S_MARK_MUN,
    S_P_GET,
    S_P_DEL,
    S_P_PUT,
    S_DEP_ENT,
    S_S_GET,
    S_S_DEL,
    S_S_PUT,
    S_S_REFWIN,
    S_E_GET,
    S_E_DEL,
    S_E_PUT,
    S_A_GET,
    S_A_DEL,
    S_A_PUT,
    S_A_REFDAYS,
    S_C_GET,
    S_C_DEL,
    S_C_PUT,
    S_Q_PERSONS,
    S_Q_SERVICES,
    S_Q_ENTERPRISES,
    S_Q_AVAIL,
    S_Q_CLOSE,
    S_Q_ENROLLED,
    S_DIRTY_LIST,
    S_DIRTY_COUNT,
    S_SNAP_GET,
    S_SNAP_DEL,
    S_SNAP_CLEAN,
    S_SNAP_SET,
    S_BLOB_DEL,
    S_BLOB_PUT,
    S_OUT_DEL,
    S_OUT_PUT,
    S_META_GET,
    S_META_SET,
    S_ENR_ALL,
    S_ENR_PUT,
    S_ENR_DEL,
    S_CLOSES_OF,
    S_REF_WINDOW,
    S_SWEEP_P,
    S_SWEEP_S,
    S_SWEEP_E,
    S_SWEEP_A,
    S_SWEEP_C,
    S_BLOB_GET,
    S_MAXREV,
    S_PROP_PERSON_S,
    S_PROP_PERSON_E,
    S_HAS_DEP_S,
    S_HAS_DEP_E,
    S_PROP_LOAN,
    S_DENORM_S,
    S_DENORM_E,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_N
};

static const char *const rollup__sql[S_N] = {
    [S_REC_GET] = "SELECT municipality, kind, version FROM records WHERE municipality=?2 AND id=?1",
    [S_MARK] = "INSERT INTO rollup_snapshots(municipality, period, revision, dirty, digest, ncells)"
               " VALUES(?1,?2,0,1,0,0) ON CONFLICT(municipality, period) DO UPDATE SET dirty=1"
               " WHERE dirty=0",
    [S_MARK_MUN] = "UPDATE rollup_snapshots SET dirty=1 WHERE municipality=?1 AND dirty=0",
    [S_P_GET] = "SELECT municipality, day FROM rollup_person WHERE id=?1",
    [S_P_DEL] = "DELETE FROM rollup_person WHERE id=?1",
    [S_P_PUT] = "INSERT OR REPLACE INTO rollup_person(id, municipality, day, category, sex,"
                " age_band, caste_group, disability, country, intention, ckey)"
                " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
    [S_DEP_ENT] = "SELECT day FROM rollup_enterprise INDEXED BY rollup_enterprise_owner"
                  " WHERE owner=?1 AND municipality=?2",
    [S_S_GET] = "SELECT municipality, day, person, type, status FROM rollup_service WHERE id=?1",
    [S_S_DEL] = "DELETE FROM rollup_service WHERE id=?1",
    [S_S_PUT] = "INSERT OR REPLACE INTO rollup_service(id, municipality, person, day, type,"
                " status, provider, programme, amount, ckey, pkey, psex, pcategory)"
                " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,"
                " ifnull((SELECT sex FROM rollup_person WHERE id=?3 AND municipality=?2), 0),"
                " ifnull((SELECT category FROM rollup_person WHERE id=?3 AND municipality=?2), 0))",
    [S_S_REFWIN] = "SELECT day FROM rollup_service INDEXED BY rollup_service_person"
                   " WHERE person=?1 AND type=?2 AND day BETWEEN"
                   " ?3 AND ?4 AND status=1 AND municipality=?5",
    [S_E_GET] = "SELECT municipality, day FROM rollup_enterprise WHERE id=?1",
    [S_E_DEL] = "DELETE FROM rollup_enterprise WHERE id=?1",
    [S_E_PUT] = "INSERT OR REPLACE INTO rollup_enterprise(id, municipality, owner, day, action,"
                " sector, employees, status, ckey, osex, ocategory, loan_day)"
                " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,"
                " ifnull((SELECT sex FROM rollup_person WHERE id=?3 AND municipality=?2), 0),"
                " ifnull((SELECT category FROM rollup_person WHERE id=?3 AND municipality=?2), 0),"
                " (SELECT min(day) FROM rollup_service INDEXED BY rollup_service_person"
                "  WHERE person=?3 AND type=8 AND status=2 AND municipality=?2))",
    [S_A_GET] = "SELECT municipality, service FROM rollup_availability WHERE id=?1",
    [S_A_DEL] = "DELETE FROM rollup_availability WHERE id=?1",
    [S_A_PUT] = "INSERT OR REPLACE INTO rollup_availability(id, municipality, service, provider,"
                " available, as_of_day) VALUES(?1,?2,?3,?4,?5,?6)",
    [S_A_REFDAYS] = "SELECT DISTINCT day FROM rollup_service WHERE municipality=?1 AND type=?2"
                    " AND status=1",
    [S_C_GET] = "SELECT municipality, bs, year, month FROM rollup_close WHERE id=?1",
    [S_C_DEL] = "DELETE FROM rollup_close WHERE id=?1",
    [S_C_PUT] = "INSERT OR REPLACE INTO rollup_close(id, municipality, bs, year, month,"
                " closed_day) VALUES(?1,?2,?3,?4,?5,?6)",
    [S_Q_PERSONS] = "SELECT id, category, sex, age_band, caste_group, disability, country,"
                    " intention, ckey, day FROM rollup_person"
                    " WHERE municipality=?1 AND day BETWEEN ?2 AND ?3",
    [S_Q_SERVICES] =
        "SELECT id, ckey, person, pkey, type, status, provider, programme, amount, psex,"
        " pcategory, status=1 AND day+90<=?4 AND NOT EXISTS(SELECT 1 FROM rollup_service d"
        "  INDEXED BY rollup_service_person WHERE d.person=s.person AND d.type=s.type"
        "  AND d.day BETWEEN s.day AND s.day+90 AND d.status=2 AND d.municipality=s.municipality)"
        ", day FROM rollup_service s WHERE municipality=?1 AND day BETWEEN ?2 AND ?3",
    [S_Q_ENTERPRISES] = "SELECT id, ckey, action, sector, employees, status, osex, ocategory,"
                        " loan_day, day FROM rollup_enterprise"
                        " WHERE municipality=?1 AND day BETWEEN ?2 AND ?3",
    [S_Q_AVAIL] = "SELECT service, provider, available, as_of_day, id FROM rollup_availability"
                  " WHERE municipality=?1",
    [S_Q_CLOSE] = "SELECT min(closed_day) FROM rollup_close WHERE municipality=?1 AND bs=?2"
                  " AND year=?3 AND month=?4",
    [S_Q_ENROLLED] = "SELECT first_day FROM rollup_enrolled WHERE municipality=?1",
    [S_DIRTY_LIST] = "SELECT municipality, period FROM rollup_snapshots WHERE dirty=1",
    [S_DIRTY_COUNT] = "SELECT count(*) FROM rollup_snapshots WHERE dirty=1",
    [S_SNAP_GET] = "SELECT revision, digest, ncells FROM rollup_snapshots"
                   " WHERE municipality=?1 AND period=?2",
    [S_SNAP_DEL] = "DELETE FROM rollup_snapshots WHERE municipality=?1 AND period=?2",
    [S_SNAP_CLEAN] = "UPDATE rollup_snapshots SET dirty=0 WHERE municipality=?1 AND period=?2",
    [S_SNAP_SET] = "UPDATE rollup_snapshots SET revision=?3, digest=?4, ncells=?5, dirty=0"
                   " WHERE municipality=?1 AND period=?2",
    [S_BLOB_DEL] = "DELETE FROM rollup_blobs WHERE municipality=?1 AND period=?2",
    [S_BLOB_PUT] = "INSERT INTO rollup_blobs(municipality, period, cells) VALUES(?1,?2,?3)"
                   " ON CONFLICT(municipality, period) DO UPDATE SET cells=excluded.cells",
    [S_OUT_DEL] = "DELETE FROM rollup_outbox WHERE municipality=?1 AND period=?2",
    [S_OUT_PUT] = "INSERT INTO rollup_outbox(municipality, period, revision) VALUES(?1,?2,?3)",
    [S_META_GET] = "SELECT value FROM meta WHERE key=?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1,?2)"
                   " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    [S_ENR_ALL] = "SELECT municipality, first_day FROM rollup_enrolled",
    [S_ENR_PUT] = "INSERT OR REPLACE INTO rollup_enrolled(municipality, first_day) VALUES(?1,?2)",
    [S_ENR_DEL] = "DELETE FROM rollup_enrolled WHERE municipality=?1",
    [S_CLOSES_OF] = "SELECT bs, year, month FROM rollup_close WHERE municipality=?1",
    [S_REF_WINDOW] = "SELECT municipality, day FROM rollup_service WHERE status=1"
                     " AND day BETWEEN ?1 AND ?2",
    [S_SWEEP_P] = "DELETE FROM rollup_person WHERE municipality=?1 AND id NOT IN"
                  " (SELECT id FROM records WHERE municipality=?1 AND deleted=0)",
    [S_SWEEP_S] = "DELETE FROM rollup_service WHERE municipality=?1 AND id NOT IN"
                  " (SELECT id FROM records WHERE municipality=?1 AND deleted=0)",
    [S_SWEEP_E] = "DELETE FROM rollup_enterprise WHERE municipality=?1 AND id NOT IN"
                  " (SELECT id FROM records WHERE municipality=?1 AND deleted=0)",
    [S_SWEEP_A] = "DELETE FROM rollup_availability WHERE municipality=?1 AND id NOT IN"
                  " (SELECT id FROM records WHERE municipality=?1 AND deleted=0)",
    [S_SWEEP_C] = "DELETE FROM rollup_close WHERE municipality=?1 AND id NOT IN"
                  " (SELECT id FROM records WHERE municipality=?1 AND deleted=0)",
    [S_BLOB_GET] = "SELECT cells FROM rollup_blobs WHERE municipality=?1 AND period=?2",
    [S_MAXREV] = "SELECT max(revision) FROM rollup_snapshots",
    [S_PROP_PERSON_S] = "UPDATE rollup_service INDEXED BY rollup_service_person SET psex=?3,"
                        " pcategory=?4 WHERE person=?1 AND municipality=?2 RETURNING day",
    [S_PROP_PERSON_E] = "UPDATE rollup_enterprise INDEXED BY rollup_enterprise_owner SET osex=?3,"
                        " ocategory=?4 WHERE owner=?1 AND municipality=?2 RETURNING day",
    [S_HAS_DEP_S] = "SELECT 1 FROM rollup_service INDEXED BY rollup_service_person"
                    " WHERE person=?1 AND municipality=?2 LIMIT 1",
    [S_HAS_DEP_E] = "SELECT 1 FROM rollup_enterprise INDEXED BY rollup_enterprise_owner"
                    " WHERE owner=?1 AND municipality=?2 LIMIT 1",
    [S_PROP_LOAN] = "UPDATE rollup_enterprise INDEXED BY rollup_enterprise_owner SET loan_day="
                    "(SELECT min(day) FROM rollup_service INDEXED BY rollup_service_person"
                    "  WHERE person=?1 AND type=8 AND status=2 AND municipality=?2)"
                    " WHERE owner=?1 AND municipality=?2",
    [S_DENORM_S] = "UPDATE rollup_service SET"
                   " psex=ifnull((SELECT sex FROM rollup_person p WHERE p.id=rollup_service.person"
                   "  AND p.municipality=rollup_service.municipality), 0),"
                   " pcategory=ifnull((SELECT category FROM rollup_person p"
                   "  WHERE p.id=rollup_service.person"
                   "  AND p.municipality=rollup_service.municipality), 0)"
                   " WHERE ?1=0 OR municipality=?1",
    [S_DENORM_E] =
        "UPDATE rollup_enterprise SET"
        " osex=ifnull((SELECT sex FROM rollup_person p WHERE p.id=rollup_enterprise.owner"
        "  AND p.municipality=rollup_enterprise.municipality), 0),"
        " ocategory=ifnull((SELECT category FROM rollup_person p"
        "  WHERE p.id=rollup_enterprise.owner"
        "  AND p.municipality=rollup_enterprise.municipality), 0),"
        " loan_day=(SELECT min(day) FROM rollup_service l INDEXED BY rollup_service_person"
        "  WHERE l.person=rollup_enterprise.owner AND l.type=8 AND l.status=2"
        "  AND l.municipality=rollup_enterprise.municipality)"
        " WHERE ?1=0 OR municipality=?1",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
};

/* Bumped whenever the shadow tables change shape: the engine then drops and rebuilds them. */
/* 3: a snapshot's cells are one blob (rollup_blobs) instead of one row each (rollup_cells,
 * now a virtual table over the blobs). */
#define ROLLUP_SCHEMA_VERSION 3

static const char *rollup__drop_shadow =
    "DROP TABLE IF EXISTS rollup_person; DROP TABLE IF EXISTS rollup_service;"
    "DROP TABLE IF EXISTS rollup_enterprise; DROP TABLE IF EXISTS rollup_availability;"
    "DROP TABLE IF EXISTS rollup_close; DROP TABLE IF EXISTS rollup_cells;"
    "DELETE FROM meta WHERE key='rollup_built';";

/* After a shadow of another shape was dropped: every snapshot is written again by the
 * rebuild (a digest of 0 matches nothing), so that cells stored in an older shape are
 * replaced; each then goes out with a new revision. */
static const char *rollup__rewrite_all = "UPDATE rollup_snapshots SET digest=0";

/* The shadow tables are clustered by (municipality, day), so that computing a period is one
 * sequential range scan; a service and an enterprise also carry their person's sex and
 * category (and an enterprise its owner's earliest delivered loan day), kept up to date when
 * the person or the loan changes, so that the scan needs no join. */
static const char *rollup__schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rollup_person(id BLOB NOT NULL, municipality INTEGER NOT NULL,"
    " day INTEGER NOT NULL, category INTEGER NOT NULL, sex INTEGER NOT NULL,"
    " age_band INTEGER NOT NULL, caste_group INTEGER NOT NULL, disability INTEGER NOT NULL,"
    " country INTEGER NOT NULL, intention INTEGER NOT NULL, ckey INTEGER NOT NULL,"
    " PRIMARY KEY(municipality, day, id)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS rollup_person_id ON rollup_person(id);"
    "CREATE TABLE IF NOT EXISTS rollup_service(id BLOB NOT NULL, municipality INTEGER NOT NULL,"
    " person BLOB NOT NULL, day INTEGER NOT NULL, type INTEGER NOT NULL, status INTEGER NOT NULL,"
    " provider INTEGER NOT NULL, programme INTEGER NOT NULL, amount INTEGER NOT NULL,"
    " ckey INTEGER NOT NULL, pkey INTEGER NOT NULL, psex INTEGER NOT NULL,"
    " pcategory INTEGER NOT NULL, PRIMARY KEY(municipality, day, id)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS rollup_service_id ON rollup_service(id);"
    "CREATE INDEX IF NOT EXISTS rollup_service_person ON rollup_service(person, type, day);"
    "CREATE INDEX IF NOT EXISTS rollup_service_referred ON rollup_service(day) WHERE status=1;"
    "CREATE TABLE IF NOT EXISTS rollup_enterprise(id BLOB NOT NULL,"
    " municipality INTEGER NOT NULL, owner BLOB NOT NULL, day INTEGER NOT NULL,"
    " action INTEGER NOT NULL, sector INTEGER NOT NULL, employees INTEGER NOT NULL,"
    " status INTEGER NOT NULL, ckey INTEGER NOT NULL, osex INTEGER NOT NULL,"
    " ocategory INTEGER NOT NULL, loan_day INTEGER, PRIMARY KEY(municipality, day, id))"
    " WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS rollup_enterprise_id ON rollup_enterprise(id);"
    "CREATE INDEX IF NOT EXISTS rollup_enterprise_owner ON rollup_enterprise(owner);"
    "CREATE TABLE IF NOT EXISTS rollup_availability(id BLOB PRIMARY KEY,"
    " municipality INTEGER NOT NULL, service INTEGER NOT NULL, provider INTEGER NOT NULL,"
    " available INTEGER NOT NULL, as_of_day INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollup_availability_mun ON rollup_availability(municipality);"
    "CREATE TABLE IF NOT EXISTS rollup_close(id BLOB PRIMARY KEY, municipality INTEGER NOT NULL,"
    " bs INTEGER NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL,"
    " closed_day INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollup_close_month ON rollup_close(municipality, bs, year, month);"
    "CREATE TABLE IF NOT EXISTS rollup_enrolled(municipality INTEGER PRIMARY KEY,"
    " first_day INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rollup_snapshots(municipality INTEGER NOT NULL,"
    " period TEXT NOT NULL, revision INTEGER NOT NULL, dirty INTEGER NOT NULL,"
    " digest INTEGER NOT NULL, ncells INTEGER NOT NULL, PRIMARY KEY(municipality, period))"
    " WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollup_snapshots_dirty ON rollup_snapshots(dirty) WHERE dirty=1;"
    "CREATE TABLE IF NOT EXISTS rollup_blobs(municipality INTEGER NOT NULL, period TEXT NOT NULL,"
    " cells BLOB NOT NULL, PRIMARY KEY(municipality, period));"
    "CREATE TABLE IF NOT EXISTS rollup_outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " municipality INTEGER NOT NULL, period TEXT NOT NULL, revision INTEGER NOT NULL,"
    " UNIQUE(municipality, period));";

/* A changed snapshot waiting for its outbox entry. */
typedef struct {
    uint32_t municipality;
    char period[PERIOD_MAX];
    uint64_t revision;
} rollup__queued;

struct rollup {
    sqlite3 *db;
    EVP_MD *sha256; /* fetched once: the one-shot SHA256() fetches it on every call */
    EVP_MD_CTX *sha_ctx;
    sqlite3_stmt *q[S_N];
    sqlite3_stmt *nodes; /* NULL when the store has no nodes table */
    rollup__indicator ind[I_N];
    hlc clock;
    int32_t today;
    uint64_t next_refresh_ms; /* rollup_daily() skips refreshing before this wall clock */
    uint64_t deadline_ms;     /* a refresh stops after the group that passes it (0: none) */
    int more;                 /* the last refresh stopped at its deadline, dirt remains */
    /* (municipality, day) pairs already marked in the open transaction. */
    uint64_t *day_cache;
    size_t day_cache_n;
    /* Aggregation scratch, reused by every computation. */
    rollup__acc *acc;
    size_t n_acc, cap_acc;
    rollup__slot *acc_slots;
    size_t n_acc_slots;
    uint32_t gen;
    rollup__member *mem;
    size_t n_mem, n_mem_slots;
    rollup__out *out;
    size_t cap_out;
    /* Outbox entries of the refresh under way, written at its end in period order. */
    rollup__queued *queued;
    size_t n_queued, cap_queued;
    sbuf blob; /* the packed cells of the snapshot being stored */
};

/* --- small helpers ------------------------------------------------------------------------ */

static uint64_t rollup__mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint32_t rollup_contributor_key(const uint8_t id[16])
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(id, 16, h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

/* rollup_contributor_key() with the engine's digest context. */
static uint32_t rollup__key(rollup *r, const uint8_t id[16])
{
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (r->sha256 == NULL || r->sha_ctx == NULL ||
        EVP_DigestInit_ex(r->sha_ctx, r->sha256, NULL) != 1 ||
        EVP_DigestUpdate(r->sha_ctx, id, 16) != 1 || EVP_DigestFinal_ex(r->sha_ctx, h, &n) != 1 ||
        n < 4)
        return rollup_contributor_key(id);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

static int rollup__fail(rollup *r, const char *what)
{
    log_error("rollup: %s: %s", what, sqlite3_errmsg(r->db));
    return REINT_EDB;
}

/* Steps a statement that returns no rows and resets it. */
static int rollup__exec(rollup *r, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return rollup__fail(r, sqlite3_sql(st));
    return 0;
}

static void rollup__bind_mp(sqlite3_stmt *st, uint32_t municipality, const char *period)
{
    sqlite3_bind_int64(st, 1, municipality);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
}

/* The value of an enumeration as counted: values this build does not know are UNKNOWN (0). */
static int rollup__enum(const ProtobufCEnumDescriptor *d, int v)
{
    return v > 0 && protobuf_c_enum_descriptor_get_value(d, v) ? v : 0;
}

static int rollup__country(const char *c)
{
    if (c == NULL || strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z')
        return 0;
    return (unsigned char)c[0] << 8 | (unsigned char)c[1];
}

static int rollup__meta_get(rollup *r, const char *key, int64_t *v)
{
    sqlite3_stmt *st = r->q[S_META_GET];
    int found = 0;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        found = 1;
    }
    sqlite3_reset(st);
    return found;
}

static int rollup__meta_set(rollup *r, const char *key, int64_t v)
{
    sqlite3_stmt *st = r->q[S_META_SET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return rollup__exec(r, st);
}

/* Runs fn inside a transaction of its own unless the caller already holds one. */
static int rollup__begin(rollup *r, int *own)
{
    *own = sqlite3_get_autocommit(r->db) != 0;
    return *own ? rollup__exec(r, r->q[S_BEGIN]) : 0;
}

static int rollup__end(rollup *r, int own, int rc)
{
    if (!own)
        return rc;
    if (rc == 0 && rollup__exec(r, r->q[S_COMMIT]) == 0)
        return 0;
    if (!sqlite3_get_autocommit(r->db))
        rollup__exec(r, r->q[S_ROLLBACK]);
    return rc ? rc : REINT_EDB;
}

/* --- dirty marks -------------------------------------------------------------------------- */

static int rollup__mark_period(rollup *r, uint32_t municipality, const char *period)
{
    if (period[0] == '\0')
        return 0;
    sqlite3_stmt *st = r->q[S_MARK];
    rollup__bind_mp(st, municipality, period);
    return rollup__exec(r, st);
}

static void rollup__forget_marks(rollup *r)
{
    if (r->day_cache_n) {
        memset(r->day_cache, 0, ROLLUP_DAY_CACHE * sizeof(uint64_t));
        r->day_cache_n = 0;
    }
}

static void rollup__on_rollback(void *ud)
{
    rollup__forget_marks(ud);
}

/* Marks the six periods containing day. Pairs already marked in this transaction are
 * remembered, so a batch of records of the same days costs one probe each. */
static int rollup__mark_day(rollup *r, uint32_t municipality, int32_t day)
{
    uint64_t key = ((uint64_t)municipality << 32 | (uint32_t)day) + 1; /* never 0 */
    size_t mask = ROLLUP_DAY_CACHE - 1, i = (size_t)rollup__mix(key) & mask;
    for (;; i = (i + 1) & mask) {
        if (r->day_cache[i] == key)
            return 0;
        if (r->day_cache[i] == 0)
            break;
    }
    char p[PERIOD_KINDS][PERIOD_MAX];
    period_of_day(day, p);
    for (int k = 0; k < PERIOD_KINDS; k++) {
        int rc = rollup__mark_period(r, municipality, p[k]);
        if (rc)
            return rc;
    }
    if (r->day_cache_n >= ROLLUP_DAY_CACHE / 2)
        rollup__forget_marks(r);
    else {
        r->day_cache[i] = key;
        r->day_cache_n++;
    }
    return 0;
}

/* Marks the days a one-column query returns (bound by the caller), then resets it. */
static int rollup__mark_days_of(rollup *r, uint32_t municipality, sqlite3_stmt *st)
{
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = rollup__mark_day(r, municipality, sqlite3_column_int(st, 0))) != 0)
            break;
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__fail(r, sqlite3_sql(st));
    sqlite3_reset(st);
    return rc;
}

/* Months (Gregorian and BS) whose last day lies in [lo, hi). */
static int rollup__mark_months_ending(rollup *r, uint32_t municipality, int32_t lo, int32_t hi)
{
    static const int kinds[2] = {PERIOD_MONTH, PERIOD_BS_MONTH};
    for (int k = 0; k < 2; k++) {
        for (int32_t d = lo; d < hi;) {
            char p[PERIOD_KINDS][PERIOD_MAX];
            enum period_kind kind;
            int32_t first, last;
            period_of_day(d, p);
            if (p[kinds[k]][0] == '\0' || period_parse(p[kinds[k]], &kind, &first, &last) != 0)
                break;
            if (last < hi) {
                int rc = rollup__mark_period(r, municipality, p[kinds[k]]);
                if (rc)
                    return rc;
            }
            d = last + 1;
        }
    }
    return 0;
}

static void rollup__month_period(int bs, int year, int month, char out[PERIOD_MAX])
{
    if (bs)
        snprintf(out, PERIOD_MAX, "BS%04d-%02d", year, month);
    else
        snprintf(out, PERIOD_MAX, "%04d-%02d", year, month);
}

int rollup_mark(rollup *r, uint32_t municipality)
{
    sqlite3_stmt *st = r->q[S_MARK_MUN];
    sqlite3_bind_int64(st, 1, municipality);
    return rollup__exec(r, st);
}

/* --- the shadow ------------------------------------------------------------------------- */

/* Marks what a service's state affects: its own day; when delivered, the same person's
 * referrals of that type whose window holds it and, for a loan, the owner's enterprises. */
static int rollup__mark_service(rollup *r, uint32_t m, const uint8_t *person, int32_t day, int type,
                                int status)
{
    int rc = rollup__mark_day(r, m, day);
    if (rc || status != REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED)
        return rc;
    sqlite3_stmt *st = r->q[S_S_REFWIN];
    sqlite3_bind_blob(st, 1, person, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, type);
    sqlite3_bind_int(st, 3, day - ROLLUP_WINDOW_DAYS);
    sqlite3_bind_int(st, 4, day);
    sqlite3_bind_int64(st, 5, m);
    if ((rc = rollup__mark_days_of(r, m, st)) != 0)
        return rc;
    if (type == REINT__V1__SERVICE_TYPE__SERVICE_TYPE_LOAN) {
        st = r->q[S_DEP_ENT];
        sqlite3_bind_blob(st, 1, person, 16, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, m);
        rc = rollup__mark_days_of(r, m, st);
    }
    return rc;
}

static int rollup__mark_availability(rollup *r, uint32_t m, int service)
{
    sqlite3_stmt *st = r->q[S_A_REFDAYS];
    sqlite3_bind_int64(st, 1, m);
    sqlite3_bind_int(st, 2, service);
    return rollup__mark_days_of(r, m, st);
}

/* Marks what a person's state affects, its registration day and the days of its services
 * and enterprises, and copies its sex and category (zeros: the person is gone) into those.
 * One statement per table both updates the dependents and returns their days. */
static int rollup__person_changed(rollup *r, uint32_t m, const uint8_t *id, int32_t day, int sex,
                                  int category)
{
    int rc = rollup__mark_day(r, m, day);
    for (int s = S_PROP_PERSON_S; rc == 0 && s <= S_PROP_PERSON_E; s++) {
        /* Most persons have no services or enterprises yet when they arrive (a node sends in
         * time order): a probe finds that without the UPDATE ... RETURNING, which builds a
         * temporary table for its results even when no row matches. */
        sqlite3_stmt *has = r->q[S_HAS_DEP_S + (s - S_PROP_PERSON_S)];
        sqlite3_bind_blob(has, 1, id, 16, SQLITE_TRANSIENT);
        sqlite3_bind_int64(has, 2, m);
        int found = sqlite3_step(has);
        sqlite3_reset(has);
        if (found == SQLITE_DONE)
            continue;
        if (found != SQLITE_ROW)
            return rollup__fail(r, "dependents lookup");
        sqlite3_stmt *st = r->q[s];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_int(st, 3, sex);
        sqlite3_bind_int(st, 4, category);
        rc = rollup__mark_days_of(r, m, st);
    }
    return rc;
}

/* Recomputes the earliest delivered loan day that the person's enterprises carry. */
static int rollup__propagate_loan(rollup *r, uint32_t m, const uint8_t *person)
{
    sqlite3_stmt *st = r->q[S_PROP_LOAN];
    sqlite3_bind_blob(st, 1, person, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, m);
    return rollup__exec(r, st);
}

/* Rewrites the person and loan columns of every service and enterprise of municipality m
 * (0: of all), after changes that bypassed the per-record propagation. */
static int rollup__denormalize(rollup *r, uint32_t m)
{
    int rc = 0;
    for (int s = S_DENORM_S; rc == 0 && s <= S_DENORM_E; s++) {
        sqlite3_bind_int64(r->q[s], 1, m);
        rc = rollup__exec(r, r->q[s]);
    }
    return rc;
}

/* Removes the shadow row of id (of the given kind); when incremental, keeps the copies in
 * dependent rows right and marks what its state affected. */
static int rollup__remove(rollup *r, const uint8_t *id, int kind, int incremental)
{
    sqlite3_stmt *get, *del;
    int rc = 0;
    switch (kind) {
    case REINT__V1__RECORD_KIND__RECORD_KIND_PERSON:
        get = r->q[S_P_GET], del = r->q[S_P_DEL];
        break;
    case REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE:
        get = r->q[S_S_GET], del = r->q[S_S_DEL];
        break;
    case REINT__V1__RECORD_KIND__RECORD_KIND_ENTERPRISE:
        get = r->q[S_E_GET], del = r->q[S_E_DEL];
        break;
    case REINT__V1__RECORD_KIND__RECORD_KIND_AVAILABILITY:
        get = r->q[S_A_GET], del = r->q[S_A_DEL];
        break;
    case REINT__V1__RECORD_KIND__RECORD_KIND_MONTH_CLOSE:
        get = r->q[S_C_GET], del = r->q[S_C_DEL];
        break;
    default:
        return 0;
    }
    sqlite3_bind_blob(get, 1, id, 16, SQLITE_STATIC);
    int s = sqlite3_step(get);
    if (s != SQLITE_ROW) {
        sqlite3_reset(get);
        return s == SQLITE_DONE ? 0 : rollup__fail(r, "shadow lookup");
    }
    uint32_t m = (uint32_t)sqlite3_column_int64(get, 0);
    int32_t day = sqlite3_column_int(get, 1);
    uint8_t person[16] = {0};
    int type = 0, status = 0, bs = 0, year = 0, month = 0;
    if (kind == REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE) {
        if (sqlite3_column_bytes(get, 2) == 16)
            memcpy(person, sqlite3_column_blob(get, 2), 16);
        type = sqlite3_column_int(get, 3);
        status = sqlite3_column_int(get, 4);
    } else if (kind == REINT__V1__RECORD_KIND__RECORD_KIND_MONTH_CLOSE) {
        bs = sqlite3_column_int(get, 1);
        year = sqlite3_column_int(get, 2);
        month = sqlite3_column_int(get, 3);
    }
    sqlite3_reset(get);
    sqlite3_bind_blob(del, 1, id, 16, SQLITE_STATIC);
    if ((rc = rollup__exec(r, del)) != 0 || !incremental)
        return rc;
    switch (kind) {
    case REINT__V1__RECORD_KIND__RECORD_KIND_PERSON:
        return rollup__person_changed(r, m, id, day, 0, 0);
    case REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE:
        if (type == REINT__V1__SERVICE_TYPE__SERVICE_TYPE_LOAN &&
            status == REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED &&
            (rc = rollup__propagate_loan(r, m, person)) != 0)
            return rc;
        return rollup__mark_service(r, m, person, day, type, status);
    case REINT__V1__RECORD_KIND__RECORD_KIND_ENTERPRISE:
        return rollup__mark_day(r, m, day);
    case REINT__V1__RECORD_KIND__RECORD_KIND_AVAILABILITY:
        return rollup__mark_availability(r, m, day /* S_A_GET's second column: the service */);
    default: {
        char p[PERIOD_MAX];
        rollup__month_period(bs, year, month, p);
        return rollup__mark_period(r, m, p);
    }
    }
}

/* Writes the shadow row of a live record; when incremental, keeps the copies in dependent
 * rows right and marks what its state affects. */
static int rollup__apply(rollup *r, const Reint__V1__Record *rec, int incremental)
{
    uint32_t m = rec->municipality;
    const uint8_t *id = rec->id.data;
    sqlite3_stmt *st;
    int rc;
    switch (rec->body_case) {
    case REINT__V1__RECORD__BODY_PERSON: {
        const Reint__V1__Person *p = rec->person;
        st = r->q[S_P_PUT];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_int(st, 3, p->registered_day);
        sqlite3_bind_int(st, 4, (int)p->category);
        sqlite3_bind_int(st, 5, (int)p->sex);
        sqlite3_bind_int(st, 6, (int)p->age_band);
        sqlite3_bind_int(st, 7, (int)p->caste_group);
        sqlite3_bind_int(st, 8, (int)p->disability);
        sqlite3_bind_int(st, 9, rollup__country(p->destination_country));
        sqlite3_bind_int(st, 10, (int)p->remigration_intention);
        sqlite3_bind_int64(st, 11, rollup__key(r, id));
        if ((rc = rollup__exec(r, st)) != 0 || !incremental)
            return rc;
        return rollup__person_changed(r, m, id, p->registered_day, (int)p->sex, (int)p->category);
    }
    case REINT__V1__RECORD__BODY_SERVICE: {
        const Reint__V1__Service *s = rec->service;
        if (s->person_id.len != 16)
            return REINT_EINVAL;
        st = r->q[S_S_PUT];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_blob(st, 3, s->person_id.data, 16, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, s->day);
        sqlite3_bind_int(st, 5, (int)s->type);
        sqlite3_bind_int(st, 6, (int)s->status);
        sqlite3_bind_int(st, 7, (int)s->provider);
        sqlite3_bind_int(st, 8, (int)s->programme);
        sqlite3_bind_int64(st, 9, s->amount_npr);
        sqlite3_bind_int64(st, 10, rollup__key(r, id));
        sqlite3_bind_int64(st, 11, rollup__key(r, s->person_id.data));
        if ((rc = rollup__exec(r, st)) != 0 || !incremental)
            return rc;
        if (s->type == REINT__V1__SERVICE_TYPE__SERVICE_TYPE_LOAN &&
            s->status == REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED &&
            (rc = rollup__propagate_loan(r, m, s->person_id.data)) != 0)
            return rc;
        return rollup__mark_service(r, m, s->person_id.data, s->day, (int)s->type, (int)s->status);
    }
    case REINT__V1__RECORD__BODY_ENTERPRISE: {
        const Reint__V1__Enterprise *e = rec->enterprise;
        if (e->owner_id.len != 16)
            return REINT_EINVAL;
        st = r->q[S_E_PUT];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_blob(st, 3, e->owner_id.data, 16, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, e->day);
        sqlite3_bind_int(st, 5, (int)e->action);
        sqlite3_bind_int(st, 6, (int)e->sector);
        sqlite3_bind_int(st, 7, e->employees);
        sqlite3_bind_int(st, 8, (int)e->status);
        sqlite3_bind_int64(st, 9, rollup__key(r, id));
        if ((rc = rollup__exec(r, st)) != 0 || !incremental)
            return rc;
        return rollup__mark_day(r, m, e->day);
    }
    case REINT__V1__RECORD__BODY_AVAILABILITY: {
        const Reint__V1__Availability *a = rec->availability;
        st = r->q[S_A_PUT];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_int(st, 3, (int)a->service);
        sqlite3_bind_int(st, 4, (int)a->provider);
        sqlite3_bind_int(st, 5, a->available ? 1 : 0);
        sqlite3_bind_int(st, 6, a->as_of_day);
        if ((rc = rollup__exec(r, st)) != 0 || !incremental)
            return rc;
        return rollup__mark_availability(r, m, (int)a->service);
    }
    case REINT__V1__RECORD__BODY_MONTH_CLOSE: {
        const Reint__V1__MonthClose *c = rec->month_close;
        st = r->q[S_C_PUT];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_int(st, 3, c->bikram_sambat ? 1 : 0);
        sqlite3_bind_int(st, 4, c->year);
        sqlite3_bind_int(st, 5, c->month);
        sqlite3_bind_int(st, 6, c->closed_day);
        if ((rc = rollup__exec(r, st)) != 0 || !incremental)
            return rc;
        char p[PERIOD_MAX];
        rollup__month_period(c->bikram_sambat, c->year, c->month, p);
        return rollup__mark_period(r, m, p);
    }
    default:
        return 0; /* tombstones and bodies this build does not know hold nothing */
    }
}

int rollup_note(rollup *r, uint32_t municipality, const uint8_t id[16], uint64_t version,
                const uint8_t *body, size_t len)
{
    sqlite3_stmt *st = r->q[S_REC_GET];
    int old_kind = -1, rc;
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, municipality);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        uint32_t m = (uint32_t)sqlite3_column_int64(st, 0);
        uint64_t v = (uint64_t)sqlite3_column_int64(st, 2);
        old_kind = sqlite3_column_int(st, 1);
        sqlite3_reset(st);
        if (m != municipality || v >= version)
            return 0; /* the upsert will change nothing */
    } else {
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            return rollup__fail(r, "records lookup");
    }
    Reint__V1__Record *rec = reint__v1__record__unpack(NULL, len, body);
    if (rec == NULL)
        return REINT_EINVAL;
    if (rec->id.len != 16 || memcmp(rec->id.data, id, 16) != 0 ||
        rec->municipality != municipality) {
        rc = REINT_EINVAL;
        goto out;
    }
    if (old_kind >= 0 && (rc = rollup__remove(r, id, old_kind, 1)) != 0)
        goto out;
    rc = rollup__apply(r, rec, 1);
out:
    reint__v1__record__free_unpacked(rec, NULL);
    return rc;
}

int rollup_note_stored(rollup *r, uint32_t municipality, const uint8_t id[16], const uint8_t *body,
                       size_t len)
{
    int rc = 0;
    Reint__V1__Record *rec = reint__v1__record__unpack(NULL, len, body);
    if (rec == NULL)
        return REINT_EINVAL;
    if (rec->id.len != 16 || memcmp(rec->id.data, id, 16) != 0 ||
        rec->municipality != municipality) {
        rc = REINT_EINVAL;
        goto out;
    }
    /* The shadow holds the state before this change, of whatever kind it was. */
    for (int kind = REINT__V1__RECORD_KIND__RECORD_KIND_PERSON;
         rc == 0 && kind <= REINT__V1__RECORD_KIND__RECORD_KIND_MONTH_CLOSE; kind++)
        rc = rollup__remove(r, id, kind, 1);
    if (rc == 0)
        rc = rollup__apply(r, rec, 1);
out:
    reint__v1__record__free_unpacked(rec, NULL);
    return rc;
}

int rollup_sweep(rollup *r, uint32_t municipality)
{
    int rc = rollup_mark(r, municipality);
    for (int s = S_SWEEP_P; rc == 0 && s <= S_SWEEP_C; s++) {
        sqlite3_bind_int64(r->q[s], 1, municipality);
        rc = rollup__exec(r, r->q[s]);
    }
    return rc ? rc : rollup__denormalize(r, municipality);
}

/* --- aggregation -------------------------------------------------------------------------- */

static int rollup__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    void *np = realloc(*p, n * elem);
    if (np == NULL)
        return REINT_ENOMEM;
    *p = np;
    *cap = n;
    return 0;
}

static void rollup__agg_reset(rollup *r)
{
    r->n_acc = 0;
    r->n_mem = 0;
    if (++r->gen == 0) { /* wrapped: really empty the tables once */
        if (r->acc_slots)
            memset(r->acc_slots, 0, r->n_acc_slots * sizeof(rollup__slot));
        if (r->mem)
            memset(r->mem, 0, r->n_mem_slots * sizeof(rollup__member));
        r->gen = 1;
    }
}

static int rollup__slots_rehash(rollup *r, size_t nslots)
{
    rollup__slot *s = calloc(nslots, sizeof(rollup__slot));
    if (s == NULL)
        return REINT_ENOMEM;
    for (size_t i = 0; i < r->n_acc; i++) {
        size_t j = (size_t)rollup__mix(r->acc[i].k) & (nslots - 1);
        while (s[j].gen == r->gen)
            j = (j + 1) & (nslots - 1);
        s[j].gen = r->gen;
        s[j].index = (uint32_t)i;
    }
    free(r->acc_slots);
    r->acc_slots = s;
    r->n_acc_slots = nslots;
    return 0;
}

/* The cell with packed identity k, created when new; NULL when out of memory. */
static rollup__acc *rollup__cell(rollup *r, uint64_t k, uint32_t *index)
{
    if ((r->n_acc + 1) * 2 > r->n_acc_slots &&
        rollup__slots_rehash(r, r->n_acc_slots ? r->n_acc_slots * 2 : 1024) != 0)
        return NULL;
    size_t mask = r->n_acc_slots - 1, j = (size_t)rollup__mix(k) & mask;
    for (; r->acc_slots[j].gen == r->gen; j = (j + 1) & mask) {
        rollup__acc *a = &r->acc[r->acc_slots[j].index];
        if (a->k == k) {
            *index = r->acc_slots[j].index;
            return a;
        }
    }
    if (rollup__grow((void **)&r->acc, &r->cap_acc, r->n_acc + 1, sizeof(rollup__acc)) != 0)
        return NULL;
    rollup__acc *a = &r->acc[r->n_acc];
    memset(a, 0, sizeof(*a));
    a->k = k;
    r->acc_slots[j].gen = r->gen;
    r->acc_slots[j].index = (uint32_t)r->n_acc;
    *index = (uint32_t)r->n_acc++;
    return a;
}

static size_t rollup__member_hash(uint32_t cell, const uint8_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return (size_t)rollup__mix(a ^ rollup__mix(b ^ ((uint64_t)cell << 32)));
}

/* Adds contributor id to cell; returns 1 when it is new there, 0 when seen, or <0. */
static int rollup__member_add(rollup *r, uint32_t cell, const uint8_t *id)
{
    if ((r->n_mem + 1) * 2 > r->n_mem_slots) {
        size_t n = r->n_mem_slots ? r->n_mem_slots * 2 : 4096;
        rollup__member *m = calloc(n, sizeof(*m));
        if (m == NULL)
            return REINT_ENOMEM;
        for (size_t i = 0; i < r->n_mem_slots; i++) {
            if (r->mem[i].gen != r->gen)
                continue;
            size_t j = rollup__member_hash(r->mem[i].cell, r->mem[i].id) & (n - 1);
            while (m[j].gen == r->gen)
                j = (j + 1) & (n - 1);
            m[j] = r->mem[i];
        }
        free(r->mem);
        r->mem = m;
        r->n_mem_slots = n;
    }
    size_t mask = r->n_mem_slots - 1, j = rollup__member_hash(cell, id) & mask;
    for (; r->mem[j].gen == r->gen; j = (j + 1) & mask)
        if (r->mem[j].cell == cell && memcmp(r->mem[j].id, id, 16) == 0)
            return 0;
    r->mem[j].gen = r->gen;
    r->mem[j].cell = cell;
    memcpy(r->mem[j].id, id, 16);
    r->n_mem++;
    return 1;
}

/* One contribution of contributor id (key ckey) to indicator ind in period slot pj, in every
 * grouping. Indicators without dedupe have one contribution per record and period, so their
 * contributors are distinct by construction. */
static int rollup__emit(rollup *r, int ind, int pj, const int dv[D_N], const uint8_t *id,
                        uint32_t ckey, int64_t num, int64_t den)
{
    const rollup__indicator *in = &r->ind[ind];
    for (int g = 0; g < in->n_groupings; g++) {
        const rollup__grouping *gr = &in->g[g];
        uint64_t v0 = gr->n > 0 ? (uint64_t)dv[gr->d[0]] & 0xfffff : 0;
        uint64_t v1 = gr->n > 1 ? (uint64_t)dv[gr->d[1]] & 0xfffff : 0;
        uint64_t k = (uint64_t)ind << 56 | (uint64_t)g << 48 | (uint64_t)pj << 40 | v0 << 20 | v1;
        uint32_t index;
        rollup__acc *a = rollup__cell(r, k, &index);
        if (a == NULL)
            return REINT_ENOMEM;
        a->sum += num;
        a->den += den;
        int added = in->dedupe ? rollup__member_add(r, index, id) : 1;
        if (added < 0)
            return added;
        if (added) {
            a->contributors++;
            a->ckey += ckey;
        }
    }
    return 0;
}

/* Emits into every period slot whose bit is set in mask. */
static int rollup__emit_all(rollup *r, int ind, uint64_t mask, const int dv[D_N], const uint8_t *id,
                            uint32_t ckey, int64_t num, int64_t den)
{
    for (int pj = 0; mask; pj++, mask >>= 1) {
        if (!(mask & 1))
            continue;
        int rc = rollup__emit(r, ind, pj, dv, id, ckey, num, den);
        if (rc)
            return rc;
    }
    return 0;
}

static void rollup__dim_name(int dim, int v, char *out, size_t len)
{
    if (rollup__dims[dim].desc)
        snprintf(out, len, "%s", record_enum_name(rollup__dims[dim].desc, v));
    else if (v)
        snprintf(out, len, "%c%c", (char)(v >> 8), (char)(v & 0xff));
    else
        snprintf(out, len, "UNKNOWN");
}

static int rollup__out_cmp(const void *a, const void *b)
{
    const rollup__out *x = a, *y = b;
    int c = (x->pj > y->pj) - (x->pj < y->pj);
    if (c == 0)
        c = strcmp(x->indicator, y->indicator);
    if (c == 0)
        c = strcmp(x->grouping, y->grouping);
    if (c == 0)
        c = strcmp(x->key, y->key);
    return c;
}

static uint64_t rollup__fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t rollup__digest(const rollup__out *cells, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        const rollup__out *o = &cells[i];
        h = rollup__fnv(h, o->indicator, strlen(o->indicator) + 1);
        h = rollup__fnv(h, o->grouping, strlen(o->grouping) + 1);
        h = rollup__fnv(h, o->key, strlen(o->key) + 1);
        h = rollup__fnv(h, &o->num, sizeof(o->num));
        h = rollup__fnv(h, &o->den, sizeof(o->den));
        h = rollup__fnv(h, &o->ckey, sizeof(o->ckey));
        h = rollup__fnv(h, &o->contributors, sizeof(o->contributors));
    }
    return h;
}

/* Turns the accumulated cells into output cells (zero cells left out), sorted by period
 * slot, indicator, grouping and key; returns their number in *n. */
static int rollup__finish(rollup *r, size_t *n)
{
    if (rollup__grow((void **)&r->out, &r->cap_out, r->n_acc + 1, sizeof(rollup__out)) != 0)
        return REINT_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->n_acc; i++) {
        const rollup__acc *a = &r->acc[i];
        int ind = (int)(a->k >> 56), g = (int)(a->k >> 48 & 0xff);
        const rollup__indicator *in = &r->ind[ind];
        const rollup__grouping *gr = &in->g[g];
        rollup__out *o = &r->out[k];
        o->num = in->agg == CATALOGUE_DISTINCT ? a->contributors : a->sum;
        o->den = a->den;
        if (o->num == 0 && o->den == 0)
            continue;
        o->pj = (int)(a->k >> 40 & 0xff);
        o->indicator = in->code;
        o->grouping = gr->name;
        o->contributors = a->contributors;
        o->ckey = a->ckey;
        o->key[0] = '\0';
        if (gr->n > 0) {
            char v0[32], v1[32];
            rollup__dim_name(gr->d[0], (int)(a->k >> 20 & 0xfffff), v0, sizeof(v0));
            if (gr->n > 1) {
                rollup__dim_name(gr->d[1], (int)(a->k & 0xfffff), v1, sizeof(v1));
                snprintf(o->key, sizeof(o->key), "%s,%s", v0, v1);
            } else {
                snprintf(o->key, sizeof(o->key), "%s", v0);
            }
        }
        k++;
    }
    qsort(r->out, k, sizeof(rollup__out), rollup__out_cmp);
    *n = k;
    return 0;
}

/* --- computing snapshots ------------------------------------------------------------------ */

/* Up to 64 periods of one municipality computed together: each record row is read once and
 * contributes to every period of the group that holds its day. */
typedef struct rollup__group {
    uint32_t m;
    int n;
    const char *period[64];
    enum period_kind kind[64];
    int32_t first[64], last[64];
    int32_t lo, hi;  /* the union of the periods */
    uint64_t *masks; /* per day of [lo, hi]: the periods holding it */
    size_t cap_masks;
    uint32_t referred[64]; /* per period: service types referred in it */
} rollup__group;

static uint64_t rollup__mask(const rollup__group *g, int32_t day)
{
    return day < g->lo || day > g->hi ? 0 : g->masks[day - g->lo];
}

static int rollup__col_enum(sqlite3_stmt *st, int col, int dim)
{
    return rollup__enum(rollup__dims[dim].desc, sqlite3_column_int(st, col));
}

/* Copies a 16-byte id column into id (zeros when it is not 16 bytes). */
static void rollup__col_id(sqlite3_stmt *st, int col, uint8_t id[16])
{
    if (sqlite3_column_bytes(st, col) == 16)
        memcpy(id, sqlite3_column_blob(st, col), 16);
    else
        memset(id, 0, 16);
}

static void rollup__bind_range(sqlite3_stmt *st, const rollup__group *g)
{
    sqlite3_bind_int64(st, 1, g->m);
    sqlite3_bind_int(st, 2, g->lo);
    sqlite3_bind_int(st, 3, g->hi);
}

static int rollup__persons(rollup *r, rollup__group *g)
{
    sqlite3_stmt *st = r->q[S_Q_PERSONS];
    int rc = 0;
    rollup__bind_range(st, g);
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        int dv[D_N] = {0};
        uint8_t id[16];
        uint64_t mask = rollup__mask(g, sqlite3_column_int(st, 9));
        rollup__col_id(st, 0, id);
        dv[D_CATEGORY] = rollup__col_enum(st, 1, D_CATEGORY);
        dv[D_SEX] = rollup__col_enum(st, 2, D_SEX);
        dv[D_AGE_BAND] = rollup__col_enum(st, 3, D_AGE_BAND);
        dv[D_CASTE] = rollup__col_enum(st, 4, D_CASTE);
        dv[D_DISABILITY] = rollup__col_enum(st, 5, D_DISABILITY);
        dv[D_COUNTRY] = sqlite3_column_int(st, 6);
        int intention = sqlite3_column_int(st, 7);
        uint32_t ckey = (uint32_t)sqlite3_column_int64(st, 8);
        rc = rollup__emit_all(r, I_PARTICIPANTS, mask, dv, id, ckey, 1, 0);
        if (rc || dv[D_CATEGORY] != REINT__V1__CATEGORY__CATEGORY_RETURNEE)
            continue;
        rc = rollup__emit_all(r, I_RETURNEES, mask, dv, id, ckey, 1, 0);
        if (rc == 0 && intention >= REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_NONE &&
            intention <= REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_PLANNING)
            rc = rollup__emit_all(
                r, I_NO_REMIGRATION, mask, dv, id, ckey,
                intention == REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_NONE, 1);
    }
    sqlite3_reset(st);
    return rc;
}

/* Services of the group's periods; g->referred gets one bit per known service type referred
 * in each period. */
static int rollup__services(rollup *r, rollup__group *g)
{
    sqlite3_stmt *st = r->q[S_Q_SERVICES];
    int rc = 0;
    rollup__bind_range(st, g);
    sqlite3_bind_int(st, 4, r->today);
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        int dv[D_N] = {0};
        uint8_t id[16], person[16];
        uint64_t mask = rollup__mask(g, sqlite3_column_int(st, 12));
        rollup__col_id(st, 0, id);
        uint32_t ckey = (uint32_t)sqlite3_column_int64(st, 1);
        rollup__col_id(st, 2, person);
        uint32_t pkey = (uint32_t)sqlite3_column_int64(st, 3);
        int raw_type = sqlite3_column_int(st, 4);
        int status = sqlite3_column_int(st, 5);
        dv[D_SERVICE_TYPE] = rollup__col_enum(st, 4, D_SERVICE_TYPE);
        dv[D_PROVIDER] = rollup__col_enum(st, 6, D_PROVIDER);
        dv[D_PROGRAMME] = rollup__col_enum(st, 7, D_PROGRAMME);
        int64_t amount = sqlite3_column_int64(st, 8);
        dv[D_SEX] = rollup__col_enum(st, 9, D_SEX); /* 0 for an orphan */
        dv[D_CATEGORY] = rollup__col_enum(st, 10, D_CATEGORY);
        int pending = sqlite3_column_int(st, 11);
        if (status == REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED) {
            rc = rollup__emit_all(r, I_PERSONS_SERVED, mask, dv, person, pkey, 1, 0);
            if (rc == 0)
                rc = rollup__emit_all(r, I_SERVICES_DELIVERED, mask, dv, id, ckey, 1, 0);
            if (rc == 0 && raw_type == REINT__V1__SERVICE_TYPE__SERVICE_TYPE_SEED_FUNDING &&
                amount >= 0)
                rc = rollup__emit_all(r, I_SEED, mask, dv, person, pkey, amount, 0);
            if (rc == 0 && raw_type == REINT__V1__SERVICE_TYPE__SERVICE_TYPE_BANK_ACCOUNT)
                rc = rollup__emit_all(r, I_BANK, mask, dv, person, pkey, 1, 0);
        } else if (status == REINT__V1__SERVICE_STATUS__SERVICE_STATUS_REFERRED) {
            if (pending)
                rc = rollup__emit_all(r, I_REFERRALS_PENDING, mask, dv, id, ckey, 1, 0);
            if (dv[D_SERVICE_TYPE] > 0 && dv[D_SERVICE_TYPE] < 32)
                for (int pj = 0; pj < g->n; pj++)
                    if (mask >> pj & 1)
                        g->referred[pj] |= 1u << dv[D_SERVICE_TYPE];
        }
    }
    sqlite3_reset(st);
    return rc;
}

static int rollup__enterprises(rollup *r, rollup__group *g)
{
    sqlite3_stmt *st = r->q[S_Q_ENTERPRISES];
    int rc = 0;
    rollup__bind_range(st, g);
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        int dv[D_N] = {0};
        uint8_t id[16];
        uint64_t mask = rollup__mask(g, sqlite3_column_int(st, 9));
        rollup__col_id(st, 0, id);
        uint32_t ckey = (uint32_t)sqlite3_column_int64(st, 1);
        dv[D_ACTION] = rollup__col_enum(st, 2, D_ACTION);
        dv[D_SECTOR] = rollup__col_enum(st, 3, D_SECTOR);
        int employees = sqlite3_column_int(st, 4);
        int active =
            sqlite3_column_int(st, 5) == REINT__V1__ENTERPRISE_STATUS__ENTERPRISE_STATUS_ACTIVE;
        dv[D_OWNER_SEX] = rollup__col_enum(st, 6, D_SEX);
        dv[D_OWNER_CATEGORY] = rollup__col_enum(st, 7, D_CATEGORY);
        int has_loan = sqlite3_column_type(st, 8) != SQLITE_NULL;
        int32_t loan_day = sqlite3_column_int(st, 8);
        rc = rollup__emit_all(r, I_ENT_SUPPORTED, mask, dv, id, ckey, 1, 0);
        if (rc == 0 && employees >= 0)
            rc = rollup__emit_all(r, I_JOBS, mask, dv, id, ckey, employees, 0);
        if (rc == 0)
            rc = rollup__emit_all(r, I_ENT_ACTIVE, mask, dv, id, ckey, active, 1);
        /* With a loan: only the periods ending on or after the loan's day. */
        for (int pj = 0; rc == 0 && pj < g->n; pj++)
            if (mask >> pj & 1)
                rc = rollup__emit(r, I_ENT_LOAN, pj, dv, id, ckey,
                                  has_loan && loan_day <= g->last[pj], 1);
    }
    sqlite3_reset(st);
    return rc;
}

/* Service types this municipality offers locally: per (service, provider) the availability
 * row with the latest as_of_day (ties: the larger id) decides. */
static uint32_t rollup__offered(rollup *r, uint32_t m)
{
    enum { MAXP = 16 };
    struct {
        int32_t as_of;
        uint8_t id[16];
        int available, seen;
    } latest[32][MAXP];
    memset(latest, 0, sizeof(latest));
    uint32_t offered = 0;
    sqlite3_stmt *st = r->q[S_Q_AVAIL];
    sqlite3_bind_int64(st, 1, m);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int svc = sqlite3_column_int(st, 0);
        int prov = rollup__enum(&reint__v1__provider__descriptor, sqlite3_column_int(st, 1));
        if (svc <= 0 || svc >= 32 || prov < 0 || prov >= MAXP)
            continue;
        int32_t as_of = sqlite3_column_int(st, 3);
        uint8_t id[16];
        rollup__col_id(st, 4, id);
        if (!latest[svc][prov].seen || as_of > latest[svc][prov].as_of ||
            (as_of == latest[svc][prov].as_of && memcmp(id, latest[svc][prov].id, 16) > 0)) {
            latest[svc][prov].seen = 1;
            latest[svc][prov].as_of = as_of;
            latest[svc][prov].available = sqlite3_column_int(st, 2) != 0;
            memcpy(latest[svc][prov].id, id, 16);
        }
    }
    sqlite3_reset(st);
    for (int svc = 1; svc < 32; svc++)
        for (int p = 0; p < MAXP; p++)
            if (latest[svc][p].seen && latest[svc][p].available)
                offered |= 1u << svc;
    return offered;
}

/* Service types referred in each period that no latest availability row offers. */
static int rollup__unavailable(rollup *r, rollup__group *g)
{
    uint32_t any = 0, offered;
    for (int pj = 0; pj < g->n; pj++)
        any |= g->referred[pj];
    if (any == 0)
        return 0;
    offered = rollup__offered(r, g->m);
    for (int pj = 0; pj < g->n; pj++) {
        for (int svc = 1; svc < 32; svc++) {
            if (!(g->referred[pj] & ~offered & 1u << svc))
                continue;
            int dv[D_N] = {0};
            uint8_t id[16] = {0};
            dv[D_SERVICE_TYPE] = svc;
            id[15] = (uint8_t)svc; /* the service type is the contributor */
            int rc = rollup__emit(r, I_SERVICES_UNAVAILABLE, pj, dv, id, 0, 1, 0);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Reads "YYYY-MM" (Gregorian) or "BSYYYY-MM" into year and month. */
static void rollup__month_of(const char *period, int bs, int *year, int *month)
{
    const char *p = period + (bs ? 2 : 0);
    *year = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    *month = (p[5] - '0') * 10 + (p[6] - '0');
}

static int rollup__reporting(rollup *r, rollup__group *g, int pj)
{
    sqlite3_stmt *st = r->q[S_Q_ENROLLED];
    int64_t enrolled_day = 0;
    int enrolled = 0, bs = g->kind[pj] == PERIOD_BS_MONTH;
    int32_t last = g->last[pj];
    sqlite3_bind_int64(st, 1, g->m);
    if (sqlite3_step(st) == SQLITE_ROW) {
        enrolled = 1;
        enrolled_day = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (!enrolled)
        return 0;
    int year, month, closed = 0;
    int64_t closed_day = 0;
    rollup__month_of(g->period[pj], bs, &year, &month);
    st = r->q[S_Q_CLOSE];
    sqlite3_bind_int64(st, 1, g->m);
    sqlite3_bind_int(st, 2, bs);
    sqlite3_bind_int(st, 3, year);
    sqlite3_bind_int(st, 4, month);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        closed = 1;
        closed_day = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    int due = last < r->today && last >= enrolled_day;
    if (!closed && !due)
        return 0;
    int dv[D_N] = {0};
    uint8_t id[16] = {0};
    id[0] = (uint8_t)(g->m >> 24), id[1] = (uint8_t)(g->m >> 16), id[2] = (uint8_t)(g->m >> 8);
    id[3] = (uint8_t)g->m; /* the municipality is the contributor */
    int rc = rollup__emit(r, I_COMPLETENESS, pj, dv, id, 0, closed, 1);
    if (rc == 0)
        rc = rollup__emit(r, I_TIMELINESS, pj, dv, id, 0,
                          closed && closed_day <= (int64_t)last + ROLLUP_ON_TIME_DAYS, 1);
    return rc;
}

/* Computes the cells of every period of the group into r->out (sorted by period slot). */
static int rollup__compute(rollup *r, rollup__group *g, size_t *n)
{
    int rc;
    size_t days = (size_t)(g->hi - g->lo) + 1;
    if (rollup__grow((void **)&g->masks, &g->cap_masks, days, sizeof(uint64_t)) != 0)
        return REINT_ENOMEM;
    memset(g->masks, 0, days * sizeof(uint64_t));
    for (int pj = 0; pj < g->n; pj++) {
        for (int32_t d = g->first[pj]; d <= g->last[pj]; d++)
            g->masks[d - g->lo] |= 1ull << pj;
        g->referred[pj] = 0;
    }
    rollup__agg_reset(r);
    if ((rc = rollup__persons(r, g)) != 0 || (rc = rollup__services(r, g)) != 0 ||
        (rc = rollup__enterprises(r, g)) != 0 || (rc = rollup__unavailable(r, g)) != 0)
        return rc;
    for (int pj = 0; pj < g->n; pj++)
        if ((g->kind[pj] == PERIOD_MONTH || g->kind[pj] == PERIOD_BS_MONTH) &&
            (rc = rollup__reporting(r, g, pj)) != 0)
            return rc;
    return rollup__finish(r, n);
}

/* --- refresh ------------------------------------------------------------------------------- */

/* Brings rollup_enrolled in line with nodes, marking the months an enrolment change makes
 * due (or no longer due) and the months the municipality closed. */
static int rollup__sync_enrolment(rollup *r)
{
    if (r->nodes == NULL)
        return 0;
    typedef struct {
        uint32_t m;
        int64_t day;
    } enr;
    enr *now = NULL, *had = NULL;
    size_t n_now = 0, cap_now = 0, n_had = 0, cap_had = 0;
    int rc = 0, s;
    while ((s = sqlite3_step(r->nodes)) == SQLITE_ROW) {
        if ((rc = rollup__grow((void **)&now, &cap_now, n_now + 1, sizeof(enr))) != 0)
            break;
        now[n_now].m = (uint32_t)sqlite3_column_int64(r->nodes, 0);
        now[n_now++].day = sqlite3_column_int64(r->nodes, 1) / 86400000;
    }
    sqlite3_reset(r->nodes);
    sqlite3_stmt *st = r->q[S_ENR_ALL];
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = rollup__grow((void **)&had, &cap_had, n_had + 1, sizeof(enr))) != 0)
            break;
        had[n_had].m = (uint32_t)sqlite3_column_int64(st, 0);
        had[n_had++].day = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    /* A municipality whose enrolment appeared, moved or vanished: its due months and its
     * closed months are recomputed (both enrolment days bound the months to mark). */
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        enr *a = pass ? had : now, *b = pass ? now : had;
        size_t na = pass ? n_had : n_now, nb = pass ? n_now : n_had;
        for (size_t i = 0; rc == 0 && i < na; i++) {
            size_t j = 0;
            while (j < nb && b[j].m != a[i].m)
                j++;
            if (j < nb && b[j].day == a[i].day)
                continue;
            if (pass == 1 && j < nb)
                continue; /* a moved enrolment was handled in the first pass */
            int64_t lo = a[i].day, hi = r->today;
            if (j < nb && b[j].day < lo)
                lo = b[j].day;
            if (lo < ROLLUP_MIN_TODAY)
                lo = ROLLUP_MIN_TODAY;
            rc = rollup__mark_months_ending(r, a[i].m, (int32_t)lo, (int32_t)hi);
            st = r->q[S_CLOSES_OF];
            sqlite3_bind_int64(st, 1, a[i].m);
            while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
                char p[PERIOD_MAX];
                rollup__month_period(sqlite3_column_int(st, 0), sqlite3_column_int(st, 1),
                                     sqlite3_column_int(st, 2), p);
                rc = rollup__mark_period(r, a[i].m, p);
            }
            sqlite3_reset(st);
            if (rc)
                break;
            if (pass == 0) {
                st = r->q[S_ENR_PUT];
                sqlite3_bind_int64(st, 1, a[i].m);
                sqlite3_bind_int64(st, 2, a[i].day);
            } else {
                st = r->q[S_ENR_DEL];
                sqlite3_bind_int64(st, 1, a[i].m);
            }
            rc = rollup__exec(r, st);
        }
    }
    free(now);
    free(had);
    return rc;
}

/* Protobuf wire encoding, enough for RollupSnapshot and RollupCell (proto/reintegration.proto):
 * varints and length-delimited fields; proto3 scalars and strings equal to their default are
 * left out, as protobuf-c's packer does. */
static void rollup__pb_varint(sbuf *b, uint64_t v)
{
    char t[10];
    size_t n = 0;
    do {
        t[n] = (char)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] = (char)(t[n] | 0x80);
        n++;
    } while (v);
    sbuf_add(b, t, n);
}

static void rollup__pb_bytes(sbuf *b, unsigned field, const char *p, size_t n)
{
    rollup__pb_varint(b, (uint64_t)field << 3 | 2);
    rollup__pb_varint(b, n);
    sbuf_add(b, p, n);
}

static void rollup__pb_uint(sbuf *b, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    rollup__pb_varint(b, (uint64_t)field << 3);
    rollup__pb_varint(b, v);
}

/* Appends one cell as field 4 (cells) of a RollupSnapshot: the stored form of a snapshot is
 * the concatenation of its cells, so that the uplink sends it after a three-field header
 * without decoding it (rollup_snapshot_packed). */
static void rollup__pack_cell(sbuf *b, const rollup__out *o)
{
    char body[3 * 80 + ROLLUP_KEY_MAX + 64];
    sbuf c = {body, 0, sizeof(body), sizeof(body), 0};
    size_t li = strlen(o->indicator), lg = strlen(o->grouping);
    if (li)
        rollup__pb_bytes(&c, 1, o->indicator, li);
    if (lg)
        rollup__pb_bytes(&c, 2, o->grouping, lg);
    /* key: the grouping's values joined by ','; one repeated string each ("" for the total:
     * none) */
    if (o->key[0] != '\0') {
        for (const char *k = o->key;;) {
            const char *comma = strchr(k, ',');
            size_t len = comma ? (size_t)(comma - k) : strlen(k);
            rollup__pb_bytes(&c, 3, k, len);
            if (comma == NULL)
                break;
            k = comma + 1;
        }
    }
    rollup__pb_uint(&c, 4, (uint64_t)o->num);
    rollup__pb_uint(&c, 5, (uint64_t)o->den);
    rollup__pb_uint(&c, 6, o->ckey);
    rollup__pb_uint(&c, 7, (uint64_t)o->contributors);
    if (c.failed) {
        b->failed = 1; /* cannot happen: the body's size is bounded above */
        return;
    }
    rollup__pb_bytes(b, 4, c.p, c.len);
}

static int rollup__store(rollup *r, uint32_t m, const char *period, const rollup__out *cells,
                         size_t n, rollup_stats *stats)
{
    uint64_t digest = rollup__digest(cells, n);
    sqlite3_stmt *st = r->q[S_SNAP_GET];
    uint64_t revision = 0, old_digest = 0;
    int64_t old_n = 0;
    int rc;
    rollup__bind_mp(st, m, period);
    if (sqlite3_step(st) == SQLITE_ROW) {
        revision = (uint64_t)sqlite3_column_int64(st, 0);
        old_digest = (uint64_t)sqlite3_column_int64(st, 1);
        old_n = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    stats->recomputed++;
    if (revision == 0 && n == 0) {
        /* Never sent and still empty: nothing exists upstream to replace. */
        st = r->q[S_SNAP_DEL];
        rollup__bind_mp(st, m, period);
        return rollup__exec(r, st);
    }
    if (revision != 0 && old_digest == digest && (size_t)old_n == n) {
        st = r->q[S_SNAP_CLEAN];
        rollup__bind_mp(st, m, period);
        return rollup__exec(r, st);
    }
    /* The cells are stored as one blob: the packed cells field of a RollupSnapshot. */
    sbuf_reset(&r->blob);
    for (size_t i = 0; i < n; i++)
        rollup__pack_cell(&r->blob, &cells[i]);
    if (r->blob.failed)
        return REINT_ENOMEM;
    st = r->q[n ? S_BLOB_PUT : S_BLOB_DEL];
    rollup__bind_mp(st, m, period);
    if (n)
        sqlite3_bind_blob(st, 3, r->blob.p, (int)r->blob.len, SQLITE_STATIC);
    if ((rc = rollup__exec(r, st)) != 0)
        return rc;
    revision = hlc_next(&r->clock, clock_now_ms());
    st = r->q[S_SNAP_SET];
    rollup__bind_mp(st, m, period);
    sqlite3_bind_int64(st, 3, (int64_t)revision);
    sqlite3_bind_int64(st, 4, (int64_t)digest);
    sqlite3_bind_int64(st, 5, (int64_t)n);
    if ((rc = rollup__exec(r, st)) != 0)
        return rc;
    if ((rc = rollup__grow((void **)&r->queued, &r->cap_queued, r->n_queued + 1,
                           sizeof(*r->queued))) != 0)
        return rc;
    rollup__queued *q = &r->queued[r->n_queued++];
    q->municipality = m;
    snprintf(q->period, sizeof(q->period), "%s", period);
    q->revision = revision;
    stats->changed++;
    stats->cells += n;
    return 0;
}

static int rollup__dirty_cmp(const void *a, const void *b)
{
    const rollup__dirty *x = a, *y = b;
    if (x->municipality != y->municipality)
        return x->municipality < y->municipality ? -1 : 1;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return strcmp(x->period, y->period);
}

/* Computes and stores one group of periods. */
static int rollup__refresh_group(rollup *r, rollup__group *g, rollup_stats *stats)
{
    size_t n, a = 0;
    int rc = rollup__compute(r, g, &n);
    for (int pj = 0; rc == 0 && pj < g->n; pj++) {
        size_t b = a;
        while (b < n && r->out[b].pj == pj)
            b++;
        rc = rollup__store(r, g->m, g->period[pj], r->out + a, b - a, stats);
        a = b;
    }
    return rc;
}

static int rollup__queued_cmp(const void *a, const void *b)
{
    const rollup__queued *x = a, *y = b;
    int c = strcmp(x->period, y->period);
    if (c != 0)
        return c;
    return x->municipality < y->municipality ? -1 : x->municipality > y->municipality;
}

/* Writes the outbox entries of the snapshots a refresh changed, ordered by period and then
 * municipality rather than in the order they were computed (each municipality's periods
 * together): the uplink sends consecutive entries in one batch, and the federal tier moves
 * its province aggregates once per (period, cell) of a batch, so a batch holding the same
 * period of many municipalities costs it one update per cell instead of one per
 * municipality and cell. */
static int rollup__flush_queued(rollup *r)
{
    int rc = 0;
    if (r->n_queued > 1)
        qsort(r->queued, r->n_queued, sizeof(*r->queued), rollup__queued_cmp);
    for (size_t i = 0; rc == 0 && i < r->n_queued; i++) {
        const rollup__queued *q = &r->queued[i];
        sqlite3_stmt *st = r->q[S_OUT_DEL];
        rollup__bind_mp(st, q->municipality, q->period);
        if ((rc = rollup__exec(r, st)) != 0)
            break;
        st = r->q[S_OUT_PUT];
        rollup__bind_mp(st, q->municipality, q->period);
        sqlite3_bind_int64(st, 3, (int64_t)q->revision);
        rc = rollup__exec(r, st);
    }
    r->n_queued = 0;
    return rc;
}

static int rollup__refresh_in_txn(rollup *r, rollup_stats *stats)
{
    rollup__dirty *list = NULL;
    size_t n = 0, cap = 0;
    rollup__group g;
    int rc = rollup__sync_enrolment(r), s;
    memset(&g, 0, sizeof(g));
    sqlite3_stmt *st = r->q[S_DIRTY_LIST];
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = rollup__grow((void **)&list, &cap, n + 1, sizeof(*list))) != 0)
            break;
        rollup__dirty *d = &list[n];
        d->municipality = (uint32_t)sqlite3_column_int64(st, 0);
        snprintf(d->period, PERIOD_MAX, "%s", (const char *)sqlite3_column_text(st, 1));
        d->bad = period_parse(d->period, &d->kind, &d->first, &d->last) != 0;
        n++;
    }
    sqlite3_reset(st);
    /* A row whose period does not parse is dropped, so that it stops being dirty. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!list[i].bad)
            continue;
        log_error("rollup: snapshot of municipality %u has a bad period \"%s\"; dropped",
                  list[i].municipality, list[i].period);
        for (int q = S_SNAP_DEL; rc == 0 && q <= S_BLOB_DEL; q += S_BLOB_DEL - S_SNAP_DEL) {
            rollup__bind_mp(r->q[q], list[i].municipality, list[i].period);
            rc = rollup__exec(r, r->q[q]);
        }
    }
    /* Periods of one municipality are grouped while they overlap or nearly touch, so that
     * each record row is read once for all of them. */
    if (n > 1)
        qsort(list, n, sizeof(*list), rollup__dirty_cmp);
    uint64_t before = r->clock.last;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const rollup__dirty *d = &list[i];
        if (d->bad)
            continue;
        if (g.n > 0 && (g.n == 64 || d->municipality != g.m || d->first > g.hi + 31)) {
            rc = rollup__refresh_group(r, &g, stats);
            g.n = 0;
            if (rc)
                break;
            /* Past the deadline the rest stays dirty for the next call. */
            if (r->deadline_ms && clock_mono_ms() >= r->deadline_ms) {
                r->more = 1;
                break;
            }
        }
        if (g.n == 0) {
            g.m = d->municipality;
            g.lo = d->first;
            g.hi = d->last;
        }
        g.period[g.n] = d->period;
        g.kind[g.n] = d->kind;
        g.first[g.n] = d->first;
        g.last[g.n] = d->last;
        if (d->last > g.hi)
            g.hi = d->last;
        g.n++;
    }
    if (rc == 0 && g.n > 0)
        rc = rollup__refresh_group(r, &g, stats);
    if (rc == 0)
        rc = rollup__flush_queued(r);
    r->n_queued = 0;
    if (rc == 0 && r->clock.last != before)
        rc = rollup__meta_set(r, "rollup_hlc", (int64_t)r->clock.last);
    free(g.masks);
    free(list);
    return rc;
}

int rollup_refresh_slice(rollup *r, uint64_t deadline_ms, rollup_stats *stats)
{
    r->deadline_ms = deadline_ms;
    int rc = rollup_refresh(r, stats);
    r->deadline_ms = 0;
    return rc;
}

int rollup_refresh(rollup *r, rollup_stats *stats)
{
    rollup_stats local;
    r->more = 0;
    int own, rc = rollup__begin(r, &own);
    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (rc == 0)
        rc = rollup__refresh_in_txn(r, stats);
    rc = rollup__end(r, own, rc);
    /* Marks are cleared in the database now (or rolled back): forget the cached ones. */
    rollup__forget_marks(r);
    return rc;
}

int rollup_set_today(rollup *r, int32_t today)
{
    if (today < ROLLUP_MIN_TODAY || today > ROLLUP_MAX_TODAY)
        return REINT_EINVAL;
    int32_t t0 = r->today;
    if (today == t0)
        return 0;
    int own, rc = rollup__begin(r, &own);
    int32_t lo = t0 < today ? t0 : today, hi = t0 < today ? today : t0;
    /* Referrals whose window end (day + 90) crosses the move: day + 90 in (lo, hi]. */
    sqlite3_stmt *st = r->q[S_REF_WINDOW];
    sqlite3_bind_int(st, 1, lo - ROLLUP_WINDOW_DAYS + 1);
    sqlite3_bind_int(st, 2, hi - ROLLUP_WINDOW_DAYS);
    struct {
        uint32_t m;
        int32_t day;
    } buf[256];
    size_t n = 0;
    int s = SQLITE_DONE;
    while (rc == 0) {
        s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            buf[n].m = (uint32_t)sqlite3_column_int64(st, 0);
            buf[n++].day = sqlite3_column_int(st, 1);
        }
        if (n == sizeof(buf) / sizeof(buf[0]) || (s != SQLITE_ROW && n)) {
            for (size_t i = 0; i < n && rc == 0; i++)
                rc = rollup__mark_day(r, buf[i].m, buf[i].day);
            n = 0;
        }
        if (s != SQLITE_ROW)
            break;
    }
    sqlite3_reset(st);
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__fail(r, "referral windows");
    /* Months whose end crosses the move become due or stop being due: last in [lo, hi). */
    st = r->q[S_ENR_ALL];
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        uint32_t m = (uint32_t)sqlite3_column_int64(st, 0);
        int64_t first = sqlite3_column_int64(st, 1);
        int32_t from = first > lo ? (int32_t)first : lo;
        if (from < hi)
            rc = rollup__mark_months_ending(r, m, from, hi);
    }
    sqlite3_reset(st);
    if (rc == 0)
        rc = rollup__meta_set(r, "rollup_today", today);
    rc = rollup__end(r, own, rc);
    if (rc == 0)
        r->today = today;
    else
        rollup__forget_marks(r);
    return rc;
}

int32_t rollup_today(const rollup *r)
{
    return r->today;
}

int rollup_daily(rollup *r, int32_t today, rollup_stats *stats)
{
    uint64_t now = clock_mono_ms();
    if (today == r->today && now < r->next_refresh_ms) {
        if (stats)
            memset(stats, 0, sizeof(*stats));
        return 0;
    }
    int rc = rollup_set_today(r, today);
    /* A bounded slice of recomputing per call, so that sessions keep flowing on the loop
     * while a bulk resend's periods are refreshed; when dirt remains, the next slice waits
     * as long again (refreshing takes at most half of the loop). A refresh that finishes
     * sets no wait: the next change is refreshed at the caller's next tick. (A wait of ten
     * times the last refresh, before, left the first change after a bulk load waiting up to
     * two minutes.) */
    if (rc == 0)
        rc = rollup_refresh_slice(r, now + ROLLUP_REFRESH_BUDGET, stats);
    uint64_t end = clock_mono_ms();
    r->next_refresh_ms = r->more ? end + (end - now) : 0;
    return rc;
}

int rollup_more(const rollup *r)
{
    return r->more;
}

int64_t rollup_dirty_count(rollup *r)
{
    sqlite3_stmt *st = r->q[S_DIRTY_COUNT];
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

/* Rebuilds the shadow from records and marks every period that holds anything. */
static int rollup__rebuild(rollup *r)
{
    static const char *clear =
        "DELETE FROM rollup_person; DELETE FROM rollup_service; DELETE FROM rollup_enterprise;"
        " DELETE FROM rollup_availability; DELETE FROM rollup_close;"
        " DELETE FROM rollup_enrolled; UPDATE rollup_snapshots SET dirty=1 WHERE dirty=0;";
    char *msg = NULL;
    if (sqlite3_exec(r->db, clear, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("rollup: rebuild: %s", msg ? msg : sqlite3_errmsg(r->db));
        sqlite3_free(msg);
        return REINT_EDB;
    }
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (sqlite3_prepare_v2(r->db, "SELECT body FROM records WHERE deleted=0", -1, &st, NULL) !=
        SQLITE_OK)
        return rollup__fail(r, "rebuild");
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        Reint__V1__Record *rec = reint__v1__record__unpack(
            NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
        if (rec == NULL || rec->id.len != 16) {
            log_warn("rollup: a stored record does not decode; left out of the rollups");
        } else {
            rc = rollup__apply(r, rec, 0);
            if (rc == REINT_EINVAL)
                rc = 0;
        }
        if (rec)
            reint__v1__record__free_unpacked(rec, NULL);
    }
    sqlite3_finalize(st);
    if (rc || (rc = rollup__denormalize(r, 0)) != 0)
        return rc;
    /* Every day holding a person, service or enterprise, in order, so that consecutive days
     * share their periods and each period is marked once. */
    if (sqlite3_prepare_v2(r->db,
                           "SELECT municipality, day FROM rollup_person UNION"
                           " SELECT municipality, day FROM rollup_service UNION"
                           " SELECT municipality, day FROM rollup_enterprise ORDER BY 1, 2",
                           -1, &st, NULL) != SQLITE_OK)
        return rollup__fail(r, "rebuild");
    char prev[PERIOD_KINDS][PERIOD_MAX];
    uint32_t prev_m = 0;
    memset(prev, 0, sizeof(prev));
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t m = (uint32_t)sqlite3_column_int64(st, 0);
        char p[PERIOD_KINDS][PERIOD_MAX];
        period_of_day(sqlite3_column_int(st, 1), p);
        for (int k = 0; rc == 0 && k < PERIOD_KINDS; k++) {
            if (m == prev_m && strcmp(prev[k], p[k]) == 0)
                continue;
            rc = rollup__mark_period(r, m, p[k]);
            memcpy(prev[k], p[k], PERIOD_MAX);
        }
        prev_m = m;
    }
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(r->db, "SELECT municipality, bs, year, month FROM rollup_close", -1, &st,
                           NULL) != SQLITE_OK)
        return rollup__fail(r, "rebuild");
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        char p[PERIOD_MAX];
        rollup__month_period(sqlite3_column_int(st, 1), sqlite3_column_int(st, 2),
                             sqlite3_column_int(st, 3), p);
        rc = rollup__mark_period(r, (uint32_t)sqlite3_column_int64(st, 0), p);
    }
    sqlite3_finalize(st);
    if (rc == 0)
        rc = rollup__meta_set(r, "rollup_built", 1);
    return rc;
}

int rollup_full(rollup *r, rollup_stats *stats)
{
    rollup_stats local;
    int own, rc = rollup__begin(r, &own);
    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (rc == 0)
        rc = rollup__rebuild(r);
    if (rc == 0)
        rc = rollup__refresh_in_txn(r, stats);
    rc = rollup__end(r, own, rc);
    rollup__forget_marks(r);
    return rc;
}

/* --- snapshots for the uplink ------------------------------------------------------------ */

int rollup_snapshot_packed(rollup *r, uint32_t municipality, const char *period, uint64_t *revision,
                           sbuf *out)
{
    sqlite3_stmt *st = r->q[S_SNAP_GET];
    int64_t ncells = 0;
    int rc = 0;
    *revision = 0;
    rollup__bind_mp(st, municipality, period);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *revision = (uint64_t)sqlite3_column_int64(st, 0);
        ncells = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (*revision == 0)
        return REINT_ENOTFOUND;
    /* Fields 1-3, then the stored cells (field 4): the bytes protobuf-c packs for the whole
     * message, fields in number order. */
    sbuf_reset(out);
    rollup__pb_uint(out, 1, municipality);
    if (period[0] != '\0')
        rollup__pb_bytes(out, 2, period, strlen(period));
    rollup__pb_uint(out, 3, *revision);
    size_t header = out->len;
    st = r->q[S_BLOB_GET];
    rollup__bind_mp(st, municipality, period);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        sbuf_add(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else if (s != SQLITE_DONE)
        rc = REINT_EDB;
    sqlite3_reset(st);
    if (rc == 0 && out->failed)
        rc = REINT_ENOMEM;
    /* The blob must hold exactly the header's number of cells, each a whole field 4. */
    int64_t k = 0;
    for (size_t i = header; rc == 0 && i < out->len; k++) {
        uint64_t len = 0;
        unsigned shift = 0;
        if ((uint8_t)out->p[i++] != (4 << 3 | 2)) {
            rc = REINT_EDB;
            break;
        }
        while (i < out->len && shift < 64) {
            uint8_t c = (uint8_t)out->p[i++];
            len |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
            if (!(c & 0x80))
                break;
        }
        if (len > out->len - i)
            rc = REINT_EDB;
        i += (size_t)len;
    }
    if (rc == 0 && k != ncells)
        rc = REINT_EDB; /* the cells disagree with their header */
    return rc;
}

int rollup_snapshot(rollup *r, uint32_t municipality, const char *period,
                    Reint__V1__RollupSnapshot **out)
{
    sbuf b;
    uint64_t revision;
    sbuf_init(&b, ROLLUP_SNAPSHOT_MAX);
    *out = NULL;
    int rc = rollup_snapshot_packed(r, municipality, period, &revision, &b);
    if (rc == 0 && (*out = reint__v1__rollup_snapshot__unpack(NULL, b.len, (uint8_t *)b.p)) == NULL)
        rc = REINT_ENOMEM;
    sbuf_free(&b);
    return rc;
}

/* --- open and close ----------------------------------------------------------------------- */

static void rollup__load_catalogue(rollup *r)
{
    for (int i = 0; i < I_N; i++) {
        rollup__indicator *in = &r->ind[i];
        const catalogue_indicator *c = catalogue_find(rollup__codes[i]);
        in->code = rollup__codes[i];
        in->n_groupings = 0;
        in->dedupe = i == I_PERSONS_SERVED || i == I_SEED || i == I_BANK;
        if (c == NULL) {
            /* Not (yet) in the catalogue: reporting_timeliness, a ratio with the total. */
            in->agg = CATALOGUE_RATIO;
            in->g[0].name = "";
            in->g[0].n = 0;
            in->n_groupings = 1;
            continue;
        }
        in->agg = c->agg;
        for (int g = 0; c->groupings[g] && g < CATALOGUE_MAX_GROUPINGS; g++) {
            rollup__grouping *gr = &in->g[in->n_groupings];
            const char *p = c->groupings[g];
            int ok = 1;
            gr->name = p;
            gr->n = 0;
            while (*p && ok) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                int d = 0;
                while (d < D_N && (strlen(rollup__dims[d].name) != len ||
                                   strncmp(rollup__dims[d].name, p, len) != 0))
                    d++;
                if (d == D_N || gr->n == 2)
                    ok = 0;
                else
                    gr->d[gr->n++] = d;
                p += len + (comma ? 1 : 0);
            }
            if (ok)
                in->n_groupings++;
            else
                log_warn("rollup: grouping \"%s\" of %s names a dimension the engine does not "
                         "know; left out",
                         c->groupings[g], c->code);
        }
    }
}

int rollup_open(rollup **out, sqlite3 *db, char *err, size_t errlen)
{
    rollup *r = calloc(1, sizeof(*r));
    char *msg = NULL;
    int64_t v;
    if (r == NULL || (r->day_cache = calloc(ROLLUP_DAY_CACHE, sizeof(uint64_t))) == NULL) {
        snprintf(err, errlen, "rollup: out of memory");
        free(r);
        return REINT_ENOMEM;
    }
    r->db = db;
    sbuf_init(&r->blob, ROLLUP_SNAPSHOT_MAX);
    r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    r->sha_ctx = EVP_MD_CTX_new();
    /* A shadow of another shape is dropped and rebuilt below; snapshots, cells and the outbox
     * keep their shape, so revisions carry on. */
    int stale = 0;
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID",
                     NULL, NULL, &msg) == SQLITE_OK)
        stale = store_meta_get_int(db, "rollup_schema", &v) != 0 || v != ROLLUP_SCHEMA_VERSION;
    if (msg != NULL ||
        (stale && (sqlite3_exec(db, rollup__drop_shadow, NULL, NULL, &msg) != SQLITE_OK ||
                   store_meta_set_int(db, "rollup_schema", ROLLUP_SCHEMA_VERSION) != 0)) ||
        sqlite3_exec(db, rollup__schema, NULL, NULL, &msg) != SQLITE_OK ||
        (stale && sqlite3_exec(db, rollup__rewrite_all, NULL, NULL, &msg) != SQLITE_OK) ||
        rollup_cells_register(db) != SQLITE_OK) {
        snprintf(err, errlen, "rollup schema: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        goto fail;
    }
    for (int i = 0; i < S_N; i++) {
        if (sqlite3_prepare_v3(db, rollup__sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->q[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "rollup: %s: %s", sqlite3_errmsg(db), rollup__sql[i]);
            goto fail;
        }
    }
    if (sqlite3_prepare_v3(db, "SELECT municipality, first_seen_ms FROM nodes", -1,
                           SQLITE_PREPARE_PERSISTENT, &r->nodes, NULL) != SQLITE_OK)
        r->nodes = NULL; /* a store without enrolments (unit tests of other modules) */
    rollup__load_catalogue(r);
    r->today = clock_today_utc();
    if (rollup__meta_get(r, "rollup_today", &v) && v >= ROLLUP_MIN_TODAY && v <= ROLLUP_MAX_TODAY)
        r->today = (int32_t)v;
    if (rollup__meta_get(r, "rollup_hlc", &v))
        hlc_observe(&r->clock, (uint64_t)v);
    sqlite3_stmt *st = r->q[S_MAXREV];
    if (sqlite3_step(st) == SQLITE_ROW)
        hlc_observe(&r->clock, (uint64_t)sqlite3_column_int64(st, 0));
    sqlite3_reset(st);
    sqlite3_rollback_hook(db, rollup__on_rollback, r);
    if (!rollup__meta_get(r, "rollup_built", &v) && rollup_full(r, NULL) != 0) {
        snprintf(err, errlen, "rollup: first build failed: %s", sqlite3_errmsg(db));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    rollup_close(r);
    return REINT_EDB;
}

void rollup_close(rollup *r)
{
    if (r == NULL)
        return;
    sqlite3_rollback_hook(r->db, NULL, NULL);
    for (int i = 0; i < S_N; i++)
        sqlite3_finalize(r->q[i]);
    sqlite3_finalize(r->nodes);
    EVP_MD_CTX_free(r->sha_ctx);
    EVP_MD_free(r->sha256);
    free(r->day_cache);
    free(r->acc);
    free(r->acc_slots);
    free(r->mem);
    free(r->out);
    free(r->queued);
    sbuf_free(&r->blob);
    free(r);
}
