/* Tests for the node's intake of rows: field (every validation rule names its field),
 * intake (rows become coarse upstream records with no personal data), import (idempotent,
 * bad rows reported by line), export, followups (referrals tracked until delivered), and the
 * JSON row parsing of api.c. One suite, because they share one fixture: a fresh store in a
 * temporary directory under /tmp for each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "api.h"
#include "bscal.h"
#include "export.h"
#include "field.h"
#include "followups.h"
#include "import.h"
#include "intake.h"
#include "localrow.h"
#include "log.h"
#include "outbox.h"

typedef struct fx {
    char dir[64];
    char path[128];
    outbox *ob;
    intake *in;
    int bs;
} fx;

/* "Today" for every test: BS 2082-08-10 (2025-11-26). */
static int32_t today_day(void)
{
    return bscal_days_from_ad(2025, 11, 26);
}

static fx *fx_new(int bs)
{
    char err[256];
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_intake.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
    assert_int_equal(outbox_create(f->path, 10703, err, sizeof(err)), 0);
    assert_int_equal(outbox_open(f->path, &f->ob, err, sizeof(err)), 0);
    assert_int_equal(intake_open(&f->in, f->ob, bs, err, sizeof(err)), 0);
    intake_set_today(f->in, today_day());
    f->bs = bs;
    return f;
}

static int setup_bs(void **state)
{
    *state = fx_new(1);
    return 0;
}

static int setup_ad(void **state)
{
    *state = fx_new(0);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[160];
    intake_close(f->in);
    outbox_close(f->ob);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Applies a row given as "name=value" strings (NULL-terminated) in its own transaction. */
static int apply_v(fx *f, int kind, field_errors *errs, intake_result *res, va_list ap)
{
    const char *names[40], *values[40];
    char buf[40][256];
    size_t n = 0;
    for (const char *kv = va_arg(ap, const char *); kv; kv = va_arg(ap, const char *)) {
        const char *eq = strchr(kv, '=');
        assert_non_null(eq);
        snprintf(buf[n], sizeof(buf[n]), "%.*s", (int)(eq - kv), kv);
        names[n] = buf[n];
        values[n] = eq + 1;
        n++;
    }
    assert_int_equal(outbox_begin(f->ob), 0);
    int rc = intake_apply_ex(f->in, kind, names, values, n, "clerk1", errs, res);
    if (rc == 0)
        assert_int_equal(outbox_commit(f->ob), 0);
    else
        outbox_rollback(f->ob);
    return rc;
}

static int apply(fx *f, int kind, field_errors *errs, intake_result *res, ...)
{
    va_list ap;
    va_start(ap, res);
    int rc = apply_v(f, kind, errs, res, ap);
    va_end(ap);
    return rc;
}

/* A complete person row with local data. */
#define PERSON(lid)                                                                                \
    "local_id=" lid, "category=returnee", "sex=Female", "birth_year=2040", "caste_group=janajati", \
        "disability=no", "registered_on=2082-04-01", "destination_country=qa", "years_abroad=5",   \
        "return_date=2081-12-15", "remigration_intention=none", "family_member_abroad=yes",        \
        "consent=1", "full_name=Sita Kumari Tamang", "phone=+977 9841234567",                      \
        "citizenship_no=27-01-75-1234", "ward=5", "address=Tole 3, Banepa"

/* The packed record of the newest outbox entry. */
typedef struct last_rec {
    uint8_t buf[4096];
    size_t len;
    uint64_t seq;
} last_rec;

static int last_cb(void *ud, uint64_t seq, uint64_t version, const uint8_t *rec, size_t len)
{
    last_rec *l = ud;
    (void)version;
    assert_true(len <= sizeof(l->buf));
    memcpy(l->buf, rec, len);
    l->len = len;
    l->seq = seq;
    return 0;
}

static Reint__V1__Record *newest(fx *f, last_rec *l)
{
    memset(l, 0, sizeof(*l));
    assert_true(outbox_read(f->ob, 0, 100000, last_cb, l) > 0);
    Reint__V1__Record *r = reint__v1__record__unpack(NULL, l->len, l->buf);
    assert_non_null(r);
    return r;
}

static void assert_absent(const last_rec *l, const char *s)
{
    assert_null(memmem(l->buf, l->len, s, strlen(s)));
}

static int has_error(const field_errors *e, const char *field, const char *reason_part)
{
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->e[i].field, field) && strstr(e->e[i].reason, reason_part))
            return 1;
    return 0;
}

/* ---- rows become coarse records ----------------------------------------------------------- */

static void test_person_row_becomes_coarse_record_without_personal_data(void **state)
{
    fx *f = *state;
    field_errors e;
    intake_result res;
    last_rec l;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &res, PERSON("P-0001"), NULL), 0);
    assert_int_equal(res.changed, INTAKE_INSERTED);
    Reint__V1__Record *r = newest(f, &l);
    assert_int_equal(r->body_case, REINT__V1__RECORD__BODY_PERSON);
    assert_memory_equal(r->id.data, res.id, 16);
    assert_int_equal(r->municipality, 10703);
    Reint__V1__Person *p = r->person;
    assert_int_equal(p->category, REINT__V1__CATEGORY__CATEGORY_RETURNEE);
    assert_int_equal(p->sex, REINT__V1__SEX__SEX_FEMALE);
    assert_int_equal(p->age_band, REINT__V1__AGE_BAND__AGE_BAND_40_59); /* 2082 - 2040 = 42 */
    assert_int_equal(p->caste_group, REINT__V1__CASTE_GROUP__CASTE_GROUP_JANAJATI);
    assert_int_equal(p->disability, REINT__V1__FLAG__FLAG_NO);
    assert_int_equal(p->family_member_abroad, REINT__V1__FLAG__FLAG_YES);
    assert_int_equal(p->consent, REINT__V1__FLAG__FLAG_YES);
    /* Upstream, the registration on BS 2082-04-01 (2025-07-17) is its pair of months only. */
    assert_int_equal(p->registered_month, 202507);
    assert_int_equal(p->registered_bs_month, 208204);
    assert_int_equal(p->base.n_unknown_fields, 0);
    assert_string_equal(p->destination_country, "QA");
    assert_int_equal(p->years_abroad, 5);
    assert_int_equal(p->return_month, 202503); /* BS 2081-12-15 = 2025-03-29 */
    assert_int_equal(p->remigration_intention,
                     REINT__V1__REMIGRATION_INTENTION__REMIGRATION_INTENTION_NONE);
    assert_absent(&l, "Sita");
    assert_absent(&l, "Tamang");
    assert_absent(&l, "9841234567");
    assert_absent(&l, "27-01-75-1234");
    assert_absent(&l, "Banepa");
    assert_absent(&l, "P-0001");
    assert_absent(&l, "2081-12-15");
    reint__v1__record__free_unpacked(r, NULL);
}

static void test_unknown_person_fields_are_unknown_upstream(void **state)
{
    fx *f = *state;
    field_errors e;
    last_rec l;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-2", "category=community",
                           "sex=male", "registered_on=2082-05-01", NULL),
                     0);
    Reint__V1__Record *r = newest(f, &l);
    assert_int_equal(r->person->age_band, REINT__V1__AGE_BAND__AGE_BAND_UNKNOWN);
    assert_int_equal(r->person->years_abroad, -1);
    assert_int_equal(r->person->return_month, 0);
    assert_int_equal(r->person->disability, REINT__V1__FLAG__FLAG_UNKNOWN);
    assert_string_equal(r->person->destination_country, "");
    reint__v1__record__free_unpacked(r, NULL);
}

