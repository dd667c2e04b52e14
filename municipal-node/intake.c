#include "intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bscal.h"
#include "clock.h"
#include "localrow.h"
#include "log.h"
#include "months.h"
#include "record.h"
#include "store.h"

/* Referrals and deliveries by local id, for follow-ups (followups.c reads them); the rest of
 * a record lives in the outbox's records table (kind, local_id, fields). */
static const char *intake__schema =
    "CREATE TABLE IF NOT EXISTS local_services(local_id TEXT PRIMARY KEY,"
    " person_local_id TEXT NOT NULL, service INTEGER NOT NULL, status INTEGER NOT NULL,"
    " day INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS local_services_delivered"
    " ON local_services(person_local_id, service, day) WHERE status=2;";

enum { ST_SVC_PUT, ST_SVC_DEL, ST_DEPENDENTS, ST_N };

static const char *intake__sql[ST_N] = {
    [ST_SVC_PUT] = "INSERT OR REPLACE INTO local_services(local_id, person_local_id, service,"
                   " status, day) VALUES(?1,?2,?3,?4,?5)",
    [ST_SVC_DEL] = "DELETE FROM local_services WHERE local_id=?1",
    /* The live services and enterprises of a person (?5), by the local_id their rows name. */
    [ST_DEPENDENTS] = "SELECT kind, local_id FROM records WHERE kind IN (?1, ?2) AND live = 1"
                      " AND local_field(fields, CASE kind WHEN ?1 THEN ?3 ELSE ?4 END) = ?5"
                      " ORDER BY kind, local_id",
};

struct intake {
    outbox *ob;
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    int bs;
    int32_t today_fixed;
    int32_t today;     /* set at the start of each public call that checks dates */
    int32_t today_utc; /* the UTC day at the same moment (upstream validation) */
    int32_t earliest;  /* intake_set_earliest */
    char scratch[FIELD_SCRATCH_MAX];
    localrow_buf row; /* the local fields of the row in hand (API, close-month) */
};

/* ---- small helpers --------------------------------------------------------------------- */

int32_t intake_today(const intake *in)
{
    /* Nepal's day, whatever the machine's time zone: a node on a machine left in UTC refused
     * the clerks' today as "in the future" until 05:45, and disagreed with its hub (which
     * decides what is due on Nepal's day) about the month. */
    return in->today_fixed ? in->today_fixed : clock_today_nepal();
}

static void intake__set_now(intake *in)
{
    in->today = intake_today(in);
    in->today_utc = clock_today_utc();
}

void intake_refresh_today(intake *in)
{
    intake__set_now(in);
}

void intake_set_today(intake *in, int32_t today)
{
    in->today_fixed = today;
}

void intake_set_earliest(intake *in, int32_t day)
{
    in->earliest = day;
}

int32_t intake_earliest(const intake *in)
{
    return in->earliest;
}

outbox *intake_outbox(const intake *in)
{
    return in->ob;
}

int intake_calendar_bs(const intake *in)
{
    return in->bs;
}

/* Runs a statement that returns no rows and makes it ready for the next use. Returns 0 or
 * REINT_EDB (logged). */
static int intake__step_done(intake *in, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_error("intake: %s", sqlite3_errmsg(in->db));
        return REINT_EDB;
    }
    return 0;
}

static int intake__year_of(int bs, int32_t day)
{
    int y = 0, m = 0, d = 0;
    if (bs) {
        if (bscal_bs_from_days(day, &y, &m, &d) != 0)
            return 0;
    } else {
        bscal_ad_from_days(day, &y, &m, &d);
    }
    return y;
}

/* A digest of the clerk's values, to tell a changed row from the same row again: eight
 * bytes a step (a byte-at-a-time FNV was a visible part of an import's cost). */
static uint64_t intake__hash(int kind, const uint8_t *p, size_t n)
{
    uint64_t h = (uint64_t)0x9E3779B97F4A7C15 ^ (uint64_t)kind ^ ((uint64_t)n << 8), w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * (uint64_t)0xff51afd7ed558ccd;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * (uint64_t)0xc4ceb9fe1a85ec53;
    return h ^ (h >> 29);
}

/* ---- records ----------------------------------------------------------------------------- */

/* Finds the live person with this local_id: 0 with id set, REINT_ENOTFOUND, or a store
 * code. */
