/* The rollup engine's shadow of the records (rollup_internal.h): the live records decoded
 * into indexed tables (rollup_person, rollup_service, rollup_enterprise, rollup_availability,
 * rollup_close), kept by rollup_note() and rollup_note_stored() and rebuilt from the records
 * table; the shadow of the nodes table (rollup_enrolled); and the dirty marks that every
 * change leaves on the snapshots it can affect. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bscal.h"
#include "log.h"
#include "rollup_internal.h"

const char *const rollup__shadow_sql[S_N] = {
    [S_REC_GET] = "SELECT kind, version FROM records WHERE municipality=?2 AND id=?1",
    [S_MARK] = "INSERT INTO rollup_snapshots(municipality, period, revision, dirty, digest, ncells)"
               " VALUES(?1,?2,0,1,0,0) ON CONFLICT(municipality, period) DO UPDATE SET dirty=1"
               " WHERE dirty=0",
    [S_MARK_MUN] = "UPDATE rollup_snapshots SET dirty=1 WHERE municipality=?1 AND dirty=0",
    [S_P_GET] = "SELECT municipality, ad, bs FROM rollup_person WHERE municipality=?2 AND id=?1",
    [S_P_DEL] = "DELETE FROM rollup_person WHERE municipality=?2 AND id=?1",
    [S_P_PUT] = "INSERT OR REPLACE INTO rollup_person(id, municipality, ad, bs, category, sex,"
                " age_band, caste_group, disability, country, intention, ckey)"
                " VALUES(?1,?2,?3,?12,?4,?5,?6,?7,?8,?9,?10,?11)",
    [S_DEP_ENT] = "SELECT ad, bs, loan_ad, loan_bs FROM rollup_enterprise"
                  " INDEXED BY rollup_enterprise_owner WHERE owner=?1 AND municipality=?2",
    [S_LOAN_MIN] = "SELECT min(ad), min(bs) FROM rollup_service INDEXED BY rollup_service_person"
                   " WHERE person=?1 AND type=8 AND status=2 AND municipality=?2",
    [S_S_GET] = "SELECT municipality, ad, bs, person, type, status FROM rollup_service"
                " WHERE municipality=?2 AND id=?1",
    [S_S_DEL] = "DELETE FROM rollup_service WHERE municipality=?2 AND id=?1",
    [S_S_PUT] = "INSERT OR REPLACE INTO rollup_service(id, municipality, person, ad, bs, due,"
                " type, status, provider, programme, amount, ckey, pkey, psex, pcategory)"
                " VALUES(?1,?2,?3,?4,?12,?13,?5,?6,?7,?8,?9,?10,?11,"
                " ifnull((SELECT sex FROM rollup_person WHERE id=?3 AND municipality=?2), 0),"
                " ifnull((SELECT category FROM rollup_person WHERE id=?3 AND municipality=?2), 0))",
    [S_S_REFWIN] = "SELECT ad, bs FROM rollup_service INDEXED BY rollup_service_person"
                   " WHERE person=?1 AND type=?2 AND bs BETWEEN"
                   " ?3 AND ?4 AND status=1 AND municipality=?5",
    [S_E_GET] = "SELECT municipality, ad, bs FROM rollup_enterprise"
                " WHERE municipality=?2 AND id=?1",
    [S_E_DEL] = "DELETE FROM rollup_enterprise WHERE municipality=?2 AND id=?1",
    [S_E_PUT] = "INSERT OR REPLACE INTO rollup_enterprise(id, municipality, owner, ad, bs,"
                " action, sector, employees, status, ckey, osex, ocategory, loan_ad, loan_bs)"
                " SELECT ?1,?2,?3,?4,?10,?5,?6,?7,?8,?9,"
                " ifnull((SELECT sex FROM rollup_person WHERE id=?3 AND municipality=?2), 0),"
                " ifnull((SELECT category FROM rollup_person WHERE id=?3 AND municipality=?2), 0),"
                " min(ad), min(bs) FROM rollup_service INDEXED BY rollup_service_person"
                "  WHERE person=?3 AND type=8 AND status=2 AND municipality=?2",
    [S_A_GET] = "SELECT municipality, service FROM rollup_availability"
                " WHERE municipality=?2 AND id=?1",
    [S_A_DEL] = "DELETE FROM rollup_availability WHERE municipality=?2 AND id=?1",
    [S_A_PUT] = "INSERT OR REPLACE INTO rollup_availability(id, municipality, service, provider,"
                " available, as_of_day) VALUES(?1,?2,?3,?4,?5,?6)",
    [S_A_REFDAYS] = "SELECT DISTINCT ad, bs FROM rollup_service WHERE municipality=?1"
                    " AND type=?2 AND status=1",
    [S_C_GET] = "SELECT municipality, bs, year, month FROM rollup_close"
                " WHERE municipality=?2 AND id=?1",
    [S_C_DEL] = "DELETE FROM rollup_close WHERE municipality=?2 AND id=?1",
    [S_C_PUT] = "INSERT OR REPLACE INTO rollup_close(id, municipality, bs, year, month,"
                " closed_day) VALUES(?1,?2,?3,?4,?5,?6)",
    [S_SWEEP_P] = "DELETE FROM rollup_person WHERE municipality=?1 AND NOT EXISTS(SELECT 1 FROM"
                  " records r WHERE r.municipality=?1 AND r.id=rollup_person.id AND r.deleted=0)",
    [S_SWEEP_S] = "DELETE FROM rollup_service WHERE municipality=?1 AND NOT EXISTS(SELECT 1 FROM"
                  " records r WHERE r.municipality=?1 AND r.id=rollup_service.id AND r.deleted=0)",
    [S_SWEEP_E] =
        "DELETE FROM rollup_enterprise WHERE municipality=?1 AND NOT EXISTS(SELECT 1 FROM"
        " records r WHERE r.municipality=?1 AND r.id=rollup_enterprise.id AND r.deleted=0)",
    [S_SWEEP_A] =
        "DELETE FROM rollup_availability WHERE municipality=?1 AND NOT EXISTS(SELECT 1 FROM"
        " records r WHERE r.municipality=?1 AND r.id=rollup_availability.id AND r.deleted=0)",
    [S_SWEEP_C] = "DELETE FROM rollup_close WHERE municipality=?1 AND NOT EXISTS(SELECT 1 FROM"
                  " records r WHERE r.municipality=?1 AND r.id=rollup_close.id AND r.deleted=0)",
    [S_PROP_PERSON_S] = "UPDATE rollup_service INDEXED BY rollup_service_person SET psex=?3,"
                        " pcategory=?4 WHERE person=?1 AND municipality=?2 RETURNING ad, bs",
    [S_PROP_PERSON_E] = "UPDATE rollup_enterprise INDEXED BY rollup_enterprise_owner SET osex=?3,"
                        " ocategory=?4 WHERE owner=?1 AND municipality=?2 RETURNING ad, bs",
    [S_HAS_DEP_S] = "SELECT 1 FROM rollup_service INDEXED BY rollup_service_person"
                    " WHERE person=?1 AND municipality=?2 LIMIT 1",
    [S_HAS_DEP_E] = "SELECT 1 FROM rollup_enterprise INDEXED BY rollup_enterprise_owner"
                    " WHERE owner=?1 AND municipality=?2 LIMIT 1",
    [S_PROP_LOAN] = "UPDATE rollup_enterprise INDEXED BY rollup_enterprise_owner SET"
                    " loan_ad=?3, loan_bs=?4 WHERE owner=?1 AND municipality=?2",
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
        " (loan_ad, loan_bs)=(SELECT min(l.ad), min(l.bs) FROM rollup_service l"
        "  INDEXED BY rollup_service_person"
        "  WHERE l.person=rollup_enterprise.owner AND l.type=8 AND l.status=2"
        "  AND l.municipality=rollup_enterprise.municipality)"
        " WHERE ?1=0 OR municipality=?1",
    [S_ENR_ALL] = "SELECT municipality, first_day, bs FROM rollup_enrolled",
    [S_ENR_PUT] = "INSERT OR REPLACE INTO rollup_enrolled(municipality, first_day, bs)"
                  " VALUES(?1,?2,?3)",
    [S_ENR_DEL] = "DELETE FROM rollup_enrolled WHERE municipality=?1",
    [S_CLOSES_OF] = "SELECT bs, year, month FROM rollup_close WHERE municipality=?1",
    [S_REF_WINDOW] = "SELECT municipality, ad, bs FROM rollup_service WHERE status=1"
                     " AND due >= ?1 AND due < ?2",
};

/* --- contributor keys --------------------------------------------------------------------- */