static void test_age_bands_follow_the_registration_year(void **state)
{
    fx *f = *state;
    static const struct {
        const char *birth;
        int band;
    } cases[] = {
        {"2082", REINT__V1__AGE_BAND__AGE_BAND_0_14},
        {"2068", REINT__V1__AGE_BAND__AGE_BAND_0_14},
        {"2067", REINT__V1__AGE_BAND__AGE_BAND_15_24},
        {"2058", REINT__V1__AGE_BAND__AGE_BAND_15_24},
        {"2057", REINT__V1__AGE_BAND__AGE_BAND_25_39},
        {"2043", REINT__V1__AGE_BAND__AGE_BAND_25_39},
        {"2042", REINT__V1__AGE_BAND__AGE_BAND_40_59},
        {"2023", REINT__V1__AGE_BAND__AGE_BAND_40_59},
        {"2022", REINT__V1__AGE_BAND__AGE_BAND_60_PLUS},
        {"1962", REINT__V1__AGE_BAND__AGE_BAND_60_PLUS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char by[32];
        field_errors e;
        last_rec l;
        snprintf(by, sizeof(by), "birth_year=%s", cases[i].birth);
        assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-age", "category=returnee",
                               "sex=male", "registered_on=2082-05-01", by, NULL),
                         0);
        Reint__V1__Record *r = newest(f, &l);
        assert_int_equal(r->person->age_band, cases[i].band);
        reint__v1__record__free_unpacked(r, NULL);
    }
}

static void test_service_enterprise_availability_rows_become_records(void **state)
{
    fx *f = *state;
    field_errors e;
    intake_result person, res;
    last_rec l;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &person, PERSON("P-1"), NULL), 0);

    assert_int_equal(apply(f, INTAKE_SERVICE, &e, &res, "local_id=S-1", "person_local_id=P-1",
                           "service=seed funding", "status=DELIVERED", "date=2082-06-01",
                           "provider=mrc", "programme=M4SD", "amount_npr=25000", NULL),
                     0);
    Reint__V1__Record *r = newest(f, &l);
    assert_int_equal(r->body_case, REINT__V1__RECORD__BODY_SERVICE);
    assert_memory_equal(r->service->person_id.data, person.id, 16);
    assert_int_equal(r->service->type, REINT__V1__SERVICE_TYPE__SERVICE_TYPE_SEED_FUNDING);
    assert_int_equal(r->service->status, REINT__V1__SERVICE_STATUS__SERVICE_STATUS_DELIVERED);
    /* BS 2082-06-01 is 2025-09-17: upstream only (2025-09, BS 2082-06). */
    assert_int_equal(r->service->month, 202509);
    assert_int_equal(r->service->bs_month, 208206);
    assert_int_equal(r->service->provider, REINT__V1__PROVIDER__PROVIDER_MRC);
    assert_int_equal(r->service->programme, REINT__V1__PROGRAMME__PROGRAMME_M4SD);
    assert_int_equal(r->service->amount_npr, 25000);
    assert_absent(&l, "S-1");
    assert_absent(&l, "P-1");
    reint__v1__record__free_unpacked(r, NULL);

    assert_int_equal(apply(f, INTAKE_ENTERPRISE, &e, &res, "local_id=E-1", "owner_local_id=P-1",
                           "action=started", "sector=livestock", "date=2082-07-01",
                           "registered=yes", "employees=3", "status=active", NULL),
                     0);
    r = newest(f, &l);
    assert_int_equal(r->body_case, REINT__V1__RECORD__BODY_ENTERPRISE);
    assert_memory_equal(r->enterprise->owner_id.data, person.id, 16);
    assert_int_equal(r->enterprise->action,
                     REINT__V1__ENTERPRISE_ACTION__ENTERPRISE_ACTION_STARTED);
    assert_int_equal(r->enterprise->sector, REINT__V1__SECTOR__SECTOR_LIVESTOCK);
    assert_int_equal(r->enterprise->registered, REINT__V1__FLAG__FLAG_YES);
    assert_int_equal(r->enterprise->employees, 3);
    assert_int_equal(r->enterprise->status, REINT__V1__ENTERPRISE_STATUS__ENTERPRISE_STATUS_ACTIVE);
    assert_absent(&l, "E-1");
    reint__v1__record__free_unpacked(r, NULL);

    assert_int_equal(apply(f, INTAKE_AVAILABILITY, &e, &res, "service=loan", "provider=bank",
                           "available=true", "as_of=2082-04-01", NULL),
                     0);
    assert_string_equal(res.local_id, "LOAN/BANK");
    r = newest(f, &l);
    assert_int_equal(r->body_case, REINT__V1__RECORD__BODY_AVAILABILITY);
    assert_int_equal(r->availability->service, REINT__V1__SERVICE_TYPE__SERVICE_TYPE_LOAN);
    assert_int_equal(r->availability->provider, REINT__V1__PROVIDER__PROVIDER_BANK);
    assert_true(r->availability->available);
    reint__v1__record__free_unpacked(r, NULL);
}

/* ---- validation ---------------------------------------------------------------------------- */

typedef struct rule_case {
    int kind;
    const char *override; /* "name=value" */
    const char *field;
    const char *reason_part;
} rule_case;

static void check_rules(fx *f, const rule_case *cases, size_t n)
{
    field_errors e;
    for (size_t i = 0; i < n; i++) {
        int rc;
        const rule_case *c = &cases[i];
        if (c->kind == INTAKE_PERSON)
            rc = apply(f, c->kind, &e, NULL, PERSON("P-x"), c->override, NULL);
        else if (c->kind == INTAKE_SERVICE)
            rc = apply(f, c->kind, &e, NULL, "local_id=S-x", "person_local_id=P-1", "service=loan",
                       "status=referred", "date=2082-06-01", c->override, NULL);
        else if (c->kind == INTAKE_ENTERPRISE)
            rc = apply(f, c->kind, &e, NULL, "local_id=E-x", "owner_local_id=P-1", "action=started",
                       "sector=retail", "date=2082-06-01", c->override, NULL);
        else
            rc = apply(f, c->kind, &e, NULL, "service=loan", "provider=bank", c->override, NULL);
        if (rc != REINT_EINVAL || !has_error(&e, c->field, c->reason_part)) {
            print_error("case %zu (%s): rc %d, %zu errors:\n", i, c->override, rc, e.n);
            for (size_t j = 0; j < e.n; j++)
                print_error("  %s %s\n", e.e[j].field, e.e[j].reason);
            fail();
        }
    }
}

/* Overriding a column by giving it a second time is itself an error, so the rules below
 * replace columns the base rows leave out, or use "name=" pairs the PERSON macro lacks. */