static int intake__person(intake *in, const char *local_id, uint8_t id[16])
{
    return intake_lookup(in, INTAKE_PERSON, local_id, id, NULL);
}

static Reint__V1__Flag intake__flag(const field_value *v)
{
    if (!v->ok)
        return REINT__V1__FLAG__FLAG_UNKNOWN;
    return v->i ? REINT__V1__FLAG__FLAG_YES : REINT__V1__FLAG__FLAG_NO;
}

static Reint__V1__AgeBand intake__age_band(int age)
{
    if (age < 15)
        return REINT__V1__AGE_BAND__AGE_BAND_0_14;
    if (age < 25)
        return REINT__V1__AGE_BAND__AGE_BAND_15_24;
    if (age < 40)
        return REINT__V1__AGE_BAND__AGE_BAND_25_39;
    if (age < 60)
        return REINT__V1__AGE_BAND__AGE_BAND_40_59;
    return REINT__V1__AGE_BAND__AGE_BAND_60_PLUS;
}

/* What one write needs besides the record: the local row (NULL when it could not be
 * encoded) and, for a service, its checked values (for local_services). */
typedef struct intake__row {
    const uint8_t *p;
    size_t len;
    const field_value *v;
    const uint8_t *id; /* the record id computed beforehand for a new key, or NULL */
    int check_only;    /* every check, nothing written (intake_check) */
} intake__row;

/* Writes the record with its local row. Called once all fields are valid. */
static int intake__store(intake *in, int kind, const char *local_id, Reint__V1__Record *r,
                         const char *clerk, const intake__row *row, field_errors *errs,
                         intake_result *res)
{
    static const uint8_t placeholder[16];
    outbox_put_result put;
    int rc;
    if (row->p == NULL)
        return REINT_ENOMEM;
    uint64_t hash = intake__hash(kind, row->p, row->len);
    /* record_validate wants an id and a version; outbox_put assigns the real ones. */
    r->id.data = (uint8_t *)placeholder;
    r->id.len = 16;
    r->version = 1;
    record_error re;
    if (record_validate(r, in->today > in->today_utc ? in->today : in->today_utc, &re) != 0) {
        field_errors_add_code(errs, re.field, "record", NULL, "%s", re.reason);
        return REINT_EINVAL;
    }
    if (row->check_only)
        return 0;
    if ((rc = outbox_put(in->ob, kind, local_id, row->id, r, hash, clerk, row->p, row->len,
                         &put)) != 0)
        return rc;
    if (res) {
        memcpy(res->id, put.id, 16);
        size_t n = strlen(local_id);
        if (n >= sizeof(res->local_id))
            n = sizeof(res->local_id) - 1;
        memcpy(res->local_id, local_id, n);
        res->local_id[n] = '\0';
        res->version = put.version;
        res->changed = put.change == OUTBOX_UNCHANGED ? INTAKE_UNCHANGED
                       : put.change == OUTBOX_UPDATED ? INTAKE_UPDATED
                                                      : INTAKE_INSERTED;
    }
    if (put.change == OUTBOX_UNCHANGED || kind != INTAKE_SERVICE)
        return 0;
    const field_value *v = row->v;
    sqlite3_stmt *st = in->st[ST_SVC_PUT];
    if (sqlite3_bind_text(st, 1, local_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, v[FIELD_SERVICE_PERSON].s, (int)v[FIELD_SERVICE_PERSON].len,
                          SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, v[FIELD_SERVICE_TYPE].i) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, v[FIELD_SERVICE_STATUS].i) != SQLITE_OK ||
        sqlite3_bind_int(st, 5, v[FIELD_SERVICE_DATE].day) != SQLITE_OK) {
        log_error("intake: %s", sqlite3_errmsg(in->db));
        sqlite3_clear_bindings(st);
        return REINT_EDB;
    }
    return intake__step_done(in, st);
}

