#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hlc.h"
#include "record.h"
#include "rid.h"

static uint8_t id[16];
static Reint__V1__Record rec;
static Reint__V1__Person person;

static int setup(void **state)
{
    (void)state;
    rid_new(id, 1700000000000ull);
    reint__v1__record__init(&rec);
    reint__v1__person__init(&person);
    rec.id.data = id;
    rec.id.len = 16;
    rec.municipality = 10703;
    rec.version = 1;
    rec.body_case = REINT__V1__RECORD__BODY_PERSON;
    rec.person = &person;
    /* 2022-01-08 is BS 2078-09-24: the pair (2022-01, BS 2078-09). */
    person.registered_month = 202201;
    person.registered_bs_month = 207809;
    person.years_abroad = -1;
    return 0;
}

static void test_record_valid_person_passes(void **state)
{
    (void)state;
    record_error e;
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
}

static void test_record_future_pair_refused_naming_field(void **state)
{
    (void)state;
    record_error e;
    /* Today 2024-10-04 (BS 2081-06-18). October with Asoj (overlap from 2024-10-01) may be
     * today's; October with Kartik (overlap from 2024-10-17) cannot be yet. */
    person.registered_month = 202410;
    person.registered_bs_month = 208106;
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
    person.registered_bs_month = 208107;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_month");
    assert_non_null(strstr(e.reason, "future"));
}

static void test_record_pair_of_months_that_do_not_overlap_refused(void **state)
{
    (void)state;
    record_error e;
    /* BS 2078-12 (Chaitra) runs 2022-03-15 .. 2022-04-13: no day of it is in January. */
    person.registered_bs_month = 207812;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_bs_month");
    assert_non_null(strstr(e.reason, "does not overlap"));
    /* Pausha 2078 (2021-12-16 .. 2022-01-14) overlaps December and January. */
    person.registered_bs_month = 207809;
    person.registered_month = 202112;
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
}

static void test_record_pair_outside_the_table_or_not_months_refused(void **state)
{
    (void)state;
    record_error e;
    person.registered_bs_month = 199912; /* before BS 2000, the table's first year */
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_bs_month");
    person.registered_bs_month = 207813;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_bs_month");
    person.registered_bs_month = 207809;
    person.registered_month = 202200; /* month 0 */
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_month");
    person.registered_month = 0; /* no pair at all */
    person.registered_bs_month = 0;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_month");
}

/* Packs rec with extra bytes appended to its person body (tagged fields this build may not
 * know) and unpacks it again: the way a record from another sender arrives. */
static Reint__V1__Record *with_person_bytes(const uint8_t *extra, size_t n)
{
    uint8_t body[256], buf[512];
    size_t blen = reint__v1__person__pack(&person, body);
    if (n > 0)
        memcpy(body + blen, extra, n);
    blen += n;
    Reint__V1__Record r = rec;
    r.body_case = REINT__V1__RECORD__BODY__NOT_SET;
    size_t len = reint__v1__record__pack(&r, buf);
    buf[len++] = 0x52; /* field 10 (person), length-delimited */
    buf[len++] = (uint8_t)blen;
    memcpy(buf + len, body, blen);
    len += blen;
    return reint__v1__record__unpack(NULL, len, buf);
}