static void test_each_validation_rule_names_its_field(void **state)
{
    fx *f = *state;
    field_errors e;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-1"), NULL), 0);
    static const rule_case cases[] = {
        {INTAKE_PERSON, "nickname=Sita", "nickname", "is not a column of persons"},
        {INTAKE_PERSON, "sex=F?", "sex", "is given twice"},
        {INTAKE_SERVICE, "provider=shop", "provider", "\"shop\" is not one of MRC, MUNICIPALITY"},
        {INTAKE_SERVICE, "amount_npr=-5", "amount_npr", "is outside 0..100000000000"},
        {INTAKE_SERVICE, "amount_npr=12.5", "amount_npr", "is not a whole number"},
        {INTAKE_SERVICE, "programme=x", "programme", "is not one of M4SD"},
        {INTAKE_ENTERPRISE, "employees=-1", "employees", "is outside 0..100000"},
        {INTAKE_ENTERPRISE, "registered=maybe", "registered", "is not one of true, false, yes"},
        {INTAKE_ENTERPRISE, "status=open", "status", "is not one of ACTIVE, CLOSED"},
        {INTAKE_AVAILABILITY, "as_of=2082-04-01", "available", "is required"},
    };
    check_rules(f, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Person rules: each case replaces one column of a good row. */
/* 48 Devanagari letters: within the 48 characters an enumeration may hold, in 144 bytes. */
#define RA4  "\xE0\xA4\xB0\xE0\xA4\xB0\xE0\xA4\xB0\xE0\xA4\xB0"
#define RA48 RA4 RA4 RA4 RA4 RA4 RA4 RA4 RA4 RA4 RA4 RA4 RA4

static void test_person_rules_name_their_field(void **state)
{
    fx *f = *state;
    static const struct {
        const char *col, *val, *field, *reason;
    } cases[] = {
        {"local_id", "", "local_id", "is required"},
        {"category", "", "category", "is required"},
        {"category", "migrant", "category", "is not one of RETURNEE, MIGRANT_FAMILY"},
        {"sex", "F?", "sex", "\"F?\" is not one of FEMALE, MALE, OTHER"},
        {"sex", "", "sex", "is required"},
        {"sex", RA48, "sex", "is not one of FEMALE, MALE, OTHER"},
        {"registered_on", "", "registered_on", "is required"},
        {"registered_on", "2082-13-01", "registered_on", "is not a Bikram Sambat date"},
        {"registered_on", "2082/04-01", "registered_on", "is not a Bikram Sambat date"},
        {"registered_on", "2082-08-11", "registered_on", "is in the future (today is 2082-08-10)"},
        {"registered_on", "1999-01-01", "registered_on", "outside the Bikram Sambat calendar"},
        {"birth_year", "2083", "birth_year", "is after the registration year 2082"},
        {"birth_year", "1950", "birth_year", "132 years old"},
        {"birth_year", "forty", "birth_year", "is not a whole number"},
        {"caste_group", "x", "caste_group", "is not one of DALIT"},
        {"destination_country", "XX", "destination_country", "is not an ISO 3166 country code"},
        {"destination_country", "Qatar", "destination_country", "two letters"},
        {"years_abroad", "81", "years_abroad", "is outside 0..80"},
        {"return_date", "2082-04-02", "return_date", "is after registered_on \"2082-04-01\""},
        {"return_date", "2039-12-30", "return_date", "is before the birth year 2040"},
        {"return_date", "2082-09-01", "return_date", "is in the future"},
        {"remigration_intention", "soon", "remigration_intention", "is not one of NONE"},
        {"family_member_abroad", "perhaps", "family_member_abroad", "true, false, yes, no, 1, 0"},
        {"consent", "2", "consent", "is not one of true"},
        {"disability", "y", "disability", "is not one of true"},
        {"phone", "call me", "phone", "is not a phone number"},
        {"ward", "0", "ward", "is outside 1..99"},
        {"full_name", "\xC3\x28", "full_name", "is not valid UTF-8"},
        {"local_id", "P\x01", "local_id", "control characters"},
    };
    const char *const *cols = intake_columns(INTAKE_PERSON);
    static const char *good[] = {"P-x",  "returnee",   "female", "2040", "janajati",
                                 "no",   "2082-04-01", "QA",     "5",    "2081-12-15",
                                 "none", "yes",        "1",      "Sita", "9841234567",
                                 "27-1", "5",          "Banepa"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *values[18];
        field_errors e;
        for (size_t j = 0; j < 18; j++)
            values[j] = strcmp(cols[j], cases[i].col) ? good[j] : cases[i].val;
        assert_int_equal(outbox_begin(f->ob), 0);
        int rc = intake_apply(f->in, INTAKE_PERSON, (const char *const *)cols, values, 18, "c", &e,
                              NULL);
        outbox_rollback(f->ob);
        if (rc != REINT_EINVAL || !has_error(&e, cases[i].field, cases[i].reason)) {
            print_error("case %s=%s: rc %d\n", cases[i].col, cases[i].val, rc);
            for (size_t j = 0; j < e.n; j++)
                print_error("  %s %s\n", e.e[j].field, e.e[j].reason);
            fail();
        }
    }
}

static void test_every_error_of_a_row_is_collected(void **state)
{
    fx *f = *state;
    field_errors e;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-9", "category=alien", "sex=F?",
                           "registered_on=2082-04-01", "years_abroad=200", "birth_year=2090", NULL),
                     REINT_EINVAL);
    assert_int_equal(e.n, 4);
    assert_true(has_error(&e, "category", "\"alien\""));
    assert_true(has_error(&e, "sex", "\"F?\""));
    assert_true(has_error(&e, "years_abroad", "0..80"));
    assert_true(has_error(&e, "birth_year", "after the registration year"));
}

static void test_service_of_unknown_or_deleted_person_is_refused(void **state)
{
    fx *f = *state;
    field_errors e;
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-1", "person_local_id=P-99",
                           "service=loan", "status=referred", "date=2082-06-01", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "person_local_id", "\"P-99\" is not a registered person"));
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-99"), NULL), 0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-1", "person_local_id=P-99",
                           "service=loan", "status=referred", "date=2082-06-01", NULL),
                     0);
    /* A person with a live service or enterprise is not deleted: they name the person, and
     * would stay counted upstream without one. */
    assert_int_equal(apply(f, INTAKE_ENTERPRISE, &e, NULL, "local_id=E-9", "owner_local_id=P-99",
                           "action=started", "sector=retail", "date=2082-06-01", NULL),
                     0);
    char why[400] = "";
    assert_int_equal(outbox_begin(f->ob), 0);
    assert_int_equal(intake_delete(f->in, INTAKE_PERSON, "P-99", "clerk1", why, sizeof(why)),
                     REINT_EEXIST);
    assert_string_equal(why, "person \"P-99\" still has 1 service and 1 enterprise (\"S-1\", "
                             "\"E-9\"): delete them, or give them another person, first");
    assert_int_equal(intake_delete(f->in, INTAKE_SERVICE, "S-1", "clerk1", why, sizeof(why)), 0);
    assert_int_equal(intake_delete(f->in, INTAKE_PERSON, "P-99", "clerk1", why, sizeof(why)),
                     REINT_EEXIST);
    assert_int_equal(intake_delete(f->in, INTAKE_ENTERPRISE, "E-9", "clerk1", why, sizeof(why)), 0);
    assert_int_equal(intake_delete(f->in, INTAKE_PERSON, "P-99", "clerk1", why, sizeof(why)), 0);
    assert_int_equal(outbox_commit(f->ob), 0);
    assert_int_equal(apply(f, INTAKE_ENTERPRISE, &e, NULL, "local_id=E-1", "owner_local_id=P-99",
                           "action=started", "sector=retail", "date=2082-06-01", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "owner_local_id", "\"P-99\" is not a registered person"));
}

/* ---- versions -------------------------------------------------------------------------------- */