static int intake__person_row(intake *in, const intake__row *row, const char *clerk,
                              field_errors *errs, intake_result *res)
{
    const field_value *v = row->v;
    const field_value *reg = &v[FIELD_PERSON_REGISTERED_ON], *born = &v[FIELD_PERSON_BIRTH_YEAR];
    const field_value *ret = &v[FIELD_PERSON_RETURN_DATE];
    char q[80];
    Reint__V1__Person p = REINT__V1__PERSON__INIT;
    int reg_year = reg->ok ? intake__year_of(in->bs, reg->day) : 0;
    if (born->ok && reg_year) {
        long long age = reg_year - born->i;
        if (age < 0)
            field_errors_add_code(errs, "birth_year", "birth_after_registration", NULL,
                                  "%lld is after the registration year %d", born->i, reg_year);
        else if (age > 120)
            field_errors_add_code(
                errs, "birth_year", "age_over_120", NULL,
                "%lld would make the person %lld years old at registration (0..120)", born->i, age);
    }
    if (ret->ok && reg->ok && ret->day > reg->day)
        field_errors_add_code(errs, "return_date", "return_after_registration", reg->s,
                              "%s is after registered_on \"%s\"",
                              field_quote(q, sizeof(q), ret->s, ret->len), reg->s);
    /* A return before the person was born (the attack on the clerk's pages: born 2080,
     * returned 2070, taken without a word). */
    int ret_year = ret->ok ? intake__year_of(in->bs, ret->day) : 0;
    if (ret_year && born->ok && ret_year < born->i) {
        char by[24];
        snprintf(by, sizeof(by), "%lld", born->i);
        field_errors_add_code(errs, "return_date", "return_before_birth", by,
                              "%s is before the birth year %lld",
                              field_quote(q, sizeof(q), ret->s, ret->len), born->i);
    }
    if (errs->n)
        return REINT_EINVAL;
    p.category = (Reint__V1__Category)v[FIELD_PERSON_CATEGORY].i;
    p.sex = (Reint__V1__Sex)v[FIELD_PERSON_SEX].i;
    p.caste_group = (Reint__V1__CasteGroup)v[FIELD_PERSON_CASTE].i;
    p.remigration_intention = (Reint__V1__RemigrationIntention)v[FIELD_PERSON_INTENTION].i;
    p.family_member_abroad = intake__flag(&v[FIELD_PERSON_FAMILY_ABROAD]);
    p.disability = intake__flag(&v[FIELD_PERSON_DISABILITY]);
    p.consent = intake__flag(&v[FIELD_PERSON_CONSENT]);
    /* Upstream the registration is its pair of months; the day stays here (fields). */
    if (bscal_pair_of_day(reg->day, &p.registered_month, &p.registered_bs_month) != 0) {
        field_errors_add(errs, "registered_on", "is outside the Bikram Sambat calendar table");
        return REINT_EINVAL;
    }
    if (born->ok)
        p.age_band = intake__age_band((int)(reg_year - born->i));
    char cc[3] = "";
    if (v[FIELD_PERSON_COUNTRY].ok)
        memcpy(cc, v[FIELD_PERSON_COUNTRY].s, 3);
    p.destination_country = cc;
    p.years_abroad = v[FIELD_PERSON_YEARS_ABROAD].ok ? (int32_t)v[FIELD_PERSON_YEARS_ABROAD].i : -1;
    if (ret->ok) {
        int y, m, d;
        bscal_ad_from_days(ret->day, &y, &m, &d);
        p.return_month = y * 100 + m;
    }
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_PERSON;
    r.person = &p;
    return intake__store(in, INTAKE_PERSON, v[FIELD_PERSON_LOCAL_ID].s, &r, clerk, row, errs, res);
}

static int intake__service_row(intake *in, const intake__row *row, const char *clerk,
                               field_errors *errs, intake_result *res)
{
    const field_value *v = row->v, *person_lid = &v[FIELD_SERVICE_PERSON];
    char q[80];
    uint8_t person[16];
    if (person_lid->ok) {
        int rc = intake__person(in, person_lid->s, person);
        if (rc == REINT_ENOTFOUND)
            field_errors_add_code(errs, "person_local_id", "not_registered", NULL,
                                  "%s is not a registered person",
                                  field_quote(q, sizeof(q), person_lid->s, person_lid->len));
        else if (rc != 0)
            return rc;
    }
    if (errs->n)
        return REINT_EINVAL;
    Reint__V1__Service s = REINT__V1__SERVICE__INIT;
    s.person_id.data = person;
    s.person_id.len = 16;
    s.type = (Reint__V1__ServiceType)v[FIELD_SERVICE_TYPE].i;
    s.status = (Reint__V1__ServiceStatus)v[FIELD_SERVICE_STATUS].i;
    if (bscal_pair_of_day(v[FIELD_SERVICE_DATE].day, &s.month, &s.bs_month) != 0) {
        field_errors_add(errs, "date", "is outside the Bikram Sambat calendar table");
        return REINT_EINVAL;
    }
    s.provider = (Reint__V1__Provider)v[FIELD_SERVICE_PROVIDER].i;
    s.programme = (Reint__V1__Programme)v[FIELD_SERVICE_PROGRAMME].i;
    s.amount_npr = v[FIELD_SERVICE_AMOUNT].ok ? v[FIELD_SERVICE_AMOUNT].i : -1;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_SERVICE;
    r.service = &s;
    return intake__store(in, INTAKE_SERVICE, v[FIELD_SERVICE_LOCAL_ID].s, &r, clerk, row, errs,
                         res);
}