static void test_record_unknown_field_refused_naming_its_message(void **state)
{
    (void)state;
    record_error e;
    static const uint8_t extra[] = {0x98, 0x06, 0x2a}; /* field 99, varint 42 */
    Reint__V1__Record *r = with_person_bytes(extra, sizeof(extra));
    assert_non_null(r);
    assert_int_equal(r->person->base.n_unknown_fields, 1);
    assert_int_equal(record_validate(r, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person");
    assert_non_null(strstr(e.reason, "field number 99"));
    /* Under protocol 2 the old day is a field it does not know either. */
    static const uint8_t day[] = {0x38, 0xb8, 0x94, 0x01}; /* field 7, varint 19000 */
    reint__v1__record__free_unpacked(r, NULL);
    r = with_person_bytes(day, sizeof(day));
    assert_int_equal(record_validate(r, 20000, &e), REINT_EINVAL);
    assert_non_null(strstr(e.reason, "field number 7"));
    reint__v1__record__free_unpacked(r, NULL);
}

static void test_record_upgrade_turns_a_v1_day_into_its_pair(void **state)
{
    (void)state;
    record_error e;
    record_upgraded up;
    uint8_t buf[256];
    person.registered_month = person.registered_bs_month = 0; /* a v1 person: no pair */
    static const uint8_t day[] = {0x38, 0xb8, 0x94, 0x01};    /* field 7: 19000 = 2022-01-08 */
    Reint__V1__Record *r = with_person_bytes(day, sizeof(day));
    assert_int_equal(record_upgrade(r, RECORD_V1_DAYS, &up, &e), 0);
    assert_int_equal(up.rec.person->registered_month, 202201);
    assert_int_equal(up.rec.person->registered_bs_month, 207809);
    assert_int_equal(up.rec.person->base.n_unknown_fields, 0);
    assert_int_equal(record_validate(&up.rec, 20000, &e), 0);
    /* Packed again, no trace of the day's field remains. */
    size_t n = reint__v1__record__pack(&up.rec, buf);
    Reint__V1__Record *again = reint__v1__record__unpack(NULL, n, buf);
    assert_int_equal(again->person->base.n_unknown_fields, 0);
    assert_int_equal(again->person->registered_month, 202201);
    /* Upgraded again (a migration that meets a body twice), the pair stays. */
    record_upgraded twice;
    assert_int_equal(record_upgrade(again, RECORD_V1_DAYS | RECORD_STRIP_UNKNOWN, &twice, &e), 0);
    assert_int_equal(twice.rec.person->registered_month, 202201);
    assert_int_equal(twice.rec.person->registered_bs_month, 207809);
    reint__v1__record__free_unpacked(again, NULL);
    reint__v1__record__free_unpacked(r, NULL);
    /* A negative day (ten bytes of varint) and an absent one (day 0: proto3 left it out). */
    static const uint8_t neg[] = {0x38, 0x9c, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0x01}; /* -100 = 1969-09-23 */
    r = with_person_bytes(neg, sizeof(neg));
    assert_int_equal(record_upgrade(r, RECORD_V1_DAYS, &up, &e), 0);
    assert_int_equal(up.rec.person->registered_month, 196909);
    assert_int_equal(up.rec.person->registered_bs_month, 202606);
    reint__v1__record__free_unpacked(r, NULL);
    r = with_person_bytes(NULL, 0);
    assert_int_equal(record_upgrade(r, RECORD_V1_DAYS, &up, &e), 0);
    assert_int_equal(up.rec.person->registered_month, 197001);
    assert_int_equal(up.rec.person->registered_bs_month, 202609);
    reint__v1__record__free_unpacked(r, NULL);
}

static void test_record_upgrade_refuses_or_strips_other_unknown_fields(void **state)
{
    (void)state;
    record_error e;
    record_upgraded up;
    static const uint8_t extra[] = {0x38, 0xb8, 0x94, 0x01, 0x98, 0x06, 0x2a};
    Reint__V1__Record *r = with_person_bytes(extra, sizeof(extra));
    assert_int_equal(record_upgrade(r, RECORD_V1_DAYS, &up, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person");
    assert_non_null(strstr(e.reason, "field number 99"));
    assert_int_equal(record_upgrade(r, RECORD_V1_DAYS | RECORD_STRIP_UNKNOWN, &up, &e), 0);
    assert_int_equal(up.rec.person->base.n_unknown_fields, 0);
    assert_int_equal(up.rec.person->registered_bs_month, 207809);
    reint__v1__record__free_unpacked(r, NULL);
    /* A v1 day outside the BS table (2052) has no pair: refused, naming the old field. */
    static const uint8_t late[] = {0x38, 0xb0, 0xea, 0x01}; /* 30000 */
    r = with_person_bytes(late, sizeof(late));
    assert_int_equal(record_upgrade(r, RECORD_V1_DAYS, &up, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.registered_day");
    reint__v1__record__free_unpacked(r, NULL);
}

static void test_record_unknown_enum_value_accepted(void **state)
{
    (void)state;
    record_error e;
    person.sex = (Reint__V1__Sex)42; /* a value a newer node may send */
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
    assert_string_equal(record_enum_name(&reint__v1__sex__descriptor, 42), "UNKNOWN");
}

static void test_record_bad_country_refused(void **state)
{
    (void)state;
    record_error e;
    person.destination_country = "qa";
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "person.destination_country");
}

static void test_record_bad_id_length_refused(void **state)
{
    (void)state;
    record_error e;
    rec.id.len = 15;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "id");
}

static void test_record_missing_body_refused(void **state)
{
    (void)state;
    record_error e;
    rec.body_case = REINT__V1__RECORD__BODY__NOT_SET;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "body");
}

static void test_record_service_negative_amount_refused(void **state)
{
    (void)state;
    record_error e;
    Reint__V1__Service s = REINT__V1__SERVICE__INIT;
    s.person_id.data = id;
    s.person_id.len = 16;
    s.month = 202201;
    s.bs_month = 207809;
    s.amount_npr = -5;
    rec.body_case = REINT__V1__RECORD__BODY_SERVICE;
    rec.service = &s;
    assert_int_equal(record_validate(&rec, 20000, &e), REINT_EINVAL);
    assert_string_equal(e.field, "service.amount_npr");
    s.amount_npr = -1; /* unknown */
    assert_int_equal(record_validate(&rec, 20000, &e), 0);
}

static void test_record_enum_parse_is_case_insensitive(void **state)
{
    (void)state;
    int v = 0;
    assert_int_equal(record_enum_parse(&reint__v1__sex__descriptor, "female", &v), 0);
    assert_int_equal(v, REINT__V1__SEX__SEX_FEMALE);
    assert_int_equal(record_enum_parse(&reint__v1__service_type__descriptor, "Seed_Funding", &v),
                     0);
    assert_int_equal(v, REINT__V1__SERVICE_TYPE__SERVICE_TYPE_SEED_FUNDING);
    assert_int_equal(record_enum_parse(&reint__v1__sex__descriptor, "unknown", &v), REINT_EINVAL);
    assert_int_equal(record_enum_parse(&reint__v1__sex__descriptor, "F?", &v), REINT_EINVAL);
    char list[128];
    record_enum_list(&reint__v1__sex__descriptor, list, sizeof(list));
    assert_string_equal(list, "FEMALE, MALE, OTHER");
}

static void test_hlc_never_goes_back(void **state)
{
    (void)state;
    hlc c = {0};
    uint64_t a = hlc_next(&c, 1000);
    uint64_t b = hlc_next(&c, 1000);
    uint64_t d = hlc_next(&c, 900); /* the wall clock stepped back */
    assert_true(b > a && d > b);
    hlc_observe(&c, (5000ull << 16) + 7);
    assert_true(hlc_next(&c, 1000) > (5000ull << 16) + 7);
    assert_int_equal(hlc_ms(hlc_next(&c, 9000)), 9000);
}

static void test_rid_is_time_ordered_uuidv7(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    char s[RID_HEX_LEN + 1];
    uint8_t back[16];
    rid_new(a, 1700000000000ull);
    rid_new(b, 1700000000001ull);
    assert_true(memcmp(a, b, 16) < 0);
    assert_int_equal(a[6] >> 4, 7);
    assert_int_equal(a[8] >> 6, 2);
    rid_format(a, s);
    assert_int_equal(rid_parse(s, back), 0);
    assert_memory_equal(a, back, 16);
    assert_int_equal(rid_parse("not-a-uuid", back), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_record_valid_person_passes, setup),
        cmocka_unit_test_setup(test_record_future_pair_refused_naming_field, setup),
        cmocka_unit_test_setup(test_record_pair_of_months_that_do_not_overlap_refused, setup),
        cmocka_unit_test_setup(test_record_pair_outside_the_table_or_not_months_refused, setup),
        cmocka_unit_test_setup(test_record_unknown_field_refused_naming_its_message, setup),
        cmocka_unit_test_setup(test_record_upgrade_turns_a_v1_day_into_its_pair, setup),
        cmocka_unit_test_setup(test_record_upgrade_refuses_or_strips_other_unknown_fields, setup),
        cmocka_unit_test_setup(test_record_unknown_enum_value_accepted, setup),
        cmocka_unit_test_setup(test_record_bad_country_refused, setup),
        cmocka_unit_test_setup(test_record_bad_id_length_refused, setup),
        cmocka_unit_test_setup(test_record_missing_body_refused, setup),
        cmocka_unit_test_setup(test_record_service_negative_amount_refused, setup),
        cmocka_unit_test(test_record_enum_parse_is_case_insensitive),
        cmocka_unit_test(test_hlc_never_goes_back),
        cmocka_unit_test(test_rid_is_time_ordered_uuidv7),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
