/* The rollup engine's internals, shared by its files and by nothing else (rollup.h is the
 * public interface). The engine is one module split along its seams:
 *   rollup.c            open and close, refresh (dirty snapshots in groups, in slices), the
 *                       daily schedule and the as-of day;
 *   rollup_schema.c     the tables, their shape's version (a change drops and rebuilds the
 *                       shadow), the prepared statements, the meta settings, SQL helpers;
 *   rollup_shadow.c     the decoded shadow of the records (rollup_note, rollup_note_stored,
 *                       rollup_sweep, the rebuild), the enrolment shadow of nodes, and the
 *                       dirty marks every change leaves;
 *   rollup_agg.c        the generic aggregator: cells in a hash, distinct contributors,
 *                       finishing into sorted output cells, their digest;
 *   rollup_indicators.c the indicator definitions and the per-kind scans that feed the
 *                       aggregator, reporting completeness and timeliness included;
 *   rollup_store.c      stored snapshots (revision clock, the cells packed as protobuf, one
 *                       blob each), the outbox entries, rollup_snapshot*();
 *   rollup_cells.c      the rollup_cells virtual table over the stored blobs.
 * Names here carry the prefix rollup__ (libuv's uv__ convention): internal, not API. */
#ifndef PROVINCIAL_HUB_ROLLUP_INTERNAL_H
#define PROVINCIAL_HUB_ROLLUP_INTERNAL_H

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "catalogue.h"
#include "hlc.h"
#include "period.h"
#include "rollup.h"
#include "sbuf.h"

#define ROLLUP_WINDOW_MONTHS   3  /* full BS months after a referral's own to deliver it in */
#define ROLLUP_ON_TIME_DAYS    15 /* a month closed within this many days of its end is on time */
#define ROLLUP_PAIR_CACHE      65536 /* (municipality, month pair) marks remembered per txn */
#define ROLLUP_REFRESH_BUDGET  200   /* ms of recomputing per rollup_daily() call */
#define ROLLUP_KEY_MAX         64    /* "MIGRANT_FAMILY,PRE_DEPARTURE_ORIENTATION" and the like */
#define ROLLUP_GROUP_MAX       64    /* periods of one municipality computed together */
#define ROLLUP_NEPAL_OFFSET_MS (345 * 60000) /* UTC+05:45: the as-of day is a day in Nepal */

/* Dimensions the engine can group by, named as in the catalogue (rollup_indicators.c). */
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

typedef struct rollup__dim_def {
    const char *name;
    const ProtobufCEnumDescriptor *desc; /* NULL: a country code */
} rollup__dim_def;

extern const rollup__dim_def rollup__dims[D_N];

/* Indicators the engine computes. Their aggregation and groupings come from the catalogue;
 * an indicator the catalogue does not (yet) list is a ratio with the total only. */
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

typedef struct rollup__grouping {
    const char *name; /* normalised, as in the catalogue */
    int n;            /* dimensions: 0..2 */
    int d[2];
    int rank; /* of (indicator code, name) among every indicator's groupings, by strcmp */
} rollup__grouping;

typedef struct rollup__indicator {
    const char *code;
    enum catalogue_agg agg;
    /* A contributor can contribute twice to one cell (a person's services; every sum, whose
     * contributions are what each contributor adds to the cell). */
    int dedupe;
    int n_groupings;
    rollup__grouping g[CATALOGUE_MAX_GROUPINGS];
} rollup__indicator;

/* One cell being aggregated; its identity is packed into k (indicator, grouping, period slot,
 * values). */
typedef struct rollup__acc {
    uint64_t k;
    int64_t sum, den, contributors;
    int64_t top1, top2; /* sums: the two largest contributions (set by rollup__finish) */
    uint32_t ckey;
    uint32_t nkey; /* ratios: the keys of the numerator's contributors */
} rollup__acc;

/* Hash slots carry the generation of the computation that filled them, so that starting a
 * computation empties every table without touching it. */
typedef struct rollup__slot {
    uint32_t gen, index;
} rollup__slot;

/* A cell the current contributor has reached, and (sums) what it adds there. The rows of
 * an indicator whose contributors are counted once per cell (dedupe, and every sum) arrive
 * grouped by contributor (rollup_indicators.c orders those scans by it), so its distinct
 * contributors are found per contributor in a small table instead of one hash of every
 * (cell, contributor) of the computation. */
typedef struct rollup__reach {
    uint32_t cell;
    int64_t amount;
} rollup__reach;