static void test_same_row_again_is_unchanged_and_a_new_phone_is_a_new_version(void **state)
{
    fx *f = *state;
    field_errors e;
    intake_result a, b, c;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &a, PERSON("P-1"), NULL), 0);
    uint64_t seq = outbox_last_seq(f->ob);
    /* Same content written differently (case, spaces) is the same row. */
    assert_int_equal(
        apply(f, INTAKE_PERSON, &e, &b, "local_id=P-1", "category=RETURNEE", "sex= female ",
              "birth_year=2040", "caste_group=Janajati", "disability=0", "registered_on=2082-04-01",
              "destination_country=QA", "years_abroad=5", "return_date=2081-12-15",
              "remigration_intention=None", "family_member_abroad=true", "consent=yes",
              "full_name=Sita Kumari Tamang", "phone=+977 9841234567",
              "citizenship_no=27-01-75-1234", "ward=5", "address=Tole 3, Banepa", NULL),
        0);
    assert_int_equal(b.changed, INTAKE_UNCHANGED);
    assert_int_equal(b.version, a.version);
    assert_int_equal(outbox_last_seq(f->ob), seq);
    int changed = -1;
    const char *names[] = {"local_id", "category", "sex", "registered_on", "phone"};
    const char *values[] = {"P-1", "returnee", "female", "2082-04-01", "9800000000"};
    assert_int_equal(outbox_begin(f->ob), 0);
    assert_int_equal(intake_apply(f->in, INTAKE_PERSON, names, values, 5, "c", &e, &changed), 0);
    assert_int_equal(outbox_commit(f->ob), 0);
    assert_int_equal(changed, INTAKE_UPDATED);
    assert_int_equal(outbox_last_seq(f->ob), seq + 1);
    /* Only the phone differs from the row just written: still a new version. */
    values[4] = "9800000001";
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &c, "local_id=P-1", "category=returnee",
                           "sex=female", "registered_on=2082-04-01", "phone=9800000001", NULL),
                     0);
    assert_int_equal(c.changed, INTAKE_UPDATED);
    assert_true(c.version > a.version);
    assert_memory_equal(c.id, a.id, 16);
    /* The same phone typed on a Nepali keyboard, in Devanagari digits, is the same row (it was
     * refused as "not a phone number", while the pages take those digits everywhere else). */
    intake_result d;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &d, "local_id=P-1", "category=returnee",
                           "sex=female", "registered_on=2082-04-01",
                           "phone=\u096F\u096E\u0966\u0966\u0966\u0966\u0966\u0966\u0966"
                           "\u0967",
                           NULL),
                     0);
    assert_int_equal(d.changed, INTAKE_UNCHANGED);
}

/* Numbers and dates as offices write them (the attack on the clerk's pages): a date in
 * Devanagari digits, with slashes or dots, or one-digit month and day; an amount grouped
 * Nepal's way (1,00,000) or in Devanagari digits. Each is the row written the usual way. */
static void test_dates_and_numbers_as_offices_write_them(void **state)
{
    fx *f = *state;
    field_errors e;
    intake_result person, a, b;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &person, PERSON("P-1"), NULL), 0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, &a, "local_id=S-1", "person_local_id=P-1",
                           "service=seed funding", "status=DELIVERED", "date=2082-06-05",
                           "amount_npr=100000", NULL),
                     0);
    static const char *const dates[] = {"date=2082/06/05", "date=2082.6.5", "date=2082-6-05",
                                        "date=\u0968\u0966\u096E\u0968-\u0966\u096C-\u0966\u096B"};
    static const char *const amounts[] = {"amount_npr=1,00,000", "amount_npr=100,000",
                                          "amount_npr=\u0967,\u0966\u0966,\u0966\u0966\u0966"};
    for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        assert_int_equal(apply(f, INTAKE_SERVICE, &e, &b, "local_id=S-1", "person_local_id=P-1",
                               "service=seed funding", "status=DELIVERED", dates[i], amounts[i % 3],
                               NULL),
                         0);
        assert_int_equal(b.changed, INTAKE_UNCHANGED);
        assert_int_equal(b.version, a.version);
    }
    /* Still refused, each quoted as written: a comma that groups no digits, Nepal's way or
     * English's (a review: "1,5" years abroad was taken as 15, ward "1,2" as 12), a date of
     * another shape, a real date past the month's end, written either way. */
    static const char *const bad[] = {"amount_npr=1,",    "amount_npr=,100",   "amount_npr=1,5",
                                      "amount_npr=20,40", "amount_npr=1,0000", "date=2082/06-05",
                                      "date=82-6-5",      "date=2082-06-32",   "date=2082/6/32"};
    static const char *const code[] = {
        "int",           "int",          "int",          "int",
        "int",           "date_invalid", "date_invalid", "day_past_month",
        "day_past_month"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int date = strncmp(bad[i], "date=", 5) == 0;
        assert_int_equal(apply(f, INTAKE_SERVICE, &e, &b, "local_id=S-2", "person_local_id=P-1",
                               "service=seed funding", "status=DELIVERED",
                               date ? bad[i] : "date=2082-06-05", date ? NULL : bad[i], NULL),
                         REINT_EINVAL);
        assert_int_equal(e.n, 1);
        assert_string_equal(e.e[0].code, code[i]);
        /* Quoted as written, not as it would have been kept. */
        assert_non_null(strstr(e.e[0].reason, strchr(bad[i], '=') + 1));
    }
    static const char *const grouped[] = {"amount_npr=10,00,000", "amount_npr=1,000,000"};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(apply(f, INTAKE_SERVICE, &e, &b, "local_id=S-3", "person_local_id=P-1",
                               "service=seed funding", "status=DELIVERED", "date=2082-06-05",
                               grouped[i], NULL),
                         0);
}

static void test_delete_queues_tombstone_and_recreate_reuses_id(void **state)
{
    fx *f = *state;
    field_errors e;
    intake_result a, b;
    last_rec l;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &a, PERSON("P-1"), NULL), 0);
    assert_int_equal(outbox_begin(f->ob), 0);
    char why[400];
    assert_int_equal(intake_delete(f->in, INTAKE_PERSON, "P-1", "clerk1", why, sizeof(why)), 0);
    assert_int_equal(intake_delete(f->in, INTAKE_PERSON, "P-1", "clerk1", why, sizeof(why)),
                     REINT_ENOTFOUND);
    assert_int_equal(intake_delete(f->in, INTAKE_PERSON, "P-404", "clerk1", why, sizeof(why)),
                     REINT_ENOTFOUND);
    assert_int_equal(outbox_commit(f->ob), 0);
    Reint__V1__Record *r = newest(f, &l);
    assert_int_equal(r->body_case, REINT__V1__RECORD__BODY_TOMBSTONE);
    assert_int_equal(r->tombstone->kind, REINT__V1__RECORD_KIND__RECORD_KIND_PERSON);
    reint__v1__record__free_unpacked(r, NULL);
    uint8_t id[16];
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-1", id, NULL), REINT_ENOTFOUND);
    /* The local personal data is erased with the record. */
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    assert_int_equal(export_csv(f->in, INTAKE_PERSON, m), 0);
    fclose(m);
    assert_null(strstr(out, "Sita"));
    free(out);
    assert_int_equal(apply(f, INTAKE_PERSON, &e, &b, PERSON("P-1"), NULL), 0);
    assert_int_equal(b.changed, INTAKE_INSERTED);
    assert_memory_equal(a.id, b.id, 16);
}

/* ---- calendars ----------------------------------------------------------------------------- */

static void test_ad_calendar_reads_gregorian_dates_and_years(void **state)
{
    fx *f = *state;
    field_errors e;
    last_rec l;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-1", "category=returnee",
                           "sex=male", "registered_on=2025-07-17", "birth_year=1985",
                           "return_date=2025-01-31", NULL),
                     0);
    Reint__V1__Record *r = newest(f, &l);
    assert_int_equal(r->person->registered_month, 202507); /* 2025-07-17 = BS 2082-04-01 */
    assert_int_equal(r->person->registered_bs_month, 208204);
    assert_int_equal(r->person->age_band, REINT__V1__AGE_BAND__AGE_BAND_40_59);
    assert_int_equal(r->person->return_month, 202501);
    reint__v1__record__free_unpacked(r, NULL);
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-2", "category=returnee",
                           "sex=male", "registered_on=2025-11-27", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "registered_on", "is in the future (today is 2025-11-26)"));
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-2", "category=returnee",
                           "sex=male", "registered_on=2082-04-01", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "registered_on", "is outside the dates kept"));
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-2", "category=returnee",
                           "sex=male", "registered_on=2025-02-29", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "registered_on", "Gregorian month 2025-02 has 28 days"));
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-2", "category=returnee",
                           "sex=male", "registered_on=2025-02-30x", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "registered_on", "is not a Gregorian date"));
}