static int intake__enterprise_row(intake *in, const intake__row *row, const char *clerk,
                                  field_errors *errs, intake_result *res)
{
    const field_value *v = row->v, *owner_lid = &v[FIELD_ENTERPRISE_OWNER];
    char q[80];
    uint8_t owner[16];
    if (owner_lid->ok) {
        int rc = intake__person(in, owner_lid->s, owner);
        if (rc == REINT_ENOTFOUND)
            field_errors_add_code(errs, "owner_local_id", "not_registered", NULL,
                                  "%s is not a registered person",
                                  field_quote(q, sizeof(q), owner_lid->s, owner_lid->len));
        else if (rc != 0)
            return rc;
    }
    if (errs->n)
        return REINT_EINVAL;
    Reint__V1__Enterprise e = REINT__V1__ENTERPRISE__INIT;
    e.owner_id.data = owner;
    e.owner_id.len = 16;
    e.action = (Reint__V1__EnterpriseAction)v[FIELD_ENTERPRISE_ACTION].i;
    e.sector = (Reint__V1__Sector)v[FIELD_ENTERPRISE_SECTOR].i;
    if (bscal_pair_of_day(v[FIELD_ENTERPRISE_DATE].day, &e.month, &e.bs_month) != 0) {
        field_errors_add(errs, "date", "is outside the Bikram Sambat calendar table");
        return REINT_EINVAL;
    }
    e.registered = intake__flag(&v[FIELD_ENTERPRISE_REGISTERED]);
    e.employees = v[FIELD_ENTERPRISE_EMPLOYEES].ok ? (int32_t)v[FIELD_ENTERPRISE_EMPLOYEES].i : -1;
    e.status = (Reint__V1__EnterpriseStatus)v[FIELD_ENTERPRISE_STATUS].i;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_ENTERPRISE;
    r.enterprise = &e;
    return intake__store(in, INTAKE_ENTERPRISE, v[FIELD_ENTERPRISE_LOCAL_ID].s, &r, clerk, row,
                         errs, res);
}

static int intake__availability_row(intake *in, const intake__row *row, const char *clerk,
                                    field_errors *errs, intake_result *res)
{
    const field_value *v = row->v;
    char local_id[2 * FIELD_SHORT_MAX + 2];
    if (errs->n)
        return REINT_EINVAL;
    snprintf(
        local_id, sizeof(local_id), "%s/%s",
        record_enum_name(&reint__v1__service_type__descriptor,
                         (int)v[FIELD_AVAILABILITY_SERVICE].i),
        record_enum_name(&reint__v1__provider__descriptor, (int)v[FIELD_AVAILABILITY_PROVIDER].i));
    Reint__V1__Availability a = REINT__V1__AVAILABILITY__INIT;
    a.service = (Reint__V1__ServiceType)v[FIELD_AVAILABILITY_SERVICE].i;
    a.provider = (Reint__V1__Provider)v[FIELD_AVAILABILITY_PROVIDER].i;
    a.available = v[FIELD_AVAILABILITY_AVAILABLE].i != 0;
    a.as_of_day = v[FIELD_AVAILABILITY_AS_OF].day;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_AVAILABILITY;
    r.availability = &a;
    return intake__store(in, INTAKE_AVAILABILITY, local_id, &r, clerk, row, errs, res);
}