/* A finished cell. indicator and grouping point into the engine's indicator table. */
typedef struct rollup__out {
    int pj;   /* the period slot of its group */
    int rank; /* its grouping's rank: cells sort by (pj, indicator, grouping, key) */
    const char *indicator, *grouping;
    char key[ROLLUP_KEY_MAX];
    int64_t num, den, contributors, top1, top2;
    uint32_t ckey, nkey;
} rollup__out;

/* Up to ROLLUP_GROUP_MAX periods of one municipality computed together: each record row is
 * read once and contributes to every period of the group that holds its month pair (a
 * Gregorian period by the pair's Gregorian month, a BS period by its BS month). */
typedef struct rollup__group {
    uint32_t m;
    int n;
    const char *period[ROLLUP_GROUP_MAX];
    enum period_kind kind[ROLLUP_GROUP_MAX];
    int32_t first[ROLLUP_GROUP_MAX], last[ROLLUP_GROUP_MAX];   /* days */
    int bs[ROLLUP_GROUP_MAX];                                  /* a period of BS months */
    int32_t mfirst[ROLLUP_GROUP_MAX], mlast[ROLLUP_GROUP_MAX]; /* its months, YYYYMM */
    int32_t lo, hi; /* the union of the periods, in days */
    /* Month masks: the periods holding each Gregorian month from index ad0 (n_ad of them),
     * then each BS month from index bs0 (n_bs); an index is year * 12 + month - 1. */
    uint64_t *masks;
    size_t cap_masks, n_ad, n_bs;
    int32_t ad0, bs0;
    uint32_t referred[ROLLUP_GROUP_MAX]; /* per period: service types referred in it */
} rollup__group;

/* The earliest close of a month of a municipality's own calendar, year * 12 + month - 1. */
typedef struct rollup__closed {
    int64_t ym, day;
    int returned; /* a reviewer returned it since: counted, not complete until closed again */
} rollup__closed;

/* A month whose figures noted records can change: key packs (municipality, calendar, YYYYMM)
 * (0: an empty slot), version is the highest of those records. */
typedef struct rollup__touched {
    uint64_t key, version;
} rollup__touched;

/* A changed snapshot waiting for its outbox entry. */
typedef struct rollup__queued {
    uint32_t municipality;
    char period[PERIOD_MAX];
    uint64_t revision;
} rollup__queued;

/* The prepared statements. Each file defines the SQL of its own (rollup__*_sql below); the
 * order matters where a loop walks a run of them (S_SWEEP_P..S_SWEEP_C, S_PROP_PERSON_S..E,
 * S_HAS_DEP_S..E, S_DENORM_S..E). */
enum rollup__stmt {
    /* rollup_shadow.c */
    S_REC_GET,
    S_MARK,
    S_MARK_MUN,
    S_P_GET,
    S_P_DEL,
    S_P_PUT,
    S_DEP_ENT,
    S_LOAN_MIN,
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
    S_SWEEP_P,
    S_SWEEP_S,
    S_SWEEP_E,
    S_SWEEP_A,
    S_SWEEP_C,
    S_PROP_PERSON_S,
    S_PROP_PERSON_E,
    S_HAS_DEP_S,
    S_HAS_DEP_E,
    S_PROP_LOAN,
    S_DENORM_S,
    S_DENORM_E,
    S_ENR_ALL,
    S_ENR_PUT,
    S_ENR_DEL,
    S_CLOSES_OF,
    S_REF_WINDOW,
    /* rollup_indicators.c */
    S_Q_PERSONS,
    S_Q_SERVICES,
    S_Q_ENTERPRISES,
    S_Q_AVAIL,
    S_Q_CLOSE,
    S_Q_ENROLLED,
    /* rollup_store.c */
    S_SNAP_GET,
    S_SNAP_DEL,
    S_SNAP_CLEAN,
    S_SNAP_SET,
    S_BLOB_DEL,
    S_BLOB_PUT,
    S_BLOB_GET,
    S_OUT_DEL,
    S_OUT_PUT,
    S_MAXREV,
    /* rollup_schema.c */
    S_META_GET,
    S_META_SET,
    /* rollup.c */
    S_DIRTY_LIST,
    S_DIRTY_COUNT,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_N
};