/* An attack on the demo: a BS node took "2026-12-01" (a Gregorian date typed by habit: BS
 * 2026 is 1969 AD) and closed BS2000-01, which then counted as a reporting month. Events
 * and closes before the node's earliest date (BS 2064-01-01 unless configured) are refused;
 * a return from abroad, which may be older, is not an event of the programme. */
static void test_events_and_closes_before_the_earliest_date_are_refused(void **state)
{
    fx *f = *state;
    field_errors e;
    char err[256];
    int changed = -1;
    int32_t d = 0;
    assert_int_equal(bscal_days_from_bs(2064, 1, 1, &d), 0);
    assert_int_equal(INTAKE_EARLIEST_DEFAULT, d);
    assert_int_equal(intake_earliest(f->in), INTAKE_EARLIEST_DEFAULT);
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-1", "category=returnee",
                           "sex=female", "registered_on=2026-12-01", NULL),
                     REINT_EINVAL);
    assert_true(
        has_error(&e, "registered_on",
                  "\"2026-12-01\" is before 2064-01-01, the earliest date this node takes"));
    assert_string_equal(e.e[0].code, "date_before_start");
    assert_string_equal(e.e[0].arg, "2064-01-01");
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-1", "category=returnee",
                           "sex=female", "registered_on=2064-01-01", "return_date=2050-03-01",
                           NULL),
                     0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-1", "person_local_id=P-1",
                           "service=loan", "status=referred", "date=2063-12-30", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "date", "is before 2064-01-01"));
    assert_int_equal(apply(f, INTAKE_ENTERPRISE, &e, NULL, "local_id=E-1", "owner_local_id=P-1",
                           "action=started", "sector=retail", "date=2063-12-30", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "date", "is before 2064-01-01"));
    assert_int_equal(apply(f, INTAKE_AVAILABILITY, &e, NULL, "service=loan", "provider=bank",
                           "available=true", "as_of=2063-12-30", NULL),
                     REINT_EINVAL);
    assert_true(has_error(&e, "as_of", "is before 2064-01-01"));
    assert_int_equal(outbox_begin(f->ob), 0);
    assert_int_equal(intake_close_month(f->in, 2000, 1, "clerk1", &changed, err, sizeof(err)),
                     REINT_EINVAL);
    assert_string_equal(err, "BS month 2000-01 ended before 2064-01-01, the earliest date this "
                             "node takes (earliest_date in its config)");
    assert_int_equal(intake_close_month(f->in, 2063, 12, "clerk1", &changed, err, sizeof(err)),
                     REINT_EINVAL);
    assert_int_equal(intake_close_month(f->in, 2064, 1, "clerk1", &changed, err, sizeof(err)), 0);
    /* Without a limit they are taken. */
    intake_set_earliest(f->in, INT32_MIN);
    assert_int_equal(intake_close_month(f->in, 2000, 1, "clerk1", &changed, err, sizeof(err)), 0);
    assert_int_equal(outbox_commit(f->ob), 0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-1", "person_local_id=P-1",
                           "service=loan", "status=referred", "date=2063-12-30", NULL),
                     0);
}

