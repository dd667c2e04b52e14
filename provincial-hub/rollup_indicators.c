/* The rollup engine's indicators (rollup_internal.h): their definitions (codes, dimensions,
 * groupings from the catalogue) and the per-kind scans of the shadow that feed the
 * aggregator, from registrations to reporting completeness. */
#include <stdio.h>
#include <string.h>

#include "bscal.h"
#include "log.h"
#include "rollup_internal.h"

const rollup__dim_def rollup__dims[D_N] = {
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

const char *const rollup__indicator_sql[S_N] = {
    [S_Q_PERSONS] = "SELECT id, category, sex, age_band, caste_group, disability, country,"
                    " intention, ckey, ad, bs FROM rollup_person"
                    " WHERE municipality=?1 AND ad BETWEEN ?2 AND ?3",
    /* Pending: a referral whose window (its BS month through due, the third full BS month
     * after it) ended before the as-of day's BS month (?4), with no delivery of that type
     * for the person in a BS month of the window. The test is a CASE because SQLite (3.40)
     * computes both sides of an AND in a result column: "status=1 AND due<?4 AND NOT
     * EXISTS(...)" ran the lookup, two cursors opened and closed, for every service read,
     * deliveries included (a fifth of a refresh's time in bench/rollup_bench). */
    [S_Q_SERVICES] =
        "SELECT id, ckey, person, pkey, type, status, provider, programme, amount, psex,"
        " pcategory, CASE WHEN status=1 AND due<?4 THEN NOT EXISTS(SELECT 1 FROM rollup_service d"
        "  INDEXED BY rollup_service_person WHERE d.person=s.person AND d.type=s.type"
        "  AND d.bs BETWEEN s.bs AND s.due AND d.status=2 AND d.municipality=s.municipality)"
        "  ELSE 0 END"
        ", ad, bs FROM rollup_service s WHERE municipality=?1 AND ad BETWEEN ?2 AND ?3"
        " ORDER BY person", /* persons served, seed funding, bank accounts: per person */
    [S_Q_ENTERPRISES] = "SELECT id, ckey, action, sector, employees, status, osex, ocategory,"
                        " loan_ad, loan_bs, ad, bs, owner FROM rollup_enterprise"
                        " WHERE municipality=?1 AND ad BETWEEN ?2 AND ?3"
                        " ORDER BY owner", /* jobs created: per owner */
    [S_Q_AVAIL] = "SELECT service, provider, available, as_of_day, id FROM rollup_availability"
                  " WHERE municipality=?1",
    [S_Q_CLOSE] = "SELECT year, month, max(closed_day), EXISTS(SELECT 1 FROM rollup_returned x"
                  "  WHERE x.municipality=?1 AND x.bs=?2 AND x.year=c.year AND x.month=c.month)"
                  " FROM rollup_close c WHERE municipality=?1 AND bs=?2"
                  " GROUP BY year, month ORDER BY year, month",
    [S_Q_ENROLLED] = "SELECT first_day, bs FROM rollup_enrolled WHERE municipality=?1",
};

/* An (indicator, grouping) pair while the ranks are given. */
typedef struct rollup__pair {
    const char *code, *name;
    rollup__grouping *g;
} rollup__pair;

static int rollup__pair_cmp(const void *a, const void *b)
{
    const rollup__pair *x = a, *y = b;
    int c = strcmp(x->code, y->code);
    return c ? c : strcmp(x->name, y->name);
}

/* Ranks every (indicator, grouping) by their names, so that the finished cells sort by
 * integers where they would compare two strings (rollup__finish). */
static void rollup__rank_groupings(rollup *r)
{
    rollup__pair pairs[I_N * CATALOGUE_MAX_GROUPINGS];
    size_t n = 0;
    for (int i = 0; i < I_N; i++)
        for (int g = 0; g < r->ind[i].n_groupings; g++)
            pairs[n++] = (rollup__pair){r->ind[i].code, r->ind[i].g[g].name, &r->ind[i].g[g]};
    qsort(pairs, n, sizeof(pairs[0]), rollup__pair_cmp);
    for (size_t k = 0; k < n; k++)
        pairs[k].g->rank = (int)k;
}

void rollup__load_catalogue(rollup *r)
{
    for (int i = 0; i < I_N; i++) {
        rollup__indicator *in = &r->ind[i];
        const catalogue_indicator *c = catalogue_find(rollup__codes[i]);
        in->code = rollup__codes[i];
        in->n_groupings = 0;
        in->dedupe = i == I_PERSONS_SERVED || i == I_SEED || i == I_BANK || i == I_JOBS;
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
    rollup__rank_groupings(r);
}

int rollup__enum(const ProtobufCEnumDescriptor *d, int v)
{
    return v > 0 && protobuf_c_enum_descriptor_get_value(d, v) ? v : 0;
}

int32_t rollup__month_index(int32_t ym)
{
    return (ym / 100) * 12 + ym % 100 - 1;
}

/* The periods of the group that hold an event of month pair (ad, bs). */
static uint64_t rollup__mask(const rollup__group *g, int32_t ad, int32_t bs)
{
    uint64_t m = 0;
    int64_t a = (int64_t)rollup__month_index(ad) - g->ad0;
    int64_t b = (int64_t)rollup__month_index(bs) - g->bs0;
    if (a >= 0 && (size_t)a < g->n_ad)
        m |= g->masks[a];
    if (b >= 0 && (size_t)b < g->n_bs)
        m |= g->masks[g->n_ad + (size_t)b];
    return m;
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

/* The rows a group reads: its Gregorian months from that of its first day to that of its
 * last. A row in a BS period of the group has a BS month inside the group's days, and the
 * Gregorian month of its pair overlaps that BS month, so it lies in this range too. */
static void rollup__bind_range(sqlite3_stmt *st, const rollup__group *g)
{
    int y, m, d;
    sqlite3_bind_int64(st, 1, g->m);
    bscal_ad_from_days(g->lo, &y, &m, &d);
    sqlite3_bind_int(st, 2, y * 100 + m);
    bscal_ad_from_days(g->hi, &y, &m, &d);
    sqlite3_bind_int(st, 3, y * 100 + m);
}

static int rollup__persons(rollup *r, rollup__group *g)
{
    sqlite3_stmt *st = r->q[S_Q_PERSONS];
    int rc = 0, s = SQLITE_DONE;
    rollup__bind_range(st, g);
    while (rc == 0 && (s = rollup__scan_step(st)) == SQLITE_ROW) {
        int dv[D_N] = {0};
        uint8_t id[16];
        uint64_t mask = rollup__mask(g, sqlite3_column_int(st, 9), sqlite3_column_int(st, 10));
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
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_reset(st);
    return rc;
}

/* Services of the group's periods; g->referred gets one bit per known service type referred
 * in each period. */
static int rollup__services(rollup *r, rollup__group *g)
{
    sqlite3_stmt *st = r->q[S_Q_SERVICES];
    int rc = 0, s = SQLITE_DONE;
    rollup__bind_range(st, g);
    /* The as-of day's BS month (days outside the table: before or after every month). */
    int32_t ad, today_bs;
    if (bscal_pair_of_day(r->today, &ad, &today_bs) != 0)
        today_bs = r->today < 0 ? 0 : 999999;
    sqlite3_bind_int(st, 4, today_bs);
    while (rc == 0 && (s = rollup__scan_step(st)) == SQLITE_ROW) {
        int dv[D_N] = {0};
        uint8_t id[16], person[16];
        uint64_t mask = rollup__mask(g, sqlite3_column_int(st, 12), sqlite3_column_int(st, 13));
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
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    rollup__contributors_end(r);
    sqlite3_reset(st);
    return rc;
}

static int rollup__enterprises(rollup *r, rollup__group *g)
{
    sqlite3_stmt *st = r->q[S_Q_ENTERPRISES];
    int rc = 0, s = SQLITE_DONE;
    rollup__bind_range(st, g);
    while (rc == 0 && (s = rollup__scan_step(st)) == SQLITE_ROW) {
        int dv[D_N] = {0};
        uint8_t id[16], owner[16];
        uint64_t mask = rollup__mask(g, sqlite3_column_int(st, 10), sqlite3_column_int(st, 11));
        rollup__col_id(st, 0, id);
        rollup__col_id(st, 12, owner);
        uint32_t ckey = (uint32_t)sqlite3_column_int64(st, 1);
        dv[D_ACTION] = rollup__col_enum(st, 2, D_ACTION);
        dv[D_SECTOR] = rollup__col_enum(st, 3, D_SECTOR);
        int employees = sqlite3_column_int(st, 4);
        int active =
            sqlite3_column_int(st, 5) == REINT__V1__ENTERPRISE_STATUS__ENTERPRISE_STATUS_ACTIVE;
        dv[D_OWNER_SEX] = rollup__col_enum(st, 6, D_SEX);
        dv[D_OWNER_CATEGORY] = rollup__col_enum(st, 7, D_CATEGORY);
        int has_loan = sqlite3_column_type(st, 8) != SQLITE_NULL;
        int32_t loan_ad = sqlite3_column_int(st, 8), loan_bs = sqlite3_column_int(st, 9);
        rc = rollup__emit_all(r, I_ENT_SUPPORTED, mask, dv, id, ckey, 1, 0);
        /* Jobs are the owner's: one owner of several enterprises is one contributor. */
        if (rc == 0 && employees >= 0)
            rc = rollup__emit_all(r, I_JOBS, mask, dv, owner, 0, employees, 0);
        if (rc == 0)
            rc = rollup__emit_all(r, I_ENT_ACTIVE, mask, dv, id, ckey, active, 1);
        /* With a loan: only the periods whose last month (of their calendar) is the loan's
         * month or later. */
        for (int pj = 0; rc == 0 && pj < g->n; pj++)
            if (mask >> pj & 1)
                rc = rollup__emit(r, I_ENT_LOAN, pj, dv, id, ckey,
                                  has_loan && (g->bs[pj] ? loan_bs : loan_ad) <= g->mlast[pj], 1);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    rollup__contributors_end(r);
    sqlite3_reset(st);
    return rc;
}

/* Service types this municipality offers locally: per (service, provider) the availability
 * row with the latest as_of_day (ties: the larger id) decides. Returns 0 or REINT_EDB. */
static int rollup__offered(rollup *r, uint32_t m, uint32_t *offered)
{
    enum { MAXP = 16 };
    struct {
        int32_t as_of;
        uint8_t id[16];
        int available, seen;
    } latest[32][MAXP];
    memset(latest, 0, sizeof(latest));
    sqlite3_stmt *st = r->q[S_Q_AVAIL];
    int s;
    sqlite3_bind_int64(st, 1, m);
    while ((s = rollup__scan_step(st)) == SQLITE_ROW) {
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
    if (s != SQLITE_DONE)
        return rollup__step_fail(r, st, s);
    *offered = 0;
    for (int svc = 1; svc < 32; svc++)
        for (int p = 0; p < MAXP; p++)
            if (latest[svc][p].seen && latest[svc][p].available)
                *offered |= 1u << svc;
    return 0;
}

/* Service types referred in each period that no latest availability row offers. */
static int rollup__unavailable(rollup *r, rollup__group *g)
{
    uint32_t any = 0, offered = 0;
    for (int pj = 0; pj < g->n; pj++)
        any |= g->referred[pj];
    if (any == 0)
        return 0;
    int rc = rollup__offered(r, g->m, &offered);
    if (rc)
        return rc;
    for (int pj = 0; pj < g->n; pj++) {
        for (int svc = 1; svc < 32; svc++) {
            if (!(g->referred[pj] & ~offered & 1u << svc))
                continue;
            int dv[D_N] = {0};
            uint8_t id[16] = {0};
            dv[D_SERVICE_TYPE] = svc;
            id[15] = (uint8_t)svc; /* the service type is the contributor */
            rc = rollup__emit(r, I_SERVICES_UNAVAILABLE, pj, dv, id, 0, 1, 0);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* --- calendar months ----------------------------------------------------------------------- */

int rollup__month_at(int bs, int32_t day, rollup__month *out)
{
    int y, m, d, len;
    if (bs) {
        if (bscal_bs_from_days(day, &y, &m, &d) != 0 || (len = bscal_bs_month_days(y, m)) <= 0)
            return REINT_ERANGE;
    } else {
        bscal_ad_from_days(day, &y, &m, &d);
        len = (m == 12 ? bscal_days_from_ad(y + 1, 1, 1) : bscal_days_from_ad(y, m + 1, 1)) -
              bscal_days_from_ad(y, m, 1);
    }
    out->bs = bs != 0;
    out->year = y;
    out->month = m;
    out->first = day - (d - 1);
    out->last = out->first + len - 1;
    return 0;
}

int rollup__month_of(int bs, int year, int month, rollup__month *out)
{
    int32_t first;
    if (month < 1 || month > 12)
        return REINT_EINVAL;
    if (bs) {
        if (bscal_days_from_bs(year, month, 1, &first) != 0)
            return REINT_EINVAL;
    } else {
        if (year < 1 || year > 9999)
            return REINT_EINVAL;
        first = bscal_days_from_ad(year, month, 1);
    }
    return rollup__month_at(bs, first, out) == 0 ? 0 : REINT_EINVAL;
}

/* --- reporting completeness and timeliness ------------------------------------------------ */

/* What the group's municipality reports: whether it is enrolled, since when, in which
 * calendar, and the last close of each month of that calendar it closed, with whether a
 * reviewer returned it since. */
typedef struct rollup__reporter {
    int enrolled, bs;
    int64_t first_day;
} rollup__reporter;

/* Loads the enrolment and the closes (into r->closes) of municipality m. Returns 0 or
 * REINT_E*. */
static int rollup__reporter_load(rollup *r, uint32_t m, rollup__reporter *rep)
{
    sqlite3_stmt *st = r->q[S_Q_ENROLLED];
    memset(rep, 0, sizeof(*rep));
    r->n_closes = 0;
    sqlite3_bind_int64(st, 1, m);
    int s = rollup__scan_step(st);
    if (s == SQLITE_ROW) {
        rep->enrolled = 1;
        rep->first_day = sqlite3_column_int64(st, 0);
        rep->bs = sqlite3_column_int(st, 1) != 0;
    }
    sqlite3_reset(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return rollup__step_fail(r, st, s);
    if (!rep->enrolled)
        return 0;
    /* Only closes of the municipality's own calendar count: it is due in the calendar it
     * closes months in. */
    st = r->q[S_Q_CLOSE];
    int rc = 0;
    sqlite3_bind_int64(st, 1, m);
    sqlite3_bind_int(st, 2, rep->bs);
    while ((s = rollup__scan_step(st)) == SQLITE_ROW) {
        if ((rc = rollup__grow((void **)&r->closes, &r->cap_closes, r->n_closes + 1,
                               sizeof(*r->closes))) != 0)
            break;
        rollup__closed *c = &r->closes[r->n_closes++];
        c->ym = sqlite3_column_int64(st, 0) * 12 + sqlite3_column_int64(st, 1) - 1;
        c->day = sqlite3_column_int64(st, 2);
        c->returned = sqlite3_column_int(st, 3) != 0;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = rollup__step_fail(r, st, s);
    sqlite3_reset(st);
    return rc;
}

/* A unit month's standing: counted in the denominator, complete, timely (0 or 1 each). */
typedef struct rollup__standing {
    int counted, complete, timely;
} rollup__standing;

/* The standing of month mo of the reporter's own calendar: counted when due (it ended before
 * today and on or after the enrolment day) or closed, returned since or not (a month a
 * reviewer returned stays owed, however old: it dropped out of the denominator, and a
 * returned month read as no gap); complete when closed and not returned since; timely when
 * its last close was on or before its last day + ROLLUP_ON_TIME_DAYS. */
static rollup__standing rollup__own_standing(const rollup *r, const rollup__reporter *rep,
                                             const rollup__month *mo)
{
    rollup__standing st = {0, 0, 0};
    int64_t ym = (int64_t)mo->year * 12 + mo->month - 1;
    size_t lo = 0, hi = r->n_closes;
    while (lo < hi) { /* the closes are ordered by (year, month) */
        size_t mid = lo + (hi - lo) / 2;
        if (r->closes[mid].ym < ym)
            lo = mid + 1;
        else
            hi = mid;
    }
    int closed = lo < r->n_closes && r->closes[lo].ym == ym;
    if (closed && !r->closes[lo].returned) {
        st.complete = 1;
        st.timely = r->closes[lo].day <= (int64_t)mo->last + ROLLUP_ON_TIME_DAYS;
    }
    int due = mo->last < r->today && mo->last >= rep->first_day;
    st.counted = due || closed;
    return st;
}

/* The standing of unit month u, of either calendar: a month of the reporter's own calendar
 * stands as it is; a month of the other calendar is counted, complete or timely when every
 * own-calendar month overlapping it is. */
static rollup__standing rollup__standing_of(const rollup *r, const rollup__reporter *rep,
                                            const rollup__month *u)
{
    if (u->bs == rep->bs)
        return rollup__own_standing(r, rep, u);
    rollup__standing all = {1, 1, 1};
    for (int32_t d = u->first; d <= u->last;) {
        rollup__month own;
        if (rollup__month_at(rep->bs, d, &own) != 0)
            return (rollup__standing){0, 0, 0}; /* outside the BS table: never due */
        rollup__standing st = rollup__own_standing(r, rep, &own);
        all.counted &= st.counted;
        all.complete &= st.complete;
        all.timely &= st.timely;
        d = own.last + 1;
    }
    return all;
}

/* reporting_completeness and reporting_timeliness of period slot pj: over the unit months of
 * the period (Gregorian months for a Gregorian year, quarter or month; BS months for a BS
 * month, a fiscal trimester or a fiscal year), the denominator counts the counted ones and
 * the numerators the complete and the timely ones among them. */
static int rollup__reporting(rollup *r, const rollup__group *g, int pj, const rollup__reporter *rep)
{
    enum period_kind k = g->kind[pj];
    int unit_bs = k == PERIOD_BS_MONTH || k == PERIOD_FISCAL_TRIMESTER || k == PERIOD_FISCAL_YEAR;
    int64_t den = 0, complete = 0, timely = 0;
    for (int32_t d = g->first[pj]; d <= g->last[pj];) {
        rollup__month u;
        if (rollup__month_at(unit_bs, d, &u) != 0)
            break;
        rollup__standing st = rollup__standing_of(r, rep, &u);
        if (st.counted) {
            den++;
            complete += st.complete;
            timely += st.timely;
        }
        d = u.last + 1;
    }
    if (den == 0)
        return 0;
    int dv[D_N] = {0};
    uint8_t id[16] = {0};
    id[0] = (uint8_t)(g->m >> 24), id[1] = (uint8_t)(g->m >> 16), id[2] = (uint8_t)(g->m >> 8);
    id[3] = (uint8_t)g->m; /* the municipality is the contributor */
    int rc = rollup__emit(r, I_COMPLETENESS, pj, dv, id, 0, complete, den);
    if (rc == 0)
        rc = rollup__emit(r, I_TIMELINESS, pj, dv, id, 0, timely, den);
    return rc;
}

int rollup__compute(rollup *r, rollup__group *g, size_t *n)
{
    int rc;
    /* The month masks: the span of the group's Gregorian periods, then of its BS ones. */
    int32_t lo[2] = {0, 0}, hi[2] = {-1, -1};
    int seen[2] = {0, 0};
    for (int pj = 0; pj < g->n; pj++) {
        int c = g->bs[pj] != 0;
        int32_t a = rollup__month_index(g->mfirst[pj]), b = rollup__month_index(g->mlast[pj]);
        if (!seen[c] || a < lo[c])
            lo[c] = a;
        if (!seen[c] || b > hi[c])
            hi[c] = b;
        seen[c] = 1;
    }
    g->ad0 = lo[0];
    g->bs0 = lo[1];
    g->n_ad = seen[0] ? (size_t)(hi[0] - lo[0] + 1) : 0;
    g->n_bs = seen[1] ? (size_t)(hi[1] - lo[1] + 1) : 0;
    size_t months = g->n_ad + g->n_bs;
    if (rollup__grow((void **)&g->masks, &g->cap_masks, months ? months : 1, sizeof(uint64_t)) != 0)
        return REINT_ENOMEM;
    memset(g->masks, 0, (months ? months : 1) * sizeof(uint64_t));
    for (int pj = 0; pj < g->n; pj++) {
        int c = g->bs[pj] != 0;
        size_t base = c ? g->n_ad : 0;
        int32_t b = rollup__month_index(g->mlast[pj]);
        for (int32_t i = rollup__month_index(g->mfirst[pj]); i <= b; i++)
            g->masks[base + (size_t)(i - lo[c])] |= 1ull << pj;
        g->referred[pj] = 0;
    }
    rollup__agg_reset(r);
    if ((rc = rollup__persons(r, g)) != 0 || (rc = rollup__services(r, g)) != 0 ||
        (rc = rollup__enterprises(r, g)) != 0 || (rc = rollup__unavailable(r, g)) != 0) {
        if (rc == REINT_EINVAL)
            log_error("rollup: the rows of municipality %u did not come grouped by contributor",
                      (unsigned)g->m);
        return rc;
    }
    rollup__reporter rep;
    if ((rc = rollup__reporter_load(r, g->m, &rep)) != 0)
        return rc;
    for (int pj = 0; rep.enrolled && pj < g->n; pj++)
        if ((rc = rollup__reporting(r, g, pj, &rep)) != 0)
            return rc;
    return rollup__finish(r, n);
}