uint32_t rollup_contributor_key(const uint8_t id[16])
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(id, 16, h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

/* The first 4 bytes (big-endian) of SHA-256 of data. */
static uint32_t rollup__hash32(rollup *r, const uint8_t *data, size_t len)
{
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (r->sha256 == NULL || r->sha_ctx == NULL ||
        EVP_DigestInit_ex(r->sha_ctx, r->sha256, NULL) != 1 ||
        EVP_DigestUpdate(r->sha_ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(r->sha_ctx, h, &n) != 1 || n < 4) {
        SHA256(data, len, h);
    }
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

uint32_t rollup__key(rollup *r, const uint8_t id[16])
{
    return rollup__hash32(r, id, 16);
}

uint32_t rollup__contribution_key(rollup *r, const uint8_t id[16], int64_t amount)
{
    uint8_t b[24];
    uint64_t a = (uint64_t)amount;
    memcpy(b, id, 16);
    for (int i = 0; i < 8; i++)
        b[16 + i] = (uint8_t)(a >> (56 - 8 * i));
    return rollup__hash32(r, b, sizeof(b));
}

static int rollup__country(const char *c)
{
    if (c == NULL || strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z')
        return 0;
    return (unsigned char)c[0] << 8 | (unsigned char)c[1];
}

/* --- dirty marks -------------------------------------------------------------------------- */

int rollup__mark_period(rollup *r, uint32_t municipality, const char *period)
{
    if (period[0] == '\0')
        return 0;
    sqlite3_stmt *st = r->q[S_MARK];
    rollup__bind_mp(st, municipality, period);
    return rollup__exec(r, st);
}

void rollup__forget_marks(rollup *r)
{
    if (r->pair_cache_n) {
        memset(r->pair_cache, 0, ROLLUP_PAIR_CACHE * sizeof(uint64_t));
        r->pair_cache_n = 0;
    }
}

void rollup__on_rollback(void *ud)
{
    rollup__forget_marks(ud);
    rollup__forget_touched(ud);
}

/* --- months touched (the monthly review) --------------------------------------------------- */

void rollup_track_months(rollup *r, int on)
{
    r->track_months = on != 0;
    if (!on)
        rollup__forget_touched(r);
}

void rollup__forget_touched(rollup *r)
{
    if (r->n_touched) {
        memset(r->touched, 0, r->cap_touched * sizeof(*r->touched));
        r->n_touched = 0;
    }
}

static uint64_t rollup__touch_key(uint32_t m, int bs, int32_t ym)
{
    return (uint64_t)m << 32 | (uint64_t)(bs != 0) << 31 | (uint32_t)ym;
}

/* Puts key with version into a table of cap slots (a power of two). */
static void rollup__touch_put(rollup__touched *t, size_t cap, uint64_t key, uint64_t version,
                              size_t *n)
{
    size_t mask = cap - 1, i = (size_t)rollup__mix(key) & mask;
    for (; t[i].key != 0 && t[i].key != key; i = (i + 1) & mask)
        ;
    if (t[i].key == 0) {
        t[i].key = key;
        (*n)++;
    }
    if (version > t[i].version)
        t[i].version = version;
}

int rollup__touch(rollup *r, uint32_t m, int bs, int32_t ym)
{
    if (!r->track_months || r->note_version == 0 || ym < 100 || ym % 100 < 1 || ym % 100 > 12)
        return 0;
    if (2 * (r->n_touched + 1) > r->cap_touched) {
        size_t cap = r->cap_touched ? 2 * r->cap_touched : 1024, n = 0;
        rollup__touched *t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return REINT_ENOMEM;
        for (size_t i = 0; i < r->cap_touched; i++)
            if (r->touched[i].key)
                rollup__touch_put(t, cap, r->touched[i].key, r->touched[i].version, &n);
        free(r->touched);
        r->touched = t;
        r->cap_touched = cap;
        r->n_touched = n;
    }
    rollup__touch_put(r->touched, r->cap_touched, rollup__touch_key(m, bs, ym), r->note_version,
                      &r->n_touched);
    return 0;
}

int rollup_touched_months(rollup *r, rollup_month_cb cb, void *ud)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && r->n_touched && i < r->cap_touched; i++) {
        const rollup__touched *t = &r->touched[i];
        if (t->key)
            rc = cb(ud, (uint32_t)(t->key >> 32), (int)(t->key >> 31 & 1),
                    (int32_t)(t->key & 0x7fffffff), t->version);
    }
    rollup__forget_touched(r);
    return rc;
}

/* The months a record's own state sits in (its pair, or its closed month), for the rebuild,
 * which marks periods wholesale rather than record by record. */
static int rollup__touch_record(rollup *r, const Reint__V1__Record *rec)
{
    int32_t ad = 0, bs = 0;
    switch (rec->body_case) {
    case REINT__V1__RECORD__BODY_PERSON:
        ad = rec->person->registered_month, bs = rec->person->registered_bs_month;
        break;
    case REINT__V1__RECORD__BODY_SERVICE:
        ad = rec->service->month, bs = rec->service->bs_month;
        break;
    case REINT__V1__RECORD__BODY_ENTERPRISE:
        ad = rec->enterprise->month, bs = rec->enterprise->bs_month;
        break;
    case REINT__V1__RECORD__BODY_MONTH_CLOSE:
        return rollup__touch(r, rec->municipality, rec->month_close->bikram_sambat,
                             rec->month_close->year * 100 + rec->month_close->month);
    default:
        return 0;
    }
    int rc = rollup__touch(r, rec->municipality, 0, ad);
    return rc ? rc : rollup__touch(r, rec->municipality, 1, bs);
}

/* Marks the six periods of an event of month pair (ad, bs): the Gregorian ones of ad and
 * the BS ones of bs. Pairs already marked in this transaction are remembered, so a batch of
 * records of the same months costs one probe each. */
static int rollup__mark_pair(rollup *r, uint32_t municipality, int32_t ad, int32_t bs)
{
    if (r->track_months && r->note_version) {
        int rc = rollup__touch(r, municipality, 0, ad);
        if (rc == 0)
            rc = rollup__touch(r, municipality, 1, bs);
        if (rc)
            return rc;
    }
    uint64_t key =
        ((uint64_t)municipality << 32 | (uint64_t)(uint16_t)rollup__month_index(ad) << 16 |
         (uint16_t)rollup__month_index(bs)) +
        1; /* never 0 */
    size_t mask = ROLLUP_PAIR_CACHE - 1, i = (size_t)rollup__mix(key) & mask;
    for (;; i = (i + 1) & mask) {
        if (r->pair_cache[i] == key)
            return 0;
        if (r->pair_cache[i] == 0)
            break;
    }
    char p[PERIOD_KINDS][PERIOD_MAX];
    period_of_pair(ad, bs, p); /* a month that is none has no periods: nothing to mark */
    for (int k = 0; k < PERIOD_KINDS; k++) {
        int rc = rollup__mark_period(r, municipality, p[k]);
        if (rc)
            return rc;
    }
    if (r->pair_cache_n >= ROLLUP_PAIR_CACHE / 2)
        rollup__forget_marks(r);
    else {
        r->pair_cache[i] = key;
        r->pair_cache_n++;
    }
    return 0;
}

/* Marks the month pairs a two-column query (ad, bs) returns (bound by the caller), then
 * resets it. */
static int rollup__mark_pairs_of(rollup *r, uint32_t municipality, sqlite3_stmt *st)
{
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = rollup__mark_pair(r, municipality, sqlite3_column_int(st, 0),
                                    sqlite3_column_int(st, 1))) != 0)
            break;
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__fail(r, sqlite3_sql(st));
    sqlite3_reset(st);
    return rc;
}