/* The checks across fields and against the store, then the write; in->today must be set. */
static int intake__finish(intake *in, int kind, const intake__row *row, const char *clerk,
                          field_errors *errs, intake_result *res)
{
    switch (kind) {
    case INTAKE_PERSON:
        return intake__person_row(in, row, clerk, errs, res);
    case INTAKE_SERVICE:
        return intake__service_row(in, row, clerk, errs, res);
    case INTAKE_ENTERPRISE:
        return intake__enterprise_row(in, row, clerk, errs, res);
    case INTAKE_AVAILABILITY:
        return intake__availability_row(in, row, clerk, errs, res);
    default:
        field_errors_add(errs, "kind", "%d is not a kind of row", kind);
        return REINT_EINVAL;
    }
}

/* ---- public API -------------------------------------------------------------------------- */

const char *const *intake_columns(int kind)
{
    return field_columns(kind);
}

int intake_column_index(int kind, const char *name)
{
    return field_column_index(kind, name);
}

const char *intake_kind_name(int kind)
{
    return field_kind_name(kind);
}

int intake_kind_parse(const char *name)
{
    return field_kind_parse(name);
}

int intake_open(intake **out, outbox *ob, int bs_calendar, char *err, size_t errlen)
{
    intake *in = calloc(1, sizeof(*in));
    char *msg = NULL;
    if (in == NULL) {
        snprintf(err, errlen, "out of memory");
        return REINT_ENOMEM;
    }
    in->ob = ob;
    in->db = outbox_db(ob);
    in->bs = bs_calendar != 0;
    in->earliest = INTAKE_EARLIEST_DEFAULT;
    localrow_init(&in->row);
    if (sqlite3_exec(in->db, intake__schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot create the intake tables: %s",
                 msg ? msg : sqlite3_errmsg(in->db));
        sqlite3_free(msg);
        goto fail;
    }
    if (months_init(in->db) != 0) {
        snprintf(err, errlen, "cannot create the review tables: %s", sqlite3_errmsg(in->db));
        goto fail;
    }
    for (int i = 0; i < ST_N; i++) {
        in->st[i] = store_prepare(in->db, intake__sql[i]);
        if (in->st[i] == NULL) {
            snprintf(err, errlen, "intake: %s", sqlite3_errmsg(in->db));
            goto fail;
        }
    }
    *out = in;
    return 0;
fail:
    intake_close(in);
    return REINT_EDB;
}

void intake_close(intake *in)
{
    if (in == NULL)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(in->st[i]);
    localrow_free(&in->row);
    free(in);
}

int intake_apply_checked(intake *in, int kind, const field_value *v, const uint8_t *row,
                         size_t rowlen, const uint8_t *id, const char *clerk, field_errors *errs,
                         intake_result *res)
{
    intake__row r = {row, rowlen, v, id, 0};
    return intake__finish(in, kind, &r, clerk, errs, res);
}

static int intake__apply(intake *in, int kind, const char *const *names, const char *const *values,
                         size_t n, const char *clerk, field_errors *errs, intake_result *res,
                         int check_only)
{
    const char *const *cols = field_columns(kind);
    size_t ncols = field_count(kind);
    const char *raw[FIELD_MAX] = {0};
    field_value v[FIELD_MAX];
    field_errors local;
    if (errs == NULL)
        errs = &local;
    errs->n = errs->dropped = 0;
    if (cols == NULL) {
        field_errors_add(errs, "kind", "%d is not a kind of row", kind);
        return REINT_EINVAL;
    }
    if (!check_only && sqlite3_get_autocommit(in->db)) {
        log_error("intake_apply called outside a transaction");
        return REINT_EDB;
    }
    intake__set_now(in);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < ncols && strcmp(names[i], cols[j]) != 0)
            j++;
        if (j == ncols) {
            char list[400];
            size_t o = 0;
            list[0] = '\0';
            for (size_t c = 0; c < ncols && o < sizeof(list); c++) {
                int w = snprintf(list + o, sizeof(list) - o, "%s%s", c ? ", " : "", cols[c]);
                if (w < 0)
                    break;
                o += (size_t)w;
            }
            field_errors_add_code(errs, names[i], "unknown_column", NULL,
                                  "is not a column of %s (columns: %s)", field_kind_name(kind),
                                  list);
        } else if (raw[j] != NULL) {
            field_errors_add_code(errs, names[i], "given_twice", NULL, "is given twice");
        } else {
            raw[j] = values[i] ? values[i] : "";
        }
    }
    if (errs->n)
        return REINT_EINVAL;
    field_scan c = {in->bs, in->today, in->scratch, 0, sizeof(in->scratch), in->earliest};
    field_check_row(&c, kind, raw, v, &in->row, errs);
    intake__row r = {NULL, 0, v, NULL, check_only};
    if (errs->n == 0 && !in->row.failed) {
        r.p = (const uint8_t *)in->row.p;
        r.len = in->row.len;
    }
    return intake__finish(in, kind, &r, clerk, errs, res);
}