static void test_close_month_refuses_open_month_and_is_idempotent(void **state)
{
    fx *f = *state;
    char err[256];
    int changed = -1;
    last_rec l;
    assert_int_equal(outbox_begin(f->ob), 0);
    assert_int_equal(intake_close_month(f->in, 2082, 8, "clerk1", &changed, err, sizeof(err)),
                     REINT_EINVAL);
    assert_non_null(strstr(err, "has not ended yet"));
    assert_int_equal(intake_close_month(f->in, 2082, 13, "clerk1", &changed, err, sizeof(err)),
                     REINT_EINVAL);
    assert_int_equal(intake_close_month(f->in, 2082, 7, "clerk1", &changed, err, sizeof(err)), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(outbox_commit(f->ob), 0);
    Reint__V1__Record *r = newest(f, &l);
    assert_int_equal(r->body_case, REINT__V1__RECORD__BODY_MONTH_CLOSE);
    assert_int_equal(r->month_close->year, 2082);
    assert_int_equal(r->month_close->month, 7);
    assert_true(r->month_close->bikram_sambat);
    assert_int_equal(r->month_close->closed_day, today_day());
    reint__v1__record__free_unpacked(r, NULL);
    uint64_t seq = outbox_last_seq(f->ob);
    assert_int_equal(outbox_begin(f->ob), 0);
    assert_int_equal(intake_close_month(f->in, 2082, 7, "clerk1", &changed, err, sizeof(err)), 0);
    assert_int_equal(outbox_commit(f->ob), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(outbox_last_seq(f->ob), seq);
}

/* ---- CSV import and export ------------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *import(fx *f, int kind, const char *name, const char *text, int want_rc,
                    import_stats *st)
{
    char path[256];
    char *out = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    write_file(path, text);
    FILE *m = open_memstream(&out, &len);
    assert_int_equal(import_csv(f->in, kind, path, m, 0, st), want_rc);
    fclose(m);
    return out;
}

static const char *persons_csv =
    "\xEF\xBB\xBFlocal_id,category,sex,registered_on,full_name,address,phone\r\n"
    "P-1,returnee,female,2082-04-01,\"Tamang, Sita\",\"Ward 3\r\nBanepa\",9841000001\r\n"
    "P-2,community,male,2082-04-02,\"Ram \"\"Kale\"\" Thapa\",,\r\n"
    "P-3,vulnerable,other,2082-04-03,Gita,,\r\n";

static void test_csv_with_bom_crlf_and_quotes_imports(void **state)
{
    fx *f = *state;
    import_stats st;
    char *errs = import(f, INTAKE_PERSON, "persons.csv", persons_csv, 0, &st);
    assert_string_equal(errs, "");
    free(errs);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.inserted, 3);
    assert_int_equal(st.refused, 0);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    assert_int_equal(export_csv(f->in, INTAKE_PERSON, m), 0);
    fclose(m);
    assert_non_null(strstr(out, "\"Tamang, Sita\""));
    assert_non_null(strstr(out, "\"Ward 3\r\nBanepa\""));
    assert_non_null(strstr(out, "\"Ram \"\"Kale\"\" Thapa\""));
    assert_non_null(strstr(out, "P-3,VULNERABLE,OTHER,,,,2082-04-03,"));
    free(out);
}

static void test_bad_rows_reported_by_line_while_good_rows_commit(void **state)
{
    fx *f = *state;
    import_stats st;
    char *errs = import(f, INTAKE_PERSON, "persons.csv",
                        "local_id,category,sex,registered_on,address\n"
                        "P-1,returnee,female,2082-04-01,\"two\nlines\"\n"
                        "P-2,returnee,F?,2082-04-01,\n"
                        "P-3,returnee,male,2082-04-01\n"
                        "P-4,returnee,male,2090-01-01,x\n"
                        "P-5,alien,male,2082-04-01,x,extra\n"
                        "P-6,returnee,male,2082-04-01,ok\n",
                        0, &st);
    assert_non_null(
        strstr(errs, "persons.csv line 4: sex \"F?\" is not one of FEMALE, MALE, OTHER\n"));
    assert_non_null(strstr(errs, "persons.csv line 5: the row has 4 fields, the header has 5\n"));
    assert_non_null(
        strstr(errs, "persons.csv line 6: registered_on \"2090-01-01\" is in the future"));
    assert_non_null(strstr(errs, "persons.csv line 7: the row has 6 fields, the header has 5\n"));
    free(errs);
    assert_int_equal(st.rows, 6);
    assert_int_equal(st.inserted, 2);
    assert_int_equal(st.refused, 4);
    uint8_t id[16];
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-1", id, NULL), 0);
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-6", id, NULL), 0);
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-2", id, NULL), REINT_ENOTFOUND);
}

/* A file of many chunks (the reader thread hands rows over 1,024 at a time, in a ring of
 * three): bad rows in every chunk are reported once each, in line order; a row naming a key
 * an earlier line gave, chunks before, is refused (it took the earlier row's place unseen,
 * and a second run of the file kept the other one); the good rows are all stored. */
static void test_long_file_reports_bad_rows_in_order_across_chunks(void **state)
{
    fx *f = *state;
    import_stats st;
    const int n = 5000;
    size_t cap = (size_t)n * 64 + 256, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "local_id,category,sex,registered_on,phone\n");
    for (int i = 1; i <= n; i++) {
        const char *sex = i % 997 == 0 ? "F?" : (i & 1) ? "female" : "male";
        if (i == 4000) /* corrects P-10: another phone */
            len += (size_t)snprintf(text + len, cap - len,
                                    "P-10,returnee,male,2082-04-01,9800000010\n");
        else
            len += (size_t)snprintf(text + len, cap - len,
                                    "P-%d,returnee,%s,2082-04-01,98410%05d\n", i, sex, i);
    }
    char *errs = import(f, INTAKE_PERSON, "persons.csv", text, 0, &st);
    free(text);
    assert_int_equal(st.rows, n);
    assert_int_equal(st.refused, 6); /* lines 998, 1995, 2992, 3989, 4986, and 4001 */
    assert_int_equal(st.updated, 0);
    assert_int_equal(st.inserted, n - 6);
    assert_non_null(strstr(errs, "persons.csv line 4001: local_id \"P-10\" was taken from an "
                                 "earlier line of this file: this line is not imported\n"));
    const char *at = errs;
    for (int i = 997; i <= n; i += 997) {
        char want[96];
        snprintf(want, sizeof(want), "persons.csv line %d: sex \"F?\" is not one", i + 1);
        const char *hit = strstr(at, want);
        assert_non_null(hit);
        at = hit + 1;
    }
    int lines = 0;
    for (const char *c = errs; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 6); /* one line per bad row, nothing else */
    free(errs);
    uint8_t id[16];
    uint64_t v10 = 0, v11 = 0;
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-10", id, &v10), 0);
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-11", id, &v11), 0);
    assert_true(v10 < v11); /* P-10 kept its first line's version: the later line was refused */
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-997", id, NULL), REINT_ENOTFOUND);
}

/* A store of another layout is refused with a message naming the way out, never misread. */
static void test_store_of_another_format_is_refused(void **state)
{
    fx *f = *state;
    char err[512], path[160];
    sqlite3 *db = NULL;
    outbox *ob = NULL;
    snprintf(path, sizeof(path), "%s/old.db", f->dir);
    assert_int_equal(outbox_create(path, 10703, err, sizeof(err)), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value=1 WHERE key='format'", 0, 0, 0),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_not_equal(outbox_open(path, &ob, err, sizeof(err)), 0);
    assert_null(ob);
    assert_non_null(strstr(err, "store format 1"));
    assert_non_null(strstr(err, "export"));
}

static void test_bad_header_imports_nothing(void **state)
{
    fx *f = *state;
    import_stats st;
    char *errs = import(f, INTAKE_PERSON, "p.csv",
                        "local_id,category,Nick Name,registered_on\nP-1,returnee,x,2082-04-01\n",
                        REINT_EINVAL, &st);
    assert_non_null(strstr(errs, "p.csv line 1: unknown column \"Nick Name\""));
    assert_non_null(strstr(errs, "p.csv line 1: required column sex is missing"));
    free(errs);
    assert_int_equal(st.rows, 0);
    errs = import(f, INTAKE_PERSON, "empty.csv", "", REINT_EINVAL, &st);
    assert_non_null(strstr(errs, "empty.csv line 1: the file is empty"));
    free(errs);
    /* A UTF-16 byte order mark without NUL bytes after it (the attack on the demo got
     * "unknown column ??local_id"). */
    errs = import(f, INTAKE_PERSON, "u16.csv", "\xFF\xFElocal_id,category\n", REINT_EINVAL, &st);
    assert_non_null(strstr(errs, "u16.csv line 1: the file starts with a UTF-16 byte order mark"));
    free(errs);
}

static void test_importing_the_same_file_twice_changes_nothing(void **state)
{
    fx *f = *state;
    import_stats st;
    free(import(f, INTAKE_PERSON, "persons.csv", persons_csv, 0, &st));
    char *errs = import(f, INTAKE_SERVICE, "services.csv",
                        "local_id,person_local_id,service,status,date,provider,programme,"
                        "amount_npr\nS-1,P-1,loan,referred,2082-05-01,bank,rerp,\n"
                        "S-2,P-2,seed_funding,delivered,2082-05-02,mrc,m4sd,30000\n",
                        0, &st);
    assert_string_equal(errs, "");
    free(errs);
    assert_int_equal(st.inserted, 2);
    uint64_t seq = outbox_last_seq(f->ob);
    free(import(f, INTAKE_PERSON, "persons.csv", persons_csv, 0, &st));
    assert_int_equal(st.unchanged, 3);
    assert_int_equal(st.inserted + st.updated, 0);
    assert_int_equal(outbox_last_seq(f->ob), seq);

    /* The export imports again without a change too. */
    char path[256];
    snprintf(path, sizeof(path), "%s/export.csv", f->dir);
    FILE *fp = fopen(path, "w");
    assert_int_equal(export_csv(f->in, INTAKE_SERVICE, fp), 0);
    fclose(fp);
    assert_int_equal(import_csv(f->in, INTAKE_SERVICE, path, stderr, 0, &st), 0);
    assert_int_equal(st.unchanged, 2);
    assert_int_equal(outbox_last_seq(f->ob), seq);
}

/* ---- follow-ups --------------------------------------------------------------------------------
 */

static size_t pending(fx *f, const char *person, json_t **root)
{
    size_t i, n = 0;
    json_t *p;
    assert_int_equal(followups_json(f->in, 0, root), 0);
    json_array_foreach(json_object_get(*root, "persons"), i, p)
    {
        if (!strcmp(json_string_value(json_object_get(p, "local_id")), person))
            n = json_array_size(json_object_get(p, "referrals"));
    }
    return n;
}

static void test_followups_list_pending_referrals_until_delivered(void **state)
{
    fx *f = *state;
    field_errors e;
    json_t *root;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-1"), NULL), 0);
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-2", "category=returnee",
                           "sex=male", "registered_on=2082-04-01", "full_name=Hari",
                           "phone=9800000002", NULL),
                     0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-1", "person_local_id=P-1",
                           "service=loan", "status=referred", "date=2082-06-01", "provider=bank",
                           NULL),
                     0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-2", "person_local_id=P-1",
                           "service=psychosocial_support", "status=referred", "date=2082-07-01",
                           NULL),
                     0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-3", "person_local_id=P-2",
                           "service=loan", "status=referred", "date=2082-05-01", NULL),
                     0);
    /* A loan delivered before the referral does not fulfil it. */
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-4", "person_local_id=P-2",
                           "service=loan", "status=delivered", "date=2082-04-15", NULL),
                     0);
    assert_int_equal(pending(f, "P-1", &root), 2);
    json_t *persons = json_object_get(root, "persons");
    assert_int_equal(json_array_size(persons), 2);
    /* P-2 has waited longest. */
    json_t *first = json_array_get(persons, 0);
    assert_string_equal(json_string_value(json_object_get(first, "local_id")), "P-2");
    assert_string_equal(json_string_value(json_object_get(first, "full_name")), "Hari");
    assert_string_equal(json_string_value(json_object_get(first, "phone")), "9800000002");
    int32_t d;
    assert_int_equal(bscal_days_from_bs(2082, 5, 1, &d), 0);
    assert_int_equal(json_integer_value(json_object_get(first, "days_waiting")), today_day() - d);
    json_t *ref = json_array_get(json_object_get(json_array_get(persons, 1), "referrals"), 0);
    assert_string_equal(json_string_value(json_object_get(ref, "service")), "LOAN");
    assert_string_equal(json_string_value(json_object_get(ref, "date")), "2082-06-01");
    assert_string_equal(json_string_value(json_object_get(ref, "provider")), "BANK");
    json_decref(root);

    /* A new DELIVERED loan clears S-1; correcting S-2 to DELIVERED clears it. */
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-5", "person_local_id=P-1",
                           "service=loan", "status=delivered", "date=2082-06-20", NULL),
                     0);
    assert_int_equal(pending(f, "P-1", &root), 1);
    json_decref(root);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-2", "person_local_id=P-1",
                           "service=psychosocial_support", "status=delivered", "date=2082-07-01",
                           NULL),
                     0);
    assert_int_equal(pending(f, "P-1", &root), 0);
    json_decref(root);

    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    assert_int_equal(followups_print(f->in, 0, m), 0);
    fclose(m);
    assert_non_null(strstr(out, "P-2  Hari  9800000002"));
    assert_non_null(strstr(out, "LOAN"));
    free(out);
}