/* Marks every period, of the six kinds, that holds a day of [lo, hi]: consecutive days share
 * their periods, so each is marked once. */
static int rollup__mark_span(rollup *r, uint32_t municipality, int32_t lo, int32_t hi)
{
    char prev[PERIOD_KINDS][PERIOD_MAX];
    memset(prev, 0, sizeof(prev));
    if (lo < ROLLUP_MIN_TODAY)
        lo = ROLLUP_MIN_TODAY;
    if (hi > ROLLUP_MAX_TODAY)
        hi = ROLLUP_MAX_TODAY;
    for (int32_t d = lo; d <= hi; d++) {
        char p[PERIOD_KINDS][PERIOD_MAX];
        period_of_day(d, p);
        for (int k = 0; k < PERIOD_KINDS; k++) {
            if (strcmp(prev[k], p[k]) == 0)
                continue;
            int rc = rollup__mark_period(r, municipality, p[k]);
            if (rc)
                return rc;
            memcpy(prev[k], p[k], PERIOD_MAX);
        }
    }
    return 0;
}

/* Marks what the close of a month (bs, year, month) affects: every period holding a day of
 * the month, so the month itself, the months of the other calendar that overlap it, and the
 * quarters, years, trimesters and fiscal years whose unit months they are. A month that does
 * not exist affects nothing. */