int intake_apply_ex(intake *in, int kind, const char *const *names, const char *const *values,
                    size_t n, const char *clerk, field_errors *errs, intake_result *res)
{
    return intake__apply(in, kind, names, values, n, clerk, errs, res, 0);
}

int intake_check(intake *in, int kind, const char *const *names, const char *const *values,
                 size_t n, field_errors *errs)
{
    return intake__apply(in, kind, names, values, n, "", errs, NULL, 1);
}

int intake_apply(intake *in, int kind, const char *const *names, const char *const *values,
                 size_t n, const char *clerk, field_errors *errs, int *changed)
{
    intake_result res;
    int rc = intake_apply_ex(in, kind, names, values, n, clerk, errs, &res);
    if (changed)
        *changed = rc == 0 ? res.changed : INTAKE_UNCHANGED;
    return rc;
}

int intake_lookup(intake *in, int kind, const char *local_id, uint8_t id[16], uint64_t *version)
{
    outbox_row row;
    int rc = outbox_find(in->ob, kind, local_id, &row);
    if (rc < 0)
        return rc;
    if (rc == 0 || !row.live)
        return REINT_ENOTFOUND;
    memcpy(id, row.id, 16);
    if (version)
        *version = row.version;
    return 0;
}

/* Whether the person local_id still has live services or enterprises: REINT_EEXIST with why
 * naming them (the first few), 0 when none, or REINT_EDB. */