extern const char *const rollup__shadow_sql[S_N];
extern const char *const rollup__indicator_sql[S_N];
extern const char *const rollup__store_sql[S_N];
extern const char *const rollup__schema_sql[S_N];
extern const char *const rollup__engine_sql[S_N];

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
    int eager;                /* rollup_set_eager: dirt left by a slice does not wait */
    int paced;                /* next_refresh_ms is the pause after a slice that left dirt */
    uint32_t resume_after;    /* a slice stopped after this municipality: the next starts past it */
    /* (municipality, month pair) marks already made in the open transaction. */
    uint64_t *pair_cache;
    size_t pair_cache_n;
    /* Aggregation scratch, reused by every computation. */
    rollup__acc *acc;
    size_t n_acc, cap_acc;
    rollup__slot *acc_slots;
    size_t n_acc_slots;
    uint32_t gen;
    /* The contributor whose rows are being read and the cells it reached (rollup_agg.c). */
    uint8_t cur_id[16];
    int has_cur;
    rollup__reach *reach;
    size_t n_reach, cap_reach;
    rollup__slot *reach_slots;
    size_t n_reach_slots;
    uint32_t reach_gen;
    rollup__out *out;
    size_t cap_out;
    /* Outbox entries of the refresh under way, written at its end in period order. */
    rollup__queued *queued;
    size_t n_queued, cap_queued;
    sbuf blob; /* the packed cells of the snapshot being stored */
    /* The closes of the municipality whose reporting is being computed, by (year, month). */
    rollup__closed *closes;
    size_t n_closes, cap_closes;
    /* Months whose figures the records noted since the last rollup_touched_months() can
     * change, with the highest version among those records (rollup_track_months): an open
     * addressing table of cap_touched slots (a power of two, at most half full). */
    int track_months;
    uint64_t note_version; /* the version of the record being noted; 0 outside a note */
    rollup__touched *touched;
    size_t n_touched, cap_touched;
};

/* --- rollup_schema.c ------------------------------------------------------------------------ */

/* Creates the engine's tables on db, dropping a shadow of another shape first (the rebuild
 * then follows from the missing rollup_built mark). Returns 0, or REINT_EDB with err set (a
 * meta read error included: it never passes for a stale shape). */
int rollup__schema_open(sqlite3 *db, char *err, size_t errlen);
/* Prepares the statements of sql that are not NULL into r->q. Returns 0 or REINT_EDB with err
 * set. */
int rollup__prepare(rollup *r, const char *const sql[S_N], char *err, size_t errlen);
/* Logs what failed with SQLite's message and returns REINT_EDB. */
int rollup__fail(rollup *r, const char *what);
/* Steps a statement that returns no rows (or whose rows are ignored) and resets it. Returns 0
 * or REINT_EDB. */
int rollup__exec(rollup *r, sqlite3_stmt *st);
void rollup__bind_mp(sqlite3_stmt *st, uint32_t municipality, const char *period);
/* sqlite3_step() for the scans that feed the aggregator, with the test-only fault hook
 * "rollup_scan": when it strikes, the step fails with SQLITE_IOERR and reads nothing. */
int rollup__scan_step(sqlite3_stmt *st);
/* Logs a failed step of st (step is what it returned) and returns REINT_EDB. */
int rollup__step_fail(rollup *r, sqlite3_stmt *st, int step);
/* Reads meta key: 0 with *v set, REINT_ENOTFOUND, or REINT_EDB. */
int rollup__meta_get(rollup *r, const char *key, int64_t *v);
int rollup__meta_set(rollup *r, const char *key, int64_t v);

/* --- rollup_shadow.c ------------------------------------------------------------------------ */

/* rollup_contributor_key() with the engine's digest context. */
uint32_t rollup__key(rollup *r, const uint8_t id[16]);
/* The key of a contribution to a sum: the first 4 bytes (big-endian) of SHA-256 of the
 * contributor's id followed by the amount (8 bytes, big-endian), so that a cell's key changes
 * when a contribution does. */
uint32_t rollup__contribution_key(rollup *r, const uint8_t id[16], int64_t amount);
int rollup__mark_period(rollup *r, uint32_t municipality, const char *period);
/* Forgets the (municipality, month pair) marks remembered for the open transaction. */
void rollup__forget_marks(rollup *r);
/* The rollback hook: ud is the engine. */
void rollup__on_rollback(void *ud);
/* Brings rollup_enrolled in line with nodes, marking what an enrolment change affects. */
int rollup__sync_enrolment(rollup *r);
/* Marks what moving the as-of day between lo and hi (lo < hi) changes. */
int rollup__mark_today_move(rollup *r, int32_t lo, int32_t hi);
/* Rebuilds the shadow from the records table and marks every period that holds anything. */
int rollup__rebuild(rollup *r);
/* Notes that the month ym (YYYYMM) of calendar bs of municipality m can change by the record
 * being noted (r->note_version), when months are tracked. Returns 0 or REINT_ENOMEM. */