static int rollup__mark_close(rollup *r, uint32_t municipality, int bs, int year, int month)
{
    int rc = rollup__touch(r, municipality, bs, year * 100 + month);
    if (rc)
        return rc;
    rollup__month mo;
    if (rollup__month_of(bs, year, month, &mo) != 0)
        return 0;
    return rollup__mark_span(r, municipality, mo.first, mo.last);
}

/* Marks what the months of calendar bs whose last day lies in [lo, hi) affect: such a month
 * becomes (or stops being) due when the as-of day or the enrolment day crosses its end. */
static int rollup__mark_months_ending(rollup *r, uint32_t municipality, int bs, int32_t lo,
                                      int32_t hi)
{
    for (int32_t d = lo; d < hi;) {
        rollup__month mo;
        if (rollup__month_at(bs, d, &mo) != 0)
            break; /* outside the BS table: no month there */
        if (mo.last < hi) {
            int rc = rollup__mark_span(r, municipality, mo.first, mo.last);
            if (rc)
                return rc;
        }
        d = mo.last + 1;
    }
    return 0;
}

/* Marks the closes of a municipality (all calendars). */
static int rollup__mark_closes_of(rollup *r, uint32_t municipality)
{
    sqlite3_stmt *st = r->q[S_CLOSES_OF];
    int rc = 0, s;
    sqlite3_bind_int64(st, 1, municipality);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int bs = sqlite3_column_int(st, 0), year = sqlite3_column_int(st, 1);
        int month = sqlite3_column_int(st, 2);
        if ((rc = rollup__mark_close(r, municipality, bs, year, month)) != 0)
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_reset(st);
    return rc;
}

int rollup_mark(rollup *r, uint32_t municipality)
{
    sqlite3_stmt *st = r->q[S_MARK_MUN];
    sqlite3_bind_int64(st, 1, municipality);
    return rollup__exec(r, st);
}

/* --- the shadow ------------------------------------------------------------------------- */

/* Marks what a service's state affects: its own months and, when delivered, the same
 * person's referrals of that type whose window holds its BS month (a referral of BS month B
 * waits through B + ROLLUP_WINDOW_MONTHS). What a delivered loan changes in its owner's
 * enterprises is marked by rollup__propagate_loan(). */