/* ---- failures are reported, never a partial result ---------------------------------------------
 */

/* A store that fails while a person is looked up is a store error, not an unknown person: the
 * clerk must not be told to register someone who is registered. */
static void test_store_error_is_not_taken_for_an_unknown_person(void **state)
{
    fx *f = *state;
    field_errors e;
    uint8_t id[16];
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-1"), NULL), 0);
    assert_int_equal(sqlite3_exec(outbox_db(f->ob), "ALTER TABLE records RENAME TO records_gone",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    int rc = intake_lookup(f->in, INTAKE_PERSON, "P-1", id, NULL);
    assert_int_not_equal(rc, 0);
    assert_int_not_equal(rc, REINT_ENOTFOUND);
    rc = apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-1", "person_local_id=P-1", "service=loan",
               "status=referred", "date=2082-06-01", NULL);
    assert_int_not_equal(rc, 0);
    assert_int_not_equal(rc, REINT_EINVAL);
    assert_false(has_error(&e, "person_local_id", "is not a registered person"));
    assert_int_equal(sqlite3_exec(outbox_db(f->ob), "ALTER TABLE records_gone RENAME TO records",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
}

/* jansson's allocator, failing from the fail_at-th allocation on (0: never). */
static long alloc_count, alloc_fail_at;

static void *failing_malloc(size_t n)
{
    if (alloc_fail_at && ++alloc_count >= alloc_fail_at)
        return NULL;
    return malloc(n);
}

/* Follow-ups with memory running out at each allocation in turn: either the whole list, or
 * REINT_ENOMEM and no list; never a list with a person or a field missing. */
static void test_followups_are_whole_or_an_error_when_memory_runs_out(void **state)
{
    fx *f = *state;
    field_errors e;
    json_t *root = NULL;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-1"), NULL), 0);
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, "local_id=P-2", "category=returnee",
                           "sex=male", "registered_on=2082-04-01", "full_name=Hari", NULL),
                     0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-1", "person_local_id=P-1",
                           "service=loan", "status=referred", "date=2082-06-01", "provider=bank",
                           NULL),
                     0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-2", "person_local_id=P-1",
                           "service=legal_aid", "status=referred", "date=2082-06-02", NULL),
                     0);
    assert_int_equal(apply(f, INTAKE_SERVICE, &e, NULL, "local_id=S-3", "person_local_id=P-2",
                           "service=loan", "status=referred", "date=2082-05-01", NULL),
                     0);
    assert_int_equal(followups_json(f->in, 0, &root), 0);
    char *want = json_dumps(root, JSON_COMPACT);
    assert_non_null(want);
    json_decref(root);
    int failures = 0;
    log_init("test_intake", LOG_SECURITY); /* one "out of memory" line per failure is noise */
    for (long at = 1; at < 200; at++) {
        alloc_count = 0;
        alloc_fail_at = at;
        json_set_alloc_funcs(failing_malloc, free);
        root = NULL;
        int rc = followups_json(f->in, 0, &root);
        alloc_fail_at = 0;
        json_set_alloc_funcs(malloc, free);
        if (rc == 0) {
            char *got = json_dumps(root, JSON_COMPACT);
            assert_non_null(got);
            assert_string_equal(got, want);
            free(got);
            json_decref(root);
        } else {
            assert_int_equal(rc, REINT_ENOMEM);
            assert_null(root);
            failures++;
        }
    }
    log_init("test_intake", LOG_INFO);
    assert_true(failures > 10); /* the allocator did fail inside the list */
    free(want);
}

/* An export or a follow-up list that cannot be written says so: output lost in a full disk
 * is not a successful export. */
static void test_export_and_followups_report_a_write_error(void **state)
{
    fx *f = *state;
    field_errors e;
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-1"), NULL), 0);
    FILE *full = fopen("/dev/full", "w");
    assert_non_null(full);
    assert_int_equal(export_csv(f->in, INTAKE_PERSON, full), REINT_EIO);
    clearerr(full);
    assert_int_equal(followups_print(f->in, 0, full), REINT_EIO);
    fclose(full);
}