int rollup__touch(rollup *r, uint32_t m, int bs, int32_t ym);
/* Forgets the months noted (a rolled-back transaction undid their notes). */
void rollup__forget_touched(rollup *r);

/* --- rollup_agg.c --------------------------------------------------------------------------- */

uint64_t rollup__mix(uint64_t x);
/* Grows *p (of *cap elements of elem bytes) to hold need. Returns 0 or REINT_ENOMEM. */
int rollup__grow(void **p, size_t *cap, size_t need, size_t elem);
/* Starts a computation: the cell table and the current contributor empty. */
void rollup__agg_reset(rollup *r);
/* One contribution of contributor id (key ckey) to indicator ind in period slot pj, in every
 * grouping, with dimension values dv. For an indicator that counts a contributor once per cell
 * (dedupe, and every sum) the rows must come grouped by contributor, in ascending order of id,
 * and rollup__contributors_end() must follow the last of a scan. Returns 0, REINT_ENOMEM, or
 * REINT_EINVAL when a contributor comes out of order (it would be counted twice). */
int rollup__emit(rollup *r, int ind, int pj, const int dv[D_N], const uint8_t *id, uint32_t ckey,
                 int64_t num, int64_t den);
/* The same into every period slot whose bit is set in mask. */
int rollup__emit_all(rollup *r, int ind, uint64_t mask, const int dv[D_N], const uint8_t *id,
                     uint32_t ckey, int64_t num, int64_t den);
/* Ends a run of contributors (a scan): what the last one adds to sums is counted, and the next
 * scan may start again from any id. */
void rollup__contributors_end(rollup *r);
/* Turns the accumulated cells into r->out (zero cells left out), sorted by period slot,
 * indicator, grouping and key; *n is their number. A sum's contributors, key and top
 * contributions come from its contributions: only those above 0 count. Returns 0 or
 * REINT_ENOMEM. */
int rollup__finish(rollup *r, size_t *n);
/* A 64-bit digest of n output cells, to tell a changed snapshot from an unchanged one. */
uint64_t rollup__digest(const rollup__out *cells, size_t n);

/* --- rollup_indicators.c -------------------------------------------------------------------- */

/* Fills r->ind from the catalogue. */
void rollup__load_catalogue(rollup *r);
/* Computes the cells of every period of the group into r->out (sorted by period slot); *n is
 * their number. Returns 0, REINT_ENOMEM or REINT_EDB. */
int rollup__compute(rollup *r, rollup__group *g, size_t *n);
/* The value of an enumeration as counted: values this build does not know are UNKNOWN (0). */
int rollup__enum(const ProtobufCEnumDescriptor *d, int v);

/* A calendar month: BS when bs is non-zero, else Gregorian, with its first and last day. */
typedef struct rollup__month {
    int bs, year, month;
    int32_t first, last;
} rollup__month;
/* The month of calendar bs holding day. Returns 0 or REINT_ERANGE (outside the BS table). */
int rollup__month_at(int bs, int32_t day, rollup__month *out);
/* The month (year, month) of calendar bs. Returns 0 or REINT_EINVAL (no such month). */
int rollup__month_of(int bs, int year, int month, rollup__month *out);

/* A YYYYMM month as an index, year * 12 + month - 1 (consecutive months, consecutive
 * indices). */
int32_t rollup__month_index(int32_t ym);

/* --- rollup_store.c ------------------------------------------------------------------------- */

/* Starts the revision clock above every revision issued before. Returns 0 or REINT_EDB. */
int rollup__clock_load(rollup *r);
/* Persists the revision clock. Returns 0 or REINT_EDB. */
int rollup__clock_save(rollup *r);
/* Stores the n computed cells of (m, period): an unchanged snapshot keeps its revision; a
 * changed one gets a new revision and is queued for the outbox. Returns 0 or REINT_E*. */
int rollup__store_snapshot(rollup *r, uint32_t m, const char *period, const rollup__out *cells,
                           size_t n, rollup_stats *stats);
/* Deletes the snapshot of (m, period) and its cells. Returns 0 or REINT_EDB. */
int rollup__drop_snapshot(rollup *r, uint32_t m, const char *period);
/* Writes the outbox entries of the queued snapshots in period order, and empties the queue.
 * Returns 0 or REINT_EDB. */
int rollup__flush_queued(rollup *r);

#endif