static int rollup__mark_service(rollup *r, uint32_t m, const uint8_t *person, int32_t ad,
                                int32_t bs, int type, int status)
{
    int rc = rollup__mark_pair(r, m, ad, bs);
    if (rc || status != REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED)
        return rc;
    sqlite3_stmt *st = r->q[S_S_REFWIN];
    sqlite3_bind_blob(st, 1, person, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, type);
    sqlite3_bind_int(st, 3, bscal_month_add(bs, -ROLLUP_WINDOW_MONTHS));
    sqlite3_bind_int(st, 4, bs);
    sqlite3_bind_int64(st, 5, m);
    return rollup__mark_pairs_of(r, m, st);
}

static int rollup__mark_availability(rollup *r, uint32_t m, int service)
{
    sqlite3_stmt *st = r->q[S_A_REFDAYS];
    sqlite3_bind_int64(st, 1, m);
    sqlite3_bind_int(st, 2, service);
    return rollup__mark_pairs_of(r, m, st);
}

/* Marks what a person's state affects, its registration's months and those of its services
 * and enterprises, and copies its sex and category (zeros: the person is gone) into those.
 * One statement per table both updates the dependents and returns their months. */
static int rollup__person_changed(rollup *r, uint32_t m, const uint8_t *id, int32_t ad, int32_t bs,
                                  int sex, int category)
{
    int rc = rollup__mark_pair(r, m, ad, bs);
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
        rc = rollup__mark_pairs_of(r, m, st);
    }
    return rc;
}

/* Whether an enterprise of month pair (ad, bs) counts differently in one of its periods when
 * its owner's first loan months (Gregorian, BS; INT32_MAX: no loan) move from was to now.
 * enterprises_with_loan counts it in a period whose last month, in the period's calendar, is
 * the loan's month or later, so the count changes only in the periods whose last month lies
 * from the earlier of the two loan months up to, not including, the later one: a loan given
 * after the end of an enterprise's year, or a first loan moved within months that all come
 * before the enterprise's own, changes nothing there. 1 when in doubt (not a month). */
static int rollup__loan_moves(int32_t ad, int32_t bs, const int32_t was[2], const int32_t now[2])
{
    char p[PERIOD_KINDS][PERIOD_MAX];
    if (period_of_pair(ad, bs, p) != 0)
        return 1;
    for (int k = 0; k < PERIOD_KINDS; k++) {
        enum period_kind kind;
        int cal;
        int32_t first, last;
        if (period_months(p[k], &kind, &cal, &first, &last) != 0)
            return 1;
        int32_t lo = was[cal] < now[cal] ? was[cal] : now[cal];
        int32_t hi = was[cal] < now[cal] ? now[cal] : was[cal];
        if (lo <= last && last < hi)
            return 1;
    }
    return 0;
}

/* Recomputes the earliest delivered loan months that the person's enterprises carry, and
 * marks the enterprises whose periods that changes (rollup__loan_moves: marking every
 * enterprise of the owner, before, made a loan recompute the owner's years of old
 * enterprises whose cells it cannot change). */
static int rollup__propagate_loan(rollup *r, uint32_t m, const uint8_t *person)
{
    int32_t now[2] = {INT32_MAX, INT32_MAX};
    int rc = 0, changed = 0;
    sqlite3_stmt *st = r->q[S_LOAN_MIN];
    sqlite3_bind_blob(st, 1, person, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, m);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        now[0] = sqlite3_column_int(st, 0);
        now[1] = sqlite3_column_int(st, 1);
    }
    sqlite3_reset(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return rollup__fail(r, "first loan");
    st = r->q[S_DEP_ENT];
    sqlite3_bind_blob(st, 1, person, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, m);
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        int32_t was[2] = {INT32_MAX, INT32_MAX};
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            was[0] = sqlite3_column_int(st, 2);
            was[1] = sqlite3_column_int(st, 3);
        }
        if (was[0] == now[0] && was[1] == now[1])
            continue;
        changed = 1;
        int32_t ad = sqlite3_column_int(st, 0), bs = sqlite3_column_int(st, 1);
        if (rollup__loan_moves(ad, bs, was, now))
            rc = rollup__mark_pair(r, m, ad, bs);
    }
    if (rc == 0 && s != SQLITE_DONE && s != SQLITE_ROW)
        rc = rollup__fail(r, sqlite3_sql(st));
    sqlite3_reset(st);
    if (rc || !changed)
        return rc;
    st = r->q[S_PROP_LOAN];
    sqlite3_bind_blob(st, 1, person, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, m);
    for (int c = 0; c < 2; c++) {
        if (now[c] == INT32_MAX)
            sqlite3_bind_null(st, 3 + c);
        else
            sqlite3_bind_int(st, 3 + c, now[c]);
    }
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

/* Removes the shadow row of (municipality, id) (of the given kind); when incremental, keeps
 * the copies in dependent rows right and marks what its state affected. */