/* A stored row holding a value longer than any field is not cut short in the export. */
static void test_export_refuses_a_stored_row_it_cannot_read(void **state)
{
    fx *f = *state;
    field_errors e;
    sqlite3_stmt *st = NULL;
    localrow_buf row;
    static char big[FIELD_SCRATCH_MAX + 1];
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-1"), NULL), 0);
    memset(big, 'x', sizeof(big));
    localrow_init(&row);
    localrow_put(&row, "P-1", 3);
    localrow_put(&row, big, sizeof(big));
    assert_false(row.failed);
    assert_int_equal(sqlite3_prepare_v2(outbox_db(f->ob),
                                        "UPDATE records SET fields=?1 WHERE local_id='P-1'", -1,
                                        &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, row.p, (int)row.len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    localrow_free(&row);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    assert_int_equal(export_csv(f->in, INTAKE_PERSON, m), REINT_EMALFORMED);
    fclose(m);
    free(out);
}

/* A commit that fails in the middle of an import is reported with its line, the batch is
 * rolled back, the batches before it stay, and the store takes the next transaction. The
 * failure is a deferred foreign key that the test sets to break at P-12000: SQLite then
 * refuses the COMMIT and keeps the transaction open, as it does when the database is busy. */
static void test_import_reports_a_failed_commit_and_rolls_it_back(void **state)
{
    fx *f = *state;
    import_stats st;
    field_errors e;
    uint8_t id[16];
    const int n = 15000;
    size_t cap = (size_t)n * 48 + 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "local_id,category,sex,registered_on\n");
    for (int i = 1; i <= n; i++)
        len += (size_t)snprintf(text + len, cap - len, "P-%d,returnee,female,2082-04-01\n", i);
    assert_int_equal(sqlite3_exec(outbox_db(f->ob),
                                  "CREATE TEMP TABLE parent(id INTEGER PRIMARY KEY);"
                                  "CREATE TEMP TABLE child(p INTEGER REFERENCES parent(id)"
                                  " DEFERRABLE INITIALLY DEFERRED);"
                                  "CREATE TEMP TRIGGER boom AFTER INSERT ON main.records"
                                  " WHEN NEW.local_id = 'P-12000'"
                                  " BEGIN INSERT INTO child VALUES(1); END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    char *errs = import(f, INTAKE_PERSON, "persons.csv", text, REINT_EDB, &st);
    free(text);
    assert_non_null(strstr(errs, "persons.csv: cannot commit"));
    free(errs);
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-10000", id, NULL), 0);
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-10001", id, NULL), REINT_ENOTFOUND);
    assert_int_equal(intake_lookup(f->in, INTAKE_PERSON, "P-12000", id, NULL), REINT_ENOTFOUND);
    assert_int_equal(sqlite3_exec(outbox_db(f->ob), "DROP TRIGGER boom", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(apply(f, INTAKE_PERSON, &e, NULL, PERSON("P-20000"), NULL), 0);
}

/* ---- JSON rows (api.c) -------------------------------------------------------------------------
 */

static void test_json_rows_accept_numbers_booleans_and_report_bad_json(void **state)
{
    fx *f = *state;
    field_errors e;
    intake_result res;
    char jerr[256];
    const char *body = "{\"local_id\":\"P-7\",\"category\":\"returnee\",\"sex\":\"male\","
                       "\"birth_year\":2040,\"disability\":false,\"registered_on\":\"2082-04-01\","
                       "\"years_abroad\":3.0,\"phone\":null}";
    assert_int_equal(outbox_begin(f->ob), 0);
    assert_int_equal(api_apply_json(f->in, INTAKE_PERSON, body, strlen(body), NULL, "c", &e, &res,
                                    jerr, sizeof(jerr)),
                     0);
    assert_int_equal(res.changed, INTAKE_INSERTED);
    assert_string_equal(res.local_id, "P-7");
    /* PUT: the URL names the row; a different local_id in the body is refused. */
    const char *put = "{\"local_id\":\"P-8\",\"category\":\"returnee\"}";
    assert_int_equal(api_apply_json(f->in, INTAKE_PERSON, put, strlen(put), "P-7", "c", &e, &res,
                                    jerr, sizeof(jerr)),
                     REINT_EINVAL);
    assert_true(has_error(&e, "local_id", "does not match"));
    /* A body that is not a JSON object is malformed (the API answers 400 with jerr), unlike a
     * row refused field by field (422 with the errors). */
    const char *bad = "{\"local_id\": \"P-1\",\n \"sex\": }";
    assert_int_equal(api_apply_json(f->in, INTAKE_PERSON, bad, strlen(bad), NULL, "c", &e, &res,
                                    jerr, sizeof(jerr)),
                     REINT_EMALFORMED);
    assert_non_null(strstr(jerr, "line 2 column"));
    assert_int_equal(e.n, 0);
    assert_int_equal(
        api_apply_json(f->in, INTAKE_PERSON, "[1]", 3, NULL, "c", &e, &res, jerr, sizeof(jerr)),
        REINT_EMALFORMED);
    assert_non_null(strstr(jerr, "JSON object"));
    const char *nested = "{\"local_id\":{\"a\":1}}";
    assert_int_equal(api_apply_json(f->in, INTAKE_PERSON, nested, strlen(nested), NULL, "c", &e,
                                    &res, jerr, sizeof(jerr)),
                     REINT_EINVAL);
    assert_true(has_error(&e, "local_id", "must be a string"));
    const char *badsex = "{\"local_id\":\"P-9\",\"category\":\"returnee\",\"sex\":\"F?\","
                         "\"registered_on\":\"2082-04-01\"}";
    assert_int_equal(api_apply_json(f->in, INTAKE_PERSON, badsex, strlen(badsex), NULL, "c", &e,
                                    &res, jerr, sizeof(jerr)),
                     REINT_EINVAL);
    assert_true(has_error(&e, "sex", "is not one of FEMALE, MALE, OTHER"));
    /* Errors past FIELD_MAX_ERRORS are counted, so that the answer says some were left out. */
    char many[1024];
    size_t o = 0;
    for (int i = 0; i < FIELD_MAX_ERRORS + 8; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, "%s\"k%d\":[]", i ? "," : "{", i);
    snprintf(many + o, sizeof(many) - o, "}");
    assert_int_equal(api_apply_json(f->in, INTAKE_PERSON, many, strlen(many), NULL, "c", &e, &res,
                                    jerr, sizeof(jerr)),
                     REINT_EINVAL);
    assert_int_equal(e.n, FIELD_MAX_ERRORS);
    assert_int_equal(e.dropped, 8);
    const char *avail = "{\"available\": true, \"as_of\": \"2082-04-01\"}";
    assert_int_equal(api_apply_json(f->in, INTAKE_AVAILABILITY, avail, strlen(avail),
                                    "seed_funding/mrc", "c", &e, &res, jerr, sizeof(jerr)),
                     0);
    assert_string_equal(res.local_id, "SEED_FUNDING/MRC");
    outbox_rollback(f->ob);
}

static void test_token_hash_is_sha256_hex(void **state)
{
    (void)state;
    char hex[65];
    assert_int_equal(tokens_hash_hex("abc", hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Every code of FIELD_CODES is carried whole: "birth_after_registration" and
 * "return_after_registration" were cut to 23 bytes, so the pages' catalogues, which have the
 * whole codes, never worded those two errors in Nepali. */
static void test_every_field_code_is_carried_whole(void **state)
{
    (void)state;
    static const char *const codes[] = {FIELD_CODES};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        field_errors errs = {0};
        field_errors_add_code(&errs, "birth_year", codes[i], NULL, "reason");
        assert_int_equal(errs.n, 1);
        if (strcmp(errs.e[0].code, codes[i]) != 0)
            fail_msg("code \"%s\" is carried as \"%s\"", codes[i], errs.e[0].code);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_person_row_becomes_coarse_record_without_personal_data,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_person_fields_are_unknown_upstream, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_age_bands_follow_the_registration_year, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_service_enterprise_availability_rows_become_records,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_each_validation_rule_names_its_field, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_person_rules_name_their_field, setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_every_error_of_a_row_is_collected, setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_events_and_closes_before_the_earliest_date_are_refused,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_service_of_unknown_or_deleted_person_is_refused,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(
            test_same_row_again_is_unchanged_and_a_new_phone_is_a_new_version, setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_dates_and_numbers_as_offices_write_them, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_queues_tombstone_and_recreate_reuses_id,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_ad_calendar_reads_gregorian_dates_and_years, setup_ad,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_month_refuses_open_month_and_is_idempotent,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_csv_with_bom_crlf_and_quotes_imports, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows_reported_by_line_while_good_rows_commit,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_long_file_reports_bad_rows_in_order_across_chunks,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_store_of_another_format_is_refused, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_header_imports_nothing, setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_importing_the_same_file_twice_changes_nothing,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_followups_list_pending_referrals_until_delivered,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_store_error_is_not_taken_for_an_unknown_person,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_followups_are_whole_or_an_error_when_memory_runs_out,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_export_and_followups_report_a_write_error, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_export_refuses_a_stored_row_it_cannot_read, setup_bs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_import_reports_a_failed_commit_and_rolls_it_back,
                                        setup_bs, teardown),
        cmocka_unit_test_setup_teardown(test_json_rows_accept_numbers_booleans_and_report_bad_json,
                                        setup_bs, teardown),
        cmocka_unit_test(test_token_hash_is_sha256_hex),
        cmocka_unit_test(test_every_field_code_is_carried_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