static int intake__dependents(intake *in, const char *local_id, char *why, size_t whylen)
{
    sqlite3_stmt *st = in->st[ST_DEPENDENTS];
    size_t n[2] = {0, 0}, o = 0;
    char listed[200] = "";
    int step;
    if (sqlite3_bind_int(st, 1, INTAKE_SERVICE) != SQLITE_OK ||
        sqlite3_bind_int(st, 2, INTAKE_ENTERPRISE) != SQLITE_OK ||
        sqlite3_bind_int(st, 3, FIELD_SERVICE_PERSON) != SQLITE_OK ||
        sqlite3_bind_int(st, 4, FIELD_ENTERPRISE_OWNER) != SQLITE_OK ||
        sqlite3_bind_text(st, 5, local_id, -1, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(st);
        return REINT_EDB;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        char q[80];
        const char *lid = (const char *)sqlite3_column_text(st, 1);
        n[sqlite3_column_int(st, 0) == INTAKE_ENTERPRISE]++;
        if (n[0] + n[1] > 5 || lid == NULL)
            continue;
        /* Whole ids only: a cut one could end inside a character. */
        field_quote(q, sizeof(q), lid, strlen(lid));
        if (o + 2 + strlen(q) < sizeof(listed))
            o += (size_t)snprintf(listed + o, sizeof(listed) - o, "%s%s", o ? ", " : "", q);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_DONE) {
        log_error("intake: %s", sqlite3_errmsg(in->db));
        return REINT_EDB;
    }
    if (n[0] + n[1] == 0)
        return 0;
    char q[80];
    snprintf(why, whylen,
             "person %s still has %zu service%s and %zu enterprise%s (%s%s): delete them, or "
             "give them another person, first",
             field_quote(q, sizeof(q), local_id, strlen(local_id)), n[0], n[0] == 1 ? "" : "s",
             n[1], n[1] == 1 ? "" : "s", listed, n[0] + n[1] > 5 ? ", ..." : "");
    return REINT_EEXIST;
}

int intake_delete(intake *in, int kind, const char *local_id, const char *clerk, char *why,
                  size_t whylen)
{
    int rc;
    if (field_columns(kind) == NULL || local_id == NULL)
        return REINT_ENOTFOUND;
    /* A person's services and enterprises name the person: deleted under them, they would
     * stay counted upstream without the person (sex and category unknown), and could be
     * corrected no more ("not a registered person"). */
    if (kind == INTAKE_PERSON && (rc = intake__dependents(in, local_id, why, whylen)) != 0)
        return rc;
    if ((rc = outbox_delete(in->ob, kind, local_id, clerk)) != 0)
        return rc;
    if (kind == INTAKE_SERVICE) {
        sqlite3_stmt *st = in->st[ST_SVC_DEL];
        if (sqlite3_bind_text(st, 1, local_id, -1, SQLITE_STATIC) != SQLITE_OK) {
            log_error("intake: %s", sqlite3_errmsg(in->db));
            sqlite3_clear_bindings(st);
            return REINT_EDB;
        }
        if ((rc = intake__step_done(in, st)) != 0)
            return rc;
    }
    return 0;
}

int intake_close_month(intake *in, int year, int month, const char *clerk, int *changed, char *err,
                       size_t errlen)
{
    int32_t first, next;
    char local_id[16], t[16];
    field_errors errs = {0};
    intake__set_now(in);
    if (changed)
        *changed = 0;
    if (month < 1 || month > 12) {
        snprintf(err, errlen, "month %d is not 1..12", month);
        return REINT_EINVAL;
    }
    if (in->bs) {
        int days = bscal_bs_month_days(year, month);
        if (days < 0 || bscal_days_from_bs(year, month, 1, &first) != 0) {
            snprintf(err, errlen, "BS %d-%02d is outside the Bikram Sambat calendar table", year,
                     month);
            return REINT_EINVAL;
        }
        next = first + days;
    } else {
        if (year < 1943 || year > 2100) {
            snprintf(err, errlen, "year %d is outside 1943..2100", year);
            return REINT_EINVAL;
        }
        next = month == 12 ? bscal_days_from_ad(year + 1, 1, 1)
                           : bscal_days_from_ad(year, month + 1, 1);
    }
    if (next - 1 < in->earliest) {
        field_format_day(in->bs, in->earliest, t);
        snprintf(err, errlen,
                 "%s %d-%02d ended before %s, the earliest date this node takes (earliest_date "
                 "in its config)",
                 in->bs ? "BS month" : "month", year, month, t);
        return REINT_EINVAL;
    }
    if (in->today < next) {
        field_format_day(in->bs, next - 1, t);
        snprintf(err, errlen, "%s %d-%02d has not ended yet (its last day is %s)",
                 in->bs ? "BS month" : "month", year, month, t);
        return REINT_EINVAL;
    }
    snprintf(local_id, sizeof(local_id), "%04d-%02d", year, month);
    /* A month the province's reviewer returned is closed anew: the return's clock joins the
     * local row, so that the close is a new version (the hub then sees it closed again), and
     * closing it once more after that changes nothing, as for any month. */
    uint64_t returned = 0;
    char salt[24] = "";
    if (months_return_clock(in->db, in->bs, year * 100 + month, &returned) != 0) {
        snprintf(err, errlen, "cannot read the month's review (database error)");
        return REINT_EDB;
    }
    if (returned)
        snprintf(salt, sizeof(salt), "%llu", (unsigned long long)returned);
    localrow_reset(&in->row);
    localrow_put(&in->row, local_id, strlen(local_id));
    localrow_put(&in->row, in->bs ? "BS" : "AD", 2);
    if (returned)
        localrow_put(&in->row, salt, strlen(salt));
    intake__row row = {in->row.failed ? NULL : (const uint8_t *)in->row.p, in->row.len, NULL, NULL,
                       0};
    Reint__V1__MonthClose mc = REINT__V1__MONTH_CLOSE__INIT;
    mc.year = year;
    mc.month = month;
    mc.bikram_sambat = in->bs;
    mc.closed_day = in->today;
    Reint__V1__Record r = REINT__V1__RECORD__INIT;
    r.body_case = REINT__V1__RECORD__BODY_MONTH_CLOSE;
    r.month_close = &mc;
    intake_result res;
    int rc = intake__store(in, INTAKE_MONTH_CLOSE, local_id, &r, clerk, &row, &errs, &res);
    if (rc == REINT_EINVAL)
        snprintf(err, errlen, "%s %s", errs.e[0].field, errs.e[0].reason);
    else if (rc != 0)
        snprintf(err, errlen, "cannot store the month close (database error)");
    else if (changed)
        *changed = res.changed != INTAKE_UNCHANGED;
    return rc;
}