static int rollup__remove(rollup *r, uint32_t municipality, const uint8_t *id, int kind,
                          int incremental)
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
    sqlite3_bind_int64(get, 2, municipality);
    int s = sqlite3_step(get);
    if (s != SQLITE_ROW) {
        sqlite3_reset(get);
        return s == SQLITE_DONE ? 0 : rollup__fail(r, "shadow lookup");
    }
    /* Columns: municipality, then (ad, bs) for a person, service or enterprise (a service
     * then person, type, status); service for an availability row; bs, year, month for a
     * close. */
    uint32_t m = (uint32_t)sqlite3_column_int64(get, 0);
    int32_t ad = sqlite3_column_int(get, 1), bsm = sqlite3_column_int(get, 2);
    uint8_t person[16] = {0};
    int type = 0, status = 0, bs = 0, year = 0, month = 0;
    if (kind == REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE) {
        if (sqlite3_column_bytes(get, 3) == 16)
            memcpy(person, sqlite3_column_blob(get, 3), 16);
        type = sqlite3_column_int(get, 4);
        status = sqlite3_column_int(get, 5);
    } else if (kind == REINT__V1__RECORD_KIND__RECORD_KIND_MONTH_CLOSE) {
        bs = sqlite3_column_int(get, 1);
        year = sqlite3_column_int(get, 2);
        month = sqlite3_column_int(get, 3);
    }
    sqlite3_reset(get);
    sqlite3_bind_blob(del, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(del, 2, municipality);
    if ((rc = rollup__exec(r, del)) != 0 || !incremental)
        return rc;
    switch (kind) {
    case REINT__V1__RECORD_KIND__RECORD_KIND_PERSON:
        return rollup__person_changed(r, m, id, ad, bsm, 0, 0);
    case REINT__V1__RECORD_KIND__RECORD_KIND_SERVICE:
        if (type == REINT__V1__SERVICE_TYPE__SERVICE_TYPE_LOAN &&
            status == REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED &&
            (rc = rollup__propagate_loan(r, m, person)) != 0)
            return rc;
        return rollup__mark_service(r, m, person, ad, bsm, type, status);
    case REINT__V1__RECORD_KIND__RECORD_KIND_ENTERPRISE:
        return rollup__mark_pair(r, m, ad, bsm);
    case REINT__V1__RECORD_KIND__RECORD_KIND_AVAILABILITY:
        return rollup__mark_availability(r, m, ad /* S_A_GET's second column: the service */);
    default:
        return rollup__mark_close(r, m, bs, year, month);
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
        sqlite3_bind_int(st, 3, p->registered_month);
        sqlite3_bind_int(st, 12, p->registered_bs_month);
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
        return rollup__person_changed(r, m, id, p->registered_month, p->registered_bs_month,
                                      (int)p->sex, (int)p->category);
    }
    case REINT__V1__RECORD__BODY_SERVICE: {
        const Reint__V1__Service *s = rec->service;
        if (s->person_id.len != 16)
            return REINT_EINVAL;
        st = r->q[S_S_PUT];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_blob(st, 3, s->person_id.data, 16, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, s->month);
        sqlite3_bind_int(st, 12, s->bs_month);
        /* The last BS month of its follow-up window, for a referral. */
        sqlite3_bind_int(st, 13, bscal_month_add(s->bs_month, ROLLUP_WINDOW_MONTHS));
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
        return rollup__mark_service(r, m, s->person_id.data, s->month, s->bs_month, (int)s->type,
                                    (int)s->status);
    }
    case REINT__V1__RECORD__BODY_ENTERPRISE: {
        const Reint__V1__Enterprise *e = rec->enterprise;
        if (e->owner_id.len != 16)
            return REINT_EINVAL;
        st = r->q[S_E_PUT];
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m);
        sqlite3_bind_blob(st, 3, e->owner_id.data, 16, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, e->month);
        sqlite3_bind_int(st, 10, e->bs_month);
        sqlite3_bind_int(st, 5, (int)e->action);
        sqlite3_bind_int(st, 6, (int)e->sector);
        sqlite3_bind_int(st, 7, e->employees);
        sqlite3_bind_int(st, 8, (int)e->status);
        sqlite3_bind_int64(st, 9, rollup__key(r, id));
        if ((rc = rollup__exec(r, st)) != 0 || !incremental)
            return rc;
        return rollup__mark_pair(r, m, e->month, e->bs_month);
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
        return rollup__mark_close(r, m, c->bikram_sambat, c->year, c->month);
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
        old_kind = sqlite3_column_int(st, 0);
        uint64_t v = (uint64_t)sqlite3_column_int64(st, 1);
        sqlite3_reset(st);
        if (v >= version)
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
    r->note_version = version;
    if (old_kind >= 0 && (rc = rollup__remove(r, municipality, id, old_kind, 1)) != 0)
        goto out;
    rc = rollup__apply(r, rec, 1);
out:
    r->note_version = 0;
    reint__v1__record__free_unpacked(rec, NULL);
    return rc;
}

int rollup_note_stored(rollup *r, uint32_t municipality, const uint8_t id[16], const uint8_t *body,
                       size_t len, int fresh)
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
    r->note_version = rec->version;
    for (int kind = REINT__V1__RECORD_KIND__RECORD_KIND_PERSON;
         rc == 0 && !fresh && kind <= REINT__V1__RECORD_KIND__RECORD_KIND_MONTH_CLOSE; kind++)
        rc = rollup__remove(r, municipality, id, kind, 1);
    if (rc == 0)
        rc = rollup__apply(r, rec, 1);
    r->note_version = 0;
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

/* --- enrolment and the as-of day ------------------------------------------------------------ */

/* An enrolment: the day the hub first saw the node and the calendar its months are due in. */
typedef struct rollup__enr {
    uint32_t m;
    int64_t day;
    int bs;
} rollup__enr;

static int rollup__enr_cmp(const void *a, const void *b)
{
    const rollup__enr *x = a, *y = b;
    return x->m < y->m ? -1 : x->m > y->m;
}

/* Reads the rows of st (municipality, day, bs) into a sorted array. day_ms: the day column
 * is in milliseconds since the epoch (taken as a day in Nepal). Returns 0, REINT_ENOMEM or
 * REINT_EDB. */
static int rollup__read_enr(rollup *r, sqlite3_stmt *st, int day_ms, rollup__enr **out, size_t *n)
{
    size_t cap = 0;
    int rc = 0, s;
    *out = NULL;
    *n = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = rollup__grow((void **)out, &cap, *n + 1, sizeof(**out))) != 0)
            break;
        rollup__enr *e = &(*out)[(*n)++];
        e->m = (uint32_t)sqlite3_column_int64(st, 0);
        e->day = sqlite3_column_int64(st, 1);
        /* The day in Nepal (UTC+05:45) of the first-seen time, as the as-of day is Nepal's. */
        if (day_ms)
            e->day = (e->day + ROLLUP_NEPAL_OFFSET_MS) / 86400000;
        /* A first-seen time out of all reason (a corrupt row) is held to the engine's days. */
        if (e->day < ROLLUP_MIN_TODAY)
            e->day = ROLLUP_MIN_TODAY;
        if (e->day > ROLLUP_MAX_TODAY)
            e->day = ROLLUP_MAX_TODAY;
        /* nodes.calendar: 2 is AD; 1 (BS) and 0 (unknown: a v1 node) count as BS. */
        e->bs = day_ms ? sqlite3_column_int(st, 2) != REINT__V1__CALENDAR__CALENDAR_AD
                       : sqlite3_column_int(st, 2) != 0;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_reset(st);
    if (rc == 0 && *n > 1)
        qsort(*out, *n, sizeof(**out), rollup__enr_cmp);
    return rc;
}

/* Marks what a change of a municipality's enrolment (it appeared, vanished, or its first day
 * or calendar changed; a or b NULL when absent) affects: the months of each calendar involved
 * that end between the earlier first day and today (their due state may change) and every
 * month the municipality closed (a close counts only in the calendar it is due in). */
static int rollup__enrolment_changed(rollup *r, uint32_t m, const rollup__enr *a,
                                     const rollup__enr *b)
{
    int64_t lo = a ? a->day : b->day;
    if (a && b && b->day < lo)
        lo = b->day;
    int rc = 0;
    for (int bs = 0; rc == 0 && bs < 2; bs++)
        if ((a && a->bs == bs) || (b && b->bs == bs))
            rc = rollup__mark_months_ending(r, m, bs, (int32_t)lo, r->today);
    return rc ? rc : rollup__mark_closes_of(r, m);
}

int rollup__sync_enrolment(rollup *r)
{
    if (r->nodes == NULL)
        return 0;
    rollup__enr *now = NULL, *had = NULL;
    size_t n_now = 0, n_had = 0, i = 0, j = 0;
    int rc = rollup__read_enr(r, r->nodes, 1, &now, &n_now);
    if (rc == 0)
        rc = rollup__read_enr(r, r->q[S_ENR_ALL], 0, &had, &n_had);
    /* Both sorted by municipality: one merge walk finds what appeared, changed or vanished. */
    while (rc == 0 && (i < n_now || j < n_had)) {
        const rollup__enr *a = i < n_now ? &now[i] : NULL, *b = j < n_had ? &had[j] : NULL;
        if (a && b && a->m != b->m) {
            if (a->m < b->m)
                b = NULL;
            else
                a = NULL;
        }
        i += a != NULL;
        j += b != NULL;
        if (a && b && a->day == b->day && a->bs == b->bs)
            continue;
        uint32_t m = a ? a->m : b->m;
        if ((rc = rollup__enrolment_changed(r, m, a, b)) != 0)
            break;
        sqlite3_stmt *st = r->q[a ? S_ENR_PUT : S_ENR_DEL];
        sqlite3_bind_int64(st, 1, m);
        if (a) {
            sqlite3_bind_int64(st, 2, a->day);
            sqlite3_bind_int(st, 3, a->bs);
        }
        rc = rollup__exec(r, st);
    }
    free(now);
    free(had);
    return rc;
}

int rollup__mark_today_move(rollup *r, int32_t lo, int32_t hi)
{
    int rc = 0, s = SQLITE_DONE;
    /* A referral is pending once the as-of day's BS month is past the last month of its
     * window (due): the state changes for due in [BS month of lo, BS month of hi). Days
     * outside the BS table hold no month: they are held to its edges. */
    int32_t ad, due_lo = 0, due_hi = 0;
    if (bscal_pair_of_day(lo, &ad, &due_lo) != 0)
        due_lo = lo < 0 ? 0 : 999999;
    if (bscal_pair_of_day(hi, &ad, &due_hi) != 0)
        due_hi = hi < 0 ? 0 : 999999;
    sqlite3_stmt *st = r->q[S_REF_WINDOW];
    sqlite3_bind_int(st, 1, due_lo);
    sqlite3_bind_int(st, 2, due_hi);
    struct {
        uint32_t m;
        int32_t ad, bs;
    } buf[256];
    size_t n = 0;
    while (rc == 0 && due_lo < due_hi) {
        s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            buf[n].m = (uint32_t)sqlite3_column_int64(st, 0);
            buf[n].ad = sqlite3_column_int(st, 1);
            buf[n++].bs = sqlite3_column_int(st, 2);
        }
        if (n == sizeof(buf) / sizeof(buf[0]) || (s != SQLITE_ROW && n)) {
            for (size_t i = 0; i < n && rc == 0; i++)
                rc = rollup__mark_pair(r, buf[i].m, buf[i].ad, buf[i].bs);
            n = 0;
        }
        if (s != SQLITE_ROW)
            break;
    }
    sqlite3_reset(st);
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__fail(r, "referral windows");
    /* Months of each municipality's own calendar whose end crosses the move become due or
     * stop being due (last in [lo, hi)), and with them what they are unit months of. */
    rollup__enr *enr = NULL;
    size_t n_enr = 0;
    if (rc == 0)
        rc = rollup__read_enr(r, r->q[S_ENR_ALL], 0, &enr, &n_enr);
    for (size_t i = 0; rc == 0 && i < n_enr; i++) {
        int32_t from = enr[i].day > lo ? (int32_t)enr[i].day : lo;
        if (from < hi)
            rc = rollup__mark_months_ending(r, enr[i].m, enr[i].bs, from, hi);
    }
    free(enr);
    return rc;
}

/* --- rebuild ------------------------------------------------------------------------------- */

int rollup__rebuild(rollup *r)
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
    int rc = 0, s = SQLITE_DONE;
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
            r->note_version = rec->version;
            if (rc == 0)
                rc = rollup__touch_record(r, rec);
            r->note_version = 0;
        }
        if (rec)
            reint__v1__record__free_unpacked(rec, NULL);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_finalize(st);
    if (rc || (rc = rollup__denormalize(r, 0)) != 0)
        return rc;
    /* Every month pair holding a person, service or enterprise, in order, so that
     * consecutive pairs share their periods and each period is marked about once. */
    if (sqlite3_prepare_v2(r->db,
                           "SELECT municipality, ad, bs FROM rollup_person UNION"
                           " SELECT municipality, ad, bs FROM rollup_service UNION"
                           " SELECT municipality, ad, bs FROM rollup_enterprise ORDER BY 1, 2, 3",
                           -1, &st, NULL) != SQLITE_OK)
        return rollup__fail(r, "rebuild");
    char prev[PERIOD_KINDS][PERIOD_MAX];
    uint32_t prev_m = 0;
    memset(prev, 0, sizeof(prev));
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t m = (uint32_t)sqlite3_column_int64(st, 0);
        char p[PERIOD_KINDS][PERIOD_MAX];
        period_of_pair(sqlite3_column_int(st, 1), sqlite3_column_int(st, 2), p);
        for (int k = 0; rc == 0 && k < PERIOD_KINDS; k++) {
            if (m == prev_m && strcmp(prev[k], p[k]) == 0)
                continue;
            rc = rollup__mark_period(r, m, p[k]);
            memcpy(prev[k], p[k], PERIOD_MAX);
        }
        prev_m = m;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(r->db, "SELECT municipality, bs, year, month FROM rollup_close", -1, &st,
                           NULL) != SQLITE_OK)
        return rollup__fail(r, "rebuild");
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW)
        rc = rollup__mark_close(r, (uint32_t)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1),
                                sqlite3_column_int(st, 2), sqlite3_column_int(st, 3));
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_finalize(st);
    if (rc == 0)
        rc = rollup__meta_set(r, "rollup_built", 1);
    return rc;
}

int rollup_set_returned(rollup *r, uint32_t municipality, int bs, int year, int month, int returned)
{
    sqlite3_stmt *st = NULL;
    const char *sql = returned ? "INSERT OR IGNORE INTO rollup_returned(municipality, bs, year,"
                                 " month) VALUES(?1,?2,?3,?4)"
                               : "DELETE FROM rollup_returned WHERE municipality=?1 AND bs=?2"
                                 " AND year=?3 AND month=?4";
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        return rollup__fail(r, "returned months");
    sqlite3_bind_int64(st, 1, municipality);
    sqlite3_bind_int(st, 2, bs != 0);
    sqlite3_bind_int(st, 3, year);
    sqlite3_bind_int(st, 4, month);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return rollup__fail(r, "returned months");
    if (sqlite3_changes(r->db) == 0)
        return 0;
    return rollup__mark_close(r, municipality, bs != 0, year, month);
}
